//! Tracing at stage boundaries. The decoder is generic over a [`Probe`]; with [`Off`] every
//! `if P::ENABLED { … }` is a compile-time `false`, so tracing costs nothing when it is not asked
//! for. Stage names are llama.cpp's graph names, with `-{layer}` for per-layer stages, so traces
//! diff directly against the golden captures and llama.cpp's eval-callback dumps.

use std::collections::BTreeMap;

/// Where the decoder reports each stage's output.
pub trait Probe {
    /// Whether stage outputs are wanted at all.
    const ENABLED: bool;

    /// Records `data` (row-major, `shape`) as `stage` (of `layer`, if per layer).
    fn record(&mut self, stage: &str, layer: Option<usize>, shape: &[usize], data: &[f32]);
}

/// No tracing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Off;

impl Probe for Off {
    const ENABLED: bool = false;

    #[inline(always)]
    fn record(&mut self, _: &str, _: Option<usize>, _: &[usize], _: &[f32]) {}
}

/// One recorded stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Keeps every stage in memory. A name recorded again (a decode step after the prefill) is
/// appended along the first dimension, so a prefill + decode trace has the one-pass shape.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    pub stages: BTreeMap<String, Recorded>,
}

/// The trace name of a stage: `attn_norm-0`, or `result_output` for global stages.
pub fn stage_name(stage: &str, layer: Option<usize>) -> String {
    match layer {
        Some(l) => format!("{stage}-{l}"),
        None => stage.to_owned(),
    }
}

impl Probe for Capture {
    const ENABLED: bool = true;

    fn record(&mut self, stage: &str, layer: Option<usize>, shape: &[usize], data: &[f32]) {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "stage {stage}: shape {shape:?}");
        let name = stage_name(stage, layer);
        match self.stages.get_mut(&name) {
            Some(r) if r.shape.len() == shape.len() && r.shape[1..] == shape[1..] => {
                r.shape[0] += shape[0];
                r.values.extend_from_slice(data);
            }
            // A shape that cannot extend the first (a decode step's attention weights, which
            // grow with the context): kept beside it as `name#2`, `name#3`, … as llama.cpp's
            // eval-callback dumps name repeated nodes.
            Some(_) => {
                let n = (2..).find(|k| !self.stages.contains_key(&format!("{name}#{k}"))).expect("a free suffix");
                self.stages.insert(format!("{name}#{n}"), Recorded { shape: shape.to_vec(), values: data.to_vec() });
            }
            None => {
                self.stages.insert(name, Recorded { shape: shape.to_vec(), values: data.to_vec() });
            }
        }
    }
}

impl Capture {
    /// The trace as a SafeTensors file (f32 tensors named by stage), the format of the golden
    /// captures.
    pub fn to_safetensors(&self) -> Result<Vec<u8>, safetensors::SafeTensorError> {
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .stages
            .iter()
            .map(|(name, r)| (name.clone(), r.values.iter().flat_map(|v| v.to_le_bytes()).collect(), r.shape.clone()))
            .collect();
        let views = bytes
            .iter()
            .map(|(name, data, shape)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data).map(|v| (name, v))
            })
            .collect::<Result<Vec<_>, _>>()?;
        safetensors::serialize(views, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_steps_append_to_the_prefill() {
        let mut c = Capture::default();
        c.record("l_out", Some(0), &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        c.record("l_out", Some(0), &[1, 3], &[7.0, 8.0, 9.0]);
        c.record("result_norm", None, &[1, 1], &[0.5]);
        let r = &c.stages["l_out-0"];
        assert_eq!(r.shape, [3, 3]);
        assert_eq!(r.values[6..], [7.0, 8.0, 9.0]);
        let bytes = c.to_safetensors().unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("l_out-0").unwrap().shape(), [3, 3]);
        assert_eq!(st.tensor("result_norm").unwrap().shape(), [1, 1]);
        // Shapes that cannot be appended are kept beside the first, numbered.
        c.record("kq_soft_max", Some(0), &[2, 2, 2], &[0.0; 8]);
        c.record("kq_soft_max", Some(0), &[2, 1, 3], &[0.0; 6]);
        c.record("kq_soft_max", Some(0), &[2, 1, 4], &[0.0; 8]);
        assert_eq!(c.stages["kq_soft_max-0#2"].shape, [2, 1, 3]);
        assert_eq!(c.stages["kq_soft_max-0#3"].shape, [2, 1, 4]);
    }

    #[test]
    fn off_records_nothing_and_says_so_at_compile_time() {
        const { assert!(!Off::ENABLED) };
        Off.record("x", None, &[1], &[1.0]);
    }
}
