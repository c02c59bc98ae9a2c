//! Q4_K: 256 elements in 8 sub-blocks of 32, each with a 6-bit scale and 6-bit min, under an f16
//! super-scale `d` and super-min `dmin`; 4-bit quants.

use bytemuck::{Pod, Zeroable};

use super::{Block, BlockQ8K, Isa, WeightBlock, f16_at};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4K {
    /// Super-block scale for the scales, f16.
    pub d: [u8; 2],
    /// Super-block scale for the mins, f16.
    pub dmin: [u8; 2],
    /// (8) 6-bit scales and (8) 6-bit mins, packed.
    pub scales: [u8; 12],
    /// (256) 4-bit quants: chunk c of 64 elements reads qs[32c..32c+32], low nibbles first.
    pub qs: [u8; 128],
}
const _: () = assert!(size_of::<BlockQ4K>() == 144);

/// Scale and min of sub-block `j` (ggml's `get_scale_min_k4`).
#[inline]
pub(crate) fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// All eight scales and mins at once, without branches (ggml's u32-mask unpacking): the same
/// values as [`scale_min_k4`] for j = 0..8.
#[inline]
pub(crate) fn scales_mins_k4(q: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let word = |i: usize| u32::from_le_bytes([q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3]]);
    let (u0, u1, u2) = (word(0), word(1), word(2));
    let scales_lo = u0 & LOW6;
    let scales_hi = (u2 & LOW4) | (((u0 >> 6) & LOW2) << 4);
    let mins_lo = u1 & LOW6;
    let mins_hi = ((u2 >> 4) & LOW4) | (((u1 >> 6) & LOW2) << 4);
    let join = |lo: u32, hi: u32| (u64::from(lo) | (u64::from(hi) << 32)).to_le_bytes();
    (join(scales_lo, scales_hi), join(mins_lo, mins_hi))
}

impl Block for BlockQ4K {
    const ELEMS: usize = 256;
}

impl WeightBlock for BlockQ4K {
    type Act = BlockQ8K;

    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_at(self.d);
        let min = f16_at(self.dmin);
        for c in 0..4 {
            let (sc1, m1) = scale_min_k4(2 * c, &self.scales);
            let (sc2, m2) = scale_min_k4(2 * c + 1, &self.scales);
            let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
            let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
            let q = &self.qs[32 * c..32 * c + 32];
            let y = &mut out[64 * c..64 * c + 64];
            for l in 0..32 {
                y[l] = d1 * f32::from(q[l] & 0xF) - m1;
                y[32 + l] = d2 * f32::from(q[l] >> 4) - m2;
            }
        }
    }

    fn vec_dot(w: &[Self], a: &[BlockQ8K]) -> f32 {
        let mut sum = 0.0f32;
        for (x, y) in w.iter().zip(a) {
            // Σ_j scale_j · (q4 · q8 over sub-block j), and Σ_j min_j · (Σ q8 over sub-block j)
            // from the bsums — all in integers, then two f32 scalings per super-block.
            let (mut sumi, mut summ) = (0i32, 0i32);
            for j in 0..8 {
                let (sc, m) = scale_min_k4(j, &x.scales);
                let q = &x.qs[32 * (j / 2)..32 * (j / 2) + 32];
                let shift = 4 * (j % 2);
                let dot: i32 = (0..32).map(|l| i32::from((q[l] >> shift) & 0xF) * i32::from(y.qs[32 * j + l])).sum();
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
            Isa::Avx2 | Isa::Avx512Vnni => unsafe { super::x86::vec_dot_q4_k_avx2(w, a) },
            _ => Self::vec_dot(w, a),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn branchless_unpacking_equals_the_per_subblock_one(q in prop::array::uniform12(any::<u8>())) {
            let (scales, mins) = scales_mins_k4(&q);
            for j in 0..8 {
                prop_assert_eq!((scales[j], mins[j]), scale_min_k4(j, &q));
            }
        }
    }
}
