//! APR-q4 (APR v2's own 4-bit format): 32 elements, an f16 scale and 16 bytes of nibbles. Element i
//! is in byte i/2, even i in the LOW nibble, odd i in the high one — interleaved pairs, not Q4_0's
//! halves. Value = (nibble − 8)·scale. Activations are Q8_0, and the dot is Q4_0's.
//!
//! The writer (golden/tools/apr_write.py) stores scale = f16(max_abs/7) (1.0 for an all-zero
//! block) and nibble = clamp(round_half_away(x / scale) + 8, 0, 15) with the stored scale.

use bytemuck::{Pod, Zeroable};

use super::{Block, BlockQ8_0, Isa, WeightBlock, f16_at};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockAprQ4 {
    /// Scale, f16.
    pub d: [u8; 2],
    /// (32) 4-bit quants: element i in byte i/2, the low nibble for even i, the high for odd i.
    pub qs: [u8; 16],
}
const _: () = assert!(size_of::<BlockAprQ4>() == 18);

impl Block for BlockAprQ4 {
    const ELEMS: usize = 32;
}

impl WeightBlock for BlockAprQ4 {
    type Act = BlockQ8_0;

    /// y = (q − 8)·d with the integer converted to f32 first — what apr_write.py's
    /// `dequantize_apr_q4` computes (`(q.astype(f32) − 8) · d`, where q − 8 is exact).
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_at(self.d);
        for (&q, y) in self.qs.iter().zip(out[..32].chunks_exact_mut(2)) {
            y[0] = (i32::from(q & 0xF) - 8) as f32 * d;
            y[1] = (i32::from(q >> 4) - 8) as f32 * d;
        }
    }

    /// As ggml's Q4_0 dot (`ggml_vec_dot_q4_0_q8_0_generic`) with APR's nibble order: Σ(q − 8)·q8
    /// per block in integers, then `sumi · d_w · d_a` left to right.
    fn vec_dot(w: &[Self], a: &[BlockQ8_0]) -> f32 {
        let mut sum = 0.0f32;
        for (x, y) in w.iter().zip(a) {
            let mut sumi = 0i32;
            for (&q, p) in x.qs.iter().zip(y.qs.chunks_exact(2)) {
                sumi += (i32::from(q & 0xF) - 8) * i32::from(p[0]) + (i32::from(q >> 4) - 8) * i32::from(p[1]);
            }
            sum += sumi as f32 * f16_at(x.d) * f16_at(y.d);
        }
        sum
    }

    fn vec_dot_isa(isa: Isa, w: &[Self], a: &[Self::Act]) -> f32 {
        match isa {
            // SAFETY: `isa` is only ever a level the CPU was detected to support; F16C (on every
            // AVX2 CPU, but not part of `Isa`) is checked.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni if super::x86::has_f16c() => unsafe { super::x86::vec_dot_apr_q4_vnni(w, a) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512Vnni if super::x86::has_f16c() => unsafe { super::x86::vec_dot_apr_q4_avx2(w, a) },
            _ => Self::vec_dot(w, a),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::testing::blocks32::*;
    use super::*;

    /// apr_write.py's `quantize_apr_q4`, ported: per 32 elements (zero-padded), d = f16(max_abs/7)
    /// (1.0 for a zero block), q = clamp(round_half_away(x / d) + 8, 0, 15), nibble 8 when d
    /// underflowed to 0.
    fn quantize_apr_q4(x: &[f32]) -> Vec<BlockAprQ4> {
        x.chunks(32)
            .map(|c| {
                let mut v = [0.0f32; 32];
                v[..c.len()].copy_from_slice(c);
                let max_abs = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                let d16 = half::f16::from_f32(if max_abs > 0.0 { max_abs / 7.0 } else { 1.0 });
                assert!(d16.is_finite());
                let d = d16.to_f32();
                let q: [u8; 32] = v.map(|x| if d != 0.0 { ((x / d).round() + 8.0).clamp(0.0, 15.0) as u8 } else { 8 });
                BlockAprQ4 { d: d16.to_le_bytes(), qs: std::array::from_fn(|i| q[2 * i] | (q[2 * i + 1] << 4)) }
            })
            .collect()
    }

    fn dequantize(blocks: &[BlockAprQ4]) -> Vec<f32> {
        let mut y = vec![0.0f32; 32 * blocks.len()];
        for (b, o) in blocks.iter().zip(y.chunks_exact_mut(32)) {
            b.dequantize(o);
        }
        y
    }

    #[test]
    fn hand_computed_block() {
        // Bytes 0x10 0x32 0x54 …: element i holds nibble i % 16, in byte i/2, even i low.
        let qs: [u8; 16] = std::array::from_fn(|b| ((2 * b) % 16) as u8 | ((((2 * b + 1) % 16) as u8) << 4));
        assert_eq!(&qs[..3], &[0x10, 0x32, 0x54]);
        let b = BlockAprQ4 { d: half::f16::from_f32(0.5).to_le_bytes(), qs };
        let mut y = [0.0f32; 32];
        b.dequantize(&mut y);
        for (i, &v) in y.iter().enumerate() {
            assert_eq!(v, ((i % 16) as f32 - 8.0) * 0.5, "element {i}");
        }
        // The same bytes read as Q4_0 would put nibble 1 (byte 0's high nibble) at element 16.
        assert_eq!(y[1], -3.5);
    }

    #[test]
    fn hand_computed_dot() {
        // Byte 0 = 0xF0: element 0 = 0 − 8, element 1 = 15 − 8; every other element 0 (0x88).
        let mut qs = [0x88u8; 16];
        qs[0] = 0xF0;
        let w = BlockAprQ4 { d: half::f16::from_f32(0.25).to_le_bytes(), qs };
        let mut a = BlockQ8_0 { d: half::f16::from_f32(2.0).to_le_bytes(), qs: [5; 32] };
        a.qs[0] = 3;
        a.qs[1] = -4;
        // sumi = −8·3 + 7·−4 = −52; −52 · 0.25 · 2 = −26
        assert_eq!(BlockAprQ4::vec_dot(&[w], &[a]), -26.0);
    }

    #[test]
    fn writer_semantics() {
        // apr_write.py's self-test: d = 1.0 exactly; 7 → 15, −7 → 1, ±2.5 → ±3 (half away).
        let mut t = [0.0f32; 32];
        t[..4].copy_from_slice(&[7.0, -7.0, 2.5, -2.5]);
        let b = quantize_apr_q4(&t);
        assert_eq!(f16_at(b[0].d), 1.0);
        assert_eq!(b[0].qs[0], 15 | (1 << 4));
        assert_eq!(b[0].qs[1], (8 + 3) | ((8 - 3) << 4));
        let y = dequantize(&b);
        assert_eq!(&y[..4], &[7.0, -7.0, 3.0, -3.0]);
        // An all-zero block: scale 1.0, every nibble 8, every value 0.
        let b = quantize_apr_q4(&[0.0; 32]);
        assert_eq!(b[0].d, half::f16::from_f32(1.0).to_le_bytes());
        assert_eq!(b[0].qs, [0x88; 16]);
        assert!(dequantize(&b).iter().all(|&v| v == 0.0));
    }

    /// Bytes and values (f32 bits) from apr_write.py itself (`quantize_apr_q4`,
    /// `dequantize_apr_q4`) for x[i] = f32((i·37 mod 29) − 14)·0.173 (i < 70), x[5] = 1e-9,
    /// x[32..64] = 0: three blocks, a zero block and a padded last block.
    #[test]
    fn python_writer_parity() {
        let mut x: Vec<f32> = (0..70).map(|i| ((i * 37 % 29) - 14) as f32 * 0.173).collect();
        x[5] = 1e-9;
        x[32..64].fill(0.0);
        assert_eq!(x[0].to_bits(), 0xc01b020c);
        #[rustfmt::skip]
        let want: [u8; 54] = [
            0x89, 0x35, 0x51, 0xD9, 0x82, 0xFB, 0x84, 0x1C, 0xA5, 0x3E, 0xB7, 0x4F, 0xD9, 0x62, 0xEA, 0x73, 0x1C, 0x95,
            0x00, 0x3C, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
            0x24, 0x35, 0xFB, 0x84, 0x1C, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
        ];
        let blocks = quantize_apr_q4(&x);
        assert_eq!(bytemuck::cast_slice::<_, u8>(&blocks), &want);
        #[rustfmt::skip]
        let values: [u32; 70] = [
            0xC01AFC00, 0xBF84D800, 0x3EB12000, 0x3FDD6800, 0xC004D800, 0x00000000, 0x3F84D800, 0x401AFC00, 0xBFB12000,
            0x00000000, 0x3FB12000, 0xC01AFC00, 0xBF84D800, 0x3F312000, 0x4004D800, 0xBFDD6800, 0xBEB12000, 0x3F84D800,
            0x401AFC00, 0xBFB12000, 0x3EB12000, 0x3FDD6800, 0xC004D800, 0xBF312000, 0x3F312000, 0x4004D800, 0xBFDD6800,
            0xBEB12000, 0x3FB12000, 0xC01AFC00, 0xBF84D800, 0x3EB12000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
            0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
            0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
            0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
            0x00000000, 0x3F76C000, 0x400FF000, 0xBFA48000, 0x00000000, 0x3FA48000, 0xC00FF000,
        ];
        let y = dequantize(bytemuck::cast_slice(&want));
        for (i, (&got, &want)) in y.iter().zip(&values).enumerate() {
            assert_eq!(got.to_bits(), want, "element {i}");
        }
        assert!(y[70..].iter().all(|&v| v == 0.0), "padding dequantizes to 0");
        // A subnormal f16 scale (3e-5/7 → 72·2⁻²⁴), from the same script.
        let mut t = [0.0f32; 32];
        t[..3].copy_from_slice(&[3e-5, -1e-5, 2e-6]);
        let b = quantize_apr_q4(&t);
        let mut want = [0x88u8; 18];
        want[..3].copy_from_slice(&[0x48, 0x00, 0x6F]);
        assert_eq!(bytemuck::bytes_of(&b[0]), &want);
    }

    fn apr_q4_blocks(n: usize) -> impl Strategy<Value = Vec<BlockAprQ4>> {
        let block = prop_oneof![
            4 => (f16_bits(), nibbles()).prop_map(|(d, qs)| BlockAprQ4 { d, qs }),
            1 => Just(BlockAprQ4 { d: half::f16::ONE.to_le_bytes(), qs: [0x88; 16] }),
        ];
        prop::collection::vec(block, n)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn vec_dot_matches_reference(w in apr_q4_blocks(4), a in q8_0_blocks(4)) {
            let (want, mag) = reference(&w, &deq_q8_0(&a));
            check_plain(BlockAprQ4::vec_dot(&w, &a), want, mag, w.len())?;
        }

        /// The writer's round trip: every value within half a step of the input (the nearest
        /// grid point), except where the f16 scale rounded below max_abs/7 and the clamp at
        /// ±7·d bites — then the error is at most the scale's rounding, 7·|d − max_abs/7|.
        #[test]
        fn writer_round_trip(x in activations(64)) {
            let blocks = quantize_apr_q4(&x);
            let y = dequantize(&blocks);
            for (b, (xs, ys)) in blocks.iter().zip(x.chunks(32).zip(y.chunks(32))) {
                let d = f64::from(f16_at(b.d));
                let max_abs = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let clamp_slack = 7.0 * (f64::from(max_abs / 7.0) - d).abs() + f64::from(max_abs) * 1e-7;
                for (&xv, &yv) in xs.iter().zip(ys) {
                    let err = (f64::from(xv) - f64::from(yv)).abs();
                    if d == 0.0 {
                        prop_assert_eq!(yv, 0.0);
                    } else {
                        prop_assert!(err <= d / 2.0 * (1.0 + 1e-6) || err <= clamp_slack, "{xv} → {yv}, d {d}");
                    }
                }
            }
        }
    }
}
