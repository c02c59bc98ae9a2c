//! Rotary position embedding over `[n_tokens, n_head, head_dim]`, NORMAL or NEOX pairing, with
//! partial rotary (only the first `n_rot` values of each head rotate).

use super::RopeStyle;

/// Rotates `x` in place. `positions[t]` is token t's position; θ_i = pos · base^(−2i/n_rot).
pub fn rope(x: &mut [f32], head_dim: usize, positions: &[u32], n_rot: usize, base: f64, style: RopeStyle) {
    assert!(n_rot <= head_dim && n_rot.is_multiple_of(2), "rope: n_rot {n_rot} of head_dim {head_dim}");
    assert!(
        x.len().is_multiple_of(head_dim)
            && !positions.is_empty()
            && (x.len() / head_dim).is_multiple_of(positions.len())
    );
    let per_token = x.len() / positions.len();
    let half = n_rot / 2;
    for (row, &pos) in x.chunks_exact_mut(per_token).zip(positions) {
        for head in row.chunks_exact_mut(head_dim) {
            for i in 0..half {
                let theta = f64::from(pos) * base.powf(-2.0 * i as f64 / n_rot as f64);
                let (sin, cos) = theta.sin_cos();
                let (a, b) = match style {
                    RopeStyle::Normal => (2 * i, 2 * i + 1),
                    RopeStyle::Neox => (i, i + half),
                };
                let (x0, x1) = (f64::from(head[a]), f64::from(head[b]));
                head[a] = (x0 * cos - x1 * sin) as f32;
                head[b] = (x0 * sin + x1 * cos) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_zero_is_the_identity_and_pairs_follow_the_style() {
        let x: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let mut y = x.clone();
        rope(&mut y, 8, &[0], 8, 10000.0, RopeStyle::Neox);
        assert_eq!(x, y);
        // With base 1 every angle is the position: a quarter turn at π/2 rotates (x0, x1) to (−x1, x0).
        let mut n = vec![1.0, 2.0, 0.0, 0.0];
        rope(&mut n, 4, &[1], 2, 1.0, RopeStyle::Normal);
        let (s, c) = 1f64.sin_cos();
        assert!((f64::from(n[0]) - (c - 2.0 * s)).abs() < 1e-6 && (f64::from(n[1]) - (s + 2.0 * c)).abs() < 1e-6);
        assert_eq!(&n[2..], &[0.0, 0.0], "beyond n_rot nothing moves");
        let mut h = vec![1.0, 0.0, 2.0, 0.0];
        rope(&mut h, 4, &[1], 4, 1.0, RopeStyle::Neox);
        // NEOX pairs (0, 2) and (1, 3).
        assert!((f64::from(h[0]) - (c - 2.0 * s)).abs() < 1e-6 && (f64::from(h[2]) - (s + 2.0 * c)).abs() < 1e-6);
    }
}
