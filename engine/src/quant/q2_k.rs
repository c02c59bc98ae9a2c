//! Q2_K: 256 elements in 16 sub-blocks of 16, each with a 4-bit scale and 4-bit min, under an f16
//! super-scale `d` and super-min `dmin`; 2-bit quants.

use bytemuck::{Pod, Zeroable};

use super::{Block, BlockQ8K, Isa, WeightBlock, f16_at};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ2K {
    /// (16) scales (low nibble) and mins (high nibble), one byte per sub-block of 16.
    pub scales: [u8; 16],
    /// (256) 2-bit quants: sub-block s reads qs[32(s/8) + 16(s%2)..][..16] at bit 2((s%8)/2), so
    /// each half of 128 elements takes 32 bytes, four bit-pairs deep.
    pub qs: [u8; 64],
    /// Super-block scale for the scales, f16 (after the quants, unlike Q4_K/Q5_K).
    pub d: [u8; 2],
    /// Super-block scale for the mins, f16.
    pub dmin: [u8; 2],
}
const _: () = assert!(size_of::<BlockQ2K>() == 84);

impl BlockQ2K {
    /// The 16 bytes holding sub-block `s`'s quants and the shift of its bit pair.
    #[inline]
    fn quants(&self, s: usize) -> (&[u8], u32) {
        let at = 32 * (s / 8) + 16 * (s % 2);
        (&self.qs[at..at + 16], 2 * ((s % 8) / 2) as u32)
    }
}

impl Block for BlockQ2K {
    const ELEMS: usize = 256;
}

impl WeightBlock for BlockQ2K {
    type Act = BlockQ8K;

    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_at(self.d);
        let min = f16_at(self.dmin);
        for (s, y) in out[..256].chunks_exact_mut(16).enumerate() {
            let sc = self.scales[s];
            let (dl, ml) = (d * f32::from(sc & 0xF), min * f32::from(sc >> 4));
            let (q, shift) = self.quants(s);
            for (y, &q) in y.iter_mut().zip(q) {
                *y = dl * f32::from((q >> shift) & 3) - ml;
            }
        }
    }

    fn vec_dot(w: &[Self], a: &[BlockQ8K]) -> f32 {
        let mut sum = 0.0f32;
        for (x, y) in w.iter().zip(a) {
            // Σ_s scale_s · (q2 · q8 over sub-block s), and Σ_s min_s · bsum_s — integers, then two
            // f32 scalings per super-block, as ggml_vec_dot_q2_K_q8_K.
            let (mut isum, mut summs) = (0i32, 0i32);
            for s in 0..16 {
                let sc = x.scales[s];
                let (q, shift) = x.quants(s);
                let q8 = &y.qs[16 * s..16 * s + 16];
                let dot: i32 = q.iter().zip(q8).map(|(&q, &p)| i32::from((q >> shift) & 3) * i32::from(p)).sum();
                isum += i32::from(sc & 0xF) * dot;
                summs += i32::from(sc >> 4) * y.bsum(s);
            }
            let dall = y.d() * f16_at(x.d);
            let dmin = y.d() * f16_at(x.dmin);
            sum += dall * isum as f32 - dmin * summs as f32;
        }
        sum
    }

    fn vec_dot_isa(isa: Isa, w: &[Self], a: &[BlockQ8K]) -> f32 {
        match isa {
            // SAFETY: `isa` is only ever a level the CPU was detected to support.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512Vnni => unsafe { super::x86::vec_dot_q2_k_avx2(w, a) },
            _ => Self::vec_dot(w, a),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable;
    use proptest::prelude::*;

    use super::super::testing::k_quants::{bytes, check_vec_dot, f16_bytes, q8k};
    use super::*;

    fn any_block() -> impl Strategy<Value = BlockQ2K> {
        prop_oneof![
            1 => Just(BlockQ2K::zeroed()),
            9 => (bytes(84), f16_bytes(), f16_bytes()).prop_map(|(b, d, dmin)| {
                let mut x: BlockQ2K = bytemuck::pod_read_unaligned(&b);
                (x.d, x.dmin) = (d, dmin);
                x
            }),
        ]
    }

    /// |d·sc·q| + |dmin·m| per element.
    fn magnitude(x: &BlockQ2K, out: &mut [f64]) {
        let (d, min) = (f64::from(f16_at(x.d)).abs(), f64::from(f16_at(x.dmin)).abs());
        for (s, o) in out.chunks_exact_mut(16).enumerate() {
            let sc = x.scales[s];
            let (q, shift) = x.quants(s);
            for (o, &q) in o.iter_mut().zip(q) {
                *o = d * f64::from(sc & 0xF) * f64::from((q >> shift) & 3) + min * f64::from(sc >> 4);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn vec_dot_matches_reference(pairs in prop::collection::vec((any_block(), q8k()), 1..5)) {
            check_vec_dot(&pairs, magnitude)?;
        }
    }

    #[test]
    fn layout() {
        // Element e: scale byte e/16, quant byte 32(e/128) + e%32, bit pair (e%128)/32.
        let mut x = BlockQ2K::zeroed();
        x.d = half::f16::from_f32(1.0).to_le_bytes();
        x.dmin = half::f16::from_f32(0.5).to_le_bytes();
        for (s, sc) in x.scales.iter_mut().enumerate() {
            *sc = (s as u8 % 15 + 1) | ((s as u8 % 3) << 4);
        }
        for (i, q) in x.qs.iter_mut().enumerate() {
            *q = (i as u8).wrapping_mul(37);
        }
        let mut y = [0.0f32; 256];
        x.dequantize(&mut y);
        for (e, &y) in y.iter().enumerate() {
            let sc = x.scales[e / 16];
            let q = (x.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            assert_eq!(y, f32::from(sc & 0xF) * f32::from(q) - 0.5 * f32::from(sc >> 4), "element {e}");
        }
    }
}
