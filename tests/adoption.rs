//! A lived-in account, prepared through the SDK before ctguard runs: resources under declared
//! names that ctguard did not make are adopted only with `--adopt`; changes that delete or
//! shorten audit data are made only with `--allow-data-loss`; a renamed trail replaces the old
//! one without a moment with no trail. Every refusal is checked where it matters: exit 1, the
//! resource and the flag named, nothing changed in the account and no mutating call made.

mod common;

use common::*;
use serde_json::{Value, json};

const TOPIC: &str = "ctguard-alerts";

fn policy_json(text: &str) -> Value {
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8().unwrap();
    serde_json::from_str(&decoded).unwrap()
}

fn change<'a>(plan: &'a Value, address: &str) -> &'a Value {
    let changes = plan["resource_changes"].as_array().unwrap();
    changes.iter().find(|c| c["address"] == address).unwrap_or_else(|| panic!("no change for {address} in {plan:#}"))
}

async fn retention(emu: &Emulator) -> Option<i32> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&emu.sdk().await);
    let groups = logs.describe_log_groups().log_group_name_prefix(LOG_GROUP).send().await.unwrap();
    let group = groups.log_groups().iter().find(|g| g.log_group_name() == Some(LOG_GROUP));
    group.expect("the log group exists").retention_in_days()
}

/// One event in the log group, so that it holds data a shorter retention would delete.
async fn put_event(logs: &aws_sdk_cloudwatchlogs::Client) {
    logs.create_log_stream().log_group_name(LOG_GROUP).log_stream_name("old").send().await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let event = aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(now).message("kept").build().unwrap();
    let req = logs.put_log_events().log_group_name(LOG_GROUP).log_stream_name("old").log_events(event);
    req.send().await.unwrap();
}

#[track_caller]
fn assert_nothing_changed(emu: &Emulator) {
    let writes = emu.mutating_requests();
    assert!(writes.is_empty(), "a refused apply made mutating calls: {writes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_resources_are_adopted_only_with_adopt_and_lost_retention_only_with_allow_data_loss() {
    let emu = Emulator::start();
    let conf = emu.sdk().await;
    let s3 = aws_sdk_s3::Client::new(&conf);
    let sns = aws_sdk_sns::Client::new(&conf);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    // Someone else's bucket, topic and a "never expire" log group, under the declared names.
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let topic = sns.create_topic().name(TOPIC).send().await.unwrap().topic_arn().unwrap().to_string();
    logs.create_log_group().log_group_name(LOG_GROUP).send().await.unwrap();
    // With data in them: expiry lost from an empty bucket or group would delete nothing.
    s3.put_object().bucket(BUCKET).key("AWSLogs/old.json.gz").body(b"{}".to_vec().into()).send().await.unwrap();
    put_event(&logs).await;

    let plan = emu.ctguard(&["plan", "--format", "json"]);
    plan.expect(0);
    let doc: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(doc["summary"]["adopt"], 3, "{}", doc["summary"]);
    let bucket = change(&doc, &format!("s3_bucket.{BUCKET}"));
    let group = change(&doc, &format!("logs_log_group.{LOG_GROUP}"));
    for c in [bucket, group, change(&doc, &format!("sns_topic.{TOPIC}"))] {
        assert_eq!(c["actions"], json!(["adopt"]), "{c:#}");
        assert!(c["notes"][0].as_str().unwrap().contains("apply --adopt tags it"), "{c:#}");
        let paths: Vec<&str> = c["changes"].as_array().unwrap().iter().map(|d| d["path"].as_str().unwrap()).collect();
        assert!(paths.contains(&"tags.ctguard:profile"), "adopting shows what it changes: {paths:?}");
    }
    assert_eq!(
        group["destructive"],
        json!(["retention goes from for ever to 365 days: older data is deleted"]),
        "{group:#}"
    );
    let bucket_losses = bucket["destructive"].as_array().unwrap();
    assert!(bucket_losses.iter().any(|r| r.as_str().unwrap().contains("lifecycle expires current versions")));

    let human = emu.ctguard(&["plan"]);
    assert!(human.stdout.contains(&format!("  @ logs_log_group.{LOG_GROUP} (us-east-1)\n")), "{}", human.stdout);
    assert!(
        human.stdout.contains("  ! data loss: retention goes from for ever to 365 days: older data is deleted\n"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("\nPlan: 3 to adopt, "), "{}", human.stdout);

    // Neither flag: refused, each foreign resource and each loss named with its flag.
    emu.clear_requests();
    let refused = emu.ctguard(&["apply", "--auto-approve"]);
    refused.expect(1);
    for expected in [
        format!("s3_bucket.{BUCKET} exists and was not created by ctguard: pass --adopt to take it over"),
        format!("sns_topic.{TOPIC} exists and was not created by ctguard: pass --adopt"),
        format!("logs_log_group.{LOG_GROUP} exists and was not created by ctguard: pass --adopt"),
        format!(
            "logs_log_group.{LOG_GROUP} retention goes from for ever to 365 days: older data is deleted: pass \
             --allow-data-loss to allow it"
        ),
        "nothing was changed".to_string(),
    ] {
        assert!(refused.stderr.contains(&expected), "stderr lacks {expected:?}:\n{}", refused.stderr);
    }
    assert_nothing_changed(&emu);
    assert!(s3.get_bucket_tagging().bucket(BUCKET).send().await.is_err(), "the bucket was tagged");
    assert_eq!(retention(&emu).await, None);
    assert!(sns.list_tags_for_resource().resource_arn(&topic).send().await.unwrap().tags().is_empty());

    // --adopt alone: the loss is still refused, the adoption no longer is.
    emu.clear_requests();
    let refused = emu.ctguard(&["apply", "--auto-approve", "--adopt"]);
    refused.expect(1);
    assert!(refused.stderr.contains("--allow-data-loss"), "{}", refused.stderr);
    assert!(!refused.stderr.contains("pass --adopt"), "{}", refused.stderr);
    assert_nothing_changed(&emu);

    // Both: adopted, tagged, converged; and from then on ctguard's own.
    let run = emu.ctguard(&["apply", "--auto-approve", "--adopt", "--allow-data-loss"]);
    run.expect(0);
    assert!(run.stdout.contains("Apply complete! Resources: 3 adopted, "), "{}", run.stdout);
    let tags = s3.get_bucket_tagging().bucket(BUCKET).send().await.unwrap();
    assert!(tags.tag_set().iter().any(|t| t.key() == "ctguard:profile" && t.value() == "ai-agent-guard"));
    assert_eq!(retention(&emu).await, Some(365));
    let tags = sns.list_tags_for_resource().resource_arn(&topic).send().await.unwrap();
    assert!(tags.tags().iter().any(|t| t.key() == "ctguard:profile"));
    emu.ctguard(&["plan", "--detailed-exitcode"]).expect(0);
    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn shortening_audit_data_of_an_owned_resource_needs_allow_data_loss() {
    let emu = Emulator::start();
    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    let conf = emu.sdk().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let s3 = aws_sdk_s3::Client::new(&conf);
    // By hand: keep events for ever; in the bucket policy, a Deny statement of ctguard's that
    // the profile no longer declares (as an older profile might have left) and someone
    // else's Deny, which ctguard keeps and so does not count.
    logs.delete_retention_policy().log_group_name(LOG_GROUP).send().await.unwrap();
    put_event(&logs).await;
    let mut pol = policy_json(s3.get_bucket_policy().bucket(BUCKET).send().await.unwrap().policy().unwrap());
    let deny = |sid: &str| {
        json!({"Sid": sid, "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
               "Resource": format!("arn:aws:s3:::{BUCKET}/*")})
    };
    let foreign = deny("NoLogDeletion");
    pol["Statement"].as_array_mut().unwrap().extend([deny("CtguardNoLogDeletion"), foreign.clone()]);
    s3.put_bucket_policy().bucket(BUCKET).policy(pol.to_string()).send().await.unwrap();

    let plan = emu.ctguard(&["plan"]);
    plan.expect(0);
    for expected in [
        "! data loss: retention goes from for ever to 365 days: older data is deleted",
        "! data loss: removes Deny statement \"CtguardNoLogDeletion\" from the bucket policy",
        "Data loss: 2 change(s) delete or shorten audit data or coverage: apply makes them only with --allow-data-loss.",
    ] {
        assert!(plan.stdout.contains(expected), "plan lacks {expected:?}:\n{}", plan.stdout);
    }
    assert!(
        !plan.stdout.contains("\"NoLogDeletion\""),
        "someone else's statement is not ctguard's to judge:\n{}",
        plan.stdout
    );

    emu.clear_requests();
    let refused = emu.ctguard(&["apply", "--auto-approve"]);
    refused.expect(1);
    assert!(refused.stderr.contains(&format!("logs_log_group.{LOG_GROUP} retention goes from for ever")));
    assert!(refused.stderr.contains(&format!("s3_bucket.{BUCKET} removes Deny statement \"CtguardNoLogDeletion\"")));
    assert!(refused.stderr.contains("pass --allow-data-loss"), "{}", refused.stderr);
    assert_nothing_changed(&emu);
    assert_eq!(retention(&emu).await, None);

    emu.ctguard(&["apply", "--auto-approve", "--allow-data-loss"]).expect(0);
    assert_eq!(retention(&emu).await, Some(365));
    let pol = policy_json(s3.get_bucket_policy().bucket(BUCKET).send().await.unwrap().policy().unwrap());
    let sids: Vec<&str> = pol["Statement"].as_array().unwrap().iter().filter_map(|s| s["Sid"].as_str()).collect();
    assert!(!sids.contains(&"CtguardNoLogDeletion"), "{sids:?}");
    assert!(pol["Statement"].as_array().unwrap().contains(&foreign), "someone else's Deny was kept: {pol:#}");
    emu.ctguard(&["plan", "--detailed-exitcode"]).expect(0);
}

fn trail_arn(name: &str) -> String {
    format!("arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{name}")
}

/// The trails the bucket policy lets CloudTrail write with.
async fn admitted(s3: &aws_sdk_s3::Client) -> Value {
    let pol = policy_json(s3.get_bucket_policy().bucket(BUCKET).send().await.unwrap().policy().unwrap());
    let write = pol["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == "CtguardCloudTrailWrite").unwrap();
    write["Condition"]["StringEquals"]["aws:SourceArn"].clone()
}

/// Index in the request log of the first CloudTrail call named `operation`.
fn position(log: &[Request], operation: &str) -> Option<usize> {
    log.iter().position(|r| r.operation.ends_with(&format!(".{operation}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renamed_trail_replaces_the_old_one_which_keeps_logging_until_data_loss_is_allowed() {
    let emu = Emulator::start();
    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    let conf = emu.sdk().await;
    let ct = aws_sdk_cloudtrail::Client::new(&conf);
    let s3 = aws_sdk_s3::Client::new(&conf);
    let renamed = ["--var", "trail_name=renamed-audit"];
    let with = |args: &[&'static str]| [args, &renamed[..]].concat();

    let plan = emu.ctguard(&with(&["plan"]));
    plan.expect(0);
    for expected in [
        "# cloudtrail_trail.renamed-audit will be created",
        "# cloudtrail_trail.ctguard-audit will be destroyed",
        "  ! data loss: deletes the trail: the events it records are no longer logged\n",
        "left over: apply leaves it in place unless --allow-data-loss is given",
    ] {
        assert!(plan.stdout.contains(expected), "plan lacks {expected:?}:\n{}", plan.stdout);
    }

    // Without the flag: the new trail is made and logs, the old one stays, logging, and the
    // bucket admits both.
    emu.clear_requests();
    let run = emu.ctguard(&with(&["apply", "--auto-approve"]));
    run.expect(0);
    assert!(run.stdout.contains("left in place cloudtrail_trail.ctguard-audit: deletes the trail"), "{}", run.stdout);
    assert_eq!(position(&emu.requests(), "DeleteTrail"), None);
    for name in [TRAIL, "renamed-audit"] {
        assert_eq!(ct.get_trail_status().name(name).send().await.unwrap().is_logging(), Some(true), "{name}");
    }
    let both = json!([trail_arn("renamed-audit"), trail_arn(TRAIL)]);
    let mut got = admitted(&s3).await;
    got.as_array_mut().unwrap().sort_by_key(|v| v.as_str().unwrap().to_string());
    let mut want = both.clone();
    want.as_array_mut().unwrap().sort_by_key(|v| v.as_str().unwrap().to_string());
    assert_eq!(got, want);

    // plan and verify name it as left over; verify fails until someone decides.
    let again = emu.ctguard(&with(&["plan", "--detailed-exitcode"]));
    again.expect(2);
    assert!(again.stdout.contains("# cloudtrail_trail.ctguard-audit will be destroyed"), "{}", again.stdout);
    assert!(again.stdout.contains("Plan: 0 to add, 0 to change, 1 to destroy."), "{}", again.stdout);
    let verify = emu.ctguard(&with(&["verify"]));
    verify.expect(2);
    assert!(verify.stdout.contains("cloudtrail_trail.ctguard-audit"), "{}", verify.stdout);
    assert!(verify.stdout.contains("no longer declared"), "{}", verify.stdout);

    // With the flag: deleted, and the bucket narrowed to the declared trail.
    emu.clear_requests();
    emu.ctguard(&with(&["apply", "--auto-approve", "--allow-data-loss"])).expect(0);
    assert!(position(&emu.requests(), "DeleteTrail").is_some());
    let trails = ct.describe_trails().send().await.unwrap();
    let names: Vec<&str> = trails.trail_list().iter().filter_map(|t| t.name()).collect();
    assert_eq!(names, ["renamed-audit"]);
    assert_eq!(admitted(&s3).await, json!(trail_arn("renamed-audit")));
    emu.ctguard(&with(&["plan", "--detailed-exitcode"])).expect(0);
    emu.ctguard(&with(&["verify"])).expect(0);

    // In one apply with the flag: the old trail goes only once the new one logs.
    emu.clear_requests();
    let third = ["apply", "--auto-approve", "--allow-data-loss", "--var", "trail_name=third-audit"];
    emu.ctguard(&third).expect(0);
    let log = emu.requests();
    let (created, started, deleted) =
        (position(&log, "CreateTrail"), position(&log, "StartLogging"), position(&log, "DeleteTrail"));
    let status_after_start = log
        .iter()
        .enumerate()
        .skip(started.unwrap())
        .position(|(_, r)| r.operation.ends_with(".GetTrailStatus"))
        .map(|i| i + started.unwrap());
    assert!(created < started && started < status_after_start && status_after_start < deleted, "{log:?}");
    emu.ctguard(&["plan", "--detailed-exitcode", "--var", "trail_name=third-audit"]).expect(0);
}

async fn log_group_key(emu: &Emulator) -> Option<String> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&emu.sdk().await);
    let groups = logs.describe_log_groups().log_group_name_prefix(LOG_GROUP).send().await.unwrap();
    let group = groups.log_groups().iter().find(|g| g.log_group_name() == Some(LOG_GROUP));
    group.expect("the log group exists").kms_key_id().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
async fn taking_the_log_groups_key_off_needs_allow_data_loss_and_a_changed_key_is_drift() {
    let emu = Emulator::start();
    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    let key = log_group_key(&emu).await.expect("the shipped profile encrypts the log group");

    // Someone points the group at another key: drift, repaired by apply.
    let kms = aws_sdk_kms::Client::new(&emu.sdk().await);
    let other = kms.create_key().send().await.unwrap().key_metadata().unwrap().arn().unwrap().to_string();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&emu.sdk().await);
    logs.associate_kms_key().log_group_name(LOG_GROUP).kms_key_id(&other).send().await.unwrap();
    let plan = emu.ctguard(&["plan", "--detailed-exitcode", "--format", "json"]);
    plan.expect(2);
    let doc: Value = serde_json::from_str(&plan.stdout).unwrap();
    let drift = change(&doc, &format!("logs_log_group.{LOG_GROUP}"));
    assert_eq!(drift["changes"][0]["path"], "kms_key_id", "{drift:#}");
    assert_eq!(drift["changes"][0]["before"], other.as_str());
    assert_eq!(drift["destructive"], json!([]), "another key still encrypts: {drift:#}");
    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    assert_eq!(log_group_key(&emu).await.as_deref(), Some(key.as_str()));

    // A profile without the key would leave new events without it: refused unless asked.
    let dir = tempfile::tempdir().unwrap();
    run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", dir.path().to_str().unwrap()])).expect(0);
    let path = dir.path().join("profiles/ai-agent-guard.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let line = "kms = { alias = \"alias/ctguard-logs\", policy = \"logs-key-policy.json\" }\n";
    assert!(text.contains(line));
    std::fs::write(&path, text.replace(line, "")).unwrap();
    let profile = path.to_str().unwrap();
    let plan = emu.ctguard(&["plan", "-p", profile]);
    let lost = format!("! data loss: stops encrypting new events with KMS key {key} (DisassociateKmsKey)");
    assert!(plan.stdout.contains(&lost), "{}", plan.stdout);
    emu.clear_requests();
    let refused = emu.ctguard(&["apply", "--auto-approve", "-p", profile]);
    refused.expect(1);
    assert!(refused.stderr.contains("pass --allow-data-loss"), "{}", refused.stderr);
    assert_nothing_changed(&emu);
    assert_eq!(log_group_key(&emu).await.as_deref(), Some(key.as_str()));
    emu.ctguard(&["apply", "--auto-approve", "--allow-data-loss", "-p", profile]).expect(0);
    assert_eq!(log_group_key(&emu).await, None);
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", profile]).expect(0);
}
