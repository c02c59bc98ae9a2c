//! Recognising files from the upstream `apr` tool's "preserve Q4_K" import writer, which
//! deviates from APR v2 (see the module docs of [`super`]). Such files are refused, but with a
//! diagnosis that names the broken rule and the writer, rather than a bare CRC or size error
//! that would send the user looking for disk corruption.
//!
//! One mark alone is not enough to blame that writer: a truncated conforming file also lacks its
//! footer, and `num_hidden_layers` is an ordinary alias. Two independent marks are.

use serde_json::Value;

use super::header::{Footer, Header};
use super::{ALIGN, dtype_from_code, flags};
use crate::dtype::DType;
use crate::error::FormatErrorKind;

/// Who we think wrote the file.
pub(crate) const WRITER: &str = "the upstream `apr` tool's \"preserve Q4_K\" import writer (apr 0.72.3)";
/// What the user should do about it.
const ADVICE: &str = "Assay loads only conforming APR v2 files (no lenient mode), because reading this one as \
                      APR v2 would give a wrong model; re-convert the model from its GGUF source with a \
                      conforming writer";

/// The `model_type` that writer stores.
const MODEL_TYPE: &str = "transformer_lm_q4k";

/// A file-level diagnosis when at least two of the writer's marks are present: no footer CRC,
/// flags `QUANTIZED` without `LAYOUT_ROW_MAJOR`, its metadata key names. Runs before the CRC
/// checks, so it must not trust any offset it reads.
pub(crate) fn diagnose(bytes: &[u8], header: &Header, footer: Footer) -> Option<FormatErrorKind> {
    let bad_flags = header.flags & flags::QUANTIZED != 0 && header.flags & flags::LAYOUT_ROW_MAJOR == 0;
    // A conforming file is 64-aligned sections plus the 4-byte footer; this writer's file ends
    // at its last aligned tensor.
    let no_footer = matches!(footer, Footer::Mismatch { .. }) && (bytes.len() as u64).is_multiple_of(ALIGN);
    if !bad_flags && !no_footer {
        return None;
    }
    let key_marks = metadata_marks(bytes, header);
    let n_marks = usize::from(bad_flags) + usize::from(no_footer) + usize::from(!key_marks.is_empty());
    if n_marks < 2 {
        return None;
    }

    let mut rules = Vec::new();
    let mut evidence = Vec::new();
    if no_footer {
        rules.push("APR v2 footer: the last 4 bytes are the CRC32 of every byte before them");
        evidence.push(format!(
            "the file has no footer CRC (its {} bytes end at a 64-byte boundary, where the last tensor ends)",
            bytes.len()
        ));
    }
    if bad_flags {
        rules.push("APR v2 flags: LAYOUT_ROW_MAJOR (0x0400) is always set");
        evidence.push(format!("its flags are {:#06x}: QUANTIZED without LAYOUT_ROW_MAJOR", header.flags));
    }
    if !key_marks.is_empty() {
        rules.push("APR v2 metadata key names");
        evidence.push(format!("its metadata has {}", key_marks.join(" and ")));
    }
    Some(FormatErrorKind::NonConforming {
        rule: rules.first().copied().unwrap_or_default().into(),
        diagnosis: format!(
            "{}. This looks like a file from {WRITER}, which also stores raw ggml type ids as dtype bytes \
             (8 = Q8_0, 13 = Q5_K) where APR v2 defines other codes. {ADVICE}.",
            evidence.join("; ")
        ),
    })
}

/// The writer's metadata names, if the metadata block can be found and parsed at all.
fn metadata_marks(bytes: &[u8], header: &Header) -> Vec<String> {
    let start = header.metadata_offset;
    let Some(end) = start.checked_add(u64::from(header.metadata_size)) else { return Vec::new() };
    let Some(json) = usize::try_from(start).ok().zip(usize::try_from(end).ok()).and_then(|(s, e)| bytes.get(s..e))
    else {
        return Vec::new();
    };
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(json) else { return Vec::new() };
    let mut marks = Vec::new();
    if object.get("model_type").and_then(Value::as_str) == Some(MODEL_TYPE) {
        marks.push(format!("`model_type: \"{MODEL_TYPE}\"`"));
    }
    if object.contains_key("num_hidden_layers") && !object.contains_key("num_layers") {
        marks.push("`num_hidden_layers` where APR v2 names it `num_layers`".into());
    }
    marks
}

/// A tensor-level diagnosis: the dtype byte is unknown to APR v2 or its size does not fit the
/// APR meaning, but read as a raw ggml type id (as that writer stores them) the size fits.
pub(crate) fn raw_ggml_dtype(tensor: &str, code: u8, dims: &[u64], size: u64) -> Option<FormatErrorKind> {
    let ggml = DType::from_ggml_id(code.into())?;
    if ggml.byte_size(dims) != Some(size) {
        return None;
    }
    let apr_meaning = match dtype_from_code(code) {
        Some(d) => format!("APR v2 defines byte {code} as {d}"),
        None => format!("byte {code} is not an APR v2 dtype"),
    };
    Some(FormatErrorKind::NonConforming {
        rule: "APR v2 dtype bytes (F32 0, F16 1, F64 3, I32 4, I64 5, I8 6, U8 7, Q4_K 12, Q6_K 14, BF16 30, \
               APR-q4 128/8, APR-q8 129/9)"
            .into(),
        diagnosis: format!(
            "tensor `{tensor}` {dims:?} has dtype byte {code}; {apr_meaning}, but its {size} bytes are exactly \
             what ggml type {code} ({ggml}) needs. This looks like a file from {WRITER}, which stores raw ggml \
             type ids. {ADVICE}."
        ),
    })
}
