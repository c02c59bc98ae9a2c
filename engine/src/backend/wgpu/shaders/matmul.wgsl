// y = x · Wᵀ (+ nothing: biases are a separate add_rows) for one chunk of W's rows, weights read
// as stored through WEIGHT(row, col). params: [n_tokens, n_in, n_out, row_bytes, first_row,
// chunk_rows, transposed, scale], scale the f32 bits of APR-q8's per-tensor scale (read by
// w_apr_q8 as pf(7u); 0 for every other dtype). Transposed (HF Conv1D [in, out] storage, one
// chunk): y = x · W.
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_id(gid);
    let n_tokens = params[0];
    let n_in = params[1];
    let n_out = params[2];
    let rows = select(params[5], n_out, params[6] == 1u);
    if (i >= n_tokens * rows) { return; }
    let t = i / rows;
    let o = i % rows;
    var acc = 0.0;
    if (params[6] == 1u) {
        for (var k = 0u; k < n_in; k++) { acc += x[t * n_in + k] * WEIGHT(k, o); }
        y[t * n_out + o] = acc;
    } else {
        for (var k = 0u; k < n_in; k++) { acc += x[t * n_in + k] * WEIGHT(o, k); }
        y[t * n_out + params[4] + o] = acc;
    }
}

// Rows of an embedding table by id (ids as f32 bit patterns in x). params: [n_ids, n_cols, _,
// row_bytes, _, _, _, scale], scale as for matmul.
@compute @workgroup_size(64)
fn get_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_id(gid);
    let n = params[1];
    if (i >= params[0] * n) { return; }
    let id = bitcast<u32>(x[i / n]);
    y[i] = WEIGHT(id, i % n);
}
