//! The tensor index: packed entries sorted by name, each pointing at 64-aligned bytes in the
//! data section. Data may be stored in another order than the index, so every entry is checked
//! on its own and then against the others for overlap.

use std::cmp::Ordering;

use super::header::Header;
use super::{
    ALIGN, FOOTER_LEN, MAX_DIMS, MAX_TENSORS, MIN_INDEX_ENTRY_BYTES, align_up, dtype_from_code, second_writer,
};
use crate::error::FormatErrorKind;
use crate::format::cursor::{Cursor, checked_count};
use crate::model::TensorInfo;

/// Byte position of `tensor_count` in the header, for error messages.
const TENSOR_COUNT_AT: u64 = 8;

/// One entry as stored, before its fields are believed.
struct RawEntry<'a> {
    name: &'a str,
    code: u8,
    /// Row-major, outermost first.
    dims: Vec<u64>,
    /// Relative to `data_offset`.
    offset: u64,
    /// Unpadded byte count.
    size: u64,
}

/// Reads and checks every entry. The caller has checked that
/// `tensor_index_offset <= data_offset <= file length - 4`.
pub(crate) fn read(bytes: &[u8], header: &Header) -> Result<Vec<TensorInfo>, FormatErrorKind> {
    let region = bytes.get(..header.data_offset as usize).unwrap_or(&[]);
    let mut c = Cursor::at(region, header.tensor_index_offset as usize);
    let count = checked_count(
        u64::from(header.tensor_count),
        MAX_TENSORS,
        MIN_INDEX_ENTRY_BYTES,
        &c,
        TENSOR_COUNT_AT,
        &|| "APR tensor count".into(),
    )?;
    let payload_end = (bytes.len() as u64).saturating_sub(FOOTER_LEN);
    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(count);
    for i in 0..count {
        let entry = read_entry(&mut c, i)?;
        if let Some(previous) = tensors.last() {
            match previous.name.as_bytes().cmp(entry.name.as_bytes()) {
                Ordering::Less => {}
                Ordering::Equal => return Err(FormatErrorKind::DuplicateTensor { tensor: entry.name.into() }),
                Ordering::Greater => {
                    return Err(FormatErrorKind::UnsortedIndex {
                        previous: previous.name.clone(),
                        tensor: entry.name.into(),
                    });
                }
            }
        }
        tensors.push(validate(entry, header.data_offset, payload_end)?);
    }
    let padding_at = c.pos();
    let padding = c.take(c.remaining(), &|| "APR tensor index padding".into())?;
    if let Some(i) = padding.iter().position(|&b| b != 0) {
        return Err(FormatErrorKind::NonConforming {
            rule: "APR v2 tensor index: the entries are followed only by zero padding up to the data section".into(),
            diagnosis: format!(
                "byte {} after the last of {count} entries is {:#04x}; the header's tensor count may be wrong",
                padding_at + i as u64,
                padding[i]
            ),
        });
    }
    check_overlaps(&tensors, header.data_offset)?;
    Ok(tensors)
}

fn read_entry<'a>(c: &mut Cursor<'a>, i: usize) -> Result<RawEntry<'a>, FormatErrorKind> {
    let at = c.pos();
    let name_len = c.u16(&|| format!("name length of APR tensor #{i}"))?;
    let name = c.str(u64::from(name_len), &|| format!("name of APR tensor #{i}"))?;
    if name.is_empty() {
        return Err(FormatErrorKind::invalid(format!("APR tensor #{i} at byte {at}"), "its name is empty"));
    }
    let code = c.u8(&|| format!("dtype of APR tensor `{name}`"))?;
    let ndim = c.u8(&|| format!("dimension count of APR tensor `{name}`"))?;
    if u64::from(ndim) > MAX_DIMS {
        return Err(FormatErrorKind::TooManyDims { tensor: name.into(), found: ndim.into(), max: MAX_DIMS });
    }
    let mut dims = Vec::with_capacity(usize::from(ndim));
    for d in 0..ndim {
        dims.push(c.u64(&|| format!("dimension {d} of APR tensor `{name}`"))?);
    }
    let offset = c.u64(&|| format!("data offset of APR tensor `{name}`"))?;
    let size = c.u64(&|| format!("byte size of APR tensor `{name}`"))?;
    Ok(RawEntry { name, code, dims, offset, size })
}

/// Checks dtype, shape, size, alignment and bounds; returns the entry with an absolute offset.
fn validate(entry: RawEntry<'_>, data_offset: u64, payload_end: u64) -> Result<TensorInfo, FormatErrorKind> {
    let RawEntry { name, code, dims, offset, size } = entry;
    let Some(dtype) = dtype_from_code(code) else {
        return Err(second_writer::raw_ggml_dtype(name, code, &dims, size).unwrap_or_else(|| {
            FormatErrorKind::UnknownDTypeCode { tensor: name.into(), format: "APR", found: code.into() }
        }));
    };
    let bad_shape = || FormatErrorKind::BadShape { tensor: name.into(), shape: dims.clone() };
    if dims.contains(&0) {
        return Err(bad_shape());
    }
    let expected = dtype.byte_size(&dims).ok_or_else(bad_shape)?;
    if size != expected {
        return Err(second_writer::raw_ggml_dtype(name, code, &dims, size).unwrap_or_else(|| {
            FormatErrorKind::SizeMismatch { tensor: name.into(), dtype, shape: dims.clone(), expected, found: size }
        }));
    }
    if !offset.is_multiple_of(ALIGN) {
        return Err(FormatErrorKind::BadOffset {
            tensor: name.into(),
            expected: align_up(offset).unwrap_or(offset - offset % ALIGN),
            found: offset,
            why: "APR v2 tensor offsets are multiples of 64",
        });
    }
    let start = data_offset.checked_add(offset);
    let end = start.and_then(|s| s.checked_add(size));
    match (start, end) {
        (Some(start), Some(end)) if end <= payload_end => {
            Ok(TensorInfo { name: name.into(), dtype, shape: dims, file_idx: 0, offset: start, len: size })
        }
        _ => Err(FormatErrorKind::OutOfBounds {
            tensor: name.into(),
            start: start.unwrap_or(u64::MAX),
            end: end.unwrap_or(u64::MAX),
            file_len: payload_end,
        }),
    }
}

/// No two tensors may share bytes: one would silently read the other's weights.
fn check_overlaps(tensors: &[TensorInfo], data_offset: u64) -> Result<(), FormatErrorKind> {
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().collect();
    by_offset.sort_by_key(|t| t.offset);
    for pair in by_offset.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        let before_end = before.offset.saturating_add(before.len);
        if after.offset < before_end {
            let relative = |abs: u64| abs.saturating_sub(data_offset);
            return Err(FormatErrorKind::BadOffset {
                tensor: after.name.clone(),
                expected: align_up(relative(before_end)).unwrap_or(u64::MAX),
                found: relative(after.offset),
                why: "its bytes overlap the tensor stored before it",
            });
        }
    }
    Ok(())
}
