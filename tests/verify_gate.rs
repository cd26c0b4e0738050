//! verify as a CI gate against the emulator: deployed patterns replayed over the sample records,
//! health beyond drift, waivers with reasons, and the JUnit report.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:ctguard-test-alerts";
const CIS_4_5: &str = "ctguard-cis-4.5-cloudtrail-config-changes";
const CIS_4_4: &str = "ctguard-cis-4.4-iam-policy-changes";

/// The flagship profile in one region, with an SQS subscriber (the emulator confirms it), and
/// `extra` appended (one plain and one custom profile per directory).
fn profile(dir: &Path, extra: &str) -> PathBuf {
    let dir = dir.join(if extra.is_empty() { "plain" } else { "custom" });
    run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", dir.to_str().unwrap()])).expect(0);
    let path = dir.join("profiles/ai-agent-guard.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace("regions = \"all-enabled\"\n", "regions = [\"us-east-1\"]\n").replace(
        "endpoint = \"${alert_email}\"\n",
        &format!(
            "endpoint = \"${{alert_email}}\"\n\n[[alerts.subscriptions]]\nprotocol = \"sqs\"\nendpoint = \"{QUEUE}\"\n"
        ),
    );
    std::fs::write(&path, format!("{text}\n{extra}")).unwrap();
    path
}

fn verify(emu: &Emulator, profile: &Path, junit: &Path) -> (i32, Value) {
    let run = emu.ctguard(&[
        "verify",
        "-p",
        profile.to_str().unwrap(),
        "--format",
        "json",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let doc = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    (run.code, doc)
}

fn check<'a>(doc: &'a Value, address: &str, name: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == address && c["name"].as_str().unwrap().contains(name))
        .unwrap_or_else(|| panic!("no check {name:?} on {address}"))
}

async fn filter_pattern(emu: &Emulator, name: &str) -> String {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&emu.sdk().await);
    let out = logs.describe_metric_filters().log_group_name(LOG_GROUP).filter_name_prefix(name).send().await.unwrap();
    out.metric_filters()[0].filter_pattern().unwrap().to_string()
}

/// Rewrites a filter's pattern by hand, keeping its metric.
async fn put_filter(emu: &Emulator, name: &str, pattern: &str) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&emu.sdk().await);
    let out = logs.describe_metric_filters().log_group_name(LOG_GROUP).filter_name_prefix(name).send().await.unwrap();
    let metric = out.metric_filters()[0].metric_transformations().to_vec();
    logs.put_metric_filter()
        .log_group_name(LOG_GROUP)
        .filter_name(name)
        .filter_pattern(pattern)
        .set_metric_transformations(Some(metric))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_replays_deployed_patterns_reports_health_and_honours_waivers() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("verify.xml");
    let plain = profile(dir.path(), "");
    emu.ctguard(&["apply", "--auto-approve", "-p", plain.to_str().unwrap()]).expect(0);

    // Converged: every check passes, every deployed pattern decides the samples as declared.
    let (code, doc) = verify(&emu, &plain, &junit);
    assert_eq!(code, 0, "{doc:#}");
    let filter = format!("logs_metric_filter.{CIS_4_5}");
    assert!(check(&doc, &filter, "fires as declared")["ok"].as_bool().unwrap());
    let rule = "events_rule.us-east-1/ctguard-destructive-actions";
    assert!(
        check(&doc, rule, "fires as declared")["detail"]
            .as_str()
            .unwrap()
            .contains("sample records decided as declared")
    );
    assert!(check(&doc, rule, "is enabled and delivers")["ok"].as_bool().unwrap());
    assert!(check(&doc, "sns_subscriptions.ctguard-alerts", "confirmed subscriber")["ok"].as_bool().unwrap());
    let cis = check(&doc, &format!("logs_metric_filter.{CIS_4_4}"), "published CIS");
    assert!(cis["detail"].as_str().unwrap().starts_with("exact: the text of AWS Security Hub"), "{cis}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"failures="0""#) && xml.contains("<testcase"), "{xml}");

    // A cosmetic edit by hand: drift, but the pattern still fires as declared; waived, it passes.
    let original = filter_pattern(&emu, CIS_4_4).await;
    let respaced = original.replace("($.eventName=", "( $.eventName = ");
    assert_ne!(respaced, original);
    put_filter(&emu, CIS_4_4, &respaced).await;
    let (code, doc) = verify(&emu, &plain, &junit);
    assert_eq!(code, 2, "cosmetic drift is still drift: {doc:#}");
    let cis4 = format!("logs_metric_filter.{CIS_4_4}");
    assert!(check(&doc, &cis4, "fires as declared")["ok"].as_bool().unwrap());
    assert!(check(&doc, &cis4, "published CIS")["detail"].as_str().unwrap().starts_with("equivalent"));
    let waived = profile(
        dir.path(),
        &format!(
            "[[waivers]]\nresource = \"{cis4}\"\nfield = \"pattern\"\nreason = \"respaced by the platform team; tracked in SEC-42\"\n"
        ),
    );
    let (code, doc) = verify(&emu, &waived, &junit);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["waived_drift"][0]["reason"], "respaced by the platform team; tracked in SEC-42");
    let human = emu.ctguard(&["verify", "-p", waived.to_str().unwrap()]);
    assert!(human.stdout.contains("waived: respaced by the platform team; tracked in SEC-42"), "{}", human.stdout);
    assert!(
        std::fs::read_to_string(&junit).unwrap().contains(r#"<skipped message="waived: respaced by the platform team"#)
    );

    // A truncated pattern: the gate fails and names what it no longer catches.
    let truncated = r#"{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) }"#;
    put_filter(&emu, CIS_4_5, truncated).await;
    aws_sdk_eventbridge::Client::new(&emu.sdk().await)
        .disable_rule()
        .name("ctguard-monitoring-tampering")
        .send()
        .await
        .unwrap();
    let (code, doc) = verify(&emu, &waived, &junit);
    assert_eq!(code, 2);
    let fires = check(&doc, &filter, "fires as declared");
    assert!(!fires["ok"].as_bool().unwrap());
    assert!(
        fires["detail"].as_str().unwrap().contains("no longer fires on")
            && fires["detail"].as_str().unwrap().contains("StopLogging"),
        "{fires}"
    );
    let enabled = check(&doc, "events_rule.us-east-1/ctguard-monitoring-tampering", "is enabled");
    assert!(
        !enabled["ok"].as_bool().unwrap() && enabled["detail"].as_str().unwrap().starts_with("DISABLED"),
        "{enabled}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure message=") && xml.contains("StopLogging"), "{xml}");

    // A stale waiver is pointed out; apply repairs everything and the gate passes again.
    emu.ctguard(&["apply", "--auto-approve", "-p", waived.to_str().unwrap()]).expect(0);
    let run = emu.ctguard(&["verify", "-p", waived.to_str().unwrap()]);
    run.expect(0);
    assert!(run.stdout.contains("matches nothing"), "{}", run.stdout);
}

/// Seeds a metric as the service would publish it, a minute ago (CloudWatch reads a window up to
/// its end, so a datapoint stamped at the very moment of the read may fall outside it).
async fn publish(emu: &Emulator, namespace: &str, metric: &str, dimension: (&str, &str), value: f64) {
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&emu.sdk().await);
    let dimension = aws_sdk_cloudwatch::types::Dimension::builder().name(dimension.0).value(dimension.1).build();
    let datum = aws_sdk_cloudwatch::types::MetricDatum::builder()
        .metric_name(metric)
        .dimensions(dimension)
        .value(value)
        .timestamp((std::time::SystemTime::now() - std::time::Duration::from_secs(60)).into())
        .build();
    cloudwatch.put_metric_data().namespace(namespace).metric_data(datum).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_fails_on_delivery_failures_aws_reports_only_as_metrics() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("verify.xml");
    let plain = profile(dir.path(), "");
    emu.ctguard(&["apply", "--auto-approve", "-p", plain.to_str().unwrap()]).expect(0);
    let rule = "events_rule.us-east-1/ctguard-destructive-actions";
    let (code, doc) = verify(&emu, &plain, &junit);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(check(&doc, rule, "no FailedInvocations in the last 24 h")["detail"], "FailedInvocations: 0");

    // EventBridge could not deliver one event of a rule; SNS could not reach a subscriber; a
    // failure of another account's rule of the same name elsewhere is not ours to report.
    publish(&emu, "AWS/Events", "FailedInvocations", ("RuleName", "ctguard-destructive-actions"), 2.0).await;
    publish(&emu, "AWS/SNS", "NumberOfNotificationsFailed", ("TopicName", "ctguard-alerts"), 1.0).await;
    publish(&emu, "AWS/Events", "FailedInvocations", ("RuleName", "someone-elses-rule"), 5.0).await;
    let (code, doc) = verify(&emu, &plain, &junit);
    assert_eq!(code, 2, "{doc:#}");
    let failed = check(&doc, rule, "no FailedInvocations");
    assert_eq!(failed["ok"], false, "{failed}");
    assert!(
        failed["detail"].as_str().unwrap().starts_with("FailedInvocations: 2 (EventBridge could not deliver"),
        "{failed}"
    );
    let topic = check(&doc, "sns_topic.ctguard-alerts", "no NumberOfNotificationsFailed");
    assert_eq!(topic["ok"], false);
    assert!(topic["detail"].as_str().unwrap().starts_with("NumberOfNotificationsFailed: 1 "), "{topic}");
    let others = check(&doc, "events_rule.us-east-1/ctguard-monitoring-tampering", "no FailedInvocations");
    assert_eq!(others["ok"], true, "{others}");

    // A bad window is refused before any call.
    let bad = emu.ctguard(&["verify", "-p", plain.to_str().unwrap(), "--health-window", "soon"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("--health-window: expected a duration such as 30m, 24h or 7d"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_fails_when_aws_config_cannot_deliver_naming_channel_region_and_error() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("verify.xml");
    let plain = profile(dir.path(), "");
    emu.ctguard(&["apply", "--auto-approve", "-p", plain.to_str().unwrap()]).expect(0);
    let address = "config_delivery_channel.us-east-1";
    let (code, doc) = verify(&emu, &plain, &junit);
    assert_eq!(code, 0, "{doc:#}");
    let ok = check(&doc, address, "AWS Config delivery channel us-east-1/");
    assert_eq!(ok["ok"], true, "{ok}");
    let name = ok["name"].as_str().unwrap().to_string();

    // Config could not write its history files (a bucket policy or key policy refusing it).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    emu.seed_config_delivery_status(serde_json::json!({
        "region": "us-east-1",
        "configHistoryDeliveryInfo": {
            "lastStatus": "Failure", "lastErrorCode": "AccessDenied", "lastErrorMessage": "Access Denied",
            "lastAttemptTime": now - 600, "lastSuccessfulTime": now - 7 * 86_400,
        },
    }));
    let (code, doc) = verify(&emu, &plain, &junit);
    assert_eq!(code, 2, "{doc:#}");
    let failed = check(&doc, address, &name);
    assert_eq!(failed["ok"], false, "{failed}");
    assert_eq!(failed["detail"], "history delivery failed: AccessDenied: Access Denied", "{failed}");
    let text = emu.ctguard(&["verify", "-p", plain.to_str().unwrap()]);
    assert_eq!(text.code, 2);
    assert!(text.stdout.contains(&name) && text.stdout.contains("AccessDenied: Access Denied"), "{}", text.stdout);

    // Snapshots stopped three days ago on a daily channel, with no error recorded.
    emu.seed_config_delivery_status(serde_json::json!({"region": "us-east-1", "clear": true}));
    emu.seed_config_delivery_status(serde_json::json!({
        "region": "us-east-1",
        "configSnapshotDeliveryInfo": {
            "lastStatus": "Success", "lastAttemptTime": now - 3 * 86_400, "lastSuccessfulTime": now - 3 * 86_400,
        },
    }));
    let (code, doc) = verify(&emu, &plain, &junit);
    assert_eq!(code, 2, "{doc:#}");
    let late = check(&doc, address, &name);
    assert!(late["detail"].as_str().unwrap().starts_with("no snapshot delivered for 72 h"), "{late}");
}
