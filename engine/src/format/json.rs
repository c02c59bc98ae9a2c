//! JSON metadata (HF `config.json`, APR's metadata block) into the typed metadata view.

use serde_json::{Map, Value};

use crate::model::{MetaArray, MetaValue, Metadata};

/// Adds every entry of `object` to `metadata`. Nested objects become dotted keys
/// (`rope_scaling.factor`); `null` means absent and is skipped. Returns the first key that was
/// already present, which callers report: a silently dropped key is a wrong model.
pub(crate) fn flatten_into(object: &Map<String, Value>, prefix: &str, metadata: &mut Metadata) -> Option<String> {
    let mut first_duplicate = None;
    for (key, value) in object {
        let key = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            Value::Null => {}
            Value::Object(inner) => {
                if let Some(dup) = flatten_into(inner, &key, metadata) {
                    first_duplicate.get_or_insert(dup);
                }
            }
            other => {
                if !metadata.insert(key.clone(), meta_value(other)) {
                    first_duplicate.get_or_insert(key);
                }
            }
        }
    }
    first_duplicate
}

/// One JSON value as a metadata value: integers stay integers, arrays become typed when
/// homogeneous.
pub(crate) fn meta_value(value: &Value) -> MetaValue {
    match value {
        Value::Bool(b) => MetaValue::Bool(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                MetaValue::U64(u)
            } else if let Some(i) = n.as_i64() {
                MetaValue::I64(i)
            } else {
                MetaValue::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => MetaValue::Str(s.clone()),
        Value::Array(items) => MetaValue::Array(meta_array(items)),
        Value::Null | Value::Object(_) => MetaValue::Str(value.to_string()),
    }
}

fn meta_array(items: &[Value]) -> MetaArray {
    if items.iter().all(Value::is_string) {
        return MetaArray::Str(items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect());
    }
    if let Some(v) = items.iter().map(Value::as_u64).collect::<Option<Vec<_>>>() {
        return MetaArray::U64(v);
    }
    if let Some(v) = items.iter().map(Value::as_i64).collect::<Option<Vec<_>>>() {
        return MetaArray::I64(v);
    }
    if let Some(v) = items.iter().map(Value::as_f64).collect::<Option<Vec<_>>>() {
        return MetaArray::F64(v);
    }
    if let Some(v) = items.iter().map(Value::as_bool).collect::<Option<Vec<_>>>() {
        return MetaArray::Bool(v);
    }
    MetaArray::Mixed(items.iter().map(meta_value).collect())
}
