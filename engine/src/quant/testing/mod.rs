//! Property-test support shared by the block files.

pub mod blocks32;
pub mod k_quants;
