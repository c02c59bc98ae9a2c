//! Quantized kernels: one file per GGML block type (and APR's two), each a `#[repr(C)]` block with
//! a compile-time size assert, its dequantization, and its dot product with quantized
//! activations the way llama.cpp's CPU backend computes it.
//!
//! Three levels per weight type, each tested against the one before and against ggml's vectors:
//! - [`WeightBlock::dequantize`]: the same float operations in the same order as ggml's
//!   `dequantize_row_*`, so the result is bit-exact with ggml and gguf-py;
//! - the reference dot product ([`WeightRows::dot_reference`]): dequantize, accumulate in f64;
//! - [`WeightBlock::vec_dot`]: activations quantized to the weight's `vec_dot_type` (Q8_0, Q8_1,
//!   Q8_K, F16, BF16), integer sums per (sub-)block scaled in f32, mins through Q8_K's bsums.
//!
//! Blocks are byte arrays (alignment 1), so a tensor's bytes in a memory map are cast to blocks
//! without copying whatever their alignment.

mod apr_q4;
mod apr_q8;
mod bf16;
mod expand;
mod f16;
mod f32;
mod q2_k;
mod q3_k;
mod q4_0;
mod q4_1;
mod q4_k;
mod q5_0;
mod q5_1;
mod q5_k;
mod q6_k;
mod q8_0;
mod q8_1;
mod q8_k;
mod quantize;
mod rows;
mod simd;
#[cfg(test)]
mod testing;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use apr_q4::BlockAprQ4;
pub use apr_q8::apr_q8_scale;
pub use bf16::BlockBF16;
pub use expand::expand_to_f32;
pub use f16::BlockF16;
pub use f32::BlockF32;
pub use q2_k::BlockQ2K;
pub use q3_k::BlockQ3K;
pub use q4_0::BlockQ4_0;
pub use q4_1::BlockQ4_1;
pub use q4_k::BlockQ4K;
pub use q5_0::BlockQ5_0;
pub use q5_1::BlockQ5_1;
pub use q5_k::BlockQ5K;
pub use q6_k::BlockQ6K;
pub use q8_0::BlockQ8_0;
pub use q8_1::BlockQ8_1;
pub use q8_k::BlockQ8K;
pub use quantize::{WEIGHT_TYPES, quantize_row};
pub use rows::{Activations, KernelError, WeightRows, matmul, matvec};
pub use simd::{Isa, isa};

/// A block of `ELEMS` elements stored in `size_of::<Self>()` bytes.
pub trait Block: bytemuck::Pod {
    const ELEMS: usize;
}

/// A block of weights.
pub trait WeightBlock: Block {
    /// The block activations are quantized to before [`WeightBlock::vec_dot`] (ggml's
    /// `vec_dot_type`).
    type Act: ActBlock;

    /// Writes the block's `ELEMS` values, bit-exact with ggml's `dequantize_row_*`.
    fn dequantize(&self, out: &mut [f32]);

    /// Σ w·a over a row, as ggml's portable `ggml_vec_dot_*` computes it.
    fn vec_dot(w: &[Self], a: &[Self::Act]) -> f32;

    /// [`WeightBlock::vec_dot`] with the fastest instructions `isa` offers. Types without an
    /// optimized kernel use the portable one; every override is tested against it.
    fn vec_dot_isa(isa: Isa, w: &[Self], a: &[Self::Act]) -> f32 {
        let _ = isa;
        Self::vec_dot(w, a)
    }
}

/// A block of quantized activations.
pub trait ActBlock: Block {
    /// Quantizes `x` (`out.len() * ELEMS` values) as ggml's CPU `quantize_row_*` does.
    fn quantize(x: &[f32], out: &mut [Self]);

    /// Into the [`Activations`] variant of this block type.
    fn wrap(blocks: Vec<Self>) -> Activations;

    /// The blocks, if `acts` holds this block type.
    fn unwrap(acts: &Activations) -> Option<&[Self]>;
}

/// Implements [`ActBlock::wrap`] and [`ActBlock::unwrap`] for a block type's variant.
macro_rules! activation_variant {
    ($variant:ident) => {
        fn wrap(blocks: Vec<Self>) -> crate::quant::Activations {
            crate::quant::Activations::$variant(blocks)
        }
        fn unwrap(acts: &crate::quant::Activations) -> Option<&[Self]> {
            match acts {
                crate::quant::Activations::$variant(b) => Some(b),
                _ => None,
            }
        }
    };
}
pub(crate) use activation_variant;

/// Reads an f16 stored as two little-endian bytes.
#[inline]
pub(crate) fn f16_at(b: [u8; 2]) -> f32 {
    half::f16::from_le_bytes(b).to_f32()
}

/// Rounds to the nearest integer, ties to even — what ggml's `nearest_int` and `_mm256_round_ps`
/// with `_MM_ROUND_NEAREST` do.
#[inline]
pub(crate) fn round_even(x: f32) -> f32 {
    x.round_ties_even()
}
