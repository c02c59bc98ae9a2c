// Causal attention of n_tokens new queries over n_kv cached positions (the new ones last).
// params: [n_tokens, n_head, n_head_kv, head_dim, n_kv, scale]. One invocation per (token, head);
// sm holds its probabilities [n_head, n_tokens, n_kv] (zeros where masked).
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> sm: array<f32>;

@compute @workgroup_size(64)
fn attention(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = linear_id(gid);
    let n_tokens = params[0];
    let n_head = params[1];
    let n_head_kv = params[2];
    let d = params[3];
    let n_kv = params[4];
    if (idx >= n_tokens * n_head) { return; }
    let t = idx / n_head;
    let h = idx % n_head;
    let kvh = h / (n_head / n_head_kv);
    let seen = n_kv - n_tokens + t + 1u;
    let row = (h * n_tokens + t) * n_kv;
    let qb = (t * n_head + h) * d;
    var m = -3.4e38;
    for (var j = 0u; j < seen; j++) {
        let kb = (j * n_head_kv + kvh) * d;
        var s = 0.0;
        for (var i = 0u; i < d; i++) { s += q[qb + i] * k[kb + i]; }
        s *= pf(5u);
        sm[row + j] = s;
        m = max(m, s);
    }
    var sum = 0.0;
    for (var j = 0u; j < seen; j++) {
        let e = exp(sm[row + j] - m);
        sm[row + j] = e;
        sum += e;
    }
    for (var j = 0u; j < n_kv; j++) {
        if (j < seen) { sm[row + j] = sm[row + j] / sum; } else { sm[row + j] = 0.0; }
    }
    for (var i = 0u; i < d; i++) {
        var acc = 0.0;
        for (var j = 0u; j < seen; j++) { acc += sm[row + j] * v[(j * n_head_kv + kvh) * d + i]; }
        out[qb + i] = acc;
    }
}
