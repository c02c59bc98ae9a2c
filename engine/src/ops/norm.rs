//! RMSNorm and LayerNorm over the rows of `[n_rows, n]`.

/// y = x / sqrt(mean(x²) + eps) · w, per row of `n = w.len()` values.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let n = w.len();
    assert!(n > 0 && x.len() == y.len() && x.len().is_multiple_of(n), "rms_norm: rows of {n}");
    for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
        let ms = xr.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / n as f64;
        let scale = 1.0 / (ms + f64::from(eps)).sqrt();
        for ((o, &v), &g) in yr.iter_mut().zip(xr).zip(w) {
            *o = (f64::from(v) * scale * f64::from(g)) as f32;
        }
    }
}

/// y = (x − mean) / sqrt(var + eps) · w + b, per row of `n = w.len()` values (biased variance,
/// as torch's LayerNorm).
pub fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f32, y: &mut [f32]) {
    let n = w.len();
    assert!(n > 0 && b.len() == n && x.len() == y.len() && x.len().is_multiple_of(n), "layer_norm: rows of {n}");
    for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
        let mean = xr.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let var = xr.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n as f64;
        let scale = 1.0 / (var + f64::from(eps)).sqrt();
        for (((o, &v), &g), &c) in yr.iter_mut().zip(xr).zip(w).zip(b) {
            *o = ((f64::from(v) - mean) * scale * f64::from(g) + f64::from(c)) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_of_a_constant_row_is_the_weight() {
        let mut y = [0.0; 4];
        rms_norm(&[3.0; 4], &[1.0, 2.0, 3.0, 4.0], 0.0, &mut y);
        assert_eq!(y, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn layer_norm_centres_and_scales() {
        let mut y = [0.0; 2];
        layer_norm(&[1.0, 3.0], &[1.0, 1.0], &[0.5, 0.5], 0.0, &mut y);
        assert_eq!(y, [-0.5, 1.5]);
    }
}
