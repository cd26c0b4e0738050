//! The plan as machine output, pinned: `plan --format json` (and the human plan where it says
//! most) for both shipped profiles on an empty account, on the account apply converged, and on
//! that account after hand-made drift of every kind. The JSON document is an API; a change to
//! it must be deliberate. Only what moto makes up afresh each run is normalised (key ids).
//!
//! To accept a deliberate change: `CTGUARD_BLESS=1 cargo test --test plan_golden`, then review
//! the diff of tests/golden/.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::{Value, json};

fn golden(name: &str) -> PathBuf {
    repo().join("tests/golden").join(name)
}

/// Replaces every UUID-shaped run (KMS key ids, and the ARNs that carry them) with `<uuid>`.
fn normalise(text: &str) -> String {
    let shape = |s: &[u8]| {
        s.len() == 36
            && s.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if i + 36 <= bytes.len() && shape(&bytes[i..i + 36]) {
            out.push_str("<uuid>");
            i += 36;
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Compares `actual` with the golden file, or rewrites the file under CTGUARD_BLESS=1.
#[track_caller]
fn check(name: &str, actual: &str) {
    let actual = normalise(actual);
    let path = golden(name);
    if std::env::var_os("CTGUARD_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (CTGUARD_BLESS=1 writes it)", path.display()));
    if expected != actual {
        let line = expected.lines().zip(actual.lines()).position(|(a, b)| a != b).unwrap_or(0);
        let show = |t: &str| t.lines().skip(line.saturating_sub(3)).take(8).collect::<Vec<_>>().join("\n");
        panic!(
            "{} differs from the output, first at line {}:\n--- golden\n{}\n--- actual\n{}",
            path.display(),
            line + 1,
            show(&expected),
            show(&actual)
        );
    }
}

fn plan(emu: &Emulator, profile: &str, format: &str) -> String {
    let run = emu.ctguard(&["plan", "--format", format, "-p", profile]);
    run.expect(0);
    run.stdout.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn cis_aws_foundations_plan_is_stable() {
    let emu = Emulator::start();
    let p = "cis-aws-foundations";
    check("cis-aws-foundations.empty.json", &plan(&emu, p, "json"));
    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);
    check("cis-aws-foundations.converged.json", &plan(&emu, p, "json"));
    check("cis-aws-foundations.converged.txt", &plan(&emu, p, "human"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ai_agent_guard_plan_is_stable() {
    let emu = Emulator::start();
    let p = "ai-agent-guard";
    check("ai-agent-guard.empty.json", &plan(&emu, p, "json"));
    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);
    check("ai-agent-guard.converged.json", &plan(&emu, p, "json"));
    check("ai-agent-guard.converged.txt", &plan(&emu, p, "human"));
    drift_every_kind(&emu).await;
    check("ai-agent-guard.drifted.json", &plan(&emu, p, "json"));
    check("ai-agent-guard.drifted.txt", &plan(&emu, p, "human"));
}

fn policy_json(text: &str) -> Value {
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8().unwrap();
    serde_json::from_str(&decoded).unwrap()
}

/// One hand-made change per resource kind, read back by plan through every live field it
/// compares: drift, an adopted (untagged) resource, a resource another profile owns, and one
/// this profile owns but no longer declares.
async fn drift_every_kind(emu: &Emulator) {
    let conf = emu.sdk().await;
    let s3 = aws_sdk_s3::Client::new(&conf);
    use aws_sdk_s3::types::{BucketVersioningStatus, PublicAccessBlockConfiguration, VersioningConfiguration};
    let suspended = VersioningConfiguration::builder().status(BucketVersioningStatus::Suspended).build();
    s3.put_bucket_versioning().bucket(BUCKET).versioning_configuration(suspended).send().await.unwrap();
    let open = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(false)
        .restrict_public_buckets(true)
        .build();
    s3.put_public_access_block().bucket(BUCKET).public_access_block_configuration(open).send().await.unwrap();
    s3.delete_bucket_lifecycle().bucket(ACCESS_BUCKET).send().await.unwrap();
    // Untagged: plan proposes adopting it.
    s3.delete_bucket_tagging().bucket(ACCESS_BUCKET).send().await.unwrap();

    let ct = aws_sdk_cloudtrail::Client::new(&conf);
    ct.stop_logging().name(TRAIL).send().await.unwrap();
    ct.update_trail().name(TRAIL).enable_log_file_validation(false).send().await.unwrap();

    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    logs.put_retention_policy().log_group_name(LOG_GROUP).retention_in_days(7).send().await.unwrap();
    let filters = logs.describe_metric_filters().log_group_name(LOG_GROUP).send().await.unwrap();
    let f = filters.metric_filters().iter().find(|f| f.filter_name() == Some("ctguard-cis-4.3-root-account-usage"));
    let f = f.expect("the root-usage filter exists");
    logs.put_metric_filter()
        .log_group_name(LOG_GROUP)
        .filter_name(f.filter_name().unwrap())
        .filter_pattern("{ $.userIdentity.type = \"Root\" }")
        .set_metric_transformations(Some(f.metric_transformations().to_vec()))
        .send()
        .await
        .unwrap();

    let iam = aws_sdk_iam::Client::new(&conf);
    let name = "ctguard-cloudtrail-to-logs";
    let mut inline =
        policy_json(iam.get_role_policy().role_name(ROLE).policy_name(name).send().await.unwrap().policy_document());
    inline["Statement"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Sid": "Sneaky", "Effect": "Allow", "Action": "logs:DeleteLogGroup", "Resource": "*"}));
    iam.put_role_policy().role_name(ROLE).policy_name(name).policy_document(inline.to_string()).send().await.unwrap();
    let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]});
    let extra = iam.create_policy().policy_name("extra").policy_document(doc.to_string()).send().await.unwrap();
    let arn = extra.policy().unwrap().arn().unwrap();
    iam.attach_role_policy().role_name(ROLE).policy_arn(arn).send().await.unwrap();

    let kms = aws_sdk_kms::Client::new(&conf);
    let key = kms.describe_key().key_id(KEY_ALIAS).send().await.unwrap();
    let id = key.key_metadata().unwrap().key_id().to_string();
    kms.disable_key_rotation().key_id(&id).send().await.unwrap();
    kms.update_key_description().key_id(&id).description("edited by hand").send().await.unwrap();

    let sns = aws_sdk_sns::Client::new(&conf);
    let topic = format!("arn:aws:sns:{REGION}:{ACCOUNT}:ctguard-alerts");
    sns.subscribe().topic_arn(&topic).protocol("email").endpoint("someone-else@example.com").send().await.unwrap();
    // Another profile's tag: plan reports a conflict.
    let theirs = aws_sdk_sns::types::Tag::builder().key("ctguard:profile").value("other").build().unwrap();
    sns.tag_resource().resource_arn(&topic).tags(theirs).send().await.unwrap();

    let events = aws_sdk_eventbridge::Client::new(&conf);
    let rule = "ctguard-destructive-actions";
    events.disable_rule().name(rule).send().await.unwrap();
    let targets = events.list_targets_by_rule().rule(rule).send().await.unwrap();
    let ids: Vec<String> = targets.targets().iter().map(|t| t.id().to_string()).collect();
    events.remove_targets().rule(rule).set_ids(Some(ids)).send().await.unwrap();
    // A rule this profile owns that it no longer declares: plan proposes deleting it.
    let owned = aws_sdk_eventbridge::types::Tag::builder().key("ctguard:profile").value("ai-agent-guard").build();
    events
        .put_rule()
        .name("ctguard-retired-rule")
        .event_pattern(r#"{"source":["aws.ec2"]}"#)
        .tags(owned.unwrap())
        .send()
        .await
        .unwrap();

    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let alarms = cw.describe_alarms().alarm_names("ctguard-cis-4.3-root-account-usage").send().await.unwrap();
    let a = &alarms.metric_alarms()[0];
    cw.put_metric_alarm()
        .alarm_name(a.alarm_name().unwrap())
        .metric_name(a.metric_name().unwrap())
        .namespace(a.namespace().unwrap())
        .statistic(a.statistic().unwrap().clone())
        .period(a.period().unwrap())
        .evaluation_periods(a.evaluation_periods().unwrap())
        .threshold(5.0)
        .comparison_operator(a.comparison_operator().unwrap().clone())
        .treat_missing_data("breaching")
        .send()
        .await
        .unwrap();

    let config = aws_sdk_config::Client::new(&conf);
    config.stop_configuration_recorder().configuration_recorder_name("ctguard").send().await.unwrap();
    let channels = config.describe_delivery_channels().send().await.unwrap();
    let mut channel = channels.delivery_channels()[0].clone();
    channel.s3_key_prefix = Some("elsewhere".into());
    config.put_delivery_channel().delivery_channel(channel).send().await.unwrap();
    config.delete_config_rule().config_rule_name("ctguard-root-access-key").send().await.unwrap();
}
