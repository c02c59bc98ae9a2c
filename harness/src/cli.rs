//! Command-line interface. Doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Assay: contract-driven verification of LLM model files and inference engines.
///
/// Exit codes: 0 pass, 1 contract violated, 2 malformed input or usage, 3 requested backend
/// unavailable.
#[derive(Debug, Parser)]
#[command(name = "harness", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what a model file holds: format, architecture, matching contract, hyperparameters,
    /// tensors and totals.
    Inspect(InspectArgs),
    /// Check model files against their contracts. Without --model, checks every model file
    /// under the golden directory.
    Verify(VerifyArgs),
    /// Run tokens through a model and write every stage of the forward pass, named as llama.cpp
    /// names its graph nodes, to a SafeTensors file.
    Trace(TraceArgs),
    /// Write a GGUF of a real model's configuration (a preset) with seeded random weights,
    /// quantized by the engine's quantizers: a benchmark subject.
    Synth(SynthArgs),
    /// Prefill and decode tokens/s of a model on one backend (llama-bench's tests), with decode's
    /// bandwidth against this machine's, after a correctness witness against the reference.
    Bench(BenchArgs),
    /// Verify every model under the golden directory on every available backend and write the
    /// conformance report (markdown, and JSON beside it).
    Report(ReportArgs),
    /// Run models on several backends and compare every stage of every backend with every other
    /// and with the golden.
    Parity(ParityArgs),
    /// Load a model, run tokens through it on one backend, and report the process's peak RSS
    /// against the contract's memory.rss_peak (what `verify` runs in a child per model).
    Measure(MeasureArgs),
    /// Print the JSON Schema of contracts (committed as contracts/schema.json).
    Schema,
}

/// Where contracts come from.
#[derive(Debug, Args)]
pub struct ContractSet {
    /// Load contracts from this directory instead of the copies embedded in the binary.
    #[arg(long, env = "ASSAY_CONTRACTS", value_name = "DIR")]
    pub contracts_dir: Option<PathBuf>,
}

impl ContractSet {
    /// The contracts of `--contracts-dir`, or the embedded ones.
    pub fn load(&self) -> anyhow::Result<Vec<assay_engine::contract::Contract>> {
        match &self.contracts_dir {
            Some(dir) => crate::contracts::load_dir(dir),
            None => crate::contracts::embedded(),
        }
    }
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A GGUF or APR file, a .safetensors file, a model.safetensors.index.json, or a directory
    /// holding a SafeTensors checkpoint.
    pub model: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub contracts: ContractSet,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The contract: a YAML file or the name of a known contract. Default: the contract that
    /// claims each model's architecture.
    #[arg(long, value_name = "CONTRACT")]
    pub contract: Option<String>,
    /// Model files to check (repeatable). Default: every model under --golden.
    #[arg(long, value_name = "MODEL")]
    pub model: Vec<PathBuf>,
    /// Directory searched for model files when no --model is given.
    #[arg(long, env = "ASSAY_GOLDEN", value_name = "DIR", default_value = "golden")]
    pub golden: PathBuf,
    /// How deep to check: `static` binds each file to its contract; `numeric` also runs the
    /// forward pass on each backend and compares every stage with the golden.
    #[arg(long, value_enum, default_value_t = Level::Numeric)]
    pub level: Level,
    /// Backends to run on (comma-separated or repeated): reference, cpu, or all available.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub backend: Vec<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also run every contract invariant against the mutation it names, on each file with a
    /// golden and each backend: KILLED or SURVIVED; any survivor exits 1.
    #[arg(long)]
    pub falsify: bool,
    /// Also write the conformance report: markdown here, JSON beside it (`.json`).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Overwrite an existing --report.
    #[arg(long)]
    pub force: bool,
    /// No progress bar (there is none anyway when stderr is not a terminal).
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub contracts: ContractSet,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// The configuration: tinyllama-1.1b, qwen2.5-0.5b, qwen3-0.6b or qwen3-moe-small.
    #[arg(long)]
    pub preset: String,
    /// Weight type: f32, q8_0, q4_0, q4_k, q6_k, or q4_k_m (llama.cpp's mix).
    #[arg(long, default_value = "q4_k_m")]
    pub quant: String,
    /// Seed of the weights: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the GGUF.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub out: PathBuf,
    /// Overwrite --out if it exists.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub contracts: ContractSet,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The model file.
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// The backend to time.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Prompt length of the prefill test (ppN); 0 skips it.
    #[arg(short = 'p', long = "prompt", default_value_t = 512)]
    pub prompt: usize,
    /// Decode steps of the generation test (tgN); 0 skips it.
    #[arg(short = 'n', long = "decode", default_value_t = 128)]
    pub decode: usize,
    /// Timed repetitions of each test (after one warm-up).
    #[arg(short = 'r', long = "reps", default_value_t = 5)]
    pub reps: usize,
    /// Worker threads (default: every core).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Run a peer benchmark on the same file with the same threads, interleaved with ours, and
    /// print the ratio per test: `llama-bench=PATH`.
    #[arg(long, value_name = "llama-bench=PATH")]
    pub peer: Option<String>,
    /// The contract: a YAML file or a known contract's name. Default: the one that claims the model.
    #[arg(long, value_name = "CONTRACT")]
    pub contract: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub contracts: ContractSet,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Where the markdown goes; the JSON is written beside it (`.json`).
    #[arg(long, value_name = "PATH", default_value = "reports/CONFORMANCE.md")]
    pub out: PathBuf,
    /// Overwrite an existing report.
    #[arg(long)]
    pub force: bool,
    /// Also run every contract invariant against its mutation (the "mutants killed" column).
    #[arg(long)]
    pub falsify: bool,
    /// No progress bar (there is none anyway when stderr is not a terminal).
    #[arg(long, short)]
    pub quiet: bool,
    /// Directory searched for model files.
    #[arg(long, env = "ASSAY_GOLDEN", value_name = "DIR", default_value = "golden")]
    pub golden: PathBuf,
    /// Backends to run on (comma-separated or repeated): reference, cpu, wgpu, cuda, or all available.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub backend: Vec<String>,
    #[command(flatten)]
    pub contracts: ContractSet,
}

#[derive(Debug, Args)]
pub struct ParityArgs {
    /// Model files to compare across backends (repeatable).
    #[arg(long, value_name = "MODEL", required = true)]
    pub model: Vec<PathBuf>,
    /// Backends (comma-separated or repeated): reference, cpu, wgpu, or all available.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub backends: Vec<String>,
    /// Directory whose manifests give each model's golden and tokens.
    #[arg(long, env = "ASSAY_GOLDEN", value_name = "DIR", default_value = "golden")]
    pub golden: PathBuf,
    /// The contract: a YAML file or the name of a known contract. Default: the one that claims each model.
    #[arg(long, value_name = "CONTRACT")]
    pub contract: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// No progress bar (there is none anyway when stderr is not a terminal).
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub contracts: ContractSet,
}

#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// The model file (GGUF, APR, SafeTensors file, index or directory).
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// Token ids, comma-separated, run as one prompt.
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    pub tokens: Vec<u32>,
    /// The backend to run on.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Positions the KV cache holds (default: the number of tokens).
    #[arg(long)]
    pub n_ctx: Option<usize>,
    /// The contract: a YAML file or a known contract's name. Default: the one that claims the model.
    #[arg(long, value_name = "CONTRACT")]
    pub contract: Option<String>,
    /// Print JSON instead of a line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub contracts: ContractSet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Static,
    Numeric,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The model file (GGUF, APR, SafeTensors file, index or directory).
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// Token ids, comma-separated, run as one prompt.
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    pub tokens: Vec<u32>,
    /// The backend to run on.
    #[arg(long, default_value = "reference")]
    pub backend: String,
    /// The contract: a YAML file or a known contract's name. Default: the one that claims the model.
    #[arg(long, value_name = "CONTRACT")]
    pub contract: Option<String>,
    /// Where to write the trace (SafeTensors, f32, one tensor per stage).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Overwrite --out if it exists.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub contracts: ContractSet,
}
