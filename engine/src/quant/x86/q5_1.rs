//! Q5_1 × Q8_1. The 5-bit quants are unsigned, so they are `maddubs`' unsigned operand as they are.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::nibbles::{nibbles_halves, qh_bytes};
use super::{dot_u8_i8_avx2, dot_u8_i8_vnni, hsum_f32};
use crate::quant::{BlockQ5_1, BlockQ8_1};

/// The block's 32 quants 0..=31 in element order: nibble | fifth bit << 4.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn quants(x: &BlockQ5_1) -> __m256i {
    let high = _mm256_and_si256(qh_bytes(u32::from_le_bytes(x.qh)), _mm256_set1_epi8(0x10));
    _mm256_or_si256(nibbles_halves(&x.qs), high)
}

macro_rules! q5_1_kernel {
    ($name:ident, $features:literal, $dot:ident) => {
        /// Per block the exact integer Σq·q8 (as 8 lanes of i32) scaled by `d_w·d_a` into one of
        /// two f32 accumulators, and the minimum's `m·s` into lane 1 of one of two more
        /// (alternate blocks: four independent chains). One F16C conversion gives all four
        /// scales of a block pair, [d_w, m, d_a, s], and one multiplication both products.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn $name(w: &[BlockQ5_1], a: &[BlockQ8_1]) -> f32 {
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn step(x: &BlockQ5_1, y: &BlockQ8_1, acc: __m256, mins: __m128) -> (__m256, __m128) {
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
                let sums = $dot(quants(x), qy);
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

q5_1_kernel!(vec_dot_q5_1_avx2, "avx2,fma,f16c", dot_u8_i8_avx2);
q5_1_kernel!(vec_dot_q5_1_vnni, "avx2,fma,f16c,avx512f,avx512vl,avx512vnni", dot_u8_i8_vnni);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::quant::testing::blocks32::*;
    use crate::quant::{BlockQ5_1, Isa, WeightBlock, f16_at};

    fn q5_1_blocks(n: usize) -> impl Strategy<Value = Vec<BlockQ5_1>> {
        let block = prop_oneof![
            4 => (f16_bits(), f16_bits(), any::<u32>(), nibbles())
                .prop_map(|(d, m, qh, qs)| BlockQ5_1 { d, m, qh: qh.to_le_bytes(), qs }),
            1 => (f16_bits(), f16_bits(), prop::sample::select(vec![0u32, u32::MAX]), nibbles())
                .prop_map(|(d, m, qh, qs)| BlockQ5_1 { d, m, qh: qh.to_le_bytes(), qs }),
            1 => Just(BlockQ5_1 { d: [0; 2], m: [0; 2], qh: [0; 4], qs: [0; 16] }),
        ];
        prop::collection::vec(block, n)
    }

    /// Element j's quant, 0..=31, from the layout (not the portable kernel's code).
    fn quant(x: &BlockQ5_1, j: usize) -> i32 {
        let nibble = i32::from((x.qs[j % 16] >> (4 * (j / 16))) & 0xF);
        nibble | (((u32::from_le_bytes(x.qh) >> j) & 1) as i32) << 4
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// As for Q4_1 (`x86::q4_1`), with |sumi| ≤ 32·31·128: |fast − portable| ≤
        /// (2·nb + 9)·u·Σ_b(|d_w·d_a|·Σ|q·q8| + |m·s|).
        #[test]
        fn q5_1_kernels_match_portable(w in q5_1_blocks(9), a in q8_1_blocks(9)) {
            let portable = BlockQ5_1::vec_dot(&w, &a);
            let m: f64 = w.iter().zip(&a).map(|(x, y)| {
                let s: i32 = (0..32).map(|j| (quant(x, j) * i32::from(y.qs[j])).abs()).sum();
                f64::from(s) * (f64::from(f16_at(x.d)) * f64::from(f16_at(y.d))).abs()
                    + (f64::from(f16_at(x.m)) * f64::from(f16_at(y.s))).abs()
            }).sum();
            let tol = (2.0 * w.len() as f64 + 9.0) * U * m;
            for isa in Isa::available() {
                let fast = BlockQ5_1::vec_dot_isa(isa, &w, &a);
                prop_assert!((f64::from(fast) - f64::from(portable)).abs() <= tol,
                    "{isa:?}: {fast} vs {portable} (tolerance {tol:e})");
            }
        }
    }
}
