//! Q6_K × Q8_K, and the pieces the other K-quants with 16-element sub-blocks (Q3_K, Q2_K)
//! share.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::hsum_f32;
use crate::quant::{BlockQ6K, BlockQ8K, f16_at};

/// The 8 i8 scales of one half (sub-blocks 8n..8n + 8, in the low bytes of `scales8`) as i16, in
/// both 128-bit lanes: what [`group_scales`] picks from with one in-lane shuffle per group.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn half_scales(scales8: __m128i) -> __m256i {
    _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(scales8))
}

/// From [`half_scales`], the i16 vector [s_2g × 8 | s_2g+1 × 8] for group g (0..4) of the half.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn group_scales(half: __m256i, g: usize) -> __m256i {
    // Bytes 4g, 4g+1 (i16 scale 2g) repeated in the low lane, 4g+2, 4g+3 in the high lane.
    let lo = ((4 * g as i64) | ((4 * g as i64 + 1) << 8)) * 0x0001_0001_0001_0001;
    let hi = ((4 * g as i64 + 2) | ((4 * g as i64 + 3) << 8)) * 0x0001_0001_0001_0001;
    _mm256_shuffle_epi8(half, _mm256_set_epi64x(hi, hi, lo, lo))
}

/// Q6_K × Q8_K. The quants enter `maddubs` unsigned (0..64, so pair sums ≤ 2·63·128 fit i16),
/// `madd` with the sub-block scales makes i32; the offset 32 is taken off once per super-block
/// as 32·Σ_s scale_s·bsum_s — the same integer as the portable kernel's Σ_s scale_s·Σ(q - 32)·q8.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn vec_dot_q6_k_avx2(w: &[BlockQ6K], a: &[BlockQ8K]) -> f32 {
    let low = _mm256_set1_epi8(0x0F);
    let bits45 = _mm256_set1_epi8(0x30);
    let mut acc = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let scales = _mm_loadu_si128(x.scales.as_ptr().cast());
        let mut sumi = _mm256_setzero_si256();
        for n in 0..2 {
            let ql0 = _mm256_loadu_si256(x.ql.as_ptr().add(64 * n).cast());
            let ql1 = _mm256_loadu_si256(x.ql.as_ptr().add(64 * n + 32).cast());
            let qh = _mm256_loadu_si256(x.qh.as_ptr().add(32 * n).cast());
            // Group g (32 elements): a nibble of ql0/ql1, bits 2g..2g+2 of qh moved to bits 4..6.
            // The 16-bit shifts carry bits across bytes only into places the masks clear.
            let q6 = [
                _mm256_or_si256(_mm256_and_si256(ql0, low), _mm256_and_si256(_mm256_slli_epi16::<4>(qh), bits45)),
                _mm256_or_si256(_mm256_and_si256(ql1, low), _mm256_and_si256(_mm256_slli_epi16::<2>(qh), bits45)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(ql0), low), _mm256_and_si256(qh, bits45)),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), low),
                    _mm256_and_si256(_mm256_srli_epi16::<2>(qh), bits45),
                ),
            ];
            let half = half_scales(_mm_loadl_epi64(x.scales.as_ptr().add(8 * n).cast()));
            for (g, &q) in q6.iter().enumerate() {
                let q8 = _mm256_loadu_si256(y.qs.as_ptr().add(128 * n + 32 * g).cast());
                let p = _mm256_maddubs_epi16(q, q8);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, group_scales(half, g)));
            }
        }
        let bsums = _mm256_loadu_si256(y.bsums.as_ptr().cast());
        let offset = _mm256_madd_epi16(bsums, _mm256_cvtepi8_epi16(scales));
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32::<5>(offset));
        let d = f16_at(x.d) * y.d();
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_f32(acc)
}

/// Checks every [`Isa::available`](crate::quant::Isa::available) level's `vec_dot_isa` against
/// the portable `vec_dot`.
///
/// Tolerance. Both sum the same integers exactly and compute d = d_w·d_8 the same way; they
/// differ only in f32 roundings after that (u = 2^-24 each, relative). The portable kernel is
/// within (7 + nb)·u·S of the exact value (see `check_vec_dot`). The SIMD kernels convert 8 i32
/// lanes (Σ|lane| ≤ S/|d|: a lane's terms are partial products of the scale and the offset or
/// min terms, which cancel only afterwards), fused-multiply-add them per block (nb·u with the
/// accumulation), then sum 8 lanes (3u) and subtract the min part (u): within (6 + nb)·u·S.
/// Together ≤ (13 + 2nb)·u·S < (8 + nb)·2u·S; we allow twice that, where `magnitude` gives per
/// element |d·sc·q_u| + |offset or min term| with q_u the quant as the kernels feed it to
/// `maddubs`. Subnormal products lose the relative bound; each of the nb·9 roundings then errs
/// by at most 2^-150 in absolute terms, so nb·2^-120 covers them.
#[cfg(test)]
pub(super) fn check_isa_kernels<B: crate::quant::WeightBlock<Act = BlockQ8K>>(
    pairs: &[(B, BlockQ8K)],
    magnitude: impl Fn(&B, &mut [f64]),
) -> Result<(), proptest::test_runner::TestCaseError> {
    let (w, a): (Vec<B>, Vec<BlockQ8K>) = pairs.iter().copied().unzip();
    let portable = f64::from(B::vec_dot(&w, &a));
    let mut scale = 0.0f64;
    let mut mag = [0.0f64; 256];
    for (x, y) in pairs {
        magnitude(x, &mut mag);
        scale += mag.iter().zip(&y.qs).map(|(&m, &q)| m * (f64::from(y.d()) * f64::from(q)).abs()).sum::<f64>();
    }
    let nb = pairs.len() as f64;
    let tol = 2.0 * (8.0 + nb) * f64::from(f32::EPSILON) * scale + nb * 2f64.powi(-120);
    for isa in crate::quant::Isa::available() {
        let fast = f64::from(B::vec_dot_isa(isa, &w, &a));
        proptest::prop_assert!((fast - portable).abs() <= tol, "{isa:?}: {fast} vs portable {portable} (tol {tol:e})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable;
    use proptest::prelude::*;

    use super::*;
    use crate::quant::testing::k_quants::{bytes, f16_bytes, q8k};

    fn any_block() -> impl Strategy<Value = BlockQ6K> {
        prop_oneof![
            1 => Just(BlockQ6K::zeroed()),
            9 => (bytes(210), f16_bytes()).prop_map(|(b, d)| {
                let mut x: BlockQ6K = bytemuck::pod_read_unaligned(&b);
                x.d = d;
                x
            }),
        ]
    }

    /// |d·sc|·(u + 32) per element, u the unsigned quant (0..64) the kernel multiplies, 32 the
    /// offset it takes off through the bsums.
    fn magnitude(x: &BlockQ6K, out: &mut [f64]) {
        let d = f64::from(f16_at(x.d)).abs();
        for (e, o) in out.iter_mut().enumerate() {
            let (n, g, l) = (e / 128, (e % 128) / 32, e % 32);
            let lo = (x.ql[64 * n + 32 * (g % 2) + l] >> (4 * (g / 2))) & 0xF;
            let hi = (x.qh[32 * n + l] >> (2 * g)) & 3;
            let u = f64::from(lo | (hi << 4));
            *o = d * f64::from(x.scales[e / 16]).abs() * (u + 32.0);
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
