//! Router math of a mixture-of-experts layer, one row (one token) at a time: softmax over the
//! expert logits, the top k, renormalization. Two precisions: `_f64` for the reference backend,
//! `_ggml` as llama.cpp's CPU backend computes it (f32 values, f64 sums).

use std::cmp::Ordering;

/// Softmax in f64 (`x - max` first), rounded to f32 at the end.
pub fn soft_max_f64(x: &[f32], out: &mut [f32]) {
    let max = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let sum: f64 = x.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = ((f64::from(v) - max).exp() / sum) as f32;
    }
}

/// Softmax as ggml's `soft_max`: `expf(x - max)` in f32, summed in f64, scaled by `1/sum` in f32.
pub fn soft_max_ggml(x: &[f32], out: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0f64;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - max).exp();
        sum += f64::from(*o);
    }
    let scale = (1.0 / sum) as f32;
    for o in out.iter_mut() {
        *o *= scale;
    }
}

/// Columns of the `ids.len()` largest values, largest first. Equal values go to the lower
/// column, so the choice never depends on sort stability; NaN sorts above every number (a
/// poisoned router still routes, and the NaN travels on to be reported).
pub fn top_k(x: &[f32], ids: &mut [u32]) {
    let mut order: Vec<u32> = (0..x.len() as u32).collect();
    let k = ids.len();
    let by_value = |a: &u32, b: &u32| -> Ordering {
        let (va, vb) = (x[*a as usize], x[*b as usize]);
        vb.total_cmp(&va).then(a.cmp(b))
    };
    if k < order.len() {
        order.select_nth_unstable_by(k, by_value);
    }
    order.truncate(k);
    order.sort_by(by_value);
    ids.copy_from_slice(&order);
}

/// `x / Σx` in f64.
pub fn normalize_f64(x: &[f32], out: &mut [f32]) {
    let sum: f64 = x.iter().map(|&v| f64::from(v)).sum();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (f64::from(v) / sum) as f32;
    }
}

/// llama.cpp's renormalization: the sum (f64, rounded to f32) clamped to the smallest normal
/// f16, so a row of zeros cannot divide by zero, then an f32 division.
pub fn normalize_ggml(x: &[f32], out: &mut [f32]) {
    let sum = x.iter().map(|&v| f64::from(v)).sum::<f64>() as f32;
    let sum = sum.max(half::f16::MIN_POSITIVE.to_f32());
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v / sum;
    }
}

/// σ(g) in f64.
pub fn sigmoid(g: f32) -> f64 {
    1.0 / (1.0 + (-f64::from(g)).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_max_sums_to_one_in_both_precisions() {
        let x = [1.0f32, -2.0, 0.5, 3.25, 3.25];
        for f in [soft_max_f64, soft_max_ggml] {
            let mut p = [0.0f32; 5];
            f(&x, &mut p);
            let s: f64 = p.iter().map(|&v| f64::from(v)).sum();
            assert!((s - 1.0).abs() < 1e-6, "{s}");
            assert_eq!(p[3], p[4]);
            assert!(p[3] > p[0] && p[0] > p[2] && p[2] > p[1]);
        }
    }

    #[test]
    fn top_k_is_largest_first_and_breaks_ties_by_lower_column() {
        let mut ids = [0u32; 3];
        top_k(&[0.1, 0.4, 0.2, 0.4, 0.3], &mut ids);
        assert_eq!(ids, [1, 3, 4]);
        let mut ids = [0u32; 2];
        top_k(&[0.5, 0.5, 0.5, 0.5], &mut ids);
        assert_eq!(ids, [0, 1]);
        // k = every column still sorts.
        let mut ids = [0u32; 4];
        top_k(&[0.1, 0.4, 0.2, 0.3], &mut ids);
        assert_eq!(ids, [1, 3, 2, 0]);
        // NaN does not panic and is picked.
        let mut ids = [0u32; 2];
        top_k(&[0.1, f32::NAN, 0.2, 0.3], &mut ids);
        assert_eq!(ids, [1, 3]);
    }

    #[test]
    fn normalization_makes_rows_sum_to_one_and_never_divides_by_zero() {
        let mut out = [0.0f32; 2];
        for f in [normalize_f64, normalize_ggml] {
            f(&[0.3, 0.1], &mut out);
            assert!((out[0] - 0.75).abs() < 1e-7 && (out[1] - 0.25).abs() < 1e-7, "{out:?}");
        }
        normalize_ggml(&[0.0, 0.0], &mut out);
        assert_eq!(out, [0.0, 0.0]);
    }
}
