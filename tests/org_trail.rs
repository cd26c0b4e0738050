//! Organization trails, against the emulator: made from the management account with the
//! bucket and key policy statements AWS documents for them, converging to an empty plan;
//! refused, with nothing written, from a member account, from an account in no organization
//! and where CloudTrail has no trusted access; and not turned back into a trail of one
//! account without --allow-data-loss. A member relying on the organization trail makes no
//! trail of its own, and verify fails when the organization trail stops or is gone.

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

/// A member's profile that relies on the organization trail: a bucket (AWS Config's and
/// Athena's, were they declared) and no trail of its own. `own_trail`: a trail of its own
/// instead, the profile's state before it relies on the organization's.
fn member_profile(dir: &tempfile::TempDir, own_trail: bool) -> PathBuf {
    if !dir.path().join("policies").exists() {
        run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", dir.path().to_str().unwrap()])).expect(0);
    }
    let path = dir.path().join("profiles/member.toml");
    let relies = if own_trail { "" } else { "use_organization_trail = true\n" };
    let text = format!(
        "[profile]\nname = \"member-guard\"\npolicies_dir = \"../policies\"\n\n\
         [bucket]\nname = \"ctguard-member-${{account_id}}-${{region}}\"\ntrail_prefix = \"cloudtrail\"\n\
         encryption = \"AES256\"\npolicy = \"audit-bucket-policy.json\"\n\n\
         [trail]\nname = \"ctguard-member\"\n{relies}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The management account's organization trail, applied; returns its ARN.
async fn management_trail(emu: &Emulator, dir: &tempfile::TempDir) -> String {
    organization(emu, true).await;
    let p = profile(dir, true);
    emu.ctguard(&["apply", "--auto-approve", "-p", p.to_str().unwrap()]).expect(0);
    format!("arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{TRAIL}")
}

/// The trails the member account owns (DescribeTrails without shadow trails), as ctguard would
/// see them with the member's credentials.
async fn own_trails(emu: &Emulator, env: &[(&str, OsString)]) -> Vec<String> {
    let get = |k: &str| env.iter().find(|(n, _)| *n == k).unwrap().1.to_str().unwrap().to_string();
    let creds = aws_credential_types::Credentials::new(
        get("AWS_ACCESS_KEY_ID"),
        get("AWS_SECRET_ACCESS_KEY"),
        Some(get("AWS_SESSION_TOKEN")),
        None,
        "member",
    );
    let conf = aws_sdk_cloudtrail::config::Builder::from(&emu.sdk().await).credentials_provider(creds).build();
    let ct = aws_sdk_cloudtrail::Client::from_conf(conf);
    let out = ct.describe_trails().include_shadow_trails(false).send().await.unwrap();
    out.trail_list().iter().filter_map(|t| t.trail_arn().map(str::to_string)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_relying_on_the_organization_trail_makes_none_and_verify_watches_it() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let org_trail = management_trail(&emu, &dir).await;
    let (_, env) = member(&emu).await;
    let envs: Vec<(&str, &std::ffi::OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let p = member_profile(&dir, false);
    let p = p.to_str().unwrap();

    let plan = emu.ctguard_in_env(&["plan", "-p", p], &envs);
    plan.expect(0);
    assert!(plan.stdout.contains(&format!("relies on organization trail {org_trail}")), "{}", plan.stdout);
    emu.ctguard_in_env(&["apply", "--auto-approve", "-p", p], &envs).expect(0);
    assert_eq!(own_trails(&emu, &env).await, Vec::<String>::new());
    emu.ctguard_in_env(&["plan", "--detailed-exitcode", "-p", p], &envs).expect(0);
    let verify = emu.ctguard_in_env(&["verify", "-v", "-p", p], &envs);
    verify.expect(0);
    assert!(verify.stdout.contains(&format!("{org_trail} is logging")), "{}", verify.stdout);

    // Stopped in the management account: the member's verify fails on it.
    let ct = aws_sdk_cloudtrail::Client::new(&emu.sdk().await);
    ct.stop_logging().name(TRAIL).send().await.unwrap();
    let verify = emu.ctguard_in_env(&["verify", "-p", p], &envs);
    assert_eq!(verify.code, 2, "{}\n{}", verify.stdout, verify.stderr);
    assert!(verify.stdout.contains("is not logging"), "{}", verify.stdout);

    // Gone: verify fails, naming what it looked for; apply cannot make it from here.
    ct.delete_trail().name(TRAIL).send().await.unwrap();
    let verify = emu.ctguard_in_env(&["verify", "-p", p], &envs);
    assert_eq!(verify.code, 2, "{}\n{}", verify.stdout, verify.stderr);
    assert!(
        verify.stdout.contains("has IsOrganizationTrail = true and a home account other than"),
        "{}",
        verify.stdout
    );
    let apply = emu.ctguard_in_env(&["apply", "--auto-approve", "-p", p], &envs);
    assert_eq!(apply.code, 1, "{}\n{}", apply.stdout, apply.stderr);
    assert_eq!(own_trails(&emu, &env).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_members_own_trail_is_not_deleted_silently_when_it_relies_on_the_organization_trail() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    management_trail(&emu, &dir).await;
    let (id, env) = member(&emu).await;
    let envs: Vec<(&str, &std::ffi::OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let own = member_profile(&dir, true).to_str().unwrap().to_string();
    let applied = emu.ctguard_in_env(&["apply", "--auto-approve", "-p", &own], &envs);
    applied.expect(0);
    // Plan and apply say the account is covered already.
    let org_trail = format!("arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{TRAIL}");
    let note = format!("organization trail {org_trail} (account {ACCOUNT}) already records this account");
    assert!(applied.stderr.contains(&note), "{}", applied.stderr);
    let mine = format!("arn:aws:cloudtrail:{REGION}:{id}:trail/ctguard-member");
    assert_eq!(own_trails(&emu, &env).await, vec![mine.clone()]);

    let relies = member_profile(&dir, false).to_str().unwrap().to_string();
    let plan = emu.ctguard_in_env(&["plan", "-p", &relies], &envs);
    plan.expect(0);
    assert!(plan.stdout.contains("data loss"), "{}", plan.stdout);
    // As with a renamed trail: apply leaves it logging and says so, and verify fails on it until
    // someone decides.
    let kept = emu.ctguard_in_env(&["apply", "--auto-approve", "-p", &relies], &envs);
    kept.expect(0);
    assert!(kept.stdout.contains("--allow-data-loss"), "{}", kept.stdout);
    assert_eq!(own_trails(&emu, &env).await, vec![mine.clone()]);
    emu.ctguard_in_env(&["verify", "-p", &relies], &envs).expect(2);

    // Not while the organization trail is stopped: the member's own trail is its only record.
    let ct = aws_sdk_cloudtrail::Client::new(&emu.sdk().await);
    ct.stop_logging().name(TRAIL).send().await.unwrap();
    let stopped = emu.ctguard_in_env(&["apply", "--auto-approve", "--allow-data-loss", "-p", &relies], &envs);
    assert_eq!(stopped.code, 1, "{}\n{}", stopped.stdout, stopped.stderr);
    assert_eq!(own_trails(&emu, &env).await, vec![mine.clone()], "kept while the organization trail is stopped");
    ct.start_logging().name(TRAIL).send().await.unwrap();

    emu.ctguard_in_env(&["apply", "--auto-approve", "--allow-data-loss", "-p", &relies], &envs).expect(0);
    assert_eq!(own_trails(&emu, &env).await, Vec::<String>::new());
    emu.ctguard_in_env(&["plan", "--detailed-exitcode", "-p", &relies], &envs).expect(0);
}

#[test]
fn relying_on_an_organization_trail_refuses_what_would_configure_a_trail_or_its_log_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = profile(&dir, false);
    let text =
        std::fs::read_to_string(&path).unwrap().replacen("[trail]\n", "[trail]\nuse_organization_trail = true\n", 1);
    std::fs::write(&path, text).unwrap();
    let run = run(ctguard_cmd().args(["validate", "-p", path.to_str().unwrap()]));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for key in ["trail.kms", "trail.data_events", "cloudwatch_logs", "alarms"] {
        assert!(
            run.stderr.contains(&format!("{key}: not with trail.use_organization_trail = true")),
            "{key}: {}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("would never fire"), "{}", run.stderr);
}
