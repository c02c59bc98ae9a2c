//! PLACEHOLDER — being written.
use bytemuck::{Pod, Zeroable};
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockF16(pub [u8; 2]);
const _: () = assert!(size_of::<BlockF16>() == 2);
impl super::Block for BlockF16 {
    const ELEMS: usize = 1;
}
impl super::WeightBlock for BlockF16 {
    type Act = super::BlockF16;
    fn dequantize(&self, _out: &mut [f32]) {
        unimplemented!("placeholder")
    }
    fn vec_dot(_w: &[Self], _a: &[Self::Act]) -> f32 {
        unimplemented!("placeholder")
    }
}

impl super::ActBlock for BlockF16 {
    fn quantize(_x: &[f32], _out: &mut [Self]) {
        unimplemented!("placeholder")
    }
    super::activation_variant!(F16);
}
