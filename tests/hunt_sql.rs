//! The SQL `ctguard hunt --emit-sql` writes must mean what ctguard's evaluators mean.
//!
//! Every sample record under tests/detections/samples, and the operator records under
//! tests/hunt/records.json, is loaded into DuckDB (from PyPI, in the emulator's venv) as a
//! table with the CloudTrail table's schema, converted the way Athena's JSON SerDe reads a log
//! file. The emitted query runs there, and must return exactly the (detection, eventID) pairs
//! `ctguard test` reports on the same records, for both shipped profiles and for
//! tests/hunt/profiles/operators.toml, whose rules and filters use every operator. Any
//! difference fails, naming the record and the detection.
//!
//! Records get fresh eventIDs (several samples share one), the same on both sides.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ctguard::hunt::table::{COLUMNS, Column, Shape};
use serde_json::{Map, Value, json};

use common::{ctguard_cmd, repo, run};

const TABLE: &str = "cloudtrail";

/// A record, where it came from, and its test ID.
struct Record {
    id: String,
    origin: String,
    value: Value,
}

fn samples() -> Vec<Record> {
    let dir = repo().join("tests/detections/samples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths.iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let lists = [("fires", false), ("silent", true), ("gaps", true)];
        for (section, wrapped) in lists {
            for (i, entry) in doc[section].as_array().into_iter().flatten().enumerate() {
                let record = if wrapped { entry["record"].clone() } else { entry.clone() };
                // S3's own EventBridge events are in no trail, and Insights records are delivered
                // under CloudTrail-Insight/, so neither is in the table; hunt leaves their rules out.
                if ctguard::detect::eventbridge::is_event(&record) || record["eventType"] == "AwsCloudTrailInsight" {
                    continue;
                }
                out.push(Record {
                    id: format!("{stem}.{section}.{i}"),
                    origin: format!("tests/detections/samples/{stem}.json {section}[{i}]"),
                    value: record,
                });
            }
        }
    }
    out
}

/// `tests/hunt/records.json`: a base record and variants, each a set of fields to change
/// (`$delete` lists fields to drop), every one a CloudTrail record in the documented format.
fn operator_records() -> Vec<Record> {
    let path = repo().join("tests/hunt/records.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let base = doc["base"].as_object().unwrap().clone();
    let mut out = Vec::new();
    for (i, variant) in doc["variants"].as_array().unwrap().iter().enumerate() {
        let mut record = base.clone();
        for (k, v) in variant["set"].as_object().unwrap() {
            record.insert(k.clone(), v.clone());
        }
        for k in variant["$delete"].as_array().into_iter().flatten() {
            record.remove(k.as_str().unwrap());
        }
        out.push(Record {
            id: format!("operators.{i}"),
            origin: format!("tests/hunt/records.json variants[{i}] ({})", variant["why"].as_str().unwrap_or("")),
            value: Value::Object(record),
        });
    }
    out
}

fn all_records() -> Vec<Record> {
    let mut records = samples();
    records.extend(operator_records());
    for r in &mut records {
        r.value["eventID"] = json!(r.id);
    }
    records
}

// ---------------------------------------------------------------------------------------------
// The table, as Athena's JSON SerDe reads a CloudTrail log file
// ---------------------------------------------------------------------------------------------

fn duckdb_type(shape: Shape) -> String {
    let fields = |cols: &[Column]| -> String {
        cols.iter().map(|c| format!("\"{}\" {}", c.name, duckdb_type(c.shape))).collect::<Vec<_>>().join(", ")
    };
    match shape {
        Shape::Text | Shape::Bool | Shape::Json => "VARCHAR".into(),
        Shape::Struct(cols) => format!("STRUCT({})", fields(cols)),
        Shape::Array(cols) => format!("STRUCT({})[]", fields(cols)),
        Shape::Map => "MAP(VARCHAR, VARCHAR)".into(),
    }
}

/// Column name to DuckDB type, the partition columns last.
fn duckdb_columns() -> Map<String, Value> {
    let mut out = Map::new();
    for c in COLUMNS {
        out.insert(c.name.into(), json!(duckdb_type(c.shape)));
    }
    out.insert("region".into(), json!("VARCHAR"));
    out.insert("timestamp".into(), json!("VARCHAR"));
    out
}

/// A record's value for one column. Fields hold the types CloudTrail documents (the compiled
/// SQL relies on it), so a record that breaks them fails here, naming the field.
fn cell(shape: Shape, value: Option<&Value>, at: &str) -> Value {
    let value = match value {
        None | Some(Value::Null) if !matches!(shape, Shape::Json) => return Value::Null,
        None => return Value::Null,
        Some(v) => v,
    };
    match (shape, value) {
        (Shape::Text, Value::String(s)) => json!(s),
        (Shape::Bool, Value::Bool(b)) => json!(b.to_string()),
        (Shape::Json, Value::Null) => Value::Null,
        (Shape::Json, Value::Object(_)) => json!(value.to_string()),
        (Shape::Struct(cols), Value::Object(map)) => row(cols, map, at),
        (Shape::Array(cols), Value::Array(items)) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let map = item.as_object().unwrap_or_else(|| panic!("{at}[{i}]: expected an object"));
                    row(cols, map, &format!("{at}[{i}]"))
                })
                .collect(),
        ),
        (Shape::Map, Value::Object(map)) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), json!(v.as_str().unwrap_or_default()))).collect())
        }
        (shape, value) => panic!("{at}: {value} is not what CloudTrail documents for this field ({shape:?})"),
    }
}

fn row(cols: &[Column], record: &Map<String, Value>, at: &str) -> Value {
    Value::Object(
        cols.iter()
            .map(|c| (c.name.to_string(), cell(c.shape, record.get(c.key), &format!("{at}.{}", c.key))))
            .collect(),
    )
}

fn table_row(record: &Record) -> Value {
    let map = record.value.as_object().unwrap();
    let mut out = row(COLUMNS, map, &record.origin);
    let day = map.get("eventTime").and_then(Value::as_str).and_then(|t| t.get(..10)).unwrap_or("").replace('-', "/");
    out["region"] = map.get("awsRegion").cloned().unwrap_or(Value::Null);
    out["timestamp"] = json!(day);
    out
}

// ---------------------------------------------------------------------------------------------
// Both sides
// ---------------------------------------------------------------------------------------------

type Pairs = BTreeSet<(String, String)>;

/// The (detection, eventID) pairs `ctguard test` reports, and the profile's detection ids.
fn ctguard_test(profile: &str, records: &Path) -> (Pairs, Vec<String>) {
    let out = run(ctguard_cmd().args(["test", "-p", profile, "--format", "json", "-j", "1"]).arg(records));
    out.expect(0);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let mut pairs = Pairs::new();
    for event in doc["events"].as_array().unwrap() {
        let id = event["event_id"].as_str().unwrap().to_string();
        for d in event["fired"].as_array().unwrap() {
            pairs.insert((d.as_str().unwrap().to_string(), id.clone()));
        }
    }
    let ids = doc["detections"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_string()).collect();
    (pairs, ids)
}

/// The queries `--emit-sql` prints: one, or several each under a header comment.
fn emitted_sql(profile: &str) -> Vec<String> {
    let out = run(ctguard_cmd().args(["hunt", "--emit-sql", "-p", profile, "--table", TABLE]));
    out.expect(0);
    out.stdout
        .split(ctguard::hunt::QUERY_HEADER)
        .filter(|part| !part.trim().is_empty())
        .map(|part| match part.split_once('\n') {
            Some((_, body)) if out.stdout.starts_with(ctguard::hunt::QUERY_HEADER) => {
                body.trim_end().trim_end_matches(';').to_string()
            }
            _ => part.to_string(),
        })
        .collect()
}

/// The query's (detection, eventid) pairs, and DuckDB's query time in seconds.
fn duckdb(sql: &str, dir: &Path) -> (Pairs, f64) {
    let python = repo().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/emulator-setup (scripts/test runs it)", python.display());
    let sql_path = dir.join("query.sql");
    std::fs::write(&sql_path, sql).unwrap();
    let out = run(std::process::Command::new(python)
        .arg(repo().join("tests/hunt/duckdb_query.py"))
        .args(["--columns", dir.join("columns.json").to_str().unwrap()])
        .args(["--rows", dir.join("rows.jsonl").to_str().unwrap()])
        .args(["--sql", sql_path.to_str().unwrap()])
        .args(["--table", TABLE]));
    assert_eq!(out.code, 0, "DuckDB failed on the emitted SQL:\n{}\n--- SQL\n{sql}", out.stderr);
    let pairs = out
        .stdout
        .lines()
        .map(|line| {
            let row: Vec<Value> = serde_json::from_str(line).unwrap();
            (row[0].as_str().unwrap().to_string(), row[1].as_str().unwrap().to_string())
        })
        .collect();
    let query = out
        .stderr
        .split_whitespace()
        .find_map(|w| w.strip_prefix("query="))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    (pairs, query)
}

fn describe(record: &Record) -> String {
    let field = |k: &str| record.value.get(k).and_then(Value::as_str).unwrap_or("<none>").to_string();
    format!(
        "{} ({} {} by {})",
        record.origin,
        field("eventSource"),
        field("eventName"),
        record.value["userIdentity"]["arn"]
    )
}

/// Loads `records` for both engines into `dir`.
fn prepare(records: &[Record], dir: &Path) -> PathBuf {
    let lines: String = records.iter().map(|r| format!("{}\n", r.value)).collect();
    let records_path = dir.join("records.jsonl");
    std::fs::write(&records_path, lines).unwrap();
    let rows: String = records.iter().map(|r| format!("{}\n", table_row(r))).collect();
    std::fs::write(dir.join("rows.jsonl"), rows).unwrap();
    std::fs::write(dir.join("columns.json"), Value::Object(duckdb_columns()).to_string()).unwrap();
    records_path
}

/// Checks both sides agree; returns the pairs, the detection ids and the record count.
fn agree(profile: &str) -> (Pairs, Vec<String>, usize) {
    let records = all_records();
    let dir = tempfile::tempdir().unwrap();
    let records_path = prepare(&records, dir.path());
    let (expected, ids) = ctguard_test(profile, &records_path);
    let mut got = Pairs::new();
    for sql in emitted_sql(profile) {
        got.extend(duckdb(&sql, dir.path()).0);
    }
    // scripts/bench-hunt times both engines on these very inputs.
    if let Some(keep) = std::env::var_os("CTGUARD_HUNT_BENCH_DIR").filter(|_| profile == "ai-agent-guard") {
        for name in ["records.jsonl", "rows.jsonl", "columns.json", "query.sql"] {
            std::fs::copy(dir.path().join(name), Path::new(&keep).join(name)).unwrap();
        }
    }
    let by_id: BTreeMap<&str, &Record> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut problems = Vec::new();
    for (detection, id) in expected.difference(&got) {
        problems
            .push(format!("{detection}: ctguard test fires, the SQL does not, on {}", describe(by_id[id.as_str()])));
    }
    for (detection, id) in got.difference(&expected) {
        problems
            .push(format!("{detection}: the SQL fires, ctguard test does not, on {}", describe(by_id[id.as_str()])));
    }
    assert!(problems.is_empty(), "{profile}: {} disagreements:\n  {}", problems.len(), problems.join("\n  "));
    assert!(!expected.is_empty(), "{profile}: no detection fired on any record; the comparison proves nothing");
    eprintln!("{profile}: {} (detection, event) pairs agree over {} records", expected.len(), records.len());
    (expected, ids, records.len())
}

#[test]
fn ai_agent_guard_sql_agrees_with_ctguard_test() {
    agree("ai-agent-guard");
}

#[test]
fn cis_aws_foundations_sql_agrees_with_ctguard_test() {
    agree("cis-aws-foundations");
}

#[test]
fn shipped_profiles_compile_to_queries_under_athenas_limit() {
    for profile in ["ai-agent-guard", "cis-aws-foundations"] {
        let queries = emitted_sql(profile);
        let sizes: Vec<usize> = queries.iter().map(String::len).collect();
        assert!(!queries.is_empty(), "{profile}");
        assert!(sizes.iter().all(|&n| n <= ctguard::hunt::MAX_QUERY_BYTES), "{profile}: query sizes {sizes:?}");
        eprintln!("{profile}: {} queries of {sizes:?} bytes", queries.len());
    }
}

#[test]
fn every_operator_agrees_with_ctguard_test() {
    let profile = repo().join("tests/hunt/profiles/operators.toml");
    let (pairs, ids, records) = agree(profile.to_str().unwrap());
    // Each operator must be seen both firing and silent, or agreeing proves little about it.
    for id in ids {
        let fires = pairs.iter().filter(|(d, _)| *d == id).count();
        assert!(fires > 0 && fires < records, "{id} fires on {fires} of {records} records: add records on both sides");
    }
}

#[test]
fn a_pattern_sql_cannot_express_is_an_error_naming_detection_and_construct() {
    let profile = repo().join("tests/hunt/profiles/inexpressible.toml");
    let out = run(ctguard_cmd().args(["hunt", "--emit-sql", "-p", profile.to_str().unwrap()]));
    out.expect(1);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("rule ctguard-management-event: at detail.managementEvent: the CloudTrail table has no column"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("alarm null-request: at $.requestParameters: IS NULL"), "{}", out.stderr);
}

#[test]
fn a_rule_on_s3s_own_events_is_left_out_with_a_note_and_refused_by_name() {
    let rule = "ctguard-audit-log-object-deleted";
    let out = run(ctguard_cmd().args(["hunt", "--emit-sql", "-p", "ai-agent-guard"]));
    out.expect(0);
    assert!(!out.stdout.contains(rule), "{}", out.stdout);
    assert!(out.stdout.contains("'ctguard-audit-log-deletion'"), "the data-event rule is hunted: {}", out.stdout);
    assert!(out.stderr.contains(&format!("{rule} left out: it matches events a service sends")), "{}", out.stderr);
    let out = run(ctguard_cmd().args(["hunt", "--emit-sql", "-p", "ai-agent-guard", "--detection", rule]));
    out.expect(1);
    assert!(out.stderr.contains("which are in no trail, so the CloudTrail table cannot be searched"), "{}", out.stderr);
}

#[test]
fn one_detection_can_be_chosen_and_an_unknown_one_is_named() {
    let out = run(ctguard_cmd().args(["hunt", "--emit-sql", "--detection", "cis-4.3", "--table", "db.trail"]));
    out.expect(0);
    assert!(out.stdout.contains("FROM db.trail\n"), "{}", out.stdout);
    assert!(out.stdout.contains(" THEN 'cis-4.3' END\n]) AS d (detection)"), "{}", out.stdout);
    assert_eq!(out.stdout.matches(" END,\n").count(), 0, "only one detection: {}", out.stdout);
    let out = run(ctguard_cmd().args(["hunt", "--emit-sql", "--detection", "cis-9.9"]));
    out.expect(1);
    assert!(
        out.stderr.contains("no detection named \"cis-9.9\"; the profile has: ctguard-destructive-actions,"),
        "{}",
        out.stderr
    );
}
