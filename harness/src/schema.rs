//! `harness schema`: the JSON Schema of contracts, generated from the Rust types.

use std::io::Write;

use assay_engine::contract::schema::ContractDoc;

use crate::exit::Outcome;

/// The schema as committed in `contracts/schema.json` (pretty JSON, trailing newline).
pub fn json() -> String {
    let schema = schemars::schema_for!(ContractDoc);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    text.push('\n');
    text
}

pub fn run(out: &mut impl Write) -> anyhow::Result<Outcome> {
    out.write_all(json().as_bytes())?;
    Ok(Outcome::Pass)
}
