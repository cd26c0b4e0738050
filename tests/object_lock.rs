//! S3 Object Lock on the audit bucket, against the emulator: declared, it is turned on (with a
//! note that it never goes off again) and converges; shortening or weakening the default
//! retention, or dropping it, is refused without --allow-data-loss, with nothing changed.

mod common;

use std::path::PathBuf;

use aws_sdk_s3::types::ObjectLockEnabled;
use common::*;
use serde_json::Value;

/// The flagship profile with `lock` (TOML lines, or nothing) as its `[bucket.object_lock]`.
fn profile(dir: &tempfile::TempDir, lock: &str) -> PathBuf {
    let path = dir.path().join("profiles/ai-agent-guard.toml");
    if !path.exists() {
        run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", dir.path().to_str().unwrap()])).expect(0);
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replacen("[bucket.lifecycle]", "#LOCK#\n[bucket.lifecycle]", 1);
        std::fs::write(dir.path().join("template.toml"), text).unwrap();
    }
    let template = std::fs::read_to_string(dir.path().join("template.toml")).unwrap();
    let table = if lock.is_empty() { String::new() } else { format!("[bucket.object_lock]\n{lock}\n") };
    std::fs::write(&path, template.replace("#LOCK#\n", &table)).unwrap();
    path
}

fn bucket_change(plan: &str) -> Value {
    let doc: Value = serde_json::from_str(plan).unwrap();
    let address = format!("s3_bucket.{BUCKET}");
    let changes = doc["resource_changes"].as_array().unwrap();
    changes.iter().find(|c| c["address"] == address).cloned().unwrap_or_else(|| panic!("no {address} in {doc:#}"))
}

/// The lock as S3 reports it: enabled, mode, days, years.
async fn lock(emu: &Emulator) -> (bool, Option<String>, Option<i32>, Option<i32>) {
    let s3 = emu.s3().await;
    let out = s3.get_object_lock_configuration().bucket(BUCKET).send().await.unwrap();
    let conf = out.object_lock_configuration().unwrap();
    let retention = conf.rule().and_then(|r| r.default_retention());
    (
        conf.object_lock_enabled() == Some(&ObjectLockEnabled::Enabled),
        retention.and_then(|d| d.mode()).map(|m| m.as_str().to_string()),
        retention.and_then(|d| d.days()),
        retention.and_then(|d| d.years()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declared_object_lock_is_turned_on_with_a_note_and_converges() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir, "mode = \"COMPLIANCE\"\ndays = 400");
    let p = p.to_str().unwrap();

    let plan = emu.ctguard(&["plan", "--format", "json", "-p", p]);
    plan.expect(0);
    let bucket = bucket_change(&plan.stdout);
    let notes = bucket["notes"].to_string();
    assert!(notes.contains("can never be switched off") && notes.contains("COMPLIANCE mode"), "{bucket:#}");
    let paths = bucket["changes"].to_string();
    assert!(paths.contains("object_lock.mode") && paths.contains("object_lock.days"), "{bucket:#}");

    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);
    assert_eq!(lock(&emu).await, (true, Some("COMPLIANCE".into()), Some(400), None));
    let s3 = emu.s3().await;
    let versioning = s3.get_bucket_versioning().bucket(BUCKET).send().await.unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", p]).expect(0);
    emu.ctguard(&["verify", "-p", p]).expect(0);

    // A longer retention in years is no loss: applied without any flag, and no note again.
    let p = profile(&dir, "mode = \"COMPLIANCE\"\nyears = 2");
    let p = p.to_str().unwrap();
    let plan = emu.ctguard(&["plan", "--format", "json", "-p", p]);
    let bucket = bucket_change(&plan.stdout);
    assert_eq!(bucket["destructive"], serde_json::json!([]), "{bucket:#}");
    assert!(!bucket["notes"].to_string().contains("switched off"), "already on: {bucket:#}");
    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);
    assert_eq!(lock(&emu).await, (true, Some("COMPLIANCE".into()), None, Some(2)));
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", p]).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn shortening_weakening_or_dropping_the_retention_needs_allow_data_loss() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir, "mode = \"COMPLIANCE\"\ndays = 400");
    emu.ctguard(&["apply", "--auto-approve", "-p", p.to_str().unwrap()]).expect(0);
    // Logs in the bucket (written as CloudTrail does, with the checksum a locked bucket wants).
    let s3 = emu.s3().await;
    let key = "cloudtrail/AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/01/log.json.gz";
    let put = s3.put_object().bucket(BUCKET).key(key).body(b"{}".to_vec().into());
    put.checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32).send().await.unwrap();

    let cases = [
        ("mode = \"COMPLIANCE\"\ndays = 30", "shortens the Object Lock default retention from COMPLIANCE 400 days"),
        ("mode = \"GOVERNANCE\"\ndays = 400", "from COMPLIANCE to GOVERNANCE"),
        ("", "removes the Object Lock default retention (COMPLIANCE 400 days)"),
    ];
    for (lock_lines, reason) in cases {
        let p = profile(&dir, lock_lines);
        let p = p.to_str().unwrap();
        let plan = emu.ctguard(&["plan", "--format", "json", "-p", p]);
        let bucket = bucket_change(&plan.stdout);
        assert!(bucket["destructive"].to_string().contains(reason), "{reason}: {bucket:#}");
        emu.clear_requests();
        let refused = emu.ctguard(&["apply", "--auto-approve", "-p", p]);
        refused.expect(1);
        assert!(refused.stderr.contains(reason) && refused.stderr.contains("--allow-data-loss"), "{}", refused.stderr);
        let writes = emu.mutating_requests();
        assert!(writes.is_empty(), "a refused apply made mutating calls: {writes:?}");
        assert_eq!(lock(&emu).await, (true, Some("COMPLIANCE".into()), Some(400), None), "unchanged");
    }

    // With the flag, the retention goes, but Object Lock itself stays on: S3 has no way back.
    let p = profile(&dir, "");
    let p = p.to_str().unwrap();
    emu.ctguard(&["apply", "--auto-approve", "--allow-data-loss", "-p", p]).expect(0);
    assert_eq!(lock(&emu).await, (true, None, None, None));
    let plan = emu.ctguard(&["plan", "--detailed-exitcode", "-p", p]);
    plan.expect(0);
    assert!(plan.stdout.contains("S3 Object Lock is on for this bucket"), "{}", plan.stdout);
}
