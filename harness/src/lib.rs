//! The `harness` binary's library: contract sets, inspection, verification and their
//! renderings. The engine does the reading and binding; this crate decides what to check,
//! what to print and how the process exits.

pub mod atomic;
pub mod bench;
pub mod cli;
pub mod compare;
pub mod contracts;
pub mod exit;
pub mod falsify;
pub mod golden;
pub mod inspect;
pub mod measure;
pub mod numeric;
pub mod parity;
pub mod progress;
mod render;
pub mod report;
pub mod routing;
pub mod schema;
pub mod synth;
pub mod trace;
pub mod verify;
