//! Central alerting through an event bus in a security account (`[events] central_bus`),
//! against the emulator: the account that owns the bus makes it, its policy (the organization
//! may put events) and the profile's rules on it; a member sends what its rules watch there
//! from every region, with its forwarding role; both plans are then empty; a destructive call
//! in the member reaches the security account's topic once, naming the member; a statement
//! someone else put in the bus policy survives apply; and a bad bus ARN changes nothing.

mod common;

use std::ffi::OsString;
use std::path::PathBuf;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use common::*;
use serde_json::{Value, json};

const BUS: &str = "ctguard-central";
const OTHER_REGION: &str = "eu-west-1";
const QUEUE: &str = "ctguard-test-alerts";
const FORWARDER: &str = "ctguard-events-forwarder";

fn bus_arn() -> String {
    format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{BUS}")
}

/// The flagship profile in two regions, sending to `central_bus`, with an SQS subscriber of
/// each account's own beside the email one.
fn profile(dir: &tempfile::TempDir, central_bus: &str) -> PathBuf {
    run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", dir.path().to_str().unwrap()])).expect(0);
    let path = dir.path().join("profiles/ai-agent-guard.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let regions = json!([REGION, OTHER_REGION]).to_string();
    let text = text.replacen("regions = \"all-enabled\"\n", &format!("regions = {regions}\n"), 1);
    let queue = format!("arn:aws:sqs:{REGION}:${{account_id}}:{QUEUE}");
    let text = text.replacen(
        "endpoint = \"${alert_email}\"\n",
        &format!(
            "endpoint = \"${{alert_email}}\"\n\n[[alerts.subscriptions]]\nprotocol = \"sqs\"\nendpoint = \"{queue}\"\n"
        ),
        1,
    );
    let text = text.replacen(
        "forwarder_role_policy = \"events-forwarder-policy.json\"\n",
        &format!("forwarder_role_policy = \"events-forwarder-policy.json\"\ncentral_bus = \"{central_bus}\"\n"),
        1,
    );
    assert!(text.contains("central_bus = \""), "the profile's [events] section moved");
    std::fs::write(&path, text).unwrap();
    path
}

/// An organization with the default account, the security account here, as its management
/// account. Returns the organization's ID.
async fn organization(emu: &Emulator) -> String {
    let org = aws_sdk_organizations::Client::new(&emu.sdk().await);
    let made = org
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    made.organization().unwrap().id().unwrap().to_string()
}

/// A new member account and the credentials of its OrganizationAccountAccessRole.
async fn member(emu: &Emulator) -> (String, aws_config::SdkConfig, Vec<(&'static str, OsString)>) {
    let conf = emu.sdk().await;
    let org = aws_sdk_organizations::Client::new(&conf);
    let status = org.create_account().account_name("member").email("member@corp.test").send().await.unwrap();
    let id = status.create_account_status().unwrap().account_id().unwrap().to_string();
    let sts = aws_sdk_sts::Client::new(&conf);
    let role = format!("arn:aws:iam::{id}:role/OrganizationAccountAccessRole");
    let assumed = sts.assume_role().role_arn(role).role_session_name("ctguard-test").send().await.unwrap();
    let c = assumed.credentials().unwrap();
    let creds = aws_sdk_sts::config::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "member",
    );
    let member_conf =
        conf.to_builder().credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(creds)).build();
    let env = vec![
        ("AWS_ACCESS_KEY_ID", OsString::from(c.access_key_id())),
        ("AWS_SECRET_ACCESS_KEY", OsString::from(c.secret_access_key())),
        ("AWS_SESSION_TOKEN", OsString::from(c.session_token())),
    ];
    (id, member_conf, env)
}

fn in_env(emu: &Emulator, env: &[(&'static str, OsString)], args: &[&str]) -> Run {
    let env: Vec<(&str, &std::ffi::OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    emu.ctguard_in_env(args, &env)
}

fn events_in(conf: &aws_config::SdkConfig, region: &str) -> aws_sdk_eventbridge::Client {
    let conf = aws_sdk_eventbridge::config::Builder::from(conf).region(aws_config::Region::new(region.to_string()));
    aws_sdk_eventbridge::Client::from_conf(conf.build())
}

async fn bus_policy(emu: &Emulator) -> Value {
    let eb = events_in(&emu.sdk().await, REGION);
    let bus = eb.describe_event_bus().name(BUS).send().await.unwrap();
    serde_json::from_str(bus.policy().expect("the bus has a policy")).unwrap()
}

fn statement<'a>(doc: &'a Value, sid: &str) -> Option<&'a Value> {
    doc["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == sid)
}

/// Every message body in the queue, deleted once read.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for m in messages {
            bodies.push(m.body().unwrap_or_default().to_string());
            sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
}

/// The alert text of each SNS envelope.
fn alerts(bodies: &[String]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| {
            let envelope: Value = serde_json::from_str(b).unwrap();
            envelope["Message"].as_str().unwrap().to_string()
        })
        .collect()
}

/// A CloudTrail event of an EC2 instance terminated by a person, on the default bus of `eb`.
async fn terminate_instances(eb: &aws_sdk_eventbridge::Client, id: &str) {
    let detail = json!({
        "eventVersion": "1.09",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "TerminateInstances",
        "eventID": id,
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::000000000000:user/alice", "userName": "alice"},
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"instancesSet": {"items": [{"instanceId": "i-0abc"}]}},
    });
    let entry = PutEventsRequestEntry::builder()
        .source("aws.ec2")
        .detail_type("AWS API Call via CloudTrail")
        .detail(detail.to_string())
        .build();
    let out = eb.put_events().entries(entry).send().await.unwrap();
    assert_eq!(out.failed_entry_count(), 0, "{:?}", out.entries());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_members_destructive_call_alerts_in_the_security_account() {
    let emu = Emulator::start();
    let org_id = organization(&emu).await;
    let (member_id, member_conf, env) = member(&emu).await;
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir, &bus_arn());
    let p = p.to_str().unwrap();
    let security = emu.sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&security);
    let queue = sqs.create_queue().queue_name(QUEUE).send().await.unwrap().queue_url.unwrap();
    let member_sqs = aws_sdk_sqs::Client::new(&member_conf);
    let member_queue = member_sqs.create_queue().queue_name(QUEUE).send().await.unwrap().queue_url.unwrap();

    // The security account: the bus, its policy admitting the organization, the rules on it.
    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);
    let policy = bus_policy(&emu).await;
    let ours = statement(&policy, "CtguardOrganizationPutsEvents").expect("ctguard's statement");
    assert_eq!(ours["Action"], "events:PutEvents");
    assert_eq!(ours["Principal"], "*");
    assert_eq!(ours["Resource"], bus_arn());
    assert_eq!(ours["Condition"]["StringEquals"]["aws:PrincipalOrgID"], org_id.as_str());
    let eb = events_in(&security, REGION);
    let on_bus = eb.list_rules().event_bus_name(BUS).send().await.unwrap();
    let names: Vec<&str> = on_bus.rules().iter().filter_map(|r| r.name()).collect();
    assert!(names.contains(&"ctguard-destructive-actions"), "{names:?}");
    let targets =
        eb.list_targets_by_rule().rule("ctguard-destructive-actions").event_bus_name(BUS).send().await.unwrap();
    let topic = format!("arn:aws:sns:{REGION}:{ACCOUNT}:ctguard-alerts");
    assert_eq!(targets.targets()[0].arn(), topic);
    // The security account forwards nothing to its own bus.
    let home = eb.list_rules().name_prefix("ctguard-forward-to-central").send().await.unwrap();
    assert!(home.rules().is_empty(), "{:?}", home.rules());

    // The member: every region sends to the central bus with the forwarding role.
    in_env(&emu, &env, &["apply", "--auto-approve", "-p", p]).expect(0);
    let role = format!("arn:aws:iam::{member_id}:role/ctguard/{FORWARDER}");
    for (region, rule) in [(REGION, "ctguard-forward-to-central"), (OTHER_REGION, "ctguard-forward-to-home")] {
        let eb = events_in(&member_conf, region);
        let out = eb.list_targets_by_rule().rule(rule).send().await.unwrap();
        let central = out.targets().iter().find(|t| t.arn() == bus_arn()).unwrap_or_else(|| panic!("{region}/{rule}"));
        assert_eq!(central.role_arn(), Some(role.as_str()), "{region}/{rule}");
    }
    let iam = aws_sdk_iam::Client::new(&member_conf);
    let inline =
        iam.get_role_policy().role_name(FORWARDER).policy_name("ctguard-forward-to-central").send().await.unwrap();
    let doc: Value = serde_json::from_str(&urlencoding_decode(inline.policy_document())).unwrap();
    assert_eq!(doc["Statement"][0]["Resource"], bus_arn());
    assert_eq!(doc["Statement"][0]["Action"], "events:PutEvents");

    // Converged in both accounts.
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", p]).expect(0);
    in_env(&emu, &env, &["plan", "--detailed-exitcode", "-p", p]).expect(0);

    // A destructive call in the member's home region, and one in another region: each alerts
    // once in the security account, naming the member, and still alerts in the member.
    drain(&sqs, &queue).await;
    drain(&member_sqs, &member_queue).await;
    terminate_instances(&events_in(&member_conf, REGION), "home-event").await;
    terminate_instances(&events_in(&member_conf, OTHER_REGION), "other-region-event").await;
    let central = alerts(&drain(&sqs, &queue).await);
    for id in ["home-event", "other-region-event"] {
        let about: Vec<&String> = central.iter().filter(|m| m.contains(id)).collect();
        assert_eq!(about.len(), 1, "{id}: {central:#?}");
        assert!(about[0].contains("[HIGH] Destructive AWS API call"), "{}", about[0]);
        assert!(about[0].contains(&format!("\"Account: {member_id}\"\n")), "{}", about[0]);
        assert!(about[0].contains("Call: TerminateInstances (ec2.amazonaws.com)"), "{}", about[0]);
    }
    let local = alerts(&drain(&member_sqs, &member_queue).await);
    assert_eq!(local.len(), 2, "the member alerts locally as well: {local:#?}");

    // Tampering with the member's own alert topic: the rule names the topic by its ARN, which
    // carries the member's account ID; on the central bus it matches any account's.
    let topic = format!("arn:aws:sns:{REGION}:{member_id}:ctguard-alerts");
    let detail = json!({
        "eventSource": "sns.amazonaws.com",
        "eventName": "DeleteTopic",
        "eventID": "tamper-event",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::000000000000:user/mallory", "userName": "mallory"},
        "requestParameters": {"topicArn": topic},
    });
    let entry = PutEventsRequestEntry::builder()
        .source("aws.sns")
        .detail_type("AWS API Call via CloudTrail")
        .detail(detail.to_string())
        .build();
    events_in(&member_conf, REGION).put_events().entries(entry).send().await.unwrap();
    let central = alerts(&drain(&sqs, &queue).await);
    let local = alerts(&drain(&member_sqs, &member_queue).await);
    assert!(!local.is_empty(), "the member's own rule alerts");
    assert_eq!(central.len(), local.len(), "as many central alerts as local ones: {central:#?} {local:#?}");
    for m in &central {
        assert!(m.contains("Call: DeleteTopic (sns.amazonaws.com)") && m.contains(&member_id), "{m}");
    }

    // verify passes in both, and checks the rules on the bus like the others.
    let verify = emu.ctguard(&["verify", "-v", "-p", p]);
    verify.expect(0);
    let on_bus = format!("events_rule.{REGION}/{BUS}/ctguard-destructive-actions");
    assert!(verify.stdout.contains(&on_bus), "{}", verify.stdout);
    in_env(&emu, &env, &["verify", "-p", p]).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_statement_in_the_bus_policy_survives_apply() {
    let emu = Emulator::start();
    organization(&emu).await;
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir, &bus_arn());
    let p = p.to_str().unwrap();
    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);

    // Another team lets one more account put events; ctguard's statement is then removed.
    let eb = events_in(&emu.sdk().await, REGION);
    eb.put_permission()
        .event_bus_name(BUS)
        .action("events:PutEvents")
        .principal("111122223333")
        .statement_id("PartnerAccountPutsEvents")
        .send()
        .await
        .unwrap();
    eb.remove_permission().event_bus_name(BUS).statement_id("CtguardOrganizationPutsEvents").send().await.unwrap();
    let plan = emu.ctguard(&["plan", "--detailed-exitcode", "-p", p]);
    plan.expect(2);
    assert!(plan.stdout.contains(&format!("event_bus.{BUS}")), "{}", plan.stdout);

    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);
    let policy = bus_policy(&emu).await;
    assert!(statement(&policy, "CtguardOrganizationPutsEvents").is_some(), "{policy:#}");
    let theirs = statement(&policy, "PartnerAccountPutsEvents").expect("the other team's statement is kept");
    assert_eq!(theirs["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
    emu.ctguard(&["plan", "--detailed-exitcode", "-p", p]).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_central_bus_is_refused_before_any_change() {
    let emu = Emulator::start();
    organization(&emu).await;
    emu.clear_requests();
    for (arn, expected) in [
        ("ctguard-central", "expected an event bus ARN"),
        ("arn:aws:events:us-east-1:123456789012:event-bus/default", "a custom event bus"),
        ("arn:aws-us-gov:events:us-gov-west-1:123456789012:event-bus/central", "is in partition aws-us-gov"),
        (
            "arn:aws:events:ap-south-1:123456789012:event-bus/central",
            "region ap-south-1 is not one the profile declares",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let p = profile(&dir, arn);
        let run = emu.ctguard(&["apply", "--auto-approve", "-p", p.to_str().unwrap()]);
        run.expect(1);
        assert!(run.stderr.contains("ai-agent-guard.toml: events.central_bus: "), "{arn}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{arn}: {}", run.stderr);
        assert_eq!(emu.mutating_requests().len(), 0, "{arn}: {:#?}", emu.mutating_requests());
    }
}

fn urlencoding_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}
