//! `ctguard hunt` against the emulator's Athena: the query submitted in the workgroup with the
//! compiled SQL, progress while it runs, the rows rendered as `ctguard test` renders matches,
//! the data scanned and its cost, a failed query reported with Athena's reason, and
//! `--max-scan` refusing before anything is submitted. moto does not run SQL: the rows and
//! Athena's statistics are seeded, the way tests/emulator/README.md describes.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use common::{ACCOUNT, BUCKET, Emulator, ctguard_cmd, run};

const WORKGROUP: &str = "ctguard-hunt-test";

fn post(endpoint: &str, path: &str, body: &Value) {
    use std::io::{Read, Write};
    let host = endpoint.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let body = body.to_string();
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.0 20") || response.starts_with("HTTP/1.1 20"), "{path}: {response}");
}

async fn athena(emu: &Emulator) -> aws_sdk_athena::Client {
    aws_sdk_athena::Client::new(&emu.sdk().await)
}

/// The workgroup, created as a test fixture: managing it is not part of `hunt`.
fn create_workgroup(emu: &Emulator) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = aws_sdk_athena::types::WorkGroupConfiguration::builder()
            .result_configuration(
                aws_sdk_athena::types::ResultConfiguration::builder()
                    .output_location(format!("s3://{BUCKET}/athena-results/"))
                    .build(),
            )
            .enforce_work_group_configuration(true)
            .build();
        athena(emu).await.create_work_group().name(WORKGROUP).configuration(config).send().await.unwrap();
    });
}

fn row(values: &[&str]) -> Value {
    json!({"Data": values.iter().map(|v| if v.is_empty() { json!({}) } else { json!({"VarCharValue": v}) }).collect::<Vec<_>>()})
}

/// What Athena returns for the hunt query: the header row, then one row per (detection, event).
fn seed_rows(emu: &Emulator) {
    let header = row(&ctguard::hunt::RESULT_COLUMNS);
    let agent = "arn:aws:sts::123456789012:assumed-role/AIAgentRole/session-1";
    let rows = vec![
        header,
        row(&[
            "ctguard-destructive-actions",
            "e-1",
            "2025-03-14T09:05:50Z",
            "us-east-1",
            ACCOUNT,
            agent,
            "TerminateInstances",
            "ec2.amazonaws.com",
            "",
        ]),
        row(&[
            "ctguard-agent-destructive-actions",
            "e-1",
            "2025-03-14T09:05:50Z",
            "us-east-1",
            ACCOUNT,
            agent,
            "TerminateInstances",
            "ec2.amazonaws.com",
            "",
        ]),
        row(&[
            "monitoring-tampering",
            "e-2",
            "2025-03-14T09:11:05Z",
            "eu-west-1",
            ACCOUNT,
            "arn:aws:iam::123456789012:user/alice",
            "StopLogging",
            "cloudtrail.amazonaws.com",
            "AccessDenied",
        ]),
    ];
    let columns: Vec<Value> = ctguard::hunt::RESULT_COLUMNS
        .iter()
        .map(|c| json!({"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": c, "Label": c, "Type": "varchar", "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": true}))
        .collect();
    post(
        &emu.endpoint,
        "/moto-api/static/athena/query-results",
        &json!({"results": [{"rows": rows, "column_info": columns}]}),
    );
}

fn outcomes(emu: &Emulator, outcomes: Value) {
    post(&emu.endpoint, "/moto-api/ctguard/athena-outcomes", &json!({ "outcomes": outcomes }));
}

/// Holds each query QUEUED, then RUNNING, for `polls` polls before it finishes.
fn slow_queries(emu: &Emulator, polls: u32) {
    post(
        &emu.endpoint,
        "/moto-api/state-manager/set-transition",
        &json!({"model_name": "athena::execution", "transition": {"progression": "manual", "times": polls}}),
    );
}

#[test]
fn hunt_runs_the_compiled_query_in_the_workgroup_and_prints_matches_and_cost() {
    let emu = Emulator::start();
    create_workgroup(&emu);
    seed_rows(&emu);
    outcomes(&emu, json!([{"data_scanned_bytes": 3_500_000_000u64}]));
    slow_queries(&emu, 2);

    let out = emu.ctguard(&["hunt", "--since", "7d", "--workgroup", WORKGROUP, "--color", "never"]);
    out.expect(0);
    // Progress on stderr while it runs.
    for state in ["queued", "running", "succeeded"] {
        assert!(out.stderr.contains(&format!(": {state}, ")), "no {state} progress:\n{}", out.stderr);
    }
    assert!(out.stderr.contains("succeeded, 3.50 GB scanned"), "{}", out.stderr);
    // The matches, as `ctguard test` prints them: one block per event, each detection under it.
    let text = &out.stdout;
    assert!(text.contains("2025-03-14T09:05:50Z us-east-1 ec2.amazonaws.com TerminateInstances by arn:aws:sts::123456789012:assumed-role/AIAgentRole/session-1"), "{text}");
    assert!(text.contains("    ! rule  ctguard-destructive-actions "), "{text}");
    assert!(text.contains("    ! rule  ctguard-agent-destructive-actions "), "{text}");
    assert!(text.contains("StopLogging (AccessDenied) by arn:aws:iam::123456789012:user/alice"), "{text}");
    assert!(text.contains("    ! alarm monitoring-tampering "), "{text}");
    assert!(text.contains("Found 2 events that fired at least one detection."), "{text}");
    assert!(text.contains("Scanned 3.50 GB in "), "{text}");
    assert!(text.contains(": $0.0175 at $5 per TB."), "{text}");

    // What was submitted: the compiled query, with the window, in the workgroup.
    let emitted = run(ctguard_cmd().args(["hunt", "--emit-sql"])).stdout;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (query, workgroup) = rt.block_on(async {
        let client = athena(&emu).await;
        let ids = client.list_query_executions().work_group(WORKGROUP).send().await.unwrap();
        let ids = ids.query_execution_ids();
        assert_eq!(ids.len(), 1, "{ids:?}");
        let execution = client.get_query_execution().query_execution_id(&ids[0]).send().await.unwrap();
        let execution = execution.query_execution.unwrap();
        (execution.query.unwrap_or_default(), execution.work_group.unwrap_or_default())
    });
    assert_eq!(workgroup, WORKGROUP);
    let window: Vec<&str> =
        query.lines().filter(|l| l.contains("\"timestamp\" >= '") || l.contains("eventtime >= '")).collect();
    assert_eq!(window.len(), 2, "{query}");
    assert!(
        window[0].starts_with("  WHERE \"timestamp\" >= '") && window[1].starts_with("    AND eventtime >= '"),
        "{window:?}"
    );
    let without_window: Vec<&str> = query.lines().filter(|l| !window.contains(l)).collect();
    assert_eq!(without_window.join("\n"), emitted.trim_end(), "the submitted query is the compiled one");
}

#[test]
fn hunt_json_is_a_versioned_document_like_ctguard_test() {
    let emu = Emulator::start();
    create_workgroup(&emu);
    seed_rows(&emu);
    outcomes(&emu, json!([{"data_scanned_bytes": 20_000_001u64}]));
    let out = emu.ctguard(&["hunt", "--since", "1d", "--workgroup", WORKGROUP, "--format", "json"]);
    out.expect(0);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["command"], "hunt");
    assert_eq!(doc["format_version"], "1");
    assert_eq!(doc["query"]["workgroup"], WORKGROUP);
    let events = doc["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event_id"], "e-1");
    assert_eq!(events[0]["fired"], json!(["ctguard-destructive-actions", "ctguard-agent-destructive-actions"]));
    assert_eq!(events[1]["error_code"], "AccessDenied");
    assert_eq!(doc["summary"]["fires"]["monitoring-tampering"], 1);
    assert_eq!(doc["summary"]["data_scanned_bytes"], 20_000_001u64);
    // Billed per started megabyte: 21 MB.
    let cost = doc["summary"]["cost_usd"].as_f64().unwrap();
    assert!((cost - 21e6 / 1e12 * 5.0).abs() < 1e-12, "{cost}");
}

#[test]
fn a_failed_query_exits_1_with_athenas_reason() {
    let emu = Emulator::start();
    create_workgroup(&emu);
    let reason = "TABLE_NOT_FOUND: line 4:6: Table 'awsdatacatalog.default.ctguard_cloudtrail' does not exist";
    outcomes(&emu, json!([{"state": "FAILED", "reason": reason}]));
    let out = emu.ctguard(&["hunt", "--since", "30d", "--workgroup", WORKGROUP]);
    out.expect(1);
    assert!(out.stderr.contains("failed: TABLE_NOT_FOUND: line 4:6: Table"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

/// The day before today, as the day partition and the S3 key spell it.
fn yesterday() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    ctguard::hunt::Window::last(86_400, now).first_day
}

#[test]
fn max_scan_refuses_a_window_that_would_scan_more_before_submitting() {
    let emu = Emulator::start();
    create_workgroup(&emu);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let day = yesterday();
    rt.block_on(async {
        let s3 = emu.s3().await;
        s3.create_bucket().bucket(BUCKET).send().await.unwrap();
        for (region, name) in [("us-east-1", "a"), ("eu-west-1", "b")] {
            let key = format!(
                "cloudtrail/AWSLogs/{ACCOUNT}/CloudTrail/{region}/{day}/{ACCOUNT}_CloudTrail_{region}_{name}.json.gz"
            );
            let body = vec![0u8; 5_000_000];
            s3.put_object().bucket(BUCKET).key(key).body(body.into()).send().await.unwrap();
        }
    });
    // 10 MB a day over 31 days is about 310 MB.
    emu.clear_requests();
    let out = emu.ctguard(&["hunt", "--since", "30d", "--workgroup", WORKGROUP, "--max-scan", "100MB"]);
    out.expect(1);
    assert!(
        out.stderr.contains("refusing to start: the window would scan about 310.00 MB (10.00 MB of logs on"),
        "{}",
        out.stderr
    );
    let started = emu.requests().iter().filter(|r| r.operation == "AmazonAthena.StartQueryExecution").count();
    assert_eq!(started, 0, "a refused hunt must not submit a query");

    let out = emu.ctguard(&["hunt", "--since", "30d", "--workgroup", WORKGROUP, "--max-scan", "1GB"]);
    out.expect(0);
}

#[test]
fn running_without_since_is_refused_before_any_call() {
    let out = run(ctguard_cmd().args(["hunt", "--endpoint-url", "http://127.0.0.1:9"]));
    out.expect(1);
    assert!(out.stderr.contains("--since is required to run on Athena"), "{}", out.stderr);
}
