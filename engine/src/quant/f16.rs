//! F16 weights: blocks of one IEEE binary16 element. Activations are converted to f16 too
//! (ggml's `vec_dot_type` for F16 is F16).

use bytemuck::{Pod, Zeroable};

use super::{ActBlock, Block, Isa, WeightBlock, f16_at};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockF16(pub [u8; 2]);
const _: () = assert!(size_of::<BlockF16>() == 2);

impl BlockF16 {
    /// The value, exactly (every f16 is an f32).
    pub fn get(self) -> f32 {
        f16_at(self.0)
    }
}

impl Block for BlockF16 {
    const ELEMS: usize = 1;
}

impl WeightBlock for BlockF16 {
    type Act = BlockF16;

    fn dequantize(&self, out: &mut [f32]) {
        out[0] = self.get();
    }

    /// `ggml_vec_dot_f16` without SIMD: each product in f32 (exact: 11 × 11 significant bits),
    /// accumulated in `ggml_float` = f64, rounded to f32 once at the end. So this is the f64 sum
    /// of the exact products, correctly rounded up to the f64 additions. (ggml's SIMD paths
    /// accumulate in f32 lanes instead; they differ from this by f32 rounding of the partial sums.)
    fn vec_dot(w: &[Self], a: &[Self]) -> f32 {
        let mut sum = 0.0f64;
        for (x, y) in w.iter().zip(a) {
            sum += f64::from(x.get() * y.get());
        }
        sum as f32
    }

    /// On x86-64 with AVX2, F16C and FMA: [`super::x86::vec_dot_f16_avx2`], an f32-lane sum of
    /// the same exact products — not bit-identical with this f64 sum (tested against it with a
    /// tolerance).
    fn vec_dot_isa(isa: Isa, w: &[Self], a: &[Self]) -> f32 {
        match isa {
            // SAFETY: `isa` ≥ Avx2 is only ever a level the CPU was detected to support, and F16C
            // is checked here (every AVX2 CPU has it, but `Isa` does not say so).
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512Vnni if super::x86::has_f16c() => unsafe { super::x86::vec_dot_f16_avx2(w, a) },
            _ => Self::vec_dot(w, a),
        }
    }
}

impl ActBlock for BlockF16 {
    /// ggml's `ggml_cpu_fp32_to_fp16` (F16C `vcvtps2ph` with round-to-nearest-even, or the same
    /// rounding in software): values beyond ±65504 become ±inf, tiny ones f16 subnormals or ±0.
    fn quantize(x: &[f32], out: &mut [Self]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = BlockF16(half::f16::from_f32(v).to_le_bytes());
        }
    }

    super::activation_variant!(F16);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn quantize(v: f32) -> u16 {
        let mut b = [BlockF16([0; 2])];
        BlockF16::quantize(&[v], &mut b);
        u16::from_le_bytes(b[0].0)
    }

    #[test]
    fn conversion_rounds_to_nearest_even() {
        // 1 + 2⁻¹¹ lies halfway between 1 and 1 + 2⁻¹⁰: ties to the even 1.0 (0x3C00).
        assert_eq!(quantize(1.0 + 2f32.powi(-11)), 0x3C00);
        // 1 + 3·2⁻¹¹ lies halfway between 1 + 2⁻¹⁰ and 1 + 2⁻⁹: ties to the even 0x3C02.
        assert_eq!(quantize(1.0 + 3.0 * 2f32.powi(-11)), 0x3C02);
        assert_eq!(quantize(1.0 + 2f32.powi(-11) + 2f32.powi(-20)), 0x3C01);
        assert_eq!(quantize(65504.0), 0x7BFF);
        assert_eq!(quantize(65520.0), 0x7C00); // halfway to 2¹⁶: rounds to even = inf
        assert_eq!(quantize(65519.0), 0x7BFF);
        assert_eq!(quantize(-1e9), 0xFC00);
        assert_eq!(quantize(2f32.powi(-24)), 0x0001); // smallest subnormal
        assert_eq!(quantize(2f32.powi(-25)), 0x0000); // halfway to 0: even
        assert_eq!(quantize(3.0 * 2f32.powi(-25)), 0x0002);
        assert_eq!(quantize(-0.0), 0x8000);
        assert_eq!(quantize(f32::INFINITY), 0x7C00);
        assert!(half::f16::from_bits(quantize(f32::NAN)).is_nan());
    }

    #[test]
    fn dot_accumulates_in_f64() {
        // 2048·8192 = 2²⁴, then + 1 + 1: an f32 sum stays at 2²⁴ (each + 1 is a tie, to even); the
        // f64 sum keeps both, and 2²⁴ + 2 is an f32.
        let w: Vec<BlockF16> =
            [2048.0f32, 1.0, 1.0].iter().map(|&v| BlockF16(half::f16::from_f32(v).to_le_bytes())).collect();
        let a: Vec<BlockF16> =
            [8192.0f32, 1.0, 1.0].iter().map(|&v| BlockF16(half::f16::from_f32(v).to_le_bytes())).collect();
        assert_eq!(BlockF16::vec_dot(&w, &a), 16_777_218.0);
        assert_eq!(BlockF16::vec_dot(&[], &[]), 0.0);
    }

    fn finite_f16() -> impl Strategy<Value = BlockF16> {
        any::<u16>()
            .prop_map(|b| if (b >> 10) & 0x1F == 0x1F { b & 0x83FF } else { b })
            .prop_map(|b| BlockF16(b.to_le_bytes()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Products of two f16 are exact in f32 (22 significant bits, |p| between 2⁻⁴⁸ and
        /// 2³²), so ggml's dot is exactly the f64 reference (same terms, same order) rounded to
        /// f32: equality, no tolerance.
        #[test]
        fn vec_dot_is_the_rounded_reference(
            w in prop::collection::vec(finite_f16(), 0..200),
            a in prop::collection::vec(finite_f16(), 200),
        ) {
            // A fold from +0.0 like ggml's `sumf = 0` (`Iterator::sum` starts from −0.0).
            let want = w.iter().zip(&a).fold(0.0f64, |s, (x, y)| s + f64::from(x.get()) * f64::from(y.get()));
            prop_assert_eq!(BlockF16::vec_dot(&w, &a).to_bits(), (want as f32).to_bits());
        }

        /// Conversion is correct rounding to nearest even: the result is one of the two f16
        /// neighbours and no farther than the other.
        #[test]
        fn quantize_is_nearest(v in -70000.0f32..70000.0) {
            let h = half::f16::from_bits(quantize(v));
            if v.abs() < 65520.0 {
                let err = (f64::from(h.to_f32()) - f64::from(v)).abs();
                let up = half::f16::from_bits(h.to_bits().wrapping_add(1)).to_f32();
                let down = half::f16::from_bits(h.to_bits().wrapping_sub(1)).to_f32();
                for n in [up, down] {
                    if n.is_finite() {
                        prop_assert!(err <= (f64::from(n) - f64::from(v)).abs());
                    }
                }
            } else {
                prop_assert!(h.is_infinite());
            }
        }
    }
}
