//! PLACEHOLDER — being written.
use bytemuck::{Pod, Zeroable};
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockAprQ4(pub [u8; 18]);
const _: () = assert!(size_of::<BlockAprQ4>() == 18);
impl super::Block for BlockAprQ4 {
    const ELEMS: usize = 32;
}
impl super::WeightBlock for BlockAprQ4 {
    type Act = super::BlockQ8_0;
    fn dequantize(&self, _out: &mut [f32]) {
        unimplemented!("placeholder")
    }
    fn vec_dot(_w: &[Self], _a: &[Self::Act]) -> f32 {
        unimplemented!("placeholder")
    }
}
