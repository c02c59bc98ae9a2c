//! The mixture-of-experts FFN, as llama.cpp's `build_moe_ffn`: router logits → softmax (f32 or
//! wider) → top-k → the k probabilities, renormalized when the contract says so → Σ_k w_k ·
//! expert_k(x), each expert a SwiGLU. Tokens are grouped by expert, so a selected expert's slabs
//! are read once per call and an unselected expert's bytes are never touched. Qwen2-MoE adds a
//! shared SwiGLU expert gated by sigmoid(ffn_gate_inp_shexp · x).

use std::collections::BTreeMap;

use super::weights::Linear;
use super::{Decoder, DecoderError, Mutation, Result};
use crate::backend::Backend;
use crate::trace::Probe;

/// One routed expert: its three slabs of the stacked tensors (or HF's per-expert tensors).
pub struct Expert<'m, B: Backend> {
    /// `[n_ff_exp, n_embd]`
    pub gate: B::Matrix<'m>,
    /// `[n_ff_exp, n_embd]`
    pub up: B::Matrix<'m>,
    /// `[n_embd, n_ff_exp]`
    pub down: B::Matrix<'m>,
    /// Bytes of the three slabs in the file: what running this expert reads.
    pub bytes: usize,
}

/// The shared expert of Qwen2-MoE, run for every token.
pub struct SharedExpert<'m, B: Backend> {
    /// `[1, n_embd]`: one gate logit per token.
    pub gate_inp: Linear<'m, B>,
    pub gate: Linear<'m, B>,
    pub up: Linear<'m, B>,
    pub down: Linear<'m, B>,
}

pub struct Moe<'m, B: Backend> {
    /// `[n_expert, n_embd]`
    pub router: Linear<'m, B>,
    pub experts: Vec<Expert<'m, B>>,
    pub shared: Option<SharedExpert<'m, B>>,
    /// Experts per token (k).
    pub n_used: usize,
    pub renormalize: bool,
}

/// Expert weight reads of a session: every time an expert runs, its slabs are read once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpertReads {
    /// Expert runs (each reads one expert's three slabs).
    pub slabs: u64,
    pub bytes: u64,
}

/// Expert choices imposed on (layer, position) in place of the router's top-k, for comparing
/// downstream stages with a reference that routed a near-tie the other way.
pub type ForcedRoutes = BTreeMap<(usize, usize), Vec<u32>>;

impl<'m, B: Backend> Decoder<'m, B> {
    /// The MoE FFN of layer `l` over `x` (`[n_tokens, n_embd]`, the first at position `pos`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn moe<P: Probe>(
        &self,
        moe: &Moe<'m, B>,
        x: &B::Tensor,
        l: usize,
        pos: usize,
        forced: &ForcedRoutes,
        reads: &mut ExpertReads,
        probe: &mut P,
    ) -> Result<B::Tensor> {
        let be = &self.backend;
        let at = Some(l);
        let k = moe.n_used;
        let n_expert = moe.experts.len();
        let logits = self.linear(&moe.router, x)?;
        let logits = self.emit(probe, "ffn_moe_logits", at, logits)?;
        let probs = self.emit(probe, "ffn_moe_probs", at, be.soft_max(&logits)?)?;
        let mut ids = be.top_k(&probs, k)?;
        for (t, row) in ids.chunks_exact_mut(k).enumerate() {
            if let Some(f) = forced.get(&(l, pos + t)) {
                let distinct = f.iter().enumerate().all(|(i, e)| !f[..i].contains(e));
                if f.len() != k || !distinct || f.iter().any(|&e| e as usize >= n_expert) {
                    return Err(DecoderError::Route { layer: l, pos: pos + t, ids: f.clone(), k, n_expert });
                }
                row.copy_from_slice(f);
            }
        }
        if P::ENABLED {
            let as_f32: Vec<f32> = ids.iter().map(|&e| e as f32).collect();
            probe.record("ffn_moe_topk", at, &[ids.len() / k, k], &as_f32);
        }
        let mut weights = self.emit(probe, "ffn_moe_weights", at, be.take_cols(&probs, &ids, k)?)?;
        if moe.renormalize {
            let normed = if self.mutations.contains(&Mutation::SkipRenormalize) {
                be.take_cols(&probs, &ids, k)?
            } else {
                be.normalize_rows(&weights)?
            };
            weights = self.emit(probe, "ffn_moe_weights_norm", at, normed)?;
        }

        // Slots (token t, choice j) = t·k + j, grouped by expert.
        let mut slots: Vec<Vec<u32>> = vec![Vec::new(); n_expert];
        for (s, &e) in ids.iter().enumerate() {
            slots[e as usize].push(s as u32);
        }
        let every = self.mutations.contains(&Mutation::ReadEveryExpert);
        let mut outputs = Vec::new();
        for (e, expert) in moe.experts.iter().enumerate() {
            if slots[e].is_empty() && !every {
                continue;
            }
            let rows: Vec<u32> = slots[e].iter().map(|&s| s / k as u32).collect();
            // The mutant runs unselected experts on every token and drops their output.
            let tokens = if slots[e].is_empty() { (0..be.dims(x).0 as u32).collect() } else { rows };
            let xe = be.take_rows(x, &tokens)?;
            let g = be.mat_mul(&expert.gate, None, &xe)?;
            let u = be.mat_mul(&expert.up, None, &xe)?;
            let y = be.mat_mul(&expert.down, None, &be.mul(&be.activation(self.forward.activation, &g)?, &u)?)?;
            reads.slabs += 1;
            reads.bytes += expert.bytes as u64;
            if !slots[e].is_empty() {
                outputs.push((e, y));
            }
        }
        let parts: Vec<(&[u32], &B::Tensor)> = outputs.iter().map(|(e, y)| (slots[*e].as_slice(), y)).collect();
        let mut out = self.emit(probe, "ffn_moe_out", at, be.moe_sum(&weights, &parts)?)?;

        if let Some(sh) = &moe.shared {
            let g = self.linear(&sh.gate, x)?;
            let u = self.linear(&sh.up, x)?;
            let h = be.mul(&be.activation(self.forward.activation, &g)?, &u)?;
            let y = self.emit(probe, "ffn_shexp", at, self.linear(&sh.down, &h)?)?;
            let gate = self.linear(&sh.gate_inp, x)?;
            let y = self.emit(probe, "ffn_shexp_out", at, be.sigmoid_gate(&y, &gate)?)?;
            out = be.add(&out, &y)?;
        }
        Ok(out)
    }
}
