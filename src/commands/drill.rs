//! `ctguard drill`: make each alert path fire, and report whether its message arrived.
//!
//! Order: load and check everything (no call that changes anything before the paths are
//! resolved), delete what an earlier killed run left, create the queue (and role), fire every
//! path, wait, return the alarms to OK, and always delete the queue and role, also on
//! Ctrl-C/SIGTERM.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::types::StateValue;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::Value;

use super::{Interrupted, Session, Status};
use crate::aws::{Aws, AwsResultExt};
use crate::drill::{self, Drill, Outcome, Path, PathKind, Received, Report, queue, role};
use crate::printer::Printer;
use crate::profile::Profile;
use crate::render;
use crate::settings::{DrillSettings, Format};

pub async fn run(settings: &DrillSettings, printer: &Printer, format: Format) -> anyhow::Result<Status> {
    let (aws, profile, ctx) = Session::prepare(&settings.common, printer).await?;
    let run = drill::run_id()?;
    let drill = drill::plan(&profile, &settings.selection, &run)?;
    let aws = &aws;
    let topics: Vec<String> = profile.alerts.iter().flat_map(|a| a.topics.iter().map(|t| t.arn.clone())).collect();
    let longest = drill.paths.iter().map(|p| p.timeout).max().unwrap_or_default();
    // The queue and role outlive this run only if it is killed; past this, any run deletes them.
    let expires = timestamp(SystemTime::now() + longest + Duration::from_secs(15 * 60));
    let end_to_end = drill.paths.iter().any(|p| matches!(p.kind, PathKind::EndToEnd { .. }));

    let mut cleanup = sweep(aws, &topics, printer).await;
    printer.status(&format!("drill {run}: {} path(s), waiting up to {}s each", drill.paths.len(), longest.as_secs()));
    let result = tokio::select! {
        r = drive(aws, &profile, &drill, &topics, &expires, printer) => r,
        signal = stop_signal() => Err(anyhow::Error::new(Interrupted(format!("{signal}: the drill stopped")))),
    };
    // Also after an interruption: no alarm is left in the drill's ALARM, no queue or role behind.
    let reset = reset_alarms(aws, &drill).await;
    let removed = remove(aws, &run, &topics, end_to_end).await;
    let mut tidy = true;
    for failed in [reset.err(), removed.as_ref().err().map(|e| anyhow::anyhow!("{e:#}"))].into_iter().flatten() {
        tidy = false;
        printer.warn(&format!(
            "could not undo all of the drill ({failed:#}); the next drill deletes its queue and role after {expires}"
        ));
    }
    cleanup.extend(removed.unwrap_or_default());
    let outcomes = match result {
        Ok(o) => o,
        Err(e) => match e.downcast::<Interrupted>() {
            Ok(Interrupted(what)) => {
                let left = match (tidy, end_to_end) {
                    (true, true) => "its alarms were returned to OK, its temporary queue and role deleted",
                    (true, false) => "its alarms were returned to OK, its temporary queue deleted",
                    (false, _) => "not everything it made could be undone (see the warning)",
                };
                return Err(Interrupted(format!("{what}; {left}")).into());
            }
            Err(e) => return Err(e),
        },
    };
    let report = Report { run, outcomes, cleanup };
    printer.data(|w, p| match format {
        Format::Json => render::drill::json(w, &ctx, &report),
        Format::Human => render::drill::human(w, p, &ctx, &report),
    })?;
    Ok(if report.all_delivered() { Status::Success } else { Status::Differs })
}

/// Ctrl-C or SIGTERM, by name.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "SIGINT"
}

/// RFC 3339 in UTC, to the second: timestamps of one width compare as text.
fn timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    aws_smithy_types::DateTime::from_secs(secs as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// Deletes the queues and roles of earlier runs that were killed and have expired. A failure
/// here is a warning: it does not stop this run.
async fn sweep(aws: &Aws, topics: &[String], printer: &Printer) -> Vec<String> {
    let now = timestamp(SystemTime::now());
    let mut done = Vec::new();
    let result: anyhow::Result<()> = async {
        for name in queue::stale(aws, &now).await? {
            done.extend(queue::remove(aws, &name, topics).await?);
        }
        for name in role::stale(aws, &now).await? {
            done.extend(role::remove(aws, &name).await?);
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        printer.warn(&format!("could not delete what an earlier drill left: {e:#}"));
    }
    done.iter().map(|d| format!("{d} (left by an earlier drill)")).collect()
}

/// Deletes this run's queue and role, found by name.
async fn remove(aws: &Aws, run: &str, topics: &[String], end_to_end: bool) -> anyhow::Result<Vec<String>> {
    let mut done = queue::remove(aws, &queue::name(run), topics).await?;
    if end_to_end {
        done.extend(role::remove(aws, &role::name(run)).await?);
    }
    Ok(done)
}

/// What the drill found wrong with one topic before firing: per service that publishes to it.
#[derive(Debug, Default)]
struct TopicFaults {
    /// Declared subscriptions missing or pending.
    subscriptions: Vec<String>,
    /// Services the topic policy grants no sns:Publish.
    unpublishable: Vec<&'static str>,
}

const EVENTS: &str = "events.amazonaws.com";
const CLOUDWATCH: &str = "cloudwatch.amazonaws.com";

async fn topic_faults(aws: &Aws, profile: &Profile) -> anyhow::Result<BTreeMap<String, TopicFaults>> {
    let Some(alerts) = &profile.alerts else { return Ok(BTreeMap::new()) };
    let mut out = BTreeMap::new();
    for t in &alerts.topics {
        let attrs = aws.sns.get_topic_attributes().topic_arn(&t.arn).send().await;
        let attrs = attrs.ctx(|| format!("reading SNS topic {}", t.name))?;
        let policy: Value = attrs
            .attributes()
            .and_then(|a| a.get("Policy"))
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or(Value::Null);
        let unpublishable = [EVENTS, CLOUDWATCH].into_iter().filter(|s| !grants_publish(&policy, s)).collect();
        let list = |token| async move {
            let req = aws.sns.list_subscriptions_by_topic().topic_arn(&t.arn).set_next_token(token);
            req.send().await.ctx(|| format!("listing the subscriptions of {}", t.name))
        };
        use aws_sdk_sns::operation::list_subscriptions_by_topic::ListSubscriptionsByTopicOutput as Out;
        let pages = crate::aws::all_pages(list, Out::next_token).await?;
        let live: Vec<_> = pages.iter().flat_map(|p| p.subscriptions()).collect();
        let subscriptions = t
            .subscriptions
            .iter()
            .filter_map(|s| {
                let label = s.label(alerts.show_endpoints);
                let found =
                    live.iter().find(|l| l.protocol() == Some(&s.protocol) && l.endpoint() == Some(&s.endpoint));
                match found.and_then(|l| l.subscription_arn()) {
                    None => Some(format!("{label} is not subscribed")),
                    Some(arn) if !arn.starts_with("arn:") => Some(format!("{label} is pending confirmation")),
                    Some(_) => None,
                }
            })
            .collect();
        out.insert(t.arn.clone(), TopicFaults { subscriptions, unpublishable });
    }
    Ok(out)
}

/// Whether an Allow statement of the topic policy lets `service` call sns:Publish. SNS also
/// evaluates conditions and Deny statements; the drill's message is the proof, this names the
/// likely cause when none arrives.
fn grants_publish(policy: &Value, service: &str) -> bool {
    let list = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    };
    let statements = match policy.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => Vec::new(),
    };
    statements.iter().any(|s| {
        let allow = s.get("Effect").and_then(Value::as_str) == Some("Allow");
        let action = list(s.get("Action"))
            .iter()
            .any(|a| ["sns:publish", "sns:*", "*"].contains(&a.to_ascii_lowercase().as_str()));
        let principal = match s.get("Principal") {
            Some(Value::String(p)) => p == "*",
            Some(p) => {
                list(p.get("Service")).iter().any(|x| x == service) || list(p.get("AWS")).iter().any(|x| x == "*")
            }
            None => false,
        };
        allow && action && principal
    })
}

/// One path's progress.
struct Fired {
    /// Wall-clock time of the call, to compare with SQS's arrival times.
    sent: Option<SystemTime>,
    /// Why it failed before any wait (the call failed, the alarm cannot notify).
    failed: Option<String>,
    /// What happened on the way, for the report.
    note: Option<String>,
    arrived: BTreeMap<String, SystemTime>,
}

async fn drive(
    aws: &Aws,
    profile: &Profile,
    drill: &Drill,
    topics: &[String],
    expires: &str,
    printer: &Printer,
) -> anyhow::Result<Vec<Outcome>> {
    let faults = topic_faults(aws, profile).await?;
    let url = queue::create(aws, &drill.run, topics, expires, &profile.name).await?;
    printer.verbose(&format!("subscribed {} to {} topic(s)", queue::name(&drill.run), topics.len()));
    let alarms = describe_alarms(aws, drill).await?;
    // Every path at once: each is timed from its own call.
    let mut fired =
        futures::future::join_all(drill.paths.iter().map(|path| fire(aws, drill, path, &alarms, expires))).await;
    wait(aws, &url, drill, &mut fired).await?;
    for (path, f) in drill.paths.iter().zip(fired.iter_mut()) {
        if let (PathKind::EndToEnd { alarm }, Some(sent)) = (&path.kind, f.sent) {
            let count = counted(aws, profile, alarm, sent).await?;
            let note = format!("the metric filter counted {count} access-denied calls since the call");
            f.note = Some(f.note.take().map_or(note.clone(), |n| format!("{n}; {note}")));
        }
    }
    Ok(drill.paths.iter().zip(fired).map(|(p, f)| outcome(p, f, &faults)).collect())
}

/// Returns to OK every alarm this run set to ALARM and that is still there (OK actions, if any,
/// fire too). Found by the run's token in the state reason, so it also works after an
/// interruption, whatever had been sent.
async fn reset_alarms(aws: &Aws, drill: &Drill) -> anyhow::Result<()> {
    let paths: BTreeMap<&str, &Path> = drill
        .paths
        .iter()
        .filter_map(|p| match &p.kind {
            PathKind::Alarm { name } => Some((name.as_str(), p)),
            _ => None,
        })
        .collect();
    let names: Vec<String> = paths.keys().map(|n| n.to_string()).collect();
    for a in alarms_named(aws, &names).await? {
        let (Some(name), Some(reason)) = (a.alarm_name(), a.state_reason()) else { continue };
        let Some(path) = paths.get(name) else { continue };
        if a.state_value() == Some(&StateValue::Alarm) && reason.contains(&path.token) {
            let req = aws.cloudwatch.set_alarm_state().alarm_name(name).state_value(StateValue::Ok);
            let req = req.state_reason(format!("{} ended", path.reason()));
            req.send().await.ctx(|| format!("returning alarm {name} to OK"))?;
        }
    }
    Ok(())
}

/// The metric alarms of `names`. DescribeAlarms takes up to 100 names and returns 50 alarms a
/// page unless asked for 100.
async fn alarms_named(aws: &Aws, names: &[String]) -> anyhow::Result<Vec<aws_sdk_cloudwatch::types::MetricAlarm>> {
    let mut out = Vec::new();
    for chunk in names.chunks(100) {
        let req = aws.cloudwatch.describe_alarms().set_alarm_names(Some(chunk.to_vec())).max_records(100);
        let found = req.send().await.ctx(|| "reading the drilled alarms".into())?;
        out.extend(found.metric_alarms().iter().cloned());
    }
    Ok(out)
}

/// Each alarm's state and whether its actions run, by name.
async fn describe_alarms(aws: &Aws, drill: &Drill) -> anyhow::Result<BTreeMap<String, (StateValue, bool)>> {
    let names: Vec<String> = drill
        .paths
        .iter()
        .filter_map(|p| match &p.kind {
            PathKind::Alarm { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    let mut out = BTreeMap::new();
    for a in alarms_named(aws, &names).await? {
        let state = a.state_value().cloned().unwrap_or(StateValue::InsufficientData);
        out.insert(a.alarm_name().unwrap_or_default().to_string(), (state, a.actions_enabled().unwrap_or(true)));
    }
    Ok(out)
}

/// Makes the call that should alert on `path`.
async fn fire(
    aws: &Aws,
    drill: &Drill,
    path: &Path,
    alarms: &BTreeMap<String, (StateValue, bool)>,
    expires: &str,
) -> Fired {
    let mut f = Fired { sent: None, failed: None, note: None, arrived: BTreeMap::new() };
    let result: anyhow::Result<()> = async {
        match &path.kind {
            PathKind::Events { region } => {
                let detail = drill::event_detail(path, region, &timestamp(SystemTime::now()));
                let entry = PutEventsRequestEntry::builder()
                    .source(crate::resources::rule::DRILL_SOURCE)
                    .detail_type(drill::DETAIL_TYPE)
                    .detail(detail.to_string())
                    .build();
                f.sent = Some(SystemTime::now());
                let out = aws.events(region).put_events().entries(entry).send().await;
                let out = out.ctx(|| format!("putting the drill event in {region}"))?;
                if let Some(e) = out.entries().iter().find(|e| e.error_code().is_some()) {
                    anyhow::bail!(
                        "PutEvents in {region}: {}: {}",
                        e.error_code().unwrap_or(""),
                        e.error_message().unwrap_or("")
                    );
                }
            }
            PathKind::Alarm { name } => match alarms.get(name) {
                None => anyhow::bail!("alarm {name} does not exist (run ctguard apply)"),
                Some((_, false)) => anyhow::bail!("alarm {name} has its actions disabled: it notifies nobody"),
                Some((StateValue::Alarm, _)) => {
                    anyhow::bail!("alarm {name} is in ALARM already, perhaps in earnest: not drilled")
                }
                Some(_) => {
                    f.sent = Some(SystemTime::now());
                    let req = aws.cloudwatch.set_alarm_state().alarm_name(name).state_value(StateValue::Alarm);
                    req.state_reason(path.reason()).send().await.ctx(|| format!("setting alarm {name} to ALARM"))?;
                }
            },
            PathKind::EndToEnd { .. } => {
                let arn = role::create(aws, &drill.run, expires).await?;
                f.sent = Some(SystemTime::now());
                f.note = Some(role::denied_call(aws, &arn, Duration::from_secs(60)).await?);
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        f.failed = Some(format!("{e:#}"));
    }
    f
}

/// Receives until every path has its messages or has waited its timeout, then reads what is
/// left: a message is judged by when it reached the queue, not when the drill read it, so a
/// slow run does not fail a path that delivered in time.
async fn wait(aws: &Aws, url: &str, drill: &Drill, fired: &mut [Fired]) -> anyhow::Result<()> {
    loop {
        let now = SystemTime::now();
        let left = drill
            .paths
            .iter()
            .zip(fired.iter())
            .filter_map(|(p, f)| {
                let sent = f.sent.filter(|_| f.failed.is_none())?;
                let complete = p.topics.iter().all(|t| f.arrived.contains_key(t));
                let left = (sent + p.timeout).duration_since(now).ok().filter(|l| !l.is_zero())?;
                (!complete).then_some(left)
            })
            .min();
        let got = queue::receive(aws, url, left.unwrap_or_default()).await?;
        if got.is_empty() {
            match left {
                None => return Ok(()),
                Some(l) if l < Duration::from_secs(1) => tokio::time::sleep(l.min(Duration::from_millis(200))).await,
                Some(_) => {}
            }
        }
        for r in &got {
            let at = r.at.unwrap_or_else(SystemTime::now);
            for (p, f) in drill.paths.iter().zip(fired.iter_mut()) {
                if matches(p, r) {
                    f.arrived.entry(r.topic_arn.clone()).or_insert(at);
                }
            }
        }
    }
}

/// The sum of the alarm's metric from a minute before `since` (CloudWatch's periods start on
/// the minute) until now.
async fn counted(aws: &Aws, profile: &Profile, alarm: &str, since: SystemTime) -> anyhow::Result<f64> {
    let Some(a) = profile.alarms.iter().find(|a| a.name == alarm) else { return Ok(0.0) };
    let now = SystemTime::now();
    let start = since - Duration::from_secs(60);
    let out = aws
        .cloudwatch
        .get_metric_statistics()
        .namespace(&a.namespace)
        .metric_name(&a.metric)
        .start_time(start.into())
        .end_time((now + Duration::from_secs(60)).into())
        .period(60)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
        .send()
        .await
        .ctx(|| format!("reading metric {}/{}", a.namespace, a.metric))?;
    Ok(out.datapoints().iter().filter_map(|d| d.sum()).fold(0.0, |a, b| a + b))
}

/// Whether `r` is `path`'s message. The end-to-end path's message is CloudWatch's own, which
/// the drill cannot mark: the named alarm going to ALARM.
fn matches(path: &Path, r: &Received) -> bool {
    match &path.kind {
        PathKind::EndToEnd { alarm } => {
            let doc: Value = serde_json::from_str(&r.message).unwrap_or(Value::Null);
            // The alarm path's own drill of the same alarm is not this path's message.
            path.topics.contains(&r.topic_arn)
                && !r.message.contains(crate::resources::rule::DRILL_MARKER)
                && doc.get("AlarmName").and_then(Value::as_str) == Some(alarm)
                && doc.get("NewStateValue").and_then(Value::as_str) == Some("ALARM")
        }
        _ => drill::is_for(path, r),
    }
}

fn outcome(path: &Path, f: Fired, faults: &BTreeMap<String, TopicFaults>) -> Outcome {
    let name = path.name();
    let topic_name = |arn: &str| arn.rsplit(':').next().unwrap_or(arn).to_string();
    let service = if matches!(path.kind, PathKind::Events { .. }) { EVENTS } else { CLOUDWATCH };
    let mut problems = Vec::new();
    for t in &path.topics {
        if let Some(fault) = faults.get(t) {
            problems.extend(fault.subscriptions.iter().map(|s| format!("topic {}: {s}", topic_name(t))));
            if fault.unpublishable.contains(&service) {
                problems.push(format!("topic {}: its policy grants {service} no sns:Publish", topic_name(t)));
            }
        }
    }
    if let Some(failed) = f.failed {
        return Outcome { path: name, delivered: false, seconds: None, detail: failed };
    }
    let sent = f.sent.unwrap_or_else(SystemTime::now);
    // AWS's clock and this machine's may differ a little: an arrival "before" the call is 0s.
    let took = |at: &SystemTime| at.duration_since(sent).unwrap_or_default();
    let missing: Vec<String> = path
        .topics
        .iter()
        .filter(|t| f.arrived.get(*t).is_none_or(|at| took(at) > path.timeout))
        .map(|t| topic_name(t))
        .collect();
    let seconds = f.arrived.values().max().map(|at| took(at).as_secs_f64());
    let mut detail = if missing.is_empty() {
        format!("delivered to {}", path.topics.iter().map(|t| topic_name(t)).collect::<Vec<_>>().join(", "))
    } else {
        let hint = match &path.kind {
            PathKind::Events { .. } => " (is the drill rule ctguard-drill applied, with its target?)",
            _ => "",
        };
        format!("timed out after {}s: no message in time from {}{hint}", path.timeout.as_secs(), missing.join(", "))
    };
    if let Some(note) = f.note {
        detail.push_str(&format!("; {note}"));
    }
    if !problems.is_empty() {
        detail.push_str(&format!("; {}", problems.join("; ")));
    }
    Outcome { path: name, delivered: missing.is_empty() && problems.is_empty(), seconds, detail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_topic_policy_grants_publish_only_by_an_allow_for_the_service() {
        let allow = json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": ["events.amazonaws.com"]},
            "Action": ["SNS:Publish"], "Resource": "*"}]});
        assert!(grants_publish(&allow, EVENTS));
        assert!(!grants_publish(&allow, CLOUDWATCH));
        let deny = json!({"Statement": {"Effect": "Deny", "Principal": "*", "Action": "sns:Publish"}});
        assert!(!grants_publish(&deny, EVENTS));
        assert!(grants_publish(
            &json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "*"}}),
            CLOUDWATCH
        ));
        assert!(!grants_publish(&Value::Null, EVENTS));
    }

    #[test]
    fn timestamps_compare_as_text() {
        let a = timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_773_600));
        assert_eq!(a, "2026-11-27T10:00:00Z");
        assert!(a < timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_773_601)));
    }
}
