//! `ctguard hunt`'s results: each event that fired, as `ctguard test` prints it, the count per
//! detection, and what the query scanned and cost.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::FORMAT_VERSION;
use super::human::{self, Paint};
use crate::detect::catalog::Catalog;
use crate::detect::replay::Hit;

/// A finished hunt, ready to render.
#[derive(Debug, Clone)]
pub struct Report {
    pub profile: String,
    /// The Athena queries run, one per batch of detections.
    pub query_ids: Vec<String>,
    pub workgroup: String,
    pub table: String,
    pub since: Option<String>,
    /// Catalog indexes of the detections the query tested, in catalog order.
    pub tested: Vec<usize>,
    /// Events in result order, each with the detections that fired on it.
    pub hits: Vec<Hit>,
    pub scanned: u64,
    pub cost: f64,
    pub seconds: f64,
}

impl Report {
    fn fires(&self, index: usize) -> usize {
        self.hits.iter().filter(|h| h.fired.contains(&index)).count()
    }
}

pub fn human(w: &mut dyn Write, p: Paint, catalog: &Catalog, r: &Report) -> io::Result<()> {
    let window = r.since.as_deref().map(|s| format!(" since {s}")).unwrap_or_default();
    writeln!(
        w,
        "Hunted with profile {}: {} detections over {}{window} (Athena {} {}, workgroup {}).\n",
        r.profile,
        r.tested.len(),
        r.table,
        if r.query_ids.len() == 1 { "query" } else { "queries" },
        r.query_ids.join(", "),
        r.workgroup
    )?;
    for hit in &r.hits {
        human::test_hit(w, p, catalog, &[], hit, true)?;
    }
    writeln!(w, "\nFound {} events that fired at least one detection.", r.hits.len())?;
    writeln!(w, "  {:<5} {:<44} {:<8} {:>9}", "kind", "detection", "severity", "fires")?;
    for &i in &r.tested {
        if let Some(d) = catalog.detections.get(i) {
            writeln!(w, "  {:<5} {:<44} {:<8} {:>9}", d.kind.as_str(), d.id, d.severity, r.fires(i))?;
        }
    }
    writeln!(w, "Scanned {} in {:.1} s: ${:.4} at $5 per TB.", crate::hunt::athena::size(r.scanned), r.seconds, r.cost)
}

/// One versioned document, shaped like `ctguard test --format json`.
pub fn json(w: &mut dyn Write, catalog: &Catalog, r: &Report) -> io::Result<()> {
    let detections: Vec<Value> = r
        .tested
        .iter()
        .filter_map(|&i| catalog.detections.get(i))
        .map(|d| json!({"id": d.id, "kind": d.kind, "severity": d.severity, "feeds": d.feed, "pattern": d.text}))
        .collect();
    let events: Vec<Value> = r
        .hits
        .iter()
        .map(|hit| {
            let mut doc = serde_json::to_value(hit).unwrap_or_default();
            let ids: Vec<&str> =
                hit.fired.iter().filter_map(|&i| catalog.detections.get(i)).map(|d| d.id.as_str()).collect();
            doc["fired"] = json!(ids);
            doc
        })
        .collect();
    let fires: serde_json::Map<String, Value> =
        r.tested.iter().filter_map(|&i| catalog.detections.get(i).map(|d| (d.id.clone(), json!(r.fires(i))))).collect();
    let doc = json!({
        "format_version": FORMAT_VERSION,
        "command": "hunt",
        "profile": r.profile,
        "query": {"id": r.query_ids.first(), "ids": r.query_ids, "workgroup": r.workgroup, "table": r.table, "since": r.since},
        "detections": detections,
        "events": events,
        "summary": {
            "matched": r.hits.len(),
            "fires": fires,
            "data_scanned_bytes": r.scanned,
            "cost_usd": r.cost,
            "seconds": r.seconds,
        },
    });
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}
