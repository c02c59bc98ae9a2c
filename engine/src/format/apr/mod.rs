//! APR v2, the upstream project's own format: a 64-byte header, compact JSON metadata, a packed
//! tensor index sorted by name, 64-aligned tensor data, and a CRC32 footer over everything.
//!
//! ```text
//! [0, 64)      header (magic `APR\0`, version 2.x, flags, counts, section offsets, header CRC)
//! [64, 64+M)   JSON metadata, zero-padded to a multiple of 64
//! [I, I+X)     tensor index, zero-padded to a multiple of 64
//! [D, …)       tensor data, each tensor 64-aligned and zero-padded to 64
//! last 4 bytes CRC32 of every byte before them
//! ```
//!
//! The reader is strict: both CRCs must verify, compressed, encrypted, sharded and column-major
//! files are refused by name, the index must be sorted, and every tensor's size must be exactly
//! what its dtype and shape give.
//!
//! # Files from the upstream `apr` tool's "preserve Q4_K" import writer
//!
//! That second upstream writer (apr 0.72.3) deviates from APR v2: no footer CRC, flags `0x0020`
//! without `LAYOUT_ROW_MAJOR`, dtype bytes that are raw ggml ids (8 = Q8_0 where APR v2 says
//! legacy APR-q4, 13 = Q5_K), and other metadata key names (`num_hidden_layers`,
//! `model_type: "transformer_lm_q4k"`). Reading such a file as APR v2 gives a wrong model, which
//! is what the upstream's own reader sometimes does. Product decision: Assay does not load them
//! (there is no lenient mode); it recognises their marks and fails with a
//! [`NonConforming`](crate::error::FormatErrorKind::NonConforming) error that names the broken
//! rule and the writer the file looks like, so the user re-converts from the source GGUF.
//!
//! The main upstream writer is conforming but never sets `QUANTIZED` and writes metadata keys in
//! a run-dependent order; both are accepted. [`AprWriter`] sorts keys, so its output is
//! byte-for-byte reproducible.

mod header;
mod index;
mod metadata;
mod read;
mod second_writer;
pub mod write;

#[cfg(test)]
mod tests;

pub(crate) use read::parse;
pub use write::AprWriter;

use crate::dtype::DType;

/// `APR\0`.
pub const MAGIC: [u8; 4] = *b"APR\0";
/// The only major version this reader (and the writer) handles.
pub const VERSION_MAJOR: u8 = 2;
pub const VERSION_MINOR: u8 = 0;
/// Size of the fixed header; metadata starts right after it.
pub const HEADER_LEN: u64 = 64;
/// Alignment of the index, the data section and every tensor.
pub const ALIGN: u64 = 64;
/// Size of the CRC32 footer.
pub const FOOTER_LEN: u64 = 4;
/// Most dimensions an index entry may declare.
pub const MAX_DIMS: u64 = 8;
/// Cap on the tensor count, far above any real model, so a corrupt count fails before allocating.
pub const MAX_TENSORS: u64 = 1 << 20;
/// Smallest index entry: u16 name length, empty name, dtype, ndim 0, offset, size.
pub const MIN_INDEX_ENTRY_BYTES: u64 = 2 + 1 + 1 + 8 + 8;

/// Header flag bits.
pub mod flags {
    pub const LZ4: u16 = 0x0001;
    pub const ZSTD: u16 = 0x0002;
    pub const ENCRYPTED: u16 = 0x0004;
    /// Accepted; the signature is not verified (formats.md does not say where it is stored).
    pub const SIGNED: u16 = 0x0008;
    pub const SHARDED: u16 = 0x0010;
    /// Informational: the main upstream writer never sets it, even for quantized tensors.
    pub const QUANTIZED: u16 = 0x0020;
    /// Informational bits of the upstream flag set that formats.md does not list; they change
    /// nothing in the layout, so they are accepted and named.
    pub const HAS_FILTERBANK: u16 = 0x0040;
    pub const HAS_MODEL_CARD: u16 = 0x0080;
    pub const STREAMING: u16 = 0x0100;
    /// The metadata carries `tokenizer.vocabulary`.
    pub const HAS_VOCAB: u16 = 0x0200;
    /// Required: every conforming writer sets it.
    pub const LAYOUT_ROW_MAJOR: u16 = 0x0400;
    /// Marks a transposed (badly converted) file; always rejected.
    pub const LAYOUT_COLUMN_MAJOR: u16 = 0x0800;

    /// Every bit with a name, in bit order.
    pub const NAMED: &[(u16, &str)] = &[
        (LZ4, "LZ4"),
        (ZSTD, "ZSTD"),
        (ENCRYPTED, "ENCRYPTED"),
        (SIGNED, "SIGNED"),
        (SHARDED, "SHARDED"),
        (QUANTIZED, "QUANTIZED"),
        (HAS_FILTERBANK, "HAS_FILTERBANK"),
        (HAS_MODEL_CARD, "HAS_MODEL_CARD"),
        (STREAMING, "STREAMING"),
        (HAS_VOCAB, "HAS_VOCAB"),
        (LAYOUT_ROW_MAJOR, "LAYOUT_ROW_MAJOR"),
        (LAYOUT_COLUMN_MAJOR, "LAYOUT_COLUMN_MAJOR"),
    ];

    /// Bits with no defined meaning; a file setting one may be laid out in a way we cannot know.
    pub const UNKNOWN_MASK: u16 = !(LZ4
        | ZSTD
        | ENCRYPTED
        | SIGNED
        | SHARDED
        | QUANTIZED
        | HAS_FILTERBANK
        | HAS_MODEL_CARD
        | STREAMING
        | HAS_VOCAB
        | LAYOUT_ROW_MAJOR
        | LAYOUT_COLUMN_MAJOR);
}

/// Names of the known bits set in `bits`, in bit order (unknown bits are rejected on read).
pub fn flag_names(bits: u16) -> Vec<&'static str> {
    flags::NAMED.iter().filter(|(bit, _)| bits & bit != 0).map(|&(_, name)| name).collect()
}

/// APR dtype bytes. Byte 8 is legacy APR-q4 here, not GGML Q8_0 (and 9 legacy APR-q8).
pub mod dtype_code {
    pub const F32: u8 = 0;
    pub const F16: u8 = 1;
    pub const F64: u8 = 3;
    pub const I32: u8 = 4;
    pub const I64: u8 = 5;
    pub const I8: u8 = 6;
    pub const U8: u8 = 7;
    pub const APR_Q4_LEGACY: u8 = 8;
    pub const APR_Q8_LEGACY: u8 = 9;
    pub const Q4_K: u8 = 12;
    pub const Q6_K: u8 = 14;
    pub const BF16: u8 = 30;
    pub const APR_Q4: u8 = 128;
    pub const APR_Q8: u8 = 129;
}

/// The dtype of an APR dtype byte, legacy codes included.
pub fn dtype_from_code(code: u8) -> Option<DType> {
    use dtype_code as c;
    Some(match code {
        c::F32 => DType::F32,
        c::F16 => DType::F16,
        c::F64 => DType::F64,
        c::I32 => DType::I32,
        c::I64 => DType::I64,
        c::I8 => DType::I8,
        c::U8 => DType::U8,
        c::Q4_K => DType::Q4_K,
        c::Q6_K => DType::Q6_K,
        c::BF16 => DType::BF16,
        c::APR_Q4 | c::APR_Q4_LEGACY => DType::AprQ4,
        c::APR_Q8 | c::APR_Q8_LEGACY => DType::AprQ8,
        _ => return None,
    })
}

/// The byte a writer stores for `dtype` (current codes, never the legacy ones); `None` for
/// dtypes APR cannot hold.
pub fn dtype_to_code(dtype: DType) -> Option<u8> {
    use dtype_code as c;
    Some(match dtype {
        DType::F32 => c::F32,
        DType::F16 => c::F16,
        DType::F64 => c::F64,
        DType::I32 => c::I32,
        DType::I64 => c::I64,
        DType::I8 => c::I8,
        DType::U8 => c::U8,
        DType::Q4_K => c::Q4_K,
        DType::Q6_K => c::Q6_K,
        DType::BF16 => c::BF16,
        DType::AprQ4 => c::APR_Q4,
        DType::AprQ8 => c::APR_Q8,
        _ => return None,
    })
}

/// Whether `dtype` is a quantized type (sets `QUANTIZED` on write).
pub(crate) fn is_quantized(dtype: DType) -> bool {
    matches!(dtype, DType::Q4_K | DType::Q6_K | DType::AprQ4 | DType::AprQ8)
}

/// Metadata keys that mean the same hyperparameter: canonical APR key, then the aliases that
/// other writers use. The upstream loader silently dropped all metadata when a file carried a
/// key and its alias; this reader accepts them only when their values agree.
pub const KEY_ALIASES: &[(&str, &[&str])] = &[
    ("hidden_size", &["n_embd", "d_model"]),
    ("num_layers", &["n_layer", "num_hidden_layers"]),
    ("num_heads", &["n_head", "num_attention_heads"]),
    ("num_kv_heads", &["n_head_kv", "num_key_value_heads"]),
    ("vocab_size", &["n_vocab"]),
    ("intermediate_size", &["n_ff"]),
    ("max_position_embeddings", &["n_ctx"]),
];

/// `x` rounded up to the next multiple of [`ALIGN`], or `None` on overflow.
pub(crate) fn align_up(x: u64) -> Option<u64> {
    x.checked_next_multiple_of(ALIGN)
}

/// CRC32 (IEEE, zlib's) of the concatenation of `parts`.
pub(crate) fn crc32(parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize()
}
