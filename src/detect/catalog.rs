//! A profile's detections as deployed, parsed once for matching: every EventBridge rule (the
//! same pattern in every region) and every metric filter that feeds an alarm.
//!
//! Rules see the EventBridge event a record becomes ([`into_envelope`]); metric filters see the
//! raw record, which is what the trail writes to its log group.

use serde_json::Value;

use crate::detect::PatternError;
use crate::detect::agents::{Attribution, Matched, Restriction};
use crate::detect::eventbridge::{EventPattern, insights_only, into_envelope, is_event, service_events_only};
use crate::detect::logfilter::FilterPattern;

/// What a detection is deployed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Rule,
    Alarm,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Rule => "rule",
            Kind::Alarm => "alarm",
        }
    }
}

/// Where a match goes once it fires.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Feed {
    /// The rule's target: the alert topic (other regions forward to the home bus first).
    Topic { topic: Option<String> },
    /// One count on the metric; the alarm notifies the topic once the threshold is crossed.
    Metric { namespace: String, metric: String, alarm: String, condition: String, topic: Option<String> },
}

/// One deployed detection.
#[derive(Debug, Clone)]
pub struct Detection {
    /// The rule name or the alarm id, as in the profile and under tests/detections/samples.
    pub id: String,
    pub kind: Kind,
    pub severity: String,
    pub feed: Feed,
    /// The pattern as deployed.
    pub text: String,
    /// The agent signals the pattern is restricted to (none for a detection on everyone).
    pub signals: Vec<crate::detect::agents::Signal>,
    /// A rule on events a service sends EventBridge itself (S3's "Object Deleted"): no
    /// CloudTrail record matches it, only such events do.
    pub service_events: bool,
    /// A rule on CloudTrail Insights events only, which a trail delivers apart from the API calls.
    pub insights: bool,
    matcher: Matcher,
    attribution: Option<Attribution>,
}

/// A detection's parsed pattern, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum Pattern<'a> {
    Rule(&'a EventPattern),
    Alarm(&'a FilterPattern),
}

#[derive(Debug, Clone)]
enum Matcher {
    Rule(EventPattern),
    Alarm(FilterPattern),
}

/// A detection whose deployed pattern does not parse, with what is wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind} {id}: {error}", kind = kind.as_str())]
pub struct Rejected {
    pub id: String,
    pub kind: Kind,
    pub error: PatternError,
}

impl Detection {
    pub fn rule(id: &str, pattern: &Value, severity: &str, topic: Option<&str>) -> Result<Detection, Rejected> {
        let matcher =
            EventPattern::parse(pattern).map_err(|error| Rejected { id: id.to_string(), kind: Kind::Rule, error })?;
        Ok(Detection {
            id: id.to_string(),
            kind: Kind::Rule,
            severity: severity.to_string(),
            feed: Feed::Topic { topic: topic.map(str::to_string) },
            text: pattern.to_string(),
            signals: Vec::new(),
            service_events: service_events_only(pattern),
            insights: insights_only(pattern),
            matcher: Matcher::Rule(matcher),
            attribution: None,
        })
    }

    pub fn alarm(id: &str, pattern: &str, severity: &str, feed: Feed) -> Result<Detection, Rejected> {
        let matcher =
            FilterPattern::parse(pattern).map_err(|error| Rejected { id: id.to_string(), kind: Kind::Alarm, error })?;
        Ok(Detection {
            id: id.to_string(),
            kind: Kind::Alarm,
            severity: severity.to_string(),
            feed,
            text: pattern.to_string(),
            signals: Vec::new(),
            service_events: false,
            insights: false,
            matcher: Matcher::Alarm(matcher),
            attribution: None,
        })
    }

    /// The parsed pattern, for compilers that translate it (`ctguard hunt`).
    pub fn pattern(&self) -> Pattern<'_> {
        match &self.matcher {
            Matcher::Rule(p) => Pattern::Rule(p),
            Matcher::Alarm(p) => Pattern::Alarm(p),
        }
    }

    /// The same detection, knowing the agent signals its pattern was restricted to, so a
    /// match can say which signal made the caller an agent.
    pub fn restricted_to(mut self, restriction: &Restriction) -> Detection {
        if !restriction.is_empty() {
            self.signals = restriction.signals.clone();
            self.attribution = Some(restriction.compile());
        }
        self
    }

    /// Whether this detection fires only for agents.
    pub fn is_agent_only(&self) -> bool {
        self.attribution.is_some()
    }

    /// Whether this detection fires on `record` (a CloudTrail record) whose envelope is `event`.
    pub fn fires(&self, record: &Value, event: &Value) -> bool {
        match &self.matcher {
            Matcher::Rule(p) => p.matches(event),
            Matcher::Alarm(p) => p.matches(record),
        }
    }
}

/// Every detection of a profile, in profile order: rules first, then alarms.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub detections: Vec<Detection>,
}

impl Catalog {
    /// Indexes of the detections that fire on `record`, and the record back. Rules match the
    /// envelope built around the record, which is moved in and out rather than copied. An
    /// EventBridge event (see [`is_event`]) is matched by rules as it is. Metric filters see its
    /// `detail` when it is a CloudTrail record EventBridge carried ("... via CloudTrail", as an
    /// archive or a replay keeps it), which the trail also delivers to its log group; an event a
    /// service sent EventBridge itself never reaches that group.
    pub fn evaluate(&self, record: Value) -> (Vec<usize>, Value) {
        if is_event(&record) {
            let via_trail = record["detail-type"].as_str().is_some_and(|t| t.ends_with("via CloudTrail"));
            let fired = self.detections.iter().enumerate().filter(|(_, d)| match d.kind {
                Kind::Rule => d.fires(&Value::Null, &record),
                Kind::Alarm => via_trail && d.fires(&record["detail"], &Value::Null),
            });
            return (fired.map(|(i, _)| i).collect(), record);
        }
        let mut fired: Vec<usize> = self
            .detections
            .iter()
            .enumerate()
            .filter(|(_, d)| d.kind == Kind::Alarm && d.fires(&record, &Value::Null))
            .map(|(i, _)| i)
            .collect();
        let mut event = into_envelope(record);
        fired.extend(
            self.detections
                .iter()
                .enumerate()
                .filter(|(_, d)| d.kind == Kind::Rule && d.fires(&Value::Null, &event))
                .map(|(i, _)| i),
        );
        fired.sort_unstable();
        let record = event.get_mut("detail").map(Value::take).unwrap_or_default();
        (fired, record)
    }

    /// For a record that fired the detections `fired`: the agent signals it matched, when any
    /// of them is an agent-only detection (each signal once). Empty otherwise.
    pub fn signals(&self, record: &Value, fired: &[usize]) -> Vec<Matched> {
        let mut out: Vec<Matched> = Vec::new();
        let mut event = None;
        for a in fired.iter().filter_map(|&i| self.detections.get(i)?.attribution.as_ref()) {
            let event = event.get_or_insert_with(|| into_envelope(record.clone()));
            for m in a.attribute(event) {
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(name: &str, source: &str) -> Value {
        json!({
            "eventVersion": "1.09", "eventSource": source, "eventName": name, "awsRegion": "eu-west-1",
            "eventType": "AwsApiCall", "eventTime": "2026-11-27T10:00:00Z", "recipientAccountId": "123456789012",
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/AIAgent-ops/s1"}
        })
    }

    fn catalog() -> Catalog {
        let rule = json!({"source": ["aws.ec2"], "detail": {"eventName": ["TerminateInstances"]}});
        let feed = Feed::Topic { topic: Some("alerts".into()) };
        Catalog {
            detections: vec![
                Detection::alarm("stop-logging", r#"{ $.eventName = "StopLogging" }"#, "high", feed).unwrap(),
                Detection::rule("terminate", &rule, "critical", Some("alerts")).unwrap(),
            ],
        }
    }

    #[test]
    fn rules_match_the_envelope_and_filters_the_raw_record() {
        let c = catalog();
        assert_eq!(c.evaluate(record("TerminateInstances", "ec2.amazonaws.com")).0, vec![1]);
        assert_eq!(c.evaluate(record("StopLogging", "cloudtrail.amazonaws.com")).0, vec![0]);
        // Same event name, other service: the rule's source clause keeps it silent.
        assert!(c.evaluate(record("TerminateInstances", "gamelift.amazonaws.com")).0.is_empty());
    }

    #[test]
    fn an_archived_cloudtrail_event_is_matched_by_rules_and_by_filters_on_its_detail() {
        let c = catalog();
        for (name, source, fired) in
            [("StopLogging", "cloudtrail.amazonaws.com", vec![0]), ("TerminateInstances", "ec2.amazonaws.com", vec![1])]
        {
            // What an EventBridge archive or a rule's SQS target keeps: the record as `detail`.
            let event = json!({"version": "0", "id": "e", "detail-type": "AWS API Call via CloudTrail",
                "source": format!("aws.{}", source.split('.').next().unwrap()), "account": "123456789012",
                "time": "2026-11-27T10:00:00Z", "region": "eu-west-1", "resources": [], "detail": record(name, source)});
            let (got, back) = c.evaluate(event.clone());
            assert_eq!(got, fired, "{name}");
            assert_eq!(back, event, "the event comes back whole");
        }
    }

    #[test]
    fn an_s3_event_is_matched_by_rules_as_it_is_and_never_by_metric_filters() {
        let pattern =
            json!({"source": ["aws.s3"], "detail-type": ["Object Deleted"], "detail": {"reason": ["DeleteObject"]}});
        let rule = Detection::rule("s3", &pattern, "critical", None).unwrap();
        assert!(rule.service_events);
        let feed = Feed::Metric {
            namespace: "n".into(),
            metric: "m".into(),
            alarm: "a".into(),
            condition: String::new(),
            topic: None,
        };
        let every = Detection::alarm("every", r#"{ $.version = "0" }"#, "low", feed).unwrap();
        let catalog = Catalog { detections: vec![rule, every] };
        let event = json!({"version": "0", "id": "x", "detail-type": "Object Deleted", "source": "aws.s3",
            "account": "123456789012", "time": "2026-03-01T01:11:07Z", "region": "us-east-1", "resources": [],
            "detail": {"version": "0", "bucket": {"name": "b"}, "reason": "DeleteObject"}});
        let (fired, back) = catalog.evaluate(event.clone());
        assert_eq!(fired, vec![0]);
        assert_eq!(back, event, "the event comes back whole");
        let lifecycle =
            json!({"detail-type": "Object Deleted", "source": "aws.s3", "detail": {"reason": "Lifecycle Expiration"}});
        assert!(catalog.evaluate(lifecycle).0.is_empty());
    }

    #[test]
    fn a_rejected_pattern_names_the_detection() {
        let e = Detection::alarm("bad", "{ $.a = ", "low", Feed::Topic { topic: None }).unwrap_err();
        assert!(e.to_string().starts_with("alarm bad: "), "{e}");
    }
}
