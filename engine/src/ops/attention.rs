//! Causal multi-head attention with grouped-query heads, over a key/value history.

/// Attention of `n_tokens` queries `q` (`[n_tokens, n_head, head_dim]`, after rope) over
/// `n_kv` keys and values (`[n_kv, n_head_kv, head_dim]`). Query t sits at position
/// `n_kv − n_tokens + t` and sees keys 0..=that position. Writes the softmax
/// (`[n_head, n_tokens, n_kv]`, zeros where masked) and the output (`[n_tokens, n_head, head_dim]`).
pub struct Attention {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
}

impl Attention {
    pub fn forward(&self, q: &[f32], k: &[f32], v: &[f32], soft_max: &mut [f32], out: &mut [f32]) {
        let (h, hkv, d) = (self.n_head, self.n_head_kv, self.head_dim);
        assert!(hkv > 0 && h.is_multiple_of(hkv), "attention: {h} heads over {hkv} kv heads");
        let n_tokens = q.len() / (h * d);
        let n_kv = k.len() / (hkv * d);
        assert!(
            n_kv >= n_tokens && v.len() == k.len() && soft_max.len() == h * n_tokens * n_kv && out.len() == q.len()
        );
        let scale = 1.0 / (d as f64).sqrt();
        let group = h / hkv;
        for head in 0..h {
            let kv_head = head / group;
            for t in 0..n_tokens {
                let pos = n_kv - n_tokens + t;
                let qv = &q[(t * h + head) * d..][..d];
                let row = &mut soft_max[(head * n_tokens + t) * n_kv..][..n_kv];
                let mut scores = vec![0.0f64; pos + 1];
                for (j, s) in scores.iter_mut().enumerate() {
                    let kv = &k[(j * hkv + kv_head) * d..][..d];
                    *s = qv.iter().zip(kv).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum::<f64>() * scale;
                }
                let max = scores.iter().fold(f64::NEG_INFINITY, |m, &s| m.max(s));
                let sum: f64 = scores.iter().map(|&s| (s - max).exp()).sum();
                row.fill(0.0);
                let o = &mut out[(t * h + head) * d..][..d];
                let mut acc = vec![0.0f64; d];
                for (j, &s) in scores.iter().enumerate() {
                    let p = (s - max).exp() / sum;
                    row[j] = p as f32;
                    let vv = &v[(j * hkv + kv_head) * d..][..d];
                    for (a, &x) in acc.iter_mut().zip(vv) {
                        *a += p * f64::from(x);
                    }
                }
                for (dst, a) in o.iter_mut().zip(acc) {
                    *dst = a as f32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_is_copied_and_rows_sum_to_one() {
        let att = Attention { n_head: 2, n_head_kv: 1, head_dim: 2 };
        // Two tokens, one kv head shared by both query heads.
        let q = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, -1.0];
        let k = [1.0, 0.0, 0.0, 1.0];
        let v = [5.0, 6.0, 7.0, 8.0];
        let mut sm = [0.0; 8];
        let mut out = [0.0; 8];
        att.forward(&q, &k, &v, &mut sm, &mut out);
        // Token 0 sees only key 0: its output is v0 for both heads, and the masked weight is 0.
        assert_eq!(&out[..4], &[5.0, 6.0, 5.0, 6.0]);
        assert_eq!((sm[0], sm[1]), (1.0, 0.0));
        for row in sm.chunks_exact(2) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }
}
