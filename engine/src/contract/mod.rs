//! YAML contracts: the single source of truth for an architecture's tensor names, shapes,
//! hyperparameters and block variants.
//!
//! Loading ([`Contract::from_yaml`]) parses the YAML into [`schema::ContractDoc`] and validates
//! it completely — names, expression syntax and types, references, and the agreement of the
//! forward block with the tensor roles — reporting every problem with file, line and column.
//! Binding ([`bind::bind`]) resolves a validated contract against a model file.

pub mod bind;
pub mod expr;
pub mod schema;
mod validate;
pub mod vocab;

use std::fmt;
use std::path::Path;

use crate::dtype::DType;
use expr::{Expr, Ty};
use schema::{ContractDoc, HparamSpec, TensorSpec};
use vocab::Role;

pub use bind::{Binding, Scheme, Violation, bind};

/// A contract that loaded and validated.
#[derive(Debug, Clone)]
pub struct Contract {
    pub doc: ContractDoc,
    /// Where it came from (a path, or `contracts/NAME.yaml` for the embedded copies).
    pub source: String,
    /// Hyperparameters in an order where every default only uses earlier ones.
    pub hparams: Vec<Hparam>,
    /// Tensor roles in declaration order.
    pub roles: Vec<RoleDef>,
}

/// A validated hyperparameter.
#[derive(Debug, Clone)]
pub struct Hparam {
    pub name: String,
    pub ty: Ty,
    pub spec: HparamSpec,
    pub default: Option<Expr>,
}

/// A validated tensor role.
#[derive(Debug, Clone)]
pub struct RoleDef {
    pub role: Role,
    pub spec: TensorSpec,
    /// Row-major shape expressions, outermost first.
    pub shape: Vec<Expr>,
    /// The dtype class's name and members.
    pub class: String,
    pub allowed: Vec<DType>,
    pub tied_to: Option<Role>,
}

impl Contract {
    /// The contract's name (`llama`).
    pub fn name(&self) -> &str {
        &self.doc.contract.value
    }

    /// Parses and validates a contract. `source` names it in errors; when it is a path, its
    /// file stem must equal the contract's name.
    pub fn from_yaml(text: &str, source: &str) -> Result<Contract, ContractErrors> {
        let doc: ContractDoc = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            ContractErrors(vec![ContractError { source: source.to_owned(), line, column, message: yaml_message(&e) }])
        })?;
        validate::validate(doc, source)
    }

    /// Reads and validates a contract file.
    pub fn load(path: &Path) -> Result<Contract, ContractErrors> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ContractErrors(vec![ContractError { source: source.clone(), line: 0, column: 0, message: e.to_string() }])
        })?;
        Self::from_yaml(&text, &source)
    }

    pub fn hparam(&self, name: &str) -> Option<&Hparam> {
        self.hparams.iter().find(|h| h.name == name)
    }

    pub fn role(&self, role: Role) -> Option<&RoleDef> {
        self.roles.iter().find(|r| r.role == role)
    }

    /// The tolerance for `backend` on models of weight dtype `dtype`: the dtype's own entry, else
    /// the backend's `default`.
    pub fn tolerance(&self, backend: &str, dtype: DType) -> Option<schema::Tolerance> {
        let by_dtype = self.doc.tolerances.iter().find(|(b, _)| b.value == backend)?.1;
        let find = |key: &str| by_dtype.iter().find(|(d, _)| d.value == key).map(|(_, t)| *t);
        find(dtype.name()).or_else(|| find("default"))
    }

    /// Whether this contract claims `architecture` for files of `format`.
    pub fn claims(&self, format: crate::model::Format, architecture: &str) -> bool {
        let names = &self.doc.architectures;
        let list = match format {
            crate::model::Format::Gguf => &names.gguf,
            crate::model::Format::SafeTensors => &names.hf,
            crate::model::Format::Apr => &names.apr,
        };
        list.iter().any(|a| a == architecture)
    }
}

/// serde-saphyr's message without its own location suffix (we print `file:line:col:` first).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    let first = full.lines().next().unwrap_or(&full);
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_owned(),
        None => first.to_owned(),
    }
}

/// One problem in a contract, at a YAML position (1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractError {
    pub source: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for ContractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.source, self.line, self.column, self.message)
    }
}

/// Every problem found in a contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ContractErrors(pub Vec<ContractError>);

impl fmt::Display for ContractErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
