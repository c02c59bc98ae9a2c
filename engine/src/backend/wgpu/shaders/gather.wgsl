// Row and column gathers of the MoE FFN; indices arrive as f32 bit patterns.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// params: [rows, cols, k]: y[t, j] = x[t, idx[t·k + j]].
@compute @workgroup_size(64)
fn take_cols(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_id(gid);
    if (i >= params[0] * params[2]) { return; }
    let t = i / params[2];
    y[i] = x[t * params[1] + bitcast<u32>(idx[i])];
}

// params: [n_out_rows, cols]: y[r] = x[idx[r]].
@compute @workgroup_size(64)
fn take_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_id(gid);
    let cols = params[1];
    if (i >= params[0] * cols) { return; }
    y[i] = x[bitcast<u32>(idx[i / cols]) * cols + i % cols];
}

// params: [n_src_rows, cols]: y[idx[r]] = x[r] (an expert's output rows into their slots).
@compute @workgroup_size(64)
fn put_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_id(gid);
    let cols = params[1];
    if (i >= params[0] * cols) { return; }
    y[bitcast<u32>(idx[i / cols]) * cols + i % cols] = x[i];
}

// params: [n_tokens, cols, k]: y[t] = Σ_j w[t·k + j] · slots[t·k + j], in slot order; x is the
// slot-ordered expert outputs, idx the weights (as plain f32 here).
@compute @workgroup_size(64)
fn moe_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_id(gid);
    let cols = params[1];
    let k = params[2];
    if (i >= params[0] * cols) { return; }
    let t = i / cols;
    let c = i % cols;
    var acc = 0.0;
    for (var j = 0u; j < k; j++) { acc += x[(t * k + j) * cols + c] * idx[t * k + j]; }
    y[i] = acc;
}
