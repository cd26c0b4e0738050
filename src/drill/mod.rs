//! The fire drill: which alert paths a run drills, the marker each path's message carries, and
//! how a received SNS message is matched to its path. Pure; the AWS side is in `queue` (the
//! temporary subscriber), `role` (the end-to-end path's caller) and `commands::drill`.

pub mod queue;
pub mod role;

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::profile::{Alarm, Profile};
use crate::resources::rule::{DRILL_MARKER, DRILL_SOURCE};

/// Names of everything a run creates start with this (queue and role), so a later run finds
/// what a killed one left.
pub const PREFIX: &str = "ctguard-drill-";
/// The tag that says until when a drill's queue or role is in use (RFC 3339, UTC); past it, any
/// run deletes it.
pub const EXPIRES_TAG: &str = "ctguard:drill-expires";
/// The detail-type of the drill's events.
pub const DETAIL_TYPE: &str = "ctguard drill";
/// How long the end-to-end path waits unless --timeout says otherwise: CloudTrail delivers to
/// CloudWatch Logs within about 5 minutes of the call, typically, and the alarm then needs its
/// evaluation period.
pub const END_TO_END_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// One run: its id (in the queue's and role's names) and what it drills.
#[derive(Debug, Clone)]
pub struct Drill {
    pub run: String,
    pub paths: Vec<Path>,
}

/// An alert path the drill proves, and the topics its message must arrive on.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub kind: PathKind,
    /// The text that only this path's messages carry.
    pub token: String,
    /// ARNs of the topics the message must reach (each with its declared subscribers).
    pub topics: Vec<String>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathKind {
    /// PutEvents in this region, through the drill rule (and, outside the home region, the
    /// forwarding to the home bus).
    Events { region: String },
    /// SetAlarmState on this alarm.
    Alarm { name: String },
    /// An access-denied call from a temporary role, through CloudTrail, the log group, the
    /// metric filter and this alarm.
    EndToEnd { alarm: String },
}

impl Path {
    /// How outputs name the path: `events/<region>`, `alarm/<name>`, `end-to-end/<alarm>`.
    pub fn name(&self) -> String {
        match &self.kind {
            PathKind::Events { region } => format!("events/{region}"),
            PathKind::Alarm { name } => format!("alarm/{name}"),
            PathKind::EndToEnd { alarm } => format!("end-to-end/{alarm}"),
        }
    }

    /// The text the drill's message carries: the marker, then the token.
    pub fn reason(&self) -> String {
        format!("{DRILL_MARKER} ctguard fire drill, not an incident (drill {})", self.token)
    }
}

/// What the user asked to drill, resolved against the profile before any call.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Empty: every region of the profile.
    pub regions: Vec<String>,
    /// Empty: every alarm of the profile.
    pub alarms: Vec<String>,
    pub events: bool,
    pub alarm_path: bool,
    pub end_to_end: bool,
    /// None: the default per path.
    pub timeout: Option<Duration>,
}

/// The default wait for a delivery: EventBridge, CloudWatch and SNS deliver within seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The paths of one run. Errors name the flag and what the profile has, so bad input fails
/// before the first call that changes anything.
pub fn plan(profile: &Profile, selection: &Selection, run: &str) -> anyhow::Result<Drill> {
    for r in &selection.regions {
        if !profile.regions.contains(r) {
            anyhow::bail!(
                "--region {r}: not a region of profile {} (it has {})",
                profile.name,
                profile.regions.join(", ")
            );
        }
    }
    for a in &selection.alarms {
        if !profile.alarms.iter().any(|x| &x.name == a) {
            let names: Vec<&str> = profile.alarms.iter().map(|x| x.name.as_str()).collect();
            anyhow::bail!("--alarm {a}: not an alarm of profile {} (it has {})", profile.name, names.join(", "));
        }
    }
    let alerts =
        profile.alerts.as_ref().ok_or_else(|| anyhow::anyhow!("profile {} declares no [alerts]", profile.name))?;
    let timeout = selection.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let mut paths = Vec::new();
    let token = |n: usize| format!("{run}-{n}.");
    let drill_topics: Vec<String> =
        crate::resources::rule::drill_topics(profile).iter().map(|(t, _)| t.arn.clone()).collect();
    if selection.events && !drill_topics.is_empty() {
        let regions = if selection.regions.is_empty() { &profile.regions } else { &selection.regions };
        for region in regions {
            let kind = PathKind::Events { region: region.clone() };
            paths.push(Path { kind, token: token(paths.len()), topics: drill_topics.clone(), timeout });
        }
    }
    let end_to_end = match selection.end_to_end {
        false => None,
        true => Some(unauthorized_calls_alarm(profile).ok_or_else(|| {
            anyhow::anyhow!(
                "--end-to-end: profile {} has no alarm on access-denied calls (a metric filter on \
                 errorCode AccessDenied* and *UnauthorizedOperation, CIS 4.1)",
                profile.name
            )
        })?),
    };
    if selection.alarm_path {
        let chosen = |a: &&Alarm| selection.alarms.is_empty() || selection.alarms.contains(&a.name);
        // The end-to-end path waits for that alarm to go to ALARM on its own: set to ALARM by
        // the alarm path first, it would not change state again.
        let other = |a: &&Alarm| end_to_end.is_none_or(|e| e.name != a.name);
        for a in profile.alarms.iter().filter(chosen).filter(other) {
            let topic = alerts.topic_for(a.severity).arn.clone();
            let kind = PathKind::Alarm { name: a.name.clone() };
            paths.push(Path { kind, token: token(paths.len()), topics: vec![topic], timeout });
        }
    }
    if let Some(alarm) = end_to_end {
        let topic = alerts.topic_for(alarm.severity).arn.clone();
        let kind = PathKind::EndToEnd { alarm: alarm.name.clone() };
        let timeout = selection.timeout.unwrap_or(END_TO_END_TIMEOUT);
        paths.push(Path { kind, token: token(paths.len()), topics: vec![topic], timeout });
    }
    if paths.is_empty() {
        anyhow::bail!("nothing to drill: profile {} has no EventBridge rules or alarms selected", profile.name);
    }
    Ok(Drill { run: run.to_string(), paths })
}

/// The alarm whose metric filter counts access-denied calls (CIS AWS Foundations 4.1).
pub fn unauthorized_calls_alarm(profile: &Profile) -> Option<&Alarm> {
    let covers = |p: &str| p.contains("UnauthorizedOperation") && p.contains("AccessDenied");
    profile.alarms.iter().find(|a| covers(&a.pattern) && a.restriction.is_empty())
}

/// The detail of the event a drill puts in `region`: shaped like a CloudTrail record, so the
/// alert message's input paths find the marker (`eventName`, `errorMessage`) and the token.
pub fn event_detail(path: &Path, region: &str, now: &str) -> Value {
    json!({
        "eventVersion": "1.09",
        "eventSource": DRILL_SOURCE,
        "eventName": format!("{DRILL_MARKER} FireDrill"),
        "eventID": path.token,
        "eventTime": now,
        "awsRegion": region,
        "errorCode": "",
        "errorMessage": path.reason(),
        "requestParameters": { "drill": path.token, "region": region },
    })
}

/// A message as the drill's queue received it: SNS's envelope around the text published.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic_arn: String,
    pub message: String,
    /// When SQS received it (its `SentTimestamp`); None where the body alone was read.
    pub at: Option<std::time::SystemTime>,
}

/// Reads an SNS envelope (SNS Developer Guide, "Amazon SNS message and JSON formats"); a body
/// that is not one is none of the drill's.
pub fn envelope(body: &str) -> Option<Received> {
    let v: Value = serde_json::from_str(body).ok()?;
    Some(Received {
        topic_arn: v.get("TopicArn")?.as_str()?.to_string(),
        message: v.get("Message")?.as_str()?.to_string(),
        at: None,
    })
}

/// Whether `r` is the message of `path` on one of its topics: it carries the drill marker and
/// the path's token.
pub fn is_for(path: &Path, r: &Received) -> bool {
    path.topics.contains(&r.topic_arn) && r.message.contains(DRILL_MARKER) && r.message.contains(&path.token)
}

/// How one path went.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub path: String,
    pub delivered: bool,
    /// Seconds from the drill's call to the last topic's message; absent if none arrived.
    pub seconds: Option<f64>,
    pub detail: String,
}

/// A run's report: every path, and what was cleaned up.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run: String,
    pub outcomes: Vec<Outcome>,
    pub cleanup: Vec<String>,
}

impl Report {
    pub fn all_delivered(&self) -> bool {
        self.outcomes.iter().all(|o| o.delivered)
    }
}

/// A run id: 12 random hex digits.
pub fn run_id() -> anyhow::Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 6];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| anyhow::anyhow!("no random numbers"))?;
    Ok(hex::encode(bytes))
}

/// `--timeout`: a number and a unit, s, m or h.
pub fn parse_timeout(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (at, _) = text.char_indices().last()?;
    let (number, unit) = text.split_at(at);
    let n: u64 = number.parse().ok().filter(|n| *n > 0)?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        _ => return None,
    };
    n.checked_mul(scale).filter(|s| *s <= 24 * 3_600).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::flagship;

    fn all() -> Selection {
        Selection { events: true, alarm_path: true, ..Default::default() }
    }

    #[test]
    fn the_destructive_rule_leaves_out_only_the_drills_own_queue_and_role() {
        // Queues and roles cannot be renamed, so the exclusion hides no one else's deletion.
        let template = include_str!("../../policies/destructive-identity-and-services.json");
        assert!(template.contains(&format!(r#""roleName": [{{"anything-but": {{"prefix": "{PREFIX}"}}}}]"#)));
        assert!(template.contains(&format!(r#""queueUrl": [{{"anything-but": {{"wildcard": "*/{PREFIX}*"}}}}]"#)));
    }

    #[test]
    fn every_region_and_alarm_is_a_path_with_its_own_token() {
        let p = flagship();
        let d = plan(&p, &all(), "abc").unwrap();
        let events = d.paths.iter().filter(|x| matches!(x.kind, PathKind::Events { .. })).count();
        assert_eq!(events, p.regions.len());
        assert_eq!(d.paths.len(), p.regions.len() + p.alarms.len());
        // No token is part of another ("abc-1." is not in "abc-11.").
        for a in &d.paths {
            for b in &d.paths {
                assert!(a == b || !b.token.contains(&a.token), "{} in {}", a.token, b.token);
            }
        }
    }

    #[test]
    fn unknown_regions_and_alarms_and_bad_timeouts_are_refused() {
        let p = flagship();
        let bad_region = Selection { regions: vec!["mars-1".into()], ..all() };
        assert!(plan(&p, &bad_region, "r").unwrap_err().to_string().contains("--region mars-1"));
        let bad_alarm = Selection { alarms: vec!["nope".into()], ..all() };
        assert!(plan(&p, &bad_alarm, "r").unwrap_err().to_string().contains("--alarm nope"));
        assert_eq!(parse_timeout("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_timeout("2m"), Some(Duration::from_secs(120)));
        for bad in ["", "0s", "5", "5d", "-1s", "1é"] {
            assert_eq!(parse_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_message_is_matched_by_topic_marker_and_token() {
        let p = flagship();
        let d = plan(&p, &all(), "abc").unwrap();
        let path = &d.paths[0];
        let body = json!({"Type": "Notification", "TopicArn": path.topics[0], "Message": path.reason()});
        let r = envelope(&body.to_string()).unwrap();
        assert!(is_for(path, &r));
        assert!(!is_for(&d.paths[1], &r));
        let other_topic = Received { topic_arn: "arn:aws:sns:us-east-1:1:x".into(), ..r.clone() };
        assert!(!is_for(path, &other_topic));
        let unmarked = Received { message: path.token.clone(), ..r };
        assert!(!is_for(path, &unmarked));
        assert!(envelope("not json").is_none());
    }

    #[test]
    fn the_end_to_end_path_uses_the_access_denied_alarm() {
        let p = flagship();
        let d = plan(&p, &Selection { end_to_end: true, ..Default::default() }, "abc").unwrap();
        assert_eq!(d.paths.len(), 1);
        assert!(matches!(&d.paths[0].kind, PathKind::EndToEnd { .. }));
        assert_eq!(d.paths[0].timeout, END_TO_END_TIMEOUT);
        let both = plan(&p, &Selection { end_to_end: true, ..all() }, "abc").unwrap();
        let e2e = unauthorized_calls_alarm(&p).unwrap().name.clone();
        assert!(!both.paths.iter().any(|x| matches!(&x.kind, PathKind::Alarm { name } if *name == e2e)));
        assert!(both.paths.iter().any(|x| matches!(&x.kind, PathKind::Alarm { .. })));
    }
}
