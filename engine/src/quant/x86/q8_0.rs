//! Q8_0 × Q8_0. Both operands are signed, so it multiplies |w| by sign(w)·a, as ggml does.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::{dot_u8_i8_avx2, dot_u8_i8_vnni, hsum_f32};
use crate::quant::{BlockQ8_0, f16_at};

macro_rules! q8_0_kernel {
    ($name:ident, $features:literal, $dot:ident) => {
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn $name(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
            let mut acc = _mm256_setzero_ps();
            for (x, y) in w.iter().zip(a) {
                let qx = _mm256_loadu_si256(x.qs.as_ptr().cast());
                let qy = _mm256_loadu_si256(y.qs.as_ptr().cast());
                // |x| · (sign(x) · y): an unsigned × signed product with the same value.
                let sums = $dot(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx));
                let d = _mm256_set1_ps(f16_at(x.d) * f16_at(y.d));
                acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc);
            }
            hsum_f32(acc)
        }
    };
}

q8_0_kernel!(vec_dot_q8_0_avx2, "avx2,fma", dot_u8_i8_avx2);
q8_0_kernel!(vec_dot_q8_0_vnni, "avx2,fma,avx512f,avx512vl,avx512vnni", dot_u8_i8_vnni);
