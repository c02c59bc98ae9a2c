//! Strategies and the reference dot shared by the 32-element block types' tests.

use proptest::prelude::*;

use crate::quant::{ActBlock, BlockQ8_0, BlockQ8_1, WeightBlock, f16_at};

/// f32's unit roundoff, 2⁻²⁴.
pub const U: f64 = 1.0 / 16_777_216.0;

/// A finite f16 from any bit pattern (zeros, subnormals, ±65504 included), weighted towards
/// the extremes.
pub fn f16_bits() -> impl Strategy<Value = [u8; 2]> {
    let finite = |b: u16| if (b >> 10) & 0x1F == 0x1F { b & 0x83FF } else { b };
    prop_oneof![
        4 => any::<u16>().prop_map(finite),
        1 => prop::sample::select(vec![0x0000u16, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00]),
        1 => (0u16..0x400, any::<bool>()).prop_map(|(m, neg)| m | if neg { 0x8000 } else { 0 }),
    ]
    .prop_map(u16::to_le_bytes)
}

/// Nibble bytes: any byte, or every element the same nibble (all 16 patterns reachable).
pub fn nibbles() -> impl Strategy<Value = [u8; 16]> {
    prop_oneof![
        3 => prop::array::uniform16(any::<u8>()),
        1 => (0u8..16).prop_map(|n| [n | (n << 4); 16]),
    ]
}

/// Raw Q8_0 blocks: any f16 scale, any quants (−128 included, which ggml never writes but a
/// file may hold), and all-zero blocks.
pub fn q8_0_blocks(n: usize) -> impl Strategy<Value = Vec<BlockQ8_0>> {
    let block = prop_oneof![
        4 => (f16_bits(), prop::array::uniform32(any::<i8>())).prop_map(|(d, qs)| BlockQ8_0 { d, qs }),
        1 => Just(BlockQ8_0 { d: [0; 2], qs: [0; 32] }),
    ];
    prop::collection::vec(block, n)
}

/// f32 activations, each 32-block at its own magnitude 2^e (e in −30..=10, down to where the
/// Q8 scale underflows f16 and up to where Q8_1's `s` still fits in f16), some zeros.
pub fn activations(n: usize) -> impl Strategy<Value = Vec<f32>> {
    let block = (-30i32..=10, prop::collection::vec(prop_oneof![4 => -1.0f32..1.0, 1 => Just(0.0f32)], 32))
        .prop_map(|(e, v)| v.into_iter().map(|x| x * 2f32.powi(e)).collect::<Vec<_>>());
    prop::collection::vec(block, n / 32).prop_map(|b| b.concat())
}

/// Q8_1 blocks as ggml's CPU quantizer makes them from [`activations`].
pub fn q8_1_blocks(n: usize) -> impl Strategy<Value = Vec<BlockQ8_1>> {
    activations(32 * n).prop_map(move |x| {
        let mut a = vec![BlockQ8_1 { d: [0; 2], s: [0; 2], qs: [0; 32] }; n];
        BlockQ8_1::quantize(&x, &mut a);
        a
    })
}

pub fn deq_q8_0(a: &[BlockQ8_0]) -> Vec<f32> {
    a.iter().flat_map(|b| b.qs.map(|q| f32::from(q) * f16_at(b.d))).collect()
}

pub fn deq_q8_1(a: &[BlockQ8_1]) -> Vec<f32> {
    a.iter().flat_map(|b| b.qs.map(|q| f32::from(q) * f16_at(b.d))).collect()
}

/// The reference dot: both sides dequantized, products and sum in f64. Also Σ|w·a|.
pub fn reference<W: WeightBlock>(w: &[W], a: &[f32]) -> (f64, f64) {
    let mut wf = vec![0.0f32; w.len() * W::ELEMS];
    for (b, y) in w.iter().zip(wf.chunks_exact_mut(W::ELEMS)) {
        b.dequantize(y);
    }
    let p = wf.iter().zip(a).map(|(&x, &y)| f64::from(x) * f64::from(y));
    p.fold((0.0, 0.0), |(s, m), v| (s + v, m + v.abs()))
}

/// For the types without a minimum (Q4_0, Q5_0, APR-q4). Dequantized weights and activations
/// are exact (a ≤ 5-bit integer times an f16 is exact in f32), so the f64 reference is the
/// exact sum up to 2⁻⁵³ relative per term. Each block's integer sum is exact; its term
/// `sumi·d_w·d_a` takes two f32 roundings (no underflow: |term| ≥ 2⁻⁴⁸ unless 0; no
/// overflow: ≤ 2¹⁵·65504²), and the running f32 sum nb − 1 more. Recursive summation gives
/// |error| ≤ γ_{nb+1}·Σ_b|term_b| ≤ (nb + 3)·u·Σ|w·a|, since |term_b| ≤ Σ over its block of |w·a|.
pub fn check_plain(got: f32, want: f64, mag: f64, nb: usize) -> Result<(), TestCaseError> {
    let tol = (nb as f64 + 3.0) * U * mag;
    prop_assert!((f64::from(got) - want).abs() <= tol, "{got} vs reference {want} (tolerance {tol:e})");
    Ok(())
}

/// The extra error of the Q4_1/Q5_1 dot (beyond [`check_plain`]'s) from the minimum term
/// `m·s`: the reference sums `m·d·Σq` with the f16 `d`, ggml uses `s = f16(d_f32·Σq)`. `d` as
/// stored is within 2⁻¹¹ (relative, normal) or 2⁻²⁵ (absolute, subnormal or underflowed to 0)
/// of the f32 scale, and `s` within 2⁻¹¹·|s| + 2⁻²⁵ of `d_f32·Σq`; so
/// |s − d·Σq| ≤ (2⁻¹⁰·|d| + 2⁻²⁵)·|Σq| + 2⁻¹¹·|s| + 2⁻²⁵ (2⁻¹⁰ covers 2⁻¹¹·|d_f32|).
pub fn min_term_error(m: f32, a: &BlockQ8_1) -> f64 {
    let (d, s) = (f64::from(f16_at(a.d)).abs(), f64::from(f16_at(a.s)).abs());
    let sum_q: f64 = a.qs.iter().map(|&q| f64::from(q)).sum::<f64>().abs();
    let e = 2f64.powi(-25);
    f64::from(m).abs() * ((2f64.powi(-10) * d + e) * sum_q + 2f64.powi(-11) * s + e)
}

/// For Q4_1/Q5_1: each block's term is `(d_w·d_a)·sumi + m·s`, whose two halves can be much
/// larger than their sum. Their products are exact or rounded once (d_w·d_a and m·s are
/// 11 × 11-bit products, exact in f32), then one rounding each for ·sumi and the +, and the
/// running sum: ≤ (nb + 3)·u·Σ_b(|A_b| + |B_b|). The reference's dequantized weights
/// `q·d + m` are rounded once in f32 (≤ u·Σ|w·a|), and the minimum terms differ by
/// [`min_term_error`].
pub fn check_with_min(
    got: f32,
    want: f64,
    mag: f64,
    halves: f64,
    min_err: f64,
    nb: usize,
) -> Result<(), TestCaseError> {
    let tol = (nb as f64 + 3.0) * U * halves + U * mag + min_err;
    prop_assert!((f64::from(got) - want).abs() <= tol, "{got} vs reference {want} (tolerance {tol:e})");
    Ok(())
}
