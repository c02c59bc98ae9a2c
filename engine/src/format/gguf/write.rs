//! Writing GGUF v3. The header (metadata and tensor infos) depends only on names, dtypes and
//! shapes, so it is written first and tensor data streams after it in declaration order: a
//! multi-GiB model never needs to be in memory.

use std::io::{self, Write};

use super::value_type as vt;
use super::{DEFAULT_ALIGNMENT, MAX_DIMS};
use crate::dtype::DType;
use crate::model::{MetaArray, MetaValue};

/// A GGUF file being declared: metadata, then tensors, then their data.
#[derive(Clone, Debug)]
pub struct GgufWriter {
    version: u32,
    metadata: Vec<(String, MetaValue)>,
    /// (name, dtype, row-major shape, byte length)
    tensors: Vec<(String, DType, Vec<u64>, u64)>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        Self { version: 3, metadata: Vec::new(), tensors: Vec::new() }
    }

    /// Writes `version` into the header (2 and 3 share a layout); for tests of other versions.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Adds a key-value. The writer writes what it is given, duplicates included, so tests can
    /// build the malformed files a reader must reject.
    pub fn metadata(&mut self, key: impl Into<String>, value: MetaValue) -> &mut Self {
        self.metadata.push((key.into(), value));
        self
    }

    /// Declares a tensor of row-major `shape` (outermost first).
    pub fn tensor(&mut self, name: impl Into<String>, dtype: DType, shape: &[u64]) -> io::Result<&mut Self> {
        let name = name.into();
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, format!("tensor `{name}`: {msg}"));
        if dtype.ggml_id().is_none() {
            return Err(invalid(format!("{dtype} has no ggml type id")));
        }
        if shape.len() as u64 > MAX_DIMS {
            return Err(invalid(format!("{} dimensions, GGUF allows {MAX_DIMS}", shape.len())));
        }
        let len = dtype.byte_size(shape).ok_or_else(|| invalid(format!("shape {shape:?} overflows")))?;
        self.tensors.push((name, dtype, shape.to_vec(), len));
        Ok(self)
    }

    /// The data alignment: `general.alignment` when set, else 32.
    pub fn alignment(&self) -> u64 {
        self.metadata
            .iter()
            .find_map(|(k, v)| match (k.as_str(), v) {
                ("general.alignment", MetaValue::U32(a)) if a.is_power_of_two() => Some(u64::from(*a)),
                _ => None,
            })
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// Writes magic, counts, metadata, tensor infos and the padding up to the data section.
    /// Returns the number of bytes written.
    pub fn write_header(&self, w: &mut impl Write) -> io::Result<u64> {
        let mut out = Counting { inner: w, written: 0 };
        out.write_all(b"GGUF")?;
        out.write_all(&self.version.to_le_bytes())?;
        out.write_all(&(self.tensors.len() as u64).to_le_bytes())?;
        out.write_all(&(self.metadata.len() as u64).to_le_bytes())?;
        for (key, value) in &self.metadata {
            write_str(&mut out, key)?;
            write_value(&mut out, value)?;
        }
        let alignment = self.alignment();
        let mut offset = 0u64;
        for (name, dtype, shape, len) in &self.tensors {
            write_str(&mut out, name)?;
            out.write_all(&(shape.len() as u32).to_le_bytes())?;
            for d in shape.iter().rev() {
                out.write_all(&d.to_le_bytes())?;
            }
            out.write_all(&dtype.ggml_id().unwrap_or(u32::MAX).to_le_bytes())?;
            out.write_all(&offset.to_le_bytes())?;
            offset = (offset + len).next_multiple_of(alignment);
        }
        pad(&mut out, alignment)?;
        Ok(out.written)
    }

    /// Writes the data of every declared tensor, in order, each padded to the alignment.
    /// `data(i)` returns the bytes of tensor `i`; their length must match its dtype and shape.
    pub fn write_data<'a>(&self, w: &mut impl Write, mut data: impl FnMut(usize) -> &'a [u8]) -> io::Result<()> {
        let alignment = self.alignment();
        let mut out = Counting { inner: w, written: 0 };
        for (i, (name, _, _, len)) in self.tensors.iter().enumerate() {
            let bytes = data(i);
            if bytes.len() as u64 != *len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("tensor `{name}`: {} bytes given, its dtype and shape need {len}", bytes.len()),
                ));
            }
            out.write_all(bytes)?;
            pad(&mut out, alignment)?;
        }
        Ok(())
    }

    /// Bytes of the data section: every tensor padded to the alignment. A header followed by
    /// this many bytes of holes (`File::set_len`) is a valid sparse file of zero tensors.
    pub fn data_len(&self) -> u64 {
        let a = self.alignment();
        self.tensors.iter().map(|(_, _, _, len)| len.div_ceil(a) * a).sum()
    }

    /// The whole file in memory; `data[i]` are the bytes of tensor `i`.
    pub fn to_bytes(&self, data: &[&[u8]]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_header(&mut out)?;
        self.write_data(&mut out, |i| data.get(i).copied().unwrap_or(&[]))?;
        Ok(out)
    }
}

/// Tracks the position so padding needs no `Seek`.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    written: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn pad<W: Write>(out: &mut Counting<'_, W>, alignment: u64) -> io::Result<()> {
    let n = out.written.next_multiple_of(alignment) - out.written;
    out.write_all(&vec![0u8; n as usize])
}

fn write_str(w: &mut impl Write, s: &str) -> io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

fn type_id(value: &MetaValue) -> u32 {
    match value {
        MetaValue::U8(_) => vt::UINT8,
        MetaValue::I8(_) => vt::INT8,
        MetaValue::U16(_) => vt::UINT16,
        MetaValue::I16(_) => vt::INT16,
        MetaValue::U32(_) => vt::UINT32,
        MetaValue::I32(_) => vt::INT32,
        MetaValue::U64(_) => vt::UINT64,
        MetaValue::I64(_) => vt::INT64,
        MetaValue::F32(_) => vt::FLOAT32,
        MetaValue::F64(_) => vt::FLOAT64,
        MetaValue::Bool(_) => vt::BOOL,
        MetaValue::Str(_) => vt::STRING,
        MetaValue::Array(_) => vt::ARRAY,
    }
}

fn write_value(w: &mut impl Write, value: &MetaValue) -> io::Result<()> {
    w.write_all(&type_id(value).to_le_bytes())?;
    write_payload(w, value)
}

fn write_payload(w: &mut impl Write, value: &MetaValue) -> io::Result<()> {
    match value {
        MetaValue::U8(v) => w.write_all(&v.to_le_bytes()),
        MetaValue::I8(v) => w.write_all(&v.to_le_bytes()),
        MetaValue::U16(v) => w.write_all(&v.to_le_bytes()),
        MetaValue::I16(v) => w.write_all(&v.to_le_bytes()),
        MetaValue::U32(v) => w.write_all(&v.to_le_bytes()),
        MetaValue::I32(v) => w.write_all(&v.to_le_bytes()),
        MetaValue::U64(v) => w.write_all(&v.to_le_bytes()),
        MetaValue::I64(v) => w.write_all(&v.to_le_bytes()),
        MetaValue::F32(v) => w.write_all(&v.to_le_bytes()),
        MetaValue::F64(v) => w.write_all(&v.to_le_bytes()),
        MetaValue::Bool(v) => w.write_all(&[u8::from(*v)]),
        MetaValue::Str(s) => write_str(w, s),
        MetaValue::Array(a) => write_array(w, a),
    }
}

fn write_array(w: &mut impl Write, array: &MetaArray) -> io::Result<()> {
    macro_rules! items {
        ($ty:expr, $v:expr) => {{
            w.write_all(&($ty as u32).to_le_bytes())?;
            w.write_all(&($v.len() as u64).to_le_bytes())?;
            for x in $v {
                w.write_all(&x.to_le_bytes())?;
            }
            Ok(())
        }};
    }
    match array {
        MetaArray::U8(v) => items!(vt::UINT8, v),
        MetaArray::I8(v) => items!(vt::INT8, v),
        MetaArray::U16(v) => items!(vt::UINT16, v),
        MetaArray::I16(v) => items!(vt::INT16, v),
        MetaArray::U32(v) => items!(vt::UINT32, v),
        MetaArray::I32(v) => items!(vt::INT32, v),
        MetaArray::U64(v) => items!(vt::UINT64, v),
        MetaArray::I64(v) => items!(vt::INT64, v),
        MetaArray::F32(v) => items!(vt::FLOAT32, v),
        MetaArray::F64(v) => items!(vt::FLOAT64, v),
        MetaArray::Bool(v) => items!(vt::BOOL, v.iter().map(|&b| u8::from(b)).collect::<Vec<_>>()),
        MetaArray::Str(v) => {
            w.write_all(&vt::STRING.to_le_bytes())?;
            w.write_all(&(v.len() as u64).to_le_bytes())?;
            v.iter().try_for_each(|s| write_str(w, s))
        }
        MetaArray::Mixed(v) => {
            // GGUF arrays are homogeneous: write the first item's type and let the reader reject
            // a mismatch; the view only produces Mixed from JSON, never from GGUF.
            let ty = v.first().map(type_id).unwrap_or(vt::UINT8);
            w.write_all(&ty.to_le_bytes())?;
            w.write_all(&(v.len() as u64).to_le_bytes())?;
            v.iter().try_for_each(|x| write_payload(w, x))
        }
    }
}
