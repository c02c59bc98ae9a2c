//! Parsing GGUF bytes into the model view.

use super::value_type as vt;
use super::{DEFAULT_ALIGNMENT, MAX_ARRAY_LEN, MAX_DIMS, MAX_KVS, MAX_NAME_BYTES, MAX_TENSORS};
use crate::dtype::DType;
use crate::error::FormatErrorKind;
use crate::format::cursor::{Cursor, checked_count};
use crate::model::{FormatDetails, MetaArray, MetaValue, Metadata, Parsed, TensorInfo, TokenizerInfo};

type Result<T> = std::result::Result<T, FormatErrorKind>;

pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed> {
    let mut c = Cursor::new(bytes);
    let magic = c.take(4, &|| "magic".into())?;
    if magic != b"GGUF" {
        return Err(FormatErrorKind::invalid("magic", format!("expected `GGUF`, found {magic:02x?}")));
    }
    let version = c.u32(&|| "version".into())?;
    if !(2..=3).contains(&version) {
        let found = if version.swap_bytes() <= 3 {
            format!("{version} (looks like a big-endian file, version {})", version.swap_bytes())
        } else {
            version.to_string()
        };
        return Err(FormatErrorKind::UnsupportedVersion { format: "GGUF", found, supported: "2 and 3" });
    }
    let n_tensors_at = c.pos();
    let n_tensors = c.u64(&|| "tensor count".into())?;
    let n_kv_at = c.pos();
    let n_kv = c.u64(&|| "metadata key-value count".into())?;

    // A key-value takes at least 8 (key length) + 1 (key) + 4 (type) + 1 (value) bytes.
    let n_kv = checked_count(n_kv, MAX_KVS, 14, &c, n_kv_at, &|| "metadata key-value count".into())?;
    let mut metadata = Metadata::default();
    for _ in 0..n_kv {
        let key_at = c.pos();
        let key = read_string(&mut c, &|| "metadata key".into())?;
        if key.is_empty() {
            return Err(FormatErrorKind::EmptyKey { offset: key_at });
        }
        let ty = c.u32(&|| format!("value type of `{key}`"))?;
        let value = read_value(&mut c, ty, key, true)?;
        if !metadata.insert(key.to_owned(), value) {
            return Err(FormatErrorKind::DuplicateKey { key: key.to_owned(), offset: key_at });
        }
    }

    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(MetaValue::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(MetaValue::U32(a)) => return Err(FormatErrorKind::BadAlignment { found: u64::from(*a) }),
        Some(other) => {
            return Err(FormatErrorKind::MetadataType {
                key: "general.alignment".into(),
                expected: "u32",
                found: other.type_name(),
            });
        }
    };

    // A tensor info takes at least 8 (name length) + 1 (name) + 4 (n_dims) + 4 (type) + 8 (offset).
    let n_tensors = checked_count(n_tensors, MAX_TENSORS, 25, &c, n_tensors_at, &|| "tensor count".into())?;
    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(n_tensors);
    let mut names = std::collections::HashSet::with_capacity(n_tensors);
    let mut expected_offset = 0u64;
    for idx in 0..n_tensors {
        let name = read_string(&mut c, &|| format!("name of tensor #{idx}"))?.to_owned();
        if name.len() as u64 >= MAX_NAME_BYTES {
            return Err(FormatErrorKind::NameTooLong {
                tensor: name.clone(),
                len: name.len() as u64,
                max: MAX_NAME_BYTES - 1,
            });
        }
        if !names.insert(name.clone()) {
            return Err(FormatErrorKind::DuplicateTensor { tensor: name });
        }
        let n_dims = c.u32(&|| format!("dimension count of `{name}`"))?;
        if u64::from(n_dims) > MAX_DIMS {
            return Err(FormatErrorKind::TooManyDims { tensor: name, found: n_dims.into(), max: MAX_DIMS });
        }
        let mut ne = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            ne.push(c.u64(&|| format!("ne[{d}] of `{name}`"))?);
        }
        let type_id = c.u32(&|| format!("type of `{name}`"))?;
        let dtype = DType::from_ggml_id(type_id)
            .ok_or_else(|| FormatErrorKind::UnknownGgmlType { tensor: name.clone(), found: type_id })?;
        let offset = c.u64(&|| format!("data offset of `{name}`"))?;

        // ggml keeps ne0 innermost; the view is row-major, outermost first.
        let shape: Vec<u64> = ne.iter().rev().copied().collect();
        let n_elems = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).filter(|&n| n <= i64::MAX as u64);
        let Some(_) = n_elems else {
            return Err(FormatErrorKind::BadShape { tensor: name, shape });
        };
        let row = ne.first().copied().unwrap_or(1);
        let block = dtype.block_elems();
        if row % block != 0 {
            return Err(FormatErrorKind::RowNotBlockAligned { tensor: name, dtype, row, block });
        }
        let len = dtype
            .byte_size(&shape)
            .ok_or_else(|| FormatErrorKind::BadShape { tensor: name.clone(), shape: shape.clone() })?;
        if offset != expected_offset {
            return Err(FormatErrorKind::BadOffset {
                tensor: name,
                expected: expected_offset,
                found: offset,
                why: "tensors must be contiguous in listing order, each padded to the alignment",
            });
        }
        expected_offset = offset
            .checked_add(len)
            .and_then(|end| end.checked_next_multiple_of(alignment))
            .ok_or_else(|| FormatErrorKind::BadShape { tensor: name.clone(), shape: shape.clone() })?;
        tensors.push(TensorInfo { name, dtype, shape, file_idx: 0, offset, len });
    }

    // Data starts at the first aligned offset after the tensor infos.
    let file_len = bytes.len() as u64;
    let data_offset = c.pos().next_multiple_of(alignment);
    for t in &mut tensors {
        let start = data_offset.saturating_add(t.offset);
        let end = start.saturating_add(t.len);
        if end > file_len {
            return Err(FormatErrorKind::OutOfBounds { tensor: t.name.clone(), start, end, file_len });
        }
        t.offset = start;
    }

    let architecture = match metadata.get("general.architecture") {
        Some(MetaValue::Str(s)) => s.clone(),
        Some(other) => {
            return Err(FormatErrorKind::MetadataType {
                key: "general.architecture".into(),
                expected: "string",
                found: other.type_name(),
            });
        }
        None => {
            return Err(FormatErrorKind::invalid(
                "general.architecture",
                "missing; every GGUF model names its architecture",
            ));
        }
    };
    let tokenizer = tokenizer_info(&metadata);
    Ok(Parsed {
        architecture,
        details: FormatDetails::Gguf { version, alignment, data_offset },
        metadata,
        tensors,
        tokenizer,
    })
}

/// A GGUF string: u64 byte length + UTF-8 bytes.
fn read_string<'a>(c: &mut Cursor<'a>, what: &dyn Fn() -> String) -> Result<&'a str> {
    let len = c.u64(what)?;
    c.str(len, what)
}

fn read_value(c: &mut Cursor<'_>, ty: u32, key: &str, allow_array: bool) -> Result<MetaValue> {
    let what = || format!("value of `{key}`");
    Ok(match ty {
        vt::UINT8 => MetaValue::U8(c.u8(&what)?),
        vt::INT8 => MetaValue::I8(c.u8(&what)? as i8),
        vt::UINT16 => MetaValue::U16(c.u16(&what)?),
        vt::INT16 => MetaValue::I16(c.u16(&what)? as i16),
        vt::UINT32 => MetaValue::U32(c.u32(&what)?),
        vt::INT32 => MetaValue::I32(c.u32(&what)? as i32),
        vt::FLOAT32 => MetaValue::F32(f32::from_bits(c.u32(&what)?)),
        vt::BOOL => MetaValue::Bool(read_bool(c, key)?),
        vt::STRING => MetaValue::Str(read_string(c, &what)?.to_owned()),
        vt::UINT64 => MetaValue::U64(c.u64(&what)?),
        vt::INT64 => MetaValue::I64(c.u64(&what)? as i64),
        vt::FLOAT64 => MetaValue::F64(f64::from_bits(c.u64(&what)?)),
        vt::ARRAY if allow_array => MetaValue::Array(read_array(c, key)?),
        vt::ARRAY => return Err(FormatErrorKind::NestedArray { key: key.to_owned(), offset: c.pos() }),
        found => return Err(FormatErrorKind::UnknownValueType { key: key.to_owned(), offset: c.pos(), found }),
    })
}

/// GGUF bools are one byte, 0 or 1; anything else is corruption, not `true`.
fn read_bool(c: &mut Cursor<'_>, key: &str) -> Result<bool> {
    let offset = c.pos();
    match c.u8(&|| format!("bool of `{key}`"))? {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(FormatErrorKind::invalid(
            format!("bool `{key}` at byte {offset}"),
            format!("expected 0 or 1, found {b}"),
        )),
    }
}

fn read_array(c: &mut Cursor<'_>, key: &str) -> Result<MetaArray> {
    let elem = c.u32(&|| format!("array element type of `{key}`"))?;
    let count_at = c.pos();
    let count = c.u64(&|| format!("array length of `{key}`"))?;
    let elem_bytes = match elem {
        vt::UINT8 | vt::INT8 | vt::BOOL => 1,
        vt::UINT16 | vt::INT16 => 2,
        vt::UINT32 | vt::INT32 | vt::FLOAT32 => 4,
        vt::UINT64 | vt::INT64 | vt::FLOAT64 | vt::STRING => 8,
        vt::ARRAY => return Err(FormatErrorKind::NestedArray { key: key.to_owned(), offset: count_at - 4 }),
        found => {
            return Err(FormatErrorKind::UnknownValueType { key: key.to_owned(), offset: count_at - 4, found });
        }
    };
    let n = checked_count(count, MAX_ARRAY_LEN, elem_bytes, c, count_at, &|| format!("array length of `{key}`"))?;
    macro_rules! items {
        ($variant:ident, $get:ident, $conv:expr) => {{
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push($conv(c.$get(&|| format!("element of `{key}`"))?));
            }
            MetaArray::$variant(v)
        }};
    }
    Ok(match elem {
        vt::UINT8 => items!(U8, u8, |x| x),
        vt::INT8 => items!(I8, u8, |x: u8| x as i8),
        vt::UINT16 => items!(U16, u16, |x| x),
        vt::INT16 => items!(I16, u16, |x: u16| x as i16),
        vt::UINT32 => items!(U32, u32, |x| x),
        vt::INT32 => items!(I32, u32, |x: u32| x as i32),
        vt::FLOAT32 => items!(F32, u32, f32::from_bits),
        vt::UINT64 => items!(U64, u64, |x| x),
        vt::INT64 => items!(I64, u64, |x: u64| x as i64),
        vt::FLOAT64 => items!(F64, u64, f64::from_bits),
        vt::BOOL => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(read_bool(c, key)?);
            }
            MetaArray::Bool(v)
        }
        _ => {
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                v.push(read_string(c, &|| format!("string #{i} of `{key}`"))?.to_owned());
            }
            MetaArray::Str(v)
        }
    })
}

fn tokenizer_info(metadata: &Metadata) -> Option<TokenizerInfo> {
    let model = metadata.get("tokenizer.ggml.model")?.as_str()?.to_owned();
    let len = |key: &str| match metadata.get(key) {
        Some(MetaValue::Array(a)) => a.len() as u64,
        _ => 0,
    };
    let id = |key: &str| metadata.get(key).and_then(MetaValue::as_i128).and_then(|v| u64::try_from(v).ok());
    Some(TokenizerInfo {
        model,
        n_tokens: len("tokenizer.ggml.tokens"),
        n_merges: len("tokenizer.ggml.merges"),
        bos_token_id: id("tokenizer.ggml.bos_token_id"),
        eos_token_id: id("tokenizer.ggml.eos_token_id"),
        source: "gguf metadata".into(),
    })
}
