//! Q3_K: 256 elements in 16 sub-blocks of 16, each with a signed 6-bit scale, under an f16
//! super-scale `d`; 3-bit quants (2 low bits in `qs`, the third in `hmask`) offset by 4.

use bytemuck::{Pod, Zeroable};

use super::{Block, BlockQ8K, Isa, WeightBlock, f16_at};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ3K {
    /// (256) high bits: element e's is bit e/32 of hmask[e%32]. A clear bit subtracts 4.
    pub hmask: [u8; 32],
    /// (256) low 2 bits: sub-block s reads qs[32(s/8) + 16(s%2)..][..16] at bit 2((s%8)/2), so
    /// each half of 128 elements takes 32 bytes, four bit-pairs deep (as Q2_K).
    pub qs: [u8; 64],
    /// (16) 6-bit scales, offset 32: low nibbles in bytes 0..8 (scales 0..8, then 8..16 in the
    /// high nibbles), the top 2 bits of scale s at bit 2(s/4) of byte 8 + s%4.
    pub scales: [u8; 12],
    /// Super-block scale, f16.
    pub d: [u8; 2],
}
const _: () = assert!(size_of::<BlockQ3K>() == 110);

impl BlockQ3K {
    /// Signed scale of sub-block `s`, -32..=31 (what ggml's aux-word unpacking yields).
    #[inline]
    fn scale(&self, s: usize) -> i32 {
        let q = &self.scales;
        let lo = if s < 8 { q[s] & 0xF } else { q[s - 8] >> 4 };
        let hi = (q[8 + s % 4] >> (2 * (s / 4))) & 3;
        i32::from(lo | (hi << 4)) - 32
    }

    /// Sub-block `s`'s 16 low-bit bytes and their shift, its 16 hmask bytes and their bit.
    #[inline]
    fn quants(&self, s: usize) -> (&[u8], u32, &[u8], u8) {
        let at = 32 * (s / 8) + 16 * (s % 2);
        let hm = 16 * (s % 2);
        (&self.qs[at..at + 16], 2 * ((s % 8) / 2) as u32, &self.hmask[hm..hm + 16], 1 << (s / 2))
    }
}

/// The signed 3-bit quant, -4..=3.
#[inline]
fn q3(q: u8, shift: u32, hm: u8, m: u8) -> i8 {
    ((q >> shift) & 3) as i8 - if hm & m != 0 { 0 } else { 4 }
}

impl Block for BlockQ3K {
    const ELEMS: usize = 256;
}

impl WeightBlock for BlockQ3K {
    type Act = BlockQ8K;

    fn dequantize(&self, out: &mut [f32]) {
        let d_all = f16_at(self.d);
        for (s, y) in out[..256].chunks_exact_mut(16).enumerate() {
            let dl = d_all * self.scale(s) as f32;
            let (q, shift, hm, m) = self.quants(s);
            for ((y, &q), &h) in y.iter_mut().zip(q).zip(hm) {
                *y = dl * f32::from(q3(q, shift, h, m));
            }
        }
    }

    fn vec_dot(w: &[Self], a: &[BlockQ8K]) -> f32 {
        let mut sum = 0.0f32;
        for (x, y) in w.iter().zip(a) {
            // Σ_s scale_s · (q3 · q8 over sub-block s) in integers, the offset -4 applied to the
            // quants themselves (as ggml_vec_dot_q3_K_q8_K), then one f32 scaling per super-block.
            let mut sumi = 0i32;
            for s in 0..16 {
                let (q, shift, hm, m) = x.quants(s);
                let q8 = &y.qs[16 * s..16 * s + 16];
                let dot: i32 =
                    q.iter().zip(hm).zip(q8).map(|((&q, &h), &p)| i32::from(q3(q, shift, h, m)) * i32::from(p)).sum();
                sumi += x.scale(s) * dot;
            }
            let d = f16_at(x.d) * y.d();
            sum += d * sumi as f32;
        }
        sum
    }

    fn vec_dot_isa(isa: Isa, w: &[Self], a: &[BlockQ8K]) -> f32 {
        match isa {
            // SAFETY: `isa` is only ever a level the CPU was detected to support.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512Vnni => unsafe { super::x86::vec_dot_q3_k_avx2(w, a) },
            _ => Self::vec_dot(w, a),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable;
    use proptest::prelude::*;

    use super::super::testing::k_quants::{abs_dequantized, bytes, check_vec_dot, f16_bytes, q8k};
    use super::*;

    fn any_block() -> impl Strategy<Value = BlockQ3K> {
        prop_oneof![
            1 => Just(BlockQ3K::zeroed()),
            9 => (bytes(110), f16_bytes()).prop_map(|(b, d)| {
                let mut x: BlockQ3K = bytemuck::pod_read_unaligned(&b);
                x.d = d;
                x
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn vec_dot_matches_reference(pairs in prop::collection::vec((any_block(), q8k()), 1..5)) {
            check_vec_dot(&pairs, abs_dequantized)?;
        }

        /// The per-scale formula equals ggml's unpacking through four u32 words.
        #[test]
        fn scales_as_ggml_unpacks_them(raw in any::<[u8; 12]>()) {
            let (kmask1, kmask2) = (0x0303_0303u32, 0x0f0f_0f0fu32);
            let mut aux: [u32; 4] = [0; 4];
            for (k, w) in aux.iter_mut().take(3).enumerate() {
                *w = u32::from_le_bytes(raw[4 * k..4 * k + 4].try_into().unwrap());
            }
            let tmp = aux[2];
            aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
            aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
            aux[0] = (aux[0] & kmask2) | ((tmp & kmask1) << 4);
            aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
            let ggml: Vec<u8> = aux.iter().flat_map(|w| w.to_le_bytes()).collect();
            let mut x = BlockQ3K::zeroed();
            x.scales = raw;
            for (s, &g) in ggml.iter().enumerate() {
                prop_assert_eq!(x.scale(s), i32::from(g as i8) - 32);
            }
        }
    }

    #[test]
    fn layout() {
        // Element e: scale e/16, low bits in byte 32(e/128) + e%32 at pair (e%128)/32, high bit
        // e/32 of hmask[e%32].
        let mut x = BlockQ3K::zeroed();
        x.d = half::f16::from_f32(1.0).to_le_bytes();
        for (i, b) in x.qs.iter_mut().chain(&mut x.hmask).chain(&mut x.scales).enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        let mut y = [0.0f32; 256];
        x.dequantize(&mut y);
        for (e, &y) in y.iter().enumerate() {
            let lo = (x.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            let hi = (x.hmask[e % 32] >> (e / 32)) & 1;
            let q = i32::from(lo) - if hi == 1 { 0 } else { 4 };
            assert_eq!(y, (x.scale(e / 16) * q) as f32, "element {e}");
        }
    }
}
