//! Q8_K: the activation format of every K-quant. 256 elements, an f32 scale, 256 × i8 and the
//! sums of each 16 quants (through which K-quant mins are applied).

use bytemuck::{Pod, Zeroable};

use super::{ActBlock, Block, round_even};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ8K {
    /// Scale, f32.
    pub d: [u8; 4],
    /// (256) quants.
    pub qs: [i8; 256],
    /// (16) Σ of each 16 quants, i16.
    pub bsums: [[u8; 2]; 16],
}
const _: () = assert!(size_of::<BlockQ8K>() == 292);

impl BlockQ8K {
    pub fn d(&self) -> f32 {
        f32::from_le_bytes(self.d)
    }

    pub fn bsum(&self, j: usize) -> i32 {
        i32::from(i16::from_le_bytes(self.bsums[j]))
    }
}

impl Block for BlockQ8K {
    const ELEMS: usize = 256;
}

impl ActBlock for BlockQ8K {
    /// ggml's `quantize_row_q8_K_ref` (x86 uses it for activations too): the signed value of
    /// largest magnitude maps to -127, q = min(127, round-half-even(-127/max · x)), d = max/-127.
    /// An all-zero block gets d = 0, zero quants and zero sums.
    fn quantize(x: &[f32], out: &mut [Self]) {
        for (block, x) in out.iter_mut().zip(x.chunks_exact(256)) {
            let (mut max, mut amax) = (0.0f32, 0.0f32);
            for &v in x {
                if v.abs() > amax {
                    amax = v.abs();
                    max = v;
                }
            }
            *block = Self::zeroed();
            if amax == 0.0 {
                continue;
            }
            let iscale = -127.0 / max;
            for (q, &v) in block.qs.iter_mut().zip(x) {
                *q = (round_even(iscale * v) as i32).min(127) as i8;
            }
            for (j, s) in block.bsums.iter_mut().enumerate() {
                let sum: i32 = block.qs[16 * j..16 * (j + 1)].iter().map(|&q| i32::from(q)).sum();
                *s = (sum as i16).to_le_bytes();
            }
            block.d = (1.0 / iscale).to_le_bytes();
        }
    }

    super::activation_variant!(Q8K);
}
