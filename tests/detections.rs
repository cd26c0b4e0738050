//! Every shipped detection against CloudTrail records, in both directions.
//!
//! `tests/detections/samples/<id>.json` holds, for one detection (an EventBridge rule by name or a
//! metric-filter alarm by id), records that must fire it, close look-alikes that must not (each
//! with the reason), and optionally `gaps`: records on which the deployed pattern disagrees with
//! what the detection is for (a miss, or a documented false positive). Gaps are not asserted;
//! they are printed (`cargo test --test detections -- --nocapture`), each marked as still open or
//! as resolved by a pattern change (then move the record to `fires` or `silent`).
//!
//! The patterns are the deployed ones: the profiles resolved for account 123456789012, with the
//! agent principal clause merged in. Rules see the EventBridge event a record becomes
//! (`envelope`); alarms see the raw record, as the trail's log group receives it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ctguard::detect::eventbridge::{EventPattern, envelope};
use ctguard::detect::logfilter::FilterPattern;
use ctguard::profile::{self, Profile, Runtime};
use serde::Deserialize;
use serde_json::Value;

/// Profiles whose detections must all have samples. cis-aws-foundations deploys the same CIS
/// texts under the same alarm ids, so `cis-4.N.json` is checked against both.
const PROFILES: [&str; 2] = ["ai-agent-guard", "cis-aws-foundations"];

const ACCOUNT: &str = "123456789012";

/// CloudTrail record fields every sample record must carry (CloudTrail record contents reference).
const REQUIRED_FIELDS: [&str; 10] = [
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "eventID",
    "eventType",
    "recipientAccountId",
];

/// Fields every event a service sends EventBridge itself carries (EventBridge events reference,
/// "Event structure"), as S3's "Object Deleted" does (S3 User Guide, "EventBridge event message
/// structure").
const EVENT_FIELDS: [&str; 9] =
    ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"];

/// The documented `eventType` values.
const EVENT_TYPES: [&str; 5] =
    ["AwsApiCall", "AwsServiceEvent", "AwsConsoleAction", "AwsConsoleSignIn", "AwsCloudTrailInsight"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sample {
    detection: String,
    kind: Kind,
    fires: Vec<Value>,
    silent: Vec<Silent>,
    #[serde(default)]
    gaps: Vec<Gap>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Rule,
    Alarm,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Silent {
    why: String,
    record: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Gap {
    why: String,
    expected: Expected,
    record: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Expected {
    Fires,
    Silent,
}

/// One deployed detection of one profile, parsed the way AWS would evaluate it.
struct Detection {
    profile: String,
    id: String,
    kind: Kind,
    /// The pattern as deployed, for failure messages.
    text: String,
    matcher: Matcher,
}

enum Matcher {
    Rule(EventPattern),
    Alarm(FilterPattern),
}

impl Detection {
    fn fires(&self, record: &Value) -> bool {
        match &self.matcher {
            Matcher::Rule(pattern) => pattern.matches(&envelope(record)),
            Matcher::Alarm(pattern) => pattern.matches(record),
        }
    }

    fn label(&self) -> String {
        let kind = match self.kind {
            Kind::Rule => "rule",
            Kind::Alarm => "alarm",
        };
        format!("{}: {kind} {}", self.profile, self.id)
    }
}

fn runtime() -> Runtime {
    Runtime {
        account_id: ACCOUNT.into(),
        partition: "aws".into(),
        region: "us-east-1".into(),
        enabled_regions: vec!["us-east-1".into()],
        organization: None,
    }
}

/// The profile as shipped, read from the repository (not the copy built into the library, which
/// can lag behind an edit until the next rebuild) and resolved as `apply` would resolve it.
fn resolved(name: &str) -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles").join(format!("{name}.toml"));
    let loaded = profile::load(path.to_str().unwrap()).unwrap_or_else(|e| panic!("loading {name}: {e:#}"));
    loaded.resolve(&runtime(), &Default::default()).unwrap_or_else(|e| panic!("resolving {name}: {e}"))
}

fn detections() -> Vec<Detection> {
    let mut out = Vec::new();
    for name in PROFILES {
        let profile = resolved(name);
        for rule in profile.events.iter().flat_map(|e| &e.rules) {
            let pattern = EventPattern::parse(&rule.pattern)
                .unwrap_or_else(|e| panic!("{name}: rule {}: deployed pattern rejected: {e}", rule.name));
            out.push(Detection {
                profile: name.to_string(),
                id: rule.name.clone(),
                kind: Kind::Rule,
                text: rule.pattern.to_string(),
                matcher: Matcher::Rule(pattern),
            });
        }
        for alarm in &profile.alarms {
            let pattern = FilterPattern::parse(&alarm.pattern)
                .unwrap_or_else(|e| panic!("{name}: alarm {}: deployed pattern rejected: {e}", alarm.id));
            out.push(Detection {
                profile: name.to_string(),
                id: alarm.id.clone(),
                kind: Kind::Alarm,
                text: alarm.pattern.clone(),
                matcher: Matcher::Alarm(pattern),
            });
        }
    }
    out
}

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/detections/samples")
}

/// Every sample file, by file stem. Malformed files fail here, naming the file.
fn samples() -> BTreeMap<String, (PathBuf, Sample)> {
    let dir = samples_dir();
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let sample: Sample =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not a sample file: {e}", path.display()));
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        out.insert(stem, (path, sample));
    }
    assert!(!out.is_empty(), "no sample files in {}", dir.display());
    out
}

fn file_name(path: &Path) -> String {
    format!("tests/detections/samples/{}", path.file_name().unwrap().to_string_lossy())
}

/// "ec2.amazonaws.com TerminateInstances", for messages.
fn describe(record: &Value) -> String {
    if ctguard::detect::eventbridge::is_event(record) {
        let field = |p: &str| record.pointer(p).and_then(Value::as_str).unwrap_or("<missing>").to_string();
        return format!(
            "{} {} s3://{}/{}",
            field("/source"),
            field("/detail-type"),
            field("/detail/bucket/name"),
            field("/detail/object/key")
        );
    }
    let field = |name: &str| record.get(name).and_then(Value::as_str).unwrap_or("<missing>");
    let mut text = format!("{} {}", field("eventSource"), field("eventName"));
    if let Some(code) = record.get("errorCode").and_then(Value::as_str) {
        let _ = write!(text, " ({code})");
    }
    if let Some(arn) = record.pointer("/userIdentity/arn").and_then(Value::as_str) {
        let _ = write!(text, " by {arn}");
    }
    text
}

/// Problems with a record's shape: the fields CloudTrail always writes, with the right types;
/// for an event a service sends EventBridge itself, the fields of every such event.
fn shape_problems(record: &Value) -> Vec<String> {
    let Some(object) = record.as_object() else { return vec!["not a JSON object".into()] };
    if ctguard::detect::eventbridge::is_event(record) {
        let mut problems: Vec<String> =
            EVENT_FIELDS.iter().filter(|f| !object.contains_key(**f)).map(|f| format!("no {f}")).collect();
        if record.get("account").and_then(Value::as_str) != Some(ACCOUNT) {
            problems.push(format!("account is not {ACCOUNT}"));
        }
        let time = record.get("time").and_then(Value::as_str).unwrap_or("");
        if !(time.len() == 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z')) {
            problems.push(format!("time {time:?} is not yyyy-MM-ddTHH:mm:ssZ"));
        }
        return problems;
    }
    let insight = record.get("eventType").and_then(Value::as_str) == Some("AwsCloudTrailInsight");
    let mut problems: Vec<String> = if insight {
        insight_shape_problems(record)
    } else {
        REQUIRED_FIELDS.iter().filter(|f| !object.contains_key(**f)).map(|f| format!("no {f}")).collect()
    };
    if !insight && !record.get("userIdentity").is_some_and(Value::is_object) {
        problems.push("userIdentity is not an object".into());
    }
    match record.get("eventType").and_then(Value::as_str) {
        Some(t) if EVENT_TYPES.contains(&t) => {}
        other => problems.push(format!("eventType {other:?} is not one of {EVENT_TYPES:?}")),
    }
    let time = record.get("eventTime").and_then(Value::as_str).unwrap_or("");
    let looks_like_time = time.len() == 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z');
    if !looks_like_time {
        problems.push(format!("eventTime {time:?} is not yyyy-MM-ddTHH:mm:ssZ"));
    }
    if record.get("recipientAccountId").and_then(Value::as_str) != Some(ACCOUNT) {
        problems.push(format!("recipientAccountId is not {ACCOUNT}"));
    }
    problems
}

/// An Insights event names no caller and no API call of its own: what it flags is under
/// `insightDetails` (CloudTrail User Guide, "CloudTrail Insights events record contents").
fn insight_shape_problems(record: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for f in ["eventVersion", "eventTime", "awsRegion", "eventID", "sharedEventID", "insightDetails"] {
        if record.get(f).is_none() {
            problems.push(format!("no {f}"));
        }
    }
    if record.get("eventCategory").and_then(Value::as_str) != Some("Insight") {
        problems.push("eventCategory is not \"Insight\"".into());
    }
    let details = &record["insightDetails"];
    for f in ["state", "eventSource", "eventName", "insightType", "insightContext"] {
        if details.get(f).is_none() {
            problems.push(format!("no insightDetails.{f}"));
        }
    }
    if !matches!(details["state"].as_str(), Some("Start" | "End")) {
        problems.push("insightDetails.state is not Start or End".into());
    }
    if !matches!(details["insightType"].as_str(), Some("ApiCallRateInsight" | "ApiErrorRateInsight")) {
        problems.push("insightDetails.insightType is not ApiCallRateInsight or ApiErrorRateInsight".into());
    }
    problems
}

#[test]
fn every_shipped_detection_has_a_sample_file_and_every_sample_a_detection() {
    let detections = detections();
    let samples = samples();
    let mut problems = Vec::new();

    for d in &detections {
        match samples.get(&d.id) {
            None => problems.push(format!(
                "{}: no sample file: add tests/detections/samples/{}.json with records that fire it and \
                 look-alikes that do not",
                d.label(),
                d.id
            )),
            Some((path, sample)) if sample.kind != d.kind => problems.push(format!(
                "{}: {} says kind {:?}, but the detection is a {:?}",
                d.label(),
                file_name(path),
                sample.kind,
                d.kind
            )),
            Some(_) => {}
        }
    }
    for (stem, (path, sample)) in &samples {
        if sample.detection != *stem {
            problems.push(format!(
                "{}: \"detection\" is {:?}, but the file is named for {stem:?}",
                file_name(path),
                sample.detection
            ));
        }
        if !detections.iter().any(|d| d.id == *stem) {
            problems.push(format!(
                "{}: no profile in {PROFILES:?} ships a detection {stem:?} (renamed or removed?)",
                file_name(path)
            ));
        }
        if sample.fires.is_empty() || sample.silent.is_empty() {
            problems.push(format!("{}: needs at least one record in \"fires\" and one in \"silent\"", file_name(path)));
        }
    }
    assert!(problems.is_empty(), "{} problem(s):\n  {}", problems.len(), problems.join("\n  "));
}

#[test]
fn sample_records_have_the_cloudtrail_record_shape() {
    let mut problems = Vec::new();
    for (path, sample) in samples().values() {
        let records = sample
            .fires
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("fires[{i}]"), r))
            .chain(sample.silent.iter().enumerate().map(|(i, s)| (format!("silent[{i}]"), &s.record)))
            .chain(sample.gaps.iter().enumerate().map(|(i, g)| (format!("gaps[{i}]"), &g.record)));
        for (at, record) in records {
            for problem in shape_problems(record) {
                problems.push(format!("{} {at} ({}): {problem}", file_name(path), describe(record)));
            }
        }
    }
    assert!(problems.is_empty(), "{} malformed record(s):\n  {}", problems.len(), problems.join("\n  "));
}

#[test]
fn deployed_patterns_fire_on_their_samples_and_stay_silent_on_look_alikes() {
    let detections = detections();
    let samples = samples();
    let mut failures = Vec::new();
    let mut checked = 0;

    for d in &detections {
        let Some((path, sample)) = samples.get(&d.id) else { continue };
        let file = file_name(path);
        for (i, record) in sample.fires.iter().enumerate() {
            checked += 1;
            if !d.fires(record) {
                failures.push(format!(
                    "{}: {file} fires[{i}] {}: expected to fire, did not\n      pattern: {}",
                    d.label(),
                    describe(record),
                    d.text
                ));
            }
        }
        for (i, case) in sample.silent.iter().enumerate() {
            checked += 1;
            if d.fires(&case.record) {
                failures.push(format!(
                    "{}: {file} silent[{i}] {} ({}): fired, expected silence\n      pattern: {}",
                    d.label(),
                    describe(&case.record),
                    case.why,
                    d.text
                ));
            }
        }
    }
    assert!(checked > 0, "no sample record was checked");
    assert!(failures.is_empty(), "{} of {checked} checks failed:\n  {}", failures.len(), failures.join("\n  "));
}

/// Not an assertion: the list of known disagreements between the deployed patterns and what
/// the detections are for, printed so it stays visible, with each gap's current status.
#[test]
fn known_gaps_are_listed() {
    let detections = detections();
    let samples = samples();
    let mut report = String::new();
    let (mut open, mut resolved) = (0, 0);

    for d in &detections {
        let Some((path, sample)) = samples.get(&d.id) else { continue };
        for (i, gap) in sample.gaps.iter().enumerate() {
            let wanted = gap.expected == Expected::Fires;
            let status = if d.fires(&gap.record) == wanted {
                resolved += 1;
                "RESOLVED (the pattern now does what the gap asks: move the record to fires/silent)"
            } else {
                open += 1;
                "open"
            };
            let expected = if wanted { "should fire, does not" } else { "should stay silent, fires" };
            let _ = writeln!(
                report,
                "  [{status}] {}: {} gaps[{i}] {}: {expected}\n      {}",
                d.label(),
                file_name(path),
                describe(&gap.record),
                gap.why
            );
        }
    }
    println!("known detection gaps: {open} open, {resolved} resolved\n{report}");
}

/// `ctguard test`, the real binary, over the samples of ai-agent-guard written as a gzipped
/// CloudTrail log file and as JSON lines on stdin: every record that must fire its detection is
/// reported with it, no look-alike is, and the counts add up.
#[test]
fn ctguard_test_reports_the_samples_as_the_suite_expects() {
    use std::io::Write;

    let samples = samples();
    // Every detection is deployed: the alarms on S3 data events too, since the trail records them.
    let ids: Vec<String> = detections().into_iter().filter(|d| d.profile == "ai-agent-guard").map(|d| d.id).collect();
    // (record, detection, must fire)
    let mut cases: Vec<(Value, String, bool)> = Vec::new();
    for id in &ids {
        let (_, sample) = &samples[id];
        cases.extend(sample.fires.iter().map(|r| (r.clone(), id.clone(), true)));
        cases.extend(sample.silent.iter().map(|s| (s.record.clone(), id.clone(), false)));
    }
    let records: Vec<&Value> = cases.iter().map(|(r, _, _)| r).collect();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("123456789012_CloudTrail_us-east-1_20261127T0000Z_x.json.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(serde_json::json!({ "Records": records }).to_string().as_bytes()).unwrap();
    std::fs::write(&log, gz.finish().unwrap()).unwrap();
    let lines: String = records.iter().map(|r| format!("{r}\n")).collect();

    let from_file = std::process::Command::new(env!("CARGO_BIN_EXE_ctguard"))
        .args(["test", "--format", "json", "--jobs", "2"])
        .arg(dir.path())
        .output()
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ctguard"))
        .args(["test", "--format", "json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    let from_stdin = child.wait_with_output().unwrap();

    for (how, out) in [("log file", from_file), ("stdin", from_stdin)] {
        assert!(out.status.success(), "{how}: {}", String::from_utf8_lossy(&out.stderr));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["format_version"], "1");
        assert_eq!(doc["summary"]["records"], cases.len());
        let listed: Vec<&str> =
            doc["detections"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
        assert_eq!(listed, ids, "{how}: the detections replayed are the deployed ones, in profile order");
        let mut fired: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for event in doc["events"].as_array().unwrap() {
            let ids = event["fired"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string());
            fired.insert(event["index"].as_u64().unwrap(), ids.collect());
        }
        let mut problems = Vec::new();
        for (i, (record, id, must_fire)) in cases.iter().enumerate() {
            let did = fired.get(&(i as u64 + 1)).is_some_and(|f| f.contains(id));
            if did != *must_fire {
                problems.push(format!("{how}: record {} ({}): {id} fired = {did}", i + 1, describe(record)));
            }
        }
        let total: u64 = doc["summary"]["fires"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(total, fired.values().map(|f| f.len() as u64).sum::<u64>(), "{how}: counts add up");
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
