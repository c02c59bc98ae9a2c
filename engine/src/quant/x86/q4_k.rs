//! Q4_K × Q8_K.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::hsum_f32;
use crate::quant::{BlockQ4K, BlockQ8K, f16_at, q4_k::scales_mins_k4};

/// Q4_K × Q8_K. Per 32-element sub-block, `maddubs` forms i16 sums of u4·i8 pairs (at most
/// 2·15·127) and `madd` with the sub-block scale turns them into i32 — no 32-bit multiply. The
/// mins are one `madd` of the Q8_K bsums with the mins, kept in a second f32 accumulator. VNNI
/// does not help here: the scale multiply needs the i16 stage anyway.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn vec_dot_q4_k_avx2(w: &[BlockQ4K], a: &[BlockQ8K]) -> f32 {
    let low = _mm256_set1_epi8(0x0F);
    let mut acc = _mm256_setzero_ps();
    let mut acc_mins = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let (scales, mins) = scales_mins_k4(&x.scales);
        let mut sumi = _mm256_setzero_si256();
        for c in 0..4 {
            let q4 = _mm256_loadu_si256(x.qs.as_ptr().add(32 * c).cast());
            let q8_lo = _mm256_loadu_si256(y.qs.as_ptr().add(64 * c).cast());
            let q8_hi = _mm256_loadu_si256(y.qs.as_ptr().add(64 * c + 32).cast());
            let lo = _mm256_maddubs_epi16(_mm256_and_si256(q4, low), q8_lo);
            let hi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16::<4>(q4), low), q8_hi);
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(lo, _mm256_set1_epi16(i16::from(scales[2 * c]))));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(hi, _mm256_set1_epi16(i16::from(scales[2 * c + 1]))));
        }
        // [m0, m0, m1, m1, …, m7, m7] against the 16 bsums: m_j · (bsum_2j + bsum_2j+1) per lane.
        let m8 = _mm_cvtepu8_epi16(_mm_loadl_epi64(mins.as_ptr().cast()));
        let m16 = _mm256_set_m128i(_mm_unpackhi_epi16(m8, m8), _mm_unpacklo_epi16(m8, m8));
        let bsums = _mm256_loadu_si256(y.bsums.as_ptr().cast());
        let summ = _mm256_madd_epi16(bsums, m16);
        let d = f16_at(x.d) * y.d();
        let dmin = f16_at(x.dmin) * y.d();
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        acc_mins = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(summ), acc_mins);
    }
    hsum_f32(acc) - hsum_f32(acc_mins)
}
