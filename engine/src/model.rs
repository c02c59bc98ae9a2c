//! The one view of a model file that every format reader produces: format, architecture,
//! typed metadata, tensors (name, dtype, row-major shape, byte range) and tokenizer summary.
//! Tensor bytes stay in the memory map; nothing here copies or converts weights.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::Serialize;

use crate::dtype::DType;
use crate::error::FormatError;

/// The container format, sniffed from magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Format {
    #[serde(rename = "gguf")]
    Gguf,
    #[serde(rename = "safetensors")]
    SafeTensors,
    #[serde(rename = "apr")]
    Apr,
}

impl Format {
    /// The key used for this format in contracts (`gguf`, `hf`, `apr`).
    pub const fn contract_key(self) -> &'static str {
        match self {
            Format::Gguf => "gguf",
            Format::SafeTensors => "hf",
            Format::Apr => "apr",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Gguf => "GGUF",
            Format::SafeTensors => "SafeTensors",
            Format::Apr => "APR",
        })
    }
}

/// A metadata value with the type the file stored it as.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(String),
    Array(MetaArray),
}

/// A homogeneous array, stored compactly (GGUF token lists hold 10⁵ strings).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MetaArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    Str(Vec<String>),
    /// JSON arrays that mix types or nest.
    Mixed(Vec<MetaValue>),
}

impl MetaValue {
    /// The type's name as GGUF spells it (`u32`, `f32`, `string`, `array[string]`).
    pub fn type_name(&self) -> String {
        match self {
            MetaValue::U8(_) => "u8".into(),
            MetaValue::I8(_) => "i8".into(),
            MetaValue::U16(_) => "u16".into(),
            MetaValue::I16(_) => "i16".into(),
            MetaValue::U32(_) => "u32".into(),
            MetaValue::I32(_) => "i32".into(),
            MetaValue::U64(_) => "u64".into(),
            MetaValue::I64(_) => "i64".into(),
            MetaValue::F32(_) => "f32".into(),
            MetaValue::F64(_) => "f64".into(),
            MetaValue::Bool(_) => "bool".into(),
            MetaValue::Str(_) => "string".into(),
            MetaValue::Array(a) => format!("array[{}]", a.elem_type_name()),
        }
    }

    /// The value as an integer, if it is one (floats are not silently truncated).
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            MetaValue::U8(v) => v.into(),
            MetaValue::I8(v) => v.into(),
            MetaValue::U16(v) => v.into(),
            MetaValue::I16(v) => v.into(),
            MetaValue::U32(v) => v.into(),
            MetaValue::I32(v) => v.into(),
            MetaValue::U64(v) => v.into(),
            MetaValue::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// The value as a float, if it is any number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            _ => self.as_i128().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            MetaValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A short human rendering: scalars in full, arrays as `[n × type]` with their first items.
    pub fn summary(&self) -> String {
        match self {
            MetaValue::Str(s) if s.chars().count() > 60 => {
                format!("{:?}… ({} bytes)", s.chars().take(57).collect::<String>(), s.len())
            }
            MetaValue::Str(s) => format!("{s:?}"),
            MetaValue::F32(v) => format!("{v:e}"),
            MetaValue::F64(v) => format!("{v:e}"),
            MetaValue::Array(a) => a.summary(),
            other => other.as_i128().map(|v| v.to_string()).unwrap_or_else(|| format!("{other:?}")),
        }
    }
}

impl MetaArray {
    pub fn len(&self) -> usize {
        match self {
            MetaArray::U8(v) => v.len(),
            MetaArray::I8(v) => v.len(),
            MetaArray::U16(v) => v.len(),
            MetaArray::I16(v) => v.len(),
            MetaArray::U32(v) => v.len(),
            MetaArray::I32(v) => v.len(),
            MetaArray::U64(v) => v.len(),
            MetaArray::I64(v) => v.len(),
            MetaArray::F32(v) => v.len(),
            MetaArray::F64(v) => v.len(),
            MetaArray::Bool(v) => v.len(),
            MetaArray::Str(v) => v.len(),
            MetaArray::Mixed(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn elem_type_name(&self) -> &'static str {
        match self {
            MetaArray::U8(_) => "u8",
            MetaArray::I8(_) => "i8",
            MetaArray::U16(_) => "u16",
            MetaArray::I16(_) => "i16",
            MetaArray::U32(_) => "u32",
            MetaArray::I32(_) => "i32",
            MetaArray::U64(_) => "u64",
            MetaArray::I64(_) => "i64",
            MetaArray::F32(_) => "f32",
            MetaArray::F64(_) => "f64",
            MetaArray::Bool(_) => "bool",
            MetaArray::Str(_) => "string",
            MetaArray::Mixed(_) => "mixed",
        }
    }

    /// Integer items, when every item is an integer (per-layer hyperparameters).
    pub fn as_i128s(&self) -> Option<Vec<i128>> {
        fn all<T: Copy + Into<i128>>(v: &[T]) -> Option<Vec<i128>> {
            Some(v.iter().map(|&x| x.into()).collect())
        }
        match self {
            MetaArray::U8(v) => all(v),
            MetaArray::I8(v) => all(v),
            MetaArray::U16(v) => all(v),
            MetaArray::I16(v) => all(v),
            MetaArray::U32(v) => all(v),
            MetaArray::I32(v) => all(v),
            MetaArray::U64(v) => all(v),
            MetaArray::I64(v) => all(v),
            MetaArray::Mixed(v) => v.iter().map(MetaValue::as_i128).collect(),
            _ => None,
        }
    }

    fn summary(&self) -> String {
        const SHOWN: usize = 3;
        let first: Vec<String> = match self {
            MetaArray::Str(v) => v.iter().take(SHOWN).map(|s| format!("{s:?}")).collect(),
            MetaArray::F32(v) => v.iter().take(SHOWN).map(|x| format!("{x:e}")).collect(),
            MetaArray::F64(v) => v.iter().take(SHOWN).map(|x| format!("{x:e}")).collect(),
            MetaArray::Bool(v) => v.iter().take(SHOWN).map(|x| x.to_string()).collect(),
            MetaArray::Mixed(v) => v.iter().take(SHOWN).map(MetaValue::summary).collect(),
            other => other.as_i128s().unwrap_or_default().iter().take(SHOWN).map(|x| x.to_string()).collect(),
        };
        let more = if self.len() > SHOWN { ", …" } else { "" };
        format!("[{} × {}] [{}{more}]", self.len(), self.elem_type_name(), first.join(", "))
    }
}

/// Metadata in file order with lookup by key. Keys are unique (readers reject duplicates).
#[derive(Clone, Debug, Default)]
pub struct Metadata {
    entries: Vec<(String, MetaValue)>,
    index: HashMap<String, usize>,
}

impl Metadata {
    /// Adds an entry; returns `false` (and keeps the first) when the key already exists.
    pub fn insert(&mut self, key: String, value: MetaValue) -> bool {
        if self.index.contains_key(&key) {
            return false;
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, value));
        true
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &MetaValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One stored tensor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: DType,
    /// Row-major shape, outermost first: an HF `[out, in]` weight is `[out, in]` here, and a
    /// GGUF `ne = {in, out}` is reversed to the same `[out, in]`.
    pub shape: Vec<u64>,
    /// Index into [`Model::files`] of the file holding the bytes (non-zero only when sharded).
    pub file_idx: usize,
    /// Absolute byte offset of the first byte in that file.
    pub offset: u64,
    /// Number of bytes, exactly `dtype.byte_size(shape)`.
    pub len: u64,
}

impl TensorInfo {
    pub fn n_elems(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Refuses, by name, a tensor whose dtype the engine has no kernel for. Every computation
    /// that reads a tensor calls this first; reading it as anything else would be a wrong answer.
    pub fn require_computable(&self) -> Result<(), UnsupportedDType> {
        if self.dtype.is_computable() {
            Ok(())
        } else {
            Err(UnsupportedDType { tensor: self.name.clone(), dtype: self.dtype })
        }
    }
}

/// A computation needed a tensor of a dtype the engine cannot compute with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tensor `{tensor}` is {dtype}, which the engine cannot compute with (it can be listed, not evaluated)")]
pub struct UnsupportedDType {
    pub tensor: String,
    pub dtype: DType,
}

/// What a model file says about its tokenizer (the tokenizer itself is a later concern).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenizerInfo {
    /// `gpt2` (byte-level BPE), `llama` (SentencePiece), or the tokenizer.json model type.
    pub model: String,
    pub n_tokens: u64,
    pub n_merges: u64,
    pub bos_token_id: Option<u64>,
    pub eos_token_id: Option<u64>,
    /// Where it was read from: `gguf metadata`, `tokenizer.json`, `apr metadata`.
    pub source: String,
}

/// Format-specific facts that `inspect` shows and the checks use.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "format", rename_all = "lowercase")]
pub enum FormatDetails {
    Gguf {
        version: u32,
        alignment: u64,
        /// Absolute offset where tensor data starts.
        data_offset: u64,
    },
    Safetensors {
        /// Shard files, in the order tensors refer to them by `file_idx`.
        shards: Vec<PathBuf>,
        /// The sibling `config.json`; without it there are no hyperparameters.
        config: Option<PathBuf>,
    },
    Apr {
        version: String,
        flags: u16,
        flag_names: Vec<&'static str>,
        data_offset: u64,
    },
}

/// A model file (or a sharded SafeTensors checkpoint) opened read-only over memory maps.
#[derive(Debug)]
pub struct Model {
    pub path: PathBuf,
    pub format: Format,
    /// The architecture as the file names it: GGUF `general.architecture`, the first entry of
    /// HF `config.json` `architectures`, APR metadata `architecture`.
    pub architecture: String,
    pub details: FormatDetails,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    pub tokenizer: Option<TokenizerInfo>,
    tensor_index: HashMap<String, usize>,
    files: Vec<Bytes>,
}

/// Where a model's bytes live: memory-mapped files, or (only for a deliberately mutated model)
/// a buffer of its own.
#[derive(Debug)]
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// What a reader hands back before the model is assembled.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub architecture: String,
    pub details: FormatDetails,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    pub tokenizer: Option<TokenizerInfo>,
}

impl Model {
    /// Opens a model: a GGUF or APR file, a `.safetensors` file, a sharded checkpoint's
    /// `model.safetensors.index.json`, or a directory holding either. The format comes from the
    /// magic bytes, never from the extension.
    pub fn open(path: impl AsRef<Path>) -> Result<Model, FormatError> {
        crate::format::open(path.as_ref())
    }

    pub(crate) fn assemble(path: PathBuf, format: Format, parsed: Parsed, files: Vec<Mmap>) -> Model {
        let files = files.into_iter().map(Bytes::Mapped).collect();
        let tensor_index = parsed.tensors.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        Model {
            path,
            format,
            architecture: parsed.architecture,
            details: parsed.details,
            metadata: parsed.metadata,
            tensors: parsed.tensors,
            tokenizer: parsed.tokenizer,
            tensor_index,
            files,
        }
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// This model with other tensors held in one owned buffer (`data`, at each tensor's
    /// offset): the loader mutant that expands quantized weights.
    pub(crate) fn with_owned_tensors(&self, tensors: Vec<TensorInfo>, data: Vec<u8>) -> Model {
        Model {
            path: self.path.clone(),
            format: self.format,
            architecture: self.architecture.clone(),
            details: self.details.clone(),
            metadata: self.metadata.clone(),
            tensor_index: tensors.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect(),
            tensors,
            tokenizer: self.tokenizer.clone(),
            files: vec![Bytes::Owned(data)],
        }
    }

    /// The tensor's bytes, borrowed from the memory map.
    pub fn tensor_data(&self, tensor: &TensorInfo) -> &[u8] {
        let start = tensor.offset as usize;
        &self.files[tensor.file_idx][start..start + tensor.len as usize]
    }

    /// Total size of the mapped files in bytes.
    pub fn file_bytes(&self) -> u64 {
        self.files.iter().map(|m| m.len() as u64).sum()
    }

    /// Total bytes of tensor data.
    pub fn tensor_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.len).sum()
    }
}
