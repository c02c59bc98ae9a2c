//! Pieces shared by the 32-element block kernels: nibble and fifth-bit unpacking, f16 scales.

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

/// 16 bytes of nibbles as 32 bytes 0..=15 in ggml's Q4_0/Q5_0 element order: the low nibbles
/// (elements 0..15) in the low 128 bits, the high nibbles (16..31) in the high.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn nibbles_halves(qs: &[u8; 16]) -> __m256i {
    let q = _mm_loadu_si128(qs.as_ptr().cast());
    _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16::<4>(q), q), _mm256_set1_epi8(0x0F))
}

/// 32 bits as 32 bytes: byte i is 0xFF if bit i of `bits` is set, else 0.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn qh_bytes(bits: u32) -> __m256i {
    // Byte i gets byte i/8 of `bits` (the shuffle indexes within each 128-bit half, and each half
    // holds all four bytes) ...
    let spread = _mm256_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202, 0x0101_0101_0101_0101, 0);
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(bits as i32), spread);
    // ... then every bit but bit i % 8 is set: all ones exactly when that bit was.
    let others = _mm256_set1_epi64x(0x7FBF_DFEF_F7FB_FDFEu64 as i64);
    _mm256_cmpeq_epi8(_mm256_or_si256(bytes, others), _mm256_set1_epi8(-1))
}

/// `f16(a)·f16(b)` in f32, the two conversions in one F16C instruction: the same value as
/// `f16_at(a) * f16_at(b)` (the conversions are exact), without a call per scale.
#[inline]
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn f16_product(a: [u8; 2], b: [u8; 2]) -> f32 {
    let v = _mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(u16::from_le_bytes(a)) | i32::from(u16::from_le_bytes(b)) << 16));
    _mm_cvtss_f32(_mm_mul_ss(v, _mm_movehdup_ps(v)))
}

/// One f16 as f32 through F16C (exact).
#[inline]
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn f16_value(a: [u8; 2]) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(u16::from_le_bytes(a)))))
}

/// Whether the CPU has F16C, which the f16 and 32-element kernels use besides their `Isa`'s
/// features (every AVX2 CPU has it; the answer is cached).
#[inline]
pub(crate) fn has_f16c() -> bool {
    std::arch::is_x86_feature_detected!("f16c")
}
