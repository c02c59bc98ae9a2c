//! The shape checks every backend makes before it computes, on dimensions alone, so host and
//! device backends refuse the same inputs with the same words. Tensors are `(rows, cols)`.

use super::{AttnShape, BackendError, Op, Result, RopeParams};

/// `[rows, cols]` of a tensor.
pub type Dims = (usize, usize);

pub(super) fn shape(backend: &'static str, op: Op, message: String) -> BackendError {
    BackendError::Shape { backend, op, message }
}

/// `len` values fill `[rows, cols]`.
pub(super) fn upload(backend: &'static str, rows: usize, cols: usize, len: usize) -> Result<()> {
    if rows.checked_mul(cols) != Some(len) {
        return Err(shape(backend, Op::Memory, format!("{len} values for [{rows}, {cols}]")));
    }
    Ok(())
}

/// `x` feeds weight `name` (`n_in` → `n_out`), with a bias of `bias` values if any.
pub(super) fn mat_mul(
    backend: &'static str,
    name: &str,
    n_in: usize,
    n_out: usize,
    bias: Option<usize>,
    x: Dims,
) -> Result<()> {
    if x.1 != n_in {
        return Err(shape(backend, Op::MatMul, format!("`{name}` takes {n_in} inputs, got {}", x.1)));
    }
    if let Some(b) = bias.filter(|&b| b != n_out) {
        return Err(shape(backend, Op::MatMul, format!("bias of {b} for `{name}` with {n_out} outputs")));
    }
    Ok(())
}

/// Every id is a row of table `name`.
pub(super) fn row_ids(backend: &'static str, op: Op, name: &str, n_rows: usize, ids: &[u32]) -> Result<()> {
    match ids.iter().find(|&&id| id as usize >= n_rows) {
        Some(id) => Err(shape(backend, op, format!("id {id} of `{name}` with {n_rows} rows"))),
        None => Ok(()),
    }
}

/// Rows of `cols` values split into whole groups of `n` (a norm over rows or heads).
pub(super) fn groups(backend: &'static str, op: Op, cols: usize, n: usize) -> Result<()> {
    if n == 0 || !cols.is_multiple_of(n) {
        return Err(shape(backend, op, format!("rows of {cols} are not whole groups of {n}")));
    }
    Ok(())
}

/// LayerNorm's gain and bias cover the same groups of a row of `cols`.
pub(super) fn layer_norm(backend: &'static str, cols: usize, w: usize, b: usize) -> Result<()> {
    groups(backend, Op::LayerNorm, cols, w)?;
    if b != w {
        return Err(shape(backend, Op::LayerNorm, format!("bias of {b} for a gain of {w}")));
    }
    Ok(())
}

/// `a ∘ b` elementwise: the same shape.
pub(super) fn same(backend: &'static str, a: Dims, b: Dims) -> Result<()> {
    if a != b {
        return Err(shape(backend, Op::Elementwise, format!("[{}, {}] with [{}, {}]", a.0, a.1, b.0, b.1)));
    }
    Ok(())
}

/// A fused projection's columns split into `widths`.
pub(super) fn split(backend: &'static str, cols: usize, widths: &[usize]) -> Result<()> {
    if widths.iter().sum::<usize>() != cols {
        return Err(shape(backend, Op::Elementwise, format!("split of {cols} columns into {widths:?}")));
    }
    Ok(())
}

/// q, k, v rows and head widths agree with the attention shape.
pub(super) fn attention(backend: &'static str, s: AttnShape, q: Dims, k: Dims, v: Dims) -> Result<()> {
    let ok = s.n_head_kv > 0
        && s.n_head.is_multiple_of(s.n_head_kv)
        && q.1 == s.n_head * s.head_dim
        && k.1 == s.n_head_kv * s.head_dim
        && v.1 == k.1
        && q.0 == k.0
        && k.0 == v.0;
    if !ok {
        return Err(shape(
            backend,
            Op::Attention,
            format!("q [{}, {}], k [{}, {}], v [{}, {}] for {s:?}", q.0, q.1, k.0, k.1, v.0, v.1),
        ));
    }
    Ok(())
}

/// Whole heads, an even rotated width within the head, one position per row.
pub(super) fn rope(backend: &'static str, x: Dims, p: RopeParams, positions: &[u32]) -> Result<()> {
    if p.head_dim == 0 || !x.1.is_multiple_of(p.head_dim) || p.n_rot > p.head_dim || !p.n_rot.is_multiple_of(2) {
        return Err(shape(backend, Op::Rope, format!("{p:?} on rows of {}", x.1)));
    }
    if positions.len() != x.0 || x.0 == 0 {
        return Err(shape(backend, Op::Rope, format!("{} positions for {} rows", positions.len(), x.0)));
    }
    Ok(())
}

/// `k` column ids per row, each a column of `x`.
pub(super) fn take_cols(backend: &'static str, x: Dims, ids: &[u32], k: usize) -> Result<()> {
    if k == 0 || ids.len() != x.0 * k || ids.iter().any(|&c| c as usize >= x.1) {
        return Err(shape(backend, Op::Moe, format!("{} column ids ({k} per row) for [{}, {}]", ids.len(), x.0, x.1)));
    }
    Ok(())
}

/// Every id is a row of `x`.
pub(super) fn take_rows(backend: &'static str, x: Dims, rows: &[u32]) -> Result<()> {
    match rows.iter().find(|&&r| r as usize >= x.0) {
        Some(r) => Err(shape(backend, Op::Moe, format!("row {r} of [{}, {}]", x.0, x.1))),
        None => Ok(()),
    }
}

/// One gate logit per row of `x`.
pub(super) fn gate(backend: &'static str, x: Dims, g: Dims) -> Result<()> {
    if g.1 != 1 || g.0 != x.0 {
        return Err(shape(backend, Op::Moe, format!("gate [{}, {}] for [{}, {}]", g.0, g.1, x.0, x.1)));
    }
    Ok(())
}

/// Expert outputs `(slots, rows, cols)` cover each of `n_slots` slots exactly once, one row per
/// slot and one width; returns the width.
pub(super) fn slots(backend: &'static str, n_slots: usize, parts: &[(&[u32], usize, usize)]) -> Result<usize> {
    let cols = parts.first().map_or(0, |p| p.2);
    let mut seen = vec![false; n_slots];
    for &(slots, rows, c) in parts {
        if c != cols || rows != slots.len() {
            return Err(shape(
                backend,
                Op::Moe,
                format!("expert output [{rows}, {c}] for {} slots of width {cols}", slots.len()),
            ));
        }
        for &s in slots {
            match seen.get_mut(s as usize) {
                Some(f @ false) => *f = true,
                _ => return Err(shape(backend, Op::Moe, format!("slot {s} of {n_slots} given twice or out of range"))),
            }
        }
    }
    if seen.iter().any(|f| !f) {
        return Err(shape(backend, Op::Moe, format!("not every one of {n_slots} slots has an output")));
    }
    Ok(cols)
}
