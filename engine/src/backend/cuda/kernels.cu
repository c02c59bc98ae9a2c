// The CUDA backend's kernels: a port of the WGPU backend's WGSL (engine/src/backend/wgpu/shaders)
// with the same algorithms, the same f32 operations in the same order and one thread per output
// element, row or group as there. Compiled at run time by NVRTC (see nvrtc.rs) with
// `--fmad=false`, so no multiply-add is contracted into an FMA: a weight decodes with exactly the
// float operations of its CPU dequantizer, and every sum rounds as the WGSL's does.
//
// Launches are 1-D: thread i = blockIdx.x * blockDim.x + threadIdx.x, bounds-checked against the
// kernel's element count. Scalars are kernel arguments (the WGSL's params words); ids are u32.
// No headers: only what NVRTC provides built in.

// ---------------------------------------------------------------------------------------------
// Shared helpers.

#define THREAD_ID (blockIdx.x * blockDim.x + threadIdx.x)

// IEEE half to float, exact (subnormals normalized; inf and NaN, payload kept, stay so).
__device__ __forceinline__ float f16_to_f32(unsigned short h) {
    unsigned sign = ((unsigned)h & 0x8000u) << 16;
    unsigned exp = ((unsigned)h >> 10) & 0x1fu;
    unsigned man = (unsigned)h & 0x3ffu;
    unsigned bits;
    if (exp == 0x1fu) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0u) {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0u) {
        bits = sign;
    } else {
        // man · 2^-24: shift the leading one up to the hidden bit, one exponent step per shift.
        unsigned e = 113u;
        while ((man & 0x400u) == 0u) {
            man <<= 1;
            e -= 1u;
        }
        bits = sign | (e << 23) | ((man & 0x3ffu) << 13);
    }
    return __uint_as_float(bits);
}

__device__ __forceinline__ unsigned byte_at(const unsigned char* p) {
    return (unsigned)p[0];
}

__device__ __forceinline__ int i8_at(const unsigned char* p) {
    return (int)(signed char)p[0];
}

__device__ __forceinline__ float f16_at(const unsigned char* p) {
    return f16_to_f32((unsigned short)((unsigned)p[0] | ((unsigned)p[1] << 8)));
}

// Row r of a weight matrix stored as rows of row_bytes bytes (64-bit offset: a whole matrix may
// exceed 4 GiB even where one row never does).
__device__ __forceinline__ const unsigned char* row_at(const unsigned char* w, unsigned row_bytes, unsigned r) {
    return w + (unsigned long long)r * (unsigned long long)row_bytes;
}

// ---------------------------------------------------------------------------------------------
// elementwise.wgsl: add / mul: y = a ∘ b; add_rows: b is one row added to every row of a;
// sigmoid_gate: row r of x times σ(g[r]).

extern "C" __global__ void add(const float* a, const float* b, float* y, unsigned n) {
    unsigned i = THREAD_ID;
    if (i >= n) return;
    y[i] = a[i] + b[i];
}

extern "C" __global__ void mul(const float* a, const float* b, float* y, unsigned n) {
    unsigned i = THREAD_ID;
    if (i >= n) return;
    y[i] = a[i] * b[i];
}

extern "C" __global__ void add_rows(const float* a, const float* b, float* y, unsigned n, unsigned cols) {
    unsigned i = THREAD_ID;
    if (i >= n) return;
    y[i] = a[i] + b[i % cols];
}

extern "C" __global__ void sigmoid_gate(const float* x, const float* g, float* y, unsigned n, unsigned cols) {
    unsigned i = THREAD_ID;
    if (i >= n) return;
    y[i] = x[i] * (1.0f / (1.0f + expf(-g[i / cols])));
}

// ---------------------------------------------------------------------------------------------
// unary.wgsl: one input, one output.

extern "C" __global__ void silu(const float* x, float* y, unsigned n) {
    unsigned i = THREAD_ID;
    if (i >= n) return;
    float v = x[i];
    y[i] = v / (1.0f + expf(-v));
}

extern "C" __global__ void gelu_tanh(const float* x, float* y, unsigned n) {
    unsigned i = THREAD_ID;
    if (i >= n) return;
    float v = x[i];
    y[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}

// CUDA's erff (max error 2 ulp) where the WGSL carries its own Abramowitz & Stegun approximation.
extern "C" __global__ void gelu_erf(const float* x, float* y, unsigned n) {
    unsigned i = THREAD_ID;
    if (i >= n) return;
    float v = x[i];
    y[i] = 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
}

// Columns [col_offset, col_offset + dst_cols) of each row of src_cols: n = rows * dst_cols.
extern "C" __global__ void copy_cols(const float* x, float* y, unsigned n, unsigned src_cols, unsigned dst_cols,
                                     unsigned col_offset) {
    unsigned i = THREAD_ID;
    if (i >= n) return;
    unsigned r = i / dst_cols;
    unsigned c = i % dst_cols;
    y[i] = x[r * src_cols + col_offset + c];
}

// Softmax of each row (x − max, exp, f32 sum): one thread per row.
extern "C" __global__ void soft_max(const float* x, float* y, unsigned rows, unsigned cols) {
    unsigned r = THREAD_ID;
    if (r >= rows || cols == 0u) return;
    unsigned base = r * cols;
    float m = x[base];
    for (unsigned c = 1u; c < cols; c++) m = fmaxf(m, x[base + c]);
    float s = 0.0f;
    for (unsigned c = 0u; c < cols; c++) s += expf(x[base + c] - m);
    for (unsigned c = 0u; c < cols; c++) y[base + c] = expf(x[base + c] - m) / s;
}

// Each row divided by its sum: one thread per row.
extern "C" __global__ void normalize_rows(const float* x, float* y, unsigned rows, unsigned cols) {
    unsigned r = THREAD_ID;
    if (r >= rows) return;
    unsigned base = r * cols;
    float s = 0.0f;
    for (unsigned c = 0u; c < cols; c++) s += x[base + c];
    for (unsigned c = 0u; c < cols; c++) y[base + c] = x[base + c] / s;
}

// ---------------------------------------------------------------------------------------------
// norm.wgsl: one thread per group of g values (a row, or a head).

extern "C" __global__ void rms_norm(const float* x, const float* w, float* y, unsigned groups, unsigned g, float eps) {
    unsigned gi = THREAD_ID;
    if (gi >= groups) return;
    unsigned base = gi * g;
    float ss = 0.0f;
    for (unsigned i = 0u; i < g; i++) ss += x[base + i] * x[base + i];
    float scale = 1.0f / sqrtf(ss / (float)g + eps);
    for (unsigned i = 0u; i < g; i++) y[base + i] = x[base + i] * scale * w[i];
}

extern "C" __global__ void layer_norm(const float* x, const float* w, const float* b, float* y, unsigned groups,
                                      unsigned g, float eps) {
    unsigned gi = THREAD_ID;
    if (gi >= groups) return;
    unsigned base = gi * g;
    float s = 0.0f;
    for (unsigned i = 0u; i < g; i++) s += x[base + i];
    float mean = s / (float)g;
    float v = 0.0f;
    for (unsigned i = 0u; i < g; i++) {
        float d = x[base + i] - mean;
        v += d * d;
    }
    float scale = 1.0f / sqrtf(v / (float)g + eps);
    for (unsigned i = 0u; i < g; i++) y[base + i] = (x[base + i] - mean) * scale * w[i] + b[i];
}

// ---------------------------------------------------------------------------------------------
// rope.wgsl: n = n_tokens * heads * (n_rot / 2) rotations in place; cs holds (cos, sin) per
// (token, i < n_rot / 2), computed on the host in f64. neox == 1: pairs (i, i + half), else
// (2i, 2i + 1).

extern "C" __global__ void rope(float* x, const float* cs, unsigned n, unsigned cols, unsigned head_dim, unsigned n_rot,
                                unsigned neox) {
    unsigned idx = THREAD_ID;
    if (idx >= n) return;
    unsigned half = n_rot / 2u;
    unsigned heads = cols / head_dim;
    unsigned i = idx % half;
    unsigned h = (idx / half) % heads;
    unsigned t = idx / (half * heads);
    unsigned a = 2u * i;
    unsigned b = 2u * i + 1u;
    if (neox == 1u) {
        a = i;
        b = i + half;
    }
    unsigned base = t * cols + h * head_dim;
    float c = cs[(t * half + i) * 2u];
    float s = cs[(t * half + i) * 2u + 1u];
    float x0 = x[base + a];
    float x1 = x[base + b];
    x[base + a] = x0 * c - x1 * s;
    x[base + b] = x0 * s + x1 * c;
}

// ---------------------------------------------------------------------------------------------
// weights.wgsl: weight access by (row, column) for each dtype, on the file's bytes as stored
// (rows of row_bytes bytes). scale is APR-q8's per-tensor scale, ignored by every other dtype.

__device__ __forceinline__ float w_f32(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    const unsigned char* p = row_at(w, row_bytes, r) + 4u * c;
    unsigned bits = (unsigned)p[0] | ((unsigned)p[1] << 8) | ((unsigned)p[2] << 16) | ((unsigned)p[3] << 24);
    return __uint_as_float(bits);
}

__device__ __forceinline__ float w_f16(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    return f16_at(row_at(w, row_bytes, r) + 2u * c);
}

__device__ __forceinline__ float w_bf16(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    const unsigned char* p = row_at(w, row_bytes, r) + 2u * c;
    return __uint_as_float(((unsigned)p[0] | ((unsigned)p[1] << 8)) << 16);
}

// Q8_0: blocks of 34 bytes, f16 d then 32 i8.
__device__ __forceinline__ float w_q8_0(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    const unsigned char* blk = row_at(w, row_bytes, r) + (c / 32u) * 34u;
    return f16_at(blk) * (float)i8_at(blk + 2u + c % 32u);
}

// Q4_0: 18-byte blocks of 32: d (f16), qs[16]; element j < 16 is the low nibble of qs[j],
// element j + 16 the high one.
__device__ __forceinline__ float w_q4_0(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    const unsigned char* blk = row_at(w, row_bytes, r) + (c / 32u) * 18u;
    unsigned e = c % 32u;
    unsigned q = (byte_at(blk + 2u + e % 16u) >> (4u * (e / 16u))) & 0xfu;
    return (float)((int)q - 8) * f16_at(blk);
}

// Q4_1: 20-byte blocks of 32: d, m (f16), qs[16] as Q4_0; y = q d + m.
__device__ __forceinline__ float w_q4_1(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    const unsigned char* blk = row_at(w, row_bytes, r) + (c / 32u) * 20u;
    unsigned e = c % 32u;
    unsigned q = (byte_at(blk + 4u + e % 16u) >> (4u * (e / 16u))) & 0xfu;
    return (float)q * f16_at(blk) + f16_at(blk + 2u);
}

// The fifth bit of element e of a Q5_0/Q5_1 block: bit e of the (unaligned, little-endian) u32 qh.
__device__ __forceinline__ unsigned qh_bit(const unsigned char* qh, unsigned e) {
    return (byte_at(qh + e / 8u) >> (e % 8u)) & 1u;
}

// Q5_0: 22-byte blocks of 32: d (f16), qh (u32), qs[16] as Q4_0; y = (q5 - 16) d.
__device__ __forceinline__ float w_q5_0(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    const unsigned char* blk = row_at(w, row_bytes, r) + (c / 32u) * 22u;
    unsigned e = c % 32u;
    unsigned q = ((byte_at(blk + 6u + e % 16u) >> (4u * (e / 16u))) & 0xfu) | (qh_bit(blk + 2u, e) << 4);
    return (float)((int)q - 16) * f16_at(blk);
}

// Q5_1: 24-byte blocks of 32: d, m (f16), qh (u32), qs[16]; y = q5 d + m.
__device__ __forceinline__ float w_q5_1(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    const unsigned char* blk = row_at(w, row_bytes, r) + (c / 32u) * 24u;
    unsigned e = c % 32u;
    unsigned q = ((byte_at(blk + 8u + e % 16u) >> (4u * (e / 16u))) & 0xfu) | (qh_bit(blk + 4u, e) << 4);
    return (float)q * f16_at(blk) + f16_at(blk + 2u);
}

// APR-q4: 18-byte blocks of 32: d (f16), qs[16]; element i is in byte i / 2, even i in the low
// nibble, odd i in the high one (interleaved, unlike Q4_0).
__device__ __forceinline__ float w_apr_q4(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    const unsigned char* blk = row_at(w, row_bytes, r) + (c / 32u) * 18u;
    unsigned e = c % 32u;
    unsigned q = (byte_at(blk + 2u + e / 2u) >> (4u * (e % 2u))) & 0xfu;
    return (float)((int)q - 8) * f16_at(blk);
}

// APR-q8: one i8 per element; the tensor's one f32 scale is not in the rows but an argument.
__device__ __forceinline__ float w_apr_q8(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    return (float)i8_at(row_at(w, row_bytes, r) + c) * scale;
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block from its 12 bytes at q.
__device__ __forceinline__ void scale_min_k4(const unsigned char* q, unsigned j, unsigned* sc, unsigned* m) {
    if (j < 4u) {
        *sc = byte_at(q + j) & 63u;
        *m = byte_at(q + j + 4u) & 63u;
    } else {
        *sc = (byte_at(q + j + 4u) & 0xfu) | ((byte_at(q + j - 4u) >> 6) << 4);
        *m = (byte_at(q + j + 4u) >> 4) | ((byte_at(q + j) >> 6) << 4);
    }
}

// Q4_K: 144-byte blocks of 256: d, dmin (f16), 12 bytes of 6-bit scales/mins, 128 bytes of nibbles.
// Sub-block j = e / 32 reads the low (j even) or high (j odd) nibbles of qs[32 (j / 2) ..].
__device__ __forceinline__ float w_q4_k(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    const unsigned char* blk = row_at(w, row_bytes, r) + (c / 256u) * 144u;
    unsigned e = c % 256u;
    unsigned j = e / 32u;
    unsigned sc, mn;
    scale_min_k4(blk + 4u, j, &sc, &mn);
    unsigned nib = (byte_at(blk + 16u + 32u * (j / 2u) + e % 32u) >> (4u * (j % 2u))) & 0xfu;
    float d1 = f16_at(blk) * (float)sc;
    float m1 = f16_at(blk + 2u) * (float)mn;
    return d1 * (float)nib - m1;
}

// Q5_K: 176-byte blocks of 256: d, dmin (f16), scales[12] (as Q4_K), qh[32], qs[128]. The fifth
// bit of element l of sub-block j is bit j of qh[l].
__device__ __forceinline__ float w_q5_k(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    const unsigned char* blk = row_at(w, row_bytes, r) + (c / 256u) * 176u;
    unsigned e = c % 256u;
    unsigned j = e / 32u;
    unsigned l = e % 32u;
    unsigned sc, mn;
    scale_min_k4(blk + 4u, j, &sc, &mn);
    unsigned lo = (byte_at(blk + 48u + 32u * (j / 2u) + l) >> (4u * (j % 2u))) & 0xfu;
    unsigned q = lo | (((byte_at(blk + 16u + l) >> j) & 1u) << 4);
    float dl = f16_at(blk) * (float)sc;
    float ml = f16_at(blk + 2u) * (float)mn;
    return dl * (float)q - ml;
}

// Q2_K: 84-byte blocks of 256: scales[16] (low nibble scale, high nibble min, per 16 elements),
// qs[64] (2-bit), d, dmin (f16) last. Group s = e / 16 reads qs[32 (s / 8) + 16 (s % 2) ..] at
// shift 2 ((s % 8) / 2).
__device__ __forceinline__ float w_q2_k(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    const unsigned char* blk = row_at(w, row_bytes, r) + (c / 256u) * 84u;
    unsigned e = c % 256u;
    unsigned s = e / 16u;
    unsigned sc = byte_at(blk + s);
    unsigned q = (byte_at(blk + 16u + 32u * (s / 8u) + 16u * (s % 2u) + e % 16u) >> (2u * ((s % 8u) / 2u))) & 3u;
    float dl = f16_at(blk + 80u) * (float)(sc & 0xfu);
    float ml = f16_at(blk + 82u) * (float)(sc >> 4);
    return dl * (float)q - ml;
}

// Q3_K: 110-byte blocks of 256: hmask[32], qs[64] (low 2 bits), scales[12] (16 6-bit scales,
// offset 32), d (f16). Group s = e / 16 reads qs as Q2_K does and hmask[16 (s % 2) ..] at bit
// s / 2; a clear mask bit subtracts 4.
__device__ __forceinline__ float w_q3_k(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    const unsigned char* blk = row_at(w, row_bytes, r) + (c / 256u) * 110u;
    unsigned e = c % 256u;
    unsigned s = e / 16u;
    unsigned l = e % 16u;
    const unsigned char* sq = blk + 96u;
    unsigned lo;
    if (s < 8u) {
        lo = byte_at(sq + s) & 0xfu;
    } else {
        lo = byte_at(sq + s - 8u) >> 4;
    }
    unsigned hi = (byte_at(sq + 8u + s % 4u) >> (2u * (s / 4u))) & 3u;
    int sc = (int)(lo | (hi << 4)) - 32;
    unsigned q = (byte_at(blk + 32u + 32u * (s / 8u) + 16u * (s % 2u) + l) >> (2u * ((s % 8u) / 2u))) & 3u;
    unsigned h = byte_at(blk + 16u * (s % 2u) + l) & (1u << (s / 2u));
    int q3 = (int)q - (h != 0u ? 0 : 4);
    float dl = f16_at(blk + 108u) * (float)sc;
    return dl * (float)q3;
}

// Q6_K: 210-byte blocks of 256: ql[128], qh[64], scales[16] (i8), d (f16).
__device__ __forceinline__ float w_q6_k(const unsigned char* w, unsigned row_bytes, unsigned r, unsigned c, float scale) {
    const unsigned char* blk = row_at(w, row_bytes, r) + (c / 256u) * 210u;
    unsigned e = c % 256u;
    unsigned h = e / 128u;
    unsigned quarter = (e % 128u) / 32u;
    unsigned l = e % 32u;
    const unsigned char* ql = blk + 64u * h;
    const unsigned char* qh = blk + 128u + 32u * h;
    unsigned lo;
    switch (quarter) {
        case 0u: lo = byte_at(ql + l) & 0xfu; break;
        case 1u: lo = byte_at(ql + l + 32u) & 0xfu; break;
        case 2u: lo = byte_at(ql + l) >> 4; break;
        default: lo = byte_at(ql + l + 32u) >> 4; break;
    }
    unsigned hb = (byte_at(qh + l) >> (2u * quarter)) & 3u;
    int q = (int)(lo | (hb << 4)) - 32;
    int sc = i8_at(blk + 192u + 8u * h + l / 16u + 2u * quarter);
    // d · sc · q left to right in f32, as the CPU (and ggml) do: the same value as d · (sc q),
    // but a zero quant keeps the sign of d · sc.
    return f16_at(blk + 208u) * (float)sc * (float)q;
}

// ---------------------------------------------------------------------------------------------
// matmul.wgsl, one pair of kernels per weight dtype D.
//
// matmul_D: y = x · Wᵀ for one chunk of W's rows (w points at the chunk's first row, whose
// outputs land at column first_row): one thread per (token, row of the chunk). Transposed (HF
// Conv1D [in, out] storage, one chunk): y = x · W, one thread per (token, output).
// get_rows_D: rows of an embedding table by id: one thread per output value.

#define WEIGHT_KERNELS(D)                                                                                          \
    extern "C" __global__ void matmul_##D(const unsigned char* w, const float* x, float* y, unsigned n_tokens,     \
                                          unsigned n_in, unsigned n_out, unsigned row_bytes, unsigned first_row,   \
                                          unsigned chunk_rows, unsigned transposed, float scale) {                 \
        unsigned i = THREAD_ID;                                                                                    \
        unsigned rows = transposed == 1u ? n_out : chunk_rows;                                                     \
        if (i >= n_tokens * rows) return;                                                                          \
        unsigned t = i / rows;                                                                                     \
        unsigned o = i % rows;                                                                                     \
        float acc = 0.0f;                                                                                          \
        if (transposed == 1u) {                                                                                    \
            for (unsigned k = 0u; k < n_in; k++) acc += x[t * n_in + k] * w_##D(w, row_bytes, k, o, scale);        \
            y[t * n_out + o] = acc;                                                                                \
        } else {                                                                                                   \
            for (unsigned k = 0u; k < n_in; k++) acc += x[t * n_in + k] * w_##D(w, row_bytes, o, k, scale);        \
            y[t * n_out + first_row + o] = acc;                                                                    \
        }                                                                                                          \
    }                                                                                                              \
    extern "C" __global__ void get_rows_##D(const unsigned char* w, const unsigned* ids, float* y, unsigned n_ids,  \
                                            unsigned n_cols, unsigned row_bytes, float scale) {                    \
        unsigned i = THREAD_ID;                                                                                    \
        if (i >= n_ids * n_cols) return;                                                                           \
        y[i] = w_##D(w, row_bytes, ids[i / n_cols], i % n_cols, scale);                                            \
    }

WEIGHT_KERNELS(f32)
WEIGHT_KERNELS(f16)
WEIGHT_KERNELS(bf16)
WEIGHT_KERNELS(q8_0)
WEIGHT_KERNELS(q4_0)
WEIGHT_KERNELS(q4_1)
WEIGHT_KERNELS(q5_0)
WEIGHT_KERNELS(q5_1)
WEIGHT_KERNELS(q2_k)
WEIGHT_KERNELS(q3_k)
WEIGHT_KERNELS(q4_k)
WEIGHT_KERNELS(q5_k)
WEIGHT_KERNELS(q6_k)
WEIGHT_KERNELS(apr_q4)
WEIGHT_KERNELS(apr_q8)

// ---------------------------------------------------------------------------------------------
// attention.wgsl: causal attention of n_tokens new queries over n_kv cached positions (the new
// ones last). One thread per (token, head); sm holds its probabilities [n_head, n_tokens, n_kv]
// (zeros where masked).

extern "C" __global__ void attention(const float* q, const float* k, const float* v, float* out, float* sm,
                                     unsigned n_tokens, unsigned n_head, unsigned n_head_kv, unsigned head_dim,
                                     unsigned n_kv, float scale) {
    unsigned idx = THREAD_ID;
    unsigned d = head_dim;
    if (idx >= n_tokens * n_head) return;
    unsigned t = idx / n_head;
    unsigned h = idx % n_head;
    unsigned kvh = h / (n_head / n_head_kv);
    unsigned seen = n_kv - n_tokens + t + 1u;
    unsigned row = (h * n_tokens + t) * n_kv;
    unsigned qb = (t * n_head + h) * d;
    float m = -3.4e38f;
    for (unsigned j = 0u; j < seen; j++) {
        unsigned kb = (j * n_head_kv + kvh) * d;
        float s = 0.0f;
        for (unsigned i = 0u; i < d; i++) s += q[qb + i] * k[kb + i];
        s *= scale;
        sm[row + j] = s;
        m = fmaxf(m, s);
    }
    float sum = 0.0f;
    for (unsigned j = 0u; j < seen; j++) {
        float e = expf(sm[row + j] - m);
        sm[row + j] = e;
        sum += e;
    }
    for (unsigned j = 0u; j < n_kv; j++) {
        if (j < seen) {
            sm[row + j] = sm[row + j] / sum;
        } else {
            sm[row + j] = 0.0f;
        }
    }
    for (unsigned i = 0u; i < d; i++) {
        float acc = 0.0f;
        for (unsigned j = 0u; j < seen; j++) acc += sm[row + j] * v[(j * n_head_kv + kvh) * d + i];
        out[qb + i] = acc;
    }
}

// ---------------------------------------------------------------------------------------------
// gather.wgsl: row and column gathers of the MoE FFN.

// y[t, j] = x[t, ids[t·k + j]] for rows × k outputs.
extern "C" __global__ void take_cols(const float* x, const unsigned* ids, float* y, unsigned rows, unsigned cols,
                                     unsigned k) {
    unsigned i = THREAD_ID;
    if (i >= rows * k) return;
    unsigned t = i / k;
    y[i] = x[t * cols + ids[i]];
}

// y[r] = x[ids[r]] for n_out rows.
extern "C" __global__ void take_rows(const float* x, const unsigned* ids, float* y, unsigned n_out, unsigned cols) {
    unsigned i = THREAD_ID;
    if (i >= n_out * cols) return;
    y[i] = x[ids[i / cols] * cols + i % cols];
}

// y[ids[r]] = x[r] for n_src rows (an expert's output rows into their slots).
extern "C" __global__ void put_rows(const float* x, const unsigned* ids, float* y, unsigned n_src, unsigned cols) {
    unsigned i = THREAD_ID;
    if (i >= n_src * cols) return;
    y[ids[i / cols] * cols + i % cols] = x[i];
}

// y[t] = Σ_j w[t·k + j] · slotted[t·k + j], in slot order.
extern "C" __global__ void moe_sum(const float* slotted, const float* w, float* y, unsigned n_tokens, unsigned cols,
                                   unsigned k) {
    unsigned i = THREAD_ID;
    if (i >= n_tokens * cols) return;
    unsigned t = i / cols;
    unsigned c = i % cols;
    float acc = 0.0f;
    for (unsigned j = 0u; j < k; j++) acc += slotted[(t * k + j) * cols + c] * w[t * k + j];
    y[i] = acc;
}
