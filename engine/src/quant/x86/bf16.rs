//! BF16 × BF16: eight bf16 at a time widened to f32 by a 16-bit shift, multiplied and summed with
//! FMA in f32 lanes.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::hsum_f32;
use crate::quant::BlockBF16;

/// Eight bf16 at `p` as f32: zero-extend to 32 bits, shift into the high half (exact).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load8(p: *const BlockBF16) -> __m256 {
    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast()))))
}

/// Σ w·a over `min(w.len(), a.len())` elements, in f32 lanes: four accumulators of eight lanes
/// take 32 elements a step, then eight at a time into the first, then the last few in scalar f32.
/// A product of two bf16 has 16 significant bits, so while it stays in f32's normal range the
/// FMA rounds only the addition — an f32 sum of the same exact products the portable kernel sums
/// in f64. (A product outside that range is rounded by the portable kernel and not by the FMA;
/// like ggml's SIMD paths, this kernel makes no attempt to match that.)
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn vec_dot_bf16_avx2(w: &[BlockBF16], a: &[BlockBF16]) -> f32 {
    let n = w.len().min(a.len());
    let (wp, ap) = (w.as_ptr(), a.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (k, s) in acc.iter_mut().enumerate() {
            let j = i + 8 * k;
            *s = _mm256_fmadd_ps(load8(wp.add(j)), load8(ap.add(j)), *s);
        }
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = _mm256_fmadd_ps(load8(wp.add(i)), load8(ap.add(i)), acc[0]);
        i += 8;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut tail = 0.0f32;
    for (x, y) in w[i..n].iter().zip(&a[i..n]) {
        tail += x.get() * y.get();
    }
    hsum_f32(sum) + tail
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::quant::testing::blocks32::U;
    use crate::quant::{BlockBF16, Isa, WeightBlock};

    /// bf16 values whose pairwise products stay normal f32 (exponents within ±60), and zeros.
    fn moderate_bf16() -> impl Strategy<Value = BlockBF16> {
        prop_oneof![
            8 => (any::<bool>(), 67u16..=187, 0u16..128)
                .prop_map(|(neg, e, m)| BlockBF16((u16::from(neg) << 15 | e << 7 | m).to_le_bytes())),
            1 => Just(BlockBF16([0; 2])),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// With the products exact in f32 on both sides, the kernels differ only in how they
        /// add them: the portable one is the exact sum within u·|Σ| + n·2⁻⁵³·Σ|p|; the SIMD one
        /// adds at depth h ≤ n/32 + 3 (lanes) + 2 (combining) + 3 (horizontal) + 8 (scalar tail
        /// and join), error ≤ γ_h·Σ|p|. Hence |fast − portable| ≤ (n/32 + 18)·u·Σ|p|. (Partial
        /// sums that cancel into the subnormals are exact, so no absolute term.)
        #[test]
        fn bf16_kernels_match_portable(
            w in prop::collection::vec(moderate_bf16(), 0..300),
            a in prop::collection::vec(moderate_bf16(), 300),
        ) {
            let n = w.len();
            let portable = BlockBF16::vec_dot(&w, &a[..n]);
            let mag: f64 = w.iter().zip(&a).map(|(x, y)| (f64::from(x.get()) * f64::from(y.get())).abs()).sum();
            let tol = (n as f64 / 32.0 + 18.0) * U * mag;
            for isa in Isa::available() {
                let fast = BlockBF16::vec_dot_isa(isa, &w, &a[..n]);
                prop_assert!(
                    (f64::from(fast) - f64::from(portable)).abs() <= tol,
                    "{isa:?}: {fast} vs {portable} (tolerance {tol:e})"
                );
            }
        }
    }
}
