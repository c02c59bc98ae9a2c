//! Weight quantizers for the types `harness synth` writes: Q8_0 and Q4_0 as ggml's reference
//! quantizers compute them, Q4_K and Q6_K with a plain per-sub-block scale (and min) — valid
//! blocks that decode with ggml's dequantizers, not ggml's error-minimizing search. Benchmark
//! subjects need the formats, not the best rounding.

use super::{ActBlock, BlockQ8_0};
use crate::dtype::DType;

/// The types [`quantize_row`] writes.
pub const WEIGHT_TYPES: &[DType] = &[DType::F32, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K];

/// One row of `x` in `dtype`'s blocks; `None` for a type without a quantizer here or a row that
/// is not whole blocks.
pub fn quantize_row(dtype: DType, x: &[f32]) -> Option<Vec<u8>> {
    let whole = |n: usize| x.len().is_multiple_of(n);
    Some(match dtype {
        DType::F32 => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::Q8_0 if whole(32) => {
            let mut blocks = vec![bytemuck::Zeroable::zeroed(); x.len() / 32];
            BlockQ8_0::quantize(x, &mut blocks);
            bytemuck::cast_slice::<BlockQ8_0, u8>(&blocks).to_vec()
        }
        DType::Q4_0 if whole(32) => x.chunks_exact(32).flat_map(q4_0).collect(),
        DType::Q4_K if whole(256) => x.chunks_exact(256).flat_map(q4_k).collect(),
        DType::Q6_K if whole(256) => x.chunks_exact(256).flat_map(q6_k).collect(),
        _ => return None,
    })
}

fn f16(v: f32) -> [u8; 2] {
    half::f16::from_f32(v).to_le_bytes()
}

/// ggml's `quantize_row_q4_0_ref`: d = (the value of largest magnitude) / −8, q = x/d + 8.5
/// truncated and clamped to 15; two values per byte, element l low, l + 16 high.
fn q4_0(x: &[f32]) -> Vec<u8> {
    let max = x.iter().fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let q = |v: f32| ((v * id + 8.5) as i32).min(15) as u8;
    let mut out = f16(d).to_vec();
    out.extend((0..16).map(|l| q(x[l]) | (q(x[l + 16]) << 4)));
    out
}

/// Q4_K: per sub-block of 32 a scale (max − min)/15 and a min, both as 6-bit multiples of the
/// block's d and dmin; x ≈ d·sc·q − dmin·m with q in 0..15.
fn q4_k(x: &[f32]) -> Vec<u8> {
    let mut scale = [0.0f32; 8];
    let mut min = [0.0f32; 8];
    for (j, sub) in x.chunks_exact(32).enumerate() {
        let lo = sub.iter().fold(f32::INFINITY, |m, &v| m.min(v)).min(0.0);
        let hi = sub.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        scale[j] = (hi - lo) / 15.0;
        min[j] = -lo;
    }
    let d = scale.iter().fold(0.0f32, |m, &v| m.max(v)) / 63.0;
    let dmin = min.iter().fold(0.0f32, |m, &v| m.max(v)) / 63.0;
    let (d, dmin) = (half::f16::from_f32(d).to_f32(), half::f16::from_f32(dmin).to_f32());
    let six = |v: f32, unit: f32| if unit > 0.0 { (v / unit).round().clamp(0.0, 63.0) as u8 } else { 0 };
    let sc: Vec<u8> = scale.iter().map(|&s| six(s, d)).collect();
    let m: Vec<u8> = min.iter().map(|&v| six(v, dmin)).collect();
    // The 12 scale bytes, inverse of ggml's get_scale_min_k4.
    let mut scales = [0u8; 12];
    for j in 0..4 {
        scales[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        scales[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        scales[j + 8] = (sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4);
    }
    let q = |e: usize| {
        let j = e / 32;
        let step = d * f32::from(sc[j]);
        if step == 0.0 { 0 } else { ((x[e] + dmin * f32::from(m[j])) / step).round().clamp(0.0, 15.0) as u8 }
    };
    let mut out = Vec::with_capacity(144);
    out.extend(f16(d));
    out.extend(f16(dmin));
    out.extend(scales);
    for c in 0..4 {
        out.extend((0..32).map(|l| q(64 * c + l) | (q(64 * c + 32 + l) << 4)));
    }
    out
}

/// Q6_K: per group of 16 a signed 8-bit scale of the block's d; q in 0..63 stored as 4 low bits
/// (ql) and 2 high bits (qh), x ≈ d·sc·(q − 32).
fn q6_k(x: &[f32]) -> Vec<u8> {
    // Element e's group: half h, quarter, l → scale index 8h + l/16 + 2·quarter.
    let group = |e: usize| 8 * (e / 128) + (e % 32) / 16 + 2 * ((e % 128) / 32);
    let mut amax = [0.0f32; 16];
    for (e, &v) in x.iter().enumerate() {
        amax[group(e)] = amax[group(e)].max(v.abs());
    }
    let d = half::f16::from_f32(amax.iter().fold(0.0f32, |m, &v| m.max(v)) / 31.0 / 127.0).to_f32();
    let sc: Vec<i8> =
        amax.iter().map(|&a| if d > 0.0 { (a / 31.0 / d).round().clamp(0.0, 127.0) as i8 } else { 0 }).collect();
    let q = |e: usize| {
        let step = d * f32::from(sc[group(e)]);
        let v = if step == 0.0 { 0.0 } else { (x[e] / step).round() };
        (v + 32.0).clamp(0.0, 63.0) as u8
    };
    let mut ql = [0u8; 128];
    let mut qh = [0u8; 64];
    for h in 0..2 {
        for l in 0..32 {
            let [a, b, c, e] = [0, 32, 64, 96].map(|o| q(128 * h + o + l));
            ql[64 * h + l] = (a & 0xF) | ((c & 0xF) << 4);
            ql[64 * h + 32 + l] = (b & 0xF) | ((e & 0xF) << 4);
            qh[32 * h + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
        }
    }
    let mut out = Vec::with_capacity(210);
    out.extend(ql);
    out.extend(qh);
    out.extend(sc.iter().map(|&s| s as u8));
    out.extend(f16(d));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::WeightRows;

    /// ggml's test data: 0.1 + 2·cos(i + offset).
    fn data(n: usize, offset: f32) -> Vec<f32> {
        (0..n).map(|i| 0.1 + 2.0 * (i as f32 + offset).cos()).collect()
    }

    #[test]
    fn every_quantizer_round_trips_through_ggml_dequantization() {
        // Relative RMS error bounds per type (ggml's own tests use 0.002–0.0075 absolute on
        // this data with its optimized quantizers; these plain ones are allowed a little more).
        for (dtype, bound) in
            [(DType::F32, 0.0), (DType::Q8_0, 0.01), (DType::Q4_0, 0.1), (DType::Q4_K, 0.1), (DType::Q6_K, 0.03)]
        {
            let x = data(512, 0.3);
            let bytes = quantize_row(dtype, &x).unwrap();
            let w = WeightRows::from_parts("t", dtype, &bytes, 1, 512).unwrap();
            let mut y = vec![0.0f32; 512];
            w.dequantize_row(0, &mut y);
            let err: f32 = x.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum::<f32>().sqrt();
            let norm: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
            assert!(err / norm <= bound, "{dtype}: relative RMS error {}", err / norm);
        }
    }

    #[test]
    fn rows_that_are_not_whole_blocks_are_refused() {
        assert!(quantize_row(DType::Q4_K, &[0.0; 896]).is_none());
        assert!(quantize_row(DType::Q8_0, &[0.0; 33]).is_none());
        assert!(quantize_row(DType::Q5_K, &[0.0; 256]).is_none(), "no quantizer for q5_K here");
        assert_eq!(quantize_row(DType::Q8_0, &[0.0; 64]).unwrap().len(), 68);
    }
}
