//! The `[athena]` section as ordinary ctguard resources, against the emulator: apply creates the
//! workgroup and the partition-projected table (through Athena DDL in that workgroup), a second
//! apply changes nothing, hand-made drift is found by plan and verify and repaired by apply, a
//! changed table definition is replaced, and `ctguard hunt` then runs in the workgroup. The
//! emulator records the DDL into its catalog as tests/emulator/README.md describes.

mod common;

use aws_sdk_athena::types::{QueryExecutionState, WorkGroupConfigurationUpdates};
use common::{ACCOUNT, BUCKET, Emulator};

const WORKGROUP: &str = "ctguard";
const DATABASE: &str = "ctguard";
const TABLE: &str = "ctguard_cloudtrail";

async fn athena(emu: &Emulator) -> aws_sdk_athena::Client {
    aws_sdk_athena::Client::new(&emu.sdk().await)
}

/// The queries submitted in the workgroup, oldest first.
async fn queries(client: &aws_sdk_athena::Client) -> Vec<String> {
    let ids = client.list_query_executions().work_group(WORKGROUP).send().await.unwrap();
    let mut out = Vec::new();
    for id in ids.query_execution_ids() {
        let got = client.get_query_execution().query_execution_id(id).send().await.unwrap();
        out.push(got.query_execution().and_then(|e| e.query()).unwrap_or_default().to_string());
    }
    out
}

/// Runs one statement by hand, as someone editing the table outside ctguard would.
async fn by_hand(client: &aws_sdk_athena::Client, sql: &str) {
    let id = client.start_query_execution().query_string(sql).work_group(WORKGROUP).send().await.unwrap();
    let id = id.query_execution_id().unwrap();
    let got = client.get_query_execution().query_execution_id(id).send().await.unwrap();
    let state = got.query_execution().and_then(|e| e.status()).and_then(|s| s.state()).cloned();
    assert_eq!(state, Some(QueryExecutionState::Succeeded), "{sql}");
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_manages_the_workgroup_and_table_and_hunt_runs_there() {
    let emu = Emulator::start();
    let first = emu.ctguard(&["apply", "--auto-approve"]);
    first.expect(0);
    assert!(first.stdout.contains("athena_workgroup.ctguard"), "{}", first.stdout);
    assert!(first.stdout.contains("athena_table.ctguard.ctguard_cloudtrail"), "{}", first.stdout);

    let client = athena(&emu).await;
    let wg = client.get_work_group().work_group(WORKGROUP).send().await.unwrap();
    let wg = wg.work_group().unwrap();
    let config = wg.configuration().unwrap();
    let results = config.result_configuration().unwrap();
    assert_eq!(results.output_location(), Some(format!("s3://{BUCKET}/athena-results/").as_str()));
    // Encrypted as the bucket is: with the trail's key, by ARN.
    let encryption = results.encryption_configuration().unwrap();
    assert_eq!(encryption.encryption_option().as_str(), "SSE_KMS");
    let kms = aws_sdk_kms::Client::new(&emu.sdk().await);
    let key = kms.describe_key().key_id("alias/ctguard-audit").send().await.unwrap();
    assert_eq!(encryption.kms_key(), key.key_metadata().unwrap().arn());
    assert_eq!(config.bytes_scanned_cutoff_per_query(), Some(100_000_000_000));
    assert_eq!(config.enforce_work_group_configuration(), Some(true));
    assert_eq!(config.publish_cloud_watch_metrics_enabled(), Some(true));
    let arn = format!("arn:aws:athena:us-east-1:{ACCOUNT}:workgroup/{WORKGROUP}");
    let tags = client.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
    assert!(tags.tags().iter().any(|t| t.key() == Some("ctguard:profile") && t.value() == Some("ai-agent-guard")));

    let table = client.get_table_metadata().catalog_name("AwsDataCatalog").database_name(DATABASE);
    let table = table.table_name(TABLE).send().await.unwrap();
    let table = table.table_metadata().unwrap();
    let params = table.parameters().unwrap();
    assert_eq!(params["location"], format!("s3://{BUCKET}/cloudtrail/AWSLogs/{ACCOUNT}/"));
    assert_eq!(params["projection.enabled"], "true");
    assert_eq!(params["projection.timestamp.range"], "NOW-2555DAYS,NOW");
    assert_eq!(params["ctguard:profile"], "ai-agent-guard");
    assert_eq!(table.partition_keys().iter().map(|c| c.name()).collect::<Vec<_>>(), ["region", "timestamp"]);
    let ddl = queries(&client).await;
    assert!(ddl.iter().any(|q| q == "CREATE DATABASE IF NOT EXISTS ctguard"), "{ddl:?}");
    assert!(ddl.iter().any(|q| q.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS ctguard.ctguard_cloudtrail (")));

    // Converged: nothing to do, and not one mutating call (no DDL either), counted at the proxy.
    emu.clear_requests();
    let again = emu.ctguard(&["apply", "--auto-approve"]);
    again.expect(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    let writes = emu.mutating_requests();
    assert!(writes.is_empty(), "second apply mutated: {writes:?}");
    assert!(emu.requests().iter().any(|r| r.operation.ends_with("GetTableMetadata")), "the table was not read");
    emu.ctguard(&["plan", "--detailed-exitcode"]).expect(0);

    // A hand-loosened workgroup is drift, which apply repairs.
    let loosened = WorkGroupConfigurationUpdates::builder()
        .remove_bytes_scanned_cutoff_per_query(true)
        .enforce_work_group_configuration(false)
        .build();
    client.update_work_group().work_group(WORKGROUP).configuration_updates(loosened).send().await.unwrap();
    let plan = emu.ctguard(&["plan", "--detailed-exitcode", "--color", "never"]);
    plan.expect(2);
    assert!(plan.stdout.contains("athena_workgroup.ctguard"), "{}", plan.stdout);
    assert!(plan.stdout.contains("bytes_scanned_cutoff_per_query"), "{}", plan.stdout);
    assert!(plan.stdout.contains("enforce_work_group_configuration"), "{}", plan.stdout);
    emu.ctguard(&["verify"]).expect(2);
    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    let wg = client.get_work_group().work_group(WORKGROUP).send().await.unwrap();
    let config = wg.work_group().and_then(|w| w.configuration()).unwrap();
    assert_eq!(config.bytes_scanned_cutoff_per_query(), Some(100_000_000_000));
    assert_eq!(config.enforce_work_group_configuration(), Some(true));
    emu.ctguard(&["plan", "--detailed-exitcode"]).expect(0);

    // A changed table definition is replaced: dropped and created again, no log file touched.
    by_hand(
        &client,
        "ALTER TABLE ctguard.ctguard_cloudtrail SET TBLPROPERTIES ('projection.region.values'='us-east-1')",
    )
    .await;
    let plan = emu.ctguard(&["plan", "--detailed-exitcode", "--color", "never"]);
    plan.expect(2);
    assert!(plan.stdout.contains("athena_table.ctguard.ctguard_cloudtrail"), "{}", plan.stdout);
    assert!(plan.stdout.contains("no log file is deleted"), "{}", plan.stdout);
    assert!(plan.stdout.contains("1 to add, 0 to change, 1 to destroy"), "{}", plan.stdout);
    let s3 = emu.s3().await;
    let log_key = format!("cloudtrail/AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2025/01/01/log.json.gz");
    s3.put_object().bucket(BUCKET).key(&log_key).body(b"{}".to_vec().into()).send().await.unwrap();
    emu.ctguard(&["apply", "--auto-approve"]).expect(0);
    emu.ctguard(&["plan", "--detailed-exitcode"]).expect(0);
    assert!(queries(&client).await.iter().any(|q| q == "DROP TABLE IF EXISTS ctguard.ctguard_cloudtrail"));
    s3.head_object().bucket(BUCKET).key(&log_key).send().await.expect("the log file is still there");

    // `ctguard hunt` runs in the profile's workgroup, against the profile's database.
    let before = queries(&client).await.len();
    emu.ctguard(&["hunt", "--since", "1d", "--detection", "ctguard-agent-destructive-actions"]).expect(0);
    let ids = client.list_query_executions().work_group(WORKGROUP).send().await.unwrap();
    assert_eq!(ids.query_execution_ids().len(), before + 1);
    let hunt = queries(&client).await.into_iter().find(|q| q.starts_with("SELECT")).expect("the hunt query");
    assert!(hunt.contains("FROM ctguard_cloudtrail"), "{hunt}");
}
