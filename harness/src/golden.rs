//! The golden fixtures as the harness reads them: one `manifest.json` per architecture directory
//! (written by golden/tools/make_all.py) and the capture files it points at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// `golden/<arch>/manifest.json` (schema `assay.golden/1`).
#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub schema: String,
    pub arch: String,
    pub contract: String,
    pub token_ids: Vec<u32>,
    /// The golden's second run: the prompt as a prefill plus single-token decode steps.
    pub kv_run: KvRun,
    pub models: Vec<ModelEntry>,
    pub files: BTreeMap<String, FileEntry>,
    /// The directory the manifest was read from; paths in it are relative to this.
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Clone, Copy, Debug, Deserialize)]
pub struct KvRun {
    pub prefill: usize,
    pub decode_steps: usize,
}

#[derive(Debug, Deserialize)]
pub struct ModelEntry {
    /// The model file (or HF checkpoint directory), relative to the manifest.
    pub file: String,
    pub format: String,
    pub dtype: String,
    pub contract: String,
    /// The transformers capture on this file's (dequantized) weights.
    pub golden: String,
    /// llama.cpp's outputs for GGUF files.
    #[serde(default)]
    pub llamacpp: Option<LlamaCpp>,
}

#[derive(Debug, Deserialize)]
pub struct LlamaCpp {
    pub logits: String,
    #[serde(default)]
    pub stages: Option<String>,
    pub agreement: Agreement,
}

/// llama.cpp's logits against the golden, as the tool measured them.
#[derive(Debug, Deserialize)]
pub struct Agreement {
    pub max_abs: f64,
    pub max_abs_ref: f64,
    pub kl_max: f64,
    pub kl_mean: f64,
    pub top1_agreement: f64,
}

#[derive(Debug, Deserialize)]
pub struct FileEntry {
    pub sha256: String,
    pub bytes: u64,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut m: Manifest =
            serde_json::from_str(&text).with_context(|| format!("{}: not a golden manifest", path.display()))?;
        if m.schema != "assay.golden/1" {
            bail!("{}: schema `{}`, this harness reads `assay.golden/1`", path.display(), m.schema);
        }
        m.dir = path.parent().unwrap_or(Path::new(".")).to_owned();
        Ok(m)
    }

    /// Every architecture manifest under `root` (the kernel-vector manifest has no models).
    pub fn load_all(root: &Path) -> Result<Vec<Manifest>> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(root).with_context(|| format!("cannot read {}", root.display()))?;
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        dirs.sort();
        for dir in dirs {
            let path = dir.join("manifest.json");
            if path.is_file() && dir.file_name().is_some_and(|n| n != "kernels") {
                out.push(Manifest::load(&path)?);
            }
        }
        Ok(out)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

/// One named f32 (or i32, converted) tensor of a capture.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Reads every tensor of a capture or logits file, by name.
pub fn read_stages(path: &Path) -> Result<BTreeMap<String, Stage>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not SafeTensors", path.display()))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let values = match view.dtype() {
            safetensors::Dtype::F32 => {
                view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
            }
            safetensors::Dtype::I32 => {
                view.data().chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32).collect()
            }
            other => bail!("{}: tensor `{name}` is {other:?}; captures hold f32 and i32", path.display()),
        };
        out.insert(name, Stage { shape: view.shape().to_vec(), values });
    }
    Ok(out)
}
