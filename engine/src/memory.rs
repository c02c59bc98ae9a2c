//! Memory as a contract term: the model quantities that `memory:` bounds are written in, and the
//! peak resident set of this process.

use std::collections::BTreeMap;

use crate::contract::Binding;
use crate::contract::expr::{self, Num};
use crate::dtype::DType;
use crate::model::Model;

/// Quantities every run has (plus `weight_bytes_<dtype>` per dtype and the hyperparameters).
pub const QUANTITIES: &[&str] = &["file_bytes", "weight_bytes", "kv_cache_bytes", "scratch_bytes", "n_ctx"];

/// Whether `name` is a model quantity bounds may use.
pub fn is_quantity(name: &str) -> bool {
    QUANTITIES.contains(&name) || name.strip_prefix("weight_bytes_").is_some_and(|d| d.parse::<DType>().is_ok())
}

/// The quantities of one run: the file's sizes, and the decoder's KV cache and scratch for it.
pub fn quantities(model: &Model, n_ctx: usize, kv_cache_bytes: u64, scratch_bytes: u64) -> BTreeMap<String, u64> {
    let mut q = BTreeMap::from([
        ("file_bytes".to_owned(), model.file_bytes()),
        ("weight_bytes".to_owned(), model.tensor_bytes()),
        ("kv_cache_bytes".to_owned(), kv_cache_bytes),
        ("scratch_bytes".to_owned(), scratch_bytes),
        ("n_ctx".to_owned(), n_ctx as u64),
    ]);
    for t in &model.tensors {
        *q.entry(format!("weight_bytes_{}", t.dtype)).or_default() += t.len;
    }
    q
}

/// A bound expression evaluated over `quantities` and the binding's hyperparameters. A
/// `weight_bytes_<dtype>` the file has no tensor of is 0.
pub fn bound(text: &str, quantities: &BTreeMap<String, u64>, binding: &Binding) -> Result<u64, String> {
    let e = expr::parse(text).map_err(|e| format!("`{text}`: {}", e.message))?;
    let value = |name: &str| {
        quantities
            .get(name)
            .map(|&v| Num::Int(v as i64))
            .or_else(|| is_quantity(name).then_some(Num::Int(0)))
            .or_else(|| binding.hparam(name))
    };
    match e.eval(&value).map_err(|e| format!("`{text}`: {}", e.message))? {
        Num::Int(v) if v >= 0 => Ok(v as u64),
        Num::Float(v) if v.is_finite() && v >= 0.0 => Ok(v.ceil() as u64),
        other => Err(format!("`{text}` is {other}, not a byte count")),
    }
}

/// This process's peak resident set (`VmHWM` of `/proc/self/status`), in bytes; `None` where
/// the kernel does not report it.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_names_include_one_per_dtype() {
        assert!(is_quantity("weight_bytes") && is_quantity("weight_bytes_q4_K") && is_quantity("n_ctx"));
        assert!(!is_quantity("weight_bytes_q7_K") && !is_quantity("n_embd"));
    }

    #[test]
    fn peak_rss_grows_with_touched_memory() {
        let before = peak_rss().expect("Linux reports VmHWM");
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        let after = peak_rss().unwrap();
        assert!(after >= before && after >= 64 << 20, "{before} → {after}");
    }
}
