//! Q5_0 × Q8_0. Both operands are signed, so it multiplies |a| by sign(a)·w: the other way
//! round from Q8_0's kernel, which keeps even an activation of −128 exact (the weights are small).

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::nibbles::{f16_product, nibbles_halves, qh_bytes};
use super::{dot_u8_i8_avx2, dot_u8_i8_vnni, hsum_f32};
use crate::quant::{BlockQ5_0, BlockQ8_0};

/// The block's 32 quants less 16, as i8 in element order. With h the fifth bit, q − 16 is the
/// nibble when h = 1 and the nibble − 16 when h = 0: the nibble with the high four bits set, as an
/// i8.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn quants(x: &BlockQ5_0) -> __m256i {
    let lo = nibbles_halves(&x.qs);
    let missing = _mm256_andnot_si256(qh_bytes(u32::from_le_bytes(x.qh)), _mm256_set1_epi8(0xF0u8 as i8));
    _mm256_or_si256(lo, missing)
}

macro_rules! q5_0_kernel {
    ($name:ident, $features:literal, $dot:ident) => {
        /// Per block the exact integer Σ(q − 16)·q8 (as 8 lanes of i32), scaled by `d_w·d_a` into
        /// one of two f32 accumulators (alternate blocks, for two independent FMA chains).
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn $name(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn step(x: &BlockQ5_0, y: &BlockQ8_0, acc: __m256) -> __m256 {
                let qx = quants(x);
                let qy = _mm256_loadu_si256(y.qs.as_ptr().cast());
                // |a| · (sign(a)·w): an unsigned × signed product with the same value, exact for
                // every i8 activation (−128 included: |−128| is 128 as u8) since |w| ≤ 16.
                let sums = $dot(_mm256_sign_epi8(qy, qy), _mm256_sign_epi8(qx, qy));
                let d = _mm256_set1_ps(f16_product(x.d, y.d));
                _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc)
            }
            let n = w.len().min(a.len());
            let (w, a) = (w[..n].chunks_exact(2), a[..n].chunks_exact(2));
            let (wr, ar) = (w.remainder(), a.remainder());
            let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for (x, y) in w.zip(a) {
                acc0 = step(&x[0], &y[0], acc0);
                acc1 = step(&x[1], &y[1], acc1);
            }
            for (x, y) in wr.iter().zip(ar) {
                acc0 = step(x, y, acc0);
            }
            hsum_f32(_mm256_add_ps(acc0, acc1))
        }
    };
}

q5_0_kernel!(vec_dot_q5_0_avx2, "avx2,fma,f16c", dot_u8_i8_avx2);
q5_0_kernel!(vec_dot_q5_0_vnni, "avx2,fma,f16c,avx512f,avx512vl,avx512vnni", dot_u8_i8_vnni);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::quant::testing::blocks32::*;
    use crate::quant::{BlockQ5_0, BlockQ8_0, Isa, WeightBlock, f16_at};

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

    /// Element j's quant, 0..=31, from the layout (not the portable kernel's code).
    fn quant(x: &BlockQ5_0, j: usize) -> i32 {
        let nibble = i32::from((x.qs[j % 16] >> (4 * (j / 16))) & 0xF);
        nibble | (((u32::from_le_bytes(x.qh) >> j) & 1) as i32) << 4
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// As for Q4_0 (`x86::q4_0`): both kernels sum the same exact integers (|sumi| ≤
        /// 32·16·128); the portable one's terms and running sum err by ≤ (nb + 3)·u·M, the SIMD
        /// one's (`d_w·d_a` rounded, FMA chains of ≤ nb/2 + 1, 4 more additions) by ≤ (nb + 6)·u·M,
        /// with M = Σ_b |d_w·d_a|·Σ|q·q8|. So |fast − portable| ≤ (2·nb + 9)·u·M.
        #[test]
        fn q5_0_kernels_match_portable(w in q5_0_blocks(9), a in q8_0_blocks(9), x in activations(288)) {
            let mut aq = vec![BlockQ8_0 { d: [0; 2], qs: [0; 32] }; 9];
            crate::quant::ActBlock::quantize(&x, &mut aq);
            for a in [a, aq] {
                let portable = BlockQ5_0::vec_dot(&w, &a);
                let m: f64 = w.iter().zip(&a).map(|(x, y)| {
                    let s: i32 = (0..32).map(|j| ((quant(x, j) - 16) * i32::from(y.qs[j])).abs()).sum();
                    f64::from(s) * (f64::from(f16_at(x.d)) * f64::from(f16_at(y.d))).abs()
                }).sum();
                let tol = (2.0 * w.len() as f64 + 9.0) * U * m;
                for isa in Isa::available() {
                    let fast = BlockQ5_0::vec_dot_isa(isa, &w, &a);
                    prop_assert!((f64::from(fast) - f64::from(portable)).abs() <= tol,
                        "{isa:?}: {fast} vs {portable} (tolerance {tol:e})");
                }
            }
        }
    }
}
