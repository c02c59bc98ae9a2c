//! Round trips through [`AprWriter`] and the reader, one test per malformation (each asserting
//! its own error kind), and mutation properties: no input makes the reader panic.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

use super::header::{HEADER_CRC_AT, RESERVED};
use super::*;
use crate::dtype::DType;
use crate::error::FormatErrorKind as K;
use crate::model::{FormatDetails, MetaArray, MetaValue, Parsed};

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("test metadata is an object"),
    }
}

/// Deterministic filler bytes.
fn filler(n: u64, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn add(w: &mut AprWriter<'static>, name: &str, dtype: DType, dims: &[u64], seed: u8) {
    let n = dtype.byte_size(dims).expect("test shapes fit");
    w.tensor(name, dtype, dims, filler(n, seed)).expect("valid test tensor");
}

/// Two F32 tensors `a` [2, 3] and `b` [4], minimal metadata.
fn small() -> Vec<u8> {
    let mut w = AprWriter::new(object(json!({"architecture": "llama", "k1": 1, "k2": 2})));
    add(&mut w, "b", DType::F32, &[4], 2);
    add(&mut w, "a", DType::F32, &[2, 3], 1);
    w.to_bytes().expect("writes")
}

fn small_with(metadata: Value) -> Vec<u8> {
    let mut w = AprWriter::new(object(metadata));
    add(&mut w, "a", DType::F32, &[2, 3], 1);
    w.to_bytes().expect("writes")
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Recomputes the header CRC and the footer after a mutation, so the check a test targets is
/// the one that fires. Leaves files too short for either alone.
fn fix_crcs(b: &mut [u8]) {
    if b.len() < 68 {
        return;
    }
    let crc = crc32(&[&b[..HEADER_CRC_AT], &b[RESERVED]]);
    put_u32(b, HEADER_CRC_AT, crc);
    let body = b.len() - 4;
    let crc = crc32(&[&b[..body]]);
    put_u32(b, body, crc);
}

fn set_flags(b: &mut [u8], bits: u16) {
    put_u16(b, 6, bits);
    fix_crcs(b);
}

/// Where each field of each index entry sits, read from a file the writer produced.
#[derive(Debug)]
struct EntryAt {
    name_len: usize,
    name: usize,
    code: usize,
    ndim: usize,
    dims: usize,
    offset: usize,
    size: usize,
}

fn entries(b: &[u8]) -> Vec<EntryAt> {
    let mut p = u64_at(b, 24) as usize;
    (0..u32_at(b, 8))
        .map(|_| {
            let name_len = p;
            let name = p + 2;
            let code = name + usize::from(u16_at(b, p));
            let ndim = code + 1;
            let dims = ndim + 1;
            let offset = dims + 8 * usize::from(b[ndim]);
            let size = offset + 8;
            p = size + 8;
            EntryAt { name_len, name, code, ndim, dims, offset, size }
        })
        .collect()
}

fn err(b: &[u8]) -> K {
    match parse(b) {
        Ok(p) => panic!("expected an error, parsed {} tensors", p.tensors.len()),
        Err(e) => e,
    }
}

fn ok(b: &[u8]) -> Parsed {
    parse(b).unwrap_or_else(|e| panic!("expected a valid file: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Valid files

#[test]
fn round_trip_keeps_names_dtypes_shapes_bytes_and_metadata() {
    let metadata = json!({
        "architecture": "qwen2",
        "model_type": "qwen2",
        "hidden_size": 64,
        "n_embd": 64.0,
        "num_layers": 2,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "negative": -3,
        "tied": true,
        "absent": null,
        "rope_scaling": {"factor": 4.0, "type": "yarn"},
        "mixed": [1, "two", 3.5],
        "layers": [1, 2, 3],
        "tokenizer": {
            "vocabulary": ["<s>", "</s>", "a", "b"],
            "merges": ["a b"],
            "model_type": "bpe",
            "bos_token_id": 0,
            "eos_token_id": 1
        }
    });
    let specs: &[(&str, DType, &[u64])] = &[
        ("z.f32", DType::F32, &[3, 5]),
        ("blk.0.ffn_down.weight", DType::Q4_K, &[2, 512]),
        ("blk.0.ffn_up.weight", DType::Q6_K, &[3, 300]),
        ("a.bf16", DType::BF16, &[7]),
        ("a.f16", DType::F16, &[2, 2, 2]),
        ("q4", DType::AprQ4, &[3, 11]),
        ("q8", DType::AprQ8, &[5, 5]),
        ("ints.i8", DType::I8, &[9]),
        ("ints.u8", DType::U8, &[65]),
        ("ints.i32", DType::I32, &[1, 1, 1, 1, 1, 1, 1, 3]),
        ("ints.i64", DType::I64, &[2]),
        ("f64", DType::F64, &[1]),
        ("scalar", DType::F32, &[]),
    ];
    let mut w = AprWriter::new(object(metadata));
    for (i, &(name, dtype, dims)) in specs.iter().enumerate() {
        add(&mut w, name, dtype, dims, i as u8);
    }
    let bytes = w.to_bytes().unwrap();
    assert_eq!(bytes.len() % 64, 4, "64-aligned sections plus the footer");
    let p = ok(&bytes);

    let mut names: Vec<&str> = specs.iter().map(|s| s.0).collect();
    names.sort();
    assert_eq!(p.tensors.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), names);
    for t in &p.tensors {
        let (i, &(_, dtype, dims)) = specs.iter().enumerate().find(|(_, s)| s.0 == t.name).unwrap();
        assert_eq!(t.dtype, dtype, "{}", t.name);
        assert_eq!(t.shape, dims, "{}", t.name);
        assert_eq!(t.offset % 64, 0, "{}", t.name);
        let data = &bytes[t.offset as usize..(t.offset + t.len) as usize];
        assert_eq!(data, filler(dtype.byte_size(dims).unwrap(), i as u8), "{}", t.name);
    }

    assert_eq!(p.architecture, "qwen2");
    let m = &p.metadata;
    assert_eq!(m.get("hidden_size"), Some(&MetaValue::U64(64)));
    assert_eq!(m.get("n_embd"), Some(&MetaValue::F64(64.0)));
    assert_eq!(m.get("negative"), Some(&MetaValue::I64(-3)));
    assert_eq!(m.get("rms_norm_eps"), Some(&MetaValue::F64(1e-6)));
    assert_eq!(m.get("tied"), Some(&MetaValue::Bool(true)));
    assert_eq!(m.get("absent"), None);
    assert_eq!(m.get("rope_scaling.factor"), Some(&MetaValue::F64(4.0)));
    assert_eq!(m.get("layers"), Some(&MetaValue::Array(MetaArray::U64(vec![1, 2, 3]))));
    assert!(matches!(m.get("mixed"), Some(MetaValue::Array(MetaArray::Mixed(v))) if v.len() == 3));
    let tok = p.tokenizer.expect("tokenizer");
    assert_eq!((tok.model.as_str(), tok.n_tokens, tok.n_merges), ("bpe", 4, 1));
    assert_eq!((tok.bos_token_id, tok.eos_token_id), (Some(0), Some(1)));
    assert_eq!(tok.source, "apr metadata");

    let FormatDetails::Apr { version, flags: bits, flag_names, data_offset } = p.details else { panic!() };
    assert_eq!(version, "2.0");
    assert_eq!(bits, flags::LAYOUT_ROW_MAJOR | flags::HAS_VOCAB | flags::QUANTIZED);
    assert_eq!(flag_names, ["QUANTIZED", "HAS_VOCAB", "LAYOUT_ROW_MAJOR"]);
    assert_eq!(data_offset, u64_at(&bytes, 32));
}

#[test]
fn writer_output_is_deterministic_whatever_the_insertion_order() {
    let mut a = AprWriter::new(object(json!({"architecture": "llama", "b": {"y": 1, "x": 2}, "a": 1})));
    add(&mut a, "t1", DType::F32, &[2], 1);
    add(&mut a, "t0", DType::F16, &[2], 0);
    let mut meta = Map::new();
    meta.insert("a".into(), json!(1));
    meta.insert("b".into(), json!({"x": 2, "y": 1}));
    meta.insert("architecture".into(), json!("llama"));
    let mut b = AprWriter::new(meta);
    add(&mut b, "t0", DType::F16, &[2], 0);
    add(&mut b, "t1", DType::F32, &[2], 1);
    let bytes = a.to_bytes().unwrap();
    assert_eq!(bytes, b.to_bytes().unwrap());
    let json_end = 64 + u32_at(&bytes, 20) as usize;
    assert_eq!(&bytes[64..json_end], br#"{"a":1,"architecture":"llama","b":{"x":2,"y":1}}"#);
    assert_eq!(u16_at(&bytes, 6), flags::LAYOUT_ROW_MAJOR, "no quantized tensor, no vocabulary");
}

#[test]
fn empty_model_and_legacy_dtype_codes_are_read() {
    let p = ok(&small_with(json!({"architecture": "llama"})));
    assert_eq!(p.tensors.len(), 1);
    let p = ok(&AprWriter::new(object(json!({"architecture": "llama"}))).to_bytes().unwrap());
    assert!(p.tensors.is_empty() && p.tokenizer.is_none());

    let mut w = AprWriter::new(object(json!({"architecture": "llama"})));
    add(&mut w, "q4", DType::AprQ4, &[40], 0);
    add(&mut w, "q8", DType::AprQ8, &[40], 1);
    let mut b = w.to_bytes().unwrap();
    let e = entries(&b);
    b[e[0].code] = dtype_code::APR_Q4_LEGACY;
    b[e[1].code] = dtype_code::APR_Q8_LEGACY;
    fix_crcs(&mut b);
    let p = ok(&b);
    assert_eq!([p.tensors[0].dtype, p.tensors[1].dtype], [DType::AprQ4, DType::AprQ8]);
}

#[test]
fn equal_aliases_are_accepted_and_both_kept() {
    let p = ok(&small_with(json!({"architecture": "llama", "num_layers": 4, "n_layer": 4, "num_hidden_layers": 4})));
    assert_eq!(p.metadata.get("n_layer"), Some(&MetaValue::U64(4)));
    assert_eq!(p.metadata.get("num_layers"), Some(&MetaValue::U64(4)));
}

#[test]
fn dtype_codes_round_trip() {
    for &d in DType::ALL {
        if let Some(code) = dtype_to_code(d) {
            assert_eq!(dtype_from_code(code), Some(d));
        }
    }
    assert_eq!(dtype_from_code(8), Some(DType::AprQ4), "byte 8 is legacy APR-q4, not Q8_0");
    assert_eq!(dtype_from_code(9), Some(DType::AprQ8));
    for unknown in [2, 10, 11, 13, 15, 31, 127, 130, 255] {
        assert_eq!(dtype_from_code(unknown), None, "{unknown}");
    }
    assert_eq!(flag_names(0x0421), ["LZ4", "QUANTIZED", "LAYOUT_ROW_MAJOR"]);
}

#[test]
fn writer_refuses_what_apr_cannot_hold() {
    let mut w = AprWriter::new(Map::new());
    assert!(w.tensor("x", DType::F32, &[3], vec![0u8; 11]).is_err(), "size mismatch");
    assert!(w.tensor("x", DType::Q8_0, &[32], vec![0u8; 34]).is_err(), "no APR code");
    assert!(w.tensor("x", DType::F32, &[1; 9], vec![0u8; 4]).is_err(), "9 dims");
    assert!(w.tensor("x", DType::F32, &[0, 3], Vec::new()).is_err(), "zero dim");
    assert!(w.tensor("", DType::F32, &[1], vec![0u8; 4]).is_err(), "empty name");
    w.tensor("x", DType::F32, &[1], vec![0u8; 4]).unwrap();
    w.tensor("x", DType::F32, &[1], vec![0u8; 4]).unwrap();
    assert!(w.to_bytes().is_err(), "duplicate names");
}

// ---------------------------------------------------------------------------------------------
// Malformed files: each asserts its own error kind.

#[test]
fn truncated_header() {
    let b = small();
    assert!(matches!(err(&b[..30]), K::Truncated { need: 64, have: 30, .. }));
    assert!(matches!(err(&b[..2]), K::Truncated { .. }));
    assert!(matches!(err(&b[..64]), K::Truncated { .. }), "header without a footer");
}

#[test]
fn bad_magic() {
    let mut b = small();
    b[3] = b'!';
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::UnknownFormat { found } if found == "41 50 52 21"));
}

#[test]
fn bad_version() {
    for major in [1, 3] {
        let mut b = small();
        b[4] = major;
        fix_crcs(&mut b);
        assert!(matches!(err(&b), K::UnsupportedVersion { format: "APR", .. }), "major {major}");
    }
}

#[test]
fn bad_header_crc() {
    let mut b = small();
    let size = u32_at(&b, 20) + 1;
    put_u32(&mut b, 20, size); // CRC not recomputed
    let body = b.len() - 4;
    let crc = crc32(&[&b[..body]]);
    put_u32(&mut b, body, crc);
    assert!(matches!(err(&b), K::BadCrc { what: "APR header", .. }));
}

#[test]
fn bad_footer_crc() {
    let mut b = small();
    let last_data = b.len() - 5 - 60; // inside the last tensor's padding or data
    b[last_data] ^= 0x40;
    assert!(matches!(err(&b), K::BadCrc { what: "APR footer", .. }));
    let mut b = small();
    b.truncate(b.len() - 1);
    assert!(matches!(err(&b), K::BadCrc { what: "APR footer", .. }));
}

#[test]
fn unsorted_index() {
    let mut b = small();
    let e = entries(&b);
    b[e[0].name] = b'b';
    b[e[1].name] = b'a';
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::UnsortedIndex { previous, tensor } if previous == "b" && tensor == "a"));
}

#[test]
fn duplicate_names() {
    let mut b = small();
    let e = entries(&b);
    b[e[1].name] = b'a';
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::DuplicateTensor { tensor } if tensor == "a"));
}

#[test]
fn offset_not_64_aligned() {
    let mut b = small();
    let e = entries(&b);
    let offset = u64_at(&b, e[1].offset) + 4;
    put_u64(&mut b, e[1].offset, offset);
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::BadOffset { tensor, expected: 128, found: 68, .. } if tensor == "b"));
}

#[test]
fn offset_past_eof() {
    let mut b = small();
    let e = entries(&b);
    put_u64(&mut b, e[1].offset, 1 << 40);
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::OutOfBounds { tensor, .. } if tensor == "b"));
    // Offsets that overflow when added to the data offset are out of bounds too.
    put_u64(&mut b, e[1].offset, u64::MAX - 63);
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::OutOfBounds { end: u64::MAX, .. }));
}

#[test]
fn overlapping_tensors() {
    let mut b = small();
    let e = entries(&b);
    put_u64(&mut b, e[1].offset, 0);
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::BadOffset { why, .. } if why.contains("overlap")));
}

#[test]
fn huge_tensor_count() {
    for count in [1u32 << 31, u32::MAX] {
        let mut b = small();
        put_u32(&mut b, 8, count);
        fix_crcs(&mut b);
        assert!(matches!(err(&b), K::TooLarge { offset: 8, .. }), "count {count}");
    }
    // Under the cap but more than the index bytes can hold.
    let mut b = small();
    put_u32(&mut b, 8, 1000);
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::Truncated { offset: 8, .. }));
}

#[test]
fn tensor_count_too_small_leaves_entries_in_the_padding() {
    let mut b = small();
    put_u32(&mut b, 8, 1);
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::NonConforming { rule, .. } if rule.contains("zero padding")));
}

#[test]
fn size_mismatch() {
    let mut b = small();
    let e = entries(&b);
    put_u64(&mut b, e[0].size, 28);
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::SizeMismatch { expected: 24, found: 28, .. }));
}

#[test]
fn zero_dimension() {
    let mut b = small();
    let e = entries(&b);
    put_u64(&mut b, e[0].dims, 0);
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::BadShape { shape, .. } if shape == [0, 3]));
}

#[test]
fn name_len_longer_than_the_file() {
    let mut b = small();
    let e = entries(&b);
    put_u16(&mut b, e[0].name_len, u16::MAX);
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::Truncated { need: 65535, .. }));
}

#[test]
fn too_many_dims() {
    let mut b = small();
    let e = entries(&b);
    b[e[0].ndim] = 9;
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::TooManyDims { found: 9, max: 8, .. }));
}

#[test]
fn unknown_dtype_code() {
    let mut b = small();
    let e = entries(&b);
    b[e[0].code] = 77;
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::UnknownDTypeCode { format: "APR", found: 77, .. }));
}

#[test]
fn invalid_utf8_name() {
    let mut b = small();
    let e = entries(&b);
    b[e[0].name] = 0xff;
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::InvalidUtf8 { .. }));
}

#[test]
fn unsupported_flags_are_named() {
    for (bit, name) in [
        (flags::LZ4, "LZ4"),
        (flags::ZSTD, "ZSTD"),
        (flags::ENCRYPTED, "ENCRYPTED"),
        (flags::SHARDED, "SHARDED"),
        (flags::LAYOUT_COLUMN_MAJOR, "LAYOUT_COLUMN_MAJOR"),
    ] {
        let mut b = small();
        set_flags(&mut b, flags::LAYOUT_ROW_MAJOR | bit);
        assert!(matches!(err(&b), K::Unsupported { what } if what.contains(name)), "{name}");
    }
    let mut b = small();
    set_flags(&mut b, flags::LAYOUT_ROW_MAJOR | 0x1000);
    assert!(matches!(err(&b), K::Unsupported { what } if what.contains("0x1000")));
}

#[test]
fn informational_flags_are_accepted() {
    let mut b = small();
    set_flags(&mut b, flags::LAYOUT_ROW_MAJOR | flags::SIGNED | flags::QUANTIZED | flags::STREAMING);
    ok(&b);
}

#[test]
fn missing_row_major_flag() {
    let mut b = small();
    set_flags(&mut b, 0);
    assert!(matches!(err(&b), K::NonConforming { rule, .. } if rule.contains("LAYOUT_ROW_MAJOR")));
}

#[test]
fn reserved_header_bytes_must_be_zero() {
    let mut b = small();
    b[50] = 1;
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::NonConforming { rule, .. } if rule.contains("reserved")));
}

#[test]
fn section_offsets_are_checked() {
    let mut b = small();
    put_u64(&mut b, 12, 128);
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::NonConforming { rule, .. } if rule.contains("metadata starts at byte 64")));

    let mut b = small();
    put_u32(&mut b, 20, u32::MAX);
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::Truncated { offset: 64, .. }));

    let mut b = small();
    let index_offset = u64_at(&b, 24) + 1;
    put_u64(&mut b, 24, index_offset);
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::NonConforming { rule, .. } if rule.contains("tensor index")));

    let mut b = small();
    put_u64(&mut b, 32, u64::MAX - 63);
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::TooLarge { offset: 32, .. }));
}

#[test]
fn metadata_padding_must_be_zero() {
    let mut b = small();
    let end = 64 + u32_at(&b, 20) as usize;
    b[end] = b' ';
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::NonConforming { rule, .. } if rule.contains("padded with zero")));
}

#[test]
fn metadata_json_must_be_an_object() {
    let mut b = small();
    b[64] = b'[';
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::Invalid { .. }));
}

#[test]
fn duplicate_json_keys() {
    let mut b = small();
    let json_end = 64 + u32_at(&b, 20) as usize;
    let at = b[64..json_end].windows(4).position(|w| w == br#""k2""#).unwrap() + 64;
    b[at + 2] = b'1';
    fix_crcs(&mut b);
    assert!(matches!(err(&b), K::DuplicateKey { key, .. } if key == "k1"));

    // A nested object and a dotted key flatten to the same key.
    let b = small_with(json!({"architecture": "llama", "a": {"b": 1}, "a.b": 2}));
    assert!(matches!(err(&b), K::DuplicateKey { key, .. } if key == "a.b"));
}

#[test]
fn alias_conflict() {
    for (key, alias) in [
        ("hidden_size", "n_embd"),
        ("num_layers", "n_layer"),
        ("num_heads", "n_head"),
        ("vocab_size", "n_vocab"),
        ("intermediate_size", "n_ff"),
        ("num_layers", "num_hidden_layers"),
    ] {
        let b = small_with(json!({"architecture": "llama", key: 64, alias: 32}));
        let e = err(&b);
        assert!(
            matches!(&e, K::NonConforming { rule, diagnosis } if rule.contains(key) && rule.contains(alias) && diagnosis.contains("64")),
            "{key}/{alias}: {e}"
        );
    }
}

#[test]
fn architecture_is_required() {
    assert!(matches!(err(&small_with(json!({"name": "x"}))), K::MetadataType { key, .. } if key == "architecture"));
    assert!(matches!(err(&small_with(json!({"architecture": 3}))), K::MetadataType { .. }));
}

#[test]
fn tokenizer_checks() {
    let mut b = small_with(json!({"architecture": "llama"}));
    set_flags(&mut b, flags::LAYOUT_ROW_MAJOR | flags::HAS_VOCAB);
    assert!(matches!(err(&b), K::NonConforming { rule, .. } if rule.contains("HAS_VOCAB")));

    let b = small_with(json!({"architecture": "llama", "tokenizer.vocabulary": "abc"}));
    assert!(matches!(err(&b), K::MetadataType { key, .. } if key == "tokenizer.vocabulary"));

    let b = small_with(json!({"architecture": "llama", "tokenizer": {"vocabulary": ["a"], "eos_token_id": 1}}));
    assert!(matches!(err(&b), K::Invalid { what, .. } if what.contains("eos_token_id")));

    // Keys without the flag (the main upstream writer never sets it) still give a tokenizer.
    let mut b = small_with(json!({"architecture": "llama", "tokenizer": {"vocabulary": ["a", "b"]}}));
    set_flags(&mut b, flags::LAYOUT_ROW_MAJOR);
    let tok = ok(&b).tokenizer.expect("tokenizer");
    assert_eq!((tok.n_tokens, tok.n_merges, tok.model.as_str()), (2, 0, "unknown"));
}

// ---------------------------------------------------------------------------------------------
// Files from the upstream "preserve Q4_K" import writer.

/// A file with that writer's marks: its metadata names, flags 0x0020, no footer.
fn second_writer_file() -> Vec<u8> {
    let mut b =
        small_with(json!({"architecture": "qwen2", "model_type": "transformer_lm_q4k", "num_hidden_layers": 2}));
    b.truncate(b.len() - 4);
    put_u16(&mut b, 6, flags::QUANTIZED);
    let crc = crc32(&[&b[..HEADER_CRC_AT], &b[RESERVED]]);
    put_u32(&mut b, HEADER_CRC_AT, crc);
    b
}

#[test]
fn second_writer_file_is_diagnosed() {
    let b = second_writer_file();
    assert_eq!(b.len() % 64, 0);
    let e = err(&b);
    let K::NonConforming { rule, diagnosis } = &e else { panic!("{e}") };
    assert!(rule.contains("footer"), "{rule}");
    for needle in ["no footer CRC", "0x0020", "transformer_lm_q4k", "preserve Q4_K", "num_hidden_layers"] {
        assert!(diagnosis.contains(needle), "`{needle}` missing from: {diagnosis}");
    }
}

#[test]
fn second_writer_marks_with_a_footer_are_diagnosed_too() {
    let mut b = small_with(json!({"architecture": "qwen2", "model_type": "transformer_lm_q4k"}));
    set_flags(&mut b, flags::QUANTIZED);
    let e = err(&b);
    assert!(
        matches!(&e, K::NonConforming { rule, diagnosis } if rule.contains("LAYOUT_ROW_MAJOR") && diagnosis.contains("preserve Q4_K")),
        "{e}"
    );
}

#[test]
fn one_mark_alone_is_not_blamed_on_the_second_writer() {
    // A conforming file that lost its last 4 bytes lacks a footer but has no other mark.
    let mut b = small();
    b.truncate(b.len() - 4);
    assert_eq!(b.len() % 64, 0);
    assert!(matches!(err(&b), K::BadCrc { what: "APR footer", .. }));
}

#[test]
fn raw_ggml_dtype_ids_are_diagnosed() {
    // Byte 8 over bytes sized for GGML Q8_0 [2, 32] (68 bytes), not APR-q4 (36 bytes).
    let mut w = AprWriter::new(object(json!({"architecture": "llama"})));
    add(&mut w, "w", DType::U8, &[2, 34], 0);
    let mut b = w.to_bytes().unwrap();
    let e = entries(&b);
    b[e[0].code] = 8;
    put_u64(&mut b, e[0].dims + 8, 32);
    fix_crcs(&mut b);
    let e = err(&b);
    assert!(
        matches!(&e, K::NonConforming { diagnosis, .. } if diagnosis.contains("q8_0") && diagnosis.contains("preserve Q4_K")),
        "{e}"
    );

    // Byte 13 (GGML Q5_K) over 176 bytes for [256].
    let mut w = AprWriter::new(object(json!({"architecture": "llama"})));
    add(&mut w, "w", DType::U8, &[176], 0);
    let mut b = w.to_bytes().unwrap();
    let e = entries(&b);
    b[e[0].code] = 13;
    put_u64(&mut b, e[0].dims, 256);
    fix_crcs(&mut b);
    let e = err(&b);
    assert!(matches!(&e, K::NonConforming { diagnosis, .. } if diagnosis.contains("q5_K")), "{e}");
}

// ---------------------------------------------------------------------------------------------
// No input panics.

fn sample() -> Vec<u8> {
    let mut w = AprWriter::new(object(json!({
        "architecture": "llama",
        "hidden_size": 8,
        "n_embd": 8,
        "tokenizer": {"vocabulary": ["a", "b", "c"], "merges": ["a b"], "bos_token_id": 0}
    })));
    add(&mut w, "a", DType::F32, &[2, 3], 0);
    add(&mut w, "b", DType::Q4_K, &[1, 256], 1);
    add(&mut w, "c", DType::AprQ4, &[33], 2);
    add(&mut w, "d", DType::AprQ8, &[3], 3);
    w.to_bytes().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutations_never_panic(
        edits in prop::collection::vec((any::<Index>(), any::<u8>()), 1..8),
        cut in prop::option::of(any::<Index>()),
        fix in any::<bool>(),
    ) {
        let mut b = sample();
        for (i, v) in edits {
            let i = i.index(b.len());
            b[i] = v;
        }
        if let Some(cut) = cut {
            b.truncate(cut.index(b.len() + 1));
        }
        if fix {
            fix_crcs(&mut b);
        }
        let _ = parse(&b);
    }

    /// Edits confined to the header, metadata and index, with CRCs fixed, so they reach the
    /// structural checks rather than stopping at a CRC.
    #[test]
    fn structural_mutations_never_panic(
        edits in prop::collection::vec((any::<Index>(), any::<u8>()), 1..4),
        widths in prop::collection::vec(prop::sample::select(vec![1usize, 2, 4, 8]), 1..4),
    ) {
        let mut b = sample();
        let structural = u64_at(&b, 32) as usize;
        for ((i, v), width) in edits.into_iter().zip(widths.into_iter().cycle()) {
            let i = i.index(structural.saturating_sub(width));
            for byte in &mut b[i..i + width] {
                *byte = v;
            }
        }
        fix_crcs(&mut b);
        let _ = parse(&b);
    }
}
