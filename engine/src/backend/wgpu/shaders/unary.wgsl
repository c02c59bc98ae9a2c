// One input, one output. params: [n, …] per entry.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn silu(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_id(gid);
    if (i >= params[0]) { return; }
    let v = x[i];
    y[i] = v / (1.0 + exp(-v));
}

@compute @workgroup_size(64)
fn gelu_tanh(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_id(gid);
    if (i >= params[0]) { return; }
    let v = x[i];
    y[i] = 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
}

// erf by Abramowitz & Stegun 7.1.26 refined: |error| < 1.5e-7, below f32's resolution of 0.5·(1+erf).
fn erf32(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * abs(z));
    let p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(z) * (1.0 - p * exp(-z * z));
}

@compute @workgroup_size(64)
fn gelu_erf(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_id(gid);
    if (i >= params[0]) { return; }
    let v = x[i];
    y[i] = 0.5 * v * (1.0 + erf32(v * 0.7071067811865476));
}

// params: [n = rows * dst_cols, src_cols, dst_cols, col_offset]: columns of a fused projection.
@compute @workgroup_size(64)
fn copy_cols(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_id(gid);
    if (i >= params[0]) { return; }
    let r = i / params[2];
    let c = i % params[2];
    y[i] = x[r * params[1] + params[3] + c];
}

// params: [rows, cols]: softmax of each row (x − max, exp, f32 sum).
@compute @workgroup_size(64)
fn soft_max(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = linear_id(gid);
    if (r >= params[0]) { return; }
    let cols = params[1];
    let base = r * cols;
    var m = x[base];
    for (var c = 1u; c < cols; c++) { m = max(m, x[base + c]); }
    var s = 0.0;
    for (var c = 0u; c < cols; c++) { s += exp(x[base + c] - m); }
    for (var c = 0u; c < cols; c++) { y[base + c] = exp(x[base + c] - m) / s; }
}

// params: [rows, cols]: each row divided by its sum.
@compute @workgroup_size(64)
fn normalize_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = linear_id(gid);
    if (r >= params[0]) { return; }
    let cols = params[1];
    let base = r * cols;
    var s = 0.0;
    for (var c = 0u; c < cols; c++) { s += x[base + c]; }
    for (var c = 0u; c < cols; c++) { y[base + c] = x[base + c] / s; }
}
