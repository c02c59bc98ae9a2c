//! The kernels against ggml's own vectors (golden/kernels, made by golden/tools/kernel_vectors.py):
//! dequantization bit-exact with gguf-py and ggml, activation quantization bit-exact with ggml's
//! CPU path, dot products within ggml's error budgets of ggml's `vec_dot`.

use std::path::PathBuf;

use assay_engine::DType;
use assay_engine::quant::{Activations, Isa, WeightRows};
use safetensors::SafeTensors;

fn vectors(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../golden/kernels").join(format!("{name}.safetensors"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn f32s(st: &SafeTensors<'_>, name: &str) -> Vec<f32> {
    st.tensor(name).unwrap().data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn bytes<'a>(st: &'a SafeTensors<'a>, name: &str) -> (&'a [u8], Vec<usize>) {
    let t = st.tensor(name).unwrap();
    (t.data(), t.shape().to_vec())
}

/// The raw bytes of activations, to compare with ggml's.
fn act_bytes(a: &Activations) -> Vec<u8> {
    match a {
        Activations::F32(b) => bytemuck::cast_slice(b).to_vec(),
        Activations::F16(b) => bytemuck::cast_slice(b).to_vec(),
        Activations::BF16(b) => bytemuck::cast_slice(b).to_vec(),
        Activations::Q8_0(b) => bytemuck::cast_slice(b).to_vec(),
        Activations::Q8_1(b) => bytemuck::cast_slice(b).to_vec(),
        Activations::Q8K(b) => bytemuck::cast_slice(b).to_vec(),
    }
}

/// Checks one weight type: dequantization, the activations of its `vec_dot_type`, and the dot.
/// `budget` is ggml's dot-product error budget relative to Σ|w·a|.
fn check_weight_type(file: &str, dtype: DType, budget: f64) {
    let raw = vectors(file);
    let st = SafeTensors::deserialize(&raw).unwrap();
    let (q, shape) = bytes(&st, "quantized");
    let input = f32s(&st, "input");
    let n_cols = input.len() / shape[0];
    let w = WeightRows::from_parts(file, dtype, q, shape[0], n_cols).unwrap();

    // Dequantization: bit-exact with gguf-py (and hence ggml).
    let expected = f32s(&st, "dequantized");
    let mut row = vec![0.0f32; n_cols];
    for r in 0..w.n_rows {
        w.dequantize_row(r, &mut row);
        for (c, (&got, &want)) in row.iter().zip(&expected[r * n_cols..]).enumerate() {
            assert_eq!(got.to_bits(), want.to_bits(), "{file} row {r} col {c}: {got} vs {want}");
        }
    }

    // Activations: bit-exact with ggml's CPU `from_float` for the vec_dot_type.
    let act_in = f32s(&st, "dot_activation_input");
    let (act_q, act_shape) = bytes(&st, "dot_activation_quantized");
    let act_row_bytes = act_q.len() / act_shape[0];
    let acts: Vec<Activations> = act_in.chunks_exact(n_cols).map(|x| w.quantize(x)).collect();
    for (i, a) in acts.iter().enumerate() {
        assert_eq!(act_bytes(a), &act_q[i * act_row_bytes..(i + 1) * act_row_bytes], "{file}: activation row {i}");
    }

    // Dot products: ggml's vec_dot, within the budget, for every instruction set here.
    let dots = f32s(&st, "dot");
    let n_acts = acts.len();
    for isa in Isa::available() {
        for r in 0..w.n_rows {
            let mut wrow = vec![0.0f32; n_cols];
            w.dequantize_row(r, &mut wrow);
            for (j, (a, x)) in acts.iter().zip(act_in.chunks_exact(n_cols)).enumerate() {
                let got = f64::from(w.dot_isa(isa, r, a));
                let want = f64::from(dots[r * n_acts + j]);
                let scale: f64 = wrow.iter().zip(x).map(|(&p, &q)| (f64::from(p) * f64::from(q)).abs()).sum();
                let err = (got - want).abs() / scale.max(1e-30);
                assert!(
                    err <= budget,
                    "{file} {isa:?} row {r} act {j}: {got} vs ggml {want} (rel {err:.2e} > {budget:.0e})"
                );
            }
        }
    }
}

/// Checks an activation format: quantization bit-exact with ggml's CPU path.
fn check_activation_type(file: &str, dtype: DType) {
    let raw = vectors(file);
    let st = SafeTensors::deserialize(&raw).unwrap();
    let x = f32s(&st, "activation_input");
    let (want, shape) = bytes(&st, "activation_quantized");
    let n_cols = x.len() / shape[0];
    let row_bytes = want.len() / shape[0];
    // A weight matrix whose vec_dot_type is `dtype` quantizes activations to it.
    let carrier = match dtype {
        DType::Q8_0 => DType::Q8_0,
        DType::Q8_1 => DType::Q4_1,
        DType::Q8_K => DType::Q4_K,
        other => panic!("{other} is not an activation format"),
    };
    let zero_rows = vec![0u8; 0];
    let w = WeightRows::from_parts(file, carrier, &zero_rows, 0, n_cols).unwrap();
    for (i, row) in x.chunks_exact(n_cols).enumerate() {
        let got = act_bytes(&w.quantize(row));
        assert_eq!(got, &want[i * row_bytes..(i + 1) * row_bytes], "{file}: activation row {i}");
    }
}

// ggml's budgets (tests/test-quantize-fns.cpp): dot products 0.02, low-bit 0.04, relative to the
// magnitude of the sum. Ours is the same computation as ggml's up to summation order, so the
// measured errors are ~1e-6; the budgets are what ggml itself promises.
const DOT: f64 = 0.02;
const DOT_LOW_BIT: f64 = 0.04;

#[test]
fn q8_0() {
    check_weight_type("q8_0", DType::Q8_0, DOT);
    check_activation_type("q8_0", DType::Q8_0);
}

#[test]
fn q4_k() {
    check_weight_type("q4_k", DType::Q4_K, DOT);
}

#[test]
fn q8_k_activations() {
    check_activation_type("q8_k", DType::Q8_K);
}

#[test]
fn q2_k() {
    check_weight_type("q2_k", DType::Q2_K, DOT_LOW_BIT);
}

#[test]
fn q3_k() {
    check_weight_type("q3_k", DType::Q3_K, DOT_LOW_BIT);
}

#[test]
fn q5_k() {
    check_weight_type("q5_k", DType::Q5_K, DOT);
}

#[test]
fn q6_k() {
    check_weight_type("q6_k", DType::Q6_K, DOT);
}

#[test]
fn q4_0() {
    check_weight_type("q4_0", DType::Q4_0, DOT);
}

#[test]
fn q4_1() {
    check_weight_type("q4_1", DType::Q4_1, DOT);
}

#[test]
fn q5_0() {
    check_weight_type("q5_0", DType::Q5_0, DOT);
}

#[test]
fn q5_1() {
    check_weight_type("q5_1", DType::Q5_1, DOT);
}

#[test]
fn f16() {
    check_weight_type("f16", DType::F16, DOT);
}

#[test]
fn bf16() {
    check_weight_type("bf16", DType::BF16, DOT);
}

#[test]
fn q8_1_activations() {
    check_activation_type("q8_1", DType::Q8_1);
}
