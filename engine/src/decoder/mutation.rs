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
    /// Stage `stage` of `layer` outputs NaN (and passes it on): the first non-finite stage
    /// must be named.
    NanAt { stage: &'static str, layer: usize },
    /// The per-head q/k RMSNorm is skipped (an upstream Qwen3-MoE bug): attention and then
    /// the router see other inputs.
    SkipQkNorm,
    /// Every expert runs for every token, the unselected ones' outputs dropped: the output is
    /// unchanged, only the expert bytes read per token betray it.
    ReadEveryExpert,
    /// The top-k weights are passed on as `ffn_moe_weights_norm` without renormalization.
    SkipRenormalize,
}
