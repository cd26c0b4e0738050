//! The command line as a Terraform or AWS CLI user expects it: credentials chosen the AWS CLI's
//! way, errors that say what to do (as JSON too), region precedence, Ctrl-C, conventions.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Emulator, ctguard_cmd, run};
use serde_json::Value;

/// Nothing listens here: a call that gets this far fails, so a test that must stop before any
/// call proves it by not hanging on one.
const NOWHERE: &str = "http://127.0.0.1:9";

fn no_rust_debug(text: &str) {
    for leak in ["Request {", "SdkBody", "Some(", "Region(", "ConstructionFailure", "i32", "struct "] {
        assert!(!text.contains(leak), "{leak:?} leaked into:\n{text}");
    }
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    let r = run(ctguard_cmd().arg("--version"));
    r.expect(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], format!("ctguard {}", env!("CARGO_PKG_VERSION")));
    assert!(lines[1].starts_with("commit:"), "{}", r.stdout);
    let date = lines[2].trim_start_matches("build date:").trim();
    assert!(date.len() == 10 && date.as_bytes()[4] == b'-', "{}", r.stdout);
}

#[test]
fn completions_and_man_page_come_from_the_command_definitions() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let r = run(ctguard_cmd().args(["completions", shell]));
        r.expect(0);
        assert!(r.stdout.contains("ctguard") && r.stdout.contains("verify"), "{shell}: {}", r.stdout);
    }
    let r = run(ctguard_cmd().arg("man"));
    r.expect(0);
    assert!(r.stdout.starts_with(".ie") || r.stdout.contains(".TH ctguard"), "{}", &r.stdout[..200]);
    assert!(r.stdout.contains("verify"));
}

#[test]
fn format_and_color_are_global() {
    // Before the subcommand as well as after it.
    let r = run(ctguard_cmd().args(["--format", "json", "test", "--account", "12"]));
    r.expect(1);
    let doc: Value = serde_json::from_str(&r.stdout).expect("a JSON error document");
    assert_eq!(doc["error"]["kind"], "error");
    run(ctguard_cmd().args(["--color", "never", "profiles", "list"])).expect(0);
}

#[test]
fn a_region_typo_fails_before_any_call_with_the_nearest_name() {
    let r = run(ctguard_cmd().args(["plan", "--region", "eu-wst-1", "--endpoint-url", NOWHERE]));
    r.expect(1);
    assert!(r.stderr.contains("--region \"eu-wst-1\""), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean eu-west-1?"), "{}", r.stderr);
    assert!(r.stderr.contains("CTGUARD_EXTRA_REGIONS=eu-wst-1"), "{}", r.stderr);
    // AWS_REGION is held to the same table when it decides the region.
    let dir = tempfile::tempdir().unwrap();
    let profile = profile_without_home_region(dir.path());
    let r = run(ctguard_cmd().args(["plan", "-p", &profile, "--endpoint-url", NOWHERE]).env("AWS_REGION", "us-esat-1"));
    r.expect(1);
    assert!(r.stderr.contains("region \"us-esat-1\" (from AWS_REGION or the shared AWS config)"), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean us-east-1?"), "{}", r.stderr);
    no_rust_debug(&r.stderr);
    // A region newer than the table can be allowed.
    let r = run(ctguard_cmd()
        .args(["plan", "--region", "ap-southeast-9", "--endpoint-url", NOWHERE])
        .env("CTGUARD_EXTRA_REGIONS", "ap-southeast-9")
        .env("AWS_MAX_ATTEMPTS", "1"));
    r.expect(1);
    assert!(!r.stderr.contains("did you mean") && !r.stderr.contains("expected a region"), "{}", r.stderr);
}

/// The cis-aws-foundations profile, written out, with `home_region` removed: its region then
/// comes from --region or the environment.
fn profile_without_home_region(dir: &Path) -> String {
    run(ctguard_cmd().args(["profiles", "export", "cis-aws-foundations", dir.to_str().unwrap()])).expect(0);
    let path = dir.join("profiles/cis-aws-foundations.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text: String = text.lines().filter(|l| !l.starts_with("home_region")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn endpoint_url_that_is_not_a_url_says_so_without_debug_output() {
    let r = run(ctguard_cmd().args(["plan", "--endpoint-url", "not-a-url"]));
    r.expect(1);
    assert!(r.stderr.contains("--endpoint-url (or AWS_ENDPOINT_URL) \"not-a-url\""), "{}", r.stderr);
    assert!(r.stderr.contains("expected a URL such as https://host:port"), "{}", r.stderr);
    no_rust_debug(&r.stderr);
}

#[test]
fn every_profile_problem_is_reported_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    run(ctguard_cmd().args(["profiles", "export", "cis-aws-foundations", dir.path().to_str().unwrap()])).expect(0);
    let path = dir.path().join("profiles/cis-aws-foundations.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("retention_days = 365", "retention_days = \"a year\"", 1)
        .replacen("[trail]", "[trail]\nlog_file_validaton = true", 1)
        .replacen("severity = \"high\"", "severity = \"urgent\"", 1);
    std::fs::write(&path, &text).unwrap();
    let r = run(ctguard_cmd().args(["plan", "-p", path.to_str().unwrap(), "--endpoint-url", NOWHERE]));
    r.expect(1);
    assert!(r.stderr.contains("(3 problems)"), "{}", r.stderr);
    assert!(r.stderr.contains("trail.log_file_validaton: unknown key log_file_validaton"), "{}", r.stderr);
    assert!(
        r.stderr.contains("cloudwatch_logs.retention_days: invalid type: string \"a year\", expected a whole number")
    );
    assert!(r.stderr.contains("severity: unknown value urgent, expected one of: low, medium, high, critical"));
    no_rust_debug(&r.stderr);

    // The same as a JSON document on stdout, with each problem as data.
    let r =
        run(ctguard_cmd().args(["plan", "--format", "json", "-p", path.to_str().unwrap(), "--endpoint-url", NOWHERE]));
    r.expect(1);
    let doc: Value = serde_json::from_str(&r.stdout).expect("a JSON error document");
    assert_eq!(doc["format_version"], "1");
    assert_eq!(doc["error"]["kind"], "invalid-profile");
    assert_eq!(doc["error"]["problems"].as_array().unwrap().len(), 3);
    assert!(doc["error"]["problems"][0]["line"].is_u64(), "{doc}");
    assert!(r.stderr.contains("error: "), "text on stderr too: {}", r.stderr);
}

#[test]
fn usage_errors_under_json_are_json_and_exit_1() {
    let r = run(ctguard_cmd().args(["plan", "--format", "json", "--no-such-flag"]));
    r.expect(1);
    let doc: Value = serde_json::from_str(&r.stdout).expect("a JSON error document");
    assert_eq!(doc["error"]["kind"], "usage");
    assert!(doc["error"]["message"].as_str().unwrap().contains("--no-such-flag"));
    assert!(r.stderr.contains("--no-such-flag"));
}

#[test]
fn retry_variables_are_checked() {
    let r = run(ctguard_cmd().args(["plan", "--endpoint-url", NOWHERE]).env("AWS_MAX_ATTEMPTS", "lots"));
    r.expect(1);
    assert!(r.stderr.contains("AWS_MAX_ATTEMPTS=\"lots\": expected a whole number of attempts"), "{}", r.stderr);
}

/// A shared config file whose `dev` profile gets its credentials from a script that leaves a
/// mark when it runs.
fn shared_config(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let mark = dir.join("credential-process-ran");
    let script = dir.join("creds.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch '{}'\necho '{{\"Version\": 1, \"AccessKeyId\": \"AKIDDEV\", \"SecretAccessKey\": \"dev\"}}'\n",
            mark.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&script).status().unwrap();
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[default]\nregion = us-east-1\n\n[profile dev]\nregion = us-east-1\ncredential_process = {}\n",
            script.display()
        ),
    )
    .unwrap();
    (config, mark)
}

#[test]
fn an_explicit_aws_profile_wins_over_key_variables() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let (config, mark) = shared_config(dir.path());
    // Key variables set (ctguard_cmd sets them) and --aws-profile dev: the profile's process runs.
    let r = emu.ctguard_in_env(
        &["plan", "-p", "cis-aws-foundations", "--aws-profile", "dev"],
        &[("AWS_CONFIG_FILE", config.as_os_str())],
    );
    r.expect(0);
    assert!(mark.exists(), "the dev profile's credential_process did not run:\n{}", r.stderr);
    std::fs::remove_file(&mark).unwrap();
    // The same through AWS_PROFILE.
    let r = emu.ctguard_in_env(
        &["plan", "-p", "cis-aws-foundations"],
        &[("AWS_CONFIG_FILE", config.as_os_str()), ("AWS_PROFILE", std::ffi::OsStr::new("dev"))],
    );
    r.expect(0);
    assert!(mark.exists(), "AWS_PROFILE=dev did not select the profile:\n{}", r.stderr);
    std::fs::remove_file(&mark).unwrap();
    // Without either, the key variables are used and the process never runs.
    emu.ctguard_in_env(&["plan", "-p", "cis-aws-foundations"], &[("AWS_CONFIG_FILE", config.as_os_str())]).expect(0);
    assert!(!mark.exists());
}

#[test]
fn an_unknown_aws_profile_lists_the_ones_there_are() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = shared_config(dir.path());
    let r = run(ctguard_cmd()
        .args(["plan", "--aws-profile", "prod", "--endpoint-url", NOWHERE])
        .env("AWS_CONFIG_FILE", &config));
    r.expect(1);
    assert!(
        r.stderr.contains("the AWS profile \"prod\" (from --aws-profile or AWS_PROFILE) is not in"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("they define: default, dev"), "{}", r.stderr);
    assert!(r.stderr.contains("aws configure --profile prod"), "{}", r.stderr);
}

#[test]
fn no_credentials_lists_the_sources_tried_and_the_fixes() {
    let started = Instant::now();
    let r = run(ctguard_cmd()
        .args(["plan", "--endpoint-url", NOWHERE])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY"));
    r.expect(1);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    for expected in [
        "no AWS credentials found",
        "1. the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (not set)",
        "2. the `default` profile",
        "3. web identity",
        "4. the container credentials endpoint",
        "5. the EC2 instance metadata service (switched off by AWS_EC2_METADATA_DISABLED)",
        "pass --aws-profile NAME",
        "export AWS_ACCESS_KEY_ID",
    ] {
        assert!(r.stderr.contains(expected), "{expected:?} missing:\n{}", r.stderr);
    }
    no_rust_debug(&r.stderr);
    let r = run(ctguard_cmd()
        .args(["plan", "--format", "json", "--endpoint-url", NOWHERE])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY"));
    let doc: Value = serde_json::from_str(&r.stdout).expect("a JSON error document");
    assert_eq!(doc["error"]["kind"], "credentials");
}

#[test]
fn region_precedence_is_flag_then_profile_then_aws_region() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let bare = profile_without_home_region(dir.path());
    let with_home = dir.path().join("profiles/home.toml");
    let text =
        std::fs::read_to_string(&bare).unwrap().replacen("[profile]", "[profile]\nhome_region = \"eu-west-1\"", 1);
    std::fs::write(&with_home, text).unwrap();
    let with_home = with_home.to_str().unwrap();
    let region = |args: &[&str]| {
        let mut all = vec!["plan", "--format", "json"];
        all.extend(args);
        let r = emu.ctguard(&all); // AWS_REGION=us-east-1 is set for every run
        r.expect(0);
        serde_json::from_str::<Value>(&r.stdout).unwrap()["region"].as_str().unwrap().to_string()
    };
    assert_eq!(region(&["-p", with_home]), "eu-west-1", "the profile's home_region beats AWS_REGION");
    assert_eq!(region(&["-p", with_home, "--region", "us-west-2"]), "us-west-2", "--region beats home_region");
    assert_eq!(region(&["-p", &bare]), "us-east-1", "AWS_REGION when the profile names none");
}

#[test]
fn verbose_twice_times_each_call_and_retries_follow_aws_max_attempts() {
    let emu = Emulator::start();
    emu.set_faults(serde_json::json!({"force": [{"operation": "GetCallerIdentity", "status": 400,
        "code": "Throttling", "message": "Rate exceeded", "times": 1}]}));
    let r = emu.ctguard_in_env(
        &["plan", "-p", "cis-aws-foundations", "-vv"],
        &[("AWS_MAX_ATTEMPTS", std::ffi::OsStr::new("7"))],
    );
    r.expect(0);
    assert!(r.stderr.contains("retry 2/7 sts:GetCallerIdentity"), "{}", r.stderr);
    assert!(r.stderr.contains("call sts:GetCallerIdentity (us-east-1)"), "{}", r.stderr);
    assert!(r.stderr.contains(" ms, 2 attempts"), "{}", r.stderr);
    assert!(r.stderr.contains("call logs:DescribeLogGroups"), "{}", r.stderr);
    // The shipped alert address is an example: said before it is subscribed.
    assert!(r.stderr.contains("warning: the alert subscription email:security-alerts@example.com"), "{}", r.stderr);
}

/// Runs ctguard in the background, waits for a line on stderr containing `cue`, sends SIGINT,
/// and returns the exit code and all of stderr.
fn interrupt_when(emu: &Emulator, args: &[&str], cue: &str) -> (i32, String) {
    let mut child = ctguard_cmd()
        .env("AWS_ENDPOINT_URL", &emu.endpoint)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    let mut sent = false;
    for line in stderr.lines() {
        let line = line.unwrap();
        if !sent && line.contains(cue) {
            std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
            sent = true;
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    assert!(sent, "never saw {cue:?}:\n{}", lines.join("\n"));
    (status.code().unwrap_or(-1), lines.join("\n"))
}

#[test]
fn ctrl_c_says_what_state_the_account_is_in_and_exits_130() {
    let emu = Emulator::start();
    emu.set_faults(serde_json::json!({"latency_ms": 400}));
    // While reading: nothing was changed.
    let (code, stderr) =
        interrupt_when(&emu, &["plan", "-p", "cis-aws-foundations", "-vv"], "call sts:GetCallerIdentity");
    assert_eq!(code, 130, "{stderr}");
    assert!(stderr.contains("error: interrupted: nothing was changed"), "{stderr}");
    // During apply: how far it got, and what to do.
    let (code, stderr) =
        interrupt_when(&emu, &["apply", "-p", "cis-aws-foundations", "--auto-approve"], ": creating...");
    assert_eq!(code, 130, "{stderr}");
    assert!(stderr.contains("interrupted: apply stopped part-way:"), "{stderr}");
    assert!(stderr.contains("in progress"), "{stderr}");
    assert!(stderr.contains("run `ctguard apply` again to finish"), "{stderr}");
}

#[test]
fn test_refuses_input_that_is_not_cloudtrail() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("export.json");
    std::fs::write(&other, r#"{"records": [{"eventName": "DeleteTrail"}]}"#).unwrap();
    let r = run(ctguard_cmd().args(["test", other.to_str().unwrap()]));
    r.expect(1);
    assert!(
        r.stderr.contains("export.json: line 1: not CloudTrail records: found an object with keys records"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("CloudTrail spells it \"Records\""), "{}", r.stderr);

    let empty_dir = tempfile::tempdir().unwrap();
    let r = run(ctguard_cmd().args(["test", empty_dir.path().to_str().unwrap()]));
    r.expect(1);
    assert!(r.stderr.contains("no CloudTrail log files in it"), "{}", r.stderr);

    let r = run(ctguard_cmd().args(["test", "-"]).stdin(Stdio::null()));
    r.expect(1);
    assert!(r.stderr.contains("-: no CloudTrail records in it: it is empty"), "{}", r.stderr);
}

#[test]
fn test_replays_the_good_files_and_the_json_document_stays_whole() {
    let dir = tempfile::tempdir().unwrap();
    let record = |name: &str| {
        serde_json::json!({"eventVersion": "1.09", "eventName": name, "eventSource": "cloudtrail.amazonaws.com",
            "awsRegion": "us-east-1", "recipientAccountId": "123456789012", "eventTime": "2026-11-27T10:00:00Z",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice"}})
    };
    std::fs::write(dir.path().join("a.json"), serde_json::json!({"Records": [record("StopLogging")]}).to_string())
        .unwrap();
    std::fs::write(dir.path().join("b.json"), format!("{{\"Records\": [{}, {{\"eventName\": ]}}", record("X")))
        .unwrap();
    std::fs::write(dir.path().join("c.json"), serde_json::json!({"Records": [record("DeleteTrail")]}).to_string())
        .unwrap();
    let r = run(ctguard_cmd().args(["test", "--format", "json", dir.path().to_str().unwrap()]));
    r.expect(1);
    let doc: Value = serde_json::from_str(&r.stdout).expect("a complete JSON document");
    assert_eq!(doc["summary"]["records"], 3, "{doc}");
    assert_eq!(doc["errors"].as_array().unwrap().len(), 1, "{doc}");
    assert!(doc["errors"][0]["input"].as_str().unwrap().ends_with("b.json"));
    assert!(doc["errors"][0]["message"].as_str().unwrap().starts_with("record 2 (line 1): not JSON"), "{doc}");
    // One document only: the error is in it, not after it.
    assert!(r.stdout.trim_end().ends_with('}'));
    // Alarms carry their threshold, and a hit says which detections alert and which only count.
    let tampering = doc["detections"].as_array().unwrap().iter().find(|d| d["id"] == "monitoring-tampering").unwrap();
    assert_eq!(tampering["threshold"]["alerts_on_one_match"], true, "{tampering}");
    let volume = doc["detections"].as_array().unwrap().iter().find(|d| d["id"] == "agent-api-call-volume").unwrap();
    assert_eq!(volume["threshold"]["threshold"], 500.0);
    assert_eq!(volume["threshold"]["alerts_on_one_match"], false);
    let event = &doc["events"][0];
    assert!(event["alerts"].as_array().unwrap().iter().any(|a| a == "ctguard-monitoring-tampering"), "{event}");
}

#[test]
fn count_only_matches_are_shown_apart_from_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let record = serde_json::json!({"eventVersion": "1.09", "eventName": "DescribeInstances",
        "eventSource": "ec2.amazonaws.com", "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
        "eventTime": "2026-11-27T10:00:00Z", "readOnly": true,
        "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/AIAgentRole/s"}});
    let path = dir.path().join("agent.jsonl");
    std::fs::write(&path, format!("{record}\n")).unwrap();
    let r = run(ctguard_cmd().args(["test", "-v", path.to_str().unwrap()]));
    r.expect(0);
    assert!(r.stdout.contains("+ count agent-api-call-volume"), "{}", r.stdout);
    assert!(r.stdout.contains("alarm ctguard-agent-api-call-volume fires at > 500 in 1 x 600 s"), "{}", r.stdout);
    assert!(r.stdout.contains("0 raised an alert, 1 only counted towards an alarm"), "{}", r.stdout);
    // Without -v a record that only counts is not listed, only counted.
    let r = run(ctguard_cmd().args(["test", path.to_str().unwrap()]));
    assert!(!r.stdout.contains("+ count"), "{}", r.stdout);
}

#[test]
fn var_takes_a_list_in_toml_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jsonl");
    std::fs::write(&path, "{\"eventName\": \"X\", \"eventSource\": \"ec2.amazonaws.com\"}\n").unwrap();
    let r = run(ctguard_cmd().args([
        "test",
        "--format",
        "json",
        "--var",
        r#"agent_roles=["Bot*", "Other*"]"#,
        path.to_str().unwrap(),
    ]));
    r.expect(0);
    for role in ["assumed-role/Bot", "assumed-role/Other"] {
        assert!(r.stdout.contains(role), "{role}: {}", &r.stdout[..r.stdout.len().min(2000)]);
    }
    let r = run(ctguard_cmd().args(["test", "--var", "agent_roles=[\"unclosed", path.to_str().unwrap()]));
    r.expect(1);
    assert!(r.stderr.contains("--var agent_roles=[\"unclosed: expected a TOML list"), "{}", r.stderr);
}

#[test]
fn colour_follows_the_environment_conventions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jsonl");
    std::fs::write(&path, "{\"eventName\": \"StopLogging\", \"eventSource\": \"cloudtrail.amazonaws.com\"}\n").unwrap();
    let out = |env: &[(&str, &str)]| {
        let mut cmd = ctguard_cmd();
        cmd.args(["test", path.to_str().unwrap()]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(&mut cmd).stdout
    };
    assert!(!out(&[]).contains('\u{1b}'), "no colour into a pipe");
    assert!(out(&[("CLICOLOR_FORCE", "1")]).contains('\u{1b}'), "CLICOLOR_FORCE forces colour");
    assert!(!out(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).contains('\u{1b}'), "NO_COLOR wins");
}
