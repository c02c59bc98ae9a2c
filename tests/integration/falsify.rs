//! Every invariant every contract declares kills its mutant on every golden fixture, on every
//! backend it names — the CI proof that no check is decorative.

use assay_engine::Model;
use assay_engine::backend::HOST_BACKENDS;
use assay_engine::contract::bind;
use assay_engine::decoder::Mutation;
use assay_harness::falsify::{Verdict, falsify};
use assay_harness::numeric::{RunStatus, Tokens, run_named};
use assay_harness::verify::load_golden;

use super::decoder::{contract, manifest};

#[test]
fn every_contract_invariant_kills_its_mutant_on_every_fixture() {
    let mut not_killed = Vec::new();
    let mut killed = 0;
    for arch in ["llama", "qwen2", "qwen3", "qwen3_moe", "qwen2_moe", "gpt2", "phi2"] {
        let m = manifest(arch);
        let c = contract(arch);
        assert!(c.doc.invariants.len() >= 5, "{arch}: {} invariants", c.doc.invariants.len());
        for e in &m.models {
            let model = Model::open(m.path(&e.file)).unwrap();
            let binding = bind(&c, &model);
            let golden = load_golden(&m, e).unwrap();
            let tokens = Tokens { ids: m.token_ids.clone(), prefill: m.kv_run.prefill };
            for backend in HOST_BACKENDS {
                let clean = run_named(backend, &c, &binding, &model, Some(&golden), &tokens, &[]).unwrap();
                assert_eq!(clean.status, RunStatus::Pass, "{} on {backend}", e.file);
                for r in falsify(&clean, &c, &binding, &model, &golden, &tokens) {
                    if r.verdict == Verdict::Killed {
                        killed += 1;
                    } else if r.verdict == Verdict::NotApplicable {
                        // Only expanding an all-f32 file to f32 changes nothing.
                        assert_eq!((r.mutation, e.dtype.as_str()), ("expand_to_f32", "f32"), "{}", e.file);
                    } else {
                        not_killed.push(format!(
                            "{arch}/{} {backend} {} ({}): {:?} {}",
                            e.file, r.invariant, r.mutation, r.verdict, r.detail
                        ));
                    }
                }
            }
        }
    }
    assert!(not_killed.is_empty(), "{}", not_killed.join("\n"));
    assert!(killed >= 800, "{killed} mutants killed");
}

#[test]
fn every_named_mutation_is_used_by_some_contract() {
    let used: Vec<String> = ["llama", "qwen2", "qwen3", "qwen3_moe", "qwen2_moe", "gpt2", "phi2"]
        .iter()
        .flat_map(|a| contract(a).doc.invariants.into_iter().map(|i| i.falsify.value))
        .collect();
    for (name, m) in Mutation::NAMED {
        assert_eq!(Mutation::named(name), Some(*m));
        assert_eq!(m.name(), *name);
        assert!(used.iter().any(|u| u == name), "no contract falsifies with `{name}`");
    }
}

#[test]
fn every_weight_is_held_in_its_file_bytes_on_every_fixture() {
    use assay_engine::backend::cpu::Cpu;
    use assay_engine::decoder::Decoder;
    use std::collections::BTreeMap;
    for arch in ["llama", "qwen2", "qwen3", "qwen3_moe", "qwen2_moe", "gpt2", "phi2"] {
        let m = manifest(arch);
        let c = contract(arch);
        for e in &m.models {
            let model = Model::open(m.path(&e.file)).unwrap();
            let binding = bind(&c, &model);
            let dec = Decoder::new(Cpu, &c, &binding, &model).unwrap();
            let mut per_tensor: BTreeMap<String, usize> = BTreeMap::new();
            for h in dec.held_weights() {
                let t = model.tensor(&h.tensor).unwrap();
                assert_eq!(h.dtype, t.dtype, "{}: {}", e.file, h.tensor);
                *per_tensor.entry(h.tensor).or_default() += h.bytes;
            }
            // Each tensor is held whole (a tied output twice; an expert stack as its slabs).
            for (name, bytes) in per_tensor {
                let t = model.tensor(&name).unwrap();
                // APR-q8's 4-byte tensor scale is held once beside the rows, not in them.
                let len = t.len as usize - if t.dtype == assay_engine::DType::AprQ8 { 4 } else { 0 };
                assert!(bytes > 0 && bytes % len == 0, "{}: {name} held {bytes} B of {len}", e.file);
            }
        }
    }
}
