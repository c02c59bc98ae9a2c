//! Writing APR v2 files that this crate's reader (and the upstream's) accepts. Output is
//! deterministic: metadata keys are sorted at every depth and the index (and the data) follow
//! tensor names in byte order, so two writes of the same model are byte-identical.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde_json::{Map, Value};

use super::header::{HEADER_CRC_AT, RESERVED};
use super::{
    ALIGN, HEADER_LEN, MAGIC, MAX_DIMS, MAX_TENSORS, VERSION_MAJOR, VERSION_MINOR, align_up, crc32, dtype_to_code,
    flags, is_quantized,
};
use crate::dtype::DType;

/// One tensor to store.
#[derive(Clone, Debug)]
struct Entry<'a> {
    name: String,
    dtype: DType,
    /// Row-major, outermost first (`[out, in]` for a linear weight).
    dims: Vec<u64>,
    /// Exactly `dtype.byte_size(dims)` bytes.
    bytes: Cow<'a, [u8]>,
}

/// An APR v2 file being assembled: JSON metadata plus tensors. Tensor bytes may be borrowed
/// (from a memory map) or owned.
#[derive(Clone, Debug, Default)]
pub struct AprWriter<'a> {
    metadata: Map<String, Value>,
    tensors: Vec<Entry<'a>>,
}

impl<'a> AprWriter<'a> {
    /// A writer with `metadata` as the JSON object. It is stored as given (aliases and all), so
    /// tests can build files the reader must refuse; only its key order is normalised.
    pub fn new(metadata: Map<String, Value>) -> Self {
        Self { metadata, tensors: Vec::new() }
    }

    pub fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.metadata
    }

    /// Adds a tensor of row-major `dims`. Fails (`InvalidInput`) when APR cannot hold the dtype,
    /// the name is empty or over 65535 bytes, there are more than 8 dimensions, a dimension is
    /// zero, or `bytes` is not exactly `dtype.byte_size(dims)` long.
    pub fn tensor(
        &mut self,
        name: impl Into<String>,
        dtype: DType,
        dims: &[u64],
        bytes: impl Into<Cow<'a, [u8]>>,
    ) -> io::Result<&mut Self> {
        let name = name.into();
        let bytes = bytes.into();
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, format!("APR tensor `{name}`: {msg}"));
        if dtype_to_code(dtype).is_none() {
            return Err(invalid(format!("APR has no dtype code for {dtype}")));
        }
        if name.is_empty() || name.len() > usize::from(u16::MAX) {
            return Err(invalid(format!("the name is {} bytes; APR names are 1..=65535 bytes", name.len())));
        }
        if dims.len() as u64 > MAX_DIMS {
            return Err(invalid(format!("{} dimensions; APR allows {MAX_DIMS}", dims.len())));
        }
        if dims.contains(&0) {
            return Err(invalid(format!("shape {dims:?} has a zero dimension")));
        }
        let expected = dtype.byte_size(dims).ok_or_else(|| invalid(format!("shape {dims:?} overflows")))?;
        if bytes.len() as u64 != expected {
            return Err(invalid(format!("{} bytes given; {dtype} {dims:?} takes {expected}", bytes.len())));
        }
        self.tensors.push(Entry { name, dtype, dims: dims.to_vec(), bytes });
        Ok(self)
    }

    /// The header flags this file gets: `LAYOUT_ROW_MAJOR` always, `HAS_VOCAB` when the
    /// metadata holds `tokenizer.vocabulary`, `QUANTIZED` when any tensor is quantized.
    pub fn flags(&self) -> u16 {
        let mut bits = flags::LAYOUT_ROW_MAJOR;
        let nested_vocab = self.metadata.get("tokenizer").and_then(|t| t.get("vocabulary")).is_some();
        if self.metadata.contains_key("tokenizer.vocabulary") || nested_vocab {
            bits |= flags::HAS_VOCAB;
        }
        if self.tensors.iter().any(|t| is_quantized(t.dtype)) {
            bits |= flags::QUANTIZED;
        }
        bits
    }

    /// Streams the file to `w`; returns the number of bytes written.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<u64> {
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        let mut tensors: Vec<&Entry<'a>> = self.tensors.iter().collect();
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(pair) = tensors.windows(2).find(|p| p[0].name == p[1].name) {
            return Err(invalid(format!("APR tensor `{}` is declared twice", pair[0].name)));
        }
        if tensors.len() as u64 > MAX_TENSORS {
            return Err(invalid(format!("{} tensors; the reader's cap is {MAX_TENSORS}", tensors.len())));
        }

        let json = serde_json::to_vec(&sorted(&Value::Object(self.metadata.clone()))).map_err(io::Error::other)?;
        let metadata_size =
            u32::try_from(json.len()).map_err(|_| invalid(format!("{} bytes of metadata JSON", json.len())))?;
        let overflow = || invalid("the file would exceed 2^64 bytes".into());
        let index_offset = align_up(HEADER_LEN + u64::from(metadata_size)).ok_or_else(overflow)?;
        let mut index = Vec::new();
        let mut relative = 0u64;
        for t in &tensors {
            index.extend_from_slice(&(t.name.len() as u16).to_le_bytes());
            index.extend_from_slice(t.name.as_bytes());
            index.push(dtype_to_code(t.dtype).unwrap_or(u8::MAX));
            index.push(t.dims.len() as u8);
            for d in &t.dims {
                index.extend_from_slice(&d.to_le_bytes());
            }
            index.extend_from_slice(&relative.to_le_bytes());
            index.extend_from_slice(&(t.bytes.len() as u64).to_le_bytes());
            relative = relative.checked_add(t.bytes.len() as u64).and_then(align_up).ok_or_else(overflow)?;
        }
        let data_offset = index_offset.checked_add(index.len() as u64).and_then(align_up).ok_or_else(overflow)?;

        let mut header = [0u8; HEADER_LEN as usize];
        header[0..4].copy_from_slice(&MAGIC);
        header[4] = VERSION_MAJOR;
        header[5] = VERSION_MINOR;
        header[6..8].copy_from_slice(&self.flags().to_le_bytes());
        header[8..12].copy_from_slice(&(tensors.len() as u32).to_le_bytes());
        header[12..20].copy_from_slice(&HEADER_LEN.to_le_bytes());
        header[20..24].copy_from_slice(&metadata_size.to_le_bytes());
        header[24..32].copy_from_slice(&index_offset.to_le_bytes());
        header[32..40].copy_from_slice(&data_offset.to_le_bytes());
        let header_crc = crc32(&[&header[..HEADER_CRC_AT], &header[RESERVED]]);
        header[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&header_crc.to_le_bytes());

        let mut out = CrcWriter { inner: w, hasher: crc32fast::Hasher::new(), written: 0 };
        out.write_all(&header)?;
        out.write_all(&json)?;
        out.pad()?;
        out.write_all(&index)?;
        out.pad()?;
        for t in &tensors {
            out.write_all(&t.bytes)?;
            out.pad()?;
        }
        let footer = out.hasher.clone().finalize();
        out.write_all(&footer.to_le_bytes())?;
        Ok(out.written)
    }

    /// The whole file in memory.
    pub fn to_bytes(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Writes the file at `path`, replacing it.
    pub fn write_file(&self, path: impl AsRef<Path>) -> io::Result<u64> {
        let mut w = BufWriter::new(File::create(path)?);
        let n = self.write_to(&mut w)?;
        w.flush()?;
        Ok(n)
    }
}

/// `value` with object keys in sorted order at every depth, whatever map type serde_json uses.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&object[k]))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Hashes what it writes (for the footer) and tracks the position (for padding).
struct CrcWriter<'w, W: Write> {
    inner: &'w mut W,
    hasher: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> CrcWriter<'_, W> {
    /// Zero bytes up to the next multiple of [`ALIGN`].
    fn pad(&mut self) -> io::Result<()> {
        let n = self.written.next_multiple_of(ALIGN) - self.written;
        self.write_all(&[0u8; ALIGN as usize][..n as usize])
    }
}

impl<W: Write> Write for CrcWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
