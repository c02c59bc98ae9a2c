//! End-to-end tests across crates: every contract against conforming and broken models in
//! every format, through the harness library.

mod contracts;
mod decoder;
mod falsify;
mod golden;
mod moe;
mod ops;
