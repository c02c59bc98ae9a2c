// params: [n_groups, group, eps]: one invocation per group (a row, or a head).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn rms_norm(@builtin(global_invocation_id) gid: vec3<u32>) {
    let g = linear_id(gid);
    if (g >= params[0]) { return; }
    let n = params[1];
    let base = g * n;
    var ss = 0.0;
    for (var i = 0u; i < n; i++) { ss += x[base + i] * x[base + i]; }
    let scale = 1.0 / sqrt(ss / f32(n) + pf(2u));
    for (var i = 0u; i < n; i++) { y[base + i] = x[base + i] * scale * w[i]; }
}

@compute @workgroup_size(64)
fn layer_norm(@builtin(global_invocation_id) gid: vec3<u32>) {
    let g = linear_id(gid);
    if (g >= params[0]) { return; }
    let n = params[1];
    let base = g * n;
    var s = 0.0;
    for (var i = 0u; i < n; i++) { s += x[base + i]; }
    let mean = s / f32(n);
    var v = 0.0;
    for (var i = 0u; i < n; i++) { let d = x[base + i] - mean; v += d * d; }
    let scale = 1.0 / sqrt(v / f32(n) + pf(2u));
    for (var i = 0u; i < n; i++) { y[base + i] = (x[base + i] - mean) * scale * w[i] + b[i]; }
}
