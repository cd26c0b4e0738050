//! The alerting pipeline against the emulator: topic, subscriptions, rules in every region,
//! metric filters and alarms; idempotence; drift found and repaired.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::{Value, json};

const TOPIC: &str = "ctguard-alerts";
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];
const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:ctguard-test-alerts";

fn topic_arn() -> String {
    format!("arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}")
}

/// The flagship profile, cut down to three regions, with an SQS subscriber beside the email one.
fn profile(dir: &tempfile::TempDir) -> PathBuf {
    let out = run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard", dir.path().to_str().unwrap()]));
    out.expect(0);
    let path = dir.path().join("profiles/ai-agent-guard.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("regions = \"all-enabled\"\n").unwrap();
    let end = start + "regions = \"all-enabled\"\n".len();
    let regions = format!("regions = {}\n", serde_json::to_string(&REGIONS).unwrap());
    let text = format!("{}{}{}", &text[..start], regions, &text[end..]);
    let text = text.replace(
        "endpoint = \"${alert_email}\"\n",
        &format!(
            "endpoint = \"${{alert_email}}\"\n\n[[alerts.subscriptions]]\nprotocol = \"sqs\"\nendpoint = \"{QUEUE}\"\n"
        ),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn policy_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_builds_the_alerting_pipeline_in_every_region() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir);
    let p = p.to_str().unwrap();
    let run = emu.ctguard(&["apply", "--auto-approve", "-p", p]);
    run.expect(0);
    let conf = emu.sdk().await;

    // Topic policy: CloudWatch may publish for this account's alarms; EventBridge without a
    // condition, which topic policies for EventBridge cannot carry (README, policy conditions).
    let sns = aws_sdk_sns::Client::new(&conf);
    let attrs = sns.get_topic_attributes().topic_arn(topic_arn()).send().await.unwrap();
    let doc = policy_json(&attrs.attributes().unwrap()["Policy"]);
    let by_sid = |sid: &str| doc["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == sid).cloned().unwrap();
    let alarms_publish = by_sid("CtguardCloudWatchAlarmsPublish");
    assert_eq!(alarms_publish["Principal"]["Service"], "cloudwatch.amazonaws.com");
    assert_eq!(alarms_publish["Condition"]["StringEquals"]["aws:SourceAccount"], ACCOUNT);
    let rules_publish = by_sid("CtguardEventBridgeRulesPublish");
    assert_eq!(rules_publish["Principal"]["Service"], "events.amazonaws.com");
    assert!(rules_publish.get("Condition").is_none(), "{rules_publish}");
    assert!(!doc.to_string().contains("\"Principal\":\"*\""), "the topic must be public to no one: {doc}");
    let subs = sns.list_subscriptions_by_topic().topic_arn(topic_arn()).send().await.unwrap();
    let mut endpoints: Vec<&str> = subs.subscriptions().iter().filter_map(|s| s.endpoint()).collect();
    endpoints.sort();
    assert_eq!(endpoints, [QUEUE, "security-alerts@example.com"]);

    // The rules run in the home region and publish a readable message to the topic; every other
    // region forwards what they watch to the home bus through the forwarder role, once.
    for region in REGIONS {
        let eb = aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(&conf)
                .region(aws_sdk_eventbridge::config::Region::new(region))
                .build(),
        );
        let listed = eb.list_rules().name_prefix("ctguard-").send().await.unwrap();
        let names: Vec<&str> = listed.rules().iter().filter_map(|r| r.name()).collect();
        if region != REGION {
            // The forwarding rules, and the fire-drill rule, which forwards the same way.
            let forwarders = names.iter().filter(|n| n.starts_with("ctguard-forward-to-home")).count();
            assert_eq!(forwarders + 1, names.len(), "{region}: {names:?}");
            assert!(names.contains(&"ctguard-drill"), "{region}: {names:?}");
            assert!(forwarders > 0 && forwarders < 8, "{region}: {names:?}");
            for rule in names {
                let targets = eb.list_targets_by_rule().rule(rule).send().await.unwrap();
                let [t] = targets.targets() else { panic!("{region}/{rule}: {:?}", targets.targets()) };
                assert_eq!(t.arn(), format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"));
                assert_eq!(
                    t.role_arn(),
                    Some(format!("arn:aws:iam::{ACCOUNT}:role/ctguard/ctguard-events-forwarder").as_str())
                );
            }
            continue;
        }
        for rule in ["ctguard-destructive-actions", "ctguard-monitoring-tampering", "ctguard-agent-destructive-actions"]
        {
            let r = eb.describe_rule().name(rule).send().await.unwrap_or_else(|e| panic!("{region}/{rule}: {e:?}"));
            assert_eq!(r.state().map(|s| s.as_str()), Some("ENABLED"));
            let targets = eb.list_targets_by_rule().rule(rule).send().await.unwrap();
            let t = &targets.targets()[0];
            assert_eq!(t.arn(), topic_arn());
            let template = t.input_transformer().unwrap().input_template();
            assert!(template.contains("\"Call: <eventName> (<eventSource>)\""), "{template}");
        }
        let agent = eb.describe_rule().name("ctguard-agent-destructive-actions").send().await.unwrap();
        let pattern: Value = serde_json::from_str(agent.event_pattern().unwrap()).unwrap();
        // Any [agents] signal, each as the profile declares it: roles and SSO permission sets
        // as this account's session ARNs, session names anchored after the role id, source
        // identities, IAM users, and the MCP user agent. Order is the service's to choose.
        let mut signals: Vec<String> =
            pattern["detail"]["$or"].as_array().unwrap().iter().map(Value::to_string).collect();
        signals.sort();
        let mut expected: Vec<String> = [
            json!({"userAgent": [{"wildcard": "*awslabs/mcp/*"}]}),
            json!({"userIdentity": {"arn": [
                {"prefix": format!("arn:aws:sts::{ACCOUNT}:assumed-role/AIAgent")},
                {"prefix": format!("arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_AIAgent")}
            ]}}),
            json!({"userIdentity": {"principalId": [{"wildcard": "*:agent-*"}], "type": ["AssumedRole"]}}),
            json!({"userIdentity": {"sessionContext": {"sourceIdentity": [{"prefix": "agent-"}]}}}),
            json!({"userIdentity": {"type": ["IAMUser"], "userName": [{"prefix": "ai-agent-"}]}}),
        ]
        .iter()
        .map(Value::to_string)
        .collect();
        expected.sort();
        assert_eq!(signals, expected, "{pattern}");
        // The destructive calls themselves are the template's, and an agent's call is never
        // dropped as a service's.
        assert!(pattern["$or"].to_string().contains("TerminateInstances"), "{pattern}");
        assert!(pattern["detail"].get("userIdentity").is_none(), "{pattern}");
        let all: Value = serde_json::from_str(
            eb.describe_rule().name("ctguard-destructive-actions").send().await.unwrap().event_pattern().unwrap(),
        )
        .unwrap();
        assert!(all.to_string().contains("TerminateInstances") && all.to_string().contains("DeleteResource"), "{all}");
        // The rule on everyone leaves out calls AWS services make (invokedBy, service-linked
        // roles) and the agents' calls, which the agent rule on the same template alerts on.
        assert_eq!(all["detail"]["userIdentity"]["invokedBy"], json!([{"exists": false}]), "{all}");
        let arn = all["detail"]["userIdentity"]["arn"].to_string();
        assert!(arn.contains(&format!("arn:aws:sts::{ACCOUNT}:assumed-role/AWSServiceRoleFor")), "{all}");
        assert!(arn.contains("anything-but") && arn.contains("assumed-role/AIAgent"), "{all}");
    }

    // Metric filters and alarms: CIS 4.1-4.15 plus the agent detections, the two on S3 data
    // events included (the trail records the agents' S3 object reads and deletes).
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let filters = logs.describe_metric_filters().log_group_name(LOG_GROUP).send().await.unwrap();
    assert_eq!(filters.metric_filters().len(), 25);
    let root = filters
        .metric_filters()
        .iter()
        .find(|f| f.filter_name() == Some("ctguard-cis-4.3-root-account-usage"))
        .unwrap();
    assert!(root.filter_pattern().unwrap().contains("AwsServiceEvent"));
    // An agent alarm's filter takes the same signals, in the filter pattern language.
    let volume = filters
        .metric_filters()
        .iter()
        .find(|f| f.filter_name() == Some("ctguard-agent-api-call-volume"))
        .and_then(|f| f.filter_pattern())
        .unwrap();
    for clause in [
        format!("($.userIdentity.arn = \"arn:aws:sts::{ACCOUNT}:assumed-role/AIAgent*\")"),
        format!("($.userIdentity.arn = \"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_AIAgent*\")"),
        "(($.userIdentity.type = \"AssumedRole\") && ($.userIdentity.principalId = \"*:agent-*\"))".into(),
        "($.userIdentity.sessionContext.sourceIdentity = \"agent-*\")".into(),
        "(($.userIdentity.type = \"IAMUser\") && ($.userIdentity.userName = \"ai-agent-*\"))".into(),
        "($.userAgent = \"*awslabs/mcp/*\")".into(),
    ] {
        assert!(volume.contains(&clause), "{clause} not in {volume}");
    }
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let alarms = cw.describe_alarms().alarm_name_prefix("ctguard-").max_records(100).send().await.unwrap();
    assert_eq!(alarms.metric_alarms().len(), 25);
    for a in alarms.metric_alarms() {
        assert_eq!(a.alarm_actions(), [topic_arn()]);
        assert_eq!(a.treat_missing_data(), Some("notBreaching"));
    }
    let cis1 = alarms
        .metric_alarms()
        .iter()
        .find(|a| a.alarm_name() == Some("ctguard-cis-4.1-unauthorized-api-calls"))
        .unwrap();
    assert_eq!((cis1.period(), cis1.evaluation_periods(), cis1.threshold()), (Some(300), Some(1), Some(1.0)));
    assert_eq!(cis1.comparison_operator().map(|c| c.as_str()), Some("GreaterThanOrEqualToThreshold"));

    // Converged.
    emu.clear_requests();
    let again = emu.ctguard(&["apply", "--auto-approve", "-p", p]);
    again.expect(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    assert!(emu.mutating_requests().is_empty(), "{:?}", emu.mutating_requests());
    // No N+1: the tags of rules and alarms come from one GetResources per region.
    let per_resource: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| {
            r.operation.ends_with("ListTagsForResource")
                && ["events", "config", "monitoring"].contains(&r.service.as_str())
        })
        .collect();
    assert!(per_resource.is_empty(), "{per_resource:?}");
    let batched = emu.requests().iter().filter(|r| r.operation.ends_with("GetResources")).count();
    assert_eq!(batched, REGIONS.len());
    // Passing checks are listed with -v.
    let verify = emu.ctguard(&["verify", "-v", "-p", p]);
    verify.expect(0);
    assert!(
        verify.stdout.contains("subscription sqs:arn:aws:sqs:us-east-1:123456789012:ctguard-test-alerts is confirmed"),
        "{}",
        verify.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn alerting_drift_is_reported_and_repaired() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir);
    let p = p.to_str().unwrap();
    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);
    let conf = emu.sdk().await;
    let eu = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&conf)
            .region(aws_sdk_eventbridge::config::Region::new("eu-west-1"))
            .build(),
    );
    let home = aws_sdk_eventbridge::Client::new(&conf);
    let sns = aws_sdk_sns::Client::new(&conf);
    let cw = aws_sdk_cloudwatch::Client::new(&conf);

    // A forwarding rule disabled in one region, a target removed at home, an event name dropped.
    eu.disable_rule().name("ctguard-forward-to-home").send().await.unwrap();
    home.remove_targets().rule("ctguard-destructive-actions").ids("ctguard-alert-topic").send().await.unwrap();
    let rule = home.describe_rule().name("ctguard-agent-destructive-actions").send().await.unwrap();
    let trimmed = rule.event_pattern().unwrap().replace(",\"TerminateInstances\"", "");
    assert_ne!(trimmed, rule.event_pattern().unwrap());
    home.put_rule().name("ctguard-agent-destructive-actions").event_pattern(trimmed).send().await.unwrap();
    // An alarm threshold changed, a subscription deleted, a statement added to the topic policy.
    let name = "ctguard-cis-4.3-root-account-usage";
    let a = cw.describe_alarms().alarm_names(name).send().await.unwrap();
    let a = &a.metric_alarms()[0];
    cw.put_metric_alarm()
        .alarm_name(name)
        .metric_name(a.metric_name().unwrap())
        .namespace(a.namespace().unwrap())
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(300)
        .evaluation_periods(1)
        .threshold(50.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold)
        .set_alarm_actions(Some(a.alarm_actions().to_vec()))
        .treat_missing_data("notBreaching")
        .alarm_description(a.alarm_description().unwrap_or(""))
        .send()
        .await
        .unwrap();
    let subs = sns.list_subscriptions_by_topic().topic_arn(topic_arn()).send().await.unwrap();
    let sqs = subs.subscriptions().iter().find(|s| s.protocol() == Some("sqs")).unwrap();
    sns.unsubscribe().subscription_arn(sqs.subscription_arn().unwrap()).send().await.unwrap();
    let attrs = sns.get_topic_attributes().topic_arn(topic_arn()).send().await.unwrap();
    let mut doc = policy_json(&attrs.attributes().unwrap()["Policy"]);
    doc["Statement"].as_array_mut().unwrap().push(json!({"Sid": "Anyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sns:Subscribe", "Resource": topic_arn()}));
    sns.set_topic_attributes()
        .topic_arn(topic_arn())
        .attribute_name("Policy")
        .attribute_value(doc.to_string())
        .send()
        .await
        .unwrap();

    let plan = emu.ctguard(&["plan", "--detailed-exitcode", "-p", p]);
    plan.expect(2);
    for expected in [
        "# events_rule.eu-west-1/ctguard-forward-to-home will be updated in place",
        "~ state = \"DISABLED\" -> \"ENABLED\"",
        "~ ctguard-alert-topic = {",
        "= \"arn:aws:sns:us-east-1:123456789012:ctguard-alerts\"",
        "# events_rule.us-east-1/ctguard-agent-destructive-actions will be updated in place",
        "~ threshold = 50.0 -> 1.0",
        &format!("+ \"sqs:{QUEUE}\" = \"subscribed\""),
    ] {
        // Spacing aligns `=` signs within a block; compare words, not columns.
        let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words(&plan.stdout).contains(&words(expected)), "plan lacks {expected:?}:\n{}", plan.stdout);
    }
    // Someone else's statement is not ctguard's to remove: not drift, but a failing check.
    assert!(!plan.stdout.contains("Anyone"), "{}", plan.stdout);
    let public = "topic policy: statement \"Anyone\" does not grant access to anyone";
    let verify = emu.ctguard(&["verify", "-p", p]);
    verify.expect(2);
    assert!(verify.stdout.contains(public), "{}", verify.stdout);
    emu.ctguard(&["apply", "--auto-approve", "-p", p]).expect(0);
    let attrs = sns.get_topic_attributes().topic_arn(topic_arn()).send().await.unwrap();
    let kept = policy_json(&attrs.attributes().unwrap()["Policy"]);
    assert!(kept["Statement"].as_array().unwrap().iter().any(|s| s["Sid"] == "Anyone"), "{kept}");
    let verify = emu.ctguard(&["verify", "-p", p]);
    verify.expect(2);
    assert!(verify.stdout.contains(public), "{}", verify.stdout);
    // Removed by a person, the check passes.
    let mut doc = kept;
    doc["Statement"].as_array_mut().unwrap().retain(|s| s["Sid"] != "Anyone");
    let set = sns.set_topic_attributes().topic_arn(topic_arn()).attribute_name("Policy");
    set.attribute_value(doc.to_string()).send().await.unwrap();
    emu.ctguard(&["verify", "-p", p]).expect(0);
    let r = eu.describe_rule().name("ctguard-forward-to-home").send().await.unwrap();
    assert_eq!(r.state().map(|s| s.as_str()), Some("ENABLED"));
    let a = cw.describe_alarms().alarm_names(name).send().await.unwrap();
    assert_eq!(a.metric_alarms()[0].threshold(), Some(1.0));
}

#[test]
fn the_aws_managed_sns_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir);
    let text = std::fs::read_to_string(&p).unwrap().replace(
        "kms = { alias = \"alias/ctguard-alerts\", policy = \"alert-key-policy.json\" }\n",
        "kms = { key_arn = \"alias/aws/sns\" }\n",
    );
    std::fs::write(&p, text).unwrap();
    let run = run(ctguard_cmd().args(["plan", "-p", p.to_str().unwrap()]));
    run.expect(1);
    assert!(run.stderr.contains("alerts.kms: the AWS-managed key alias/aws/sns cannot be used"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_and_alarms_the_profile_drops_are_deleted_but_others_are_not() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(&dir);
    emu.ctguard(&["apply", "--auto-approve", "-p", p.to_str().unwrap()]).expect(0);
    let conf = emu.sdk().await;
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    // Someone else's alarm with ctguard's prefix but no ownership tag: never touched.
    cw.put_metric_alarm()
        .alarm_name("ctguard-handmade")
        .metric_name("X")
        .namespace("Y")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(300)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();

    // Drop the tampering rule and the CIS 4.15 alarm from the profile.
    let text = std::fs::read_to_string(&p).unwrap();
    let rule = text.find("[[events.rules]]\nname = \"ctguard-monitoring-tampering\"").unwrap();
    let rule_end = rule + text[rule..].find("\n\n").unwrap() + 2;
    let text = format!("{}{}", &text[..rule], &text[rule_end..]);
    let alarm = text.find("[[alarms]]\nid = \"cis-4.15\"").unwrap();
    let alarm_end = alarm + text[alarm..].find("\n\n").unwrap() + 2;
    let text = format!("{}{}", &text[..alarm], &text[alarm_end..]);
    std::fs::write(&p, text).unwrap();

    let plan = emu.ctguard(&["plan", "--format", "json", "-p", p.to_str().unwrap()]);
    plan.expect(0);
    let doc: Value = serde_json::from_str(&plan.stdout).unwrap();
    let mut deleted: Vec<String> = doc["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["actions"] == json!(["delete"]))
        .map(|c| c["address"].as_str().unwrap().to_string())
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            "cloudwatch_alarm.ctguard-cis-4.15-organizations-changes",
            // Fewer calls to watch: the other regions need one forwarding rule less.
            "events_rule.ap-southeast-2/ctguard-forward-to-home-6",
            "events_rule.eu-west-1/ctguard-forward-to-home-6",
            "events_rule.us-east-1/ctguard-monitoring-tampering",
            "logs_metric_filter.ctguard-cis-4.15-organizations-changes",
        ]
    );
    emu.ctguard(&["apply", "--auto-approve", "-p", p.to_str().unwrap()]).expect(0);
    emu.ctguard(&["verify", "-p", p.to_str().unwrap()]).expect(0);
    let left = cw
        .describe_alarms()
        .alarm_names("ctguard-handmade")
        .alarm_names("ctguard-cis-4.15-organizations-changes")
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = left.metric_alarms().iter().filter_map(|a| a.alarm_name()).collect();
    assert_eq!(names, ["ctguard-handmade"]);
}
