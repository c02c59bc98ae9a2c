//! Every weight accessor of weights.wgsl against the engine's CPU dequantizers, on the device:
//! `get_rows` of every row must equal [`WeightRows::dequantize_row`] bit for bit (each accessor
//! performs the CPU's float operations in the CPU's order, and one f32 operation rounds the same
//! everywhere), and `mat_mul` must agree with the reference backend.
//!
//! The weights are ggml's own blocks (golden/kernels, 8 rows of 512) where the type has vectors,
//! and seeded random blocks for every type: random quant bits, finite f16 scales over the whole
//! f16 range including subnormals, and APR-q8's per-tensor scale.
//!
//! No adapter is a failure, not a skip: CI installs Mesa's Vulkan driver (lavapipe).

use std::path::Path;

use safetensors::SafeTensors;

use super::{Wgpu, weight_fn};
use crate::DType;
use crate::backend::reference::Reference;
use crate::backend::{Backend, HostWeight};
use crate::quant::WeightRows;

/// Every type the engine computes with, and its golden kernel vectors (if ggml has the type).
const CASES: &[(DType, Option<&str>)] = &[
    (DType::F32, Some("q8_0")), // the f32 `input` rows of the Q8_0 vectors
    (DType::F16, Some("f16")),
    (DType::BF16, Some("bf16")),
    (DType::Q4_0, Some("q4_0")),
    (DType::Q4_1, Some("q4_1")),
    (DType::Q5_0, Some("q5_0")),
    (DType::Q5_1, Some("q5_1")),
    (DType::Q8_0, Some("q8_0")),
    (DType::Q2_K, Some("q2_k")),
    (DType::Q3_K, Some("q3_k")),
    (DType::Q4_K, Some("q4_k")),
    (DType::Q5_K, Some("q5_k")),
    (DType::Q6_K, Some("q6_k")),
    (DType::AprQ4, None),
    (DType::AprQ8, None),
];

fn device() -> Wgpu {
    Wgpu::new().unwrap_or_else(|e| {
        panic!("the wgpu backend has no adapter, so its kernels cannot be tested (install mesa-vulkan-drivers): {e}")
    })
}

/// splitmix64: the same blocks on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// A finite f16, any sign, any exponent; one in eight subnormal, one in sixteen zero.
    fn f16_bits(&mut self) -> u16 {
        let sign = (self.below(2) as u16) << 15;
        let mantissa = self.below(1 << 10) as u16;
        match self.below(16) {
            0 => sign,
            1 | 2 => sign | mantissa.max(1),
            _ => sign | ((1 + self.below(30) as u16) << 10) | mantissa,
        }
    }

    /// A finite f32 of moderate magnitude (2⁻²⁰ ..= 2⁸), any sign; one in sixteen zero.
    fn f32_bits(&mut self) -> u32 {
        let sign = (self.below(2) as u32) << 31;
        if self.below(16) == 0 {
            return sign;
        }
        sign | ((107 + self.below(29) as u32) << 23) | (self.below(1 << 23) as u32)
    }
}

/// (elements, bytes) of one block of `dtype`, and the byte offsets of its f16 fields (scales,
/// mins); the other bytes are quants, any bits valid.
fn f16_fields(dtype: DType) -> (usize, usize, &'static [usize]) {
    match dtype {
        DType::F16 => (1, 2, &[0]),
        DType::Q4_0 | DType::AprQ4 => (32, 18, &[0]),
        DType::Q4_1 => (32, 20, &[0, 2]),
        DType::Q5_0 => (32, 22, &[0]),
        DType::Q5_1 => (32, 24, &[0, 2]),
        DType::Q8_0 => (32, 34, &[0]),
        DType::Q2_K => (256, 84, &[80, 82]),
        DType::Q3_K => (256, 110, &[108]),
        DType::Q4_K => (256, 144, &[0, 2]),
        DType::Q5_K => (256, 176, &[0, 2]),
        DType::Q6_K => (256, 210, &[208]),
        other => panic!("{other} has no f16 fields"),
    }
}

/// `n_rows × n_cols` weights of `dtype` as a file stores them (APR-q8 with its scale first).
fn random_weights(dtype: DType, n_rows: usize, n_cols: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let n = n_rows * n_cols;
    match dtype {
        DType::F32 => (0..n).flat_map(|_| rng.f32_bits().to_le_bytes()).collect(),
        DType::BF16 => (0..n).flat_map(|_| ((rng.f32_bits() >> 16) as u16).to_le_bytes()).collect(),
        DType::AprQ8 => {
            let scale = 0.5 + rng.unit().abs();
            let mut out = (scale / 127.0).to_le_bytes().to_vec();
            out.extend((0..n).map(|_| rng.next() as u8));
            out
        }
        _ => {
            let (block_elems, block_bytes, fields) = f16_fields(dtype);
            let mut out: Vec<u8> = (0..n / block_elems * block_bytes).map(|_| rng.next() as u8).collect();
            for block in out.chunks_exact_mut(block_bytes) {
                for &at in fields {
                    block[at..at + 2].copy_from_slice(&rng.f16_bits().to_le_bytes());
                }
            }
            out
        }
    }
}

/// ggml's blocks for `dtype` from golden/kernels/`file`: (bytes, rows, columns).
fn golden_weights(dtype: DType, file: &str) -> (Vec<u8>, usize, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden/kernels").join(format!("{file}.safetensors"));
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = SafeTensors::deserialize(&raw).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let input = st.tensor("input").expect("kernel vectors have `input`");
    let (n_rows, n_cols) = (input.shape()[0], input.shape()[1]);
    let bytes = if dtype == DType::F32 { input.data() } else { st.tensor("quantized").expect("`quantized`").data() };
    (bytes.to_vec(), n_rows, n_cols)
}

/// Every matrix of `dtype` the tests use: (what it is, bytes, rows, columns).
fn matrices(dtype: DType, golden: Option<&str>) -> Vec<(String, Vec<u8>, usize, usize)> {
    let mut out = Vec::new();
    if let Some(file) = golden {
        let (bytes, rows, cols) = golden_weights(dtype, file);
        out.push((format!("golden/kernels/{file}"), bytes, rows, cols));
    }
    // Odd row counts; two K-quant super-blocks or sixteen 32-blocks per row.
    for (seed, rows) in [(1u64, 7usize), (2, 3)] {
        let cols = 512;
        out.push((format!("random (seed {seed})"), random_weights(dtype, rows, cols, seed), rows, cols));
    }
    out
}

fn cpu_rows(w: &WeightRows<'_>) -> Vec<f32> {
    let mut out = vec![0.0f32; w.n_rows * w.n_cols];
    for (r, row) in out.chunks_exact_mut(w.n_cols).enumerate() {
        w.dequantize_row(r, row);
    }
    out
}

#[test]
fn every_type_the_engine_computes_with_has_a_kernel_and_a_case_here() {
    for &d in DType::ALL {
        assert_eq!(weight_fn(d).is_some(), d.is_computable(), "{d}: a kernel exactly when the engine computes with it");
        assert_eq!(CASES.iter().any(|&(c, _)| c == d), d.is_computable(), "{d}: tested here");
    }
}

#[test]
fn get_rows_is_the_cpu_dequantization_bit_for_bit() {
    let gpu = device();
    let mut failures = Vec::new();
    for &(dtype, golden) in CASES {
        for (what, bytes, n_rows, n_cols) in matrices(dtype, golden) {
            let rows = WeightRows::from_parts("w", dtype, &bytes, n_rows, n_cols).unwrap();
            let want = cpu_rows(&rows);
            let m = gpu.load_matrix(HostWeight { rows, transposed: false }).unwrap();
            // Every row, in a scrambled order and with a repeat, so ids really select rows.
            let ids: Vec<u32> = (0..n_rows as u32).rev().chain([0]).collect();
            let got = gpu.download(&gpu.get_rows(&m, &ids).unwrap()).unwrap();
            let mut bad = 0;
            let mut first = None;
            for (i, &id) in ids.iter().enumerate() {
                let r = id as usize;
                for c in 0..n_cols {
                    let (g, w) = (got[i * n_cols + c], want[r * n_cols + c]);
                    if g.to_bits() != w.to_bits() {
                        bad += 1;
                        first.get_or_insert(format!(
                            "row {r} col {c}: device {g:e} ({:#010x}), cpu {w:e} ({:#010x})",
                            g.to_bits(),
                            w.to_bits()
                        ));
                    }
                }
            }
            if let Some(first) = first {
                failures.push(format!("{dtype} {what}: {bad} of {} values differ; first {first}", ids.len() * n_cols));
            }
        }
    }
    assert!(failures.is_empty(), "get_rows differs from the CPU dequantization:\n{}", failures.join("\n"));
}

#[test]
fn mat_mul_agrees_with_the_reference() {
    const N_TOKENS: usize = 3;
    // Error relative to Σ|w·x| of each output (the scale of a dot product's rounding, which a
    // sum with cancellation can make far larger than the result): the device sums n_in f32
    // products in order, the reference in f64, so ~√n_in · 2⁻²⁴ is expected.
    const BUDGET: f64 = 1e-5;
    let gpu = device();
    let mut failures = Vec::new();
    let mut worst = (0.0f64, String::new());
    for &(dtype, golden) in CASES {
        for (what, bytes, n_rows, n_cols) in matrices(dtype, golden) {
            let rows = WeightRows::from_parts("w", dtype, &bytes, n_rows, n_cols).unwrap();
            let dense = cpu_rows(&rows);
            for transposed in [false, true] {
                let w = HostWeight { rows, transposed };
                let (n_in, n_out) = (w.n_in(), w.n_out());
                let mut rng = Rng(0xA55A ^ n_in as u64);
                let x: Vec<f32> = (0..N_TOKENS * n_in).map(|_| rng.unit()).collect();
                let want = Reference.mat_mul(&w, None, &Reference.upload(N_TOKENS, n_in, &x).unwrap()).unwrap().data;
                let m = gpu.load_matrix(w).unwrap();
                let got =
                    gpu.download(&gpu.mat_mul(&m, None, &gpu.upload(N_TOKENS, n_in, &x).unwrap()).unwrap()).unwrap();
                for t in 0..N_TOKENS {
                    for o in 0..n_out {
                        let scale: f64 = (0..n_in)
                            .map(|k| {
                                let wv = if transposed { dense[k * n_cols + o] } else { dense[o * n_cols + k] };
                                (f64::from(wv) * f64::from(x[t * n_in + k])).abs()
                            })
                            .sum();
                        let (g, r) = (f64::from(got[t * n_out + o]), f64::from(want[t * n_out + o]));
                        let err = (g - r).abs() / scale.max(f64::MIN_POSITIVE);
                        let at = format!(
                            "{dtype} {what}{} token {t} output {o}",
                            if transposed { " transposed" } else { "" }
                        );
                        if err.is_nan() || err > BUDGET {
                            failures.push(format!("{at}: device {g:e}, reference {r:e} (relative {err:.2e})"));
                        }
                        if err > worst.0 {
                            worst = (err, at);
                        }
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "mat_mul differs from the reference beyond {BUDGET:e} (worst {:.2e} at {}):\n{}",
        worst.0,
        worst.1,
        failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    eprintln!("mat_mul: worst relative error {:.2e} ({})", worst.0, worst.1);
}
