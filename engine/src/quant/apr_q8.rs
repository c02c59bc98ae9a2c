//! APR-q8 (APR v2's own 8-bit format): one f32 scale for the whole tensor (its first 4 bytes), then
//! one i8 per element; value = q·scale. Not a block type: rows are plain i8 runs, so the matrix
//! code calls these functions instead of going through [`super::WeightBlock`]. Activations are
//! Q8_0, and the dot is Q8_0's with the tensor-wide scale applied once at the end.
//!
//! The writer (golden/tools/apr_write.py) stores scale = max_abs/127 in f32 (1.0 for an all-zero
//! tensor) and q = clamp(round_half_away(x / scale), −127, 127).

use super::{BlockQ8_0, Isa, f16_at};

/// The tensor-wide scale stored little-endian in the tensor's first 4 bytes.
///
/// # Panics
/// If `bytes` is shorter than 4. [`super::WeightRows`] validates a tensor's length (4 + one byte
/// per element) before calling this, so a malformed file is a `KernelError`, never this panic.
pub fn apr_q8_scale(bytes: &[u8]) -> f32 {
    let Some(b) = bytes.first_chunk::<4>() else {
        panic!("APR-q8 tensor of {} bytes has no 4-byte scale", bytes.len());
    };
    f32::from_le_bytes(*b)
}

/// `out[i] = q[i]·scale` — what apr_write.py's `dequantize_apr_q8` computes (i8 → f32, then one
/// f32 multiplication).
pub(crate) fn dequantize_row(scale: f32, q: &[i8], out: &mut [f32]) {
    debug_assert_eq!(q.len(), out.len());
    for (o, &v) in out.iter_mut().zip(q) {
        *o = f32::from(v) * scale;
    }
}

/// Row · activations: Σ_blocks (Σ q·q_a in integers)·d_a in f32, times `scale` once at the end.
/// `q` must hold exactly 32 values per activation block (`q.len() == 32 * a.len()`): a row whose
/// length is not a multiple of 32 has no whole Q8_0 activation blocks for its tail.
pub(crate) fn vec_dot(scale: f32, q: &[i8], a: &[BlockQ8_0]) -> f32 {
    debug_assert_eq!(q.len(), 32 * a.len(), "APR-q8 row of {} against {} Q8_0 blocks", q.len(), a.len());
    let mut sum = 0.0f32;
    for (w, y) in q.chunks_exact(32).zip(a) {
        let sumi: i32 = w.iter().zip(&y.qs).map(|(&p, &q)| i32::from(p) * i32::from(q)).sum();
        sum += sumi as f32 * f16_at(y.d);
    }
    sum * scale
}

/// [`vec_dot`] with the fastest instructions `isa` offers (tested against it).
pub(crate) fn vec_dot_isa(isa: Isa, scale: f32, q: &[i8], a: &[BlockQ8_0]) -> f32 {
    debug_assert_eq!(q.len(), 32 * a.len(), "APR-q8 row of {} against {} Q8_0 blocks", q.len(), a.len());
    match isa {
        // SAFETY: `isa` is only ever a level the CPU was detected to support; F16C (on every AVX2
        // CPU, but not part of `Isa`) is checked.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni if super::x86::has_f16c() => unsafe { super::x86::vec_dot_apr_q8_vnni(scale, q, a) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512Vnni if super::x86::has_f16c() => unsafe {
            super::x86::vec_dot_apr_q8_avx2(scale, q, a)
        },
        _ => vec_dot(scale, q, a),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::testing::blocks32::*;
    use super::*;

    /// apr_write.py's `quantize_apr_q8`, ported: scale = max_abs/127 (1.0 if all zero), q =
    /// clamp(round_half_away(x / scale), −127, 127), zeros if the scale underflowed to 0.
    fn quantize_apr_q8(x: &[f32]) -> Vec<u8> {
        let max_abs = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if max_abs > 0.0 { max_abs / 127.0 } else { 1.0 };
        let mut out = scale.to_le_bytes().to_vec();
        out.extend(
            x.iter().map(|&v| if scale != 0.0 { (v / scale).round().clamp(-127.0, 127.0) as i8 as u8 } else { 0 }),
        );
        out
    }

    #[test]
    fn scale_is_the_first_four_bytes() {
        let mut bytes = 0.5f32.to_le_bytes().to_vec();
        bytes.extend([1, 2, 3]);
        assert_eq!(apr_q8_scale(&bytes), 0.5);
        assert_eq!(apr_q8_scale(&1.0f32.to_le_bytes()), 1.0);
    }

    #[test]
    #[should_panic(expected = "no 4-byte scale")]
    fn short_input_panics_with_a_message() {
        apr_q8_scale(&[0, 0, 0]);
    }

    #[test]
    fn hand_computed_row() {
        let q = [1i8, -2, 127, -127, 0];
        let mut y = [0.0f32; 5];
        dequantize_row(0.25, &q, &mut y);
        assert_eq!(y, [0.25, -0.5, 31.75, -31.75, 0.0]);
    }

    #[test]
    fn hand_computed_dot() {
        // Two blocks: Σ q·q_a = 2·3 + (−1)·4 = 2 with d_a = 0.5, and 10·−1 = −10 with d_a = 2.
        let mut q = [0i8; 64];
        q[0] = 2;
        q[31] = -1;
        q[40] = 10;
        let mut a = [BlockQ8_0 { d: half::f16::from_f32(0.5).to_le_bytes(), qs: [0; 32] }; 2];
        a[0].qs[0] = 3;
        a[0].qs[31] = 4;
        a[1].d = half::f16::from_f32(2.0).to_le_bytes();
        a[1].qs[8] = -1;
        // (2·0.5 + −10·2)·0.125 = −19·0.125
        assert_eq!(vec_dot(0.125, &q, &a), -2.375);
        assert_eq!(vec_dot(1.0, &[], &[]), 0.0);
    }

    /// Bytes and values (f32 bits) from apr_write.py itself (`quantize_apr_q8`,
    /// `dequantize_apr_q8`) for x[i] = f32((i·53 mod 31) − 15)·0.0371, i < 45.
    #[test]
    fn python_writer_parity() {
        let x: Vec<f32> = (0..45).map(|i| ((i * 53 % 31) - 15) as f32 * 0.0371).collect();
        #[rustfmt::skip]
        let want: [u8; 49] = [
            0xF4, 0x95, 0x8F, 0x3B, 0x81, 0x3B, 0xEF, 0xA3, 0x5D, 0x11, 0xC5, 0x7F, 0x33, 0xE7, 0x9A, 0x55, 0x08,
            0xBC, 0x77, 0x2A, 0xDE, 0x92, 0x4C, 0x00, 0xB4, 0x6E, 0x22, 0xD6, 0x89, 0x44, 0xF8, 0xAB, 0x66, 0x19,
            0xCD, 0x81, 0x3B, 0xEF, 0xA3, 0x5D, 0x11, 0xC5, 0x7F, 0x33, 0xE7, 0x9A, 0x55, 0x08, 0xBC,
        ];
        assert_eq!(quantize_apr_q8(&x), want);
        #[rustfmt::skip]
        let values: [u32; 45] = [
            0xBF0E76C8, 0x3E845E3D, 0xBD988F53, 0xBED0A5E7, 0x3ED0A5E7, 0x3D988F53, 0xBE845E3D, 0x3F0E76C8, 0x3E64D6FD,
            0xBDE05A4D, 0xBEE4D6FD, 0x3EBEB328, 0x3D0F95F4, 0xBE988F53, 0x3F057D69, 0x3E3C74D0, 0xBE188F53, 0xBEF6C9BB,
            0x3EAA8212, 0x00000000, 0xBEAA8212, 0x3EF6C9BB, 0x3E188F53, 0xBE3C74D0, 0xBF057D69, 0x3E988F53, 0xBD0F95F4,
            0xBEBEB328, 0x3EE4D6FD, 0x3DE05A4D, 0xBE64D6FD, 0xBF0E76C8, 0x3E845E3D, 0xBD988F53, 0xBED0A5E7, 0x3ED0A5E7,
            0x3D988F53, 0xBE845E3D, 0x3F0E76C8, 0x3E64D6FD, 0xBDE05A4D, 0xBEE4D6FD, 0x3EBEB328, 0x3D0F95F4, 0xBE988F53,
        ];
        let mut y = [0.0f32; 45];
        dequantize_row(apr_q8_scale(&want), bytemuck::cast_slice(&want[4..]), &mut y);
        for (i, (&got, &want)) in y.iter().zip(&values).enumerate() {
            assert_eq!(got.to_bits(), want, "element {i}");
        }
        // All zero: scale 1.0, zero quants. Scale 1.0 ties go away from zero.
        assert_eq!(quantize_apr_q8(&[0.0; 3]), [0, 0, 0x80, 0x3F, 0, 0, 0]);
        let t = quantize_apr_q8(&[127.0, 0.5, -0.5, 1.5, 0.49999997]);
        assert_eq!(bytemuck::cast_slice::<u8, i8>(&t[4..]), &[127, 1, -1, 2, 0]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Against the reference (dequantize both sides, f64 sum), for a normal scale in
        /// [2⁻⁶⁰, 2⁶⁰] (no underflow anywhere: |q·scale·q_a·d_a| ≥ 2⁻⁸⁴). The activations q·d_a
        /// are exact in f32 (8 × 11 bits); the weights q·scale are rounded once (8 × 24 bits), so
        /// the reference is off by ≤ u·Σ|w·a|. The dot rounds each block term sumi·d_a once
        /// (sumi is exact, |sumi| < 2²⁴), the running sum nb − 1 times, and the final ·scale
        /// once: ≤ γ_{nb+1}·Σ_b|term_b|·|scale| ≤ (nb + 3)·u·Σ|w·a|. Together (nb + 4)·u·Σ|w·a|.
        #[test]
        fn vec_dot_matches_reference(
            (e, m, neg) in (-60i32..=60, 1.0f32..2.0, any::<bool>()),
            q in prop::collection::vec(any::<i8>(), 128),
            a in q8_0_blocks(4),
        ) {
            let scale = if neg { -m } else { m } * 2f32.powi(e);
            let mut wf = vec![0.0f32; 128];
            dequantize_row(scale, &q, &mut wf);
            let af = deq_q8_0(&a);
            let (want, mag) = wf.iter().zip(&af).map(|(&x, &y)| f64::from(x) * f64::from(y))
                .fold((0.0, 0.0), |(s, m), v| (s + v, m + v.abs()));
            check_plain(vec_dot(scale, &q, &a), want, mag, a.len() + 1)?;
        }
    }
}
