//! PLACEHOLDER — being written.
use bytemuck::{Pod, Zeroable};
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4_1(pub [u8; 20]);
const _: () = assert!(size_of::<BlockQ4_1>() == 20);
impl super::Block for BlockQ4_1 {
    const ELEMS: usize = 32;
}
impl super::WeightBlock for BlockQ4_1 {
    type Act = super::BlockQ8_1;
    fn dequantize(&self, _out: &mut [f32]) {
        unimplemented!("placeholder")
    }
    fn vec_dot(_w: &[Self], _a: &[Self::Act]) -> f32 {
        unimplemented!("placeholder")
    }
}
