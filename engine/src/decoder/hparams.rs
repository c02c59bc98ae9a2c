//! The hyperparameters the decoder reads, by the engine names contracts declare them under.

use super::DecoderError;
use crate::contract::Binding;
use crate::contract::expr::Num;
use crate::contract::schema::{FfnKind, Forward};

#[derive(Clone, Debug, PartialEq)]
pub struct Hparams {
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    /// Rotated values per head (0 without rope).
    pub n_rot: usize,
    pub rope_theta: f64,
    pub norm_eps: f32,
    /// Learned position embeddings available (`n_ctx_train`; 0 without them).
    pub n_positions: usize,
    /// (n_expert, n_expert_used) of a mixture-of-experts FFN.
    pub experts: Option<(usize, usize)>,
}

impl Hparams {
    pub fn from_binding(b: &Binding, forward: &Forward) -> Result<Self, DecoderError> {
        let get = |name: &str| {
            b.hparam(name).ok_or_else(|| DecoderError::Hparam {
                name: name.to_owned(),
                problem: format!("the decoder needs it and contract `{}` gives it no value", b.contract),
            })
        };
        let int = |name: &str| -> Result<usize, DecoderError> {
            match get(name)? {
                Num::Int(i) if i > 0 => Ok(i as usize),
                other => Err(DecoderError::Hparam {
                    name: name.to_owned(),
                    problem: format!("{other} is not a positive integer"),
                }),
            }
        };
        let float = |name: &str| -> Result<f64, DecoderError> {
            match get(name)? {
                Num::Float(f) if f.is_finite() && f > 0.0 => Ok(f),
                Num::Int(i) if i > 0 => Ok(i as f64),
                other => Err(DecoderError::Hparam {
                    name: name.to_owned(),
                    problem: format!("{other} is not a positive number"),
                }),
            }
        };
        let has_rope = forward.rope.is_some();
        let h = Hparams {
            n_vocab: int("n_vocab")?,
            n_embd: int("n_embd")?,
            n_layer: int("n_layer")?,
            n_head: int("n_head")?,
            n_head_kv: int("n_head_kv")?,
            head_dim: int("head_dim")?,
            n_rot: if has_rope { int("n_rot")? } else { 0 },
            rope_theta: if has_rope { float("rope_theta")? } else { 0.0 },
            norm_eps: float("norm_eps")? as f32,
            n_positions: if forward.learned_positions { int("n_ctx_train")? } else { 0 },
            experts: if forward.ffn == FfnKind::Moe { Some((int("n_expert")?, int("n_expert_used")?)) } else { None },
        };
        let bad = |name: &str, problem: String| Err(DecoderError::Hparam { name: name.into(), problem });
        if let Some((n_expert, n_used)) = h.experts
            && n_used > n_expert
        {
            return bad("n_expert_used", format!("{n_used} experts per token out of {n_expert}"));
        }
        if !h.n_head.is_multiple_of(h.n_head_kv) {
            return bad("n_head_kv", format!("{} query heads do not share {} kv heads evenly", h.n_head, h.n_head_kv));
        }
        if has_rope && (h.n_rot > h.head_dim || !h.n_rot.is_multiple_of(2)) {
            return bad(
                "n_rot",
                format!("{} rotated values in heads of {}: must be even and ≤ head_dim", h.n_rot, h.head_dim),
            );
        }
        Ok(h)
    }
}
