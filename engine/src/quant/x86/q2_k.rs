//! Q2_K × Q8_K.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::hsum_f32;
use super::q6_k::{group_scales, half_scales};
use crate::quant::{BlockQ2K, BlockQ8K, f16_at};

/// Q2_K × Q8_K. The quants (0..4) enter `maddubs` unsigned, `madd` with the 4-bit sub-block
/// scales (0..16, so `half_scales`' sign extension keeps them) makes i32; the mins are one `madd`
/// of the 16 Q8_K bsums with the 16 4-bit mins, kept in a second f32 accumulator.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn vec_dot_q2_k_avx2(w: &[BlockQ2K], a: &[BlockQ8K]) -> f32 {
    let two_bits = _mm256_set1_epi8(0x03);
    let low = _mm_set1_epi8(0x0F);
    let mut acc = _mm256_setzero_ps();
    let mut acc_mins = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let raw = _mm_loadu_si128(x.scales.as_ptr().cast());
        let scales = _mm_and_si128(raw, low);
        let mins = _mm_and_si128(_mm_srli_epi16::<4>(raw), low);
        let mut sumi = _mm256_setzero_si256();
        for n in 0..2 {
            let half = half_scales(if n == 0 { scales } else { _mm_unpackhi_epi64(scales, scales) });
            let q2 = _mm256_loadu_si256(x.qs.as_ptr().add(32 * n).cast());
            let q = [q2, _mm256_srli_epi16::<2>(q2), _mm256_srli_epi16::<4>(q2), _mm256_srli_epi16::<6>(q2)];
            for (g, &q) in q.iter().enumerate() {
                let q8 = _mm256_loadu_si256(y.qs.as_ptr().add(128 * n + 32 * g).cast());
                let p = _mm256_maddubs_epi16(_mm256_and_si256(q, two_bits), q8);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, group_scales(half, g)));
            }
        }
        let bsums = _mm256_loadu_si256(y.bsums.as_ptr().cast());
        let summ = _mm256_madd_epi16(bsums, _mm256_cvtepu8_epi16(mins));
        let dall = y.d() * f16_at(x.d);
        let dmin = y.d() * f16_at(x.dmin);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dall), _mm256_cvtepi32_ps(sumi), acc);
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
    use crate::quant::testing::k_quants::{bytes, f16_bytes, q8k};

    fn any_block() -> impl Strategy<Value = BlockQ2K> {
        prop_oneof![
            1 => Just(BlockQ2K::zeroed()),
            9 => (bytes(84), f16_bytes(), f16_bytes()).prop_map(|(b, d, dmin)| {
                let mut x: BlockQ2K = bytemuck::pod_read_unaligned(&b);
                (x.d, x.dmin) = (d, dmin);
                x
            }),
        ]
    }

    /// |d·sc·q| + |dmin·m| per element.
    fn magnitude(x: &BlockQ2K, out: &mut [f64]) {
        let (d, min) = (f64::from(f16_at(x.d)).abs(), f64::from(f16_at(x.dmin)).abs());
        for (e, o) in out.iter_mut().enumerate() {
            let sc = x.scales[e / 16];
            let q = (x.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            *o = d * f64::from(sc & 0xF) * f64::from(q) + min * f64::from(sc >> 4);
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
