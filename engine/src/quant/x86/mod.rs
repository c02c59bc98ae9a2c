//! x86-64 kernels, one file per weight type, and the shared pieces they use. Each computes the
//! same integer sums as the type's portable kernel, so results differ only in float summation
//! order; each is proptested against the portable one.
//!
//! The u8 × i8 products use `maddubs` (AVX2) or `dpbusd` (AVX-512 VNNI, on 256-bit registers).

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

mod apr_q4;
mod apr_q8;
mod bf16;
mod f16;
mod nibbles;
mod q2_k;
mod q3_k;
mod q4_0;
mod q4_1;
mod q4_k;
mod q5_0;
mod q5_1;
mod q5_k;
mod q6_k;
mod q8_0;

pub(crate) use apr_q4::{vec_dot_apr_q4_avx2, vec_dot_apr_q4_vnni};
pub(crate) use apr_q8::{vec_dot_apr_q8_avx2, vec_dot_apr_q8_vnni};
pub(crate) use bf16::vec_dot_bf16_avx2;
pub(crate) use f16::vec_dot_f16_avx2;
pub(crate) use nibbles::has_f16c;
pub(crate) use q2_k::vec_dot_q2_k_avx2;
pub(crate) use q3_k::vec_dot_q3_k_avx2;
pub(crate) use q4_0::{vec_dot_q4_0_avx2, vec_dot_q4_0_vnni};
pub(crate) use q4_1::{vec_dot_q4_1_avx2, vec_dot_q4_1_vnni};
pub(crate) use q4_k::vec_dot_q4_k_avx2;
pub(crate) use q5_0::{vec_dot_q5_0_avx2, vec_dot_q5_0_vnni};
pub(crate) use q5_1::{vec_dot_q5_1_avx2, vec_dot_q5_1_vnni};
pub(crate) use q5_k::vec_dot_q5_k_avx2;
pub(crate) use q6_k::vec_dot_q6_k_avx2;
pub(crate) use q8_0::{vec_dot_q8_0_avx2, vec_dot_q8_0_vnni};

/// Σ of the 8 f32 lanes.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn hsum_f32(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// 8 lanes of i32 sums of 4 adjacent u8·i8 products.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn dot_u8_i8_avx2(u: __m256i, s: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
}

#[inline]
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512vnni")]
pub(crate) unsafe fn dot_u8_i8_vnni(u: __m256i, s: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{ActBlock, Isa, WeightBlock};
    use super::super::{BlockQ4K, BlockQ8_0, BlockQ8K, f16_at, q4_k::scale_min_k4};

    /// A finite f16 from any bit pattern: zeros, subnormals, extremes included.
    fn f16_bits() -> impl Strategy<Value = [u8; 2]> {
        any::<u16>().prop_map(|b| if (b >> 10) & 0x1F == 0x1F { b & 0x83FF } else { b }).prop_map(u16::to_le_bytes)
    }

    fn q8_0_blocks(n: usize) -> impl Strategy<Value = Vec<BlockQ8_0>> {
        prop::collection::vec((f16_bits(), prop::array::uniform32(any::<i8>())), n)
            .prop_map(|v| v.into_iter().map(|(d, qs)| BlockQ8_0 { d, qs }).collect())
    }

    fn q4_k_blocks(n: usize) -> impl Strategy<Value = Vec<BlockQ4K>> {
        let qs = prop::collection::vec(any::<u8>(), 128);
        let sc = prop::array::uniform12(any::<u8>());
        prop::collection::vec((f16_bits(), f16_bits(), sc, qs), n).prop_map(|v| {
            v.into_iter().map(|(d, dmin, scales, q)| BlockQ4K { d, dmin, scales, qs: q.try_into().unwrap() }).collect()
        })
    }

    fn activations(n: usize) -> impl Strategy<Value = Vec<f32>> {
        let v = prop_oneof![Just(0.0f32), -1.0e3f32..1.0e3, -1.0e-3f32..1.0e-3];
        prop::collection::vec(v, n)
    }

    /// The optimized kernels sum the same integers as the portable ones; only the order of the
    /// final f32 additions differs, so they agree to f32 rounding of the magnitudes summed.
    fn close(fast: f32, portable: f32, magnitude: f64) -> bool {
        (f64::from(fast) - f64::from(portable)).abs() <= 1e-5 * magnitude + 1e-30
            || (fast.is_nan() && portable.is_nan())
            || fast == portable
    }

    proptest! {
        #[test]
        fn q8_0_kernels_match_portable(w in q8_0_blocks(4), x in activations(128)) {
            let mut a = vec![BlockQ8_0 { d: [0; 2], qs: [0; 32] }; 4];
            BlockQ8_0::quantize(&x, &mut a);
            let portable = BlockQ8_0::vec_dot(&w, &a);
            let magnitude: f64 = w.iter().zip(&a).map(|(p, q)| {
                let s: i64 = p.qs.iter().zip(&q.qs).map(|(&u, &v)| (i64::from(u) * i64::from(v)).abs()).sum();
                s as f64 * f64::from((f16_at(p.d) * f16_at(q.d)).abs())
            }).sum();
            for isa in Isa::available() {
                let fast = BlockQ8_0::vec_dot_isa(isa, &w, &a);
                prop_assert!(close(fast, portable, magnitude), "{isa:?}: {fast} vs {portable}");
            }
        }

        #[test]
        fn q4_k_kernels_match_portable(w in q4_k_blocks(2), x in activations(512)) {
            let mut a = vec![<BlockQ8K as bytemuck::Zeroable>::zeroed(); 2];
            BlockQ8K::quantize(&x, &mut a);
            let portable = BlockQ4K::vec_dot(&w, &a);
            // Both integer terms, d·Σsc·q·a and dmin·Σm·a, carry rounding; bound by their sizes.
            let mut magnitude = 0.0f64;
            for (x, y) in w.iter().zip(&a) {
                for j in 0..8 {
                    let (sc, m) = scale_min_k4(j, &x.scales);
                    for l in 0..32 {
                        let q = f64::from((x.qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF);
                        let av = f64::from(y.qs[32 * j + l]).abs() * f64::from(y.d()).abs();
                        magnitude += av * (f64::from(f16_at(x.d)).abs() * f64::from(sc) * q
                            + f64::from(f16_at(x.dmin)).abs() * f64::from(m));
                    }
                }
            }
            for isa in Isa::available() {
                let fast = BlockQ4K::vec_dot_isa(isa, &w, &a);
                prop_assert!(close(fast, portable, magnitude), "{isa:?}: {fast} vs {portable}");
            }
        }
    }
}
