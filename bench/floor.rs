//! The floor for `plan --listing` (issue "planning a million backups"): what any program must
//! do to answer the same question from the same file, and nothing more. Read the file whole,
//! parse it from the slice into borrowed records, parse each timestamp, sort by group and time
//! (newest first), and write the plan JSON's shape — one object per backup with its action
//! and reasons, one a line as the plan writes them — through one buffered writer. No
//! retention rules, no guards.
//!
//!     cargo build --release --example floor && target/release/examples/floor LISTING.json >PLAN

use serde::{Deserialize, Serialize};
use std::io::Write;

#[derive(Deserialize)]
struct File<'a> {
    #[serde(borrow)]
    backups: Vec<Record<'a>>,
}

#[derive(Deserialize)]
struct Record<'a> {
    id: &'a str,
    group: &'a str,
    created_at: &'a str,
    status: &'a str,
    #[serde(default)]
    name: Option<&'a str>,
}

#[derive(Serialize)]
struct Decision<'a> {
    id: &'a str,
    group: &'a str,
    created_at: jiff::Timestamp,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    action: &'static str,
    reasons: [&'static str; 0],
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: floor LISTING.json");
    let text = std::fs::read(&path).expect("a listing file");
    let file: File = serde_json::from_slice(&text).expect("a listing");
    let mut records: Vec<(jiff::Timestamp, &Record)> = file
        .backups
        .iter()
        .map(|r| (r.created_at.parse().expect("RFC 3339"), r))
        .collect();
    records.sort_by(|a, b| {
        (a.1.group, std::cmp::Reverse(a.0)).cmp(&(b.1.group, std::cmp::Reverse(b.0)))
    });
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    write!(out, "{{\n  \"policies\": [\n    {{\n      \"backups\": [").unwrap();
    for (i, (at, r)) in records.iter().enumerate() {
        // The plan's layout: one backup a line, indented, commas ending the lines.
        let comma = if i == 0 { "\n        " } else { ",\n        " };
        let decision = Decision {
            id: r.id,
            group: r.group,
            created_at: *at,
            status: r.status,
            name: r.name,
            action: "delete",
            reasons: [],
        };
        out.write_all(comma.as_bytes()).unwrap();
        serde_json::to_writer(&mut out, &decision).unwrap();
    }
    writeln!(out, "\n      ]\n    }}\n  ]\n}}").unwrap();
}
