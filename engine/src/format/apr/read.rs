//! Reading an APR v2 file into the common model view. Checks run from the outside in: header,
//! integrity (both CRCs), flags, section layout, metadata, then every index entry.

use super::header::{Footer, Header};
use super::{ALIGN, FOOTER_LEN, HEADER_LEN, flag_names, flags, index, metadata, second_writer};
use crate::error::FormatErrorKind;
use crate::model::{FormatDetails, Parsed};

pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed, FormatErrorKind> {
    let header = Header::read(bytes)?;
    let footer = Footer::check(bytes);
    if let Some(diagnosis) = second_writer::diagnose(bytes, &header, footer) {
        return Err(diagnosis);
    }
    header.verify_crc(bytes)?;
    footer.into_result(bytes.len() as u64)?;
    check_flags(header.flags)?;
    header.check_reserved(bytes)?;
    check_sections(bytes, &header)?;
    let meta = metadata::read(bytes, &header)?;
    let tensors = index::read(bytes, &header)?;
    Ok(Parsed {
        architecture: meta.architecture,
        details: FormatDetails::Apr {
            version: format!("{}.{}", header.major, header.minor),
            flags: header.flags,
            flag_names: flag_names(header.flags),
            data_offset: header.data_offset,
        },
        metadata: meta.metadata,
        tensors,
        tokenizer: meta.tokenizer,
    })
}

/// Refuses payload encodings this reader does not implement, undefined bits, and files that do
/// not declare the row-major layout.
fn check_flags(bits: u16) -> Result<(), FormatErrorKind> {
    const WHY: &[(u16, &str)] = &[
        (flags::LZ4, "LZ4-compressed tensor data"),
        (flags::ZSTD, "Zstandard-compressed tensor data"),
        (flags::ENCRYPTED, "an encrypted payload"),
        (flags::SHARDED, "a model sharded across several files"),
        (flags::LAYOUT_COLUMN_MAJOR, "column-major tensors, the mark of a transposed conversion"),
    ];
    for &(bit, why) in WHY {
        if bits & bit != 0 {
            let name = flag_names(bit).first().copied().unwrap_or("?");
            return Err(FormatErrorKind::Unsupported { what: format!("APR flag {name} ({bit:#06x}: {why})") });
        }
    }
    if bits & flags::UNKNOWN_MASK != 0 {
        return Err(FormatErrorKind::Unsupported {
            what: format!("an APR flag undefined in APR v2 (bits {:#06x})", bits & flags::UNKNOWN_MASK),
        });
    }
    if bits & flags::LAYOUT_ROW_MAJOR == 0 {
        let hint = if bits & flags::QUANTIZED != 0 {
            format!("; QUANTIZED without LAYOUT_ROW_MAJOR is how {} flags its files", second_writer::WRITER)
        } else {
            String::new()
        };
        return Err(FormatErrorKind::NonConforming {
            rule: "APR v2 flags: LAYOUT_ROW_MAJOR (0x0400) is always set".into(),
            diagnosis: format!("the flags are {bits:#06x}, so the tensor layout is undeclared{hint}"),
        });
    }
    Ok(())
}

/// Header → metadata → index → data, in that order, 64-aligned, inside the file, with only zero
/// bytes between the metadata and the index.
fn check_sections(bytes: &[u8], h: &Header) -> Result<(), FormatErrorKind> {
    let payload_end = (bytes.len() as u64).saturating_sub(FOOTER_LEN);
    let non_conforming =
        |rule: &str, diagnosis: String| FormatErrorKind::NonConforming { rule: rule.into(), diagnosis };
    if h.metadata_offset != HEADER_LEN {
        return Err(non_conforming(
            "APR v2 layout: the metadata starts at byte 64, right after the header",
            format!("the header puts it at byte {}", h.metadata_offset),
        ));
    }
    let metadata_end = HEADER_LEN + u64::from(h.metadata_size);
    let truncated = |what: &str, offset: u64, need: u64| FormatErrorKind::Truncated {
        what: what.into(),
        offset,
        need,
        have: payload_end.saturating_sub(offset),
    };
    if metadata_end > payload_end {
        return Err(truncated("APR metadata JSON", HEADER_LEN, h.metadata_size.into()));
    }
    if !h.tensor_index_offset.is_multiple_of(ALIGN) || h.tensor_index_offset < metadata_end {
        return Err(non_conforming(
            "APR v2 layout: the tensor index starts at the first multiple of 64 at or after the end of the metadata",
            format!(
                "the metadata ends at byte {metadata_end}; the header puts the index at byte {}",
                h.tensor_index_offset
            ),
        ));
    }
    let past_end = |what: &str, offset: u64, found: u64| FormatErrorKind::TooLarge {
        what: what.into(),
        offset,
        found,
        max: payload_end,
    };
    if h.tensor_index_offset > payload_end {
        return Err(past_end("APR tensor index offset", 24, h.tensor_index_offset));
    }
    if !h.data_offset.is_multiple_of(ALIGN) || h.data_offset < h.tensor_index_offset {
        return Err(non_conforming(
            "APR v2 layout: the data section starts at a multiple of 64 after the tensor index",
            format!(
                "the index starts at byte {}; the header puts the data at byte {}",
                h.tensor_index_offset, h.data_offset
            ),
        ));
    }
    if h.data_offset > payload_end {
        return Err(past_end("APR data offset", 32, h.data_offset));
    }
    let gap = &bytes[metadata_end as usize..h.tensor_index_offset as usize];
    if let Some(i) = gap.iter().position(|&b| b != 0) {
        return Err(non_conforming(
            "APR v2 layout: the metadata JSON is padded with zero bytes",
            format!("byte {} after the {}-byte JSON is {:#04x}", metadata_end + i as u64, h.metadata_size, gap[i]),
        ));
    }
    Ok(())
}
