//! Q6_K: 256 elements in 16 sub-blocks of 16, each with an i8 scale, under an f16 super-scale `d`;
//! 6-bit quants (4 low bits in `ql`, 2 high bits in `qh`) offset by 32.

use bytemuck::{Pod, Zeroable};

use super::{Block, BlockQ8K, Isa, WeightBlock, f16_at};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ6K {
    /// (256) low 4 bits. Element 128n + 32g + l (half n, group g = 0..4, l = 0..32) reads nibble
    /// g/2 of ql[64n + 32(g%2) + l].
    pub ql: [u8; 128],
    /// (256) high 2 bits: that element's are bits 2g..2g+2 of qh[32n + l].
    pub qh: [u8; 64],
    /// (16) scales, one per 16 elements.
    pub scales: [i8; 16],
    /// Super-block scale, f16.
    pub d: [u8; 2],
}
const _: () = assert!(size_of::<BlockQ6K>() == 210);

impl BlockQ6K {
    /// The signed 6-bit quant of element `e`, -32..=31.
    #[inline]
    fn q6(&self, e: usize) -> i8 {
        let (n, g, l) = (e / 128, (e % 128) / 32, e % 32);
        let lo = (self.ql[64 * n + 32 * (g % 2) + l] >> (4 * (g / 2))) & 0xF;
        let hi = (self.qh[32 * n + l] >> (2 * g)) & 3;
        (lo | (hi << 4)) as i8 - 32
    }
}

impl Block for BlockQ6K {
    const ELEMS: usize = 256;
}

impl WeightBlock for BlockQ6K {
    type Act = BlockQ8K;

    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_at(self.d);
        for (s, y) in out[..256].chunks_exact_mut(16).enumerate() {
            let sc = f32::from(self.scales[s]);
            for (l, y) in y.iter_mut().enumerate() {
                // ggml: d * sc * q, left to right.
                *y = d * sc * f32::from(self.q6(16 * s + l));
            }
        }
    }

    fn vec_dot(w: &[Self], a: &[BlockQ8K]) -> f32 {
        let mut sum = 0.0f32;
        for (x, y) in w.iter().zip(a) {
            // Σ_s scale_s · (q6 · q8 over sub-block s) in integers, the offset -32 applied to the
            // quants themselves (as ggml_vec_dot_q6_K_q8_K), then one f32 scaling per super-block.
            let mut sumi = 0i32;
            for s in 0..16 {
                let q8 = &y.qs[16 * s..16 * s + 16];
                let dot: i32 = q8.iter().enumerate().map(|(l, &p)| i32::from(x.q6(16 * s + l)) * i32::from(p)).sum();
                sumi += i32::from(x.scales[s]) * dot;
            }
            let d = f16_at(x.d) * y.d();
            sum += d * sumi as f32;
        }
        sum
    }

    fn vec_dot_isa(isa: Isa, w: &[Self], a: &[BlockQ8K]) -> f32 {
        match isa {
            // SAFETY: `isa` is only ever a level the CPU was detected to support.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512Vnni => unsafe { super::x86::vec_dot_q6_k_avx2(w, a) },
            _ => Self::vec_dot(w, a),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable;
    use proptest::prelude::*;

    use super::super::testing::k_quants::{abs_dequantized, bytes, check_vec_dot, f16_bytes, q8k};
    use super::*;

    fn any_block() -> impl Strategy<Value = BlockQ6K> {
        prop_oneof![
            1 => Just(BlockQ6K::zeroed()),
            9 => (bytes(210), f16_bytes()).prop_map(|(b, d)| {
                let mut x: BlockQ6K = bytemuck::pod_read_unaligned(&b);
                x.d = d;
                x
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn vec_dot_matches_reference(pairs in prop::collection::vec((any_block(), q8k()), 1..5)) {
            check_vec_dot(&pairs, abs_dequantized)?;
        }
    }

    #[test]
    fn layout() {
        // ggml's loop: per half n, for l in 0..32, four elements l, l+32, l+64, l+96.
        let mut x = BlockQ6K::zeroed();
        x.d = half::f16::from_f32(1.0).to_le_bytes();
        for (i, b) in x.ql.iter_mut().chain(&mut x.qh).enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        for (s, sc) in x.scales.iter_mut().enumerate() {
            *sc = s as i8 - 7;
        }
        let mut y = [0.0f32; 256];
        x.dequantize(&mut y);
        for n in 0..2 {
            let (ql, qh, sc, y) = (&x.ql[64 * n..], &x.qh[32 * n..], &x.scales[8 * n..], &y[128 * n..]);
            for l in 0..32 {
                let is = l / 16;
                let q = [
                    (ql[l] & 0xF) | ((qh[l] & 3) << 4),
                    (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4),
                    (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                    (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
                ];
                for (g, &q) in q.iter().enumerate() {
                    let want = f32::from(sc[is + 2 * g]) * f32::from(q as i8 - 32);
                    assert_eq!(y[l + 32 * g], want, "half {n} l {l} group {g}");
                }
            }
        }
    }
}
