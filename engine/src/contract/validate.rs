//! Load-time validation of a contract: every check that needs no model file.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::expr::{self, Expr, Ty};
use super::schema::{BiasGroup, ContractDoc, ExprText, FfnKind, Located, NormKind, QkvLayout, SCHEMA_VERSION};
use super::vocab::{self, Role};
use super::{Contract, ContractError, ContractErrors, Hparam, RoleDef};
use crate::decoder::Mutation;
use crate::dtype::DType;

/// Hyperparameters the generic decoder reads by name; every contract declares them.
const CORE_HPARAMS: &[&str] = &["n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "head_dim", "norm_eps"];

struct Errors {
    source: String,
    list: Vec<ContractError>,
}

impl Errors {
    fn at<T>(&mut self, loc: &Located<T>, message: impl Into<String>) {
        self.list.push(ContractError {
            source: self.source.clone(),
            line: loc.line,
            column: loc.column,
            message: message.into(),
        });
    }
}

/// Parses an expression written at `loc`, reporting syntax errors there.
fn parse_expr(errors: &mut Errors, loc: &Located<ExprText>, what: &str) -> Option<Expr> {
    match expr::parse(&loc.value.0) {
        Ok(e) => Some(e),
        Err(e) => {
            errors.at(loc, format!("{what} `{}`: {} (at character {})", loc.value, e.message, e.column + 1));
            None
        }
    }
}

pub(super) fn validate(doc: ContractDoc, source: &str) -> Result<Contract, ContractErrors> {
    let mut errors = Errors { source: source.to_owned(), list: Vec::new() };

    if let Some(stem) = Path::new(source).file_stem().and_then(|s| s.to_str())
        && stem != doc.contract.value
    {
        errors.at(
            &doc.contract,
            format!("contract `{}` must live in a file named `{}.yaml`", doc.contract.value, doc.contract.value),
        );
    }
    if doc.schema_version.value != SCHEMA_VERSION {
        errors.at(
            &doc.schema_version,
            format!(
                "schema_version {} is not the version this build reads ({SCHEMA_VERSION})",
                doc.schema_version.value
            ),
        );
    }

    let hparam_types: HashMap<&str, Ty> = doc.hparams.iter().map(|(k, v)| (k.value.as_str(), v.ty)).collect();
    let lookup = |name: &str| hparam_types.get(name).copied();

    // Dtype classes.
    let mut classes: HashMap<&str, Vec<DType>> = HashMap::new();
    for (name, members) in &doc.dtype_classes {
        let mut dtypes = Vec::new();
        for m in members {
            match m.value.parse::<DType>() {
                Ok(d) => dtypes.push(d),
                Err(e) => errors.at(m, e.to_string()),
            }
        }
        classes.insert(name.value.as_str(), dtypes);
    }

    // Tensor roles.
    let mut roles: Vec<RoleDef> = Vec::new();
    let declared: HashSet<Role> = doc.tensors.keys().filter_map(|k| Role::parse(k)).collect();
    for (key, spec) in &doc.tensors {
        let Some(role) = Role::parse(key) else {
            let known: Vec<&str> = vocab::role_bases().collect();
            errors.at(
                key,
                format!(
                    "unknown tensor role `{}`: expected BASE.weight or BASE.bias with BASE one of {}",
                    key.value,
                    known.join(", ")
                ),
            );
            continue;
        };
        if let Some(hf) = &spec.hf {
            if hf.contains("{L}") != role.per_layer {
                let want = if role.per_layer {
                    "must contain `{L}`: the role is per layer"
                } else {
                    "must not contain `{L}`: the role is not per layer"
                };
                errors.at(hf, format!("hf name `{}` {want}", hf.value));
            }
            if hf.contains("{E}") && !role.is_expert_stack() {
                errors.at(hf, format!("hf name `{}` has `{{E}}` but `{role}` is not an expert stack", hf.value));
            }
        }
        if spec.hf_transposed && spec.shape.len() != 2 {
            errors.at(key, "hf_transposed needs a 2-D shape");
        }
        if role.is_expert_stack() && spec.shape.len() < 2 {
            errors.at(key, "an expert stack's shape is [n_expert, …]");
        }
        let mut shape = Vec::new();
        for dim in &spec.shape {
            let Some(e) = parse_expr(&mut errors, dim, "shape dimension") else { continue };
            match e.ty(&lookup) {
                Ok(Ty::Int) => shape.push(e),
                Ok(Ty::Float) => errors
                    .at(dim, format!("shape dimension `{}` is a float; shapes are integers (use int(...))", dim.value)),
                Err(err) => errors.at(
                    dim,
                    format!("shape dimension `{}`: {} (at character {})", dim.value, err.message, err.column + 1),
                ),
            }
        }
        let allowed = match classes.get(spec.dtypes.value.as_str()) {
            Some(d) => d.clone(),
            None => {
                let known: Vec<&str> = classes.keys().copied().collect();
                errors.at(
                    &spec.dtypes,
                    format!("unknown dtype class `{}` (declared: {})", spec.dtypes.value, known.join(", ")),
                );
                Vec::new()
            }
        };
        let tied_to = spec.tied_to.as_ref().and_then(|t| match Role::parse(t) {
            Some(r) if declared.contains(&r) && r != role => {
                let target = &doc.tensors[t];
                let same = target.shape.iter().map(|d| &d.value).eq(spec.shape.iter().map(|d| &d.value));
                if !same {
                    errors.at(t, format!("`{role}` is tied to `{r}` but their shapes are written differently"));
                }
                Some(r)
            }
            _ => {
                errors.at(t, format!("tied_to `{}` is not another role of this contract", t.value));
                None
            }
        });
        roles.push(RoleDef { role, spec: spec.clone(), shape, class: spec.dtypes.value.clone(), allowed, tied_to });
    }

    // Hyperparameters: sources, defaults, inference, and an evaluation order.
    let mut hparams: Vec<Hparam> = Vec::new();
    for (name, spec) in &doc.hparams {
        if !is_identifier(name) || matches!(name.value.as_str(), "int" | "KiB" | "MiB" | "GiB") {
            errors.at(
                name,
                format!("hyperparameter name `{}` must be an identifier other than int, KiB, MiB, GiB", name.value),
            );
        }
        let default = spec.default.as_ref().and_then(|d| {
            let e = parse_expr(&mut errors, d, "default")?;
            match e.ty(&lookup) {
                Ok(Ty::Float) if spec.ty == Ty::Int => {
                    errors.at(
                        d,
                        format!("default `{}` is a float but `{}` is an int (use int(...))", d.value, name.value),
                    );
                    None
                }
                Ok(_) => Some(e),
                Err(err) => {
                    errors.at(d, format!("default `{}`: {} (at character {})", d.value, err.message, err.column + 1));
                    None
                }
            }
        });
        if let Some(inf) = &spec.infer {
            match Role::parse(&inf.tensor).and_then(|r| roles.iter().find(|d| d.role == r)) {
                Some(def) if inf.dim < def.spec.shape.len() => {}
                Some(def) => errors.at(
                    inf,
                    format!(
                        "infer: `{}` has {} dimensions, dim {} does not exist",
                        inf.tensor,
                        def.spec.shape.len(),
                        inf.dim
                    ),
                ),
                None => errors.at(inf, format!("infer: `{}` is not a tensor role of this contract", inf.tensor)),
            }
            if spec.ty != Ty::Int {
                errors.at(inf, "infer gives an integer; the hyperparameter must be `type: int`");
            }
        }
        if spec.gguf.is_none()
            && spec.hf.is_none()
            && spec.apr.is_none()
            && spec.default.is_none()
            && spec.infer.is_none()
        {
            errors.at(
                name,
                format!(
                    "hyperparameter `{}` has no source: give a gguf, hf or apr key, a default or infer",
                    name.value
                ),
            );
        }
        hparams.push(Hparam { name: name.value.clone(), ty: spec.ty, spec: spec.clone(), default });
    }
    let hparams = order_hparams(hparams, &doc, &mut errors);
    for required in CORE_HPARAMS {
        if !hparam_types.contains_key(required) {
            errors.list.push(ContractError {
                source: source.to_owned(),
                line: 0,
                column: 0,
                message: format!("hparams: the decoder needs `{required}`"),
            });
        }
    }
    if let Some(t) = hparam_types.get("norm_eps")
        && *t != Ty::Float
    {
        errors.at(&doc.forward, "hparam `norm_eps` must be a float");
    }

    forward_agrees_with_roles(&doc, &declared, &hparam_types, &mut errors);
    check_stages(&doc, &mut errors);
    check_tolerances(&doc, &mut errors);
    check_invariants(&doc, &mut errors);
    check_memory(&doc, &hparam_types, &mut errors);

    if errors.list.is_empty() {
        Ok(Contract { doc, source: source.to_owned(), hparams, roles })
    } else {
        Err(ContractErrors(errors.list))
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// Orders hyperparameters so that each default only uses earlier ones; reports cycles.
fn order_hparams(mut pending: Vec<Hparam>, doc: &ContractDoc, errors: &mut Errors) -> Vec<Hparam> {
    let mut done: HashSet<String> = HashSet::new();
    let mut ordered = Vec::new();
    while !pending.is_empty() {
        let ready = pending.iter().position(|h| {
            h.default.as_ref().is_none_or(|d| {
                d.names().iter().all(|n| done.contains(*n) || !doc.hparams.contains_key(&Located::new(n.to_string())))
            })
        });
        match ready {
            Some(i) => {
                let h = pending.remove(i);
                done.insert(h.name.clone());
                ordered.push(h);
            }
            None => {
                let names: Vec<&str> = pending.iter().map(|h| h.name.as_str()).collect();
                let first = doc.hparams.keys().find(|k| k.value == names[0]).expect("pending names are keys");
                errors.at(first, format!("the defaults of {} depend on each other in a cycle", names.join(", ")));
                return ordered;
            }
        }
    }
    ordered
}

/// The forward block and the tensor roles describe the same model; any disagreement is an
/// authoring error that would otherwise surface as a wrong forward pass.
fn forward_agrees_with_roles(
    doc: &ContractDoc,
    declared: &HashSet<Role>,
    hparams: &HashMap<&str, Ty>,
    errors: &mut Errors,
) {
    let f = &doc.forward.value;
    let has = |key: &str| Role::parse(key).is_some_and(|r| declared.contains(&r));
    let need = |cond: bool, present: bool, what: &str, errors: &mut Errors| {
        if cond != present {
            let verb = if cond { "requires" } else { "forbids" };
            errors.at(&doc.forward, format!("forward {verb} {what}"));
        }
    };

    for base in ["attn_norm", "ffn_norm", "output_norm"] {
        if has(&format!("{base}.weight")) {
            let what = format!(
                "`{base}.bias` (norm: {})",
                if f.norm == NormKind::Layer { "layer has a bias" } else { "rms has no bias" }
            );
            need(f.norm == NormKind::Layer, has(&format!("{base}.bias")), &what, errors);
        }
    }
    need(
        f.qk_norm,
        has("attn_q_norm.weight") && has("attn_k_norm.weight"),
        "`attn_q_norm.weight` and `attn_k_norm.weight` (qk_norm)",
        errors,
    );
    if !f.qk_norm && (has("attn_q_norm.weight") || has("attn_k_norm.weight")) {
        errors.at(&doc.forward, "q/k norm roles are declared but qk_norm is false");
    }
    let separate = has("attn_q.weight") && has("attn_k.weight") && has("attn_v.weight");
    match f.qkv {
        QkvLayout::Separate => need(
            true,
            separate && !has("attn_qkv.weight"),
            "attn_q/k/v.weight and no attn_qkv.weight (qkv: separate)",
            errors,
        ),
        QkvLayout::Fused => need(
            true,
            has("attn_qkv.weight") && !has("attn_q.weight"),
            "attn_qkv.weight and no attn_q/k/v.weight (qkv: fused)",
            errors,
        ),
    }
    let biases: HashSet<BiasGroup> = f.biases.iter().copied().collect();
    let qkv_bias = (has("attn_q.bias") && has("attn_k.bias") && has("attn_v.bias")) || has("attn_qkv.bias");
    need(biases.contains(&BiasGroup::Qkv), qkv_bias, "q/k/v bias roles (biases: qkv)", errors);
    need(
        biases.contains(&BiasGroup::AttnOutput),
        has("attn_output.bias"),
        "`attn_output.bias` (biases: attn_output)",
        errors,
    );
    need(
        biases.contains(&BiasGroup::Ffn),
        has("ffn_up.bias") && has("ffn_down.bias"),
        "`ffn_up.bias` and `ffn_down.bias` (biases: ffn)",
        errors,
    );
    need(biases.contains(&BiasGroup::Output), has("output.bias"), "`output.bias` (biases: output)", errors);

    let dense = ["ffn_up.weight", "ffn_down.weight"].iter().all(|k| has(k));
    let experts = ["ffn_gate_inp.weight", "ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight"]
        .iter()
        .all(|k| has(k));
    match f.ffn {
        FfnKind::Swiglu => need(true, dense && has("ffn_gate.weight"), "ffn_gate/up/down.weight (ffn: swiglu)", errors),
        FfnKind::Mlp => {
            need(true, dense && !has("ffn_gate.weight"), "ffn_up/down.weight and no ffn_gate.weight (ffn: mlp)", errors)
        }
        FfnKind::Moe => need(true, experts, "ffn_gate_inp and ffn_{gate,up,down}_exps weights (ffn: moe)", errors),
    }
    need(f.ffn == FfnKind::Moe, f.moe.is_some(), "a `moe:` block exactly when ffn is moe", errors);
    if f.ffn == FfnKind::Moe {
        for h in ["n_expert", "n_expert_used"] {
            need(true, hparams.contains_key(h), &format!("hparam `{h}` (ffn: moe)"), errors);
        }
    }
    let shared = ["ffn_gate_inp_shexp.weight", "ffn_gate_shexp.weight", "ffn_up_shexp.weight", "ffn_down_shexp.weight"];
    let shared_expert = f.moe.is_some_and(|m| m.shared_expert);
    need(shared_expert, shared.iter().all(|k| has(k)), "the shared-expert roles *_shexp (moe.shared_expert)", errors);
    need(
        !f.parallel_residual,
        has("ffn_norm.weight"),
        "`ffn_norm.weight` (parallel_residual: false has a second norm)",
        errors,
    );
    need(f.learned_positions, has("position_embd.weight"), "`position_embd.weight` (learned_positions)", errors);
    if f.rope.is_some() {
        for h in ["rope_theta", "n_rot"] {
            need(true, hparams.contains_key(h), &format!("hparam `{h}` (rope)"), errors);
        }
    } else if has("rope_freqs.weight") {
        errors.at(&doc.forward, "`rope_freqs.weight` is declared but the forward has no rope");
    }
}

/// Stage ids must be known, unique, and match the forward's variants.
fn check_stages(doc: &ContractDoc, errors: &mut Errors) {
    let f = &doc.forward.value;
    let mut seen = HashSet::new();
    for s in &doc.stages {
        if !vocab::STAGES.contains(&s.value.as_str()) {
            errors.at(s, format!("unknown stage `{}` (known: {})", s.value, vocab::STAGES.join(", ")));
        }
        if !seen.insert(s.value.as_str()) {
            errors.at(s, format!("stage `{}` is listed twice", s.value));
        }
    }
    let moe = f.ffn == FfnKind::Moe;
    let shared = f.moe.is_some_and(|m| m.shared_expert);
    let rules: &[(&str, bool, &str)] = &[
        ("Qcur_normed", f.qk_norm, "qk_norm"),
        ("Kcur_normed", f.qk_norm, "qk_norm"),
        ("inp_pos_embd", f.learned_positions, "learned_positions"),
        ("ffn_moe_logits", moe, "ffn: moe"),
        ("ffn_moe_probs", moe, "ffn: moe"),
        ("ffn_moe_topk", moe, "ffn: moe"),
        ("ffn_moe_weights_norm", moe && f.moe.is_some_and(|m| m.renormalize), "moe.renormalize"),
        ("ffn_moe_out", moe, "ffn: moe"),
        ("ffn_shexp_out", shared, "moe.shared_expert"),
        ("ffn_norm", !f.parallel_residual, "a second norm (parallel_residual: false)"),
        ("ffn_gate", f.ffn == FfnKind::Swiglu, "ffn: swiglu"),
        ("ffn_up", !moe, "a dense FFN"),
        ("ffn_act", !moe, "a dense FFN"),
    ];
    for &(stage, expected, because) in rules {
        let listed = seen.contains(stage);
        if listed != expected {
            let verb = if expected { "must list" } else { "must not list" };
            errors.at(
                &doc.forward,
                format!("stages {verb} `{stage}` ({because}{})", if expected { "" } else { " is off" }),
            );
        }
    }
    // Stages a forward may trace but need not list.
    let optional: &[(&str, bool, &str)] =
        &[("ffn_moe_weights", moe, "ffn: moe"), ("ffn_shexp", shared, "moe.shared_expert")];
    for &(stage, allowed, because) in optional {
        if seen.contains(stage) && !allowed {
            errors.at(&doc.forward, format!("stages must not list `{stage}` ({because} is off)"));
        }
    }
    for stage in ["Qcur_rope", "Kcur_rope"] {
        if seen.contains(stage) && f.rope.is_none() {
            errors.at(&doc.forward, format!("stage `{stage}` needs a rope"));
        }
    }
    for stage in ["inp_embd", "attn_norm", "kqv_out", "l_out", "result_norm", "result_output"] {
        if !seen.contains(stage) {
            errors.at(&doc.forward, format!("stages must list `{stage}` (every decoder has it)"));
        }
    }
}

/// Memory bounds parse and use only model quantities and hyperparameters.
fn check_memory(doc: &ContractDoc, hparams: &HashMap<&str, Ty>, errors: &mut Errors) {
    let Some(m) = &doc.memory else { return };
    for (what, bound) in [("rss_peak", &m.rss_peak), ("vram_peak", &m.vram_peak)] {
        let Some(loc) = bound else { continue };
        let Some(e) = parse_expr(errors, loc, what) else { continue };
        for name in e.names() {
            if !crate::memory::is_quantity(name) && !hparams.contains_key(name) {
                errors.at(
                    loc,
                    format!(
                        "{what} `{}`: `{name}` is neither a model quantity ({}, weight_bytes_<dtype>) nor a hyperparameter",
                        loc.value,
                        crate::memory::QUANTITIES.join(", ")
                    ),
                );
            }
        }
    }
}

/// Every invariant has a unique id, a check the harness can run and a known mutation.
fn check_invariants(doc: &ContractDoc, errors: &mut Errors) {
    let mut ids = HashSet::new();
    for inv in &doc.invariants {
        let id = &inv.id.value;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-') {
            errors.at(&inv.id, format!("invariant id `{id}`: use upper case, digits and dashes"));
        }
        if !ids.insert(id.as_str()) {
            errors.at(&inv.id, format!("invariant `{id}` is declared twice"));
        }
        match inv.check.value.split_once(' ') {
            Some(("stage", stage)) if doc.stages.iter().any(|s| s.value == stage) => {}
            Some(("stage", stage)) => {
                errors.at(&inv.check, format!("check `stage {stage}`: the contract's stages do not list `{stage}`"))
            }
            Some(("invariant", name)) if vocab::RUN_INVARIANTS.contains(&name) => {}
            Some(("invariant", name)) => errors.at(
                &inv.check,
                format!("check `invariant {name}`: unknown (known: {})", vocab::RUN_INVARIANTS.join(", ")),
            ),
            _ => errors.at(&inv.check, format!("check `{}`: expected `stage NAME` or `invariant ID`", inv.check.value)),
        }
        for b in inv.backends.iter().flatten() {
            if !TOLERANCE_BACKENDS.contains(&b.value.as_str()) {
                errors
                    .at(b, format!("unknown backend `{}`: expected one of {}", b.value, TOLERANCE_BACKENDS.join(", ")));
            }
        }
        if Mutation::named(&inv.falsify.value).is_none() {
            let known: Vec<&str> = Mutation::NAMED.iter().map(|(n, _)| *n).collect();
            errors.at(&inv.falsify, format!("unknown mutation `{}` (known: {})", inv.falsify.value, known.join(", ")));
        }
    }
}

/// Backends a tolerance may be declared for.
pub const TOLERANCE_BACKENDS: &[&str] = &["reference", "cpu", "cuda", "wgpu"];

fn check_tolerances(doc: &ContractDoc, errors: &mut Errors) {
    for (backend, by_dtype) in &doc.tolerances {
        if !TOLERANCE_BACKENDS.contains(&backend.value.as_str()) {
            errors.at(
                backend,
                format!("unknown backend `{}`: expected one of {}", backend.value, TOLERANCE_BACKENDS.join(", ")),
            );
        }
        for (dtype, tol) in by_dtype {
            if dtype.value != "default"
                && let Err(e) = dtype.value.parse::<DType>()
            {
                errors.at(dtype, format!("{e} (or `default`)"));
            }
            let bounds = [
                ("nmse", Some(tol.nmse)),
                ("logits_kl", Some(tol.logits_kl)),
                ("llamacpp_kl", tol.llamacpp_kl),
                ("route_margin", tol.route_margin),
            ];
            for (name, v) in bounds {
                if let Some(v) = v
                    && !(v.is_finite() && v >= 0.0)
                {
                    errors.at(dtype, format!("tolerance `{name}` = {v} must be a finite number ≥ 0"));
                }
            }
        }
    }
}
