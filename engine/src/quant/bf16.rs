//! BF16 weights: blocks of one bfloat16 element (the top half of an f32). Activations are converted
//! to bf16 too (ggml's `vec_dot_type` for BF16 is BF16).

use bytemuck::{Pod, Zeroable};

use super::{ActBlock, Block, Isa, WeightBlock};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockBF16(pub [u8; 2]);
const _: () = assert!(size_of::<BlockBF16>() == 2);

impl BlockBF16 {
    /// The value, exactly: the bf16 bits are the high half of the f32's.
    pub fn get(self) -> f32 {
        f32::from_bits(u32::from(u16::from_le_bytes(self.0)) << 16)
    }

    /// ggml's `ggml_compute_fp32_to_bf16`: round to nearest, ties to even, by adding
    /// 0x7FFF + (bit 16) to the f32 bits; a NaN keeps its top bits with the quiet bit forced.
    /// Finite values past the largest bf16 round to ±inf; subnormals are kept (no flush). Written
    /// out as ggml has it; `half::bf16::from_f32` gives the same bits (tested).
    pub fn from_f32(v: f32) -> BlockBF16 {
        let u = v.to_bits();
        let h = if u & 0x7FFF_FFFF > 0x7F80_0000 { (u >> 16) | 64 } else { (u + (0x7FFF + ((u >> 16) & 1))) >> 16 };
        BlockBF16((h as u16).to_le_bytes())
    }
}

impl Block for BlockBF16 {
    const ELEMS: usize = 1;
}

impl WeightBlock for BlockBF16 {
    type Act = BlockBF16;

    fn dequantize(&self, out: &mut [f32]) {
        out[0] = self.get();
    }

    /// `ggml_vec_dot_bf16` without SIMD: each product in f32, accumulated in `ggml_float` = f64,
    /// rounded to f32 once at the end. A product of two bf16 has 16 significant bits, so it is
    /// exact in f32 — unless it leaves f32's range (bf16 shares f32's exponents): then it is ±inf
    /// or rounded into the subnormals, as in ggml. (ggml's SIMD paths accumulate in f32 lanes,
    /// and AVX512-BF16's `vdpbf16ps` flushes subnormals; they differ from this by f32 rounding.)
    fn vec_dot(w: &[Self], a: &[Self]) -> f32 {
        let mut sum = 0.0f64;
        for (x, y) in w.iter().zip(a) {
            sum += f64::from(x.get() * y.get());
        }
        sum as f32
    }

    /// On x86-64 with AVX2 and FMA: [`super::x86::vec_dot_bf16_avx2`], an f32-lane sum — not
    /// bit-identical with this f64 sum (tested against it with a tolerance).
    fn vec_dot_isa(isa: Isa, w: &[Self], a: &[Self]) -> f32 {
        match isa {
            // SAFETY: `isa` is only ever a level the CPU was detected to support.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512Vnni => unsafe { super::x86::vec_dot_bf16_avx2(w, a) },
            _ => Self::vec_dot(w, a),
        }
    }
}

impl ActBlock for BlockBF16 {
    /// ggml's `ggml_cpu_fp32_to_bf16` (scalar on every ISA): [`BlockBF16::from_f32`].
    fn quantize(x: &[f32], out: &mut [Self]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = BlockBF16::from_f32(v);
        }
    }

    super::activation_variant!(BF16);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bits(v: f32) -> u16 {
        u16::from_le_bytes(BlockBF16::from_f32(v).0)
    }

    #[test]
    fn conversion_rounds_to_nearest_even() {
        // 1 + 2⁻⁸ (0x3F808000) is halfway between 1 (0x3F80) and 1 + 2⁻⁷ (0x3F81): to even.
        assert_eq!(bits(f32::from_bits(0x3F80_8000)), 0x3F80);
        // 0x3F818000 is halfway between 0x3F81 and 0x3F82: to even 0x3F82.
        assert_eq!(bits(f32::from_bits(0x3F81_8000)), 0x3F82);
        assert_eq!(bits(f32::from_bits(0x3F80_8001)), 0x3F81);
        assert_eq!(bits(f32::from_bits(0x3F80_7FFF)), 0x3F80);
        assert_eq!(bits(-1.0), 0xBF80);
        assert_eq!(bits(-0.0), 0x8000);
        assert_eq!(bits(f32::MAX), 0x7F80); // rounds up into infinity
        assert_eq!(bits(f32::INFINITY), 0x7F80);
        assert_eq!(bits(f32::NEG_INFINITY), 0xFF80);
        assert_eq!(bits(f32::from_bits(0x0000_8000)), 0x0000); // subnormal tie, to even
        assert_eq!(bits(f32::from_bits(0x0001_8000)), 0x0002);
        // NaNs: top bits kept, quiet bit forced, never rounded into infinity.
        assert_eq!(bits(f32::from_bits(0x7F80_0001)), 0x7FC0);
        assert_eq!(bits(f32::from_bits(0xFF81_FFFF)), 0xFFC1);
        assert_eq!(bits(f32::NAN), 0x7FC0);
    }

    #[test]
    fn dot_products_in_f32_sums_in_f64() {
        let b = |v: f32| BlockBF16::from_f32(v);
        // 2²⁴ + 1 + 1: f64 accumulation keeps both ones.
        let w = [b(4096.0), b(1.0), b(1.0)];
        let a = [b(4096.0), b(1.0), b(1.0)];
        assert_eq!(BlockBF16::vec_dot(&w, &a), 16_777_218.0);
        // The product is formed in f32, so it overflows even where the f64 sum would not.
        let w = [b(1e30), b(-1e30)];
        let a = [b(1e30), b(1e30)];
        assert!(BlockBF16::vec_dot(&w, &a).is_nan()); // inf − inf, as in ggml
    }

    /// bf16 values whose pairwise products stay normal f32 (exponents within ±60).
    fn moderate_bf16() -> impl Strategy<Value = BlockBF16> {
        (any::<bool>(), 67u16..=187, 0u16..128)
            .prop_map(|(neg, e, m)| BlockBF16((u16::from(neg) << 15 | e << 7 | m).to_le_bytes()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// With products inside f32's normal range they are exact (8 × 8 significant bits), so
        /// the dot is exactly the f64 reference (same terms, same order) rounded to f32.
        #[test]
        fn vec_dot_is_the_rounded_reference(
            w in prop::collection::vec(moderate_bf16(), 0..200),
            a in prop::collection::vec(moderate_bf16(), 200),
        ) {
            // A fold from +0.0 like ggml's `sumf = 0` (`Iterator::sum` starts from −0.0).
            let want = w.iter().zip(&a).fold(0.0f64, |s, (x, y)| s + f64::from(x.get()) * f64::from(y.get()));
            prop_assert_eq!(BlockBF16::vec_dot(&w, &a).to_bits(), (want as f32).to_bits());
        }

        /// ggml's conversion and `half::bf16::from_f32` (2.7: sticky-or-lsb rounding, same NaN
        /// quieting) agree on every bit pattern.
        #[test]
        fn conversion_matches_the_half_crate(u in any::<u32>()) {
            let v = f32::from_bits(u);
            prop_assert_eq!(u16::from_le_bytes(BlockBF16::from_f32(v).0), half::bf16::from_f32(v).to_bits());
        }

        /// The conversion is correct rounding to nearest (even on ties) for every finite f32:
        /// checked against an f64 computation of the two neighbours.
        #[test]
        fn conversion_is_nearest_even(u in any::<u32>()) {
            let v = f32::from_bits(u);
            prop_assume!(v.is_finite());
            let got = BlockBF16::from_f32(v).get();
            let down = f32::from_bits(u & 0xFFFF_0000);
            let up = f32::from_bits((u & 0xFFFF_0000) + 0x1_0000);
            // Past the largest bf16 the next step up is ±2¹²⁸ (IEEE: overflow to ±inf when the
            // value with an unbounded exponent rounds there).
            let up64 = if up.is_infinite() { 2f64.powi(128).copysign(f64::from(v)) } else { f64::from(up) };
            let (dd, du) = ((f64::from(v) - f64::from(down)).abs(), (up64 - f64::from(v)).abs());
            let want = if u & 0xFFFF == 0 || dd < du || (dd == du && (u >> 16) & 1 == 0) { down } else { up };
            prop_assert_eq!(got.to_bits(), want.to_bits());
        }
    }
}
