//! Q4_0: 32 elements, one f16 scale, 4-bit quants offset by 8. Element j (0..15) is the low nibble
//! of `qs[j]`, element j + 16 its high nibble. Activations are Q8_0.

use bytemuck::{Pod, Zeroable};

use super::{Block, BlockQ8_0, Isa, WeightBlock, f16_at};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4_0 {
    /// Scale, f16.
    pub d: [u8; 2],
    /// (32) 4-bit quants: element j in the low nibble of qs[j], element j + 16 in its high nibble.
    pub qs: [u8; 16],
}
const _: () = assert!(size_of::<BlockQ4_0>() == 18);

impl Block for BlockQ4_0 {
    const ELEMS: usize = 32;
}

impl WeightBlock for BlockQ4_0 {
    type Act = BlockQ8_0;

    /// ggml's `dequantize_row_q4_0`: y = (q − 8)·d, the integer converted to f32 first.
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_at(self.d);
        let (lo, hi) = out[..32].split_at_mut(16);
        for ((&q, y0), y1) in self.qs.iter().zip(lo).zip(hi) {
            *y0 = (i32::from(q & 0xF) - 8) as f32 * d;
            *y1 = (i32::from(q >> 4) - 8) as f32 * d;
        }
    }

    /// `ggml_vec_dot_q4_0_q8_0_generic`: Σq4·q8 per block in integers, then `sumi · d_w · d_a`
    /// multiplied left to right (unlike Q8_0's `sumi · (d_w · d_a)`).
    fn vec_dot(w: &[Self], a: &[BlockQ8_0]) -> f32 {
        let mut sum = 0.0f32;
        for (x, y) in w.iter().zip(a) {
            let (mut sumi0, mut sumi1) = (0i32, 0i32);
            for (j, &q) in x.qs.iter().enumerate() {
                sumi0 += (i32::from(q & 0xF) - 8) * i32::from(y.qs[j]);
                sumi1 += (i32::from(q >> 4) - 8) * i32::from(y.qs[j + 16]);
            }
            sum += (sumi0 + sumi1) as f32 * f16_at(x.d) * f16_at(y.d);
        }
        sum
    }

    fn vec_dot_isa(isa: Isa, w: &[Self], a: &[Self::Act]) -> f32 {
        match isa {
            // SAFETY: `isa` is only ever a level the CPU was detected to support; F16C (on every
            // AVX2 CPU, but not part of `Isa`) is checked.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni if super::x86::has_f16c() => unsafe { super::x86::vec_dot_q4_0_vnni(w, a) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512Vnni if super::x86::has_f16c() => unsafe { super::x86::vec_dot_q4_0_avx2(w, a) },
            _ => Self::vec_dot(w, a),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::testing::blocks32::*;
    use super::*;

    fn block(d: f32, q: [u8; 32]) -> BlockQ4_0 {
        let mut qs = [0u8; 16];
        for j in 0..16 {
            qs[j] = q[j] | (q[j + 16] << 4);
        }
        BlockQ4_0 { d: half::f16::from_f32(d).to_le_bytes(), qs }
    }

    #[test]
    fn hand_computed_block() {
        // Element j is nibble value j % 16: elements 0..15 low nibbles, 16..31 high nibbles.
        let q: [u8; 32] = std::array::from_fn(|j| (j % 16) as u8);
        let b = block(0.5, q);
        assert_eq!(b.qs[3], 0x33);
        let mut y = [0.0f32; 32];
        b.dequantize(&mut y);
        for (j, &v) in y.iter().enumerate() {
            assert_eq!(v, ((j % 16) as f32 - 8.0) * 0.5, "element {j}");
        }
        // Nibble layout: low nibble of qs[0] is element 0, high nibble element 16.
        let mut q = [8u8; 32];
        q[16] = 15;
        let mut y = [0.0f32; 32];
        block(1.0, q).dequantize(&mut y);
        assert_eq!(y.iter().position(|&v| v != 0.0), Some(16));
        assert_eq!(y[16], 7.0);
    }

    #[test]
    fn hand_computed_dot() {
        let q: [u8; 32] = std::array::from_fn(|j| (j % 16) as u8);
        let w = block(0.25, q);
        let mut a = BlockQ8_0 { d: half::f16::from_f32(2.0).to_le_bytes(), qs: [0; 32] };
        a.qs[0] = 1; // (0 − 8)·1
        a.qs[20] = -3; // (4 − 8)·−3
        a.qs[31] = 127; // (15 − 8)·127
        // sumi = −8 + 12 + 889 = 893; 893 · 0.25 · 2 = 446.5
        assert_eq!(BlockQ4_0::vec_dot(&[w], &[a]), 446.5);
        assert_eq!(BlockQ4_0::vec_dot(&[], &[]), 0.0);
    }

    fn q4_0_blocks(n: usize) -> impl Strategy<Value = Vec<BlockQ4_0>> {
        let block = prop_oneof![
            4 => (f16_bits(), nibbles()).prop_map(|(d, qs)| BlockQ4_0 { d, qs }),
            1 => Just(BlockQ4_0 { d: [0; 2], qs: [0x88; 16] }),
        ];
        prop::collection::vec(block, n)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn vec_dot_matches_reference(w in q4_0_blocks(4), a in q8_0_blocks(4)) {
            let (want, mag) = reference(&w, &deq_q8_0(&a));
            check_plain(BlockQ4_0::vec_dot(&w, &a), want, mag, w.len())?;
        }

        #[test]
        fn vec_dot_matches_reference_on_quantized_activations(w in q4_0_blocks(4), x in activations(128)) {
            let mut a = vec![BlockQ8_0 { d: [0; 2], qs: [0; 32] }; 4];
            crate::quant::ActBlock::quantize(&x, &mut a);
            let (want, mag) = reference(&w, &deq_q8_0(&a));
            check_plain(BlockQ4_0::vec_dot(&w, &a), want, mag, w.len())?;
        }
    }
}
