//! Binding a contract to a model file: resolve every hyperparameter, find the tensor of every
//! role (per layer, per expert), and check shapes and dtypes. The result lists what was found
//! and every violation; the decoder later takes its weights from the same binding.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;

use super::expr::{Num, Ty};
use super::schema::RopeStyle;
use super::vocab::Role;
use super::{Contract, Hparam, RoleDef};
use crate::dtype::DType;
use crate::model::{Format, MetaValue, Model};

/// How a file names its tensors: as llama.cpp's converter does, or as HF checkpoints do. GGUF
/// files use GGUF names and SafeTensors HF names; an APR file may use either.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Gguf,
    Hf,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Gguf => "gguf",
            Scheme::Hf => "hf",
        })
    }
}

/// Where a hyperparameter's value came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HparamSource {
    /// The file's metadata key.
    Key { key: String },
    /// The contract's default expression.
    Default { expr: String },
    /// A dimension of a tensor.
    Inferred { tensor: String, dim: usize },
    /// Nowhere: a violation says why.
    Missing,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BoundHparam {
    pub name: String,
    #[serde(serialize_with = "ser_num")]
    pub value: Option<Num>,
    pub source: HparamSource,
}

fn ser_num<S: serde::Serializer>(v: &Option<Num>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(Num::Int(i)) => s.serialize_i64(*i),
        Some(Num::Float(f)) => s.serialize_f64(*f),
        None => s.serialize_none(),
    }
}

/// What became of one expected tensor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorStatus {
    Ok,
    /// Absent and optional.
    Absent,
    /// Absent; the forward uses the tied role's tensor.
    Tied,
    /// A violation was recorded for it.
    Violation,
}

/// One expected tensor: a role at a layer (and expert, for HF's per-expert tensors).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BoundTensor {
    #[serde(serialize_with = "ser_display")]
    pub role: Role,
    pub layer: Option<usize>,
    pub expert: Option<usize>,
    pub name: String,
    /// Row-major shape the contract expects in this file; `None` when hyperparameters are missing.
    pub expected_shape: Option<Vec<u64>>,
    pub dtype: Option<DType>,
    pub found_shape: Option<Vec<u64>>,
    pub status: TensorStatus,
}

fn ser_display<T: fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// A way the file breaks the contract.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Violation {
    ArchitectureMismatch { found: String, format: Format, expected: Vec<String> },
    MissingHparam { hparam: String, tried: Vec<String> },
    HparamType { hparam: String, key: String, expected: String, found: String },
    HparamNotUniform { hparam: String, key: String, values: Vec<i128> },
    HparamInvalid { hparam: String, message: String },
    MissingTensor { role: String, tensor: String },
    ShapeMismatch { role: String, tensor: String, expression: String, expected: Vec<u64>, found: Vec<u64> },
    ShapeInvalid { role: String, expression: String, message: String },
    DTypeNotAllowed { role: String, tensor: String, dtype: DType, class: String, allowed: Vec<DType> },
    UnclaimedTensor { tensor: String },
    RopeStyleMismatch { key: String, found: String, expected: RopeStyle },
}

impl Violation {
    /// A stable short code for tables and filters.
    pub fn code(&self) -> &'static str {
        match self {
            Violation::ArchitectureMismatch { .. } => "architecture",
            Violation::MissingHparam { .. } => "missing-hparam",
            Violation::HparamType { .. } => "hparam-type",
            Violation::HparamNotUniform { .. } => "hparam-per-layer",
            Violation::HparamInvalid { .. } => "hparam-invalid",
            Violation::MissingTensor { .. } => "missing-tensor",
            Violation::ShapeMismatch { .. } => "shape",
            Violation::ShapeInvalid { .. } => "shape-invalid",
            Violation::DTypeNotAllowed { .. } => "dtype",
            Violation::UnclaimedTensor { .. } => "unclaimed-tensor",
            Violation::RopeStyleMismatch { .. } => "rope-style",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims = |d: &[u64]| format!("[{}]", d.iter().map(u64::to_string).collect::<Vec<_>>().join(", "));
        match self {
            Violation::ArchitectureMismatch { found, format, expected } => {
                write!(f, "{format} architecture `{found}` is not one this contract claims ({})", expected.join(", "))
            }
            Violation::MissingHparam { hparam, tried } => {
                write!(f, "hyperparameter `{hparam}` is missing (looked for {}) and has no default", tried.join(", "))
            }
            Violation::HparamType { hparam, key, expected, found } => {
                write!(f, "hyperparameter `{hparam}`: key `{key}` holds {found}, expected {expected}")
            }
            Violation::HparamNotUniform { hparam, key, values } => {
                write!(
                    f,
                    "hyperparameter `{hparam}`: key `{key}` differs per layer ({values:?}); per-layer values are not supported"
                )
            }
            Violation::HparamInvalid { hparam, message } => write!(f, "hyperparameter `{hparam}`: {message}"),
            Violation::MissingTensor { role, tensor } => write!(f, "tensor `{tensor}` (role {role}) is missing"),
            Violation::ShapeMismatch { role, tensor, expression, expected, found } => write!(
                f,
                "tensor `{tensor}` (role {role}) has shape {}; the contract says {expression} = {}",
                dims(found),
                dims(expected)
            ),
            Violation::ShapeInvalid { role, expression, message } => {
                write!(f, "role {role}: shape {expression} cannot be evaluated: {message}")
            }
            Violation::DTypeNotAllowed { role, tensor, dtype, class, allowed } => {
                let allowed: Vec<&str> = allowed.iter().map(|d| d.name()).collect();
                write!(f, "tensor `{tensor}` (role {role}) is {dtype}; class `{class}` allows {}", allowed.join(", "))
            }
            Violation::UnclaimedTensor { tensor } => {
                write!(f, "tensor `{tensor}` is not claimed by any role of the contract")
            }
            Violation::RopeStyleMismatch { key, found, expected } => {
                write!(
                    f,
                    "metadata `{key}` = {found} says one rope style, the contract expects {expected:?} for these tensor names"
                )
            }
        }
    }
}

/// A contract resolved against a model.
#[derive(Clone, Debug, Serialize)]
pub struct Binding {
    pub contract: String,
    pub scheme: Scheme,
    /// The rope style the forward must use for this file; `None` without rope.
    pub rope: Option<RopeStyle>,
    pub hparams: Vec<BoundHparam>,
    pub tensors: Vec<BoundTensor>,
    pub violations: Vec<Violation>,
}

impl Binding {
    pub fn hparam(&self, name: &str) -> Option<Num> {
        self.hparams.iter().find(|h| h.name == name).and_then(|h| h.value)
    }

    /// The model's weight dtype: the dtype holding most elements of its matrices (ties go to
    /// the first met). `None` when no matrix was found.
    pub fn weight_dtype(&self) -> Option<DType> {
        let mut totals: Vec<(DType, u64)> = Vec::new();
        for t in &self.tensors {
            let (Some(dtype), Some(shape)) = (t.dtype, &t.found_shape) else { continue };
            if shape.len() < 2 {
                continue;
            }
            let n: u64 = shape.iter().product();
            match totals.iter_mut().find(|(d, _)| *d == dtype) {
                Some((_, total)) => *total += n,
                None => totals.push((dtype, n)),
            }
        }
        totals
            .into_iter()
            .fold(None, |best: Option<(DType, u64)>, (d, n)| match best {
                Some((_, m)) if m >= n => best,
                _ => Some((d, n)),
            })
            .map(|(d, _)| d)
    }

    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Resolves `contract` against `model`.
pub fn bind(contract: &Contract, model: &Model) -> Binding {
    let mut violations = Vec::new();
    if !contract.claims(model.format, &model.architecture) {
        let names = &contract.doc.architectures;
        let expected = match model.format {
            Format::Gguf => &names.gguf,
            Format::SafeTensors => &names.hf,
            Format::Apr => &names.apr,
        };
        violations.push(Violation::ArchitectureMismatch {
            found: model.architecture.clone(),
            format: model.format,
            expected: expected.clone(),
        });
    }
    let scheme = match model.format {
        Format::Gguf => Scheme::Gguf,
        Format::SafeTensors => Scheme::Hf,
        Format::Apr => detect_scheme(contract, model),
    };

    let mut hparams: Vec<BoundHparam> = Vec::new();
    for h in &contract.hparams {
        let (value, source) = resolve_hparam(h, contract, model, scheme, &hparams, &mut violations);
        hparams.push(BoundHparam { name: h.name.clone(), value, source });
    }
    let value_of = |name: &str| hparams.iter().find(|h| h.name == name).and_then(|h| h.value);

    let mut tensors = Vec::new();
    let mut claimed: HashSet<&str> = HashSet::new();
    let n_layer = value_of("n_layer").and_then(|n| usize::try_from(as_int(n)?).ok());
    for def in &contract.roles {
        let shape = match eval_shape(def, &value_of) {
            Ok(s) => s,
            Err(message) => {
                violations.push(Violation::ShapeInvalid {
                    role: def.role.to_string(),
                    expression: shape_text(def),
                    message,
                });
                None
            }
        };
        let layers: Vec<Option<usize>> = match (def.role.per_layer, n_layer) {
            (false, _) => vec![None],
            (true, Some(n)) => (0..n).map(Some).collect(),
            (true, None) => Vec::new(), // n_layer's own violation says why
        };
        for layer in layers {
            if shape.is_none() {
                // Unknown expert count: the missing hyperparameter is the violation; the file's
                // per-expert tensors of this role are still its own, not unclaimed.
                for t in &model.tensors {
                    if matches_expert_template(def, scheme, layer, &t.name) {
                        claimed.insert(&t.name);
                    }
                }
            }
            for (name, expert, expected) in expected_tensors(def, scheme, layer, shape.as_deref()) {
                let bound = check_tensor(def, contract, model, scheme, name, layer, expert, expected, &mut violations);
                if let Some(t) = model.tensor(&bound.name) {
                    claimed.insert(&t.name);
                }
                tensors.push(bound);
            }
        }
    }
    for t in &model.tensors {
        if !claimed.contains(t.name.as_str()) {
            violations.push(Violation::UnclaimedTensor { tensor: t.name.clone() });
        }
    }

    let rope = contract.doc.forward.rope.map(|r| match scheme {
        Scheme::Gguf => r.gguf,
        Scheme::Hf => r.hf,
    });
    if let (Format::Apr, Some(expected)) = (model.format, rope)
        && let Some(v) = model.metadata.get("rope_type")
    {
        let says = match v.as_i128() {
            Some(0) => Some(RopeStyle::Normal),
            Some(2) => Some(RopeStyle::Neox),
            _ => None,
        };
        if says != Some(expected) {
            violations.push(Violation::RopeStyleMismatch { key: "rope_type".into(), found: v.summary(), expected });
        }
    }

    Binding { contract: contract.name().to_owned(), scheme, rope, hparams, tensors, violations }
}

fn as_int(n: Num) -> Option<i64> {
    match n {
        Num::Int(i) => Some(i),
        Num::Float(_) => None,
    }
}

fn shape_text(def: &RoleDef) -> String {
    format!("[{}]", def.spec.shape.iter().map(|d| d.value.0.clone()).collect::<Vec<_>>().join(", "))
}

/// The role's row-major shape, or `None` when a hyperparameter it uses has no value.
fn eval_shape(def: &RoleDef, value_of: &dyn Fn(&str) -> Option<Num>) -> Result<Option<Vec<u64>>, String> {
    let mut dims = Vec::new();
    for e in &def.shape {
        if e.names().iter().any(|n| value_of(n).is_none()) {
            return Ok(None);
        }
        match e.eval(value_of).map_err(|err| err.message)? {
            Num::Int(d) if d > 0 => dims.push(d as u64),
            other => return Err(format!("dimension {e} = {other} is not a positive integer")),
        }
    }
    Ok(Some(dims))
}

/// The tensor names (with expert index and expected row-major shape) a role expects at a layer.
fn expected_tensors(
    def: &RoleDef,
    scheme: Scheme,
    layer: Option<usize>,
    shape: Option<&[u64]>,
) -> Vec<(String, Option<usize>, Option<Vec<u64>>)> {
    let l = layer.unwrap_or(0);
    match scheme {
        Scheme::Gguf => vec![(def.role.gguf_name(l), None, shape.map(<[u64]>::to_vec))],
        Scheme::Hf => {
            let Some(template) = &def.spec.hf else { return Vec::new() };
            let name = template.replace("{L}", &l.to_string());
            let shape =
                shape.map(|s| if def.spec.hf_transposed { s.iter().rev().copied().collect() } else { s.to_vec() });
            if !name.contains("{E}") {
                return vec![(name, None, shape)];
            }
            // HF stores each expert separately: the stack's outer dimension enumerates them.
            let Some(shape) = shape else { return Vec::new() };
            (0..shape[0] as usize)
                .map(|e| (name.replace("{E}", &e.to_string()), Some(e), Some(shape[1..].to_vec())))
                .collect()
        }
    }
}

/// Whether a found shape is the expected one. ggml pads `ne` with ones, so under GGUF names
/// outer (row-major leading) dimensions of 1 are not part of the shape: llama.cpp's converter
/// writes Qwen2-MoE's `ffn_gate_inp_shexp` as `[1, n_embd]` and its quantizer as `[n_embd]`.
fn same_shape(scheme: Scheme, expected: &[u64], found: &[u64]) -> bool {
    let outer_ones = |s: &[u64]| s.iter().take_while(|&&d| d == 1).count().min(s.len().saturating_sub(1));
    match scheme {
        Scheme::Hf => expected == found,
        Scheme::Gguf => expected[outer_ones(expected)..] == found[outer_ones(found)..],
    }
}

/// Whether `name` is one expert's tensor of an HF per-expert role at `layer`.
fn matches_expert_template(def: &RoleDef, scheme: Scheme, layer: Option<usize>, name: &str) -> bool {
    let Some(template) = def.spec.hf.as_ref().filter(|_| scheme == Scheme::Hf) else { return false };
    let template = template.replace("{L}", &layer.unwrap_or(0).to_string());
    let Some((prefix, suffix)) = template.split_once("{E}") else { return false };
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .is_some_and(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()))
}

#[allow(clippy::too_many_arguments)]
fn check_tensor(
    def: &RoleDef,
    contract: &Contract,
    model: &Model,
    scheme: Scheme,
    name: String,
    layer: Option<usize>,
    expert: Option<usize>,
    expected: Option<Vec<u64>>,
    violations: &mut Vec<Violation>,
) -> BoundTensor {
    let role = def.role.to_string();
    let mut bound = BoundTensor {
        role: def.role,
        layer,
        expert,
        name,
        expected_shape: expected.clone(),
        dtype: None,
        found_shape: None,
        status: TensorStatus::Ok,
    };
    let Some(t) = model.tensor(&bound.name) else {
        bound.status = if let Some(target) = def.tied_to {
            // Tied: the target must itself be present in this file.
            let target_present = contract
                .role(target)
                .map(|tdef| expected_tensors(tdef, scheme, layer, None))
                .is_some_and(|names| names.iter().any(|(n, _, _)| model.tensor(n).is_some()));
            if target_present {
                TensorStatus::Tied
            } else {
                violations.push(Violation::MissingTensor { role: role.clone(), tensor: bound.name.clone() });
                TensorStatus::Violation
            }
        } else if def.spec.optional {
            TensorStatus::Absent
        } else {
            violations.push(Violation::MissingTensor { role: role.clone(), tensor: bound.name.clone() });
            TensorStatus::Violation
        };
        return bound;
    };
    bound.dtype = Some(t.dtype);
    bound.found_shape = Some(t.shape.clone());
    if let Some(expected) = expected
        && !same_shape(scheme, &expected, &t.shape)
    {
        violations.push(Violation::ShapeMismatch {
            role: role.clone(),
            tensor: t.name.clone(),
            expression: shape_text(def),
            expected,
            found: t.shape.clone(),
        });
        bound.status = TensorStatus::Violation;
    }
    if !def.allowed.contains(&t.dtype) {
        violations.push(Violation::DTypeNotAllowed {
            role,
            tensor: t.name.clone(),
            dtype: t.dtype,
            class: def.class.clone(),
            allowed: def.allowed.clone(),
        });
        bound.status = TensorStatus::Violation;
    }
    bound
}

/// Which naming scheme an APR file follows: the one under which more of the contract's
/// layer-0 and global tensor names exist (GGUF on a tie).
fn detect_scheme(contract: &Contract, model: &Model) -> Scheme {
    let hits = |scheme: Scheme| {
        contract
            .roles
            .iter()
            .flat_map(|def| expected_tensors(def, scheme, def.role.per_layer.then_some(0), Some(&[1])))
            .filter(|(name, _, _)| model.tensor(name).is_some())
            .count()
    };
    if hits(Scheme::Hf) > hits(Scheme::Gguf) { Scheme::Hf } else { Scheme::Gguf }
}

fn resolve_hparam(
    h: &Hparam,
    contract: &Contract,
    model: &Model,
    scheme: Scheme,
    resolved: &[BoundHparam],
    violations: &mut Vec<Violation>,
) -> (Option<Num>, HparamSource) {
    let keys = match model.format {
        Format::Gguf => &h.spec.gguf,
        Format::SafeTensors => &h.spec.hf,
        Format::Apr => &h.spec.apr,
    };
    let keys: Vec<String> =
        keys.iter().flat_map(|k| k.all()).map(|k| k.replace("{arch}", &model.architecture)).collect();
    if let Some((key, v)) = keys.iter().find_map(|k| model.metadata.get(k).map(|v| (k, v))) {
        let source = HparamSource::Key { key: key.clone() };
        return match metadata_num(v, h.ty) {
            Ok(n) => (Some(n), source),
            Err(MetaProblem::NotUniform(values)) => {
                violations.push(Violation::HparamNotUniform { hparam: h.name.clone(), key: key.clone(), values });
                (None, source)
            }
            Err(MetaProblem::Type) => {
                violations.push(Violation::HparamType {
                    hparam: h.name.clone(),
                    key: key.clone(),
                    expected: h.ty.to_string(),
                    found: format!("{} {}", v.type_name(), v.summary()),
                });
                (None, source)
            }
        };
    }
    if let Some(default) = &h.default {
        let expr = default.to_string();
        let value_of = |n: &str| resolved.iter().find(|b| b.name == n).and_then(|b| b.value);
        if default.names().iter().any(|n| value_of(n).is_none()) {
            // A dependency is missing; its own violation explains.
            return (None, HparamSource::Default { expr });
        }
        return match default.eval(&value_of) {
            Ok(n) => (Some(coerce(n, h.ty)), HparamSource::Default { expr }),
            Err(e) => {
                violations.push(Violation::HparamInvalid {
                    hparam: h.name.clone(),
                    message: format!("default {expr}: {}", e.message),
                });
                (None, HparamSource::Default { expr })
            }
        };
    }
    if let Some(infer) = &h.spec.infer
        && let Some(def) = Role::parse(&infer.tensor).and_then(|r| contract.role(r))
    {
        let found = expected_tensors(def, scheme, def.role.per_layer.then_some(0), None)
            .into_iter()
            .find_map(|(name, _, _)| model.tensor(&name).map(|t| (name, t.shape.clone())));
        if let Some((name, mut shape)) = found {
            if scheme == Scheme::Hf && def.spec.hf_transposed {
                shape.reverse();
            }
            if let Some(&d) = shape.get(infer.dim) {
                return (Some(Num::Int(d as i64)), HparamSource::Inferred { tensor: name, dim: infer.dim });
            }
        }
    }
    let mut tried: Vec<String> = keys.iter().map(|k| format!("key `{k}`")).collect();
    if let Some(infer) = &h.spec.infer {
        tried.push(format!("dim {} of `{}`", infer.dim, infer.tensor));
    }
    if tried.is_empty() {
        tried.push(format!("no {} key in the contract", model.format.contract_key()));
    }
    violations.push(Violation::MissingHparam { hparam: h.name.clone(), tried });
    (None, HparamSource::Missing)
}

fn coerce(n: Num, ty: Ty) -> Num {
    match (n, ty) {
        (Num::Int(i), Ty::Float) => Num::Float(i as f64),
        _ => n,
    }
}

enum MetaProblem {
    Type,
    NotUniform(Vec<i128>),
}

/// A metadata value as a number of type `ty`. Integers never come from floats; a per-layer
/// array is accepted when every layer has the same value.
fn metadata_num(v: &MetaValue, ty: Ty) -> Result<Num, MetaProblem> {
    let int = |i: i128| i64::try_from(i).map(Num::Int).map_err(|_| MetaProblem::Type);
    match (ty, v) {
        (Ty::Int, MetaValue::Array(a)) => {
            let values = a.as_i128s().filter(|v| !v.is_empty()).ok_or(MetaProblem::Type)?;
            if values.iter().all(|&x| x == values[0]) { int(values[0]) } else { Err(MetaProblem::NotUniform(values)) }
        }
        (Ty::Int, _) => v.as_i128().map_or(Err(MetaProblem::Type), int),
        (Ty::Float, _) => v.as_f64().map(Num::Float).ok_or(MetaProblem::Type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_shapes_ignore_outer_ones_as_ggml_does_and_hf_shapes_do_not() {
        assert!(same_shape(Scheme::Gguf, &[1, 256], &[256]));
        assert!(same_shape(Scheme::Gguf, &[256], &[1, 256]));
        assert!(same_shape(Scheme::Gguf, &[1], &[1, 1]));
        assert!(!same_shape(Scheme::Gguf, &[256, 1], &[256]), "an inner 1 is a real dimension");
        assert!(!same_shape(Scheme::Gguf, &[2, 256], &[256]));
        assert!(!same_shape(Scheme::Hf, &[1, 256], &[256]));
        assert!(same_shape(Scheme::Hf, &[8, 64, 256], &[8, 64, 256]));
    }
}
