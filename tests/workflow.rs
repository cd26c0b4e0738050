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
