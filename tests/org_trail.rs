//! Organization trails, against the emulator: made from the management account with the
//! bucket and key policy statements AWS documents for them, converging to an empty plan;
//! refused, with nothing written, from a member account, from an account in no organization
//! and where CloudTrail has no trusted access; and not turned back into a trail of one
//! account without --allow-data-loss.

mod common;

use std::ffi::OsString;
use std::path::PathBuf;

use common::*;
use serde_json::Value;

const CLOUDTRAIL: &str = "cloudtrail.amazonaws.com";

/// The flagship profile, with `organization = true` on its trail when `organization`.
fn profile(dir: &tempfile::TempDir, organization: bool) -> PathBuf {
    let path = dir.path().join("profiles/ai-agent-guard.toml");
    if !dir.path().join("template.toml").exists() {
        run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", dir.path().to_str().unwrap()])).expect(0);
        std::fs::copy(&path, dir.path().join("template.toml")).unwrap();
    }
    let template = std::fs::read_to_string(dir.path().join("template.toml")).unwrap();
    let line = if organization { "[trail]\norganization = true\n" } else { "[trail]\n" };
    std::fs::write(&path, template.replacen("[trail]\n", line, 1)).unwrap();
    path
}

/// An organization with the default account as its management account; `trusted` enables
/// trusted access for CloudTrail. Returns the organization's ID.
async fn organization(emu: &Emulator, trusted: bool) -> String {
    let org = aws_sdk_organizations::Client::new(&emu.sdk().await);
    let made = org
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    if trusted {
        org.enable_aws_service_access().service_principal(CLOUDTRAIL).send().await.unwrap();
    }
    made.organization().unwrap().id().unwrap().to_string()
}

/// A new member account, and the environment under which ctguard acts in it: credentials from
/// AssumeRole into its OrganizationAccountAccessRole.
async fn member(emu: &Emulator) -> (String, Vec<(&'static str, OsString)>) {
    let conf = emu.sdk().await;
    let org = aws_sdk_organizations::Client::new(&conf);
    let status = org.create_account().account_name("member").email("member@corp.test").send().await.unwrap();
    let id = status.create_account_status().unwrap().account_id().unwrap().to_string();
    let sts = aws_sdk_sts::Client::new(&conf);
    let role = format!("arn:aws:iam::{id}:role/OrganizationAccountAccessRole");
    let assumed = sts.assume_role().role_arn(role).role_session_name("ctguard-test").send().await.unwrap();
    let c = assumed.credentials().unwrap();
    let env = vec![
        ("AWS_ACCESS_KEY_ID", OsString::from(c.access_key_id())),
        ("AWS_SECRET_ACCESS_KEY", OsString::from(c.secret_access_key())),
        ("AWS_SESSION_TOKEN", OsString::from(c.session_token())),
    ];
    (id, env)
}

fn statement<'a>(doc: &'a Value, sid: &str) -> &'a Value {
    let list = doc["Statement"].as_array().unwrap();
    list.iter().find(|s| s["Sid"] == sid).unwrap_or_else(|| panic!("no statement {sid} in {doc:#}"))
}

async fn bucket_policy(emu: &Emulator) -> Value {
    let out = emu.s3().await.get_bucket_policy().bucket(BUCKET).send().await.unwrap();
    serde_json::from_str(out.policy().unwrap()).unwrap()
}

async fn key_policy(emu: &Emulator) -> Value {
    let kms = aws_sdk_kms::Client::new(&emu.sdk().await);
    let key = kms.describe_key().key_id(KEY_ALIAS).send().await.unwrap();
    let id = key.key_metadata().unwrap().key_id().to_string();
    let out = kms.get_key_policy().key_id(id).policy_name("default").send().await.unwrap();
    serde_json::from_str(out.policy().unwrap()).unwrap()
}

async fn is_organization_trail(emu: &Emulator) -> Option<bool> {
    let ct = aws_sdk_cloudtrail::Client::new(&emu.sdk().await);
    let out = ct.get_trail().name(TRAIL).send().await.unwrap();
    out.trail().unwrap().is_organization_trail()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_management_account_makes_an_organization_trail_with_its_policies() {
    let emu = Emulator::start();
    let org_id = organization(&emu, true).await;
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir, true);
    let p = p.to_str().unwrap();

    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);
    assert_eq!(is_organization_trail(&emu).await, Some(true));

    let trail_arn = format!("arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{TRAIL}");
    let pol = bucket_policy(&emu).await;
    // The members' logs, under the organization's ID, only for this trail and organization.
    let org_write = statement(&pol, "CtguardCloudTrailOrganizationWrite");
    assert_eq!(org_write["Action"], "s3:PutObject");
    assert_eq!(org_write["Principal"]["Service"], CLOUDTRAIL);
    assert_eq!(org_write["Resource"], format!("arn:aws:s3:::{BUCKET}/cloudtrail/AWSLogs/{org_id}/*"));
    let equals = &org_write["Condition"]["StringEquals"];
    assert_eq!(equals["aws:SourceArn"], trail_arn.as_str());
    assert_eq!(equals["aws:SourceOrgID"], org_id.as_str());
    assert_eq!(equals["s3:x-amz-acl"], "bucket-owner-full-control");
    // The account's own path stays as it was.
    let own = statement(&pol, "CtguardCloudTrailWrite");
    assert_eq!(own["Resource"], format!("arn:aws:s3:::{BUCKET}/cloudtrail/AWSLogs/{ACCOUNT}/*"));

    let key = key_policy(&emu).await;
    let encrypt = statement(&key, "CtguardCloudTrailEncryptsOrganizationLogs");
    assert_eq!(encrypt["Condition"]["StringEquals"]["aws:SourceArn"], trail_arn.as_str());
    assert_eq!(
        encrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"],
        format!("arn:aws:cloudtrail:*:{ACCOUNT}:trail/*")
    );
    statement(&key, "CtguardAccountPrincipalsDecryptOrganizationLogs");

    emu.ctguard(&["plan", "--detailed-exitcode", "-p", p]).expect(0);
    emu.ctguard(&["verify", "-p", p]).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_trail_is_not_narrowed_to_one_account_without_allow_data_loss() {
    let emu = Emulator::start();
    organization(&emu, true).await;
    let dir = tempfile::tempdir().unwrap();
    let org = profile(&dir, true).to_str().unwrap().to_string();
    emu.ctguard(&["apply", "--auto-approve", "-p", &org]).expect(0);

    let single = profile(&dir, false).to_str().unwrap().to_string();
    let plan = emu.ctguard(&["plan", "-p", &single]);
    plan.expect(0);
    assert!(plan.stdout.contains("stops recording the organization's member accounts"), "{}", plan.stdout);
    let refused = emu.ctguard(&["apply", "--auto-approve", "-p", &single]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert_eq!(is_organization_trail(&emu).await, Some(true));

    emu.ctguard(&["apply", "--auto-approve", "--allow-data-loss", "-p", &single]).expect(0);
    assert_eq!(is_organization_trail(&emu).await, Some(false));
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", &single]).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_account_may_not_make_an_organization_trail() {
    let emu = Emulator::start();
    let org_id = organization(&emu, true).await;
    let (id, env) = member(&emu).await;
    let env: Vec<(&str, &std::ffi::OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir, true);

    emu.clear_requests();
    let run = emu.ctguard_in_env(&["apply", "--auto-approve", "-p", p.to_str().unwrap()], &env);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!("account {id} is neither the management account ({ACCOUNT})")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&org_id), "{}", run.stderr);
    assert!(run.stderr.contains("register-organization-delegated-admin"), "{}", run.stderr);
    assert_eq!(emu.mutating_requests().len(), 0, "{:#?}", emu.mutating_requests());

    // plan refuses the same way: the profile cannot be resolved for this account.
    emu.ctguard_in_env(&["plan", "-p", p.to_str().unwrap()], &env).expect(1);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_organization_or_no_trusted_access_is_refused_before_any_write() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir, true);
    let p = p.to_str().unwrap();

    let run = emu.ctguard(&["apply", "--auto-approve", "-p", p]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("belongs to no AWS Organizations organization"), "{}", run.stderr);

    let org_id = organization(&emu, false).await;
    emu.clear_requests();
    let run = emu.ctguard(&["apply", "--auto-approve", "-p", p]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(&format!("trusted access for CloudTrail is not enabled in organization {org_id}")));
    assert!(run.stderr.contains("enable-aws-service-access --service-principal cloudtrail.amazonaws.com"));
    assert_eq!(emu.mutating_requests().len(), 0, "{:#?}", emu.mutating_requests());
}
