//! `harness bench`: prefill and decode tokens/s of one model file on one backend, as llama.cpp's
//! llama-bench defines them (`pp512`: one forward of 512 tokens; `tg128`: 128 single-token
//! decode steps from an empty cache; mean ± stddev over repetitions after a warm-up; load time
//! excluded), with decode's achieved weight bandwidth against a read bandwidth measured in the
//! same run, peak RSS and load time. A correctness witness comes first: the backend's logits on a
//! short prompt must be within the contract's tolerance of the reference backend's, or no number
//! is reported.

use std::io::Write;
use std::time::Instant;

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use assay_engine::backend::Backend;
use assay_engine::backend::cpu::Cpu;
use assay_engine::backend::cuda::Cuda;
use assay_engine::backend::reference::Reference;
use assay_engine::backend::wgpu::Wgpu;
use assay_engine::contract::{Binding, Contract, bind};
use assay_engine::decoder::{Decoder, Mutation};
use assay_engine::trace::{Capture, Off};
use assay_engine::{Model, memory};
use serde::Serialize;

use crate::cli::BenchArgs;
use crate::contracts;
use crate::exit::Outcome;
use crate::numeric::{self, Tokens};
use crate::render::{bytes, table};

pub const SCHEMA: &str = "assay.bench/1";

/// Mean and standard deviation of tokens/s over the repetitions.
#[derive(Clone, Debug, Serialize)]
pub struct Rate {
    /// `pp512`, `tg128`.
    pub test: String,
    pub mean: f64,
    pub stddev: f64,
    pub samples: Vec<f64>,
}

#[derive(Debug, Serialize)]
pub struct Witness {
    /// Logits NMSE of the benchmarked backend against the reference on the witness prompt.
    pub nmse: f64,
    pub bound: f64,
    pub tokens: usize,
}

#[derive(Debug, Serialize)]
pub struct Bench {
    pub schema: &'static str,
    pub model: String,
    pub contract: String,
    pub backend: String,
    pub threads: usize,
    pub file_bytes: u64,
    pub params: u64,
    pub load_seconds: f64,
    pub witness: Witness,
    pub rates: Vec<Rate>,
    /// The peer benchmark run interleaved with ours (`llama-bench`), and its rates per test.
    pub peer: Option<String>,
    pub peer_rates: Vec<Rate>,
    /// Weight bytes one decode step reads (all matrices; MoE: the experts it ran).
    pub decode_bytes_per_token: u64,
    /// Achieved weight bandwidth of decode, GB/s.
    pub decode_gbps: f64,
    /// Read bandwidth measured in this run with the same threads, GB/s.
    pub measured_gbps: f64,
    pub peak_rss: Option<u64>,
}

pub fn run(args: &BenchArgs, out: &mut impl Write) -> Result<Outcome> {
    let backend = match crate::verify::select_one(&args.backend, "bench")? {
        Ok(b) => b,
        Err(outcome) => return Ok(outcome),
    };
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let started = Instant::now();
    let (model, contract) = contracts::open_with_contract(&args.model, args.contract.as_deref(), &args.contracts)?;
    let contract = &contract;
    let binding = bind(contract, &model);
    if let Some(v) = binding.violations.first() {
        bail!("{} violates contract `{}` ({v}); `harness verify` lists how", args.model.display(), contract.name());
    }
    let plan = Plan { prompt: args.prompt, decode: args.decode, reps: args.reps.max(1) };
    let peer = match &args.peer {
        Some(spec) => Some(Peer::parse(spec, &args.model, threads)?),
        None => None,
    };
    let peer = peer.as_ref();
    let result = pool.install(|| match backend {
        "reference" => bench(Reference, contract, &binding, &model, plan, started, peer, &[]),
        "cpu" => bench(Cpu, contract, &binding, &model, plan, started, peer, &[]),
        "wgpu" => bench(Wgpu::new().map_err(anyhow::Error::msg)?, contract, &binding, &model, plan, started, peer, &[]),
        _ => bench(Cuda::new().map_err(anyhow::Error::msg)?, contract, &binding, &model, plan, started, peer, &[]),
    });
    let mut b = match result {
        Ok(b) => b,
        Err(e) if e.downcast_ref::<WitnessFailed>().is_some() => {
            eprintln!("error: {e:#}");
            return Ok(Outcome::Violation);
        }
        Err(e) => return Err(e),
    };
    b.model = args.model.display().to_string();
    b.threads = threads;
    b.measured_gbps = pool.install(read_bandwidth);
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &b)?;
        writeln!(out)?;
    } else {
        out.write_all(render(&b).as_bytes())?;
    }
    Ok(Outcome::Pass)
}

/// What to time.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub prompt: usize,
    pub decode: usize,
    pub reps: usize,
}

/// The witness refused the backend: no number is reported.
#[derive(Debug, thiserror::Error)]
#[error(
    "correctness witness failed on {backend} ({why}; logits NMSE {nmse:.2e} against the reference, bound {bound:.0e}): no speed is reported for a wrong answer"
)]
pub struct WitnessFailed {
    pub backend: &'static str,
    pub nmse: f64,
    pub bound: f64,
    /// What the verification of the witness run found first.
    pub why: String,
}

/// The witness prompt: a few tokens every vocabulary has.
fn witness_tokens(n_vocab: usize) -> Vec<u32> {
    (0..8u32).map(|i| (i * 7919 + 1) % n_vocab.max(1) as u32).collect()
}

/// Runs `backend` on the witness prompt and judges it exactly as `verify` would, with the
/// reference backend's trace as the golden: every stage within the contract's tolerance for the
/// backend and weight dtype, MoE routing compared tie-aware. `mutations` are for the tests.
pub fn witness<B: Backend>(
    backend: B,
    contract: &Contract,
    binding: &Binding,
    model: &Model,
    mutations: &[Mutation],
) -> Result<Witness> {
    let name = backend.name();
    let reference = Decoder::new(Reference, contract, binding, model)?;
    let ids = witness_tokens(reference.hparams.n_vocab);
    let mut trace = Capture::default();
    reference.forward(&mut reference.session(ids.len())?, &ids, &mut trace)?;
    let h = &reference.hparams;
    let golden = numeric::golden_from_trace(trace, contract, binding, h.head_dim, h.n_rot);
    let tokens = Tokens { prefill: ids.len() / 2, ids };
    let run = numeric::run(backend, contract, binding, model, Some(&golden), &tokens, mutations);
    let logits = run.stages.iter().find(|s| s.stage == "result_output");
    let nmse = logits.map_or(f64::INFINITY, |s| if s.nmse.is_nan() { f64::INFINITY } else { s.nmse });
    let Some(bound) = run.tolerance.map(|t| t.nmse) else {
        bail!(
            "contract `{}` declares no tolerance for {name} on this file's weights: no witness, no number",
            contract.name()
        );
    };
    if run.status != numeric::RunStatus::Pass {
        let why = run
            .error
            .clone()
            .or_else(|| run.first_divergence.as_ref().map(|d| format!("first divergence at {}", d.stage)))
            .or_else(|| run.invariants.iter().find(|i| !i.pass).map(|i| format!("{}: {}", i.id, i.detail)))
            .unwrap_or_default();
        return Err(WitnessFailed { backend: name, nmse, bound, why }.into());
    }
    Ok(Witness { nmse, bound, tokens: tokens.ids.len() })
}

#[allow(clippy::too_many_arguments)]
fn bench<B: Backend + Clone>(
    backend: B,
    contract: &Contract,
    binding: &Binding,
    model: &Model,
    plan: Plan,
    started: Instant,
    peer: Option<&Peer>,
    mutations: &[Mutation],
) -> Result<Bench> {
    let dec = Decoder::with_mutations(backend.clone(), contract, binding, model, mutations)?;
    let load_seconds = started.elapsed().as_secs_f64();
    let witness = witness(backend, contract, binding, model, mutations)?;
    let n_vocab = dec.hparams.n_vocab as u32;
    let ids: Vec<u32> = (0..plan.prompt.max(plan.decode) as u32).map(|i| (i * 7919 + 1) % n_vocab).collect();
    let pp = || -> Result<f64> {
        let mut s = dec.session(plan.prompt)?;
        let t = Instant::now();
        dec.forward(&mut s, &ids[..plan.prompt], &mut Off)?;
        Ok(plan.prompt as f64 / t.elapsed().as_secs_f64())
    };
    let tg = || -> Result<(f64, u64)> {
        let mut s = dec.session(plan.decode)?;
        let t = Instant::now();
        for &id in &ids[..plan.decode] {
            dec.forward(&mut s, &[id], &mut Off)?;
        }
        Ok((plan.decode as f64 / t.elapsed().as_secs_f64(), s.expert_reads().bytes))
    };
    // Warm-up, then rounds: ours, then the peer's, so both see the same machine state.
    if plan.prompt > 0 {
        pp()?;
    }
    if plan.decode > 0 {
        tg()?;
    }
    let (mut pp_samples, mut tg_runs, mut peer_samples) = (Vec::new(), Vec::new(), BTreeMap::<String, Vec<f64>>::new());
    for _ in 0..plan.reps {
        if plan.prompt > 0 {
            pp_samples.push(pp()?);
        }
        if plan.decode > 0 {
            tg_runs.push(tg()?);
        }
        if let Some(peer) = peer {
            for (test, ts) in peer.round(plan)? {
                peer_samples.entry(test).or_default().extend(ts);
            }
        }
    }
    let mut rates = Vec::new();
    if plan.prompt > 0 {
        rates.push(rate(format!("pp{}", plan.prompt), pp_samples));
    }
    let mut bytes_per_token = 0;
    if let Some(first) = tg_runs.first() {
        // Every matrix once per token, but for MoE only the experts the token ran.
        let expert_total: usize = dec.expert_bytes().iter().flatten().sum();
        let dense: u64 = dec.held_weights().iter().map(|h| h.bytes as u64).sum::<u64>() - expert_total as u64;
        bytes_per_token = dense + first.1 / plan.decode as u64;
        rates.push(rate(format!("tg{}", plan.decode), tg_runs.iter().map(|r| r.0).collect()));
    }
    let peer_rates: Vec<Rate> = peer_samples.into_iter().map(|(test, ts)| rate(test, ts)).collect();
    let tg_mean = rates.iter().find(|r| r.test.starts_with("tg")).map_or(0.0, |r| r.mean);
    Ok(Bench {
        schema: SCHEMA,
        model: String::new(),
        contract: contract.name().to_owned(),
        backend: dec.backend().name().to_owned(),
        threads: 0,
        file_bytes: model.file_bytes(),
        params: model.tensors.iter().map(|t| t.n_elems()).sum(),
        load_seconds,
        witness,
        rates,
        peer: peer.map(|p| p.name()),
        peer_rates,
        decode_bytes_per_token: bytes_per_token,
        decode_gbps: bytes_per_token as f64 * tg_mean / 1e9,
        measured_gbps: 0.0,
        peak_rss: memory::peak_rss(),
    })
}

fn rate(test: String, samples: Vec<f64>) -> Rate {
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = if samples.len() > 1 { samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    Rate { test, mean, stddev: var.sqrt(), samples }
}

/// Read bandwidth of this machine with the current rayon pool: the best of three passes summing
/// a 512 MiB buffer (larger than any cache), GB/s.
pub fn read_bandwidth() -> f64 {
    use rayon::prelude::*;
    let buf = vec![1u64; 64 << 20];
    (0..3)
        .map(|_| {
            let t = Instant::now();
            let s: u64 = buf.par_chunks(1 << 16).map(|c| c.iter().fold(0u64, |a, &v| a.wrapping_add(v))).sum();
            std::hint::black_box(s);
            (buf.len() * 8) as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

/// A peer benchmark binary run on the same file with the same threads.
pub struct Peer {
    path: std::path::PathBuf,
    model: std::path::PathBuf,
    threads: usize,
}

impl Peer {
    /// `llama-bench=PATH`.
    fn parse(spec: &str, model: &std::path::Path, threads: usize) -> Result<Self> {
        let Some(("llama-bench", path)) = spec.split_once('=') else {
            bail!("--peer `{spec}`: expected llama-bench=PATH");
        };
        let path = std::path::PathBuf::from(path);
        if !path.is_file() {
            bail!("--peer: {} is not a file (docs/perf.md says how to build llama-bench)", path.display());
        }
        Ok(Self { path, model: model.to_owned(), threads })
    }

    fn name(&self) -> String {
        format!("llama-bench ({})", self.path.display())
    }

    /// One repetition of each test: (test, tokens/s samples).
    fn round(&self, plan: Plan) -> Result<Vec<(String, Vec<f64>)>> {
        let out = std::process::Command::new(&self.path)
            .arg("-m")
            .arg(&self.model)
            .args(["-p", &plan.prompt.to_string(), "-n", &plan.decode.to_string()])
            .args(["-t", &self.threads.to_string(), "-r", "1", "-o", "json"])
            .output()
            .with_context(|| format!("cannot run {}", self.path.display()))?;
        if !out.status.success() {
            bail!("{} failed: {}", self.path.display(), String::from_utf8_lossy(&out.stderr).trim());
        }
        let doc: serde_json::Value =
            serde_json::from_slice(&out.stdout).with_context(|| format!("{} printed no JSON", self.path.display()))?;
        let tests = doc.as_array().with_context(|| "llama-bench JSON is not an array of tests")?;
        tests
            .iter()
            .map(|t| {
                let (p, n) = (t["n_prompt"].as_u64().unwrap_or(0), t["n_gen"].as_u64().unwrap_or(0));
                let name = if n == 0 { format!("pp{p}") } else { format!("tg{n}") };
                let ns = t["samples_ns"].as_array().with_context(|| "llama-bench JSON without samples_ns")?;
                Ok((name, ns.iter().filter_map(|v| v.as_f64()).map(|ns| 1e9 * (p + n) as f64 / ns).collect()))
            })
            .collect()
    }
}

/// llama-bench's table, then the bandwidth, witness, memory and load lines.
pub fn render(b: &Bench) -> String {
    let name = std::path::Path::new(&b.model).file_name().map_or(b.model.clone(), |n| n.to_string_lossy().into());
    let params = if b.params >= 1_000_000_000 {
        format!("{:.2} B", b.params as f64 / 1e9)
    } else {
        format!("{:.2} M", b.params as f64 / 1e6)
    };
    let rows = b.rates.iter().map(|r| {
        vec![
            name.clone(),
            bytes(b.file_bytes),
            params.clone(),
            b.backend.clone(),
            b.threads.to_string(),
            r.test.clone(),
            format!("{:.2} ± {:.2}", r.mean, r.stddev),
        ]
    });
    let peer_rows = b.peer_rates.iter().map(|r| {
        let ours = b.rates.iter().find(|o| o.test == r.test).map_or(f64::NAN, |o| o.mean);
        vec![
            name.clone(),
            bytes(b.file_bytes),
            params.clone(),
            format!("llama.cpp (ours/theirs {:.2})", ours / r.mean),
            b.threads.to_string(),
            r.test.clone(),
            format!("{:.2} ± {:.2}", r.mean, r.stddev),
        ]
    });
    let rows: Vec<Vec<String>> = rows.chain(peer_rows).collect();
    let mut s = table(&["model", "size", "params", "backend", "threads", "test", "t/s"], rows);
    s += "\n\n";
    if b.decode_bytes_per_token > 0 {
        s += &format!(
            "decode reads {} per token: {:.2} GB/s of {:.2} GB/s measured here ({:.0}% of the roofline)\n",
            bytes(b.decode_bytes_per_token),
            b.decode_gbps,
            b.measured_gbps,
            100.0 * b.decode_gbps / b.measured_gbps.max(f64::MIN_POSITIVE)
        );
    }
    s += &format!(
        "witness: logits NMSE {:.1e} against the reference on {} tokens (bound {:.0e})\n",
        b.witness.nmse, b.witness.tokens, b.witness.bound
    );
    s += &format!("load {:.2} s · peak RSS {}\n", b.load_seconds, b.peak_rss.map_or("unknown".into(), bytes));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_mean_and_sample_stddev() {
        let r = rate("tg4".into(), vec![10.0, 12.0, 14.0]);
        assert_eq!((r.mean, r.stddev), (12.0, 2.0));
        assert_eq!(rate("pp8".into(), vec![5.0]).stddev, 0.0);
    }
}
