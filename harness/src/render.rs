//! Shared rendering helpers: markdown tables and number formats.

use assay_engine::contract::bind::{BoundHparam, HparamSource};
use tabled::builder::Builder;
use tabled::settings::Style;

/// A markdown table from a header and rows.
pub fn table<R: IntoIterator<Item = String>>(header: &[&str], rows: impl IntoIterator<Item = R>) -> String {
    let mut b = Builder::default();
    b.push_record(header.iter().map(|s| s.to_string()));
    for r in rows {
        b.push_record(r);
    }
    b.build().with(Style::markdown()).to_string()
}

/// `[2048, 256]`.
pub fn dims(d: &[u64]) -> String {
    format!("[{}]", d.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
}

/// Bytes in binary units: `4.00 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.2} {}", UNITS[u]) }
}

/// Thousands separated: `1,234,567`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The hyperparameter table: name, value, where the value came from.
pub fn hparams(hparams: &[BoundHparam]) -> String {
    let rows = hparams.iter().map(|h| {
        let source = match &h.source {
            HparamSource::Key { key } => format!("key {key}"),
            HparamSource::Default { expr } => format!("default {expr}"),
            HparamSource::Inferred { tensor, dim } => format!("dim {dim} of {tensor}"),
            HparamSource::Missing => "missing".into(),
        };
        vec![h.name.clone(), h.value.map_or("—".into(), |v| v.to_string()), source]
    });
    table(&["hparam", "value", "source"], rows)
}
