//! Byte parity between the Python APR writer used for golden fixtures
//! (`golden/tools/apr_write.py`) and [`AprWriter`]: both must lay out the same metadata and
//! tensors identically, down to key order, number spelling, flags, padding and both CRCs.
//!
//! `data/apr_python_parity.apr` is the Python writer's output, regenerated from the repository
//! root with
//!
//! ```text
//! ~/.cache/assay/venv/bin/python golden/tools/apr_write.py --parity engine/tests/data/apr_python_parity.apr
//! ```
//!
//! The metadata and tensors below mirror `PARITY_METADATA` and `PARITY_TENSORS` there; change
//! both together. No Python runs at test time.

use assay_engine::format::apr::{AprWriter, flags};
use assay_engine::model::FormatDetails;
use assay_engine::{DType, Model};
use serde_json::json;

const PYTHON_FILE: &[u8] = include_bytes!("data/apr_python_parity.apr");

/// (name, dtype, dims) in the Python fixture's insertion order; the filler seed is the position.
const TENSORS: &[(&str, DType, &[u64])] = &[
    ("token_embd.weight", DType::F32, &[4, 3]),
    ("blk.0.attn_norm.weight", DType::F16, &[5]),
    ("blk.0.attn_q.weight", DType::BF16, &[2, 3]),
    ("Zeta.f64", DType::F64, &[3]),
    ("blk.0.ffn_gate.weight", DType::I32, &[2, 2, 2]),
    ("blk.0.ffn_up.weight", DType::I64, &[3]),
    ("alpha.i8", DType::I8, &[7]),
    ("alpha.u8", DType::U8, &[]),
    ("blk.0.ffn_down.weight", DType::Q4_K, &[1, 300]),
    ("output.weight", DType::Q6_K, &[1, 256]),
    ("blk.0.attn_k.weight", DType::AprQ4, &[3, 11]),
    ("blk.0.attn_v.weight", DType::AprQ8, &[5, 5]),
];

/// The Python fixture's `_filler`: byte i is `(i mod 256) * 31 + seed`, wrapping.
fn filler(n: u64, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn rust_file() -> Vec<u8> {
    let metadata = json!({
        "architecture": "llama",
        "name": "parity \"quoted\" \\ back\nslash\t\u{1} caf\u{e9} \u{2603}",
        "hidden_size": 8,
        "num_layers": 1,
        "vocab_size": 4,
        "big": u64::MAX,
        "neg": i64::MIN,
        "rms_norm_eps": 1e-6,
        "layer_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "rope_theta_big": 1000000.0,
        "floats": [0.1, -0.0, 0.0, 1.5e-7, 1e16, 1e15, 123.456, 1.2345678901234567e17, 0.0001,
                   5e-324, 1.7976931348623157e308, 2.5, -3e-5, 4096.0],
        "flag": true,
        "off": false,
        "nothing": null,
        "tokenizer": {
            "vocabulary": ["<s>", "</s>", "a", "b"],
            "model_type": "bpe",
            "merges": ["a b"],
            "eos_token_id": 1,
            "bos_token_id": 0
        }
    });
    let mut w = AprWriter::new(metadata.as_object().cloned().expect("an object"));
    for (seed, &(name, dtype, dims)) in TENSORS.iter().enumerate() {
        let n = dtype.byte_size(dims).expect("small shapes");
        w.tensor(name, dtype, dims, filler(n, seed as u8)).expect("valid tensor");
    }
    w.to_bytes().expect("writes")
}

#[test]
fn rust_writer_reproduces_the_python_file_byte_for_byte() {
    let rust = rust_file();
    // The first differing byte says which section drifted (header, JSON, index, data, footer).
    let first_diff = rust.iter().zip(PYTHON_FILE).position(|(a, b)| a != b);
    assert!(
        rust.len() == PYTHON_FILE.len() && first_diff.is_none(),
        "Rust {} bytes, Python {} bytes, first difference at byte {first_diff:?}\nRust JSON:   {}\nPython JSON: {}",
        rust.len(),
        PYTHON_FILE.len(),
        json_of(&rust),
        json_of(PYTHON_FILE),
    );
}

#[test]
fn python_file_opens_with_every_dtype() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/apr_python_parity.apr");
    let model = Model::open(&path).expect("the Python file is accepted");
    let FormatDetails::Apr { flags: bits, .. } = &model.details else { panic!("{:?}", model.details) };
    assert_eq!(*bits, flags::LAYOUT_ROW_MAJOR | flags::HAS_VOCAB | flags::QUANTIZED);
    assert_eq!(model.tensors.len(), TENSORS.len());
    for (seed, &(name, dtype, dims)) in TENSORS.iter().enumerate() {
        let t = model.tensor(name).unwrap_or_else(|| panic!("no tensor `{name}`"));
        assert_eq!((t.dtype, t.shape.as_slice()), (dtype, dims), "{name}");
        assert_eq!(model.tensor_data(t), filler(t.len, seed as u8).as_slice(), "{name}");
    }
}

/// The metadata JSON of an APR file, for the failure message.
fn json_of(file: &[u8]) -> String {
    let size = u32::from_le_bytes(file[20..24].try_into().expect("4 bytes")) as usize;
    String::from_utf8_lossy(&file[64..64 + size]).into_owned()
}
