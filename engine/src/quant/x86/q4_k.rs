//! Q4_K × Q8_K.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::hsum_f32;
use crate::quant::{BlockQ4K, BlockQ8K, f16_at, q4_k::scale_min_k4};

/// Q4_K × Q8_K. Per 32-element sub-block, `maddubs` forms i16 sums of u4·i8 pairs (at most
/// 2·15·127) and `madd` with the sub-block scale turns them into i32 — no 32-bit multiply.
/// The mins go through the Q8_K bsums, as in the portable kernel. VNNI does not help here: the
/// scale multiply needs the i16 stage anyway.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn vec_dot_q4_k_avx2(w: &[BlockQ4K], a: &[BlockQ8K]) -> f32 {
    let low = _mm256_set1_epi8(0x0F);
    let mut acc = _mm256_setzero_ps();
    let mut mins = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let mut sumi = _mm256_setzero_si256();
        let mut summ = 0i32;
        for c in 0..4 {
            let q4 = _mm256_loadu_si256(x.qs.as_ptr().add(32 * c).cast());
            let (sc1, m1) = scale_min_k4(2 * c, &x.scales);
            let (sc2, m2) = scale_min_k4(2 * c + 1, &x.scales);
            let q8_lo = _mm256_loadu_si256(y.qs.as_ptr().add(64 * c).cast());
            let q8_hi = _mm256_loadu_si256(y.qs.as_ptr().add(64 * c + 32).cast());
            let lo = _mm256_maddubs_epi16(_mm256_and_si256(q4, low), q8_lo);
            let hi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16::<4>(q4), low), q8_hi);
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(lo, _mm256_set1_epi16(i16::from(sc1))));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(hi, _mm256_set1_epi16(i16::from(sc2))));
            summ += i32::from(m1) * (y.bsum(4 * c) + y.bsum(4 * c + 1))
                + i32::from(m2) * (y.bsum(4 * c + 2) + y.bsum(4 * c + 3));
        }
        let d = _mm256_set1_ps(f16_at(x.d) * y.d());
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
        mins += f16_at(x.dmin) * y.d() * summ as f32;
    }
    hsum_f32(acc) - mins
}
