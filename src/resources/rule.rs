//! EventBridge rules on CloudTrail events. EventBridge only sees events from its own region, and
//! global services (IAM, STS, Organizations, Route 53) deliver only to us-east-1, so the
//! profile's rules run in the home region (each part of a rule too long for one pattern is a
//! rule of its own) and every other region runs forwarding rules that send the events the rules
//! watch to the home region's default bus, once each. There the rules turn them into a readable
//! message on their severity's topic. S3's own object events are never forwarded: S3 sends them
//! only in the bucket's region, the home region.
//!
//! With a central bus (`[events] central_bus`), the account that owns it runs the same rules on
//! that bus for every account's events, and every other account sends what the rules watch
//! there as well, once per event: from the home region by rules of their own, from the other
//! regions by a second target of the forwarding rules (an event forwarded to the home bus goes
//! no further).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_eventbridge::types::{InputTransformer, RuleState, Target};
use serde::Serialize;
use serde_json::Value;

use super::discovery::{PREFIX, Search};
use super::kind::{Check, Declared, Delta, Found, Kind, Resource};
use super::snapshot::Snapshot;
use super::tag_index::TagIndex;
use super::tags::{self, Tags};
use super::{event_bus, role, topic};
use crate::aws::{Aws, AwsResultExt, all_pages};
use crate::plan::Address;
use crate::policy;
use crate::profile::central_bus::CentralBus;
use crate::profile::{AlertTopic, Events, Profile, Rule, Severity};
use aws_sdk_eventbridge::operation::list_rules::ListRulesOutput;

pub const KIND: &str = "events_rule";
const TOPIC_TARGET: &str = "ctguard-alert-topic";
const FORWARD_TARGET: &str = "ctguard-forward-to-home";
const CENTRAL_TARGET: &str = "ctguard-forward-to-central";
/// The home region's rules that send what the profile's rules watch to the central bus
/// (`-2`, `-3`, ... like the forwarding rules), in every account but the bus's own.
pub const CENTRAL_FORWARD_RULE: &str = "ctguard-forward-to-central";
/// The forwarding rules of the regions other than the home one (`-2`, `-3`, ... when the
/// watched calls take more than one pattern).
pub const FORWARD_RULE: &str = "ctguard-forward-to-home";
/// The fire-drill rule, in every region: at home it alerts like the profile's rules, elsewhere
/// it forwards like the forwarding rules (see [`EventRule::drill`]).
pub const DRILL_RULE: &str = "ctguard-drill";
/// The source of the events `ctguard drill` puts; no AWS service sends it (AWS reserves the
/// `aws.` prefix for its own).
pub const DRILL_SOURCE: &str = "ctguard.drill";
/// What every drill message carries, so a receiver can tell a drill from an incident.
pub const DRILL_MARKER: &str = "[DRILL]";

/// A rule as ctguard compares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSpec {
    /// Canonical (see `policy::canonical_pattern`).
    pub pattern: Option<Value>,
    pub state: Option<String>,
    /// EventBridge omits an empty description; absent reads as "".
    pub description: String,
    /// Targets by id.
    pub targets: BTreeMap<String, TargetSpec>,
    pub tags: Tags,
}

crate::tagged_spec!(RuleSpec);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetSpec {
    pub arn: String,
    pub role_arn: Option<String>,
    pub input_transformer: Option<Transformer>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transformer {
    pub paths: Option<BTreeMap<String, String>>,
    pub template: String,
}

pub struct EventRule {
    name: String,
    region: String,
    /// A custom bus the rule is on; `None`: the region's default bus.
    bus: Option<String>,
    arn: String,
    region_rules: Arc<RegionEventRules>,
    tags: Arc<TagIndex>,
}

/// What ListRules says about one rule; it carries what DescribeRule would.
#[derive(Debug, Clone)]
struct ListedRule {
    arn: String,
    pattern: Option<String>,
    state: Option<String>,
    description: String,
}

/// Every rule of one region's default bus (or of one custom bus), from one paginated
/// ListRules, shared by the profile's rules there instead of a DescribeRule each.
#[derive(Default)]
pub struct RegionEventRules {
    bus: Option<String>,
    snapshot: Snapshot<BTreeMap<String, ListedRule>>,
}

impl RegionEventRules {
    /// The rules of the custom bus `name`.
    pub fn on_bus(name: &str) -> Self {
        RegionEventRules { bus: Some(name.to_string()), snapshot: Snapshot::default() }
    }

    async fn get(&self, aws: &Aws, region: &str) -> anyhow::Result<Arc<BTreeMap<String, ListedRule>>> {
        self.snapshot.get(|| fetch(aws, region, self.bus.as_deref())).await
    }
}

async fn fetch(aws: &Aws, region: &str, bus: Option<&str>) -> anyhow::Result<BTreeMap<String, ListedRule>> {
    let list = |token| async move {
        let req = aws.events(region).list_rules().set_event_bus_name(bus.map(str::to_string)).set_next_token(token);
        let on = bus.map(|b| format!(" on bus {b}")).unwrap_or_default();
        // A custom bus not made yet has no rules.
        let page = req.send().await.found(|| format!("listing EventBridge rules in {region}{on}"))?;
        anyhow::Ok(page.unwrap_or_else(|| ListRulesOutput::builder().build()))
    };
    let pages = all_pages(list, ListRulesOutput::next_token).await?;
    let rules = pages.iter().flat_map(|p| p.rules()).map(|r| {
        let listed = ListedRule {
            arn: r.arn().unwrap_or("").to_string(),
            pattern: r.event_pattern().map(str::to_string),
            state: r.state().map(|s| s.as_str().to_string()),
            description: r.description().unwrap_or("").to_string(),
        };
        (r.name().unwrap_or("").to_string(), listed)
    });
    Ok(rules.collect())
}

/// What the profile wrote, as text and never template: a '"' or '\\' would end or escape its
/// line, and `<name>` is where EventBridge puts an input path.
fn plain(s: &str) -> String {
    s.replace(['"', '\\'], "'").replace('<', "(").replace('>', ")")
}

fn is_insight_rule(rule: &Rule) -> bool {
    crate::detect::eventbridge::insights_only(&rule.pattern)
}

/// An Insights event names no caller: it says which API's call or error rate left its
/// baseline, when it started or ended, and by how much (CloudTrail User Guide, "CloudTrail
/// Insights events record contents"): "<type> <Start|End>: <eventName> (<eventSource>) in
/// <region> at <time>, <n> per minute against a baseline of <m>".
fn insight_transformer(rule: &Rule) -> Transformer {
    let text = format!(
        "[{}] {}: <type> <state> for <action> (<service>) in <region> at <time>; <rate> per minute against a \
         baseline of <baseline>",
        rule.severity.as_str().to_uppercase(),
        plain(&rule.title)
    );
    let statistics = "$.detail.insightDetails.insightContext.statistics";
    let paths = [
        ("type", "$.detail.insightDetails.insightType".to_string()),
        ("state", "$.detail.insightDetails.state".to_string()),
        ("action", "$.detail.insightDetails.eventName".to_string()),
        ("service", "$.detail.insightDetails.eventSource".to_string()),
        ("region", "$.region".to_string()),
        ("time", "$.time".to_string()),
        ("rate", format!("{statistics}.insight.average")),
        ("baseline", format!("{statistics}.baseline.average")),
    ];
    Transformer {
        paths: Some(paths.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
        template: serde_json::to_string(&text).unwrap_or_default(),
    }
}

/// The alert text for S3's own object events, whose fields are the S3 User Guide's ("EventBridge
/// event message structure"): "<requester> from <source IP>: <detail-type> (<reason>,
/// <deletion-type>) s3://<bucket>/<key> version <version-id> in <region> at <time>". The
/// requester is an account ID or a service principal; a field the event lacks is left out.
fn s3_object_transformer(rule: &Rule) -> Transformer {
    let text = format!(
        "[{}] {}: <requester> from <ip>: <type> (<reason>, <deletion>) s3://<bucket>/<key> version <version> in \
         <region> at <time>",
        rule.severity.as_str().to_uppercase(),
        plain(&rule.title)
    );
    let paths = [
        ("requester", "$.detail.requester"),
        ("ip", "$.detail.source-ip-address"),
        ("type", "$.detail-type"),
        ("reason", "$.detail.reason"),
        ("deletion", "$.detail.deletion-type"),
        ("bucket", "$.detail.bucket.name"),
        ("key", "$.detail.object.key"),
        ("version", "$.detail.object.version-id"),
        ("region", "$.region"),
        ("time", "$.time"),
    ];
    Transformer {
        paths: Some(paths.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        template: serde_json::to_string(&text).unwrap_or_default(),
    }
}

/// What the alert message reads from the event, by placeholder name. Well under EventBridge's
/// 100 input paths. A path the event lacks becomes an empty value, so every line still reads
/// as "Label: " followed by nothing.
const MESSAGE_PATHS: [(&str, &str); 19] = [
    ("account", "$.account"),
    ("region", "$.region"),
    ("eventTime", "$.detail.eventTime"),
    ("eventId", "$.detail.eventID"),
    ("eventName", "$.detail.eventName"),
    ("eventSource", "$.detail.eventSource"),
    ("principalType", "$.detail.userIdentity.type"),
    ("principalArn", "$.detail.userIdentity.arn"),
    ("principalId", "$.detail.userIdentity.principalId"),
    ("userName", "$.detail.userIdentity.userName"),
    ("roleName", "$.detail.userIdentity.sessionContext.sessionIssuer.userName"),
    ("sourceIdentity", "$.detail.userIdentity.sessionContext.sourceIdentity"),
    ("invokedBy", "$.detail.userIdentity.invokedBy"),
    ("sourceIp", "$.detail.sourceIPAddress"),
    ("userAgent", "$.detail.userAgent"),
    ("errorCode", "$.detail.errorCode"),
    ("errorMessage", "$.detail.errorMessage"),
    ("requestParameters", "$.detail.requestParameters"),
    ("resources", "$.detail.resources"),
];

/// The CloudTrail console's host in a partition.
fn console_host(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "console.amazonaws.cn",
        "aws-us-gov" => "console.amazonaws-us-gov.com",
        _ => "console.aws.amazon.com",
    }
}

/// The alert message: one quoted line per fact, the form EventBridge documents for a text
/// message (SNS delivers it as it is; email and chat clients show one fact per line). The
/// headline carries severity and title; then account, region, who (with the agent signals the
/// rule is restricted to, and the fields that show which one matched), what, on what, the
/// outcome, and a link to the event in the CloudTrail console's event history.
pub fn message(rule: &Rule, partition: &str, account_alias: Option<&str>) -> Transformer {
    if is_insight_rule(rule) {
        return insight_transformer(rule);
    }
    if crate::detect::eventbridge::s3_events_only(&rule.pattern) {
        return s3_object_transformer(rule);
    }
    let text = plain;
    let agents = if rule.restriction.is_empty() {
        "none of the declared agent signals (this rule covers every other principal)".to_string()
    } else {
        rule.restriction
            .signals
            .iter()
            .map(|s| format!("{} {}", s.kind.key(), text(&s.pattern)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let alias = account_alias.map(|a| format!(" ({})", text(a))).unwrap_or_default();
    let link = format!("https://{}/cloudtrail/home?region=<region>#/events/<eventId>", console_host(partition));
    let lines = [
        format!("[{}] {}", rule.severity.as_str().to_uppercase(), text(&rule.title)),
        format!("Account: <account>{alias}"),
        "Region: <region>".to_string(),
        "Principal: <principalType> <principalArn>".to_string(),
        "Principal id (role id:session name): <principalId>".to_string(),
        "IAM user: <userName>".to_string(),
        "Role: <roleName>".to_string(),
        "Source identity: <sourceIdentity>".to_string(),
        "Invoked by (AWS service): <invokedBy>".to_string(),
        format!("Agent signals of this rule: {agents}"),
        "Call: <eventName> (<eventSource>)".to_string(),
        "Request parameters: <requestParameters>".to_string(),
        "Resources: <resources>".to_string(),
        "Error code (empty if the call succeeded): <errorCode> <errorMessage>".to_string(),
        "User agent: <userAgent>".to_string(),
        "Source IP: <sourceIp>".to_string(),
        "Event: <eventId> at <eventTime>".to_string(),
        format!("Console: {link}"),
        format!("Rule: {}", text(&rule.name)),
    ];
    let template = lines.iter().map(|l| format!("\"{l}\"")).collect::<Vec<_>>().join("\n");
    let used: Vec<(&str, &str)> =
        MESSAGE_PATHS.iter().copied().filter(|(k, _)| template.contains(&format!("<{k}>"))).collect();
    Transformer { paths: Some(used.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()), template }
}

/// Forwarding rules repeat in every region, so the region is part of the name.
fn address(name: &str, region: &str) -> Address {
    Address { kind: KIND, name: format!("{region}/{name}"), region: region.into() }
}

/// A rule on a custom bus carries the rules' names of the default bus: the bus is part of it.
fn bus_address(name: &str, region: &str, bus: &str) -> Address {
    Address { kind: KIND, name: format!("{region}/{bus}/{name}"), region: region.into() }
}

/// `pattern` matching the events of any account where it names `account`'s own resources or
/// principals (the audit bucket, the alert topics, ctguard's roles and log groups, the agents'
/// role ARNs, whose names and ARNs carry the account ID): each such value becomes a `wildcard`
/// with `*` for the account ID (EventBridge User Guide, "Content filtering": wildcard matching,
/// and anything-but with a wildcard). Only accounts of the organization put events on the
/// central bus, so `*` stands for them.
pub fn for_any_account(pattern: &Value, account: &str) -> Value {
    match pattern {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), for_any_account(v, account))).collect())
        }
        // A list of values of one field: the leaves.
        Value::Array(items) => Value::Array(items.iter().map(|v| any_account_value(v, account)).collect()),
        other => other.clone(),
    }
}

/// One value of a field's list, as [`for_any_account`] says.
fn any_account_value(value: &Value, account: &str) -> Value {
    let json = |k: &str, v: Value| Value::Object(serde_json::Map::from_iter([(k.to_string(), v)]));
    match value {
        Value::String(s) if s.contains(account) => json("wildcard", Value::String(literal(s, account, false))),
        // An operator: one key, an EventBridge comparison.
        Value::Object(op) if op.len() == 1 && op.keys().all(|k| OPERATORS.contains(&k.as_str())) => {
            let (name, arg) = op.iter().next().expect("one entry");
            match (name.as_str(), arg) {
                ("prefix", Value::String(s)) if s.contains(account) => {
                    json("wildcard", Value::String(literal(s, account, true)))
                }
                ("wildcard", _) => json("wildcard", wildcard_any_account(arg, account)),
                ("anything-but", Value::String(_) | Value::Array(_)) if arg.to_string().contains(account) => {
                    let strings: Vec<Value> = match arg {
                        Value::Array(items) => items.clone(),
                        one => vec![one.clone()],
                    };
                    let all = strings
                        .iter()
                        .map(|v| match v {
                            Value::String(s) => Value::String(literal(s, account, false)),
                            other => other.clone(),
                        })
                        .collect();
                    json("anything-but", json("wildcard", Value::Array(all)))
                }
                ("anything-but", Value::Object(inner)) if inner.len() == 1 => {
                    json("anything-but", any_account_value(arg, account))
                }
                _ => value.clone(),
            }
        }
        // A branch of `$or`.
        Value::Object(_) => for_any_account(value, account),
        other => other.clone(),
    }
}

/// The comparison operators of EventBridge's content filtering.
const OPERATORS: [&str; 8] =
    ["prefix", "suffix", "equals-ignore-case", "wildcard", "anything-but", "numeric", "exists", "cidr"];

/// A wildcard's value (one pattern or a list) with the account ID a `*`.
fn wildcard_any_account(arg: &Value, account: &str) -> Value {
    match arg {
        Value::String(s) => {
            // No `*` next to one already there: EventBridge refuses `**`.
            let mut out = String::new();
            for (i, part) in s.split(account).enumerate() {
                let mut part = part;
                if i > 0 {
                    if !(out.ends_with('*') && !out.ends_with("\\*")) {
                        out.push('*');
                    }
                    part = part.strip_prefix('*').unwrap_or(part);
                }
                out.push_str(part);
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| wildcard_any_account(v, account)).collect()),
        other => other.clone(),
    }
}

/// A literal value (or a prefix, `open_end`) as a wildcard pattern with `*` for the account ID;
/// a `*` or `\` of its own is escaped, and no two `*` meet (EventBridge refuses `**`).
fn literal(s: &str, account: &str, open_end: bool) -> String {
    let parts: Vec<String> = s.split(account).map(|p| p.replace('\\', "\\\\").replace('*', "\\*")).collect();
    let mut out = parts.join("*");
    if open_end && !s.ends_with(account) {
        out.push('*');
    }
    out
}

impl EventRule {
    /// A rule of the profile (or one part of it), in the home region, publishing its alert to
    /// its severity's topic. `region_rules` is shared by every rule of the profile in the region.
    pub fn new(
        profile: &Profile,
        rule: &Rule,
        (name, pattern): &(String, Value),
        region_rules: Arc<RegionEventRules>,
        tags: Arc<TagIndex>,
    ) -> Declared<Self> {
        let rt = &profile.runtime;
        let alerts = profile.alerts.as_ref().expect("validated: rules need [alerts]");
        let (target, depends) = alert_target(profile, rule, alerts.account_alias.as_deref());
        Self::declared(
            profile,
            name,
            pattern,
            &rule.description,
            (&rt.region, None),
            BTreeMap::from([(TOPIC_TARGET.to_string(), target)]),
            depends,
            (region_rules, tags),
        )
    }

    /// A rule of the profile (or one part of it) on the central bus, in the account that owns
    /// it: the same alert on the same topic for the events every other account sends there.
    /// The message names the account the event came from (`$.account`, kept as it was when
    /// the event crossed to this bus) and no alias: the profile's alias is this account's.
    pub fn central(
        profile: &Profile,
        rule: &Rule,
        (name, pattern): &(String, Value),
        bus: &CentralBus,
        region_rules: Arc<RegionEventRules>,
        tags: Arc<TagIndex>,
    ) -> Declared<Self> {
        let rt = &profile.runtime;
        let (target, mut depends) = alert_target(profile, rule, None);
        depends.push(event_bus::address(bus));
        let description = format!("{} (central: events of the organization's accounts)", rule.description);
        Self::declared(
            profile,
            name,
            &for_any_account(pattern, &rt.account_id),
            description.trim_start(),
            (&bus.region, Some(&bus.name)),
            BTreeMap::from([(TOPIC_TARGET.to_string(), target)]),
            depends,
            (region_rules, tags),
        )
    }

    /// The `index`th rule of the home region sending what the rules watch to the central bus,
    /// in an account that does not own it. Events other regions forward to this bus do not
    /// go on ("EventBridge can't route events received from a sender event bus to a third
    /// event bus"): the forwarding rules there send to the central bus themselves.
    pub fn central_forwarder(
        profile: &Profile,
        events: &Events,
        bus: &CentralBus,
        index: usize,
        pattern: &Value,
        region_rules: Arc<RegionEventRules>,
        tags: Arc<TagIndex>,
    ) -> Declared<Self> {
        let name = numbered(CENTRAL_FORWARD_RULE, index);
        let description = format!("ctguard: sends the calls ctguard's rules watch to the central bus {}", bus.arn);
        let rt = &profile.runtime;
        Self::declared(
            profile,
            &name,
            pattern,
            &description,
            (&rt.region, None),
            BTreeMap::from([central_target(bus, events)]),
            vec![role::address(&events.role_name, &rt.region)],
            (region_rules, tags),
        )
    }

    /// The `index`th forwarding rule of a region other than the home one: what the rules
    /// watch, sent unchanged to the home region's default bus.
    pub fn forwarder(
        profile: &Profile,
        events: &Events,
        index: usize,
        pattern: &Value,
        region: &str,
        region_rules: Arc<RegionEventRules>,
        tags: Arc<TagIndex>,
    ) -> Declared<Self> {
        let name = numbered(FORWARD_RULE, index);
        let description = format!(
            "ctguard: forwards the CloudTrail calls ctguard's rules watch to {} once each",
            profile.runtime.region
        );
        let (arn, role_arn) = (events.home_bus_arn.clone(), Some(events.role_arn.clone()));
        let target = TargetSpec { arn, role_arn, input_transformer: None };
        let depends = vec![role::address(&events.role_name, region)];
        let mut targets = BTreeMap::from([(FORWARD_TARGET.to_string(), target)]);
        // An event this region forwards home goes no further: it goes to the central bus from here.
        if let Some(bus) = events.central.as_ref().filter(|b| !b.owned_here()) {
            targets.extend([central_target(bus, events)]);
        }
        Self::declared(profile, &name, pattern, &description, (region, None), targets, depends, (region_rules, tags))
    }

    /// The fire-drill rule of `region`, matching only `ctguard drill`'s events. In the home
    /// region it publishes to every topic the profile's rules publish to, with the alert
    /// message the rules use (so the drill crosses the same input transformer, topic policy
    /// and key); in any other region it forwards to the home bus with the forwarding rules'
    /// target and role, so a drill event put there proves that region's forwarding path.
    pub fn drill(
        profile: &Profile,
        events: &Events,
        region: &str,
        region_rules: Arc<RegionEventRules>,
        tags: Arc<TagIndex>,
    ) -> Declared<Self> {
        let rt = &profile.runtime;
        let pattern = serde_json::json!({ "source": [DRILL_SOURCE] });
        let (targets, depends) = if region == rt.region {
            let alerts = profile.alerts.as_ref().expect("validated: rules need [alerts]");
            let topics = drill_topics(profile);
            let targets = topics
                .iter()
                .enumerate()
                .map(|(i, (on, severity))| {
                    let text = message(&drill_alert(*severity), &rt.partition, alerts.account_alias.as_deref());
                    let target = TargetSpec { arn: on.arn.clone(), role_arn: None, input_transformer: Some(text) };
                    (drill_target_id(i, &on.name), target)
                })
                .collect::<BTreeMap<_, _>>();
            (targets, topics.iter().map(|(on, _)| topic::address(on, &rt.region)).collect())
        } else {
            let (arn, role_arn) = (events.home_bus_arn.clone(), Some(events.role_arn.clone()));
            let target = TargetSpec { arn, role_arn, input_transformer: None };
            (BTreeMap::from([(FORWARD_TARGET.to_string(), target)]), vec![role::address(&events.role_name, region)])
        };
        let description = "ctguard: fire drill (`ctguard drill`); matches only its own ctguard.drill events";
        Self::declared(
            profile,
            DRILL_RULE,
            &pattern,
            description,
            (region, None),
            targets,
            depends,
            (region_rules, tags),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn declared(
        profile: &Profile,
        name: &str,
        pattern: &Value,
        description: &str,
        (region, bus): (&str, Option<&str>),
        targets: BTreeMap<String, TargetSpec>,
        depends: Vec<Address>,
        (region_rules, tags): (Arc<RegionEventRules>, Arc<TagIndex>),
    ) -> Declared<Self> {
        let rt = &profile.runtime;
        let want = RuleSpec {
            pattern: Some(policy::canonical_pattern(pattern)),
            state: Some(RuleState::Enabled.as_str().to_string()),
            description: description.to_string(),
            targets,
            tags: tags::owner_tags(profile),
        };
        let on = bus.map(|b| format!("{b}/")).unwrap_or_default();
        let arn = format!("arn:{}:events:{region}:{}:rule/{on}{name}", rt.partition, rt.account_id);
        let at = match bus {
            Some(b) => bus_address(name, region, b),
            None => address(name, region),
        };
        let bus = bus.map(str::to_string);
        let kind = EventRule { name: name.to_string(), region: region.into(), bus, arn, region_rules, tags };
        Declared::new(kind, at, want, depends)
    }

    fn orphan(name: &str, arn: &str, region: &str, region_rules: Arc<RegionEventRules>) -> Declared<Self> {
        // Orphans are found by their tags already; their read goes to the resource itself.
        let tags = Arc::new(TagIndex::default());
        let rule =
            EventRule { name: name.into(), region: region.into(), bus: None, arn: arn.into(), region_rules, tags };
        Declared::undeclared(rule, address(name, region))
    }

    fn what(&self, doing: &str) -> String {
        let on = self.bus.as_ref().map(|b| format!("{b}/")).unwrap_or_default();
        format!("{doing} EventBridge rule {}/{on}{}", self.region, self.name)
    }

    /// An EventBridge rule delivers only when ENABLED and with its target in place.
    fn delivery_check(want: Option<&RuleSpec>, have: &RuleSpec) -> Option<Check> {
        // A rule the profile no longer declares is not expected to deliver anything.
        let wanted = &want?.targets;
        let state = have.state.as_deref().unwrap_or("(none)");
        let missing: Vec<&String> =
            wanted.iter().filter(|(id, t)| have.targets.get(*id) != Some(t)).map(|(id, _)| id).collect();
        let enabled = state == RuleState::Enabled.as_str();
        let detail = match (enabled, missing.as_slice()) {
            (true, []) => format!("ENABLED, {} target(s) as declared", have.targets.len()),
            (true, m) => format!("ENABLED, but target {m:?} is missing or differs: matches go nowhere"),
            (false, _) => format!("{state}: it matches nothing until enabled"),
        };
        Some(Check {
            name: "rule is enabled and delivers to its target".into(),
            ok: enabled && missing.is_empty(),
            detail,
        })
    }

    /// Puts the declared targets and removes any other.
    async fn put_targets(&self, aws: &Aws, wanted: &BTreeMap<String, TargetSpec>) -> anyhow::Result<()> {
        let eb = aws.events(&self.region);
        let targets = wanted.iter().map(|(id, spec)| expand_target(id, spec)).collect::<anyhow::Result<Vec<_>>>()?;
        let req = eb.put_targets().rule(&self.name).set_event_bus_name(self.bus.clone()).set_targets(Some(targets));
        let put = req.send().await.ctx(|| self.what("setting targets of"))?;
        if let Some(failed) = put.failed_entries().first() {
            anyhow::bail!(
                "{}: {}: {}",
                self.what("setting targets of"),
                failed.error_code().unwrap_or("error"),
                failed.error_message().unwrap_or("")
            );
        }
        let listed = eb
            .list_targets_by_rule()
            .rule(&self.name)
            .set_event_bus_name(self.bus.clone())
            .send()
            .await
            .ctx(|| self.what("listing targets of"))?;
        let extra: Vec<String> =
            listed.targets().iter().map(|t| t.id().to_string()).filter(|id| !wanted.contains_key(id)).collect();
        self.remove_targets(aws, extra).await
    }

    async fn remove_targets(&self, aws: &Aws, ids: Vec<String>) -> anyhow::Result<()> {
        if !ids.is_empty() {
            let req = aws.events(&self.region).remove_targets().rule(&self.name).set_event_bus_name(self.bus.clone());
            let req = req.set_ids(Some(ids));
            req.send().await.ctx(|| self.what("removing targets from"))?;
        }
        Ok(())
    }
}

/// Every topic the profile's rules publish to, in the profile's topic order, with the lowest
/// severity routed there (the drill message's headline).
pub fn drill_topics(profile: &Profile) -> Vec<(&AlertTopic, Severity)> {
    let (Some(alerts), Some(events)) = (&profile.alerts, &profile.events) else { return Vec::new() };
    let mut out: Vec<(&AlertTopic, Severity)> = Vec::new();
    for rule in &events.rules {
        let on = alerts.topic_for(rule.severity);
        match out.iter_mut().find(|(t, _)| t.name == on.name) {
            Some((_, s)) => *s = (*s).min(rule.severity),
            None => out.push((on, rule.severity)),
        }
    }
    out.sort_by_key(|(t, _)| alerts.topics.iter().position(|x| x.name == t.name));
    out
}

/// A target id is at most 64 characters of `[.\-_A-Za-z0-9]` (EventBridge API Reference,
/// Target); SNS topic names are of those characters, so the topic's name serves when short
/// enough.
/// The `index`th of a family of rules: `base`, then `base-2`, `base-3`, ...
fn numbered(base: &str, index: usize) -> String {
    match index {
        0 => base.to_string(),
        i => format!("{base}-{}", i + 1),
    }
}

/// The alert of `rule` on its severity's topic, and the topic it depends on. `alias`: the
/// account alias the message shows.
fn alert_target(profile: &Profile, rule: &Rule, alias: Option<&str>) -> (TargetSpec, Vec<Address>) {
    let rt = &profile.runtime;
    let alerts = profile.alerts.as_ref().expect("validated: rules need [alerts]");
    let on = alerts.topic_for(rule.severity);
    let text = message(rule, &rt.partition, alias);
    let target = TargetSpec { arn: on.arn.clone(), role_arn: None, input_transformer: Some(text) };
    (target, vec![topic::address(on, &rt.region)])
}

fn drill_target_id(index: usize, topic: &str) -> String {
    if topic.len() <= 64 { topic.to_string() } else { format!("ctguard-alert-topic-{}", index + 1) }
}

/// The drill as a rule of the profile, for [`message`]: its headline says it is a drill.
fn drill_alert(severity: Severity) -> Rule {
    Rule {
        name: DRILL_RULE.to_string(),
        description: String::new(),
        pattern: serde_json::json!({ "source": [DRILL_SOURCE] }),
        title: format!("{DRILL_MARKER} ctguard fire drill, not an incident"),
        severity,
        restriction: Default::default(),
        parts: Vec::new(),
    }
}

/// The target that sends to the central bus, with the forwarding role: a bus in another account
/// that admits this one through its organization, not by account ID, takes events only from a
/// target with a role (EventBridge API Reference, PutTargets: RoleArn).
fn central_target(bus: &CentralBus, events: &Events) -> (String, TargetSpec) {
    let target = TargetSpec { arn: bus.arn.clone(), role_arn: Some(events.role_arn.clone()), input_transformer: None };
    (CENTRAL_TARGET.to_string(), target)
}

fn flatten_target(t: &Target) -> TargetSpec {
    let transformer = t.input_transformer().map(|it| Transformer {
        paths: it.input_paths_map().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        template: it.input_template().to_string(),
    });
    TargetSpec { arn: t.arn().to_string(), role_arn: t.role_arn().map(str::to_string), input_transformer: transformer }
}

fn expand_target(id: &str, spec: &TargetSpec) -> anyhow::Result<Target> {
    let mut t = Target::builder().id(id).arn(&spec.arn).set_role_arn(spec.role_arn.clone());
    if let Some(it) = &spec.input_transformer {
        let paths: Option<HashMap<String, String>> = it.paths.as_ref().map(|p| p.clone().into_iter().collect());
        let transformer =
            InputTransformer::builder().set_input_paths_map(paths).input_template(&it.template).build()?;
        t = t.input_transformer(transformer);
    }
    Ok(t.build()?)
}

/// Rules named with the discovery prefix in the profile's regions that it owns but no longer
/// declares.
pub async fn owned(search: &Search<'_>) -> anyhow::Result<Vec<Box<dyn Resource>>> {
    let aws = search.aws;
    search
        .in_regions(|region| async move {
            let shared = &search.listings.event_rules[region];
            let listed = shared.get(aws, region).await?;
            let prefixed = listed.iter().filter(|(name, _)| name.starts_with(PREFIX));
            let orphan = |name: &str, arn: &str| Box::new(EventRule::orphan(name, arn, region, shared.clone()));
            Ok(prefixed.map(|(name, rule)| (rule.arn.clone(), orphan(name, &rule.arn) as Box<dyn Resource>)).collect())
        })
        .await
}

#[async_trait]
impl Kind for EventRule {
    type Spec = RuleSpec;

    async fn read(&self, aws: &Aws, want: Option<&RuleSpec>) -> anyhow::Result<Option<Found<RuleSpec>>> {
        let eb = aws.events(&self.region);
        let listed = self.region_rules.get(aws, &self.region).await?;
        let Some(rule) = listed.get(&self.name) else { return Ok(None) };
        let want_tags = want.map(|w| &w.tags);
        let (targets, tags) = tokio::try_join!(
            async {
                eb.list_targets_by_rule()
                    .rule(&self.name)
                    .set_event_bus_name(self.bus.clone())
                    .send()
                    .await
                    .ctx(|| self.what("listing targets of"))
            },
            self.tags.tags(aws, &self.region, &self.arn, want_tags),
        )?;
        let pattern: Option<Value> = match &rule.pattern {
            Some(p) => Some(serde_json::from_str(p).with_context(|| self.what("parsing the pattern of"))?),
            None => None,
        };
        let spec = RuleSpec {
            pattern: pattern.map(|p| policy::canonical_pattern(&p)),
            state: rule.state.clone(),
            description: rule.description.clone(),
            targets: targets.targets().iter().map(|t| (t.id().to_string(), flatten_target(t))).collect(),
            tags,
        };
        let checks = Self::delivery_check(want, &spec).into_iter().collect();
        Ok(Some(Found { checks, ..Found::new(spec) }))
    }

    async fn forget(&self) {
        self.region_rules.snapshot.forget().await;
    }

    async fn update(&self, aws: &Aws, delta: &Delta<'_, RuleSpec>) -> anyhow::Result<()> {
        let eb = aws.events(&self.region);
        let want = delta.want;
        if delta.changed(|r| &r.pattern) || delta.changed(|r| &r.state) || delta.changed(|r| &r.description) {
            // PutRule creates or replaces the rule's definition; targets are kept. Its tags
            // apply when it creates the rule, so a run killed before TagResource leaves a rule
            // the next run knows as its own rather than one it would have to be told to adopt.
            eb.put_rule()
                .name(&self.name)
                .set_event_bus_name(self.bus.clone())
                .event_pattern(serde_json::to_string(&want.pattern)?)
                .state(RuleState::Enabled)
                .description(&want.description)
                .set_tags(Some(tags::sdk(&want.tags)?))
                .send()
                .await
                .ctx(|| self.what("writing"))?;
        }
        if delta.changed(|r| &r.targets) {
            self.put_targets(aws, &want.targets).await?;
        }
        if delta.changed(|r| &r.tags) {
            let req = eb.tag_resource().resource_arn(&self.arn).set_tags(Some(tags::sdk(&want.tags)?));
            req.send().await.ctx(|| self.what("tagging"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        let eb = aws.events(&self.region);
        let req = eb.list_targets_by_rule().rule(&self.name).set_event_bus_name(self.bus.clone());
        let Some(listed) = req.send().await.found(|| self.what("listing targets of"))? else {
            return Ok(());
        };
        self.remove_targets(aws, listed.targets().iter().map(|t| t.id().to_string()).collect()).await?;
        eb.delete_rule()
            .name(&self.name)
            .set_event_bus_name(self.bus.clone())
            .send()
            .await
            .found(|| self.what("deleting"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{HOME, OTHER, aws, flagship, mock};
    use aws_sdk_eventbridge::{Client, operation as events, types::Rule as SdkRule};
    use aws_sdk_resourcegroupstagging::operation as tagging;

    fn rule_in(p: &Profile, region: &str) -> Declared<EventRule> {
        let events = p.events.as_ref().unwrap();
        if region == HOME {
            let rule = &events.rules[0];
            EventRule::new(p, rule, &rule.parts[0], Default::default(), Default::default())
        } else {
            EventRule::forwarder(p, events, 0, &events.forward[0], region, Default::default(), Default::default())
        }
    }

    const SECURITY: &str = "999988887777";

    /// The flagship profile sending to a central bus of the security account, resolved for
    /// `account`.
    fn with_central_bus(account: &str) -> Profile {
        let mut loaded = crate::profile::load("ai-agent-guard").unwrap();
        let arn = format!("arn:aws:events:{HOME}:{SECURITY}:event-bus/ctguard-central");
        loaded.doc.events.as_mut().unwrap().central_bus = Some(arn);
        let organization =
            crate::profile::Organization { id: "o-a1b2c3d4e5".into(), management_account: SECURITY.into() };
        let runtime = crate::profile::Runtime {
            account_id: account.into(),
            partition: "aws".into(),
            region: HOME.into(),
            enabled_regions: vec![HOME.into(), OTHER.into()],
            organization: Some(organization),
        };
        loaded.resolve(&runtime, &Default::default()).unwrap()
    }

    fn declared_addresses(p: &Profile) -> Vec<Address> {
        crate::resources::declared(p, &crate::resources::Listings::new(&p.regions))
            .iter()
            .map(|r| r.address())
            .collect()
    }

    #[test]
    fn a_value_naming_the_account_becomes_a_wildcard_for_any() {
        let pattern = serde_json::json!({
            "detail": {
                "a": ["x*111122223333", {"prefix": "arn:aws:sns:us-east-1:111122223333:t:"}, "other"],
                "b": [{"anything-but": ["arn:aws:iam::111122223333:role/r"]}, {"exists": false}],
                "c": [{"anything-but": {"wildcard": ["arn:aws:sts::111122223333:assumed-role/AIAgent*"]}}],
                "$or": [{"d": ["111122223333"]}, {"e": [{"prefix": "111122223333"}]}],
                "f": [{"prefix": "a\\*111122223333-"}, {"wildcard": "*111122223333*"}],
            }
        });
        let got = for_any_account(&pattern, "111122223333");
        let want = serde_json::json!({
            "detail": {
                "a": [{"wildcard": "x\\**"}, {"wildcard": "arn:aws:sns:us-east-1:*:t:*"}, "other"],
                "b": [{"anything-but": {"wildcard": ["arn:aws:iam::*:role/r"]}}, {"exists": false}],
                "c": [{"anything-but": {"wildcard": ["arn:aws:sts::*:assumed-role/AIAgent*"]}}],
                "$or": [{"d": [{"wildcard": "*"}]}, {"e": [{"wildcard": "*"}]}],
                "f": [{"wildcard": "a\\\\\\**-*"}, {"wildcard": "*"}],
            }
        });
        assert_eq!(got, want);
    }

    #[test]
    fn the_security_account_runs_the_rules_on_its_bus_for_any_members_events() {
        let p = with_central_bus(SECURITY);
        let addresses = declared_addresses(&p);
        assert!(addresses.iter().any(|a| a.kind == event_bus::KIND && a.name == "ctguard-central"));
        assert!(addresses.iter().any(|a| a.name == format!("{HOME}/ctguard-central/ctguard-destructive-actions")));
        assert!(!addresses.iter().any(|a| a.name.contains(CENTRAL_FORWARD_RULE)), "it sends nothing to itself");
        let events = p.events.as_ref().unwrap();
        let bus = events.central.as_ref().unwrap();
        let on_bus: BTreeMap<String, RuleSpec> = events
            .rules
            .iter()
            .flat_map(|r| r.parts.iter().map(move |part| (r, part)))
            .map(|(r, part)| {
                let d = EventRule::central(&p, r, part, bus, Default::default(), Default::default());
                (part.0.clone(), d.want.unwrap())
            })
            .collect();
        let member = "111122223333";
        for (name, spec) in &on_bus {
            let pattern = spec.pattern.as_ref().unwrap();
            crate::detect::eventbridge::EventPattern::parse(pattern).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(!pattern.to_string().contains(SECURITY), "{name}: {pattern}");
            let text = &spec.targets[TOPIC_TARGET].input_transformer.as_ref().unwrap().template;
            assert!(!text.contains("Account: <account> ("), "no alias of the security account's: {text}");
        }
        let matches = |rule: &str, event: Value| {
            let p = crate::detect::eventbridge::EventPattern::parse(on_bus[rule].pattern.as_ref().unwrap()).unwrap();
            p.matches(&event)
        };
        let call = |source: &str, name: &str, who: &Value, params: Value| {
            serde_json::json!({
                "source": source, "detail-type": "AWS API Call via CloudTrail", "account": member,
                "detail": {"eventSource": format!("{}.amazonaws.com", &source[4..]), "eventName": name,
                           "userIdentity": who, "requestParameters": params}
            })
        };
        let human = serde_json::json!({"type": "IAMUser", "userName": "alice", "arn": format!("arn:aws:iam::{member}:user/alice")});
        let topic = |name: &str| serde_json::json!({"topicArn": format!("arn:aws:sns:{HOME}:{member}:{name}")});
        assert!(matches("ctguard-pipeline-tampering", call("aws.sns", "DeleteTopic", &human, topic("ctguard-alerts"))));
        assert!(!matches("ctguard-pipeline-tampering", call("aws.sns", "DeleteTopic", &human, topic("payments"))));
        // A member's agent is an agent here too: its role ARN names the member's account.
        let agent = serde_json::json!({"type": "AssumedRole", "principalId": "AROAEXAMPLE:s1",
                                       "arn": format!("arn:aws:sts::{member}:assumed-role/AIAgent-ci/s1")});
        let terminate = |who: &Value| call("aws.ec2", "TerminateInstances", who, serde_json::json!({}));
        assert!(matches("ctguard-destructive-actions", terminate(&human)));
        assert!(!matches("ctguard-destructive-actions", terminate(&agent)), "the agents' own rule covers it");
    }

    #[test]
    fn a_member_sends_to_the_central_bus_from_every_region_once() {
        let member = "111122223333";
        let p = with_central_bus(member);
        let addresses = declared_addresses(&p);
        assert!(!addresses.iter().any(|a| a.kind == event_bus::KIND));
        let events = p.events.as_ref().unwrap();
        let bus = events.central.as_ref().unwrap();
        let home_senders = addresses.iter().filter(|a| a.name.starts_with(&format!("{HOME}/{CENTRAL_FORWARD_RULE}")));
        assert!(home_senders.count() >= events.forward.len());
        let role = format!("arn:aws:iam::{member}:role/ctguard/ctguard-events-forwarder");
        let central = TargetSpec { arn: bus.arn.clone(), role_arn: Some(role), input_transformer: None };
        let (listed, tags) = (Arc::default(), Arc::default);
        let sender = EventRule::central_forwarder(&p, events, bus, 0, &events.forward[0], listed, tags()).want.unwrap();
        assert_eq!(sender.targets, BTreeMap::from([(CENTRAL_TARGET.to_string(), central.clone())]));
        let forwarder = rule_in(&p, OTHER).want.unwrap();
        assert_eq!(forwarder.targets.get(CENTRAL_TARGET), Some(&central));
        assert!(forwarder.targets.contains_key(FORWARD_TARGET), "and home, for the member's own alerts");
        // The profile's own rules and the drill alert locally only: each event crosses once.
        assert!(!rule_in(&p, HOME).want.unwrap().targets.contains_key(CENTRAL_TARGET));
        let drill = EventRule::drill(&p, events, OTHER, Default::default(), Default::default()).want.unwrap();
        assert!(!drill.targets.contains_key(CENTRAL_TARGET));
        let forwarding_role = role::Role::events_forwarder(&p, events).want.unwrap();
        let inline = &forwarding_role.inline_policies["ctguard-forward-to-central"];
        assert_eq!(inline["Statement"][0]["Resource"], bus.arn.as_str(), "{inline}");
    }

    #[test]
    fn the_insights_rule_alerts_with_the_insight_not_a_caller() {
        let p = flagship();
        let events = p.events.as_ref().unwrap();
        let insight = events.rules.iter().find(|r| r.name == "ctguard-cloudtrail-insight").unwrap();
        assert!(is_insight_rule(insight));
        assert!(!is_insight_rule(&events.rules[0]));
        let t = message(insight, "aws", None);
        let paths = t.paths.unwrap();
        assert_eq!(paths["type"], "$.detail.insightDetails.insightType");
        assert_eq!(paths["baseline"], "$.detail.insightDetails.insightContext.statistics.baseline.average");
        assert!(!paths.contains_key("principal"));
        assert!(t.template.contains("<rate> per minute against a baseline of <baseline>"), "{}", t.template);
        assert!(t.template.starts_with("\"[MEDIUM] Unusual API activity (CloudTrail Insights)"), "{}", t.template);
    }

    #[test]
    fn a_rule_on_s3_object_events_runs_in_the_home_region_only_and_names_the_object() {
        let p = flagship();
        assert!(p.regions.len() > 1);
        let all = crate::resources::declared(&p, &crate::resources::Listings::new(&p.regions));
        let name = "ctguard-audit-log-object-deleted";
        let placed: Vec<Address> =
            all.iter().map(|r| r.address()).filter(|a| a.kind == KIND && a.name.ends_with(name)).collect();
        assert_eq!(placed, vec![address(name, HOME)], "S3 sends its events only in the bucket's region");

        let rule = p.events.as_ref().unwrap().rules.iter().find(|r| r.name == name).unwrap();
        let t = message(rule, "aws", None);
        let paths = t.paths.unwrap();
        for (k, path) in [
            ("bucket", "$.detail.bucket.name"),
            ("key", "$.detail.object.key"),
            ("deletion", "$.detail.deletion-type"),
            ("requester", "$.detail.requester"),
            ("ip", "$.detail.source-ip-address"),
        ] {
            assert_eq!(paths[k], path);
            assert!(t.template.contains(&format!("<{k}>")), "{}", t.template);
        }
    }

    #[test]
    fn the_drill_rule_alerts_like_the_rules_at_home_and_forwards_elsewhere() {
        let p = flagship();
        let events = p.events.as_ref().unwrap();
        let home = EventRule::drill(&p, events, HOME, Default::default(), Default::default()).want.unwrap();
        assert_eq!(home.pattern, Some(serde_json::json!({"source": ["ctguard.drill"]})));
        let topics = drill_topics(&p);
        assert_eq!(home.targets.len(), topics.len());
        for (topic, _) in &topics {
            let target = &home.targets[&topic.name];
            assert_eq!(target.arn, topic.arn);
            let text = target.input_transformer.as_ref().unwrap();
            assert!(text.template.contains("[DRILL] ctguard fire drill, not an incident"), "{}", text.template);
            assert!(text.template.contains("Call: <eventName> (<eventSource>)"), "{}", text.template);
        }
        let other = EventRule::drill(&p, events, OTHER, Default::default(), Default::default()).want.unwrap();
        let forwarder = rule_in(&p, OTHER).want.unwrap();
        assert_eq!(other.targets, forwarder.targets, "the forwarding rules' target and role");
    }

    #[test]
    fn every_topic_the_rules_publish_to_is_drilled() {
        let mut p = flagship();
        let alerts = p.alerts.as_mut().unwrap();
        let mut critical = alerts.topics[0].clone();
        critical.name = "ctguard-critical".into();
        critical.arn = "arn:aws:sns:us-east-1:123456789012:ctguard-critical".into();
        alerts.topics.push(critical);
        alerts.routes.insert(Severity::Critical, 1);
        let names: Vec<String> = drill_topics(&p).iter().map(|(t, _)| t.name.clone()).collect();
        assert_eq!(names, ["ctguard-alerts", "ctguard-critical"]);
        assert_eq!(drill_topics(&p)[1].1, Severity::Critical);
    }

    #[test]
    fn the_home_region_alerts_and_other_regions_forward() {
        let p = flagship();
        let home = rule_in(&p, HOME).want.unwrap();
        let other = rule_in(&p, OTHER).want.unwrap();
        let topic = &home.targets[TOPIC_TARGET];
        assert!(topic.role_arn.is_none() && topic.input_transformer.is_some());
        let forward = &other.targets[FORWARD_TARGET];
        assert_eq!(forward.arn, format!("arn:aws:events:{HOME}:123456789012:event-bus/default"));
        assert!(forward.role_arn.is_some() && forward.input_transformer.is_none());
    }

    #[test]
    fn the_message_names_every_fact_within_eventbridges_limits() {
        let p = flagship();
        let rule = p.events.as_ref().unwrap().rules.iter().find(|r| r.name == "ctguard-agent-persistence").unwrap();
        let t = message(rule, "aws", Some("prod-payments"));
        let paths = t.paths.as_ref().unwrap();
        assert!(paths.len() <= 100 && t.template.len() <= 8192, "{} paths, {} chars", paths.len(), t.template.len());
        for fact in [
            "[CRITICAL] AI agent created credentials or trust",
            "Account: <account> (prod-payments)",
            "Region: <region>",
            "Principal: <principalType> <principalArn>",
            "Source identity: <sourceIdentity>",
            "Agent signals of this rule: roles AIAgent*",
            "user_agents awslabs/mcp/",
            "Call: <eventName> (<eventSource>)",
            "Request parameters: <requestParameters>",
            "<errorCode>",
            "User agent: <userAgent>",
            "Event: <eventId> at <eventTime>",
            "https://console.aws.amazon.com/cloudtrail/home?region=<region>#/events/<eventId>",
        ] {
            assert!(t.template.contains(fact), "{fact:?} missing from {}", t.template);
        }
        // Every placeholder has its path, and every path is used.
        for k in paths.keys() {
            assert!(t.template.contains(&format!("<{k}>")), "{k}");
        }
        // One quoted line per fact, nothing the profile wrote can break out of its quotes.
        assert!(t.template.lines().all(|l| l.starts_with('"') && l.ends_with('"') && l.matches('"').count() == 2));
        assert_eq!(message(rule, "aws-cn", None).template.contains("console.amazonaws.cn/cloudtrail"), true);
    }

    #[test]
    fn the_profiles_own_text_never_becomes_a_placeholder_or_leaves_its_line() {
        let p = flagship();
        let mut rule = p.events.as_ref().unwrap().rules[0].clone();
        rule.title = "Deleted <eventName> \"now\" \\ here".into();
        let t = message(&rule, "aws", Some("prod <account>"));
        assert!(t.template.contains("] Deleted (eventName) 'now' ' here\"\n"), "{}", t.template);
        assert!(t.template.contains("\"Account: <account> (prod (account))\"\n"), "{}", t.template);
        // Only the message's own placeholders remain, each with its path.
        let paths = t.paths.as_ref().unwrap();
        let mut rest = t.template.as_str();
        while let Some(at) = rest.find('<') {
            let end = rest[at..].find('>').unwrap();
            let name = &rest[at + 1..at + end];
            assert!(paths.contains_key(name), "<{name}> has no input path");
            rest = &rest[at + end..];
        }
        assert!(t.template.lines().all(|l| l.starts_with('"') && l.ends_with('"') && l.matches('"').count() == 2));
    }

    #[tokio::test]
    async fn a_disabled_rule_without_its_target_is_drift_and_fails_delivery() {
        let p = flagship();
        let rule = rule_in(&p, HOME);
        let want = rule.want.clone().unwrap();
        let (name, arn) = (rule.kind.name.clone(), rule.kind.arn.clone());
        let pattern = serde_json::to_string(&want.pattern).unwrap();
        let list = mock!(Client::list_rules).then_output(move || {
            let r = SdkRule::builder()
                .name(&name)
                .arn(&arn)
                .event_pattern(&pattern)
                .state(aws_sdk_eventbridge::types::RuleState::Disabled)
                .build();
            aws_sdk_eventbridge::operation::list_rules::ListRulesOutput::builder().rules(r).build()
        });
        let targets = mock!(Client::list_targets_by_rule)
            .then_output(|| events::list_targets_by_rule::ListTargetsByRuleOutput::builder().build());
        let index = mock!(aws_sdk_resourcegroupstagging::Client::get_resources)
            .then_output(|| tagging::get_resources::GetResourcesOutput::builder().build());
        let own_tags = mock!(Client::list_tags_for_resource).then_output(|| {
            let tag = aws_sdk_eventbridge::types::Tag::builder().key("ctguard:profile").value("ai-agent-guard");
            aws_sdk_eventbridge::operation::list_tags_for_resource::ListTagsForResourceOutput::builder()
                .tags(tag.build().unwrap())
                .build()
        });
        let aws = aws(&[&list, &targets, &index, &own_tags]);
        let found = rule.kind.read(&aws, Some(&want)).await.unwrap().unwrap();
        assert_eq!(found.spec.pattern, want.pattern);
        assert_eq!(found.spec.state.as_deref(), Some("DISABLED"));
        assert!(found.spec.targets.is_empty());
        assert_eq!(found.spec.tags, want.tags);
        assert!(!found.checks[0].ok, "{:?}", found.checks);
    }

    #[tokio::test]
    async fn a_create_puts_the_rule_its_target_and_its_tags() {
        let p = flagship();
        let rule = rule_in(&p, HOME);
        let want = rule.want.clone().unwrap();
        let put = mock!(Client::put_rule)
            .match_requests(|r| r.state() == Some(&RuleState::Enabled) && r.event_pattern().is_some())
            .then_output(|| events::put_rule::PutRuleOutput::builder().build());
        let put_targets = mock!(Client::put_targets)
            .match_requests(|r| {
                let t = &r.targets()[0];
                t.id() == TOPIC_TARGET && t.input_transformer().is_some_and(|it| it.input_template().starts_with('"'))
            })
            .then_output(|| events::put_targets::PutTargetsOutput::builder().build());
        // A target someone added by hand is removed.
        let listed = mock!(Client::list_targets_by_rule).then_output(|| {
            let topic = Target::builder().id(TOPIC_TARGET).arn("arn:x").build().unwrap();
            let extra = Target::builder().id("by-hand").arn("arn:y").build().unwrap();
            events::list_targets_by_rule::ListTargetsByRuleOutput::builder().targets(topic).targets(extra).build()
        });
        let remove = mock!(Client::remove_targets)
            .match_requests(|r| r.ids() == ["by-hand"])
            .then_output(|| events::remove_targets::RemoveTargetsOutput::builder().build());
        let tag =
            mock!(Client::tag_resource).then_output(|| events::tag_resource::TagResourceOutput::builder().build());
        let aws = aws(&[&put, &put_targets, &listed, &remove, &tag]);
        rule.kind.create(&aws, &want).await.unwrap();
        assert_eq!([put.num_calls(), put_targets.num_calls(), remove.num_calls(), tag.num_calls()], [1; 4]);
    }
}
