//! Errors of reading model files. Every kind names what was being read, where (byte offset,
//! tensor or key), and what was expected against what was found.

use std::path::PathBuf;

use crate::dtype::DType;

/// A model file could not be read. Displayed as `path: problem`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct FormatError {
    pub path: PathBuf,
    pub kind: FormatErrorKind,
}

impl FormatError {
    pub fn new(path: impl Into<PathBuf>, kind: FormatErrorKind) -> Self {
        Self { path: path.into(), kind }
    }
}

/// What was wrong with the bytes. Non-exhaustive: new checks add kinds.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum FormatErrorKind {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),

    #[error(
        "not a model file this reader knows: the first bytes are {found}; expected GGUF (`GGUF`), \
         APR (`APR\\0`) or SafeTensors (u64 header length, then `{{`)"
    )]
    UnknownFormat { found: String },

    #[error("truncated: {what} at byte {offset} needs {need} bytes, the file has {have} left")]
    Truncated { what: String, offset: u64, need: u64, have: u64 },

    #[error("{what} at byte {offset} is {found}, above the cap of {max}")]
    TooLarge { what: String, offset: u64, found: u64, max: u64 },

    #[error("unsupported {format} version {found} (this reader handles {supported})")]
    UnsupportedVersion { format: &'static str, found: String, supported: &'static str },

    #[error("{what} at byte {offset} is not valid UTF-8")]
    InvalidUtf8 { what: String, offset: u64 },

    #[error("metadata key `{key}` at byte {offset} has unknown value type {found} (known: 0..=12)")]
    UnknownValueType { key: String, offset: u64, found: u32 },

    #[error("metadata key `{key}` at byte {offset} is a nested array; GGUF readers reject those")]
    NestedArray { key: String, offset: u64 },

    #[error("metadata key at byte {offset} is empty")]
    EmptyKey { offset: u64 },

    #[error("metadata key `{key}` appears twice (second at byte {offset})")]
    DuplicateKey { key: String, offset: u64 },

    #[error("metadata key `{key}` should be {expected}, found {found}")]
    MetadataType { key: String, expected: &'static str, found: String },

    #[error("`general.alignment` is {found}; it must be a non-zero power of two")]
    BadAlignment { found: u64 },

    #[error("tensor `{tensor}` appears twice")]
    DuplicateTensor { tensor: String },

    #[error("tensor name `{tensor}` is {len} bytes; the limit is {max}")]
    NameTooLong { tensor: String, len: u64, max: u64 },

    #[error("tensor `{tensor}` has {found} dimensions; the limit is {max}")]
    TooManyDims { tensor: String, found: u64, max: u64 },

    #[error("tensor `{tensor}` has unknown ggml type id {found}")]
    UnknownGgmlType { tensor: String, found: u32 },

    #[error("tensor `{tensor}` has unknown {format} dtype code {found}")]
    UnknownDTypeCode { tensor: String, format: &'static str, found: u64 },

    #[error("tensor `{tensor}`: row length {row} is not a multiple of {dtype}'s block of {block}")]
    RowNotBlockAligned { tensor: String, dtype: DType, row: u64, block: u64 },

    #[error("tensor `{tensor}` has a dimension of 0 or a shape whose size overflows: {shape:?}")]
    BadShape { tensor: String, shape: Vec<u64> },

    #[error("tensor `{tensor}` starts at data offset {found}; expected {expected} ({why})")]
    BadOffset { tensor: String, expected: u64, found: u64, why: &'static str },

    #[error("tensor `{tensor}` occupies bytes {start}..{end}, past the end of the file ({file_len})")]
    OutOfBounds { tensor: String, start: u64, end: u64, file_len: u64 },

    #[error("tensor `{tensor}` ({dtype} {shape:?}) takes {found} bytes; dtype × shape gives {expected}")]
    SizeMismatch { tensor: String, dtype: DType, shape: Vec<u64>, expected: u64, found: u64 },

    #[error("{what} CRC32 is {stored:#010x}; the bytes give {computed:#010x}")]
    BadCrc { what: &'static str, stored: u32, computed: u32 },

    #[error("tensor index is not sorted by name: `{tensor}` follows `{previous}`")]
    UnsortedIndex { previous: String, tensor: String },

    #[error("{what} is not supported by this reader")]
    Unsupported { what: String },

    #[error("{rule} — {diagnosis}")]
    NonConforming { rule: String, diagnosis: String },

    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}

impl FormatErrorKind {
    /// Shorthand for [`FormatErrorKind::Invalid`].
    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { what: what.into(), message: message.into() }
    }
}
