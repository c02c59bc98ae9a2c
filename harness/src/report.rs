//! Conformance reports: one page (markdown) and one versioned JSON document saying, for every
//! contract × model file × backend, what passed, how close it came, the memory it used against
//! its bound and which mutants its checks killed; then a section per failure, then the
//! environment. Built from a `verify` report; written atomically.
//!
//! The markdown holds no value that changes from run to run on one machine (peak memory shows as
//! within or over its bound; exact peaks and the git commit are in the JSON), so regenerating it
//! gives the same file.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::atomic::write_atomic;
use crate::falsify::Verdict;
use crate::numeric::{BackendRun, RunStatus};
use crate::render::table;
use crate::verify::{ModelResult, Report, Status};

pub const SCHEMA: &str = "assay.conformance/1";

/// `harness report`: `harness verify --report` over the golden directory, printing only where
/// the report went and the verdict.
pub fn run(args: crate::cli::ReportArgs, out: &mut impl std::io::Write) -> Result<crate::exit::Outcome> {
    let verify = crate::cli::VerifyArgs {
        contract: None,
        model: Vec::new(),
        golden: args.golden,
        level: crate::cli::Level::Numeric,
        backend: args.backend,
        json: false,
        falsify: args.falsify,
        report: Some(args.out.clone()),
        force: args.force,
        quiet: args.quiet,
        contracts: args.contracts,
    };
    let mut tables = Vec::new();
    let outcome = crate::verify::run(&verify, &mut tables)?;
    let text = String::from_utf8_lossy(&tables);
    let verdict = text.lines().rev().find(|l| l.contains(" passed")).unwrap_or("").to_owned();
    writeln!(out, "wrote {} and {} ({verdict})", args.out.display(), args.out.with_extension("json").display())?;
    Ok(outcome)
}

#[derive(Debug, Serialize)]
pub struct Conformance {
    pub schema: &'static str,
    pub summary: Summary,
    pub rows: Vec<Row>,
    pub failures: Vec<Failure>,
    pub environment: Environment,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub models: usize,
    pub models_passed: usize,
    pub runs: usize,
    pub runs_passed: usize,
    pub runs_unsupported: usize,
    pub mutants: usize,
    pub mutants_killed: usize,
}

/// One model file on one backend (or, at the static level, the file alone).
#[derive(Debug, Serialize)]
pub struct Row {
    pub contract: String,
    pub model: String,
    pub dtype: String,
    pub backend: String,
    pub status: String,
    pub worst_nmse: Option<f64>,
    pub worst_stage: Option<String>,
    pub nmse_bound: Option<f64>,
    pub logits_kl: Option<f64>,
    pub top1: Option<f64>,
    /// Measured peak (RSS, or device memory on device backends) and its bound, in bytes.
    pub memory_peak: Option<u64>,
    pub memory_bound: Option<u64>,
    pub mutants_killed: Option<(usize, usize)>,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub model: String,
    pub backend: Option<String>,
    pub lines: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Environment {
    pub harness: &'static str,
    pub git_commit: Option<String>,
    /// The CPU kernels' instruction set.
    pub cpu: String,
    /// Device backends and what they ran on.
    pub devices: BTreeMap<String, String>,
    pub backends: Vec<String>,
    pub contracts: Vec<String>,
}

impl Conformance {
    pub fn from_verify(report: &Report) -> Self {
        let mut rows = Vec::new();
        let mut failures = Vec::new();
        let mut s = Summary { models: report.results.len(), ..Summary::default() };
        for m in &report.results {
            let contract = m.contract.clone().unwrap_or_else(|| "—".into());
            let dtype = m.binding.as_ref().and_then(|b| b.weight_dtype()).map_or_else(|| "—".into(), |d| d.to_string());
            if m.numeric.is_empty() {
                rows.push(static_row(m, &contract, &dtype));
            }
            for run in &m.numeric {
                s.runs += 1;
                match run.status {
                    RunStatus::Pass => s.runs_passed += 1,
                    RunStatus::Unsupported => s.runs_unsupported += 1,
                    RunStatus::Fail => {}
                }
                let mutants: Vec<_> = m.falsification.iter().filter(|x| x.backend == run.backend).collect();
                let applicable = mutants.iter().filter(|x| x.verdict != Verdict::NotApplicable).count();
                let killed = mutants.iter().filter(|x| x.verdict == Verdict::Killed).count();
                s.mutants += applicable;
                s.mutants_killed += killed;
                rows.push(run_row(m, run, &contract, &dtype, (!mutants.is_empty()).then_some((killed, applicable))));
                if run.status != RunStatus::Pass {
                    failures.push(Failure {
                        model: m.model.clone(),
                        backend: Some(run.backend.into()),
                        lines: why(run),
                    });
                }
                for x in mutants.iter().filter(|x| matches!(x.verdict, Verdict::Survived | Verdict::Invalid)) {
                    failures.push(Failure {
                        model: m.model.clone(),
                        backend: Some(run.backend.into()),
                        lines: vec![format!("mutant {} ({}) {:?}: {}", x.mutation, x.invariant, x.verdict, x.detail)],
                    });
                }
            }
            if !matches!(m.status, Status::Pass) {
                let mut lines: Vec<String> = m.error.iter().cloned().collect();
                if let Some(b) = &m.binding {
                    lines.extend(b.violations.iter().map(|v| v.to_string()));
                }
                failures.push(Failure { model: m.model.clone(), backend: None, lines });
            }
        }
        s.models_passed = report.passed;
        Conformance {
            schema: SCHEMA,
            summary: s,
            rows,
            failures,
            environment: Environment {
                harness: env!("CARGO_PKG_VERSION"),
                git_commit: git_commit(),
                cpu: format!("{:?}", assay_engine::quant::isa()),
                devices: report.devices.clone(),
                backends: report.backends.clone(),
                contracts: report.contracts.clone(),
            },
        }
    }

    /// The page.
    pub fn markdown(&self) -> String {
        let e = |v: f64| format!("{v:.1e}");
        let s = &self.summary;
        let mut out = String::from("# Conformance\n\n");
        out += &format!(
            "{} of {} model files conform; {} of {} backend runs pass ({} unsupported){}.\n\n",
            s.models_passed,
            s.models,
            s.runs_passed,
            s.runs,
            s.runs_unsupported,
            if s.mutants > 0 {
                format!("; {} of {} mutants killed", s.mutants_killed, s.mutants)
            } else {
                String::new()
            }
        );
        let rows = self.rows.iter().map(|r| {
            vec![
                r.contract.clone(),
                r.model.clone(),
                r.dtype.clone(),
                r.backend.clone(),
                r.status.clone(),
                match (r.worst_nmse, &r.worst_stage) {
                    (Some(v), Some(st)) => format!("{} {st}", e(v)),
                    _ => "—".into(),
                },
                r.nmse_bound.map_or("—".into(), e),
                match (r.logits_kl, r.top1) {
                    (Some(kl), Some(t)) => format!("{} / {:.0}%", e(kl), t * 100.0),
                    _ => "—".into(),
                },
                memory_cell(r.memory_peak, r.memory_bound),
                r.mutants_killed.map_or("—".into(), |(k, n)| format!("{k}/{n}")),
            ]
        });
        out += &table(
            &[
                "contract",
                "model file",
                "weights",
                "backend",
                "status",
                "worst stage NMSE",
                "bound",
                "logits KL / top-1",
                "memory",
                "mutants killed",
            ],
            rows,
        );
        out += "\n\n## Failures\n\n";
        if self.failures.is_empty() {
            out += "None.\n";
        }
        for f in &self.failures {
            out += &format!("### {}{}\n\n", f.model, f.backend.as_ref().map_or(String::new(), |b| format!(" on {b}")));
            for l in &f.lines {
                out += &format!("- {l}\n");
            }
            out.push('\n');
        }
        let env = &self.environment;
        out += "\n## Environment\n\n";
        out += &format!("- harness {}\n", env.harness);
        out += &format!("- CPU kernels: {}\n", env.cpu);
        for (b, d) in &env.devices {
            out += &format!("- {b}: {d}\n");
        }
        out += &format!("- backends: {}\n", env.backends.join(", "));
        out += &format!("- contracts: {}\n", env.contracts.join(", "));
        out += "\nMemory is shown as within or over the contract bound; the measured peaks and the git commit are\nin the JSON report beside this file.\n";
        out
    }

    /// Writes the markdown to `path` and the JSON beside it (`path` with `.json`), atomically.
    pub fn write(&self, path: &Path, force: bool) -> Result<()> {
        let json = path.with_extension("json");
        write_atomic(path, self.markdown().as_bytes(), force)?;
        let mut doc = serde_json::to_vec_pretty(self)?;
        doc.push(b'\n');
        write_atomic(&json, &doc, force)
    }
}

/// `within 18.8 MiB`, or `OVER 18.8 MiB (19.2 MiB)`: no run-to-run value unless it failed.
fn memory_cell(peak: Option<u64>, bound: Option<u64>) -> String {
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / f64::from(1 << 20));
    match (peak, bound) {
        (Some(p), Some(b)) if p <= b => format!("within {}", mib(b)),
        (Some(p), Some(b)) => format!("OVER {} ({})", mib(b), mib(p)),
        (Some(p), None) => format!("{} (no bound)", mib(p)),
        _ => "—".into(),
    }
}

fn static_row(m: &ModelResult, contract: &str, dtype: &str) -> Row {
    Row {
        contract: contract.into(),
        model: m.model.clone(),
        dtype: dtype.into(),
        backend: "—".into(),
        status: format!("{:?}", m.status).to_uppercase(),
        worst_nmse: None,
        worst_stage: None,
        nmse_bound: None,
        logits_kl: None,
        top1: None,
        memory_peak: None,
        memory_bound: None,
        mutants_killed: None,
    }
}

fn run_row(m: &ModelResult, run: &BackendRun, contract: &str, dtype: &str, mutants: Option<(usize, usize)>) -> Row {
    let worst = run.worst();
    let golden = run.logits.iter().find(|l| l.against == "golden");
    let (peak, bound) = match &run.memory {
        Some(mem) => match mem.vram_peak {
            Some(v) => (Some(v), mem.vram_bound.as_ref().map(|b| b.1)),
            None => (Some(mem.rss_peak), mem.bound.as_ref().map(|b| b.1)),
        },
        None => (None, None),
    };
    Row {
        contract: contract.into(),
        model: m.model.clone(),
        dtype: dtype.into(),
        backend: run.backend.into(),
        status: format!("{:?}", run.status).to_uppercase(),
        worst_nmse: worst.map(|w| w.nmse),
        worst_stage: worst.map(|w| w.stage.clone()),
        nmse_bound: run.tolerance.map(|t| t.nmse),
        logits_kl: golden.map(|l| l.kl_max),
        top1: golden.map(|l| l.top1_agreement),
        memory_peak: peak,
        memory_bound: bound,
        mutants_killed: mutants,
    }
}

/// What failed in a run, most telling first.
fn why(run: &BackendRun) -> Vec<String> {
    let e = |v: f64| format!("{v:.1e}");
    let mut lines: Vec<String> = run.error.iter().cloned().collect();
    if let Some(st) = &run.first_non_finite {
        lines.push(format!("first NaN/Inf at {st}"));
    }
    if let Some(d) = &run.first_divergence {
        lines.push(format!(
            "first divergence at {}: NMSE {} > {}, max-abs {}, cosine {:.6}",
            d.stage,
            e(d.nmse),
            run.tolerance.map_or("—".into(), |t| e(t.nmse)),
            e(d.max_abs),
            d.cosine
        ));
    }
    for l in run.logits.iter().filter(|l| !l.pass) {
        lines.push(format!("logits vs {}: KL max {} > {}", l.against, e(l.kl_max), l.kl_bound.map_or("—".into(), e)));
    }
    for i in run.invariants.iter().filter(|i| !i.pass) {
        lines.push(format!("invariant {}: {}", i.id, i.detail));
    }
    lines
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()).filter(|s| !s.is_empty())
}
