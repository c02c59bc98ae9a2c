//! The vocabulary contracts are written in: tensor roles (GGUF's tensor names) and trace stage
//! ids (llama.cpp's graph names). A contract may only use words the engine knows, so a typo is a
//! load error with a line number, not a tensor silently never looked up.

use std::fmt;

/// Tensors outside the blocks.
const GLOBAL_BASES: &[&str] = &["token_embd", "position_embd", "output_norm", "output", "rope_freqs"];

/// Tensors of every block (`blk.{L}.` prefix in GGUF).
const BLOCK_BASES: &[&str] = &[
    "attn_norm",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_qkv",
    "attn_output",
    "attn_q_norm",
    "attn_k_norm",
    "ffn_norm",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
    "ffn_gate_inp",
    "ffn_gate_exps",
    "ffn_up_exps",
    "ffn_down_exps",
    "ffn_gate_inp_shexp",
    "ffn_gate_shexp",
    "ffn_up_shexp",
    "ffn_down_shexp",
];

/// Stage ids the decoder traces, named as llama.cpp's `cb(cur, "name", il)` names graph nodes.
/// Per-layer stages get `-{L}` appended in traces (`Qcur-0`).
pub const STAGES: &[&str] = &[
    "inp_embd",
    "inp_pos_embd",
    "attn_norm",
    "Qcur",
    "Kcur",
    "Vcur",
    "Qcur_normed",
    "Kcur_normed",
    "Qcur_rope",
    "Kcur_rope",
    "kq_soft_max",
    "kqv_out",
    "attn_out",
    "ffn_inp",
    "ffn_norm",
    "ffn_gate",
    "ffn_up",
    "ffn_act",
    "ffn_out",
    "ffn_moe_logits",
    "ffn_moe_probs",
    "ffn_moe_topk",
    "ffn_moe_weights",
    "ffn_moe_weights_norm",
    "ffn_moe_out",
    "ffn_shexp",
    "ffn_shexp_out",
    "l_out",
    "result_norm",
    "result_output",
];

/// The invariants every numeric run checks, by id; a contract's `invariants:` may name them as
/// the check its mutation must break.
pub const RUN_INVARIANTS: &[&str] = &[
    "LOGITS-FINITE",
    "KV-EQUALS-ONE-PASS",
    "ROUTING-MATCHES-GOLDEN",
    "ROUTE-WEIGHTS-SUM-TO-ONE",
    "EXPERT-BYTES-PER-TOKEN",
    "WEIGHTS-STAY-QUANTIZED",
];

/// Which part of a tensor role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    Weight,
    Bias,
}

/// A tensor role: a GGUF tensor name without its block prefix, e.g. `attn_q.weight`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role {
    pub base: &'static str,
    pub part: Part,
    /// Repeated in every block (`blk.{L}.…`).
    pub per_layer: bool,
}

impl Role {
    /// Parses `attn_q.weight`; `None` if the base or the part is not in the vocabulary.
    pub fn parse(key: &str) -> Option<Role> {
        let (base, part) = key.rsplit_once('.')?;
        let part = match part {
            "weight" => Part::Weight,
            "bias" => Part::Bias,
            _ => return None,
        };
        if let Some(&b) = GLOBAL_BASES.iter().find(|&&b| b == base) {
            return Some(Role { base: b, part, per_layer: false });
        }
        let b = BLOCK_BASES.iter().find(|&&b| b == base)?;
        Some(Role { base: b, part, per_layer: true })
    }

    pub const fn weight(base: &'static str, per_layer: bool) -> Role {
        Role { base, part: Part::Weight, per_layer }
    }

    /// The GGUF tensor name for `layer` (ignored for global roles).
    pub fn gguf_name(&self, layer: usize) -> String {
        if self.per_layer { format!("blk.{layer}.{self}") } else { self.to_string() }
    }

    /// Expert tensors stack every expert along their outermost dimension.
    pub fn is_expert_stack(&self) -> bool {
        self.base.ends_with("_exps")
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = match self.part {
            Part::Weight => "weight",
            Part::Bias => "bias",
        };
        write!(f, "{}.{part}", self.base)
    }
}

/// All role keys the vocabulary knows, for error messages.
pub fn role_bases() -> impl Iterator<Item = &'static str> {
    GLOBAL_BASES.iter().chain(BLOCK_BASES).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_name() {
        let r = Role::parse("attn_q.weight").unwrap();
        assert!(r.per_layer);
        assert_eq!(r.gguf_name(3), "blk.3.attn_q.weight");
        let r = Role::parse("output.bias").unwrap();
        assert_eq!(r.gguf_name(3), "output.bias");
        assert!(Role::parse("attn_q.scale").is_none());
        assert!(Role::parse("attn_qq.weight").is_none());
        assert!(Role::parse("blk.0.attn_q.weight").is_none());
        assert!(Role::parse("ffn_up_exps.weight").unwrap().is_expert_stack());
    }
}
