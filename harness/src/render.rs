//! Shared rendering helpers: markdown tables and number formats.

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
