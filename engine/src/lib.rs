//! Assay's inference engine. This crate never depends on the harness.
//!
//! - [`format`]: GGUF, SafeTensors and APR readers over memory maps, into one [`Model`] view;
//! - [`contract`]: the YAML contract schema, its expression language, and binding a contract to
//!   a model (hyperparameters and tensor roles);
//! - [`dtype`]: element types and their block geometry.

pub mod backend;
pub mod contract;
pub mod decoder;
pub mod dtype;
pub mod error;
pub mod format;
pub mod memory;
pub mod model;
pub mod ops;
pub mod quant;
pub mod trace;

pub use dtype::DType;
pub use error::{FormatError, FormatErrorKind};
pub use model::{Format, MetaArray, MetaValue, Metadata, Model, TensorInfo, TokenizerInfo, UnsupportedDType};
