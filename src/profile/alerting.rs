//! The alerting part of a profile: the SNS topic and its subscriptions, the EventBridge rules
//! in every region, and the metric filters with their alarms.

use serde_json::{Value, json};

use super::types::{AlarmDoc, Comparison, ProfileDoc, RuleDoc, Severity, StringOrList};
use super::vars::Vars;
use super::{Kms, Problem, Resolver, Runtime, validate};

#[derive(Debug, Clone)]
pub struct Alerts {
    pub topic: String,
    pub topic_arn: String,
    pub policy: Value,
    pub kms: Option<Kms>,
    pub subscriptions: Vec<Subscription>,
    /// Whether outputs show endpoints in full (`--show-endpoints`); otherwise they show
    /// `Subscription::label`'s masked form. Set by the command, never by the profile.
    pub show_endpoints: bool,
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
}

/// An EventBridge rule. The same rule is deployed in every region of the profile.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub description: String,
    /// The pattern as deployed: the template, with any principal restriction merged in.
    pub pattern: Value,
    pub title: String,
    pub severity: Severity,
}

/// A metric filter on the trail's log group and the alarm on its metric.
#[derive(Debug, Clone)]
pub struct Alarm {
    pub id: String,
    pub name: String,
    pub metric: String,
    pub namespace: String,
    pub description: String,
    /// The filter pattern as deployed, with any principal restriction merged in.
    pub pattern: String,
    pub threshold: f64,
    pub comparison: Comparison,
    pub period: i32,
    pub evaluation_periods: i32,
    pub severity: Severity,
    pub requires_data_events: bool,
}

pub(super) struct Alerting {
    pub regions: Vec<String>,
    pub alerts: Option<Alerts>,
    pub events: Option<Events>,
    pub alarms: Vec<Alarm>,
}

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
            let topic = self.text("alerts.topic", &a.topic, vars);
            self.check("alerts.topic", &topic, validate::topic_name);
            let topic_arn = format!("arn:{partition}:sns:{home}:{account}:{topic}");
            vars.insert("topic_name".into(), json!(topic));
            vars.insert("topic_arn".into(), json!(topic_arn));
            let subscriptions = a
                .subscriptions
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let key = format!("alerts.subscriptions[{i}]");
                    let sub = Subscription {
                        protocol: self.text(&format!("{key}.protocol"), &s.protocol, vars),
                        endpoint: self.text(&format!("{key}.endpoint"), &s.endpoint, vars),
                    };
                    self.subscription(&key, &sub);
                    sub
                })
                .collect();
            (topic, topic_arn, a.clone(), subscriptions)
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

        let namespace = doc.metrics.as_ref().map(|m| m.namespace.clone()).unwrap_or_else(|| "ctguard".into());
        if !doc.alarms.is_empty() {
            if alerts.is_none() {
                self.problem("alarms", "alarms need an [alerts] topic to notify");
            }
            if doc.cloudwatch_logs.is_none() {
                self.problem("alarms", "metric filters need [cloudwatch_logs]: they watch the trail's log group");
            }
        }
        let alarms = self.alarms(&doc.alarms, &namespace, vars);

        // Templates last, once every derived name is defined.
        let alerts = alerts.map(|(topic, topic_arn, a, subscriptions)| Alerts {
            policy: self.shared_document("alerts.policy", &a.policy, vars),
            kms: a.kms.as_ref().and_then(|k| self.topic_kms(k, vars)),
            topic,
            topic_arn,
            subscriptions,
            show_endpoints: false,
        });
        let events = events.map(|(role_name, role_arn, home_bus_arn, e)| Events {
            trust_policy: self.shared_document("events.forwarder_trust_policy", &e.forwarder_trust_policy, vars),
            role_policy: self.template("events.forwarder_role_policy", &e.forwarder_role_policy, vars),
            rules: e.rules.iter().enumerate().map(|(i, r)| self.rule(&format!("events.rules[{i}]"), r, vars)).collect(),
            role_name,
            role_path: e.forwarder_role_path.clone(),
            role_arn,
            home_bus_arn,
        });
        self.unique("events.rules", events.iter().flat_map(|e| e.rules.iter().map(|r| r.name.clone())));
        if events.as_ref().is_some_and(|e| !e.rules.is_empty())
            && !matches!(&doc.profile.regions, StringOrList::One(s) if s == super::ALL_ENABLED)
        {
            self.global_region(&regions);
        }
        Alerting { regions, alerts, events, alarms }
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

    /// A list of strings, from a TOML list or a placeholder naming a list variable.
    fn list(&mut self, key: &str, raw: &StringOrList, vars: &Vars) -> Vec<String> {
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

    fn rule(&mut self, key: &str, r: &RuleDoc, vars: &Vars) -> Rule {
        let name = self.text(&format!("{key}.name"), &r.name, vars);
        self.check(&format!("{key}.name"), &name, validate::rule_name);
        // PutRule refuses a malformed pattern; refusing it here, with the template file and the
        // JSON path, keeps an apply from stopping halfway with earlier resources changed.
        let (mut pattern, pattern_ok) = match self.rendered(&format!("{key}.pattern"), &r.pattern, vars) {
            Some((doc, file)) => match validate::event_pattern(&doc) {
                Ok(()) => (doc, true),
                Err(e) => {
                    let message = format!("{}; in the event pattern of {key}", e.message());
                    self.problems.push(Problem { file, line: None, key: e.location().to_string(), message });
                    (doc, false)
                }
            },
            None => (Value::Null, false),
        };
        let principals = self.list(&format!("{key}.principals"), &r.principals, vars);
        self.principals(&format!("{key}.principals"), &principals);
        if !principals.is_empty()
            && let Some(obj) = pattern.as_object_mut()
        {
            // EventBridge's wildcard filter matches `*` anywhere in the ARN.
            let arns: Vec<Value> = principals.iter().map(|p| json!({ "wildcard": p })).collect();
            let detail = obj.entry("detail").or_insert_with(|| json!({}));
            detail["userIdentity"] = json!({ "arn": arns });
            // The principals become wildcard values, which have rules of their own (no `**`,
            // a backslash escapes only `*` or `\`).
            if pattern_ok && let Err(e) = validate::event_pattern(&pattern) {
                self.problem(
                    &format!("{key}.principals"),
                    format!("as the wildcard filter added to the event pattern ({}): {}", e.location(), e.message()),
                );
            }
        }
        Rule {
            name,
            description: self.text(&format!("{key}.description"), &r.description, vars),
            pattern,
            title: self.text(&format!("{key}.title"), &r.title, vars),
            severity: r.severity,
        }
    }

    fn principals(&mut self, key: &str, principals: &[String]) {
        for p in principals {
            if !p.starts_with("arn:") {
                self.problem(
                    key,
                    format!("expected principal ARN patterns like arn:aws:iam::*:role/AIAgent*, got {p:?}"),
                );
            }
        }
    }

    /// In a metric filter a `*` is a wildcard only at the start or end of a value ("Ev*ent will
    /// only match the actual string Ev*ent", Filter pattern syntax): a principal with a `*`
    /// inside would be compared literally and the alarm would never fire.
    fn filter_principals(&mut self, key: &str, principals: &[String]) {
        for p in principals {
            let inner = p.trim_start_matches('*').trim_end_matches('*');
            if inner.contains('*') {
                self.problem(
                    key,
                    format!(
                        "{p:?}: a metric filter treats '*' as a wildcard only at the start or end of the value, \
                         so this would match only a literal '*'; expected a pattern like arn:aws:iam::123456789012:role/AIAgent*"
                    ),
                );
            }
        }
    }

    fn alarms(&mut self, docs: &[AlarmDoc], namespace: &str, vars: &Vars) -> Vec<Alarm> {
        let alarms: Vec<Alarm> =
            docs.iter().enumerate().map(|(i, a)| self.alarm(&format!("alarms[{i}]"), a, namespace, vars)).collect();
        self.unique("alarms", alarms.iter().map(|a| a.id.clone()));
        self.unique("alarms", alarms.iter().map(|a| a.name.clone()));
        alarms
    }

    fn alarm(&mut self, key: &str, a: &AlarmDoc, namespace: &str, vars: &Vars) -> Alarm {
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
        let principals = self.list(&format!("{key}.principals"), &a.principals, vars);
        self.principals(&format!("{key}.principals"), &principals);
        self.filter_principals(&format!("{key}.principals"), &principals);
        if !principals.is_empty() {
            pattern = restrict_to_principals(&pattern, &principals);
            // The deployed pattern is what PutMetricFilter sees: the restriction can push it past
            // 1024 characters, or a principal holding '"' can break its quoting.
            if pattern_ok && let Err(e) = validate::filter_pattern(&pattern) {
                self.problem(
                    &format!("{key}.principals"),
                    format!(
                        "with the principal restriction added, the filter pattern is invalid: {}: {}",
                        e.location(),
                        e.message()
                    ),
                );
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
            threshold: a.threshold,
            comparison: a.comparison,
            period: a.period,
            evaluation_periods: a.evaluation_periods,
            severity: a.severity,
            requires_data_events: a.requires_data_events,
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

/// ANDs a principal restriction onto a JSON filter pattern `{ ... }`.
pub fn restrict_to_principals(pattern: &str, principals: &[String]) -> String {
    let inner = pattern.trim().trim_start_matches('{').trim_end_matches('}').trim();
    let who: Vec<String> = principals.iter().map(|p| format!("($.userIdentity.arn = \"{p}\")")).collect();
    format!("{{ ({inner}) && ({}) }}", who.join(" || "))
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
    fn principal_restriction_is_anded() {
        let p = restrict_to_principals(
            "{ $.errorCode = \"AccessDenied\" }",
            &["arn:aws:iam::*:role/Agent*".into(), "arn:aws:sts::*:assumed-role/Agent*".into()],
        );
        assert_eq!(
            p,
            "{ ($.errorCode = \"AccessDenied\") && (($.userIdentity.arn = \"arn:aws:iam::*:role/Agent*\") || ($.userIdentity.arn = \"arn:aws:sts::*:assumed-role/Agent*\")) }"
        );
    }
}
