//! PLACEHOLDER — being written.
use super::BlockQ8_0;
/// The tensor-wide scale stored in the first 4 bytes.
pub fn apr_q8_scale(bytes: &[u8]) -> f32 {
    f32::from_le_bytes(bytes[..4].try_into().unwrap())
}
pub(crate) fn dequantize_row(_scale: f32, _q: &[i8], _out: &mut [f32]) {
    unimplemented!("placeholder")
}
pub(crate) fn vec_dot(_scale: f32, _q: &[i8], _a: &[BlockQ8_0]) -> f32 {
    unimplemented!("placeholder")
}
