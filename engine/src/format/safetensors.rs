use std::path::Path;
use memmap2::Mmap;
use crate::error::FormatError;
use crate::model::Model;
pub(crate) fn open_dir(_p: &Path) -> Result<Model, FormatError> { todo!() }
pub(crate) fn open_single(_p: &Path, _m: Mmap) -> Result<Model, FormatError> { todo!() }
pub(crate) fn open_index(_p: &Path) -> Result<Model, FormatError> { todo!() }
