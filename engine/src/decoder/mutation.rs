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
    /// The norm epsilon is 1e5 times the file's (1e-6 → 0.1).
    WrongNormEps,
    /// Rope θ is a hundredth of the file's (Qwen3-MoE run with llama's 1e4 instead of 1e6).
    WrongRopeTheta,
    /// The q/k/v (or fused qkv) biases are not added.
    DropQkvBias,
    /// The attention output projection is applied transposed (x · W instead of x · Wᵀ).
    TransposeAttnOutput,
    /// GELU's tanh approximation and the exact erf form are swapped.
    SwapGelu,
    /// Quantized weights are expanded to f32 when the model is loaded (upstream's OOM). Applied
    /// where the model is opened, with [`crate::quant::expand_to_f32`]; the decoder itself runs
    /// whatever model it is given.
    ExpandToF32,
}

impl Mutation {
    /// Every mutation a contract can name in `falsify:`, by that name (`NanAt` takes a stage and
    /// is only for tests).
    pub const NAMED: &[(&str, Mutation)] = &[
        ("swap_rope_style", Mutation::SwapRopeStyle),
        ("decode_position_off_by_one", Mutation::DecodePositionOffByOne),
        ("skip_qk_norm", Mutation::SkipQkNorm),
        ("read_every_expert", Mutation::ReadEveryExpert),
        ("skip_renormalize", Mutation::SkipRenormalize),
        ("wrong_norm_eps", Mutation::WrongNormEps),
        ("wrong_rope_theta", Mutation::WrongRopeTheta),
        ("drop_qkv_bias", Mutation::DropQkvBias),
        ("transpose_attn_output", Mutation::TransposeAttnOutput),
        ("swap_gelu", Mutation::SwapGelu),
        ("expand_to_f32", Mutation::ExpandToF32),
    ];

    /// The mutation called `name` in contracts.
    pub fn named(name: &str) -> Option<Mutation> {
        Self::NAMED.iter().find(|(n, _)| *n == name).map(|&(_, m)| m)
    }

    /// Its name in contracts (`nan_at` for the test-only NaN injection).
    pub fn name(&self) -> &'static str {
        Self::NAMED.iter().find(|(_, m)| m == self).map_or("nan_at", |(n, _)| n)
    }
}
