use crate::error::FormatErrorKind;
use crate::model::Parsed;
pub(crate) fn parse(_bytes: &[u8]) -> Result<Parsed, FormatErrorKind> { todo!() }
