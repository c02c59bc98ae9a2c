//! Q4_1: 32 elements, an f16 scale and an f16 minimum, 4-bit unsigned quants. Element j (0..15) is
//! the low nibble of `qs[j]`, element j + 16 its high nibble. Activations are Q8_1, whose `s`
//! carries the minimum's share of the dot product.

use bytemuck::{Pod, Zeroable};

use super::{Block, BlockQ8_1, Isa, WeightBlock, f16_at};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4_1 {
    /// Scale, f16.
    pub d: [u8; 2],
    /// Minimum, f16.
    pub m: [u8; 2],
    /// (32) 4-bit quants: element j in the low nibble of qs[j], element j + 16 in its high nibble.
    pub qs: [u8; 16],
}
const _: () = assert!(size_of::<BlockQ4_1>() == 20);

impl Block for BlockQ4_1 {
    const ELEMS: usize = 32;
}

impl WeightBlock for BlockQ4_1 {
    type Act = BlockQ8_1;

    /// ggml's `dequantize_row_q4_1`: y = q·d + m, a multiplication then an addition (no FMA).
    fn dequantize(&self, out: &mut [f32]) {
        let (d, m) = (f16_at(self.d), f16_at(self.m));
        let (lo, hi) = out[..32].split_at_mut(16);
        for ((&q, y0), y1) in self.qs.iter().zip(lo).zip(hi) {
            *y0 = f32::from(q & 0xF) * d + m;
            *y1 = f32::from(q >> 4) * d + m;
        }
    }

    /// `ggml_vec_dot_q4_1_q8_1_generic`: Σq4·q8 per block in integers, then
    /// `(d_w·d_a)·sumi + m·s` — the minimum through the activation block's f16 `s` (≈ d_a·Σq8),
    /// not through the activations themselves.
    fn vec_dot(w: &[Self], a: &[BlockQ8_1]) -> f32 {
        let mut sum = 0.0f32;
        for (x, y) in w.iter().zip(a) {
            let (mut sumi0, mut sumi1) = (0i32, 0i32);
            for (j, &q) in x.qs.iter().enumerate() {
                sumi0 += i32::from(q & 0xF) * i32::from(y.qs[j]);
                sumi1 += i32::from(q >> 4) * i32::from(y.qs[j + 16]);
            }
            sum += (f16_at(x.d) * f16_at(y.d)) * (sumi0 + sumi1) as f32 + f16_at(x.m) * f16_at(y.s);
        }
        sum
    }

    fn vec_dot_isa(isa: Isa, w: &[Self], a: &[Self::Act]) -> f32 {
        match isa {
            // SAFETY: `isa` is only ever a level the CPU was detected to support; F16C (on every
            // AVX2 CPU, but not part of `Isa`) is checked.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni if super::x86::has_f16c() => unsafe { super::x86::vec_dot_q4_1_vnni(w, a) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512Vnni if super::x86::has_f16c() => unsafe { super::x86::vec_dot_q4_1_avx2(w, a) },
            _ => Self::vec_dot(w, a),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::testing::blocks32::*;
    use super::*;

    fn f16(v: f32) -> [u8; 2] {
        half::f16::from_f32(v).to_le_bytes()
    }

    #[test]
    fn hand_computed_block() {
        let mut qs = [0u8; 16];
        qs[0] = 0xF0; // element 0: 0, element 16: 15
        qs[5] = 0x07; // element 5: 7, element 21: 0
        let b = BlockQ4_1 { d: f16(0.5), m: f16(-2.0), qs };
        let mut y = [0.0f32; 32];
        b.dequantize(&mut y);
        assert_eq!(y[0], -2.0);
        assert_eq!(y[16], 5.5);
        assert_eq!(y[5], 1.5);
        assert_eq!(y[21], -2.0);
        assert!(y.iter().enumerate().all(|(j, &v)| [0, 5, 16].contains(&j) || v == -2.0));
    }

    #[test]
    fn dot_uses_the_activation_sum() {
        let b = BlockQ4_1 { d: f16(1.0), m: f16(3.0), qs: [0; 16] };
        // All weights equal the minimum 3; the dot is m·s, whatever the quants say.
        let a = BlockQ8_1 { d: f16(1.0), s: f16(10.0), qs: [1; 32] };
        assert_eq!(BlockQ4_1::vec_dot(&[b], &[a]), 30.0);
        // With nibbles: sumi = 2·4 + 15·(−1) = −7; (1·0.5)·(−7) + 3·10 = 26.5.
        let mut qs = [0u8; 16];
        qs[0] = 0x02;
        qs[3] = 0xF0;
        let b = BlockQ4_1 { d: f16(1.0), m: f16(3.0), qs };
        let mut aq = [0i8; 32];
        aq[0] = 4;
        aq[19] = -1;
        let a = BlockQ8_1 { d: f16(0.5), s: f16(10.0), qs: aq };
        assert_eq!(BlockQ4_1::vec_dot(&[b], &[a]), 26.5);
    }

    fn q4_1_blocks(n: usize) -> impl Strategy<Value = Vec<BlockQ4_1>> {
        let block = prop_oneof![
            4 => (f16_bits(), f16_bits(), nibbles()).prop_map(|(d, m, qs)| BlockQ4_1 { d, m, qs }),
            1 => Just(BlockQ4_1 { d: [0; 2], m: [0; 2], qs: [0; 16] }),
        ];
        prop::collection::vec(block, n)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn vec_dot_matches_reference(w in q4_1_blocks(4), a in q8_1_blocks(4)) {
            let (want, mag) = reference(&w, &deq_q8_1(&a));
            let (mut halves, mut min_err) = (0.0f64, 0.0f64);
            for (x, y) in w.iter().zip(&a) {
                let nibble = |j: usize| i32::from((x.qs[j % 16] >> (4 * (j / 16))) & 0xF);
                let sumi: i32 = (0..32).map(|j| nibble(j) * i32::from(y.qs[j])).sum();
                halves += (f64::from(f16_at(x.d)) * f64::from(f16_at(y.d)) * f64::from(sumi)).abs()
                    + (f64::from(f16_at(x.m)) * f64::from(f16_at(y.s))).abs();
                min_err += min_term_error(f16_at(x.m), y);
            }
            check_with_min(BlockQ4_1::vec_dot(&w, &a), want, mag, halves, min_err, w.len())?;
        }
    }
}
