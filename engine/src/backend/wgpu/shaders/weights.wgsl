// Weight access by (row, column) for each dtype, on the file's bytes as stored (binding 1, as
// u32 words; rows of params[3] bytes). `WEIGHT` is replaced by the dtype's function name.
@group(0) @binding(1) var<storage, read> w: array<u32>;

fn byte_at(off: u32) -> u32 {
    return (w[off >> 2u] >> ((off & 3u) * 8u)) & 0xffu;
}

fn i8_at(off: u32) -> i32 {
    return bitcast<i32>(byte_at(off) << 24u) >> 24u;
}

fn f16_at(off: u32) -> f32 {
    return unpack2x16float(byte_at(off) | (byte_at(off + 1u) << 8u)).x;
}

fn w_f32(r: u32, c: u32) -> f32 {
    return bitcast<f32>(w[(r * params[3] >> 2u) + c]);
}

fn w_f16(r: u32, c: u32) -> f32 {
    return f16_at(r * params[3] + 2u * c);
}

fn w_bf16(r: u32, c: u32) -> f32 {
    let off = r * params[3] + 2u * c;
    return bitcast<f32>((byte_at(off) | (byte_at(off + 1u) << 8u)) << 16u);
}

// Q8_0: blocks of 34 bytes, f16 d then 32 i8.
fn w_q8_0(r: u32, c: u32) -> f32 {
    let blk = r * params[3] + (c / 32u) * 34u;
    return f16_at(blk) * f32(i8_at(blk + 2u + c % 32u));
}

// Q4_0: 18-byte blocks of 32: d (f16), qs[16]; element j < 16 is the low nibble of qs[j],
// element j + 16 the high one.
fn w_q4_0(r: u32, c: u32) -> f32 {
    let blk = r * params[3] + (c / 32u) * 18u;
    let e = c % 32u;
    let q = (byte_at(blk + 2u + e % 16u) >> (4u * (e / 16u))) & 0xfu;
    return f32(i32(q) - 8) * f16_at(blk);
}

// Q4_1: 20-byte blocks of 32: d, m (f16), qs[16] as Q4_0; y = q d + m.
fn w_q4_1(r: u32, c: u32) -> f32 {
    let blk = r * params[3] + (c / 32u) * 20u;
    let e = c % 32u;
    let q = (byte_at(blk + 4u + e % 16u) >> (4u * (e / 16u))) & 0xfu;
    return f32(q) * f16_at(blk) + f16_at(blk + 2u);
}

// The fifth bit of element e of a Q5_0/Q5_1 block: bit e of the (unaligned, little-endian) u32 qh.
fn qh_bit(qh: u32, e: u32) -> u32 {
    return (byte_at(qh + e / 8u) >> (e % 8u)) & 1u;
}

// Q5_0: 22-byte blocks of 32: d (f16), qh (u32), qs[16] as Q4_0; y = (q5 - 16) d.
fn w_q5_0(r: u32, c: u32) -> f32 {
    let blk = r * params[3] + (c / 32u) * 22u;
    let e = c % 32u;
    let q = ((byte_at(blk + 6u + e % 16u) >> (4u * (e / 16u))) & 0xfu) | (qh_bit(blk + 2u, e) << 4u);
    return f32(i32(q) - 16) * f16_at(blk);
}

// Q5_1: 24-byte blocks of 32: d, m (f16), qh (u32), qs[16]; y = q5 d + m.
fn w_q5_1(r: u32, c: u32) -> f32 {
    let blk = r * params[3] + (c / 32u) * 24u;
    let e = c % 32u;
    let q = ((byte_at(blk + 8u + e % 16u) >> (4u * (e / 16u))) & 0xfu) | (qh_bit(blk + 4u, e) << 4u);
    return f32(q) * f16_at(blk) + f16_at(blk + 2u);
}

// APR-q4: 18-byte blocks of 32: d (f16), qs[16]; element i is in byte i / 2, even i in the low
// nibble, odd i in the high one (interleaved, unlike Q4_0).
fn w_apr_q4(r: u32, c: u32) -> f32 {
    let blk = r * params[3] + (c / 32u) * 18u;
    let e = c % 32u;
    let q = (byte_at(blk + 2u + e / 2u) >> (4u * (e % 2u))) & 0xfu;
    return f32(i32(q) - 8) * f16_at(blk);
}

// APR-q8: one i8 per element; the tensor's one f32 scale is not in the rows but in params[7].
fn w_apr_q8(r: u32, c: u32) -> f32 {
    return f32(i8_at(r * params[3] + c)) * pf(7u);
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block from its 12 bytes at q.
fn scale_min_k4(q: u32, j: u32) -> vec2<u32> {
    if (j < 4u) {
        return vec2<u32>(byte_at(q + j) & 63u, byte_at(q + j + 4u) & 63u);
    }
    return vec2<u32>(
        (byte_at(q + j + 4u) & 0xfu) | ((byte_at(q + j - 4u) >> 6u) << 4u),
        (byte_at(q + j + 4u) >> 4u) | ((byte_at(q + j) >> 6u) << 4u),
    );
}

// Q4_K: 144-byte blocks of 256: d, dmin (f16), 12 bytes of 6-bit scales/mins, 128 bytes of nibbles.
// Sub-block j = e / 32 reads the low (j even) or high (j odd) nibbles of qs[32 (j / 2) ..].
fn w_q4_k(r: u32, c: u32) -> f32 {
    let blk = r * params[3] + (c / 256u) * 144u;
    let e = c % 256u;
    let j = e / 32u;
    let sm = scale_min_k4(blk + 4u, j);
    let nib = (byte_at(blk + 16u + 32u * (j / 2u) + e % 32u) >> (4u * (j % 2u))) & 0xfu;
    let d1 = f16_at(blk) * f32(sm.x);
    let m1 = f16_at(blk + 2u) * f32(sm.y);
    return d1 * f32(nib) - m1;
}

// Q5_K: 176-byte blocks of 256: d, dmin (f16), scales[12] (as Q4_K), qh[32], qs[128]. The fifth
// bit of element l of sub-block j is bit j of qh[l].
fn w_q5_k(r: u32, c: u32) -> f32 {
    let blk = r * params[3] + (c / 256u) * 176u;
    let e = c % 256u;
    let j = e / 32u;
    let l = e % 32u;
    let sm = scale_min_k4(blk + 4u, j);
    let lo = (byte_at(blk + 48u + 32u * (j / 2u) + l) >> (4u * (j % 2u))) & 0xfu;
    let q = lo | (((byte_at(blk + 16u + l) >> j) & 1u) << 4u);
    let dl = f16_at(blk) * f32(sm.x);
    let ml = f16_at(blk + 2u) * f32(sm.y);
    return dl * f32(q) - ml;
}

// Q2_K: 84-byte blocks of 256: scales[16] (low nibble scale, high nibble min, per 16 elements),
// qs[64] (2-bit), d, dmin (f16) last. Group s = e / 16 reads qs[32 (s / 8) + 16 (s % 2) ..] at
// shift 2 ((s % 8) / 2).
fn w_q2_k(r: u32, c: u32) -> f32 {
    let blk = r * params[3] + (c / 256u) * 84u;
    let e = c % 256u;
    let s = e / 16u;
    let sc = byte_at(blk + s);
    let q = (byte_at(blk + 16u + 32u * (s / 8u) + 16u * (s % 2u) + e % 16u) >> (2u * ((s % 8u) / 2u))) & 3u;
    let dl = f16_at(blk + 80u) * f32(sc & 0xfu);
    let ml = f16_at(blk + 82u) * f32(sc >> 4u);
    return dl * f32(q) - ml;
}

// Q3_K: 110-byte blocks of 256: hmask[32], qs[64] (low 2 bits), scales[12] (16 6-bit scales,
// offset 32), d (f16). Group s = e / 16 reads qs as Q2_K does and hmask[16 (s % 2) ..] at bit
// s / 2; a clear mask bit subtracts 4.
fn w_q3_k(r: u32, c: u32) -> f32 {
    let blk = r * params[3] + (c / 256u) * 110u;
    let e = c % 256u;
    let s = e / 16u;
    let l = e % 16u;
    let sq = blk + 96u;
    var lo: u32;
    if (s < 8u) { lo = byte_at(sq + s) & 0xfu; } else { lo = byte_at(sq + s - 8u) >> 4u; }
    let hi = (byte_at(sq + 8u + s % 4u) >> (2u * (s / 4u))) & 3u;
    let sc = i32(lo | (hi << 4u)) - 32;
    let q = (byte_at(blk + 32u + 32u * (s / 8u) + 16u * (s % 2u) + l) >> (2u * ((s % 8u) / 2u))) & 3u;
    let h = byte_at(blk + 16u * (s % 2u) + l) & (1u << (s / 2u));
    let q3 = i32(q) - select(4, 0, h != 0u);
    let dl = f16_at(blk + 108u) * f32(sc);
    return dl * f32(q3);
}

// Q6_K: 210-byte blocks of 256: ql[128], qh[64], scales[16] (i8), d (f16).
fn w_q6_k(r: u32, c: u32) -> f32 {
    let blk = r * params[3] + (c / 256u) * 210u;
    let e = c % 256u;
    let h = e / 128u;
    let quarter = (e % 128u) / 32u;
    let l = e % 32u;
    let ql = blk + 64u * h;
    let qh = blk + 128u + 32u * h;
    var lo: u32;
    switch quarter {
        case 0u: { lo = byte_at(ql + l) & 0xfu; }
        case 1u: { lo = byte_at(ql + l + 32u) & 0xfu; }
        case 2u: { lo = byte_at(ql + l) >> 4u; }
        default: { lo = byte_at(ql + l + 32u) >> 4u; }
    }
    let hb = (byte_at(qh + l) >> (2u * quarter)) & 3u;
    let q = i32(lo | (hb << 4u)) - 32;
    let sc = i8_at(blk + 192u + 8u * h + l / 16u + 2u * quarter);
    // d · sc · q left to right in f32, as the CPU (and ggml) do: the same value as d · (sc q),
    // but a zero quant keeps the sign of d · sc.
    return f16_at(blk + 208u) * f32(sc) * f32(q);
}
