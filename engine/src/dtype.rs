//! Element types of stored tensors, named as GGML names them, with their block geometry.
//!
//! One enum covers the three formats: every ggml type id (so `inspect` can list any GGUF),
//! the SafeTensors dtypes, and APR's two own quantizations. Whether the engine can compute
//! with a type is a property of the type ([`DType::is_computable`]); a type it cannot compute
//! with is still read and listed, and refused by name when a computation needs it.

use std::fmt;
use std::str::FromStr;

/// How a dtype lays its elements out in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Each row (innermost dimension) is a sequence of blocks of `block_elems` elements taking
    /// `block_bytes` bytes. Plain scalars are blocks of one element.
    Blocks { block_elems: u64, block_bytes: u64 },
    /// APR-q4: the flattened tensor in blocks of 32 elements × 18 bytes, last block zero-padded.
    AprQ4,
    /// APR-q8: one f32 scale for the whole tensor, then one i8 per element.
    AprQ8,
}

macro_rules! dtypes {
    ($( $variant:ident = $name:literal, ggml: $ggml:expr, layout: ($be:expr, $bb:expr), computable: $comp:expr; )*) => {
        /// A tensor element type. Names follow ggml (`q4_K`, `bf16`); see [`DType::name`].
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum DType {
            $( $variant, )*
            /// APR's own 4-bit block quantization (not GGML Q4_0: its nibbles are interleaved).
            AprQ4,
            /// APR's own 8-bit quantization with one scale per tensor.
            AprQ8,
        }

        impl DType {
            /// Every dtype, in declaration order.
            pub const ALL: &'static [DType] = &[$( DType::$variant, )* DType::AprQ4, DType::AprQ8];

            /// The name ggml gives the type (`ggml_type_name`), or ours for non-ggml types.
            pub const fn name(self) -> &'static str {
                match self {
                    $( DType::$variant => $name, )*
                    DType::AprQ4 => "apr_q4",
                    DType::AprQ8 => "apr_q8",
                }
            }

            /// The ggml type id, for types GGUF can hold.
            pub const fn ggml_id(self) -> Option<u32> {
                match self {
                    $( DType::$variant => $ggml, )*
                    DType::AprQ4 | DType::AprQ8 => None,
                }
            }

            /// The dtype of a ggml type id; `None` for ids that ggml removed or never had.
            pub fn from_ggml_id(id: u32) -> Option<DType> {
                DType::ALL.iter().copied().find(|d| d.ggml_id() == Some(id))
            }

            /// Byte layout of the type.
            pub const fn layout(self) -> Layout {
                match self {
                    $( DType::$variant => Layout::Blocks { block_elems: $be, block_bytes: $bb }, )*
                    DType::AprQ4 => Layout::AprQ4,
                    DType::AprQ8 => Layout::AprQ8,
                }
            }

            /// Whether the engine has kernels for this type. Types that are not computable are
            /// listed by `inspect` and rejected by name where a computation would need them.
            pub const fn is_computable(self) -> bool {
                match self {
                    $( DType::$variant => $comp, )*
                    DType::AprQ4 | DType::AprQ8 => true,
                }
            }
        }
    };
}

dtypes! {
    F32 = "f32", ggml: Some(0), layout: (1, 4), computable: true;
    F16 = "f16", ggml: Some(1), layout: (1, 2), computable: true;
    Q4_0 = "q4_0", ggml: Some(2), layout: (32, 18), computable: true;
    Q4_1 = "q4_1", ggml: Some(3), layout: (32, 20), computable: true;
    Q5_0 = "q5_0", ggml: Some(6), layout: (32, 22), computable: true;
    Q5_1 = "q5_1", ggml: Some(7), layout: (32, 24), computable: true;
    Q8_0 = "q8_0", ggml: Some(8), layout: (32, 34), computable: true;
    Q8_1 = "q8_1", ggml: Some(9), layout: (32, 36), computable: false;
    Q2_K = "q2_K", ggml: Some(10), layout: (256, 84), computable: true;
    Q3_K = "q3_K", ggml: Some(11), layout: (256, 110), computable: true;
    Q4_K = "q4_K", ggml: Some(12), layout: (256, 144), computable: true;
    Q5_K = "q5_K", ggml: Some(13), layout: (256, 176), computable: true;
    Q6_K = "q6_K", ggml: Some(14), layout: (256, 210), computable: true;
    Q8_K = "q8_K", ggml: Some(15), layout: (256, 292), computable: false;
    IQ2_XXS = "iq2_xxs", ggml: Some(16), layout: (256, 66), computable: false;
    IQ2_XS = "iq2_xs", ggml: Some(17), layout: (256, 74), computable: false;
    IQ3_XXS = "iq3_xxs", ggml: Some(18), layout: (256, 98), computable: false;
    IQ1_S = "iq1_s", ggml: Some(19), layout: (256, 50), computable: false;
    IQ4_NL = "iq4_nl", ggml: Some(20), layout: (32, 18), computable: false;
    IQ3_S = "iq3_s", ggml: Some(21), layout: (256, 110), computable: false;
    IQ2_S = "iq2_s", ggml: Some(22), layout: (256, 82), computable: false;
    IQ4_XS = "iq4_xs", ggml: Some(23), layout: (256, 136), computable: false;
    I8 = "i8", ggml: Some(24), layout: (1, 1), computable: false;
    I16 = "i16", ggml: Some(25), layout: (1, 2), computable: false;
    I32 = "i32", ggml: Some(26), layout: (1, 4), computable: false;
    I64 = "i64", ggml: Some(27), layout: (1, 8), computable: false;
    F64 = "f64", ggml: Some(28), layout: (1, 8), computable: false;
    IQ1_M = "iq1_m", ggml: Some(29), layout: (256, 56), computable: false;
    BF16 = "bf16", ggml: Some(30), layout: (1, 2), computable: true;
    TQ1_0 = "tq1_0", ggml: Some(34), layout: (256, 54), computable: false;
    TQ2_0 = "tq2_0", ggml: Some(35), layout: (256, 66), computable: false;
    MXFP4 = "mxfp4", ggml: Some(39), layout: (32, 17), computable: false;
    // SafeTensors-only element types.
    Bool = "bool", ggml: None, layout: (1, 1), computable: false;
    U8 = "u8", ggml: None, layout: (1, 1), computable: false;
    U16 = "u16", ggml: None, layout: (1, 2), computable: false;
    U32 = "u32", ggml: None, layout: (1, 4), computable: false;
    U64 = "u64", ggml: None, layout: (1, 8), computable: false;
    F8_E4M3 = "f8_e4m3", ggml: None, layout: (1, 1), computable: false;
    F8_E5M2 = "f8_e5m2", ggml: None, layout: (1, 1), computable: false;
}

impl DType {
    /// Elements per block (1 for scalars, 32 for APR-q4, 1 for APR-q8's elements).
    pub const fn block_elems(self) -> u64 {
        match self.layout() {
            Layout::Blocks { block_elems, .. } => block_elems,
            Layout::AprQ4 => 32,
            Layout::AprQ8 => 1,
        }
    }

    /// Exact byte size of a tensor of this dtype and row-major `shape` (outermost first), or
    /// `None` on arithmetic overflow. Rows of block types are padded to whole blocks; the GGUF
    /// reader separately insists that they need no padding, as ggml does.
    pub fn byte_size(self, shape: &[u64]) -> Option<u64> {
        let n_elems = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
        match self.layout() {
            Layout::Blocks { block_elems, block_bytes } => {
                let row = shape.last().copied().unwrap_or(1);
                let n_rows = n_elems.checked_div(row).unwrap_or(0);
                row.div_ceil(block_elems).checked_mul(block_bytes)?.checked_mul(n_rows)
            }
            Layout::AprQ4 => n_elems.div_ceil(32).checked_mul(18),
            Layout::AprQ8 => n_elems.checked_add(4),
        }
    }
}

impl serde::Serialize for DType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The dtype name was not one of [`DType::name`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dtype `{0}` (expected a ggml type name such as f32, q8_0, q4_K, or apr_q4/apr_q8)")]
pub struct UnknownDType(pub String);

impl FromStr for DType {
    type Err = UnknownDType;

    /// Parses a name case-insensitively: `q4_K`, `Q4_K` and `q4_k` are the same type.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DType::ALL.iter().copied().find(|d| d.name().eq_ignore_ascii_case(s)).ok_or_else(|| UnknownDType(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ggml_ids_round_trip_and_removed_ids_are_unknown() {
        for &d in DType::ALL {
            if let Some(id) = d.ggml_id() {
                assert_eq!(DType::from_ggml_id(id), Some(d));
            }
        }
        for removed in [4, 5, 31, 32, 33, 36, 37, 38, 40, u32::MAX] {
            assert_eq!(DType::from_ggml_id(removed), None, "id {removed}");
        }
    }

    #[test]
    fn names_parse_case_insensitively() {
        for &d in DType::ALL {
            assert_eq!(d.name().parse::<DType>().unwrap(), d);
            assert_eq!(d.name().to_uppercase().parse::<DType>().unwrap(), d);
        }
        assert!("q4_z".parse::<DType>().is_err());
    }

    #[test]
    fn byte_sizes_follow_block_geometry() {
        assert_eq!(DType::F32.byte_size(&[3, 5]), Some(60));
        assert_eq!(DType::Q4_K.byte_size(&[2, 512]), Some(2 * 2 * 144));
        assert_eq!(DType::Q8_0.byte_size(&[64]), Some(2 * 34));
        // APR-q4 pads the flattened tensor, not each row.
        assert_eq!(DType::AprQ4.byte_size(&[3, 11]), Some(2 * 18));
        assert_eq!(DType::AprQ8.byte_size(&[3, 11]), Some(4 + 33));
        assert_eq!(DType::F32.byte_size(&[u64::MAX, 2]), None);
        assert_eq!(DType::F32.byte_size(&[]), Some(4));
        assert_eq!(DType::F32.byte_size(&[0, 7]), Some(0));
    }
}
