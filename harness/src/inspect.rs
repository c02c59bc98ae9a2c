//! `harness inspect`: what a model file holds.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use assay_engine::contract::bind::BoundHparam;
use assay_engine::contract::{Contract, bind};
use assay_engine::model::FormatDetails;
use assay_engine::{DType, Model};
use serde::Serialize;

use crate::cli::InspectArgs;
use crate::contracts;
use crate::exit::Outcome;
use crate::render::{bytes, count, dims, table};

/// Per-dtype totals.
#[derive(Debug, Serialize)]
pub struct DTypeTotal {
    pub dtype: DType,
    pub tensors: u64,
    pub params: u64,
    pub bytes: u64,
    /// Whether the engine has kernels for it.
    pub computable: bool,
}

/// The machine-readable inspection (`--json`).
#[derive(Debug, Serialize)]
pub struct Inspection<'a> {
    pub schema: &'static str,
    pub path: String,
    pub format: assay_engine::Format,
    pub details: &'a FormatDetails,
    pub architecture: &'a str,
    /// The contract claiming the architecture, if any.
    pub contract: Option<String>,
    /// Hyperparameters as that contract resolves them (empty without a contract).
    pub hparams: Vec<BoundHparam>,
    pub file_bytes: u64,
    pub params: u64,
    pub tensor_bytes: u64,
    pub tokenizer: &'a Option<assay_engine::TokenizerInfo>,
    pub metadata: BTreeMap<&'a str, &'a assay_engine::MetaValue>,
    pub tensors: &'a [assay_engine::TensorInfo],
    pub totals: Vec<DTypeTotal>,
}

pub fn inspection<'a>(model: &'a Model, contract: Option<&Contract>) -> Inspection<'a> {
    let mut totals: BTreeMap<DType, DTypeTotal> = BTreeMap::new();
    for t in &model.tensors {
        let e = totals.entry(t.dtype).or_insert(DTypeTotal {
            dtype: t.dtype,
            tensors: 0,
            params: 0,
            bytes: 0,
            computable: t.dtype.is_computable(),
        });
        e.tensors += 1;
        e.params += t.n_elems();
        e.bytes += t.len;
    }
    Inspection {
        schema: "assay.inspect/1",
        path: model.path.display().to_string(),
        format: model.format,
        details: &model.details,
        architecture: &model.architecture,
        contract: contract.map(|c| c.name().to_owned()),
        hparams: contract.map(|c| bind(c, model).hparams).unwrap_or_default(),
        file_bytes: model.file_bytes(),
        params: model.tensors.iter().map(|t| t.n_elems()).sum(),
        tensor_bytes: model.tensor_bytes(),
        tokenizer: &model.tokenizer,
        metadata: model.metadata.iter().collect(),
        tensors: &model.tensors,
        totals: totals.into_values().collect(),
    }
}

pub fn run(args: &InspectArgs, out: &mut impl Write) -> Result<Outcome> {
    let set = args.contracts.load()?;
    let model = Model::open(&args.model)?;
    let report = inspection(&model, contracts::for_model(&set, &model));
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        out.write_all(render(&model, &report).as_bytes())?;
    }
    Ok(Outcome::Pass)
}

/// The human rendering.
pub fn render(model: &Model, r: &Inspection<'_>) -> String {
    let mut s = String::new();
    let format = match r.details {
        FormatDetails::Gguf { version, alignment, data_offset } => {
            format!("GGUF v{version} (alignment {alignment}, tensor data at byte {data_offset})")
        }
        FormatDetails::Safetensors { shards, config } => format!(
            "SafeTensors ({} shard{}, {})",
            shards.len(),
            if shards.len() == 1 { "" } else { "s" },
            if config.is_some() { "config.json" } else { "no config.json: no hyperparameters" }
        ),
        FormatDetails::Apr { version, flags, flag_names, data_offset } => {
            format!("APR v{version} (flags {flags:#06x} {}, tensor data at byte {data_offset})", flag_names.join("|"))
        }
    };
    let contract = match &r.contract {
        Some(c) => format!("contract {c}"),
        None => "no contract claims it".into(),
    };
    let tokenizer = match r.tokenizer {
        Some(t) => {
            format!("{}, {} tokens, {} merges (from {})", t.model, count(t.n_tokens), count(t.n_merges), t.source)
        }
        None => "none".into(),
    };
    s += &format!("file:         {}\n", r.path);
    s += &format!("format:       {format}\n");
    s +=
        &format!("architecture: {} ({contract})\n", if r.architecture.is_empty() { "unknown" } else { r.architecture });
    s += &format!("tokenizer:    {tokenizer}\n");
    s += &format!(
        "size:         {} parameters, {} of tensor data, {} on disk\n\n",
        count(r.params),
        bytes(r.tensor_bytes),
        bytes(r.file_bytes)
    );

    if let Some(c) = &r.contract {
        s += &format!("## Hyperparameters (contract {c})\n\n");
        s += &crate::render::hparams(&r.hparams);
        s += "\n\n";
    }
    s += &format!("## Metadata ({} keys)\n\n", model.metadata.len());
    let rows = model.metadata.iter().map(|(k, v)| vec![k.to_owned(), v.type_name(), v.summary()]);
    s += &table(&["key", "type", "value"], rows);
    s += "\n\n";

    s += &format!("## Tensors ({})\n\n", r.tensors.len());
    let rows = r
        .tensors
        .iter()
        .map(|t| vec![t.name.clone(), t.dtype.to_string(), dims(&t.shape), count(t.len), count(t.offset)]);
    s += &table(&["name", "dtype", "shape", "bytes", "offset"], rows);
    s += "\n\n## Totals by dtype\n\n";
    let rows = r.totals.iter().map(|t| {
        vec![
            t.dtype.to_string(),
            count(t.tensors),
            count(t.params),
            bytes(t.bytes),
            if t.computable { "yes".into() } else { "no: listed only".into() },
        ]
    });
    s += &table(&["dtype", "tensors", "parameters", "bytes", "computable"], rows);
    s.push('\n');
    s
}
