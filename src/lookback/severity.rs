//! How serious an event is: the severity of the detections it fires that alert on a single
//! event, or, where none does (or its class says more), its class in the profile's
//! `[[severity_classes]]`, one tier up when the call failed.

use serde_json::Value;

use crate::detect::catalog::{Catalog, Kind};
use crate::profile::classes::SeverityClass;
use crate::profile::{Comparison, Profile, Severity};
use crate::wildcard::star as wildcard;

/// Every severity, lowest first.
pub const SEVERITIES: [Severity; 4] = [Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

pub fn rank(s: Severity) -> usize {
    SEVERITIES.iter().position(|x| *x == s).unwrap_or(0)
}

/// One tier up; critical stays critical.
pub fn bump(s: Severity) -> Severity {
    SEVERITIES[(rank(s) + 1).min(SEVERITIES.len() - 1)]
}

pub fn parse(text: &str) -> Option<Severity> {
    SEVERITIES.into_iter().find(|s| s.as_str() == text)
}

/// Where an event's severity came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Basis {
    /// The most severe detection that alerts on this one event.
    Detection { id: String },
    /// The event's class; `bumped` when the call failed and the class's severity was raised.
    Class { class: String, bumped: bool },
    /// No detection and no class: low, raised when the call failed.
    Unclassified { bumped: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub severity: Severity,
    pub basis: Basis,
    /// Indexes into the catalog of every detection the event fires.
    pub fired: Vec<usize>,
}

/// Rates events with a profile's detections and classes.
pub struct Assessor<'a> {
    pub catalog: &'a Catalog,
    /// Per detection: whether one matching event is an alert by itself (every rule; an alarm
    /// whose threshold one count crosses). A match of the others is one count towards an alarm.
    pub alerts: Vec<bool>,
    classes: &'a [SeverityClass],
}

impl<'a> Assessor<'a> {
    pub fn new(catalog: &'a Catalog, profile: &'a Profile) -> Self {
        let alerts = catalog
            .detections
            .iter()
            .map(|d| match d.kind {
                Kind::Rule => true,
                Kind::Alarm => profile.alarms.iter().find(|a| a.id == d.id).is_some_and(|a| match a.comparison {
                    Comparison::GreaterThanOrEqualToThreshold => a.threshold <= 1.0,
                    Comparison::GreaterThanThreshold => a.threshold < 1.0,
                    _ => false,
                }),
            })
            .collect();
        Assessor { catalog, alerts, classes: &profile.severity_classes }
    }

    /// Rates `record`, handing it back (matching moves it into an envelope and out again).
    pub fn assess(&self, record: Value) -> (Assessment, Value) {
        let (fired, record) = self.catalog.evaluate(record);
        let strongest = fired
            .iter()
            .filter(|&&i| self.alerts.get(i).copied().unwrap_or(false))
            .filter_map(|&i| {
                let d = &self.catalog.detections[i];
                Some((parse(&d.severity)?, d))
            })
            // The first of the most severe, in catalog order (rules before alarms).
            .min_by_key(|(s, _)| std::cmp::Reverse(rank(*s)));
        let failed = record.get("errorCode").and_then(Value::as_str).is_some_and(|c| !c.is_empty());
        let raise = |s: Severity| if failed { bump(s) } else { s };
        let (class_severity, class_basis) = match self.classes.iter().find(|c| belongs(c, &record)) {
            Some(c) => (raise(c.severity), Basis::Class { class: c.name.clone(), bumped: failed }),
            None => (raise(Severity::Low), Basis::Unclassified { bumped: failed }),
        };
        // A detection decides, unless the event's class says more: CIS 4.1 counts every denied
        // call as low, and must not make a denied CreateAccessKey less serious than its class.
        let (severity, basis) = match strongest {
            Some((s, d)) if rank(s) >= rank(class_severity) => (s, Basis::Detection { id: d.id.clone() }),
            _ => (class_severity, class_basis),
        };
        (Assessment { severity, basis, fired }, record)
    }
}

fn belongs(class: &SeverityClass, record: &Value) -> bool {
    let text = |key: &str| record.get(key).and_then(Value::as_str).unwrap_or("");
    let (name, source) = (text("eventName"), text("eventSource"));
    let event_ok =
        class.events.iter().any(|e| wildcard(&e.name, name) && e.source.as_deref().is_none_or(|s| wildcard(s, source)));
    // readOnly is a boolean in log files; accept the string form too.
    let read_only = match record.get("readOnly") {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let kind = record.get("userIdentity").and_then(|i| i.get("type")).and_then(Value::as_str).unwrap_or("");
    event_ok
        && class.read_only.is_none_or(|want| read_only == Some(want))
        && (class.principal_types.is_empty() || class.principal_types.iter().any(|t| t == kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{self, Runtime, vars::Vars};
    use serde_json::json;

    fn profile() -> Profile {
        let runtime = Runtime::placeholder("us-east-1");
        let runtime = Runtime { account_id: "123456789012".into(), ..runtime };
        profile::load("ai-agent-guard").unwrap().resolve(&runtime, &Vars::new()).unwrap()
    }

    fn record(source: &str, name: &str, read_only: bool, error: Option<&str>, kind: &str) -> Value {
        let arn = match kind {
            "Root" => "arn:aws:iam::123456789012:root".to_string(),
            _ => "arn:aws:iam::123456789012:user/alice".to_string(),
        };
        let mut r = json!({"eventVersion": "1.09", "eventSource": source, "eventName": name, "readOnly": read_only,
            "awsRegion": "us-east-1", "eventType": "AwsApiCall", "eventTime": "2026-11-27T10:00:00Z",
            "recipientAccountId": "123456789012", "sourceIPAddress": "198.51.100.7",
            "userIdentity": {"type": kind, "arn": arn, "accountId": "123456789012"}});
        if let Some(code) = error {
            r["errorCode"] = json!(code);
        }
        r
    }

    #[test]
    fn classes_decide_where_no_detection_alerts() {
        let profile = profile();
        let catalog = profile.catalog().unwrap();
        let assessor = Assessor::new(&catalog, &profile);
        let rate = |r: Value| assessor.assess(r).0;

        // A detection that alerts on one event decides: StopLogging fires the tampering rule.
        let a = rate(record("cloudtrail.amazonaws.com", "StopLogging", false, None, "IAMUser"));
        assert_eq!(
            (a.severity, a.basis),
            (Severity::Critical, Basis::Detection { id: "ctguard-monitoring-tampering".into() })
        );

        // A new access key is persistence: the rule for it decides, not the IAM class.
        let a = rate(record("iam.amazonaws.com", "CreateAccessKey", false, None, "IAMUser"));
        assert_eq!((a.severity, a.basis), (Severity::High, Basis::Detection { id: "ctguard-persistence".into() }));

        let cases = [
            (record("iam.amazonaws.com", "TagUser", false, None, "IAMUser"), Severity::Medium, "IAM changes", false),
            (
                record("iam.amazonaws.com", "TagUser", false, Some("AccessDenied"), "IAMUser"),
                Severity::High,
                "IAM changes",
                true,
            ),
            (
                record("iam.amazonaws.com", "ListAccessKeys", true, None, "IAMUser"),
                Severity::Low,
                "read-only reconnaissance",
                false,
            ),
            (
                record("organizations.amazonaws.com", "EnableAWSServiceAccess", false, None, "IAMUser"),
                Severity::High,
                "organization changes",
                false,
            ),
            (
                record("ec2.amazonaws.com", "ModifyVpcEndpoint", false, None, "IAMUser"),
                Severity::Medium,
                "network changes",
                false,
            ),
        ];
        for (r, severity, class, bumped) in cases {
            let name = r["eventName"].clone();
            let a = rate(r);
            assert_eq!(a.severity, severity, "{name}");
            assert_eq!(a.basis, Basis::Class { class: class.into(), bumped }, "{name}");
        }
        // Root use: CIS 4.3 (critical here) alerts on it; where it does not (a call a service
        // made as root), the class rates it.
        let a = rate(record("s3.amazonaws.com", "ListBuckets", true, None, "Root"));
        assert_eq!((a.severity, a.basis), (Severity::Critical, Basis::Detection { id: "cis-4.3".into() }));
        let mut by_service = record("s3.amazonaws.com", "ListBuckets", true, None, "Root");
        by_service["userIdentity"]["invokedBy"] = json!("support.amazonaws.com");
        let a = rate(by_service);
        assert_eq!((a.severity, a.basis), (Severity::High, Basis::Class { class: "root use".into(), bumped: false }));
        // A denied call: CIS 4.1 alerts (low), but the class, raised, says more.
        let a = rate(record("iam.amazonaws.com", "CreateAccessKey", false, Some("AccessDenied"), "IAMUser"));
        assert!(a.fired.contains(&catalog.detections.iter().position(|d| d.id == "cis-4.1").unwrap()));
        // In no class: low, one tier up when it failed.
        let a =
            rate(record("ec2.amazonaws.com", "RunInstances", false, Some("Client.UnauthorizedOperation"), "IAMUser"));
        assert_eq!((a.severity, a.basis), (Severity::Medium, Basis::Unclassified { bumped: true }));
    }

    #[test]
    fn a_count_towards_an_alarm_is_not_an_alert() {
        let profile = profile();
        let catalog = profile.catalog().unwrap();
        let assessor = Assessor::new(&catalog, &profile);
        let mut r = record("s3.amazonaws.com", "ListBuckets", true, None, "AssumedRole");
        r["userIdentity"]["arn"] = json!("arn:aws:sts::123456789012:assumed-role/AIAgent-ops/s1");
        let (a, _) = assessor.assess(r);
        // The agent call-volume alarm counts it (threshold 500), but it alerts on nothing alone.
        let volume = catalog.detections.iter().position(|d| d.id == "agent-api-call-volume").unwrap();
        assert!(a.fired.contains(&volume));
        assert_eq!(a.severity, Severity::Low);
        assert_eq!(bump(Severity::Critical), Severity::Critical);
    }
}
