//! `ctguard hunt`: the profile's detections compiled to one Athena (Trino) query over the
//! CloudTrail table ([`table`]), so the question "would this have fired in the last 90 days,
//! in every account and region?" is answered where the logs are.
//!
//! The query scans the table once: each row is tested against every detection, and a
//! `CROSS JOIN UNNEST` turns the names of those that fire into one row per (detection, event).
//! Each record is matched as the profile is deployed in the record's own account and partition,
//! as `ctguard test` matches it: the profile is resolved with stand-in values for both, and
//! wherever they land in a pattern the query reads the record's own (see [`sql::Literals`]).
//!
//! A predicate several detections repeat word for word (the agent exclusion on every generic
//! rule) is computed once per row as a column and named where it is used
//! ([`compile::Shared`]). Athena refuses a query string over 262,144 bytes; detections that do
//! not fit in one query are split over as few as fit, run one after the other, and their rows
//! merged. Each query reads the window again, so each adds its scan to the cost.

pub mod athena;
pub mod compile;
pub mod sql;
pub mod table;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::detect::catalog::{Catalog, Detection, Kind, Pattern};
use crate::profile::Runtime;
use compile::{Compiler, Shared, Unsupported};
use sql::{Literals, Pred};

/// The table name used when neither the flag nor the profile names one.
pub const DEFAULT_TABLE: &str = "ctguard_cloudtrail";

/// Athena's limit on a query string (StartQueryExecution `QueryString`: 262,144 bytes).
pub const MAX_QUERY_BYTES: usize = 262_144;

/// What `--emit-sql` writes before each query when there are several.
pub const QUERY_HEADER: &str = "-- query ";

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

/// Why a profile's detections could not become queries.
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
    #[error(
        "{name} matches CloudTrail Insights events, which a trail delivers under CloudTrail-Insight/, apart from the API calls the CloudTrail table reads; look them up in the CloudTrail console's Insights page or with LookupEvents --event-category insight"
    )]
    InsightEvents { name: String },
    #[error("{}", format_unsupported(.0))]
    Unsupported(Vec<(String, Kind, Unsupported)>),
    #[error(
        "{kind} {detection} alone compiles to a query of {bytes} bytes, over Athena's limit of {limit} bytes: it cannot be hunted (leave it out with --detection)",
        kind = kind.as_str()
    )]
    TooLong { detection: String, kind: Kind, bytes: usize, limit: usize },
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

/// Why the CloudTrail table cannot be searched for a detection's events, if it cannot: events a
/// service sends EventBridge itself (S3's "Object Deleted") are in no trail, and Insights events
/// are delivered under their own prefix.
fn outside_table(d: &crate::detect::catalog::Detection) -> Option<&'static str> {
    if d.service_events {
        Some("it matches events a service sends EventBridge itself, which are in no trail")
    } else if d.insights {
        Some(
            "it matches CloudTrail Insights events, which the trail delivers under CloudTrail-Insight/, not read by the CloudTrail table",
        )
    } else {
        None
    }
}

/// The rules a hunt leaves out, with why (see `outside_table`). Empty when `--detection` chose
/// others.
pub fn left_out(catalog: &Catalog, request: &Request) -> Vec<String> {
    if !request.detections.is_empty() {
        return Vec::new();
    }
    catalog.detections.iter().filter_map(|d| outside_table(d).map(|why| format!("{} left out: {why}", d.id))).collect()
}

/// One Athena query: some of the detections, in catalog order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub sql: String,
    pub detections: Vec<(String, Kind)>,
}

/// The compiled hunt: one query when every detection fits in Athena's limit, otherwise as
/// few as fit, each of which scans the window again.
#[derive(Debug, Clone)]
pub struct Query {
    pub batches: Vec<Batch>,
    /// Every detection tested, in catalog order: (id, kind).
    pub detections: Vec<(String, Kind)>,
}

/// Compiles the profile's detections into queries under Athena's limit. `catalog_for`
/// resolves the profile for a runtime (only the account ID and partition are read here);
/// `home` is the region `ctguard test` resolves with.
pub fn compile(
    catalog_for: &dyn Fn(&Runtime) -> anyhow::Result<Catalog>,
    home: &str,
    request: &Request,
) -> anyhow::Result<Query> {
    compile_within(catalog_for, home, request, MAX_QUERY_BYTES)
}

/// [`compile`] with a limit of `limit` bytes per query.
pub fn compile_within(
    catalog_for: &dyn Fn(&Runtime) -> anyhow::Result<Catalog>,
    home: &str,
    request: &Request,
    limit: usize,
) -> anyhow::Result<Query> {
    let mut compiled = Vec::new();
    for (account, partition) in STAND_INS {
        let runtime = Runtime {
            account_id: account.into(),
            partition: partition.into(),
            region: home.into(),
            enabled_regions: vec![home.into()],
            organization: Runtime::placeholder(home).organization,
        };
        let catalog = catalog_for(&runtime)?;
        let literals = Literals {
            markers: vec![
                (account.to_string(), compile::ACCOUNT_COLUMN.to_string()),
                (partition.to_string(), compile::PARTITION_COLUMN.to_string()),
            ],
        };
        let derived = compile::derived_columns(&Runtime::placeholder(home).account_id);
        compiled.push(query(&catalog, &literals, request, &derived, limit)?);
    }
    if compiled.windows(2).any(|w| w[0].batches != w[1].batches) {
        return Err(CompileError::AccountOutsideStrings.into());
    }
    Ok(compiled.remove(0))
}

/// A detection compiled: its CASE (none when it can never fire) and the shared columns it reads.
struct Part {
    id: String,
    kind: Kind,
    case: Option<String>,
    uses: BTreeSet<usize>,
}

fn query(
    catalog: &Catalog,
    literals: &Literals,
    request: &Request,
    derived: &[String],
    limit: usize,
) -> Result<Query, CompileError> {
    for name in &request.detections {
        if !catalog.detections.iter().any(|d| d.id == *name) {
            let known: Vec<&str> = catalog.detections.iter().map(|d| d.id.as_str()).collect();
            return Err(CompileError::UnknownDetection { name: name.clone(), known: known.join(", ") });
        }
    }
    for d in catalog.detections.iter().filter(|d| request.detections.contains(&d.id)) {
        if d.service_events {
            return Err(CompileError::ServiceEvents { name: d.id.clone() });
        }
        if d.insights {
            return Err(CompileError::InsightEvents { name: d.id.clone() });
        }
    }
    // Rules on events the CloudTrail table does not hold are left out, and the command says so
    // (see `left_out`).
    let chosen: Vec<_> = catalog
        .detections
        .iter()
        .filter(|d| outside_table(d).is_none())
        .filter(|d| request.detections.is_empty() || request.detections.contains(&d.id))
        .collect();
    if chosen.is_empty() {
        return Err(CompileError::Empty);
    }
    let pattern = |compiler: &mut Compiler, d: &Detection| match d.pattern() {
        Pattern::Rule(p) => compiler.event_pattern(p),
        Pattern::Alarm(p) => compiler.filter_pattern(p),
    };
    // A first pass finds the predicates the detections repeat; the second names them.
    let mut first = Compiler::new(literals);
    for d in &chosen {
        let _ = pattern(&mut first, d);
    }
    let shared = Shared::choose(first.seen());
    let mut compiler = Compiler::with_shared(literals, &shared);
    let mut parts = Vec::new();
    let mut failed = Vec::new();
    for d in &chosen {
        let compiled = pattern(&mut compiler, d);
        let uses = compiler.take_used();
        let case = match compiled {
            Ok(Pred::False) => None,
            Ok(pred) => Some(format!("    CASE WHEN {} THEN {} END", pred.render(), sql::quote(&d.id))),
            Err(u) => {
                failed.push((d.id.clone(), d.kind, u));
                continue;
            }
        };
        parts.push(Part { id: d.id.clone(), kind: d.kind, case, uses });
    }
    if !failed.is_empty() {
        return Err(CompileError::Unsupported(failed));
    }
    let render_parts = |parts: &[&Part]| {
        let uses: BTreeSet<usize> = parts.iter().flat_map(|p| p.uses.iter().copied()).collect();
        let columns: Vec<String> =
            uses.iter().map(|&i| format!("{} AS {}", shared.texts[i], compile::shared_column(i))).collect();
        let cases: Vec<&str> = parts.iter().filter_map(|p| p.case.as_deref()).collect();
        render(&request.table, derived, &columns, &cases, request.window.as_ref())
    };
    let batches = split(&parts, &render_parts, limit)?;
    let detections = parts.iter().map(|p| (p.id.clone(), p.kind)).collect();
    Ok(Query { batches, detections })
}

/// Packs the detections into as few queries under `limit` bytes as first fit finds, each
/// keeping catalog order. Every query scans the window again, so fewer is cheaper.
fn split(parts: &[Part], render: &dyn Fn(&[&Part]) -> String, limit: usize) -> Result<Vec<Batch>, CompileError> {
    let mut groups: Vec<(Vec<&Part>, String)> = Vec::new();
    for part in parts {
        let mut placed = false;
        for (group, sql) in groups.iter_mut() {
            group.push(part);
            let candidate = render(group);
            if candidate.len() <= limit {
                *sql = candidate;
                placed = true;
                break;
            }
            group.pop();
        }
        if !placed {
            let alone = render(&[part]);
            if alone.len() > limit {
                return Err(CompileError::TooLong {
                    detection: part.id.clone(),
                    kind: part.kind,
                    bytes: alone.len(),
                    limit,
                });
            }
            groups.push((vec![part], alone));
        }
    }
    Ok(groups
        .into_iter()
        .map(|(group, sql)| Batch { sql, detections: group.iter().map(|p| (p.id.clone(), p.kind)).collect() })
        .collect())
}

/// One pass over the table: the window filters the rows (and prunes partitions), the derived
/// envelope fields, then the shared predicates, are computed once per row, every detection is
/// tested, and the names of those that fire become rows.
fn render(table: &str, derived: &[String], shared: &[String], cases: &[&str], window: Option<&Window>) -> String {
    let mut sql = String::new();
    sql.push_str("SELECT d.detection, eventid, eventtime, awsregion, recipientaccountid,\n");
    sql.push_str("  COALESCE(NULLIF(useridentity.arn, ''), useridentity.invokedby, '') AS principal,\n");
    sql.push_str("  eventname, eventsource, errorcode\n");
    // The shared predicates read the derived columns, so they are a level further out.
    let indent = if shared.is_empty() { "" } else { "  " };
    sql.push_str("FROM (\n");
    if !shared.is_empty() {
        let _ = writeln!(sql, "  SELECT *,\n    {}\n  FROM (", shared.join(",\n    "));
    }
    let _ = writeln!(
        sql,
        "{indent}  SELECT *,\n{indent}    {}\n{indent}  FROM {table}",
        derived.join(&format!(",\n{indent}    "))
    );
    if let Some(w) = window {
        let _ = writeln!(
            sql,
            "{indent}  WHERE \"{}\" >= {}\n{indent}    AND eventtime >= {}",
            table::DAY_PARTITION,
            sql::quote(&w.first_day),
            sql::quote(&w.since)
        );
    }
    if !shared.is_empty() {
        sql.push_str("  ) AS records\n");
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
        let insight = json!({"source": ["aws.cloudtrail"], "detail-type": ["AWS Insight via CloudTrail"]});
        let detections = vec![
            Detection::rule("s3", &s3, "critical", None).unwrap(),
            Detection::rule("ct", &trail, "high", None).unwrap(),
            Detection::rule("insight", &insight, "medium", None).unwrap(),
        ];
        let catalog = Catalog { detections };
        let literals = Literals { markers: Vec::new() };
        let request = Request { table: "t".into(), detections: Vec::new(), window: None };
        let q = query(&catalog, &literals, &request, &[], MAX_QUERY_BYTES).unwrap();
        assert_eq!(q.detections, vec![("ct".to_string(), Kind::Rule)]);
        let sql = &q.batches[0].sql;
        assert!(sql.contains("'ct'") && !sql.contains("'s3'"), "{sql}");
        let notes = left_out(&catalog, &request);
        assert!(notes.len() == 2 && notes[0].starts_with("s3 left out"), "{notes:?}");
        assert!(notes[1].starts_with("insight left out") && notes[1].contains("CloudTrail-Insight/"), "{notes:?}");
        let named = Request { detections: vec!["s3".into()], ..request.clone() };
        let e = query(&catalog, &literals, &named, &[], MAX_QUERY_BYTES).unwrap_err();
        assert!(matches!(&e, CompileError::ServiceEvents { name } if name == "s3"), "{e}");
        assert!(left_out(&catalog, &named).is_empty());
        let named = Request { detections: vec!["insight".into()], ..request };
        let e = query(&catalog, &literals, &named, &[], MAX_QUERY_BYTES).unwrap_err();
        assert!(matches!(&e, CompileError::InsightEvents { name } if name == "insight"), "{e}");
    }

    #[test]
    fn the_query_reads_the_table_once_and_filters_partitions() {
        let cases = vec!["    CASE WHEN x THEN 'a' END".to_string()];
        let w = Window { first_day: "2025/02/12".into(), since: "2025-02-12T09:05:50Z".into() };
        let cases: Vec<&str> = cases.iter().map(String::as_str).collect();
        let sql = render("db.t", &["1 AS one".to_string()], &[], &cases, Some(&w));
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

    /// Rules on many event names each, all carrying the same exclusion of one principal.
    fn synthetic(rules: usize, names: usize) -> Catalog {
        let exclusion = serde_json::json!({"arn": [{"anything-but": {"wildcard": "arn:aws:sts::*:assumed-role/Excluded*/*"}}],
            "sessionContext": {"sourceIdentity": [{"anything-but": {"prefix": "agent-excluded-"}}]}});
        let detections = (0..rules)
            .map(|r| {
                let events: Vec<String> = (0..names).map(|n| format!("Delete{r}Thing{n:05}")).collect();
                let pattern = serde_json::json!({"source": ["aws.test"],
                    "detail": {"eventName": events, "userIdentity": exclusion}});
                Detection::rule(&format!("rule-{r}"), &pattern, "high", None).unwrap()
            })
            .collect();
        Catalog { detections }
    }

    fn request() -> Request {
        Request { table: "db.t".into(), detections: Vec::new(), window: None }
    }

    #[test]
    fn detections_over_the_limit_are_split_into_queries_under_it() {
        let catalog = synthetic(7, 400);
        let one = compile_within(&|_| Ok(catalog.clone()), "us-east-1", &request(), usize::MAX).unwrap();
        assert_eq!(one.batches.len(), 1);
        let whole = one.batches[0].sql.len();
        let limit = whole / 3;
        let query = compile_within(&|_| Ok(catalog.clone()), "us-east-1", &request(), limit).unwrap();
        assert!(query.batches.len() >= 3, "{} batches for {whole} bytes under {limit}", query.batches.len());
        let mut seen = Vec::new();
        for batch in &query.batches {
            assert!(batch.sql.len() <= limit, "{} > {limit}", batch.sql.len());
            // Each query tests its own detections and no other.
            for (id, _) in &query.detections {
                let tested = batch.sql.contains(&format!("THEN '{id}' END"));
                assert_eq!(tested, batch.detections.iter().any(|(d, _)| d == id), "{id}");
            }
            seen.extend(batch.detections.iter().map(|(id, _)| id.clone()));
        }
        // Every detection in exactly one query, and the whole list in catalog order.
        seen.sort();
        let all: Vec<String> = catalog.detections.iter().map(|d| d.id.clone()).collect();
        assert_eq!(seen, all);
        assert_eq!(query.detections.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), all);
    }

    #[test]
    fn a_repeated_predicate_is_computed_once_per_row_and_named() {
        let catalog = synthetic(3, 2);
        let query = compile_within(&|_| Ok(catalog.clone()), "us-east-1", &request(), MAX_QUERY_BYTES).unwrap();
        let sql = &query.batches[0].sql;
        assert_eq!(sql.matches("Excluded%").count(), 1, "{sql}");
        assert_eq!(sql.matches(" AS ctguard_shared_1,").count() + sql.matches(" AS ctguard_shared_1\n").count(), 1);
        assert_eq!(sql.matches("ctguard_shared_1)").count(), 3, "{sql}");
        // The shared column reads the derived ones, so it is one level further out.
        assert!(sql.contains("  ) AS records\n) AS events\n"), "{sql}");
    }

    #[test]
    fn a_detection_alone_over_the_limit_is_named() {
        let catalog = synthetic(3, 50);
        let small = compile_within(&|_| Ok(catalog.clone()), "us-east-1", &request(), usize::MAX).unwrap();
        let err = compile_within(&|_| Ok(catalog.clone()), "us-east-1", &request(), small.batches[0].sql.len() / 10)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("rule rule-0 alone compiles to a query of "), "{err}");
    }
}
