//! The GGUF reader on files built byte by byte here: valid ones round-trip, and every malformed
//! one fails with its own error kind — never a panic.

use assay_engine::format::gguf::{GgufWriter, value_type as vt};
use assay_engine::model::FormatDetails;
use assay_engine::{DType, FormatErrorKind, MetaArray, MetaValue, Model};
use proptest::prelude::*;

/// A GGUF encoder independent of the crate's writer, so malformed files are easy to state.
#[derive(Clone, Default)]
struct Raw {
    version: u32,
    n_tensors: Option<u64>,
    n_kv: Option<u64>,
    kvs: Vec<u8>,
    kv_count: u64,
    infos: Vec<u8>,
    info_count: u64,
    alignment: u64,
    data: Vec<u8>,
}

fn s(out: &mut Vec<u8>, text: &str) {
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text.as_bytes());
}

impl Raw {
    fn new() -> Self {
        let mut r = Raw { version: 3, alignment: 32, ..Default::default() };
        r.kv_str("general.architecture", "llama");
        r
    }
    fn kv_raw(&mut self, key: &str, ty: u32, payload: &[u8]) -> &mut Self {
        s(&mut self.kvs, key);
        self.kvs.extend(ty.to_le_bytes());
        self.kvs.extend(payload);
        self.kv_count += 1;
        self
    }
    fn kv_str(&mut self, key: &str, value: &str) -> &mut Self {
        let mut p = Vec::new();
        s(&mut p, value);
        self.kv_raw(key, vt::STRING, &p)
    }
    fn kv_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.kv_raw(key, vt::UINT32, &v.to_le_bytes())
    }
    /// A tensor info with an explicit offset; `data` gets `bytes` more bytes (padded).
    fn tensor_at(&mut self, name: &str, ne: &[u64], ty: u32, offset: u64, bytes: u64) -> &mut Self {
        s(&mut self.infos, name);
        self.infos.extend((ne.len() as u32).to_le_bytes());
        for d in ne {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(ty.to_le_bytes());
        self.infos.extend(offset.to_le_bytes());
        self.info_count += 1;
        self.data.resize((self.data.len() as u64 + bytes).next_multiple_of(self.alignment) as usize, 0x11);
        self
    }
    /// A tensor at the next contiguous offset.
    fn tensor(&mut self, name: &str, ne: &[u64], dtype: DType) -> &mut Self {
        let row_major: Vec<u64> = ne.iter().rev().copied().collect();
        let bytes = dtype.byte_size(&row_major).unwrap();
        let offset = self.data.len() as u64;
        self.tensor_at(name, ne, dtype.ggml_id().unwrap(), offset, bytes)
    }
    fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend(self.n_tensors.unwrap_or(self.info_count).to_le_bytes());
        out.extend(self.n_kv.unwrap_or(self.kv_count).to_le_bytes());
        out.extend(&self.kvs);
        out.extend(&self.infos);
        out.resize((out.len() as u64).next_multiple_of(self.alignment) as usize, 0);
        out.extend(&self.data);
        out
    }
}

fn open(bytes: &[u8]) -> Result<Model, assay_engine::FormatError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bin");
    std::fs::write(&path, bytes).unwrap();
    Model::open(&path)
}

fn kind(bytes: &[u8]) -> FormatErrorKind {
    match open(bytes) {
        Ok(_) => panic!("a malformed file was accepted"),
        Err(e) => {
            // Every message names the file.
            assert!(e.to_string().contains("model.bin"), "{e}");
            e.kind
        }
    }
}

fn valid() -> Raw {
    let mut r = Raw::new();
    r.kv_u32("llama.block_count", 1);
    r.tensor("token_embd.weight", &[32, 4], DType::Q8_0);
    r.tensor("output_norm.weight", &[32], DType::F32);
    r
}

#[test]
fn a_valid_file_reads_zero_copy_with_row_major_shapes() {
    let bytes = valid().bytes();
    let m = open(&bytes).unwrap();
    assert_eq!(m.architecture, "llama");
    assert!(matches!(m.details, FormatDetails::Gguf { version: 3, alignment: 32, .. }));
    let t = m.tensor("token_embd.weight").unwrap();
    assert_eq!((t.dtype, t.shape.clone(), t.len), (DType::Q8_0, vec![4, 32], 4 * 34));
    assert_eq!(m.tensor_data(t), &bytes[t.offset as usize..][..136]);
    assert_eq!(t.offset % 32, 0);
    assert_eq!(m.metadata.get("llama.block_count"), Some(&MetaValue::U32(1)));
}

#[test]
fn versions_2_and_3_read_others_do_not() {
    let mut r = valid();
    r.version = 2;
    assert!(open(&r.bytes()).is_ok());
    for bad in [1u32, 4] {
        r.version = bad;
        assert!(matches!(kind(&r.bytes()), FormatErrorKind::UnsupportedVersion { .. }));
    }
    r.version = 3u32.swap_bytes();
    match kind(&r.bytes()) {
        FormatErrorKind::UnsupportedVersion { found, .. } => assert!(found.contains("big-endian"), "{found}"),
        other => panic!("{other}"),
    }
}

#[test]
fn types_we_cannot_compute_with_are_still_listed() {
    let mut r = Raw::new();
    r.tensor("a", &[256], DType::IQ2_XXS).tensor("b", &[32], DType::MXFP4).tensor("c", &[256], DType::TQ1_0);
    let m = open(&r.bytes()).unwrap();
    let dtypes: Vec<DType> = m.tensors.iter().map(|t| t.dtype).collect();
    assert_eq!(dtypes, [DType::IQ2_XXS, DType::MXFP4, DType::TQ1_0]);
    let err = m.tensor("a").unwrap().require_computable().unwrap_err();
    assert_eq!(
        err.to_string(),
        "tensor `a` is iq2_xxs, which the engine cannot compute with (it can be listed, not evaluated)"
    );
    assert!(m.tensors.iter().all(|t| t.require_computable().is_err()));
}

#[test]
fn custom_alignment_is_honoured() {
    let mut r = Raw::new();
    r.alignment = 64;
    r.kv_u32("general.alignment", 64);
    r.tensor("a", &[3], DType::F32).tensor("b", &[5], DType::F32);
    let m = open(&r.bytes()).unwrap();
    assert!(m.tensors.iter().all(|t| t.offset % 64 == 0));
}

/// A malformed input, its bytes, and the error kind it must produce.
type Case = (&'static str, Vec<u8>, fn(&FormatErrorKind) -> bool);
/// A random model: metadata entries and (name, dtype, row-major shape) tensors.
type AnyModel = (Vec<(String, MetaValue)>, Vec<(String, DType, Vec<u64>)>);

/// Each malformed input and the error kind it must produce.
#[test]
fn malformed_inputs_each_get_their_own_error() {
    let good = valid().bytes();
    let cases: Vec<Case> = vec![
        ("empty file", vec![], |k| matches!(k, FormatErrorKind::UnknownFormat { .. })),
        ("truncated header", good[..10].to_vec(), |k| matches!(k, FormatErrorKind::Truncated { .. })),
        ("truncated in metadata", good[..40].to_vec(), |k| matches!(k, FormatErrorKind::Truncated { .. })),
        (
            "data past EOF",
            good[..good.len() - 1].to_vec(),
            |k| matches!(k, FormatErrorKind::OutOfBounds { tensor, .. } if tensor == "output_norm.weight"),
        ),
        (
            "2^60 tensors",
            {
                let mut r = valid();
                r.n_tensors = Some(1 << 60);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::TooLarge { found, .. } if *found == 1 << 60),
        ),
        (
            "more tensors than bytes",
            {
                let mut r = valid();
                r.n_tensors = Some(1000);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::Truncated { .. }),
        ),
        (
            "2^60 key-values",
            {
                let mut r = valid();
                r.n_kv = Some(1 << 60);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::TooLarge { .. }),
        ),
        (
            "string longer than the file",
            {
                let mut r = Raw::new();
                r.kv_raw("k", vt::STRING, &u64::MAX.to_le_bytes());
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::Truncated { what, .. } if what.contains("`k`")),
        ),
        (
            "array of 2^60 u32",
            {
                let mut p = vt::UINT32.to_le_bytes().to_vec();
                p.extend((1u64 << 60).to_le_bytes());
                let mut r = Raw::new();
                r.kv_raw("arr", vt::ARRAY, &p);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::TooLarge { .. }),
        ),
        (
            "nested array",
            {
                let mut p = vt::ARRAY.to_le_bytes().to_vec();
                p.extend(1u64.to_le_bytes());
                let mut r = Raw::new();
                r.kv_raw("arr", vt::ARRAY, &p);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::NestedArray { key, .. } if key == "arr"),
        ),
        (
            "unknown value type",
            {
                let mut r = Raw::new();
                r.kv_raw("k", 13, &[0]);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::UnknownValueType { found: 13, .. }),
        ),
        (
            "bool that is 2",
            {
                let mut r = Raw::new();
                r.kv_raw("flag", vt::BOOL, &[2]);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::Invalid { what, .. } if what.contains("flag")),
        ),
        (
            "invalid UTF-8 key",
            {
                let mut r = Raw::new();
                r.kv_u32("KEYX", 1);
                let mut b = r.bytes();
                let at = b.windows(4).position(|w| w == b"KEYX").unwrap();
                b[at] = 0xFF;
                b
            },
            |k| matches!(k, FormatErrorKind::InvalidUtf8 { .. }),
        ),
        (
            "empty key",
            {
                let mut r = Raw::new();
                r.kv_u32("", 1);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::EmptyKey { .. }),
        ),
        (
            "duplicate key",
            {
                let mut r = Raw::new();
                r.kv_u32("x", 1).kv_u32("x", 2);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::DuplicateKey { key, .. } if key == "x"),
        ),
        (
            "duplicate tensor",
            {
                let mut r = Raw::new();
                r.tensor("w", &[4], DType::F32).tensor("w", &[4], DType::F32);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::DuplicateTensor { tensor } if tensor == "w"),
        ),
        (
            "name of 64 bytes",
            {
                let mut r = Raw::new();
                r.tensor(&"n".repeat(64), &[4], DType::F32);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::NameTooLong { len: 64, .. }),
        ),
        (
            "five dimensions",
            {
                let mut r = Raw::new();
                r.tensor("w", &[1, 1, 1, 1, 1], DType::F32);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::TooManyDims { found: 5, .. }),
        ),
        (
            "unknown ggml type",
            {
                let mut r = Raw::new();
                r.tensor_at("w", &[4], 4, 0, 16);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::UnknownGgmlType { found: 4, tensor } if tensor == "w"),
        ),
        (
            "row not a multiple of the block",
            {
                let mut r = Raw::new();
                r.tensor_at("w", &[16], 2, 0, 18);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::RowNotBlockAligned { row: 16, block: 32, .. }),
        ),
        (
            "shape whose size overflows",
            {
                let mut r = Raw::new();
                r.tensor_at("w", &[1 << 40, 1 << 40], 0, 0, 0);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::BadShape { .. }),
        ),
        (
            "non-contiguous offset",
            {
                let mut r = Raw::new();
                r.tensor("a", &[4], DType::F32).tensor_at("b", &[4], 0, 64, 16);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::BadOffset { expected: 32, found: 64, .. }),
        ),
        (
            "alignment of 3",
            {
                let mut r = Raw::new();
                r.kv_u32("general.alignment", 3);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::BadAlignment { found: 3 }),
        ),
        (
            "alignment as a string",
            {
                let mut r = Raw::new();
                r.kv_str("general.alignment", "32");
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::MetadataType { expected: "u32", .. }),
        ),
        (
            "no architecture",
            {
                let mut r = Raw::new();
                r.kvs.clear();
                r.kv_count = 0;
                r.kv_u32("x", 1);
                r.bytes()
            },
            |k| matches!(k, FormatErrorKind::Invalid { what, .. } if what == "general.architecture"),
        ),
    ];
    for (name, bytes, expect) in cases {
        let k = kind(&bytes);
        assert!(expect(&k), "{name}: got `{k}`");
    }
}

#[test]
fn the_writer_and_the_reader_agree() {
    let mut w = GgufWriter::new();
    w.metadata("general.architecture", MetaValue::Str("qwen3".into()))
        .metadata("general.alignment", MetaValue::U32(64))
        .metadata("i8", MetaValue::I8(-3))
        .metadata("f64", MetaValue::F64(0.25))
        .metadata("flags", MetaValue::Array(MetaArray::Bool(vec![true, false])))
        .metadata("tokenizer.ggml.model", MetaValue::Str("gpt2".into()))
        .metadata("tokenizer.ggml.tokens", MetaValue::Array(MetaArray::Str(vec!["a".into(), "b".into()])))
        .metadata("tokenizer.ggml.bos_token_id", MetaValue::U32(1));
    w.tensor("w", DType::Q4_K, &[2, 256]).unwrap().tensor("b", DType::F16, &[3]).unwrap();
    let data = [vec![7u8; 2 * 144], vec![9u8; 6]];
    let bytes = w.to_bytes(&[&data[0], &data[1]]).unwrap();
    let m = open(&bytes).unwrap();
    assert_eq!(m.tensor_data(m.tensor("w").unwrap()), &data[0][..]);
    assert_eq!(m.tensor_data(m.tensor("b").unwrap()), &data[1][..]);
    assert_eq!(m.metadata.get("i8"), Some(&MetaValue::I8(-3)));
    assert_eq!(m.metadata.get("flags"), Some(&MetaValue::Array(MetaArray::Bool(vec![true, false]))));
    let tok = m.tokenizer.unwrap();
    assert_eq!((tok.model.as_str(), tok.n_tokens, tok.bos_token_id), ("gpt2", 2, Some(1)));
    // Wrong data lengths are refused by the writer.
    assert!(w.to_bytes(&[&data[1], &data[0]]).is_err());
}

fn any_meta() -> impl Strategy<Value = MetaValue> {
    let scalar = prop_oneof![
        any::<u8>().prop_map(MetaValue::U8),
        any::<i8>().prop_map(MetaValue::I8),
        any::<u16>().prop_map(MetaValue::U16),
        any::<i16>().prop_map(MetaValue::I16),
        any::<u32>().prop_map(MetaValue::U32),
        any::<i32>().prop_map(MetaValue::I32),
        any::<u64>().prop_map(MetaValue::U64),
        any::<i64>().prop_map(MetaValue::I64),
        any::<f32>().prop_filter("NaN != NaN", |f| !f.is_nan()).prop_map(MetaValue::F32),
        any::<f64>().prop_filter("NaN != NaN", |f| !f.is_nan()).prop_map(MetaValue::F64),
        any::<bool>().prop_map(MetaValue::Bool),
        ".{0,12}".prop_map(MetaValue::Str),
    ];
    let array = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..8).prop_map(MetaArray::U8),
        prop::collection::vec(any::<i32>(), 0..8).prop_map(MetaArray::I32),
        prop::collection::vec(any::<bool>(), 0..8).prop_map(MetaArray::Bool),
        prop::collection::vec(".{0,6}", 0..8).prop_map(MetaArray::Str),
    ]
    .prop_map(MetaValue::Array);
    prop_oneof![4 => scalar, 1 => array]
}

const DTYPES: &[DType] =
    &[DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K, DType::IQ4_XS];

/// A random valid model: unique keys, unique names, shapes whose rows fit their blocks.
fn any_model() -> impl Strategy<Value = AnyModel> {
    let metadata = prop::collection::btree_map("[a-z.]{1,12}", any_meta(), 0..6).prop_map(|m| {
        m.into_iter().filter(|(k, _)| k != "general.alignment" && k != "general.architecture").collect::<Vec<_>>()
    });
    let tensor = (prop::sample::select(DTYPES), 1u64..3, 1u64..4, 0usize..3);
    let tensors = prop::collection::vec(tensor, 0..5).prop_map(|ts| {
        ts.into_iter()
            .enumerate()
            .map(|(i, (dtype, blocks, outer, extra_dims))| {
                let mut shape = vec![1; extra_dims];
                shape.push(outer);
                shape.push(blocks * dtype.block_elems());
                (format!("t{i}"), dtype, shape)
            })
            .collect::<Vec<_>>()
    });
    (metadata, tensors)
}

fn write((metadata, tensors): &AnyModel) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut w = GgufWriter::new();
    w.metadata("general.architecture", MetaValue::Str("llama".into()));
    for (k, v) in metadata {
        w.metadata(k.clone(), v.clone());
    }
    let mut data = Vec::new();
    for (i, (name, dtype, shape)) in tensors.iter().enumerate() {
        w.tensor(name.clone(), *dtype, shape).unwrap();
        data.push(vec![i as u8 + 1; dtype.byte_size(shape).unwrap() as usize]);
    }
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    (w.to_bytes(&refs).unwrap(), data)
}

proptest! {
    #[test]
    fn random_valid_files_round_trip(model in any_model()) {
        let (bytes, data) = write(&model);
        let m = open(&bytes).unwrap();
        let (metadata, tensors) = &model;
        for (k, v) in metadata {
            prop_assert_eq!(m.metadata.get(k), Some(v));
        }
        prop_assert_eq!(m.tensors.len(), tensors.len());
        for ((name, dtype, shape), d) in tensors.iter().zip(&data) {
            let t = m.tensor(name).unwrap();
            prop_assert_eq!((t.dtype, &t.shape), (*dtype, shape));
            prop_assert_eq!(m.tensor_data(t), &d[..]);
        }
    }

    #[test]
    fn byte_mutations_never_panic(model in any_model(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let (mut bytes, _) = write(&model);
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        // Ok or a clean error; a panic fails the test.
        let _ = open(&bytes);
    }

    #[test]
    fn truncations_never_panic(model in any_model(), cut in any::<prop::sample::Index>()) {
        let (bytes, _) = write(&model);
        let n = cut.index(bytes.len());
        let _ = open(&bytes[..n]);
    }
}
