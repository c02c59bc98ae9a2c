//! The decoder's weights, gathered from a binding: every role of the contract resolved to the
//! file's tensor (or the tensor it is tied to), borrowed from the memory map and handed to the
//! backend. Quantized matrices stay quantized.

use super::moe::{Expert, Moe, SharedExpert};
use super::{DecoderError, Mutation};
use crate::backend::{Backend, HostWeight};
use crate::contract::bind::TensorStatus;
use crate::contract::schema::{FfnKind, NormKind, QkvLayout};
use crate::contract::vocab::Role;
use crate::contract::{Binding, Contract, Scheme};
use crate::model::Model;
use crate::quant::WeightRows;

/// A projection: weight and optional bias.
pub struct Linear<'m, B: Backend> {
    pub w: B::Matrix<'m>,
    pub b: Option<B::Vector>,
}

/// A norm's gain and, for LayerNorm, its bias.
pub struct Norm<B: Backend> {
    pub w: B::Vector,
    pub b: Option<B::Vector>,
}

pub enum Qkv<'m, B: Backend> {
    Separate {
        q: Linear<'m, B>,
        k: Linear<'m, B>,
        v: Linear<'m, B>,
    },
    /// One projection whose outputs are q, k, v side by side.
    Fused(Linear<'m, B>),
}

pub struct Layer<'m, B: Backend> {
    pub attn_norm: Norm<B>,
    pub qkv: Qkv<'m, B>,
    /// Per-head RMSNorm gains (`[head_dim]`), Qwen3.
    pub q_norm: Option<B::Vector>,
    pub k_norm: Option<B::Vector>,
    pub attn_output: Linear<'m, B>,
    /// Absent with a parallel residual (one norm feeds both branches).
    pub ffn_norm: Option<Norm<B>>,
    pub ffn: Ffn<'m, B>,
}

pub enum Ffn<'m, B: Backend> {
    Dense {
        /// SwiGLU only.
        gate: Option<Linear<'m, B>>,
        up: Linear<'m, B>,
        down: Linear<'m, B>,
    },
    Moe(Moe<'m, B>),
}

pub struct Weights<'m, B: Backend> {
    /// `[n_vocab, n_embd]`
    pub token_embd: B::Matrix<'m>,
    /// `[n_positions, n_embd]`, learned positions only.
    pub position_embd: Option<B::Matrix<'m>>,
    pub output_norm: Norm<B>,
    /// `[n_vocab, n_embd]` (the token embedding when tied), with the optional output bias.
    pub output: Linear<'m, B>,
    pub layers: Vec<Layer<'m, B>>,
    /// The widest dimension of any weight (a row or a column; an expert stack's count aside).
    pub widest: usize,
}

/// Finds tensors for roles through the binding.
pub struct Gather<'a, 'm, B: Backend> {
    pub backend: &'a B,
    pub contract: &'a Contract,
    pub binding: &'a Binding,
    pub model: &'m Model,
    pub mutations: &'a [Mutation],
}

impl<'m, B: Backend> Gather<'_, 'm, B> {
    /// The file's tensor for `role` at `layer`, following `tied_to`; `None` when the optional
    /// role is absent.
    fn host(&self, key: &str, layer: Option<usize>) -> Result<Option<HostWeight<'m>>, DecoderError> {
        self.host_expert(key, layer, None)
    }

    /// [`Gather::host`] for one expert's tensor of HF's per-expert roles (`expert: Some`).
    fn host_expert(
        &self,
        key: &str,
        layer: Option<usize>,
        expert: Option<usize>,
    ) -> Result<Option<HostWeight<'m>>, DecoderError> {
        let role = Role::parse(key).ok_or_else(|| DecoderError::Role { role: key.to_owned(), problem: "unknown" })?;
        let Some(bound) =
            self.binding.tensors.iter().find(|t| t.role == role && t.layer == layer && t.expert == expert)
        else {
            return Ok(None); // the contract has no such role
        };
        let (role, name) = match bound.status {
            TensorStatus::Ok => (role, bound.name.clone()),
            TensorStatus::Absent => return Ok(None),
            TensorStatus::Tied => {
                let target = self.contract.role(role).and_then(|d| d.tied_to).expect("tied roles name a target");
                let t = self.binding.tensors.iter().find(|t| t.role == target && t.layer == layer);
                match t {
                    Some(t) if t.status == TensorStatus::Ok => (target, t.name.clone()),
                    _ => return Err(DecoderError::Role { role: key.to_owned(), problem: "tied to a missing tensor" }),
                }
            }
            TensorStatus::Violation => {
                return Err(DecoderError::Role { role: key.to_owned(), problem: "violates the contract" });
            }
        };
        let t = self.model.tensor(&name).expect("bound tensors exist in the model");
        let transposed = self.binding.scheme == Scheme::Hf
            && self.contract.role(role).is_some_and(|d| d.spec.hf_transposed)
            && t.shape.len() == 2;
        let rows = WeightRows::new(t, self.model.tensor_data(t))
            .map_err(|e| DecoderError::Weight { tensor: name.clone(), message: e.to_string() })?;
        Ok(Some(HostWeight { rows, transposed }))
    }

    fn need(&self, key: &str, layer: Option<usize>) -> Result<HostWeight<'m>, DecoderError> {
        self.host(key, layer)?.ok_or_else(|| DecoderError::Role { role: key.to_owned(), problem: "missing" })
    }

    fn matrix(&self, key: &str, layer: Option<usize>) -> Result<B::Matrix<'m>, DecoderError> {
        Ok(self.backend.load_matrix(self.need(key, layer)?)?)
    }

    fn vector(&self, key: &str, layer: Option<usize>) -> Result<Option<B::Vector>, DecoderError> {
        self.host(key, layer)?.map(|w| self.backend.load_vector(w)).transpose().map_err(Into::into)
    }

    fn linear(&self, base: &str, layer: Option<usize>) -> Result<Linear<'m, B>, DecoderError> {
        let mut w = self.need(&format!("{base}.weight"), layer)?;
        if base == "attn_output" && self.mutations.contains(&Mutation::TransposeAttnOutput) {
            w.transposed = !w.transposed;
        }
        Ok(Linear { w: self.backend.load_matrix(w)?, b: self.vector(&format!("{base}.bias"), layer)? })
    }

    /// A role the architecture requires, as a vector: absent is an error, never a skipped op
    /// (a model whose q/k norms went missing must not run without them).
    fn need_vector(&self, key: &str, layer: Option<usize>) -> Result<B::Vector, DecoderError> {
        Ok(self.backend.load_vector(self.need(key, layer)?)?)
    }

    /// Expert `e`'s matrix of a stacked `[n_expert, rows, cols]` role: a slab of the file's
    /// stacked tensor, or HF's own per-expert tensor. Borrowed, not read.
    fn expert_slabs(&self, key: &str, layer: usize, n_expert: usize) -> Result<Vec<HostWeight<'m>>, DecoderError> {
        let at = Some(layer);
        if self.binding.tensors.iter().any(|t| t.role.to_string() == key && t.layer == at && t.expert.is_some()) {
            return (0..n_expert)
                .map(|e| {
                    self.host_expert(key, at, Some(e))?
                        .ok_or_else(|| DecoderError::Role { role: format!("{key} (expert {e})"), problem: "missing" })
                })
                .collect();
        }
        let stacked = self.need(key, at)?;
        let n = stacked.rows.n_rows;
        if stacked.transposed || n_expert == 0 || !n.is_multiple_of(n_expert) {
            return Err(DecoderError::Weight {
                tensor: stacked.rows.name.to_owned(),
                message: format!("{n} rows do not stack {n_expert} experts"),
            });
        }
        let per = n / n_expert;
        Ok((0..n_expert).map(|e| HostWeight { rows: stacked.rows.slab(e * per, per), transposed: false }).collect())
    }

    fn moe(&self, layer: usize, n_expert: usize, n_used: usize) -> Result<Moe<'m, B>, DecoderError> {
        let f = &self.contract.doc.forward;
        let spec = f.moe.as_ref().ok_or_else(|| DecoderError::Role {
            role: "forward.moe".into(),
            problem: "missing (an `ffn: moe` contract declares its routing)",
        })?;
        let at = Some(layer);
        let gate = self.expert_slabs("ffn_gate_exps.weight", layer, n_expert)?;
        let up = self.expert_slabs("ffn_up_exps.weight", layer, n_expert)?;
        let down = self.expert_slabs("ffn_down_exps.weight", layer, n_expert)?;
        let experts = gate
            .into_iter()
            .zip(up)
            .zip(down)
            .map(|((g, u), d)| {
                Ok(Expert {
                    bytes: g.rows.n_bytes() + u.rows.n_bytes() + d.rows.n_bytes(),
                    gate: self.backend.load_matrix(g)?,
                    up: self.backend.load_matrix(u)?,
                    down: self.backend.load_matrix(d)?,
                })
            })
            .collect::<Result<Vec<_>, DecoderError>>()?;
        let shared = if spec.shared_expert {
            Some(SharedExpert {
                gate_inp: self.linear("ffn_gate_inp_shexp", at)?,
                gate: self.linear("ffn_gate_shexp", at)?,
                up: self.linear("ffn_up_shexp", at)?,
                down: self.linear("ffn_down_shexp", at)?,
            })
        } else {
            None
        };
        Ok(Moe { router: self.linear("ffn_gate_inp", at)?, experts, shared, n_used, renormalize: spec.renormalize })
    }

    fn norm(&self, base: &str, layer: Option<usize>, kind: NormKind) -> Result<Norm<B>, DecoderError> {
        let w = self
            .vector(&format!("{base}.weight"), layer)?
            .ok_or_else(|| DecoderError::Role { role: format!("{base}.weight"), problem: "missing" })?;
        let b = self.vector(&format!("{base}.bias"), layer)?;
        if kind == NormKind::Layer && b.is_none() {
            return Err(DecoderError::Role { role: format!("{base}.bias"), problem: "missing (LayerNorm has a bias)" });
        }
        Ok(Norm { w, b })
    }

    /// Every weight; `experts` is (n_expert, n_expert_used) for a MoE contract.
    pub fn weights(&self, n_layer: usize, experts: Option<(usize, usize)>) -> Result<Weights<'m, B>, DecoderError> {
        let f = &self.contract.doc.forward;
        let mut layers = Vec::with_capacity(n_layer);
        for l in 0..n_layer {
            let at = Some(l);
            let qkv = match f.qkv {
                QkvLayout::Separate => Qkv::Separate {
                    q: self.linear("attn_q", at)?,
                    k: self.linear("attn_k", at)?,
                    v: self.linear("attn_v", at)?,
                },
                QkvLayout::Fused => Qkv::Fused(self.linear("attn_qkv", at)?),
            };
            layers.push(Layer {
                attn_norm: self.norm("attn_norm", at, f.norm)?,
                qkv,
                q_norm: if f.qk_norm { Some(self.need_vector("attn_q_norm.weight", at)?) } else { None },
                k_norm: if f.qk_norm { Some(self.need_vector("attn_k_norm.weight", at)?) } else { None },
                attn_output: self.linear("attn_output", at)?,
                ffn_norm: if f.parallel_residual { None } else { Some(self.norm("ffn_norm", at, f.norm)?) },
                ffn: match (f.ffn, experts) {
                    (FfnKind::Moe, Some((n_expert, n_used))) => Ffn::Moe(self.moe(l, n_expert, n_used)?),
                    (FfnKind::Moe, None) => unreachable!("MoE hyperparameters are read for MoE contracts"),
                    (kind, _) => Ffn::Dense {
                        gate: if kind == FfnKind::Swiglu { Some(self.linear("ffn_gate", at)?) } else { None },
                        up: self.linear("ffn_up", at)?,
                        down: self.linear("ffn_down", at)?,
                    },
                },
            });
        }
        Ok(Weights {
            token_embd: self.matrix("token_embd.weight", None)?,
            position_embd: if f.learned_positions { Some(self.matrix("position_embd.weight", None)?) } else { None },
            output_norm: self.norm("output_norm", None, f.norm)?,
            output: self.linear("output", None)?,
            layers,
            widest: self
                .binding
                .tensors
                .iter()
                .filter_map(|t| t.found_shape.as_deref())
                .flat_map(|s| s.iter().rev().take(2).map(|&d| d as usize))
                .max()
                .unwrap_or(0),
        })
    }
}
