//! APR through the public API: a file written by `AprWriter` opens with `Model::open`, and a
//! refused file reports the path and the error kind.

use assay_engine::format::apr::{AprWriter, flags};
use assay_engine::model::FormatDetails;
use assay_engine::{DType, Format, FormatErrorKind, MetaValue, Model};
use serde_json::json;

fn metadata(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn written_file_opens_with_model_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.apr");
    let embed: Vec<u8> = (0..4 * 8 * 4).map(|i| i as u8).collect();
    let q4k = vec![7u8; 2 * 144];
    let mut w = AprWriter::new(metadata(json!({
        "architecture": "llama",
        "hidden_size": 8,
        "num_layers": 1,
        "tokenizer": {"vocabulary": ["<s>", "</s>", "a", "b"], "model_type": "bpe", "eos_token_id": 1}
    })));
    w.tensor("token_embd.weight", DType::F32, &[4, 8], embed.as_slice()).unwrap();
    w.tensor("blk.0.ffn_down.weight", DType::Q4_K, &[2, 256], q4k.clone()).unwrap();
    let written = w.write_file(&path).unwrap();
    assert_eq!(written, std::fs::metadata(&path).unwrap().len());

    let model = Model::open(&path).unwrap();
    assert_eq!(model.format, Format::Apr);
    assert_eq!(model.architecture, "llama");
    assert_eq!(model.metadata.get("hidden_size"), Some(&MetaValue::U64(8)));
    let embd = model.tensor("token_embd.weight").unwrap();
    assert_eq!((embd.dtype, embd.shape.as_slice()), (DType::F32, &[4u64, 8][..]));
    assert_eq!(model.tensor_data(embd), embed.as_slice());
    let down = model.tensor("blk.0.ffn_down.weight").unwrap();
    assert_eq!(model.tensor_data(down), q4k.as_slice());
    let tok = model.tokenizer.as_ref().unwrap();
    assert_eq!((tok.n_tokens, tok.eos_token_id), (4, Some(1)));
    let FormatDetails::Apr { flags: bits, .. } = &model.details else { panic!("{:?}", model.details) };
    assert_eq!(*bits, flags::LAYOUT_ROW_MAJOR | flags::HAS_VOCAB | flags::QUANTIZED);
}

#[test]
fn refused_file_names_path_and_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conflict.apr");
    let w = AprWriter::new(metadata(json!({"architecture": "llama", "num_heads": 8, "n_head": 4})));
    w.write_file(&path).unwrap();
    let err = Model::open(&path).unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::NonConforming { .. }), "{err}");
    assert!(err.to_string().contains("conflict.apr"), "{err}");
}
