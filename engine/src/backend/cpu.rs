//! The CPU backend: the quantized kernels (AVX2/VNNI where the machine has them) over rayon, with
//! activations quantized to each weight type's `vec_dot_type` as llama.cpp's CPU backend does,
//! and attention in f32 with one task per head. Judged against [`super::reference`].

use rayon::prelude::*;

use super::check;
use super::host::{self, HostTensor};
use super::{AttnShape, Backend, HeldWeight, HostWeight, Op, Result, RopeParams};
use crate::contract::schema::Activation;
use crate::ops::kv_cache::KvCache;
use crate::ops::{moe, norm, rope};
use crate::quant;

const NAME: &str = "cpu";

#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu;

impl Backend for Cpu {
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
        let mut y = vec![0.0f32; n_tokens * n_out];
        if m.transposed {
            // [in, out] storage (HF Conv1D, float dtypes only): y_t = Σ_r x_t[r] · row r, in f32.
            let w = &m.rows;
            y.par_chunks_mut(n_out).zip(x.data.par_chunks(n_in)).for_each(|(yt, xt)| {
                let mut row = vec![0.0f32; n_out];
                for (r, &xr) in xt.iter().enumerate() {
                    w.dequantize_row(r, &mut row);
                    for (o, &wv) in yt.iter_mut().zip(&row) {
                        *o = xr.mul_add(wv, *o);
                    }
                }
            });
        } else if n_tokens == 1 {
            quant::matvec(&m.rows, &x.data, &mut y);
        } else {
            quant::matmul(&m.rows, &x.data, &mut y);
        }
        host::add_bias(&mut y, bias, n_out);
        HostTensor::new(NAME, n_tokens, n_out, y)
    }

    fn rms_norm(&self, x: &HostTensor, w: &Vec<f32>, eps: f32) -> Result<HostTensor> {
        check::groups(NAME, Op::RmsNorm, x.cols, w.len())?;
        let mut y = vec![0.0f32; x.data.len()];
        y.par_chunks_mut(x.cols).zip(x.data.par_chunks(x.cols)).for_each(|(yr, xr)| norm::rms_norm(xr, w, eps, yr));
        HostTensor::new(NAME, x.rows, x.cols, y)
    }

    fn layer_norm(&self, x: &HostTensor, w: &Vec<f32>, b: &Vec<f32>, eps: f32) -> Result<HostTensor> {
        check::layer_norm(NAME, x.cols, w.len(), b.len())?;
        let mut y = vec![0.0f32; x.data.len()];
        y.par_chunks_mut(x.cols)
            .zip(x.data.par_chunks(x.cols))
            .for_each(|(yr, xr)| norm::layer_norm(xr, w, b, eps, yr));
        HostTensor::new(NAME, x.rows, x.cols, y)
    }

    fn rope(&self, x: &mut HostTensor, p: RopeParams, positions: &[u32]) -> Result<()> {
        check::rope(NAME, x.dims(), p, positions)?;
        let cols = x.cols;
        x.data.par_chunks_mut(cols).zip(positions).for_each(|(row, &pos)| {
            rope::rope(row, p.head_dim, &[pos], p.n_rot, p.base, p.style);
        });
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
        let (n_tokens, d, hkv) = (q.rows, s.head_dim, s.n_head_kv);
        let group = s.n_head / hkv;
        let scale = 1.0 / (d as f32).sqrt();
        // One task per head: its softmax rows [n_tokens, n_kv] and its output columns.
        let per_head: Vec<(Vec<f32>, Vec<f32>)> = (0..s.n_head)
            .into_par_iter()
            .map(|head| {
                let kv_head = head / group;
                let mut sm = vec![0.0f32; n_tokens * n_kv];
                let mut out = vec![0.0f32; n_tokens * d];
                for t in 0..n_tokens {
                    let seen = n_kv - n_tokens + t + 1;
                    let qv = &q.data[(t * s.n_head + head) * d..][..d];
                    let row = &mut sm[t * n_kv..][..seen];
                    for (j, p) in row.iter_mut().enumerate() {
                        let kv = &keys[(j * hkv + kv_head) * d..][..d];
                        *p = qv.iter().zip(kv).map(|(&a, &b)| a * b).sum::<f32>() * scale;
                    }
                    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    // ggml sums the exponentials in double.
                    let mut sum = 0.0f64;
                    for p in row.iter_mut() {
                        *p = (*p - max).exp();
                        sum += f64::from(*p);
                    }
                    let inv = (1.0 / sum) as f32;
                    let o = &mut out[t * d..][..d];
                    for (j, p) in row.iter_mut().enumerate() {
                        *p *= inv;
                        let vv = &values[(j * hkv + kv_head) * d..][..d];
                        for (a, &x) in o.iter_mut().zip(vv) {
                            *a = p.mul_add(x, *a);
                        }
                    }
                }
                (sm, out)
            })
            .collect();
        let mut out = vec![0.0f32; q.data.len()];
        for (head, (_, o)) in per_head.iter().enumerate() {
            for t in 0..n_tokens {
                out[(t * s.n_head + head) * d..][..d].copy_from_slice(&o[t * d..][..d]);
            }
        }
        let sm = soft_max
            .then(|| {
                HostTensor::new(NAME, s.n_head, n_tokens * n_kv, per_head.into_iter().flat_map(|(sm, _)| sm).collect())
            })
            .transpose()?;
        Ok((HostTensor::new(NAME, n_tokens, q.cols, out)?, sm))
    }

    fn activation(&self, act: Activation, x: &HostTensor) -> Result<HostTensor> {
        host::activation(NAME, act, x)
    }

    fn add(&self, a: &HostTensor, b: &HostTensor) -> Result<HostTensor> {
        host::zip_with(NAME, a, b, |x, y| x + y)
    }

    fn mul(&self, a: &HostTensor, b: &HostTensor) -> Result<HostTensor> {
        host::zip_with(NAME, a, b, |x, y| x * y)
    }

    fn split_cols(&self, x: &HostTensor, widths: &[usize]) -> Result<Vec<HostTensor>> {
        host::split_cols(NAME, x, widths)
    }

    fn soft_max(&self, x: &HostTensor) -> Result<HostTensor> {
        host::map_rows(NAME, x, moe::soft_max_ggml)
    }

    fn top_k(&self, x: &HostTensor, k: usize) -> Result<Vec<u32>> {
        host::top_k(NAME, x, k)
    }

    fn take_cols(&self, x: &HostTensor, ids: &[u32], k: usize) -> Result<HostTensor> {
        host::take_cols(NAME, x, ids, k)
    }

    fn normalize_rows(&self, x: &HostTensor) -> Result<HostTensor> {
        host::map_rows(NAME, x, moe::normalize_ggml)
    }

    fn take_rows(&self, x: &HostTensor, rows: &[u32]) -> Result<HostTensor> {
        host::take_rows(NAME, x, rows)
    }

    fn moe_sum(&self, weights: &HostTensor, parts: &[(&[u32], &HostTensor)]) -> Result<HostTensor> {
        // As ggml: each expert output scaled by its weight in f32, then the k slots added in order.
        let (cols, slots) = host::moe_slots(NAME, weights, parts)?;
        let k = weights.cols;
        let mut out = vec![0.0f32; weights.rows * cols];
        for (t, o) in out.chunks_exact_mut(cols.max(1)).enumerate() {
            for j in 0..k {
                let w = weights.data[t * k + j];
                for (o, &y) in o.iter_mut().zip(slots[t * k + j]) {
                    *o += y * w;
                }
            }
        }
        HostTensor::new(NAME, weights.rows, cols, out)
    }

    fn sigmoid_gate(&self, x: &HostTensor, g: &HostTensor) -> Result<HostTensor> {
        check::gate(NAME, x.dims(), g.dims())?;
        let mut out = x.data.clone();
        for (row, &gv) in out.chunks_exact_mut(x.cols.max(1)).zip(&g.data) {
            let s = 1.0 / (1.0 + (-gv).exp()); // ggml's f32 sigmoid
            row.iter_mut().for_each(|v| *v *= s);
        }
        HostTensor::new(NAME, x.rows, x.cols, out)
    }
}
