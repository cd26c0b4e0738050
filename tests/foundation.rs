//! End to end against the emulator: apply builds the bucket, trail and log delivery with every
//! setting; a second apply changes nothing; drift is found and repaired.

mod common;

use common::*;
use serde_json::{Value, json};

fn policy_json(text: &str) -> Value {
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8().unwrap();
    serde_json::from_str(&decoded).unwrap()
}

fn statement<'a>(doc: &'a Value, sid: &str) -> &'a Value {
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid} in {doc}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_builds_everything_and_a_second_apply_changes_nothing() {
    let emu = Emulator::start();
    // One block per resource, to count them.
    let run = emu.ctguard(&["apply", "--auto-approve", "--expand"]);
    run.expect(0);
    let planned = run.stdout.matches(" will be created\n").count();
    assert!(planned > 100, "{}", run.stdout);
    let done = format!("Apply complete! Resources: {planned} added, 0 changed, 0 destroyed.");
    assert!(run.stdout.contains(&done), "{}", run.stdout);

    let conf = emu.sdk().await;
    let s3 = aws_sdk_s3::Client::new(&conf);

    // The audit bucket, read back through the SDK.
    let v = s3.get_bucket_versioning().bucket(BUCKET).send().await.unwrap();
    assert_eq!(v.status().map(|s| s.as_str()), Some("Enabled"));
    // SSE-KMS with the trail's key, by ARN, and an S3 Bucket Key.
    let kms = aws_sdk_kms::Client::new(&conf);
    let trail_key = kms.describe_key().key_id(KEY_ALIAS).send().await.unwrap();
    let trail_key_arn = trail_key.key_metadata().unwrap().arn().unwrap().to_string();
    let enc = s3.get_bucket_encryption().bucket(BUCKET).send().await.unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    let default = rule.apply_server_side_encryption_by_default().unwrap();
    assert_eq!(default.sse_algorithm().as_str(), "aws:kms");
    assert_eq!(default.kms_master_key_id(), Some(trail_key_arn.as_str()));
    assert_eq!(rule.bucket_key_enabled(), Some(true));
    // Server access logs cannot be delivered to an SSE-KMS bucket: the access-log bucket keeps SSE-S3.
    let enc = s3.get_bucket_encryption().bucket(ACCESS_BUCKET).send().await.unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(rule.apply_server_side_encryption_by_default().unwrap().sse_algorithm().as_str(), "AES256");
    let pab = s3.get_public_access_block().bucket(BUCKET).send().await.unwrap();
    let pab = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        [pab.block_public_acls(), pab.ignore_public_acls(), pab.block_public_policy(), pab.restrict_public_buckets()],
        [Some(true); 4]
    );
    let own = s3.get_bucket_ownership_controls().bucket(BUCKET).send().await.unwrap();
    assert_eq!(own.ownership_controls().unwrap().rules()[0].object_ownership().as_str(), "BucketOwnerEnforced");
    let pol = policy_json(s3.get_bucket_policy().bucket(BUCKET).send().await.unwrap().policy().unwrap());
    let trail_arn = format!("arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{TRAIL}");
    let write = statement(&pol, "CtguardCloudTrailWrite");
    assert_eq!(write["Principal"]["Service"], "cloudtrail.amazonaws.com");
    assert_eq!(write["Resource"], format!("arn:aws:s3:::{BUCKET}/cloudtrail/AWSLogs/{ACCOUNT}/*"));
    assert_eq!(write["Condition"]["StringEquals"]["s3:x-amz-acl"], "bucket-owner-full-control");
    assert_eq!(write["Condition"]["StringEquals"]["aws:SourceArn"], trail_arn.as_str());
    assert_eq!(statement(&pol, "CtguardCloudTrailAclCheck")["Action"], "s3:GetBucketAcl");
    let tls = statement(&pol, "CtguardDenyInsecureTransport");
    assert_eq!(
        (tls["Effect"].clone(), tls["Condition"]["Bool"]["aws:SecureTransport"].clone()),
        (json!("Deny"), json!("false"))
    );
    let lc = s3.get_bucket_lifecycle_configuration().bucket(BUCKET).send().await.unwrap();
    let rule = &lc.rules()[0];
    let days: Vec<(i32, &str)> =
        rule.transitions().iter().map(|t| (t.days().unwrap(), t.storage_class().unwrap().as_str())).collect();
    assert_eq!(days, [(30, "STANDARD_IA"), (90, "GLACIER")]);
    assert_eq!(rule.expiration().and_then(|e| e.days()), Some(2555));
    assert_eq!(rule.noncurrent_version_expiration().and_then(|e| e.noncurrent_days()), Some(90));
    let logging = s3.get_bucket_logging().bucket(BUCKET).send().await.unwrap();
    assert_eq!(logging.logging_enabled().unwrap().target_bucket(), ACCESS_BUCKET);

    // The access-log bucket grants the logging service by policy, not by ACL.
    let pol = policy_json(s3.get_bucket_policy().bucket(ACCESS_BUCKET).send().await.unwrap().policy().unwrap());
    let grant = statement(&pol, "CtguardS3ServerAccessLogsPolicy");
    assert_eq!(grant["Principal"]["Service"], "logging.s3.amazonaws.com");
    assert_eq!(grant["Condition"]["ArnLike"]["aws:SourceArn"], format!("arn:aws:s3:::{BUCKET}"));
    let own = s3.get_bucket_ownership_controls().bucket(ACCESS_BUCKET).send().await.unwrap();
    assert_eq!(own.ownership_controls().unwrap().rules()[0].object_ownership().as_str(), "BucketOwnerEnforced");

    // The KMS key.
    let key = kms.describe_key().key_id(KEY_ALIAS).send().await.unwrap();
    let key = key.key_metadata().unwrap();
    assert!(kms.get_key_rotation_status().key_id(key.key_id()).send().await.unwrap().key_rotation_enabled());
    let kpol = policy_json(
        kms.get_key_policy().key_id(key.key_id()).policy_name("default").send().await.unwrap().policy().unwrap(),
    );
    let enc = statement(&kpol, "CtguardCloudTrailEncryptsLogs");
    assert_eq!(
        enc["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"],
        format!("arn:aws:cloudtrail:*:{ACCOUNT}:trail/*")
    );
    // What the key needs to also be an SSE-KMS audit bucket's key (README, KMS grants).
    assert_eq!(statement(&kpol, "CtguardCloudTrailDecryptsWithBucketKey")["Action"], "kms:Decrypt");
    let config = statement(&kpol, "CtguardConfigDeliversToBucket");
    assert_eq!(config["Principal"]["Service"], "config.amazonaws.com");
    assert_eq!(config["Condition"]["StringEquals"]["aws:SourceAccount"], ACCOUNT);

    // The trail.
    let ct = aws_sdk_cloudtrail::Client::new(&conf);
    let t = ct.get_trail().name(TRAIL).send().await.unwrap();
    let t = t.trail().unwrap();
    assert_eq!(t.is_multi_region_trail(), Some(true));
    assert_eq!(t.include_global_service_events(), Some(true));
    assert_eq!(t.log_file_validation_enabled(), Some(true));
    assert_eq!(t.s3_bucket_name(), Some(BUCKET));
    assert_eq!(t.s3_key_prefix(), Some("cloudtrail"));
    assert_eq!(t.kms_key_id(), Some(key.arn().unwrap()));
    assert_eq!(
        t.cloud_watch_logs_log_group_arn(),
        Some(format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}:*").as_str())
    );
    assert_eq!(t.cloud_watch_logs_role_arn(), Some(format!("arn:aws:iam::{ACCOUNT}:role/ctguard/{ROLE}").as_str()));
    assert_eq!(ct.get_trail_status().name(TRAIL).send().await.unwrap().is_logging(), Some(true));
    let sel = ct.get_event_selectors().trail_name(TRAIL).send().await.unwrap();
    // All management events, deletes in the audit bucket and the agents' S3 object calls, as
    // advanced selectors only.
    assert!(sel.event_selectors().is_empty());
    let categories: Vec<&[String]> = sel
        .advanced_event_selectors()
        .iter()
        .flat_map(|s| s.field_selectors().iter().filter(|f| f.field() == "eventCategory").map(|f| f.equals()))
        .collect();
    assert_eq!(categories.len(), 3);
    assert!(
        categories.iter().any(|c| c == &["Management".to_string()])
            && categories.iter().any(|c| c == &["Data".to_string()])
    );

    // CloudWatch Logs delivery: group, role trust, and a least-privilege inline policy.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let groups = logs.describe_log_groups().log_group_name_prefix(LOG_GROUP).send().await.unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(365));
    // Encrypted with a key of its own, which only this region's Logs service may use, and only
    // for this group.
    let logs_key = kms.describe_key().key_id("alias/ctguard-logs").send().await.unwrap();
    let logs_key = logs_key.key_metadata().unwrap();
    assert_eq!(groups.log_groups()[0].kms_key_id(), logs_key.arn());
    assert!(kms.get_key_rotation_status().key_id(logs_key.key_id()).send().await.unwrap().key_rotation_enabled());
    let lpol = policy_json(
        kms.get_key_policy().key_id(logs_key.key_id()).policy_name("default").send().await.unwrap().policy().unwrap(),
    );
    let grant = statement(&lpol, "CtguardLogsEncryptsLogGroup");
    assert_eq!(grant["Principal"]["Service"], format!("logs.{REGION}.amazonaws.com"));
    assert_eq!(
        grant["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"],
        format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}")
    );
    // The alert topic, encrypted with the alerts key.
    let sns = aws_sdk_sns::Client::new(&conf);
    let topic = format!("arn:aws:sns:{REGION}:{ACCOUNT}:ctguard-alerts");
    let attrs = sns.get_topic_attributes().topic_arn(&topic).send().await.unwrap();
    assert_eq!(
        attrs.attributes().and_then(|a| a.get("KmsMasterKeyId")).map(String::as_str),
        Some("alias/ctguard-alerts")
    );
    let alerts_key = kms.describe_key().key_id("alias/ctguard-alerts").send().await.unwrap();
    let alerts_key = alerts_key.key_metadata().unwrap().key_id().to_string();
    assert!(kms.get_key_rotation_status().key_id(&alerts_key).send().await.unwrap().key_rotation_enabled());
    let iam = aws_sdk_iam::Client::new(&conf);
    let role = iam.get_role().role_name(ROLE).send().await.unwrap();
    let trust = policy_json(role.role().unwrap().assume_role_policy_document().unwrap());
    let assume = &trust["Statement"][0];
    assert_eq!(assume["Principal"]["Service"], "cloudtrail.amazonaws.com");
    // No condition: CloudTrail documents none for this role (README, policy conditions).
    assert!(assume.get("Condition").is_none(), "{trust}");
    let inline = iam.get_role_policy().role_name(ROLE).policy_name("ctguard-cloudtrail-to-logs").send().await.unwrap();
    let inline = policy_json(inline.policy_document());
    assert_eq!(inline["Statement"][0]["Action"], json!(["logs:CreateLogStream", "logs:PutLogEvents"]));
    assert!(
        inline["Statement"][0]["Resource"].as_str().unwrap().contains(&format!("log-group:{LOG_GROUP}:log-stream:"))
    );
    assert!(role.role().unwrap().tags().iter().any(|t| t.key() == "ctguard:profile" && t.value() == "ai-agent-guard"));

    // Converged: a second apply makes no mutating call, plan and verify are clean.
    emu.clear_requests();
    let again = emu.ctguard(&["apply", "--auto-approve"]);
    again.expect(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    let writes = emu.mutating_requests();
    assert!(writes.is_empty(), "second apply mutated: {writes:?}");
    assert!(!emu.requests().is_empty(), "the request log recorded nothing: the count above proves nothing");
    emu.ctguard(&["plan", "--detailed-exitcode"]).expect(0);
    let verify = emu.ctguard(&["verify"]);
    verify.expect(0);
    assert!(verify.stdout.contains("verify: OK"), "{}", verify.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_reported_by_plan_and_verify_and_repaired_by_apply() {
    let emu = Emulator::start();
    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    let conf = emu.sdk().await;
    let s3 = aws_sdk_s3::Client::new(&conf);
    let ct = aws_sdk_cloudtrail::Client::new(&conf);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let iam = aws_sdk_iam::Client::new(&conf);

    // Hand-made drift, one of each kind.
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let suspended = VersioningConfiguration::builder().status(BucketVersioningStatus::Suspended).build();
    s3.put_bucket_versioning().bucket(BUCKET).versioning_configuration(suspended).send().await.unwrap();
    let mut pol = policy_json(s3.get_bucket_policy().bucket(BUCKET).send().await.unwrap().policy().unwrap());
    pol["Statement"].as_array_mut().unwrap().retain(|s| s["Sid"] != "CtguardDenyInsecureTransport");
    s3.put_bucket_policy().bucket(BUCKET).policy(pol.to_string()).send().await.unwrap();
    ct.stop_logging().name(TRAIL).send().await.unwrap();
    ct.update_trail().name(TRAIL).enable_log_file_validation(false).send().await.unwrap();
    logs.put_retention_policy().log_group_name(LOG_GROUP).retention_in_days(7).send().await.unwrap();
    let name = "ctguard-cloudtrail-to-logs";
    let mut inline =
        policy_json(iam.get_role_policy().role_name(ROLE).policy_name(name).send().await.unwrap().policy_document());
    inline["Statement"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Sid": "Sneaky", "Effect": "Allow", "Action": "logs:DeleteLogGroup", "Resource": "*"}));
    iam.put_role_policy().role_name(ROLE).policy_name(name).policy_document(inline.to_string()).send().await.unwrap();

    let plan = emu.ctguard(&["plan", "--detailed-exitcode"]);
    plan.expect(2);
    for expected in [
        "~ versioning = \"Suspended\" -> \"Enabled\"",
        "+ Sid       = \"CtguardDenyInsecureTransport\"",
        "~ is_logging = false -> true",
        "~ log_file_validation_enabled = false -> true",
        "~ retention_in_days = 7 -> 365",
        "- Sid      = \"Sneaky\"",
    ] {
        // Spacing aligns `=` signs within a block; compare words, not columns.
        let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words(&plan.stdout).contains(&words(expected)), "plan lacks {expected:?}:\n{}", plan.stdout);
    }
    assert!(plan.stdout.contains("Plan: 0 to add, 4 to change, 0 to destroy."), "{}", plan.stdout);

    let verify = emu.ctguard(&["verify", "--format", "json"]);
    verify.expect(2);
    let doc: Value = serde_json::from_str(&verify.stdout).unwrap();
    assert_eq!(doc["status"], "drift");
    let paths: Vec<&str> = doc["drift"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["changes"].as_array().unwrap())
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    for p in ["versioning", "is_logging", "log_file_validation_enabled", "retention_in_days"] {
        assert!(paths.contains(&p), "verify JSON lacks {p}: {paths:?}");
    }

    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    // Repaired in AWS, not just in ctguard's opinion.
    let v = s3.get_bucket_versioning().bucket(BUCKET).send().await.unwrap();
    assert_eq!(v.status().map(|s| s.as_str()), Some("Enabled"));
    assert_eq!(ct.get_trail_status().name(TRAIL).send().await.unwrap().is_logging(), Some(true));
    let inline =
        policy_json(iam.get_role_policy().role_name(ROLE).policy_name(name).send().await.unwrap().policy_document());
    assert_eq!(inline["Statement"].as_array().unwrap().len(), 1);
    emu.ctguard(&["verify"]).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_profile_fails_before_any_mutating_call() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    emu.ctguard(&["profiles", "export", "ai-agent-guard", dir.path().to_str().unwrap()]).expect(0);
    let path = dir.path().join("profiles/ai-agent-guard.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace("retention_days = 365", "retention_days = 366");
    std::fs::write(&path, text).unwrap();

    let run = emu.ctguard(&["apply", "--auto-approve", "-p", path.to_str().unwrap()]);
    run.expect(1);
    assert!(run.stderr.contains("cloudwatch_logs.retention_days"), "{}", run.stderr);
    assert!(run.stderr.contains("expected one of 1, 3, 5"), "{}", run.stderr);
    assert!(run.stderr.contains("ai-agent-guard.toml"), "{}", run.stderr);
    assert!(emu.requests().is_empty(), "a profile error must stop ctguard before it calls AWS: {:?}", emu.requests());

    // An unresolvable placeholder in a template is caught the same way.
    let template = dir.path().join("policies/cloudtrail-logs-trust.json");
    std::fs::write(
        &path,
        std::fs::read_to_string(&path).unwrap().replace("retention_days = 366", "retention_days = 365"),
    )
    .unwrap();
    std::fs::write(&template, r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": "${service}"}}]}"#)
        .unwrap();
    let run = emu.ctguard(&["apply", "--auto-approve", "-p", path.to_str().unwrap()]);
    run.expect(1);
    assert!(
        run.stderr.contains(
            "cloudtrail-logs-trust.json: $.Statement[0].Principal.Service: unresolved placeholder ${service}"
        ),
        "{}",
        run.stderr
    );
    assert!(emu.mutating_requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn existing_resources_not_created_by_ctguard_are_adopted_only_when_asked() {
    let emu = Emulator::start();
    let s3 = emu.s3().await;
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let plan = emu.ctguard(&["plan", "--format", "json"]);
    plan.expect(0);
    let doc: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(doc["format_version"], "1");
    let bucket = doc["resource_changes"].as_array().unwrap().iter().find(|c| c["name"] == BUCKET).unwrap();
    assert_eq!(bucket["actions"], json!(["adopt"]));
    assert!(bucket["notes"][0].as_str().unwrap().contains("not created by ctguard"));
    let creates =
        doc["resource_changes"].as_array().unwrap().iter().filter(|c| c["actions"] == json!(["create"])).count();
    assert_eq!(doc["summary"], json!({"adopt": 1, "add": creates, "change": 0, "destroy": 0}));
    let refused = emu.ctguard(&["apply", "--auto-approve"]);
    refused.expect(1);
    assert!(
        refused.stderr.contains(&format!("s3_bucket.{BUCKET} exists and was not created by ctguard: pass --adopt"))
    );
    assert!(s3.get_bucket_tagging().bucket(BUCKET).send().await.is_err());
    // The bucket had no lifecycle: adopting it adds expiry, which is data loss too.
    emu.ctguard(&["apply", "--auto-approve", "--adopt", "--allow-data-loss"]).expect(0);
    let tags = s3.get_bucket_tagging().bucket(BUCKET).send().await.unwrap();
    assert!(tags.tag_set().iter().any(|t| t.key() == "ctguard:profile"));
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_refuses_without_a_terminal_or_auto_approve() {
    let emu = Emulator::start();
    let run = emu.ctguard(&["apply"]);
    run.expect(1);
    assert!(run.stderr.contains("--auto-approve"), "{}", run.stderr);
    assert!(emu.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn only_owned_resources_the_profile_dropped_are_deleted() {
    let emu = Emulator::start();
    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    let ct = aws_sdk_cloudtrail::Client::new(&emu.sdk().await);
    // A trail someone else made: ctguard must leave it alone.
    ct.create_trail().name("team-trail").s3_bucket_name(BUCKET).send().await.unwrap();

    let plan = emu.ctguard(&["plan", "--var", "trail_name=renamed-audit"]);
    plan.expect(0);
    assert!(plan.stdout.contains("# cloudtrail_trail.ctguard-audit will be destroyed"), "{}", plan.stdout);
    assert!(plan.stdout.contains("# cloudtrail_trail.renamed-audit will be created"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("team-trail"), "{}", plan.stdout);

    // Deleting a trail loses coverage: only with --allow-data-loss (tests/adoption.rs has the rest).
    emu.ctguard(&["apply", "--auto-approve", "--allow-data-loss", "--var", "trail_name=renamed-audit"]).expect(0);
    let trails = ct.describe_trails().send().await.unwrap();
    let mut names: Vec<&str> = trails.trail_list().iter().filter_map(|t| t.name()).collect();
    names.sort();
    assert_eq!(names, ["renamed-audit", "team-trail"]);
    emu.ctguard(&["verify", "--var", "trail_name=renamed-audit"]).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_left_without_its_alias_by_an_interrupted_run_is_reused() {
    let emu = Emulator::start();
    let kms = aws_sdk_kms::Client::new(&emu.sdk().await);
    // What an apply killed between CreateKey and CreateAlias leaves behind.
    let tag = aws_sdk_kms::types::Tag::builder().tag_key("ctguard:alias").tag_value(KEY_ALIAS).build().unwrap();
    let orphan = kms.create_key().tags(tag).send().await.unwrap();
    let orphan = orphan.key_metadata().unwrap().key_id().to_string();

    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    let named = kms.describe_key().key_id(KEY_ALIAS).send().await.unwrap();
    assert_eq!(named.key_metadata().unwrap().key_id(), orphan);
    // The profile's three keys, and no second one for the trail's alias.
    assert_eq!(kms.list_keys().send().await.unwrap().keys().len(), 3, "a second key was created");
    emu.ctguard(&["verify"]).expect(0);
}

#[test]
fn a_closed_stdout_ends_quietly() {
    use std::io::{BufRead, BufReader};
    let emu = Emulator::start();
    let mut child = ctguard_cmd()
        .env("AWS_ENDPOINT_URL", &emu.endpoint)
        .arg("plan")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The plan for an empty account is thousands of lines: read one, then hang up (`| head -1`).
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("ctguard will perform"), "{first}");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Nothing but warnings (the shipped alert address is an example one).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().all(|l| l.starts_with("warning:")), "{stderr}");
}
