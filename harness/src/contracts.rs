//! The contract set: the copies of `contracts/*.yaml` embedded in the binary (so `harness`
//! works from any directory), or the YAML files of a directory given at run time.

use std::path::Path;

use anyhow::{Context, Result, bail};
use assay_engine::Model;
use assay_engine::contract::Contract;

/// `(file name, text)` of every contract in `contracts/`; a test keeps this list complete.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("llama.yaml", include_str!("../../contracts/llama.yaml")),
    ("qwen2.yaml", include_str!("../../contracts/qwen2.yaml")),
    ("qwen3.yaml", include_str!("../../contracts/qwen3.yaml")),
    ("qwen3_moe.yaml", include_str!("../../contracts/qwen3_moe.yaml")),
    ("qwen2_moe.yaml", include_str!("../../contracts/qwen2_moe.yaml")),
    ("gpt2.yaml", include_str!("../../contracts/gpt2.yaml")),
    ("phi2.yaml", include_str!("../../contracts/phi2.yaml")),
];

/// The embedded contracts, validated.
pub fn embedded() -> Result<Vec<Contract>> {
    EMBEDDED
        .iter()
        .map(|(file, text)| Contract::from_yaml(text, &format!("contracts/{file}")).map_err(anyhow::Error::from))
        .collect()
}

/// Every `*.yaml` contract in `dir`, validated, in file-name order.
pub fn load_dir(dir: &Path) -> Result<Vec<Contract>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the contracts directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("{}: no *.yaml contracts", dir.display());
    }
    paths.iter().map(|p| Contract::load(p).map_err(anyhow::Error::from)).collect()
}

/// `--contract` accepts a path to a YAML file or the name of a contract in the set.
pub fn resolve(arg: &str, set: &[Contract]) -> Result<Contract> {
    let path = Path::new(arg);
    if path.is_file() {
        return Ok(Contract::load(path)?);
    }
    match set.iter().find(|c| c.name() == arg) {
        Some(c) => Ok(c.clone()),
        None => {
            let names: Vec<&str> = set.iter().map(Contract::name).collect();
            bail!("no contract file or contract named `{arg}` (known: {})", names.join(", "))
        }
    }
}

/// The contract that claims the model's architecture in its format.
pub fn for_model<'a>(set: &'a [Contract], model: &Model) -> Option<&'a Contract> {
    set.iter().find(|c| c.claims(model.format, &model.architecture))
}

/// Opens a model and finds its contract: `explicit` (a file or a name in the set) or the one that
/// claims the model's architecture.
pub fn open_with_contract(
    path: &Path,
    explicit: Option<&str>,
    set: &crate::cli::ContractSet,
) -> Result<(Model, Contract)> {
    let set = set.load()?;
    let explicit = explicit.map(|c| resolve(c, &set)).transpose()?;
    let model = Model::open(path)?;
    let contract = match explicit {
        Some(c) => c,
        None => match for_model(&set, &model) {
            Some(c) => c.clone(),
            None => bail!("no contract claims {} architecture `{}`; pass --contract", model.format, model.architecture),
        },
    };
    Ok((model, contract))
}
