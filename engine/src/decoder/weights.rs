//! The decoder's weights, gathered from a binding: every role of the contract resolved to the
//! file's tensor (or the tensor it is tied to), borrowed from the memory map and handed to the
//! backend. Quantized matrices stay quantized.

use super::DecoderError;
use crate::backend::{Backend, HostWeight};
use crate::contract::bind::TensorStatus;
use crate::contract::schema::{NormKind, QkvLayout};
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
    /// SwiGLU only.
    pub ffn_gate: Option<Linear<'m, B>>,
    pub ffn_up: Linear<'m, B>,
    pub ffn_down: Linear<'m, B>,
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
}

/// Finds tensors for roles through the binding.
pub struct Gather<'a, 'm, B: Backend> {
    pub backend: &'a B,
    pub contract: &'a Contract,
    pub binding: &'a Binding,
    pub model: &'m Model,
}

impl<'m, B: Backend> Gather<'_, 'm, B> {
    /// The file's tensor for `role` at `layer`, following `tied_to`; `None` when the optional
    /// role is absent.
    fn host(&self, key: &str, layer: Option<usize>) -> Result<Option<HostWeight<'m>>, DecoderError> {
        let role = Role::parse(key).ok_or_else(|| DecoderError::Role { role: key.to_owned(), problem: "unknown" })?;
        let Some(bound) = self.binding.tensors.iter().find(|t| t.role == role && t.layer == layer) else {
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
        Ok(Linear {
            w: self.matrix(&format!("{base}.weight"), layer)?,
            b: self.vector(&format!("{base}.bias"), layer)?,
        })
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

    pub fn weights(&self, n_layer: usize) -> Result<Weights<'m, B>, DecoderError> {
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
                q_norm: if f.qk_norm { self.vector("attn_q_norm.weight", at)? } else { None },
                k_norm: if f.qk_norm { self.vector("attn_k_norm.weight", at)? } else { None },
                attn_output: self.linear("attn_output", at)?,
                ffn_norm: if f.parallel_residual { None } else { Some(self.norm("ffn_norm", at, f.norm)?) },
                ffn_gate: if f.ffn == crate::contract::schema::FfnKind::Swiglu {
                    Some(self.linear("ffn_gate", at)?)
                } else {
                    None
                },
                ffn_up: self.linear("ffn_up", at)?,
                ffn_down: self.linear("ffn_down", at)?,
            });
        }
        Ok(Weights {
            token_embd: self.matrix("token_embd.weight", None)?,
            position_embd: if f.learned_positions { Some(self.matrix("position_embd.weight", None)?) } else { None },
            output_norm: self.norm("output_norm", None, f.norm)?,
            output: self.linear("output", None)?,
            layers,
        })
    }
}
