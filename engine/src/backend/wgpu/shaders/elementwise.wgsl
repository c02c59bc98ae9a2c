// params: [n, cols]. add / mul: y = a ∘ b; add_rows: b is one row added to every row of a;
// sigmoid_gate: row r of a times σ(b[r]).
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_id(gid);
    if (i >= params[0]) { return; }
    y[i] = a[i] + b[i];
}

@compute @workgroup_size(64)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_id(gid);
    if (i >= params[0]) { return; }
    y[i] = a[i] * b[i];
}

@compute @workgroup_size(64)
fn add_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_id(gid);
    if (i >= params[0]) { return; }
    y[i] = a[i] + b[i % params[1]];
}

@compute @workgroup_size(64)
fn sigmoid_gate(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_id(gid);
    if (i >= params[0]) { return; }
    y[i] = a[i] * (1.0 / (1.0 + exp(-b[i / params[1]])));
}
