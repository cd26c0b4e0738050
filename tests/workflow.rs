//! Terraform's workflow: `validate` with no AWS at all, saved plans applied exactly as
//! reviewed, and `destroy` of what the profile owns.

mod common;

use std::net::TcpListener;
use std::path::Path;

use common::*;
use serde_json::Value;

/// ctguard with no credentials and an endpoint that is listened on but never answered: any
/// AWS call would show up as a connection to it.
fn offline(args: &[&str], dir: &Path) -> (Run, usize) {
    let trap = TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", trap.local_addr().unwrap());
    let mut cmd = ctguard_cmd();
    cmd.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY").env("AWS_ENDPOINT_URL", &endpoint);
    let run = run(cmd.args(args).current_dir(dir));
    let connections = std::iter::from_fn(|| trap.accept().ok()).count();
    (run, connections)
}

fn export(dir: &Path) {
    run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard"]).arg(dir)).expect(0);
}

#[test]
fn validate_checks_the_profile_and_templates_with_no_aws_call() {
    let dir = tempfile::tempdir().unwrap();
    export(dir.path());
    let profile = "profiles/ai-agent-guard.toml";

    let (ok, calls) = offline(&["validate", "-p", profile], dir.path());
    ok.expect(0);
    assert_eq!(calls, 0);
    assert!(ok.stdout.contains("is valid: "), "{}", ok.stdout);

    let (ok, calls) = offline(&["validate", "-p", profile, "--format", "json"], dir.path());
    ok.expect(0);
    assert_eq!(calls, 0);
    let doc: Value = serde_json::from_str(&ok.stdout).unwrap();
    assert_eq!((doc["command"].as_str(), doc["valid"].as_bool()), (Some("validate"), Some(true)));
    assert!(doc["resources"].as_u64().unwrap() > 50, "{doc}");

    // A bad key in the profile and a malformed template are both named, still offline.
    let path = dir.path().join(profile);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("retention_days = 365", "retention_days = 366", 1)).unwrap();
    let trust = dir.path().join("policies/cloudtrail-logs-trust.json");
    std::fs::write(&trust, "{\"Version\": \"2012-10-17\",}").unwrap();
    let (bad, calls) = offline(&["validate", "-p", profile, "--format", "json"], dir.path());
    bad.expect(1);
    assert_eq!(calls, 0);
    assert!(bad.stderr.contains("cloudwatch_logs.retention_days"), "{}", bad.stderr);
    assert!(bad.stderr.contains("policies/cloudtrail-logs-trust.json"), "{}", bad.stderr);
    let doc: Value = serde_json::from_str(&bad.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "invalid-profile");
    assert_eq!(doc["error"]["problems"].as_array().unwrap().len(), 2, "{doc}");

    // A variable set on the command line is checked like one in the file.
    let (bad, calls) = offline(&["validate", "-p", profile, "--var", "trail_name=bad name"], dir.path());
    bad.expect(1);
    assert_eq!(calls, 0);
    assert!(bad.stderr.contains("trail.name"), "{}", bad.stderr);
}

const ALARM: &str = "ctguard-cis-4.3-root-account-usage";

async fn set_retention(emu: &Emulator, days: i32) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&emu.sdk().await);
    logs.put_retention_policy().log_group_name(LOG_GROUP).retention_in_days(days).send().await.unwrap();
}

/// The planned resources of a saved plan that are not no-ops.
fn planned(file: &Path) -> Vec<String> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(doc["format_version"], "1");
    assert_eq!(doc["account"], ACCOUNT);
    assert_eq!(doc["profile"]["name"], "ai-agent-guard");
    assert_eq!(doc["profile"]["hash"].as_str().map(str::len), Some(64), "{}", doc["profile"]);
    doc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["change"]["action"] != "no-op")
        .map(|r| r["address"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_applied_exactly_or_refused_when_anything_moved() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    export(dir.path());
    let profile = dir.path().join("profiles/ai-agent-guard.toml");
    let profile_arg = profile.to_str().unwrap();
    emu.ctguard(&["apply", "--auto-approve", "-p", profile_arg]).expect(0);

    // Two resources drift; the saved plan repairs exactly those.
    set_retention(&emu, 30).await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&emu.sdk().await);
    cloudwatch.delete_alarms().alarm_names(ALARM).send().await.unwrap();
    let file = dir.path().join("reviewed.plan.json");
    let plan_run = emu.ctguard(&["plan", "-p", profile_arg, "--out", file.to_str().unwrap()]);
    plan_run.expect(0);
    assert!(plan_run.stderr.contains("Saved the plan to"), "{}", plan_run.stderr);
    let mut changes = planned(&file);
    changes.sort();
    assert_eq!(changes, [format!("cloudwatch_alarm.{ALARM}"), format!("logs_log_group.{LOG_GROUP}")]);
    let apply_saved = || emu.ctguard(&["apply", file.to_str().unwrap()]);

    // Someone changes a planned resource through the API: the plan is stale, nothing is written.
    set_retention(&emu, 60).await;
    emu.clear_requests();
    let stale = apply_saved();
    stale.expect(1);
    assert!(stale.stderr.contains("refusing to apply the saved plan"), "{}", stale.stderr);
    assert!(
        stale.stderr.contains(&format!("logs_log_group.{LOG_GROUP} ({REGION}): its live state changed")),
        "{}",
        stale.stderr
    );
    assert!(emu.mutating_requests().is_empty(), "{:?}", emu.mutating_requests());
    set_retention(&emu, 30).await;

    // The profile is edited after the plan was made: refused too.
    let text = std::fs::read_to_string(&profile).unwrap();
    std::fs::write(&profile, text.replacen("retention_days = 365", "retention_days = 400", 1)).unwrap();
    emu.clear_requests();
    let edited = apply_saved();
    edited.expect(1);
    assert!(
        edited.stderr.contains("the profile \"ai-agent-guard\" changed since the plan was made"),
        "{}",
        edited.stderr
    );
    assert!(emu.mutating_requests().is_empty(), "{:?}", emu.mutating_requests());
    // A comment is not a change to what the profile declares.
    std::fs::write(&profile, format!("# reviewed\n{text}")).unwrap();

    // Back to what the plan was computed from: it applies, making exactly the planned writes.
    emu.clear_requests();
    let applied = apply_saved();
    applied.expect(0);
    assert!(applied.stdout.contains("1 added, 1 changed, 0 destroyed"), "{}", applied.stdout);
    let mut writes: Vec<(String, String)> =
        emu.mutating_requests().iter().map(|r| (r.iam_action(), r.params.to_string())).collect();
    writes.sort();
    let touched = |w: &(String, String)| w.1.contains(LOG_GROUP) || w.1.contains(ALARM);
    assert!(writes.iter().all(touched), "writes beyond the plan: {writes:?}");
    let actions: Vec<&str> = writes.iter().map(|w| w.0.as_str()).collect();
    assert_eq!(actions, ["cloudwatch:PutMetricAlarm", "logs:PutRetentionPolicy"]);
    emu.ctguard(&["plan", "-p", profile_arg, "--detailed-exitcode"]).expect(0);

    // Applied once, the plan is spent: the live state it was computed from is gone.
    apply_saved().expect(1);
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_removes_what_the_profile_owns_and_audit_data_only_when_asked() {
    let emu = Emulator::start();
    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    let conf = emu.sdk().await;
    let (s3, logs) = (aws_sdk_s3::Client::new(&conf), aws_sdk_cloudwatchlogs::Client::new(&conf));
    let (cloudtrail, kms) = (aws_sdk_cloudtrail::Client::new(&conf), aws_sdk_kms::Client::new(&conf));
    let (sns, cloudwatch) = (aws_sdk_sns::Client::new(&conf), aws_sdk_cloudwatch::Client::new(&conf));
    s3.put_object()
        .bucket(BUCKET)
        .key("cloudtrail/AWSLogs/x.json.gz")
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap();
    // Not ctguard's: a topic made by hand, and an alarm whose ownership tag someone removed.
    let theirs = sns.create_topic().name("hand-made-alerts").send().await.unwrap().topic_arn().unwrap().to_string();
    let alarm_arn = format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ALARM}");
    cloudwatch.untag_resource().resource_arn(&alarm_arn).tag_keys("ctguard:profile").send().await.unwrap();

    let run = emu.ctguard(&["destroy", "--auto-approve"]);
    run.expect(0);
    assert!(run.stdout.contains(&format!("sns_topic.ctguard-alerts will be destroyed")), "{}", run.stdout);
    assert!(run.stdout.contains("Destroy complete! Resources: "), "{}", run.stdout);
    assert!(!run.stdout.contains("Apply complete"), "{}", run.stdout);
    let kept = format!("s3_bucket.{BUCKET}: kept: deleting it deletes the bucket and every log in it");
    assert!(run.stdout.contains(&kept), "{}", run.stdout);
    // Deleting the trail loses coverage: it stays, and so does the role it delivers logs with.
    assert!(
        run.stdout.contains(&format!("cloudtrail_trail.{TRAIL}: kept: deleting it deletes the trail")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("iam_role.{ROLE}: kept: cloudtrail_trail.{TRAIL} stays and needs it")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!("cloudwatch_alarm.{ALARM}: not created by ctguard")), "{}", run.stdout);
    cloudtrail.get_trail().name(TRAIL).send().await.expect("the trail stays");
    let topics = sns.list_topics().send().await.unwrap();
    let arns: Vec<&str> = topics.topics().iter().filter_map(|t| t.topic_arn()).collect();
    assert_eq!(arns, [theirs.as_str()], "ctguard's topic is gone, the hand-made one stays");
    let alarms = cloudwatch.describe_alarms().send().await.unwrap();
    let names: Vec<&str> = alarms.metric_alarms().iter().filter_map(|a| a.alarm_name()).collect();
    assert_eq!(names, [ALARM], "only the alarm ctguard no longer owns is left");
    let iam = aws_sdk_iam::Client::new(&conf);
    iam.get_role().role_name(ROLE).send().await.expect("the log delivery role stays");
    // Audit data stays.
    for bucket in [BUCKET, ACCESS_BUCKET] {
        s3.head_bucket().bucket(bucket).send().await.unwrap_or_else(|e| panic!("{bucket}: {e:?}"));
    }
    let groups = logs.describe_log_groups().log_group_name_prefix(LOG_GROUP).send().await.unwrap();
    assert_eq!(groups.log_groups().len(), 1);
    let key = kms.describe_key().key_id(KEY_ALIAS).send().await.unwrap();
    assert_eq!(key.key_metadata().unwrap().key_state().map(|s| s.as_str()), Some("Enabled"));

    let run = emu.ctguard(&["destroy", "--auto-approve", "--allow-data-loss"]);
    run.expect(0);
    assert!(run.stdout.contains("! data loss: deletes the bucket and every log in it"), "{}", run.stdout);
    assert!(cloudtrail.get_trail().name(TRAIL).send().await.is_err(), "the trail is gone");
    assert!(iam.get_role().role_name(ROLE).send().await.is_err(), "the log delivery role is gone");
    for bucket in [BUCKET, ACCESS_BUCKET] {
        assert!(s3.head_bucket().bucket(bucket).send().await.is_err(), "{bucket} is gone");
    }
    let groups = logs.describe_log_groups().log_group_name_prefix(LOG_GROUP).send().await.unwrap();
    assert!(groups.log_groups().is_empty());
    assert!(kms.describe_key().key_id(KEY_ALIAS).send().await.is_err(), "the alias is gone");
    // What ctguard does not own is still there, and nothing is left to destroy.
    assert_eq!(cloudwatch.describe_alarms().alarm_names(ALARM).send().await.unwrap().metric_alarms().len(), 1);
    sns.get_topic_attributes().topic_arn(&theirs).send().await.unwrap();
    let again = emu.ctguard(&["destroy", "--auto-approve", "--allow-data-loss"]);
    again.expect(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    let json = emu.ctguard(&["destroy", "--auto-approve", "--format", "json"]);
    json.expect(0);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect(&json.stdout);
    assert_eq!((doc["command"].as_str(), doc["status"].as_str()), (Some("destroy"), Some("complete")));
}

/// Validates `doc` against the SARIF 2.1.0 schema; the validator's complaint on failure.
fn sarif_schema_errors(doc: &Path) -> Option<String> {
    let schema = repo().join("tests/sarif/sarif-schema-2.1.0.json");
    let script = "import json, sys, jsonschema\n\
                  schema = json.load(open(sys.argv[1]))\n\
                  jsonschema.Draft7Validator.check_schema(schema)\n\
                  errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(json.load(open(sys.argv[2])))]\n\
                  print('\\n'.join(errors))\n\
                  sys.exit(1 if errors else 0)";
    let out = std::process::Command::new(repo().join(".venv/bin/python"))
        .args(["-c", script])
        .arg(&schema)
        .arg(doc)
        .output()
        .expect("the venv's python runs");
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&out.stderr));
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_writes_sarif_the_schema_accepts_and_an_html_page_a_browser_renders() {
    let emu = Emulator::start();
    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    set_retention(&emu, 30).await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&emu.sdk().await);
    cloudwatch.delete_alarms().alarm_names(ALARM).send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ctguard.sarif");
    let page = dir.path().join("ctguard.html");
    let args = ["verify", "--sarif", file.to_str().unwrap(), "--html", page.to_str().unwrap(), "--format", "json"];
    emu.ctguard(&args).expect(2);
    page_renders(&page, dir.path());
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(sarif_schema_errors(&file), None);

    let run = &doc["runs"][0];
    let rules: Vec<&str> =
        run["tool"]["driver"]["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(
        rules.contains(&"ctguard/drift/logs_log_group") && rules.contains(&"ctguard/drift/cloudwatch_alarm"),
        "{rules:?}"
    );
    let unique: std::collections::BTreeSet<&&str> = rules.iter().collect();
    assert_eq!(unique.len(), rules.len(), "one rule per kind of finding");
    let drifted: Vec<(&str, &str)> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ruleId"].as_str().unwrap().starts_with("ctguard/drift/"))
        .map(|r| {
            (r["locations"][0]["logicalLocations"][0]["name"].as_str().unwrap(), r["message"]["text"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        drifted,
        [
            (
                format!("logs_log_group.{LOG_GROUP}").as_str(),
                format!("logs_log_group.{LOG_GROUP} ({REGION}) has drifted: retention_in_days").as_str()
            ),
            (
                format!("cloudwatch_alarm.{ALARM}").as_str(),
                format!("cloudwatch_alarm.{ALARM} ({REGION}) is missing").as_str()
            ),
        ]
    );

    // The schema is no rubber stamp: a SARIF log of another version is refused.
    let mut wrong = doc.clone();
    wrong["version"] = "2.0.0".into();
    std::fs::write(&file, wrong.to_string()).unwrap();
    assert!(sarif_schema_errors(&file).is_some_and(|e| e.contains("2.1.0")));
}

#[test]
fn test_writes_an_html_page_of_fires_over_time_a_browser_renders() {
    // Every sample record, spread over the hours of one day, as one CloudTrail log file.
    let mut records = Vec::new();
    for entry in std::fs::read_dir(repo().join("tests/detections/samples")).unwrap() {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        for kind in ["fires", "silent"] {
            let listed = doc[kind].as_array().into_iter().flatten();
            records.extend(listed.map(|r| r.get("record").unwrap_or(r).clone()));
        }
    }
    for (i, r) in records.iter_mut().enumerate() {
        // S3's own EventBridge events carry their time as `time`, CloudTrail records as `eventTime`.
        let field = if ctguard::detect::eventbridge::is_event(r) { "time" } else { "eventTime" };
        r[field] = format!("2026-11-27T{:02}:{:02}:00Z", i % 24, i % 60).into();
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    std::fs::write(&log, serde_json::json!({ "Records": records }).to_string()).unwrap();
    let page = dir.path().join("test.html");
    let run = ctguard_cmd()
        .args(["test", "--summary", "--html", page.to_str().unwrap(), log.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    let (dom, colours, present) = in_browser(&page, dir.path(), &[[0xbc, 0x4c, 0x00], [0xff, 0xf1, 0xe5]]);
    assert!(dom.contains("<title>ctguard test: profile ai-agent-guard</title>"), "{dom}");
    assert!(dom.contains(&format!(r#"<b id="count-records">{}</b>"#, records.len())), "{dom}");
    let header =
        dom.lines().find(|l| l.contains("<th>detection</th><th>severity</th>")).expect("the timeline's header");
    assert!(header.contains(">2026-11-27 00:00</th>") && header.contains(">2026-11-27 23:00</th>"), "{header}");
    assert_eq!(header.matches(r#"<th class="time">"#).count(), 24, "one column per hour: {header}");
    let row = dom
        .lines()
        .find(|l| l.contains(">rule ctguard-audit-log-deletion</th>"))
        .expect("a detection that fired has its row");
    assert!(row.contains(r#"class="heat h"#), "{row}");
    assert!(colours > 20, "a blank page: {colours} colours");
    assert!(present.iter().all(|p| *p), "the busiest cells in the darkest shade, the quietest in the lightest");
}

/// Renders the page in headless Chromium (installed by scripts/browser-setup) to a screenshot
/// and to its DOM: the page must draw (many colours, the states' among them) and carry
/// the expected title and counts.
fn page_renders(page: &Path, dir: &Path) {
    let (dom, colours, present) = in_browser(page, dir, &[[0xcf, 0x22, 0x2e], [0xda, 0xfb, 0xe1]]);
    assert!(
        dom.contains(&format!("<title>ctguard verify: profile ai-agent-guard in account {ACCOUNT} ({REGION})</title>")),
        "{dom}"
    );
    assert!(dom.contains(r#"<b id="count-drifted">2</b>"#), "{dom}");
    let row = dom
        .lines()
        .find(|l| l.starts_with(&format!("<tr><th>cloudwatch_alarm.{ALARM}</th>")))
        .expect("the alarm's row");
    assert_eq!(row.matches(r#"class="cell drift""#).count(), 1, "{row}");
    assert!(dom.contains(">365</code>") && dom.contains(">30</code>"), "the retention's before and after: {dom}");

    assert!(colours > 20, "a blank page: {colours} colours");
    assert!(present.iter().all(|p| *p), "the failed verdict in red and the matrix's passing cells in green");
}

/// The page's DOM after Chromium loaded it, how many colours its screenshot has, and whether
/// each of `wanted` (RGB) is among them.
fn in_browser(page: &Path, dir: &Path, wanted: &[[u8; 3]]) -> (String, usize, Vec<bool>) {
    let chromium = |extra: &[&str]| {
        let out = std::process::Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"])
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .env("HOME", dir)
            .output()
            .expect("chromium is installed (scripts/browser-setup installs it from the distribution's packages)");
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shot = dir.join("page.png");
    chromium(&["--window-size=1280,2400", &format!("--screenshot={}", shot.display())]);
    let dom = chromium(&["--dump-dom"]);
    // Decode the PNG (8-bit RGB or RGBA, as Chromium writes it) and count its colours.
    let script = r#"
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat = 8, b''
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR':
        width, height, depth, color = struct.unpack('>IIBB', body[:10])
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
assert depth == 8 and color in (2, 6), (depth, color)
bpp = 3 if color == 2 else 4
raw, stride, prev, colours, pixels = zlib.decompress(idat), width * bpp, bytearray(width * bpp), set(), 0
for y in range(height):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        colours.add(bytes(line[x:x + 3]))
    prev = line
print(len(colours), *(int(bytes.fromhex(w) in colours) for w in sys.argv[2:]))
"#;
    let hex: Vec<String> = wanted.iter().map(|c| c.iter().map(|b| format!("{b:02x}")).collect()).collect();
    let out = std::process::Command::new(repo().join(".venv/bin/python"))
        .args(["-c", script])
        .arg(&shot)
        .args(&hex)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace().map(|f| f.parse::<usize>().unwrap());
    let colours = fields.next().unwrap();
    (dom, colours, fields.map(|f| f == 1).collect())
}
