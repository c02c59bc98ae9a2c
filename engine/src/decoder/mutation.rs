//! Deliberate defects the decoder can be built with, so that every check can be shown to fail
//! when the thing it guards breaks (a check that survives its mutant is a defect in the check).

/// One defect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Rope pairs adjacent values where the weights need halves, or the reverse.
    SwapRopeStyle,
    /// Tokens after the first call of a session sit one position too far (a KV-cache
    /// bookkeeping bug): breaks prefill + decode = one pass.
    DecodePositionOffByOne,
    /// The attention norm of `layer` outputs NaN: the first non-finite stage must be named.
    NanAfterAttnNorm { layer: usize },
}
