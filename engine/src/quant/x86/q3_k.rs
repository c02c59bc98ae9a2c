//! Q3_K × Q8_K.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::hsum_f32;
use super::q6_k::{group_scales, half_scales};
use crate::quant::{BlockQ3K, BlockQ8K, f16_at};

/// The 16 scales, offset 32 stored, as 6-bit values 0..64 (ggml's unpacking through u32
/// words): low nibbles from bytes 0..8, top bits from bytes 8..12.
#[inline]
fn scales_k3(raw: &[u8; 12]) -> [u8; 16] {
    const LOW2: u32 = 0x0303_0303;
    const LOW4: u32 = 0x0f0f_0f0f;
    let word = |i: usize| u32::from_le_bytes([raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]]);
    let (a0, a1, hi) = (word(0), word(1), word(2));
    let s = [
        (a0 & LOW4) | ((hi & LOW2) << 4),
        (a1 & LOW4) | (((hi >> 2) & LOW2) << 4),
        ((a0 >> 4) & LOW4) | (((hi >> 4) & LOW2) << 4),
        ((a1 >> 4) & LOW4) | (((hi >> 6) & LOW2) << 4),
    ];
    let mut out = [0u8; 16];
    for (o, w) in out.chunks_exact_mut(4).zip(s) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// Q3_K × Q8_K. The quants enter `maddubs` unsigned, low bits | high bit << 2 (0..8, pair sums
/// ≤ 2·7·128), `madd` with the signed sub-block scales makes i32; the offset 4 is taken off once
/// per super-block as 4·Σ_s scale_s·bsum_s — the same integer as the portable kernel's
/// Σ_s scale_s·Σ(q - 4·[bit clear])·q8.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn vec_dot_q3_k_avx2(w: &[BlockQ3K], a: &[BlockQ8K]) -> f32 {
    let two_bits = _mm256_set1_epi8(0x03);
    let bit2 = _mm256_set1_epi8(0x04);
    let mut acc = _mm256_setzero_ps();
    for (x, y) in w.iter().zip(a) {
        let scales = _mm_sub_epi8(_mm_loadu_si128(scales_k3(&x.scales).as_ptr().cast()), _mm_set1_epi8(32));
        // Group g of half n takes bit 4n + g of each hmask byte: shifted down once per group
        // (16-bit shifts; fewer than 8 keep the bit taken within its byte), then to bit 2.
        let mut hbits = _mm256_loadu_si256(x.hmask.as_ptr().cast());
        let mut sumi = _mm256_setzero_si256();
        for n in 0..2 {
            let half = half_scales(if n == 0 { scales } else { _mm_unpackhi_epi64(scales, scales) });
            let q2 = _mm256_loadu_si256(x.qs.as_ptr().add(32 * n).cast());
            let lo = [q2, _mm256_srli_epi16::<2>(q2), _mm256_srli_epi16::<4>(q2), _mm256_srli_epi16::<6>(q2)];
            for (g, &lo) in lo.iter().enumerate() {
                let h = _mm256_and_si256(_mm256_slli_epi16::<2>(hbits), bit2);
                hbits = _mm256_srli_epi16::<1>(hbits);
                let q3 = _mm256_or_si256(_mm256_and_si256(lo, two_bits), h);
                let q8 = _mm256_loadu_si256(y.qs.as_ptr().add(128 * n + 32 * g).cast());
                let p = _mm256_maddubs_epi16(q3, q8);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, group_scales(half, g)));
            }
        }
        let bsums = _mm256_loadu_si256(y.bsums.as_ptr().cast());
        let offset = _mm256_madd_epi16(bsums, _mm256_cvtepi8_epi16(scales));
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32::<2>(offset));
        let d = f16_at(x.d) * y.d();
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_f32(acc)
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable;
    use proptest::prelude::*;

    use super::super::q6_k::check_isa_kernels;
    use super::*;
    use crate::quant::testing::k_quants::{bytes, f16_bytes, q8k};

    fn any_block() -> impl Strategy<Value = BlockQ3K> {
        prop_oneof![
            1 => Just(BlockQ3K::zeroed()),
            9 => (bytes(110), f16_bytes()).prop_map(|(b, d)| {
                let mut x: BlockQ3K = bytemuck::pod_read_unaligned(&b);
                x.d = d;
                x
            }),
        ]
    }

    /// |d·sc|·(u + 4) per element, u = low bits | high bit << 2 the unsigned quant (0..8) the kernel
    /// multiplies, 4 the offset it takes off through the bsums.
    fn magnitude(x: &BlockQ3K, out: &mut [f64]) {
        let d = f64::from(f16_at(x.d)).abs();
        let scales = scales_k3(&x.scales);
        for (e, o) in out.iter_mut().enumerate() {
            let lo = (x.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            let hi = (x.hmask[e % 32] >> (e / 32)) & 1;
            let sc = i32::from(scales[e / 16]) - 32;
            *o = d * f64::from(sc.abs()) * (f64::from(lo | (hi << 2)) + 4.0);
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
