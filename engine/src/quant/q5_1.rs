//! PLACEHOLDER — being written.
use bytemuck::{Pod, Zeroable};
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5_1(pub [u8; 24]);
const _: () = assert!(size_of::<BlockQ5_1>() == 24);
impl super::Block for BlockQ5_1 {
    const ELEMS: usize = 32;
}
impl super::WeightBlock for BlockQ5_1 {
    type Act = super::BlockQ8_1;
    fn dequantize(&self, _out: &mut [f32]) {
        unimplemented!("placeholder")
    }
    fn vec_dot(_w: &[Self], _a: &[Self::Act]) -> f32 {
        unimplemented!("placeholder")
    }
}
