//! The reference ops against transformers' float64 stages: each op, fed the golden stage before
//! it (and the checkpoint's weights), reproduces the golden stage after it.

use std::collections::BTreeMap;
use std::path::Path;

use assay_engine::Model;
use assay_engine::ops::RopeStyle;
use assay_engine::ops::activation::{gelu_tanh, silu};
use assay_engine::ops::attention::Attention;
use assay_engine::ops::norm::{layer_norm, rms_norm};
use assay_engine::ops::rope::rope;
use assay_engine::quant::WeightRows;
use assay_harness::compare::compare;
use assay_harness::golden::{Stage, read_stages};

fn golden(arch: &str) -> (Model, BTreeMap<String, Stage>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden").join(arch);
    let model = Model::open(dir.join("hf")).unwrap();
    let stages = read_stages(&dir.join("captures/float.safetensors")).unwrap();
    (model, stages)
}

/// A tensor of the HF checkpoint as f32.
fn weight(model: &Model, name: &str) -> Vec<f32> {
    let t = model.tensor(name).unwrap_or_else(|| panic!("no tensor {name}"));
    let w = WeightRows::new(t, model.tensor_data(t)).unwrap();
    let mut out = vec![0.0f32; w.n_rows * w.n_cols];
    for (r, row) in out.chunks_exact_mut(w.n_cols).enumerate() {
        w.dequantize_row(r, row);
    }
    out
}

/// f32 storage of float64 math: agreement to ~1e-7 relative, so NMSE ≲ 1e-13.
fn assert_matches(got: &[f32], want: &Stage, what: &str) {
    let m = compare(got, &want.values).unwrap();
    assert!(m.nmse < 1e-12 && m.first_non_finite.is_none(), "{what}: {m:?}");
}

fn positions(n: usize) -> Vec<u32> {
    (0..n as u32).collect()
}

#[test]
fn llama_norm_rope_attention_and_swiglu() {
    let (model, s) = golden("llama");
    let mut y = vec![0.0f32; s["inp_embd"].values.len()];
    rms_norm(&s["inp_embd"].values, &weight(&model, "model.layers.0.input_layernorm.weight"), 1e-5, &mut y);
    assert_matches(&y, &s["attn_norm-0"], "attn_norm-0");

    let n = s["Qcur-0"].shape[0];
    for (pre, post) in [("Qcur-0", "Qcur_rope-0"), ("Kcur-0", "Kcur_rope-0")] {
        let mut x = s[pre].values.clone();
        rope(&mut x, 32, &positions(n), 32, 10000.0, RopeStyle::Neox);
        assert_matches(&x, &s[post], post);
        // The wrong pairing is far off: the check has teeth.
        let mut wrong = s[pre].values.clone();
        rope(&mut wrong, 32, &positions(n), 32, 10000.0, RopeStyle::Normal);
        assert!(compare(&wrong, &s[post].values).unwrap().nmse > 1e-3);
    }

    let att = Attention { n_head: 8, n_head_kv: 2, head_dim: 32 };
    let mut sm = vec![0.0f32; 8 * n * n];
    let mut out = vec![0.0f32; n * 256];
    att.forward(&s["Qcur_rope-0"].values, &s["Kcur_rope-0"].values, &s["Vcur-0"].values, &mut sm, &mut out);
    assert_matches(&sm, &s["kq_soft_max-0"], "kq_soft_max-0");
    assert_matches(&out, &s["kqv_out-0"], "kqv_out-0");

    let act: Vec<f32> = s["ffn_gate-0"].values.iter().zip(&s["ffn_up-0"].values).map(|(&g, &u)| silu(g) * u).collect();
    assert_matches(&act, &s["ffn_act-0"], "ffn_act-0");
}

#[test]
fn qwen3_per_head_qk_norm() {
    let (model, s) = golden("qwen3");
    let q = &s["Qcur-0"].values;
    let mut y = vec![0.0f32; q.len()];
    // RMSNorm over head_dim (64), one row per head.
    rms_norm(q, &weight(&model, "model.layers.0.self_attn.q_norm.weight"), 1e-6, &mut y);
    assert_matches(&y, &s["Qcur_normed-0"], "Qcur_normed-0");
}

#[test]
fn phi2_partial_rotary() {
    let (_, s) = golden("phi2");
    let n = s["Qcur-0"].shape[0];
    let mut x = s["Qcur-0"].values.clone();
    // head_dim 32, rotary 0.5: the first 16 values of each head rotate, NEOX-paired.
    rope(&mut x, 32, &positions(n), 16, 10000.0, RopeStyle::Neox);
    assert_matches(&x, &s["Qcur_rope-0"], "Qcur_rope-0");
}

#[test]
fn gpt2_layer_norm_and_gelu() {
    let (model, s) = golden("gpt2");
    let x = &s["inp_pos_embd"].values;
    let mut y = vec![0.0f32; x.len()];
    let (w, b) = (weight(&model, "transformer.h.0.ln_1.weight"), weight(&model, "transformer.h.0.ln_1.bias"));
    layer_norm(x, &w, &b, 1e-5, &mut y);
    assert_matches(&y, &s["attn_norm-0"], "attn_norm-0");
    let act: Vec<f32> = s["ffn_up-0"].values.iter().map(|&u| gelu_tanh(u)).collect();
    assert_matches(&act, &s["ffn_act-0"], "ffn_act-0");
}

#[test]
fn attention_through_the_kv_cache_equals_the_one_pass_attention() {
    use assay_engine::ops::kv_cache::KvCache;
    let (_, s) = golden("llama");
    let (q, k, v) = (&s["Qcur_rope-0"].values, &s["Kcur_rope-0"].values, &s["Vcur-0"].values);
    let n = s["Qcur-0"].shape[0];
    let (qrow, kvrow) = (256, 64);
    let att = Attention { n_head: 8, n_head_kv: 2, head_dim: 32 };
    let mut cache = KvCache::new(1, n, 2, 32);
    let mut out = Vec::new();
    // A 16-token prefill, then one token at a time, as the golden KV run does.
    for (start, end) in std::iter::once((0, 16)).chain((16..n).map(|t| (t, t + 1))) {
        cache.append(0, &k[start * kvrow..end * kvrow], &v[start * kvrow..end * kvrow]).unwrap();
        let (kc, vc) = cache.get(0);
        let mut sm = vec![0.0f32; 8 * (end - start) * end];
        let mut o = vec![0.0f32; (end - start) * qrow];
        att.forward(&q[start * qrow..end * qrow], kc, vc, &mut sm, &mut o);
        out.extend(o);
    }
    assert_matches(&out, &s["kqv_out-0"], "kqv_out-0 through the KV cache");
    assert!(cache.append(0, &k[..kvrow], &v[..kvrow]).is_err(), "n_ctx = 24 is full");
}
