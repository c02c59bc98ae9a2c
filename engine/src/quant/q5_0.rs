//! Q5_0: 32 elements, one f16 scale, 5-bit quants offset by 16. The low four bits of element j
//! (0..15) are the low nibble of `qs[j]`, of element j + 16 its high nibble; the fifth bit of
//! element i is bit i of `qh`. Activations are Q8_0.

use bytemuck::{Pod, Zeroable};

use super::{Block, BlockQ8_0, Isa, WeightBlock, f16_at};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5_0 {
    /// Scale, f16.
    pub d: [u8; 2],
    /// (32) fifth bits, u32 little-endian: bit i belongs to element i.
    pub qh: [u8; 4],
    /// (32) low 4 bits: element j in the low nibble of qs[j], element j + 16 in its high nibble.
    pub qs: [u8; 16],
}
const _: () = assert!(size_of::<BlockQ5_0>() == 22);

impl BlockQ5_0 {
    /// The 5-bit quants of elements j and j + 16 (0..=31 each), as ggml assembles them.
    #[inline]
    fn pair(&self, qh: u32, j: usize) -> (i32, i32) {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        (((u32::from(self.qs[j]) & 0xF) | h0) as i32, ((u32::from(self.qs[j]) >> 4) | h1) as i32)
    }
}

impl Block for BlockQ5_0 {
    const ELEMS: usize = 32;
}

impl WeightBlock for BlockQ5_0 {
    type Act = BlockQ8_0;

    /// ggml's `dequantize_row_q5_0`: y = (q − 16)·d, the integer converted to f32 first.
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_at(self.d);
        let qh = u32::from_le_bytes(self.qh);
        for j in 0..16 {
            let (x0, x1) = self.pair(qh, j);
            out[j] = (x0 - 16) as f32 * d;
            out[j + 16] = (x1 - 16) as f32 * d;
        }
    }

    /// `ggml_vec_dot_q5_0_q8_0_generic`: Σ(q5 − 16)·q8 per block in integers, then
    /// `(d_w·d_a)·sumi`.
    fn vec_dot(w: &[Self], a: &[BlockQ8_0]) -> f32 {
        let mut sum = 0.0f32;
        for (x, y) in w.iter().zip(a) {
            let qh = u32::from_le_bytes(x.qh);
            let (mut sumi0, mut sumi1) = (0i32, 0i32);
            for j in 0..16 {
                let (x0, x1) = x.pair(qh, j);
                sumi0 += (x0 - 16) * i32::from(y.qs[j]);
                sumi1 += (x1 - 16) * i32::from(y.qs[j + 16]);
            }
            sum += (f16_at(x.d) * f16_at(y.d)) * (sumi0 + sumi1) as f32;
        }
        sum
    }

    fn vec_dot_isa(isa: Isa, w: &[Self], a: &[Self::Act]) -> f32 {
        match isa {
            // SAFETY: `isa` is only ever a level the CPU was detected to support; F16C (on every
            // AVX2 CPU, but not part of `Isa`) is checked.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni if super::x86::has_f16c() => unsafe { super::x86::vec_dot_q5_0_vnni(w, a) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512Vnni if super::x86::has_f16c() => unsafe { super::x86::vec_dot_q5_0_avx2(w, a) },
            _ => Self::vec_dot(w, a),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::testing::blocks32::*;
    use super::*;

    /// A block from 32 five-bit quants.
    fn block(d: f32, q: [u8; 32]) -> BlockQ5_0 {
        let mut qs = [0u8; 16];
        let mut qh = 0u32;
        for j in 0..16 {
            qs[j] = (q[j] & 0xF) | ((q[j + 16] & 0xF) << 4);
        }
        for (i, &v) in q.iter().enumerate() {
            qh |= u32::from(v >> 4) << i;
        }
        BlockQ5_0 { d: half::f16::from_f32(d).to_le_bytes(), qh: qh.to_le_bytes(), qs }
    }

    #[test]
    fn hand_computed_block() {
        // Element i holds quant i: the fifth bit is set exactly for i ≥ 16, so qh = 0xFFFF0000.
        let q: [u8; 32] = std::array::from_fn(|i| i as u8);
        let b = block(0.5, q);
        assert_eq!(u32::from_le_bytes(b.qh), 0xFFFF_0000);
        assert_eq!(b.qs[1], 0x11);
        let mut y = [0.0f32; 32];
        b.dequantize(&mut y);
        for (i, &v) in y.iter().enumerate() {
            assert_eq!(v, (i as f32 - 16.0) * 0.5, "element {i}");
        }
        // Only element 3's fifth bit: 16 → 0, every other element −16·d.
        let b = BlockQ5_0 { d: half::f16::from_f32(1.0).to_le_bytes(), qh: 8u32.to_le_bytes(), qs: [0; 16] };
        b.dequantize(&mut y);
        assert!(y.iter().enumerate().all(|(i, &v)| v == if i == 3 { 0.0 } else { -16.0 }));
    }

    #[test]
    fn hand_computed_dot() {
        let q: [u8; 32] = std::array::from_fn(|i| i as u8);
        let w = block(0.5, q);
        let mut a = BlockQ8_0 { d: half::f16::from_f32(0.25).to_le_bytes(), qs: [0; 32] };
        a.qs[0] = 2; // −16·2
        a.qs[31] = -1; // 15·−1
        // sumi = −47; (0.5·0.25)·−47 = −5.875
        assert_eq!(BlockQ5_0::vec_dot(&[w], &[a]), -5.875);
    }

    fn q5_0_blocks(n: usize) -> impl Strategy<Value = Vec<BlockQ5_0>> {
        let block = prop_oneof![
            4 => (f16_bits(), any::<u32>(), nibbles())
                .prop_map(|(d, qh, qs)| BlockQ5_0 { d, qh: qh.to_le_bytes(), qs }),
            1 => (f16_bits(), prop::sample::select(vec![0u32, u32::MAX]), nibbles())
                .prop_map(|(d, qh, qs)| BlockQ5_0 { d, qh: qh.to_le_bytes(), qs }),
            1 => Just(BlockQ5_0 { d: [0; 2], qh: [0xFF; 4], qs: [0; 16] }),
        ];
        prop::collection::vec(block, n)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn vec_dot_matches_reference(w in q5_0_blocks(4), a in q8_0_blocks(4)) {
            let (want, mag) = reference(&w, &deq_q8_0(&a));
            check_plain(BlockQ5_0::vec_dot(&w, &a), want, mag, w.len())?;
        }
    }
}
