//! Q5_K × Q8_K.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::hsum_f32;
use crate::quant::{BlockQ5K, BlockQ8K, f16_at, q4_k::scales_mins_k4};

/// Q5_K × Q8_K, as Q4_K's kernel with the fifth bit or-ed in: sub-block j's bit is bit j of
/// qh, brought to bit 0 by shifting a copy of qh right once per sub-block (16-bit shifts, but
/// j < 8 keeps the bits taken within their byte) and then to bit 4. The quants (0..32) enter
/// `maddubs` unsigned, pair sums ≤ 2·31·128; `madd` with the scale makes i32; the mins go
/// through the Q8_K bsums.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn vec_dot_q5_k_avx2(w: &[BlockQ5K], a: &[BlockQ8K]) -> f32 {
    let low = _mm256_set1_epi8(0x0F);
    let bit4 = _mm256_set1_epi8(0x10);
    let mut acc = _mm256_setzero_ps();
    let mut acc_mins = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let (scales, mins) = scales_mins_k4(&x.scales);
        let mut hbits = _mm256_loadu_si256(x.qh.as_ptr().cast());
        let mut sumi = _mm256_setzero_si256();
        for c in 0..4 {
            let q4 = _mm256_loadu_si256(x.qs.as_ptr().add(32 * c).cast());
            let q8_lo = _mm256_loadu_si256(y.qs.as_ptr().add(64 * c).cast());
            let q8_hi = _mm256_loadu_si256(y.qs.as_ptr().add(64 * c + 32).cast());
            let h_lo = _mm256_and_si256(_mm256_slli_epi16::<4>(hbits), bit4);
            hbits = _mm256_srli_epi16::<1>(hbits);
            let h_hi = _mm256_and_si256(_mm256_slli_epi16::<4>(hbits), bit4);
            hbits = _mm256_srli_epi16::<1>(hbits);
            let q5_lo = _mm256_or_si256(_mm256_and_si256(q4, low), h_lo);
            let q5_hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(q4), low), h_hi);
            let lo = _mm256_maddubs_epi16(q5_lo, q8_lo);
            let hi = _mm256_maddubs_epi16(q5_hi, q8_hi);
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

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable;
    use proptest::prelude::*;

    use super::super::q6_k::check_isa_kernels;
    use super::*;
    use crate::quant::q4_k::scale_min_k4;
    use crate::quant::testing::k_quants::{bytes, f16_bytes, q8k};

    fn any_block() -> impl Strategy<Value = BlockQ5K> {
        prop_oneof![
            1 => Just(BlockQ5K::zeroed()),
            9 => (bytes(176), f16_bytes(), f16_bytes()).prop_map(|(b, d, dmin)| {
                let mut x: BlockQ5K = bytemuck::pod_read_unaligned(&b);
                (x.d, x.dmin) = (d, dmin);
                x
            }),
        ]
    }

    /// |d·sc·q| + |dmin·m| per element.
    fn magnitude(x: &BlockQ5K, out: &mut [f64]) {
        let (d, min) = (f64::from(f16_at(x.d)).abs(), f64::from(f16_at(x.dmin)).abs());
        for (e, o) in out.iter_mut().enumerate() {
            let (j, l) = (e / 32, e % 32);
            let (sc, m) = scale_min_k4(j, &x.scales);
            let q = ((x.qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF) | (((x.qh[l] >> j) & 1) << 4);
            *o = d * f64::from(sc) * f64::from(q) + min * f64::from(m);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn avx2_matches_portable(pairs in prop::collection::vec((any_block(), q8k()), 1..5)) {
            check_isa_kernels(&pairs, magnitude)?;
        }
    }
}
