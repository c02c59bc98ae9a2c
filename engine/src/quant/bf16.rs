//! PLACEHOLDER — being written.
use bytemuck::{Pod, Zeroable};
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockBF16(pub [u8; 2]);
const _: () = assert!(size_of::<BlockBF16>() == 2);
impl super::Block for BlockBF16 {
    const ELEMS: usize = 1;
}
impl super::WeightBlock for BlockBF16 {
    type Act = super::BlockBF16;
    fn dequantize(&self, _out: &mut [f32]) {
        unimplemented!("placeholder")
    }
    fn vec_dot(_w: &[Self], _a: &[Self::Act]) -> f32 {
        unimplemented!("placeholder")
    }
}

impl super::ActBlock for BlockBF16 {
    fn quantize(_x: &[f32], _out: &mut [Self]) {
        unimplemented!("placeholder")
    }
    super::activation_variant!(BF16);
}
