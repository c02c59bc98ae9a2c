//! Format readers. Each parses bytes into the common [`Model`] view and does no math on
//! tensor data. Files are hostile: every count is capped, every offset checked, nothing panics.

pub mod apr;
mod cursor;
pub mod gguf;
mod json;
pub mod safetensors;

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{FormatError, FormatErrorKind};
use crate::model::{Format, Model};

/// What the first bytes say the file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    Model(Format),
    /// A sharded SafeTensors index (`model.safetensors.index.json`).
    SafeTensorsIndex,
}

/// Identifies a file from its leading bytes alone.
pub fn sniff(bytes: &[u8]) -> Option<Sniffed> {
    if bytes.starts_with(b"GGUF") {
        return Some(Sniffed::Model(Format::Gguf));
    }
    if bytes.starts_with(b"APR\0") {
        return Some(Sniffed::Model(Format::Apr));
    }
    // SafeTensors: u64 header length, then a JSON object. A length past the end still means
    // SafeTensors (a truncated one), so the reader can say what is wrong with it.
    if bytes.len() > 8 && bytes[8] == b'{' && bytes[..8] != [0; 8] {
        return Some(Sniffed::Model(Format::SafeTensors));
    }
    let text = bytes.trim_ascii_start();
    if text.starts_with(b"{") && bytes.windows(12).any(|w| w == b"\"weight_map\"") {
        return Some(Sniffed::SafeTensorsIndex);
    }
    None
}

/// Maps a file read-only.
pub(crate) fn map(path: &Path) -> Result<Mmap, FormatError> {
    let file = File::open(path).map_err(|e| FormatError::new(path, e.into()))?;
    // SAFETY: the map is read-only and private to this process. Like every mmap-based reader
    // (llama.cpp, candle, safetensors) we rely on the file not being truncated while it is open.
    unsafe { Mmap::map(&file) }.map_err(|e| FormatError::new(path, e.into()))
}

pub(crate) fn open(path: &Path) -> Result<Model, FormatError> {
    if path.is_dir() {
        return safetensors::open_dir(path);
    }
    let mmap = map(path)?;
    let Some(kind) = sniff(&mmap) else {
        let found = mmap.iter().take(8).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
        let found = if found.is_empty() { "none (empty file)".to_owned() } else { found };
        return Err(FormatError::new(path, FormatErrorKind::UnknownFormat { found }));
    };
    let path_buf: PathBuf = path.to_owned();
    match kind {
        Sniffed::Model(Format::Gguf) => {
            let parsed = gguf::parse(&mmap).map_err(|k| FormatError::new(path, k))?;
            Ok(Model::assemble(path_buf, Format::Gguf, parsed, vec![mmap]))
        }
        Sniffed::Model(Format::Apr) => {
            let parsed = apr::parse(&mmap).map_err(|k| FormatError::new(path, k))?;
            Ok(Model::assemble(path_buf, Format::Apr, parsed, vec![mmap]))
        }
        Sniffed::Model(Format::SafeTensors) => safetensors::open_single(path, mmap),
        Sniffed::SafeTensorsIndex => safetensors::open_index(path),
    }
}
