//! Alert delivery through the emulator, with the SDK: an event put on a bus reaches the rule's
//! topic through its input transformer and arrives in an SQS subscriber inside the SNS
//! envelope; a match in another region is forwarded to the home bus with its own region; an
//! alarm set to ALARM notifies its topic as CloudWatch does. And the paths a fire drill must
//! see fail: a removed target, disabled alarm actions, a deleted subscription, a disabled rule
//! and a target that no longer exists deliver nothing, the last counted as AWS counts it.
//!
//! The emulator delivers synchronously (tests/emulator/delivery.py): a message is in its queue
//! when the call that caused it returns, so an empty queue right after the call means nothing
//! was delivered.

mod common;

use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::{InputTransformer, PutEventsRequestEntry, Target};
use serde_json::{Value, json};

use common::{ACCOUNT, Emulator, REGION};

const OTHER_REGION: &str = "eu-west-1";
const DRILL_PATTERN: &str = r#"{"source":["ctguard.drill"]}"#;
/// 2026-11-27T10:00:00Z
const EVENT_TIME: i64 = 1_795_773_600;
const PRINCIPAL: &str = "arn:aws:sts::123456789012:assumed-role/AIAgentRole/session-1";

struct Aws {
    conf: aws_config::SdkConfig,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    cw: aws_sdk_cloudwatch::Client,
}

impl Aws {
    async fn new(emu: &Emulator) -> Aws {
        let conf = emu.sdk().await;
        Aws {
            sns: aws_sdk_sns::Client::new(&conf),
            sqs: aws_sdk_sqs::Client::new(&conf),
            cw: aws_sdk_cloudwatch::Client::new(&conf),
            conf,
        }
    }

    fn events(&self, region: &str) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(&self.conf)
                .region(aws_sdk_eventbridge::config::Region::new(region.to_string()))
                .build(),
        )
    }

    fn sqs_in(&self, region: &str) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&self.conf)
                .region(aws_sdk_sqs::config::Region::new(region.to_string()))
                .build(),
        )
    }

    async fn topic(&self, name: &str) -> String {
        self.sns.create_topic().name(name).send().await.unwrap().topic_arn.unwrap()
    }

    /// A queue in the home region: (url, arn).
    async fn queue(&self, name: &str) -> (String, String) {
        queue_in(&self.sqs, REGION, name).await
    }

    /// Subscribes a new queue to `topic`; returns (queue url, subscription ARN).
    async fn subscriber(&self, topic: &str, queue: &str, raw: Option<&str>) -> (String, String) {
        let (url, arn) = self.queue(queue).await;
        let mut sub = self.sns.subscribe().topic_arn(topic).protocol("sqs").endpoint(arn);
        if let Some(raw) = raw {
            sub = sub.attributes("RawMessageDelivery", raw);
        }
        (url, sub.send().await.unwrap().subscription_arn.unwrap())
    }

    /// The names of the AWS/Events or AWS/SNS metrics reported for one dimension value.
    async fn metrics(&self, namespace: &str, dimension: &str, value: &str) -> Vec<String> {
        let out = self.cw.list_metrics().namespace(namespace).send().await.unwrap();
        let mut names: Vec<String> = out
            .metrics()
            .iter()
            .filter(|m| m.dimensions().iter().any(|d| d.name() == Some(dimension) && d.value() == Some(value)))
            .filter_map(|m| m.metric_name().map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The sum of one metric over the last hour, in the home region.
    async fn sum(&self, namespace: &str, metric: &str, dimension: &str, value: &str) -> f64 {
        metric_sum(&self.cw, namespace, metric, dimension, value).await
    }
}

async fn metric_sum(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    metric: &str,
    dimension: &str,
    value: &str,
) -> f64 {
    let now = std::time::SystemTime::now();
    let out = cw
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(metric)
        .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name(dimension).value(value).build())
        .start_time((now - std::time::Duration::from_secs(3600)).into())
        .end_time((now + std::time::Duration::from_secs(60)).into())
        .period(3600)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
        .send()
        .await
        .unwrap();
    out.datapoints().iter().filter_map(|d| d.sum()).sum()
}

async fn queue_in(sqs: &aws_sdk_sqs::Client, region: &str, name: &str) -> (String, String) {
    let url = sqs.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap();
    (url, format!("arn:aws:sqs:{region}:{ACCOUNT}:{name}"))
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

/// The input transformer ctguard gives the home region's rules (src/resources/rule.rs): the
/// alert text as one quoted JSON string, since SNS wants text.
fn alert_transformer(title: &str) -> InputTransformer {
    let text =
        format!("[CRITICAL] {title}: <principal> called <action> (<service>) in <region> at <time>; error: <error>");
    let paths = [
        ("principal", "$.detail.userIdentity.arn"),
        ("action", "$.detail.eventName"),
        ("service", "$.detail.eventSource"),
        ("region", "$.region"),
        ("time", "$.time"),
        ("error", "$.detail.errorCode"),
    ];
    InputTransformer::builder()
        .set_input_paths_map(Some(paths.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
        .input_template(serde_json::to_string(&text).unwrap())
        .build()
        .unwrap()
}

fn target(id: &str, arn: &str) -> aws_sdk_eventbridge::types::builders::TargetBuilder {
    Target::builder().id(id).arn(arn)
}

/// A CloudTrail-shaped detail, as the drill puts it (no errorCode: the call succeeded).
fn drill_detail() -> Value {
    json!({
        "eventSource": "s3.amazonaws.com",
        "eventName": "DeleteBucket",
        "userIdentity": {"type": "AssumedRole", "arn": PRINCIPAL},
        "requestParameters": {"bucketName": "payments-prod"},
    })
}

/// Puts one drill event on the default bus of `events`' region; returns its event id.
async fn put_drill_event(events: &aws_sdk_eventbridge::Client, detail: &Value) -> String {
    let entry = PutEventsRequestEntry::builder()
        .source("ctguard.drill")
        .detail_type("ctguard drill")
        .detail(detail.to_string())
        .time(DateTime::from_secs(EVENT_TIME))
        .build();
    let out = events.put_events().entries(entry).send().await.unwrap();
    assert_eq!(out.failed_entry_count(), 0, "{:?}", out.entries());
    out.entries()[0].event_id().unwrap().to_string()
}

async fn drill_rule(events: &aws_sdk_eventbridge::Client, name: &str, targets: Vec<Target>) {
    events.put_rule().name(name).event_pattern(DRILL_PATTERN).send().await.unwrap();
    events.put_targets().rule(name).set_targets(Some(targets)).send().await.unwrap();
}

fn envelope(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not an SNS envelope ({e}): {body}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_input_transformer_reaches_the_topic_and_its_sqs_subscribers() {
    let emu = Emulator::start();
    let aws = Aws::new(&emu).await;
    let events = aws.events(REGION);
    let topic = aws.topic("alerts").await;
    let (inbox, subscription) = aws.subscriber(&topic, "inbox", None).await;
    let (explicit_envelope, _) = aws.subscriber(&topic, "explicit-envelope", Some("false")).await;
    let (raw, _) = aws.subscriber(&topic, "raw", Some("true")).await;
    let (json_queue, json_queue_arn) = aws.queue("json-target").await;
    let (whole_queue, whole_queue_arn) = aws.queue("whole-event").await;

    drill_rule(
        &events,
        "alert",
        vec![
            target("topic", &topic)
                .input_transformer(alert_transformer("AI agent destructive action"))
                .build()
                .unwrap(),
        ],
    )
    .await;
    // A JSON template on an SQS target: string values quoted where they stand alone, inserted
    // as they are inside a string, objects as JSON, reserved variables, the output minified.
    let json_template = InputTransformer::builder()
        .input_paths_map("who", "$.detail.userIdentity.arn")
        .input_paths_map("what", "$.detail.eventName")
        .input_paths_map("identity", "$.detail.userIdentity")
        .input_paths_map("absent", "$.detail.errorCode")
        .input_template(
            r#"{ "who": <who>, "summary": "<who> called <what>", "identity": <identity>, "rule": <aws.events.rule-name>, "error": "<absent>" }"#,
        )
        .build()
        .unwrap();
    drill_rule(
        &events,
        "json",
        vec![
            target("json", &json_queue_arn).input_transformer(json_template).build().unwrap(),
            target("whole", &whole_queue_arn).build().unwrap(),
        ],
    )
    .await;

    let id = put_drill_event(&events, &drill_detail()).await;

    // The transformer's output is a quoted JSON string template: SNS receives the text with
    // its quotes, and EventBridge sets no subject.
    let expected = format!(
        "\"[CRITICAL] AI agent destructive action: {PRINCIPAL} called DeleteBucket (s3.amazonaws.com) in {REGION} at 2026-11-27T10:00:00Z; error: \""
    );
    let bodies = drain(&aws.sqs, &inbox).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let env = envelope(&bodies[0]);
    assert_eq!(env["Type"], "Notification");
    assert_eq!(env["TopicArn"], topic.as_str());
    assert_eq!(env["Message"], expected.as_str());
    assert!(env.get("Subject").is_none(), "EventBridge publishes without a subject: {env}");
    assert!(env["MessageId"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(env["Timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{env}");
    assert!(env["UnsubscribeURL"].as_str().unwrap().ends_with(&format!("SubscriptionArn={subscription}")), "{env}");
    for member in ["SignatureVersion", "Signature", "SigningCertURL"] {
        assert!(env[member].as_str().is_some_and(|s| !s.is_empty()), "{member} in {env}");
    }
    // RawMessageDelivery "false" is the envelope too; "true" is the bare message.
    let explicit = drain(&aws.sqs, &explicit_envelope).await;
    assert_eq!(explicit.len(), 1);
    assert_eq!(envelope(&explicit[0])["Message"], expected.as_str());
    assert_eq!(drain(&aws.sqs, &raw).await, [expected.clone()]);

    let json_bodies = drain(&aws.sqs, &json_queue).await;
    assert_eq!(json_bodies.len(), 1);
    assert!(!json_bodies[0].contains(": ") && !json_bodies[0].contains(", "), "minified: {}", json_bodies[0]);
    assert_eq!(
        serde_json::from_str::<Value>(&json_bodies[0]).unwrap(),
        json!({
            "who": PRINCIPAL,
            "summary": format!("{PRINCIPAL} called DeleteBucket"),
            "identity": {"type": "AssumedRole", "arn": PRINCIPAL},
            "rule": "json",
            "error": "",
        })
    );
    // No transformer: the whole event, as EventBridge builds it.
    let whole = drain(&aws.sqs, &whole_queue).await;
    assert_eq!(whole.len(), 1);
    let event: Value = serde_json::from_str(&whole[0]).unwrap();
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["source"], "ctguard.drill");
    assert_eq!(event["detail-type"], "ctguard drill");
    assert_eq!(event["account"], ACCOUNT);
    assert_eq!(event["region"], REGION);
    assert_eq!(event["time"], "2026-11-27T10:00:00Z");
    assert_eq!(event["detail"], drill_detail());

    // EventBridge's own accounting, by rule name.
    assert_eq!(aws.metrics("AWS/Events", "RuleName", "alert").await, ["Invocations", "TriggeredRules"]);
    assert_eq!(aws.sum("AWS/Events", "Invocations", "RuleName", "json").await, 2.0);
    assert_eq!(aws.sum("AWS/SNS", "NumberOfNotificationsDelivered", "TopicName", "alerts").await, 3.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_match_in_another_region_is_forwarded_to_the_home_bus_with_its_region() {
    let emu = Emulator::start();
    let aws = Aws::new(&emu).await;
    let home = aws.events(REGION);
    let other = aws.events(OTHER_REGION);
    let other_sqs = aws.sqs_in(OTHER_REGION);
    let topic = aws.topic("alerts").await;
    let (inbox, _) = aws.subscriber(&topic, "inbox", None).await;
    let (home_copy, home_copy_arn) = aws.queue("home-copy").await;
    let (other_copy, other_copy_arn) = queue_in(&other_sqs, OTHER_REGION, "other-copy").await;
    let home_bus = format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default");
    let other_bus = format!("arn:aws:events:{OTHER_REGION}:{ACCOUNT}:event-bus/default");
    let role = format!("arn:aws:iam::{ACCOUNT}:role/ctguard/ctguard-events-forwarder");

    // As ctguard deploys it: in the other region the rule forwards to the home bus; at home
    // the same rule turns the event into the alert text on the topic.
    drill_rule(
        &other,
        "alert",
        vec![
            target("forward", &home_bus).role_arn(&role).build().unwrap(),
            target("copy", &other_copy_arn).build().unwrap(),
        ],
    )
    .await;
    drill_rule(
        &home,
        "alert",
        vec![
            target("topic", &topic).input_transformer(alert_transformer("Monitoring tampering")).build().unwrap(),
            target("copy", &home_copy_arn).build().unwrap(),
            // Sent back towards the other region: an event that came from another bus is not
            // forwarded again, so the other region's rule sees it once.
            target("back", &other_bus).role_arn(&role).build().unwrap(),
        ],
    )
    .await;

    let id = put_drill_event(&other, &drill_detail()).await;

    let bodies = drain(&aws.sqs, &inbox).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(
        envelope(&bodies[0])["Message"],
        format!(
            "\"[CRITICAL] Monitoring tampering: {PRINCIPAL} called DeleteBucket (s3.amazonaws.com) in {OTHER_REGION} at 2026-11-27T10:00:00Z; error: \""
        )
    );
    // The event on the home bus is the original one: its region, account, id and time.
    let copies = drain(&aws.sqs, &home_copy).await;
    assert_eq!(copies.len(), 1);
    let event: Value = serde_json::from_str(&copies[0]).unwrap();
    assert_eq!(event["region"], OTHER_REGION);
    assert_eq!(event["account"], ACCOUNT);
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["time"], "2026-11-27T10:00:00Z");
    assert_eq!(event["detail"], drill_detail());
    assert_eq!(drain(&other_sqs, &other_copy).await.len(), 1, "the forwarded event came back");

    // Each region counts its own rule's invocations: the forward and the copy in the other
    // region; the topic and the copy at home, and no invocation for the skipped send-back.
    let other_cw = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&aws.conf)
            .region(aws_sdk_cloudwatch::config::Region::new(OTHER_REGION))
            .build(),
    );
    assert_eq!(metric_sum(&other_cw, "AWS/Events", "Invocations", "RuleName", "alert").await, 2.0);
    assert_eq!(aws.sum("AWS/Events", "Invocations", "RuleName", "alert").await, 2.0);
}

async fn alarm(aws: &Aws, name: &str, topic: &str) {
    aws.cw
        .put_metric_alarm()
        .alarm_name(name)
        .alarm_description("ctguard: root account usage")
        .namespace("ctguard")
        .metric_name("RootAccountUsageCount")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(300)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold)
        .treat_missing_data("notBreaching")
        .alarm_actions(topic)
        .ok_actions(topic)
        .send()
        .await
        .unwrap();
}

async fn set_state(aws: &Aws, name: &str, state: aws_sdk_cloudwatch::types::StateValue, reason: &str) {
    aws.cw.set_alarm_state().alarm_name(name).state_value(state).state_reason(reason).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_state_change_notifies_its_topic_as_cloudwatch_does() {
    use aws_sdk_cloudwatch::types::StateValue;

    let emu = Emulator::start();
    let aws = Aws::new(&emu).await;
    let topic = aws.topic("alerts").await;
    let (inbox, _) = aws.subscriber(&topic, "inbox", None).await;
    let name = "ctguard-cis-4.3-root-account-usage";
    alarm(&aws, name, &topic).await;
    let before = aws.cw.describe_alarms().alarm_names(name).send().await.unwrap();
    let old_state = before.metric_alarms()[0].state_value().unwrap().as_str().to_string();

    set_state(&aws, name, StateValue::Alarm, "[DRILL] ctguard fire drill: not a real alarm").await;
    let bodies = drain(&aws.sqs, &inbox).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let env = envelope(&bodies[0]);
    assert_eq!(env["Subject"], format!("ALARM: \"{name}\" in US East (N. Virginia)"));
    let message: Value = serde_json::from_str(env["Message"].as_str().unwrap()).unwrap();
    assert_eq!(message["AlarmName"], name);
    assert_eq!(message["AlarmDescription"], "ctguard: root account usage");
    assert_eq!(message["AWSAccountId"], ACCOUNT);
    assert_eq!(message["NewStateValue"], "ALARM");
    assert_eq!(message["OldStateValue"], old_state.as_str());
    assert_eq!(message["NewStateReason"], "[DRILL] ctguard fire drill: not a real alarm");
    assert_eq!(message["Region"], "US East (N. Virginia)");
    assert_eq!(message["AlarmArn"], format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"));
    assert_eq!(message["AlarmActions"], json!([topic]));
    assert_eq!(message["OKActions"], json!([topic]));
    assert_eq!(message["InsufficientDataActions"], json!([]));
    for stamp in ["StateChangeTime", "AlarmConfigurationUpdatedTimestamp"] {
        assert!(message[stamp].as_str().is_some_and(|t| t.ends_with("+0000")), "{stamp}: {message}");
    }
    let trigger = &message["Trigger"];
    assert_eq!(trigger["MetricName"], "RootAccountUsageCount");
    assert_eq!(trigger["Namespace"], "ctguard");
    assert_eq!(trigger["StatisticType"], "Statistic");
    assert_eq!(trigger["Statistic"], "SUM");
    assert_eq!(trigger["Period"], 300);
    assert_eq!(trigger["EvaluationPeriods"], 1);
    assert_eq!(trigger["ComparisonOperator"], "GreaterThanOrEqualToThreshold");
    assert_eq!(trigger["Threshold"], 1.0);
    assert_eq!(trigger["TreatMissingData"], "notBreaching");

    // Only a change of state runs actions.
    set_state(&aws, name, StateValue::Alarm, "[DRILL] again").await;
    assert!(drain(&aws.sqs, &inbox).await.is_empty());
    // Back to OK: the OK actions run, with the OK subject.
    set_state(&aws, name, StateValue::Ok, "[DRILL] drill over").await;
    let bodies = drain(&aws.sqs, &inbox).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let env = envelope(&bodies[0]);
    assert_eq!(env["Subject"], format!("OK: \"{name}\" in US East (N. Virginia)"));
    let message: Value = serde_json::from_str(env["Message"].as_str().unwrap()).unwrap();
    assert_eq!((message["OldStateValue"].as_str(), message["NewStateValue"].as_str()), (Some("ALARM"), Some("OK")));
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_paths_deliver_nothing() {
    use aws_sdk_cloudwatch::types::StateValue;

    let emu = Emulator::start();
    let aws = Aws::new(&emu).await;
    let events = aws.events(REGION);
    let topic = aws.topic("alerts").await;
    let (inbox, subscription) = aws.subscriber(&topic, "inbox", None).await;
    let transformer = alert_transformer("Destructive AWS API call");
    let topic_target = || target("topic", &topic).input_transformer(transformer.clone()).build().unwrap();
    drill_rule(&events, "alert", vec![topic_target()]).await;
    let alarm_name = "ctguard-drill-alarm";
    alarm(&aws, alarm_name, &topic).await;

    // Every path delivers while intact.
    put_drill_event(&events, &drill_detail()).await;
    set_state(&aws, alarm_name, StateValue::Alarm, "[DRILL] intact").await;
    assert_eq!(drain(&aws.sqs, &inbox).await.len(), 2);
    set_state(&aws, alarm_name, StateValue::Ok, "[DRILL] reset").await;
    assert_eq!(drain(&aws.sqs, &inbox).await.len(), 1);

    // A rule whose target was removed matches and sends nothing.
    events.remove_targets().rule("alert").ids("topic").send().await.unwrap();
    put_drill_event(&events, &drill_detail()).await;
    assert!(drain(&aws.sqs, &inbox).await.is_empty(), "a rule without its target delivered");
    events.put_targets().rule("alert").targets(topic_target()).send().await.unwrap();

    // A disabled rule matches nothing.
    events.disable_rule().name("alert").send().await.unwrap();
    put_drill_event(&events, &drill_detail()).await;
    assert!(drain(&aws.sqs, &inbox).await.is_empty(), "a disabled rule delivered");
    events.enable_rule().name("alert").send().await.unwrap();

    // An alarm with its actions disabled changes state and notifies no one.
    aws.cw.disable_alarm_actions().alarm_names(alarm_name).send().await.unwrap();
    set_state(&aws, alarm_name, StateValue::Alarm, "[DRILL] actions disabled").await;
    set_state(&aws, alarm_name, StateValue::Ok, "[DRILL] actions disabled").await;
    assert!(drain(&aws.sqs, &inbox).await.is_empty(), "an alarm with actions disabled notified");
    aws.cw.enable_alarm_actions().alarm_names(alarm_name).send().await.unwrap();

    // A deleted subscription receives nothing, while the rule and the alarm still publish.
    aws.sns.unsubscribe().subscription_arn(&subscription).send().await.unwrap();
    put_drill_event(&events, &drill_detail()).await;
    set_state(&aws, alarm_name, StateValue::Alarm, "[DRILL] unsubscribed").await;
    assert!(drain(&aws.sqs, &inbox).await.is_empty(), "a deleted subscription received a message");
    assert_eq!(aws.sum("AWS/Events", "FailedInvocations", "RuleName", "alert").await, 0.0);

    // A target topic that no longer exists: PutEvents still succeeds, and the rule counts a
    // failed invocation, which is all AWS reports of it.
    let gone = aws.topic("gone").await;
    drill_rule(&events, "to-nowhere", vec![target("gone", &gone).build().unwrap()]).await;
    aws.sns.delete_topic().topic_arn(&gone).send().await.unwrap();
    put_drill_event(&events, &drill_detail()).await;
    assert_eq!(aws.sum("AWS/Events", "FailedInvocations", "RuleName", "to-nowhere").await, 1.0);
    assert_eq!(aws.sum("AWS/Events", "Invocations", "RuleName", "to-nowhere").await, 1.0);

    // A subscribed queue that no longer exists: the publish succeeds, SNS counts the failure.
    let (dead, _) = aws.subscriber(&topic, "deleted-queue", None).await;
    aws.sqs.delete_queue().queue_url(&dead).send().await.unwrap();
    aws.sns.publish().topic_arn(&topic).message("[DRILL] direct publish").send().await.unwrap();
    assert_eq!(aws.sum("AWS/SNS", "NumberOfNotificationsFailed", "TopicName", "alerts").await, 1.0);
}

/// The flagship profile as apply deploys it, in two regions, with a topic of its own for
/// critical alerts: an SQS subscriber on each topic counts the alerts.
mod deployed {
    use super::*;

    const DEFAULT_QUEUE: &str = "ctguard-default-alerts";
    const CRITICAL_QUEUE: &str = "ctguard-critical-alerts";
    const CRITICAL_TOPIC: &str = "ctguard-alerts-critical";
    const PERSON_AGENT: &str = "aws-cli/2.17.0 md/awscrt#0.20.11 ua/2.0 os/linux#6.8 md/arch#x86_64 lang/python#3.11.9";

    fn profile(dir: &tempfile::TempDir) -> std::path::PathBuf {
        let out = common::run(common::ctguard_cmd().args([
            "profiles",
            "export",
            "ai-agent-guard",
            dir.path().to_str().unwrap(),
        ]));
        out.expect(0);
        let path = dir.path().join("profiles/ai-agent-guard.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let regions = format!("regions = [\"{REGION}\", \"{OTHER_REGION}\"]\n");
        let text = text.replacen("regions = \"all-enabled\"\n", &regions, 1);
        let text = text.replacen(
            "topic = \"ctguard-alerts\"\n",
            "topic = \"ctguard-alerts\"\naccount_alias = \"prod-payments\"\n",
            1,
        );
        let queue = |name: &str| format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
        let routed = format!(
            "endpoint = \"${{alert_email}}\"\n\n[[alerts.subscriptions]]\nprotocol = \"sqs\"\nendpoint = \"{}\"\n\n\
             [alerts.topics.critical]\ntopic = \"{CRITICAL_TOPIC}\"\n\n[[alerts.topics.critical.subscriptions]]\n\
             protocol = \"sqs\"\nendpoint = \"{}\"\n",
            queue(DEFAULT_QUEUE),
            queue(CRITICAL_QUEUE)
        );
        let text = text.replacen("endpoint = \"${alert_email}\"\n", &routed, 1);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A CloudTrail record of `role`'s session `session` calling `name` on `source`.
    fn record(source: &str, name: &str, role: &str, session: &str, id: &str, params: Value) -> Value {
        json!({
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": format!("AROA3EXAMPLEROLE0001:{session}"),
                "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"),
                "accountId": ACCOUNT,
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROA3EXAMPLEROLE0001",
                    "arn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "accountId": ACCOUNT, "userName": role}}
            },
            "eventTime": "2026-11-27T10:00:00Z",
            "eventSource": source,
            "eventName": name,
            "awsRegion": REGION,
            "sourceIPAddress": "198.51.100.7",
            "userAgent": "Boto3/1.38.3 md/Botocore#1.38.3 awslabs/mcp/aws-api-mcp-server/1.0.2",
            "requestParameters": params,
            "responseElements": null,
            "eventID": id,
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT,
        })
    }

    /// Puts a record on `events`' default bus as CloudTrail delivers it to EventBridge.
    async fn put(events: &aws_sdk_eventbridge::Client, record: &Value) {
        let source = format!("aws.{}", record["eventSource"].as_str().unwrap().trim_end_matches(".amazonaws.com"));
        let entry = PutEventsRequestEntry::builder()
            .source(source)
            .detail_type("AWS API Call via CloudTrail")
            .detail(record.to_string())
            .time(DateTime::from_secs(EVENT_TIME))
            .build();
        let out = events.put_events().entries(entry).send().await.unwrap();
        assert_eq!(out.failed_entry_count(), 0, "{:?}", out.entries());
    }

    fn messages(bodies: &[String]) -> Vec<String> {
        bodies.iter().map(|b| envelope(b)["Message"].as_str().unwrap().to_string()).collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn one_event_raises_one_alert_on_its_severitys_topic_from_any_region() {
        let emu = Emulator::start();
        let aws = Aws::new(&emu).await;
        let (default_inbox, _) = aws.queue(DEFAULT_QUEUE).await;
        let (critical_inbox, _) = aws.queue(CRITICAL_QUEUE).await;
        let dir = tempfile::tempdir().unwrap();
        let p = profile(&dir);
        emu.ctguard(&["apply", "--auto-approve", "-p", p.to_str().unwrap()]).expect(0);
        let (home, other) = (aws.events(REGION), aws.events(OTHER_REGION));
        let terminate = json!({"instancesSet": {"items": [{"instanceId": "i-0abc1234def567890"}]}});

        // An agent's call matches the agent rule and the rule on every principal's template:
        // one alert, the agent rule's, on the critical topic. The same from the other region:
        // forwarded once, one alert naming that region.
        let agent = record(
            "ec2.amazonaws.com",
            "TerminateInstances",
            "AIAgentRunner",
            "run-42",
            "evt-agent-home",
            terminate.clone(),
        );
        put(&home, &agent).await;
        let mut away = agent.clone();
        away["eventID"] = json!("evt-agent-away");
        away["awsRegion"] = json!(OTHER_REGION);
        put(&other, &away).await;
        let critical = messages(&drain(&aws.sqs, &critical_inbox).await);
        assert_eq!(drain(&aws.sqs, &default_inbox).await, Vec::<String>::new(), "no generic alert for an agent");
        assert_eq!(critical.len(), 2, "{critical:#?}");
        let (at_home, from_away) = if critical[0].contains("evt-agent-home") {
            (&critical[0], &critical[1])
        } else {
            (&critical[1], &critical[0])
        };
        for fact in [
            "\"[CRITICAL] AI agent destructive action\"".to_string(),
            format!("\"Account: {ACCOUNT} (prod-payments)\""),
            format!("\"Region: {REGION}\""),
            format!("\"Principal: AssumedRole arn:aws:sts::{ACCOUNT}:assumed-role/AIAgentRunner/run-42\""),
            "\"Principal id (role id:session name): AROA3EXAMPLEROLE0001:run-42\"".into(),
            "\"Role: AIAgentRunner\"".into(),
            "\"Source identity: \"".into(),
            "\"Agent signals of this rule: roles AIAgent*, session_names agent-*".into(),
            "\"Call: TerminateInstances (ec2.amazonaws.com)\"".into(),
            "i-0abc1234def567890".into(),
            "\"Error code (empty if the call succeeded):  \"".into(),
            "\"User agent: Boto3/1.38.3 md/Botocore#1.38.3 awslabs/mcp/aws-api-mcp-server/1.0.2\"".into(),
            "\"Event: evt-agent-home at 2026-11-27T10:00:00Z\"".into(),
            format!(
                "\"Console: https://console.aws.amazon.com/cloudtrail/home?region={REGION}#/events/evt-agent-home\""
            ),
        ] {
            assert!(at_home.contains(&fact), "{fact} missing from:\n{at_home}");
        }
        assert!(at_home.lines().count() > 15, "one fact per line:\n{at_home}");
        assert!(from_away.contains(&format!("\"Region: {OTHER_REGION}\"")), "{from_away}");
        assert!(from_away.contains(&format!("region={OTHER_REGION}#/events/evt-agent-away")), "{from_away}");

        // A person's same call: the rule on every principal, severity high, on the default topic.
        let mut person =
            record("ec2.amazonaws.com", "TerminateInstances", "Developer", "alice", "evt-person", terminate);
        person["userAgent"] = json!(PERSON_AGENT);
        put(&other, &person).await;
        let default = messages(&drain(&aws.sqs, &default_inbox).await);
        assert_eq!(drain(&aws.sqs, &critical_inbox).await, Vec::<String>::new());
        assert_eq!(default.len(), 1, "{default:#?}");
        assert!(default[0].starts_with("\"[HIGH] Destructive AWS API call\""), "{}", default[0]);
        assert!(default[0].contains("Agent signals of this rule: none"), "{}", default[0]);

        // A critical rule on every principal: the critical topic, once, whichever region.
        let mut stop = record(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            "Developer",
            "alice",
            "evt-stop",
            json!({"name": "someone-elses-trail"}),
        );
        stop["userAgent"] = json!(PERSON_AGENT);
        put(&other, &stop).await;
        let critical = messages(&drain(&aws.sqs, &critical_inbox).await);
        assert_eq!(drain(&aws.sqs, &default_inbox).await, Vec::<String>::new());
        assert_eq!(critical.len(), 1, "{critical:#?}");
        assert!(critical[0].starts_with("\"[CRITICAL] Monitoring tampering\""), "{}", critical[0]);

        // A call no rule watches is not forwarded, and alerts nobody.
        let read = record("ec2.amazonaws.com", "CreateTags", "AIAgentRunner", "run-42", "evt-tags", json!({}));
        put(&other, &read).await;
        assert!(drain(&aws.sqs, &critical_inbox).await.is_empty() && drain(&aws.sqs, &default_inbox).await.is_empty());
    }
}
