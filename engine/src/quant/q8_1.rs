//! Q8_1: 32 elements, an f16 scale `d`, an f16 `s = d·Σq`, 32 × i8. The activation format of Q4_1
//! and Q5_1, whose minimums are applied through `s`.

use bytemuck::{Pod, Zeroable};

use super::{ActBlock, Block, round_even};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ8_1 {
    /// Scale, f16.
    pub d: [u8; 2],
    /// d · Σ qs, f16 (with d the f32 scale before its rounding to f16).
    pub s: [u8; 2],
    /// (32) quants.
    pub qs: [i8; 32],
}
const _: () = assert!(size_of::<BlockQ8_1>() == 36);

impl Block for BlockQ8_1 {
    const ELEMS: usize = 32;
}

impl ActBlock for BlockQ8_1 {
    /// ggml's x86 `quantize_row_q8_1` (AVX/AVX2): d = amax/127 stored as f16, q = round-half-even(x ·
    /// 127/amax), s = f16(d · Σq) with the f32 `d`. The reference quantizer rounds half away from
    /// zero with 1/d instead; llama.cpp's CPU matmul uses this one.
    ///
    /// `s` overflows f16 to ±inf when |d · Σq| > 65504 (e.g. 32 equal values above 2047): ggml
    /// stores the infinity too, and the Q4_1/Q5_1 dot products then come out infinite or NaN.
    fn quantize(x: &[f32], out: &mut [Self]) {
        for (block, x) in out.iter_mut().zip(x.chunks_exact(32)) {
            let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            block.d = half::f16::from_f32(d).to_le_bytes();
            let mut sum = 0i32;
            for (q, &v) in block.qs.iter_mut().zip(x) {
                *q = round_even(v * id) as i8;
                sum += i32::from(*q);
            }
            block.s = half::f16::from_f32(d * sum as f32).to_le_bytes();
        }
    }

    super::activation_variant!(Q8_1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::f16_at;

    fn quantize(x: &[f32]) -> BlockQ8_1 {
        let mut b = [BlockQ8_1::zeroed()];
        BlockQ8_1::quantize(x, &mut b);
        b[0]
    }

    #[test]
    fn hand_computed_block() {
        // amax = 127 → d = 1 exactly, id = 1: the quants are the inputs rounded half to even.
        let mut x = [0.0f32; 32];
        x[0] = 127.0;
        x[1] = -127.0;
        x[2] = 2.5; // → 2 (ties to even; the reference quantizer would give 3)
        x[3] = -2.5; // → -2
        x[4] = 3.5; // → 4
        x[5] = 0.49999997; // → 0
        x[6] = 10.0;
        let b = quantize(&x);
        assert_eq!(f16_at(b.d), 1.0);
        assert_eq!(&b.qs[..7], &[127, -127, 2, -2, 4, 0, 10]);
        assert!(b.qs[7..].iter().all(|&q| q == 0));
        assert_eq!(f16_at(b.s), 14.0);
    }

    #[test]
    fn s_uses_the_f32_scale() {
        // amax = 254.125: d = amax/127 is not an f16; s = f16(d_f32 · Σq) = 8132, while
        // f16(f16(d) · Σq) would be 8136.
        let x = [254.125f32; 32];
        let b = quantize(&x);
        assert!(b.qs.iter().all(|&q| q == 127));
        let d = 254.125f32 / 127.0;
        assert_eq!(b.d, half::f16::from_f32(d).to_le_bytes());
        assert_eq!(f16_at(b.s), 8132.0);
        assert_eq!(half::f16::from_f32(f16_at(b.d) * 4064.0).to_f32(), 8136.0);
    }

    #[test]
    fn zero_block() {
        let b = quantize(&[0.0; 32]);
        assert_eq!(bytemuck::bytes_of(&b), &[0u8; 36]);
        // -0.0 inputs: amax = 0, d = +0, quants 0 (the sign of -0.0 · 0 is lost in the i8).
        let b = quantize(&[-0.0; 32]);
        assert!(b.qs.iter().all(|&q| q == 0));
        assert_eq!(f16_at(b.d), 0.0);
    }

    #[test]
    fn s_overflows_like_ggml() {
        let b = quantize(&[4096.0; 32]);
        assert_eq!(f16_at(b.s), f32::INFINITY);
        assert!(f16_at(b.d).is_finite());
    }
}
