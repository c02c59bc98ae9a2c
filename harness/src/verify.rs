//! `harness verify`, static level: every model against its contract, before any multiply.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use assay_engine::contract::bind::TensorStatus;
use assay_engine::contract::{Binding, Contract, bind};
use assay_engine::{Format, Model};
use serde::Serialize;

use crate::cli::VerifyArgs;
use crate::contracts;
use crate::exit::Outcome;
use crate::render::{dims, table};

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
}

impl ModelResult {
    fn outcome(&self) -> Outcome {
        match self.status {
            Status::Pass => Outcome::Pass,
            Status::Fail => Outcome::Violation,
            Status::Error => Outcome::BadInput,
        }
    }
}

/// The machine-readable report (`--json`).
#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub level: &'static str,
    pub contracts: Vec<String>,
    pub results: Vec<ModelResult>,
    pub passed: usize,
    pub total: usize,
}

pub fn run(args: &VerifyArgs, out: &mut impl Write) -> Result<Outcome> {
    let set = args.contracts.load()?;
    let explicit = args.contract.as_deref().map(|c| contracts::resolve(c, &set)).transpose()?;
    let models = if args.model.is_empty() { discover(&args.golden)? } else { args.model.clone() };

    let results: Vec<ModelResult> = models.iter().map(|m| check(m, explicit.as_ref(), &set)).collect();
    let passed = results.iter().filter(|r| matches!(r.status, Status::Pass)).count();
    let outcome = results.iter().map(ModelResult::outcome).max().unwrap_or(Outcome::Pass);
    let report = Report {
        schema: "assay.verify/1",
        level: "static",
        contracts: match &explicit {
            Some(c) => vec![c.name().to_owned()],
            None => set.iter().map(|c| c.name().to_owned()).collect(),
        },
        total: results.len(),
        passed,
        results,
    };
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        out.write_all(render(&report, &args.golden).as_bytes())?;
    }
    Ok(outcome)
}

/// Checks one model: open it, choose its contract, bind.
pub fn check(path: &Path, explicit: Option<&Contract>, set: &[Contract]) -> ModelResult {
    let mut result = ModelResult {
        model: path.display().to_string(),
        format: None,
        architecture: None,
        contract: None,
        contract_source: None,
        status: Status::Error,
        error: None,
        binding: None,
    };
    let model = match Model::open(path) {
        Ok(m) => m,
        Err(e) => {
            result.error = Some(e.to_string());
            return result;
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
        return result;
    };
    let binding = bind(contract, &model);
    result.status = if binding.passed() { Status::Pass } else { Status::Fail };
    result.contract = Some(contract.name().to_owned());
    result.contract_source = Some(contract.source.clone());
    result.binding = Some(binding);
    result
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
    let failed: Vec<&ModelResult> = report.results.iter().filter(|r| !matches!(r.status, Status::Pass)).collect();
    if !failed.is_empty() {
        s += "failed:\n";
        for r in failed {
            let why = match (&r.binding, &r.error) {
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
        s += "PASS\n";
    } else {
        let rows =
            b.violations.iter().enumerate().map(|(i, v)| vec![(i + 1).to_string(), v.code().to_owned(), v.to_string()]);
        s += &table(&["#", "check", "violation"], rows);
        s += &format!("\n\nFAIL: {} violation(s)\n", b.violations.len());
    }
    s
}
