//! `harness measure`: load one model, run a prompt on one backend with tracing off, and report
//! this process's peak resident set against the contract's `memory.rss_peak`. `verify` runs it
//! as a child process per (model, backend), so the number belongs to that one run and nothing
//! else the harness holds (goldens, captures, other models) is in it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use assay_engine::backend::Backend;
use assay_engine::backend::cpu::Cpu;
use assay_engine::backend::cuda::Cuda;
use assay_engine::backend::reference::Reference;
use assay_engine::backend::wgpu::Wgpu;
use assay_engine::contract::schema::{ExprText, Located, MemoryBounds};
use assay_engine::contract::{Binding, Contract, bind};
use assay_engine::decoder::Decoder;
use assay_engine::trace::Off;
use assay_engine::{Model, memory};
use serde::{Deserialize, Serialize};

use crate::cli::MeasureArgs;
use crate::contracts;
use crate::exit::Outcome;

const MIB: f64 = (1 << 20) as f64;

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / MIB)
}

/// One measured run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measurement {
    pub model: String,
    pub backend: String,
    pub contract: String,
    pub n_tokens: usize,
    pub n_ctx: usize,
    /// Peak resident set of the process (VmHWM), bytes.
    pub rss_peak: u64,
    /// The quantities bounds are written in, for this run.
    pub quantities: BTreeMap<String, u64>,
    /// The contract's `memory.rss_peak` expression and its value; `None` without one, and for
    /// device backends (their RSS is the driver's; their bound is `vram_peak`).
    pub bound: Option<(String, u64)>,
    /// Peak device memory from the backend's own allocation accounting (device backends).
    pub vram_peak: Option<u64>,
    /// The contract's `memory.vram_peak` expression and its value.
    pub vram_bound: Option<(String, u64)>,
}

impl Measurement {
    pub fn pass(&self) -> bool {
        let within = |peak: Option<u64>, bound: &Option<(String, u64)>| {
            bound.as_ref().is_none_or(|(_, b)| peak.is_some_and(|p| p <= *b))
        };
        within(Some(self.rss_peak), &self.bound) && within(self.vram_peak, &self.vram_bound)
    }

    /// The peaks that are judged (RSS on host backends, device memory on device backends), as
    /// `peak RSS 12.1 MiB ≤ 80.0 MiB (expr), headroom 85%`.
    pub fn describe(&self) -> String {
        let judged = match &self.vram_peak {
            Some(v) => ("peak device memory", *v, &self.vram_bound),
            None => ("peak RSS", self.rss_peak, &self.bound),
        };
        let (what, peak, bound) = judged;
        let mut s = match bound {
            Some((text, b)) => format!(
                "{what} {} {} {} ({text}), headroom {:.0}%",
                mib(peak),
                if peak <= *b { "≤" } else { ">" },
                mib(*b),
                100.0 * (*b as f64 - peak as f64) / *b as f64
            ),
            None => format!("{what} {} (no bound)", mib(peak)),
        };
        if self.vram_peak.is_some() {
            s += &format!("; process RSS {} (the driver's, not judged)", mib(self.rss_peak));
        }
        s
    }

    /// `peak / bound` in MiB for tables.
    pub fn cell(&self) -> String {
        let (peak, bound) = match self.vram_peak {
            Some(v) => (v, &self.vram_bound),
            None => (self.rss_peak, &self.bound),
        };
        match bound {
            Some((_, b)) => format!("{:.1} / {:.1} MiB", peak as f64 / MIB, *b as f64 / MIB),
            None => format!("{:.1} MiB", peak as f64 / MIB),
        }
    }
}

pub fn run(args: &MeasureArgs, out: &mut impl Write) -> Result<Outcome> {
    let backend = match crate::verify::select_one(&args.backend, "measure")? {
        Ok(b) => b,
        Err(outcome) => return Ok(outcome),
    };
    let (model, contract) = contracts::open_with_contract(&args.model, args.contract.as_deref(), &args.contracts)?;
    let contract = &contract;
    let binding = bind(contract, &model);
    let n_ctx = args.n_ctx.unwrap_or(args.tokens.len()).max(args.tokens.len());
    let m = match backend {
        "reference" => measure(Reference, contract, &binding, &model, &args.tokens, n_ctx)?,
        "cpu" => measure(Cpu, contract, &binding, &model, &args.tokens, n_ctx)?,
        "cuda" => {
            let cuda = Cuda::new().map_err(anyhow::Error::msg)?;
            let mut m = measure(cuda.clone(), contract, &binding, &model, &args.tokens, n_ctx)?;
            m.vram_peak = Some(cuda.memory().peak);
            m.vram_bound = bound(contract, |mem| mem.vram_peak.as_ref(), &m.quantities, &binding)?;
            m.bound = None;
            m
        }
        _ => {
            let wgpu = Wgpu::new().map_err(anyhow::Error::msg)?;
            let mut m = measure(wgpu.clone(), contract, &binding, &model, &args.tokens, n_ctx)?;
            m.vram_peak = Some(wgpu.memory().peak);
            m.vram_bound = bound(contract, |mem| mem.vram_peak.as_ref(), &m.quantities, &binding)?;
            m.bound = None;
            m
        }
    };
    let m = Measurement { model: args.model.display().to_string(), ..m };
    if args.json {
        serde_json::to_writer(&mut *out, &m)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{} on {} ({} tokens, n_ctx {}): {}", m.model, m.backend, m.n_tokens, m.n_ctx, m.describe())?;
    }
    Ok(if m.pass() { Outcome::Pass } else { Outcome::Violation })
}

fn measure<B: Backend>(
    backend: B,
    contract: &Contract,
    binding: &Binding,
    model: &Model,
    tokens: &[u32],
    n_ctx: usize,
) -> Result<Measurement> {
    let name = backend.name();
    let dec = Decoder::new(backend, contract, binding, model)?;
    let mut s = dec.session(n_ctx)?;
    dec.forward(&mut s, tokens, &mut Off)?;
    let rss_peak = memory::peak_rss().context("this system does not report peak RSS (/proc/self/status VmHWM)")?;
    let quantities =
        memory::quantities(model, n_ctx, dec.kv_cache_bytes(n_ctx), dec.scratch_bytes(tokens.len(), n_ctx));
    let bound = match contract.doc.memory.as_ref().and_then(|m| m.rss_peak.as_ref()) {
        Some(text) => Some((
            text.value.0.clone(),
            memory::bound(&text.value.0, &quantities, binding).map_err(anyhow::Error::msg)?,
        )),
        None => None,
    };
    Ok(Measurement {
        model: String::new(),
        backend: name.to_owned(),
        contract: contract.name().to_owned(),
        n_tokens: tokens.len(),
        n_ctx,
        rss_peak,
        quantities,
        bound,
        vram_peak: None,
        vram_bound: None,
    })
}

/// A `memory:` bound of the contract, evaluated for this run.
fn bound(
    contract: &Contract,
    which: impl Fn(&MemoryBounds) -> Option<&Located<ExprText>>,
    quantities: &BTreeMap<String, u64>,
    binding: &Binding,
) -> Result<Option<(String, u64)>> {
    let Some(text) = contract.doc.memory.as_ref().and_then(which) else { return Ok(None) };
    let value = memory::bound(&text.value.0, quantities, binding).map_err(anyhow::Error::msg)?;
    Ok(Some((text.value.0.clone(), value)))
}

/// Runs `harness measure` on `model` in a child process (this same binary) and returns its
/// measurement. `contract` is passed by path when it came from a file, else by name.
pub fn in_child(
    model: &Path,
    backend: &str,
    contract: &Contract,
    contracts_dir: Option<&Path>,
    tokens: &[u32],
) -> Result<Measurement> {
    let exe = std::env::current_exe().context("cannot find the harness binary to measure in a child")?;
    // The child is this binary; a library caller's executable would not understand `measure`.
    if exe.file_stem().and_then(|s| s.to_str()) != Some("harness") {
        bail!("measuring runs `harness measure` in a child, but this process is {}", exe.display());
    }
    let ids: Vec<String> = tokens.iter().map(u32::to_string).collect();
    let mut cmd = Command::new(exe);
    cmd.arg("measure").arg("--model").arg(model).args(["--backend", backend, "--json", "--tokens", &ids.join(",")]);
    match contracts_dir {
        Some(dir) => cmd.arg("--contracts-dir").arg(dir).args(["--contract", contract.name()]),
        None if Path::new(&contract.source).is_file() => cmd.args(["--contract", &contract.source]),
        None => cmd.args(["--contract", contract.name()]),
    };
    let out = cmd.output().context("cannot run the measuring child")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with('{')).with_context(|| {
        format!("measuring child exited {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr).trim())
    })?;
    Ok(serde_json::from_str(line)?)
}
