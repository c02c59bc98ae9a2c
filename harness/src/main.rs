use std::process::ExitCode;

use assay_harness::cli::{Cli, Command};
use assay_harness::exit::Outcome;
use clap::Parser;

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let result = match cli.command {
        Command::Inspect(args) => assay_harness::inspect::run(&args, &mut out),
        Command::Verify(args) => assay_harness::verify::run(&args, &mut out),
        Command::Trace(args) => assay_harness::trace::run(&args, &mut out),
        Command::Synth(args) => assay_harness::synth::run(&args, &mut out),
        Command::Bench(args) => assay_harness::bench::run(&args, &mut out),
        Command::Report(args) => assay_harness::report::run(args, &mut out),
        Command::Parity(args) => assay_harness::parity::run(&args, &mut out),
        Command::Measure(args) => assay_harness::measure::run(&args, &mut out),
        Command::Schema => assay_harness::schema::run(&mut out),
    };
    match result {
        Ok(outcome) => Ok(outcome.into()),
        // Every error that reaches here is about the input: report it, exit 2.
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(Outcome::BadInput.into())
        }
    }
}
