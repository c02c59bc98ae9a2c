//! A bounds-checked little-endian reader over a byte slice. Every read says what it was reading,
//! so a truncated file reports `truncated: tensor count at byte 8 needs 8 bytes, …`.

use crate::error::FormatErrorKind;

pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub fn at(bytes: &'a [u8], pos: usize) -> Self {
        Self { bytes, pos }
    }

    pub fn pos(&self) -> u64 {
        self.pos as u64
    }

    pub fn remaining(&self) -> u64 {
        self.bytes.len().saturating_sub(self.pos) as u64
    }

    /// The next `n` bytes, or a `Truncated` error naming `what`.
    pub fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], FormatErrorKind> {
        if n > self.remaining() {
            return Err(FormatErrorKind::Truncated {
                what: what(),
                offset: self.pos(),
                need: n,
                have: self.remaining(),
            });
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], FormatErrorKind> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    pub fn u8(&mut self, what: &dyn Fn() -> String) -> Result<u8, FormatErrorKind> {
        Ok(self.array::<1>(what)?[0])
    }
    pub fn u16(&mut self, what: &dyn Fn() -> String) -> Result<u16, FormatErrorKind> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, FormatErrorKind> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, FormatErrorKind> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// `n` bytes of UTF-8.
    pub fn str(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a str, FormatErrorKind> {
        let offset = self.pos();
        let bytes = self.take(n, what)?;
        std::str::from_utf8(bytes).map_err(|_| FormatErrorKind::InvalidUtf8 { what: what(), offset })
    }
}

/// A count read from the file, checked against a cap and against what the remaining bytes could
/// possibly hold (`min_item_bytes` each), before anything is allocated from it.
pub(crate) fn checked_count(
    count: u64,
    max: u64,
    min_item_bytes: u64,
    cursor: &Cursor<'_>,
    offset: u64,
    what: &dyn Fn() -> String,
) -> Result<usize, FormatErrorKind> {
    if count > max {
        return Err(FormatErrorKind::TooLarge { what: what(), offset, found: count, max });
    }
    let fits = cursor.remaining() / min_item_bytes.max(1);
    if count > fits {
        return Err(FormatErrorKind::Truncated {
            what: what(),
            offset,
            need: count.saturating_mul(min_item_bytes),
            have: cursor.remaining(),
        });
    }
    Ok(count as usize)
}
