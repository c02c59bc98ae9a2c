//! Fixture builders shared by the end-to-end tests: tiny models that conform to a contract,
//! written in any of the three formats from the contract itself, so every contract is exercised
//! by the same code and a test can then break exactly one thing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assay_engine::contract::expr::Num;
use assay_engine::contract::{Contract, Scheme};
use assay_engine::format::apr::AprWriter;
use assay_engine::format::gguf::GgufWriter;
use assay_engine::{DType, MetaValue};
use serde_json::{Map, Value, json};

/// Hyperparameter values small enough for tests; every contract draws from this one table.
pub fn tiny_hparams() -> BTreeMap<&'static str, Num> {
    BTreeMap::from([
        ("n_vocab", Num::Int(32)),
        ("n_embd", Num::Int(16)),
        ("n_layer", Num::Int(2)),
        ("n_head", Num::Int(4)),
        ("n_head_kv", Num::Int(2)),
        ("head_dim", Num::Int(4)),
        ("n_ff", Num::Int(24)),
        ("n_ctx_train", Num::Int(8)),
        ("n_rot", Num::Int(4)),
        ("rope_theta", Num::Float(10000.0)),
        ("norm_eps", Num::Float(1e-5)),
        ("n_expert", Num::Int(4)),
        ("n_expert_used", Num::Int(2)),
        ("n_ff_exp", Num::Int(8)),
        ("n_ff_shexp", Num::Int(12)),
        ("partial_rotary_factor", Num::Float(1.0)),
    ])
}

/// One tensor of a synthesized model.
#[derive(Clone, Debug)]
pub struct SynthTensor {
    pub name: String,
    pub dtype: DType,
    /// Row-major, outermost first, as stored in the file.
    pub shape: Vec<u64>,
    pub data: Vec<u8>,
}

/// A model conforming to a contract, before it is written in some format.
#[derive(Clone, Debug)]
pub struct Synth {
    pub architecture: String,
    /// Metadata under the format's keys.
    pub metadata: Vec<(String, MetaValue)>,
    pub tensors: Vec<SynthTensor>,
}

fn meta(n: Num) -> MetaValue {
    match n {
        Num::Int(i) => MetaValue::U32(i as u32),
        Num::Float(f) => MetaValue::F32(f as f32),
    }
}

/// F32 bytes of a deterministic ramp.
pub fn f32_bytes(n: u64, seed: u64) -> Vec<u8> {
    (0..n).flat_map(|i| (((i + seed) % 97) as f32 * 0.01 - 0.48).to_le_bytes()).collect()
}

/// Synthesizes every required, non-tied role of `contract` in `scheme`'s names, with metadata
/// under the keys of `format_key` (`gguf`, `hf` or `apr`).
pub fn synth(contract: &Contract, scheme: Scheme, format_key: &str) -> Synth {
    let values = tiny_hparams();
    let value = |n: &str| values.get(n).copied();
    let architecture = match format_key {
        "gguf" => contract.doc.architectures.gguf[0].clone(),
        "hf" => contract.doc.architectures.hf[0].clone(),
        _ => contract.doc.architectures.apr[0].clone(),
    };
    let mut metadata = Vec::new();
    for h in &contract.hparams {
        let keys = match format_key {
            "gguf" => &h.spec.gguf,
            "hf" => &h.spec.hf,
            _ => &h.spec.apr,
        };
        // The first key is the one a current writer uses.
        let key = keys.as_ref().map(|k| k.all()[0].replace("{arch}", &architecture));
        if let (Some(key), Some(v)) = (key, value(&h.name)) {
            metadata.push((key, meta(v)));
        }
    }
    let n_layer = 2;
    let mut tensors = Vec::new();
    for def in &contract.roles {
        if def.spec.optional || def.tied_to.is_some() {
            continue;
        }
        let shape: Vec<u64> = def
            .shape
            .iter()
            .map(|e| match e.eval(&value).expect("tiny hparams cover every shape") {
                Num::Int(i) => i as u64,
                Num::Float(_) => panic!("shapes are ints"),
            })
            .collect();
        let layers: Vec<usize> = if def.role.per_layer { (0..n_layer).collect() } else { vec![0] };
        for l in layers {
            match scheme {
                Scheme::Gguf => tensors.push(tensor(def.role.gguf_name(l), shape.clone())),
                Scheme::Hf => {
                    let Some(template) = &def.spec.hf else { continue };
                    let name = template.replace("{L}", &l.to_string());
                    let mut shape = shape.clone();
                    if def.spec.hf_transposed {
                        shape.reverse();
                    }
                    if name.contains("{E}") {
                        for e in 0..shape[0] {
                            tensors.push(tensor(name.replace("{E}", &e.to_string()), shape[1..].to_vec()));
                        }
                    } else {
                        tensors.push(tensor(name, shape));
                    }
                }
            }
        }
    }
    Synth { architecture, metadata, tensors }
}

fn tensor(name: String, shape: Vec<u64>) -> SynthTensor {
    let n: u64 = shape.iter().product();
    let seed = name.len() as u64;
    SynthTensor { name, dtype: DType::F32, shape, data: f32_bytes(n, seed) }
}

impl Synth {
    /// Writes a GGUF file.
    pub fn write_gguf(&self, path: &Path) -> PathBuf {
        let mut w = GgufWriter::new();
        w.metadata("general.architecture", MetaValue::Str(self.architecture.clone()));
        for (k, v) in &self.metadata {
            w.metadata(k.clone(), v.clone());
        }
        for t in &self.tensors {
            w.tensor(t.name.clone(), t.dtype, &t.shape).expect("valid tensor");
        }
        let data: Vec<&[u8]> = self.tensors.iter().map(|t| t.data.as_slice()).collect();
        std::fs::write(path, w.to_bytes(&data).expect("in-memory write")).expect("write gguf");
        path.to_owned()
    }

    /// Writes `model.safetensors` and `config.json` into `dir`; returns the directory.
    pub fn write_safetensors(&self, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).expect("mkdir");
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = self
            .tensors
            .iter()
            .map(|t| {
                let shape = t.shape.iter().map(|&d| d as usize).collect();
                let view =
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, &t.data).expect("valid view");
                (t.name.clone(), view)
            })
            .collect();
        safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).expect("write safetensors");
        let mut config = Map::new();
        config.insert("architectures".into(), json!([self.architecture]));
        for (k, v) in &self.metadata {
            insert_dotted(&mut config, k, meta_json(v));
        }
        std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&Value::Object(config)).unwrap())
            .expect("write config");
        dir.to_owned()
    }

    /// Writes an APR v2 file.
    pub fn write_apr(&self, path: &Path) -> PathBuf {
        let mut metadata = Map::new();
        metadata.insert("architecture".into(), json!(self.architecture));
        for (k, v) in &self.metadata {
            metadata.insert(k.clone(), meta_json(v));
        }
        let mut w = AprWriter::new(metadata);
        for t in &self.tensors {
            w.tensor(t.name.clone(), t.dtype, &t.shape, t.data.as_slice()).expect("valid tensor");
        }
        std::fs::write(path, w.to_bytes().expect("in-memory write")).expect("write apr");
        path.to_owned()
    }
}

fn meta_json(v: &MetaValue) -> Value {
    match v {
        MetaValue::U32(i) => json!(i),
        // The shortest decimal of the f32, as a config.json writer would print it (1e-5, not
        // 9.999999747378752e-6).
        MetaValue::F32(f) => json!(f.to_string().parse::<f64>().expect("a float prints as a float")),
        MetaValue::Str(s) => json!(s),
        other => panic!("tests only synthesize u32, f32 and strings, not {other:?}"),
    }
}

fn insert_dotted(map: &mut Map<String, Value>, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            map.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let inner = map.entry(head.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = inner {
                insert_dotted(inner, rest, value);
            }
        }
    }
}
