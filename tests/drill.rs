//! `ctguard drill` against the emulator: a converged account delivers on every path in every
//! region; a removed rule target, an alarm with its actions disabled, a deleted declared
//! subscription and a topic policy without EventBridge's publish statement each fail their path
//! with exit 2; the temporary queue (and role) are gone afterwards, also after SIGINT, and a
//! killed run's expired queue is deleted by the next run; bad input changes nothing.
//!
//! The emulator delivers synchronously (tests/emulator/delivery.py), so short timeouts suffice.
//! It evaluates no topic, queue or IAM policy and feeds no CloudTrail event to CloudWatch Logs:
//! a topic policy without the publish statement is found by reading the policy, and the
//! end-to-end path is tested up to its timeout (role created, denied call made, role deleted).

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;

use common::*;
use serde_json::Value;

const TOPIC: &str = "ctguard-alerts";
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:ctguard-test-alerts";
const ALARM: &str = "ctguard-cis-4.13-route-table-changes";

fn topic_arn() -> String {
    format!("arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}")
}

/// The flagship profile in two regions, alerting an SQS subscriber (an email address the
/// emulator could not confirm would fail every path, as it should).
fn profile(dir: &tempfile::TempDir) -> PathBuf {
    let out = run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", dir.path().to_str().unwrap()]));
    out.expect(0);
    let path = dir.path().join("profiles/ai-agent-guard.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let regions = format!("regions = {}\n", serde_json::to_string(&REGIONS).unwrap());
    let text = text.replace("regions = \"all-enabled\"\n", &regions);
    let text = text.replace(
        "protocol = \"email\"\nendpoint = \"${alert_email}\"\n",
        &format!("protocol = \"sqs\"\nendpoint = \"{QUEUE}\"\n"),
    );
    assert!(text.contains(QUEUE), "the profile's subscription was not replaced");
    std::fs::write(&path, text).unwrap();
    path
}

/// An emulator with the subscriber's queue and the profile applied.
async fn converged(dir: &tempfile::TempDir) -> (Emulator, String, aws_config::SdkConfig) {
    let emu = Emulator::start();
    let conf = emu.sdk().await;
    aws_sdk_sqs::Client::new(&conf).create_queue().queue_name("ctguard-test-alerts").send().await.unwrap();
    let p = profile(dir).to_str().unwrap().to_string();
    emu.ctguard(&["apply", "--auto-approve", "-p", &p]).expect(0);
    (emu, p, conf)
}

/// A drill that must deliver waits long enough for a loaded machine (it returns as soon as every
/// message is in); one that must fail waits [`FAIL_WAIT`].
const DELIVER_WAIT: &str = "60s";
const FAIL_WAIT: &str = "8s";

fn drill(emu: &Emulator, p: &str, timeout: &str, extra: &[&str]) -> (Run, Value) {
    let mut args = vec!["drill", "-p", p, "--format", "json", "--timeout", timeout];
    args.extend(extra);
    let run = emu.ctguard(&args);
    let doc = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
    (run, doc)
}

/// path name -> (delivered, detail)
fn paths(doc: &Value) -> Vec<(String, bool, String)> {
    doc["paths"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|p| {
            (p["path"].as_str().unwrap().to_string(), p["delivered"] == true, p["detail"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The drill's queues left in the account, and the topic's subscriptions to any of them.
async fn leftovers(conf: &aws_config::SdkConfig) -> (Vec<String>, Vec<String>) {
    let sqs = aws_sdk_sqs::Client::new(conf);
    let queues = sqs.list_queues().queue_name_prefix("ctguard-drill-").send().await.unwrap();
    let sns = aws_sdk_sns::Client::new(conf);
    let subs = sns.list_subscriptions_by_topic().topic_arn(topic_arn()).send().await.unwrap();
    let drill_subs = subs
        .subscriptions()
        .iter()
        .filter_map(|s| s.endpoint())
        .filter(|e| e.contains(":ctguard-drill-"))
        .map(str::to_string)
        .collect();
    (queues.queue_urls().to_vec(), drill_subs)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_converged_account_delivers_on_every_path_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, p, conf) = converged(&dir).await;
    // apply manages the drill rule in both regions; a second plan is empty.
    let eb = |region: &str| {
        aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(&conf)
                .region(aws_sdk_eventbridge::config::Region::new(region.to_string()))
                .build(),
        )
    };
    for region in REGIONS {
        let rule = eb(region).describe_rule().name("ctguard-drill").send().await.unwrap();
        assert_eq!(rule.event_pattern(), Some(r#"{"source":["ctguard.drill"]}"#), "{region}");
    }
    emu.ctguard(&["plan", "-p", &p, "--detailed-exitcode"]).expect(0);

    let (run, doc) = drill(&emu, &p, DELIVER_WAIT, &[]);
    run.expect(0);
    let got = paths(&doc);
    for region in REGIONS {
        assert!(got.iter().any(|(n, ok, _)| n == &format!("events/{region}") && *ok), "{got:#?}");
    }
    let alarms = got.iter().filter(|(n, _, _)| n.starts_with("alarm/")).count();
    assert!(alarms >= 10, "every alarm of the flagship profile is drilled: {got:#?}");
    assert!(got.iter().all(|(_, ok, _)| *ok), "{got:#?}");
    assert_eq!(doc["command"], "drill");
    assert!(doc["paths"][0]["seconds"].as_f64().is_some(), "{doc}");
    assert_eq!(leftovers(&conf).await, (vec![], vec![]));

    // The declared subscriber got the drill's messages, each marked as a drill.
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let url = sqs.get_queue_url().queue_name("ctguard-test-alerts").send().await.unwrap().queue_url.unwrap();
    let got = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
    assert!(!got.messages().is_empty());
    for m in got.messages() {
        let envelope: Value = serde_json::from_str(m.body().unwrap()).unwrap();
        assert!(envelope["Message"].as_str().unwrap().contains("[DRILL]"), "{envelope}");
    }
    // The alarms are back to OK.
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let states = cw.describe_alarms().alarm_name_prefix("ctguard-").send().await.unwrap();
    for a in states.metric_alarms() {
        assert_eq!(a.state_value().map(|s| s.as_str()), Some("OK"), "{:?}", a.alarm_name());
    }

    // Human output names each path.
    let text = emu.ctguard(&["drill", "-p", &p, "--timeout", DELIVER_WAIT, "--no-alarms"]);
    text.expect(0);
    assert!(text.stdout.contains("delivered events/eu-west-1"), "{}", text.stdout);
    assert!(text.stdout.contains("Drill: 2 of 2 paths delivered."), "{}", text.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_broken_link_fails_its_own_path() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, p, conf) = converged(&dir).await;
    let eu = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&conf)
            .region(aws_sdk_eventbridge::config::Region::new("eu-west-1"))
            .build(),
    );

    // A removed rule target: the forwarding from eu-west-1 is gone, the home region still works.
    eu.remove_targets().rule("ctguard-drill").ids("ctguard-forward-to-home").send().await.unwrap();
    let (run, doc) = drill(&emu, &p, FAIL_WAIT, &["--no-alarms"]);
    run.expect(2);
    let got = paths(&doc);
    let eu_path = got.iter().find(|(n, _, _)| n == "events/eu-west-1").unwrap();
    assert!(!eu_path.1 && eu_path.2.contains(&format!("timed out after {}", FAIL_WAIT)), "{got:#?}");
    assert!(got.iter().any(|(n, ok, _)| n == "events/us-east-1" && *ok), "{got:#?}");
    assert_eq!(leftovers(&conf).await, (vec![], vec![]));
    emu.ctguard(&["apply", "--auto-approve", "-p", &p]).expect(0);

    // An alarm with its actions disabled.
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let alarms = cw.describe_alarms().alarm_name_prefix("ctguard-").send().await.unwrap();
    let (first, second) =
        (alarms.metric_alarms()[0].alarm_name().unwrap(), alarms.metric_alarms()[1].alarm_name().unwrap());
    cw.disable_alarm_actions().alarm_names(first).send().await.unwrap();
    let (run, doc) = drill(&emu, &p, FAIL_WAIT, &["--no-events", "--alarm", first, "--alarm", second]);
    run.expect(2);
    let got = paths(&doc);
    assert_eq!(got.len(), 2, "{got:#?}");
    let disabled = got.iter().find(|(n, _, _)| n == &format!("alarm/{first}")).unwrap();
    assert!(!disabled.1 && disabled.2.contains("actions disabled"), "{got:#?}");
    assert!(got.iter().any(|(n, ok, _)| n == &format!("alarm/{second}") && *ok), "{got:#?}");
    cw.enable_alarm_actions().alarm_names(first).send().await.unwrap();

    // A declared subscription deleted: the topic still publishes, nobody would be paged.
    let sns = aws_sdk_sns::Client::new(&conf);
    let subs = sns.list_subscriptions_by_topic().topic_arn(topic_arn()).send().await.unwrap();
    let declared = subs.subscriptions().iter().find(|s| s.endpoint() == Some(QUEUE)).unwrap();
    sns.unsubscribe().subscription_arn(declared.subscription_arn().unwrap()).send().await.unwrap();
    let (run, doc) = drill(&emu, &p, FAIL_WAIT, &["--no-alarms", "--region", "us-east-1"]);
    run.expect(2);
    let got = paths(&doc);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(!got[0].1 && got[0].2.contains(&format!("sqs:{QUEUE} is not subscribed")), "{got:#?}");
    emu.ctguard(&["apply", "--auto-approve", "-p", &p]).expect(0);

    // The topic policy without EventBridge's publish statement (the emulator would still
    // deliver: the drill reads the policy).
    let attrs = sns.get_topic_attributes().topic_arn(topic_arn()).send().await.unwrap();
    let mut policy: Value = serde_json::from_str(&attrs.attributes().unwrap()["Policy"]).unwrap();
    policy["Statement"]
        .as_array_mut()
        .unwrap()
        .retain(|s| !s["Principal"].to_string().contains("events.amazonaws.com"));
    let req = sns.set_topic_attributes().topic_arn(topic_arn()).attribute_name("Policy");
    req.attribute_value(policy.to_string()).send().await.unwrap();
    let (run, doc) = drill(&emu, &p, FAIL_WAIT, &["--region", "eu-west-1", "--alarm", second]);
    run.expect(2);
    let got = paths(&doc);
    let events = got.iter().find(|(n, _, _)| n == "events/eu-west-1").unwrap();
    assert!(!events.1 && events.2.contains("grants events.amazonaws.com no sns:Publish"), "{got:#?}");
    assert!(
        got.iter().any(|(n, ok, _)| n == &format!("alarm/{second}") && *ok),
        "CloudWatch may still publish: {got:#?}"
    );
    assert_eq!(leftovers(&conf).await, (vec![], vec![]));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_mid_run_and_a_killed_runs_leftovers_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, p, conf) = converged(&dir).await;
    // What a SIGKILLed run leaves: its queue, subscribed, past its expiry.
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let old = "ctguard-drill-0123456789ab";
    sqs.create_queue().queue_name(old).tags("ctguard:drill-expires", "2026-01-01T00:00:00Z").send().await.unwrap();
    // A concurrent run's queue, not yet expired, is left alone.
    let live = "ctguard-drill-ba9876543210";
    sqs.create_queue().queue_name(live).tags("ctguard:drill-expires", "2999-01-01T00:00:00Z").send().await.unwrap();
    let sns = aws_sdk_sns::Client::new(&conf);
    let old_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{old}");
    sns.subscribe().topic_arn(topic_arn()).protocol("sqs").endpoint(&old_arn).send().await.unwrap();

    // The eu-west-1 path never delivers, so the run waits until interrupted.
    let eu = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&conf)
            .region(aws_sdk_eventbridge::config::Region::new("eu-west-1"))
            .build(),
    );
    eu.remove_targets().rule("ctguard-drill").ids("ctguard-forward-to-home").send().await.unwrap();
    let mut child = ctguard_cmd()
        .env("AWS_ENDPOINT_URL", &emu.endpoint)
        .args(["drill", "-p", &p, "--alarm", ALARM, "--timeout", "2m", "-v"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    let mut sent = false;
    for line in stderr.lines() {
        let line = line.unwrap();
        if !sent && line.contains("subscribed ctguard-drill-") {
            std::thread::sleep(std::time::Duration::from_millis(500));
            std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
            sent = true;
        }
        lines.push(line);
    }
    let code = child.wait().unwrap().code();
    let stderr = lines.join("\n");
    assert!(sent, "{stderr}");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted: SIGINT: the drill stopped; its alarms were returned to OK"), "{stderr}");
    // The alarm the drill had set to ALARM is back to OK.
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let alarm = cw.describe_alarms().alarm_names(ALARM).send().await.unwrap();
    assert_eq!(alarm.metric_alarms()[0].state_value().map(|s| s.as_str()), Some("OK"));
    let (queues, subs) = leftovers(&conf).await;
    assert_eq!(queues.len(), 1, "only the unexpired queue is left: {queues:?}");
    assert!(queues[0].ends_with(live), "{queues:?}");
    assert!(subs.is_empty(), "{subs:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_end_to_end_path_creates_and_deletes_its_role_and_fails_when_nothing_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, p, conf) = converged(&dir).await;
    emu.clear_requests();
    let (run, doc) = drill(&emu, &p, FAIL_WAIT, &["--end-to-end", "--no-events", "--no-alarms"]);
    run.expect(2);
    let got = paths(&doc);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].0.starts_with("end-to-end/"), "{got:#?}");
    assert!(!got[0].1 && got[0].2.contains(&format!("timed out after {}", FAIL_WAIT)), "{got:#?}");
    assert!(got[0].2.contains("S3 ListBuckets as the drill's role"), "{got:#?}");
    assert!(got[0].2.contains("counted 0 access-denied calls"), "{got:#?}");
    let ops: Vec<String> = emu.requests().iter().map(Request::iam_action).collect();
    for needed in ["iam:CreateRole", "sts:AssumeRole", "s3:ListBuckets", "iam:DeleteRole"] {
        assert!(ops.iter().any(|o| o == needed), "{needed} not called: {ops:?}");
    }
    let iam = aws_sdk_iam::Client::new(&conf);
    let roles = iam.list_roles().path_prefix("/ctguard-drill/").send().await.unwrap();
    assert!(roles.roles().is_empty(), "{:?}", roles.roles());
    assert_eq!(leftovers(&conf).await, (vec![], vec![]));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_1_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, p, _conf) = converged(&dir).await;
    for (args, says) in [
        (vec!["--alarm", "no-such-alarm"], "--alarm no-such-alarm: not an alarm of profile"),
        (vec!["--region", "mars-east-1"], "--region mars-east-1: not a region of profile"),
        (vec!["--timeout", "5 minutes"], "--timeout: expected a duration"),
        (vec!["--timeout", "0s"], "--timeout: expected a duration"),
    ] {
        emu.clear_requests();
        let mut all = vec!["drill", "-p", &p];
        all.extend(args);
        let run = emu.ctguard(&all);
        run.expect(1);
        assert!(run.stderr.contains(says), "{}", run.stderr);
        assert!(emu.mutating_requests().is_empty(), "{:?}", emu.mutating_requests());
    }
}
