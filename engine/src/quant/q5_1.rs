//! Q5_1: 32 elements, an f16 scale and an f16 minimum, 5-bit unsigned quants. The low four bits of
//! element j (0..15) are the low nibble of `qs[j]`, of element j + 16 its high nibble; the fifth
//! bit of element i is bit i of `qh`. Activations are Q8_1, whose `s` carries the minimum's share
//! of the dot product.

use bytemuck::{Pod, Zeroable};

use super::{Block, BlockQ8_1, Isa, WeightBlock, f16_at};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5_1 {
    /// Scale, f16.
    pub d: [u8; 2],
    /// Minimum, f16.
    pub m: [u8; 2],
    /// (32) fifth bits, u32 little-endian: bit i belongs to element i.
    pub qh: [u8; 4],
    /// (32) low 4 bits: element j in the low nibble of qs[j], element j + 16 in its high nibble.
    pub qs: [u8; 16],
}
const _: () = assert!(size_of::<BlockQ5_1>() == 24);

impl BlockQ5_1 {
    /// The 5-bit quants of elements j and j + 16 (0..=31 each), as ggml assembles them.
    #[inline]
    fn pair(&self, qh: u32, j: usize) -> (i32, i32) {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        (((u32::from(self.qs[j]) & 0xF) | h0) as i32, ((u32::from(self.qs[j]) >> 4) | h1) as i32)
    }
}

impl Block for BlockQ5_1 {
    const ELEMS: usize = 32;
}

impl WeightBlock for BlockQ5_1 {
    type Act = BlockQ8_1;

    /// ggml's `dequantize_row_q5_1`: y = q·d + m, a multiplication then an addition (no FMA).
    fn dequantize(&self, out: &mut [f32]) {
        let (d, m) = (f16_at(self.d), f16_at(self.m));
        let qh = u32::from_le_bytes(self.qh);
        for j in 0..16 {
            let (x0, x1) = self.pair(qh, j);
            out[j] = x0 as f32 * d + m;
            out[j + 16] = x1 as f32 * d + m;
        }
    }

    /// `ggml_vec_dot_q5_1_q8_1_generic`: Σq5·q8 per block in integers, then
    /// `(d_w·d_a)·sumi + m·s` — the minimum through the activation block's f16 `s` (≈ d_a·Σq8).
    fn vec_dot(w: &[Self], a: &[BlockQ8_1]) -> f32 {
        let mut sum = 0.0f32;
        for (x, y) in w.iter().zip(a) {
            let qh = u32::from_le_bytes(x.qh);
            let (mut sumi0, mut sumi1) = (0i32, 0i32);
            for j in 0..16 {
                let (x0, x1) = x.pair(qh, j);
                sumi0 += x0 * i32::from(y.qs[j]);
                sumi1 += x1 * i32::from(y.qs[j + 16]);
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
            Isa::Avx512Vnni if super::x86::has_f16c() => unsafe { super::x86::vec_dot_q5_1_vnni(w, a) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512Vnni if super::x86::has_f16c() => unsafe { super::x86::vec_dot_q5_1_avx2(w, a) },
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
        // Element i holds quant i (fifth bit set for i ≥ 16): y = i·0.25 − 4.
        let mut qs = [0u8; 16];
        for (j, q) in qs.iter_mut().enumerate() {
            *q = j as u8 | ((j as u8) << 4);
        }
        let b = BlockQ5_1 { d: f16(0.25), m: f16(-4.0), qh: 0xFFFF_0000u32.to_le_bytes(), qs };
        let mut y = [0.0f32; 32];
        b.dequantize(&mut y);
        for (i, &v) in y.iter().enumerate() {
            assert_eq!(v, i as f32 * 0.25 - 4.0, "element {i}");
        }
    }

    #[test]
    fn hand_computed_dot() {
        // Element 0 = 0b10011 = 19 (fifth bit from qh bit 0), element 17 = 0b10000 = 16.
        let mut qs = [0u8; 16];
        qs[0] = 0x03;
        let b = BlockQ5_1 { d: f16(2.0), m: f16(0.5), qh: (1u32 | (1 << 17)).to_le_bytes(), qs };
        let mut aq = [0i8; 32];
        aq[0] = 1;
        aq[17] = -2;
        // sumi = 19 − 32 = −13; (2·1)·−13 + 0.5·6 = −23
        let a = BlockQ8_1 { d: f16(1.0), s: f16(6.0), qs: aq };
        assert_eq!(BlockQ5_1::vec_dot(&[b], &[a]), -23.0);
    }

    fn q5_1_blocks(n: usize) -> impl Strategy<Value = Vec<BlockQ5_1>> {
        let block = prop_oneof![
            4 => (f16_bits(), f16_bits(), any::<u32>(), nibbles())
                .prop_map(|(d, m, qh, qs)| BlockQ5_1 { d, m, qh: qh.to_le_bytes(), qs }),
            1 => (f16_bits(), f16_bits(), prop::sample::select(vec![0u32, u32::MAX]), nibbles())
                .prop_map(|(d, m, qh, qs)| BlockQ5_1 { d, m, qh: qh.to_le_bytes(), qs }),
            1 => Just(BlockQ5_1 { d: [0; 2], m: [0; 2], qh: [0; 4], qs: [0; 16] }),
        ];
        prop::collection::vec(block, n)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn vec_dot_matches_reference(w in q5_1_blocks(4), a in q8_1_blocks(4)) {
            let (want, mag) = reference(&w, &deq_q8_1(&a));
            let (mut halves, mut min_err) = (0.0f64, 0.0f64);
            for (x, y) in w.iter().zip(&a) {
                let qh = u32::from_le_bytes(x.qh);
                let mut sumi = 0i32;
                for j in 0..16 {
                    let (x0, x1) = x.pair(qh, j);
                    sumi += x0 * i32::from(y.qs[j]) + x1 * i32::from(y.qs[j + 16]);
                }
                halves += (f64::from(f16_at(x.d)) * f64::from(f16_at(y.d)) * f64::from(sumi)).abs()
                    + (f64::from(f16_at(x.m)) * f64::from(f16_at(y.s))).abs();
                min_err += min_term_error(f16_at(x.m), y);
            }
            check_with_min(BlockQ5_1::vec_dot(&w, &a), want, mag, halves, min_err, w.len())?;
        }
    }
}
