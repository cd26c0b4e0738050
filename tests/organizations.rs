//! One profile over several accounts of an organization (`--accounts`), against the emulator:
//! moto keeps each account's state apart, and credentials from AssumeRole act in the role's
//! account. The caller (123456789012) is the management account; members are created with
//! CreateAccount, which gives each an OrganizationAccountAccessRole, as AWS does.

mod common;

use std::path::{Path, PathBuf};

use aws_sdk_s3::config::Credentials;
use common::*;
use serde_json::Value;

const TRAIL_NAME: &str = "ctguard-org";

/// A small profile: the audit bucket (named per account) and the trail.
fn small_profile(dir: &Path) -> PathBuf {
    let path = dir.join("org-small.toml");
    let policies = repo().join("policies");
    std::fs::write(
        &path,
        format!(
            r#"[profile]
name = "org-small"
home_region = "us-east-1"
policies_dir = "{}"

[variables]
audit_bucket = "ctguard-org-${{account_id}}"

[bucket]
name = "${{audit_bucket}}"
trail_prefix = "cloudtrail"
policy = "audit-bucket-policy.json"

[trail]
name = "{TRAIL_NAME}"
management_events = "All"
"#,
            policies.display()
        ),
    )
    .unwrap();
    path
}

fn organizations(config: &aws_config::SdkConfig) -> aws_sdk_organizations::Client {
    aws_sdk_organizations::Client::new(config)
}

/// Creates the organization and `n` member accounts; returns their ids, in creation order.
async fn organization(emu: &Emulator, n: usize) -> Vec<String> {
    let org = organizations(&emu.sdk().await);
    org.create_organization().send().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let created = org
            .create_account()
            .email(format!("member{i}@example.com"))
            .account_name(format!("member-{i}"))
            .send()
            .await
            .unwrap();
        ids.push(created.create_account_status().unwrap().account_id().unwrap().to_string());
    }
    ids
}

/// An SDK config that acts in `account`, through its OrganizationAccountAccessRole.
async fn as_account(emu: &Emulator, account: &str) -> aws_config::SdkConfig {
    let base = emu.sdk().await;
    let sts = aws_sdk_sts::Client::new(&base);
    let assumed = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole"))
        .role_session_name("test")
        .send()
        .await
        .unwrap();
    let c = assumed.credentials().unwrap();
    let creds =
        Credentials::new(c.access_key_id(), c.secret_access_key(), Some(c.session_token().to_string()), None, "test");
    base.to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .build()
}

async fn trail_logging(emu: &Emulator, account: &str) -> bool {
    let config = if account == ACCOUNT { emu.sdk().await } else { as_account(emu, account).await };
    let ct = aws_sdk_cloudtrail::Client::new(&config);
    ct.get_trail_status().name(TRAIL_NAME).send().await.unwrap().is_logging().unwrap_or(false)
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}\n--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr))
}

/// Each account's status in an organization document, by id.
fn statuses(doc: &Value) -> Vec<(String, String)> {
    doc["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["account"].as_str().unwrap().to_string(), a["status"].as_str().unwrap().to_string()))
        .collect()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn every_account_converges_plans_empty_and_drift_names_its_account() {
    let emu = Emulator::start();
    let members = organization(&emu, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let profile = small_profile(dir.path());
    let p = profile.to_str().unwrap();

    let run = emu.ctguard(&["apply", "-p", p, "--accounts", "all", "--auto-approve", "--format", "json"]);
    run.expect(0);
    let doc = json(&run);
    assert_eq!(doc["command"], "apply");
    let mut all = members.clone();
    all.push(ACCOUNT.to_string());
    let ids: Vec<String> = statuses(&doc).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, sorted(all.clone()), "every ACTIVE account, the management account included");
    assert!(statuses(&doc).iter().all(|(_, s)| s == "converged"), "{doc:#}");
    assert_eq!(doc["summary"]["converged"], 4);
    for account in &all {
        assert!(trail_logging(&emu, account).await, "the trail logs in {account}");
        // Each account got its own bucket: the name carries the account id.
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&if account == ACCOUNT {
                emu.sdk().await
            } else {
                as_account(&emu, account).await
            })
            .force_path_style(true)
            .build(),
        );
        s3.head_bucket().bucket(format!("ctguard-org-{account}")).send().await.unwrap();
    }

    let run = emu.ctguard(&["plan", "-p", p, "--accounts", "all", "--detailed-exitcode"]);
    run.expect(0);
    for account in &all {
        assert!(run.stdout.contains(&format!("=== Account {account}")), "{}", run.stdout);
    }
    assert!(run.stdout.contains("Organization: 4 accounts: 4 unchanged, 0 changes, 0 failed."), "{}", run.stdout);

    // Drift in one member: its trail stops logging.
    let drifted = &members[1];
    aws_sdk_cloudtrail::Client::new(&as_account(&emu, drifted).await)
        .stop_logging()
        .name(TRAIL_NAME)
        .send()
        .await
        .unwrap();
    let run = emu.ctguard(&["verify", "-p", p, "--accounts", "all", "--format", "json"]);
    run.expect(2);
    let doc = json(&run);
    for (id, status) in statuses(&doc) {
        assert_eq!(status, if &id == drifted { "drifted" } else { "converged" }, "{id}");
    }
    assert_eq!(doc["summary"]["drifted"], 1);
    let entry = doc["accounts"].as_array().unwrap().iter().find(|a| a["account"] == drifted.as_str()).unwrap();
    assert_eq!(entry["result"]["account"], drifted.as_str(), "the account's own verify document");
    assert_eq!(entry["result"]["status"], "drift");

    let run = emu.ctguard(&["verify", "-p", p, "--accounts", drifted]);
    run.expect(2);
    assert!(run.stdout.contains(&format!("{drifted} (member-1)  drifted")), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_whose_role_cannot_be_assumed_fails_alone() {
    let emu = Emulator::start();
    let members = organization(&emu, 3).await;
    // A deploy role in the first two members only.
    for m in &members[..2] {
        aws_sdk_iam::Client::new(&as_account(&emu, m).await)
            .create_role()
            .role_name("CtguardDeploy")
            .assume_role_policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#,
            )
            .send()
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = small_profile(dir.path());
    let accounts = members.join(",");
    emu.clear_requests();
    let run = emu.ctguard(&[
        "apply",
        "-p",
        profile.to_str().unwrap(),
        "--accounts",
        &accounts,
        "--assume-role",
        "CtguardDeploy",
        "--external-id",
        "ctguard-test",
        "--concurrency",
        "2",
        "--auto-approve",
    ]);
    run.expect(1);
    let lost = &members[2];
    assert!(
        run.stdout.contains(&format!(
            "{lost} (member-2)  failed: could not assume the role arn:aws:iam::{lost}:role/CtguardDeploy in account {lost}"
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("AccessDenied"), "the reason AWS gave: {}", run.stdout);
    assert!(run.stdout.contains("Organization: 3 accounts: 2 converged, 1 failed."), "{}", run.stdout);
    // One AssumeRole per account: checking the role up front costs no second call.
    let assumed = emu.requests().into_iter().filter(|r| r.operation == "AssumeRole").count();
    assert_eq!(assumed, 3, "AssumeRole calls");
    for m in &members[..2] {
        assert!(trail_logging(&emu, m).await, "{m} converged despite {lost}");
    }
    // Only the listed accounts: the management account was not touched.
    let ct = aws_sdk_cloudtrail::Client::new(&emu.sdk().await);
    assert!(ct.get_trail_status().name(TRAIL_NAME).send().await.is_err(), "no trail in the management account");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ou_selects_its_accounts_and_those_below_it() {
    let emu = Emulator::start();
    let members = organization(&emu, 3).await;
    let org = organizations(&emu.sdk().await);
    let root = org.list_roots().send().await.unwrap().roots()[0].id().unwrap().to_string();
    let ou = org.create_organizational_unit().parent_id(&root).name("prod").send().await.unwrap();
    let ou = ou.organizational_unit().unwrap().id().unwrap().to_string();
    let child = org.create_organizational_unit().parent_id(&ou).name("prod-eu").send().await.unwrap();
    let child = child.organizational_unit().unwrap().id().unwrap().to_string();
    for (account, parent) in [(&members[0], &ou), (&members[2], &child)] {
        org.move_account()
            .account_id(account)
            .source_parent_id(&root)
            .destination_parent_id(parent)
            .send()
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = small_profile(dir.path());
    let run = emu.ctguard(&["plan", "-p", profile.to_str().unwrap(), "--accounts", &ou, "--format", "json"]);
    run.expect(0);
    let doc = json(&run);
    let ids: Vec<String> = statuses(&doc).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, sorted(vec![members[0].clone(), members[2].clone()]));
    assert!(statuses(&doc).iter().all(|(_, s)| s == "changes"), "{doc:#}");
    assert_eq!(doc["summary"], serde_json::json!({"accounts": 2, "unchanged": 0, "changes": 2, "failed": 0}));

    let run = emu.ctguard(&["plan", "-p", profile.to_str().unwrap(), "--accounts", &child]);
    run.expect(0);
    assert!(run.stdout.contains("Organization: 1 account: 0 unchanged, 1 changes, 0 failed."), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_account_input_changes_nothing_anywhere() {
    let emu = Emulator::start();
    let members = organization(&emu, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let profile = small_profile(dir.path());
    let p = profile.to_str().unwrap();
    emu.clear_requests();
    let unknown = format!("{},999999999999", members[0]);
    let out = dir.path().join("plan.json");
    let junit = dir.path().join("junit.xml");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["apply", "--accounts", "12345", "--auto-approve"], "\"12345\" is not an account id"),
        (vec!["apply", "--accounts", &unknown, "--auto-approve"], "999999999999 is not an account of the organization"),
        (vec!["apply", "--accounts", "ou-abcd-12345678", "--auto-approve"], "ou-abcd-12345678 does not exist"),
        (vec!["apply", "--accounts", "ou-ABCD", "--auto-approve"], "expected an organizational unit id"),
        (
            vec!["apply", "--accounts", "all", "--assume-role", "arn:aws:iam::1:role/R", "--auto-approve"],
            "--assume-role",
        ),
        (
            vec!["apply", "--accounts", "all", "--assume-role", "bad role", "--auto-approve"],
            "expected an IAM role name",
        ),
        (vec!["plan", "--accounts", "all", "--out", out.to_str().unwrap()], "--accounts cannot go with --out"),
        (vec!["verify", "--accounts", "all", "--junit", junit.to_str().unwrap()], "--accounts cannot go with --junit"),
        (vec!["apply", "--assume-role", "R", "--auto-approve"], "--accounts"),
    ];
    for (args, expected) in cases {
        let mut args = args.clone();
        args.extend(["-p", p]);
        let run = emu.ctguard(&args);
        assert_eq!(run.code, 1, "{args:?}\n{}", run.stderr);
        assert!(run.stderr.contains(expected), "{args:?}: expected {expected:?} in\n{}", run.stderr);
        let json = emu.ctguard(&[args.as_slice(), &["--format", "json"]].concat());
        assert_eq!(json.code, 1, "{args:?}");
        assert!(json.stdout.contains("\"error\""), "{args:?}: a JSON error document\n{}", json.stdout);
    }
    assert!(!out.exists() && !junit.exists());
    let mutating: Vec<_> = emu.mutating_requests();
    assert!(mutating.is_empty(), "no mutating call in any account: {mutating:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_that_does_not_fit_one_account_changes_no_account() {
    let emu = Emulator::start();
    let members = organization(&emu, 2).await;
    let org = organizations(&emu.sdk().await);
    org.enable_aws_service_access().service_principal("cloudtrail.amazonaws.com").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let profile = small_profile(dir.path());
    let text = std::fs::read_to_string(&profile).unwrap();
    std::fs::write(&profile, text.replacen("[trail]\n", "[trail]\norganization = true\n", 1)).unwrap();
    let p = profile.to_str().unwrap();
    emu.clear_requests();
    // The management account may make an organization trail; its members may not.
    let run = emu.ctguard(&["apply", "-p", p, "--accounts", "all", "--auto-approve"]);
    run.expect(1);
    assert!(run.stderr.contains("nothing was changed in any account"), "{}", run.stderr);
    for m in &members {
        assert!(run.stderr.contains(&format!("account {m}: ")), "{m} named:\n{}", run.stderr);
    }
    let mutating: Vec<_> =
        emu.mutating_requests().into_iter().filter(|r| !r.operation.ends_with("AssumeRole")).collect();
    assert!(mutating.is_empty(), "no mutating call in any account: {mutating:?}");
    assert!(!trail_logging_anywhere(&emu, &members).await);
}

/// Whether the small profile's trail exists in the management account or any of `members`.
async fn trail_logging_anywhere(emu: &Emulator, members: &[String]) -> bool {
    for account in std::iter::once(ACCOUNT.to_string()).chain(members.iter().cloned()) {
        let config = if account == ACCOUNT { emu.sdk().await } else { as_account(emu, &account).await };
        let listed = aws_sdk_cloudtrail::Client::new(&config).describe_trails().send().await.unwrap();
        if listed.trail_list().iter().any(|t| t.name() == Some(TRAIL_NAME)) {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn investigate_looks_in_each_account_and_reports_one_it_cannot_reach() {
    let emu = Emulator::start();
    let members = organization(&emu, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let profile = small_profile(dir.path());
    let p = profile.to_str().unwrap();
    let run = emu.ctguard(&["investigate", "-p", p, "--accounts", "all", "--since", "1h", "--color", "never"]);
    run.expect(0);
    let mut all = members.clone();
    all.push(ACCOUNT.to_string());
    for account in &all {
        assert!(run.stdout.contains(&format!("=== Account {account}")), "{}", run.stdout);
    }
    assert!(
        run.stdout.contains("Organization: 3 accounts: 3 quiet, 0 findings, 0 partial, 0 failed."),
        "{}",
        run.stdout
    );

    let run = emu.ctguard(&[
        "investigate",
        "-p",
        p,
        "--accounts",
        &members.join(","),
        "--assume-role",
        "Missing",
        "--since",
        "1h",
        "--color",
        "never",
    ]);
    run.expect(1);
    assert!(run.stdout.contains("0 quiet, 0 findings, 0 partial, 2 failed."), "{}", run.stdout);
    assert!(run.stderr.contains("could not assume the role"), "{}", run.stderr);

    let run = emu.ctguard(&["investigate", "-p", p, "--accounts", "all", "--format", "json"]);
    run.expect(1);
    assert!(run.stderr.contains("--accounts cannot go with --format json (use jsonl)"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_printed_policy_covers_the_organization_calls_of_a_fan_out() {
    let emu = Emulator::start();
    let members = organization(&emu, 1).await;
    let org = organizations(&emu.sdk().await);
    let root = org.list_roots().send().await.unwrap().roots()[0].id().unwrap().to_string();
    let ou = org.create_organizational_unit().parent_id(&root).name("prod").send().await.unwrap();
    let ou = ou.organizational_unit().unwrap().id().unwrap().to_string();
    org.move_account().account_id(&members[0]).source_parent_id(&root).destination_parent_id(&ou).send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let profile = small_profile(dir.path());
    let p = profile.to_str().unwrap();

    let run = emu.ctguard(&["permissions", "-p", p, "--organization", "AWSControlTowerExecution"]);
    run.expect(0);
    let policy: Value = serde_json::from_str(&run.stdout).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    let allowed = |action: &str, resource: &str| {
        statements.iter().any(|s| {
            let list = |v: &Value| match v {
                Value::String(s) => vec![s.clone()],
                v => v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect(),
            };
            list(&s["Action"]).iter().any(|a| a == action)
                && list(&s["Resource"])
                    .iter()
                    .any(|r| r == "*" || r.strip_suffix('*').is_some_and(|p| resource.starts_with(p)) || r == resource)
        })
    };
    let assume = "arn:aws:iam::*:role/AWSControlTowerExecution";
    assert!(statements.iter().any(|s| s["Action"] == "sts:AssumeRole" && s["Resource"] == assume), "{policy:#}");
    let plain = emu.ctguard(&["permissions", "-p", p]);
    assert!(!plain.stdout.contains("organizations:"), "only with --organization");

    for selection in ["all", ou.as_str()] {
        emu.clear_requests();
        emu.ctguard(&["plan", "-p", p, "--accounts", selection]).expect(0);
        let calls: Vec<String> = emu
            .requests()
            .into_iter()
            .filter(|r| r.service == "organizations")
            .map(|r| format!("organizations:{}", r.operation.rsplit('.').next().unwrap()))
            .collect();
        assert!(!calls.is_empty(), "{selection}: the organization was listed");
        for call in calls {
            assert!(allowed(&call, "*"), "{selection}: {call} is not in the printed policy");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_flagship_profile_converges_in_a_member_and_the_management_account() {
    let emu = Emulator::start();
    let members = organization(&emu, 1).await;
    let dir = tempfile::tempdir().unwrap();
    run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", dir.path().to_str().unwrap()])).expect(0);
    let path = dir.path().join("profiles/ai-agent-guard.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("regions = \"all-enabled\"\n", "regions = [\"us-east-1\"]\n")).unwrap();
    let p = path.to_str().unwrap();
    let email = "--var=alert_email=security@acme.com";
    emu.ctguard(&["apply", "-p", p, email, "--accounts", "all", "--auto-approve"]).expect(0);
    let run = emu.ctguard(&["plan", "-p", p, email, "--accounts", "all", "--detailed-exitcode", "--format", "json"]);
    run.expect(0);
    let doc = json(&run);
    assert_eq!(statuses(&doc).len(), 2);
    assert!(statuses(&doc).iter().all(|(_, s)| s == "unchanged"), "{doc:#}");
    // The shipped bucket names carry the account id: each account has its own.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&as_account(&emu, &members[0]).await).force_path_style(true).build(),
    );
    s3.head_bucket().bucket(format!("ctguard-audit-{}-us-east-1", members[0])).send().await.unwrap();
}
