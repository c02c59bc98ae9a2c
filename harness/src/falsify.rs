//! `harness verify --falsify`: every invariant a contract declares is run against the mutation it
//! names. The mutant is KILLED when the invariant's check fails with it and passes without it;
//! SURVIVED (a defect in the check) when the check still passes; INVALID when the check already
//! fails on the unmutated run (nothing is proven either way). Mutations are compiled into the
//! engine but only this flag and the tests turn them on.

use assay_engine::contract::{Binding, Contract};
use assay_engine::decoder::Mutation;
use assay_engine::{DType, Model};
use serde::Serialize;

use crate::numeric::{self, BackendRun, Golden, Tokens};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Killed,
    Survived,
    Invalid,
    /// The mutation changes nothing in this file (expanding an all-f32 model to f32).
    NotApplicable,
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

/// How a check came out in one run.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckOutcome {
    Holds,
    Fails(String),
    /// The run has no such stage or invariant (a check that cannot run proves nothing).
    Absent,
}

/// How `check` (`stage NAME` or `invariant ID`) came out in `run`.
pub fn outcome(run: &BackendRun, check: &str) -> CheckOutcome {
    let e = |v: f64| format!("{v:.1e}");
    let refused = || match &run.error {
        Some(err) if run.stages.is_empty() => CheckOutcome::Fails(format!("refused: {err}")),
        _ => CheckOutcome::Absent,
    };
    match check.split_once(' ') {
        Some(("stage", stage)) => {
            let base = |name: &str| name.trim_start_matches("kv.").rsplit_once('-').map_or(name, |(b, _)| b).to_owned();
            let mut checks = run.stages.iter().chain(&run.kv_stages).filter(|s| base(&s.stage) == stage).peekable();
            if checks.peek().is_none() {
                // A run refused before the stage was computed (a shape error) has caught it too.
                return refused();
            }
            match checks.find(|s| !s.pass) {
                None => CheckOutcome::Holds,
                Some(s) => {
                    let bound = run.tolerance.map_or("—".into(), |t| e(t.nmse));
                    CheckOutcome::Fails(match s.first_non_finite {
                        Some(i) => format!("stage {}: NaN/Inf at {i}", s.stage),
                        None if s.nmse.is_infinite() => format!("stage {}: not produced", s.stage),
                        None => format!("stage {}: NMSE {} > {bound}", s.stage, e(s.nmse)),
                    })
                }
            }
        }
        Some(("invariant", id)) => match run.invariants.iter().find(|i| i.id == id) {
            Some(i) if !i.pass => CheckOutcome::Fails(format!("{id}: {}", i.detail)),
            Some(_) => CheckOutcome::Holds,
            None => refused(),
        },
        _ => CheckOutcome::Absent,
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
            let inert = mutation == Mutation::ExpandToF32
                && !model.tensors.iter().any(|t| t.shape.len() >= 2 && t.dtype != DType::F32);
            let (verdict, detail) = match outcome(clean, &check) {
                _ if inert => (Verdict::NotApplicable, "every matrix of this file is already f32".into()),
                CheckOutcome::Fails(why) => (Verdict::Invalid, format!("fails without the mutant: {why}")),
                CheckOutcome::Absent => (Verdict::Invalid, "the check does not run on this model".into()),
                CheckOutcome::Holds => {
                    let mutated =
                        numeric::run_named(clean.backend, contract, binding, model, Some(golden), tokens, &[mutation])
                            .expect("the clean run's backend exists");
                    match outcome(&mutated, &check) {
                        CheckOutcome::Fails(why) => (Verdict::Killed, why),
                        CheckOutcome::Holds => (Verdict::Survived, "the check still passes".into()),
                        CheckOutcome::Absent => (Verdict::Survived, "the check did not run with the mutant".into()),
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
