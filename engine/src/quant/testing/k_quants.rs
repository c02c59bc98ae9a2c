//! Property-test support shared by the K-quant files (Q2_K, Q3_K, Q5_K, Q6_K): random blocks and
//! Q8_K activations, and the check of `vec_dot` against the f64 reference.

use bytemuck::Zeroable;
use proptest::prelude::*;

use super::super::{BlockQ8K, WeightBlock};

/// Any finite f16 (both signs, zero, subnormals, the extremes), as stored bytes.
pub fn f16_bytes() -> impl Strategy<Value = [u8; 2]> {
    let special = prop::sample::select(vec![0x0000u16, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00]);
    let finite = any::<u16>().prop_map(|b| if (b >> 10) & 0x1F == 0x1F { b & !0x4000 } else { b });
    let subnormal = (1u16..0x0400, any::<bool>()).prop_map(|(m, neg)| m | (u16::from(neg) << 15));
    prop_oneof![2 => special, 5 => finite, 2 => subnormal].prop_map(u16::to_le_bytes)
}

/// `n` quant/scale bytes: random, all zero, all ones, or one repeated byte.
pub fn bytes(n: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::collection::vec(any::<u8>(), n),
        1 => Just(vec![0u8; n]),
        1 => Just(vec![0xFFu8; n]),
        1 => any::<u8>().prop_map(move |b| vec![b; n]),
    ]
}

/// A Q8_K block: a scale log-uniform over the f32 range that cannot overflow a dot product
/// (2^-149 .. 2^66, so subnormals included) or typical, or zero; quants random, extreme (±127,
/// -128) or zero; bsums consistent with the quants.
pub fn q8k() -> impl Strategy<Value = BlockQ8K> {
    let d = prop_oneof![
        1 => Just(0.0f32),
        3 => -1.0f32..1.0,
        4 => (any::<bool>(), -149i32..=66, 1.0f64..2.0).prop_map(|(neg, e, m)| {
            let v = (m * 2f64.powi(e)) as f32;
            if neg { -v } else { v }
        }),
    ];
    let qs = prop_oneof![
        6 => prop::collection::vec(any::<i8>(), 256),
        1 => prop::sample::select(vec![-128i8, -127, 0, 127]).prop_map(|q| vec![q; 256]),
    ];
    (d, qs).prop_map(|(d, qs)| {
        let mut b = BlockQ8K::zeroed();
        b.d = d.to_le_bytes();
        b.qs.copy_from_slice(&qs);
        for (j, s) in b.bsums.iter_mut().enumerate() {
            let sum: i32 = b.qs[16 * j..16 * j + 16].iter().map(|&q| i32::from(q)).sum();
            *s = (sum as i16).to_le_bytes();
        }
        b
    })
}

/// `|w|` elementwise, the magnitude of a type without mins.
pub fn abs_dequantized<B: WeightBlock>(x: &B, out: &mut [f64]) {
    let mut w = [0.0f32; 256];
    x.dequantize(&mut w);
    for (o, &w) in out.iter_mut().zip(&w) {
        *o = f64::from(w).abs();
    }
}

/// `vec_dot` of the weight blocks with the activation blocks against Σ dequantized(w)·(d·q8)
/// summed in f64.
///
/// Tolerance. The integer sums are exact, so the only differences are f32 roundings (u =
/// 2^-24 each, relative): `vec_dot` rounds d·d8, the i32 → f32 conversion and the product
/// (3u) for each of the scale and min terms and then their difference (≤ 4u of the block's
/// S_b = Σ (|scale part| + |min part|)·|a|), then accumulates nb blocks in f32 (≤ nb·u·S); the
/// reference rounds d·sc, d·sc·q, dmin·m and their difference per element (≤ 3u·S). Together
/// ≤ (7 + nb)·u·S; we allow (8 + nb)·2u·S, S = Σ_i magnitude_i·|a_i| where `magnitude`
/// gives |d·sc·q| + |dmin·m| per element — not |w|, since the scale and min terms are rounded
/// separately and cancel only afterwards. A subnormal d·d8 (d8 goes down to 2^-149) loses the
/// relative bound: its absolute error ≤ 2^-150 is multiplied by an integer sum of at most
/// 2^27 (Q6_K: 256 · 32 · 128 · 128), twice (scales, mins), plus the product's own rounding,
/// so we add nb·2^-120 (≥ 4× that).
pub fn check_vec_dot<B: WeightBlock<Act = BlockQ8K>>(
    pairs: &[(B, BlockQ8K)],
    magnitude: impl Fn(&B, &mut [f64]),
) -> Result<(), TestCaseError> {
    let (w, a): (Vec<B>, Vec<BlockQ8K>) = pairs.iter().copied().unzip();
    let got = f64::from(B::vec_dot(&w, &a));
    let (mut reference, mut scale) = (0.0f64, 0.0f64);
    let (mut deq, mut mag) = ([0.0f32; 256], [0.0f64; 256]);
    for (x, y) in pairs {
        x.dequantize(&mut deq);
        magnitude(x, &mut mag);
        for l in 0..256 {
            let act = f64::from(y.d()) * f64::from(y.qs[l]);
            reference += f64::from(deq[l]) * act;
            scale += mag[l] * act.abs();
        }
    }
    let nb = pairs.len() as f64;
    let tol = (8.0 + nb) * f64::from(f32::EPSILON) * scale + nb * 2f64.powi(-120);
    prop_assert!(got.is_finite(), "vec_dot {got}");
    prop_assert!((got - reference).abs() <= tol, "vec_dot {got} vs reference {reference} (tol {tol:e}, S {scale:e})");
    Ok(())
}
