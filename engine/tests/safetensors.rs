//! The SafeTensors reader on checkpoints built here with the `safetensors` crate (single files,
//! shards, side files) and on hand-made malformed bytes: valid ones read zero-copy with the
//! right offsets, shapes, dtypes and metadata; every malformed one fails with its own error kind —
//! never a panic.

use std::path::{Path, PathBuf};

use assay_engine::model::FormatDetails;
use assay_engine::{DType, FormatError, FormatErrorKind, MetaArray, MetaValue, Model};
use proptest::prelude::*;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, serialize_to_file};
use serde_json::{Value, json};
use tempfile::TempDir;

/// One tensor to write: name, dtype, row-major shape, bytes.
type Spec = (&'static str, Dtype, Vec<usize>, Vec<u8>);

/// Deterministic, position-dependent bytes, so a wrong offset reads different bytes.
fn filler(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed)).collect()
}

fn spec(name: &'static str, dtype: Dtype, shape: &[usize], seed: u8) -> Spec {
    let n = shape.iter().product::<usize>() * dtype.bitsize() / 8;
    (name, dtype, shape.to_vec(), filler(n, seed))
}

/// Writes `tensors` to `path` with the `safetensors` crate.
fn write_st(path: &Path, tensors: &[Spec]) {
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| (*name, TensorView::new(*dtype, shape.clone(), data).unwrap()))
        .collect();
    serialize_to_file(views, None, path).unwrap();
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

/// Every dtype the brief names, with shapes of one to three dimensions.
fn five_dtypes() -> Vec<Spec> {
    vec![
        spec("model.embed_tokens.weight", Dtype::F32, &[4, 3], 1),
        spec("model.norm.weight", Dtype::F16, &[3], 2),
        spec("lm_head.weight", Dtype::BF16, &[4, 3], 3),
        spec("position_ids", Dtype::I64, &[1, 5], 4),
        spec("mask", Dtype::U8, &[2, 3, 2], 5),
    ]
}

fn config() -> Value {
    json!({
        "architectures": ["Qwen2ForCausalLM", "Other"],
        "model_type": "qwen2",
        "hidden_size": 3,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": false,
        "sliding_window": null,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "rope_scaling": {"factor": 4.0, "type": "yarn", "original_max_position_embeddings": 32768, "extra": null},
    })
}

/// A directory with `model.safetensors` and `config.json`.
fn single_dir(tensors: &[Spec]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_st(&dir.path().join("model.safetensors"), tensors);
    write_json(&dir.path().join("config.json"), &config());
    dir
}

/// The `[begin, end)` data offsets of `name`, read from the file's own header with serde_json
/// (independently of the reader), made absolute.
fn absolute_range(bytes: &[u8], name: &str) -> (u64, u64) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    let header: Value = serde_json::from_slice(&bytes[8..8 + n as usize]).unwrap();
    let offsets = &header[name]["data_offsets"];
    (8 + n + offsets[0].as_u64().unwrap(), 8 + n + offsets[1].as_u64().unwrap())
}

fn kind(result: Result<Model, FormatError>) -> FormatErrorKind {
    match result {
        Ok(m) => panic!("expected an error, opened {} tensors", m.tensors.len()),
        Err(e) => e.kind,
    }
}

/// `Invalid { what, message }` whose `what` contains `what` and whose message contains `message`.
fn is_invalid(k: &FormatErrorKind, what: &str, message: &str) -> bool {
    matches!(k, FormatErrorKind::Invalid { what: w, message: m } if w.contains(what) && m.contains(message))
}

#[test]
fn a_single_file_reads_config_offsets_and_bytes() {
    let tensors = five_dtypes();
    let dir = single_dir(&tensors);
    let path = dir.path().join("model.safetensors");
    let m = Model::open(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    assert_eq!(m.format, assay_engine::Format::SafeTensors);
    assert_eq!(m.path, path);
    assert_eq!(m.architecture, "Qwen2ForCausalLM");
    match &m.details {
        FormatDetails::Safetensors { shards, config } => {
            assert_eq!(shards, &vec![path.clone()]);
            assert_eq!(config.as_deref(), Some(dir.path().join("config.json").as_path()));
        }
        other => panic!("{other:?}"),
    }

    // Nested objects flatten to dotted keys; integers stay integers, floats floats; null is absent.
    let md = &m.metadata;
    assert_eq!(md.get("rope_scaling.factor"), Some(&MetaValue::F64(4.0)));
    assert_eq!(md.get("rope_scaling.type"), Some(&MetaValue::Str("yarn".into())));
    assert_eq!(md.get("rope_scaling.original_max_position_embeddings"), Some(&MetaValue::U64(32768)));
    assert_eq!(md.get("rope_scaling.extra"), None);
    assert_eq!(md.get("rope_scaling"), None);
    assert_eq!(md.get("sliding_window"), None);
    assert_eq!(md.get("hidden_size"), Some(&MetaValue::U64(3)));
    assert_eq!(md.get("rms_norm_eps"), Some(&MetaValue::F64(1e-6)));
    assert_eq!(md.get("rope_theta"), Some(&MetaValue::F64(1e6)));
    assert_eq!(md.get("tie_word_embeddings"), Some(&MetaValue::Bool(false)));
    assert_eq!(
        md.get("architectures"),
        Some(&MetaValue::Array(MetaArray::Str(vec!["Qwen2ForCausalLM".into(), "Other".into()])))
    );
    assert!(md.get("rope_theta").unwrap().as_i128().is_none(), "a float is not an integer");

    // Tensors: row-major shapes as written, absolute offsets, exactly the bytes written.
    assert_eq!(m.tensors.len(), tensors.len());
    let mut previous_end = 0;
    for t in &m.tensors {
        // Listed in data order.
        assert!(t.offset >= previous_end, "{} is out of data order", t.name);
        previous_end = t.offset + t.len;
    }
    for (name, _, shape, data) in &tensors {
        let t = m.tensor(name).unwrap();
        assert_eq!(t.shape, shape.iter().map(|&d| d as u64).collect::<Vec<_>>(), "{name}");
        assert_eq!(t.file_idx, 0);
        assert_eq!((t.offset, t.offset + t.len), absolute_range(&bytes, name), "{name}");
        assert_eq!(t.len, t.dtype.byte_size(&t.shape).unwrap(), "{name}");
        assert_eq!(m.tensor_data(t), &data[..], "{name}");
        assert_eq!(&bytes[t.offset as usize..][..t.len as usize], &data[..], "{name}");
    }
    assert_eq!(m.tensor_bytes(), tensors.iter().map(|t| t.3.len() as u64).sum::<u64>());
    assert_eq!(m.file_bytes(), bytes.len() as u64);
    assert!(m.tokenizer.is_none(), "no tokenizer.json, no tokenizer");
}

#[test]
fn safetensors_dtypes_map_to_engine_dtypes() {
    let dir = single_dir(&five_dtypes());
    let m = Model::open(dir.path().join("model.safetensors")).unwrap();
    let dtype = |name: &str| m.tensor(name).unwrap().dtype;
    assert_eq!(dtype("model.embed_tokens.weight"), DType::F32);
    assert_eq!(dtype("model.norm.weight"), DType::F16);
    assert_eq!(dtype("lm_head.weight"), DType::BF16);
    assert_eq!(dtype("position_ids"), DType::I64);
    assert_eq!(dtype("mask"), DType::U8);

    let more = [
        (Dtype::BOOL, DType::Bool),
        (Dtype::I8, DType::I8),
        (Dtype::I16, DType::I16),
        (Dtype::U16, DType::U16),
        (Dtype::I32, DType::I32),
        (Dtype::U32, DType::U32),
        (Dtype::U64, DType::U64),
        (Dtype::F64, DType::F64),
        (Dtype::F8_E4M3, DType::F8_E4M3),
        (Dtype::F8_E5M2, DType::F8_E5M2),
    ];
    for (st, ours) in more {
        let dir = single_dir(&[spec("t", st, &[2, 2], 9)]);
        let m = Model::open(dir.path().join("model.safetensors")).unwrap();
        assert_eq!(m.tensor("t").unwrap().dtype, ours, "{st:?}");
        assert_eq!(m.tensor("t").unwrap().len, ours.byte_size(&[2, 2]).unwrap(), "{st:?}");
    }
}

#[test]
fn a_dtype_without_an_engine_dtype_is_refused_by_name() {
    let dir = single_dir(&[spec("scales", Dtype::F8_E8M0, &[4], 1)]);
    let k = kind(Model::open(dir.path().join("model.safetensors")));
    assert!(
        matches!(&k, FormatErrorKind::Unsupported { what } if what.contains("`scales`") && what.contains("F8_E8M0")),
        "{k}"
    );
}

#[test]
fn a_directory_opens_its_single_file_or_its_index() {
    let dir = single_dir(&five_dtypes());
    let m = Model::open(dir.path()).unwrap();
    assert_eq!(m.path, dir.path().join("model.safetensors"));
    assert_eq!(m.tensors.len(), 5);

    // With an index beside it, the index wins.
    let sharded = sharded_dir();
    write_st(&sharded.path().join("model.safetensors"), &[spec("decoy", Dtype::F32, &[1], 0)]);
    let m = Model::open(sharded.path()).unwrap();
    assert_eq!(m.path, sharded.path().join("model.safetensors.index.json"));
    assert!(m.tensor("decoy").is_none());
    assert_eq!(m.tensors.len(), 3);

    // A directory with neither.
    let empty = tempfile::tempdir().unwrap();
    assert!(is_invalid(&kind(Model::open(empty.path())), "directory", "model.safetensors"));
}

const SHARD1: &str = "model-00001-of-00002.safetensors";
const SHARD2: &str = "model-00002-of-00002.safetensors";

fn shard1() -> Vec<Spec> {
    vec![spec("a", Dtype::F32, &[2, 2], 1)]
}
fn shard2() -> Vec<Spec> {
    vec![spec("b", Dtype::F16, &[3], 2), spec("c", Dtype::BF16, &[2, 1], 3)]
}

/// A sharded checkpoint (`a` in shard 1, `b` and `c` in shard 2) with config.json; `weight_map`
/// as given.
fn sharded_with(weight_map: Value) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_st(&dir.path().join(SHARD1), &shard1());
    write_st(&dir.path().join(SHARD2), &shard2());
    write_json(&dir.path().join("config.json"), &config());
    write_json(
        &dir.path().join("model.safetensors.index.json"),
        &json!({"metadata": {"total_size": 30}, "weight_map": weight_map}),
    );
    dir
}

fn sharded_dir() -> TempDir {
    sharded_with(json!({"a": SHARD1, "b": SHARD2, "c": SHARD2}))
}

fn index_path(dir: &TempDir) -> PathBuf {
    dir.path().join("model.safetensors.index.json")
}

#[test]
fn a_sharded_checkpoint_reads_each_tensor_from_its_shard() {
    let dir = sharded_dir();
    // Opened by the index file itself (sniffed as an index) and by the directory.
    for m in [Model::open(index_path(&dir)).unwrap(), Model::open(dir.path()).unwrap()] {
        assert_eq!(m.architecture, "Qwen2ForCausalLM");
        let shards = vec![dir.path().join(SHARD1), dir.path().join(SHARD2)];
        assert!(matches!(&m.details, FormatDetails::Safetensors { shards: s, config: Some(_) } if *s == shards));
        for (shard_idx, specs) in [(0, shard1()), (1, shard2())] {
            let bytes = std::fs::read(&shards[shard_idx]).unwrap();
            for (name, _, shape, data) in &specs {
                let t = m.tensor(name).unwrap();
                assert_eq!(t.file_idx, shard_idx, "{name}");
                assert_eq!(t.shape, shape.iter().map(|&d| d as u64).collect::<Vec<_>>());
                assert_eq!((t.offset, t.offset + t.len), absolute_range(&bytes, name), "{name}");
                assert_eq!(m.tensor_data(t), &data[..], "{name}");
            }
        }
        let total: u64 = shards.iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
        assert_eq!(m.file_bytes(), total);
    }
}

#[test]
fn the_index_maps_a_tensor_to_a_shard_that_lacks_it() {
    let dir = sharded_with(json!({"a": SHARD1, "b": SHARD2, "c": SHARD2, "ghost": SHARD1}));
    let k = kind(Model::open(index_path(&dir)));
    assert!(is_invalid(&k, "tensor `ghost`", "does not contain it"), "{k}");
    assert!(k.to_string().contains(SHARD1), "{k}");
}

#[test]
fn a_shard_holds_a_tensor_the_index_does_not_list() {
    let dir = sharded_with(json!({"a": SHARD1, "b": SHARD2}));
    let k = kind(Model::open(index_path(&dir)));
    assert!(is_invalid(&k, "tensor `c`", "the index does not list it"), "{k}");
}

#[test]
fn the_index_maps_a_tensor_to_another_shard_than_the_one_holding_it() {
    let dir = sharded_with(json!({"a": SHARD1, "b": SHARD1, "c": SHARD2}));
    let k = kind(Model::open(index_path(&dir)));
    assert!(is_invalid(&k, "tensor `b`", &format!("found in {SHARD2}, but the index maps it to {SHARD1}")), "{k}");
}

#[test]
fn shard_names_must_stay_beside_the_index() {
    for bad in [
        json!("sub/x.safetensors"),
        json!("../x.safetensors"),
        json!(".."),
        json!("."),
        json!(""),
        json!("..\\x"),
        json!(7),
    ] {
        let dir = sharded_with(json!({"a": SHARD1, "b": SHARD2, "c": bad}));
        let k = kind(Model::open(index_path(&dir)));
        assert!(is_invalid(&k, "weight_map[`c`]", "expected a file name beside the index"), "{bad}: {k}");
    }
}

#[test]
fn a_missing_shard_is_an_io_error() {
    let dir = sharded_dir();
    std::fs::remove_file(dir.path().join(SHARD2)).unwrap();
    let err = Model::open(index_path(&dir)).unwrap_err();
    assert!(err.path.ends_with(SHARD2), "the error names the missing shard: {err}");
    assert!(matches!(&err.kind, FormatErrorKind::Io(e) if e.kind() == std::io::ErrorKind::NotFound), "{err}");
}

#[test]
fn an_index_without_weight_map_is_refused() {
    let dir = sharded_dir();
    write_json(&index_path(&dir), &json!({"metadata": {"total_size": 30}}));
    // Through the directory the index is read as an index and its missing map reported.
    let k = kind(Model::open(dir.path()));
    assert!(is_invalid(&k, "weight_map", "missing or not an object"), "{k}");
    // As a file it no longer sniffs as an index at all.
    assert!(matches!(kind(Model::open(index_path(&dir))), FormatErrorKind::UnknownFormat { .. }));
    // A weight_map that is not an object.
    write_json(&index_path(&dir), &json!({"weight_map": ["a", SHARD1]}));
    assert!(is_invalid(&kind(Model::open(index_path(&dir))), "weight_map", "missing or not an object"));
}

#[test]
fn an_index_that_is_not_json_reports_line_and_column() {
    let dir = sharded_dir();
    std::fs::write(index_path(&dir), "{\n  \"weight_map\": {\n    \"a\": oops\n  }\n}\n").unwrap();
    for result in [Model::open(index_path(&dir)), Model::open(dir.path())] {
        let k = kind(result);
        assert!(is_invalid(&k, "JSON at line 3 column", ""), "{k}");
    }
}

#[test]
fn tokenizer_json_counts_ids_merges_and_takes_bos_eos_from_config() {
    let dir = single_dir(&five_dtypes());
    let tokenizer = json!({
        "version": "1.0",
        // Two added tokens repeat vocabulary ids, one extends past them.
        "added_tokens": [
            {"id": 3, "content": "<eos>", "special": true},
            {"id": 0, "content": "a", "special": false},
            {"id": 7, "content": "<pad>", "special": true},
        ],
        "model": {
            "type": "BPE",
            "vocab": {"a": 0, "b": 1, "ab": 2, "<eos>": 3, "c": 4},
            "merges": ["a b", "ab c", "b c"],
        },
    });
    write_json(&dir.path().join("tokenizer.json"), &tokenizer);
    let t = Model::open(dir.path()).unwrap().tokenizer.unwrap();
    assert_eq!(t.model, "BPE");
    assert_eq!(t.n_tokens, 8, "max id 7 + 1; repeated ids are not counted twice");
    assert_eq!(t.n_merges, 3);
    assert_eq!((t.bos_token_id, t.eos_token_id), (Some(1), Some(2)));
    assert_eq!(t.source, "tokenizer.json");

    // Without added tokens beyond the vocabulary: max vocabulary id + 1.
    let mut plain = tokenizer.clone();
    plain["added_tokens"] = json!([{"id": 3, "content": "<eos>"}]);
    write_json(&dir.path().join("tokenizer.json"), &plain);
    assert_eq!(Model::open(dir.path()).unwrap().tokenizer.unwrap().n_tokens, 5);

    // A vocabulary without ids (Unigram's list of pairs) is counted by entries.
    let unigram = json!({"model": {"type": "Unigram", "vocab": [["a", -1.0], ["b", -2.0]]}});
    write_json(&dir.path().join("tokenizer.json"), &unigram);
    let t = Model::open(dir.path()).unwrap().tokenizer.unwrap();
    assert_eq!((t.model.as_str(), t.n_tokens, t.n_merges), ("Unigram", 2, 0));

    // Not JSON.
    std::fs::write(dir.path().join("tokenizer.json"), "{\"model\": ").unwrap();
    assert!(is_invalid(&kind(Model::open(dir.path())), "JSON at line 1 column", ""));
}

#[test]
fn a_token_id_of_u64_max_is_an_error_not_an_overflow() {
    let dir = single_dir(&five_dtypes());
    let tokenizer = json!({"model": {"type": "BPE", "vocab": {"a": 0, "b": u64::MAX}, "merges": []}});
    write_json(&dir.path().join("tokenizer.json"), &tokenizer);
    let k = kind(Model::open(dir.path()));
    assert!(is_invalid(&k, "tokenizer.json", &u64::MAX.to_string()), "{k}");
    // Just below: the count is representable.
    let tokenizer = json!({"model": {"type": "BPE", "vocab": {"a": 0, "b": u64::MAX - 1}}});
    write_json(&dir.path().join("tokenizer.json"), &tokenizer);
    assert_eq!(Model::open(dir.path()).unwrap().tokenizer.unwrap().n_tokens, u64::MAX);
}

#[test]
fn without_config_json_there_is_no_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.safetensors");
    write_st(&path, &five_dtypes());
    let m = Model::open(&path).unwrap();
    assert_eq!(m.architecture, "");
    assert!(m.metadata.is_empty());
    assert!(matches!(&m.details, FormatDetails::Safetensors { config: None, shards } if *shards == [path.clone()]));
    assert_eq!(m.tensors.len(), 5);
}

#[test]
fn a_bad_config_json_is_refused() {
    let dir = single_dir(&five_dtypes());
    let config = dir.path().join("config.json");
    write_json(&config, &json!(["not", "an", "object"]));
    let err = Model::open(dir.path()).unwrap_err();
    assert_eq!(err.path, config);
    assert!(is_invalid(&err.kind, "config.json", "not a JSON object"), "{err}");

    std::fs::write(&config, "{\"hidden_size\": 3,\n\"x\": }").unwrap();
    assert!(is_invalid(&kind(Model::open(dir.path())), "JSON at line 2 column", ""));

    // `architectures` that is not a list of strings gives no architecture, not an error.
    write_json(&config, &json!({"architectures": "LlamaForCausalLM"}));
    assert_eq!(Model::open(dir.path()).unwrap().architecture, "");
}

#[test]
fn a_config_key_given_twice_through_nesting_is_an_error() {
    let dir = single_dir(&five_dtypes());
    // Both flatten to `rope_scaling.factor`; keeping either silently would be a wrong model.
    std::fs::write(dir.path().join("config.json"), r#"{"rope_scaling.factor": 2.0, "rope_scaling": {"factor": 4.0}}"#)
        .unwrap();
    let k = kind(Model::open(dir.path()));
    assert!(is_invalid(&k, "config.json key `rope_scaling.factor`", "given twice"), "{k}");
}

/// A SafeTensors file from a header given as text and `data_len` data bytes.
fn raw(header: &str, data_len: usize) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(filler(data_len, 7));
    out
}

/// Opens `bytes` both as a file path (sniffed) and as the `model.safetensors` of a directory
/// (not sniffed).
fn open_both(bytes: &[u8]) -> (Result<Model, FormatError>, Result<Model, FormatError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, bytes).unwrap();
    (Model::open(&path), Model::open(dir.path()))
}

fn is_header_error(k: &FormatErrorKind) -> bool {
    matches!(k, FormatErrorKind::Invalid { what, .. } if what == "SafeTensors header")
}

#[test]
fn the_hand_made_raw_file_is_valid() {
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let (file, dir) = open_both(&raw(header, 8));
    assert_eq!(file.unwrap().tensor("a").unwrap().offset, 8 + header.len() as u64);
    assert_eq!(dir.unwrap().tensors.len(), 1);
}

#[test]
fn malformed_headers_are_errors_from_the_safetensors_crate() {
    let t = |offsets: &str| format!(r#"{{"a":{{"dtype":"F32","shape":[2],"data_offsets":{offsets}}}}}"#);
    let two = |first: &str, second: &str| {
        format!(
            r#"{{"a":{{"dtype":"F32","shape":[2],"data_offsets":{first}}},"b":{{"dtype":"F32","shape":[2],"data_offsets":{second}}}}}"#
        )
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("header not JSON", raw("{not json at all}", 0)),
        ("header not UTF-8", {
            let mut b = raw(&t("[0,8]"), 8);
            b[10] = 0xFF;
            b
        }),
        ("end past the data", raw(&t("[0,8]"), 4)),
        ("begin past the data", raw(&t("[64,72]"), 8)),
        ("end before begin", raw(&t("[8,0]"), 8)),
        ("huge offsets", raw(&t(&format!("[{},{}]", u64::MAX - 7, u64::MAX)), 8)),
        ("size disagrees with shape", raw(&t("[0,12]"), 12)),
        ("data after the last tensor", raw(&t("[0,8]"), 9)),
        ("overlapping offsets", raw(&two("[0,8]", "[4,12]"), 12)),
        ("same offsets twice", raw(&two("[0,8]", "[0,8]"), 8)),
        ("a gap between tensors", raw(&two("[0,8]", "[12,20]"), 20)),
        (
            "shape whose size overflows",
            raw(r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}"#, 8),
        ),
        ("unknown dtype", raw(r#"{"a":{"dtype":"F12","shape":[2],"data_offsets":[0,8]}}"#, 8)),
        ("metadata values not strings", raw(r#"{"__metadata__":{"k":1}}"#, 0)),
    ];
    for (name, bytes) in cases {
        let (file, dir) = open_both(&bytes);
        for (how, result) in [("file", file), ("dir", dir)] {
            let k = kind(result);
            assert!(is_header_error(&k), "{name} ({how}): got `{k}`");
        }
    }
}

#[test]
fn a_header_length_past_the_end_of_the_file() {
    let mut bytes = raw(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 8);
    let len = bytes.len() as u64;
    for n in [len - 7, len, 1 << 40, u64::MAX] {
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        // Opened as a file or through its directory, the crate refuses the length.
        let (file, dir) = open_both(&bytes);
        for k in [kind(file), kind(dir)] {
            assert!(is_header_error(&k), "{n}: {k}");
        }
    }
}

#[test]
fn tiny_files_are_of_unknown_format() {
    for bytes in [vec![0u8; 8], vec![1, 2, 3], vec![], b"{}".to_vec(), vec![0u8; 9]] {
        let (file, _) = open_both(&bytes);
        let k = kind(file);
        assert!(matches!(k, FormatErrorKind::UnknownFormat { .. }), "{bytes:?}: {k}");
    }
    // The 8 zero bytes as the directory's model.safetensors: an empty header, refused by the crate.
    let (_, dir) = open_both(&[0u8; 8]);
    assert!(is_header_error(&kind(dir)));
    // An empty checkpoint (header `{}`) is valid and has no tensors.
    let (file, _) = open_both(&raw("{}", 0));
    assert!(file.unwrap().tensors.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutations_and_truncations_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in prop::option::of(any::<prop::sample::Index>()),
        side in 0usize..3,
    ) {
        let dir = single_dir(&five_dtypes());
        std::fs::write(dir.path().join("tokenizer.json"), r#"{"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}}"#).unwrap();
        // Mutate the checkpoint, or one of its side files.
        let target = dir.path().join(["model.safetensors", "config.json", "tokenizer.json"][side]);
        let mut bytes = std::fs::read(&target).unwrap();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        std::fs::write(&target, &bytes).unwrap();
        // Ok or a clean error; a panic fails the test.
        let opened = [Model::open(dir.path().join("model.safetensors")), Model::open(dir.path())];
        for m in opened.into_iter().flatten() {
            for t in &m.tensors {
                prop_assert_eq!(m.tensor_data(t).len() as u64, t.len);
            }
        }
    }
}
