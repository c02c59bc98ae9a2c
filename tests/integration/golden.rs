//! Every golden manifest: each listed file exists with its size and sha256, nothing unlisted
//! sits beside it, and every model file passes static verification against its contract.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assay_engine::Model;
use assay_engine::contract::bind;
use assay_harness::contracts::embedded;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden")
}

/// Every manifest.json under golden/, one per fixture directory.
fn manifests() -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let path = entry.unwrap().path().join("manifest.json");
        if path.is_file() {
            let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((path.parent().unwrap().to_owned(), json));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != "manifest.json" {
                out.insert(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out
}

#[test]
fn the_fixture_set_is_complete() {
    let names: BTreeSet<String> =
        manifests().iter().map(|(d, _)| d.file_name().unwrap().to_string_lossy().into_owned()).collect();
    let expected = ["gpt2", "kernels", "llama", "phi2", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe"];
    assert_eq!(names, expected.iter().map(|s| s.to_string()).collect(), "golden/ manifests");
}

#[test]
fn every_listed_file_exists_with_its_hash_and_nothing_else_is_there() {
    for (dir, m) in manifests() {
        let listed = m["files"].as_object().unwrap();
        for (rel, info) in listed {
            let path = dir.join(rel);
            let len = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).len();
            assert_eq!(Some(len), info["bytes"].as_u64(), "{}: size", path.display());
            assert_eq!(sha256_hex(&path), info["sha256"].as_str().unwrap(), "{}: sha256", path.display());
        }
        let on_disk = files_under(&dir);
        let listed: BTreeSet<String> = listed.keys().cloned().collect();
        assert_eq!(on_disk, listed, "{}: files on disk vs manifest", dir.display());
    }
}

#[test]
fn every_model_file_passes_static_verification_against_its_contract() {
    let contracts = embedded().unwrap();
    let mut checked = 0;
    for (dir, m) in manifests() {
        let Some(models) = m["models"].as_array() else { continue };
        for entry in models {
            let path = dir.join(entry["file"].as_str().unwrap());
            let contract = contracts.iter().find(|c| c.name() == entry["contract"].as_str().unwrap()).unwrap();
            let model = Model::open(&path).unwrap_or_else(|e| panic!("{e}"));
            let b = bind(contract, &model);
            assert!(b.passed(), "{}: {:#?}", path.display(), b.violations);
            // The golden it points at exists and was captured on the manifest's prompt.
            let golden = dir.join(entry["golden"].as_str().unwrap());
            let bytes = std::fs::read(&golden).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let ids: Vec<i32> = st
                .tensor("input_ids")
                .unwrap()
                .data()
                .chunks(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let want: Vec<i32> =
                m["token_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i32).collect();
            assert_eq!(ids, want, "{}", golden.display());
            assert!(st.tensor("result_output").is_ok() && st.tensor("kv.result_output").is_ok());
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} model files in the manifests");
}

#[test]
fn every_gguf_has_llama_cpp_logits() {
    for (dir, m) in manifests() {
        let Some(models) = m["models"].as_array() else { continue };
        for entry in models.iter().filter(|e| e["format"] == "gguf") {
            let logits = entry["llamacpp"]["logits"].as_str().unwrap_or_else(|| panic!("{entry}"));
            assert!(dir.join(logits).is_file(), "{}", dir.join(logits).display());
        }
    }
}

/// Stages that occur once per forward rather than once per layer.
const GLOBAL_STAGES: &[&str] = &["inp_embd", "inp_pos_embd", "result_norm", "result_output"];

#[test]
fn every_stage_a_contract_lists_is_in_its_captures() {
    let contracts = embedded().unwrap();
    for (dir, m) in manifests() {
        let Some(models) = m["models"].as_array() else { continue };
        let contract = contracts.iter().find(|c| c.name() == m["contract"].as_str().unwrap()).unwrap();
        let goldens: BTreeSet<&str> = models.iter().map(|e| e["golden"].as_str().unwrap()).collect();
        for golden in goldens {
            let bytes = std::fs::read(dir.join(golden)).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let names: BTreeSet<String> = st.names().into_iter().map(str::to_owned).collect();
            let n_layer = names.iter().filter(|n| n.starts_with("l_out-")).count();
            assert!(n_layer >= 2, "{golden}: {n_layer} layers");
            for stage in &contract.doc.stages {
                let stage = stage.value.as_str();
                let wanted: Vec<String> = if GLOBAL_STAGES.contains(&stage) {
                    vec![stage.to_owned()]
                } else {
                    (0..n_layer).map(|l| format!("{stage}-{l}")).collect()
                };
                for w in wanted {
                    assert!(
                        names.contains(&w),
                        "{}/{golden} lacks `{w}`, which contract {} lists",
                        dir.display(),
                        contract.name()
                    );
                }
            }
        }
    }
}

/// The agreement numbers the tool wrote are what the committed files give, recomputed here with
/// the harness's own metrics: the manifest cannot drift from the data.
#[test]
fn llama_cpp_agreement_in_the_manifests_is_reproducible() {
    use assay_harness::compare::{compare, compare_logits};
    use assay_harness::golden::{Manifest, read_stages};
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 + 1e-6 * b.abs();
    let mut checked = 0;
    for m in Manifest::load_all(&golden_dir()).unwrap() {
        for e in &m.models {
            let Some(peer) = &e.llamacpp else { continue };
            let logits = &read_stages(&m.path(&peer.logits)).unwrap()["logits"];
            let golden = &read_stages(&m.path(&e.golden)).unwrap()["result_output"];
            let n_vocab = golden.shape[1];
            let l = compare_logits(&logits.values, &golden.values, n_vocab).unwrap();
            let d = compare(&logits.values, &golden.values).unwrap();
            let a = &peer.agreement;
            assert!(close(l.kl_max, a.kl_max) && close(l.kl_mean, a.kl_mean), "{}: {l:?} vs {a:?}", e.file);
            assert_eq!(l.top1_agreement, a.top1_agreement, "{}", e.file);
            assert!(close(d.max_abs, a.max_abs), "{}: {} vs {}", e.file, d.max_abs, a.max_abs);
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} GGUF files with llama.cpp logits");
}
