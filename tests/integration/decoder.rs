//! The decoder end to end: every golden fixture of every architecture on every host
//! backend, stage by stage against transformers' float64 captures and llama.cpp's logits; and
//! deliberately broken decoders, each caught by the check that guards what it breaks.

use std::path::{Path, PathBuf};

use assay_engine::Model;
use assay_engine::backend::HOST_BACKENDS;
use assay_engine::backend::reference::Reference;
use assay_engine::contract::{Contract, bind};
use assay_engine::decoder::{Decoder, DecoderError, Mutation};
use assay_engine::trace::Off;
use assay_harness::contracts::{embedded, resolve};
use assay_harness::golden::Manifest;
use assay_harness::numeric::{BackendRun, RunStatus, Tokens, run_named};
use assay_harness::verify::load_golden;

pub(crate) fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden")
}

pub(crate) fn manifest(arch: &str) -> Manifest {
    Manifest::load(&golden_dir().join(arch).join("manifest.json")).unwrap()
}

pub(crate) fn contract(name: &str) -> Contract {
    resolve(name, &embedded().unwrap()).unwrap()
}

/// Runs one manifest entry (by file name) on `backend` with `mutations`.
pub(crate) fn run(arch: &str, file: &str, backend: &str, mutations: &[Mutation]) -> BackendRun {
    if let Err(why) = assay_harness::numeric::availability(backend) {
        panic!("backend `{backend}` is required by the test suite but unavailable: {why}");
    }
    let m = manifest(arch);
    let e = m.models.iter().find(|e| e.file == file).unwrap_or_else(|| panic!("{arch}: no fixture {file}"));
    let c = contract(&e.contract);
    let model = Model::open(m.path(&e.file)).unwrap();
    let binding = bind(&c, &model);
    let golden = load_golden(&m, e).unwrap();
    let tokens = Tokens { ids: m.token_ids.clone(), prefill: m.kv_run.prefill };
    run_named(backend, &c, &binding, &model, Some(&golden), &tokens, mutations).unwrap()
}

/// Every backend this suite requires: the host ones and wgpu (on Mesa's lavapipe where there is
/// no GPU; `.ci/run` installs it). A missing adapter fails the suite, it is not skipped.
const BACKENDS: &[&str] = &["reference", "cpu", "wgpu"];

/// Every fixture of `arch` passes on every backend: each traced stage within the
/// contract's NMSE bound, logits within KL of the golden and of llama.cpp, invariants kept.
fn every_fixture_passes(arch: &str) {
    let m = manifest(arch);
    assert!(m.models.len() >= 5, "{arch}: {} fixtures", m.models.len());
    let mut failures = Vec::new();
    for e in &m.models {
        for backend in BACKENDS {
            let r = run(arch, &e.file, backend, &[]);
            assert!(!r.stages.is_empty() && !r.kv_stages.is_empty(), "{}: nothing compared", e.file);
            assert_eq!(r.logits.len(), 1 + usize::from(e.llamacpp.is_some()), "{}", e.file);
            if r.status != RunStatus::Pass {
                failures.push(format!(
                    "{} on {backend}: {:?} {:?} {:?} {:?}",
                    e.file,
                    r.error,
                    r.first_divergence,
                    r.logits.iter().filter(|l| !l.pass).collect::<Vec<_>>(),
                    r.invariants.iter().filter(|i| !i.pass).collect::<Vec<_>>()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn llama_every_fixture_passes_on_every_backend() {
    every_fixture_passes("llama");
}

#[test]
fn qwen2_every_fixture_passes_on_every_backend() {
    every_fixture_passes("qwen2");
}

#[test]
fn qwen3_every_fixture_passes_on_every_backend() {
    every_fixture_passes("qwen3");
}

#[test]
fn gpt2_every_fixture_passes_on_every_backend() {
    every_fixture_passes("gpt2");
}

#[test]
fn phi2_every_fixture_passes_on_every_backend() {
    every_fixture_passes("phi2");
}

#[test]
fn qwen3_moe_every_fixture_passes_on_every_backend() {
    every_fixture_passes("qwen3_moe");
}

#[test]
fn qwen2_moe_every_fixture_passes_on_every_backend() {
    every_fixture_passes("qwen2_moe");
}

/// The stage check of `r` named `stage`.
pub(crate) fn stage<'a>(r: &'a BackendRun, stage: &str) -> &'a assay_harness::numeric::StageCheck {
    r.stages.iter().find(|s| s.stage == stage).unwrap_or_else(|| panic!("no stage {stage}"))
}

#[test]
fn a_swapped_rope_style_diverges_first_at_the_post_rope_q_of_layer_0() {
    // NEOX weights (HF checkpoint) and NORMAL weights (llama.cpp's permuted GGUF), both backends.
    for (file, backend) in [("hf", "reference"), ("llama-f32.gguf", "reference"), ("llama-q8_0.gguf", "cpu")] {
        let r = run("llama", file, backend, &[Mutation::SwapRopeStyle]);
        assert_eq!(r.status, RunStatus::Fail, "{file}");
        let first = r.first_divergence.as_ref().unwrap();
        assert_eq!(first.stage, "Qcur_rope-0", "{file} on {backend}");
        assert!(first.nmse > 1e-3, "{file}: {first:?}");
        for ok in ["inp_embd", "attn_norm-0", "Qcur-0", "Kcur-0", "Vcur-0"] {
            assert!(stage(&r, ok).pass, "{file}: {ok} should still pass: {:?}", stage(&r, ok));
        }
        assert!(!stage(&r, "Kcur_rope-0").pass);
        assert!(r.logits.iter().any(|l| !l.pass), "{file}: the logits notice too");
    }
}

#[test]
fn an_off_by_one_decode_position_breaks_kv_equals_one_pass_only() {
    let r = run("qwen2", "qwen2-q8_0.gguf", "cpu", &[Mutation::DecodePositionOffByOne]);
    assert_eq!(r.status, RunStatus::Fail);
    assert!(r.stages.iter().all(|s| s.pass), "the one-pass run is untouched");
    let kv = r.invariants.iter().find(|i| i.id == "KV-EQUALS-ONE-PASS").unwrap();
    assert!(!kv.pass, "{kv:?}");
    assert!(r.kv_stages.iter().any(|s| !s.pass), "the golden's KV run disagrees too");
}

#[test]
fn the_first_stage_to_produce_nan_is_named() {
    for backend in HOST_BACKENDS {
        let r = run("phi2", "phi2-q4_0.gguf", backend, &[Mutation::NanAt { stage: "attn_norm", layer: 1 }]);
        assert_eq!(r.status, RunStatus::Fail);
        assert_eq!(r.first_non_finite.as_deref(), Some("attn_norm-1"), "{backend}");
        assert!(stage(&r, "l_out-0").pass, "layer 0 is untouched");
        let finite = r.invariants.iter().find(|i| i.id == "LOGITS-FINITE").unwrap();
        if *backend == "reference" {
            assert!(!finite.pass && finite.detail.contains("NaN"), "{finite:?}");
        } else {
            // cpu quantizes activations as ggml does: an all-NaN row has amax 0 and quantizes to
            // zeros, so the NaN vanishes downstream and the logits look fine. Only the stage
            // check sees it — which is why NaN/Inf is checked per stage, first.
            assert!(finite.pass, "{finite:?}");
        }
    }
}

#[test]
fn exceeding_the_context_is_an_error_not_a_crash() {
    let m = manifest("llama");
    let c = contract("llama");
    let model = Model::open(m.path("llama-q4_0.gguf")).unwrap();
    let binding = bind(&c, &model);
    let dec = Decoder::new(Reference, &c, &binding, &model).unwrap();
    let mut s = dec.session(4).unwrap();
    let err = dec.forward(&mut s, &[1, 2, 3, 4, 5], &mut Off).unwrap_err();
    assert_eq!(err.to_string(), "context full: 0 of 4 positions used, 5 more requested");
    dec.forward(&mut s, &[1, 2, 3], &mut Off).unwrap();
    dec.forward(&mut s, &[4], &mut Off).unwrap();
    let err = dec.forward(&mut s, &[5], &mut Off).unwrap_err();
    assert!(matches!(err, DecoderError::ContextFull(_)), "{err}");
    assert_eq!(s.pos(), 4, "a refused step changes nothing");

    let err = dec.forward(&mut dec.session(4).unwrap(), &[1, 384], &mut Off).unwrap_err();
    assert_eq!(err.to_string(), "token id 384 at index 1 is outside the vocabulary of 384");
    assert!(matches!(dec.forward(&mut s, &[], &mut Off), Err(DecoderError::Empty)));
}

#[test]
fn a_model_that_violates_its_contract_is_not_run() {
    let m = manifest("qwen2");
    let model = Model::open(m.path("qwen2-q4_0.gguf")).unwrap();
    let c = contract("llama"); // wrong architecture
    let binding = bind(&c, &model);
    let err = Decoder::new(Reference, &c, &binding, &model).err().unwrap();
    assert!(err.to_string().starts_with("the model violates contract `llama`"), "{err}");
}

/// The reference backend without attention: an op a backend lacks is an explicit answer that
/// names the op, and the run is reported unsupported — never run elsewhere instead.
struct NoAttention;

mod no_attention {
    use assay_engine::backend::reference::Reference;
    use assay_engine::backend::{
        AttnShape, Backend, BackendError, HeldWeight, HostTensor, HostWeight, Op, Result, RopeParams,
    };
    use assay_engine::contract::schema::Activation;
    use assay_engine::ops::kv_cache::KvCache;

    impl Backend for super::NoAttention {
        type Tensor = HostTensor;
        type Matrix<'m> = HostWeight<'m>;
        type Vector = Vec<f32>;
        type Cache = KvCache;
        fn name(&self) -> &'static str {
            "no-attention"
        }
        fn upload(&self, rows: usize, cols: usize, data: &[f32]) -> Result<HostTensor> {
            Reference.upload(rows, cols, data)
        }
        fn download(&self, t: &HostTensor) -> Result<Vec<f32>> {
            Reference.download(t)
        }
        fn dims(&self, t: &HostTensor) -> (usize, usize) {
            Reference.dims(t)
        }
        fn load_matrix<'m>(&self, w: HostWeight<'m>) -> Result<HostWeight<'m>> {
            Reference.load_matrix(w)
        }
        fn matrix_info(&self, m: &HostWeight<'_>) -> HeldWeight {
            Reference.matrix_info(m)
        }
        fn load_vector(&self, w: HostWeight<'_>) -> Result<Vec<f32>> {
            Reference.load_vector(w)
        }
        fn new_cache(&self, n_layer: usize, n_ctx: usize, n_head_kv: usize, head_dim: usize) -> Result<KvCache> {
            Reference.new_cache(n_layer, n_ctx, n_head_kv, head_dim)
        }
        fn get_rows(&self, m: &HostWeight<'_>, ids: &[u32]) -> Result<HostTensor> {
            Reference.get_rows(m, ids)
        }
        fn mat_mul(&self, m: &HostWeight<'_>, b: Option<&Vec<f32>>, x: &HostTensor) -> Result<HostTensor> {
            Reference.mat_mul(m, b, x)
        }
        fn rms_norm(&self, x: &HostTensor, w: &Vec<f32>, eps: f32) -> Result<HostTensor> {
            Reference.rms_norm(x, w, eps)
        }
        fn layer_norm(&self, x: &HostTensor, w: &Vec<f32>, b: &Vec<f32>, eps: f32) -> Result<HostTensor> {
            Reference.layer_norm(x, w, b, eps)
        }
        fn rope(&self, x: &mut HostTensor, p: RopeParams, positions: &[u32]) -> Result<()> {
            Reference.rope(x, p, positions)
        }
        fn attention(
            &self,
            _: &mut KvCache,
            _: usize,
            _: AttnShape,
            _: &HostTensor,
            _: &HostTensor,
            _: &HostTensor,
            _: bool,
        ) -> Result<(HostTensor, Option<HostTensor>)> {
            Err(BackendError::Unsupported { backend: "no-attention", op: Op::Attention, detail: "not written".into() })
        }
        fn activation(&self, act: Activation, x: &HostTensor) -> Result<HostTensor> {
            Reference.activation(act, x)
        }
        fn add(&self, a: &HostTensor, b: &HostTensor) -> Result<HostTensor> {
            Reference.add(a, b)
        }
        fn mul(&self, a: &HostTensor, b: &HostTensor) -> Result<HostTensor> {
            Reference.mul(a, b)
        }
        fn split_cols(&self, x: &HostTensor, widths: &[usize]) -> Result<Vec<HostTensor>> {
            Reference.split_cols(x, widths)
        }
        fn soft_max(&self, x: &HostTensor) -> Result<HostTensor> {
            Reference.soft_max(x)
        }
        fn top_k(&self, x: &HostTensor, k: usize) -> Result<Vec<u32>> {
            Reference.top_k(x, k)
        }
        fn take_cols(&self, x: &HostTensor, ids: &[u32], k: usize) -> Result<HostTensor> {
            Reference.take_cols(x, ids, k)
        }
        fn normalize_rows(&self, x: &HostTensor) -> Result<HostTensor> {
            Reference.normalize_rows(x)
        }
        fn take_rows(&self, x: &HostTensor, rows: &[u32]) -> Result<HostTensor> {
            Reference.take_rows(x, rows)
        }
        fn moe_sum(&self, w: &HostTensor, parts: &[(&[u32], &HostTensor)]) -> Result<HostTensor> {
            Reference.moe_sum(w, parts)
        }
        fn sigmoid_gate(&self, x: &HostTensor, g: &HostTensor) -> Result<HostTensor> {
            Reference.sigmoid_gate(x, g)
        }
    }
}

#[test]
fn an_op_a_backend_lacks_is_reported_unsupported_by_name() {
    let m = manifest("qwen3");
    let e = m.models.iter().find(|e| e.file == "qwen3-q8_0.gguf").unwrap();
    let c = contract("qwen3");
    let model = Model::open(m.path(&e.file)).unwrap();
    let binding = bind(&c, &model);
    let golden = load_golden(&m, e).unwrap();
    let tokens = Tokens { ids: m.token_ids.clone(), prefill: m.kv_run.prefill };
    let r = assay_harness::numeric::run(NoAttention, &c, &binding, &model, Some(&golden), &tokens, &[]);
    assert_eq!(r.status, RunStatus::Unsupported);
    assert_eq!(r.error.as_deref(), Some("backend `no-attention` does not support attention: not written"));
}
