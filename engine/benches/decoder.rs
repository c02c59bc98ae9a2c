//! The forward pass of a golden fixture, untraced and traced: with `trace::Off` every probe call
//! is compiled out, so "off" is the decoder's own cost; "capture" adds the downloads and copies of
//! every stage. Run: `cargo bench -p assay-engine --bench decoder`.

use std::hint::black_box;
use std::path::Path;

use assay_engine::Model;
use assay_engine::backend::Backend;
use assay_engine::backend::cpu::Cpu;
use assay_engine::backend::reference::Reference;
use assay_engine::contract::{Contract, bind};
use assay_engine::decoder::Decoder;
use assay_engine::trace::{Capture, Off};
use criterion::{Criterion, criterion_group, criterion_main};

const TOKENS: [u32; 24] =
    [35, 85, 85, 67, 91, 223, 266, 75, 72, 75, 267, 289, 334, 271, 323, 287, 270, 291, 349, 223, 352, 28, 223, 41];

fn bench_backend<B: Backend>(c: &mut Criterion, backend: B, arch: &str, file: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let contract = Contract::load(&root.join(format!("contracts/{arch}.yaml"))).unwrap();
    let model = Model::open(root.join("golden").join(arch).join(file)).unwrap();
    let binding = bind(&contract, &model);
    let name = format!("{}/{file}", backend.name());
    let dec = Decoder::new(backend, &contract, &binding, &model).unwrap();
    let mut g = c.benchmark_group(name);
    g.bench_function("prompt24/probe-off", |b| {
        b.iter(|| {
            let mut s = dec.session(TOKENS.len()).unwrap();
            black_box(dec.forward(&mut s, &TOKENS, &mut Off).unwrap())
        })
    });
    g.bench_function("prompt24/probe-capture", |b| {
        b.iter(|| {
            let mut s = dec.session(TOKENS.len()).unwrap();
            let mut cap = Capture::default();
            black_box(dec.forward(&mut s, &TOKENS, &mut cap).unwrap());
            cap
        })
    });
    g.bench_function("decode1-after-23/probe-off", |b| {
        let mut s = dec.session(TOKENS.len()).unwrap();
        dec.forward(&mut s, &TOKENS[..23], &mut Off).unwrap();
        b.iter_batched(
            || {
                let mut s = dec.session(TOKENS.len()).unwrap();
                dec.forward(&mut s, &TOKENS[..23], &mut Off).unwrap();
                s
            },
            |mut s| black_box(dec.forward(&mut s, &TOKENS[23..], &mut Off).unwrap()),
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn decoder(c: &mut Criterion) {
    bench_backend(c, Cpu, "llama", "llama-q8_0.gguf");
    bench_backend(c, Cpu, "llama", "llama-q4_k_m.gguf");
    bench_backend(c, Reference, "llama", "llama-q8_0.gguf");
    // Mixture of experts: the router, per-expert token groups and the shared expert.
    bench_backend(c, Cpu, "qwen3_moe", "qwen3_moe-q8_0.gguf");
    bench_backend(c, Cpu, "qwen2_moe", "qwen2_moe-q8_0.gguf");
}

criterion_group!(benches, decoder);
criterion_main!(benches);
