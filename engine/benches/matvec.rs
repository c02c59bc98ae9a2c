//! Matrix-vector throughput per weight type, in GB/s of weight bytes, beside a STREAM-style
//! measure of this machine's memory bandwidth taken in the same run.
//!
//!     cargo bench -p assay-engine --bench matvec
//!
//! Groups: `stream` (read, copy and triad over arrays far larger than the caches), then
//! `matvec/{threads}t/{rows}x{cols}/{dtype}` for 1 and 2 threads, and `4096x4096-cold`: the same
//! matvec over enough copies of the matrix that it comes from DRAM. Throughput is weight bytes
//! per second, the quantity decode speed is bound by.

use std::hint::black_box;
use std::time::Duration;

use assay_engine::DType;
use assay_engine::quant::{WeightRows, matvec};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const TYPES: &[DType] = &[
    DType::F32,
    DType::F16,
    DType::BF16,
    DType::Q8_0,
    DType::Q4_0,
    DType::Q4_1,
    DType::Q5_0,
    DType::Q5_1,
    DType::Q2_K,
    DType::Q3_K,
    DType::Q4_K,
    DType::Q5_K,
    DType::Q6_K,
    DType::AprQ4,
    DType::AprQ8,
];

const SHAPES: &[(usize, usize)] = &[(4096, 4096), (256, 1024)];

/// The weights of the `cold` cases span this many bytes, four times the 32 MiB L3 here, so
/// every matvec streams from DRAM as decode does (a single 4096×4096 Q4_K matrix fits in L3).
const COLD_BYTES: usize = 128 << 20;

/// Deterministic bytes in 0x10..=0x3B: every f16 and f32 scale they form is a normal number
/// below 1, so no NaN, infinity or subnormal skews the timing.
fn weight_bytes(n: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            0x10 + (state % 0x2C) as u8
        })
        .collect()
}

fn stream(c: &mut Criterion) {
    // 3 arrays of 128 MiB: far beyond the caches, so this measures DRAM.
    const N: usize = 32 << 20;
    let a = vec![1.0f32; N];
    let b = vec![2.0f32; N];
    let mut out = vec![0.0f32; N];
    let mut g = c.benchmark_group("stream");
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    // Read only, as a matvec reads its weights: sixteen partial sums so the loop vectorizes.
    g.throughput(Throughput::Bytes((2 * N * 4) as u64));
    g.bench_function("read", |bench| {
        bench.iter(|| {
            let mut acc = [0.0f32; 16];
            for chunk in black_box(&a).chunks_exact(16).chain(black_box(&b).chunks_exact(16)) {
                for (s, &v) in acc.iter_mut().zip(chunk) {
                    *s += v;
                }
            }
            acc
        })
    });
    // The same on two threads, the way a 2-thread matvec splits its rows.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("thread pool");
    g.bench_function("read-2t", |bench| {
        use rayon::prelude::*;
        bench.iter(|| {
            pool.install(|| {
                [black_box(&a), black_box(&b)]
                    .par_iter()
                    .flat_map(|v| v.par_chunks(1 << 20))
                    .map(|part| {
                        let mut acc = [0.0f32; 16];
                        for chunk in part.chunks_exact(16) {
                            for (s, &v) in acc.iter_mut().zip(chunk) {
                                *s += v;
                            }
                        }
                        acc.iter().sum::<f32>()
                    })
                    .sum::<f32>()
            })
        })
    });
    g.throughput(Throughput::Bytes((2 * N * 4) as u64));
    g.bench_function("copy", |bench| bench.iter(|| out.copy_from_slice(black_box(&a))));
    g.throughput(Throughput::Bytes((3 * N * 4) as u64));
    g.bench_function("triad", |bench| {
        bench.iter(|| {
            for ((o, &x), &y) in out.iter_mut().zip(black_box(&a)).zip(black_box(&b)) {
                *o = x + 3.0 * y;
            }
        })
    });
    g.finish();
    black_box(&out);
}

fn matvecs(c: &mut Criterion) {
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
        let mut g = c.benchmark_group(format!("matvec/{threads}t"));
        g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
        for (rows, cols, cold) in SHAPES.iter().map(|&(r, c)| (r, c, false)).chain([(4096, 4096, true)]) {
            for &dtype in TYPES {
                let len = dtype.byte_size(&[rows as u64, cols as u64]).expect("small shape") as usize;
                let copies = if cold { COLD_BYTES.div_ceil(len) } else { 1 };
                let mut bytes = weight_bytes(len * copies);
                let mats: Vec<WeightRows<'_>> = {
                    for m in bytes.chunks_exact_mut(len) {
                        if dtype == DType::AprQ8 {
                            m[..4].copy_from_slice(&0.01f32.to_le_bytes());
                        }
                    }
                    bytes
                        .chunks_exact(len)
                        .map(|m| WeightRows::from_parts("bench", dtype, m, rows, cols).expect("valid matrix"))
                        .collect()
                };
                let x: Vec<f32> = (0..cols).map(|i| ((i % 17) as f32 - 8.0) * 0.1).collect();
                let mut y = vec![0.0f32; rows];
                let mut next = 0;
                let label = if cold { format!("{rows}x{cols}-cold") } else { format!("{rows}x{cols}") };
                g.throughput(Throughput::Bytes(len as u64));
                g.bench_function(BenchmarkId::new(label, dtype.name()), |bench| {
                    bench.iter(|| {
                        // Round-robin over the copies: none is still cached when it comes back.
                        next = (next + 1) % mats.len();
                        pool.install(|| matvec(&mats[next], black_box(&x), &mut y))
                    })
                });
            }
        }
        g.finish();
    }
}

criterion_group!(benches, stream, matvecs);
criterion_main!(benches);
