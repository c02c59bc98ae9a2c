//! APR v2 (placeholder being written).
use crate::error::FormatErrorKind;
use crate::model::Parsed;
pub(crate) fn parse(_bytes: &[u8]) -> Result<Parsed, FormatErrorKind> {
    Err(FormatErrorKind::Unsupported { what: "APR".into() })
}
