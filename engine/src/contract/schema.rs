//! The contract schema: the Rust types a YAML contract deserializes into, from which
//! `contracts/schema.json` is generated. Every field is checked by [`super::validate`] at load
//! or by [`super::bind`] against a model file; nothing here is decorative.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

/// The schema version this build reads. Bump it when a change would make an older contract mean
/// something else; additions that old contracts simply lack need no bump.
pub const SCHEMA_VERSION: u32 = 1;

/// One contract: everything Assay knows about one model architecture.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractDoc {
    /// The contract's name; must equal the file stem (`llama` for `contracts/llama.yaml`).
    pub contract: Located<String>,
    /// Schema version the contract is written against; must be the version this build reads.
    pub schema_version: Located<u32>,
    /// One line for people: what the architecture is. Shown by `inspect` and `verify`.
    pub summary: String,
    /// The architecture names model files use for this contract, per format. A model is matched
    /// to the contract that lists its architecture.
    pub architectures: Architectures,
    /// Hyperparameters by engine name (`n_embd`, `n_head_kv`, …), with the key each format
    /// stores them under and a default.
    pub hparams: IndexMap<Located<String>, HparamSpec>,
    /// Named sets of allowed dtypes that tensor roles refer to.
    pub dtype_classes: IndexMap<Located<String>, Vec<Located<String>>>,
    /// Tensor roles, keyed by their GGUF name without the `blk.{L}.` prefix
    /// (`token_embd.weight`, `attn_q.weight`, `ffn_down_exps.weight`).
    pub tensors: IndexMap<Located<String>, TensorSpec>,
    /// The block variants the forward pass uses. Each must agree with the tensor roles.
    pub forward: Located<Forward>,
    /// The trace stages of the forward pass, with llama.cpp's graph names, in order.
    pub stages: Vec<Located<String>>,
    /// Numeric tolerances against the golden, per backend (`reference`, `cpu`, `cuda`, `wgpu`)
    /// and weight dtype (a dtype name such as `q4_K`, or `default` for any other). A model's
    /// weight dtype is the dtype holding most of its matrix elements.
    #[serde(default)]
    pub tolerances: IndexMap<Located<String>, IndexMap<Located<String>, Tolerance>>,
    /// Falsifiable claims: each names the check that shows it and the mutation that must break
    /// it. `harness verify --falsify` runs every mutation and requires its check to fail.
    #[serde(default)]
    pub invariants: Vec<InvariantSpec>,
    /// Memory ceilings, as expressions over model quantities: `file_bytes`, `weight_bytes`,
    /// `weight_bytes_<dtype>` (e.g. `weight_bytes_q4_K`), `kv_cache_bytes` (f32 K and V for the
    /// run's `n_ctx`), `scratch_bytes` (the engine's bound on live activations for the run),
    /// `n_ctx`, and any hyperparameter; with `KiB`/`MiB`/`GiB`.
    #[serde(default)]
    pub memory: Option<MemoryBounds>,
}

/// Peak memory a run may use.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryBounds {
    /// Peak resident set (VmHWM) of a child process that loads the model and runs the fixture
    /// prompt on a host backend.
    #[serde(default)]
    pub rss_peak: Option<Located<ExprText>>,
    /// Peak device memory of a GPU backend, from its own allocation accounting.
    #[serde(default)]
    pub vram_peak: Option<Located<ExprText>>,
}

/// One falsifiable claim about the forward pass.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InvariantSpec {
    /// Unique within the contract, upper case with dashes (`QWEN3-QKNORM`).
    pub id: Located<String>,
    /// What holds, for people.
    pub claim: String,
    /// What shows it: `stage NAME` (a stage the contract lists must stay within its tolerance
    /// of the golden) or `invariant ID` (a check every run makes: LOGITS-FINITE,
    /// KV-EQUALS-ONE-PASS, ROUTING-MATCHES-GOLDEN, ROUTE-WEIGHTS-SUM-TO-ONE,
    /// EXPERT-BYTES-PER-TOKEN).
    pub check: Located<String>,
    /// The mutation that must make the check fail (`swap_rope_style`, `skip_qk_norm`,
    /// `skip_renormalize`, `wrong_norm_eps`, `decode_position_off_by_one`, `drop_qkv_bias`,
    /// `wrong_rope_theta`, `transpose_attn_output`, `swap_gelu`, `read_every_expert`).
    pub falsify: Located<String>,
    /// The backends whose runs can show the mutation (default: every backend). A backend whose
    /// tolerance is wider than the mutation's effect is left out, and the contract says so.
    #[serde(default)]
    pub backends: Option<Vec<Located<String>>>,
}

/// How far a backend's forward may be from the golden on one weight dtype. Set from measured
/// worst cases (about 10× them), never loosened to hide a failure.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    /// Largest NMSE (Σ(a−b)²/Σb²) of any traced stage against the golden capture.
    pub nmse: f64,
    /// Largest per-token KL(golden ‖ computed) of the logits, in nats.
    pub logits_kl: f64,
    /// Largest per-token KL(llama.cpp ‖ computed) of the logits, for files llama.cpp ran.
    #[serde(default)]
    pub llamacpp_kl: Option<f64>,
    /// MoE: a token whose experts differ from the golden's is "ambiguous routing" (reported,
    /// and routed as the golden did so later stages stay comparable) when the golden's router
    /// probabilities of the competing experts are closer than this; a larger gap is a failure.
    /// Absent: every expert choice must match.
    #[serde(default)]
    pub route_margin: Option<f64>,
}

/// Architecture names per format.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Architectures {
    /// GGUF `general.architecture` values.
    pub gguf: Vec<String>,
    /// HF `config.json` `architectures` entries (class names).
    pub hf: Vec<String>,
    /// APR metadata `architecture` values.
    #[serde(default)]
    pub apr: Vec<String>,
}

/// Where a hyperparameter comes from.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HparamSpec {
    /// `int` or `float`. Shapes may only use ints.
    #[serde(rename = "type")]
    pub ty: crate::contract::expr::Ty,
    /// GGUF metadata key; `{arch}` stands for the file's `general.architecture`.
    #[serde(default)]
    pub gguf: Option<Keys>,
    /// HF `config.json` key (nested objects as dotted keys: `rope_parameters.rope_theta`).
    #[serde(default)]
    pub hf: Option<Keys>,
    /// APR metadata key.
    #[serde(default)]
    pub apr: Option<Keys>,
    /// Used when the file lacks the key: an expression over other hyperparameters.
    #[serde(default)]
    pub default: Option<Located<ExprText>>,
    /// Used when the file lacks the key and there is no default: read the value off a dimension
    /// of a tensor (e.g. `n_vocab` from `token_embd.weight`, dim 0).
    #[serde(default)]
    pub infer: Option<Located<InferFrom>>,
}

/// One metadata key, or several tried in order (the first present wins): writers rename keys
/// across versions (transformers 5 moved `rope_theta` into `rope_parameters`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Keys {
    One(String),
    Many(Vec<String>),
}

impl Keys {
    pub fn all(&self) -> &[String] {
        match self {
            Keys::One(k) => std::slice::from_ref(k),
            Keys::Many(ks) => ks,
        }
    }
}

/// A dimension of a tensor role's row-major shape.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InferFrom {
    pub tensor: String,
    pub dim: usize,
}

/// One tensor role.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    /// HF name; `{L}` is the layer index, `{E}` the expert index (HF stores experts one tensor
    /// each where GGUF stacks them: the first dimension of `shape` is then the expert count).
    /// Absent: the role does not exist in HF checkpoints.
    #[serde(default)]
    pub hf: Option<Located<String>>,
    /// HF stores this tensor transposed (`[in, out]`, GPT-2's Conv1D).
    #[serde(default)]
    pub hf_transposed: bool,
    /// Row-major shape (outermost first), as GGUF holds it: expressions over hyperparameters.
    pub shape: Vec<Located<ExprText>>,
    /// Name of the dtype class the stored dtype must belong to.
    pub dtypes: Located<String>,
    /// The role may be absent.
    #[serde(default)]
    pub optional: bool,
    /// When absent, the forward pass uses this role's tensor instead (tied output embedding).
    #[serde(default)]
    pub tied_to: Option<Located<String>>,
}

/// The forward pass's block variants.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    pub norm: NormKind,
    /// Rope style per naming scheme (an APR file follows the scheme of its tensor names), or
    /// absent for no rope (GPT-2).
    #[serde(default)]
    pub rope: Option<RopeStyles>,
    /// Per-head RMSNorm of q and k before rope (Qwen3).
    #[serde(default)]
    pub qk_norm: bool,
    pub qkv: QkvLayout,
    /// Which projections carry biases.
    #[serde(default)]
    pub biases: Vec<BiasGroup>,
    pub ffn: FfnKind,
    pub activation: Activation,
    /// `x + attn(norm(x)) + ffn(norm(x))` with one norm (Phi-2).
    #[serde(default)]
    pub parallel_residual: bool,
    /// Learned absolute position embeddings added to the token embeddings (GPT-2).
    #[serde(default)]
    pub learned_positions: bool,
    /// Mixture-of-experts routing; required exactly when `ffn: moe`.
    #[serde(default)]
    pub moe: Option<Moe>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// RMSNorm, weight only.
    Rms,
    /// LayerNorm with weight and bias.
    Layer,
}

/// Rope style by tensor naming scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RopeStyles {
    /// Style for weights as llama.cpp's converter wrote them (GGUF names).
    pub gguf: RopeStyle,
    /// Style for weights as HF stores them.
    pub hf: RopeStyle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RopeStyle {
    /// Adjacent pairs (x[2i], x[2i+1]).
    Normal,
    /// Halves (x[i], x[i + n_rot/2]), HF's `rotate_half`.
    Neox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QkvLayout {
    /// attn_q, attn_k, attn_v.
    Separate,
    /// One attn_qkv projection.
    Fused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BiasGroup {
    /// q, k and v projections (or the fused qkv).
    Qkv,
    /// The attention output projection.
    AttnOutput,
    /// The feed-forward projections.
    Ffn,
    /// The output (lm_head) projection.
    Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FfnKind {
    /// down(act(gate(x)) * up(x)).
    Swiglu,
    /// down(act(up(x))).
    Mlp,
    /// Routed experts, each a SwiGLU.
    Moe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Silu,
    /// GELU, tanh approximation.
    GeluTanh,
    /// GELU, exact (erf).
    GeluErf,
}

/// Mixture-of-experts routing: softmax over router logits in f32, then top-k.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Moe {
    /// Renormalize the k selected weights to sum to 1 (Qwen3-MoE yes, Qwen2-MoE no).
    pub renormalize: bool,
    /// A shared SwiGLU expert scaled by sigmoid(ffn_gate_inp_shexp · x) is added (Qwen2-MoE).
    #[serde(default)]
    pub shared_expert: bool,
}

/// A value with the line and column (1-based) it came from in the YAML file.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub value: T,
    pub line: u64,
    pub column: u64,
}

impl<T> Located<T> {
    pub fn new(value: T) -> Self {
        Self { value, line: 0, column: 0 }
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Located { value: s.value, line: s.referenced.line(), column: s.referenced.column() })
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

// Keys compare by value only: where they were written does not change what they name.
impl<T: PartialEq> PartialEq for Located<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<T: Eq> Eq for Located<T> {}
impl<T: Hash> Hash for Located<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

/// The source text of an expression. YAML may write a plain number (`default: 10000.0`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExprText(pub String);

impl fmt::Display for ExprText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ExprText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ExprText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an expression: a number or a string such as `n_embd / n_head`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ExprText, E> {
                Ok(ExprText(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ExprText, E> {
                Ok(ExprText(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ExprText, E> {
                Ok(ExprText(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ExprText, E> {
                // `{:?}` keeps a decimal point or exponent, so the literal stays a float.
                Ok(ExprText(format!("{v:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ExprText {
    fn schema_name() -> Cow<'static, str> {
        "Expr".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An expression over hyperparameter names: integers, floats, + - * /, parentheses, int(x), and the units KiB, MiB, GiB.",
            "type": ["string", "number"]
        })
    }
}
