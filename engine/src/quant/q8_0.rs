//! Q8_0: 32 elements, one f16 scale, 32 × i8. Also the activation format of Q4_0, Q5_0, Q8_0.

use bytemuck::{Pod, Zeroable};

use super::{ActBlock, Block, Isa, WeightBlock, f16_at, round_even};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ8_0 {
    /// Scale, f16.
    pub d: [u8; 2],
    /// (32) quants.
    pub qs: [i8; 32],
}
const _: () = assert!(size_of::<BlockQ8_0>() == 34);

impl Block for BlockQ8_0 {
    const ELEMS: usize = 32;
}

impl WeightBlock for BlockQ8_0 {
    type Act = BlockQ8_0;

    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_at(self.d);
        for (o, &q) in out.iter_mut().zip(&self.qs) {
            *o = f32::from(q) * d;
        }
    }

    fn vec_dot(w: &[Self], a: &[Self]) -> f32 {
        let mut sum = 0.0f32;
        for (x, y) in w.iter().zip(a) {
            let sumi: i32 = x.qs.iter().zip(&y.qs).map(|(&p, &q)| i32::from(p) * i32::from(q)).sum();
            sum += sumi as f32 * (f16_at(x.d) * f16_at(y.d));
        }
        sum
    }

    fn vec_dot_isa(isa: Isa, w: &[Self], a: &[Self]) -> f32 {
        match isa {
            // SAFETY: `isa` is only ever a level the CPU was detected to support.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => unsafe { super::x86::vec_dot_q8_0_vnni(w, a) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { super::x86::vec_dot_q8_0_avx2(w, a) },
            _ => Self::vec_dot(w, a),
        }
    }
}

impl ActBlock for BlockQ8_0 {
    /// ggml's x86 `quantize_row_q8_0`: d = amax/127 stored as f16, q = round-half-even(x · 127/amax).
    /// (The reference quantizer instead rounds half away from zero with 1/d; llama.cpp's CPU
    /// matmul uses this one.)
    fn quantize(x: &[f32], out: &mut [Self]) {
        for (block, x) in out.iter_mut().zip(x.chunks_exact(32)) {
            let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            block.d = half::f16::from_f32(d).to_le_bytes();
            for (q, &v) in block.qs.iter_mut().zip(x) {
                *q = round_even(v * id) as i8;
            }
        }
    }

    super::activation_variant!(Q8_0);
}
