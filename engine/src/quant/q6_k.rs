//! PLACEHOLDER — being written.
use bytemuck::{Pod, Zeroable};
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ6K(pub [u8; 210]);
const _: () = assert!(size_of::<BlockQ6K>() == 210);
impl super::Block for BlockQ6K {
    const ELEMS: usize = 256;
}
impl super::WeightBlock for BlockQ6K {
    type Act = super::BlockQ8K;
    fn dequantize(&self, _out: &mut [f32]) {
        unimplemented!("placeholder")
    }
    fn vec_dot(_w: &[Self], _a: &[Self::Act]) -> f32 {
        unimplemented!("placeholder")
    }
}
