//! Q4_1 × Q8_1. The nibbles are unsigned, so they are `maddubs`' unsigned operand as they are.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::nibbles::nibbles_halves;
use super::{dot_u8_i8_avx2, dot_u8_i8_vnni, hsum_f32};
use crate::quant::{BlockQ4_1, BlockQ8_1};

macro_rules! q4_1_kernel {
    ($name:ident, $features:literal, $dot:ident) => {
        /// Per block the exact integer Σq·q8 (as 8 lanes of i32) scaled by `d_w·d_a` into one of
        /// two f32 accumulators, and the minimum's `m·s` into lane 1 of one of two more
        /// (alternate blocks: four independent chains). One F16C conversion gives all four
        /// scales of a block pair, [d_w, m, d_a, s], and one multiplication both products.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn $name(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn step(x: &BlockQ4_1, y: &BlockQ8_1, acc: __m256, mins: __m128) -> (__m256, __m128) {
                let pair = |lo: [u8; 2], hi: [u8; 2]| {
                    u32::from(u16::from_le_bytes(lo)) | u32::from(u16::from_le_bytes(hi)) << 16
                };
                let h = _mm_unpacklo_epi32(
                    _mm_cvtsi32_si128(pair(x.d, x.m) as i32),
                    _mm_cvtsi32_si128(pair(y.d, y.s) as i32),
                );
                let v = _mm_cvtph_ps(h);
                // [d_w·d_a, m·s, …]: both exact, as the portable kernel's.
                let p = _mm_mul_ps(v, _mm_movehl_ps(v, v));
                let qy = _mm256_loadu_si256(y.qs.as_ptr().cast());
                let sums = $dot(nibbles_halves(&x.qs), qy);
                (_mm256_fmadd_ps(_mm256_broadcastss_ps(p), _mm256_cvtepi32_ps(sums), acc), _mm_add_ps(mins, p))
            }
            let n = w.len().min(a.len());
            let (w, a) = (w[..n].chunks_exact(2), a[..n].chunks_exact(2));
            let (wr, ar) = (w.remainder(), a.remainder());
            let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let (mut min0, mut min1) = (_mm_setzero_ps(), _mm_setzero_ps());
            for (x, y) in w.zip(a) {
                (acc0, min0) = step(&x[0], &y[0], acc0, min0);
                (acc1, min1) = step(&x[1], &y[1], acc1, min1);
            }
            for (x, y) in wr.iter().zip(ar) {
                (acc0, min0) = step(x, y, acc0, min0);
            }
            let mins = _mm_add_ps(min0, min1);
            hsum_f32(_mm256_add_ps(acc0, acc1)) + _mm_cvtss_f32(_mm_movehdup_ps(mins))
        }
    };
}

q4_1_kernel!(vec_dot_q4_1_avx2, "avx2,fma,f16c", dot_u8_i8_avx2);
q4_1_kernel!(vec_dot_q4_1_vnni, "avx2,fma,f16c,avx512f,avx512vl,avx512vnni", dot_u8_i8_vnni);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::quant::testing::blocks32::*;
    use crate::quant::{BlockQ4_1, Isa, WeightBlock, f16_at};

    fn q4_1_blocks(n: usize) -> impl Strategy<Value = Vec<BlockQ4_1>> {
        let block = prop_oneof![
            4 => (f16_bits(), f16_bits(), nibbles()).prop_map(|(d, m, qs)| BlockQ4_1 { d, m, qs }),
            1 => Just(BlockQ4_1 { d: [0; 2], m: [0; 2], qs: [0; 16] }),
        ];
        prop::collection::vec(block, n)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Both kernels sum the same exact integers (|sumi| ≤ 32·15·128) and form the same exact
        /// products `m·s` (11 × 11 bits). Per block, with A = |d_w·d_a|·Σ|q·q8| and B = |m·s|:
        /// portable rounds `d_w·d_a`, `·sumi`, the `+ m·s` and the running sum, ≤ (nb + 3)·u·Σ(A + B);
        /// SIMD rounds `d_w·d_a`, FMA chains of ≤ nb/2 + 1 and 4 more additions for the A's, two
        /// running sums of ≤ nb/2 + 1 B's, their sum and 1 final addition, ≤ (nb + 6)·u·Σ(A + B). Together
        /// |fast − portable| ≤ (2·nb + 9)·u·Σ(A + B). `s` is finite for these activations (their
        /// magnitudes keep |d·Σq| ≤ 65504), so no infinity reaches either side.
        #[test]
        fn q4_1_kernels_match_portable(w in q4_1_blocks(9), a in q8_1_blocks(9)) {
            let portable = BlockQ4_1::vec_dot(&w, &a);
            let m: f64 = w.iter().zip(&a).map(|(x, y)| {
                let s: i32 = (0..32).map(|j| {
                    (i32::from((x.qs[j % 16] >> (4 * (j / 16))) & 0xF) * i32::from(y.qs[j])).abs()
                }).sum();
                f64::from(s) * (f64::from(f16_at(x.d)) * f64::from(f16_at(y.d))).abs()
                    + (f64::from(f16_at(x.m)) * f64::from(f16_at(y.s))).abs()
            }).sum();
            let tol = (2.0 * w.len() as f64 + 9.0) * U * m;
            for isa in Isa::available() {
                let fast = BlockQ4_1::vec_dot_isa(isa, &w, &a);
                prop_assert!((f64::from(fast) - f64::from(portable)).abs() <= tol,
                    "{isa:?}: {fast} vs {portable} (tolerance {tol:e})");
            }
        }
    }
}
