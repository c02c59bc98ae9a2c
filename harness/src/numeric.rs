//! `harness verify`, numeric level: run a model's forward pass on a backend, compare every traced
//! stage with the golden capture, the logits with the golden and with llama.cpp, and check the
//! invariants every run must keep.

use std::borrow::Cow;
use std::collections::BTreeMap;

use assay_engine::backend::cpu::Cpu;
use assay_engine::backend::cuda::Cuda;
use assay_engine::backend::reference::Reference;
use assay_engine::backend::wgpu::Wgpu;
use assay_engine::backend::{Backend, BackendError, HeldWeight};
use assay_engine::contract::schema::{RopeStyle, Tolerance};
use assay_engine::contract::{Binding, Contract};
use assay_engine::decoder::{Decoder, DecoderError, ExpertReads, ForcedRoutes, Mutation};
use assay_engine::trace::Capture;
use assay_engine::{DType, Model};
use serde::Serialize;

use crate::compare::{compare, compare_logits};
use crate::golden::Stage;
use crate::routing::{self, Route, RoutingCheck};

/// What a model is run on and compared with.
pub struct Golden {
    /// The transformers capture on this file's (dequantized) weights.
    pub stages: BTreeMap<String, Stage>,
    /// llama.cpp's logits for this file, `[tokens, n_vocab]`.
    pub llamacpp: Option<Stage>,
}

/// The token run: a prompt in one pass, and the same prompt as a prefill plus decode steps.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub ids: Vec<u32>,
    pub prefill: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Pass,
    Fail,
    /// The backend cannot run an op this model needs.
    Unsupported,
}

/// One stage against the golden.
#[derive(Clone, Debug, Serialize)]
pub struct StageCheck {
    pub stage: String,
    pub shape: Vec<usize>,
    /// Index of the first NaN/Inf the backend produced here.
    pub first_non_finite: Option<usize>,
    pub nmse: f64,
    pub max_abs: f64,
    pub cosine: f64,
    pub pass: bool,
}

/// Logits against a reference.
#[derive(Clone, Debug, Serialize)]
pub struct LogitCheck {
    /// `golden` (transformers) or `llama.cpp`.
    pub against: &'static str,
    pub kl_max: f64,
    pub kl_mean: f64,
    pub top1_agreement: f64,
    /// The KL bound from the contract; `None`: reported, not judged.
    pub kl_bound: Option<f64>,
    pub pass: bool,
}

/// An invariant every run keeps.
#[derive(Clone, Debug, Serialize)]
pub struct Invariant {
    pub id: &'static str,
    pub claim: &'static str,
    pub pass: bool,
    pub detail: String,
}

/// One model on one backend.
#[derive(Clone, Debug, Serialize)]
pub struct BackendRun {
    pub backend: &'static str,
    pub weight_dtype: Option<DType>,
    pub tolerance: Option<Tolerance>,
    pub status: RunStatus,
    /// Why the run could not be judged (no tolerance, decoder error, unsupported op).
    pub error: Option<String>,
    /// The one-pass prompt, in forward order.
    pub stages: Vec<StageCheck>,
    /// The prefill + decode run against the golden's KV run.
    pub kv_stages: Vec<StageCheck>,
    /// The first stage that produced a NaN or Inf.
    pub first_non_finite: Option<String>,
    /// The first stage (in forward order) over the tolerance.
    pub first_divergence: Option<StageCheck>,
    pub logits: Vec<LogitCheck>,
    /// MoE: expert choices against the golden's.
    pub routing: Option<RoutingCheck>,
    /// Peak RSS of the run in a child process against the contract's bound (`harness verify`).
    pub memory: Option<crate::measure::Measurement>,
    pub invariants: Vec<Invariant>,
    /// The one-pass logits, for format parity across files with the same weights.
    #[serde(skip)]
    pub output: Vec<f32>,
    /// Every stage of the one-pass run (routed as the golden where it was ambiguous), for
    /// comparing backends with each other (`harness parity`).
    #[serde(skip)]
    pub trace: Capture,
}

impl BackendRun {
    fn new(backend: &'static str, binding: &Binding, contract: &Contract) -> Self {
        let weight_dtype = binding.weight_dtype();
        Self::empty(backend, weight_dtype, weight_dtype.and_then(|d| contract.tolerance(backend, d)))
    }

    /// A run with nothing judged yet (failing until judged).
    fn empty(backend: &'static str, weight_dtype: Option<DType>, tolerance: Option<Tolerance>) -> Self {
        Self {
            backend,
            weight_dtype,
            tolerance,
            status: RunStatus::Fail,
            error: None,
            stages: Vec::new(),
            kv_stages: Vec::new(),
            first_non_finite: None,
            first_divergence: None,
            logits: Vec::new(),
            routing: None,
            memory: None,
            invariants: Vec::new(),
            output: Vec::new(),
            trace: Capture::default(),
        }
    }

    /// Adds an invariant checked after the run; a failing one fails the run.
    pub fn push_invariant(&mut self, inv: Invariant) {
        if !inv.pass && self.status == RunStatus::Pass {
            self.status = RunStatus::Fail;
        }
        self.invariants.push(inv);
    }

    /// The worst stage NMSE of the one-pass run.
    pub fn worst(&self) -> Option<&StageCheck> {
        self.stages.iter().filter(|s| s.first_non_finite.is_none()).max_by(|a, b| a.nmse.total_cmp(&b.nmse))
    }
}

/// Whether the backend called `name` can run here; `Err` says why not.
pub fn availability(name: &str) -> Result<(), String> {
    match name {
        "reference" | "cpu" => Ok(()),
        "wgpu" => Wgpu::new().map(|_| ()),
        "cuda" => Cuda::new().map(|_| ()),
        other => Err(format!("this build has no `{other}` backend")),
    }
}

/// The device a device backend runs on (`None` for host backends and unavailable ones).
pub fn device(name: &str) -> Option<String> {
    match name {
        "wgpu" => Wgpu::new().ok().map(|w| w.adapter()),
        "cuda" => Cuda::new().ok().map(|c| c.device()),
        _ => None,
    }
}

/// Runs on the backend called `name` (`reference`, `cpu`, `wgpu`); `None` for a name this build
/// lacks or a device this machine does not have.
pub fn run_named(
    name: &str,
    contract: &Contract,
    binding: &Binding,
    model: &Model,
    golden: Option<&Golden>,
    tokens: &Tokens,
    mutations: &[Mutation],
) -> Option<BackendRun> {
    match name {
        "reference" => Some(run(Reference, contract, binding, model, golden, tokens, mutations)),
        "cpu" => Some(run(Cpu, contract, binding, model, golden, tokens, mutations)),
        "wgpu" => Wgpu::new().ok().map(|b| run(b, contract, binding, model, golden, tokens, mutations)),
        "cuda" => Cuda::new().ok().map(|b| run(b, contract, binding, model, golden, tokens, mutations)),
        _ => None,
    }
}

/// Runs `model` on `backend` and judges it.
pub fn run<B: Backend>(
    backend: B,
    contract: &Contract,
    binding: &Binding,
    model: &Model,
    golden: Option<&Golden>,
    tokens: &Tokens,
    mutations: &[Mutation],
) -> BackendRun {
    let mut r = BackendRun::new(backend.name(), binding, contract);
    if let Err(e) = execute(backend, contract, binding, model, golden, tokens, mutations, &mut r) {
        r.status = match e {
            DecoderError::Backend(BackendError::Unsupported { .. }) | DecoderError::NotImplemented(_) => {
                RunStatus::Unsupported
            }
            _ => RunStatus::Fail,
        };
        r.error = Some(e.to_string());
        return r;
    }
    if r.tolerance.is_none() && golden.is_some() {
        r.error = Some(format!(
            "contract `{}` declares no tolerance for backend `{}` and weight dtype {} (nor a default)",
            contract.name(),
            r.backend,
            r.weight_dtype.map_or("unknown".into(), |d| d.to_string())
        ));
    }
    let judged = r.stages.iter().chain(&r.kv_stages).all(|s| s.pass)
        && r.logits.iter().all(|l| l.pass)
        && r.invariants.iter().all(|i| i.pass)
        && r.error.is_none();
    r.status = if judged { RunStatus::Pass } else { RunStatus::Fail };
    r
}

#[allow(clippy::too_many_arguments)]
fn execute<B: Backend>(
    backend: B,
    contract: &Contract,
    binding: &Binding,
    model: &Model,
    golden: Option<&Golden>,
    tokens: &Tokens,
    mutations: &[Mutation],
    r: &mut BackendRun,
) -> Result<(), DecoderError> {
    // The loader mutant expands the weights before the decoder sees them, as upstream's loader did.
    let expanded;
    let rebound;
    let (run_model, run_binding) = if mutations.contains(&Mutation::ExpandToF32) {
        expanded = assay_engine::quant::expand_to_f32(model);
        rebound = assay_engine::contract::bind(contract, &expanded);
        (&expanded, &rebound)
    } else {
        (model, binding)
    };
    let dec = Decoder::with_mutations(backend, contract, run_binding, run_model, mutations)?;
    let n = tokens.ids.len();
    let n_vocab = dec.hparams.n_vocab;
    let n_layer = dec.hparams.n_layer;

    // The prompt in one pass, every stage traced. With MoE, tokens the golden routed otherwise
    // by a near-tie are then routed as the golden and the pass repeated — the earliest layer
    // first, as its flips change every later layer's inputs — until no near-tie is left.
    let margin_bound = r.tolerance.and_then(|t| t.route_margin).unwrap_or(0.0);
    let k = dec.hparams.experts.map(|(_, k)| k);
    let mut forced = ForcedRoutes::new();
    let mut routing = None;
    let mut natural_logits = None;
    let (one, logits) = loop {
        let mut one = Capture::default();
        let mut s = dec.session(n)?;
        s.force_routes(forced.clone());
        let logits = dec.forward(&mut s, &tokens.ids, &mut one)?;
        natural_logits.get_or_insert_with(|| logits.clone());
        let (Some(g), Some(k)) = (golden, k) else { break (one, logits) };
        let Some((rows, diffs)) = routing::differences(&one, &g.stages, n_layer, k) else { break (one, logits) };
        let check = routing.get_or_insert_with(|| RoutingCheck { margin_bound, ..RoutingCheck::default() });
        check.rows = rows;
        let first = diffs.iter().map(|d| d.layer).min();
        let (ambiguous, mismatched): (Vec<Route>, Vec<Route>) = diffs.into_iter().partition(|d| {
            Some(d.layer) == first && d.margin < margin_bound && !forced.contains_key(&(d.layer, d.pos))
        });
        check.mismatched = mismatched;
        if ambiguous.is_empty() {
            break (one, logits);
        }
        for d in ambiguous {
            forced.insert((d.layer, d.pos), d.golden.clone());
            check.ambiguous.push(d);
        }
    };
    let natural_logits = natural_logits.unwrap_or_default();

    // The same prompt as a prefill and single-token decode steps (routed as the one pass);
    // traced, so that the golden's KV run (`kv.l_out-L`, `kv.result_output`) can be compared.
    let mut kv = Capture::default();
    let mut s = dec.session(n)?;
    s.force_routes(forced);
    let mut kv_logits = dec.forward(&mut s, &tokens.ids[..tokens.prefill], &mut kv)?;
    let prefill_reads = s.expert_reads();
    let mut step_reads = Vec::new();
    for &t in &tokens.ids[tokens.prefill..] {
        let before = s.expert_reads();
        kv_logits.extend(dec.forward(&mut s, &[t], &mut kv)?);
        let after = s.expert_reads();
        step_reads.push(ExpertReads { slabs: after.slabs - before.slabs, bytes: after.bytes - before.bytes });
    }

    let nmse_bound = r.tolerance.map(|t| t.nmse);
    let layout = QkLayout::of(contract, binding, dec.hparams.head_dim, dec.hparams.n_rot);
    if let Some(g) = golden {
        for name in forward_order(contract, dec.hparams.n_layer) {
            let Some(want) = g.stages.get(&name) else { continue };
            let got = one.stages.get(&name).map(|s| layout.to_golden(&name, &s.values));
            r.stages.push(check_stage(&name, got.as_deref(), want, nmse_bound));
        }
        for (name, rec) in &kv.stages {
            let key = format!("kv.{name}");
            if let Some(want) = g.stages.get(&key) {
                r.kv_stages.push(check_stage(&key, Some(&rec.values), want, nmse_bound));
            }
        }
        if let Some(want) = g.stages.get("result_output") {
            r.logits.push(check_logits("golden", &logits, &want.values, n_vocab, r.tolerance.map(|t| t.logits_kl)));
        }
        if let Some(want) = &g.llamacpp {
            // llama.cpp routes by its own router: compared with ours unforced.
            r.logits.push(check_logits(
                "llama.cpp",
                &natural_logits,
                &want.values,
                n_vocab,
                r.tolerance.and_then(|t| t.llamacpp_kl),
            ));
        }
    }
    r.first_non_finite = r.stages.iter().find(|s| s.first_non_finite.is_some()).map(|s| s.stage.clone());
    // Without a bound nothing diverges; the missing tolerance is the error reported.
    r.first_divergence = nmse_bound.and_then(|_| r.stages.iter().find(|s| !s.pass).cloned());

    // Invariants.
    let bad = logits.iter().position(|v| !v.is_finite());
    r.invariants.push(Invariant {
        id: "LOGITS-FINITE",
        claim: "every logit is finite",
        pass: bad.is_none(),
        detail: bad.map_or_else(
            || format!("{} logits", logits.len()),
            |i| format!("logit {} of token {} is {}", i % n_vocab, i / n_vocab, logits[i]),
        ),
    });
    let same = compare(&kv_logits, &logits).ok();
    // Prefill + decode computes the same function as one pass: only summation order may differ,
    // and every token goes to the same experts.
    let bound = KV_NMSE;
    let rerouted: Vec<String> = (0..n_layer)
        .map(|l| format!("ffn_moe_topk-{l}"))
        .filter(|name| one.stages.get(name).map(|s| &s.values) != kv.stages.get(name).map(|s| &s.values))
        .collect();
    r.invariants.push(Invariant {
        id: "KV-EQUALS-ONE-PASS",
        claim: "prefill + single-token decode gives the one-pass logits (and expert choices)",
        pass: same.as_ref().is_some_and(|m| m.first_non_finite.is_none() && m.nmse <= bound) && rerouted.is_empty(),
        detail: same.map_or("logit counts differ".into(), |m| {
            let routes = if rerouted.is_empty() {
                String::new()
            } else {
                format!("; routed otherwise: {}", rerouted.join(", "))
            };
            format!(
                "prefill {} + {} decode steps: NMSE {:.2e} (bound {bound:.0e}){routes}",
                tokens.prefill,
                n - tokens.prefill,
                m.nmse
            )
        }),
    });
    r.invariants.push(weights_stay_quantized(&dec.held_weights(), model));
    if let Some(k) = k {
        moe_invariants(r, contract, &dec.expert_bytes(), k, &one, &kv, tokens.prefill, prefill_reads, &step_reads);
    }
    if let Some(check) = routing {
        let pass = check.mismatched.is_empty();
        r.invariants.push(Invariant {
            id: "ROUTING-MATCHES-GOLDEN",
            claim: "every token goes to the golden's experts, except near-ties under route_margin",
            pass,
            detail: format!(
                "{} token-layers; {} ambiguous (golden margin < {:.0e}), routed as the golden{}{}",
                check.rows,
                check.ambiguous.len(),
                check.margin_bound,
                if check.ambiguous.is_empty() {
                    String::new()
                } else {
                    format!(": {}", RoutingCheck::describe(&check.ambiguous, 4))
                },
                if pass {
                    String::new()
                } else {
                    format!("; mismatched: {}", RoutingCheck::describe(&check.mismatched, 4))
                },
            ),
        });
        r.routing = Some(check);
    }
    r.output = logits;
    r.trace = one;
    Ok(())
}

/// FORMAT-PARITY: `run` and `other` (another file with the same weights, `other_model`, on the
/// same backend) must give the same logits. Each is within its NMSE bound of the one golden, so
/// they are within (√a + √b)² of each other; `None` when either has no bound.
pub fn format_parity(run: &BackendRun, other: &BackendRun, other_model: &str) -> Option<Invariant> {
    let (a, b) = (run.tolerance?, other.tolerance?);
    let bound = (a.nmse.sqrt() + b.nmse.sqrt()).powi(2);
    let m = compare(&run.output, &other.output).ok();
    Some(Invariant {
        id: "FORMAT-PARITY",
        claim: "the same weights in another file give the same logits",
        pass: m.as_ref().is_some_and(|m| m.first_non_finite.is_none() && m.nmse <= bound),
        detail: match m {
            Some(m) => format!("vs {other_model}: NMSE {:.2e} (bound {bound:.1e})", m.nmse),
            None => format!("vs {other_model}: logit counts differ"),
        },
    })
}

/// WEIGHTS-STAY-QUANTIZED: the backend holds every weight in the dtype the file stores, in no
/// more bytes than the file's tensor.
fn weights_stay_quantized(held: &[HeldWeight], model: &Model) -> Invariant {
    let mut bad: Vec<String> = held
        .iter()
        .filter_map(|h| match model.tensor(&h.tensor) {
            Some(t) if t.dtype == h.dtype && h.bytes as u64 <= t.len => None,
            Some(t) => {
                Some(format!("`{}` held as {} ({} B), stored as {} ({} B)", h.tensor, h.dtype, h.bytes, t.dtype, t.len))
            }
            None => Some(format!("`{}` is held but not in the file", h.tensor)),
        })
        .collect();
    bad.dedup(); // a tied output repeats the embedding
    let bytes: usize = held.iter().map(|h| h.bytes).sum();
    Invariant {
        id: "WEIGHTS-STAY-QUANTIZED",
        claim: "every weight is held in its file's dtype and within its file bytes",
        pass: bad.is_empty(),
        detail: if bad.is_empty() {
            format!("{} matrices, {bytes} B held as stored", held.len())
        } else {
            format!(
                "{} of {} matrices: {}",
                bad.len(),
                held.len(),
                bad.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
            )
        },
    }
}

/// The MoE invariants: renormalized weights sum to one; a decode step reads exactly its k
/// experts' slabs per layer, a prefill each selected expert once.
#[allow(clippy::too_many_arguments)]
fn moe_invariants(
    r: &mut BackendRun,
    contract: &Contract,
    expert_bytes: &[Vec<usize>],
    k: usize,
    one: &Capture,
    kv: &Capture,
    prefill: usize,
    prefill_reads: ExpertReads,
    steps: &[ExpertReads],
) {
    if contract.doc.forward.moe.is_some_and(|m| m.renormalize) {
        let mut worst = (0.0f64, String::new());
        for (name, rec) in one.stages.iter().filter(|(n, _)| n.starts_with("ffn_moe_weights_norm-")) {
            for (t, row) in rec.values.chunks_exact(k).enumerate() {
                let dev = (row.iter().map(|&w| f64::from(w)).sum::<f64>() - 1.0).abs();
                if dev.is_nan() || dev > worst.0 {
                    worst = (dev, format!("{name} token {t}"));
                }
            }
        }
        r.invariants.push(Invariant {
            id: "ROUTE-WEIGHTS-SUM-TO-ONE",
            claim: "the renormalized top-k weights of every token sum to 1 ± 1e-6",
            pass: worst.0 <= 1e-6,
            detail: format!("largest |Σw − 1| {:.1e} at {}", worst.0, worst.1),
        });
    }
    // Which experts each decode step chose, per layer, from the KV run's trace.
    let ids = |layer: usize, row: usize| -> Vec<usize> {
        kv.stages.get(&format!("ffn_moe_topk-{layer}")).map_or(Vec::new(), |s| {
            s.values.get(row * k..(row + 1) * k).unwrap_or(&[]).iter().map(|&e| e as usize).collect()
        })
    };
    let mut bad = Vec::new();
    for (i, got) in steps.iter().enumerate() {
        let want_bytes: usize = expert_bytes
            .iter()
            .enumerate()
            .map(|(l, b)| ids(l, prefill + i).iter().filter_map(|&e| b.get(e)).sum::<usize>())
            .sum();
        let want = ExpertReads { slabs: (expert_bytes.len() * k) as u64, bytes: want_bytes as u64 };
        if *got != want {
            bad.push(format!(
                "step {i}: {} slabs / {} B, expected {} / {}",
                got.slabs, got.bytes, want.slabs, want.bytes
            ));
        }
    }
    let distinct: usize = (0..expert_bytes.len())
        .map(|l| {
            let mut s: Vec<usize> = (0..prefill).flat_map(|t| ids(l, t)).collect();
            s.sort_unstable();
            s.dedup();
            s.len()
        })
        .sum();
    if prefill_reads.slabs != distinct as u64 {
        bad.push(format!("prefill: {} expert runs, {distinct} distinct experts selected", prefill_reads.slabs));
    }
    let total: usize = expert_bytes.iter().flatten().sum();
    let per_token = steps.first().map_or(0, |s| s.bytes);
    r.invariants.push(Invariant {
        id: "EXPERT-BYTES-PER-TOKEN",
        claim: "a decode step reads exactly its k experts' slabs per layer; a prefill each selected expert once",
        pass: bad.is_empty() && !steps.is_empty(),
        detail: if bad.is_empty() {
            format!(
                "{} decode steps: {k} of {} experts per layer, {per_token} of {total} expert bytes per token ({:.1}%); prefill of {prefill}: {} expert runs",
                steps.len(),
                expert_bytes.first().map_or(0, Vec::len),
                100.0 * per_token as f64 / total.max(1) as f64,
                prefill_reads.slabs
            )
        } else {
            bad.join("; ")
        },
    });
}

/// Prefill + decode must agree with one pass this closely: the same ops, only summed in another
/// order (both host backends measure 0). Not the stage tolerance: that bounds the distance to the
/// golden, and on `cpu` (5e-3) it would hide a decode position off by one.
const KV_NMSE: f64 = 1e-10;

fn check_stage(name: &str, got: Option<&[f32]>, want: &Stage, bound: Option<f64>) -> StageCheck {
    // Expert ids are labels, not magnitudes: they match exactly or not at all.
    let bound = if name.starts_with("ffn_moe_topk-") { bound.map(|_| 0.0) } else { bound };
    let mut c = StageCheck {
        stage: name.to_owned(),
        shape: want.shape.clone(),
        first_non_finite: None,
        nmse: f64::INFINITY,
        max_abs: f64::INFINITY,
        cosine: f64::NAN,
        pass: false,
    };
    let Some(got) = got else { return c }; // not produced: fails
    match compare(got, &want.values) {
        Ok(m) => {
            c.first_non_finite = m.first_non_finite;
            (c.nmse, c.max_abs, c.cosine) = (m.nmse, m.max_abs, m.cosine);
            c.pass = m.first_non_finite.is_none() && bound.is_some_and(|b| m.nmse <= b);
        }
        Err(_) => c.shape = vec![got.len()], // a length mismatch: shape says what we produced
    }
    c
}

fn check_logits(against: &'static str, got: &[f32], want: &[f32], n_vocab: usize, bound: Option<f64>) -> LogitCheck {
    match compare_logits(got, want, n_vocab) {
        Ok(m) => LogitCheck {
            against,
            kl_max: m.kl_max,
            kl_mean: m.kl_mean,
            top1_agreement: m.top1_agreement,
            kl_bound: bound,
            pass: m.kl_max.is_finite() && bound.is_none_or(|b| m.kl_max <= b),
        },
        Err(_) => LogitCheck {
            against,
            kl_max: f64::INFINITY,
            kl_mean: f64::INFINITY,
            top1_agreement: 0.0,
            kl_bound: bound,
            pass: false,
        },
    }
}

/// Trace names in the order the forward pass produces them: the input stages, each layer's
/// stages in contract order, then the output stages.
pub fn forward_order(contract: &Contract, n_layer: usize) -> Vec<String> {
    const GLOBAL_IN: &[&str] = &["inp_embd", "inp_pos_embd"];
    const GLOBAL_OUT: &[&str] = &["result_norm", "result_output"];
    let stages: Vec<&str> = contract.doc.stages.iter().map(|s| s.value.as_str()).collect();
    let mut out: Vec<String> = stages.iter().filter(|s| GLOBAL_IN.contains(s)).map(|s| s.to_string()).collect();
    for l in 0..n_layer {
        for s in stages.iter().filter(|s| !GLOBAL_IN.contains(s) && !GLOBAL_OUT.contains(s)) {
            out.push(format!("{s}-{l}"));
        }
    }
    out.extend(stages.iter().filter(|s| GLOBAL_OUT.contains(s)).map(|s| s.to_string()));
    out
}

/// A golden made from another backend's trace of the same file (the reference's, for `bench`'s
/// witness): its q/k stages are put in the golden's (HF) head layout, as a capture would be.
pub fn golden_from_trace(
    trace: Capture,
    contract: &Contract,
    binding: &Binding,
    head_dim: usize,
    n_rot: usize,
) -> Golden {
    let layout = QkLayout::of(contract, binding, head_dim, n_rot);
    let stages = trace
        .stages
        .into_iter()
        .map(|(name, r)| {
            let values = layout.to_golden(&name, &r.values).into_owned();
            (name, Stage { shape: r.shape, values })
        })
        .collect();
    Golden { stages, llamacpp: None }
}

/// How this file's q/k heads are laid out relative to the golden's. llama.cpp's converter
/// permutes llama's q/k rows so NORMAL rope applies; the golden (transformers) keeps HF's order
/// for NEOX. The same numbers then sit at other indices: (x[2i], x[2i+1]) ↔ (x[i], x[i + n_rot/2]).
struct QkLayout {
    /// `Some((head_dim, n_rot))` when this file's q/k are interleaved relative to the golden.
    interleaved: Option<(usize, usize)>,
}

impl QkLayout {
    fn of(contract: &Contract, binding: &Binding, head_dim: usize, n_rot: usize) -> Self {
        let hf = contract.doc.forward.rope.map(|r| r.hf);
        let interleaved =
            (binding.rope == Some(RopeStyle::Normal) && hf == Some(RopeStyle::Neox)).then_some((head_dim, n_rot));
        Self { interleaved }
    }

    /// `values` of stage `name` in the golden's layout.
    fn to_golden<'v>(&self, name: &str, values: &'v [f32]) -> Cow<'v, [f32]> {
        let base = name.rsplit_once('-').map_or(name, |(b, _)| b);
        let qk = matches!(base, "Qcur" | "Kcur" | "Qcur_normed" | "Kcur_normed" | "Qcur_rope" | "Kcur_rope");
        let Some((head_dim, n_rot)) = self.interleaved.filter(|_| qk) else { return Cow::Borrowed(values) };
        let half = n_rot / 2;
        let mut out = values.to_vec();
        for (src, dst) in values.chunks_exact(head_dim).zip(out.chunks_exact_mut(head_dim)) {
            for i in 0..half {
                dst[i] = src[2 * i];
                dst[i + half] = src[2 * i + 1];
            }
        }
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(output: Vec<f32>, nmse: f64) -> BackendRun {
        let tolerance = Tolerance { nmse, logits_kl: 1.0, llamacpp_kl: None, route_margin: None };
        BackendRun { output, status: RunStatus::Pass, ..BackendRun::empty("cpu", None, Some(tolerance)) }
    }

    #[test]
    fn format_parity_holds_within_the_bound_and_breaks_beyond_it() {
        let a = run_with(vec![1.0, 2.0, 3.0, 4.0], 1e-6);
        let same = run_with(vec![1.0, 2.0, 3.0, 4.0], 1e-6);
        assert!(format_parity(&a, &same, "b.gguf").unwrap().pass);
        // A different model behind the same golden: logits move by far more than 4e-6.
        let moved = run_with(vec![1.0, 2.0, 3.1, 4.0], 1e-6);
        let inv = format_parity(&a, &moved, "b.gguf").unwrap();
        assert!(!inv.pass && inv.detail.starts_with("vs b.gguf: NMSE 3.27e-4 (bound 4.0e-6)"), "{inv:?}");
        let nan = run_with(vec![1.0, f32::NAN, 3.0, 4.0], 1e-6);
        assert!(!format_parity(&nan, &a, "b.gguf").unwrap().pass);
        let no_bound = BackendRun { tolerance: None, ..run_with(vec![1.0; 4], 1e-6) };
        assert!(format_parity(&no_bound, &a, "b.gguf").is_none());
    }

    #[test]
    fn llama_cpp_q_k_order_is_mapped_back_to_hf_order() {
        // One head of 4 with n_rot 4: llama.cpp order (a0, b0, a1, b1) is HF's (a0, a1, b0, b1).
        let layout = QkLayout { interleaved: Some((4, 4)) };
        assert_eq!(*layout.to_golden("Qcur_rope-0", &[1.0, 2.0, 3.0, 4.0]), [1.0, 3.0, 2.0, 4.0]);
        assert_eq!(*layout.to_golden("Vcur-0", &[1.0, 2.0, 3.0, 4.0]), [1.0, 2.0, 3.0, 4.0], "v is not permuted");
        // Partial rotary: values past n_rot stay.
        let layout = QkLayout { interleaved: Some((4, 2)) };
        assert_eq!(*layout.to_golden("Kcur-1", &[1.0, 2.0, 3.0, 4.0]), [1.0, 2.0, 3.0, 4.0]);
    }
}
