//! PLACEHOLDER — being written.
use bytemuck::{Pod, Zeroable};
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5K(pub [u8; 176]);
const _: () = assert!(size_of::<BlockQ5K>() == 176);
impl super::Block for BlockQ5K {
    const ELEMS: usize = 256;
}
impl super::WeightBlock for BlockQ5K {
    type Act = super::BlockQ8K;
    fn dequantize(&self, _out: &mut [f32]) {
        unimplemented!("placeholder")
    }
    fn vec_dot(_w: &[Self], _a: &[Self::Act]) -> f32 {
        unimplemented!("placeholder")
    }
}
