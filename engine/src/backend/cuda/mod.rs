//! The CUDA backend: every op a kernel of `kernels.cu`, compiled at run time by NVRTC, launched
//! through `cudarc` with the driver loaded dynamically — the one `harness` binary finds a GPU at
//! run time or reports the backend unavailable, never panicking without one. Weights are
//! uploaded as the file stores them and decoded inside the kernels; activations f32, not
//! quantized (judged against [`super::reference`] like `wgpu`); the KV cache lives on the device.
//!
//! Verified on this project's machines by compilation only (NVRTC compiles every kernel in CI);
//! launch geometry and buffer planning are unit-tested on the CPU.

pub mod nvrtc;

use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg,
};

use super::{AttnShape, Backend, BackendError, HeldWeight, HostWeight, Op, Result, RopeParams};
use super::{check, host};
use crate::DType;
use crate::contract::schema::{Activation, RopeStyle};
use crate::ops::kv_cache::ContextFull;

const NAME: &str = "cuda";
/// Threads per block of every launch.
const BLOCK: u32 = 256;
/// Largest weight chunk uploaded as one allocation (kernels index bytes with 32-bit offsets).
const MAX_CHUNK_BYTES: usize = 1 << 31;

/// Device memory from this backend's own allocations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceMemory {
    pub current: u64,
    pub peak: u64,
    pub allocated: u64,
}

/// The launch geometry of `n` independent threads: 1-D blocks of [`BLOCK`].
pub fn launch_config(n: usize) -> LaunchConfig {
    let n = u32::try_from(n.max(1)).expect("launches of fewer than 2^32 threads");
    LaunchConfig { grid_dim: (n.div_ceil(BLOCK), 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
}

/// Row chunks of a weight of `n_rows` rows of `row_bytes` each, none over `max_bytes`:
/// (first row, rows).
pub fn plan_chunks(n_rows: usize, row_bytes: usize, max_bytes: usize) -> Vec<(usize, usize)> {
    let per = (max_bytes / row_bytes.max(1)).max(1);
    (0..n_rows).step_by(per).map(|first| (first, per.min(n_rows - first))).collect()
}

/// The kernel family of a weight dtype (`matmul_<suffix>`, `get_rows_<suffix>`).
pub fn kernel_suffix(dtype: DType) -> Option<&'static str> {
    Some(match dtype {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::Q8_0 => "q8_0",
        DType::Q4_0 => "q4_0",
        DType::Q4_1 => "q4_1",
        DType::Q5_0 => "q5_0",
        DType::Q5_1 => "q5_1",
        DType::Q2_K => "q2_k",
        DType::Q3_K => "q3_k",
        DType::Q4_K => "q4_k",
        DType::Q5_K => "q5_k",
        DType::Q6_K => "q6_k",
        DType::AprQ4 => "apr_q4",
        DType::AprQ8 => "apr_q8",
        _ => return None,
    })
}

/// A device allocation whose bytes count in [`DeviceMemory`] while it lives.
pub struct Tracked<T> {
    s: CudaSlice<T>,
    bytes: u64,
    memory: Arc<Mutex<DeviceMemory>>,
}

impl<T> Drop for Tracked<T> {
    fn drop(&mut self) {
        self.memory.lock().expect("device memory lock").current -= self.bytes;
    }
}

struct Device {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    module: Arc<CudaModule>,
    name: String,
    memory: Arc<Mutex<DeviceMemory>>,
}

/// The process's one device and module, or why there is none.
fn shared() -> &'static std::result::Result<Arc<Device>, String> {
    static DEVICE: OnceLock<std::result::Result<Arc<Device>, String>> = OnceLock::new();
    DEVICE.get_or_init(|| {
        if std::env::var_os("ASSAY_NO_GPU").is_some_and(|v| !v.is_empty() && v != "0") {
            return Err("ASSAY_NO_GPU is set".into());
        }
        // cudarc panics when it cannot load libcuda: ask first.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err("no CUDA driver (libcuda) on this machine".into());
        }
        let ctx = CudaContext::new(0).map_err(|e| format!("no CUDA device: {e}"))?;
        let name = ctx.name().unwrap_or_else(|_| "CUDA device 0".into());
        let ptx = nvrtc::compile()?;
        let module = ctx.load_module(ptx).map_err(|e| format!("loading the kernels on {name}: {e}"))?;
        let stream = ctx.default_stream();
        Ok(Arc::new(Device { ctx, stream, module, name, memory: Arc::default() }))
    })
}

#[derive(Clone)]
pub struct Cuda {
    dev: Arc<Device>,
}

impl Cuda {
    /// The backend on device 0; `Err` says why there is none.
    pub fn new() -> std::result::Result<Self, String> {
        Ok(Self { dev: Arc::clone(shared().as_ref().map_err(Clone::clone)?) })
    }

    /// The device in use, with its free and total memory as the driver reports them.
    pub fn device(&self) -> String {
        match self.dev.ctx.mem_get_info() {
            Ok((free, total)) => format!("{} · {} of {} MiB free", self.dev.name, free >> 20, total >> 20),
            Err(_) => self.dev.name.clone(),
        }
    }

    /// Device memory from this backend's allocations.
    pub fn memory(&self) -> DeviceMemory {
        *self.dev.memory.lock().expect("device memory lock")
    }

    fn track<T>(&self, s: CudaSlice<T>) -> Tracked<T> {
        let bytes = (s.len() * size_of::<T>()) as u64;
        let mut m = self.dev.memory.lock().expect("device memory lock");
        m.current += bytes;
        m.allocated += bytes;
        m.peak = m.peak.max(m.current);
        Tracked { s, bytes, memory: Arc::clone(&self.dev.memory) }
    }

    fn driver<T>(&self, op: Op, r: std::result::Result<T, cudarc::driver::DriverError>) -> Result<T> {
        r.map_err(|e| BackendError::Shape { backend: NAME, op, message: format!("CUDA: {e}") })
    }

    fn zeros(&self, n: usize) -> Result<Tracked<f32>> {
        let s = self.driver(Op::Memory, self.dev.stream.alloc_zeros::<f32>(n.max(1)))?;
        Ok(self.track(s))
    }

    fn put<T: DeviceRepr>(&self, data: &[T]) -> Result<Tracked<T>> {
        let s = self.driver(Op::Memory, self.dev.stream.clone_htod(data))?;
        Ok(self.track(s))
    }

    fn tensor(&self, rows: usize, cols: usize) -> Result<CudaTensor> {
        Ok(CudaTensor { buf: self.zeros(rows * cols)?, rows, cols })
    }

    fn func(&self, name: &str) -> Result<CudaFunction> {
        self.driver(Op::Memory, self.dev.module.load_function(name))
    }
}

/// Launches kernel `$name` of the module over `$n` threads with the arguments given, in order.
macro_rules! launch {
    ($self:expr, $op:expr, $name:expr, $n:expr; $($arg:expr),* $(,)?) => {{
        let f = $self.func($name)?;
        let mut b = $self.dev.stream.launch_builder(&f);
        $( b.arg($arg); )*
        // SAFETY: every kernel of kernels.cu bounds-checks its thread index against the sizes
        // passed, and each op checks the buffers it passes are that large.
        $self.driver($op, unsafe { b.launch(launch_config($n)) }.map(|_| ()))
    }};
}

/// Activations on the device, `[rows, cols]` f32.
pub struct CudaTensor {
    buf: Tracked<f32>,
    rows: usize,
    cols: usize,
}

impl CudaTensor {
    fn n(&self) -> usize {
        self.rows * self.cols
    }

    fn dims(&self) -> check::Dims {
        (self.rows, self.cols)
    }
}

/// A weight as stored, in chunks of rows.
pub struct CudaMatrix<'m> {
    name: &'m str,
    dtype: DType,
    n_rows: usize,
    n_cols: usize,
    row_bytes: usize,
    transposed: bool,
    scale: f32,
    chunks: Vec<(Tracked<u8>, usize, usize)>,
    suffix: &'static str,
}

impl CudaMatrix<'_> {
    fn n_in(&self) -> usize {
        if self.transposed { self.n_rows } else { self.n_cols }
    }

    fn n_out(&self) -> usize {
        if self.transposed { self.n_cols } else { self.n_rows }
    }
}

pub struct CudaCache {
    k: Vec<Tracked<f32>>,
    v: Vec<Tracked<f32>>,
    len: Vec<usize>,
    n_ctx: usize,
    width: usize,
}

fn u(v: usize) -> u32 {
    u32::try_from(v).expect("sizes that fit the device fit u32")
}

impl Backend for Cuda {
    type Tensor = CudaTensor;
    type Matrix<'m> = CudaMatrix<'m>;
    type Vector = CudaTensor;
    type Cache = CudaCache;

    fn name(&self) -> &'static str {
        NAME
    }

    fn upload(&self, rows: usize, cols: usize, data: &[f32]) -> Result<CudaTensor> {
        check::upload(NAME, rows, cols, data.len())?;
        Ok(CudaTensor { buf: self.put(data)?, rows, cols })
    }

    fn download(&self, t: &CudaTensor) -> Result<Vec<f32>> {
        let mut v = self.driver(Op::Memory, self.dev.stream.clone_dtoh(&t.buf.s))?;
        v.truncate(t.n());
        Ok(v)
    }

    fn dims(&self, t: &CudaTensor) -> (usize, usize) {
        (t.rows, t.cols)
    }

    fn load_matrix<'m>(&self, w: HostWeight<'m>) -> Result<CudaMatrix<'m>> {
        let r = &w.rows;
        let Some(suffix) = kernel_suffix(r.dtype) else {
            return Err(BackendError::Unsupported {
                backend: NAME,
                op: Op::MatMul,
                detail: format!("no {} kernel (tensor `{}`)", r.dtype, r.name),
            });
        };
        let row_bytes = r.n_bytes() / r.n_rows.max(1);
        let plan = plan_chunks(r.n_rows, row_bytes, MAX_CHUNK_BYTES);
        if w.transposed && plan.len() > 1 {
            return Err(BackendError::Unsupported {
                backend: NAME,
                op: Op::MatMul,
                detail: format!("`{}` is stored transposed and exceeds one allocation", r.name),
            });
        }
        let chunks = plan
            .into_iter()
            .map(|(first, n)| Ok((self.put(r.slab(first, n).bytes())?, first, n)))
            .collect::<Result<_>>()?;
        Ok(CudaMatrix {
            name: r.name,
            dtype: r.dtype,
            n_rows: r.n_rows,
            n_cols: r.n_cols,
            row_bytes,
            transposed: w.transposed,
            scale: r.scale().unwrap_or(0.0),
            chunks,
            suffix,
        })
    }

    fn matrix_info(&self, m: &CudaMatrix<'_>) -> HeldWeight {
        HeldWeight { tensor: m.name.to_owned(), dtype: m.dtype, bytes: m.row_bytes * m.n_rows }
    }

    fn load_vector(&self, w: HostWeight<'_>) -> Result<CudaTensor> {
        let v = host::load_vector(w);
        self.upload(1, v.len(), &v)
    }

    fn new_cache(&self, n_layer: usize, n_ctx: usize, n_head_kv: usize, head_dim: usize) -> Result<CudaCache> {
        let width = n_head_kv * head_dim;
        Ok(CudaCache {
            k: (0..n_layer).map(|_| self.zeros(n_ctx * width)).collect::<Result<_>>()?,
            v: (0..n_layer).map(|_| self.zeros(n_ctx * width)).collect::<Result<_>>()?,
            len: vec![0; n_layer],
            n_ctx,
            width,
        })
    }

    fn get_rows(&self, m: &CudaMatrix<'_>, ids: &[u32]) -> Result<CudaTensor> {
        if m.transposed || m.chunks.len() != 1 {
            return Err(BackendError::Unsupported {
                backend: NAME,
                op: Op::GetRows,
                detail: format!("`{}`: an embedding table must be stored row-major in one allocation", m.name),
            });
        }
        check::row_ids(NAME, Op::GetRows, m.name, m.n_rows, ids)?;
        let mut y = self.tensor(ids.len(), m.n_cols)?;
        let idx = self.put(ids)?;
        let (n_ids, n_cols, row_bytes) = (u(ids.len()), u(m.n_cols), u(m.row_bytes));
        let n = y.n();
        launch!(self, Op::GetRows, &format!("get_rows_{}", m.suffix), n;
            &m.chunks[0].0.s, &idx.s, &mut y.buf.s, &n_ids, &n_cols, &row_bytes, &m.scale)?;
        Ok(y)
    }

    fn mat_mul(&self, m: &CudaMatrix<'_>, bias: Option<&CudaTensor>, x: &CudaTensor) -> Result<CudaTensor> {
        check::mat_mul(NAME, m.name, m.n_in(), m.n_out(), bias.map(|b| b.n()), x.dims())?;
        let mut y = self.tensor(x.rows, m.n_out())?;
        let name = format!("matmul_{}", m.suffix);
        for (buf, first, rows) in &m.chunks {
            let n = x.rows * if m.transposed { m.n_out() } else { *rows };
            let [t, i, o, rb, fr, cr, tr] =
                [u(x.rows), u(m.n_in()), u(m.n_out()), u(m.row_bytes), u(*first), u(*rows), u32::from(m.transposed)];
            launch!(self, Op::MatMul, &name, n; &buf.s, &x.buf.s, &mut y.buf.s, &t, &i, &o, &rb, &fr, &cr, &tr, &m.scale)?;
        }
        match bias {
            Some(b) => self.binary("add_rows", &y, b),
            None => Ok(y),
        }
    }

    fn rms_norm(&self, x: &CudaTensor, w: &CudaTensor, eps: f32) -> Result<CudaTensor> {
        self.norm(x, w, None, eps)
    }

    fn layer_norm(&self, x: &CudaTensor, w: &CudaTensor, b: &CudaTensor, eps: f32) -> Result<CudaTensor> {
        check::layer_norm(NAME, x.cols, w.n(), b.n())?;
        self.norm(x, w, Some(b), eps)
    }

    fn rope(&self, x: &mut CudaTensor, p: RopeParams, positions: &[u32]) -> Result<()> {
        check::rope(NAME, x.dims(), p, positions)?;
        let half = p.n_rot / 2;
        if half == 0 {
            return Ok(());
        }
        // The angles in f64 on the host, as the reference computes them.
        let cs = host::rope_table(p, positions);
        let cs = self.put(&cs)?;
        let n = x.rows * (x.cols / p.head_dim) * half;
        let [nn, cols, hd, nr, neox] =
            [u(n), u(x.cols), u(p.head_dim), u(p.n_rot), u32::from(p.style == RopeStyle::Neox)];
        launch!(self, Op::Rope, "rope", n; &mut x.buf.s, &cs.s, &nn, &cols, &hd, &nr, &neox)
    }

    fn attention(
        &self,
        cache: &mut CudaCache,
        layer: usize,
        s: AttnShape,
        q: &CudaTensor,
        k: &CudaTensor,
        v: &CudaTensor,
        soft_max: bool,
    ) -> Result<(CudaTensor, Option<CudaTensor>)> {
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
        let at = used * cache.width;
        let stream = &self.dev.stream;
        self.driver(
            Op::Attention,
            stream.memcpy_dtod(&k.buf.s.slice(..k.n()), &mut cache.k[layer].s.slice_mut(at..at + k.n())),
        )?;
        self.driver(
            Op::Attention,
            stream.memcpy_dtod(&v.buf.s.slice(..v.n()), &mut cache.v[layer].s.slice_mut(at..at + v.n())),
        )?;
        cache.len[layer] += k.rows;
        let n_kv = cache.len[layer];
        let mut out = self.tensor(q.rows, q.cols)?;
        let mut sm = self.tensor(s.n_head, q.rows * n_kv)?;
        let scale = 1.0 / (s.head_dim as f32).sqrt();
        let [nt, nh, nhk, hd, nkv] = [u(q.rows), u(s.n_head), u(s.n_head_kv), u(s.head_dim), u(n_kv)];
        let (kc, vc) = (&cache.k[layer].s, &cache.v[layer].s);
        launch!(self, Op::Attention, "attention", q.rows * s.n_head;
            &q.buf.s, kc, vc, &mut out.buf.s, &mut sm.buf.s, &nt, &nh, &nhk, &hd, &nkv, &scale)?;
        Ok((out, soft_max.then_some(sm)))
    }

    fn activation(&self, act: Activation, x: &CudaTensor) -> Result<CudaTensor> {
        let name = match act {
            Activation::Silu => "silu",
            Activation::GeluTanh => "gelu_tanh",
            Activation::GeluErf => "gelu_erf",
        };
        let mut y = self.tensor(x.rows, x.cols)?;
        let n = u(x.n());
        launch!(self, Op::Activation, name, x.n(); &x.buf.s, &mut y.buf.s, &n)?;
        Ok(y)
    }

    fn add(&self, a: &CudaTensor, b: &CudaTensor) -> Result<CudaTensor> {
        self.binary("add", a, b)
    }

    fn mul(&self, a: &CudaTensor, b: &CudaTensor) -> Result<CudaTensor> {
        self.binary("mul", a, b)
    }

    fn split_cols(&self, x: &CudaTensor, widths: &[usize]) -> Result<Vec<CudaTensor>> {
        check::split(NAME, x.cols, widths)?;
        let mut at = 0;
        let mut parts = Vec::with_capacity(widths.len());
        for &w in widths {
            let mut y = self.tensor(x.rows, w)?;
            let [n, src, dst, off] = [u(x.rows * w), u(x.cols), u(w), u(at)];
            launch!(self, Op::Elementwise, "copy_cols", x.rows * w; &x.buf.s, &mut y.buf.s, &n, &src, &dst, &off)?;
            parts.push(y);
            at += w;
        }
        Ok(parts)
    }

    fn soft_max(&self, x: &CudaTensor) -> Result<CudaTensor> {
        self.rows_op("soft_max", x)
    }

    fn top_k(&self, x: &CudaTensor, k: usize) -> Result<Vec<u32>> {
        // The choice decides which expert weights run: made on the host from the device's
        // probabilities.
        let host = host::HostTensor::new(NAME, x.rows, x.cols, self.download(x)?)?;
        host::top_k(NAME, &host, k)
    }

    fn take_cols(&self, x: &CudaTensor, ids: &[u32], k: usize) -> Result<CudaTensor> {
        check::take_cols(NAME, x.dims(), ids, k)?;
        let idx = self.put(ids)?;
        let mut y = self.tensor(x.rows, k)?;
        let [rows, cols, kk] = [u(x.rows), u(x.cols), u(k)];
        let n = y.n();
        launch!(self, Op::Moe, "take_cols", n; &x.buf.s, &idx.s, &mut y.buf.s, &rows, &cols, &kk)?;
        Ok(y)
    }

    fn normalize_rows(&self, x: &CudaTensor) -> Result<CudaTensor> {
        self.rows_op("normalize_rows", x)
    }

    fn take_rows(&self, x: &CudaTensor, rows: &[u32]) -> Result<CudaTensor> {
        check::take_rows(NAME, x.dims(), rows)?;
        let idx = self.put(rows)?;
        let mut y = self.tensor(rows.len(), x.cols)?;
        let [n_out, cols] = [u(rows.len()), u(x.cols)];
        let n = y.n();
        launch!(self, Op::Moe, "take_rows", n; &x.buf.s, &idx.s, &mut y.buf.s, &n_out, &cols)?;
        Ok(y)
    }

    fn moe_sum(&self, weights: &CudaTensor, parts: &[(&[u32], &CudaTensor)]) -> Result<CudaTensor> {
        let n_slots = weights.n();
        let shapes: Vec<(&[u32], usize, usize)> = parts.iter().map(|(s, y)| (*s, y.rows, y.cols)).collect();
        let cols = check::slots(NAME, n_slots, &shapes)?;
        let mut slotted = self.tensor(n_slots, cols)?;
        for (slots, y) in parts {
            let idx = self.put(slots)?;
            let [n_src, c] = [u(y.rows), u(cols)];
            launch!(self, Op::Moe, "put_rows", y.n(); &y.buf.s, &idx.s, &mut slotted.buf.s, &n_src, &c)?;
        }
        let mut out = self.tensor(weights.rows, cols)?;
        let [nt, c, k] = [u(weights.rows), u(cols), u(weights.cols)];
        let n = out.n();
        launch!(self, Op::Moe, "moe_sum", n; &slotted.buf.s, &weights.buf.s, &mut out.buf.s, &nt, &c, &k)?;
        Ok(out)
    }

    fn sigmoid_gate(&self, x: &CudaTensor, g: &CudaTensor) -> Result<CudaTensor> {
        check::gate(NAME, x.dims(), g.dims())?;
        let mut y = self.tensor(x.rows, x.cols)?;
        let [n, cols] = [u(x.n()), u(x.cols)];
        launch!(self, Op::Moe, "sigmoid_gate", x.n(); &x.buf.s, &g.buf.s, &mut y.buf.s, &n, &cols)?;
        Ok(y)
    }
}

impl Cuda {
    /// `add`, `mul` (same shapes) or `add_rows` (b one row).
    fn binary(&self, name: &str, a: &CudaTensor, b: &CudaTensor) -> Result<CudaTensor> {
        if name == "add_rows" {
            check::same(NAME, (1, a.cols), b.dims())?;
        } else {
            check::same(NAME, a.dims(), b.dims())?;
        }
        let mut y = self.tensor(a.rows, a.cols)?;
        let (n, cols) = (u(a.n()), u(a.cols));
        if name == "add_rows" {
            launch!(self, Op::Elementwise, name, a.n(); &a.buf.s, &b.buf.s, &mut y.buf.s, &n, &cols)?;
        } else {
            launch!(self, Op::Elementwise, name, a.n(); &a.buf.s, &b.buf.s, &mut y.buf.s, &n)?;
        }
        Ok(y)
    }

    /// A row-wise kernel (`soft_max`, `normalize_rows`): one thread per row.
    fn rows_op(&self, name: &str, x: &CudaTensor) -> Result<CudaTensor> {
        let mut y = self.tensor(x.rows, x.cols)?;
        let (rows, cols) = (u(x.rows), u(x.cols));
        launch!(self, Op::Moe, name, x.rows; &x.buf.s, &mut y.buf.s, &rows, &cols)?;
        Ok(y)
    }

    fn norm(&self, x: &CudaTensor, w: &CudaTensor, b: Option<&CudaTensor>, eps: f32) -> Result<CudaTensor> {
        let g = w.n();
        let op = if b.is_some() { Op::LayerNorm } else { Op::RmsNorm };
        check::groups(NAME, op, x.cols, g)?;
        let mut y = self.tensor(x.rows, x.cols)?;
        let groups = x.n() / g;
        let (gs, gu) = (u(groups), u(g));
        match b {
            None => launch!(self, op, "rms_norm", groups; &x.buf.s, &w.buf.s, &mut y.buf.s, &gs, &gu, &eps)?,
            Some(bias) => {
                launch!(self, op, "layer_norm", groups; &x.buf.s, &w.buf.s, &bias.buf.s, &mut y.buf.s, &gs, &gu, &eps)?
            }
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launches_cover_every_thread_in_blocks_of_256() {
        for n in [0, 1, 255, 256, 257, 1 << 20] {
            let c = launch_config(n);
            assert_eq!(c.block_dim, (BLOCK, 1, 1));
            assert!(c.grid_dim.0 * BLOCK >= n as u32 && (c.grid_dim.0 - 1) * BLOCK < n.max(1) as u32, "{n}: {c:?}");
        }
    }

    #[test]
    fn chunks_split_rows_under_the_allocation_limit_and_cover_every_row() {
        assert_eq!(plan_chunks(10, 100, 1000), [(0, 10)]);
        assert_eq!(plan_chunks(10, 100, 300), [(0, 3), (3, 3), (6, 3), (9, 1)]);
        assert_eq!(plan_chunks(3, 500, 100), [(0, 1), (1, 1), (2, 1)], "a row over the limit stays whole");
        let plan = plan_chunks(32000, 2304, MAX_CHUNK_BYTES);
        assert_eq!(plan.iter().map(|c| c.1).sum::<usize>(), 32000);
    }

    #[test]
    fn every_computable_dtype_has_a_kernel_family_and_nothing_else_does() {
        for d in DType::ALL {
            assert_eq!(kernel_suffix(*d).is_some(), d.is_computable(), "{d}");
            if let Some(s) = kernel_suffix(*d) {
                for k in [format!("matmul_{s}"), format!("get_rows_{s}")] {
                    assert!(nvrtc::KERNELS.contains(&k.as_str()), "{k} is launched but not in kernels.cu");
                }
            }
        }
    }

    #[test]
    fn without_a_driver_the_backend_is_unavailable_not_a_panic() {
        // Never a panic: a machine without libcuda (this one, CI) gets a reason; one with a
        // driver gets the backend or the driver's own reason (no device, kernels refused).
        let driver = unsafe { cudarc::driver::sys::is_culib_present() };
        match Cuda::new() {
            Ok(c) => assert!(driver && !c.device().is_empty()),
            Err(e) if !driver => assert!(e.contains("no CUDA driver") || e.contains("ASSAY_NO_GPU"), "{e}"),
            Err(e) => assert!(!e.is_empty()),
        }
    }
}
