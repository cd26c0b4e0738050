//! Inside a resource, ctguard owns only its own parts. Each test prepares, through the SDK,
//! resources under the declared names that already hold someone else's statements, lifecycle
//! rules, objects and role policies, then applies: every foreign part survives as it was, the
//! plan afterwards is empty, and verify names the foreign parts that defeat a guarantee.
//!
//! The prepared resources carry this profile's ownership tag, as resources an earlier apply
//! made would: adoption of untagged resources is tested with the `adopt` action.

mod common;

use common::*;
use serde_json::{Value, json};

const PROFILE: &str = "ai-agent-guard";
const TOPIC: &str = "ctguard-alerts";

fn topic_arn() -> String {
    format!("arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}")
}

fn policy_json(text: &str) -> Value {
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8().unwrap();
    serde_json::from_str(&decoded).unwrap()
}

fn by_sid<'a>(doc: &'a Value, sid: &str) -> Option<&'a Value> {
    doc["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == sid)
}

/// Someone else's bucket statements: a benign grant to another account, and a Deny that would
/// stop CloudTrail (a service principal has no organization id, so StringNotEquals holds).
fn bucket_statements() -> (Value, Value) {
    let team = json!({"Sid": "TeamReads", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                      "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{BUCKET}/exports/*")});
    let org_only = json!({"Sid": "OrgOnlyWrites", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                          "Resource": format!("arn:aws:s3:::{BUCKET}/*"),
                          "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-abc123"}}});
    (team, org_only)
}

fn owner_s3() -> aws_sdk_s3::types::Tag {
    aws_sdk_s3::types::Tag::builder().key("ctguard:profile").value(PROFILE).build().unwrap()
}

async fn prepare_bucket(conf: &aws_config::SdkConfig) {
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
        Tagging,
    };
    let s3 = aws_sdk_s3::Client::new(conf);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let tagging = Tagging::builder().tag_set(owner_s3()).build().unwrap();
    s3.put_bucket_tagging().bucket(BUCKET).tagging(tagging).send().await.unwrap();
    let (team, org_only) = bucket_statements();
    let doc = json!({"Version": "2012-10-17", "Statement": [team, org_only]});
    s3.put_bucket_policy().bucket(BUCKET).policy(doc.to_string()).send().await.unwrap();
    let rule = |id: &str, prefix: &str, days: i32| {
        LifecycleRule::builder()
            .id(id)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
            .expiration(LifecycleExpiration::builder().days(days).build())
            .build()
            .unwrap()
    };
    let conf = BucketLifecycleConfiguration::builder()
        .rules(rule("team-exports", "exports/", 30))
        .rules(rule("purge-all", "", 30))
        .build()
        .unwrap();
    s3.put_bucket_lifecycle_configuration().bucket(BUCKET).lifecycle_configuration(conf).send().await.unwrap();
    let body = aws_sdk_s3::primitives::ByteStream::from_static(b"a,b\n1,2\n");
    s3.put_object().bucket(BUCKET).key("exports/data.csv").body(body).send().await.unwrap();
}

/// The statement KMS's default key policy gives the account, as the console writes it.
fn account_default() -> Value {
    json!({"Sid": "Enable IAM User Permissions", "Effect": "Allow",
           "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "kms:*", "Resource": "*"})
}

fn other_trail_decrypts() -> Value {
    json!({"Sid": "OtherTrailDecrypts", "Effect": "Allow",
           "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:role/forensics")},
           "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"})
}

async fn prepare_key(conf: &aws_config::SdkConfig) {
    let kms = aws_sdk_kms::Client::new(conf);
    let doc = json!({"Version": "2012-10-17", "Statement": [account_default(), other_trail_decrypts()]});
    let owner = aws_sdk_kms::types::Tag::builder().tag_key("ctguard:profile").tag_value(PROFILE).build().unwrap();
    let key = kms.create_key().policy(doc.to_string()).tags(owner).send().await.unwrap();
    let id = key.key_metadata().unwrap().key_id();
    kms.create_alias().alias_name(KEY_ALIAS).target_key_id(id).send().await.unwrap();
}

fn anyone_subscribes() -> Value {
    json!({"Sid": "Anyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sns:Subscribe",
           "Resource": topic_arn()})
}

fn budgets_publish() -> Value {
    json!({"Sid": "BudgetsPublish", "Effect": "Allow", "Principal": {"Service": "budgets.amazonaws.com"},
           "Action": "SNS:Publish", "Resource": topic_arn()})
}

async fn prepare_topic(conf: &aws_config::SdkConfig) {
    let sns = aws_sdk_sns::Client::new(conf);
    let owner = aws_sdk_sns::types::Tag::builder().key("ctguard:profile").value(PROFILE).build().unwrap();
    let doc =
        json!({"Version": "2008-10-17", "Id": "team-topic", "Statement": [budgets_publish(), anyone_subscribes()]});
    sns.create_topic().name(TOPIC).attributes("Policy", doc.to_string()).tags(owner).send().await.unwrap();
}

fn break_glass() -> Value {
    json!({"Sid": "BreakGlass", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:role/admin")},
           "Action": "sts:AssumeRole"})
}

/// Returns the ARN of the managed policy attached to the role.
async fn prepare_role(conf: &aws_config::SdkConfig) -> String {
    let iam = aws_sdk_iam::Client::new(conf);
    let trust = json!({"Version": "2012-10-17", "Statement": [break_glass()]});
    let owner = aws_sdk_iam::types::Tag::builder().key("ctguard:profile").value(PROFILE).build().unwrap();
    let req = iam.create_role().role_name(ROLE).path("/ctguard/").assume_role_policy_document(trust.to_string());
    req.tags(owner).send().await.unwrap();
    let extra = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"}]});
    let req = iam.put_role_policy().role_name(ROLE).policy_name("team-extra");
    req.policy_document(extra.to_string()).send().await.unwrap();
    let managed = iam.create_policy().policy_name("team-managed").policy_document(extra.to_string()).send().await;
    let arn = managed.unwrap().policy().unwrap().arn().unwrap().to_string();
    iam.attach_role_policy().role_name(ROLE).policy_arn(&arn).send().await.unwrap();
    arn
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_keeps_every_foreign_part_and_verify_names_those_that_defeat_a_guarantee() {
    let emu = Emulator::start();
    let conf = emu.sdk().await;
    prepare_bucket(&conf).await;
    prepare_key(&conf).await;
    prepare_topic(&conf).await;
    let managed = prepare_role(&conf).await;

    // plan shows ctguard's own statements only: someone else's are neither drift nor removed.
    let plan = emu.ctguard(&["plan", "-p", PROFILE]);
    plan.expect(0);
    for foreign in ["TeamReads", "OrgOnlyWrites", "OtherTrailDecrypts", "Anyone", "BudgetsPublish", "BreakGlass"] {
        assert!(!plan.stdout.contains(foreign), "plan shows {foreign}:\n{}", plan.stdout);
    }
    assert!(!plan.stdout.contains("purge-all"), "{}", plan.stdout);
    // The other inline policy is named as left alone, never as a change.
    let mentions: Vec<&str> = plan.stdout.lines().filter(|l| l.contains("team-extra")).collect();
    assert!(mentions.iter().all(|l| l.contains("left alone")), "{mentions:?}");
    let ours = |l: &&str| l.contains("Sid") && l.contains("\"CtguardCloudTrailWrite\"");
    assert!(plan.stdout.lines().any(|l| ours(&l)), "{}", plan.stdout);

    emu.ctguard(&["apply", "--auto-approve", "-p", PROFILE]).expect(0);

    // Every foreign part is still there, as it was written.
    let s3 = aws_sdk_s3::Client::new(&conf);
    let doc = policy_json(s3.get_bucket_policy().bucket(BUCKET).send().await.unwrap().policy().unwrap());
    let (team, org_only) = bucket_statements();
    assert_eq!(by_sid(&doc, "TeamReads"), Some(&team));
    assert_eq!(by_sid(&doc, "OrgOnlyWrites"), Some(&org_only));
    assert!(by_sid(&doc, "CtguardCloudTrailWrite").is_some(), "{doc}");
    let lifecycle = s3.get_bucket_lifecycle_configuration().bucket(BUCKET).send().await.unwrap();
    let ids: Vec<&str> = lifecycle.rules().iter().filter_map(|r| r.id()).collect();
    assert_eq!(ids, ["team-exports", "purge-all", "ctguard-retention"]);
    let exports = &lifecycle.rules()[0];
    assert_eq!(exports.filter().and_then(|f| f.prefix()), Some("exports/"));
    assert_eq!(exports.expiration().and_then(|e| e.days()), Some(30));
    s3.head_object().bucket(BUCKET).key("exports/data.csv").send().await.unwrap();

    let kms = aws_sdk_kms::Client::new(&conf);
    let described = kms.describe_key().key_id(KEY_ALIAS).send().await.unwrap();
    let id = described.key_metadata().unwrap().key_id();
    let key = kms.get_key_policy().key_id(id).policy_name("default").send().await;
    let doc = policy_json(key.unwrap().policy().unwrap());
    assert_eq!(by_sid(&doc, "Enable IAM User Permissions"), Some(&account_default()));
    assert_eq!(by_sid(&doc, "OtherTrailDecrypts"), Some(&other_trail_decrypts()));
    assert!(by_sid(&doc, "CtguardAccountAdministersKey").is_some(), "{doc}");

    let sns = aws_sdk_sns::Client::new(&conf);
    let attrs = sns.get_topic_attributes().topic_arn(topic_arn()).send().await.unwrap();
    let doc = policy_json(&attrs.attributes().unwrap()["Policy"]);
    assert_eq!(by_sid(&doc, "BudgetsPublish"), Some(&budgets_publish()));
    assert_eq!(by_sid(&doc, "Anyone"), Some(&anyone_subscribes()));
    assert_eq!(doc["Id"], "team-topic");
    assert!(by_sid(&doc, "CtguardEventBridgeRulesPublish").is_some(), "{doc}");

    let iam = aws_sdk_iam::Client::new(&conf);
    let role = iam.get_role().role_name(ROLE).send().await.unwrap();
    let trust = policy_json(role.role().unwrap().assume_role_policy_document().unwrap());
    assert_eq!(by_sid(&trust, "BreakGlass"), Some(&break_glass()));
    assert!(by_sid(&trust, "CtguardCloudTrailAssumeRole").is_some(), "{trust}");
    let inline = iam.list_role_policies().role_name(ROLE).send().await.unwrap();
    assert!(inline.policy_names().iter().any(|n| n == "team-extra"), "{:?}", inline.policy_names());
    let attached = iam.list_attached_role_policies().role_name(ROLE).send().await.unwrap();
    assert!(attached.attached_policies().iter().any(|p| p.policy_arn() == Some(managed.as_str())));

    // Converged: nothing left to change.
    let plan = emu.ctguard(&["plan", "--detailed-exitcode", "-p", PROFILE]);
    plan.expect(0);

    // verify names each foreign part that defeats a guarantee, and only those.
    let verify = emu.ctguard(&["verify", "-p", PROFILE]);
    verify.expect(2);
    for expected in [
        "lifecycle rule \"purge-all\" does not expire logs sooner than the profile",
        "bucket policy: statement \"OrgOnlyWrites\" does not block CloudTrail delivery",
        "topic policy: statement \"Anyone\" does not grant access to anyone",
        &format!("no managed policy is attached: {managed}"),
    ] {
        assert!(verify.stdout.contains(expected), "verify lacks {expected:?}:\n{}", verify.stdout);
    }
    for benign in ["team-exports", "TeamReads", "OtherTrailDecrypts", "BudgetsPublish", "BreakGlass"] {
        assert!(!verify.stdout.contains(benign), "verify flags {benign}:\n{}", verify.stdout);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merge_aws_would_refuse_fails_at_plan_and_apply_changes_nothing() {
    let emu = Emulator::start();
    let conf = emu.sdk().await;
    let s3 = aws_sdk_s3::Client::new(&conf);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let tagging = aws_sdk_s3::types::Tagging::builder().tag_set(owner_s3()).build().unwrap();
    s3.put_bucket_tagging().bucket(BUCKET).tagging(tagging).send().await.unwrap();
    // Someone else's statements fill 19 of the 20 KB S3 allows a bucket policy.
    let big: Vec<Value> = (0..18)
        .map(|i| {
            json!({"Sid": format!("Team{i}"), "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                   "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{BUCKET}/{}{i}", "x".repeat(900))})
        })
        .collect();
    let doc = json!({"Version": "2012-10-17", "Statement": big});
    s3.put_bucket_policy().bucket(BUCKET).policy(doc.to_string()).send().await.unwrap();
    emu.clear_requests();

    for command in [&["plan", "-p", PROFILE][..], &["apply", "--auto-approve", "-p", PROFILE][..]] {
        let run = emu.ctguard(command);
        run.expect(1);
        assert!(run.stderr.contains(&format!("S3 bucket {BUCKET}")), "{}", run.stderr);
        assert!(run.stderr.contains("over AWS's limit of 20480 bytes"), "{}", run.stderr);
    }
    assert!(emu.mutating_requests().is_empty(), "nothing may change: {:?}", emu.mutating_requests());
}
