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

// Q4_K: 144-byte blocks of 256: d, dmin (f16), 12 bytes of 6-bit scales/mins, 128 bytes of nibbles.
fn w_q4_k(r: u32, c: u32) -> f32 {
    let blk = r * params[3] + (c / 256u) * 144u;
    let e = c % 256u;
    let chunk = e / 64u;
    let hi = (e % 64u) >= 32u;
    let l = e % 32u;
    var j = 2u * chunk;
    if (hi) { j += 1u; }
    let q = blk + 4u;
    var sc: u32;
    var m: u32;
    if (j < 4u) {
        sc = byte_at(q + j) & 63u;
        m = byte_at(q + j + 4u) & 63u;
    } else {
        sc = (byte_at(q + j + 4u) & 0xfu) | ((byte_at(q + j - 4u) >> 6u) << 4u);
        m = (byte_at(q + j + 4u) >> 4u) | ((byte_at(q + j) >> 6u) << 4u);
    }
    var nib = byte_at(blk + 16u + 32u * chunk + l);
    if (hi) { nib = nib >> 4u; } else { nib = nib & 0xfu; }
    let d1 = f16_at(blk) * f32(sc);
    let m1 = f16_at(blk + 2u) * f32(m);
    return d1 * f32(nib) - m1;
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
    return f16_at(blk + 208u) * f32(sc * q);
}
