//! Q4_0 × Q8_0. Both operands are signed, so it multiplies |a| by sign(a)·w: the other way
//! round from Q8_0's kernel, which keeps even an activation of −128 exact (the weights are small).

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::nibbles::{f16_product, nibbles_halves};
use super::{dot_u8_i8_avx2, dot_u8_i8_vnni, hsum_f32};
use crate::quant::{BlockQ4_0, BlockQ8_0};

/// The block's 32 quants less 8, as i8 in element order.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn quants(x: &BlockQ4_0) -> __m256i {
    _mm256_sub_epi8(nibbles_halves(&x.qs), _mm256_set1_epi8(8))
}

macro_rules! q4_0_kernel {
    ($name:ident, $features:literal, $dot:ident) => {
        /// Per block the exact integer Σ(q − 8)·q8 (as 8 lanes of i32), scaled by `d_w·d_a` into
        /// one of two f32 accumulators (alternate blocks, for two independent FMA chains).
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn $name(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn step(x: &BlockQ4_0, y: &BlockQ8_0, acc: __m256) -> __m256 {
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

q4_0_kernel!(vec_dot_q4_0_avx2, "avx2,fma,f16c", dot_u8_i8_avx2);
q4_0_kernel!(vec_dot_q4_0_vnni, "avx2,fma,f16c,avx512f,avx512vl,avx512vnni", dot_u8_i8_vnni);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::quant::testing::blocks32::*;
    use crate::quant::{BlockQ4_0, BlockQ8_0, Isa, WeightBlock, f16_at};

    fn q4_0_blocks(n: usize) -> impl Strategy<Value = Vec<BlockQ4_0>> {
        let block = prop_oneof![
            4 => (f16_bits(), nibbles()).prop_map(|(d, qs)| BlockQ4_0 { d, qs }),
            1 => Just(BlockQ4_0 { d: [0; 2], qs: [0x88; 16] }),
        ];
        prop::collection::vec(block, n)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Both kernels compute each block's integer sum exactly (|sumi| ≤ 32·8·128 < 2²⁴, so
        /// its f32 conversion too). Portable: term `sumi·d_w·d_a` with two roundings, a running
        /// sum: ≤ (nb + 3)·u·M with M = Σ_b |d_w·d_a|·Σ|q·q8| (see `check_plain`). SIMD: `d_w·d_a`
        /// rounded once, each lane's FMA chain over ≤ nb/2 + 1 blocks, 1 combining and 3
        /// horizontal additions: ≤ (nb + 6)·u·M. No under- or overflow: |d_w·d_a| ≥ 2⁻⁴⁸ unless
        /// 0, and every partial sum ≤ 65504²·2¹⁸·nb. So |fast − portable| ≤ (2·nb + 9)·u·M.
        #[test]
        fn q4_0_kernels_match_portable(w in q4_0_blocks(9), a in q8_0_blocks(9), x in activations(288)) {
            let mut aq = vec![BlockQ8_0 { d: [0; 2], qs: [0; 32] }; 9];
            crate::quant::ActBlock::quantize(&x, &mut aq);
            for a in [a, aq] {
                let portable = BlockQ4_0::vec_dot(&w, &a);
                let m: f64 = w.iter().zip(&a).map(|(x, y)| {
                    let s: i32 = (0..32).map(|j| {
                        let q = i32::from((x.qs[j % 16] >> (4 * (j / 16))) & 0xF) - 8;
                        (q * i32::from(y.qs[j])).abs()
                    }).sum();
                    f64::from(s) * (f64::from(f16_at(x.d)) * f64::from(f16_at(y.d))).abs()
                }).sum();
                let tol = (2.0 * w.len() as f64 + 9.0) * U * m;
                for isa in Isa::available() {
                    let fast = BlockQ4_0::vec_dot_isa(isa, &w, &a);
                    prop_assert!((f64::from(fast) - f64::from(portable)).abs() <= tol,
                        "{isa:?}: {fast} vs {portable} (tolerance {tol:e})");
                }
            }
        }
    }
}
