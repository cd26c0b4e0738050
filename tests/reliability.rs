//! Apply under faults: injected errors and dropped connections, a process killed at many
//! points, two applies at once, a non-retryable error on one resource. Each ends with the
//! account read back through the SDK: converged, nothing duplicated, nothing orphaned.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

const TOPIC: &str = "ctguard-alerts";
const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:ctguard-test-alerts";

/// The shipped profile, exported and edited as text: `regions` listed (the emulator would
/// otherwise report every region), an SQS subscriber beside the email one, and `edit` for more.
fn profile(dir: &Path, regions: &[&str], edit: impl FnOnce(String) -> String) -> PathBuf {
    run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", dir.to_str().unwrap()])).expect(0);
    let path = dir.join("profiles/ai-agent-guard.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        "regions = \"all-enabled\"\n",
        &format!("regions = {}\n", serde_json::to_string(regions).unwrap()),
        1,
    );
    let text = text.replacen(
        "endpoint = \"${alert_email}\"\n",
        &format!(
            "endpoint = \"${{alert_email}}\"\n\n[[alerts.subscriptions]]\nprotocol = \"sqs\"\nendpoint = \"{QUEUE}\"\n"
        ),
        1,
    );
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// Keeps the first `n` blocks that start with `header`, up to the next blank-line-separated
/// section that starts with something else.
fn keep_first(text: &str, header: &str, n: usize) -> String {
    let starts: Vec<usize> = text.match_indices(header).map(|(i, _)| i).collect();
    let Some(&cut) = starts.get(n) else { return text.to_string() };
    let last = *starts.last().unwrap();
    // The end of the last block: the next section header that is not `header`, or the end.
    let end = text[last..]
        .match_indices("\n[")
        .map(|(i, _)| last + i + 1)
        .find(|&i| !text[i..].starts_with(header))
        .unwrap_or(text.len());
    format!("{}{}", &text[..cut], &text[end..])
}

/// A small account for tests that repeat applies: one region, the trail with its KMS key and
/// log delivery, the topic with two subscribers, the event rules, three alarms, AWS Config
/// with two rules.
fn small_profile(dir: &Path) -> PathBuf {
    profile(dir, &["us-east-1"], |t| {
        let t = keep_first(&t, "[[alarms]]\n", 3);
        keep_first(&t, "[[config.rules]]\n", 2)
    })
}

/// How many of each kind the profile declares, from a plan of the account (read-only).
fn declared(emu: &Emulator, profile: &str) -> BTreeMap<String, usize> {
    let plan = emu.ctguard(&["plan", "--format", "json", "-p", profile]);
    plan.expect(0);
    let doc: Value = serde_json::from_str(&plan.stdout).unwrap();
    let mut counts = BTreeMap::new();
    for c in doc["resource_changes"].as_array().unwrap() {
        *counts.entry(c["kind"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    counts
}

fn regional<C>(conf: &aws_config::SdkConfig, region: &str, make: impl FnOnce(&aws_config::SdkConfig) -> C) -> C {
    make(&conf.to_builder().region(aws_config::Region::new(region.to_string())).build())
}

/// Reads the account through the SDK and checks that it holds exactly what the profile
/// declares: one of each named thing, one key for the alias and no spare ctguard key, one
/// subscription per endpoint, one target per rule, every alarm, filter and rule counted.
async fn assert_exactly_declared(emu: &Emulator, want: &BTreeMap<String, usize>, regions: &[&str]) {
    let conf = emu.sdk().await;
    let n = |kind: &str| want.get(kind).copied().unwrap_or(0);

    let ct = aws_sdk_cloudtrail::Client::new(&conf);
    let trails = ct.describe_trails().send().await.unwrap();
    let names: Vec<&str> = trails.trail_list().iter().filter_map(|t| t.name()).collect();
    assert_eq!(names, [TRAIL], "trails");

    let s3 = aws_sdk_s3::Client::new(&conf);
    let buckets = s3.list_buckets().send().await.unwrap();
    assert_eq!(buckets.buckets().len(), n("s3_bucket"), "buckets: {:?}", buckets.buckets());

    // KMS: each alias names one key, and no other live key carries ctguard's tags.
    let kms = aws_sdk_kms::Client::new(&conf);
    let mut aliased = Vec::new();
    for alias in [KEY_ALIAS, "alias/ctguard-logs", "alias/ctguard-alerts"] {
        let key = kms.describe_key().key_id(alias).send().await.unwrap();
        aliased.push(key.key_metadata().unwrap().key_id().to_string());
    }
    aliased.sort();
    let mut live_ctguard_keys = Vec::new();
    for key in kms.list_keys().limit(1000).send().await.unwrap().keys() {
        let id = key.key_id().unwrap();
        let meta = kms.describe_key().key_id(id).send().await.unwrap();
        let state = meta.key_metadata().unwrap().key_state().unwrap().clone();
        if state == aws_sdk_kms::types::KeyState::PendingDeletion {
            continue;
        }
        let tags = kms.list_resource_tags().key_id(id).send().await.unwrap();
        if tags.tags().iter().any(|t| t.tag_key().starts_with("ctguard:")) {
            live_ctguard_keys.push(id.to_string());
        }
    }
    live_ctguard_keys.sort();
    assert_eq!(live_ctguard_keys, aliased, "live KMS keys tagged by ctguard");

    let sns = aws_sdk_sns::Client::new(&conf);
    let topics = sns.list_topics().send().await.unwrap();
    assert_eq!(topics.topics().len(), 1, "topics: {:?}", topics.topics());
    let arn = format!("arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}");
    let subs = sns.list_subscriptions_by_topic().topic_arn(&arn).send().await.unwrap();
    let mut endpoints: Vec<&str> = subs.subscriptions().iter().filter_map(|s| s.endpoint()).collect();
    endpoints.sort();
    assert_eq!(endpoints, [QUEUE, "security-alerts@example.com"], "one subscription per endpoint");
    let all_subs = sns.list_subscriptions().send().await.unwrap();
    assert_eq!(all_subs.subscriptions().len(), 2, "subscriptions in the account");

    let iam = aws_sdk_iam::Client::new(&conf);
    let roles = iam.list_roles().path_prefix("/ctguard/").send().await.unwrap();
    assert_eq!(roles.roles().len(), n("iam_role"), "roles under /ctguard/");

    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let groups = logs.describe_log_groups().send().await.unwrap();
    assert_eq!(groups.log_groups().len(), n("logs_log_group"), "log groups");
    let filters = logs.describe_metric_filters().log_group_name(LOG_GROUP).send().await.unwrap();
    assert_eq!(filters.metric_filters().len(), n("logs_metric_filter"), "metric filters");
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let alarms = cw.describe_alarms().max_records(100).send().await.unwrap();
    assert_eq!(alarms.metric_alarms().len(), n("cloudwatch_alarm"), "alarms");

    let (mut rules, mut config_rules, mut recorders, mut channels) = (0, 0, 0, 0);
    for region in regions {
        let eb = regional(&conf, region, aws_sdk_eventbridge::Client::new);
        let listed = eb.list_rules().send().await.unwrap();
        for r in listed.rules() {
            let name = r.name().unwrap();
            let targets = eb.list_targets_by_rule().rule(name).send().await.unwrap();
            assert_eq!(targets.targets().len(), 1, "targets of {region}/{name}: {:?}", targets.targets());
        }
        rules += listed.rules().len();
        let cfg = regional(&conf, region, aws_sdk_config::Client::new);
        config_rules += cfg.describe_config_rules().send().await.unwrap().config_rules().len();
        recorders += cfg.describe_configuration_recorders().send().await.unwrap().configuration_recorders().len();
        channels += cfg.describe_delivery_channels().send().await.unwrap().delivery_channels().len();
    }
    assert_eq!(rules, n("events_rule"), "event rules");
    assert_eq!(config_rules, n("config_rule"), "config rules");
    assert_eq!(recorders, n("config_recorder"), "config recorders");
    assert_eq!(channels, n("config_delivery_channel"), "delivery channels");
}

/// The plan after an apply: nothing to do.
fn assert_converged(emu: &Emulator, profile: &str) {
    let plan = emu.ctguard(&["plan", "--detailed-exitcode", "-p", profile]);
    assert_eq!(plan.code, 0, "a plan after apply still has changes:\n{}\n{}", plan.stdout, plan.stderr);
}

/// An apply in the background, its stdout and stderr going to files named `run` beside the
/// profile: a pipe nobody reads while the test polls would fill (64 KiB) and stall the apply.
fn spawn_apply(emu: &Emulator, profile: &str, run: &str) -> Child {
    let log = |name: &str| Stdio::from(std::fs::File::create(log_file(profile, run, name)).unwrap());
    ctguard_cmd()
        .env("AWS_ENDPOINT_URL", &emu.endpoint)
        .args(["apply", "--auto-approve", "-p", profile])
        .stdout(log("stdout"))
        .stderr(log("stderr"))
        .spawn()
        .unwrap()
}

fn log_file(profile: &str, run: &str, stream: &str) -> PathBuf {
    Path::new(profile).with_extension(format!("{run}.{stream}"))
}

/// What the apply spawned as `run` wrote.
fn output(profile: &str, run: &str) -> String {
    let read = |stream| std::fs::read_to_string(log_file(profile, run, stream)).unwrap_or_default();
    format!("--- stdout\n{}\n--- stderr\n{}", read("stdout"), read("stderr"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apply_killed_at_any_point_is_finished_by_the_next() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let p = small_profile(dir.path());
    let p = p.to_str().unwrap();
    let want = declared(&emu, p);
    // Each run on the same account is killed after one more write than the last, counted
    // from its own start: every run resumes what the previous ones left and stops somewhere
    // new, until a run outlives its kill point and finishes.
    let mut killed = 0;
    for n in 1.. {
        emu.clear_requests();
        let mut child = spawn_apply(&emu, p, "killed");
        let finished = loop {
            if child.try_wait().unwrap().is_some() {
                break true;
            }
            if emu.mutating_requests().len() >= n {
                // SIGKILL: no cleanup, no flushing; what a crash or an OOM kill leaves.
                child.kill().unwrap();
                break false;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let status = child.wait().unwrap();
        if finished {
            assert_eq!(status.code(), Some(0), "{}", output(p, "killed"));
            break;
        }
        killed += 1;
    }
    assert!(killed >= 8, "only {killed} runs were killed before one finished: the kill points prove little");
    eprintln!("{killed} runs killed before one finished");
    let finish = emu.ctguard(&["apply", "--auto-approve", "-p", p]);
    finish.expect(0);
    assert_converged(&emu, p);
    assert_exactly_declared(&emu, &want, &["us-east-1"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_applies_at_once_both_finish_with_one_set_of_resources() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let p = small_profile(dir.path());
    let p = p.to_str().unwrap();
    let want = declared(&emu, p);
    let mut runs = [("a", spawn_apply(&emu, p, "a")), ("b", spawn_apply(&emu, p, "b"))];
    for (run, child) in &mut runs {
        assert_eq!(child.wait().unwrap().code(), Some(0), "{}", output(p, run));
    }
    assert_converged(&emu, p);
    assert_exactly_declared(&emu, &want, &["us-east-1"]).await;
}

/// Every fault the proxy can inject, for a random share of requests.
const ALL_FAULTS: [&str; 5] = ["throttling", "http-500", "http-503", "drop-before", "drop-after"];

/// The `-v` retry lines of a run: (attempt, max, "service:Operation").
fn retries(stderr: &str) -> Vec<(u32, u32, String)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("retry "))
        .map(|rest| {
            let (count, rest) = rest.split_once(' ').unwrap();
            let (attempt, max) = count.split_once('/').unwrap();
            let call = rest.split_once(' ').unwrap().0;
            (attempt.parse().unwrap(), max.parse().unwrap(), call.to_string())
        })
        .collect()
}

// Three seeds, three fresh accounts; separate tests so they run side by side (most of their
// time is the SDK's backoff).
#[tokio::test(flavor = "multi_thread")]
async fn apply_converges_while_a_fifth_of_requests_fail_seed_1() {
    converges_under_faults(1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_converges_while_a_fifth_of_requests_fail_seed_2() {
    converges_under_faults(2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_converges_while_a_fifth_of_requests_fail_seed_3() {
    converges_under_faults(3).await;
}

async fn converges_under_faults(seed: u64) {
    // The shipped profile, in two regions so that the rules forward across regions.
    let regions = ["us-east-1", "eu-west-1"];
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path(), &regions, |t| t);
    let p = p.to_str().unwrap();
    let want = declared(&emu, p);
    emu.set_faults(serde_json::json!({"share": 0.2, "kinds": ALL_FAULTS, "seed": seed}));
    emu.clear_requests();
    let run = emu.ctguard(&["apply", "--auto-approve", "-v", "-p", p]);
    let log = emu.requests();
    let faulted = log.iter().filter(|r| r.fault.is_some()).count();
    for kind in ALL_FAULTS {
        assert!(log.iter().any(|r| r.fault.as_deref() == Some(kind)), "seed {seed}: no {kind} was injected");
    }
    // With 20% of requests failing, a call fails all five attempts once in 3,125 calls: about
    // one apply in eight of this size (some 400 calls) loses one. Apply must then say so,
    // name the fault, and be finished by the next run.
    let mut runs = vec![run];
    while runs.last().unwrap().code != 0 && runs.len() < 3 {
        let last = runs.last().unwrap();
        assert_eq!(last.code, 1, "seed {seed}:\n{}\n{}", last.stdout, last.stderr);
        assert!(
            [
                "ThrottlingException",
                "Throttling",
                "SlowDown",
                "InternalFailure",
                "InternalError",
                "ServiceUnavailable",
                "dispatch failure",
                "timed out",
                "timeout",
                "HTTP 5"
            ]
            .iter()
            .any(|f| last.stdout.contains(f) || last.stderr.contains(f)),
            "seed {seed}: a run failed for something other than an injected fault:\n{}\n{}",
            last.stdout,
            last.stderr
        );
        runs.push(emu.ctguard(&["apply", "--auto-approve", "-v", "-p", p]));
    }
    runs.last().unwrap().expect(0);
    let first = &runs[0];
    let reported = retries(&first.stderr);
    eprintln!(
        "seed {seed}: {} requests, {faulted} faulted, {} retries reported, {} run(s)",
        log.len(),
        reported.len(),
        runs.len()
    );

    // Retries were made, reported with -v, and none went past the fifth attempt.
    assert!(!reported.is_empty(), "seed {seed}: no retry reported with -v:\n{}", first.stderr);
    assert!(reported.iter().all(|(n, max, _)| *max == 5 && (2..=5).contains(n)), "seed {seed}: {reported:?}");
    // Every reported retry follows an injected fault, and nearly every fault is followed
    // by a retry (the exceptions: a call's fifth failure, and CreateKey, which ctguard
    // retries itself after looking for the key a lost response may have made).
    assert!(reported.len() <= faulted, "seed {seed}: {} retries for {faulted} faults", reported.len());
    assert!(reported.len() * 10 >= faulted * 8, "seed {seed}: {} retries for {faulted} faults", reported.len());

    emu.set_faults(serde_json::json!({"share": 0.0}));
    assert_converged(&emu, p);
    assert_exactly_declared(&emu, &want, &regions).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_retryable_error_stops_only_what_depends_on_it() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let p = small_profile(dir.path());
    let p = p.to_str().unwrap();
    let denied = "ctguard-cis-4.2-console-signin-without-mfa";
    let kept = ["ctguard-cis-4.1-unauthorized-api-calls", "ctguard-cis-4.3-root-account-usage"];
    emu.force_error("PutMetricFilter", Some(denied), "AccessDeniedException");

    let run = emu.ctguard(&["apply", "--auto-approve", "-p", p]);
    run.expect(1);
    assert!(run.stdout.contains("Apply failed: 1 failed, 1 skipped;"), "{}", run.stdout);
    let failed: Vec<&str> = run.stdout.lines().filter(|l| l.trim_start().starts_with("failed ")).collect();
    assert_eq!(failed.len(), 1, "{}", run.stdout);
    let line = failed[0];
    assert!(line.contains(&format!("logs_metric_filter.{denied}: ")), "{line}");
    assert!(line.contains("AccessDeniedException: AccessDeniedException injected for PutMetricFilter"), "{line}");
    assert!(
        run.stdout.contains(&format!("skipped 1 resource(s) that depend on logs_metric_filter.{denied}")),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("apply did not complete"), "{}", run.stderr);
    // Not retried: AccessDenied will not change by asking again.
    let forced = emu.requests().iter().filter(|r| r.fault.as_deref() == Some("forced")).count();
    assert_eq!(forced, 1, "the denied call was sent {forced} times");

    // Everything that does not need the denied filter was built.
    let conf = emu.sdk().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let filters = logs.describe_metric_filters().log_group_name(LOG_GROUP).send().await.unwrap();
    let mut names: Vec<&str> = filters.metric_filters().iter().filter_map(|f| f.filter_name()).collect();
    names.sort();
    assert_eq!(names, kept);
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let alarms = cw.describe_alarms().send().await.unwrap();
    let mut names: Vec<&str> = alarms.metric_alarms().iter().filter_map(|a| a.alarm_name()).collect();
    names.sort();
    assert_eq!(names, kept);
    let ct = aws_sdk_cloudtrail::Client::new(&conf);
    assert_eq!(ct.get_trail_status().name(TRAIL).send().await.unwrap().is_logging(), Some(true));

    // Once allowed, the next apply finishes the job.
    emu.set_faults(serde_json::json!({"force": []}));
    let want = declared(&emu, p);
    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);
    assert_converged(&emu, p);
    assert_exactly_declared(&emu, &want, &["us-east-1"]).await;
}
