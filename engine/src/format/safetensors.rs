//! SafeTensors checkpoints: one file or shards named by `model.safetensors.index.json`, read
//! through the `safetensors` crate (which validates the header and the data offsets), with
//! hyperparameters from the sibling `config.json` and tokenizer facts from `tokenizer.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use super::json::flatten_into;
use crate::dtype::DType;
use crate::error::{FormatError, FormatErrorKind};
use crate::model::{Format, FormatDetails, MetaValue, Metadata, Model, Parsed, TensorInfo, TokenizerInfo};

/// Cap on the sizes of the JSON side files we read whole.
const MAX_JSON_BYTES: u64 = 256 << 20;
pub const INDEX_FILE: &str = "model.safetensors.index.json";
pub const SINGLE_FILE: &str = "model.safetensors";

pub(crate) fn open_dir(dir: &Path) -> Result<Model, FormatError> {
    let index = dir.join(INDEX_FILE);
    if index.is_file() {
        return open_index(&index);
    }
    let single = dir.join(SINGLE_FILE);
    if single.is_file() {
        let mmap = super::map(&single)?;
        return open_single(&single, mmap);
    }
    Err(FormatError::new(
        dir,
        FormatErrorKind::invalid("directory", format!("holds neither {INDEX_FILE} nor {SINGLE_FILE}")),
    ))
}

pub(crate) fn open_single(path: &Path, mmap: Mmap) -> Result<Model, FormatError> {
    let tensors = read_tensors(path, &mmap, 0)?;
    let parsed = with_side_files(path, tensors, vec![path.to_owned()])?;
    Ok(Model::assemble(path.to_owned(), Format::SafeTensors, parsed, vec![mmap]))
}

pub(crate) fn open_index(index_path: &Path) -> Result<Model, FormatError> {
    let err = |kind| FormatError::new(index_path, kind);
    let index: Value = read_json(index_path)?;
    let Some(weight_map) = index.get("weight_map").and_then(Value::as_object) else {
        return Err(err(FormatErrorKind::invalid("weight_map", "missing or not an object")));
    };
    // tensor → shard, and the shards in a stable order.
    let mut wanted: BTreeMap<&str, &str> = BTreeMap::new();
    for (tensor, shard) in weight_map {
        let Some(shard) = shard.as_str().filter(|s| is_plain_file_name(s)) else {
            return Err(err(FormatErrorKind::invalid(
                format!("weight_map[`{tensor}`]"),
                format!("expected a file name beside the index, found {shard}"),
            )));
        };
        wanted.insert(tensor, shard);
    }
    let shard_names: BTreeSet<&str> = wanted.values().copied().collect();
    let dir = index_path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    let mut shard_paths = Vec::new();
    let mut tensors = Vec::new();
    for (file_idx, shard) in shard_names.iter().enumerate() {
        let path = dir.join(shard);
        let mmap = super::map(&path)?;
        for t in read_tensors(&path, &mmap, file_idx)? {
            match wanted.get(t.name.as_str()) {
                Some(&s) if s == *shard => tensors.push(t),
                Some(&s) => {
                    return Err(err(FormatErrorKind::invalid(
                        format!("tensor `{}`", t.name),
                        format!("found in {shard}, but the index maps it to {s}"),
                    )));
                }
                None => {
                    return Err(err(FormatErrorKind::invalid(
                        format!("tensor `{}`", t.name),
                        format!("found in {shard}, but the index does not list it"),
                    )));
                }
            }
        }
        files.push(mmap);
        shard_paths.push(path);
    }
    let present: BTreeSet<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    if let Some((missing, shard)) = wanted.iter().find(|(name, _)| !present.contains(*name)) {
        return Err(err(FormatErrorKind::invalid(
            format!("tensor `{missing}`"),
            format!("the index maps it to {shard}, which does not contain it"),
        )));
    }
    let parsed = with_side_files(index_path, tensors, shard_paths)?;
    Ok(Model::assemble(index_path.to_owned(), Format::SafeTensors, parsed, files))
}

/// Shard names must stay beside the index: no directories, no `..`.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != ".."
}

/// The tensors of one file, in data order, with absolute offsets.
fn read_tensors(path: &Path, bytes: &[u8], file_idx: usize) -> Result<Vec<TensorInfo>, FormatError> {
    let (header_len, metadata) = SafeTensors::read_metadata(bytes)
        .map_err(|e| FormatError::new(path, FormatErrorKind::invalid("SafeTensors header", e.to_string())))?;
    let data_start = 8 + header_len as u64;
    let mut tensors = Vec::new();
    for name in metadata.offset_keys() {
        let Some(info) = metadata.info(&name) else { continue };
        let dtype = dtype(info.dtype).ok_or_else(|| {
            FormatError::new(
                path,
                FormatErrorKind::Unsupported { what: format!("tensor `{name}` of SafeTensors dtype {:?}", info.dtype) },
            )
        })?;
        let shape: Vec<u64> = info.shape.iter().map(|&d| d as u64).collect();
        let (begin, end) = info.data_offsets;
        tensors.push(TensorInfo {
            name,
            dtype,
            shape,
            file_idx,
            offset: data_start + begin as u64,
            len: (end - begin) as u64,
        });
    }
    Ok(tensors)
}

fn dtype(d: Dtype) -> Option<DType> {
    Some(match d {
        Dtype::BOOL => DType::Bool,
        Dtype::U8 => DType::U8,
        Dtype::I8 => DType::I8,
        Dtype::I16 => DType::I16,
        Dtype::U16 => DType::U16,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I32 => DType::I32,
        Dtype::U32 => DType::U32,
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::I64 => DType::I64,
        Dtype::U64 => DType::U64,
        Dtype::F8_E4M3 => DType::F8_E4M3,
        Dtype::F8_E5M2 => DType::F8_E5M2,
        _ => return None,
    })
}

/// Reads `config.json` (hyperparameters, architecture) and `tokenizer.json` beside `path`.
fn with_side_files(path: &Path, tensors: Vec<TensorInfo>, shards: Vec<PathBuf>) -> Result<Parsed, FormatError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let config_path = dir.join("config.json");
    let mut metadata = Metadata::default();
    let mut architecture = String::new();
    let config = if config_path.is_file() {
        let config: Value = read_json(&config_path)?;
        let Some(object) = config.as_object() else {
            return Err(FormatError::new(&config_path, FormatErrorKind::invalid("config.json", "not a JSON object")));
        };
        if let Some(key) = flatten_into(object, "", &mut metadata) {
            // `{"a.b": 1, "a": {"b": 2}}` flattens both to `a.b`; keeping either is a wrong model.
            return Err(FormatError::new(
                &config_path,
                FormatErrorKind::invalid(
                    format!("config.json key `{key}`"),
                    "given twice (as a dotted key and nested)",
                ),
            ));
        }
        architecture = match metadata.get("architectures") {
            Some(MetaValue::Array(crate::model::MetaArray::Str(names))) => names.first().cloned().unwrap_or_default(),
            _ => String::new(),
        };
        Some(config_path)
    } else {
        None
    };
    let tokenizer = tokenizer_info(dir, &metadata)?;
    Ok(Parsed { architecture, details: FormatDetails::Safetensors { shards, config }, metadata, tensors, tokenizer })
}

fn tokenizer_info(dir: &Path, config: &Metadata) -> Result<Option<TokenizerInfo>, FormatError> {
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Ok(None);
    }
    let json: Value = read_json(&path)?;
    let model = &json["model"];
    let count = |v: &Value| match v {
        Value::Object(m) => m.len() as u64,
        Value::Array(a) => a.len() as u64,
        _ => 0,
    };
    // Added tokens usually repeat vocabulary entries: count ids, not entries.
    let vocab_ids = model["vocab"].as_object().into_iter().flatten().filter_map(|(_, id)| id.as_u64());
    let added_ids = json["added_tokens"].as_array().into_iter().flatten().filter_map(|t| t["id"].as_u64());
    let max_id = vocab_ids.chain(added_ids).max();
    let n_tokens = match max_id {
        None => count(&model["vocab"]),
        Some(m) => m.checked_add(1).ok_or_else(|| {
            FormatError::new(
                &path,
                FormatErrorKind::invalid("tokenizer.json", format!("token id {m} overflows the count")),
            )
        })?,
    };
    let id = |key: &str| config.get(key).and_then(MetaValue::as_i128).and_then(|v| u64::try_from(v).ok());
    Ok(Some(TokenizerInfo {
        model: model["type"].as_str().unwrap_or("unknown").to_owned(),
        n_tokens,
        n_merges: count(&model["merges"]),
        bos_token_id: id("bos_token_id"),
        eos_token_id: id("eos_token_id"),
        source: "tokenizer.json".into(),
    }))
}

fn read_json(path: &Path) -> Result<Value, FormatError> {
    let err = |kind| FormatError::new(path, kind);
    let len = std::fs::metadata(path).map_err(|e| err(e.into()))?.len();
    if len > MAX_JSON_BYTES {
        return Err(err(FormatErrorKind::TooLarge {
            what: "JSON file".into(),
            offset: 0,
            found: len,
            max: MAX_JSON_BYTES,
        }));
    }
    let text = std::fs::read(path).map_err(|e| err(e.into()))?;
    serde_json::from_slice(&text).map_err(|e| {
        err(FormatErrorKind::invalid(format!("JSON at line {} column {}", e.line(), e.column()), e.to_string()))
    })
}
