//! APR-q4 × Q8_0: Q4_0's kernel, with the activations permuted to APR's interleaved nibble order.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::nibbles::{f16_product, nibbles_halves};
use super::{dot_u8_i8_avx2, dot_u8_i8_vnni, hsum_f32};
use crate::quant::{BlockAprQ4, BlockQ8_0};

/// The block's 32 quants less 8, as i8: the low nibbles (even elements 0, 2, …, 30) in the low
/// 128 bits, the high nibbles (odd elements) in the high — Q4_0's unpacking, so the activations
/// are put in the same order instead ([`evens_odds`]).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn quants(x: &BlockAprQ4) -> __m256i {
    _mm256_sub_epi8(nibbles_halves(&x.qs), _mm256_set1_epi8(8))
}

/// 32 activations reordered to [y0, y2, …, y30, y1, y3, …, y31]: evens and odds apart within
/// each 128-bit half, then the 64-bit quarters swapped into place.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn evens_odds(y: &BlockQ8_0) -> __m256i {
    let idx = _mm256_setr_epi8(
        0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
    );
    let t = _mm256_shuffle_epi8(_mm256_loadu_si256(y.qs.as_ptr().cast()), idx);
    _mm256_permute4x64_epi64::<0b11_01_10_00>(t)
}

macro_rules! apr_q4_kernel {
    ($name:ident, $features:literal, $dot:ident) => {
        /// Per block the exact integer Σ(q − 8)·q8 (as 8 lanes of i32), scaled by `d_w·d_a` into
        /// one of two f32 accumulators (alternate blocks, for two independent FMA chains).
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn $name(w: &[BlockAprQ4], a: &[BlockQ8_0]) -> f32 {
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn step(x: &BlockAprQ4, y: &BlockQ8_0, acc: __m256) -> __m256 {
                let qx = quants(x);
                let qy = evens_odds(y);
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

apr_q4_kernel!(vec_dot_apr_q4_avx2, "avx2,fma,f16c", dot_u8_i8_avx2);
apr_q4_kernel!(vec_dot_apr_q4_vnni, "avx2,fma,f16c,avx512f,avx512vl,avx512vnni", dot_u8_i8_vnni);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::quant::testing::blocks32::*;
    use crate::quant::{BlockAprQ4, BlockQ8_0, Isa, WeightBlock, f16_at};

    fn apr_q4_blocks(n: usize) -> impl Strategy<Value = Vec<BlockAprQ4>> {
        let block = prop_oneof![
            4 => (f16_bits(), nibbles()).prop_map(|(d, qs)| BlockAprQ4 { d, qs }),
            1 => Just(BlockAprQ4 { d: [0; 2], qs: [0x88; 16] }),
        ];
        prop::collection::vec(block, n)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The bound of Q4_0's (`x86::q4_0`), same arithmetic: |fast − portable| ≤
        /// (2·nb + 9)·u·Σ_b |d_w·d_a|·Σ|q·q8|.
        #[test]
        fn apr_q4_kernels_match_portable(w in apr_q4_blocks(9), a in q8_0_blocks(9), x in activations(288)) {
            let mut aq = vec![BlockQ8_0 { d: [0; 2], qs: [0; 32] }; 9];
            crate::quant::ActBlock::quantize(&x, &mut aq);
            for a in [a, aq] {
                let portable = BlockAprQ4::vec_dot(&w, &a);
                let m: f64 = w.iter().zip(&a).map(|(x, y)| {
                    let s: i32 = (0..32).map(|j| {
                        let q = i32::from((x.qs[j / 2] >> (4 * (j % 2))) & 0xF) - 8;
                        (q * i32::from(y.qs[j])).abs()
                    }).sum();
                    f64::from(s) * (f64::from(f16_at(x.d)) * f64::from(f16_at(y.d))).abs()
                }).sum();
                let tol = (2.0 * w.len() as f64 + 9.0) * U * m;
                for isa in Isa::available() {
                    let fast = BlockAprQ4::vec_dot_isa(isa, &w, &a);
                    prop_assert!((f64::from(fast) - f64::from(portable)).abs() <= tol,
                        "{isa:?}: {fast} vs {portable} (tolerance {tol:e})");
                }
            }
        }
    }
}
