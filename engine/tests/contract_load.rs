//! Contract load errors carry file, line and column, and say what is wrong.

use assay_engine::contract::{Contract, ContractErrors};

const LLAMA: &str = include_str!("../../contracts/llama.yaml");

/// Loads llama.yaml with `from` replaced by `to` (which must occur exactly once).
fn load_edited(from: &str, to: &str) -> Result<Contract, ContractErrors> {
    assert_eq!(LLAMA.matches(from).count(), 1, "`{from}` must occur once");
    Contract::from_yaml(&LLAMA.replacen(from, to, 1), "contracts/llama.yaml")
}

fn line_of(text: &str, needle: &str) -> u64 {
    text.lines().position(|l| l.contains(needle)).expect("needle present") as u64 + 1
}

fn only_error(r: Result<Contract, ContractErrors>) -> assay_engine::contract::ContractError {
    let errors = r.expect_err("the edit must be rejected").0;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.into_iter().next().unwrap()
}

#[test]
fn the_committed_contract_loads() {
    let c = Contract::from_yaml(LLAMA, "contracts/llama.yaml").unwrap();
    assert_eq!(c.name(), "llama");
    // Defaults come after what they use.
    let pos = |n: &str| c.hparams.iter().position(|h| h.name == n).unwrap();
    assert!(pos("n_head") < pos("n_head_kv") && pos("head_dim") < pos("n_rot"));
}

#[test]
fn unknown_field_is_a_yaml_error_with_position() {
    let e = only_error(load_edited("  qk_norm: false\n", "  qk_norm: false\n  qk_nrom: true\n"));
    assert_eq!(e.line, line_of(LLAMA, "qk_norm: false") + 1);
    assert!(e.message.contains("qk_nrom"), "{e}");
    assert!(e.to_string().starts_with(&format!("contracts/llama.yaml:{}:", e.line)), "{e}");
}

#[test]
fn unknown_name_in_a_shape_points_at_it() {
    let e = only_error(load_edited(
        "shape: [n_ff, n_embd], dtypes: matrix }\n  ffn_up",
        "shape: [n_ff, n_embdd], dtypes: matrix }\n  ffn_up",
    ));
    assert_eq!(e.line, line_of(LLAMA, "ffn_gate.weight:"));
    assert!(e.column > 1);
    assert!(e.message.contains("unknown name `n_embdd`") && e.message.contains("character 1"), "{e}");
}

#[test]
fn a_float_shape_is_a_type_error() {
    let e = only_error(load_edited("shape: [n_rot / 2]", "shape: [rope_theta / 2]"));
    assert!(e.message.contains("is a float; shapes are integers"), "{e}");
    assert_eq!(e.line, line_of(LLAMA, "rope_freqs.weight:"));
}

#[test]
fn syntax_errors_in_defaults_name_the_character() {
    let e = only_error(load_edited("default: n_embd / n_head", "default: n_embd / / n_head"));
    assert!(e.message.contains("character 10"), "{e}");
    assert_eq!(e.line, line_of(LLAMA, "head_dim:"));
}

#[test]
fn default_cycles_are_reported() {
    let e = only_error(load_edited("default: n_embd / n_head", "default: n_rot"));
    assert!(e.message.contains("cycle") && e.message.contains("head_dim") && e.message.contains("n_rot"), "{e}");
}

#[test]
fn unknown_roles_classes_dtypes_and_stages_are_named() {
    let e = only_error(load_edited("  attn_norm.weight:", "  attn_nrom.weight:"));
    assert!(e.message.contains("unknown tensor role `attn_nrom.weight`"), "{e}");
    assert_eq!(e.line, line_of(LLAMA, "attn_norm.weight:"));

    let e = only_error(load_edited(
        "shape: [n_embd], dtypes: vector }\n  output.weight",
        "shape: [n_embd], dtypes: vectr }\n  output.weight",
    ));
    assert!(e.message.contains("unknown dtype class `vectr`"), "{e}");

    let e = only_error(load_edited("vector: [f32, f16, bf16]", "vector: [f32, f16, bf17]"));
    assert!(e.message.contains("unknown dtype `bf17`"), "{e}");

    let errors = load_edited("kqv_out, attn_out", "kqv_outt, attn_out").unwrap_err().0;
    assert!(errors[0].message.contains("unknown stage `kqv_outt`"), "{errors:#?}");
    assert!(errors[1].message.contains("must list `kqv_out`"), "{errors:#?}");
}

#[test]
fn forward_must_agree_with_the_roles() {
    // Declaring biases without bias tensors is a lie the loader catches.
    let e = only_error(load_edited("biases: []", "biases: [qkv]"));
    assert!(e.message.contains("requires q/k/v bias roles"), "{e}");
    assert_eq!(e.line, line_of(LLAMA, "forward:") + 1);

    let errors = load_edited("qk_norm: false", "qk_norm: true").unwrap_err().0;
    assert!(errors.iter().any(|e| e.message.contains("attn_q_norm.weight")), "{errors:#?}");
    assert!(errors.iter().any(|e| e.message.contains("Qcur_normed")), "{errors:#?}");
}

#[test]
fn per_layer_names_need_the_layer_placeholder() {
    let e = only_error(load_edited("\"model.layers.{L}.mlp.up_proj.weight\"", "model.layers.0.mlp.up_proj.weight"));
    assert!(e.message.contains("must contain `{L}`"), "{e}");
}

#[test]
fn version_and_file_name_are_checked() {
    let e = only_error(load_edited("schema_version: 1", "schema_version: 7"));
    assert!(e.message.contains("schema_version 7"), "{e}");
    let errors = Contract::from_yaml(LLAMA, "contracts/other.yaml").unwrap_err().0;
    assert!(errors[0].message.contains("llama.yaml"), "{errors:#?}");
}

#[test]
fn tied_roles_must_exist_and_match() {
    let e = only_error(load_edited("tied_to: token_embd.weight", "tied_to: token_embed.weight"));
    assert!(e.message.contains("tied_to `token_embed.weight`"), "{e}");
}

#[test]
fn tolerances_name_known_backends_and_dtypes_with_finite_bounds() {
    let e = only_error(load_edited("  cpu:\n", "  metal:\n"));
    assert_eq!(e.line, line_of(LLAMA, "  cpu:"));
    assert!(e.message.starts_with("unknown backend `metal`: expected one of reference, cpu, cuda, wgpu"), "{e}");
    let e = only_error(load_edited("    q6_K:   { nmse: 1.0e-2", "    q7_K:   { nmse: 1.0e-2"));
    assert!(e.message.contains("q7_K") && e.message.ends_with("(or `default`)"), "{e}");
    let e = only_error(load_edited("    f16:    { nmse: 1.0e-5", "    f16:    { nmse: -1.0e-5"));
    assert_eq!(e.message, "tolerance `nmse` = -0.00001 must be a finite number ≥ 0");
    let e = only_error(load_edited("    f16:    { nmse: 1.0e-5, logits_kl: 5.0e-6 }", "    f16:    { nmse: 1.0e-5 }"));
    assert!(e.message.contains("logits_kl"), "{e}");
}

#[test]
fn a_tolerance_is_the_dtypes_own_or_the_backends_default() {
    use assay_engine::DType;
    let c = Contract::from_yaml(LLAMA, "contracts/llama.yaml").unwrap();
    assert_eq!(c.tolerance("cpu", DType::Q4_K).unwrap().nmse, 1.0e-2);
    assert_eq!(c.tolerance("reference", DType::Q5_K).unwrap().nmse, 1.0e-12, "the reference's default");
    assert!(c.tolerance("cpu", DType::Q5_K).is_none(), "never measured on cpu: no bound, not a guess");
    assert!(c.tolerance("cuda", DType::F32).is_none());
}

const QWEN2_MOE: &str = include_str!("../../contracts/qwen2_moe.yaml");

fn load_moe_edited(from: &str, to: &str) -> Result<Contract, ContractErrors> {
    assert_eq!(QWEN2_MOE.matches(from).count(), 1, "`{from}` must occur once");
    Contract::from_yaml(&QWEN2_MOE.replacen(from, to, 1), "contracts/qwen2_moe.yaml")
}

#[test]
fn moe_stages_follow_the_routing_the_forward_declares() {
    // Renormalized weights must be traced when the forward renormalizes, and only then.
    let e = only_error(load_moe_edited("renormalize: false", "renormalize: true"));
    assert!(e.message.contains("must list `ffn_moe_weights_norm`"), "{e}");
    // The shared expert's stages belong to a forward with a shared expert.
    let errors = load_moe_edited("shared_expert: true", "shared_expert: false").unwrap_err().0;
    let text: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert!(text.iter().any(|m| m.contains("must not list `ffn_shexp_out`")), "{text:#?}");
    assert!(text.iter().any(|m| m.contains("must not list `ffn_shexp` (moe.shared_expert is off)")), "{text:#?}");
    // ffn_moe_weights is optional in a MoE forward, refused in a dense one.
    assert!(load_moe_edited("ffn_moe_weights, ", "").is_ok());
    let e = only_error(load_edited("ffn_act, ", "ffn_act, ffn_moe_weights, "));
    assert_eq!(e.message, "stages must not list `ffn_moe_weights` (ffn: moe is off)");
}

#[test]
fn a_route_margin_is_a_finite_bound() {
    let e = only_error(load_moe_edited(
        "q8_0:   { nmse: 5.0e-3, logits_kl: 2.0e-3, llamacpp_kl: 2.0e-3, route_margin: 2.0e-2 }",
        "q8_0:   { nmse: 5.0e-3, logits_kl: 2.0e-3, llamacpp_kl: 2.0e-3, route_margin: .inf }",
    ));
    assert_eq!(e.message, "tolerance `route_margin` = inf must be a finite number ≥ 0");
    let c = Contract::from_yaml(QWEN2_MOE, "contracts/qwen2_moe.yaml").unwrap();
    assert_eq!(c.tolerance("cpu", assay_engine::DType::Q8_0).unwrap().route_margin, Some(2.0e-2));
}

#[test]
fn invariants_name_a_runnable_check_and_a_known_mutation() {
    let line = "  - { id: LLAMA-NORM-EPS, claim: \"the RMSNorm epsilon is the file's\", check: stage attn_norm, falsify: wrong_norm_eps }";
    assert_eq!(LLAMA.matches(line).count(), 1);
    let e = only_error(load_edited("falsify: wrong_norm_eps }", "falsify: wrong_norm_epsilon }"));
    assert!(e.message.starts_with("unknown mutation `wrong_norm_epsilon` (known: swap_rope_style,"), "{e}");
    let e = only_error(load_edited(
        "check: stage attn_norm, falsify: wrong_norm_eps",
        "check: stage ffn_moe_out, falsify: wrong_norm_eps",
    ));
    assert_eq!(e.message, "check `stage ffn_moe_out`: the contract's stages do not list `ffn_moe_out`");
    let e = only_error(load_edited(
        "check: stage attn_norm, falsify: wrong_norm_eps",
        "check: invariant ATTN-OK, falsify: wrong_norm_eps",
    ));
    assert!(e.message.starts_with("check `invariant ATTN-OK`: unknown (known: LOGITS-FINITE,"), "{e}");
    let e = only_error(load_edited(
        "check: stage attn_norm, falsify: wrong_norm_eps",
        "check: attn_norm, falsify: wrong_norm_eps",
    ));
    assert_eq!(e.message, "check `attn_norm`: expected `stage NAME` or `invariant ID`");
    let e = only_error(load_edited("id: LLAMA-NORM-EPS,", "id: LLAMA-ROPE-STYLE,"));
    assert_eq!(e.message, "invariant `LLAMA-ROPE-STYLE` is declared twice");
    let e = only_error(load_edited("id: LLAMA-NORM-EPS,", "id: llama norm,"));
    assert!(e.message.contains("use upper case, digits and dashes"), "{e}");
    let e = only_error(load_edited("falsify: wrong_norm_eps }", "falsify: wrong_norm_eps, backends: [metal] }"));
    assert!(e.message.starts_with("unknown backend `metal`"), "{e}");
}
