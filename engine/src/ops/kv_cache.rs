//! The host KV cache of the reference and CPU backends: per layer, the keys and values of every
//! position so far, `[n_ctx, n_head_kv * head_dim]` each. Filling it past `n_ctx` is an error the
//! caller reports, never an out-of-bounds write.

/// The cache is full: `n_ctx` positions are taken and `wanted` more were offered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("context full: {used} of {n_ctx} positions used, {wanted} more requested")]
pub struct ContextFull {
    pub n_ctx: usize,
    pub used: usize,
    pub wanted: usize,
}

#[derive(Clone, Debug)]
pub struct KvCache {
    n_ctx: usize,
    /// Values per position: n_head_kv · head_dim.
    row: usize,
    /// (n_layer) keys, `[n_ctx, row]` each.
    keys: Vec<Vec<f32>>,
    /// (n_layer) values, `[n_ctx, row]` each.
    values: Vec<Vec<f32>>,
    /// Positions filled in each layer.
    len: Vec<usize>,
}

impl KvCache {
    pub fn new(n_layer: usize, n_ctx: usize, n_head_kv: usize, head_dim: usize) -> Self {
        let row = n_head_kv * head_dim;
        Self {
            n_ctx,
            row,
            keys: vec![vec![0.0; n_ctx * row]; n_layer],
            values: vec![vec![0.0; n_ctx * row]; n_layer],
            len: vec![0; n_layer],
        }
    }

    /// Positions filled in `layer` (the position of the next token).
    pub fn len(&self, layer: usize) -> usize {
        self.len[layer]
    }

    pub fn is_empty(&self, layer: usize) -> bool {
        self.len[layer] == 0
    }

    /// Appends the keys and values of `k.len() / row` new positions to `layer`.
    pub fn append(&mut self, layer: usize, k: &[f32], v: &[f32]) -> Result<(), ContextFull> {
        assert!(k.len() == v.len() && k.len().is_multiple_of(self.row), "kv rows of {}", self.row);
        let (used, wanted) = (self.len[layer], k.len() / self.row);
        if used + wanted > self.n_ctx {
            return Err(ContextFull { n_ctx: self.n_ctx, used, wanted });
        }
        let at = used * self.row;
        self.keys[layer][at..at + k.len()].copy_from_slice(k);
        self.values[layer][at..at + v.len()].copy_from_slice(v);
        self.len[layer] += wanted;
        Ok(())
    }

    /// Keys and values of every filled position of `layer`, `[len, row]` each.
    pub fn get(&self, layer: usize) -> (&[f32], &[f32]) {
        let n = self.len[layer] * self.row;
        (&self.keys[layer][..n], &self.values[layer][..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_in_order_and_refuses_past_n_ctx() {
        let mut c = KvCache::new(2, 3, 1, 2);
        c.append(0, &[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]).unwrap();
        c.append(0, &[9.0, 10.0], &[11.0, 12.0]).unwrap();
        assert_eq!(c.len(0), 3);
        assert!(c.is_empty(1));
        assert_eq!(c.get(0).0, &[1.0, 2.0, 3.0, 4.0, 9.0, 10.0]);
        let err = c.append(0, &[0.0, 0.0], &[0.0, 0.0]).unwrap_err();
        assert_eq!(err, ContextFull { n_ctx: 3, used: 3, wanted: 1 });
        assert_eq!(err.to_string(), "context full: 3 of 3 positions used, 1 more requested");
        assert_eq!(c.len(0), 3, "a refused append changes nothing");
    }
}
