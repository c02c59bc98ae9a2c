use assay_engine::contract::bind::{TensorStatus, Violation};
use assay_engine::contract::{Binding, Contract, Scheme, bind};
use assay_engine::{DType, MetaValue, Model};
use assay_harness::contracts::embedded;
use assay_tests::{Synth, synth};

fn contracts() -> Vec<Contract> {
    embedded().expect("embedded contracts validate")
}

/// Writes `s` in `format_key`'s format into `dir` and binds it.
fn bind_written(contract: &Contract, s: &Synth, format_key: &str, dir: &std::path::Path) -> Binding {
    let path = match format_key {
        "gguf" => s.write_gguf(&dir.join("m.gguf")),
        "hf" => s.write_safetensors(&dir.join("hf")),
        _ => s.write_apr(&dir.join("m.apr")),
    };
    let model = Model::open(&path).unwrap_or_else(|e| panic!("{e}"));
    bind(contract, &model)
}

#[test]
fn every_contract_passes_a_conforming_model_in_every_format() {
    for c in contracts() {
        for (format_key, scheme) in
            [("gguf", Scheme::Gguf), ("hf", Scheme::Hf), ("apr", Scheme::Gguf), ("apr", Scheme::Hf)]
        {
            let dir = tempfile::tempdir().unwrap();
            let s = synth(&c, scheme, format_key);
            let b = bind_written(&c, &s, format_key, dir.path());
            assert!(b.passed(), "{} as {format_key}/{scheme}: {:#?}", c.name(), b.violations);
            assert_eq!(b.scheme, scheme, "{} as {format_key}", c.name());
            // Every tensor the file holds was claimed, and tied outputs are reported as tied.
            assert!(b.tensors.iter().all(|t| t.status != TensorStatus::Violation));
            if c.roles.iter().any(|r| r.tied_to.is_some()) {
                assert!(b.tensors.iter().any(|t| t.status == TensorStatus::Tied), "{}", c.name());
            }
        }
    }
}

#[test]
fn hf_experts_are_per_expert_tensors_and_gguf_stacks_them() {
    let c = contracts().into_iter().find(|c| c.name() == "qwen3_moe").unwrap();
    let hf = synth(&c, Scheme::Hf, "hf");
    assert!(hf.tensors.iter().any(|t| t.name == "model.layers.1.mlp.experts.3.down_proj.weight" && t.shape == [16, 8]));
    let gguf = synth(&c, Scheme::Gguf, "gguf");
    assert!(gguf.tensors.iter().any(|t| t.name == "blk.1.ffn_down_exps.weight" && t.shape == [4, 16, 8]));
}

fn llama() -> Contract {
    contracts().into_iter().find(|c| c.name() == "llama").unwrap()
}

fn violations_after(format_key: &str, scheme: Scheme, mutate: impl FnOnce(&mut Synth)) -> Vec<Violation> {
    let c = llama();
    let mut s = synth(&c, scheme, format_key);
    mutate(&mut s);
    let dir = tempfile::tempdir().unwrap();
    bind_written(&c, &s, format_key, dir.path()).violations
}

#[test]
fn a_missing_tensor_is_named() {
    let v = violations_after("gguf", Scheme::Gguf, |s| s.tensors.retain(|t| t.name != "blk.1.attn_k.weight"));
    assert!(
        matches!(&v[..], [Violation::MissingTensor { tensor, role }] if tensor == "blk.1.attn_k.weight" && role == "attn_k.weight"),
        "{v:#?}"
    );
}

#[test]
fn a_wrong_shape_reports_expression_value_and_found() {
    let v = violations_after("hf", Scheme::Hf, |s| {
        let t = s.tensors.iter_mut().find(|t| t.name == "model.layers.0.self_attn.k_proj.weight").unwrap();
        t.shape = vec![16, 16];
        t.data = assay_tests::f32_bytes(256, 0);
    });
    match &v[..] {
        [Violation::ShapeMismatch { expression, expected, found, .. }] => {
            assert_eq!(expression, "[n_head_kv * head_dim, n_embd]");
            assert_eq!(expected, &[8, 16]);
            assert_eq!(found, &[16, 16]);
        }
        other => panic!("{other:#?}"),
    }
}

#[test]
fn a_hparam_inconsistent_with_the_tensors_is_caught_by_shapes() {
    // n_embd says 32, the tensors are 16 wide: every n_embd-shaped tensor disagrees.
    let v = violations_after("gguf", Scheme::Gguf, |s| {
        s.metadata.iter_mut().find(|(k, _)| k == "llama.embedding_length").unwrap().1 = MetaValue::U32(32);
    });
    assert!(!v.is_empty() && v.iter().all(|v| matches!(v, Violation::ShapeMismatch { .. })), "{v:#?}");
    assert!(v.iter().any(|v| matches!(v, Violation::ShapeMismatch { tensor, .. } if tensor == "token_embd.weight")));
}

#[test]
fn a_disallowed_dtype_names_the_class() {
    let v = violations_after("gguf", Scheme::Gguf, |s| {
        let t = s.tensors.iter_mut().find(|t| t.name == "output_norm.weight").unwrap();
        t.dtype = DType::Q8_0; // 16 elements is not a Q8_0 row: widen to one block
        t.shape = vec![32];
        t.data = vec![0; 34];
    });
    assert!(
        v.iter()
            .any(|v| matches!(v, Violation::DTypeNotAllowed { dtype: DType::Q8_0, class, .. } if class == "vector")),
        "{v:#?}"
    );
}

#[test]
fn unclaimed_tensors_and_missing_hparams_are_violations() {
    let v = violations_after("gguf", Scheme::Gguf, |s| {
        s.tensors.push(assay_tests::SynthTensor {
            name: "blk.2.attn_q.weight".into(),
            dtype: DType::F32,
            shape: vec![4],
            data: vec![0; 16],
        });
        s.metadata.retain(|(k, _)| k != "llama.attention.head_count");
    });
    assert!(
        v.iter().any(|v| matches!(v, Violation::UnclaimedTensor { tensor } if tensor == "blk.2.attn_q.weight")),
        "{v:#?}"
    );
    assert!(v.iter().any(|v| matches!(v, Violation::MissingHparam { hparam, .. } if hparam == "n_head")), "{v:#?}");
}

#[test]
fn a_wrong_architecture_and_a_wrongly_typed_hparam_are_violations() {
    let v = violations_after("apr", Scheme::Gguf, |s| {
        s.architecture = "qwen2".into();
        s.metadata.iter_mut().find(|(k, _)| k == "num_layers").unwrap().1 = MetaValue::Str("two".into());
    });
    assert!(v.iter().any(|v| matches!(v, Violation::ArchitectureMismatch { found, .. } if found == "qwen2")), "{v:#?}");
    assert!(v.iter().any(|v| matches!(v, Violation::HparamType { hparam, .. } if hparam == "n_layer")), "{v:#?}");
}

#[test]
fn defaults_and_inference_fill_absent_keys() {
    let c = llama();
    let mut s = synth(&c, Scheme::Gguf, "gguf");
    s.metadata.retain(|(k, _)| k != "llama.vocab_size" && k != "llama.attention.key_length");
    let dir = tempfile::tempdir().unwrap();
    let b = bind_written(&c, &s, "gguf", dir.path());
    assert!(b.passed(), "{:#?}", b.violations);
    use assay_engine::contract::bind::HparamSource;
    let source = |n: &str| b.hparams.iter().find(|h| h.name == n).unwrap().source.clone();
    assert_eq!(source("n_vocab"), HparamSource::Inferred { tensor: "token_embd.weight".into(), dim: 0 });
    assert_eq!(source("head_dim"), HparamSource::Default { expr: "(n_embd / n_head)".into() });
    assert_eq!(b.hparam("head_dim"), Some(assay_engine::contract::expr::Num::Int(4)));
}

#[test]
fn an_unknown_expert_count_is_one_violation_not_one_per_expert() {
    let c = contracts().into_iter().find(|c| c.name() == "qwen3_moe").unwrap();
    let mut s = synth(&c, Scheme::Hf, "hf");
    s.metadata.retain(|(k, _)| k != "num_experts");
    let dir = tempfile::tempdir().unwrap();
    let v = bind_written(&c, &s, "hf", dir.path()).violations;
    assert!(
        matches!(&v[..], [Violation::MissingHparam { hparam, tried }] if hparam == "n_expert" && tried.len() == 2),
        "{v:#?}"
    );
}

#[test]
fn later_keys_are_tried_when_the_first_is_absent() {
    // transformers 5 writes rope_parameters.rope_theta; older configs wrote rope_theta.
    let c = llama();
    let mut s = synth(&c, Scheme::Hf, "hf");
    let theta = s.metadata.iter().position(|(k, _)| k == "rope_parameters.rope_theta").unwrap();
    s.metadata[theta] = ("rope_theta".into(), MetaValue::F32(500000.0));
    let dir = tempfile::tempdir().unwrap();
    let b = bind_written(&c, &s, "hf", dir.path());
    assert!(b.passed(), "{:#?}", b.violations);
    assert_eq!(b.hparam("rope_theta"), Some(assay_engine::contract::expr::Num::Float(500000.0)));
}
