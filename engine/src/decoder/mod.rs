//! The one generic decoder. Everything architecture-specific comes from the contract's `forward:`
//! block and the binding (which tensors, which rope style for this file's naming scheme); the
//! ops come from a [`Backend`]. Stages are reported to a [`Probe`] under llama.cpp's graph names.

mod hparams;
mod moe;
mod mutation;
mod weights;

use crate::backend::{AttnShape, Backend, BackendError, HeldWeight, RopeParams};
use crate::contract::schema::{Activation, Forward, NormKind, RopeStyle};
use crate::contract::{Binding, Contract};
use crate::model::Model;
use crate::ops::kv_cache::ContextFull;
use crate::trace::Probe;

pub use hparams::Hparams;
pub use moe::{ExpertReads, ForcedRoutes};
pub use mutation::Mutation;
use weights::{Ffn, Gather, Layer, Linear, Norm, Qkv, Weights};

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DecoderError {
    #[error(
        "the model violates contract `{contract}` ({count} violation(s), first: {first}); `harness verify` lists them"
    )]
    Binding { contract: String, count: usize, first: String },
    #[error("hyperparameter `{name}`: {problem}")]
    Hparam { name: String, problem: String },
    #[error("tensor role `{role}`: {problem}")]
    Role { role: String, problem: &'static str },
    #[error("tensor `{tensor}`: {message}")]
    Weight { tensor: String, message: String },
    #[error("the decoder does not implement {0}")]
    NotImplemented(String),
    #[error("token id {id} at index {index} is outside the vocabulary of {n_vocab}")]
    TokenOutOfRange { id: u32, index: usize, n_vocab: usize },
    #[error("position {pos} is beyond the {n_positions} learned position embeddings")]
    PositionOutOfRange { pos: usize, n_positions: usize },
    #[error("no tokens to run")]
    Empty,
    #[error("forced route {ids:?} at layer {layer}, position {pos}: expected {k} distinct experts below {n_expert}")]
    Route { layer: usize, pos: usize, ids: Vec<u32>, k: usize, n_expert: usize },
    #[error(transparent)]
    ContextFull(#[from] ContextFull),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

pub type Result<T, E = DecoderError> = std::result::Result<T, E>;

/// A model ready to run on backend `B`.
pub struct Decoder<'m, B: Backend> {
    backend: B,
    pub hparams: Hparams,
    forward: Forward,
    /// The rope style this file's weights need (after any mutation).
    rope: Option<RopeStyle>,
    mutations: Vec<Mutation>,
    weights: Weights<'m, B>,
}

/// One sequence's state: its KV cache and the next position.
pub struct Session<B: Backend> {
    cache: B::Cache,
    pos: usize,
    n_ctx: usize,
    forced: ForcedRoutes,
    reads: ExpertReads,
}

impl<B: Backend> Session<B> {
    /// Positions used so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Expert weights read by this session's forward passes so far.
    pub fn expert_reads(&self) -> ExpertReads {
        self.reads
    }

    /// Routes (layer, position) to the given experts instead of the router's choice, for the
    /// rest of the session. Verification uses it where a reference routed a near-tie the other
    /// way, so that the stages after it stay comparable.
    pub fn force_routes(&mut self, routes: ForcedRoutes) {
        self.forced = routes;
    }
}

impl<'m, B: Backend> Decoder<'m, B> {
    /// Builds the decoder for `model` bound to `contract`. A binding with violations is refused:
    /// the forward pass only runs on files that meet their contract.
    pub fn new(backend: B, contract: &Contract, binding: &Binding, model: &'m Model) -> Result<Self> {
        Self::with_mutations(backend, contract, binding, model, &[])
    }

    /// [`Decoder::new`] with deliberate defects, for proving that checks catch them.
    pub fn with_mutations(
        backend: B,
        contract: &Contract,
        binding: &Binding,
        model: &'m Model,
        mutations: &[Mutation],
    ) -> Result<Self> {
        if let Some(first) = binding.violations.first() {
            return Err(DecoderError::Binding {
                contract: binding.contract.clone(),
                count: binding.violations.len(),
                first: first.to_string(),
            });
        }
        let forward = contract.doc.forward.value.clone();
        if binding.tensors.iter().any(|t| t.role.base == "rope_freqs" && t.dtype.is_some()) {
            return Err(DecoderError::NotImplemented("rope frequency factors (`rope_freqs.weight`)".into()));
        }
        let mut forward = forward;
        let mut hparams = Hparams::from_binding(binding, &forward)?;
        let mut weights = Gather { backend: &backend, contract, binding, model, mutations }
            .weights(hparams.n_layer, hparams.experts)?;
        for m in mutations {
            match m {
                Mutation::WrongNormEps => hparams.norm_eps *= 1e5,
                Mutation::WrongRopeTheta => hparams.rope_theta /= 100.0,
                Mutation::SwapGelu => {
                    forward.activation = match forward.activation {
                        Activation::GeluTanh => Activation::GeluErf,
                        Activation::GeluErf => Activation::GeluTanh,
                        other => other,
                    }
                }
                Mutation::DropQkvBias => {
                    for layer in &mut weights.layers {
                        match &mut layer.qkv {
                            Qkv::Separate { q, k, v } => [q, k, v].into_iter().for_each(|p| p.b = None),
                            Qkv::Fused(qkv) => qkv.b = None,
                        }
                    }
                }
                _ => {}
            }
        }
        let mut rope = binding.rope;
        if mutations.contains(&Mutation::SwapRopeStyle) {
            rope = rope.map(|s| match s {
                RopeStyle::Normal => RopeStyle::Neox,
                RopeStyle::Neox => RopeStyle::Normal,
            });
        }
        Ok(Self { backend, hparams, forward, rope, mutations: mutations.to_vec(), weights })
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Every weight matrix as the backend holds it.
    pub fn held_weights(&self) -> Vec<HeldWeight> {
        let be = &self.backend;
        let w = &self.weights;
        let mut held = vec![be.matrix_info(&w.token_embd), be.matrix_info(&w.output.w)];
        held.extend(w.position_embd.as_ref().map(|m| be.matrix_info(m)));
        for l in &w.layers {
            match &l.qkv {
                Qkv::Separate { q, k, v } => held.extend([q, k, v].map(|p| be.matrix_info(&p.w))),
                Qkv::Fused(p) => held.push(be.matrix_info(&p.w)),
            }
            held.push(be.matrix_info(&l.attn_output.w));
            match &l.ffn {
                Ffn::Dense { gate, up, down } => {
                    held.extend(gate.iter().chain([up, down]).map(|p| be.matrix_info(&p.w)));
                }
                Ffn::Moe(m) => {
                    held.push(be.matrix_info(&m.router.w));
                    for e in &m.experts {
                        held.extend([&e.gate, &e.up, &e.down].map(|x| be.matrix_info(x)));
                    }
                    if let Some(s) = &m.shared {
                        held.extend([&s.gate_inp, &s.gate, &s.up, &s.down].map(|p| be.matrix_info(&p.w)));
                    }
                }
            }
        }
        held
    }

    /// Bytes of the KV cache of a session of `n_ctx` positions (f32 keys and values).
    pub fn kv_cache_bytes(&self, n_ctx: usize) -> u64 {
        let h = &self.hparams;
        (2 * h.n_layer * n_ctx * h.n_head_kv * h.head_dim * size_of::<f32>()) as u64
    }

    /// The engine's bound on activation bytes live during a forward of `n_tokens` with `n_ctx`
    /// positions: eight f32 rows as wide as the widest weight dimension per token (the residual,
    /// the norm, q/k/v or the FFN's gate/up/hidden, quantized copies of the input, the output),
    /// plus attention scores and probabilities for every head.
    pub fn scratch_bytes(&self, n_tokens: usize, n_ctx: usize) -> u64 {
        let rows = 8 * n_tokens * self.weights.widest;
        let attention = 2 * self.hparams.n_head * n_tokens * n_ctx;
        ((rows + attention) * size_of::<f32>()) as u64
    }

    /// Bytes of each routed expert's slabs, per layer (empty for a dense FFN): what running
    /// that expert reads.
    pub fn expert_bytes(&self) -> Vec<Vec<usize>> {
        self.weights
            .layers
            .iter()
            .map(|l| match &l.ffn {
                Ffn::Moe(m) => m.experts.iter().map(|e| e.bytes).collect(),
                Ffn::Dense { .. } => Vec::new(),
            })
            .collect()
    }

    /// A new sequence with room for `n_ctx` positions.
    pub fn session(&self, n_ctx: usize) -> Result<Session<B>> {
        let h = &self.hparams;
        Ok(Session {
            cache: self.backend.new_cache(h.n_layer, n_ctx, h.n_head_kv, h.head_dim)?,
            pos: 0,
            n_ctx,
            forced: ForcedRoutes::new(),
            reads: ExpertReads::default(),
        })
    }

    /// Runs `tokens` after what the session has seen (a prompt, or one decode step) and returns
    /// their logits, `[tokens.len(), n_vocab]`.
    pub fn forward<P: Probe>(&self, s: &mut Session<B>, tokens: &[u32], probe: &mut P) -> Result<Vec<f32>> {
        let h = &self.hparams;
        let be = &self.backend;
        let n = tokens.len();
        if n == 0 {
            return Err(DecoderError::Empty);
        }
        if s.pos + n > s.n_ctx {
            return Err(ContextFull { n_ctx: s.n_ctx, used: s.pos, wanted: n }.into());
        }
        if let Some((index, &id)) = tokens.iter().enumerate().find(|&(_, &id)| id as usize >= h.n_vocab) {
            return Err(DecoderError::TokenOutOfRange { id, index, n_vocab: h.n_vocab });
        }
        let shift = usize::from(s.pos > 0 && self.mutations.contains(&Mutation::DecodePositionOffByOne));
        let positions: Vec<u32> = (s.pos + shift..s.pos + shift + n).map(|p| p as u32).collect();

        let mut x = be.get_rows(&self.weights.token_embd, tokens)?;
        self.record(probe, "inp_embd", None, &x)?;
        if let Some(pe) = &self.weights.position_embd {
            if s.pos + n > h.n_positions {
                return Err(DecoderError::PositionOutOfRange { pos: s.pos + n - 1, n_positions: h.n_positions });
            }
            x = be.add(&x, &be.get_rows(pe, &positions)?)?;
            self.record(probe, "inp_pos_embd", None, &x)?;
        }
        for (l, layer) in self.weights.layers.iter().enumerate() {
            x = self.block(s, l, layer, &x, &positions, probe)?;
        }
        let x = self.norm(&x, &self.weights.output_norm)?;
        self.record(probe, "result_norm", None, &x)?;
        let logits = self.linear(&self.weights.output, &x)?;
        self.record(probe, "result_output", None, &logits)?;
        s.pos += n;
        Ok(be.download(&logits)?)
    }

    fn block<P: Probe>(
        &self,
        s: &mut Session<B>,
        l: usize,
        layer: &Layer<'m, B>,
        x: &B::Tensor,
        positions: &[u32],
        probe: &mut P,
    ) -> Result<B::Tensor> {
        let h = &self.hparams;
        let be = &self.backend;
        let at = Some(l);
        let cur = self.emit(probe, "attn_norm", at, self.norm(x, &layer.attn_norm)?)?;

        let (mut q, mut k, v) = match &layer.qkv {
            Qkv::Separate { q, k, v } => (self.linear(q, &cur)?, self.linear(k, &cur)?, self.linear(v, &cur)?),
            Qkv::Fused(qkv) => {
                let kv = h.n_head_kv * h.head_dim;
                let mut parts = be.split_cols(&self.linear(qkv, &cur)?, &[h.n_head * h.head_dim, kv, kv])?.into_iter();
                let mut next = || parts.next().expect("three parts");
                (next(), next(), next())
            }
        };
        self.record(probe, "Qcur", at, &q)?;
        self.record(probe, "Kcur", at, &k)?;
        self.record(probe, "Vcur", at, &v)?;
        if let (Some(qn), Some(kn), false) =
            (&layer.q_norm, &layer.k_norm, self.mutations.contains(&Mutation::SkipQkNorm))
        {
            q = be.rms_norm(&q, qn, h.norm_eps)?;
            k = be.rms_norm(&k, kn, h.norm_eps)?;
            self.record(probe, "Qcur_normed", at, &q)?;
            self.record(probe, "Kcur_normed", at, &k)?;
        }
        if let Some(style) = self.rope {
            let p = RopeParams { style, head_dim: h.head_dim, n_rot: h.n_rot, base: h.rope_theta };
            be.rope(&mut q, p, positions)?;
            be.rope(&mut k, p, positions)?;
            self.record(probe, "Qcur_rope", at, &q)?;
            self.record(probe, "Kcur_rope", at, &k)?;
        }
        let shape = AttnShape { n_head: h.n_head, n_head_kv: h.n_head_kv, head_dim: h.head_dim };
        let (kqv, soft_max) = be.attention(&mut s.cache, l, shape, &q, &k, &v, P::ENABLED)?;
        if let Some(sm) = &soft_max {
            let n_kv = s.pos + positions.len();
            self.record_shaped(probe, "kq_soft_max", at, &[h.n_head, positions.len(), n_kv], sm)?;
        }
        self.record(probe, "kqv_out", at, &kqv)?;
        let attn_out = self.linear(&layer.attn_output, &kqv)?;
        self.record(probe, "attn_out", at, &attn_out)?;

        let out = match &layer.ffn_norm {
            // x + attn(norm(x)) + ffn(norm(x)): both branches read the one norm.
            None => {
                let ffn_out = self.ffn(s, layer, &cur, l, probe)?;
                be.add(&be.add(x, &attn_out)?, &ffn_out)?
            }
            Some(ffn_norm) => {
                let ffn_inp = be.add(x, &attn_out)?;
                self.record(probe, "ffn_inp", at, &ffn_inp)?;
                let cur = self.norm(&ffn_inp, ffn_norm)?;
                self.record(probe, "ffn_norm", at, &cur)?;
                let ffn_out = self.ffn(s, layer, &cur, l, probe)?;
                be.add(&ffn_inp, &ffn_out)?
            }
        };
        self.record(probe, "l_out", at, &out)?;
        Ok(out)
    }

    /// SwiGLU `down(act(gate(x)) * up(x))`, MLP `down(act(up(x)))`, or the experts.
    fn ffn<P: Probe>(
        &self,
        s: &mut Session<B>,
        layer: &Layer<'m, B>,
        x: &B::Tensor,
        l: usize,
        probe: &mut P,
    ) -> Result<B::Tensor> {
        let be = &self.backend;
        let act = self.forward.activation;
        let at = Some(l);
        let out = match &layer.ffn {
            Ffn::Dense { gate, up, down } => {
                let hidden = match gate {
                    Some(gate) => {
                        let g = self.linear(gate, x)?;
                        self.record(probe, "ffn_gate", at, &g)?;
                        let u = self.linear(up, x)?;
                        self.record(probe, "ffn_up", at, &u)?;
                        be.mul(&be.activation(act, &g)?, &u)?
                    }
                    None => {
                        let u = self.linear(up, x)?;
                        self.record(probe, "ffn_up", at, &u)?;
                        be.activation(act, &u)?
                    }
                };
                self.record(probe, "ffn_act", at, &hidden)?;
                self.linear(down, &hidden)?
            }
            Ffn::Moe(moe) => self.moe(moe, x, l, s.pos, &s.forced, &mut s.reads, probe)?,
        };
        self.record(probe, "ffn_out", at, &out)?;
        Ok(out)
    }

    fn linear(&self, p: &Linear<'m, B>, x: &B::Tensor) -> Result<B::Tensor> {
        Ok(self.backend.mat_mul(&p.w, p.b.as_ref(), x)?)
    }

    fn norm(&self, x: &B::Tensor, n: &Norm<B>) -> Result<B::Tensor> {
        let eps = self.hparams.norm_eps;
        Ok(match (self.forward.norm, &n.b) {
            (NormKind::Rms, _) => self.backend.rms_norm(x, &n.w, eps)?,
            (NormKind::Layer, Some(b)) => self.backend.layer_norm(x, &n.w, b, eps)?,
            (NormKind::Layer, None) => unreachable!("LayerNorm weights are gathered with their bias"),
        })
    }

    /// Records stage `stage` and passes it on — as NaN where a [`Mutation::NanAt`] says so.
    fn emit<P: Probe>(&self, probe: &mut P, stage: &str, layer: Option<usize>, t: B::Tensor) -> Result<B::Tensor> {
        let poisoned = self
            .mutations
            .iter()
            .any(|m| matches!(m, Mutation::NanAt { stage: s, layer: l } if *s == stage && Some(*l) == layer));
        let t = if poisoned {
            let (rows, cols) = self.backend.dims(&t);
            self.backend.add(&t, &self.backend.upload(rows, cols, &vec![f32::NAN; rows * cols])?)?
        } else {
            t
        };
        self.record(probe, stage, layer, &t)?;
        Ok(t)
    }

    fn record<P: Probe>(&self, probe: &mut P, stage: &str, layer: Option<usize>, t: &B::Tensor) -> Result<()> {
        if P::ENABLED {
            let (rows, cols) = self.backend.dims(t);
            self.record_shaped(probe, stage, layer, &[rows, cols], t)?;
        }
        Ok(())
    }

    fn record_shaped<P: Probe>(
        &self,
        probe: &mut P,
        stage: &str,
        layer: Option<usize>,
        shape: &[usize],
        t: &B::Tensor,
    ) -> Result<()> {
        if P::ENABLED {
            probe.record(stage, layer, shape, &self.backend.download(t)?);
        }
        Ok(())
    }
}
