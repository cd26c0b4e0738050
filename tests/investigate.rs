//! The look-back half: `ctguard investigate` over the emulator's CloudTrail event history
//! (LookupEvents, tests/emulator/server.py `EventHistory`), and `ctguard test s3://…` over log
//! files in the emulated bucket. The events are seeded by each test, timed relative to now.

mod common;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use common::*;
use serde_json::{Value, json};

const AGENT: &str = "arn:aws:sts::123456789012:assumed-role/AIAgent-ops/agent-run-7";
const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
const ROOT: &str = "arn:aws:iam::123456789012:root";
const DEPLOYER: &str = "arn:aws:sts::123456789012:assumed-role/Deploy/i-0abc";
const MEMBER_ROLE: &str = "arn:aws:sts::111122223333:assumed-role/Deploy/ci";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn iso(secs: i64) -> String {
    DateTime::from_secs(secs).fmt(Format::DateTime).unwrap()
}

/// A CloudTrail record as the trail writes it, `ago` seconds before now.
fn record(region: &str, ago: i64, source: &str, name: &str, who: &str, error: Option<&str>) -> Value {
    let account = who.split(':').nth(4).unwrap_or(ACCOUNT);
    let identity = if who.ends_with(":root") {
        json!({"type": "Root", "principalId": account, "arn": who, "accountId": account})
    } else if who.contains(":assumed-role/") {
        let role = who.split('/').nth(1).unwrap();
        json!({"type": "AssumedRole", "principalId": "AROAEXAMPLE:s", "arn": who, "accountId": account,
               "accessKeyId": "ASIAEXAMPLE", "sessionContext": {"sessionIssuer": {"type": "Role",
               "arn": format!("arn:aws:iam::{account}:role/{role}"), "userName": role, "accountId": account}}})
    } else {
        json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": who, "accountId": account,
               "accessKeyId": "AKIAEXAMPLE", "userName": who.rsplit('/').next().unwrap()})
    };
    let read_only = ["List", "Get", "Describe"].iter().any(|p| name.starts_with(p));
    let mut r = json!({
        "eventVersion": "1.09", "userIdentity": identity, "eventTime": iso(now() - ago),
        "eventSource": source, "eventName": name, "awsRegion": region, "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0", "requestParameters": {"bucketName": "prod-data"},
        "responseElements": null, "requestID": format!("req-{region}-{name}-{ago}"),
        "eventID": format!("{region}-{name}-{ago}-{}", who.len()), "readOnly": read_only,
        "eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": account,
    });
    if let Some(code) = error {
        r["errorCode"] = json!(code);
        r["errorMessage"] = json!(format!("User: {who} is not authorized to perform this action"));
        r["responseElements"] = Value::Null;
    }
    r
}

/// `record` with the source identity its session was started with (`sts:SourceIdentity`).
fn sourced(mut record: Value, identity: &str) -> Value {
    record["userIdentity"]["sessionContext"]["sourceIdentity"] = json!(identity);
    record
}

/// A small profile in a temp dir: two EventBridge rules over one pattern (the second for
/// agents), a filter on trail tampering and one on root use (which can match any event name),
/// in three regions. Its default lookup list is DeleteBucket, DeleteTrail, StopLogging,
/// TerminateInstances.
fn test_profile() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::create_dir_all(dir.path().join("profiles")).unwrap();
    for entry in std::fs::read_dir(repo().join("policies")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), policies.join(entry.file_name())).unwrap();
    }
    let pattern = json!({
        "source": ["aws.s3", "aws.ec2"], "detail-type": ["AWS API Call via CloudTrail"],
        "$or": [
            {"detail": {"eventSource": ["s3.amazonaws.com"], "eventName": ["DeleteBucket"]}},
            {"detail": {"eventSource": ["ec2.amazonaws.com"], "eventName": ["TerminateInstances"]}}
        ]
    });
    std::fs::write(policies.join("lookback-destructive.json"), pattern.to_string()).unwrap();
    let profile = r#"
[profile]
name = "lookback-test"
regions = ["us-east-1", "eu-west-1", "ap-southeast-2"]
policies_dir = "../policies"

[agents]
roles = ["AIAgent*"]
source_identities = ["agent-*"]

[bucket]
name = "lookback-audit-${account_id}"
trail_prefix = "cloudtrail"
policy = "audit-bucket-policy.json"

[trail]
name = "lookback"

[cloudwatch_logs]
log_group = "/lookback/trail"
role_name = "lookback-to-logs"
trust_policy = "cloudtrail-logs-trust.json"
role_policy = "cloudtrail-logs-role-policy.json"

[alerts]
topic = "lookback-alerts"
policy = "alert-topic-policy.json"

[events]
forwarder_role = "lookback-forwarder"
forwarder_trust_policy = "events-forwarder-trust.json"
forwarder_role_policy = "events-forwarder-policy.json"

[[events.rules]]
name = "lookback-destructive"
pattern = "lookback-destructive.json"
title = "Destructive call"
severity = "high"

[[events.rules]]
name = "lookback-agent-destructive"
pattern = "lookback-destructive.json"
title = "Agent destructive call"
severity = "critical"
agents = true

[[alarms]]
id = "trail-off"
name = "lookback-trail-off"
metric = "TrailOff"
pattern = '{ ($.eventSource = cloudtrail.amazonaws.com) && (($.eventName = StopLogging) || ($.eventName = DeleteTrail)) }'
severity = "critical"

[[alarms]]
id = "root-use"
name = "lookback-root-use"
metric = "RootUse"
pattern = '{ ($.userIdentity.type = "Root") && ($.userIdentity.invokedBy NOT EXISTS) }'
severity = "high"
"#;
    let path = dir.path().join("profiles/lookback-test.toml");
    std::fs::write(&path, profile).unwrap();
    let spec = path.to_string_lossy().into_owned();
    (dir, spec)
}

fn jsonl(out: &str) -> Vec<Value> {
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn field<'a>(events: &'a [Value], key: &str) -> Vec<&'a str> {
    events.iter().map(|e| e[key].as_str().unwrap_or("")).collect()
}

/// The EventName attributes the emulator was asked for in `region`.
fn looked_up(emu: &Emulator, region: &str) -> BTreeSet<String> {
    emu.lookup_calls()
        .iter()
        .filter(|c| c["region"] == region)
        .map(|c| c["attribute"].as_str().unwrap_or("(every event)").trim_start_matches("EventName=").to_string())
        .collect()
}

#[test]
fn agent_activity_in_several_regions_is_found_newest_first() {
    let (_dir, profile) = test_profile();
    let emu = Emulator::start();
    emu.seed_event_history(&[
        record("us-east-1", 600, "s3.amazonaws.com", "DeleteBucket", AGENT, None),
        record("eu-west-1", 300, "ec2.amazonaws.com", "TerminateInstances", AGENT, None),
        record("ap-southeast-2", 1200, "s3.amazonaws.com", "DeleteBucket", AGENT, Some("AccessDenied")),
        // An agent by its source identity alone, under a role no agent pattern names.
        sourced(record("us-east-1", 900, "ec2.amazonaws.com", "TerminateInstances", DEPLOYER, None), "agent-claude"),
        // The same role without it is a person's session.
        record("us-east-1", 960, "ec2.amazonaws.com", "TerminateInstances", DEPLOYER, None),
        // Not the agent; and the agent outside the window.
        record("us-east-1", 420, "s3.amazonaws.com", "DeleteBucket", ALICE, None),
        record("eu-west-1", 30 * 3600, "s3.amazonaws.com", "DeleteBucket", AGENT, None),
        // Not an event any detection names: not looked up by default.
        record("us-east-1", 100, "s3.amazonaws.com", "ListBuckets", AGENT, None),
    ]);
    let r = emu.ctguard(&["investigate", "-p", &profile, "--agents", "--since", "24h", "--format", "jsonl"]);
    r.expect(0);
    let events = jsonl(&r.stdout);
    assert_eq!(field(&events, "region"), ["eu-west-1", "us-east-1", "us-east-1", "ap-southeast-2"], "{}", r.stdout);
    assert_eq!(field(&events, "principal"), [AGENT, AGENT, DEPLOYER, AGENT]);
    let times = field(&events, "time");
    assert!(times.windows(2).all(|w| w[0] > w[1]), "newest first: {times:?}");
    for e in &events {
        assert_eq!(e["severity"], "critical", "{e}");
        assert_eq!(e["severity_basis"], json!({"from": "detection", "detection": "lookback-agent-destructive"}));
        let ids: Vec<&str> = e["detections"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
        // One event, one alert: the rule on every principal leaves out what the agent rule catches.
        assert_eq!(ids, ["lookback-agent-destructive"]);
        assert_eq!(e["resources"], json!(["prod-data"]));
    }
    assert_eq!(events[0]["record"]["userIdentity"]["arn"], AGENT, "the raw record is kept");
    assert_eq!(events[2]["record"]["userIdentity"]["sessionContext"]["sourceIdentity"], "agent-claude");
    assert_eq!(events[3]["error_code"], "AccessDenied");

    // --limit keeps the newest.
    let r = emu.ctguard(&["investigate", "-p", &profile, "--agents", "--limit", "1", "--format", "json"]);
    r.expect(0);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["format_version"], "1");
    assert_eq!(doc["events"].as_array().unwrap().len(), 1);
    assert_eq!(doc["events"][0]["region"], "eu-west-1");
    assert_eq!(doc["summary"]["limited"], true);
}

#[test]
fn the_default_lookup_list_is_every_name_the_detections_can_match() {
    let (_dir, profile) = test_profile();
    let emu = Emulator::start();
    emu.seed_event_history(&[
        record("us-east-1", 60, "cloudtrail.amazonaws.com", "StopLogging", ALICE, None),
        record("us-east-1", 120, "iam.amazonaws.com", "CreateUser", ROOT, None),
    ]);
    let r = emu.ctguard(&["investigate", "-p", &profile, "--region", "us-east-1", "--color", "never"]);
    r.expect(0);
    let names: BTreeSet<String> =
        ["DeleteBucket", "DeleteTrail", "StopLogging", "TerminateInstances"].map(String::from).into();
    assert_eq!(looked_up(&emu, "us-east-1"), names);
    assert!(looked_up(&emu, "eu-west-1").is_empty(), "--region replaces the profile's regions");
    // Root use can match any event name: said, not silently dropped.
    assert!(r.stderr.contains("root-use (any event name)"), "{}", r.stderr);
    // The table and the summary per principal.
    assert!(r.stdout.contains("TIME") && r.stdout.contains("DETECTIONS"), "{}", r.stdout);
    let row = r.stdout.lines().find(|l| l.contains("StopLogging")).unwrap();
    assert!(
        row.contains("us-east-1") && row.contains("critical") && row.contains(ALICE) && row.contains("trail-off"),
        "{row}"
    );
    assert!(!r.stdout.contains("CreateUser"), "CreateUser is in no detection's list");
    assert!(r.stdout.contains("By principal:") && r.stdout.contains("1 event (1 critical)"), "{}", r.stdout);
}

#[test]
fn severity_comes_from_the_detection_or_the_class_raised_when_the_call_failed() {
    let (_dir, profile) = test_profile();
    let emu = Emulator::start();
    emu.seed_event_history(&[
        record("us-east-1", 50, "cloudtrail.amazonaws.com", "StopLogging", ALICE, None),
        record("us-east-1", 40, "iam.amazonaws.com", "CreateAccessKey", ALICE, None),
        record("us-east-1", 30, "iam.amazonaws.com", "CreateAccessKey", AGENT, Some("AccessDenied")),
        record("us-east-1", 20, "iam.amazonaws.com", "ListAccessKeys", AGENT, None),
        record("us-east-1", 10, "ec2.amazonaws.com", "RunInstances", AGENT, Some("Client.UnauthorizedOperation")),
    ]);
    let events = ["StopLogging", "CreateAccessKey", "ListAccessKeys", "RunInstances"];
    let mut args = vec!["investigate", "-p", &profile, "--region", "us-east-1", "--format", "json"];
    args.extend(events.iter().flat_map(|e| ["--event", e]));
    let r = emu.ctguard(&args);
    r.expect(0);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let got: Vec<(String, String, Value)> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event_name"].as_str().unwrap().into(),
                e["severity"].as_str().unwrap().into(),
                e["severity_basis"].clone(),
            )
        })
        .collect();
    let class = |c: &str, raised: bool| json!({"from": "class", "class": c, "raised_for_error": raised});
    assert_eq!(
        got,
        [
            ("RunInstances".into(), "medium".into(), json!({"from": "unclassified", "raised_for_error": true})),
            ("ListAccessKeys".into(), "low".into(), class("read-only reconnaissance", false)),
            ("CreateAccessKey".into(), "high".into(), class("IAM changes", true)),
            ("CreateAccessKey".into(), "medium".into(), class("IAM changes", false)),
            ("StopLogging".into(), "critical".into(), json!({"from": "detection", "detection": "trail-off"})),
        ]
    );
    assert_eq!(doc["summary"]["by_severity"], json!({"low": 1, "medium": 2, "high": 1, "critical": 1}));

    // --fail-on: 2 when something at or above it was found, 0 otherwise.
    let fail_on = |level: &str, event: &str| {
        emu.ctguard(&["investigate", "-p", &profile, "--region", "us-east-1", "--event", event, "--fail-on", level])
            .code
    };
    assert_eq!(fail_on("high", "CreateAccessKey"), 2);
    assert_eq!(fail_on("critical", "CreateAccessKey"), 0);
}

#[test]
fn detection_keeps_only_what_it_fires_on() {
    let (_dir, profile) = test_profile();
    let emu = Emulator::start();
    emu.seed_event_history(&[
        record("us-east-1", 60, "s3.amazonaws.com", "DeleteBucket", AGENT, None),
        record("us-east-1", 70, "s3.amazonaws.com", "DeleteBucket", ALICE, None),
        // Same event name, another service: the rule's eventSource keeps it out.
        record("us-east-1", 80, "gamelift.amazonaws.com", "TerminateInstances", AGENT, None),
        record("us-east-1", 90, "iam.amazonaws.com", "CreateUser", ROOT, None),
    ]);
    let r = emu.ctguard(&[
        "investigate",
        "-p",
        &profile,
        "--region",
        "us-east-1",
        "--detection",
        "lookback-agent-destructive",
        "--format",
        "jsonl",
    ]);
    r.expect(0);
    let events = jsonl(&r.stdout);
    assert_eq!(field(&events, "event_id").len(), 1, "{}", r.stdout);
    assert_eq!(events[0]["principal"], AGENT);
    let names: BTreeSet<String> = ["DeleteBucket", "TerminateInstances"].map(String::from).into();
    assert_eq!(looked_up(&emu, "us-east-1"), names, "only the detection's own names are looked up");

    // A detection that can match any event name reads every event, and says so.
    let r = emu.ctguard(&[
        "investigate",
        "-p",
        &profile,
        "--region",
        "us-east-1",
        "--detection",
        "root-use",
        "--format",
        "jsonl",
    ]);
    r.expect(0);
    assert!(r.stderr.contains("reading every event"), "{}", r.stderr);
    assert_eq!(field(&jsonl(&r.stdout), "event_name"), ["CreateUser"]);
    assert!(looked_up(&emu, "us-east-1").contains("(every event)"));
}

#[test]
fn a_failed_region_or_event_name_is_reported_and_the_rest_is_read() {
    let (_dir, profile) = test_profile();
    let emu = Emulator::start();
    emu.seed_event_history(&[
        record("us-east-1", 60, "s3.amazonaws.com", "DeleteBucket", AGENT, None),
        record("eu-west-1", 70, "s3.amazonaws.com", "DeleteBucket", AGENT, None),
        record("ap-southeast-2", 80, "ec2.amazonaws.com", "TerminateInstances", AGENT, None),
    ]);
    emu.set_faults(json!({"force": [{"operation": "LookupEvents", "region": "eu-west-1", "status": 400,
        "code": "AccessDeniedException", "message": "not allowed here", "times": null}]}));
    let base = ["investigate", "-p", &profile, "--event", "DeleteBucket", "--event", "TerminateInstances"];
    let r = emu.ctguard(&[&base[..], &["--format", "json"]].concat());
    r.expect(3);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["summary"]["partial"], true);
    let failures = doc["summary"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "one failure for the region, not one per event name: {failures:?}");
    assert!(
        failures[0].as_str().unwrap().starts_with("eu-west-1: LookupEvents")
            && failures[0].as_str().unwrap().contains("AccessDeniedException")
    );
    assert!(r.stderr.contains("eu-west-1"), "{}", r.stderr);
    assert_eq!(field(doc["events"].as_array().unwrap(), "region"), ["us-east-1", "ap-southeast-2"]);
    // The region's other lookups were not sent once it failed.
    let eu = emu.lookup_calls().iter().filter(|c| c["region"] == "eu-west-1").count();
    assert_eq!(eu, 0, "the proxy answered for the emulator");
    let sent = emu.requests().iter().filter(|q| q.operation.ends_with("LookupEvents")).count();
    assert!(sent <= 2 * 2 + 2, "{sent} lookups");

    // Something at or above --fail-on outweighs the partial result.
    let r = emu.ctguard(&[&base[..], &["--fail-on", "critical"]].concat());
    r.expect(2);

    // One event name failing leaves the other names and regions read.
    emu.set_faults(json!({"force": [{"operation": "LookupEvents", "body_contains": "TerminateInstances",
        "status": 400, "code": "InvalidLookupAttributesException", "times": null}]}));
    let r = emu.ctguard(&[&base[..], &["--region", "us-east-1", "--format", "json"]].concat());
    r.expect(3);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(field(doc["events"].as_array().unwrap(), "event_name"), ["DeleteBucket"]);
    let failures = doc["summary"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1);
    assert!(failures[0].as_str().unwrap().contains("EventName=TerminateInstances"), "{failures:?}");
}

#[test]
fn pacing_keeps_each_region_near_two_calls_a_second_without_throttling() {
    let (_dir, profile) = test_profile();
    let emu = Emulator::start();
    // Two regions, eight names each, 60 events per name: two pages per name, 16 calls per region.
    let names: Vec<String> = (0..8).map(|i| format!("PutThing{i}")).collect();
    let mut seeded = Vec::new();
    for region in ["us-east-1", "eu-west-1"] {
        for name in &names {
            seeded.extend((0..60).map(|i| record(region, 60 + i * 7, "example.amazonaws.com", name, ALICE, None)));
        }
    }
    emu.seed_event_history(&seeded);
    let mut args =
        vec!["investigate", "-p", &profile, "--region", "us-east-1", "--region", "eu-west-1", "--format", "json"];
    args.extend(names.iter().flat_map(|n| ["--event", n.as_str()]));
    let started = std::time::Instant::now();
    let r = emu.ctguard(&args);
    let elapsed = started.elapsed().as_secs_f64();
    r.expect(0);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["summary"]["events"], 960, "every page of every stream was read");
    assert_eq!(doc["summary"]["calls"], 32);

    let calls = emu.lookup_calls();
    assert_eq!(calls.iter().filter(|c| c["throttled"] == true).count(), 0, "throttled: {calls:?}");
    for region in ["us-east-1", "eu-west-1"] {
        let times: Vec<f64> =
            calls.iter().filter(|c| c["region"] == region).map(|c| c["time"].as_f64().unwrap()).collect();
        assert_eq!(times.len(), 16);
        let rate = (times.len() - 1) as f64 / (times[times.len() - 1] - times[0]);
        assert!((1.5..=2.0).contains(&rate), "{region}: {rate:.2} calls/s");
    }
    // The regions ran side by side: 16 paced calls each take about 8 s, not 16.
    assert!(elapsed < 14.0, "took {elapsed:.1} s");
}

/// The control for the test above: the emulator does throttle a client that does not pace.
#[tokio::test(flavor = "multi_thread")]
async fn the_emulator_throttles_an_unpaced_burst() {
    let emu = Emulator::start();
    let conf = aws_sdk_cloudtrail::config::Builder::from(&emu.sdk().await)
        .retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_cloudtrail::Client::from_conf(conf);
    let calls = (0..6).map(|_| client.lookup_events().send());
    let results = futures::future::join_all(calls).await;
    let throttled = results
        .iter()
        .filter(|r| {
            r.as_ref().err().and_then(|e| aws_sdk_cloudtrail::error::ProvideErrorMetadata::code(e))
                == Some("ThrottlingException")
        })
        .count();
    assert!(throttled >= 3, "6 calls at once: at most 2 fit the bucket, got {throttled} throttled");
}

#[test]
fn bad_input_is_refused_before_any_aws_call() {
    let (_dir, profile) = test_profile();
    let emu = Emulator::start();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["investigate", "--since", "91d"], "at most 90 days"),
        (vec!["investigate", "--start", "2026-11-27T10:00:00Z", "--end", "2026-11-27T09:00:00Z"], "not after --start"),
        (vec!["investigate", "--start", "last tuesday"], "RFC 3339"),
        (
            vec!["investigate", "-p", &profile, "--detection", "lookback-destructiv"],
            "did you mean lookback-destructive",
        ),
        (vec!["investigate", "--principal", "arn:aws:sts"], "ARN pattern"),
        (vec!["investigate", "--principal", "role/with/slashes"], "name pattern"),
        (vec!["investigate", "--region", "eu-wst"], "--region"),
        (vec!["investigate", "--event", "Delete Bucket"], "--event"),
        (vec!["test", "s3://Not_A_Bucket/x", "--since", "1h"], "not an S3 bucket name"),
        (vec!["test", "s3:/bucket", "--since", "1h"], "expected s3://BUCKET"),
        (vec!["test", "s3://lookback-audit", "--since", "100d"], "at most 90 days"),
        (vec!["test", "s3://lookback-audit"], "give the window"),
        (vec!["test", "logs/", "--since", "1h"], "choose log files in S3"),
    ];
    for (args, expected) in cases {
        let r = emu.ctguard(&args);
        assert_eq!(r.code, 1, "{args:?}\n{}", r.stderr);
        assert!(r.stderr.contains(expected), "{args:?}: expected {expected:?} in\n{}", r.stderr);
    }
    assert!(emu.requests().is_empty(), "bad input reached AWS: {:?}", emu.requests());
}

// ------------------------------------------------------------------------------------------
// ctguard test s3://…
// ------------------------------------------------------------------------------------------

const BUCKET_NAME: &str = "lookback-audit-123456789012";

/// `…/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_ID.json.gz`, delivered `ago` seconds ago.
fn log_key(root: &str, account: &str, region: &str, ago: i64, id: &str) -> String {
    let t = iso(now() - ago); // 2026-11-27T09:05:10Z
    let day = t[..10].replace('-', "/");
    let stamp = format!("{}T{}{}Z", t[..10].replace('-', ""), &t[11..13], &t[14..16]);
    format!("{root}/{account}/CloudTrail/{region}/{day}/{account}_CloudTrail_{region}_{stamp}_{id}.json.gz")
}

fn gzipped(records: &[Value]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json!({"Records": records}).to_string().as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// Log files in both layouts, some delivered in the last two hours and some not, also
/// written to `local` under their keys for a local replay of the same files.
async fn upload_logs(emu: &Emulator, local: &Path) -> Vec<String> {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&emu.sdk().await).force_path_style(true).build(),
    );
    s3.create_bucket().bucket(BUCKET_NAME).send().await.unwrap();
    let single = "cloudtrail/AWSLogs";
    let org = "cloudtrail/AWSLogs/o-abcdefghij";
    let files = [
        (
            log_key(single, ACCOUNT, "us-east-1", 1800, "a1"),
            vec![
                record("us-east-1", 2000, "cloudtrail.amazonaws.com", "StopLogging", ALICE, None),
                record("us-east-1", 1990, "s3.amazonaws.com", "ListBuckets", ALICE, None),
            ],
            true,
        ),
        (
            log_key(single, ACCOUNT, "eu-west-1", 3000, "b2"),
            vec![record("eu-west-1", 3100, "s3.amazonaws.com", "DeleteBucket", AGENT, None)],
            true,
        ),
        (
            log_key(org, "111122223333", "us-east-1", 1200, "c3"),
            vec![
                record("us-east-1", 1300, "ec2.amazonaws.com", "TerminateInstances", MEMBER_ROLE, None),
                record("us-east-1", 1290, "cloudtrail.amazonaws.com", "DeleteTrail", MEMBER_ROLE, Some("AccessDenied")),
            ],
            true,
        ),
        // Delivered before the window: not read.
        (
            log_key(single, ACCOUNT, "us-east-1", 3 * 3600, "old"),
            vec![record("us-east-1", 3 * 3600 + 100, "s3.amazonaws.com", "DeleteBucket", ALICE, None)],
            false,
        ),
        (
            log_key(single, ACCOUNT, "us-east-1", 4 * 86400, "older"),
            vec![record("us-east-1", 4 * 86400 + 100, "s3.amazonaws.com", "DeleteBucket", ALICE, None)],
            false,
        ),
    ];
    let mut read = Vec::new();
    for (key, records, in_window) in files {
        let body = gzipped(&records);
        s3.put_object().bucket(BUCKET_NAME).key(&key).body(body.clone().into()).send().await.unwrap();
        if in_window {
            let path = local.join(&key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
            read.push(key);
        }
    }
    // A digest file beside the logs holds no records and is never listed.
    let digest = log_key(single, ACCOUNT, "us-east-1", 600, "digest").replace("/CloudTrail/", "/CloudTrail-Digest/");
    s3.put_object().bucket(BUCKET_NAME).key(digest).body(b"{}".to_vec().into()).send().await.unwrap();
    read
}

/// The verdicts of a `test --format json` run, without where each record came from.
fn verdicts(doc: &Value) -> Vec<(String, Value)> {
    doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event_id"].as_str().unwrap().to_string(), e["fired"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn test_replays_the_windows_log_files_straight_from_the_bucket() {
    let (_dir, profile) = test_profile();
    let emu = Emulator::start();
    let local = tempfile::tempdir().unwrap();
    let keys = upload_logs(&emu, local.path()).await;

    emu.clear_requests();
    let url = format!("s3://{BUCKET_NAME}/cloudtrail");
    let from_s3 = emu.ctguard(&["test", "-p", &profile, &url, "--since", "2h", "--format", "json"]);
    from_s3.expect(0);
    let s3_doc: Value = serde_json::from_str(&from_s3.stdout).unwrap();
    let from_disk = run(ctguard_cmd().args(["test", "-p", &profile, "--format", "json"]).arg(local.path()));
    from_disk.expect(0);
    let disk_doc: Value = serde_json::from_str(&from_disk.stdout).unwrap();

    // The same records, the same verdicts, in the same order as a local replay of the files.
    assert_eq!(s3_doc["summary"]["files"], 3);
    assert_eq!(s3_doc["summary"]["records"], 5);
    assert_eq!(verdicts(&s3_doc), verdicts(&disk_doc));
    assert_eq!(s3_doc["summary"]["fires"], disk_doc["summary"]["fires"]);
    let origins: BTreeSet<&str> =
        s3_doc["events"].as_array().unwrap().iter().map(|e| e["origin"].as_str().unwrap()).collect();
    let expected: BTreeSet<String> = keys.iter().map(|k| format!("s3://{BUCKET_NAME}/{k}")).collect();
    assert_eq!(origins, expected.iter().map(String::as_str).collect());
    assert!(from_s3.stderr.contains("3 log files"), "{}", from_s3.stderr);

    // Only the window's day folders were listed, and only the read-only policy was needed.
    let requests = emu.requests();
    let old_day = iso(now() - 4 * 86400)[..10].replace('-', "%2F");
    assert!(requests.iter().all(|q| !q.query.contains(&old_day)), "listed a day outside the window");
    let policy = run(ctguard_cmd().args(["permissions", "--read-only"]));
    for action in requests.iter().map(Request::iam_action).collect::<BTreeSet<_>>() {
        assert!(policy.stdout.contains(&format!("\"{action}\"")), "{action} is not in the read-only policy");
    }

    // The human output is the local replay's, file names aside.
    let human = emu.ctguard(&["test", "-p", &profile, &url, "--since", "2h", "--color", "never"]);
    human.expect(0);
    let local_human = run(ctguard_cmd().args(["test", "-p", &profile, "--color", "never"]).arg(local.path()));
    let strip = |text: &str| -> Vec<String> {
        text.lines().map(|l| l.split("  [").next().unwrap().replace(&local.path().display().to_string(), "")).collect()
    };
    let s3_lines: Vec<String> =
        strip(&human.stdout).into_iter().map(|l| l.replace(&format!("s3://{BUCKET_NAME}/"), "/")).collect();
    assert_eq!(s3_lines, strip(&local_human.stdout));

    // With no URL, --since reads the profile's own audit bucket, under its trail prefix.
    let own = emu.ctguard(&["test", "-p", &profile, "--since", "2h", "--format", "json"]);
    own.expect(0);
    let own_doc: Value = serde_json::from_str(&own.stdout).unwrap();
    assert_eq!(verdicts(&own_doc), verdicts(&s3_doc));

    // A prefix down to one organization account and region reads only that.
    let narrow = format!("s3://{BUCKET_NAME}/cloudtrail/AWSLogs/o-abcdefghij/111122223333/CloudTrail/us-east-1");
    let r = emu.ctguard(&["test", "-p", &profile, &narrow, "--since", "2h", "--format", "json", "--summary"]);
    r.expect(0);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!((doc["summary"]["files"].as_u64(), doc["summary"]["records"].as_u64()), (Some(1), Some(2)));

    // A bucket that does not exist is an error that names it.
    let r = emu.ctguard(&["test", "-p", &profile, "s3://no-such-bucket-here/x", "--since", "1h"]);
    r.expect(1);
    assert!(r.stderr.contains("s3://no-such-bucket-here"), "{}", r.stderr);
}
