//! Comparison metrics of a computed tensor against its reference, in the order a failing run
//! needs them: non-finite values first, then NMSE (Σ(a−b)²/Σb², as llama.cpp's test-backend-ops),
//! max-abs and cosine; for logits also KL divergence and top-1 agreement.

use serde::Serialize;

/// How a computed tensor compares with its reference. All sums in f64.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metrics {
    pub n: usize,
    /// Index of the first NaN or ±inf in the computed tensor (the reference is checked apart).
    pub first_non_finite: Option<usize>,
    /// Σ(a−b)² / Σb²; `f64::INFINITY` when the reference is all zero and the computed is not.
    pub nmse: f64,
    pub max_abs: f64,
    /// a·b / (|a| |b|); 1 for two zero tensors.
    pub cosine: f64,
}

/// Why two tensors cannot be compared at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompareError {
    #[error("shape mismatch: {got} values computed, the reference has {want}")]
    Length { got: usize, want: usize },
    #[error("the reference itself holds a non-finite value at index {index}")]
    ReferenceNotFinite { index: usize },
}

/// Compares `got` with the reference `want`, element by element.
pub fn compare(got: &[f32], want: &[f32]) -> Result<Metrics, CompareError> {
    if got.len() != want.len() {
        return Err(CompareError::Length { got: got.len(), want: want.len() });
    }
    if let Some(index) = want.iter().position(|v| !v.is_finite()) {
        return Err(CompareError::ReferenceNotFinite { index });
    }
    let first_non_finite = got.iter().position(|v| !v.is_finite());
    let (mut err, mut norm_b, mut norm_a, mut dot, mut max_abs) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (&a, &b) in got.iter().zip(want) {
        let (a, b) = (f64::from(a), f64::from(b));
        let d = a - b;
        err += d * d;
        norm_b += b * b;
        norm_a += a * a;
        dot += a * b;
        max_abs = max_abs.max(d.abs());
    }
    let nmse = if norm_b > 0.0 {
        err / norm_b
    } else if err == 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    let cosine = if norm_a == 0.0 && norm_b == 0.0 { 1.0 } else { dot / (norm_a.sqrt() * norm_b.sqrt()) };
    Ok(Metrics {
        n: got.len(),
        first_non_finite,
        nmse: if first_non_finite.is_some() { f64::NAN } else { nmse },
        max_abs: if first_non_finite.is_some() { f64::NAN } else { max_abs },
        cosine: if first_non_finite.is_some() { f64::NAN } else { cosine },
    })
}

/// Logit agreement over `n_tokens` rows of `n_vocab`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogitMetrics {
    /// Largest per-token KL(reference ‖ computed) in nats.
    pub kl_max: f64,
    pub kl_mean: f64,
    /// Fraction of tokens whose argmax agrees.
    pub top1_agreement: f64,
}

/// KL divergence of the computed distribution from the reference one, and top-1 agreement, per
/// token (softmax of each row, in f64 with the max subtracted).
pub fn compare_logits(got: &[f32], want: &[f32], n_vocab: usize) -> Result<LogitMetrics, CompareError> {
    if got.len() != want.len() || n_vocab == 0 || !got.len().is_multiple_of(n_vocab) {
        return Err(CompareError::Length { got: got.len(), want: want.len() });
    }
    let n_tokens = got.len() / n_vocab;
    let (mut kl_max, mut kl_sum, mut agree) = (0.0f64, 0.0f64, 0usize);
    for (a, b) in got.chunks_exact(n_vocab).zip(want.chunks_exact(n_vocab)) {
        let lq = log_softmax(a);
        let lp = log_softmax(b);
        let kl: f64 = lp.iter().zip(&lq).map(|(&p, &q)| p.exp() * (p - q)).sum();
        kl_max = kl_max.max(kl);
        kl_sum += kl;
        agree += usize::from(argmax(a) == argmax(b));
    }
    Ok(LogitMetrics {
        kl_max,
        kl_mean: if n_tokens == 0 { 0.0 } else { kl_sum / n_tokens as f64 },
        top1_agreement: if n_tokens == 0 { 1.0 } else { agree as f64 / n_tokens as f64 },
    })
}

fn log_softmax(x: &[f32]) -> Vec<f64> {
    let max = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let lse = max + x.iter().map(|&v| (f64::from(v) - max).exp()).sum::<f64>().ln();
    x.iter().map(|&v| f64::from(v) - lse).collect()
}

/// Index of the largest value; the first on ties (as llama.cpp's greedy sampler).
fn argmax(x: &[f32]) -> usize {
    x.iter().enumerate().fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) }).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_tensors_are_perfect() {
        let m = compare(&[1.0, -2.0, 3.0], &[1.0, -2.0, 3.0]).unwrap();
        assert_eq!((m.nmse, m.max_abs, m.cosine, m.first_non_finite), (0.0, 0.0, 1.0, None));
    }

    #[test]
    fn nmse_max_abs_and_cosine_have_their_definitions() {
        // a = b + e with Σe² = 0.02, Σb² = 14.
        let m = compare(&[1.1, -2.1, 3.0], &[1.0, -2.0, 3.0]).unwrap();
        // f32 inputs: 1.1 and 2.1 are not exact, so agree to f32 precision.
        assert!((m.nmse / (0.02 / 14.0) - 1.0).abs() < 1e-5, "{}", m.nmse);
        assert!((m.max_abs - 0.1).abs() < 1e-6);
        let dot = 1.1 * 1.0 + 2.1 * 2.0 + 9.0;
        let cos = dot / ((1.21f64 + 4.41 + 9.0).sqrt() * 14f64.sqrt());
        assert!((m.cosine - cos).abs() < 1e-7);
        // Sign flips are cosine −1.
        assert!((compare(&[-1.0, 2.0], &[1.0, -2.0]).unwrap().cosine + 1.0).abs() < 1e-12);
    }

    #[test]
    fn non_finite_values_come_first() {
        let m = compare(&[1.0, f32::NAN, f32::INFINITY], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(m.first_non_finite, Some(1));
        assert!(m.nmse.is_nan() && m.cosine.is_nan());
        assert_eq!(compare(&[1.0], &[f32::NAN]), Err(CompareError::ReferenceNotFinite { index: 0 }));
        assert_eq!(compare(&[1.0], &[1.0, 2.0]), Err(CompareError::Length { got: 1, want: 2 }));
    }

    #[test]
    fn zero_references() {
        assert_eq!(compare(&[0.0, 0.0], &[0.0, 0.0]).unwrap().nmse, 0.0);
        assert_eq!(compare(&[0.0, 1.0], &[0.0, 0.0]).unwrap().nmse, f64::INFINITY);
    }

    #[test]
    fn logits_kl_and_top1() {
        let same = compare_logits(&[1.0, 2.0, 3.0, 0.0, 5.0, 1.0], &[1.0, 2.0, 3.0, 0.0, 5.0, 1.0], 3).unwrap();
        assert_eq!((same.kl_max, same.top1_agreement), (0.0, 1.0));
        // A constant shift of a row changes nothing; swapping the top two halves agreement.
        let m = compare_logits(&[11.0, 12.0, 13.0, 5.0, 0.0, 1.0], &[1.0, 2.0, 3.0, 0.0, 5.0, 1.0], 3).unwrap();
        assert_eq!(m.top1_agreement, 0.5);
        assert!(m.kl_max > 1.0 && m.kl_mean > 0.0);
        // KL(p‖q) for p = softmax(0, ln 3) = (1/4, 3/4), q = uniform: Σ p ln(p/q).
        let l3 = 3f32.ln();
        let want = 0.25 * (0.25f64 / 0.5).ln() + 0.75 * (0.75f64 / 0.5).ln();
        let m = compare_logits(&[0.0, 0.0], &[0.0, l3], 2).unwrap();
        assert!((m.kl_max - want).abs() < 1e-6, "{} vs {want}", m.kl_max);
    }
}
