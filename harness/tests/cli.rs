//! The `harness` binary end to end: output snapshots, exit codes, the committed schema.

use std::path::{Path, PathBuf};
use std::process::Command;

use assay_engine::contract::{Contract, Scheme};
use assay_harness::contracts;
use assay_tests::synth;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn harness(args: &[&str], cwd: &Path) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_BACKTRACE", "1")
        .env_remove("ASSAY_CONTRACTS")
        .env_remove("ASSAY_GOLDEN")
        .output()
        .expect("run harness");
    let run = Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(!run.stderr.contains("panicked"), "harness panicked: {}", run.stderr);
    run
}

fn contract(name: &str) -> Contract {
    contracts::embedded().unwrap().into_iter().find(|c| c.name() == name).unwrap()
}

/// A directory holding a conforming tiny llama in all three formats.
fn llama_dir() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let c = contract("llama");
    let gguf = synth(&c, Scheme::Gguf, "gguf").write_gguf(&dir.path().join("llama.gguf"));
    let hf = synth(&c, Scheme::Hf, "hf").write_safetensors(&dir.path().join("llama-hf"));
    let apr = synth(&c, Scheme::Hf, "apr").write_apr(&dir.path().join("llama.apr"));
    (dir, gguf, hf, apr)
}

fn snapshot_settings(dir: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex_escape(&dir.display().to_string()), "[TMP]");
    // Peak RSS depends on the machine; the bound does not.
    s.add_filter(r"\| \d+\.\d / (\d+\.\d) MiB +\|", "| [RSS] / $1 MiB |");
    // The adapter depends on the machine.
    s.add_filter(r"backend wgpu on .*", "backend wgpu on [ADAPTER]");
    s
}

fn regex_escape(text: &str) -> String {
    text.chars().flat_map(|c| if c.is_alphanumeric() || c == '/' { vec![c] } else { vec!['\\', c] }).collect()
}

#[test]
fn inspect_shows_format_contract_metadata_tensors_and_totals() {
    let (dir, gguf, hf, apr) = llama_dir();
    let settings = snapshot_settings(dir.path());
    for (name, path) in [("gguf", &gguf), ("safetensors", &hf), ("apr", &apr)] {
        let run = harness(&["inspect", path.to_str().unwrap()], dir.path());
        assert_eq!(run.code, 0, "{}", run.stderr);
        settings.bind(|| insta::assert_snapshot!(format!("inspect_{name}"), run.stdout));
    }
    let run = harness(&["inspect", "--json", gguf.to_str().unwrap()], dir.path());
    assert_eq!(run.code, 0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["schema"], "assay.inspect/1");
    assert_eq!(json["contract"], "llama");
    assert_eq!(json["tensors"][0]["name"], "token_embd.weight");
    assert_eq!(json["totals"][0]["dtype"], "f32");
}

#[test]
fn verify_passes_conforming_models_in_every_format() {
    let (dir, gguf, hf, apr) = llama_dir();
    let run = harness(
        &[
            "verify",
            "--contract",
            "llama",
            "--model",
            gguf.to_str().unwrap(),
            "--model",
            hf.to_str().unwrap(),
            "--model",
            apr.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.ends_with("3/3 passed\n"), "{}", run.stdout);
    snapshot_settings(dir.path()).bind(|| insta::assert_snapshot!("verify_pass", run.stdout));
}

#[test]
fn verify_reports_violations_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let c = contract("qwen3");
    let mut s = synth(&c, Scheme::Gguf, "gguf");
    s.tensors.retain(|t| t.name != "blk.1.attn_k_norm.weight");
    let t = s.tensors.iter_mut().find(|t| t.name == "blk.0.ffn_up.weight").unwrap();
    t.shape = vec![23, 16];
    t.data = assay_tests::f32_bytes(23 * 16, 0);
    let path = s.write_gguf(&dir.path().join("qwen3-broken.gguf"));
    // The contract is chosen from the architecture.
    let run = harness(&["verify", "--model", path.to_str().unwrap()], dir.path());
    assert_eq!(run.code, 1, "{}", run.stdout);
    snapshot_settings(dir.path()).bind(|| insta::assert_snapshot!("verify_violations", run.stdout));

    let run = harness(&["verify", "--json", "--model", path.to_str().unwrap()], dir.path());
    assert_eq!(run.code, 1);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let kinds: Vec<&str> = json["results"][0]["binding"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["missing_tensor", "shape_mismatch"]);
    assert_eq!(json["passed"], 0);
}

#[test]
fn verify_against_the_wrong_contract_fails() {
    let (dir, gguf, ..) = llama_dir();
    let run = harness(&["verify", "--contract", "qwen2", "--model", gguf.to_str().unwrap()], dir.path());
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("GGUF architecture `llama` is not one this contract claims (qwen2)"), "{}", run.stdout);
}

#[test]
fn malformed_input_exits_2_naming_file_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.gguf");
    let c = contract("llama");
    let full = synth(&c, Scheme::Gguf, "gguf").write_gguf(&dir.path().join("full.gguf"));
    let bytes = std::fs::read(full).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    for cmd in ["inspect", "verify"] {
        let args: Vec<&str> = if cmd == "inspect" {
            vec![cmd, path.to_str().unwrap()]
        } else {
            vec![cmd, "--model", path.to_str().unwrap()]
        };
        let run = harness(&args, dir.path());
        assert_eq!(run.code, 2, "{cmd}: {}{}", run.stdout, run.stderr);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(all.contains("cut.gguf") && all.contains("past the end of the file"), "{cmd}: {all}");
    }
    let run = harness(&["inspect", dir.path().join("nope.gguf").to_str().unwrap()], dir.path());
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("nope.gguf: cannot read the file"), "{}", run.stderr);
}

#[test]
fn bad_usage_and_bad_contracts_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(harness(&["verify", "--frobnicate"], dir.path()).code, 2);
    assert_eq!(harness(&["inspect"], dir.path()).code, 2);
    let run = harness(&["verify", "--contract", "nosuch", "--model", "x.gguf"], dir.path());
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no contract file or contract named `nosuch`"), "{}", run.stderr);

    let bad = dir.path().join("llama.yaml");
    let text = include_str!("../../contracts/llama.yaml").replace("[n_ff, n_embd]", "[n_ff, n_embed]");
    std::fs::write(&bad, text).unwrap();
    let run = harness(&["verify", "--contract", bad.to_str().unwrap(), "--model", "x.gguf"], dir.path());
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("llama.yaml:") && run.stderr.contains("unknown name `n_embed`"), "{}", run.stderr);
}

#[test]
fn verify_without_models_scans_the_golden_directory() {
    let (dir, ..) = llama_dir();
    let golden = dir.path();
    // A stray capture without config.json and a non-model file are not models.
    std::fs::write(golden.join("notes.txt"), "hello").unwrap();
    let run = harness(&["verify", "--golden", golden.to_str().unwrap()], dir.path());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("3/3 passed"), "{}", run.stdout);

    let empty = tempfile::tempdir().unwrap();
    let run = harness(&["verify", "--golden", empty.path().to_str().unwrap()], dir.path());
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("nothing to verify") && run.stdout.contains("0/0 passed"), "{}", run.stdout);

    let run = harness(&["verify", "--golden", "missing-dir"], dir.path());
    assert_eq!(run.code, 2);
}

#[test]
fn contracts_dir_replaces_the_embedded_set() {
    let (dir, gguf, ..) = llama_dir();
    let cdir = dir.path().join("contracts");
    std::fs::create_dir(&cdir).unwrap();
    std::fs::write(cdir.join("qwen2.yaml"), include_str!("../../contracts/qwen2.yaml")).unwrap();
    let run =
        harness(&["verify", "--contracts-dir", cdir.to_str().unwrap(), "--model", gguf.to_str().unwrap()], dir.path());
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("no contract claims GGUF architecture `llama`"), "{}", run.stdout);
}

#[test]
fn committed_schema_is_current() {
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/schema.json")).unwrap();
    assert!(
        committed == assay_harness::schema::json(),
        "contracts/schema.json is stale: run `cargo run -p assay-harness -- schema > contracts/schema.json`"
    );
    let run = harness(&["schema"], Path::new(env!("CARGO_MANIFEST_DIR")));
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout, committed);
}

#[test]
fn every_contract_file_is_embedded() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = contracts::EMBEDDED.iter().map(|(n, _)| n.to_string()).collect();
    embedded.sort();
    assert_eq!(on_disk, embedded, "add new contracts to harness/src/contracts.rs EMBEDDED");
    for (name, text) in contracts::EMBEDDED {
        assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), *text);
    }
}

mod mutated_files {
    use proptest::prelude::*;

    use super::*;

    /// The three formats of a conforming llama, as bytes with the file name to give them.
    fn originals() -> Vec<(&'static str, Vec<u8>)> {
        let (dir, gguf, hf, apr) = llama_dir();
        let st = std::fs::read(hf.join("model.safetensors")).unwrap();
        let out = vec![
            ("m.gguf", std::fs::read(gguf).unwrap()),
            ("m.apr", std::fs::read(apr).unwrap()),
            ("model.safetensors", st),
        ];
        drop(dir);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the damage, the binary exits 0 or 2, never panics, and an error names the file.
        #[test]
        fn the_binary_never_panics_on_damaged_files(
            which in 0usize..3,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in prop::option::of(any::<prop::sample::Index>()),
        ) {
            let (name, mut bytes) = originals().swap_remove(which);
            for (at, b) in edits {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len()));
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            std::fs::write(dir.path().join("config.json"), r#"{"architectures":["LlamaForCausalLM"]}"#).unwrap();
            for args in [vec!["inspect", path.to_str().unwrap()], vec!["verify", "--model", path.to_str().unwrap()]] {
                let run = harness(&args, dir.path());
                prop_assert!(matches!(run.code, 0..=2), "{:?}: exit {}", args, run.code);
                if run.code == 2 {
                    prop_assert!(format!("{}{}", run.stdout, run.stderr).contains(name), "{}", run.stderr);
                }
            }
        }
    }
}

fn golden(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden").join(rel).display().to_string()
}

#[test]
fn verify_runs_a_golden_fixture_numerically_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let golden_dir = golden("");
    let model = golden("qwen3/qwen3-q4_0.gguf");
    let run = harness(&["verify", "--golden", &golden_dir, "--model", &model, "--json"], dir.path());
    assert_eq!(run.code, 0, "{}", run.stdout);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["level"], "numeric");
    let runs = json["results"][0]["numeric"].as_array().unwrap();
    let backends: Vec<&str> = runs.iter().map(|r| r["backend"].as_str().unwrap()).collect();
    assert_eq!(backends, ["reference", "cpu", "wgpu"]);
    for r in runs {
        assert_eq!(r["status"], "pass");
        assert_eq!(r["stages"].as_array().unwrap().len(), 3 + 18 * 2, "every captured stage is compared");
        assert_eq!(r["logits"][1]["against"], "llama.cpp");
    }
    let run = harness(&["verify", "--golden", &golden_dir, "--model", &model, "--backend", "cpu"], dir.path());
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("| cpu     | q4_0"), "{}", run.stdout);
    assert!(!run.stdout.contains("| reference |"), "{}", run.stdout);
    let run = harness(&["verify", "--level", "static", "--model", &model], dir.path());
    assert_eq!(run.code, 0);
    assert!(!run.stdout.contains("numeric"), "{}", run.stdout);
}

#[test]
fn verify_on_an_unavailable_backend_exits_3_and_an_unknown_one_2() {
    let dir = tempfile::tempdir().unwrap();
    let model = golden("qwen3/qwen3-q4_0.gguf");
    let run = harness(&["verify", "--model", &model, "--backend", "cuda"], dir.path());
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("backend `cuda` is not available"), "{}", run.stderr);
    let run = harness(&["verify", "--model", &model, "--backend", "gpu"], dir.path());
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("unknown backend `gpu`"), "{}", run.stderr);
}

#[test]
fn trace_writes_every_stage_and_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trace.safetensors");
    let model = golden("gpt2/gpt2-q8_0.gguf");
    let args = ["trace", "--model", &model, "--tokens", "1,2,3", "--backend", "cpu", "--out", "trace.safetensors"];
    let run = harness(&args, dir.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "30 stages of 3 tokens on cpu (gpt2 contract) → trace.safetensors\n");
    let bytes = std::fs::read(&out).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("inp_pos_embd").unwrap().shape(), [3, 256]);
    assert_eq!(st.tensor("kq_soft_max-1").unwrap().shape(), [8, 3, 3]);
    assert_eq!(st.tensor("result_output").unwrap().shape(), [3, 384]);

    let run = harness(&args, dir.path());
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("trace.safetensors exists; pass --force"), "{}", run.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), bytes, "untouched");
    let mut forced = args.to_vec();
    forced.push("--force");
    assert_eq!(harness(&forced, dir.path()).code, 0);

    let run = harness(&["trace", "--model", &model, "--tokens", "5000", "--out", "x.safetensors"], dir.path());
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr, "error: token id 5000 at index 0 is outside the vocabulary of 384\n");
    assert!(!dir.path().join("x.safetensors").exists());
}

#[test]
fn files_sharing_a_golden_are_checked_for_format_parity() {
    let dir = tempfile::tempdir().unwrap();
    let (g, hf, f32) = (golden(""), golden("llama/hf"), golden("llama/llama-f32.gguf"));
    let run = harness(&["verify", "--golden", &g, "--model", &hf, "--model", &f32, "--json"], dir.path());
    assert_eq!(run.code, 0, "{}", run.stdout);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let ids = |i: usize| -> Vec<String> {
        json["results"][i]["numeric"][0]["invariants"].as_array().unwrap().iter().map(|v| v["id"].to_string()).collect()
    };
    assert!(!ids(0).iter().any(|i| i.contains("FORMAT-PARITY")), "the first file of a group is the yardstick");
    for r in json["results"][1]["numeric"].as_array().unwrap() {
        let parity = r["invariants"].as_array().unwrap().iter().find(|v| v["id"] == "FORMAT-PARITY").unwrap();
        assert_eq!(parity["pass"], true, "{parity}");
        assert!(parity["detail"].as_str().unwrap().contains("llama/hf"), "{parity}");
    }
}

#[test]
fn falsify_kills_every_mutant_and_a_survivor_or_an_idle_check_exits_1() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = "golden/llama/llama-q8_0.gguf";
    let run = harness(&["verify", "--falsify", "--backend", "reference", "--model", model], &root);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("falsification: 6/6 mutants killed"), "{}", run.stdout);
    assert!(run.stdout.contains("| LLAMA-ROPE-STYLE   | swap_rope_style"), "{}", run.stdout);

    // A check that cannot see its mutant (the embedding comes before any rope) survives it; a
    // check that never runs on llama proves nothing. Both fail the run.
    let dir = tempfile::tempdir().unwrap();
    let text = include_str!("../../contracts/llama.yaml")
        .replace("check: stage Qcur_rope, falsify: swap_rope_style", "check: stage inp_embd, falsify: swap_rope_style")
        .replace(
            "check: stage attn_out, falsify: transpose_attn_output",
            "check: invariant ROUTING-MATCHES-GOLDEN, falsify: transpose_attn_output",
        );
    std::fs::write(dir.path().join("llama.yaml"), text).unwrap();
    let cdir = dir.path().to_str().unwrap();
    let run =
        harness(&["verify", "--falsify", "--backend", "reference", "--contracts-dir", cdir, "--model", model], &root);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("falsification: 4/6 mutants killed"), "{}", run.stdout);
    assert!(run.stdout.contains("| SURVIVED | the check still passes"), "{}", run.stdout);
    assert!(run.stdout.contains("| INVALID  | the check does not run on this model"), "{}", run.stdout);
}

/// A Llama-2-7B-shaped GGUF (Q4_0 matrices, F32 norms) as a sparse file: the header, then holes
/// that read as zero blocks. 3.6 GiB apparent, nothing on disk.
fn sparse_llama_7b(path: &Path) -> u64 {
    use assay_engine::contract::expr::Num;
    use assay_engine::format::gguf::GgufWriter;
    use assay_engine::{DType, MetaValue};
    let c = contract("llama");
    let values: std::collections::BTreeMap<&str, Num> = [
        ("n_vocab", 32000),
        ("n_embd", 4096),
        ("n_layer", 32),
        ("n_head", 32),
        ("n_head_kv", 32),
        ("head_dim", 128),
        ("n_ff", 11008),
        ("n_ctx_train", 4096),
        ("n_rot", 128),
    ]
    .into_iter()
    .map(|(k, v)| (k, Num::Int(v)))
    .chain([("rope_theta", Num::Float(10000.0)), ("norm_eps", Num::Float(1e-5))])
    .collect();
    let mut w = GgufWriter::new();
    w.metadata("general.architecture", MetaValue::Str("llama".into()));
    for h in &c.hparams {
        if let (Some(keys), Some(v)) = (&h.spec.gguf, values.get(h.name.as_str())) {
            let key = keys.all()[0].replace("{arch}", "llama");
            w.metadata(
                key,
                match v {
                    Num::Int(i) => MetaValue::U32(*i as u32),
                    Num::Float(f) => MetaValue::F32(*f as f32),
                },
            );
        }
    }
    for def in c.roles.iter().filter(|d| !d.spec.optional) {
        let shape: Vec<u64> =
            def.shape.iter().map(|e| e.eval(&|n| values.get(n).copied()).unwrap().as_f64() as u64).collect();
        let dtype = if shape.len() == 2 { DType::Q4_0 } else { DType::F32 };
        for l in 0..if def.role.per_layer { 32 } else { 1 } {
            w.tensor(def.role.gguf_name(l), dtype, &shape).unwrap();
        }
    }
    let mut f = std::fs::File::create(path).unwrap();
    let header = w.write_header(&mut f).unwrap();
    f.set_len(header + w.data_len()).unwrap();
    header + w.data_len()
}

#[test]
fn a_several_gib_quantized_model_runs_within_its_rss_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llama-7b-q4_0.gguf");
    let size = sparse_llama_7b(&path);
    assert!(size > 3 << 30, "{size} bytes apparent");
    let run = harness(&["measure", "--model", path.to_str().unwrap(), "--tokens", "1,2", "--json"], dir.path());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let m: assay_harness::measure::Measurement = serde_json::from_str(run.stdout.trim()).unwrap();
    let (_, bound) = m.bound.clone().unwrap();
    let weights = m.quantities["weight_bytes"];
    eprintln!("{}", m.describe());
    assert!(m.rss_peak <= bound, "{}", m.describe());
    // Every weight page was read (the forward touches all of them) and nothing else is large.
    assert!(m.rss_peak > weights * 9 / 10, "{}: the weights were not all read", m.describe());
    // The same weights as f32 (4 bytes per element; Q4_0 is 18 bytes per 32) would need 7×.
    let as_f32 = m.quantities["weight_bytes_q4_0"] / 18 * 32 * 4;
    assert!(as_f32 > 6 * bound, "an f32 expansion ({as_f32} B) must break the bound ({bound} B) by far");
}

#[test]
fn verify_measures_every_fixture_within_its_memory_bound() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = harness(&["verify", "--json"], &root);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let mut measured = 0;
    for m in report["results"].as_array().unwrap() {
        for r in m["numeric"].as_array().unwrap() {
            let mem = &r["memory"];
            // Host backends are judged by RSS, device backends by their device memory.
            let (peak, bound) = if r["backend"] == "wgpu" {
                (mem["vram_peak"].as_u64().unwrap(), mem["vram_bound"][1].as_u64().unwrap())
            } else {
                (mem["rss_peak"].as_u64().unwrap(), mem["bound"][1].as_u64().unwrap())
            };
            assert!(peak > 0 && peak <= bound, "{} {}: {peak} > {bound}", m["model"], r["backend"]);
            measured += 1;
        }
    }
    let backends = report["backends"].as_array().unwrap().len() as u64;
    assert_eq!(backends, 3, "reference, cpu and wgpu: {}", report["backends"]);
    assert_eq!(measured, backends * report["total"].as_u64().unwrap(), "every file on every backend");
}

#[test]
fn wgpu_is_verified_and_compared_stage_by_stage_and_unavailable_means_exit_3() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = "golden/qwen2_moe/qwen2_moe-q8_0.gguf";
    let run = harness(&["parity", "--model", model], &root);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    for pair in ["reference vs cpu: agree", "reference vs wgpu: agree", "cpu vs wgpu: agree"] {
        assert!(run.stdout.contains(pair), "{pair}: {}", run.stdout);
    }
    assert!(run.stdout.contains("| ffn_moe_topk-0 "), "{}", run.stdout);

    // Without an adapter: asked for explicitly → exit 3; as part of `all` → skipped, visibly.
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["verify", "--backend", "wgpu", "--model", model])
        .current_dir(&root)
        .env("ASSAY_NO_GPU", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("backend `wgpu` is not available: ASSAY_NO_GPU is set"));
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["verify", "--model", model])
        .current_dir(&root)
        .env("ASSAY_NO_GPU", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("note: backend `wgpu` skipped: ASSAY_NO_GPU is set"));
}

#[test]
fn verify_writes_a_conformance_report_atomically_and_never_over_one_without_force() {
    let (dir, gguf, ..) = llama_dir();
    let report = dir.path().join("reports/CONFORMANCE.md");
    std::fs::create_dir_all(report.parent().unwrap()).unwrap();
    let args = ["verify", "--model", gguf.to_str().unwrap(), "--report", report.to_str().unwrap()];
    let run = harness(&args, dir.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let md = std::fs::read_to_string(&report).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.with_extension("json")).unwrap()).unwrap();
    assert_eq!(json["schema"], "assay.conformance/1");
    assert_eq!(json["rows"].as_array().unwrap().len(), 3, "one row per backend");
    assert!(json["rows"][0]["memory_peak"].as_u64().unwrap() > 0, "exact peaks are in the JSON");
    let mut s = snapshot_settings(dir.path());
    s.add_filter(r"CPU kernels: \w+", "CPU kernels: [ISA]");
    s.add_filter(r"- wgpu: .*", "- wgpu: [ADAPTER]");
    s.bind(|| insta::assert_snapshot!("conformance_report", md));

    // An existing report is refused before any work, and kept.
    let again = harness(&args, dir.path());
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("exists; pass --force"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(&report).unwrap(), md);
    let mut forced = args.to_vec();
    forced.push("--force");
    assert_eq!(harness(&forced, dir.path()).code, 0);
}

#[test]
fn report_runs_verify_over_the_golden_set_and_refuses_a_missing_directory_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/C.md");
    let run = harness(&["report", "--out", missing.to_str().unwrap(), "--golden", &golden("")], dir.path());
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
}

#[test]
fn the_workflows_parse_and_run_what_ci_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (file, must) in [
        ("ci.yml", &["bash .ci/run", "verify --falsify --report reports/CONFORMANCE.md", "--backend wgpu"][..]),
        ("nightly-gpu.yml", &["bash .ci/run", "--backend cuda", "parity --backends cpu,cuda,wgpu"][..]),
    ] {
        let text = std::fs::read_to_string(root.join(".github/workflows").join(file)).unwrap();
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let jobs = doc["jobs"].as_object().unwrap_or_else(|| panic!("{file}: no jobs"));
        assert!(doc.get("on").is_some(), "{file}: no triggers");
        for (name, job) in jobs {
            let steps = job["steps"].as_array().unwrap_or_else(|| panic!("{file}/{name}: no steps"));
            assert!(steps.iter().all(|s| s.get("run").is_some() || s.get("uses").is_some()), "{file}/{name}");
        }
        for m in must {
            assert!(text.contains(m), "{file} does not run `{m}`");
        }
    }
}

/// `v` with every number replaced by its kind: the schema of a document whose values vary.
fn shape(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) => Value::String(if n.is_f64() { "<float>" } else { "<int>" }.into()),
        Value::Array(a) => Value::Array(a.iter().take(1).map(shape).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        other => other.clone(),
    }
}

#[test]
fn bench_reports_llama_bench_tests_behind_a_correctness_witness() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let args = ["bench", "--model", "golden/llama/llama-q8_0.gguf", "-p", "8", "-n", "4", "-r", "2", "-t", "1"];
    let run = harness(&args, &root);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("| llama-q8_0.gguf | 1.34 MiB | 1.31 M | cpu     | 1       | pp8  |"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("| tg4  |") && run.stdout.contains("witness: logits NMSE"), "{}", run.stdout);
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let run = harness(&json_args, &root);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["rates"].as_array().unwrap().len(), 2);
    assert_eq!(doc["rates"][1]["samples"].as_array().unwrap().len(), 2, "one sample per repetition");
    insta::assert_json_snapshot!("bench_json_schema", shape(&doc));
}

#[test]
fn the_witness_refuses_a_broken_backend() {
    use assay_engine::Model;
    use assay_engine::backend::cpu::Cpu;
    use assay_engine::contract::bind;
    use assay_engine::decoder::Mutation;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let c = contract("llama");
    let model = Model::open(root.join("golden/llama/llama-q8_0.gguf")).unwrap();
    let binding = bind(&c, &model);
    let ok = assay_harness::bench::witness(Cpu, &c, &binding, &model, &[]).unwrap();
    assert!(ok.nmse <= ok.bound);
    let err = assay_harness::bench::witness(Cpu, &c, &binding, &model, &[Mutation::SwapRopeStyle]).unwrap_err();
    let failed = err.downcast_ref::<assay_harness::bench::WitnessFailed>().expect("a witness failure");
    assert!(failed.nmse > failed.bound, "{err}");
    assert!(err.to_string().contains("no speed is reported for a wrong answer"));
}

#[test]
fn bench_interleaves_a_peer_and_prints_the_ratio_per_test() {
    use std::os::unix::fs::PermissionsExt;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    // A stand-in for llama-bench: its JSON for -p 8 -n 4 -r 1 (8 tokens in 1 ms, 4 in 2 ms).
    let peer = dir.path().join("llama-bench");
    std::fs::write(
        &peer,
        "#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/calls\"\necho '[{\"n_prompt\": 8, \"n_gen\": 0, \"samples_ns\": [1000000]}, {\"n_prompt\": 0, \"n_gen\": 4, \"samples_ns\": [2000000]}]'\n",
    )
    .unwrap();
    std::fs::set_permissions(&peer, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec = format!("llama-bench={}", peer.display());
    let model = "golden/llama/llama-q8_0.gguf";
    let run = harness(&["bench", "--model", model, "-p", "8", "-n", "4", "-r", "3", "-t", "1", "--peer", &spec], &root);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let peer_row = |test: &str| {
        run.stdout
            .lines()
            .find(|l| l.contains("llama.cpp (ours/theirs ") && l.contains(&format!("| {test} ")))
            .unwrap_or("")
    };
    assert!(peer_row("pp8").contains("| 8000.00 ± 0.00"), "{}", run.stdout);
    assert!(peer_row("tg4").contains("| 2000.00 ± 0.00"), "{}", run.stdout);
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    assert_eq!(calls.lines().count(), 3, "one peer round per repetition: {calls}");
    assert!(calls.lines().all(|l| l.contains(&format!("-m {model} -p 8 -n 4 -t 1 -r 1 -o json"))), "{calls}");

    let bad = harness(&["bench", "--model", model, "--peer", "llama-cli=/bin/true"], &root);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("expected llama-bench=PATH"), "{}", bad.stderr);
}
