//! Deliberate defects the decoder can be built with, so that every check can be shown to fail
//! when the thing it guards breaks (a check that survives its mutant is a defect in the check).

/// One defect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Rope pairs adjacent values where the weights need halves, or the reverse.
    SwapRopeStyle,
}
