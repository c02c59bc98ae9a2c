//! GGUF v2/v3, as ggml's `gguf.cpp` reads it, with the same strict checks: duplicate keys and
//! tensor names, name length, unknown types, block-aligned rows, and offsets that are exactly
//! the contiguous padded running sum. v2 has v3's layout; v1 and big-endian files are refused.

mod read;
pub mod write;

pub(crate) use read::parse;
pub use write::GgufWriter;

/// Value type ids of GGUF metadata (`enum gguf_type`).
pub mod value_type {
    pub const UINT8: u32 = 0;
    pub const INT8: u32 = 1;
    pub const UINT16: u32 = 2;
    pub const INT16: u32 = 3;
    pub const UINT32: u32 = 4;
    pub const INT32: u32 = 5;
    pub const FLOAT32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const UINT64: u32 = 10;
    pub const INT64: u32 = 11;
    pub const FLOAT64: u32 = 12;
}

/// `GGML_MAX_NAME`: tensor names must be shorter than this.
pub const MAX_NAME_BYTES: u64 = 64;
/// `GGML_MAX_DIMS`.
pub const MAX_DIMS: u64 = 4;
/// Default `general.alignment`.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Caps on counts, far above any real model, so a corrupt count fails before allocating.
pub const MAX_TENSORS: u64 = 1 << 20;
pub const MAX_KVS: u64 = 1 << 20;
pub const MAX_ARRAY_LEN: u64 = 1 << 28;
