//! ctguard's EventBridge evaluator against a real implementation: moto routes events put on
//! its default bus to an SQS queue per rule, and for every event ctguard must agree on whether
//! the rule matched. Two sets: one or more cases per comparison operator the EventBridge User
//! Guide documents, and every shipped rule against every shipped sample record, enveloped as
//! EventBridge envelopes CloudTrail records (S3's own events, which are not CloudTrail records,
//! are put as they are).

mod common;

use std::collections::BTreeSet;

use ctguard::detect::eventbridge::{EventPattern, envelope};
use serde_json::{Value, json};

use common::{ACCOUNT, Emulator, REGION};

/// A rule and the events sent past it.
struct Case {
    name: String,
    pattern: Value,
    events: Vec<Event>,
}

/// The parts of an event PutEvents takes; moto fills in the rest of the envelope.
#[derive(Clone)]
struct Event {
    source: String,
    detail_type: String,
    detail: Value,
}

fn custom(detail: Value) -> Event {
    Event { source: "ctguard.test".into(), detail_type: "Cross check".into(), detail }
}

/// One case per operator (and per shape of operand), with events on both sides of each.
fn operator_cases() -> Vec<Case> {
    let case = |name: &str, pattern: Value, details: Vec<Value>| Case {
        name: name.into(),
        pattern,
        events: details.into_iter().map(custom).collect(),
    };
    let d = |field: &str, values: Vec<Value>| -> Vec<Value> {
        let mut out: Vec<Value> = values.into_iter().map(|v| json!({ field: v })).collect();
        out.push(json!({"other": "x"}));
        out
    };
    vec![
        case(
            "exact",
            json!({"detail": {"state": ["running"]}}),
            d("state", vec![json!("running"), json!("Running"), json!("stopped")]),
        ),
        case(
            "or-list",
            json!({"detail": {"state": ["running", "pending"]}}),
            d("state", vec![json!("pending"), json!("running"), json!("stopping")]),
        ),
        case(
            "nested",
            json!({"detail": {"a": {"b": ["x"]}}}),
            vec![json!({"a": {"b": "x"}}), json!({"a": {"b": "y"}}), json!({"a": "x"}), json!({"b": "x"})],
        ),
        case(
            "prefix",
            json!({"detail": {"id": [{"prefix": "i-"}]}}),
            d("id", vec![json!("i-0abc"), json!("ami-1"), json!("xi-")]),
        ),
        case(
            "suffix",
            json!({"detail": {"key": [{"suffix": ".png"}]}}),
            d("key", vec![json!("a/b.png"), json!("a/b.jpg"), json!(".png")]),
        ),
        case(
            "anything-but-value",
            json!({"detail": {"state": [{"anything-but": "stopped"}]}}),
            d("state", vec![json!("running"), json!("stopped")]),
        ),
        case(
            "anything-but-list",
            json!({"detail": {"state": [{"anything-but": ["stopped", "terminated"]}]}}),
            d("state", vec![json!("running"), json!("stopped"), json!("terminated")]),
        ),
        case(
            "anything-but-number",
            json!({"detail": {"code": [{"anything-but": [200, 204]}]}}),
            d("code", vec![json!(200), json!(404), json!(204)]),
        ),
        case(
            "anything-but-prefix",
            json!({"detail": {"id": [{"anything-but": {"prefix": "init"}}]}}),
            d("id", vec![json!("initial"), json!("final")]),
        ),
        case(
            "anything-but-suffix",
            json!({"detail": {"key": [{"anything-but": {"suffix": ".tmp"}}]}}),
            d("key", vec![json!("a.tmp"), json!("a.txt")]),
        ),
        case(
            "numeric-range",
            json!({"detail": {"n": [{"numeric": [">", 0, "<=", 5]}]}}),
            d("n", vec![json!(0), json!(0.5), json!(5), json!(5.01), json!("3")]),
        ),
        case(
            "numeric-equal",
            json!({"detail": {"n": [{"numeric": ["=", 300]}]}}),
            d("n", vec![json!(300), json!(300.0), json!(301)]),
        ),
        case(
            "exists-true",
            json!({"detail": {"errorCode": [{"exists": true}]}}),
            vec![json!({"errorCode": "AccessDenied"}), json!({"errorCode": ""}), json!({"other": 1})],
        ),
        case(
            "exists-false",
            json!({"detail": {"errorCode": [{"exists": false}]}}),
            vec![json!({"errorCode": "AccessDenied"}), json!({"other": 1})],
        ),
        case(
            "cidr",
            json!({"detail": {"ip": [{"cidr": "10.0.0.0/24"}]}}),
            d("ip", vec![json!("10.0.0.7"), json!("10.0.1.7"), json!("not-an-ip")]),
        ),
        case(
            "equals-ignore-case",
            json!({"detail": {"name": [{"equals-ignore-case": "AIAgent"}]}}),
            d("name", vec![json!("aiagent"), json!("AIAGENT"), json!("AIAgents")]),
        ),
        case(
            "prefix-ignore-case",
            json!({"detail": {"name": [{"prefix": {"equals-ignore-case": "ai"}}]}}),
            d("name", vec![json!("AIAgent"), json!("agent")]),
        ),
        case(
            "wildcard",
            json!({"detail": {"arn": [{"wildcard": "arn:aws:iam::*:role/AIAgent*"}]}}),
            d(
                "arn",
                vec![
                    json!("arn:aws:iam::123456789012:role/AIAgentRole"),
                    json!("arn:aws:iam::123456789012:role/Admin"),
                    json!("arn:aws:sts::123456789012:assumed-role/AIAgentRole/s"),
                ],
            ),
        ),
        // The forms a rule on every principal uses to leave agents out: a field that matches
        // none of several globs, or is missing.
        case(
            "anything-but-prefix-list-or-missing",
            json!({"detail": {"arn": [{"anything-but": {"prefix": ["arn:a/AIAgent", "arn:a/AWSServiceRoleFor"]}}, {"exists": false}]}}),
            d(
                "arn",
                vec![json!("arn:a/AIAgentRunner/s"), json!("arn:a/AWSServiceRoleForBackup/s"), json!("arn:a/Dev/s")],
            ),
        ),
        case(
            "anything-but-wildcard-list-or-missing",
            json!({"detail": {"ua": [{"anything-but": {"wildcard": ["*awslabs/mcp/*", "*agent-kit*"]}}, {"exists": false}]}}),
            d(
                "ua",
                vec![json!("Boto3 awslabs/mcp/x/1"), json!("agent-kit/2"), json!("aws-cli/2"), json!(["aws-cli/2"])],
            ),
        ),
        case(
            "or-over-a-gating-type",
            json!({"detail": {"$or": [
                {"type": [{"anything-but": ["AssumedRole", "IAMUser"]}, {"exists": false}]},
                {"type": ["AssumedRole"], "pid": [{"anything-but": {"wildcard": "*:agent-*"}}, {"exists": false}]},
                {"type": ["IAMUser"], "user": [{"anything-but": {"prefix": "ai-agent-"}}, {"exists": false}]}
            ]}}),
            vec![
                json!({"type": "AssumedRole", "pid": "AROA:agent-1"}),
                json!({"type": "AssumedRole", "pid": "AROA:alice"}),
                json!({"type": "IAMUser", "user": "ai-agent-ci"}),
                json!({"type": "IAMUser", "user": "alice"}),
                json!({"type": "IAMUser"}),
                json!({"type": "Root"}),
                json!({"other": 1}),
            ],
        ),
        case(
            "or",
            json!({"detail": {"$or": [{"a": ["1"]}, {"b": ["2"]}]}}),
            vec![json!({"a": "1"}), json!({"b": "2"}), json!({"a": "2", "b": "1"}), json!({"c": "1"})],
        ),
        case(
            "event-array",
            json!({"detail": {"tags": ["prod"]}}),
            d("tags", vec![json!(["dev", "prod"]), json!(["dev"]), json!([])]),
        ),
        case("null-and-empty", json!({"detail": {"v": [null, ""]}}), d("v", vec![json!(null), json!(""), json!("x")])),
        case(
            "source-and-detail-type",
            json!({"source": ["ctguard.test"], "detail-type": ["Cross check"]}),
            vec![json!({"any": 1})],
        ),
    ]
}

/// Every shipped rule of the ai-agent-guard profile, as deployed, against every sample record.
/// The shipped ai-agent-guard profile, resolved in the test account and region.
fn shipped_profile() -> ctguard::profile::Profile {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let loaded = ctguard::profile::load(root.join("profiles/ai-agent-guard.toml").to_str().unwrap()).unwrap();
    let runtime = ctguard::profile::Runtime {
        account_id: ACCOUNT.into(),
        partition: "aws".into(),
        region: REGION.into(),
        enabled_regions: vec![REGION.into()],
        organization: None,
    };
    loaded.resolve(&runtime, &Default::default()).unwrap()
}

fn shipped_cases() -> Vec<Case> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut events = Vec::new();
    for entry in std::fs::read_dir(root.join("tests/detections/samples")).unwrap() {
        let sample: Value = serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        let records = sample["fires"].as_array().unwrap().iter().cloned().chain(
            ["silent", "gaps"]
                .iter()
                .flat_map(|k| sample[*k].as_array().cloned().unwrap_or_default())
                .map(|c| c["record"].clone()),
        );
        for record in records {
            // A CloudTrail record becomes the detail of its envelope; an event a service sends
            // EventBridge itself (S3's "Object Deleted") is already one.
            let e = envelope(&record);
            events.push(Event {
                source: e["source"].as_str().unwrap().into(),
                detail_type: e["detail-type"].as_str().unwrap().into(),
                detail: e["detail"].clone(),
            });
        }
    }
    let profile = shipped_profile();
    let events_section = profile.events.as_ref().unwrap();
    // As deployed: each rule, or each part of one too long for a single rule, and the
    // forwarding rules of the other regions.
    let parts = events_section.rules.iter().flat_map(|r| r.parts.iter().cloned());
    let forwarders = events_section.forward.iter().enumerate().map(|(i, p)| (format!("forward-{i}"), p.clone()));
    parts.chain(forwarders).map(|(name, pattern)| Case { name, pattern, events: events.clone() }).collect()
}

/// One event, one alert, on every sample record: the parts of a rule together match what the
/// rule matches and never the same event; a rule on every principal never matches what the agent
/// rule on its template matches; and every event a rule matches is forwarded by exactly one
/// forwarding rule.
#[test]
fn parts_agent_exclusions_and_forwarders_never_double_an_alert() {
    let cases = shipped_cases();
    let events: Vec<Value> = cases[0].events.iter().map(as_moto_delivers).collect();
    let profile = shipped_profile();
    let e = profile.events.as_ref().unwrap();
    let parse = |p: &Value| EventPattern::parse(p).unwrap_or_else(|err| panic!("{p}: {err}"));
    let forwarders: Vec<EventPattern> = e.forward.iter().map(parse).collect();
    assert!(e.rules.iter().any(|r| r.parts.len() > 1), "no rule needed parts: the check below proves less");
    let (mut agent_events, mut forwarded) = (0, 0);
    for event in &events {
        let mut matched_any = false;
        for r in &e.rules {
            let whole = parse(&r.pattern).matches(event);
            let parts = r.parts.iter().filter(|(_, p)| parse(p).matches(event)).count();
            assert_eq!(parts, usize::from(whole), "{}: {parts} parts match {event}", r.name);
            matched_any |= whole;
        }
        // The shipped agent rules are named after the rule on every principal on their template.
        for agent in e.rules.iter().filter(|r| r.name.starts_with("ctguard-agent-")) {
            let name = agent.name.replacen("ctguard-agent-", "ctguard-", 1);
            let Some(generic) = e.rules.iter().find(|r| r.name == name) else { continue };
            let both = parse(&generic.pattern).matches(event) && parse(&agent.pattern).matches(event);
            assert!(!both, "{} and {} both match {event}", generic.name, agent.name);
        }
        let agent_rules = e.rules.iter().filter(|r| !r.restriction.is_empty());
        agent_events += usize::from(agent_rules.clone().any(|r| parse(&r.pattern).matches(event)));
        // S3 sends its object events only in the bucket's region, the home region.
        let home_only = event["source"] == "aws.s3" && event["detail-type"] != "AWS API Call via CloudTrail";
        if matched_any {
            let by = forwarders.iter().filter(|f| f.matches(event)).count();
            assert_eq!(by, usize::from(!home_only), "forwarded {by} times: {event}");
            forwarded += usize::from(!home_only);
        }
    }
    // Over the sample records as they stand: a new sample or rule changes these on purpose.
    assert_eq!((agent_events, forwarded), (219, 556), "agent events, events forwarded");
}

/// The envelope moto builds around a PutEvents entry (moto's `put_events`).
fn as_moto_delivers(e: &Event) -> Value {
    json!({
        "version": "0", "id": "x", "detail-type": e.detail_type, "source": e.source, "account": ACCOUNT,
        "time": "2026-11-27T00:00:00Z", "region": REGION, "resources": [], "detail": e.detail,
    })
}

async fn cross_check(cases: Vec<Case>) -> usize {
    let emulator = Emulator::start();
    let config = emulator.sdk().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);

    for (i, case) in cases.iter().enumerate() {
        let queue = format!("q{i}");
        sqs.create_queue().queue_name(&queue).send().await.unwrap();
        let rule = format!("r{i}");
        events.put_rule().name(&rule).event_pattern(case.pattern.to_string()).send().await.unwrap();
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("q")
            .arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"))
            .build()
            .unwrap();
        events.put_targets().rule(&rule).targets(target).send().await.unwrap();
    }
    // Each event is tagged with its case and number, so a delivered message names itself.
    let mut sent = 0;
    for (i, case) in cases.iter().enumerate() {
        for chunk in case.events.iter().enumerate().collect::<Vec<_>>().chunks(10) {
            let entries = chunk.iter().map(|(n, e)| {
                let mut detail = e.detail.clone();
                detail["ctguardCase"] = json!(format!("{i}/{n}"));
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source(&e.source)
                    .detail_type(&e.detail_type)
                    .detail(detail.to_string())
                    .build()
            });
            let out = events.put_events().set_entries(Some(entries.collect())).send().await.unwrap();
            assert_eq!(out.failed_entry_count(), 0, "PutEvents rejected entries: {:?}", out.entries());
            sent += chunk.len();
        }
    }
    let mut disagreements = Vec::new();
    let mut compared = 0;
    let mut matched = 0;
    for (i, case) in cases.iter().enumerate() {
        let url = sqs.get_queue_url().queue_name(format!("q{i}")).send().await.unwrap().queue_url.unwrap();
        let mut delivered = BTreeSet::new();
        loop {
            let out = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in &messages {
                let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                delivered.insert(body["detail"]["ctguardCase"].as_str().unwrap().to_string());
                sqs.delete_message().queue_url(&url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
            }
        }
        let pattern = EventPattern::parse(&case.pattern).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        for (n, event) in case.events.iter().enumerate() {
            compared += 1;
            let ours = pattern.matches(&as_moto_delivers(event));
            let moto = delivered.contains(&format!("{i}/{n}"));
            matched += usize::from(moto);
            if ours != moto {
                disagreements.push(format!(
                    "{} event {n}: ctguard says {}, moto {}\n    pattern {}\n    detail {}",
                    case.name,
                    if ours { "match" } else { "no match" },
                    if moto { "delivered" } else { "did not deliver" },
                    case.pattern,
                    event.detail
                ));
            }
        }
    }
    assert_eq!(compared, sent);
    // Both outcomes must occur, or the comparison proves nothing.
    assert!(matched > 0 && matched < compared, "{matched} of {compared} delivered");
    assert!(
        disagreements.is_empty(),
        "{} of {compared} disagree:\n  {}",
        disagreements.len(),
        disagreements.join("\n  ")
    );
    compared
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operator_agrees_with_moto() {
    let cases = operator_cases();
    assert_eq!(cases.len(), 25);
    let compared = cross_check(cases).await;
    assert_eq!(compared, 96);
}

#[tokio::test(flavor = "multi_thread")]
async fn shipped_rules_agree_with_moto_on_every_sample_record() {
    let cases = shipped_cases();
    // The 21 rules (the audit-log deletion, Insights and both S3 object rules among them) as 25
    // deployed parts, four rules being split in two, and the 6 forwarding rules of the other
    // regions.
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(cases.len(), 31, "{names:?}");
    for rule in [
        "ctguard-audit-log-deletion",
        "ctguard-cloudtrail-insight",
        "ctguard-audit-log-object-deleted",
        "ctguard-audit-log-object-written",
    ] {
        assert!(names.contains(&rule), "{names:?}");
    }
    assert_eq!(names.iter().filter(|n| n.starts_with("forward-")).count(), 6, "{names:?}");
    let records = cases[0].events.len();
    let compared = cross_check(cases).await;
    assert_eq!(compared, 31 * records, "every rule part and forwarder over every sample record");
}
