//! Q5_K: 256 elements in 8 sub-blocks of 32, each with a 6-bit scale and 6-bit min, under an f16
//! super-scale `d` and super-min `dmin`; 5-bit quants (4 low bits in `qs`, the fifth in `qh`).

use bytemuck::{Pod, Zeroable};

use super::q4_k::scale_min_k4;
use super::{Block, BlockQ8K, Isa, WeightBlock, f16_at};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5K {
    /// Super-block scale for the scales, f16.
    pub d: [u8; 2],
    /// Super-block scale for the mins, f16.
    pub dmin: [u8; 2],
    /// (8) 6-bit scales and (8) 6-bit mins, packed as Q4_K's.
    pub scales: [u8; 12],
    /// (256) fifth bits: element 32j + l's is bit j of qh[l].
    pub qh: [u8; 32],
    /// (256) low 4 bits: chunk c of 64 elements reads qs[32c..32c+32], low nibbles first (as Q4_K).
    pub qs: [u8; 128],
}
const _: () = assert!(size_of::<BlockQ5K>() == 176);

impl BlockQ5K {
    /// The 5-bit quant `l` (0..32) of sub-block `j` (0..8), 0..=31.
    #[inline]
    fn q5(&self, j: usize, l: usize) -> u8 {
        ((self.qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF) | (((self.qh[l] >> j) & 1) << 4)
    }
}

impl Block for BlockQ5K {
    const ELEMS: usize = 256;
}

impl WeightBlock for BlockQ5K {
    type Act = BlockQ8K;

    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_at(self.d);
        let min = f16_at(self.dmin);
        for (j, y) in out[..256].chunks_exact_mut(32).enumerate() {
            let (sc, m) = scale_min_k4(j, &self.scales);
            let (dl, ml) = (d * f32::from(sc), min * f32::from(m));
            for (l, y) in y.iter_mut().enumerate() {
                *y = dl * f32::from(self.q5(j, l)) - ml;
            }
        }
    }

    fn vec_dot(w: &[Self], a: &[BlockQ8K]) -> f32 {
        let mut sum = 0.0f32;
        for (x, y) in w.iter().zip(a) {
            // As Q4_K: Σ_j scale_j · (q5 · q8 over sub-block j), and Σ_j min_j · (Σ q8 over
            // sub-block j) from the bsums — integers, then two f32 scalings per super-block.
            let (mut sumi, mut summ) = (0i32, 0i32);
            for j in 0..8 {
                let (sc, m) = scale_min_k4(j, &x.scales);
                let q8 = &y.qs[32 * j..32 * j + 32];
                let dot: i32 = q8.iter().enumerate().map(|(l, &p)| i32::from(x.q5(j, l)) * i32::from(p)).sum();
                sumi += i32::from(sc) * dot;
                summ += i32::from(m) * (y.bsum(2 * j) + y.bsum(2 * j + 1));
            }
            let d = f16_at(x.d) * y.d();
            let dmin = f16_at(x.dmin) * y.d();
            sum += d * sumi as f32 - dmin * summ as f32;
        }
        sum
    }

    fn vec_dot_isa(isa: Isa, w: &[Self], a: &[BlockQ8K]) -> f32 {
        match isa {
            // SAFETY: `isa` is only ever a level the CPU was detected to support.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512Vnni => unsafe { super::x86::vec_dot_q5_k_avx2(w, a) },
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

    fn any_block() -> impl Strategy<Value = BlockQ5K> {
        prop_oneof![
            1 => Just(BlockQ5K::zeroed()),
            9 => (bytes(176), f16_bytes(), f16_bytes()).prop_map(|(b, d, dmin)| {
                let mut x: BlockQ5K = bytemuck::pod_read_unaligned(&b);
                (x.d, x.dmin) = (d, dmin);
                x
            }),
        ]
    }

    /// |d·sc·q| + |dmin·m| per element.
    fn magnitude(x: &BlockQ5K, out: &mut [f64]) {
        let (d, min) = (f64::from(f16_at(x.d)).abs(), f64::from(f16_at(x.dmin)).abs());
        for (j, o) in out.chunks_exact_mut(32).enumerate() {
            let (sc, m) = scale_min_k4(j, &x.scales);
            for (l, o) in o.iter_mut().enumerate() {
                *o = d * f64::from(sc) * f64::from(x.q5(j, l)) + min * f64::from(m);
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
        // Element 64c + 32h + l: nibble h of qs[32c + l], fifth bit 2c + h of qh[l].
        let mut x = BlockQ5K::zeroed();
        x.d = half::f16::from_f32(1.0).to_le_bytes();
        x.scales = [1, 2, 3, 4, 0, 0, 0, 0, 0x21, 0x43, 0x65, 0x87];
        for (i, b) in x.qs.iter_mut().chain(&mut x.qh).enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        let mut y = [0.0f32; 256];
        x.dequantize(&mut y);
        for (e, &y) in y.iter().enumerate() {
            let (c, h, l) = (e / 64, (e / 32) % 2, e % 32);
            let q = ((x.qs[32 * c + l] >> (4 * h)) & 0xF) | (((x.qh[l] >> (2 * c + h)) & 1) << 4);
            assert_eq!(y, f32::from(scale_min_k4(e / 32, &x.scales).0) * f32::from(q), "element {e}");
        }
    }
}
