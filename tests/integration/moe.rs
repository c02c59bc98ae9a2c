//! Mixture-of-experts layers beyond "every fixture passes": routing near-ties, the expert bytes
//! a token reads (and proof that unselected experts are never touched), the MoE mutants, and the
//! upstream failure classes — rope θ defaulted per contract, NaN named at its MoE stage, missing
//! q/k norms refused.

use assay_engine::backend::cpu::Cpu;
use assay_engine::backend::reference::Reference;
use assay_engine::backend::{Backend, HOST_BACKENDS};
use assay_engine::contract::{Binding, Contract, Scheme, bind};
use assay_engine::decoder::{Decoder, DecoderError, ExpertReads, ForcedRoutes, Mutation};
use assay_engine::trace::{Capture, Off};
use assay_engine::{MetaValue, Model};
use assay_harness::numeric::{BackendRun, Invariant, RunStatus, Tokens, run_named};
use assay_harness::verify::load_golden;
use assay_tests::synth;

use super::decoder::{contract, manifest, run, stage};

fn invariant<'a>(r: &'a BackendRun, id: &str) -> &'a Invariant {
    r.invariants.iter().find(|i| i.id == id).unwrap_or_else(|| panic!("no invariant {id}: {:?}", r.invariants))
}

/// `arch`'s fixture `file` opened and bound to its contract.
fn open(arch: &str, file: &str) -> (Contract, Model) {
    let m = manifest(arch);
    let e = m.models.iter().find(|e| e.file == file).unwrap();
    (contract(&e.contract), Model::open(m.path(file)).unwrap())
}

#[test]
fn near_ties_are_routed_as_the_golden_and_reported_while_the_reference_matches_exactly() {
    // cpu quantizes activations as llama.cpp does; on Q4_K_M three tokens land on a near-tie.
    let r = run("qwen3_moe", "qwen3_moe-q4_k_m.gguf", "cpu", &[]);
    assert_eq!(r.status, RunStatus::Pass, "{:?}", r.invariants);
    let routing = r.routing.as_ref().unwrap();
    assert_eq!(routing.rows, 48, "24 tokens × 2 layers");
    assert!(!routing.ambiguous.is_empty() && routing.mismatched.is_empty(), "{routing:?}");
    assert!(routing.ambiguous.iter().all(|d| d.margin < routing.margin_bound && d.ours != d.golden));
    let inv = invariant(&r, "ROUTING-MATCHES-GOLDEN");
    assert!(inv.pass && inv.detail.contains("ambiguous"), "{inv:?}");
    // llama.cpp routes the same near-ties the same way: its logits are ours unforced.
    let llama = r.logits.iter().find(|l| l.against == "llama.cpp").unwrap();
    assert!(llama.kl_max < 1e-9, "{llama:?}");

    let r = run("qwen3_moe", "qwen3_moe-q4_k_m.gguf", "reference", &[]);
    let routing = r.routing.as_ref().unwrap();
    assert!(routing.ambiguous.is_empty() && routing.mismatched.is_empty(), "{routing:?}");
}

#[test]
fn without_a_route_margin_a_near_tie_is_a_routing_failure_at_ffn_moe_topk() {
    let (c, model) = open("qwen3_moe", "qwen3_moe-q4_k_m.gguf");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts/qwen3_moe.yaml")).unwrap();
    let strict =
        Contract::from_yaml(&text.replace("route_margin: 2.0e-2", "route_margin: 0.0"), "strict/qwen3_moe.yaml")
            .unwrap();
    let m = manifest("qwen3_moe");
    let e = m.models.iter().find(|e| e.file == "qwen3_moe-q4_k_m.gguf").unwrap();
    let golden = load_golden(&m, e).unwrap();
    let tokens = Tokens { ids: m.token_ids.clone(), prefill: m.kv_run.prefill };
    let binding = bind(&c, &model);
    let r = run_named("cpu", &strict, &binding, &model, Some(&golden), &tokens, &[]).unwrap();
    assert_eq!(r.status, RunStatus::Fail);
    assert!(!invariant(&r, "ROUTING-MATCHES-GOLDEN").pass);
    assert!(r.first_divergence.as_ref().unwrap().stage.starts_with("ffn_moe_topk-"), "{:?}", r.first_divergence);
}

#[test]
fn skipping_the_qk_norm_diverges_at_qcur_normed_and_misroutes() {
    let r = run("qwen3_moe", "qwen3_moe-f32.gguf", "reference", &[Mutation::SkipQkNorm]);
    assert_eq!(r.status, RunStatus::Fail);
    assert_eq!(r.first_divergence.as_ref().unwrap().stage, "Qcur_normed-0");
    assert!(stage(&r, "Qcur-0").pass && stage(&r, "Kcur-0").pass);
    let inv = invariant(&r, "ROUTING-MATCHES-GOLDEN");
    assert!(!inv.pass && inv.detail.contains("mismatched"), "{inv:?}");
}

#[test]
fn unnormalized_top_k_weights_break_the_sum_invariant() {
    let r = run("qwen3_moe", "qwen3_moe-q8_0.gguf", "cpu", &[Mutation::SkipRenormalize]);
    assert_eq!(r.status, RunStatus::Fail);
    assert!(!invariant(&r, "ROUTE-WEIGHTS-SUM-TO-ONE").pass);
    assert_eq!(r.first_divergence.as_ref().unwrap().stage, "ffn_moe_weights_norm-0");
    let ok = run("qwen3_moe", "qwen3_moe-q8_0.gguf", "cpu", &[]);
    let inv = invariant(&ok, "ROUTE-WEIGHTS-SUM-TO-ONE");
    assert!(inv.pass, "{inv:?}");
    // Qwen2-MoE does not renormalize: no such claim is made for it.
    let r = run("qwen2_moe", "qwen2_moe-q8_0.gguf", "cpu", &[]);
    assert!(r.invariants.iter().all(|i| i.id != "ROUTE-WEIGHTS-SUM-TO-ONE"));
}

#[test]
fn running_every_expert_changes_no_number_only_the_bytes_read() {
    let r = run("qwen2_moe", "qwen2_moe-q8_0.gguf", "cpu", &[Mutation::ReadEveryExpert]);
    assert_eq!(r.status, RunStatus::Fail);
    assert!(r.stages.iter().chain(&r.kv_stages).all(|s| s.pass), "the output is unchanged");
    assert!(r.logits.iter().all(|l| l.pass));
    let failed: Vec<&str> = r.invariants.iter().filter(|i| !i.pass).map(|i| i.id).collect();
    assert_eq!(failed, ["EXPERT-BYTES-PER-TOKEN"]);
    let ok = run("qwen2_moe", "qwen2_moe-q8_0.gguf", "cpu", &[]);
    let inv = invariant(&ok, "EXPERT-BYTES-PER-TOKEN");
    assert!(inv.pass && inv.detail.contains("2 of 8 experts per layer"), "{inv:?}");
}

/// Bytes of expert `e`'s three slabs at `layer`, from the file's tensor table.
fn slab_bytes(model: &Model, layer: usize, n_expert: u64) -> u64 {
    ["ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"]
        .iter()
        .map(|t| model.tensor(&format!("blk.{layer}.{t}.weight")).unwrap().len / n_expert)
        .sum()
}

/// The experts each layer chose for the rows of `capture`.
fn chosen(capture: &Capture, n_layer: usize) -> Vec<Vec<u32>> {
    (0..n_layer)
        .map(|l| capture.stages[&format!("ffn_moe_topk-{l}")].values.iter().map(|&e| e as u32).collect())
        .collect()
}

#[test]
fn a_decode_step_reads_exactly_k_expert_slabs_per_layer() {
    // qwen2_moe Q4_K_M mixes types across layers (ffn_down_exps Q5_0 in block 0, Q8_0 in 1).
    for (arch, file) in [("qwen3_moe", "qwen3_moe-q8_0.gguf"), ("qwen2_moe", "qwen2_moe-q4_k_m.gguf")] {
        let (c, model) = open(arch, file);
        let binding = bind(&c, &model);
        let dec = Decoder::new(Cpu, &c, &binding, &model).unwrap();
        let (n_expert, k) = dec.hparams.experts.unwrap();
        let n_layer = dec.hparams.n_layer;
        let tokens = &manifest(arch).token_ids;
        let mut s = dec.session(32).unwrap();
        let mut prefill = Capture::default();
        dec.forward(&mut s, &tokens[..16], &mut prefill).unwrap();
        let distinct: u64 = chosen(&prefill, n_layer)
            .into_iter()
            .enumerate()
            .map(|(l, mut ids)| {
                ids.sort_unstable();
                ids.dedup();
                ids.len() as u64 * slab_bytes(&model, l, n_expert as u64)
            })
            .sum();
        assert_eq!(s.expert_reads().bytes, distinct, "{file}: a prefill reads each selected expert once");
        let total: u64 = (0..n_layer).map(|l| n_expert as u64 * slab_bytes(&model, l, n_expert as u64)).sum();
        for &t in &tokens[16..] {
            let before = s.expert_reads();
            dec.forward(&mut s, &[t], &mut Off).unwrap();
            let after = s.expert_reads();
            let per_token: u64 = (0..n_layer).map(|l| k as u64 * slab_bytes(&model, l, n_expert as u64)).sum();
            let step = ExpertReads { slabs: after.slabs - before.slabs, bytes: after.bytes - before.bytes };
            assert_eq!(step, ExpertReads { slabs: (n_layer * k) as u64, bytes: per_token }, "{file}");
            assert_eq!(per_token * n_expert as u64, total * k as u64);
        }
    }
}

/// `file` with every expert slab not in `keep[layer]` overwritten by `poison` bytes.
fn poisoned(model: &Model, keep: &[Vec<u32>], n_expert: u64, poison: &dyn Fn(&mut [u8])) -> tempfile::NamedTempFile {
    let mut bytes = std::fs::read(&model.path).unwrap();
    for (l, keep) in keep.iter().enumerate() {
        for t in ["ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"] {
            let info = model.tensor(&format!("blk.{l}.{t}.weight")).unwrap();
            let slab = info.len / n_expert;
            for e in (0..n_expert).filter(|e| !keep.contains(&(*e as u32))) {
                let at = (info.offset + e * slab) as usize;
                poison(&mut bytes[at..at + slab as usize]);
            }
        }
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    file
}

fn one_token<B: Backend>(backend: B, c: &Contract, model: &Model, token: u32) -> (Vec<f32>, Capture) {
    let binding: Binding = bind(c, model);
    let dec = Decoder::new(backend, c, &binding, model).unwrap();
    let mut cap = Capture::default();
    let logits = dec.forward(&mut dec.session(1).unwrap(), &[token], &mut cap).unwrap();
    (logits, cap)
}

#[test]
fn unselected_experts_are_never_read() {
    // F32 slabs poisoned with NaN on the reference; Q8_0 slabs with NaN block scales on cpu.
    let nan_f32 = |b: &mut [u8]| b.chunks_exact_mut(4).for_each(|c| c.copy_from_slice(&f32::NAN.to_le_bytes()));
    let nan_q8_0 = |b: &mut [u8]| b.chunks_exact_mut(34).for_each(|c| c[..2].copy_from_slice(&0x7e00u16.to_le_bytes()));
    type Poison<'a> = &'a dyn Fn(&mut [u8]);
    let cases: [(&str, &str, Poison); 2] =
        [("qwen3_moe-f32.gguf", "reference", &nan_f32), ("qwen3_moe-q8_0.gguf", "cpu", &nan_q8_0)];
    for (file, backend, poison) in cases {
        let (c, model) = open("qwen3_moe", file);
        let run = |model: &Model| match backend {
            "reference" => one_token(Reference, &c, model, 67),
            _ => one_token(Cpu, &c, model, 67),
        };
        let (clean, cap) = run(&model);
        let keep = chosen(&cap, 2);
        let n_expert = 8;
        // Everything but the chosen slabs poisoned: not one value changes.
        let file_keep = poisoned(&model, &keep, n_expert, poison);
        let (logits, _) = run(&Model::open(file_keep.path()).unwrap());
        assert_eq!(logits, clean, "{file}: an unselected expert was read");
        // The poison works: with one chosen slab poisoned too, the layer's output is NaN.
        let mut fewer = keep.clone();
        fewer[1].remove(0);
        let file_fewer = poisoned(&model, &fewer, n_expert, poison);
        let (_, cap) = run(&Model::open(file_fewer.path()).unwrap());
        let out = &cap.stages["ffn_moe_out-1"].values;
        assert!(out.iter().all(|v| v.is_nan()), "{file}: a poisoned selected expert must show");
    }
}

#[test]
fn nan_in_any_moe_stage_is_named_at_that_stage() {
    let cases = [
        ("qwen2_moe", "qwen2_moe-q8_0.gguf", "ffn_moe_logits"),
        ("qwen2_moe", "qwen2_moe-q8_0.gguf", "ffn_moe_probs"),
        ("qwen2_moe", "qwen2_moe-q8_0.gguf", "ffn_moe_weights"),
        ("qwen2_moe", "qwen2_moe-q8_0.gguf", "ffn_moe_out"),
        ("qwen2_moe", "qwen2_moe-q8_0.gguf", "ffn_shexp"),
        ("qwen2_moe", "qwen2_moe-q8_0.gguf", "ffn_shexp_out"),
        ("qwen3_moe", "qwen3_moe-q4_0.gguf", "ffn_moe_weights_norm"),
    ];
    for (arch, file, stage_id) in cases {
        for backend in HOST_BACKENDS {
            let r = run(arch, file, backend, &[Mutation::NanAt { stage: stage_id, layer: 1 }]);
            assert_eq!(r.status, RunStatus::Fail);
            assert_eq!(r.first_non_finite.as_deref(), Some(format!("{stage_id}-1").as_str()), "{file} {backend}");
            assert!(stage(&r, "l_out-0").pass, "layer 0 is untouched");
        }
    }
}

#[test]
fn a_qwen3_moe_file_without_rope_freq_base_gets_the_contracts_1e6() {
    // A synthesized file without the key: the contract's default, not llama.cpp's 1e4.
    let c = contract("qwen3_moe");
    let mut s = synth(&c, Scheme::Gguf, "gguf");
    s.metadata.retain(|(k, _)| k != "qwen3moe.rope.freq_base");
    let dir = tempfile::tempdir().unwrap();
    let model = Model::open(s.write_gguf(&dir.path().join("m.gguf"))).unwrap();
    let binding = bind(&c, &model);
    assert!(binding.violations.is_empty(), "{:?}", binding.violations);
    let dec = Decoder::new(Reference, &c, &binding, &model).unwrap();
    assert_eq!(dec.hparams.rope_theta, 1e6);

    // The golden fixture with its key renamed still matches transformers (θ = 1e6 there); with
    // the value set to 1e4 it diverges first at the rotated q.
    let (c, model) = open("qwen3_moe", "qwen3_moe-f32.gguf");
    let bytes = std::fs::read(&model.path).unwrap();
    let key = b"qwen3moe.rope.freq_base";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert_eq!(u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()), 6, "an f32 value follows");
    assert_eq!(f32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()), 1e6);
    let edited = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.clone();
        edit(&mut b);
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), b).unwrap();
        f
    };
    let m = manifest("qwen3_moe");
    let e = m.models.iter().find(|e| e.file == "qwen3_moe-f32.gguf").unwrap();
    let golden = load_golden(&m, e).unwrap();
    let tokens = Tokens { ids: m.token_ids.clone(), prefill: m.kv_run.prefill };
    let verify = |f: &tempfile::NamedTempFile| {
        let model = Model::open(f.path()).unwrap();
        let binding = bind(&c, &model);
        run_named("reference", &c, &binding, &model, Some(&golden), &tokens, &[]).unwrap()
    };
    let unnamed = edited(&|b| b[at - 1] = b'X'); // `…freq_basX`: an unknown key
    let r = verify(&unnamed);
    assert_eq!(r.status, RunStatus::Pass, "{:?}", r.first_divergence);
    let wrong = edited(&|b| b[at + 4..at + 8].copy_from_slice(&1e4f32.to_le_bytes()));
    let r = verify(&wrong);
    assert_eq!(r.first_divergence.as_ref().unwrap().stage, "Qcur_rope-0");
    assert_eq!(Model::open(wrong.path()).unwrap().metadata.get("qwen3moe.rope.freq_base"), Some(&MetaValue::F32(1e4)));
}

#[test]
fn missing_qk_norm_weights_are_refused_at_load() {
    let c = contract("qwen3_moe");
    let mut s = synth(&c, Scheme::Gguf, "gguf");
    s.tensors.retain(|t| t.name != "blk.1.attn_k_norm.weight");
    let dir = tempfile::tempdir().unwrap();
    let model = Model::open(s.write_gguf(&dir.path().join("m.gguf"))).unwrap();
    let binding = bind(&c, &model);
    let err = Decoder::new(Reference, &c, &binding, &model).err().unwrap();
    assert!(matches!(err, DecoderError::Binding { .. }), "{err}");
    assert!(err.to_string().contains("blk.1.attn_k_norm.weight"), "{err}");
}

#[test]
fn a_synthesized_moe_model_runs_in_every_format() {
    // HF per-expert tensors and stacked slabs in GGUF and APR (the golden fixtures show the HF
    // and GGUF layouts of the same weights agree; synthesized data differs by tensor name).
    for name in ["qwen3_moe", "qwen2_moe"] {
        let c = contract(name);
        let dir = tempfile::tempdir().unwrap();
        let gguf = synth(&c, Scheme::Gguf, "gguf").write_gguf(&dir.path().join("m.gguf"));
        let apr = synth(&c, Scheme::Gguf, "apr").write_apr(&dir.path().join("m.apr"));
        let hf = synth(&c, Scheme::Hf, "hf").write_safetensors(&dir.path().join("hf"));
        let mut outputs = Vec::new();
        for path in [gguf, apr, hf] {
            let model = Model::open(&path).unwrap();
            let binding = bind(&c, &model);
            assert!(binding.violations.is_empty(), "{name} {}: {:?}", path.display(), binding.violations);
            let dec = Decoder::new(Reference, &c, &binding, &model).unwrap();
            outputs.push(dec.forward(&mut dec.session(4).unwrap(), &[1, 5, 7, 2], &mut Off).unwrap());
        }
        assert!(outputs.iter().all(|o| o.iter().all(|v| v.is_finite())), "{name}");
        assert_eq!(outputs[0], outputs[1], "{name}: GGUF vs APR");
    }
}

#[test]
fn forced_routes_must_name_k_existing_experts() {
    let (c, model) = open("qwen3_moe", "qwen3_moe-q4_0.gguf");
    let binding = bind(&c, &model);
    let dec = Decoder::new(Cpu, &c, &binding, &model).unwrap();
    let mut s = dec.session(4).unwrap();
    s.force_routes(ForcedRoutes::from([((1, 0), vec![3, 8])]));
    let err = dec.forward(&mut s, &[5, 6], &mut Off).unwrap_err();
    assert_eq!(err.to_string(), "forced route [3, 8] at layer 1, position 0: expected 2 distinct experts below 8");
    // A valid forced route is used: the trace shows it.
    let mut s = dec.session(4).unwrap();
    s.force_routes(ForcedRoutes::from([((1, 1), vec![7, 0])]));
    let mut cap = Capture::default();
    dec.forward(&mut s, &[5, 6], &mut cap).unwrap();
    assert_eq!(&cap.stages["ffn_moe_topk-1"].values[2..], &[7.0, 0.0]);
}
