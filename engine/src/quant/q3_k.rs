//! PLACEHOLDER — being written.
use bytemuck::{Pod, Zeroable};
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ3K(pub [u8; 110]);
const _: () = assert!(size_of::<BlockQ3K>() == 110);
impl super::Block for BlockQ3K {
    const ELEMS: usize = 256;
}
impl super::WeightBlock for BlockQ3K {
    type Act = super::BlockQ8K;
    fn dequantize(&self, _out: &mut [f32]) {
        unimplemented!("placeholder")
    }
    fn vec_dot(_w: &[Self], _a: &[Self::Act]) -> f32 {
        unimplemented!("placeholder")
    }
}
