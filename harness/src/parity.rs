//! `harness parity`: one model on several backends, every stage of every backend compared with
//! every other backend and with the golden. Two backends each within their contract bound of the
//! golden are within (√a + √b)² of each other; that is the pairwise bound, so a disagreement
//! between backends is caught even where no golden exists.

use std::io::Write;

use anyhow::{Result, bail};
use assay_engine::contract::Contract;
use serde::Serialize;

use crate::cli::ParityArgs;
use crate::compare::compare;
use crate::contracts;
use crate::exit::Outcome;
use crate::golden::Manifest;
use crate::numeric::{self, BackendRun, RunStatus, forward_order};
use crate::render::table;
use crate::verify;

/// Two backends' traces, stage by stage.
#[derive(Debug, Serialize)]
pub struct Pair {
    pub a: &'static str,
    pub b: &'static str,
    /// (√nmse_a + √nmse_b)² from the contract's tolerances; `None` when either has none.
    pub bound: Option<f64>,
    pub stages: Vec<PairStage>,
    pub pass: bool,
}

#[derive(Debug, Serialize)]
pub struct PairStage {
    pub stage: String,
    pub nmse: f64,
    pub max_abs: f64,
    pub pass: bool,
}

#[derive(Debug, Serialize)]
pub struct ModelParity {
    pub model: String,
    pub contract: String,
    pub golden: Option<String>,
    /// Each backend against the golden (the `verify` numeric run).
    pub runs: Vec<BackendRun>,
    pub pairs: Vec<Pair>,
}

impl ModelParity {
    fn pass(&self) -> bool {
        self.runs.iter().all(|r| r.status == RunStatus::Pass) && self.pairs.iter().all(|p| p.pass)
    }
}

pub fn run(args: &ParityArgs, out: &mut impl Write) -> Result<Outcome> {
    let backends = match verify::select_backends(&args.backends)? {
        Ok(b) if b.len() >= 2 => b,
        Ok(b) => bail!("parity compares two or more backends; available here: {}", b.join(", ")),
        Err(outcome) => return Ok(outcome),
    };
    let set = args.contracts.load()?;
    let explicit = args.contract.as_deref().map(|c| contracts::resolve(c, &set)).transpose()?;
    let manifests = if args.golden.is_dir() { Manifest::load_all(&args.golden)? } else { Vec::new() };
    let mut results = Vec::new();
    let progress = crate::progress::Progress::new(args.model.len(), args.quiet);
    for path in &args.model {
        progress.start(&path.display().to_string());
        let (checked, opened) = verify::check(path, explicit.as_ref(), &set);
        let (Some((model, contract)), Some(binding)) = (opened, checked.binding.as_ref()) else {
            bail!("{}: {}", path.display(), checked.error.as_deref().unwrap_or("does not meet its contract"));
        };
        if !binding.passed() {
            bail!("{}: violates contract `{}`; `harness verify` lists how", path.display(), contract.name());
        }
        let fixture = verify::find_fixture(&manifests, path);
        let (golden, tokens) = match fixture {
            Some((m, e)) => (
                Some(verify::load_golden(m, e)?),
                numeric::Tokens { ids: m.token_ids.clone(), prefill: m.kv_run.prefill },
            ),
            None => (None, verify::default_tokens(binding)),
        };
        let runs: Vec<BackendRun> = backends
            .iter()
            .map(|b| {
                numeric::run_named(b, contract, binding, &model, golden.as_ref(), &tokens, &[])
                    .expect("backends() only returns runnable backends")
            })
            .collect();
        let n_layer = match binding.hparam("n_layer") {
            Some(assay_engine::contract::expr::Num::Int(n)) => n as usize,
            _ => 0,
        };
        let pairs = pairs(&runs, contract, n_layer);
        results.push(ModelParity {
            model: path.display().to_string(),
            contract: contract.name().to_owned(),
            golden: fixture.map(|(m, e)| m.path(&e.golden).display().to_string()),
            runs,
            pairs,
        });
        progress.done_one();
    }
    drop(progress);
    let pass = results.iter().all(ModelParity::pass);
    if args.json {
        serde_json::to_writer_pretty(
            &mut *out,
            &serde_json::json!({
                "schema": "assay.parity/1",
                "devices": backends.iter().filter_map(|b| numeric::device(b).map(|d| (b.to_string(), d))).collect::<std::collections::BTreeMap<_, _>>(),
                "results": results,
            }),
        )?;
        writeln!(out)?;
    } else {
        for b in &backends {
            if let Some(d) = numeric::device(b) {
                writeln!(out, "backend {b} on {d}\n")?;
            }
        }
        for r in &results {
            out.write_all(render(r).as_bytes())?;
        }
        writeln!(
            out,
            "{}/{} models agree on every backend",
            results.iter().filter(|r| r.pass()).count(),
            results.len()
        )?;
    }
    Ok(if pass { Outcome::Pass } else { Outcome::Violation })
}

/// Every pair of runs that produced a trace, stage by stage in forward order.
fn pairs(runs: &[BackendRun], contract: &Contract, n_layer: usize) -> Vec<Pair> {
    let order = forward_order(contract, n_layer);
    let mut out = Vec::new();
    for (i, a) in runs.iter().enumerate() {
        for b in &runs[i + 1..] {
            if a.trace.stages.is_empty() || b.trace.stages.is_empty() {
                continue;
            }
            let bound = a.tolerance.zip(b.tolerance).map(|(x, y)| (x.nmse.sqrt() + y.nmse.sqrt()).powi(2));
            let stages: Vec<PairStage> = order
                .iter()
                .filter_map(|name| {
                    let (x, y) = (a.trace.stages.get(name)?, b.trace.stages.get(name)?);
                    let m = compare(&x.values, &y.values).ok();
                    let exact = name.starts_with("ffn_moe_topk-");
                    Some(match m {
                        Some(m) => PairStage {
                            stage: name.clone(),
                            nmse: m.nmse,
                            max_abs: m.max_abs,
                            pass: m.first_non_finite.is_none()
                                && bound.is_some_and(|bd| if exact { m.nmse == 0.0 } else { m.nmse <= bd }),
                        },
                        None => {
                            PairStage { stage: name.clone(), nmse: f64::INFINITY, max_abs: f64::INFINITY, pass: false }
                        }
                    })
                })
                .collect();
            let pass = !stages.is_empty() && stages.iter().all(|s| s.pass);
            out.push(Pair { a: a.backend, b: b.backend, bound, stages, pass });
        }
    }
    out
}

fn render(r: &ModelParity) -> String {
    let e = |v: f64| format!("{v:.1e}");
    let mut s =
        format!("## {}\n\ncontract {} · golden {}\n\n", r.model, r.contract, r.golden.as_deref().unwrap_or("none"));
    // One row per stage: each backend against the golden, then each pair.
    let mut header = vec!["stage".to_owned()];
    header.extend(r.runs.iter().map(|run| format!("{} vs golden", run.backend)));
    header.extend(r.pairs.iter().map(|p| format!("{} vs {}", p.a, p.b)));
    let names: Vec<&str> = r
        .pairs
        .first()
        .map(|p| p.stages.iter().map(|s| s.stage.as_str()).collect())
        .or_else(|| r.runs.first().map(|run| run.stages.iter().map(|s| s.stage.as_str()).collect()))
        .unwrap_or_default();
    let mark = |v: f64, pass: bool| if pass { e(v) } else { format!("{} ✗", e(v)) };
    let rows = names.iter().map(|name| {
        let mut row = vec![name.to_string()];
        for run in &r.runs {
            row.push(run.stages.iter().find(|c| c.stage == *name).map_or("—".into(), |c| mark(c.nmse, c.pass)));
        }
        for p in &r.pairs {
            row.push(p.stages.iter().find(|c| c.stage == *name).map_or("—".into(), |c| mark(c.nmse, c.pass)));
        }
        row
    });
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    s += &table(&header, rows);
    s += "\n\n";
    for run in &r.runs {
        s += &format!(
            "{}: {:?} against the golden (bound {}){}\n",
            run.backend,
            run.status,
            run.tolerance.map_or("—".into(), |t| e(t.nmse)),
            run.error.as_ref().map_or(String::new(), |err| format!(": {err}"))
        );
    }
    for p in &r.pairs {
        let worst = p.stages.iter().max_by(|x, y| x.nmse.total_cmp(&y.nmse));
        s += &format!(
            "{} vs {}: {} (worst {} at {}, bound {})\n",
            p.a,
            p.b,
            if p.pass { "agree" } else { "DISAGREE" },
            worst.map_or("—".into(), |w| e(w.nmse)),
            worst.map_or("—", |w| w.stage.as_str()),
            p.bound.map_or("— (no tolerance)".into(), e)
        );
    }
    s.push('\n');
    s
}
