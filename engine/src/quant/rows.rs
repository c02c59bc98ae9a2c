//! A weight matrix over a tensor's bytes, and the matrix-vector / matrix-matrix products over its
//! rows. One generic path for every block type; the dtype picks the block at run time.

use rayon::prelude::*;

use super::{
    ActBlock, Block, BlockAprQ4, BlockBF16, BlockF16, BlockF32, BlockQ2K, BlockQ3K, BlockQ4_0, BlockQ4_1, BlockQ4K,
    BlockQ5_0, BlockQ5_1, BlockQ5K, BlockQ6K, BlockQ8_0, BlockQ8_1, BlockQ8K, WeightBlock, apr_q8,
};
use crate::dtype::DType;
use crate::model::{TensorInfo, UnsupportedDType};

/// Runs `$body` with `$B` bound to the block type of `$dtype`; `$other` for types without
/// row blocks (APR-q8, and the types the engine cannot compute with).
macro_rules! with_block {
    ($dtype:expr, $B:ident => $body:expr, $other:expr) => {
        match $dtype {
            DType::F32 => {
                type $B = BlockF32;
                $body
            }
            DType::F16 => {
                type $B = BlockF16;
                $body
            }
            DType::BF16 => {
                type $B = BlockBF16;
                $body
            }
            DType::Q4_0 => {
                type $B = BlockQ4_0;
                $body
            }
            DType::Q4_1 => {
                type $B = BlockQ4_1;
                $body
            }
            DType::Q5_0 => {
                type $B = BlockQ5_0;
                $body
            }
            DType::Q5_1 => {
                type $B = BlockQ5_1;
                $body
            }
            DType::Q8_0 => {
                type $B = BlockQ8_0;
                $body
            }
            DType::Q2_K => {
                type $B = BlockQ2K;
                $body
            }
            DType::Q3_K => {
                type $B = BlockQ3K;
                $body
            }
            DType::Q4_K => {
                type $B = BlockQ4K;
                $body
            }
            DType::Q5_K => {
                type $B = BlockQ5K;
                $body
            }
            DType::Q6_K => {
                type $B = BlockQ6K;
                $body
            }
            DType::AprQ4 => {
                type $B = BlockAprQ4;
                $body
            }
            _ => $other,
        }
    };
}

/// Why a tensor cannot be used as a weight matrix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Unsupported(#[from] UnsupportedDType),
    #[error("tensor `{tensor}`: {message}")]
    Layout { tensor: String, message: String },
}

/// Activations quantized to a weight type's `vec_dot_type`, one row of `n_cols` values.
#[derive(Clone, Debug)]
pub enum Activations {
    F32(Vec<BlockF32>),
    F16(Vec<BlockF16>),
    BF16(Vec<BlockBF16>),
    Q8_0(Vec<BlockQ8_0>),
    Q8_1(Vec<BlockQ8_1>),
    Q8K(Vec<BlockQ8K>),
}

/// A row-major weight matrix `[n_rows, n_cols]` borrowed from a tensor's bytes.
#[derive(Clone, Copy, Debug)]
pub struct WeightRows<'a> {
    pub name: &'a str,
    pub dtype: DType,
    /// The rows, `n_rows * row_bytes` bytes.
    bytes: &'a [u8],
    /// APR-q8's per-tensor scale (its 4-byte header); empty for every other type.
    scale: &'a [u8],
    pub n_rows: usize,
    /// Elements per row.
    pub n_cols: usize,
    row_bytes: usize,
}

impl<'a> WeightRows<'a> {
    /// The tensor as a matrix: its innermost dimension is the row, every outer dimension
    /// multiplies the row count.
    pub fn new(t: &'a TensorInfo, bytes: &'a [u8]) -> Result<Self, KernelError> {
        let n_cols = t.shape.last().copied().unwrap_or(1) as usize;
        let n_rows = (t.n_elems() as usize).checked_div(n_cols).unwrap_or(0);
        Self::from_parts(&t.name, t.dtype, bytes, n_rows, n_cols)
    }

    pub fn from_parts(
        name: &'a str,
        dtype: DType,
        bytes: &'a [u8],
        n_rows: usize,
        n_cols: usize,
    ) -> Result<Self, KernelError> {
        let layout = |message: String| KernelError::Layout { tensor: name.to_owned(), message };
        if !dtype.is_computable() {
            return Err(UnsupportedDType { tensor: name.to_owned(), dtype }.into());
        }
        let (block_elems, block_bytes) = with_block!(dtype, B => (B::ELEMS, size_of::<B>()), (1, 1));
        // APR-q8 rows are dotted with Q8_0 activations, so they too come in whole 32s.
        let row_unit = if dtype == DType::AprQ8 { 32 } else { block_elems };
        if !n_cols.is_multiple_of(row_unit) {
            return Err(layout(format!("rows of {n_cols} are not whole {dtype} blocks of {row_unit}")));
        }
        let row_bytes = n_cols / block_elems * block_bytes;
        let header = if dtype == DType::AprQ8 { 4 } else { 0 };
        if bytes.len() != header + n_rows * row_bytes {
            return Err(layout(format!("{} bytes for {n_rows} rows of {n_cols} {dtype}", bytes.len())));
        }
        let (scale, bytes) = bytes.split_at(header);
        Ok(Self { name, dtype, bytes, scale, n_rows, n_cols, row_bytes })
    }

    /// Rows `first..first + n` as a matrix of their own, borrowing the same bytes: one expert's
    /// slab of a stacked `[n_expert, rows, cols]` tensor. Nothing is read.
    pub fn slab(&self, first: usize, n: usize) -> Self {
        assert!(first + n <= self.n_rows, "rows {first}..{} of `{}` with {}", first + n, self.name, self.n_rows);
        let bytes = &self.bytes[first * self.row_bytes..(first + n) * self.row_bytes];
        Self { bytes, n_rows: n, ..*self }
    }

    /// Bytes of the rows (without APR-q8's shared scale): what one pass over the matrix reads.
    pub fn n_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The rows' bytes as stored (without APR-q8's shared scale).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// APR-q8's per-tensor scale, which multiplies every element and is not part of
    /// [`WeightRows::bytes`]; `None` for every other type.
    pub fn scale(&self) -> Option<f32> {
        (self.dtype == DType::AprQ8).then(|| apr_q8::apr_q8_scale(self.scale))
    }

    fn row_bytes(&self, r: usize) -> &'a [u8] {
        &self.bytes[r * self.row_bytes..(r + 1) * self.row_bytes]
    }

    fn row<B: Block>(&self, r: usize) -> &'a [B] {
        bytemuck::cast_slice(self.row_bytes(r))
    }

    /// Row `r` as f32, bit-exact with ggml's dequantization.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        assert_eq!(out.len(), self.n_cols);
        with_block!(self.dtype, B => {
            for (block, y) in self.row::<B>(r).iter().zip(out.chunks_exact_mut(B::ELEMS)) {
                block.dequantize(y);
            }
        }, apr_q8::dequantize_row(apr_q8::apr_q8_scale(self.scale), bytemuck::cast_slice(self.row_bytes(r)), out))
    }

    /// The reference dot product of row `r` with f32 activations: dequantize, accumulate in f64.
    pub fn dot_reference(&self, r: usize, x: &[f32]) -> f64 {
        let mut row = vec![0.0f32; self.n_cols];
        self.dequantize_row(r, &mut row);
        row.iter().zip(x).map(|(&w, &v)| f64::from(w) * f64::from(v)).sum()
    }

    /// `x` quantized the way llama.cpp quantizes activations for this weight type.
    pub fn quantize(&self, x: &[f32]) -> Activations {
        assert_eq!(x.len(), self.n_cols);
        with_block!(self.dtype, B => quantize_as::<<B as WeightBlock>::Act>(x), quantize_as::<BlockQ8_0>(x))
    }

    /// Row `r` · activations, as llama.cpp's CPU backend computes it (integer sums per block).
    /// `acts` must come from [`WeightRows::quantize`] of a matrix of the same dtype and width.
    pub fn dot(&self, r: usize, acts: &Activations) -> f32 {
        self.dot_isa(super::isa(), r, acts)
    }

    /// [`WeightRows::dot`] with the kernels of a given instruction set (tests compare them).
    pub fn dot_isa(&self, isa: super::Isa, r: usize, acts: &Activations) -> f32 {
        with_block!(self.dtype, B => {
            let a = <<B as WeightBlock>::Act as ActBlock>::unwrap(acts).expect("activations of this weight type");
            B::vec_dot_isa(isa, self.row::<B>(r), a)
        }, {
            let Activations::Q8_0(a) = acts else { panic!("APR-q8 rows take Q8_0 activations") };
            apr_q8::vec_dot_isa(isa, apr_q8::apr_q8_scale(self.scale), bytemuck::cast_slice(self.row_bytes(r)), a)
        })
    }
}

fn quantize_as<A: ActBlock>(x: &[f32]) -> Activations {
    let mut blocks = vec![A::zeroed(); x.len() / A::ELEMS];
    A::quantize(x, &mut blocks);
    A::wrap(blocks)
}

/// Rows per rayon task: enough work per task that scheduling costs nothing.
const ROWS_PER_TASK: usize = 16;

/// y = W x: `x` has `n_cols` values, `y` gets `n_rows`. Activations are quantized once.
pub fn matvec(w: &WeightRows<'_>, x: &[f32], y: &mut [f32]) {
    assert_eq!(y.len(), w.n_rows);
    let acts = w.quantize(x);
    y.par_chunks_mut(ROWS_PER_TASK).enumerate().for_each(|(chunk, out)| {
        for (i, o) in out.iter_mut().enumerate() {
            *o = w.dot(chunk * ROWS_PER_TASK + i, &acts);
        }
    });
}

/// Y = X Wᵀ for `n_tokens` rows of `x` (`[n_tokens, n_cols]`) into `y` (`[n_tokens, n_rows]`).
/// Each weight row is read once for all tokens.
pub fn matmul(w: &WeightRows<'_>, x: &[f32], y: &mut [f32]) {
    let n_tokens = x.len() / w.n_cols;
    assert_eq!(x.len(), n_tokens * w.n_cols);
    assert_eq!(y.len(), n_tokens * w.n_rows);
    let acts: Vec<Activations> = x.chunks_exact(w.n_cols).map(|row| w.quantize(row)).collect();
    // Work on the transpose ([n_rows, n_tokens]) so each task owns whole weight rows.
    let mut yt = vec![0.0f32; y.len()];
    yt.par_chunks_mut(ROWS_PER_TASK * n_tokens).enumerate().for_each(|(chunk, out)| {
        for (i, row_out) in out.chunks_exact_mut(n_tokens).enumerate() {
            let r = chunk * ROWS_PER_TASK + i;
            for (o, a) in row_out.iter_mut().zip(&acts) {
                *o = w.dot(r, a);
            }
        }
    });
    for (r, row) in yt.chunks_exact(n_tokens).enumerate() {
        for (t, &v) in row.iter().enumerate() {
            y[t * w.n_rows + r] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Q8_0 matrix of `rows × cols` with varied scales and quants.
    fn q8_0_matrix(rows: usize, cols: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for b in 0..rows * cols / 32 {
            out.extend(half::f16::from_f32(0.01 + (b % 7) as f32 * 0.003).to_le_bytes());
            out.extend((0..32).map(|i| ((i * 37 + b * 11) % 255) as u8));
        }
        out
    }

    #[test]
    fn a_slab_is_the_same_rows_without_reading_or_copying() {
        let bytes = q8_0_matrix(6, 64);
        let w = WeightRows::from_parts("exps", DType::Q8_0, &bytes, 6, 64).unwrap();
        let slab = w.slab(2, 3);
        assert_eq!((slab.n_rows, slab.n_cols, slab.n_bytes()), (3, 64, 3 * 2 * 34));
        assert_eq!(slab.row_bytes(0).as_ptr(), w.row_bytes(2).as_ptr(), "borrowed, not copied");
        let (mut a, mut b) = (vec![0.0f32; 64], vec![0.0f32; 64]);
        for r in 0..3 {
            slab.dequantize_row(r, &mut a);
            w.dequantize_row(r + 2, &mut b);
            assert_eq!(a, b);
        }
        // APR-q8's shared scale travels with every slab; it is not part of a slab's bytes.
        let mut apr = 0.5f32.to_le_bytes().to_vec();
        apr.extend((0..4 * 32).map(|i| (i % 200) as u8));
        let w = WeightRows::from_parts("exps", DType::AprQ8, &apr, 4, 32).unwrap();
        let slab = w.slab(3, 1);
        assert_eq!(slab.n_bytes(), 32);
        let mut a = vec![0.0f32; 32];
        slab.dequantize_row(0, &mut a);
        w.dequantize_row(3, &mut b[..32]);
        assert_eq!(a, b[..32]);
    }

    #[test]
    #[should_panic(expected = "rows 4..7 of `exps` with 6")]
    fn a_slab_past_the_end_is_a_bug_not_a_read() {
        let bytes = q8_0_matrix(6, 64);
        WeightRows::from_parts("exps", DType::Q8_0, &bytes, 6, 64).unwrap().slab(4, 3);
    }

    #[test]
    fn types_without_kernels_are_refused_by_name() {
        let bytes = vec![0u8; 66];
        let err = WeightRows::from_parts("blk.0.ffn_up.weight", DType::IQ2_XXS, &bytes, 1, 256).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tensor `blk.0.ffn_up.weight` is iq2_xxs, which the engine cannot compute with (it can be listed, not evaluated)"
        );
    }

    #[test]
    fn layouts_are_checked() {
        let bytes = q8_0_matrix(2, 64);
        let err = WeightRows::from_parts("w", DType::Q8_0, &bytes, 2, 48).unwrap_err();
        assert!(err.to_string().contains("not whole q8_0 blocks of 32"), "{err}");
        let err = WeightRows::from_parts("w", DType::Q8_0, &bytes[1..], 2, 64).unwrap_err();
        assert!(err.to_string().contains("135 bytes for 2 rows of 64 q8_0"), "{err}");
    }

    #[test]
    fn matvec_and_matmul_agree_with_each_other_and_the_reference() {
        let (rows, cols, n_tokens) = (37, 128, 3);
        let bytes = q8_0_matrix(rows, cols);
        let w = WeightRows::from_parts("w", DType::Q8_0, &bytes, rows, cols).unwrap();
        let x: Vec<f32> = (0..n_tokens * cols).map(|i| ((i * 13) % 29) as f32 * 0.05 - 0.7).collect();
        let mut y = vec![0.0f32; n_tokens * rows];
        matmul(&w, &x, &mut y);
        for t in 0..n_tokens {
            let xt = &x[t * cols..(t + 1) * cols];
            let mut yt = vec![0.0f32; rows];
            matvec(&w, xt, &mut yt);
            // The same dot per element, whatever the batching: bit-identical.
            assert_eq!(&y[t * rows..(t + 1) * rows], &yt[..]);
            for (r, &v) in yt.iter().enumerate() {
                // Against f64 math on f32 activations: Q8_0 activation rounding, ≤ 1/254 per element.
                let want = w.dot_reference(r, xt);
                let mut wr = vec![0.0f32; cols];
                w.dequantize_row(r, &mut wr);
                let scale: f64 = wr.iter().zip(xt).map(|(&a, &b)| f64::from(a * b).abs()).sum();
                assert!((f64::from(v) - want).abs() <= scale / 254.0 + 1e-9, "row {r}: {v} vs {want}");
            }
        }
    }
}
