// params: [n = n_tokens * heads * half, cols, head_dim, n_rot, neox]. cs holds (cos, sin) per
// (token, i < n_rot/2), computed on the host in f64: x rotates in place.
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<f32>;

@compute @workgroup_size(64)
fn rope(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = linear_id(gid);
    if (idx >= params[0]) { return; }
    let cols = params[1];
    let head_dim = params[2];
    let half = params[3] / 2u;
    let heads = cols / head_dim;
    let i = idx % half;
    let h = (idx / half) % heads;
    let t = idx / (half * heads);
    var a = 2u * i;
    var b = 2u * i + 1u;
    if (params[4] == 1u) { a = i; b = i + half; }
    let base = t * cols + h * head_dim;
    let c = cs[(t * half + i) * 2u];
    let s = cs[(t * half + i) * 2u + 1u];
    let x0 = x[base + a];
    let x1 = x[base + b];
    x[base + a] = x0 * c - x1 * s;
    x[base + b] = x0 * s + x1 * c;
}
