//! Reference implementations of the forward pass's ops: scalar, f64 accumulation, obviously
//! correct. The `reference` backend is built from these, and every faster backend is compared
//! with them. One op per file, with its preconditions and tests.
//!
//! Tensors are row-major f32 slices with their shape in the doc comment; every function takes
//! its output by `&mut` so callers choose where it lives.

pub mod activation;
pub mod attention;
pub mod kv_cache;
pub mod moe;
pub mod norm;
pub mod rope;

pub use crate::contract::schema::RopeStyle;
