//! `harness verify`: every model against its contract — statically (names, shapes, dtypes,
//! hyperparameters), then numerically on each backend against its golden (see [`crate::numeric`]).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use assay_engine::contract::bind::TensorStatus;
use assay_engine::contract::{Binding, Contract, bind};
use assay_engine::{Format, Model};
use serde::Serialize;

use crate::cli::{Level, VerifyArgs};
use crate::contracts;
use crate::exit::Outcome;
use crate::falsify::{self, MutantResult, Verdict};
use crate::golden::{Manifest, read_stages};
use crate::measure;
use crate::numeric::{self, BackendRun, Golden, RunStatus, Tokens};
use crate::render::{dims, table};

/// Backends this build can run where the machine allows (wgpu needs a Vulkan or GL adapter,
/// cuda an NVIDIA driver and device).
const RUNNABLE: &[&str] = &["reference", "cpu", "wgpu", "cuda"];
/// Backends this build knows but cannot run (exit 3 when asked for).
const DEVICE_BACKENDS: &[&str] = &[];

/// How one model fared.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    /// The model violates its contract, or no contract claims it.
    Fail,
    /// The file could not be read.
    Error,
}

#[derive(Debug, Serialize)]
pub struct ModelResult {
    pub model: String,
    pub format: Option<Format>,
    pub architecture: Option<String>,
    pub contract: Option<String>,
    pub contract_source: Option<String>,
    pub status: Status,
    /// Why it could not be checked (unreadable file, no contract).
    pub error: Option<String>,
    pub binding: Option<Binding>,
    /// The golden capture this file was compared with (numeric level).
    pub golden: Option<String>,
    /// One run per backend (numeric level).
    pub numeric: Vec<BackendRun>,
    /// `--falsify`: every contract invariant against its mutant, per backend.
    pub falsification: Vec<MutantResult>,
}

impl ModelResult {
    fn outcome(&self) -> Outcome {
        let runs = self.numeric.iter().map(|r| match r.status {
            RunStatus::Pass => Outcome::Pass,
            RunStatus::Fail => Outcome::Violation,
            RunStatus::Unsupported => Outcome::Unavailable,
        });
        let own = match self.status {
            Status::Pass => Outcome::Pass,
            Status::Fail => Outcome::Violation,
            Status::Error => Outcome::BadInput,
        };
        let mutants = self.falsification.iter().map(|m| match m.verdict {
            Verdict::Killed | Verdict::NotApplicable => Outcome::Pass,
            Verdict::Survived | Verdict::Invalid => Outcome::Violation,
        });
        runs.chain(mutants).fold(own, Outcome::max)
    }
}

/// The machine-readable report (`--json`).
#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub level: Level,
    pub backends: Vec<String>,
    /// The device each device backend ran on (`wgpu`: adapter · API · driver).
    pub devices: std::collections::BTreeMap<String, String>,
    pub contracts: Vec<String>,
    pub results: Vec<ModelResult>,
    pub passed: usize,
    pub total: usize,
}

pub fn run(args: &VerifyArgs, out: &mut impl Write) -> Result<Outcome> {
    // Refuse before the work, not after it.
    if let Some(path) = &args.report {
        if path.exists() && !args.force {
            bail!("{} exists; pass --force to overwrite it", path.display());
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
            bail!("cannot write the report {}: directory {} does not exist", path.display(), dir.display());
        }
    }
    let set = args.contracts.load()?;
    let explicit = args.contract.as_deref().map(|c| contracts::resolve(c, &set)).transpose()?;
    let backends = match args.level {
        Level::Static => Vec::new(),
        Level::Numeric => match select_backends(&args.backend)? {
            Ok(b) => b,
            Err(outcome) => return Ok(outcome),
        },
    };
    let models = if args.model.is_empty() { discover(&args.golden)? } else { args.model.clone() };
    let manifests = if args.golden.is_dir() { Manifest::load_all(&args.golden)? } else { Vec::new() };
    let mut results: Vec<ModelResult> = Vec::new();
    let progress = crate::progress::Progress::new(models.len(), args.quiet);
    for path in &models {
        progress.start(&path.display().to_string());
        let (mut result, opened) = check(path, explicit.as_ref(), &set);
        if let Some((model, contract)) = opened.filter(|_| matches!(result.status, Status::Pass))
            && let Some(binding) = &result.binding
        {
            let fixture = find_fixture(&manifests, path);
            let (golden, tokens) = match fixture {
                Some((m, e)) => {
                    if m.kv_run.prefill == 0 || m.kv_run.prefill >= m.token_ids.len() {
                        bail!(
                            "{}: kv_run.prefill {} must leave decode steps in {} token ids",
                            m.path("manifest.json").display(),
                            m.kv_run.prefill,
                            m.token_ids.len()
                        );
                    }
                    result.golden = Some(m.path(&e.golden).display().to_string());
                    (Some(load_golden(m, e)?), Tokens { ids: m.token_ids.clone(), prefill: m.kv_run.prefill })
                }
                None => (None, default_tokens(binding)),
            };
            for b in &backends {
                let mut run = numeric::run_named(b, contract, binding, &model, golden.as_ref(), &tokens, &[])
                    .expect("backends() only returns runnable backends");
                if contract.doc.memory.is_some() && run.status != RunStatus::Unsupported {
                    let dir = args.contracts.contracts_dir.as_deref();
                    let (pass, detail, m) = match measure::in_child(path, b, contract, dir, &tokens.ids) {
                        Ok(m) => (m.pass(), m.describe(), Some(m)),
                        Err(e) => (false, format!("not measured: {e:#}"), None),
                    };
                    run.memory = m;
                    run.push_invariant(numeric::Invariant {
                        id: "MEMORY-PEAK",
                        claim: "peak memory of the run (child process: VmHWM, or the device's accounting) is within the contract's memory bounds",
                        pass,
                        detail,
                    });
                }
                if let Some(golden) = golden.as_ref().filter(|_| args.falsify) {
                    result.falsification.extend(falsify::falsify(&run, contract, binding, &model, golden, &tokens));
                }
                result.numeric.push(run);
            }
        }
        results.push(result);
        progress.done_one();
    }
    drop(progress);
    format_parity(&mut results);
    let passed = results.iter().filter(|r| r.outcome() == Outcome::Pass).count();
    let outcome = results.iter().map(ModelResult::outcome).max().unwrap_or(Outcome::Pass);
    let report = Report {
        schema: "assay.verify/2",
        level: args.level,
        backends: backends.iter().map(|b| b.to_string()).collect(),
        devices: backends.iter().filter_map(|b| numeric::device(b).map(|d| (b.to_string(), d))).collect(),
        contracts: match &explicit {
            Some(c) => vec![c.name().to_owned()],
            None => set.iter().map(|c| c.name().to_owned()).collect(),
        },
        total: results.len(),
        passed,
        results,
    };
    if let Some(path) = &args.report {
        crate::report::Conformance::from_verify(&report).write(path, args.force)?;
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        out.write_all(render(&report, &args.golden).as_bytes())?;
    }
    Ok(outcome)
}

/// The requested backends, or the outcome to exit with when one of them cannot run here (said
/// on stderr); an unknown name is an error (exit 2).
pub(crate) fn select_backends(requested: &[String]) -> Result<std::result::Result<Vec<&'static str>, Outcome>> {
    match backends(requested) {
        Ok(b) => Ok(Ok(b)),
        Err(BackendChoice::Unavailable(message)) => {
            eprintln!("error: {message}");
            Ok(Err(Outcome::Unavailable))
        }
        Err(BackendChoice::Unknown(message)) => bail!(message),
    }
}

/// [`select_backends`] for a command that runs on exactly one backend.
pub(crate) fn select_one(name: &str, command: &str) -> Result<std::result::Result<&'static str, Outcome>> {
    Ok(match select_backends(std::slice::from_ref(&name.to_owned()))? {
        Ok(b) if b.len() == 1 => Ok(b[0]),
        Ok(_) => bail!("{command} runs on one backend: {}", RUNNABLE.join(", ")),
        Err(outcome) => Err(outcome),
    })
}

enum BackendChoice {
    /// Known, but not runnable here (exit 3).
    Unavailable(String),
    /// Not a backend at all (exit 2).
    Unknown(String),
}

/// The requested backends, in a fixed order, without repeats.
fn backends(requested: &[String]) -> Result<Vec<&'static str>, BackendChoice> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in requested {
        let r = r.trim();
        if r == "all" {
            for &b in RUNNABLE {
                match numeric::availability(b) {
                    Ok(()) => out.push(b),
                    // Asked for everything: what this machine lacks is skipped, visibly.
                    Err(why) => eprintln!("note: backend `{b}` skipped: {why}"),
                }
            }
        } else if let Some(&b) = RUNNABLE.iter().find(|&&b| b == r) {
            match numeric::availability(b) {
                Ok(()) => out.push(b),
                Err(why) => return Err(BackendChoice::Unavailable(format!("backend `{b}` is not available: {why}"))),
            }
        } else if DEVICE_BACKENDS.contains(&r) {
            return Err(BackendChoice::Unavailable(format!(
                "backend `{r}` is not available in this build on this machine (available: {})",
                RUNNABLE.join(", ")
            )));
        } else {
            return Err(BackendChoice::Unknown(format!(
                "unknown backend `{r}`: expected all, {}, {}",
                RUNNABLE.join(", "),
                DEVICE_BACKENDS.join(", ")
            )));
        }
    }
    out.sort_by_key(|b| RUNNABLE.iter().position(|h| h == b));
    out.dedup();
    Ok(out)
}

/// The manifest entry describing the model at `path`, if it is a golden fixture.
pub(crate) fn find_fixture<'a>(
    manifests: &'a [Manifest],
    path: &Path,
) -> Option<(&'a Manifest, &'a crate::golden::ModelEntry)> {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    let target = canon(path)?;
    manifests.iter().find_map(|m| {
        m.models.iter().find_map(|e| {
            let file = canon(&m.path(&e.file))?;
            // An HF checkpoint is listed as its directory; the model may be named by a file in it.
            let hit = file == target || (file.is_dir() && target.parent() == Some(file.as_path()));
            hit.then_some((m, e))
        })
    })
}

/// The capture and llama.cpp logits a manifest entry points at.
pub fn load_golden(m: &Manifest, e: &crate::golden::ModelEntry) -> Result<Golden> {
    let stages = read_stages(&m.path(&e.golden))?;
    let llamacpp = match &e.llamacpp {
        Some(l) => {
            let mut st = read_stages(&m.path(&l.logits))?;
            Some(st.remove("logits").ok_or_else(|| anyhow::anyhow!("{}: no `logits` tensor", l.logits))?)
        }
        None => None,
    };
    Ok(Golden { stages, llamacpp })
}

/// Tokens for a model without a golden: a fixed spread over the vocabulary, 16 + 8.
pub(crate) fn default_tokens(binding: &Binding) -> Tokens {
    let n_vocab = match binding.hparam("n_vocab") {
        Some(assay_engine::contract::expr::Num::Int(n)) if n > 0 => n as u64,
        _ => 1,
    };
    Tokens { ids: (0..24u64).map(|i| ((i * 7919 + 1) % n_vocab) as u32).collect(), prefill: 16 }
}

/// Files that share a golden capture hold the same weights in different formats (or
/// converters): on each backend their logits must agree with the first such file's.
fn format_parity(results: &mut [ModelResult]) {
    for i in 1..results.len() {
        let (before, rest) = results.split_at_mut(i);
        let me = &mut rest[0];
        let Some(golden) = me.golden.as_deref() else { continue };
        let Some(first) = before.iter().find(|r| r.golden.as_deref() == Some(golden) && !r.numeric.is_empty()) else {
            continue;
        };
        for run in &mut me.numeric {
            let Some(other) = first.numeric.iter().find(|o| o.backend == run.backend) else { continue };
            if let Some(inv) = numeric::format_parity(run, other, &first.model) {
                if !inv.pass {
                    run.status = RunStatus::Fail;
                }
                run.invariants.push(inv);
            }
        }
    }
}

/// Checks one model: open it, choose its contract, bind. Hands back the opened model and its
/// contract for the numeric level.
pub fn check<'c>(
    path: &Path,
    explicit: Option<&'c Contract>,
    set: &'c [Contract],
) -> (ModelResult, Option<(Model, &'c Contract)>) {
    let mut result = ModelResult {
        model: path.display().to_string(),
        format: None,
        architecture: None,
        contract: None,
        contract_source: None,
        status: Status::Error,
        error: None,
        binding: None,
        golden: None,
        numeric: Vec::new(),
        falsification: Vec::new(),
    };
    let model = match Model::open(path) {
        Ok(m) => m,
        Err(e) => {
            result.error = Some(e.to_string());
            return (result, None);
        }
    };
    result.format = Some(model.format);
    result.architecture = Some(model.architecture.clone());
    let Some(contract) = explicit.or_else(|| contracts::for_model(set, &model)) else {
        let known: Vec<&str> = set.iter().map(Contract::name).collect();
        result.status = Status::Fail;
        result.error = Some(format!(
            "no contract claims {} architecture `{}` (contracts: {}); pass --contract",
            model.format,
            model.architecture,
            known.join(", ")
        ));
        return (result, None);
    };
    let binding = bind(contract, &model);
    result.status = if binding.passed() { Status::Pass } else { Status::Fail };
    result.contract = Some(contract.name().to_owned());
    result.contract_source = Some(contract.source.clone());
    result.binding = Some(binding);
    (result, Some((model, contract)))
}

/// Model files under `dir`: GGUF and APR files by their magic, and SafeTensors checkpoints (an
/// index, or a `.safetensors` file with a `config.json` beside it — captures have none).
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        bail!(
            "golden directory `{}` not found: run from the repository root, or pass --golden DIR or --model FILE",
            dir.display()
        );
    }
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&d)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        let has_index = entries.iter().any(|p| p.file_name().is_some_and(|n| n == "model.safetensors.index.json"));
        let has_config = entries.iter().any(|p| p.file_name().is_some_and(|n| n == "config.json"));
        for p in entries {
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let is_model = if name == "model.safetensors.index.json" {
                true
            } else if name.ends_with(".safetensors") {
                has_config && !has_index
            } else {
                sniff_file(&p).is_some_and(|f| matches!(f, Format::Gguf | Format::Apr))
            };
            if is_model {
                found.push(p);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The format of a file from its first bytes, as the engine sniffs it.
fn sniff_file(path: &Path) -> Option<Format> {
    use std::io::Read;
    let mut head = Vec::with_capacity(16);
    std::fs::File::open(path).ok()?.take(16).read_to_end(&mut head).ok()?;
    match assay_engine::format::sniff(&head)? {
        assay_engine::format::Sniffed::Model(f) => Some(f),
        assay_engine::format::Sniffed::SafeTensorsIndex => None,
    }
}

/// The human rendering: a section per model, then `N/M passed` and the failures.
pub fn render(report: &Report, golden: &Path) -> String {
    let mut s = String::new();
    for (backend, device) in &report.devices {
        s += &format!("backend {backend} on {device}\n\n");
    }
    if report.results.is_empty() {
        s += &format!(
            "No model files under {}: nothing to verify. Contracts loaded and valid: {}.\n",
            golden.display(),
            report.contracts.join(", ")
        );
    }
    for r in &report.results {
        s += &render_one(r);
        s.push('\n');
    }
    s += &format!("{}/{} passed\n", report.passed, report.total);
    let failed: Vec<&ModelResult> = report.results.iter().filter(|r| r.outcome() != Outcome::Pass).collect();
    if !failed.is_empty() {
        s += "failed:\n";
        for r in failed {
            let runs: Vec<String> = r
                .numeric
                .iter()
                .filter(|n| n.status != RunStatus::Pass)
                .map(|n| match (&n.first_divergence, &n.error) {
                    (_, Some(e)) => format!("{}: {}", n.backend, e),
                    (Some(d), None) => format!("{}: diverges at {}", n.backend, d.stage),
                    (None, None) => format!("{}: logits or invariants", n.backend),
                })
                .collect();
            let why = match (&r.binding, &r.error) {
                (Some(b), _) if b.passed() => runs.join("; "),
                (Some(b), _) => format!("{} violation(s) of {}", b.violations.len(), b.contract),
                (None, Some(e)) => e.lines().next().unwrap_or_default().to_owned(),
                (None, None) => String::new(),
            };
            s += &format!("  {} — {why}\n", r.model);
        }
    }
    s
}

fn render_one(r: &ModelResult) -> String {
    let mut s = format!("## {}\n\n", r.model);
    let Some(b) = &r.binding else {
        let label = if matches!(r.status, Status::Error) { "ERROR" } else { "FAIL" };
        s += &format!("{label}: {}\n", r.error.as_deref().unwrap_or("unknown"));
        return s;
    };
    s += &format!(
        "{} · architecture {} · contract {} ({}) · tensor names {} · rope {}\n\n",
        r.format.map(|f| f.to_string()).unwrap_or_default(),
        r.architecture.as_deref().unwrap_or_default(),
        b.contract,
        r.contract_source.as_deref().unwrap_or_default(),
        b.scheme,
        b.rope.map_or("none".to_owned(), |s| format!("{s:?}").to_lowercase()),
    );
    s += &crate::render::hparams(&b.hparams);
    s += "\n\n";

    // One row per role: how many tensors matched, their dtypes and expected shape.
    let mut rows = Vec::new();
    let mut roles: Vec<_> = b.tensors.iter().map(|t| t.role).collect();
    roles.dedup();
    for role in roles {
        let ts: Vec<_> = b.tensors.iter().filter(|t| t.role == role).collect();
        let found = ts.iter().filter(|t| t.dtype.is_some()).count();
        let dtypes: BTreeSet<String> = ts.iter().filter_map(|t| t.dtype.map(|d| d.to_string())).collect();
        let shapes: BTreeSet<String> = ts.iter().filter_map(|t| t.expected_shape.as_deref().map(dims)).collect();
        let bad = ts.iter().filter(|t| t.status == TensorStatus::Violation).count();
        let status = if bad > 0 {
            format!("{bad} violation(s)")
        } else if ts.iter().all(|t| t.status == TensorStatus::Tied) {
            "tied".into()
        } else if ts.iter().all(|t| t.status == TensorStatus::Absent) {
            "absent (optional)".into()
        } else {
            "ok".into()
        };
        let dtypes = if dtypes.is_empty() { "—".into() } else { dtypes.into_iter().collect::<Vec<_>>().join(", ") };
        let shapes = if shapes.is_empty() { "—".into() } else { shapes.into_iter().collect::<Vec<_>>().join(", ") };
        rows.push(vec![role.to_string(), format!("{found}/{}", ts.len()), dtypes, shapes, status]);
    }
    s += &table(&["role", "found", "dtype", "expected shape", "status"], rows);
    s += "\n\n";
    if b.violations.is_empty() {
        s += "static: PASS\n";
    } else {
        let rows =
            b.violations.iter().enumerate().map(|(i, v)| vec![(i + 1).to_string(), v.code().to_owned(), v.to_string()]);
        s += &table(&["#", "check", "violation"], rows);
        s += &format!("\n\nstatic: FAIL, {} violation(s)\n", b.violations.len());
    }
    if !r.numeric.is_empty() {
        s += &render_numeric(r);
    }
    if !r.falsification.is_empty() {
        s += &render_falsification(&r.falsification);
    }
    s
}

/// One row per invariant and backend: the mutant's fate and what caught it.
fn render_falsification(mutants: &[MutantResult]) -> String {
    let rows = mutants.iter().map(|m| {
        vec![
            m.invariant.clone(),
            m.mutation.to_owned(),
            m.backend.to_owned(),
            m.check.clone(),
            match m.verdict {
                Verdict::NotApplicable => "N/A".into(),
                v => format!("{v:?}").to_uppercase(),
            },
            m.detail.clone(),
        ]
    });
    let count = |v: Verdict| mutants.iter().filter(|m| m.verdict == v).count();
    let inert = match count(Verdict::NotApplicable) {
        0 => String::new(),
        n => format!(" ({n} not applicable to this file)"),
    };
    format!(
        "\nfalsification: {}/{} mutants killed{inert}\n\n{}\n",
        count(Verdict::Killed),
        mutants.len() - count(Verdict::NotApplicable),
        table(&["invariant", "mutation", "backend", "check", "verdict", "caught by"], rows)
    )
}

/// One row per backend, then what failed and where it first diverged.
fn render_numeric(r: &ModelResult) -> String {
    let e = |v: f64| format!("{v:.1e}");
    let mut s = format!("\nnumeric, against {}:\n\n", r.golden.as_deref().unwrap_or("no golden (invariants only)"));
    let rows = r.numeric.iter().map(|run| {
        let worst = run.worst().map_or("—".into(), |w| format!("{} {}", e(w.nmse), w.stage));
        let bound = run.tolerance.map_or("—".into(), |t| e(t.nmse));
        let logits = |against: &str| {
            run.logits
                .iter()
                .find(|l| l.against == against)
                .map_or("—".into(), |l| format!("{} (top-1 {:.0}%)", e(l.kl_max), l.top1_agreement * 100.0))
        };
        let inv = run.invariants.iter().filter(|i| i.pass).count();
        vec![
            run.backend.to_owned(),
            run.weight_dtype.map_or("—".into(), |d| d.to_string()),
            worst,
            bound,
            logits("golden"),
            logits("llama.cpp"),
            format!("{inv}/{}", run.invariants.len()),
            run.memory.as_ref().map_or("—".into(), measure::Measurement::cell),
            format!("{:?}", run.status).to_uppercase(),
        ]
    });
    s += &table(
        &[
            "backend",
            "weights",
            "worst stage NMSE",
            "bound",
            "logits KL vs golden",
            "KL vs llama.cpp",
            "invariants",
            "peak memory / bound",
            "status",
        ],
        rows,
    );
    s.push('\n');
    // Near-ties are not failures, but a reader must see them: they are where this backend and
    // the golden would part ways without the forcing.
    for run in &r.numeric {
        if let Some(routing) = run.routing.as_ref().filter(|r| !r.ambiguous.is_empty()) {
            s += &format!(
                "\nambiguous routing on {} ({} of {} token-layers, golden margin < {:.0e}; routed as the golden): {}\n",
                run.backend,
                routing.ambiguous.len(),
                routing.rows,
                routing.margin_bound,
                crate::routing::RoutingCheck::describe(&routing.ambiguous, 8)
            );
        }
    }
    for run in r.numeric.iter().filter(|r| r.status != RunStatus::Pass) {
        s += &format!("\n{} {}:\n", format!("{:?}", run.status).to_uppercase(), run.backend);
        if let Some(err) = &run.error {
            s += &format!("  {err}\n");
        }
        if let Some(stage) = &run.first_non_finite {
            s += &format!("  first NaN/Inf at {stage}\n");
        }
        if let Some(d) = &run.first_divergence {
            s += &format!(
                "  first divergence at {}: NMSE {} > {}, max-abs {}, cosine {:.6}\n",
                d.stage,
                e(d.nmse),
                run.tolerance.map_or("—".into(), |t| e(t.nmse)),
                e(d.max_abs),
                d.cosine
            );
            let failing: Vec<&str> =
                run.stages.iter().chain(&run.kv_stages).filter(|c| !c.pass).map(|c| c.stage.as_str()).collect();
            s += &format!("  {} stage(s) over the bound: {}\n", failing.len(), failing.join(", "));
        }
        for l in run.logits.iter().filter(|l| !l.pass) {
            s += &format!("  logits vs {}: KL max {} > {}\n", l.against, e(l.kl_max), l.kl_bound.map_or("—".into(), e));
        }
        for i in run.invariants.iter().filter(|i| !i.pass) {
            s += &format!("  invariant {} ({}): {}\n", i.id, i.claim, i.detail);
        }
    }
    s
}
