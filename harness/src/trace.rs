//! `harness trace`: one prompt through the decoder with every stage captured, written as
//! SafeTensors under llama.cpp's stage names (so it diffs against captures and eval-callback dumps).

use std::io::Write;

use anyhow::{Context, Result, bail};
use assay_engine::Model;
use assay_engine::backend::Backend;
use assay_engine::backend::cpu::Cpu;
use assay_engine::backend::reference::Reference;
use assay_engine::contract::{Contract, bind};
use assay_engine::decoder::Decoder;
use assay_engine::trace::Capture;

use crate::atomic::write_atomic;
use crate::cli::TraceArgs;
use crate::contracts;
use crate::exit::Outcome;

pub fn run(args: &TraceArgs, out: &mut impl Write) -> Result<Outcome> {
    let backend = match crate::verify::select_one(&args.backend, "trace")? {
        Ok(b) => b,
        Err(outcome) => return Ok(outcome),
    };
    if args.out.exists() && !args.force {
        bail!("{} exists; pass --force to overwrite it", args.out.display());
    }
    let (model, contract) = contracts::open_with_contract(&args.model, args.contract.as_deref(), &args.contracts)?;
    let contract = &contract;
    let capture = match backend {
        "reference" => capture(Reference, contract, &model, &args.tokens)?,
        "cpu" => capture(Cpu, contract, &model, &args.tokens)?,
        other => bail!("backend `{other}` is listed as available but trace cannot run it"),
    };
    let bytes = capture.to_safetensors().context("serializing the trace")?;
    write_atomic(&args.out, &bytes, args.force)?;
    writeln!(
        out,
        "{} stages of {} tokens on {} ({} contract) → {}",
        capture.stages.len(),
        args.tokens.len(),
        args.backend,
        contract.name(),
        args.out.display()
    )?;
    Ok(Outcome::Pass)
}

fn capture<B: Backend>(backend: B, contract: &Contract, model: &Model, tokens: &[u32]) -> Result<Capture> {
    let binding = bind(contract, model);
    let dec = Decoder::new(backend, contract, &binding, model)?;
    let mut s = dec.session(tokens.len())?;
    let mut capture = Capture::default();
    dec.forward(&mut s, tokens, &mut capture)?;
    Ok(capture)
}
