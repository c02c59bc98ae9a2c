//! The loader mutant behind `Mutation::ExpandToF32`: every quantized or half-precision matrix of
//! a model dequantized to f32 in memory — what upstream's loader did to a 32B model until it ran
//! out of memory. Only falsification builds it; checks must notice.

use super::WeightRows;
use crate::dtype::DType;
use crate::model::{Model, TensorInfo};

/// `model` with every computable non-f32 tensor of two or more dimensions expanded to f32.
pub fn expand_to_f32(model: &Model) -> Model {
    let mut tensors = Vec::with_capacity(model.tensors.len());
    let mut data = Vec::new();
    for t in &model.tensors {
        let rows = (t.shape.len() >= 2 && t.dtype != DType::F32)
            .then(|| WeightRows::new(t, model.tensor_data(t)).ok())
            .flatten();
        let offset = data.len() as u64;
        match rows {
            Some(w) => {
                let mut row = vec![0.0f32; w.n_cols];
                for r in 0..w.n_rows {
                    w.dequantize_row(r, &mut row);
                    data.extend(row.iter().flat_map(|v| v.to_le_bytes()));
                }
                let len = data.len() as u64 - offset;
                tensors.push(TensorInfo { dtype: DType::F32, file_idx: 0, offset, len, ..t.clone() });
            }
            None => {
                data.extend_from_slice(model.tensor_data(t));
                tensors.push(TensorInfo { file_idx: 0, offset, ..t.clone() });
            }
        }
    }
    model.with_owned_tensors(tensors, data)
}
