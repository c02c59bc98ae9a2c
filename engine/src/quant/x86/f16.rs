//! F16 × F16: eight halves at a time widened with F16C's `vcvtph2ps`, multiplied and summed with
//! FMA in f32 lanes.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::hsum_f32;
use crate::quant::BlockF16;

/// Eight f16 at `p` as f32 (exact: every f16 is an f32).
#[inline]
#[target_feature(enable = "avx2,f16c")]
unsafe fn load8(p: *const BlockF16) -> __m256 {
    _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
}

/// Σ w·a over `min(w.len(), a.len())` elements. A product of two f16 is exact in f32 (11 × 11
/// significant bits, exponents within f32's normal range), so the FMA's only rounding is the
/// addition's: this is an f32 sum of the exact products in a different order and precision from
/// the portable kernel's f64 one. Four accumulators of eight lanes take 32 elements a step, then
/// eight at a time into the first, then the last few in scalar f32.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn vec_dot_f16_avx2(w: &[BlockF16], a: &[BlockF16]) -> f32 {
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
    use crate::quant::{BlockF16, Isa, WeightBlock};

    fn finite_f16() -> impl Strategy<Value = BlockF16> {
        any::<u16>()
            .prop_map(|b| if (b >> 10) & 0x1F == 0x1F { b & 0x83FF } else { b })
            .prop_map(|b| BlockF16(b.to_le_bytes()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The products are exact in f32 on both sides (|p| between 2⁻⁴⁸ and 2³², no under- or
        /// overflow), so the kernels differ only in how they add them. The portable kernel is the
        /// exact sum to within u·|Σ| + n·2⁻⁵³·Σ|p| (f64 additions, one rounding to f32). The
        /// SIMD one adds each product into a lane at depth ≤ n/32 + 3 (main loop, then ≤ 3 steps
        /// of eight), then 2 combining levels, 3 of the horizontal sum, and the scalar tail
        /// (≤ 7 adds, plus 1 to join): depth h ≤ n/32 + 16, error ≤ γ_h·Σ|p|. So
        /// |fast − portable| ≤ (n/32 + 18)·u·Σ|p| (with slack for γ_h's and 2⁻⁵³'s higher terms).
        #[test]
        fn f16_kernels_match_portable(
            w in prop::collection::vec(finite_f16(), 0..300),
            a in prop::collection::vec(finite_f16(), 300),
        ) {
            let n = w.len();
            let portable = BlockF16::vec_dot(&w, &a[..n]);
            let mag: f64 = w.iter().zip(&a).map(|(x, y)| (f64::from(x.get()) * f64::from(y.get())).abs()).sum();
            let tol = (n as f64 / 32.0 + 18.0) * U * mag;
            for isa in Isa::available() {
                let fast = BlockF16::vec_dot_isa(isa, &w, &a[..n]);
                prop_assert!(
                    (f64::from(fast) - f64::from(portable)).abs() <= tol,
                    "{isa:?}: {fast} vs {portable} (tolerance {tol:e})"
                );
            }
        }
    }
}
