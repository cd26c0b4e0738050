//! Subscription endpoints never reach an output in full unless asked: webhook and paging URLs
//! carry their secret in the path or query, and plans, JSON, JUnit and logs end up in CI
//! artifacts. Every output format is searched for the secret here, errors included.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Value, json};

const TOPIC: &str = "ctguard-cis-alarms";
/// Two webhooks on one host, told apart only by their secret path, and one with its secret in
/// the query and user info.
const SECRETS: [&str; 3] = ["T0SECRET/B0SECRET/xoxbTokenAlpha", "T0SECRET/B0SECRET/xoxbTokenBravo", "s3cr3tQuery"];

fn endpoints() -> [String; 3] {
    [
        format!("https://hooks.example.com/services/{}", SECRETS[0]),
        format!("https://hooks.example.com/services/{}", SECRETS[1]),
        format!("https://pager:{}@events.example.net:8443/integration?token={}", SECRETS[2], SECRETS[2]),
    ]
}

/// The CIS profile with the three webhooks beside its email subscriber.
fn profile(dir: &Path) -> PathBuf {
    run(ctguard_cmd().args(["profiles", "export", "cis-aws-foundations", dir.to_str().unwrap()])).expect(0);
    let path = dir.join("profiles/cis-aws-foundations.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let hooks: String = endpoints()
        .iter()
        .map(|e| format!("\n[[alerts.subscriptions]]\nprotocol = \"https\"\nendpoint = \"{e}\"\n"))
        .collect();
    let anchor = "endpoint = \"${alert_email}\"\n";
    assert!(text.contains(anchor));
    std::fs::write(&path, text.replace(anchor, &format!("{anchor}{hooks}"))).unwrap();
    path
}

/// Fails naming the output that carries a secret.
#[track_caller]
fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows the secret {secret:?}:\n{text}");
    }
    assert!(!text.contains("/services/"), "{what} shows a webhook path:\n{text}");
}

/// The masked subscription labels in a JSON plan.
fn masked_labels(plan: &Value) -> Vec<String> {
    let text = plan.to_string();
    let mut labels: Vec<String> =
        text.match_indices("https:https://").map(|(at, _)| text[at..].split('"').next().unwrap().to_string()).collect();
    labels.sort();
    labels.dedup();
    labels
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_are_masked_in_every_output_and_shown_only_when_asked() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path());
    let p = p.to_str().unwrap();

    // An error whose AWS message quotes the endpoint it refused.
    let [first, ..] = endpoints();
    emu.set_faults(json!({ "force": [{
        "operation": "Subscribe", "status": 400, "code": "InvalidParameter", "times": null,
        "message": format!("Invalid parameter: Endpoint {first} did not answer"),
    }]}));
    let failed = emu.ctguard(&["apply", "--auto-approve", "-v", "-p", p]);
    assert_eq!(failed.code, 1, "{failed:?}");
    assert_no_secret("a failed apply's output", &format!("{}{}", failed.stdout, failed.stderr));
    assert!(failed.stderr.contains("Endpoint https://hooks.example.com/\u{2026} ["), "{}", failed.stderr);
    assert!(failed.stderr.contains("InvalidParameter"), "the error still says why: {}", failed.stderr);
    emu.set_faults(json!({ "force": [] }));

    let human = emu.ctguard(&["plan", "-v", "-p", p]);
    human.expect(0);
    assert_no_secret("plan -v", &format!("{}{}", human.stdout, human.stderr));
    let json_plan = emu.ctguard(&["plan", "--format", "json", "-p", p]);
    json_plan.expect(0);
    assert_no_secret("plan --format json", &json_plan.stdout);
    let labels = masked_labels(&serde_json::from_str(&json_plan.stdout).unwrap());
    assert_eq!(labels.len(), 3, "each webhook keeps a label of its own, stably: {labels:?}");
    let again = emu.ctguard(&["plan", "--format", "json", "-p", p]);
    assert_eq!(masked_labels(&serde_json::from_str(&again.stdout).unwrap()), labels);
    assert!(labels.iter().any(|l| l.starts_with("https:https://events.example.net:8443/\u{2026} [")), "{labels:?}");

    let shown = emu.ctguard(&["plan", "--show-endpoints", "-p", p]);
    shown.expect(0);
    for e in endpoints() {
        assert!(shown.stdout.contains(&e), "--show-endpoints shows {e} in full:\n{}", shown.stdout);
    }

    let applied = emu.ctguard(&["apply", "--auto-approve", "-v", "-p", p]);
    applied.expect(0);
    assert_no_secret("apply -v", &format!("{}{}", applied.stdout, applied.stderr));
    // Only the display is masked: SNS got the real endpoints, and they read back as declared.
    let sns = aws_sdk_sns::Client::new(&emu.sdk().await);
    let topic_arn = format!("arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}");
    let subs = sns.list_subscriptions_by_topic().topic_arn(&topic_arn).send().await.unwrap();
    let live: Vec<&str> = subs.subscriptions().iter().filter_map(|s| s.endpoint()).collect();
    for e in endpoints() {
        assert!(live.contains(&e.as_str()), "{e} subscribed: {live:?}");
    }
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", p]).expect(0);

    let junit = dir.path().join("verify.xml");
    let verify = emu.ctguard(&["verify", "-v", "--format", "json", "--junit", junit.to_str().unwrap(), "-p", p]);
    assert!(verify.code == 0 || verify.code == 2, "{verify:?}");
    assert_no_secret("verify --format json", &format!("{}{}", verify.stdout, verify.stderr));
    assert_no_secret("verify --junit", &std::fs::read_to_string(&junit).unwrap());
    let human = emu.ctguard(&["verify", "-p", p]);
    assert_no_secret("verify", &format!("{}{}", human.stdout, human.stderr));
    assert!(verify.stdout.contains("https:https://hooks.example.com/\u{2026} ["), "{}", verify.stdout);
}
