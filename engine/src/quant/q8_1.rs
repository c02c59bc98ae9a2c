//! PLACEHOLDER — being written.
use bytemuck::{Pod, Zeroable};
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ8_1(pub [u8; 36]);
const _: () = assert!(size_of::<BlockQ8_1>() == 36);
impl super::Block for BlockQ8_1 {
    const ELEMS: usize = 32;
}
impl super::ActBlock for BlockQ8_1 {
    fn quantize(_x: &[f32], _out: &mut [Self]) {
        unimplemented!("placeholder")
    }
    super::activation_variant!(Q8_1);
}
