//! `harness synth`: a GGUF of a real model's configuration with seeded random weights, quantized
//! by the engine's own quantizers — a faithful benchmark subject, since speed does not depend on
//! weight values. Tensor names, shapes and metadata keys come from the contract; tensors are
//! generated, quantized and written one row at a time, so the model is never held in memory.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};

use anyhow::{Context, Result, bail};
use assay_engine::contract::Contract;
use assay_engine::contract::expr::Num;
use assay_engine::format::gguf::GgufWriter;
use assay_engine::quant::quantize_row;
use assay_engine::{DType, MetaArray, MetaValue};

use crate::cli::SynthArgs;
use crate::contracts;
use crate::exit::Outcome;

/// A real configuration: the contract it follows and its hyperparameters by engine name.
pub struct Preset {
    pub name: &'static str,
    pub contract: &'static str,
    /// Whether the output projection is the token embedding (no `output.weight` is written).
    pub tied: bool,
    pub hparams: &'static [(&'static str, f64)],
}

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "tinyllama-1.1b",
        contract: "llama",
        tied: false,
        hparams: &[
            ("n_vocab", 32000.0),
            ("n_embd", 2048.0),
            ("n_layer", 22.0),
            ("n_head", 32.0),
            ("n_head_kv", 4.0),
            ("head_dim", 64.0),
            ("n_ff", 5632.0),
            ("n_ctx_train", 2048.0),
            ("n_rot", 64.0),
            ("rope_theta", 10000.0),
            ("norm_eps", 1e-5),
        ],
    },
    Preset {
        name: "qwen2.5-0.5b",
        contract: "qwen2",
        tied: true,
        hparams: &[
            ("n_vocab", 151936.0),
            ("n_embd", 896.0),
            ("n_layer", 24.0),
            ("n_head", 14.0),
            ("n_head_kv", 2.0),
            ("head_dim", 64.0),
            ("n_ff", 4864.0),
            ("n_ctx_train", 32768.0),
            ("n_rot", 64.0),
            ("rope_theta", 1000000.0),
            ("norm_eps", 1e-6),
        ],
    },
    Preset {
        name: "qwen3-0.6b",
        contract: "qwen3",
        tied: true,
        hparams: &[
            ("n_vocab", 151936.0),
            ("n_embd", 1024.0),
            ("n_layer", 28.0),
            ("n_head", 16.0),
            ("n_head_kv", 8.0),
            ("head_dim", 128.0),
            ("n_ff", 3072.0),
            ("n_ctx_train", 40960.0),
            ("n_rot", 128.0),
            ("rope_theta", 1000000.0),
            ("norm_eps", 1e-6),
        ],
    },
    Preset {
        name: "qwen3-moe-small",
        contract: "qwen3_moe",
        tied: false,
        hparams: &[
            ("n_vocab", 32000.0),
            ("n_embd", 1024.0),
            ("n_layer", 8.0),
            ("n_head", 16.0),
            ("n_head_kv", 4.0),
            ("head_dim", 64.0),
            ("n_expert", 32.0),
            ("n_expert_used", 4.0),
            ("n_ff_exp", 512.0),
            ("n_ctx_train", 4096.0),
            ("n_rot", 64.0),
            ("rope_theta", 1000000.0),
            ("norm_eps", 1e-6),
        ],
    },
];

/// The dtype a tensor of `shape` gets under `quant` (`f32`, `q8_0`, `q4_0`, `q4_k`, `q6_k`, or
/// `q4_k_m`, llama.cpp's mix: Q6_K output, Q6_K attn_v/ffn_down on the layers it gives more bits,
/// Q4_K elsewhere). Vectors stay F32; rows that are not whole blocks of the type fall back to
/// Q8_0 (or F32), as llama.cpp's quantizer falls back.
pub fn dtype_for(quant: &str, role: &str, layer: usize, n_layer: usize, shape: &[u64]) -> Result<DType> {
    if shape.len() < 2 {
        return Ok(DType::F32);
    }
    // llama.cpp's use_more_bits: the first and last eighth of the layers, and every third between.
    let more_bits = layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
    let want = match quant {
        "f32" => DType::F32,
        "q8_0" => DType::Q8_0,
        "q4_0" => DType::Q4_0,
        "q4_k" => DType::Q4_K,
        "q6_k" => DType::Q6_K,
        "q4_k_m" if role == "output.weight" => DType::Q6_K,
        "q4_k_m" if matches!(role, "attn_v.weight" | "ffn_down.weight" | "ffn_down_exps.weight") && more_bits => {
            DType::Q6_K
        }
        "q4_k_m" => DType::Q4_K,
        other => bail!("unknown --quant `{other}`: expected f32, q8_0, q4_0, q4_k, q6_k or q4_k_m"),
    };
    let cols = *shape.last().expect("matrices have columns") as usize;
    let block = match want.layout() {
        assay_engine::dtype::Layout::Blocks { block_elems, .. } => block_elems as usize,
        _ => unreachable!("synth writes ggml block types"),
    };
    Ok(if cols.is_multiple_of(block) {
        want
    } else if cols.is_multiple_of(32) {
        DType::Q8_0
    } else {
        DType::F32
    })
}

/// A small deterministic generator (splitmix64): the same seed gives the same file.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [−a, a).
    fn uniform(&mut self, a: f32) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
    }
}

/// One tensor to write: name, role, layer, shape, dtype.
struct Planned {
    name: String,
    role: String,
    shape: Vec<u64>,
    dtype: DType,
}

pub fn run(args: &SynthArgs, out: &mut impl Write) -> Result<Outcome> {
    let Some(preset) = PRESETS.iter().find(|p| p.name == args.preset) else {
        let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
        bail!("unknown preset `{}` (known: {})", args.preset, names.join(", "));
    };
    if args.out.exists() && !args.force {
        bail!("{} exists; pass --force to overwrite it", args.out.display());
    }
    let set = args.contracts.load()?;
    let contract = contracts::resolve(preset.contract, &set)?;
    let bytes = write(&contract, preset, &args.quant, args.seed, &args.out)?;
    writeln!(
        out,
        "{}: {} ({} {}, seed {})",
        args.out.display(),
        crate::render::bytes(bytes),
        preset.name,
        args.quant,
        args.seed
    )?;
    Ok(Outcome::Pass)
}

/// Writes the file (atomically: a temp file beside it, then a rename) and returns its size.
pub fn write(contract: &Contract, preset: &Preset, quant: &str, seed: u64, path: &std::path::Path) -> Result<u64> {
    let values: BTreeMap<&str, Num> = preset
        .hparams
        .iter()
        .map(|&(k, v)| {
            (
                k,
                if v.fract() == 0.0 && !matches!(k, "rope_theta" | "norm_eps") {
                    Num::Int(v as i64)
                } else {
                    Num::Float(v)
                },
            )
        })
        .collect();
    let value = |n: &str| values.get(n).copied();
    let arch = contract.doc.architectures.gguf[0].clone();
    let n_layer = match value("n_layer") {
        Some(Num::Int(n)) => n as usize,
        _ => bail!("preset {} has no n_layer", preset.name),
    };
    let n_vocab = match value("n_vocab") {
        Some(Num::Int(n)) => n as usize,
        _ => bail!("preset {} has no n_vocab", preset.name),
    };

    let mut w = GgufWriter::new();
    w.metadata("general.architecture", MetaValue::Str(arch.clone()));
    w.metadata("general.name", MetaValue::Str(format!("assay-synth-{}", preset.name)));
    for h in &contract.hparams {
        if let (Some(keys), Some(v)) = (&h.spec.gguf, value(&h.name)) {
            let key = keys.all()[0].replace("{arch}", &arch);
            w.metadata(
                key,
                match v {
                    Num::Int(i) => MetaValue::U32(u32::try_from(i)?),
                    Num::Float(f) => MetaValue::F32(f as f32),
                },
            );
        }
    }
    // The engine's contracts have one head width; llama.cpp reads v's apart (and defaults it to
    // n_embd / n_head), so it is written as llama.cpp's converter writes it.
    if let Some(Num::Int(d)) = value("head_dim") {
        w.metadata(format!("{arch}.attention.value_length"), MetaValue::U32(u32::try_from(d)?));
    }
    // A SentencePiece-style vocabulary, so llama.cpp loads the file: specials, the 256 bytes,
    // then placeholder pieces.
    let tokens: Vec<String> = (0..n_vocab)
        .map(|i| match i {
            0 => "<unk>".into(),
            1 => "<s>".into(),
            2 => "</s>".into(),
            3..=258 => format!("<0x{:02X}>", i - 3),
            _ => format!("▁t{i}"),
        })
        .collect();
    let types: Vec<i32> = (0..n_vocab)
        .map(|i| match i {
            0 => 2,
            1 | 2 => 3,
            3..=258 => 6,
            _ => 1,
        })
        .collect();
    w.metadata("tokenizer.ggml.model", MetaValue::Str("llama".into()));
    w.metadata("tokenizer.ggml.tokens", MetaValue::Array(MetaArray::Str(tokens)));
    w.metadata("tokenizer.ggml.scores", MetaValue::Array(MetaArray::F32((0..n_vocab).map(|i| -(i as f32)).collect())));
    w.metadata("tokenizer.ggml.token_type", MetaValue::Array(MetaArray::I32(types)));
    w.metadata("tokenizer.ggml.bos_token_id", MetaValue::U32(1));
    w.metadata("tokenizer.ggml.eos_token_id", MetaValue::U32(2));
    w.metadata("tokenizer.ggml.unknown_token_id", MetaValue::U32(0));

    let mut plan = Vec::new();
    for def in &contract.roles {
        if def.spec.optional || (def.tied_to.is_some() && preset.tied) {
            continue;
        }
        let shape: Vec<u64> = def
            .shape
            .iter()
            .map(|e| match e.eval(&value) {
                Ok(Num::Int(i)) => Ok(i as u64),
                other => bail!("{}: shape of {} evaluates to {other:?}", preset.name, def.role),
            })
            .collect::<Result<_>>()?;
        let role = def.role.to_string();
        for l in 0..if def.role.per_layer { n_layer } else { 1 } {
            let dtype = dtype_for(quant, &role, l, n_layer, &shape)?;
            let name = def.role.gguf_name(l);
            w.tensor(name.clone(), dtype, &shape)?;
            plan.push(Planned { name, role: role.clone(), shape: shape.clone(), dtype });
        }
    }

    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let tmp =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let mut f = BufWriter::new(tmp.reopen()?);
    let header = w.write_header(&mut f)?;
    let align = w.alignment();
    let mut written = 0u64;
    for t in &plan {
        // One generator per tensor, from the seed and the name: tensors are independent of order.
        let mut rng = Rng(seed
            ^ t.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)));
        let cols = *t.shape.last().unwrap_or(&1) as usize;
        let rows: usize = t.shape.iter().rev().skip(1).product::<u64>() as usize;
        let norm = t.role.contains("norm");
        let a = 1.7 / (cols as f32).sqrt();
        let mut row = vec![0.0f32; cols];
        for _ in 0..rows.max(1) {
            for v in row.iter_mut() {
                *v = if norm { 1.0 } else { rng.uniform(a) };
            }
            let bytes = quantize_row(t.dtype, &row)
                .with_context(|| format!("{}: no {} quantizer for rows of {cols}", t.name, t.dtype))?;
            f.write_all(&bytes)?;
            written += bytes.len() as u64;
        }
        let pad = written.next_multiple_of(align) - written;
        f.write_all(&vec![0u8; pad as usize])?;
        written += pad;
    }
    f.flush()?;
    drop(f);
    crate::atomic::persist(tmp, path)?;
    Ok(header + written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(name: &str) -> Contract {
        crate::contracts::embedded().unwrap().into_iter().find(|c| c.name() == name).unwrap()
    }

    /// A small configuration in every synth type (K-quant rows need 256 columns).
    const SMALL: Preset = Preset {
        name: "small",
        contract: "llama",
        tied: false,
        hparams: &[
            ("n_vocab", 512.0),
            ("n_embd", 256.0),
            ("n_layer", 2.0),
            ("n_head", 4.0),
            ("n_head_kv", 2.0),
            ("head_dim", 64.0),
            ("n_ff", 512.0),
            ("n_ctx_train", 128.0),
            ("n_rot", 64.0),
            ("rope_theta", 10000.0),
            ("norm_eps", 1e-5),
        ],
    };

    #[test]
    fn the_same_seed_writes_the_same_bytes_and_the_file_meets_its_contract() {
        let dir = tempfile::tempdir().unwrap();
        let c = contract("llama");
        for quant in ["f32", "q8_0", "q4_0", "q4_k", "q6_k", "q4_k_m"] {
            let (a, b, other) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"), dir.path().join("c.gguf"));
            let size = write(&c, &SMALL, quant, 7, &a).unwrap();
            write(&c, &SMALL, quant, 7, &b).unwrap();
            write(&c, &SMALL, quant, 8, &other).unwrap();
            let bytes = std::fs::read(&a).unwrap();
            assert_eq!(bytes.len() as u64, size, "{quant}");
            assert_eq!(bytes, std::fs::read(&b).unwrap(), "{quant}: same seed, same bytes");
            assert_ne!(bytes, std::fs::read(&other).unwrap(), "{quant}: another seed, other weights");
            let model = assay_engine::Model::open(&a).unwrap();
            let binding = assay_engine::contract::bind(&c, &model);
            assert!(binding.violations.is_empty(), "{quant}: {:?}", binding.violations);
            let want = match quant {
                "f32" => DType::F32,
                "q8_0" => DType::Q8_0,
                "q4_0" => DType::Q4_0,
                "q6_k" => DType::Q6_K,
                _ => DType::Q4_K,
            };
            assert_eq!(model.tensor("blk.0.attn_q.weight").unwrap().dtype, want, "{quant}");
            // It runs: the decoder accepts it and gives finite logits.
            let dec =
                assay_engine::decoder::Decoder::new(assay_engine::backend::cpu::Cpu, &c, &binding, &model).unwrap();
            let logits = dec.forward(&mut dec.session(3).unwrap(), &[1, 2, 3], &mut assay_engine::trace::Off).unwrap();
            assert!(logits.iter().all(|v| v.is_finite()), "{quant}");
        }
    }

    #[test]
    fn q4_k_m_gives_more_bits_where_llama_cpp_does_and_falls_back_on_short_rows() {
        assert_eq!(dtype_for("q4_k_m", "output.weight", 0, 22, &[32000, 2048]).unwrap(), DType::Q6_K);
        assert_eq!(dtype_for("q4_k_m", "attn_v.weight", 0, 22, &[256, 2048]).unwrap(), DType::Q6_K);
        assert_eq!(dtype_for("q4_k_m", "attn_v.weight", 3, 22, &[256, 2048]).unwrap(), DType::Q4_K);
        assert_eq!(dtype_for("q4_k_m", "attn_v.weight", 4, 22, &[256, 2048]).unwrap(), DType::Q6_K, "(4 − 2) % 3 == 2");
        assert_eq!(dtype_for("q4_k_m", "ffn_down.weight", 20, 22, &[2048, 5632]).unwrap(), DType::Q6_K, "last eighth");
        assert_eq!(dtype_for("q4_k_m", "attn_q.weight", 0, 22, &[2048, 2048]).unwrap(), DType::Q4_K);
        assert_eq!(
            dtype_for("q4_k", "attn_q.weight", 0, 24, &[896, 896]).unwrap(),
            DType::Q8_0,
            "896 is not whole 256s"
        );
        assert_eq!(dtype_for("q4_k", "attn_norm.weight", 0, 24, &[896]).unwrap(), DType::F32);
        assert!(dtype_for("q3_k", "attn_q.weight", 0, 24, &[896, 896]).is_err());
    }
}
