//! `harness verify --falsify`: every invariant a contract declares is run against the mutation it
//! names. The mutant is KILLED when the invariant's check fails with it and passes without it;
//! SURVIVED (a defect in the check) when the check still passes; INVALID when the check already
//! fails on the unmutated run (nothing is proven either way). Mutations are compiled into the
//! engine but only this flag and the tests turn them on.

use assay_engine::Model;
use assay_engine::contract::{Binding, Contract};
use assay_engine::decoder::Mutation;
use serde::Serialize;

use crate::numeric::{self, BackendRun, Golden, Tokens};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Killed,
    Survived,
    Invalid,
}

/// One invariant against its mutant on one backend.
#[derive(Clone, Debug, Serialize)]
pub struct MutantResult {
    pub invariant: String,
    pub mutation: &'static str,
    pub backend: &'static str,
    /// The contract's check (`stage Qcur_rope`, `invariant KV-EQUALS-ONE-PASS`).
    pub check: String,
    pub verdict: Verdict,
    /// What failed in the mutated run (or, for INVALID, in the clean one).
    pub detail: String,
}

/// Why `check` fails in `run`; `None` when it holds.
pub fn failure(run: &BackendRun, check: &str) -> Option<String> {
    let e = |v: f64| format!("{v:.1e}");
    match check.split_once(' ') {
        Some(("stage", stage)) => {
            let failed = run.stages.iter().chain(&run.kv_stages).find(|s| {
                !s.pass
                    && s.stage.trim_start_matches("kv.").rsplit_once('-').map_or(s.stage.as_str(), |(b, _)| b) == stage
            });
            if let Some(s) = failed {
                let bound = run.tolerance.map_or("—".into(), |t| e(t.nmse));
                return Some(match s.first_non_finite {
                    Some(i) => format!("stage {}: NaN/Inf at {i}", s.stage),
                    None => format!("stage {}: NMSE {} > {bound}", s.stage, e(s.nmse)),
                });
            }
            // A run refused before the stage was computed (a shape error) has caught it too.
            run.error.as_ref().filter(|_| run.stages.is_empty()).map(|err| format!("refused: {err}"))
        }
        Some(("invariant", id)) => match run.invariants.iter().find(|i| i.id == id) {
            Some(i) if !i.pass => Some(format!("{id}: {}", i.detail)),
            Some(_) => None,
            None => run.error.as_ref().map(|err| format!("refused: {err}")),
        },
        _ => Some(format!("unknown check `{check}`")),
    }
}

/// Runs every invariant of `contract` against its mutant on `clean`'s backend. `clean` is the
/// unmutated run of the same model, golden and tokens.
pub fn falsify(
    clean: &BackendRun,
    contract: &Contract,
    binding: &Binding,
    model: &Model,
    golden: &Golden,
    tokens: &Tokens,
) -> Vec<MutantResult> {
    contract
        .doc
        .invariants
        .iter()
        .filter(|inv| inv.backends.as_ref().is_none_or(|b| b.iter().any(|b| b.value == clean.backend)))
        .map(|inv| {
            let mutation = Mutation::named(&inv.falsify.value).expect("contract validation checks mutation names");
            let check = inv.check.value.clone();
            let (verdict, detail) = match failure(clean, &check) {
                Some(why) => (Verdict::Invalid, format!("fails without the mutant: {why}")),
                None => {
                    let mutated =
                        numeric::run_named(clean.backend, contract, binding, model, Some(golden), tokens, &[mutation])
                            .expect("the clean run's backend exists");
                    match failure(&mutated, &check) {
                        Some(why) => (Verdict::Killed, why),
                        None => (Verdict::Survived, "the check still passes".into()),
                    }
                }
            };
            MutantResult {
                invariant: inv.id.value.clone(),
                mutation: mutation.name(),
                backend: clean.backend,
                check,
                verdict,
                detail,
            }
        })
        .collect()
}
