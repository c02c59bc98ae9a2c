//! What the two host backends share: activations in a `Vec<f32>`, weights borrowed from the
//! memory map, the elementwise ops, and shape checks that turn a mismatch into an error.

use super::check::{self, Dims};
use super::{BackendError, HostWeight, Op, Result};
use crate::contract::schema::Activation;
use crate::ops::activation::{gelu_erf, gelu_tanh, silu};
use crate::ops::moe;

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
        check::upload(backend, rows, cols, data.len())?;
        Ok(Self { rows, cols, data })
    }

    pub fn dims(&self) -> Dims {
        (self.rows, self.cols)
    }
}

/// A host weight is the file's bytes, borrowed: its dtype and size as stored.
pub(super) fn held(m: &HostWeight<'_>) -> super::HeldWeight {
    super::HeldWeight { tensor: m.rows.name.to_owned(), dtype: m.rows.dtype, bytes: m.rows.n_bytes() }
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
    check::row_ids(backend, Op::GetRows, m.rows.name, m.rows.n_rows, ids)?;
    let n = m.rows.n_cols;
    let mut data = vec![0.0f32; ids.len() * n];
    for (&id, out) in ids.iter().zip(data.chunks_exact_mut(n)) {
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
    check::mat_mul(backend, m.rows.name, m.n_in(), m.n_out(), bias.map(Vec::len), x.dims())?;
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
    check::same(backend, a.dims(), b.dims())?;
    HostTensor::new(backend, a.rows, a.cols, a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect())
}

pub(super) fn split_cols(backend: &'static str, x: &HostTensor, widths: &[usize]) -> Result<Vec<HostTensor>> {
    check::split(backend, x.cols, widths)?;
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

/// `f` over every row, for the row-wise router ops.
pub(super) fn map_rows(backend: &'static str, x: &HostTensor, f: fn(&[f32], &mut [f32])) -> Result<HostTensor> {
    if x.cols == 0 {
        return Err(check::shape(backend, Op::Moe, format!("rows of 0 values in [{}, 0]", x.rows)));
    }
    let mut out = vec![0.0f32; x.data.len()];
    for (o, r) in out.chunks_exact_mut(x.cols).zip(x.data.chunks_exact(x.cols)) {
        f(r, o);
    }
    HostTensor::new(backend, x.rows, x.cols, out)
}

pub(super) fn top_k(backend: &'static str, x: &HostTensor, k: usize) -> Result<Vec<u32>> {
    if k == 0 || k > x.cols {
        return Err(check::shape(backend, Op::Moe, format!("top {k} of rows of {}", x.cols)));
    }
    let mut ids = vec![0u32; x.rows * k];
    for (row, out) in x.data.chunks_exact(x.cols).zip(ids.chunks_exact_mut(k)) {
        moe::top_k(row, out);
    }
    Ok(ids)
}

pub(super) fn take_cols(backend: &'static str, x: &HostTensor, ids: &[u32], k: usize) -> Result<HostTensor> {
    check::take_cols(backend, x.dims(), ids, k)?;
    let data = ids.iter().enumerate().map(|(i, &c)| x.data[(i / k) * x.cols + c as usize]).collect();
    HostTensor::new(backend, x.rows, k, data)
}

pub(super) fn take_rows(backend: &'static str, x: &HostTensor, rows: &[u32]) -> Result<HostTensor> {
    check::take_rows(backend, x.dims(), rows)?;
    let mut data = Vec::with_capacity(rows.len() * x.cols);
    for &r in rows {
        data.extend_from_slice(&x.data[r as usize * x.cols..][..x.cols]);
    }
    HostTensor::new(backend, rows.len(), x.cols, data)
}

/// `moe_sum`'s inputs checked and arranged by slot: for each slot, its output row.
pub(super) fn moe_slots<'a>(
    backend: &'static str,
    weights: &HostTensor,
    parts: &[(&[u32], &'a HostTensor)],
) -> Result<(usize, Vec<&'a [f32]>)> {
    let shapes: Vec<(&[u32], usize, usize)> = parts.iter().map(|(s, y)| (*s, y.rows, y.cols)).collect();
    let cols = check::slots(backend, weights.data.len(), &shapes)?;
    let mut rows: Vec<&[f32]> = vec![&[]; weights.data.len()];
    for (slots, y) in parts {
        for (&s, row) in slots.iter().zip(y.data.chunks_exact(cols.max(1))) {
            rows[s as usize] = row;
        }
    }
    Ok((cols, rows))
}

/// (cos, sin) of every rotated pair at every position, computed in f64 as the reference's rope
/// does, for device backends to upload: `[positions, n_rot / 2, 2]`.
pub(super) fn rope_table(p: super::RopeParams, positions: &[u32]) -> Vec<f32> {
    let half = p.n_rot / 2;
    let mut cs = Vec::with_capacity(positions.len() * half * 2);
    for &pos in positions {
        for i in 0..half {
            let theta = f64::from(pos) * p.base.powf(-2.0 * i as f64 / p.n_rot as f64);
            cs.extend([theta.cos() as f32, theta.sin() as f32]);
        }
    }
    cs
}

#[cfg(test)]
mod tests {
    use super::super::cpu::Cpu;
    use super::super::reference::Reference;
    use super::super::{Backend, BackendError};
    use super::*;

    fn t(rows: usize, cols: usize, data: &[f32]) -> HostTensor {
        HostTensor::new("test", rows, cols, data.to_vec()).unwrap()
    }

    #[test]
    fn moe_sum_adds_each_tokens_slots_in_order_with_their_weights() {
        // Two tokens, k = 2: slots 0, 1 (token 0) and 2, 3 (token 1); expert A has slots 0 and 3.
        let w = t(2, 2, &[0.75, 0.25, 0.5, 0.5]);
        let a = t(2, 2, &[1.0, 2.0, 3.0, 4.0]);
        let b = t(2, 2, &[10.0, 20.0, 30.0, 40.0]);
        let parts: [(&[u32], &HostTensor); 2] = [(&[0, 3], &a), (&[1, 2], &b)];
        let want = [0.75 * 1.0 + 0.25 * 10.0, 0.75 * 2.0 + 0.25 * 20.0, 0.5 * 30.0 + 0.5 * 3.0, 0.5 * 40.0 + 0.5 * 4.0];
        assert_eq!(Reference.moe_sum(&w, &parts).unwrap().data, want);
        assert_eq!(Cpu.moe_sum(&w, &parts).unwrap().data, want);
    }

    #[test]
    fn moe_sum_refuses_a_slot_given_twice_or_not_at_all() {
        let w = t(1, 2, &[0.5, 0.5]);
        let a = t(1, 2, &[1.0, 2.0]);
        let twice: [(&[u32], &HostTensor); 2] = [(&[0], &a), (&[0], &a)];
        let err = Reference.moe_sum(&w, &twice).unwrap_err();
        assert!(
            matches!(&err, BackendError::Shape { message, .. } if message.contains("slot 0 of 2 given twice")),
            "{err}"
        );
        let missing: [(&[u32], &HostTensor); 1] = [(&[1], &a)];
        let err = Cpu.moe_sum(&w, &missing).unwrap_err();
        assert!(err.to_string().contains("not every one of 2 slots has an output"), "{err}");
        let wide = t(1, 3, &[1.0, 2.0, 3.0]);
        let mixed: [(&[u32], &HostTensor); 2] = [(&[0], &a), (&[1], &wide)];
        assert!(Cpu.moe_sum(&w, &mixed).is_err(), "expert outputs of different widths");
    }

    #[test]
    fn router_gathers_check_their_indices() {
        let probs = t(2, 3, &[0.2, 0.5, 0.3, 0.6, 0.1, 0.3]);
        assert_eq!(Cpu.top_k(&probs, 2).unwrap(), [1, 2, 0, 2]);
        assert_eq!(Reference.take_cols(&probs, &[1, 2, 0, 2], 2).unwrap().data, [0.5, 0.3, 0.6, 0.3]);
        assert!(Reference.take_cols(&probs, &[1, 3, 0, 2], 2).is_err(), "column 3 of 3");
        assert!(Cpu.top_k(&probs, 4).is_err() && Cpu.top_k(&probs, 0).is_err());
        assert_eq!(Cpu.take_rows(&probs, &[1, 1]).unwrap().data, [0.6, 0.1, 0.3, 0.6, 0.1, 0.3]);
        assert!(Cpu.take_rows(&probs, &[2]).is_err());
    }

    #[test]
    fn the_sigmoid_gate_scales_each_row_by_its_own_logit() {
        let x = t(2, 2, &[1.0, 2.0, 3.0, 4.0]);
        let g = t(2, 1, &[0.0, 100.0]);
        for y in [Reference.sigmoid_gate(&x, &g).unwrap(), Cpu.sigmoid_gate(&x, &g).unwrap()] {
            assert_eq!(y.data, [0.5, 1.0, 3.0, 4.0]);
        }
        assert!(Cpu.sigmoid_gate(&x, &t(1, 2, &[0.0, 0.0])).is_err(), "one logit per row");
    }
}
