//! The alerting part of a profile: the SNS topic and its subscriptions, the EventBridge rules
//! in every region, and the metric filters with their alarms.

use serde_json::{Value, json};

use super::types::{AlarmDoc, Comparison, ProfileDoc, RuleDoc, Severity, StringOrList, SubscriptionDoc};
use super::vars::Vars;
use super::{Kms, Problem, Resolver, Runtime, validate};
use crate::detect::agents::{self, Agents, Kind, Restriction};

#[derive(Debug, Clone)]
pub struct Alerts {
    /// Every topic: the default one first when declared, then one per severity that has its own.
    pub topics: Vec<AlertTopic>,
    /// The topic (index into `topics`) each severity publishes to; a severity missing here has
    /// none, which validation refuses for any severity a rule or alarm uses.
    pub routes: std::collections::BTreeMap<Severity, usize>,
    pub kms: Option<Kms>,
    /// Named beside the account id in every alert.
    pub account_alias: Option<String>,
    /// Whether outputs show endpoints in full (`--show-endpoints`); otherwise they show
    /// `Subscription::label`'s masked form. Set by the command, never by the profile.
    pub show_endpoints: bool,
}

/// One SNS topic alerts are published to, with its policy and subscriptions.
#[derive(Debug, Clone)]
pub struct AlertTopic {
    pub name: String,
    pub arn: String,
    pub policy: Value,
    pub subscriptions: Vec<Subscription>,
    /// The severities it receives, lowest first.
    pub severities: Vec<Severity>,
}

impl Alerts {
    /// The topic a rule or alarm of `severity` publishes to. Validation guarantees one for every
    /// severity the profile uses; the first topic stands in otherwise.
    pub fn topic_for(&self, severity: Severity) -> &AlertTopic {
        &self.topics[self.routes.get(&severity).copied().unwrap_or(0)]
    }

    /// Every subscription of every topic.
    pub fn subscriptions(&self) -> impl Iterator<Item = &Subscription> {
        self.topics.iter().flat_map(|t| t.subscriptions.iter())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub protocol: String,
    pub endpoint: String,
}

impl Subscription {
    /// "protocol:endpoint" as every output shows it: an HTTP(S) endpoint masked (see
    /// `mask_endpoint`) unless `show` says otherwise. Distinct endpoints have distinct labels,
    /// and a label is the same on every run, so it can key the plan.
    pub fn label(&self, show: bool) -> String {
        label(&self.protocol, &self.endpoint, show)
    }
}

/// `Subscription::label` of any protocol and endpoint, such as one SNS lists.
pub fn label(protocol: &str, endpoint: &str, show: bool) -> String {
    if show || !matches!(protocol, "http" | "https") {
        format!("{protocol}:{endpoint}")
    } else {
        format!("{protocol}:{}", mask_endpoint(endpoint))
    }
}

/// An HTTP(S) endpoint with only its scheme and host (and port) kept: chat webhooks and paging
/// integrations carry their secret in the path, the query or the user info, and plans, JSON,
/// JUnit and logs end up in widely readable CI artifacts. The first 8 hex digits of the URL's
/// SHA-256 follow, so two secret URLs on one host stay apart without revealing either.
pub fn mask_endpoint(endpoint: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, endpoint.as_bytes());
    let short = hex::encode(&digest.as_ref()[..4]);
    match url::Url::parse(endpoint) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{}{port}/\u{2026} [{short}]", u.scheme(), u.host_str().unwrap_or_default())
        }
        _ => format!("\u{2026} [{short}]"),
    }
}

#[derive(Debug, Clone)]
pub struct Events {
    pub role_name: String,
    pub role_path: String,
    pub role_arn: String,
    pub trust_policy: Value,
    pub role_policy: Value,
    /// The home region's default bus, where other regions forward their matches.
    pub home_bus_arn: String,
    pub rules: Vec<Rule>,
    /// The patterns of the forwarding rules every other region runs instead of the rules: each
    /// a superset of what the rules match for some event sources, no event matching two, so an
    /// event is forwarded once and the home region's rules alert on it as on their own.
    pub forward: Vec<Value>,
    /// The security account's bus every account's matches also go to (`central_bus`).
    pub central: Option<super::central_bus::CentralBus>,
}

/// An EventBridge rule, deployed in the home region; other regions forward what it watches.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub description: String,
    /// The pattern as deployed: the template, with any agent restriction merged in.
    pub pattern: Value,
    pub title: String,
    pub severity: Severity,
    /// The agent signals the pattern is restricted to; empty for a rule on every principal.
    pub restriction: Restriction,
    /// The EventBridge rules it is deployed as, by name: itself, or, when its pattern is longer
    /// than EventBridge takes, parts of it (`<name>`, `<name>-2`, ...), each with the branches
    /// of some event sources, so that no event matches two parts.
    pub parts: Vec<(String, Value)>,
}

/// A metric filter on the trail's log group and the alarm on its metric.
#[derive(Debug, Clone)]
pub struct Alarm {
    pub id: String,
    pub name: String,
    pub metric: String,
    pub namespace: String,
    pub description: String,
    /// The filter pattern as deployed, with any agent restriction merged in.
    pub pattern: String,
    /// The agent signals the pattern is restricted to; empty for an alarm on every principal.
    pub restriction: Restriction,
    pub threshold: f64,
    pub comparison: Comparison,
    pub period: i32,
    pub evaluation_periods: i32,
    pub severity: Severity,
    pub requires_data_events: bool,
}

pub(super) struct Alerting {
    pub agents: Option<Agents>,
    pub regions: Vec<String>,
    pub alerts: Option<Alerts>,
    pub events: Option<Events>,
    pub alarms: Vec<Alarm>,
}

/// EventBridge quotas, "Event pattern size": 2048 characters by default.
const MAX_EVENT_PATTERN: usize = 2048;

const PROTOCOLS: [&str; 7] = ["email", "email-json", "https", "http", "sqs", "lambda", "sms"];

impl Resolver<'_> {
    pub(super) fn alerting(&mut self, doc: &ProfileDoc, runtime: &Runtime, vars: &mut Vars) -> Alerting {
        let (account, partition, home) = (&runtime.account_id, &runtime.partition, &runtime.region);
        let mut regions = vec![home.clone()];
        let declared = match &doc.profile.regions {
            StringOrList::One(s) if s == super::ALL_ENABLED => runtime.enabled_regions.clone(),
            other => self.list("profile.regions", other, vars),
        };
        for r in declared {
            self.check("profile.regions", &r, validate::region);
            if !regions.contains(&r) {
                regions.push(r);
            }
        }

        let alerts = doc.alerts.as_ref().map(|a| {
            let mut declared: Vec<(String, Option<Severity>, &[SubscriptionDoc])> = Vec::new();
            if a.topic.is_some() {
                declared.push(("alerts".into(), None, &a.subscriptions));
            } else if !a.subscriptions.is_empty() {
                self.problem(
                    "alerts.subscriptions",
                    "subscriptions of the default topic, but [alerts] declares no default `topic`: name one, or move \
                     them under [alerts.topics.<severity>]",
                );
            }
            for (severity, t) in &a.topics {
                declared.push((format!("alerts.topics.{}", severity.as_str()), Some(*severity), &t.subscriptions));
            }
            if declared.is_empty() {
                self.problem("alerts", "no topic: declare a default `topic`, or one under [alerts.topics.<severity>]");
            }
            let mut topics = Vec::new();
            for (key, severity, subs) in declared {
                let raw = match severity {
                    None => a.topic.as_deref().unwrap_or_default(),
                    Some(s) => a.topics[&s].topic.as_str(),
                };
                let name = self.text(&format!("{key}.topic"), raw, vars);
                self.check(&format!("{key}.topic"), &name, validate::topic_name);
                let arn = format!("arn:{partition}:sns:{home}:{account}:{name}");
                let subscriptions = subs
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let key = format!("{key}.subscriptions[{i}]");
                        let sub = Subscription {
                            protocol: self.text(&format!("{key}.protocol"), &s.protocol, vars),
                            endpoint: self.text(&format!("{key}.endpoint"), &s.endpoint, vars),
                        };
                        self.subscription(&key, &sub);
                        sub
                    })
                    .collect();
                topics.push(AlertTopic { name, arn, policy: Value::Null, subscriptions, severities: Vec::new() });
            }
            self.unique("alerts.topics", topics.iter().map(|t| t.name.clone()));
            let mut routes = std::collections::BTreeMap::new();
            for severity in Severity::ALL {
                let own = a.topics.keys().position(|s| *s == severity).map(|i| i + usize::from(a.topic.is_some()));
                let route = own.or(a.topic.as_ref().map(|_| 0));
                if let Some(i) = route {
                    routes.insert(severity, i);
                    topics[i].severities.push(severity);
                }
            }
            // The templates name the default topic (or the first) as `${topic_arn}`, and every
            // topic as `${ctguard_topics}`.
            if let Some(first) = topics.first() {
                vars.insert("topic_name".into(), json!(first.name));
                vars.insert("topic_arn".into(), json!(first.arn));
            }
            let arns: Vec<&String> = topics.iter().map(|t| &t.arn).collect();
            let subscriptions: Vec<Value> = arns.iter().map(|a| json!({"prefix": format!("{a}:")})).collect();
            vars.insert("alert_topic_arns".into(), json!(arns));
            vars.insert("ctguard_topic_subscriptions".into(), json!(subscriptions));
            let alias = a.account_alias.as_ref().map(|x| self.text("alerts.account_alias", x, vars));
            (topics, routes, alias, a.clone())
        });

        let events = doc.events.as_ref().map(|e| {
            if alerts.is_none() {
                self.problem("events", "EventBridge rules need an [alerts] topic to send to");
            }
            let role_name = self.text("events.forwarder_role", &e.forwarder_role, vars);
            self.check("events.forwarder_role", &role_name, validate::role_name);
            self.check("events.forwarder_role_path", &e.forwarder_role_path, validate::role_path);
            let role_arn = format!("arn:{partition}:iam::{account}:role{}{role_name}", e.forwarder_role_path);
            let home_bus_arn = format!("arn:{partition}:events:{home}:{account}:event-bus/default");
            vars.insert("forwarder_role_arn".into(), json!(role_arn));
            vars.insert("home_bus_arn".into(), json!(home_bus_arn));
            (role_name, role_arn, home_bus_arn, e.clone())
        });

        let agents = doc.agents.as_ref().map(|a| self.agents(a, runtime, vars));
        self.owned_names(doc, vars);

        let namespace = doc.metrics.as_ref().map(|m| m.namespace.clone()).unwrap_or_else(|| "ctguard".into());
        if !doc.alarms.is_empty() {
            if alerts.is_none() {
                self.problem("alarms", "alarms need an [alerts] topic to notify");
            }
            if doc.cloudwatch_logs.is_none() {
                self.problem("alarms", "metric filters need [cloudwatch_logs]: they watch the trail's log group");
            }
        }
        let alarms = self.alarms(&doc.alarms, &namespace, agents.as_ref(), vars);

        // Templates last, once every derived name is defined.
        let alerts = alerts.map(|(mut topics, routes, account_alias, a)| {
            for t in &mut topics {
                let mut own = vars.clone();
                own.insert("topic_name".into(), json!(t.name));
                own.insert("topic_arn".into(), json!(t.arn));
                t.policy = self.shared_document("alerts.policy", &a.policy, &own);
            }
            Alerts {
                kms: a.kms.as_ref().and_then(|k| self.topic_kms(k, vars)),
                topics,
                routes,
                account_alias,
                show_endpoints: false,
            }
        });
        if let Some(a) = &alerts {
            self.routed(a, events.as_ref().map(|e| e.3.rules.as_slice()).unwrap_or_default(), &doc.alarms);
        }
        let events = events.map(|(role_name, role_arn, home_bus_arn, e)| Events {
            forward: Vec::new(),
            central: self.central_bus(&e, runtime, &regions, vars),
            trust_policy: self.shared_document("events.forwarder_trust_policy", &e.forwarder_trust_policy, vars),
            role_policy: self.template("events.forwarder_role_policy", &e.forwarder_role_policy, vars),
            rules: {
                let counterparts = self.agent_counterparts(&e.rules, agents.as_ref(), vars);
                e.rules
                    .iter()
                    .zip(counterparts)
                    .enumerate()
                    .map(|(i, (r, except))| self.rule(&format!("events.rules[{i}]"), r, agents.as_ref(), vars, except))
                    .collect()
            },
            role_name,
            role_path: e.forwarder_role_path.clone(),
            role_arn,
            home_bus_arn,
        });
        let events = events.map(|mut e| {
            e.forward = forward_patterns(&e.rules, MAX_EVENT_PATTERN);
            e
        });
        self.unique(
            "events.rules",
            events.iter().flat_map(|e| e.rules.iter().flat_map(|r| r.parts.iter().map(|(n, _)| n.clone()))),
        );
        // ctguard's own rules in every region: a rule of the profile by either name would be
        // overwritten by them.
        let reserved = [
            crate::resources::rule::DRILL_RULE,
            crate::resources::rule::FORWARD_RULE,
            crate::resources::rule::CENTRAL_FORWARD_RULE,
        ];
        for name in events.iter().flat_map(|e| e.rules.iter().flat_map(|r| r.parts.iter().map(|(n, _)| n))) {
            if reserved.iter().any(|r| name == r || name.strip_prefix(r).is_some_and(|rest| rest.starts_with('-'))) {
                self.problem("events.rules", format!("{name:?} is the name of ctguard's own rule: choose another"));
            }
        }
        // A rule that names neither a detail-type nor an eventSource leaves other regions
        // nothing to forward by: a forwarding rule on everything is no pattern EventBridge takes.
        // Only a profile of several regions, or one sending to a central bus of another
        // account, deploys forwarding rules.
        let central = events.iter().any(|e| e.central.as_ref().is_some_and(|b| !b.owned_here()));
        let forward = events.iter().flat_map(|e| e.forward.iter()).filter(|_| regions.len() > 1 || central);
        if forward.clone().any(|f| f.as_object().is_some_and(|o| o.is_empty()) || validate::event_pattern(f).is_err()) {
            self.problem(
                "events.rules",
                "a rule's pattern names neither detail-type nor detail.eventSource, so the other regions cannot \
                 forward what it watches to the home region: add \"detail-type\" to its pattern",
            );
        }
        if !doc.bucket.eventbridge_notifications {
            let rules = events.iter().flat_map(|e| e.rules.iter()).enumerate();
            for (i, _) in rules.filter(|(_, r)| crate::detect::eventbridge::s3_events_only(&r.pattern)) {
                self.problem(
                    &format!("events.rules[{i}].pattern"),
                    "matches S3's own object events, which S3 sends EventBridge only for a bucket whose EventBridge \
                     notifications are on: set [bucket] eventbridge_notifications = true, or drop the rule",
                );
            }
        }
        if events.as_ref().is_some_and(|e| !e.rules.is_empty())
            && !matches!(&doc.profile.regions, StringOrList::One(s) if s == super::ALL_ENABLED)
        {
            self.global_region(&regions);
        }
        Alerting { agents, regions, alerts, events, alarms }
    }

    /// Events of global services (IAM, STS, Organizations, Route 53) reach EventBridge only in
    /// the partition's global region: rules that leave it out never see them, and nothing says
    /// so. `regions = "all-enabled"` always holds it (AWS enables it in every account, for good).
    /// The partition is the home region's, so the check is the same before and after STS.
    fn global_region(&mut self, regions: &[String]) {
        let Some(home) = regions.first() else { return };
        let partition = validate::partition_of(home);
        let Some(global) = validate::global_region(partition) else { return };
        if !regions.iter().any(|r| r == global) {
            self.problem(
                "profile.regions",
                format!(
                    "the EventBridge rules cover {} but not {global}: AWS delivers the events of IAM, STS, \
                     Organizations and Route 53 to EventBridge only in {global} (the global region of partition \
                     {partition}), so their alerts would never be raised; add {global:?} to profile.regions",
                    regions.join(", ")
                ),
            );
        }
    }

    /// Every severity a rule or alarm uses has a topic: its own, or the default one.
    fn routed(&mut self, alerts: &Alerts, rules: &[RuleDoc], alarms: &[AlarmDoc]) {
        let used = rules.iter().enumerate().map(|(i, r)| (format!("events.rules[{i}].severity"), r.severity));
        let used = used.chain(alarms.iter().enumerate().map(|(i, a)| (format!("alarms[{i}].severity"), a.severity)));
        for (key, severity) in used.collect::<Vec<_>>() {
            if !alerts.routes.contains_key(&severity) {
                let s = severity.as_str();
                self.problem(
                    &key,
                    format!(
                        "severity {s:?} has no topic: [alerts] declares no default `topic` and no \
                         [alerts.topics.{s}]; declare one of them"
                    ),
                );
            }
        }
    }

    /// A list of strings, from a TOML list or a placeholder naming a list variable.
    pub(super) fn list(&mut self, key: &str, raw: &StringOrList, vars: &Vars) -> Vec<String> {
        let items: Vec<Value> = match raw {
            StringOrList::None => return Vec::new(),
            StringOrList::Many(items) => items.iter().map(|s| json!(self.text(key, s, vars))).collect(),
            StringOrList::One(s) => match super::vars::substitute(s, vars) {
                Ok(Value::Array(items)) => items,
                Ok(other) => vec![other],
                Err(e) => {
                    self.problem(key, format!("{e}: define it under [variables] or pass --var {}=…", e.name));
                    return Vec::new();
                }
            },
        };
        items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                other => {
                    self.problem(key, format!("expected a list of strings, found {other}"));
                    None
                }
            })
            .collect()
    }

    fn subscription(&mut self, key: &str, s: &Subscription) {
        if !PROTOCOLS.contains(&s.protocol.as_str()) {
            self.problem(
                &format!("{key}.protocol"),
                format!("expected one of {}, got {:?}", PROTOCOLS.join(", "), s.protocol),
            );
            return;
        }
        let ok = match s.protocol.as_str() {
            "email" | "email-json" => s.endpoint.contains('@') && !s.endpoint.contains(' '),
            "https" => s.endpoint.starts_with("https://"),
            "http" => s.endpoint.starts_with("http://"),
            "sqs" => s.endpoint.starts_with("arn:") && s.endpoint.contains(":sqs:"),
            "lambda" => s.endpoint.starts_with("arn:") && s.endpoint.contains(":lambda:"),
            _ => s.endpoint.starts_with('+'),
        };
        if !ok {
            self.problem(
                &format!("{key}.endpoint"),
                format!("{:?} is not a valid {} endpoint", mask_endpoint(&s.endpoint), s.protocol),
            );
        }
    }

    /// The AWS-managed SNS key cannot be used by EventBridge or CloudWatch: its key policy
    /// does not let those services call GenerateDataKey, so every alert would be dropped.
    fn topic_kms(&mut self, k: &super::types::KmsDoc, vars: &Vars) -> Option<Kms> {
        let named = [&k.alias, &k.key_arn].into_iter().flatten().map(|v| self.text("alerts.kms", v, vars));
        for name in named.collect::<Vec<_>>() {
            if name == "alias/aws/sns" || name.ends_with(":alias/aws/sns") {
                self.problem(
                    "alerts.kms",
                    "the AWS-managed key alias/aws/sns cannot be used: EventBridge and CloudWatch may not use it, \
                     so alerts would be silently dropped; use a customer-managed key",
                );
                return None;
            }
        }
        self.kms("alerts.kms", k, vars)
    }

    /// For each rule on every principal, the agents it leaves out: the union of the restrictions
    /// of the agent rules on the same pattern template, so that an agent's call raises the agent
    /// rule's alert and not this one's too. Problems with a restriction are reported where that
    /// agent rule is resolved, not here.
    fn agent_counterparts(&self, docs: &[RuleDoc], agents: Option<&Agents>, vars: &Vars) -> Vec<Option<Restriction>> {
        let restriction = |r: &RuleDoc| {
            let principals: Vec<String> = match &r.principals {
                StringOrList::None => Vec::new(),
                StringOrList::Many(items) => items.clone(),
                StringOrList::One(s) => match super::vars::substitute(s, vars) {
                    Ok(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                    Ok(Value::String(one)) => vec![one],
                    _ => Vec::new(),
                },
            };
            let principals: Vec<String> = principals
                .into_iter()
                .filter_map(|p| match super::vars::substitute(&p, vars) {
                    Ok(Value::String(p)) if agents::check(Kind::Principals, &p).is_ok() => Some(p),
                    _ => None,
                })
                .collect();
            Restriction::new(agents.filter(|_| r.agents), &principals)
        };
        let restricted: Vec<(&str, Restriction)> = docs
            .iter()
            .filter(|r| r.agents || !matches!(r.principals, StringOrList::None))
            .map(|r| (r.pattern.as_str(), restriction(r)))
            .filter(|(_, x)| !x.is_empty())
            .collect();
        docs.iter()
            .map(|r| {
                if r.agents || !matches!(r.principals, StringOrList::None) {
                    return None;
                }
                let same: Vec<&Restriction> =
                    restricted.iter().filter(|(p, _)| *p == r.pattern).map(|(_, x)| x).collect();
                (!same.is_empty()).then(|| Restriction::union(same))
            })
            .collect()
    }

    fn rule(
        &mut self,
        key: &str,
        r: &RuleDoc,
        agents: Option<&Agents>,
        vars: &Vars,
        except: Option<Restriction>,
    ) -> Rule {
        let name = self.text(&format!("{key}.name"), &r.name, vars);
        self.check(&format!("{key}.name"), &name, validate::rule_name);
        // PutRule refuses a malformed pattern; refusing it here, with the template file and the
        // JSON path, keeps an apply from stopping halfway with earlier resources changed.
        let (mut pattern, pattern_ok) = match self.rendered(&format!("{key}.pattern"), &r.pattern, vars) {
            Some((mut doc, file)) => {
                prune_empty_branches(&mut doc);
                match validate::event_pattern(&doc) {
                    Ok(()) => (doc, true),
                    Err(e) => {
                        let message = format!("{}; in the event pattern of {key}", e.message());
                        self.problems.push(Problem { file, line: None, key: e.location().to_string(), message });
                        (doc, false)
                    }
                }
            }
            None => (Value::Null, false),
        };
        // S3's own object events carry no userIdentity: the requester is an account ID or a
        // service principal (S3 User Guide, "EventBridge event message structure").
        if pattern_ok && crate::detect::eventbridge::s3_events_only(&pattern) {
            let why = "matches S3's own object events, which name the requester by account ID or service principal, \
                       never by a role, session or user: it would match nothing";
            if r.exclude_service_calls {
                self.problem(&format!("{key}.exclude_service_calls"), why);
            }
            if r.agents || !matches!(r.principals, StringOrList::None) {
                self.problem(&format!("{key}.agents"), format!("agents and principals: the rule {why}"));
            }
        }
        if r.exclude_service_calls && r.agents {
            self.problem(
                &format!("{key}.exclude_service_calls"),
                "only for rules on every principal: an agent's call made through a service is still the agent's",
            );
        }
        let services = (r.exclude_service_calls && !r.agents).then(|| self.partition_and_account(vars));
        if pattern_ok
            && (services.is_some() || except.is_some())
            && let Err(e) = leave_out(&mut pattern, services.as_ref(), except.as_ref())
        {
            let at = if except.is_some() { "agents" } else { "exclude_service_calls" };
            self.problem(&format!("{key}.{at}"), e);
        }
        let restriction = self.restriction(key, r.agents, &r.principals, agents, vars);
        if !restriction.is_empty() {
            if let Err(e) = restrict_event_pattern(&mut pattern, restriction.event_branches()) {
                self.problem(&format!("{key}.agents"), e);
            } else if pattern_ok && let Err(e) = validate::event_pattern(&pattern) {
                // The signals become prefix, suffix and wildcard filters, which have rules of
                // their own (no `**`, a backslash escapes only `*` or `\`).
                self.problem(
                    &format!("{key}.agents"),
                    format!("as merged into the event pattern ({}): {}", e.location(), e.message()),
                );
            }
        }
        // EventBridge's "Event pattern size" quota: PutRule refuses a longer pattern, so a long
        // one is deployed in parts.
        let size = pattern.to_string().chars().count();
        let parts = if size <= MAX_EVENT_PATTERN {
            vec![(name.clone(), pattern.clone())]
        } else {
            match split_by_source(&pattern, MAX_EVENT_PATTERN) {
                Some(parts) => parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (if i == 0 { name.clone() } else { format!("{name}-{}", i + 1) }, p))
                    .collect(),
                None => {
                    if pattern_ok {
                        self.problem(
                            &format!("{key}.pattern"),
                            format!(
                                "as deployed (with the agent signals and the exclusions merged in) the event pattern \
                                 is {size} characters, more than EventBridge's {MAX_EVENT_PATTERN}-character limit, \
                                 and its top-level $or cannot be split by event source: split the template, or \
                                 declare fewer or shorter agent patterns"
                            ),
                        );
                    }
                    vec![(name.clone(), pattern.clone())]
                }
            }
        };
        for (part, _) in parts.iter().skip(1) {
            self.check(&format!("{key}.name"), part, validate::rule_name);
        }
        Rule {
            parts,
            name,
            description: self.text(&format!("{key}.description"), &r.description, vars),
            pattern,
            title: self.text(&format!("{key}.title"), &r.title, vars),
            severity: r.severity,
            restriction,
        }
    }

    fn partition_and_account(&self, vars: &Vars) -> (String, String) {
        let get = |k: &str| vars.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        (get("partition"), get("account_id"))
    }

    /// What a rule or alarm is restricted to: the `[agents]` signals when `agents = true`, and
    /// its own `principals` ARN patterns.
    fn restriction(
        &mut self,
        key: &str,
        wants_agents: bool,
        principals: &StringOrList,
        agents: Option<&Agents>,
        vars: &Vars,
    ) -> Restriction {
        let principals = self.list(&format!("{key}.principals"), principals, vars);
        let mut kept = Vec::new();
        for (i, p) in principals.into_iter().enumerate() {
            match agents::check(Kind::Principals, &p) {
                Ok(()) => kept.push(p),
                Err(why) => self.problem(&format!("{key}.principals[{i}]"), why),
            }
        }
        if wants_agents && agents.is_none_or(|a| a.signals.is_empty()) {
            self.problem(
                &format!("{key}.agents"),
                "agents = true, but the profile's [agents] section declares no signal (roles, session_names, \
                 source_identities, users, sso_permission_sets, user_agents): the detection would match no one",
            );
        }
        Restriction::new(agents.filter(|_| wants_agents), &kept)
    }

    fn alarms(&mut self, docs: &[AlarmDoc], namespace: &str, agents: Option<&Agents>, vars: &Vars) -> Vec<Alarm> {
        let alarms: Vec<Alarm> = docs
            .iter()
            .enumerate()
            .map(|(i, a)| self.alarm(&format!("alarms[{i}]"), a, namespace, agents, vars))
            .collect();
        self.unique("alarms", alarms.iter().map(|a| a.id.clone()));
        self.unique("alarms", alarms.iter().map(|a| a.name.clone()));
        alarms
    }

    fn alarm(&mut self, key: &str, a: &AlarmDoc, namespace: &str, agents: Option<&Agents>, vars: &Vars) -> Alarm {
        let name = self.text(&format!("{key}.name"), &a.name, vars);
        self.check(&format!("{key}.name"), &name, validate::alarm_name);
        self.check(&format!("{key}.metric"), &a.metric, validate::metric_name);
        let before = self.problems.len();
        let mut pattern = self.text(&format!("{key}.pattern"), &a.pattern, vars);
        // An unresolved placeholder is already reported; parsing its raw text would only add noise.
        let mut pattern_ok = self.problems.len() == before;
        if pattern_ok && let Err(e) = validate::filter_pattern(&pattern) {
            self.problem(&format!("{key}.pattern"), format!("{}: {}", e.location(), e.message()));
            pattern_ok = false;
        }
        let restriction = self.restriction(key, a.agents, &a.principals, agents, vars);
        if !restriction.is_empty() {
            match restriction.filter_clause() {
                Ok(clause) => {
                    pattern = restrict_filter_pattern(&pattern, &clause);
                    // The deployed pattern is what PutMetricFilter sees: the restriction can push
                    // it past 1024 characters.
                    if pattern_ok && let Err(e) = validate::filter_pattern(&pattern) {
                        let signals = restriction.signals.len();
                        self.problem(
                            &format!("{key}.agents"),
                            format!(
                                "with the {signals} agent signal(s) added, the filter pattern is invalid: {}: {}; \
                                 declare fewer or shorter agent patterns",
                                e.location(),
                                e.message()
                            ),
                        );
                    }
                }
                Err(refused) => {
                    for (signal, why) in refused {
                        let at = match signal.kind {
                            Kind::Principals => format!("{key}.principals"),
                            kind => format!("agents.{}", kind.key()),
                        };
                        self.problem(&at, format!("{why} (used by the metric filter of {key})"));
                    }
                }
            }
        }
        if let Err(e) = validate::alarm_period(a.period, a.evaluation_periods) {
            self.problem(&format!("{key}.period"), format!("expected {e}"));
        }
        if !a.threshold.is_finite() {
            self.problem(&format!("{key}.threshold"), "expected a finite number");
        }
        Alarm {
            id: a.id.clone(),
            name,
            metric: a.metric.clone(),
            namespace: namespace.to_string(),
            description: self.text(&format!("{key}.description"), &a.description, vars),
            pattern,
            restriction,
            threshold: a.threshold,
            comparison: a.comparison,
            period: a.period,
            evaluation_periods: a.evaluation_periods,
            severity: a.severity,
            requires_data_events: a.requires_data_events,
        }
    }

    /// The names of what ctguard manages, as list variables the event-pattern templates use to
    /// match writes to ctguard's own resources (`${ctguard_buckets}`, `${ctguard_roles}`, …).
    /// Rules, alarms and Config rules are matched by their `ctguard-` name prefix instead, which
    /// ownership already relies on and which keeps the patterns short. A name that does not
    /// resolve is left out here and reported where it is declared.
    fn owned_names(&mut self, doc: &ProfileDoc, vars: &mut Vars) {
        let text = |raw: &str, vars: &Vars| match super::vars::substitute(raw, vars) {
            Ok(Value::String(s)) => Some(s),
            _ => None,
        };
        let var = |name: &str, vars: &Vars| vars.get(name).and_then(Value::as_str).map(str::to_string);
        let list = |name: &str, vars: &Vars| -> Vec<String> {
            let items = vars.get(name).and_then(Value::as_array).cloned().unwrap_or_default();
            items.iter().filter_map(Value::as_str).map(str::to_string).collect()
        };
        let mut roles: Vec<String> = Vec::new();
        roles.extend(doc.cloudwatch_logs.as_ref().and_then(|c| text(&c.role_name, vars)));
        roles.extend(doc.events.as_ref().and_then(|e| text(&e.forwarder_role, vars)));
        let buckets: Vec<String> =
            ["bucket_name", "access_log_bucket_name"].iter().filter_map(|n| var(n, vars)).collect();
        let lists = [
            ("ctguard_roles", roles),
            ("ctguard_buckets", buckets),
            ("ctguard_trails", var("trail_name", vars).into_iter().collect()),
            ("ctguard_log_groups", var("log_group_name", vars).into_iter().collect()),
            ("ctguard_topics", list("alert_topic_arns", vars)),
            ("ctguard_kms_aliases", var("kms_alias", vars).into_iter().collect()),
        ];
        for (name, list) in lists {
            vars.insert(name.into(), json!(list));
        }
    }

    pub(super) fn unique(&mut self, key: &str, names: impl Iterator<Item = String>) {
        let mut seen = std::collections::BTreeSet::new();
        for n in names {
            if !seen.insert(n.clone()) {
                self.problem(key, format!("{n:?} is declared twice"));
            }
        }
    }
}

/// Leaves out of a rule on every principal the calls AWS services make on the account's behalf
/// (`services`: a record with `userIdentity.invokedBy`, the service that made the call, or made
/// by a session of a service-linked role, `AWSServiceRoleFor*`, which only its service can
/// assume) and the calls of the agents an agent rule on the same template covers (`agents`). A
/// record with no `userIdentity.arn` at all (a caller from another account) is kept. A template
/// that already holds a `$or` under `detail`, or tests a field left out here, is refused rather
/// than overwritten.
pub fn leave_out(
    pattern: &mut Value,
    services: Option<&(String, String)>,
    agents: Option<&Restriction>,
) -> Result<(), String> {
    let Some(obj) = pattern.as_object_mut() else { return Ok(()) };
    let detail = obj.entry("detail").or_insert_with(|| json!({}));
    let not_arn: Vec<String> = services
        .map(|(partition, account)| format!("arn:{partition}:sts::{account}:assumed-role/AWSServiceRoleFor*"))
        .into_iter()
        .collect();
    let mut fragment = agents.cloned().unwrap_or_default().exclusion(&not_arn)?;
    if services.is_some() {
        merge(&mut fragment, json!({"userIdentity": {"invokedBy": [{"exists": false}]}}), "$.detail")?;
    }
    if fragment.get("$or").is_some() && detail.get("$or").is_some() {
        return Err("the template already has a $or under detail, so the agents cannot be left out beside it; \
                    move the template's $or to the top level"
            .into());
    }
    merge(detail, fragment, "$.detail")
}

/// A pattern too long for one rule, as several: its top-level `$or` branches grouped so that no
/// event can match branches of two groups (branches are kept together when they share an event
/// source and an event name, or one of them names no event names: an event has one source and
/// one name), the groups packed into parts of at most `max` characters. `None` when the pattern
/// has no top-level `$or`, a branch names no event source list, or a group alone is too long.
pub fn split_by_source(pattern: &Value, max: usize) -> Option<Vec<Value>> {
    let obj = pattern.as_object()?;
    let branches = obj.get("$or")?.as_array()?;
    let strings = |v: Option<&Value>| -> Option<Vec<String>> {
        v?.as_array()?.iter().map(|x| x.as_str().map(str::to_string)).collect()
    };
    // Per branch: its sources, and its event names (`None`: any name).
    let mut keys: Vec<(Vec<String>, Option<Vec<String>>)> = Vec::new();
    for b in branches {
        let detail = b.get("detail")?;
        keys.push((strings(detail.get("eventSource"))?, strings(detail.get("eventName"))));
    }
    let overlap = |a: &[String], b: &[String]| a.iter().any(|x| b.contains(x));
    let together = |i: usize, j: usize| {
        let ((sa, na), (sb, nb)) = (&keys[i], &keys[j]);
        overlap(sa, sb)
            && match (na, nb) {
                (Some(na), Some(nb)) => overlap(na, nb),
                _ => true,
            }
    };
    // Connected branches, by a group number per branch.
    let mut group: Vec<usize> = (0..branches.len()).collect();
    for i in 0..branches.len() {
        for j in 0..i {
            if together(i, j) && group[i] != group[j] {
                let (from, to) = (group[i], group[j]);
                group.iter_mut().filter(|g| **g == from).for_each(|g| *g = to);
            }
        }
    }
    let mut groups: Vec<(usize, Vec<Value>)> = Vec::new();
    for (b, g) in branches.iter().zip(&group) {
        match groups.iter_mut().find(|(id, _)| id == g) {
            Some((_, members)) => members.push(b.clone()),
            None => groups.push((*g, vec![b.clone()])),
        }
    }
    let part = |members: &[Value]| -> Option<Value> {
        let mut out = obj.clone();
        out.remove("$or");
        let mut out = Value::Object(out);
        if let [only] = members {
            // `$or` needs two branches: one is merged in as plain fields.
            merge(&mut out, only.clone(), "$").ok()?;
        } else {
            out.as_object_mut()?.insert("$or".into(), Value::Array(members.to_vec()));
        }
        Some(out)
    };
    let fits = |members: &[Value]| part(members).is_some_and(|p| p.to_string().chars().count() <= max);
    let mut parts: Vec<Vec<Value>> = vec![Vec::new()];
    for (_, members) in groups {
        let current = parts.last_mut()?;
        let joined: Vec<Value> = current.iter().chain(&members).cloned().collect();
        if fits(&joined) {
            *current = joined;
        } else if fits(&members) {
            parts.push(members);
        } else {
            return None;
        }
    }
    parts.iter().map(|m| part(m)).collect()
}

/// The detail-types of CloudTrail's API calls, sign-ins and service events: the events whose
/// forward is narrowed by source and name.
const CLOUDTRAIL_CALLS: [&str; 3] =
    ["AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail", "AWS Service Event via CloudTrail"];

/// What another region forwards to the home bus: the CloudTrail calls of the sources the rules
/// name, by event name where every branch of a source lists its names, as one or more patterns
/// of at most `max` characters split by source (so no event matches two). A rule that names no
/// source makes the whole forward its detail types (or everything of the account's). Rules on
/// other events (CloudTrail Insights) share one forward by their detail types; one on S3's own
/// object events is not forwarded at all: S3 sends them only in the bucket's region, the home
/// region.
pub fn forward_patterns(rules: &[Rule], max: usize) -> Vec<Value> {
    let all = rules.iter().flat_map(|r| r.parts.iter().map(|(_, p)| p));
    let wanted = all.filter(|p| !crate::detect::eventbridge::s3_events_only(p));
    let (calls, own): (Vec<&Value>, Vec<&Value>) = wanted.partition(|p| {
        let types = p.get("detail-type").and_then(Value::as_array);
        types.is_none_or(|t| t.iter().any(|t| t.as_str().is_some_and(|t| CLOUDTRAIL_CALLS.contains(&t))))
    });
    let mut out = if calls.is_empty() { Vec::new() } else { forward_calls(&calls, max) };
    out.extend(forward_others(&own));
    out
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array()?.iter().map(|x| x.as_str().map(str::to_string)).collect()
}

/// The union of every pattern's `key` list; `None` when some pattern has none.
fn union(patterns: &[&Value], key: &str) -> Option<std::collections::BTreeSet<String>> {
    let lists: Option<Vec<Vec<String>>> = patterns.iter().map(|p| strings(p.get(key))).collect();
    lists.map(|l| l.concat().into_iter().collect())
}

/// [`forward_patterns`] for the rules on events other than CloudTrail's calls: one forward on
/// their detail types (and sources, when every rule names them). Two rules on the same events
/// would otherwise forward each event twice, and the home rules alert on each copy.
fn forward_others(patterns: &[&Value]) -> Option<Value> {
    let types = union(patterns, "detail-type").filter(|t| !t.is_empty())?;
    let mut forward = json!({ "detail-type": types });
    if let Some(sources) = union(patterns, "source") {
        forward["source"] = json!(sources);
    }
    Some(forward)
}

/// [`forward_patterns`] for the rules on CloudTrail's calls.
fn forward_calls(patterns: &[&Value], max: usize) -> Vec<Value> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut detail_types: Option<BTreeSet<String>> = Some(BTreeSet::new());
    // Per source, its event names; `None`: any name.
    let mut sources: Option<BTreeMap<String, Option<BTreeSet<String>>>> = Some(BTreeMap::new());
    for p in patterns {
        match (strings(p.get("detail-type")), detail_types.as_mut()) {
            (Some(types), Some(all)) => all.extend(types),
            _ => detail_types = None,
        }
        let top = p.get("detail");
        let branches: Vec<Option<&Value>> = match p.get("$or").and_then(Value::as_array) {
            Some(bs) => bs.iter().map(|b| b.get("detail")).collect(),
            None => vec![None],
        };
        for b in branches {
            let field = |name: &str| b.and_then(|d| d.get(name)).or_else(|| top.and_then(|d| d.get(name)));
            let (Some(names_of), Some(found)) = (sources.as_mut(), strings(field("eventSource"))) else {
                sources = None;
                continue;
            };
            let names = strings(field("eventName"));
            for source in found {
                let entry = names_of.entry(source).or_insert_with(|| Some(BTreeSet::new()));
                match (entry.as_mut(), &names) {
                    (Some(all), Some(names)) => all.extend(names.iter().cloned()),
                    _ => *entry = None,
                }
            }
        }
    }
    let mut base = serde_json::Map::new();
    if let Some(types) = &detail_types {
        base.insert("detail-type".into(), json!(types));
    }
    let Some(sources) = sources else {
        // Some branch names no eventSource: narrow by the patterns' own `source` lists when
        // every pattern has one, so the forward never becomes every event.
        if let Some(top) = union(patterns, "source").filter(|t| !t.is_empty()) {
            base.insert("source".into(), json!(top));
        }
        return vec![Value::Object(base)];
    };
    let branch = |source: &str, names: Option<&BTreeSet<String>>| match names {
        Some(n) => json!({"detail": {"eventSource": [source], "eventName": n}}),
        None => json!({"detail": {"eventSource": [source]}}),
    };
    let part = |members: &[Value]| -> Value {
        let mut out = base.clone();
        match members {
            [only] => {
                out.insert("detail".into(), only["detail"].clone());
            }
            many => {
                out.insert("$or".into(), Value::Array(many.to_vec()));
            }
        }
        Value::Object(out)
    };
    let size = |members: &[Value]| part(members).to_string().chars().count();
    let mut parts: Vec<Vec<Value>> = vec![Vec::new()];
    for (source, names) in &sources {
        let mut b = branch(source, names.as_ref());
        if size(std::slice::from_ref(&b)) > max {
            // Too many names for one rule: every call of the source is forwarded.
            b = branch(source, None);
        }
        let current = parts.last_mut().expect("never empty");
        current.push(b);
        if size(current) > max {
            let b = current.pop().expect("just pushed");
            parts.push(vec![b]);
        }
    }
    parts.iter().filter(|m| !m.is_empty()).map(|m| part(m)).collect()
}

/// ANDs an agent clause (`(a) || (b)`) onto a JSON filter pattern `{ ... }`.
pub fn restrict_filter_pattern(pattern: &str, clause: &str) -> String {
    let inner = pattern.trim().trim_start_matches('{').trim_end_matches('}').trim();
    format!("{{ ({inner}) && ({clause}) }}")
}

/// ANDs the agent branches onto an event pattern: one branch is merged into `detail`, several
/// become a `$or` under `detail` (EventBridge refuses a `$or` of one branch). The template's own
/// top-level `$or` stays as it is: fields are ANDed, so every combination must hold.
pub fn restrict_event_pattern(pattern: &mut Value, mut branches: Vec<Value>) -> Result<(), String> {
    let Some(obj) = pattern.as_object_mut() else { return Ok(()) };
    let detail = obj.entry("detail").or_insert_with(|| json!({}));
    if branches.len() == 1 {
        return merge(detail, branches.remove(0), "$.detail");
    }
    let Some(detail) = detail.as_object_mut() else { return Err("the template's detail is not an object".into()) };
    if detail.contains_key("$or") {
        return Err("the template already has a $or under detail, so the agent signals cannot be added beside it; \
                    move the template's $or to the top level"
            .into());
    }
    detail.insert("$or".into(), Value::Array(branches));
    Ok(())
}

fn merge(into: &mut Value, add: Value, at: &str) -> Result<(), String> {
    let (Some(into), Value::Object(add)) = (into.as_object_mut(), add) else {
        return Err(format!("{at}: the template already matches this field, so the agent signal cannot be added"));
    };
    for (k, v) in add {
        match into.get_mut(&k) {
            None => {
                into.insert(k, v);
            }
            Some(existing) => merge(existing, v, &format!("{at}.{k}"))?,
        }
    }
    Ok(())
}

/// Drops every `$or` branch that holds an empty list: a placeholder list that resolved to no
/// names (no KMS alias, no Config rules) matches nothing, and EventBridge refuses `[]`.
pub fn prune_empty_branches(pattern: &mut Value) {
    fn has_empty_list(v: &Value) -> bool {
        match v {
            Value::Array(items) => items.is_empty() || items.iter().any(has_empty_list),
            Value::Object(map) => map.values().any(has_empty_list),
            _ => false,
        }
    }
    match pattern {
        Value::Object(map) => {
            if let Some(Value::Array(branches)) = map.get_mut("$or") {
                let before = branches.len();
                branches.retain(|b| !has_empty_list(b));
                // Only a `$or` this pruning shrank is collapsed: a template's own one-branch
                // `$or` is left for validation to refuse, as EventBridge would.
                if branches.len() == 1 && before > 1 {
                    // One branch left: `$or` needs two, and one branch is just its fields.
                    let only = branches.remove(0);
                    map.remove("$or");
                    if let Value::Object(fields) = only {
                        for (k, v) in fields {
                            if let Some(existing) = map.get_mut(&k) {
                                let _ = merge(existing, v, "$");
                            } else {
                                map.insert(k, v);
                            }
                        }
                    }
                }
            }
            map.values_mut().for_each(prune_empty_branches);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_empty_branches),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_endpoints_are_masked_to_scheme_and_host_and_told_apart_by_hash() {
        let a = label("https", "https://hooks.slack.com/services/T000/B000/SECRETa", false);
        let b = label("https", "https://hooks.slack.com/services/T000/B000/SECRETb", false);
        assert!(a.starts_with("https:https://hooks.slack.com/\u{2026} ["), "{a}");
        assert!(!a.contains("SECRET") && !a.contains("services"), "{a}");
        assert_ne!(a, b, "two secret URLs on one host must stay apart");
        assert_eq!(a, label("https", "https://hooks.slack.com/services/T000/B000/SECRETa", false), "stable");
        let creds = label("http", "http://user:pw@pager.example:8080/hook?token=t0ken", false);
        assert!(creds.starts_with("http:http://pager.example:8080/\u{2026} ["), "{creds}");
        assert!(!creds.contains("pw") && !creds.contains("t0ken"), "{creds}");
        assert!(!mask_endpoint("not a url SECRET").contains("SECRET"));
        // Emails, queues and functions are not secrets; --show-endpoints shows everything.
        assert_eq!(label("email", "sec@example.com", false), "email:sec@example.com");
        assert_eq!(label("https", "https://h.example/SECRET", true), "https:https://h.example/SECRET");
    }

    #[test]
    fn other_regions_forward_calls_by_source_insights_once_and_no_s3_object_events() {
        let runtime = crate::profile::Runtime::placeholder("us-east-1");
        let profile = crate::profile::load("ai-agent-guard").unwrap().resolve(&runtime, &Default::default()).unwrap();
        let forward = &profile.events.as_ref().unwrap().forward;
        let insight = json!({"source": ["aws.cloudtrail"], "detail-type": ["AWS Insight via CloudTrail"]});
        let matching = |event: &Value| {
            forward
                .iter()
                .filter(|p| crate::detect::eventbridge::EventPattern::parse(p).unwrap().matches(event))
                .count()
        };
        assert_eq!(matching(&insight), 1, "{forward:#?}");
        let deleted =
            json!({"source": "aws.s3", "detail-type": "Object Deleted", "detail": {"reason": "DeleteObject"}});
        assert_eq!(matching(&deleted), 0, "S3 sends its object events only in the bucket's region");
        let quiet = json!({"source": "aws.ec2", "detail-type": "AWS API Call via CloudTrail",
            "detail": {"eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances"}});
        assert_eq!(matching(&quiet), 0, "calls no rule names stay in their region");
    }

    #[test]
    fn two_rules_on_insights_forward_each_insight_once() {
        let rule = |name: &str, insight: &str| {
            let pattern = json!({"source": ["aws.cloudtrail"], "detail-type": ["AWS Insight via CloudTrail"],
                                 "detail": {"insightDetails": {"insightType": [insight]}}});
            Rule {
                name: name.to_string(),
                description: String::new(),
                pattern: pattern.clone(),
                title: name.to_string(),
                severity: crate::profile::Severity::High,
                restriction: Default::default(),
                parts: vec![(name.to_string(), pattern)],
            }
        };
        let rules = [rule("rate", "ApiCallRateInsight"), rule("errors", "ApiErrorRateInsight")];
        let forward = forward_patterns(&rules, MAX_EVENT_PATTERN);
        assert_eq!(
            forward,
            vec![json!({"source": ["aws.cloudtrail"], "detail-type": ["AWS Insight via CloudTrail"]})],
            "one forward, not one per rule"
        );
        let calls = json!({"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"],
                           "detail": {"eventSource": ["iam.amazonaws.com"], "eventName": ["DeleteRole"]}});
        let only_calls = Rule { parts: vec![("calls".into(), calls.clone())], pattern: calls, ..rules[0].clone() };
        let forward = forward_patterns(&[only_calls], MAX_EVENT_PATTERN);
        assert_eq!(forward.len(), 1, "rules on calls only: no forward for other events: {forward:#?}");
    }

    #[test]
    fn an_agent_clause_is_anded_onto_a_filter_pattern() {
        let p = restrict_filter_pattern("{ $.errorCode = \"AccessDenied\" }", "(a) || (b)");
        assert_eq!(p, "{ ($.errorCode = \"AccessDenied\") && ((a) || (b)) }");
    }

    #[test]
    fn agent_branches_join_the_template_under_detail() {
        let mut p =
            json!({"source": ["aws.ec2"], "$or": [{"detail": {"eventName": ["A"]}}, {"detail": {"eventName": ["B"]}}]});
        restrict_event_pattern(
            &mut p,
            vec![json!({"userAgent": ["x"]}), json!({"userIdentity": {"type": ["IAMUser"]}})],
        )
        .unwrap();
        assert_eq!(p["detail"]["$or"].as_array().unwrap().len(), 2);
        let mut one = json!({"detail": {"eventName": ["A"], "userIdentity": {"type": ["Root"]}}});
        let e = restrict_event_pattern(&mut one, vec![json!({"userIdentity": {"type": ["IAMUser"]}})]).unwrap_err();
        assert!(e.contains("$.detail.userIdentity.type"), "{e}");
    }

    #[test]
    fn service_calls_are_left_out_beside_the_template_never_over_it() {
        let scope = ("aws".to_string(), "123456789012".to_string());
        let mut p = json!({"source": ["aws.ec2"], "detail": {"eventName": ["TerminateInstances"]}});
        leave_out(&mut p, Some(&scope), None).unwrap();
        assert_eq!(p["detail"]["userIdentity"]["invokedBy"], json!([{"exists": false}]));
        assert_eq!(
            p["detail"]["userIdentity"]["arn"],
            json!([{"anything-but": {"prefix": "arn:aws:sts::123456789012:assumed-role/AWSServiceRoleFor"}}, {"exists": false}])
        );
        let mut invoked = json!({"detail": {"userIdentity": {"invokedBy": ["backup.amazonaws.com"]}}});
        assert!(leave_out(&mut invoked, Some(&scope), None).is_err());
    }

    #[test]
    fn a_templates_own_single_branch_or_is_left_for_validation() {
        let mut p = json!({"detail": {"$or": [{"eventName": ["StopLogging"]}]}});
        prune_empty_branches(&mut p);
        assert_eq!(p["detail"]["$or"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_branch_with_an_empty_list_is_dropped() {
        let mut p = json!({"$or": [
            {"detail": {"eventName": ["A"], "requestParameters": {"aliasName": []}}},
            {"detail": {"eventName": ["B"]}},
            {"detail": {"eventName": ["C"]}}
        ]});
        prune_empty_branches(&mut p);
        assert_eq!(p["$or"].as_array().unwrap().len(), 2);
        let mut q = json!({"source": ["aws.kms"], "$or": [{"detail": {"a": []}}, {"detail": {"b": ["x"]}}]});
        prune_empty_branches(&mut q);
        assert_eq!(q, json!({"source": ["aws.kms"], "detail": {"b": ["x"]}}));
    }
}
