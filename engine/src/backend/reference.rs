//! The oracle: every op scalar or plainly looped, accumulating in f64 over weights dequantized
//! exactly as ggml does. Slow and obviously correct; other backends are judged against it.

use super::check;
use super::host::{self, HostTensor};
use super::{AttnShape, Backend, HeldWeight, HostWeight, Op, Result, RopeParams};
use crate::contract::schema::Activation;
use crate::ops::attention::Attention;
use crate::ops::kv_cache::KvCache;
use crate::ops::{moe, norm, rope};

const NAME: &str = "reference";

#[derive(Clone, Copy, Debug, Default)]
pub struct Reference;

impl Backend for Reference {
    type Tensor = HostTensor;
    type Matrix<'m> = HostWeight<'m>;
    type Vector = Vec<f32>;
    type Cache = KvCache;

    fn name(&self) -> &'static str {
        NAME
    }

    fn upload(&self, rows: usize, cols: usize, data: &[f32]) -> Result<HostTensor> {
        HostTensor::new(NAME, rows, cols, data.to_vec())
    }

    fn download(&self, t: &HostTensor) -> Result<Vec<f32>> {
        Ok(t.data.clone())
    }

    fn dims(&self, t: &HostTensor) -> (usize, usize) {
        (t.rows, t.cols)
    }

    fn load_matrix<'m>(&self, w: HostWeight<'m>) -> Result<HostWeight<'m>> {
        Ok(w)
    }

    fn matrix_info(&self, m: &HostWeight<'_>) -> HeldWeight {
        host::held(m)
    }

    fn load_vector(&self, w: HostWeight<'_>) -> Result<Vec<f32>> {
        Ok(host::load_vector(w))
    }

    fn new_cache(&self, n_layer: usize, n_ctx: usize, n_head_kv: usize, head_dim: usize) -> Result<KvCache> {
        Ok(KvCache::new(n_layer, n_ctx, n_head_kv, head_dim))
    }

    fn get_rows(&self, m: &HostWeight<'_>, ids: &[u32]) -> Result<HostTensor> {
        host::get_rows(NAME, m, ids)
    }

    fn mat_mul(&self, m: &HostWeight<'_>, bias: Option<&Vec<f32>>, x: &HostTensor) -> Result<HostTensor> {
        let (n_tokens, n_in, n_out) = host::mat_mul_dims(NAME, m, bias, x)?;
        let w = &m.rows;
        let mut acc = vec![0.0f64; n_tokens * n_out];
        let mut row = vec![0.0f32; w.n_cols];
        // Each stored row is dequantized once and used for every token.
        for r in 0..w.n_rows {
            w.dequantize_row(r, &mut row);
            for t in 0..n_tokens {
                let xt = &x.data[t * n_in..][..n_in];
                if m.transposed {
                    // Row r holds input r's contribution to every output.
                    let xr = f64::from(xt[r]);
                    for (a, &wv) in acc[t * n_out..][..n_out].iter_mut().zip(&row) {
                        *a += xr * f64::from(wv);
                    }
                } else {
                    acc[t * n_out + r] = row.iter().zip(xt).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
                }
            }
        }
        if let Some(b) = bias {
            for out in acc.chunks_exact_mut(n_out) {
                for (a, &c) in out.iter_mut().zip(b) {
                    *a += f64::from(c);
                }
            }
        }
        HostTensor::new(NAME, n_tokens, n_out, acc.into_iter().map(|v| v as f32).collect())
    }

    fn rms_norm(&self, x: &HostTensor, w: &Vec<f32>, eps: f32) -> Result<HostTensor> {
        check::groups(NAME, Op::RmsNorm, x.cols, w.len())?;
        let mut y = vec![0.0f32; x.data.len()];
        norm::rms_norm(&x.data, w, eps, &mut y);
        HostTensor::new(NAME, x.rows, x.cols, y)
    }

    fn layer_norm(&self, x: &HostTensor, w: &Vec<f32>, b: &Vec<f32>, eps: f32) -> Result<HostTensor> {
        check::layer_norm(NAME, x.cols, w.len(), b.len())?;
        let mut y = vec![0.0f32; x.data.len()];
        norm::layer_norm(&x.data, w, b, eps, &mut y);
        HostTensor::new(NAME, x.rows, x.cols, y)
    }

    fn rope(&self, x: &mut HostTensor, p: RopeParams, positions: &[u32]) -> Result<()> {
        check::rope(NAME, x.dims(), p, positions)?;
        rope::rope(&mut x.data, p.head_dim, positions, p.n_rot, p.base, p.style);
        Ok(())
    }

    fn attention(
        &self,
        cache: &mut KvCache,
        layer: usize,
        s: AttnShape,
        q: &HostTensor,
        k: &HostTensor,
        v: &HostTensor,
        soft_max: bool,
    ) -> Result<(HostTensor, Option<HostTensor>)> {
        check::attention(NAME, s, q.dims(), k.dims(), v.dims())?;
        cache.append(layer, &k.data, &v.data)?;
        let (keys, values) = cache.get(layer);
        let n_kv = cache.len(layer);
        let mut sm = vec![0.0f32; s.n_head * q.rows * n_kv];
        let mut out = vec![0.0f32; q.data.len()];
        Attention { n_head: s.n_head, n_head_kv: s.n_head_kv, head_dim: s.head_dim }
            .forward(&q.data, keys, values, &mut sm, &mut out);
        let sm = soft_max.then(|| HostTensor::new(NAME, s.n_head, q.rows * n_kv, sm)).transpose()?;
        Ok((HostTensor::new(NAME, q.rows, q.cols, out)?, sm))
    }

    fn activation(&self, act: Activation, x: &HostTensor) -> Result<HostTensor> {
        host::activation(NAME, act, x)
    }

    fn add(&self, a: &HostTensor, b: &HostTensor) -> Result<HostTensor> {
        host::zip_with(NAME, a, b, |x, y| (f64::from(x) + f64::from(y)) as f32)
    }

    fn mul(&self, a: &HostTensor, b: &HostTensor) -> Result<HostTensor> {
        host::zip_with(NAME, a, b, |x, y| (f64::from(x) * f64::from(y)) as f32)
    }

    fn split_cols(&self, x: &HostTensor, widths: &[usize]) -> Result<Vec<HostTensor>> {
        host::split_cols(NAME, x, widths)
    }

    fn soft_max(&self, x: &HostTensor) -> Result<HostTensor> {
        host::map_rows(NAME, x, moe::soft_max_f64)
    }

    fn top_k(&self, x: &HostTensor, k: usize) -> Result<Vec<u32>> {
        host::top_k(NAME, x, k)
    }

    fn take_cols(&self, x: &HostTensor, ids: &[u32], k: usize) -> Result<HostTensor> {
        host::take_cols(NAME, x, ids, k)
    }

    fn normalize_rows(&self, x: &HostTensor) -> Result<HostTensor> {
        host::map_rows(NAME, x, moe::normalize_f64)
    }

    fn take_rows(&self, x: &HostTensor, rows: &[u32]) -> Result<HostTensor> {
        host::take_rows(NAME, x, rows)
    }

    fn moe_sum(&self, weights: &HostTensor, parts: &[(&[u32], &HostTensor)]) -> Result<HostTensor> {
        let (cols, slots) = host::moe_slots(NAME, weights, parts)?;
        let k = weights.cols;
        let mut out = vec![0.0f32; weights.rows * cols];
        for (t, o) in out.chunks_exact_mut(cols.max(1)).enumerate() {
            for (c, o) in o.iter_mut().enumerate() {
                let sum: f64 =
                    (0..k).map(|j| f64::from(weights.data[t * k + j]) * f64::from(slots[t * k + j][c])).sum();
                *o = sum as f32;
            }
        }
        HostTensor::new(NAME, weights.rows, cols, out)
    }

    fn sigmoid_gate(&self, x: &HostTensor, g: &HostTensor) -> Result<HostTensor> {
        check::gate(NAME, x.dims(), g.dims())?;
        let mut out = x.data.clone();
        for (row, &gv) in out.chunks_exact_mut(x.cols.max(1)).zip(&g.data) {
            let s = moe::sigmoid(gv);
            row.iter_mut().for_each(|v| *v = (f64::from(*v) * s) as f32);
        }
        HostTensor::new(NAME, x.rows, x.cols, out)
    }
}
