//! `ctguard hunt`: the profile's detections compiled to one Athena (Trino) query over the
//! CloudTrail table ([`table`]), so the question "would this have fired in the last 90 days,
//! in every account and region?" is answered where the logs are.
//!
//! The query scans the table once: each row is tested against every detection, and a
//! `CROSS JOIN UNNEST` turns the names of those that fire into one row per (detection, event).
//! Each record is matched as the profile is deployed in the record's own account and partition,
//! as `ctguard test` matches it: the profile is resolved with stand-in values for both, and
//! wherever they land in a pattern the query reads the record's own (see [`sql::Literals`]).

pub mod athena;
pub mod compile;
pub mod sql;
pub mod table;

use std::fmt::Write as _;

use crate::detect::catalog::{Catalog, Kind, Pattern};
use crate::profile::Runtime;
use compile::{Compiler, Unsupported};
use sql::{Literals, Pred};

/// The table name used when neither the flag nor the profile names one.
pub const DEFAULT_TABLE: &str = "ctguard_cloudtrail";

/// Athena's limit on a query string (StartQueryExecution `QueryString`: 262,144 bytes).
pub const MAX_QUERY_BYTES: usize = 262_144;

/// The columns every hunt query returns, in order.
pub const RESULT_COLUMNS: [&str; 9] = [
    "detection",
    "eventid",
    "eventtime",
    "awsregion",
    "recipientaccountid",
    "principal",
    "eventname",
    "eventsource",
    "errorcode",
];

/// Which part of the table to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// First day, `yyyy/MM/dd`, for the day partition.
    pub first_day: String,
    /// Earliest eventTime, `yyyy-MM-ddTHH:mm:ssZ`.
    pub since: String,
}

impl Window {
    /// The last `seconds` before `now` (seconds since the epoch).
    pub fn last(seconds: u64, now: u64) -> Window {
        let start = aws_smithy_types::DateTime::from_secs(now.saturating_sub(seconds) as i64);
        let since = start.fmt(aws_smithy_types::date_time::Format::DateTime).unwrap_or_default();
        // "2025-09-01T10:00:00Z": the day is its first ten characters.
        let since = format!("{}Z", since.trim_end_matches('Z').split('.').next().unwrap_or_default());
        Window { first_day: since.get(..10).unwrap_or_default().replace('-', "/"), since }
    }

    /// Days the window touches, counting the first and today.
    pub fn days(&self, now: u64) -> u64 {
        let start = Window::last(0, now);
        let parse = |day: &str| -> Option<i64> {
            let mut parts = day.split('/').map(|p| p.parse::<i64>().ok());
            Some(days_from_civil(parts.next()??, parts.next()??, parts.next()??))
        };
        match (parse(&self.first_day), parse(&start.first_day)) {
            (Some(a), Some(b)) if b >= a => (b - a + 1) as u64,
            _ => 1,
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// What to compile.
#[derive(Debug, Clone)]
pub struct Request {
    pub table: String,
    /// Detection names (rule names, alarm ids); all when empty.
    pub detections: Vec<String>,
    pub window: Option<Window>,
}

/// Why a profile's detections could not become one query.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CompileError {
    #[error("no detection named {name:?}; the profile has: {known}")]
    UnknownDetection { name: String, known: String },
    #[error("the profile has no detections to hunt with")]
    Empty,
    #[error(
        "{name} matches events a service sends EventBridge itself, which are in no trail, so the CloudTrail table cannot be searched for them; hunt with a rule on the CloudTrail records of the same calls (data events, for S3 objects)"
    )]
    ServiceEvents { name: String },
    #[error("{}", format_unsupported(.0))]
    Unsupported(Vec<(String, Kind, Unsupported)>),
    #[error(
        "the query is {bytes} bytes, over Athena's limit of 262,144: hunt with fewer detections at a time (--detection)"
    )]
    TooLong { bytes: usize },
    #[error(
        "the profile uses the account ID or partition outside a string value, so one query cannot match each record as deployed in its own account"
    )]
    AccountOutsideStrings,
}

fn format_unsupported(list: &[(String, Kind, Unsupported)]) -> String {
    let mut text = format!("{} detection pattern(s) cannot be expressed in SQL:", list.len());
    for (id, kind, u) in list {
        let _ = write!(text, "\n  {} {id}: at {}: {}", kind.as_str(), u.at, u.why);
    }
    text
}

/// Stand-ins the profile is resolved with; each is replaced in the SQL by the record's own
/// value. Two different sets compile to the same text exactly when every stand-in was found.
const STAND_INS: [(&str, &str); 2] =
    [("100000000001", "aws-ctguard-stand-in-a"), ("100000000002", "aws-ctguard-stand-in-b")];

/// The rules a hunt leaves out, with why: they match events a service sends EventBridge itself
/// (S3's "Object Deleted"), which no trail records. Empty when `--detection` chose others.
pub fn left_out(catalog: &Catalog, request: &Request) -> Vec<String> {
    catalog
        .detections
        .iter()
        .filter(|d| d.service_events && request.detections.is_empty())
        .map(|d| {
            format!("{} left out: it matches events a service sends EventBridge itself, which are in no trail", d.id)
        })
        .collect()
}

/// The compiled query.
#[derive(Debug, Clone)]
pub struct Query {
    pub sql: String,
    /// The detections it tests, in catalog order: (id, kind).
    pub detections: Vec<(String, Kind)>,
}

/// Compiles the profile's detections. `catalog_for` resolves the profile for a runtime (only the
/// account ID and partition are read here); `home` is the region `ctguard test` resolves with.
pub fn compile(
    catalog_for: &dyn Fn(&Runtime) -> anyhow::Result<Catalog>,
    home: &str,
    request: &Request,
) -> anyhow::Result<Query> {
    let mut texts = Vec::new();
    let mut detections = Vec::new();
    for (account, partition) in STAND_INS {
        let runtime = Runtime {
            account_id: account.into(),
            partition: partition.into(),
            region: home.into(),
            enabled_regions: vec![home.into()],
        };
        let catalog = catalog_for(&runtime)?;
        let literals = Literals {
            markers: vec![
                (account.to_string(), compile::ACCOUNT_COLUMN.to_string()),
                (partition.to_string(), compile::PARTITION_COLUMN.to_string()),
            ],
        };
        let derived = compile::derived_columns(&Runtime::placeholder(home).account_id);
        let (sql, chosen) = query(&catalog, &literals, request, &derived)?;
        texts.push(sql);
        detections = chosen;
    }
    if texts.windows(2).any(|w| w[0] != w[1]) {
        return Err(CompileError::AccountOutsideStrings.into());
    }
    if texts[0].len() > MAX_QUERY_BYTES {
        return Err(CompileError::TooLong { bytes: texts[0].len() }.into());
    }
    Ok(Query { sql: texts.remove(0), detections })
}

fn query(
    catalog: &Catalog,
    literals: &Literals,
    request: &Request,
    derived: &[String],
) -> Result<(String, Vec<(String, Kind)>), CompileError> {
    for name in &request.detections {
        if !catalog.detections.iter().any(|d| d.id == *name) {
            let known: Vec<&str> = catalog.detections.iter().map(|d| d.id.as_str()).collect();
            return Err(CompileError::UnknownDetection { name: name.clone(), known: known.join(", ") });
        }
    }
    if let Some(d) = catalog.detections.iter().find(|d| d.service_events && request.detections.contains(&d.id)) {
        return Err(CompileError::ServiceEvents { name: d.id.clone() });
    }
    // Rules on events a service sends EventBridge itself match no CloudTrail record: left
    // out, and the command says so (see `left_out`).
    let chosen: Vec<_> = catalog
        .detections
        .iter()
        .filter(|d| !d.service_events)
        .filter(|d| request.detections.is_empty() || request.detections.contains(&d.id))
        .collect();
    if chosen.is_empty() {
        return Err(CompileError::Empty);
    }
    let mut compiler = Compiler::new(literals);
    let mut cases = Vec::new();
    let mut failed = Vec::new();
    for d in &chosen {
        let compiled = match d.pattern() {
            Pattern::Rule(p) => compiler.event_pattern(p),
            Pattern::Alarm(p) => compiler.filter_pattern(p),
        };
        match compiled {
            Ok(Pred::False) => {}
            Ok(pred) => cases.push(format!("    CASE WHEN {} THEN {} END", pred.render(), sql::quote(&d.id))),
            Err(u) => failed.push((d.id.clone(), d.kind, u)),
        }
    }
    if !failed.is_empty() {
        return Err(CompileError::Unsupported(failed));
    }
    let names: Vec<(String, Kind)> = chosen.iter().map(|d| (d.id.clone(), d.kind)).collect();
    Ok((render(&request.table, derived, &cases, request.window.as_ref()), names))
}

/// One pass over the table: the window filters the rows (and prunes partitions), the derived
/// envelope fields are computed once per row, every detection is tested, and the names of those
/// that fire become rows.
fn render(table: &str, derived: &[String], cases: &[String], window: Option<&Window>) -> String {
    let mut sql = String::new();
    sql.push_str("SELECT d.detection, eventid, eventtime, awsregion, recipientaccountid,\n");
    sql.push_str("  COALESCE(NULLIF(useridentity.arn, ''), useridentity.invokedby, '') AS principal,\n");
    sql.push_str("  eventname, eventsource, errorcode\n");
    let _ = writeln!(sql, "FROM (\n  SELECT *,\n    {}\n  FROM {table}", derived.join(",\n    "));
    if let Some(w) = window {
        let _ = writeln!(
            sql,
            "  WHERE \"{}\" >= {}\n    AND eventtime >= {}",
            table::DAY_PARTITION,
            sql::quote(&w.first_day),
            sql::quote(&w.since)
        );
    }
    sql.push_str(") AS events\n");
    // A detection that can never fire contributes no CASE; an empty list still needs a value.
    let list = if cases.is_empty() { "    CAST(NULL AS VARCHAR)".to_string() } else { cases.join(",\n") };
    let _ = writeln!(sql, "CROSS JOIN UNNEST(ARRAY[\n{list}\n]) AS d (detection)");
    sql.push_str("WHERE d.detection IS NOT NULL\nORDER BY eventtime, eventid, d.detection");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_whole_days() {
        // 2025-03-14T09:05:50Z
        let now = 1_741_943_150;
        let w = Window::last(30 * 86_400, now);
        assert_eq!(w.first_day, "2025/02/12");
        assert_eq!(w.since, "2025-02-12T09:05:50Z");
        assert_eq!(w.days(now), 31);
        assert_eq!(Window::last(0, now).days(now), 1);
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn rules_on_events_no_trail_records_are_left_out_and_refused_by_name() {
        use crate::detect::catalog::Detection;
        use serde_json::json;
        let s3 =
            json!({"source": ["aws.s3"], "detail-type": ["Object Deleted"], "detail": {"reason": ["DeleteObject"]}});
        let trail = json!({"source": ["aws.s3"], "detail": {"eventName": ["DeleteObject"]}});
        let detections = vec![
            Detection::rule("s3", &s3, "critical", None).unwrap(),
            Detection::rule("ct", &trail, "high", None).unwrap(),
        ];
        let catalog = Catalog { detections };
        let literals = Literals { markers: Vec::new() };
        let request = Request { table: "t".into(), detections: Vec::new(), window: None };
        let (sql, names) = query(&catalog, &literals, &request, &[]).unwrap();
        assert_eq!(names, vec![("ct".to_string(), Kind::Rule)]);
        assert!(sql.contains("'ct'") && !sql.contains("'s3'"), "{sql}");
        let notes = left_out(&catalog, &request);
        assert!(notes.len() == 1 && notes[0].starts_with("s3 left out"), "{notes:?}");
        let named = Request { detections: vec!["s3".into()], ..request };
        let e = query(&catalog, &literals, &named, &[]).unwrap_err();
        assert!(matches!(&e, CompileError::ServiceEvents { name } if name == "s3"), "{e}");
        assert!(left_out(&catalog, &named).is_empty());
    }

    #[test]
    fn the_query_reads_the_table_once_and_filters_partitions() {
        let cases = vec!["    CASE WHEN x THEN 'a' END".to_string()];
        let w = Window { first_day: "2025/02/12".into(), since: "2025-02-12T09:05:50Z".into() };
        let sql = render("db.t", &["1 AS one".to_string()], &cases, Some(&w));
        assert!(sql.contains("FROM (\n  SELECT *,\n    1 AS one\n  FROM db.t\n"), "{sql}");
        assert!(
            sql.contains(
                "  WHERE \"timestamp\" >= '2025/02/12'\n    AND eventtime >= '2025-02-12T09:05:50Z'\n) AS events\n"
            ),
            "{sql}"
        );
        assert!(
            sql.contains(") AS events\nCROSS JOIN UNNEST(ARRAY[\n    CASE WHEN x THEN 'a' END\n]) AS d (detection)"),
            "{sql}"
        );
        assert_eq!(sql.matches(" FROM ").count() + sql.matches("\nFROM ").count(), 2, "{sql}");
    }
}
