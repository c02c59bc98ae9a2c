//! What the two host backends share: activations in a `Vec<f32>`, weights borrowed from the
//! memory map, the elementwise ops, and shape checks that turn a mismatch into an error.

use super::{BackendError, HostWeight, Op, Result};
use crate::contract::schema::Activation;
use crate::ops::activation::{gelu_erf, gelu_tanh, silu};

/// Row-major activations `[rows, cols]` in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub rows: usize,
    pub cols: usize,
    /// rows × cols values.
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn new(backend: &'static str, rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(shape(backend, Op::Memory, format!("{} values for [{rows}, {cols}]", data.len())));
        }
        Ok(Self { rows, cols, data })
    }
}

pub(super) fn shape(backend: &'static str, op: Op, message: String) -> BackendError {
    BackendError::Shape { backend, op, message }
}

/// A weight vector dequantized to f32 (gains and biases are small).
pub(super) fn load_vector(w: HostWeight<'_>) -> Vec<f32> {
    let r = &w.rows;
    let mut out = vec![0.0f32; r.n_rows * r.n_cols];
    for (i, row) in out.chunks_exact_mut(r.n_cols.max(1)).enumerate() {
        r.dequantize_row(i, row);
    }
    out
}

/// Rows of an embedding table by id, dequantized exactly as ggml's `get_rows`.
pub(super) fn get_rows(backend: &'static str, m: &HostWeight<'_>, ids: &[u32]) -> Result<HostTensor> {
    if m.transposed {
        return Err(BackendError::Unsupported {
            backend,
            op: Op::GetRows,
            detail: format!("`{}` is stored transposed; an embedding table holds one row per id", m.rows.name),
        });
    }
    let n = m.rows.n_cols;
    let mut data = vec![0.0f32; ids.len() * n];
    for (&id, out) in ids.iter().zip(data.chunks_exact_mut(n)) {
        if id as usize >= m.rows.n_rows {
            return Err(shape(
                backend,
                Op::GetRows,
                format!("id {id} of `{}` with {} rows", m.rows.name, m.rows.n_rows),
            ));
        }
        m.rows.dequantize_row(id as usize, out);
    }
    HostTensor::new(backend, ids.len(), n, data)
}

/// Checks `x` fits the weight and returns (tokens, n_in, n_out).
pub(super) fn mat_mul_dims(
    backend: &'static str,
    m: &HostWeight<'_>,
    bias: Option<&Vec<f32>>,
    x: &HostTensor,
) -> Result<(usize, usize, usize)> {
    if x.cols != m.n_in() {
        return Err(shape(backend, Op::MatMul, format!("`{}` takes {} inputs, got {}", m.rows.name, m.n_in(), x.cols)));
    }
    if let Some(b) = bias
        && b.len() != m.n_out()
    {
        return Err(shape(
            backend,
            Op::MatMul,
            format!("bias of {} for `{}` with {} outputs", b.len(), m.rows.name, m.n_out()),
        ));
    }
    Ok((x.rows, m.n_in(), m.n_out()))
}

pub(super) fn add_bias(y: &mut [f32], bias: Option<&Vec<f32>>, n_out: usize) {
    if let Some(b) = bias {
        for row in y.chunks_exact_mut(n_out) {
            for (v, &c) in row.iter_mut().zip(b) {
                *v += c;
            }
        }
    }
}

pub(super) fn check_groups(backend: &'static str, op: Op, x: &HostTensor, n: usize) -> Result<()> {
    if n == 0 || !x.cols.is_multiple_of(n) {
        return Err(shape(backend, op, format!("rows of {} are not whole groups of {n}", x.cols)));
    }
    Ok(())
}

/// LayerNorm's gain and bias cover the same groups.
pub(super) fn check_layer_norm(backend: &'static str, x: &HostTensor, w: &[f32], b: &[f32]) -> Result<()> {
    check_groups(backend, Op::LayerNorm, x, w.len())?;
    if b.len() != w.len() {
        return Err(shape(backend, Op::LayerNorm, format!("bias of {} for a gain of {}", b.len(), w.len())));
    }
    Ok(())
}

pub(super) fn activation(backend: &'static str, act: Activation, x: &HostTensor) -> Result<HostTensor> {
    let f = match act {
        Activation::Silu => silu,
        Activation::GeluTanh => gelu_tanh,
        Activation::GeluErf => gelu_erf,
    };
    HostTensor::new(backend, x.rows, x.cols, x.data.iter().map(|&v| f(v)).collect())
}

pub(super) fn zip_with(
    backend: &'static str,
    a: &HostTensor,
    b: &HostTensor,
    f: impl Fn(f32, f32) -> f32,
) -> Result<HostTensor> {
    if (a.rows, a.cols) != (b.rows, b.cols) {
        return Err(shape(backend, Op::Elementwise, format!("[{}, {}] with [{}, {}]", a.rows, a.cols, b.rows, b.cols)));
    }
    HostTensor::new(backend, a.rows, a.cols, a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect())
}

pub(super) fn split_cols(backend: &'static str, x: &HostTensor, widths: &[usize]) -> Result<Vec<HostTensor>> {
    if widths.iter().sum::<usize>() != x.cols {
        return Err(shape(backend, Op::Elementwise, format!("split of {} columns into {widths:?}", x.cols)));
    }
    let mut parts: Vec<Vec<f32>> = widths.iter().map(|w| Vec::with_capacity(w * x.rows)).collect();
    for row in x.data.chunks_exact(x.cols.max(1)) {
        let mut at = 0;
        for (part, &w) in parts.iter_mut().zip(widths) {
            part.extend_from_slice(&row[at..at + w]);
            at += w;
        }
    }
    parts.into_iter().zip(widths).map(|(data, &w)| HostTensor::new(backend, x.rows, w, data)).collect()
}

pub(super) fn check_attention(
    backend: &'static str,
    s: super::AttnShape,
    q: &HostTensor,
    k: &HostTensor,
    v: &HostTensor,
) -> Result<()> {
    let ok = s.n_head_kv > 0
        && s.n_head.is_multiple_of(s.n_head_kv)
        && q.cols == s.n_head * s.head_dim
        && k.cols == s.n_head_kv * s.head_dim
        && v.cols == k.cols
        && q.rows == k.rows
        && k.rows == v.rows;
    if !ok {
        return Err(shape(
            backend,
            Op::Attention,
            format!("q [{}, {}], k [{}, {}], v [{}, {}] for {s:?}", q.rows, q.cols, k.rows, k.cols, v.rows, v.cols),
        ));
    }
    Ok(())
}

pub(super) fn check_rope(backend: &'static str, x: &HostTensor, p: super::RopeParams, positions: &[u32]) -> Result<()> {
    if p.head_dim == 0 || !x.cols.is_multiple_of(p.head_dim) || p.n_rot > p.head_dim || !p.n_rot.is_multiple_of(2) {
        return Err(shape(backend, Op::Rope, format!("{p:?} on rows of {}", x.cols)));
    }
    if positions.len() != x.rows || x.rows == 0 {
        return Err(shape(backend, Op::Rope, format!("{} positions for {} rows", positions.len(), x.rows)));
    }
    Ok(())
}
