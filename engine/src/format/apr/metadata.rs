//! The JSON metadata block: typed metadata, the architecture, and the embedded tokenizer.
//!
//! JSON objects may repeat a key, and `serde_json` keeps the last one silently; the same goes for
//! a key and its alias (`hidden_size` and `n_embd`), which made the upstream loader drop all
//! metadata. A silently dropped value is a wrong model, so both are errors here (aliases only
//! when their values differ).

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::header::Header;
use super::{KEY_ALIASES, flags};
use crate::error::FormatErrorKind;
use crate::format::json::flatten_into;
use crate::model::{MetaValue, Metadata, TokenizerInfo};

/// What the metadata block gives the model view.
#[derive(Debug)]
pub(crate) struct AprMetadata {
    pub metadata: Metadata,
    pub architecture: String,
    pub tokenizer: Option<TokenizerInfo>,
}

/// Reads the block at `[metadata_offset, metadata_offset + metadata_size)`, whose bounds the
/// caller has checked.
pub(crate) fn read(bytes: &[u8], header: &Header) -> Result<AprMetadata, FormatErrorKind> {
    let offset = header.metadata_offset;
    let json = section(bytes, offset, u64::from(header.metadata_size))?;
    let object = parse_object(json, offset)?;
    let mut metadata = Metadata::default();
    if let Some(key) = flatten_into(&object, "", &mut metadata) {
        // `{"a":{"b":1},"a.b":2}` flattens both to `a.b`.
        return Err(FormatErrorKind::DuplicateKey { key, offset });
    }
    check_aliases(&metadata)?;
    let architecture = match metadata.get("architecture") {
        Some(MetaValue::Str(s)) if !s.is_empty() => s.clone(),
        Some(other) => {
            return Err(FormatErrorKind::MetadataType {
                key: "architecture".into(),
                expected: "a non-empty string",
                found: other.summary(),
            });
        }
        None => {
            return Err(FormatErrorKind::MetadataType {
                key: "architecture".into(),
                expected: "a non-empty string",
                found: "no such key".into(),
            });
        }
    };
    let tokenizer = tokenizer_info(&metadata, header.flags)?;
    Ok(AprMetadata { metadata, architecture, tokenizer })
}

/// `bytes[offset..offset + len]`, or `Truncated`.
fn section(bytes: &[u8], offset: u64, len: u64) -> Result<&[u8], FormatErrorKind> {
    let end = offset.checked_add(len);
    match end {
        Some(end) if end <= bytes.len() as u64 => Ok(&bytes[offset as usize..end as usize]),
        _ => Err(FormatErrorKind::Truncated {
            what: "APR metadata JSON".into(),
            offset,
            need: len,
            have: (bytes.len() as u64).saturating_sub(offset),
        }),
    }
}

/// Parses a JSON object, rejecting repeated keys at any depth.
pub(crate) fn parse_object(json: &[u8], offset: u64) -> Result<Map<String, Value>, FormatErrorKind> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(json);
    let parsed = StrictSeed(&duplicate).deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(FormatErrorKind::invalid(
            format!("APR metadata JSON at byte {offset}"),
            format!("expected an object, found {}", json_kind(&other)),
        )),
        Err(e) => match duplicate.into_inner() {
            // Compact JSON is one line, so the column (1-based, at the key's closing quote) is
            // the byte within the block; exact unless the key has escapes.
            Some(key) => {
                let at = e.column().saturating_sub(key.len() + 2) as u64;
                Err(FormatErrorKind::DuplicateKey { key, offset: offset + at })
            }
            None => Err(FormatErrorKind::invalid(format!("APR metadata JSON at byte {offset}"), e.to_string())),
        },
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Deserializes a `serde_json::Value`, failing on the first repeated key (which it records).
struct StrictSeed<'a>(&'a RefCell<Option<String>>);

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed(self.0))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let message = format!("duplicate key `{key}`");
                *self.0.borrow_mut() = Some(key);
                return Err(A::Error::custom(message));
            }
            let value = map.next_value_seed(StrictSeed(self.0))?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Fails when a key and one of its aliases are both present with different values.
fn check_aliases(metadata: &Metadata) -> Result<(), FormatErrorKind> {
    for &(canonical, aliases) in KEY_ALIASES {
        let present: Vec<(&str, &MetaValue)> = std::iter::once(canonical)
            .chain(aliases.iter().copied())
            .filter_map(|k| metadata.get(k).map(|v| (k, v)))
            .collect();
        let Some(&(first_key, first)) = present.first() else { continue };
        for &(key, value) in &present[1..] {
            if !same_value(first, value) {
                return Err(FormatErrorKind::NonConforming {
                    rule: format!("metadata key `{first_key}` and its alias `{key}` must agree"),
                    diagnosis: format!(
                        "`{first_key}` is {} but `{key}` is {}; refusing to guess which one the writer meant",
                        first.summary(),
                        value.summary()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Equality across integer widths and int/float spellings (`4096` and `4096.0`).
fn same_value(a: &MetaValue, b: &MetaValue) -> bool {
    match (a.as_i128(), b.as_i128()) {
        (Some(x), Some(y)) => x == y,
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

/// The embedded tokenizer, when the flag says there is one or the vocabulary key is present.
fn tokenizer_info(metadata: &Metadata, flag_bits: u16) -> Result<Option<TokenizerInfo>, FormatErrorKind> {
    const VOCAB: &str = "tokenizer.vocabulary";
    let vocabulary = metadata.get(VOCAB);
    let has_flag = flag_bits & flags::HAS_VOCAB != 0;
    let n_tokens = match vocabulary {
        Some(MetaValue::Array(a)) => a.len() as u64,
        Some(other) => return Err(type_error(VOCAB, "an array of token strings", other)),
        None if has_flag => {
            return Err(FormatErrorKind::NonConforming {
                rule: "flag HAS_VOCAB requires metadata key `tokenizer.vocabulary`".into(),
                diagnosis: "the flag is set but the metadata has no vocabulary".into(),
            });
        }
        None => return Ok(None),
    };
    let n_merges = match metadata.get("tokenizer.merges") {
        Some(MetaValue::Array(a)) => a.len() as u64,
        Some(other) => return Err(type_error("tokenizer.merges", "an array", other)),
        None => 0,
    };
    let model = match metadata.get("tokenizer.model_type") {
        Some(MetaValue::Str(s)) => s.clone(),
        Some(other) => return Err(type_error("tokenizer.model_type", "a string", other)),
        None => "unknown".into(),
    };
    let bos_token_id = token_id(metadata, &["tokenizer.bos_token_id", "bos_token_id"], n_tokens)?;
    let eos_token_id = token_id(metadata, &["tokenizer.eos_token_id", "eos_token_id"], n_tokens)?;
    Ok(Some(TokenizerInfo { model, n_tokens, n_merges, bos_token_id, eos_token_id, source: "apr metadata".into() }))
}

/// A special token id from the first of `keys` present; it must index the vocabulary.
fn token_id(metadata: &Metadata, keys: &[&str], n_tokens: u64) -> Result<Option<u64>, FormatErrorKind> {
    let Some((key, value)) = keys.iter().find_map(|&k| metadata.get(k).map(|v| (k, v))) else {
        return Ok(None);
    };
    let id = value.as_i128().and_then(|v| u64::try_from(v).ok());
    match id {
        Some(id) if id < n_tokens => Ok(Some(id)),
        Some(id) => Err(FormatErrorKind::invalid(
            format!("metadata key `{key}`"),
            format!("token id {id} is outside the vocabulary of {n_tokens} tokens"),
        )),
        None => Err(type_error(key, "a non-negative integer", value)),
    }
}

fn type_error(key: &str, expected: &'static str, found: &MetaValue) -> FormatErrorKind {
    FormatErrorKind::MetadataType {
        key: key.into(),
        expected,
        found: format!("{} {}", found.type_name(), found.summary()),
    }
}
