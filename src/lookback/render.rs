//! `ctguard investigate`'s output, over any writer: a time-ordered table and a summary per
//! principal, one versioned JSON document, or one JSON object per line. Events are written as
//! they are released, so output streams while lookups run.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use serde_json::{Value, json};

use crate::detect::catalog::Catalog;
use crate::detect::event_names::Unlisted;
use crate::lookback::event::Finding;
use crate::lookback::severity::{self, Basis, SEVERITIES};
use crate::lookback::window::{Window, format_time};
use crate::profile::Severity;
use crate::render::FORMAT_VERSION;

/// Output format of `ctguard investigate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Jsonl,
}

/// What was looked for, where and when.
#[derive(Debug, Clone)]
pub struct Header {
    pub profile: String,
    pub account: String,
    pub window: Window,
    pub regions: Vec<String>,
    /// `None`: every event.
    pub event_names: Option<Vec<String>>,
    pub principals: Vec<String>,
    pub detections: Vec<String>,
    /// Detections whose events the event-name list cannot all name.
    pub unlisted: Vec<Unlisted>,
}

/// Counts per principal, and for the whole run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub events: u64,
    pub calls: u64,
    pub by_severity: [u64; 4],
    pub principals: BTreeMap<String, PrincipalSummary>,
    /// Lookups that failed, each named with its region and event name.
    pub failures: Vec<String>,
    /// Output stopped at --limit.
    pub limited: bool,
}

#[derive(Debug, Clone, Default)]
pub struct PrincipalSummary {
    pub events: u64,
    pub by_severity: [u64; 4],
    pub regions: BTreeSet<String>,
    pub failed_calls: u64,
    pub first: i64,
    pub last: i64,
}

impl Summary {
    pub fn add(&mut self, f: &Finding) {
        let s = severity::rank(f.assessment.severity);
        self.events += 1;
        self.by_severity[s] += 1;
        let p = self.principals.entry(f.principal.clone()).or_insert_with(|| PrincipalSummary {
            first: f.time,
            last: f.time,
            ..PrincipalSummary::default()
        });
        p.events += 1;
        p.by_severity[s] += 1;
        p.regions.insert(f.region.clone());
        p.failed_calls += u64::from(f.error_code.is_some());
        p.first = p.first.min(f.time);
        p.last = p.last.max(f.time);
    }

    pub fn partial(&self) -> bool {
        !self.failures.is_empty()
    }

    /// The most severe event reported.
    pub fn worst(&self) -> Option<Severity> {
        (0..4).rev().find(|&i| self.by_severity[i] > 0).map(|i| SEVERITIES[i])
    }
}

/// Writes one run's output in `format`.
pub struct Report<'w> {
    w: &'w mut dyn Write,
    format: Format,
    color: bool,
    first: bool,
}

const COLUMNS: [(&str, usize); 7] =
    [("TIME", 20), ("REGION", 14), ("SEVERITY", 8), ("PRINCIPAL", 56), ("EVENT", 30), ("RESOURCES", 28), ("ERROR", 16)];

impl<'w> Report<'w> {
    pub fn start(w: &'w mut dyn Write, format: Format, color: bool, h: &Header, catalog: &Catalog) -> io::Result<Self> {
        match format {
            Format::Human => {
                let names = match &h.event_names {
                    Some(n) => format!("{} event names", n.len()),
                    None => "every event".into(),
                };
                let title = format!(
                    "CloudTrail event history of account {} from {} to {}: {} in {} region{} (profile {}).",
                    h.account,
                    format_time(h.window.start),
                    format_time(h.window.end),
                    names,
                    h.regions.len(),
                    if h.regions.len() == 1 { "" } else { "s" },
                    h.profile
                );
                writeln!(w, "{}", paint(color, Style::new().bold(), &title))?;
                let mut header = String::new();
                for (name, width) in COLUMNS {
                    header.push_str(&format!("{name:<width$}  "));
                }
                header.push_str("DETECTIONS");
                writeln!(w, "\n{}", paint(color, Style::new().bold(), &header))?;
            }
            Format::Json => {
                let doc = json!({
                    "format_version": FORMAT_VERSION,
                    "command": "investigate",
                    "profile": h.profile,
                    "account": h.account,
                    "window": {"start": format_time(h.window.start), "end": format_time(h.window.end)},
                    "regions": h.regions,
                    "event_names": h.event_names,
                    "principals": h.principals,
                    "detections": h.detections,
                    "unlisted_detections": unlisted(&h.unlisted),
                    "catalog": catalog.detections.iter().map(|d| json!({"id": d.id, "kind": d.kind, "severity": d.severity})).collect::<Vec<_>>(),
                });
                let text = doc.to_string();
                // The document stays open: events are written into it as they come.
                write!(w, "{},\"events\":[", &text[..text.len() - 1])?;
            }
            Format::Jsonl => {}
        }
        Ok(Report { w, format, color, first: true })
    }

    pub fn event(&mut self, f: &Finding, catalog: &Catalog, alerts: &[bool]) -> io::Result<()> {
        match self.format {
            Format::Human => {
                let detections: Vec<String> = f
                    .assessment
                    .fired
                    .iter()
                    .filter_map(|&i| {
                        let d = catalog.detections.get(i)?;
                        Some(if alerts.get(i).copied().unwrap_or(false) {
                            d.id.clone()
                        } else {
                            format!("{} (count)", d.id)
                        })
                    })
                    .collect();
                let resources = match f.resources.len() {
                    0 => "-".to_string(),
                    1..=3 => f.resources.join(", "),
                    n => format!("{} +{}", f.resources[..2].join(", "), n - 2),
                };
                let cells = [
                    format_time(f.time),
                    f.region.clone(),
                    f.assessment.severity.as_str().to_string(),
                    f.principal.clone(),
                    f.event_name.clone(),
                    resources,
                    f.error_code.clone().unwrap_or_else(|| "-".into()),
                ];
                let mut line = String::new();
                for (i, (cell, (_, width))) in cells.iter().zip(COLUMNS).enumerate() {
                    let padded = format!("{cell:<width$}  ");
                    line.push_str(&if i == 2 {
                        severity_paint(self.color, f.assessment.severity, &padded)
                    } else {
                        padded
                    });
                }
                line.push_str(&if detections.is_empty() { "-".to_string() } else { detections.join(", ") });
                writeln!(self.w, "{}", line.trim_end())
            }
            Format::Json => {
                if !std::mem::take(&mut self.first) {
                    self.w.write_all(b",")?;
                }
                writeln!(self.w)?;
                serde_json::to_writer(&mut *self.w, &event_json(f, catalog, alerts))?;
                Ok(())
            }
            Format::Jsonl => {
                serde_json::to_writer(&mut *self.w, &event_json(f, catalog, alerts))?;
                writeln!(self.w)?;
                // A reader at the other end of a pipe sees each event as it is found.
                self.w.flush()
            }
        }
    }

    pub fn finish(self, s: &Summary) -> io::Result<()> {
        match self.format {
            Format::Human => human_summary(self.w, self.color, s),
            Format::Json => {
                let principals: Vec<Value> = s
                    .principals
                    .iter()
                    .map(|(who, p)| {
                        json!({"principal": who, "events": p.events, "by_severity": by_severity(&p.by_severity),
                               "regions": p.regions, "failed_calls": p.failed_calls,
                               "first": format_time(p.first), "last": format_time(p.last)})
                    })
                    .collect();
                let summary = json!({
                    "events": s.events,
                    "calls": s.calls,
                    "by_severity": by_severity(&s.by_severity),
                    "principals": principals,
                    "partial": s.partial(),
                    "failures": s.failures,
                    "limited": s.limited,
                });
                writeln!(self.w, "\n],\"summary\":{summary}}}")
            }
            Format::Jsonl => Ok(()),
        }
    }
}

fn unlisted(list: &[Unlisted]) -> Vec<Value> {
    list.iter().map(|u| json!({"id": u.detection, "kind": u.kind, "matches": u.why})).collect()
}

fn by_severity(counts: &[u64; 4]) -> Value {
    SEVERITIES
        .iter()
        .zip(counts)
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// One event as JSON: the fields of the table, where its severity came from, every detection
/// it fired, and the raw CloudTrail record.
pub fn event_json(f: &Finding, catalog: &Catalog, alerts: &[bool]) -> Value {
    let detections: Vec<Value> = f
        .assessment
        .fired
        .iter()
        .filter_map(|&i| {
            let d = catalog.detections.get(i)?;
            Some(json!({"id": d.id, "kind": d.kind, "severity": d.severity, "alerts": alerts.get(i).copied().unwrap_or(false)}))
        })
        .collect();
    let basis = match &f.assessment.basis {
        Basis::Detection { id } => json!({"from": "detection", "detection": id}),
        Basis::Class { class, bumped } => json!({"from": "class", "class": class, "raised_for_error": bumped}),
        Basis::Unclassified { bumped } => json!({"from": "unclassified", "raised_for_error": bumped}),
    };
    json!({
        "time": format_time(f.time),
        "region": f.region,
        "principal": f.principal,
        "principal_type": f.principal_type,
        "event_name": f.event_name,
        "event_source": f.event_source,
        "event_id": f.event_id,
        "resources": f.resources,
        "error_code": f.error_code,
        "error_message": f.error_message,
        "severity": f.assessment.severity.as_str(),
        "severity_basis": basis,
        "detections": detections,
        "record": f.record,
    })
}

fn human_summary(w: &mut dyn Write, color: bool, s: &Summary) -> io::Result<()> {
    let bold = Style::new().bold();
    let counts = |c: &[u64; 4]| {
        let parts: Vec<String> =
            (0..4).rev().filter(|&i| c[i] > 0).map(|i| format!("{} {}", c[i], SEVERITIES[i].as_str())).collect();
        if parts.is_empty() { "-".to_string() } else { parts.join(", ") }
    };
    if !s.principals.is_empty() {
        writeln!(w, "\n{}", paint(color, bold, "By principal:"))?;
        let mut rows: Vec<(&String, &PrincipalSummary)> = s.principals.iter().collect();
        // The most serious first, then the busiest.
        rows.sort_by_key(|(who, p)| {
            (std::cmp::Reverse(p.by_severity.iter().rev().copied().collect::<Vec<_>>()), (*who).clone())
        });
        for (who, p) in rows {
            let regions: Vec<&str> = p.regions.iter().map(String::as_str).collect();
            let failed = match p.failed_calls {
                0 => String::new(),
                1 => ", 1 failed call".to_string(),
                n => format!(", {n} failed calls"),
            };
            writeln!(
                w,
                "  {who}\n      {} event{} ({}){failed}; {} to {}; {}",
                p.events,
                if p.events == 1 { "" } else { "s" },
                counts(&p.by_severity),
                format_time(p.first),
                format_time(p.last),
                regions.join(", ")
            )?;
        }
    }
    let limited = if s.limited { " (stopped at --limit)" } else { "" };
    writeln!(
        w,
        "\n{} {} event{}{limited} ({}) in {} LookupEvents call{}.",
        paint(color, bold, "Found"),
        s.events,
        if s.events == 1 { "" } else { "s" },
        counts(&s.by_severity),
        s.calls,
        if s.calls == 1 { "" } else { "s" }
    )?;
    if s.partial() {
        writeln!(
            w,
            "{} {} lookup{} failed; events there were not read:",
            paint(color, Style::new().fg_color(Some(AnsiColor::Red.into())), "Partial result:"),
            s.failures.len(),
            if s.failures.len() == 1 { "" } else { "s" }
        )?;
        for f in &s.failures {
            writeln!(w, "  {f}")?;
        }
    }
    Ok(())
}

fn paint(color: bool, style: Style, text: &str) -> String {
    if color { format!("{}{text}{}", style.render(), style.render_reset()) } else { text.to_string() }
}

fn severity_paint(color: bool, s: Severity, text: &str) -> String {
    let c = match s {
        Severity::Critical => Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
        Severity::High => Style::new().fg_color(Some(AnsiColor::Red.into())),
        Severity::Medium => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        Severity::Low => Style::new(),
    };
    paint(color, c, text)
}
