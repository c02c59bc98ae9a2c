//! APR-q8 × Q8_0: Q8_0's kernel with the weight scale applied once, at the end.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::nibbles::f16_value;
use super::{dot_u8_i8_avx2, dot_u8_i8_vnni, hsum_f32};
use crate::quant::BlockQ8_0;

macro_rules! apr_q8_kernel {
    ($name:ident, $features:literal, $dot:ident) => {
        /// Per 32 weights the exact integer Σq·q8 (8 lanes of i32, via |q| · sign(q)·q8), scaled
        /// by `d_a` into one of two f32 accumulators (alternate blocks); `scale` once at the end.
        /// Exact for any weights, −128 included, and activations from
        /// [`crate::quant::ActBlock::quantize`], which never writes −128 (as Q8_0's kernel).
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn $name(scale: f32, q: &[i8], a: &[BlockQ8_0]) -> f32 {
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn step(x: &[i8], y: &BlockQ8_0, acc: __m256) -> __m256 {
                let qx = _mm256_loadu_si256(x.as_ptr().cast());
                let qy = _mm256_loadu_si256(y.qs.as_ptr().cast());
                let sums = $dot(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx));
                _mm256_fmadd_ps(_mm256_set1_ps(f16_value(y.d)), _mm256_cvtepi32_ps(sums), acc)
            }
            let n = (q.len() / 32).min(a.len());
            let (w, a) = (q[..32 * n].chunks_exact(64), a[..n].chunks_exact(2));
            let (wr, ar) = (w.remainder(), a.remainder());
            let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for (x, y) in w.zip(a) {
                acc0 = step(&x[..32], &y[0], acc0);
                acc1 = step(&x[32..], &y[1], acc1);
            }
            if let (Some(x), Some(y)) = (wr.get(..32), ar.first()) {
                acc0 = step(x, y, acc0);
            }
            hsum_f32(_mm256_add_ps(acc0, acc1)) * scale
        }
    };
}

apr_q8_kernel!(vec_dot_apr_q8_avx2, "avx2,fma,f16c", dot_u8_i8_avx2);
apr_q8_kernel!(vec_dot_apr_q8_vnni, "avx2,fma,f16c,avx512f,avx512vl,avx512vnni", dot_u8_i8_vnni);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::quant::apr_q8::{vec_dot, vec_dot_isa};
    use crate::quant::testing::blocks32::*;
    use crate::quant::{BlockQ8_0, Isa, f16_at};

    /// Activations as the quantizer writes them: −127..=127 (see the kernel).
    fn no_min_i8(mut a: Vec<BlockQ8_0>) -> Vec<BlockQ8_0> {
        for q in a.iter_mut().flat_map(|b| b.qs.iter_mut()) {
            *q = (*q).max(-127);
        }
        a
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Both kernels sum the same exact integers (|sumi| ≤ 32·128², converted exactly). With
        /// M = |scale|·Σ_b |d_a|·Σ|q·q8|: portable rounds each `sumi·d_a`, the running sum and
        /// the final `·scale`, ≤ (nb + 2)·u·M; SIMD rounds FMA chains of ≤ nb/2 + 1, 4 more
        /// additions and the `·scale`, ≤ (nb + 6)·u·M. So |fast − portable| ≤ (2·nb + 8)·u·M.
        /// The scale is a normal f32 in [2⁻⁶⁰, 2⁶⁰], as in the portable test: no under- or
        /// overflow on either side.
        #[test]
        fn apr_q8_kernels_match_portable(
            (e, m, neg) in (-60i32..=60, 1.0f32..2.0, any::<bool>()),
            q in prop::collection::vec(any::<i8>(), 288),
            a in q8_0_blocks(9).prop_map(no_min_i8),
            x in activations(288),
        ) {
            let scale = if neg { -m } else { m } * 2f32.powi(e);
            let mut aq = vec![BlockQ8_0 { d: [0; 2], qs: [0; 32] }; 9];
            crate::quant::ActBlock::quantize(&x, &mut aq);
            for a in [a, aq] {
                let portable = vec_dot(scale, &q, &a);
                let mag: f64 = q.chunks_exact(32).zip(&a).map(|(w, y)| {
                    let s: i32 = w.iter().zip(&y.qs).map(|(&p, &v)| (i32::from(p) * i32::from(v)).abs()).sum();
                    f64::from(s) * f64::from(f16_at(y.d)).abs()
                }).sum::<f64>() * f64::from(scale).abs();
                let tol = (2.0 * a.len() as f64 + 8.0) * U * mag;
                for isa in Isa::available() {
                    let fast = vec_dot_isa(isa, scale, &q, &a);
                    prop_assert!((f64::from(fast) - f64::from(portable)).abs() <= tol,
                        "{isa:?}: {fast} vs {portable} (tolerance {tol:e})");
                }
            }
        }
    }
}
