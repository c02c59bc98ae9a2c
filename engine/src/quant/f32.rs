//! F32 weights: blocks of one element. Their activations stay f32.

use bytemuck::{Pod, Zeroable};

use super::{ActBlock, Block, WeightBlock};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockF32(pub [u8; 4]);
const _: () = assert!(size_of::<BlockF32>() == 4);

impl BlockF32 {
    pub fn get(self) -> f32 {
        f32::from_le_bytes(self.0)
    }
}

impl Block for BlockF32 {
    const ELEMS: usize = 1;
}

impl WeightBlock for BlockF32 {
    type Act = BlockF32;

    fn dequantize(&self, out: &mut [f32]) {
        out[0] = self.get();
    }

    /// Sixteen independent partial sums, as ggml's SIMD `ggml_vec_dot_f32` keeps: the compiler
    /// vectorizes it, where one running sum would serialize every addition.
    fn vec_dot(w: &[Self], a: &[Self]) -> f32 {
        const LANES: usize = 16;
        let mut acc = [0.0f32; LANES];
        let (wc, wr) = w.split_at(w.len() - w.len() % LANES);
        for (x, y) in wc.chunks_exact(LANES).zip(a.chunks_exact(LANES)) {
            for l in 0..LANES {
                acc[l] += x[l].get() * y[l].get();
            }
        }
        let tail: f32 = wr.iter().zip(&a[wc.len()..]).map(|(x, y)| x.get() * y.get()).sum();
        acc.iter().sum::<f32>() + tail
    }
}

impl ActBlock for BlockF32 {
    fn quantize(x: &[f32], out: &mut [Self]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = BlockF32(v.to_le_bytes());
        }
    }

    super::activation_variant!(F32);
}
