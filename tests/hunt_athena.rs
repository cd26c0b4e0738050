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
    seed_results(emu, vec![rows]);
}

/// Queues one result set per query, handed out in the order the queries are submitted.
fn seed_results(emu: &Emulator, sets: Vec<Vec<Value>>) {
    let columns: Vec<Value> = ctguard::hunt::RESULT_COLUMNS
        .iter()
        .map(|c| json!({"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": c, "Label": c, "Type": "varchar", "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": true}))
        .collect();
    let results: Vec<Value> = sets.into_iter().map(|rows| json!({"rows": rows, "column_info": columns})).collect();
    post(&emu.endpoint, "/moto-api/static/athena/query-results", &json!({ "results": results }));
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
        window[0].trim_start().starts_with("WHERE \"timestamp\" >= '")
            && window[1].trim_start().starts_with("AND eventtime >= '"),
        "{window:?}"
    );
    let without_window: Vec<&str> = query.lines().filter(|l| !window.contains(l)).collect();
    assert_eq!(without_window.join("\n"), emitted.trim_end(), "the submitted query is the compiled one");
}

/// A profile whose rules each test the source address against 70 CIDR blocks: each rule fits
/// EventBridge's 2,048 characters, but each block is an arithmetic test in SQL, over 100 KB a
/// rule, so more than one Athena query.
fn large_profile(dir: &std::path::Path) -> std::path::PathBuf {
    let hunt = common::repo().join("tests/hunt");
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    for entry in std::fs::read_dir(hunt.join("policies")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, policies.join(path.file_name().unwrap())).unwrap();
    }
    let operators = std::fs::read_to_string(hunt.join("profiles/operators.toml")).unwrap();
    let header = &operators[..operators.find("[[events.rules]]").unwrap()];
    let mut profile = header.replace("policies_dir = \"../policies\"", "policies_dir = \"policies\"");
    for rule in 0..LARGE_RULES {
        let blocks: Vec<Value> = (0..70).map(|n| json!({"cidr": format!("10.{rule}.{n}.0/24")})).collect();
        let pattern = json!({"source": ["aws.s3"], "detail": {"sourceIPAddress": blocks}});
        std::fs::write(policies.join(format!("large-{rule}.json")), pattern.to_string()).unwrap();
        profile.push_str(&format!(
            "[[events.rules]]\nname = \"large-{rule}\"\npattern = \"large-{rule}.json\"\ntitle = \"large {rule}\"\nseverity = \"high\"\n\n"
        ));
    }
    let path = dir.join("large.toml");
    std::fs::write(&path, profile).unwrap();
    path
}

const LARGE_RULES: usize = 3;

/// Splits `--emit-sql` output into its queries.
fn emitted_queries(text: &str) -> Vec<String> {
    text.split(ctguard::hunt::QUERY_HEADER)
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let body = part.split_once('\n').unwrap().1;
            body.trim_end().trim_end_matches(';').to_string()
        })
        .collect()
}

#[test]
fn detections_over_athenas_limit_run_as_several_queries_merged_into_one_report() {
    let emu = Emulator::start();
    create_workgroup(&emu);
    let dir = tempfile::tempdir().unwrap();
    let profile = large_profile(dir.path());
    let profile = profile.to_str().unwrap();

    let emitted = run(ctguard_cmd().args(["hunt", "--emit-sql", "-p", profile]));
    emitted.expect(0);
    let queries = emitted_queries(&emitted.stdout);
    assert_eq!(
        queries.len(),
        2,
        "{}",
        emitted.stdout.lines().filter(|l| l.starts_with("--")).collect::<Vec<_>>().join("\n")
    );
    assert!(emitted.stdout.starts_with("-- query 1 of 2: large-0, large-1\n"), "{}", &emitted.stdout[..80]);
    assert!(emitted.stdout.contains("\n-- query 2 of 2: large-2\n"));
    for q in &queries {
        assert!(q.len() <= ctguard::hunt::MAX_QUERY_BYTES, "{} bytes", q.len());
    }

    let time = "2025-03-14T09:05:50Z";
    let hit = |detection: &str, event: &str, name: &str| {
        row(&[
            detection,
            event,
            time,
            "us-east-1",
            ACCOUNT,
            "arn:aws:iam::123456789012:user/bob",
            name,
            "test.amazonaws.com",
            "",
        ])
    };
    let header = row(&ctguard::hunt::RESULT_COLUMNS);
    seed_results(
        &emu,
        vec![
            vec![
                header.clone(),
                hit("large-0", "e-1", "DeleteLarge0Thing00001"),
                hit("large-1", "e-2", "DeleteLarge1Thing00002"),
            ],
            vec![header, hit("large-2", "e-1", "DeleteLarge0Thing00001")],
        ],
    );
    outcomes(&emu, json!([{"data_scanned_bytes": 1_000_000_000u64}, {"data_scanned_bytes": 2_000_000_000u64}]));
    let out = emu.ctguard(&["hunt", "-p", profile, "--since", "1d", "--workgroup", WORKGROUP, "--format", "json"]);
    out.expect(0);
    assert!(out.stderr.contains(" (1 of 2): succeeded, 1.00 GB scanned"), "{}", out.stderr);
    assert!(out.stderr.contains(" (2 of 2): succeeded, 2.00 GB scanned"), "{}", out.stderr);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let events = doc["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{doc:#}");
    assert_eq!(events[0]["event_id"], "e-1");
    assert_eq!(events[0]["fired"], json!(["large-0", "large-2"]));
    assert_eq!(events[1]["event_id"], "e-2");
    assert_eq!(events[1]["fired"], json!(["large-1"]));
    assert_eq!(doc["detections"].as_array().unwrap().len(), 3);
    assert_eq!(doc["summary"]["fires"], json!({"large-0": 1, "large-1": 1, "large-2": 1}));
    assert_eq!(doc["summary"]["data_scanned_bytes"], 3_000_000_000u64);
    // Each query is billed on its own.
    let cost = doc["summary"]["cost_usd"].as_f64().unwrap();
    assert!((cost - 3e9 / 1e12 * 5.0).abs() < 1e-12, "{cost}");
    let ids = doc["query"]["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(doc["query"]["id"], ids[0]);

    // What was submitted: each compiled query once, with the window, under the limit.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let submitted = rt.block_on(async {
        let client = athena(&emu).await;
        let mut texts = Vec::new();
        for id in ids {
            let execution = client.get_query_execution().query_execution_id(id.as_str().unwrap()).send().await.unwrap();
            texts.push(execution.query_execution.unwrap().query.unwrap_or_default());
        }
        texts
    });
    for (sent, compiled) in submitted.iter().zip(&queries) {
        assert!(sent.len() <= ctguard::hunt::MAX_QUERY_BYTES);
        let without_window: Vec<&str> =
            sent.lines().filter(|l| !l.contains("\"timestamp\" >= '") && !l.contains("eventtime >= '")).collect();
        assert_eq!(&without_window.join("\n"), compiled);
    }
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
