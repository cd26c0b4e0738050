//! AWS Config against the emulator: recorder, delivery channel and rules in every region;
//! an existing recorder left alone unless adopted; typos in rule identifiers caught early.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

/// The flagship profile in two regions; `edit` changes its text further.
fn profile(dir: &tempfile::TempDir, edit: impl FnOnce(String) -> String) -> PathBuf {
    run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", dir.path().to_str().unwrap()])).expect(0);
    let path = dir.path().join("profiles/ai-agent-guard.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("regions = \"all-enabled\"\n").unwrap();
    let end = start + "regions = \"all-enabled\"\n".len();
    let text = format!("{}regions = {}\n{}", &text[..start], serde_json::to_string(&REGIONS).unwrap(), &text[end..]);
    std::fs::write(&path, edit(text)).unwrap();
    path
}

fn config_client(conf: &aws_config::SdkConfig, region: &str) -> aws_sdk_config::Client {
    aws_sdk_config::Client::from_conf(
        aws_sdk_config::config::Builder::from(conf)
            .region(aws_sdk_config::config::Region::new(region.to_string()))
            .build(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_sets_up_config_in_every_region() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir, |t| t);
    let p = p.to_str().unwrap();
    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);
    let conf = emu.sdk().await;
    let role = format!("arn:aws:iam::{ACCOUNT}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig");
    for region in REGIONS {
        let cfg = config_client(&conf, region);
        let recorders = cfg.describe_configuration_recorders().send().await.unwrap();
        let r = &recorders.configuration_recorders()[0];
        assert_eq!(r.name(), Some("ctguard"));
        assert_eq!(r.role_arn(), Some(role.as_str()));
        let group = r.recording_group().unwrap();
        assert!(group.all_supported());
        // Global resources (IAM) are recorded in the home region only.
        assert_eq!(group.include_global_resource_types(), region == REGION, "{region}");
        let channels = cfg.describe_delivery_channels().send().await.unwrap();
        let c = &channels.delivery_channels()[0];
        assert_eq!((c.s3_bucket_name(), c.s3_key_prefix()), (Some(BUCKET), Some("config")));
        let status = cfg.describe_configuration_recorder_status().send().await.unwrap();
        assert!(status.configuration_recorders_status()[0].recording());
        let rules = cfg.describe_config_rules().send().await.unwrap();
        let ids: Vec<&str> = rules.config_rules().iter().filter_map(|r| r.source()?.source_identifier()).collect();
        for id in [
            "RDS_INSTANCE_DELETION_PROTECTION_ENABLED",
            "S3_BUCKET_VERSIONING_ENABLED",
            "CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED",
        ] {
            assert!(ids.contains(&id), "{region} lacks {id}: {ids:?}");
        }
        // A rule about a global resource lives in the home region only.
        assert_eq!(ids.contains(&"IAM_ROOT_ACCESS_KEY_CHECK"), region == REGION, "{region}");
    }
    // Config may deliver to the audit bucket, under its prefix only.
    let s3 = emu.s3().await;
    let pol: Value =
        serde_json::from_str(s3.get_bucket_policy().bucket(BUCKET).send().await.unwrap().policy().unwrap()).unwrap();
    let delivery =
        pol["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == "CtguardConfigBucketDelivery").unwrap();
    assert_eq!(delivery["Resource"], format!("arn:aws:s3:::{BUCKET}/config/AWSLogs/{ACCOUNT}/Config/*"));
    assert_eq!(delivery["Condition"]["StringEquals"]["aws:SourceAccount"], ACCOUNT);

    emu.clear_requests();
    let again = emu.ctguard(&["apply", "--auto-approve", "-p", p]);
    again.expect(0);
    assert!(emu.mutating_requests().is_empty(), "{:?}", emu.mutating_requests());
    let verify = emu.ctguard(&["verify", "-v", "-p", p]);
    verify.expect(0);
    assert!(
        verify.stdout.contains("config_recording.eu-west-1: AWS Config recorder ctguard is recording"),
        "{}",
        verify.stdout
    );
    assert!(
        verify.stdout.contains("AWS Config rule eu-west-1/ctguard-s3-bucket-versioning compliance (not evaluated yet)"),
        "{}",
        verify.stdout
    );

    // A stopped recorder is drift, and apply starts it again.
    config_client(&conf, "eu-west-1")
        .stop_configuration_recorder()
        .configuration_recorder_name("ctguard")
        .send()
        .await
        .unwrap();
    let plan = emu.ctguard(&["plan", "--detailed-exitcode", "-p", p]);
    plan.expect(2);
    assert!(plan.stdout.contains("# config_recording.eu-west-1 will be updated in place"), "{}", plan.stdout);
    assert!(plan.stdout.contains("~ recording = false -> true"), "{}", plan.stdout);
    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);
    emu.ctguard(&["verify", "-p", p]).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorder_ctguard_does_not_own_is_left_alone_unless_adopted() {
    let emu = Emulator::start();
    let conf = emu.sdk().await;
    let cfg = config_client(&conf, "eu-west-1");
    let recorder = aws_sdk_config::types::ConfigurationRecorder::builder()
        .name("control-tower")
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/ControlTowerConfig"))
        .build();
    cfg.put_configuration_recorder().configuration_recorder(recorder).send().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir, |t| t);
    let plan = emu.ctguard(&["plan", "-p", p.to_str().unwrap()]);
    plan.expect(0);
    assert!(!plan.stdout.contains("config_recorder.eu-west-1 will be"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("config_recorder.eu-west-1: AWS Config recorder \"control-tower\" already exists and was not created by ctguard"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("config_recorder.us-east-1 will be created"), "{}", plan.stdout);
    let apply = emu.ctguard(&["apply", "--auto-approve", "-p", p.to_str().unwrap()]);
    apply.expect(0);
    let names: Vec<String> = cfg
        .describe_configuration_recorders()
        .send()
        .await
        .unwrap()
        .configuration_recorders()
        .iter()
        .filter_map(|r| r.name().map(str::to_string))
        .collect();
    assert_eq!(names, ["control-tower"]);
    let verify = emu.ctguard(&["verify", "-p", p.to_str().unwrap(), "--format", "json"]);
    let doc: Value = serde_json::from_str(&verify.stdout).unwrap();
    let checks = doc["checks"].as_array().unwrap();
    let foreign = checks.iter().find(|c| c["address"] == "config_recording.eu-west-1").unwrap();
    assert_eq!(foreign["name"], "AWS Config recorder control-tower is recording");

    // Adopted on request: managed under its existing name.
    let dir2 = tempfile::tempdir().unwrap();
    let adopting = profile(&dir2, |t| t.replace("adopt_existing_recorder = false", "adopt_existing_recorder = true"));
    let plan = emu.ctguard(&["plan", "-p", adopting.to_str().unwrap()]);
    assert!(plan.stdout.contains("# config_recorder.eu-west-1 will be updated in place"), "{}", plan.stdout);
    emu.ctguard(&["apply", "--auto-approve", "-p", adopting.to_str().unwrap()]).expect(0);
    let r = cfg.describe_configuration_recorders().send().await.unwrap();
    let r = &r.configuration_recorders()[0];
    assert_eq!(r.name(), Some("control-tower"));
    assert!(r.recording_group().unwrap().all_supported());
    emu.ctguard(&["verify", "-p", adopting.to_str().unwrap()]).expect(0);
}

#[test]
fn a_mistyped_rule_identifier_is_caught_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir, |t| {
        t.replace(
            "identifier = \"CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED\"",
            "identifier = \"CLOUDTRAIL_LOG_FILE_VALIDATION_ENABLED\"",
        )
    });
    let r = run(ctguard_cmd().args(["plan", "-p", p.to_str().unwrap()]));
    r.expect(1);
    assert!(
        r.stderr.contains("\"CLOUDTRAIL_LOG_FILE_VALIDATION_ENABLED\" is not an AWS Config managed rule; did you mean CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED?"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("config.rules[11].identifier"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn rule_parameters_and_scope_round_trip_and_drift() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir, |t| {
        t.replace(
            "identifier = \"RDS_INSTANCE_DELETION_PROTECTION_ENABLED\"\n",
            "identifier = \"RDS_INSTANCE_DELETION_PROTECTION_ENABLED\"\nparameters = { databaseEngines = \"mysql,postgres\" }\nresource_types = [\"AWS::RDS::DBInstance\"]\n",
        )
    });
    let p = p.to_str().unwrap();
    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", p]).expect(0);

    let cfg = config_client(&emu.sdk().await, "eu-west-1");
    let name = "ctguard-rds-instance-deletion-protection";
    let rules = cfg.describe_config_rules().config_rule_names(name).send().await.unwrap();
    let rule = &rules.config_rules()[0];
    let params: Value = serde_json::from_str(rule.input_parameters().unwrap()).unwrap();
    assert_eq!(params["databaseEngines"], "mysql,postgres");
    assert_eq!(rule.scope().unwrap().compliance_resource_types(), ["AWS::RDS::DBInstance"]);

    // Someone narrows the rule by hand.
    let source = rule.source().unwrap().clone();
    let changed = aws_sdk_config::types::ConfigRule::builder()
        .config_rule_name(name)
        .source(source)
        .input_parameters(r#"{"databaseEngines":"mysql"}"#)
        .build();
    cfg.put_config_rule().config_rule(changed).send().await.unwrap();
    let plan = emu.ctguard(&["plan", "--detailed-exitcode", "-p", p]);
    plan.expect(2);
    assert!(plan.stdout.contains("~ databaseEngines = \"mysql\" -> \"mysql,postgres\""), "{}", plan.stdout);
    assert!(plan.stdout.contains("~ resource_types = [] -> [\"AWS::RDS::DBInstance\"]"), "{}", plan.stdout);
    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", p]).expect(0);
}
