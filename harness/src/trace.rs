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
use crate::verify::BackendChoice;

pub fn run(args: &TraceArgs, out: &mut impl Write) -> Result<Outcome> {
    let backend = match crate::verify::backends(std::slice::from_ref(&args.backend)) {
        Ok(b) if b.len() == 1 => b[0],
        Ok(_) => bail!("trace runs on one backend: pass reference or cpu"),
        Err(BackendChoice::Unavailable(message)) => {
            eprintln!("error: {message}");
            return Ok(Outcome::Unavailable);
        }
        Err(BackendChoice::Unknown(message)) => bail!(message),
    };
    if args.out.exists() && !args.force {
        bail!("{} exists; pass --force to overwrite it", args.out.display());
    }
    let set = args.contracts.load()?;
    let explicit = args.contract.as_deref().map(|c| contracts::resolve(c, &set)).transpose()?;
    let model = Model::open(&args.model)?;
    let Some(contract) = explicit.as_ref().or_else(|| contracts::for_model(&set, &model)) else {
        bail!("no contract claims {} architecture `{}`; pass --contract", model.format, model.architecture);
    };
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
