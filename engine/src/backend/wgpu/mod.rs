//! The WGPU backend: every op a WGSL compute kernel on the device, weights uploaded as the file
//! stores them (quantized blocks decoded inside the kernels), activations and the KV cache
//! resident on the device. f32 arithmetic, activations not quantized: judged against
//! [`super::reference`]. Runs on any Vulkan or GL adapter, including Mesa's llvmpipe on a CPU.
//!
//! Weight types with a kernel: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K,
//! Q5_K, Q6_K, APR-q4 and APR-q8 (every type the engine computes with); any other is
//! [`BackendError::Unsupported`] at load, never computed elsewhere. Each is decoded per element
//! with the float operations of its CPU dequantizer, so a weight reads bit-exact.

mod device;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::{AttnShape, Backend, BackendError, HeldWeight, HostWeight, Op, Result, RopeParams};
use super::{check, host};
use crate::DType;
use crate::contract::schema::{Activation, RopeStyle};
use crate::ops::kv_cache::ContextFull;
use device::Kernel;
use device::Tracked;
pub use device::{Device, DeviceMemory};

const NAME: &str = "wgpu";

const PRELUDE: &str = include_str!("shaders/prelude.wgsl");
const ELEMENTWISE: &str = include_str!("shaders/elementwise.wgsl");
const UNARY: &str = include_str!("shaders/unary.wgsl");
const NORM: &str = include_str!("shaders/norm.wgsl");
const ROPE: &str = include_str!("shaders/rope.wgsl");
const WEIGHTS: &str = include_str!("shaders/weights.wgsl");
const MATMUL: &str = include_str!("shaders/matmul.wgsl");
const ATTENTION: &str = include_str!("shaders/attention.wgsl");
const GATHER: &str = include_str!("shaders/gather.wgsl");

/// The process's one device: adapters, pipelines and memory accounting are shared by every
/// `Wgpu` value.
fn shared() -> &'static std::result::Result<Arc<Device>, String> {
    static DEVICE: OnceLock<std::result::Result<Arc<Device>, String>> = OnceLock::new();
    DEVICE.get_or_init(|| Device::new().map(Arc::new))
}

#[derive(Clone)]
pub struct Wgpu {
    dev: Arc<Device>,
    kernels: &'static Kernels,
}

/// Every WGSL module with the prelude (and, for weight kernels, the dtype's accessor) spliced
/// in, built once per process.
struct Kernels {
    elementwise: Kernel,
    unary: Kernel,
    norm: Kernel,
    rope: Kernel,
    attention: Kernel,
    gather: Kernel,
    matmul: HashMap<DType, Kernel>,
}

fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| {
        // Process-lifetime sources: leaked once, like any lazily built static.
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let with = |name, s: &str| Kernel { name, source: leak(format!("{PRELUDE}\n{s}")) };
        let matmul = DType::ALL
            .iter()
            .filter_map(|&d| {
                let f = weight_fn(d)?;
                let name = leak(format!("matmul_{f}"));
                Some((
                    d,
                    Kernel { name, source: leak(format!("{PRELUDE}\n{WEIGHTS}\n{}", MATMUL.replace("WEIGHT", f))) },
                ))
            })
            .collect();
        Kernels {
            elementwise: with("elementwise", ELEMENTWISE),
            unary: with("unary", UNARY),
            norm: with("norm", NORM),
            rope: with("rope", ROPE),
            attention: with("attention", ATTENTION),
            gather: with("gather", GATHER),
            matmul,
        }
    })
}

impl Wgpu {
    /// The backend on the process's adapter; `Err` says why there is none (the caller reports
    /// the backend unavailable).
    pub fn new() -> std::result::Result<Self, String> {
        let dev = Arc::clone(shared().as_ref().map_err(Clone::clone)?);
        Ok(Self { dev, kernels: kernels() })
    }

    /// The adapter in use.
    pub fn adapter(&self) -> String {
        self.dev.describe()
    }

    /// Device memory of this process's backend, from its own allocation accounting.
    pub fn memory(&self) -> DeviceMemory {
        self.dev.memory()
    }

    fn tensor(&self, rows: usize, cols: usize) -> GpuTensor {
        GpuTensor { buf: self.dev.zeros(rows * cols), rows, cols }
    }

    fn ids(&self, ids: &[u32]) -> Tracked {
        self.dev.upload(bytemuck::cast_slice(ids))
    }
}

/// The accessor name and a kernel source for weights of `dtype`, or `None` without a kernel.
fn weight_fn(dtype: DType) -> Option<&'static str> {
    Some(match dtype {
        DType::F32 => "w_f32",
        DType::F16 => "w_f16",
        DType::BF16 => "w_bf16",
        DType::Q4_0 => "w_q4_0",
        DType::Q4_1 => "w_q4_1",
        DType::Q5_0 => "w_q5_0",
        DType::Q5_1 => "w_q5_1",
        DType::Q8_0 => "w_q8_0",
        DType::Q2_K => "w_q2_k",
        DType::Q3_K => "w_q3_k",
        DType::Q4_K => "w_q4_k",
        DType::Q5_K => "w_q5_k",
        DType::Q6_K => "w_q6_k",
        DType::AprQ4 => "w_apr_q4",
        DType::AprQ8 => "w_apr_q8",
        _ => return None,
    })
}

/// Activations on the device, `[rows, cols]` f32.
pub struct GpuTensor {
    buf: Tracked,
    rows: usize,
    cols: usize,
}

impl GpuTensor {
    fn n(&self) -> usize {
        self.rows * self.cols
    }

    fn dims(&self) -> check::Dims {
        (self.rows, self.cols)
    }
}

/// A weight uploaded as the file stores it, in chunks of rows that fit one binding.
pub struct GpuMatrix<'m> {
    name: &'m str,
    dtype: DType,
    n_rows: usize,
    n_cols: usize,
    row_bytes: usize,
    transposed: bool,
    /// APR-q8's per-tensor scale (not part of the uploaded rows), as params word 7; 0 otherwise.
    scale: f32,
    /// (buffer, first row, rows).
    chunks: Vec<(Tracked, usize, usize)>,
    kernel: Kernel,
}

impl GpuMatrix<'_> {
    fn n_in(&self) -> usize {
        if self.transposed { self.n_rows } else { self.n_cols }
    }

    fn n_out(&self) -> usize {
        if self.transposed { self.n_cols } else { self.n_rows }
    }
}

/// Keys and values of every layer, on the device: `[n_ctx, n_head_kv * head_dim]` each.
pub struct GpuCache {
    k: Vec<Tracked>,
    v: Vec<Tracked>,
    len: Vec<usize>,
    n_ctx: usize,
    width: usize,
}

fn u(v: usize) -> u32 {
    u32::try_from(v).expect("sizes that fit the device fit u32")
}

impl Backend for Wgpu {
    type Tensor = GpuTensor;
    type Matrix<'m> = GpuMatrix<'m>;
    type Vector = GpuTensor;
    type Cache = GpuCache;

    fn name(&self) -> &'static str {
        NAME
    }

    fn upload(&self, rows: usize, cols: usize, data: &[f32]) -> Result<GpuTensor> {
        check::upload(NAME, rows, cols, data.len())?;
        Ok(GpuTensor { buf: self.dev.upload(bytemuck::cast_slice(data)), rows, cols })
    }

    fn download(&self, t: &GpuTensor) -> Result<Vec<f32>> {
        Ok(self.dev.download(&t.buf.buf, t.n()))
    }

    fn dims(&self, t: &GpuTensor) -> (usize, usize) {
        (t.rows, t.cols)
    }

    fn load_matrix<'m>(&self, w: HostWeight<'m>) -> Result<GpuMatrix<'m>> {
        let r = &w.rows;
        if weight_fn(r.dtype).is_none() {
            return Err(BackendError::Unsupported {
                backend: NAME,
                op: Op::MatMul,
                detail: format!("no {} kernel (tensor `{}`)", r.dtype, r.name),
            });
        }
        let row_bytes = r.n_bytes() / r.n_rows.max(1);
        let per_chunk = (self.dev.max_binding as usize / row_bytes.max(1)).max(1);
        if w.transposed && r.n_rows > per_chunk {
            return Err(BackendError::Unsupported {
                backend: NAME,
                op: Op::MatMul,
                detail: format!("`{}` is stored transposed and exceeds one binding", r.name),
            });
        }
        let mut chunks = Vec::new();
        let mut first = 0;
        while first < r.n_rows {
            let n = per_chunk.min(r.n_rows - first);
            chunks.push((self.dev.upload(r.slab(first, n).bytes()), first, n));
            first += n;
        }
        Ok(GpuMatrix {
            name: r.name,
            dtype: r.dtype,
            n_rows: r.n_rows,
            n_cols: r.n_cols,
            row_bytes,
            transposed: w.transposed,
            scale: r.scale().unwrap_or(0.0),
            chunks,
            kernel: self.kernels.matmul[&r.dtype],
        })
    }

    fn matrix_info(&self, m: &GpuMatrix<'_>) -> HeldWeight {
        HeldWeight { tensor: m.name.to_owned(), dtype: m.dtype, bytes: m.row_bytes * m.n_rows }
    }

    fn load_vector(&self, w: HostWeight<'_>) -> Result<GpuTensor> {
        let v = host::load_vector(w);
        self.upload(1, v.len(), &v)
    }

    fn new_cache(&self, n_layer: usize, n_ctx: usize, n_head_kv: usize, head_dim: usize) -> Result<GpuCache> {
        let width = n_head_kv * head_dim;
        Ok(GpuCache {
            k: (0..n_layer).map(|_| self.dev.zeros(n_ctx * width)).collect(),
            v: (0..n_layer).map(|_| self.dev.zeros(n_ctx * width)).collect(),
            len: vec![0; n_layer],
            n_ctx,
            width,
        })
    }

    fn get_rows(&self, m: &GpuMatrix<'_>, ids: &[u32]) -> Result<GpuTensor> {
        if m.transposed || m.chunks.len() != 1 {
            return Err(BackendError::Unsupported {
                backend: NAME,
                op: Op::GetRows,
                detail: format!("`{}`: an embedding table must be stored row-major in one binding", m.name),
            });
        }
        check::row_ids(NAME, Op::GetRows, m.name, m.n_rows, ids)?;
        let y = self.tensor(ids.len(), m.n_cols);
        let idx = self.ids(ids);
        let params = [u(ids.len()), u(m.n_cols), 0, u(m.row_bytes), 0, 0, 0, m.scale.to_bits()];
        let bufs = [(1, &m.chunks[0].0.buf), (2, &idx.buf), (3, &y.buf.buf)];
        self.dev.dispatch(m.kernel, "get_rows", &params, &bufs, u(y.n()));
        Ok(y)
    }

    fn mat_mul(&self, m: &GpuMatrix<'_>, bias: Option<&GpuTensor>, x: &GpuTensor) -> Result<GpuTensor> {
        check::mat_mul(NAME, m.name, m.n_in(), m.n_out(), bias.map(|b| b.n()), x.dims())?;
        let y = self.tensor(x.rows, m.n_out());
        for (buf, first, rows) in &m.chunks {
            let params = [
                u(x.rows),
                u(m.n_in()),
                u(m.n_out()),
                u(m.row_bytes),
                u(*first),
                u(*rows),
                u32::from(m.transposed),
                m.scale.to_bits(),
            ];
            let n = x.rows * if m.transposed { m.n_out() } else { *rows };
            self.dev.dispatch(m.kernel, "matmul", &params, &[(1, &buf.buf), (2, &x.buf.buf), (3, &y.buf.buf)], u(n));
        }
        match bias {
            Some(b) => self.binary("add_rows", &y, b),
            None => Ok(y),
        }
    }

    fn rms_norm(&self, x: &GpuTensor, w: &GpuTensor, eps: f32) -> Result<GpuTensor> {
        self.norm("rms_norm", x, w, None, eps)
    }

    fn layer_norm(&self, x: &GpuTensor, w: &GpuTensor, b: &GpuTensor, eps: f32) -> Result<GpuTensor> {
        check::layer_norm(NAME, x.cols, w.n(), b.n())?;
        self.norm("layer_norm", x, w, Some(b), eps)
    }

    fn rope(&self, x: &mut GpuTensor, p: RopeParams, positions: &[u32]) -> Result<()> {
        check::rope(NAME, x.dims(), p, positions)?;
        let half = p.n_rot / 2;
        if half == 0 {
            return Ok(());
        }
        // The angles in f64 on the host, as the reference computes them.
        let cs = host::rope_table(p, positions);
        let cs = self.dev.upload(bytemuck::cast_slice(&cs));
        let heads = x.cols / p.head_dim;
        let n = x.rows * heads * half;
        let params = [u(n), u(x.cols), u(p.head_dim), u(p.n_rot), u32::from(p.style == RopeStyle::Neox)];
        self.dev.dispatch(self.kernels.rope, "rope", &params, &[(1, &x.buf.buf), (2, &cs.buf)], u(n));
        Ok(())
    }

    fn attention(
        &self,
        cache: &mut GpuCache,
        layer: usize,
        s: AttnShape,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        soft_max: bool,
    ) -> Result<(GpuTensor, Option<GpuTensor>)> {
        check::attention(NAME, s, q.dims(), k.dims(), v.dims())?;
        if k.cols != cache.width {
            return Err(check::shape(
                NAME,
                Op::Attention,
                format!("k of width {} for a cache of {}", k.cols, cache.width),
            ));
        }
        let used = cache.len[layer];
        if used + k.rows > cache.n_ctx {
            return Err(ContextFull { n_ctx: cache.n_ctx, used, wanted: k.rows }.into());
        }
        self.dev.copy(&k.buf.buf, 0, &cache.k[layer].buf, used * cache.width, k.n());
        self.dev.copy(&v.buf.buf, 0, &cache.v[layer].buf, used * cache.width, v.n());
        cache.len[layer] += k.rows;
        let n_kv = cache.len[layer];
        let out = self.tensor(q.rows, q.cols);
        let sm = self.tensor(s.n_head, q.rows * n_kv);
        let scale = 1.0 / (s.head_dim as f32).sqrt();
        let params = [u(q.rows), u(s.n_head), u(s.n_head_kv), u(s.head_dim), u(n_kv), scale.to_bits()];
        let bufs =
            [(1, &q.buf.buf), (2, &cache.k[layer].buf), (3, &cache.v[layer].buf), (4, &out.buf.buf), (5, &sm.buf.buf)];
        self.dev.dispatch(self.kernels.attention, "attention", &params, &bufs, u(q.rows * s.n_head));
        Ok((out, soft_max.then_some(sm)))
    }

    fn activation(&self, act: Activation, x: &GpuTensor) -> Result<GpuTensor> {
        let entry = match act {
            Activation::Silu => "silu",
            Activation::GeluTanh => "gelu_tanh",
            Activation::GeluErf => "gelu_erf",
        };
        self.unary(entry, x, &[u(x.n())], x.rows, x.cols, u(x.n()))
    }

    fn add(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        self.binary("add", a, b)
    }

    fn mul(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        self.binary("mul", a, b)
    }

    fn split_cols(&self, x: &GpuTensor, widths: &[usize]) -> Result<Vec<GpuTensor>> {
        check::split(NAME, x.cols, widths)?;
        let mut at = 0;
        let mut parts = Vec::with_capacity(widths.len());
        for &w in widths {
            let n = x.rows * w;
            parts.push(self.unary("copy_cols", x, &[u(n), u(x.cols), u(w), u(at)], x.rows, w, u(n))?);
            at += w;
        }
        Ok(parts)
    }

    fn soft_max(&self, x: &GpuTensor) -> Result<GpuTensor> {
        self.unary("soft_max", x, &[u(x.rows), u(x.cols)], x.rows, x.cols, u(x.rows))
    }

    fn top_k(&self, x: &GpuTensor, k: usize) -> Result<Vec<u32>> {
        // The choice decides which expert weights run: it is made on the host, from the
        // device's probabilities.
        let host = host::HostTensor::new(NAME, x.rows, x.cols, self.download(x)?)?;
        host::top_k(NAME, &host, k)
    }

    fn take_cols(&self, x: &GpuTensor, ids: &[u32], k: usize) -> Result<GpuTensor> {
        check::take_cols(NAME, x.dims(), ids, k)?;
        self.gather("take_cols", x, &self.ids(ids), &[u(x.rows), u(x.cols), u(k)], x.rows, k)
    }

    fn normalize_rows(&self, x: &GpuTensor) -> Result<GpuTensor> {
        self.unary("normalize_rows", x, &[u(x.rows), u(x.cols)], x.rows, x.cols, u(x.rows))
    }

    fn take_rows(&self, x: &GpuTensor, rows: &[u32]) -> Result<GpuTensor> {
        check::take_rows(NAME, x.dims(), rows)?;
        self.gather("take_rows", x, &self.ids(rows), &[u(rows.len()), u(x.cols)], rows.len(), x.cols)
    }

    fn moe_sum(&self, weights: &GpuTensor, parts: &[(&[u32], &GpuTensor)]) -> Result<GpuTensor> {
        let n_slots = weights.n();
        let shapes: Vec<(&[u32], usize, usize)> = parts.iter().map(|(s, y)| (*s, y.rows, y.cols)).collect();
        let cols = check::slots(NAME, n_slots, &shapes)?;
        // Every expert's rows into their slots, then the weighted sum per token in slot order.
        let slotted = self.tensor(n_slots, cols);
        for (slots, y) in parts {
            let idx = self.ids(slots);
            let n = y.n();
            let bufs = [(1, &y.buf.buf), (2, &idx.buf), (3, &slotted.buf.buf)];
            self.dev.dispatch(self.kernels.gather, "put_rows", &[u(y.rows), u(cols)], &bufs, u(n));
        }
        let out = self.tensor(weights.rows, cols);
        let params = [u(weights.rows), u(cols), u(weights.cols)];
        let bufs = [(1, &slotted.buf.buf), (2, &weights.buf.buf), (3, &out.buf.buf)];
        self.dev.dispatch(self.kernels.gather, "moe_sum", &params, &bufs, u(out.n()));
        Ok(out)
    }

    fn sigmoid_gate(&self, x: &GpuTensor, g: &GpuTensor) -> Result<GpuTensor> {
        check::gate(NAME, x.dims(), g.dims())?;
        let y = self.tensor(x.rows, x.cols);
        let bufs = [(1, &x.buf.buf), (2, &g.buf.buf), (3, &y.buf.buf)];
        self.dev.dispatch(self.kernels.elementwise, "sigmoid_gate", &[u(x.n()), u(x.cols)], &bufs, u(x.n()));
        Ok(y)
    }
}

impl Wgpu {
    /// `entry` of elementwise.wgsl: `add`, `mul` (same shapes) or `add_rows` (b one row).
    fn binary(&self, entry: &'static str, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        if entry == "add_rows" {
            check::same(NAME, (1, a.cols), b.dims())?;
        } else {
            check::same(NAME, a.dims(), b.dims())?;
        }
        let y = self.tensor(a.rows, a.cols);
        let bufs = [(1, &a.buf.buf), (2, &b.buf.buf), (3, &y.buf.buf)];
        self.dev.dispatch(self.kernels.elementwise, entry, &[u(a.n()), u(a.cols)], &bufs, u(a.n()));
        Ok(y)
    }

    /// `entry` of unary.wgsl into a new `[rows, cols]` tensor over `n` invocations.
    fn unary(
        &self,
        entry: &'static str,
        x: &GpuTensor,
        params: &[u32],
        rows: usize,
        cols: usize,
        n: u32,
    ) -> Result<GpuTensor> {
        let y = self.tensor(rows, cols);
        self.dev.dispatch(self.kernels.unary, entry, params, &[(1, &x.buf.buf), (2, &y.buf.buf)], n);
        Ok(y)
    }

    fn gather(
        &self,
        entry: &'static str,
        x: &GpuTensor,
        idx: &Tracked,
        params: &[u32],
        rows: usize,
        cols: usize,
    ) -> Result<GpuTensor> {
        let y = self.tensor(rows, cols);
        let bufs = [(1, &x.buf.buf), (2, &idx.buf), (3, &y.buf.buf)];
        self.dev.dispatch(self.kernels.gather, entry, params, &bufs, u(y.n()));
        Ok(y)
    }

    fn norm(
        &self,
        entry: &'static str,
        x: &GpuTensor,
        w: &GpuTensor,
        b: Option<&GpuTensor>,
        eps: f32,
    ) -> Result<GpuTensor> {
        let g = w.n();
        let op = if b.is_some() { Op::LayerNorm } else { Op::RmsNorm };
        check::groups(NAME, op, x.cols, g)?;
        let y = self.tensor(x.rows, x.cols);
        let groups = x.n() / g;
        let mut bufs = vec![(1, &x.buf.buf), (2, &w.buf.buf), (4, &y.buf.buf)];
        if let Some(b) = b {
            bufs.push((3, &b.buf.buf));
        }
        self.dev.dispatch(self.kernels.norm, entry, &[u(groups), u(g), eps.to_bits()], &bufs, u(groups));
        Ok(y)
    }
}
