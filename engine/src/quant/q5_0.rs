//! PLACEHOLDER — being written.
use bytemuck::{Pod, Zeroable};
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5_0(pub [u8; 22]);
const _: () = assert!(size_of::<BlockQ5_0>() == 22);
impl super::Block for BlockQ5_0 {
    const ELEMS: usize = 32;
}
impl super::WeightBlock for BlockQ5_0 {
    type Act = super::BlockQ8_0;
    fn dequantize(&self, _out: &mut [f32]) {
        unimplemented!("placeholder")
    }
    fn vec_dot(_w: &[Self], _a: &[Self::Act]) -> f32 {
        unimplemented!("placeholder")
    }
}
