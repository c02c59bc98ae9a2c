//! The 64-byte header and the two CRCs that guard the file.

use super::{FOOTER_LEN, HEADER_LEN, MAGIC, VERSION_MAJOR, crc32};
use crate::error::FormatErrorKind;
use crate::format::cursor::Cursor;

/// Byte ranges of the header that the header CRC covers: everything but the CRC field itself.
pub(crate) const HEADER_CRC_AT: usize = 40;
pub(crate) const RESERVED: std::ops::Range<usize> = 44..64;

/// The header fields, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub major: u8,
    pub minor: u8,
    pub flags: u16,
    pub tensor_count: u32,
    pub metadata_offset: u64,
    /// Unpadded length of the JSON.
    pub metadata_size: u32,
    pub tensor_index_offset: u64,
    pub data_offset: u64,
    pub header_crc: u32,
}

impl Header {
    /// Reads the fields and checks what must hold before anything else is trusted: length,
    /// magic and major version. The CRCs are checked separately, so a file from a deviating
    /// writer can be diagnosed before a bare CRC error hides what it is.
    pub fn read(bytes: &[u8]) -> Result<Header, FormatErrorKind> {
        let mut c = Cursor::new(bytes);
        let magic = c.take(4, &|| "APR magic".into())?;
        if magic != MAGIC {
            let found = magic.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
            return Err(FormatErrorKind::UnknownFormat { found });
        }
        // The whole header must be there before any field is believed.
        if (bytes.len() as u64) < HEADER_LEN {
            return Err(FormatErrorKind::Truncated {
                what: "APR header".into(),
                offset: 0,
                need: HEADER_LEN,
                have: bytes.len() as u64,
            });
        }
        let major = c.u8(&|| "APR version major".into())?;
        let minor = c.u8(&|| "APR version minor".into())?;
        if major != VERSION_MAJOR {
            return Err(FormatErrorKind::UnsupportedVersion {
                format: "APR",
                found: format!("{major}.{minor}"),
                supported: "2.x",
            });
        }
        Ok(Header {
            major,
            minor,
            flags: c.u16(&|| "APR flags".into())?,
            tensor_count: c.u32(&|| "APR tensor count".into())?,
            metadata_offset: c.u64(&|| "APR metadata offset".into())?,
            metadata_size: c.u32(&|| "APR metadata size".into())?,
            tensor_index_offset: c.u64(&|| "APR tensor index offset".into())?,
            data_offset: c.u64(&|| "APR data offset".into())?,
            header_crc: c.u32(&|| "APR header CRC".into())?,
        })
    }

    /// The CRC of bytes [0,40) ‖ [44,64).
    pub fn computed_crc(bytes: &[u8]) -> u32 {
        match bytes.get(..HEADER_LEN as usize) {
            Some(h) => crc32(&[&h[..HEADER_CRC_AT], &h[RESERVED]]),
            None => 0,
        }
    }

    pub fn verify_crc(&self, bytes: &[u8]) -> Result<(), FormatErrorKind> {
        let computed = Self::computed_crc(bytes);
        if computed != self.header_crc {
            return Err(FormatErrorKind::BadCrc { what: "APR header", stored: self.header_crc, computed });
        }
        Ok(())
    }

    /// v2.0 reserves bytes [44,64) as zero; later minors may use them.
    pub fn check_reserved(&self, bytes: &[u8]) -> Result<(), FormatErrorKind> {
        let reserved = bytes.get(RESERVED).unwrap_or(&[]);
        if self.minor == 0
            && let Some(i) = reserved.iter().position(|&b| b != 0)
        {
            return Err(FormatErrorKind::NonConforming {
                rule: "APR v2.0 header bytes 44..64 are reserved and must be zero".into(),
                diagnosis: format!("byte {} is {:#04x}", RESERVED.start + i, reserved[i]),
            });
        }
        Ok(())
    }
}

/// What the last four bytes say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Footer {
    Ok,
    Mismatch {
        stored: u32,
        computed: u32,
    },
    /// The file is too short to hold a header and a footer.
    Missing,
}

impl Footer {
    /// Checks the footer: CRC32 of every byte before the last four. One pass over the file.
    pub fn check(bytes: &[u8]) -> Footer {
        let len = bytes.len() as u64;
        if len < HEADER_LEN + FOOTER_LEN {
            return Footer::Missing;
        }
        let (body, tail) = bytes.split_at(bytes.len() - FOOTER_LEN as usize);
        let mut stored = [0u8; 4];
        stored.copy_from_slice(tail);
        let stored = u32::from_le_bytes(stored);
        let computed = crc32(&[body]);
        if stored == computed { Footer::Ok } else { Footer::Mismatch { stored, computed } }
    }

    pub fn into_result(self, file_len: u64) -> Result<(), FormatErrorKind> {
        match self {
            Footer::Ok => Ok(()),
            Footer::Mismatch { stored, computed } => {
                Err(FormatErrorKind::BadCrc { what: "APR footer", stored, computed })
            }
            Footer::Missing => Err(FormatErrorKind::Truncated {
                what: "APR header and footer".into(),
                offset: 0,
                need: HEADER_LEN + FOOTER_LEN,
                have: file_len,
            }),
        }
    }
}
