//! Backends: where the decoder's ops run. One trait, grouped by op family; the decoder is generic
//! over it and names no concrete backend, so a device backend (WGPU, CUDA) plugs in by
//! implementing it with its own tensor, weight and cache types.
//!
//! An op a backend cannot run answers [`BackendError::Unsupported`] naming the op. There is no
//! fallback to another backend, ever: a run either happens where it was asked to or fails.
//!
//! - [`reference`]: scalar, f64 accumulation over dequantized weights — the oracle.
//! - [`cpu`]: rayon and the quantized kernels; activations are quantized to each weight type's
//!   `vec_dot_type` as llama.cpp's CPU backend does.

mod check;
pub mod cpu;
pub mod cuda;
mod host;
pub mod reference;
pub mod wgpu;

use std::fmt;

use crate::DType;
use crate::contract::schema::{Activation, RopeStyle};
use crate::ops::kv_cache::ContextFull;
use crate::quant::{KernelError, WeightRows};

pub use host::HostTensor;

/// The op families of the [`Backend`] trait, for `Unsupported` answers and reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Weights and activations in and out of the backend's memory.
    Memory,
    /// Rows of an embedding matrix by token id.
    GetRows,
    /// Activations times a (quantized) weight matrix.
    MatMul,
    RmsNorm,
    LayerNorm,
    Rope,
    /// Causal attention over the KV cache.
    Attention,
    Activation,
    /// Add, multiply, bias, split.
    Elementwise,
    /// Router softmax, top-k and renormalization; gathering tokens for an expert and summing
    /// the experts' outputs; the shared expert's sigmoid gate.
    Moe,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Memory => "memory",
            Op::GetRows => "get_rows",
            Op::MatMul => "mat_mul",
            Op::RmsNorm => "rms_norm",
            Op::LayerNorm => "layer_norm",
            Op::Rope => "rope",
            Op::Attention => "attention",
            Op::Activation => "activation",
            Op::Elementwise => "elementwise",
            Op::Moe => "moe",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("backend `{backend}` does not support {op}: {detail}")]
    Unsupported { backend: &'static str, op: Op, detail: String },
    #[error(transparent)]
    ContextFull(#[from] ContextFull),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("backend `{backend}`, {op}: {message}")]
    Shape { backend: &'static str, op: Op, message: String },
}

pub type Result<T, E = BackendError> = std::result::Result<T, E>;

/// A weight as the file stores it: a row-major matrix borrowed from the memory map.
#[derive(Clone, Copy, Debug)]
pub struct HostWeight<'m> {
    pub rows: WeightRows<'m>,
    /// The file stores `[in, out]` (GPT-2's Conv1D in HF checkpoints): y = x · W, not x · Wᵀ.
    pub transposed: bool,
}

impl HostWeight<'_> {
    /// Width of the input the weight multiplies.
    pub fn n_in(&self) -> usize {
        if self.transposed { self.rows.n_rows } else { self.rows.n_cols }
    }

    /// Width of the output.
    pub fn n_out(&self) -> usize {
        if self.transposed { self.rows.n_cols } else { self.rows.n_rows }
    }
}

/// A weight as a backend holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldWeight {
    /// The file tensor it came from (an expert slab names its stacked tensor).
    pub tensor: String,
    pub dtype: DType,
    pub bytes: usize,
}

/// Rotary embedding parameters of one model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeParams {
    pub style: RopeStyle,
    pub head_dim: usize,
    /// The first `n_rot` values of each head rotate.
    pub n_rot: usize,
    pub base: f64,
}

/// Head geometry of attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
}

/// Where the forward pass runs. Tensors are `[rows, cols]` (tokens × features); heads are
/// flattened into the columns, `[n_tokens, n_head * head_dim]`.
pub trait Backend: Sync {
    /// Activations in the backend's memory.
    type Tensor;
    /// A weight matrix made usable by the backend; borrows the file's bytes on host backends.
    type Matrix<'m>;
    /// A weight vector (norm gain, bias) as f32.
    type Vector;
    /// Keys and values of every position so far, per layer.
    type Cache;

    /// The name users select it by (`reference`, `cpu`).
    fn name(&self) -> &'static str;

    // Memory.
    fn upload(&self, rows: usize, cols: usize, data: &[f32]) -> Result<Self::Tensor>;
    fn download(&self, t: &Self::Tensor) -> Result<Vec<f32>>;
    /// `(rows, cols)` of a tensor.
    fn dims(&self, t: &Self::Tensor) -> (usize, usize);
    fn load_matrix<'m>(&self, w: HostWeight<'m>) -> Result<Self::Matrix<'m>>;
    /// How the backend holds a loaded weight: the file tensor's name, the dtype it computes
    /// with and the bytes it keeps (borrowed or its own) — so "quantized stays quantized" is
    /// checked from the backend's side.
    fn matrix_info(&self, m: &Self::Matrix<'_>) -> HeldWeight;
    fn load_vector(&self, w: HostWeight<'_>) -> Result<Self::Vector>;
    fn new_cache(&self, n_layer: usize, n_ctx: usize, n_head_kv: usize, head_dim: usize) -> Result<Self::Cache>;

    // Quantized matrix ops.
    /// Rows `ids` of `m` (an embedding table), dequantized: `[ids.len(), n_in]`.
    fn get_rows(&self, m: &Self::Matrix<'_>, ids: &[u32]) -> Result<Self::Tensor>;
    /// `x · Wᵀ` (or `x · W` for a transposed weight), then `+ bias`: `[rows, n_out]`.
    fn mat_mul(&self, m: &Self::Matrix<'_>, bias: Option<&Self::Vector>, x: &Self::Tensor) -> Result<Self::Tensor>;

    // Norms, over groups of `w.len()` values (a row, or a head for per-head norms).
    fn rms_norm(&self, x: &Self::Tensor, w: &Self::Vector, eps: f32) -> Result<Self::Tensor>;
    fn layer_norm(&self, x: &Self::Tensor, w: &Self::Vector, b: &Self::Vector, eps: f32) -> Result<Self::Tensor>;

    // Rope: row t of `x` sits at `positions[t]`.
    fn rope(&self, x: &mut Self::Tensor, p: RopeParams, positions: &[u32]) -> Result<()>;

    // Attention with the KV cache.
    /// Appends `k`, `v` to `layer`'s cache, then attends causally with `q` over every cached
    /// position. Returns the output `[n_tokens, n_head * head_dim]` and, when `soft_max` is
    /// asked for, the attention weights `[n_head, n_tokens * n_kv]` (zeros where masked).
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        cache: &mut Self::Cache,
        layer: usize,
        shape: AttnShape,
        q: &Self::Tensor,
        k: &Self::Tensor,
        v: &Self::Tensor,
        soft_max: bool,
    ) -> Result<(Self::Tensor, Option<Self::Tensor>)>;

    // Activations.
    fn activation(&self, act: Activation, x: &Self::Tensor) -> Result<Self::Tensor>;

    // Elementwise.
    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    fn mul(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// Splits the columns into consecutive groups of `widths` (a fused qkv projection).
    fn split_cols(&self, x: &Self::Tensor, widths: &[usize]) -> Result<Vec<Self::Tensor>>;

    // Mixture of experts. The router runs in f32 (or wider) whatever the weights are.
    /// Softmax of each row: router logits → expert probabilities.
    fn soft_max(&self, x: &Self::Tensor) -> Result<Self::Tensor>;
    /// The columns of each row's `k` largest values, largest first, equal values to the lower
    /// column: `[rows * k]`, on the host, because they decide which expert weights are read.
    fn top_k(&self, x: &Self::Tensor, k: usize) -> Result<Vec<u32>>;
    /// Row t's values at columns `ids[t * k..][..k]`: `[rows, k]`.
    fn take_cols(&self, x: &Self::Tensor, ids: &[u32], k: usize) -> Result<Self::Tensor>;
    /// Each row divided by its sum.
    fn normalize_rows(&self, x: &Self::Tensor) -> Result<Self::Tensor>;
    /// Rows `rows` of `x`, in that order: the tokens routed to one expert.
    fn take_rows(&self, x: &Self::Tensor, rows: &[u32]) -> Result<Self::Tensor>;
    /// The routed output: for every token t, Σ_j w[t, j] · y(t·k + j) in slot order j, where
    /// `weights` is `[n_tokens, k]` and each part `(slots, y)` holds one expert's output rows for
    /// those slots. Every slot must be covered exactly once.
    fn moe_sum(&self, weights: &Self::Tensor, parts: &[(&[u32], &Self::Tensor)]) -> Result<Self::Tensor>;
    /// Row t of `x` times σ(g[t]), `g` being `[rows, 1]`: the shared expert's gate.
    fn sigmoid_gate(&self, x: &Self::Tensor, g: &Self::Tensor) -> Result<Self::Tensor>;
}

/// The backends this build can run on this machine, by name.
pub const HOST_BACKENDS: &[&str] = &["reference", "cpu"];
