//! verify's delivery health: failures AWS reports only as metrics, so a configuration that
//! matches the profile can still drop every alert. Over the window (24 hours unless
//! `verify --health-window`): EventBridge's `FailedInvocations` for every rule of the
//! profile, in its region (a target EventBridge could not deliver to, such as a topic whose
//! policy or key refuses it), and SNS's `NumberOfNotificationsFailed` for every alert topic
//! (a subscriber that could not be reached). Both come from CloudWatch's GetMetricData, one
//! call per region for up to 500 metrics, the regions read at once.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use futures::future::join_all;

use crate::aws::{Aws, AwsResultExt};
use crate::plan::Address;
use crate::resources::{Check, Resource, rule, topic};

/// The window verify reads when none is given.
pub const DEFAULT_WINDOW_SECONDS: u64 = 24 * 3600;

/// GetMetricData's limit on metrics per request.
const QUERIES_PER_CALL: usize = 500;

/// One metric that must stay at zero, and the resource it is about.
#[derive(Debug, Clone)]
struct Watched {
    address: Address,
    namespace: &'static str,
    metric: &'static str,
    /// The metric's dimensions, by name.
    dimensions: Vec<(&'static str, String)>,
    /// What a non-zero value means, for the check's detail.
    meaning: &'static str,
}

/// The metrics that must stay at zero for the profile's rules and topics.
fn watched(resources: &[Box<dyn Resource>]) -> Vec<Watched> {
    let declared = resources.iter().filter(|r| r.declared()).map(|r| r.address());
    declared
        .filter_map(|address| match address.kind {
            // A rule's address is `region/name`, or `region/bus/name` on a custom bus, whose
            // metrics carry EventBusName beside RuleName (EventBridge User Guide, "Monitoring
            // Amazon EventBridge": RuleName alone refers to the default bus).
            k if k == rule::KIND => {
                let parts: Vec<&str> = address.name.split('/').collect();
                let dimensions = match parts[..] {
                    [_, bus, name] => vec![("EventBusName", bus.to_string()), ("RuleName", name.to_string())],
                    _ => vec![("RuleName", parts.last().copied().unwrap_or_default().to_string())],
                };
                Some(Watched {
                    address,
                    namespace: "AWS/Events",
                    metric: "FailedInvocations",
                    dimensions,
                    meaning: "EventBridge could not deliver the rule's events to a target (the topic's policy or its \
                              key's policy may refuse events.amazonaws.com)",
                })
            }
            k if k == topic::KIND => {
                let name = address.name.clone();
                Some(Watched {
                    address,
                    namespace: "AWS/SNS",
                    metric: "NumberOfNotificationsFailed",
                    dimensions: vec![("TopicName", name)],
                    meaning: "SNS could not deliver messages to a subscriber",
                })
            }
            _ => None,
        })
        .collect()
}

/// A check per watched metric: failing when it is above zero in the window, or when
/// CloudWatch could not be read (health that cannot be shown is not assumed).
pub async fn checks(aws: &Aws, resources: &[Box<dyn Resource>], window_seconds: u64) -> Vec<(Address, Check)> {
    let mut by_region: BTreeMap<String, Vec<Watched>> = BTreeMap::new();
    for w in watched(resources) {
        by_region.entry(w.address.region.clone()).or_default().push(w);
    }
    let reads = by_region.iter().flat_map(|(region, list)| {
        list.chunks(QUERIES_PER_CALL).map(move |chunk| async move {
            let sums = sums(aws, region, chunk, window_seconds).await;
            let checks = chunk.iter().enumerate().map(|(i, w)| (w.address.clone(), check(w, &sums, i, window_seconds)));
            checks.collect::<Vec<_>>()
        })
    });
    join_all(reads).await.into_iter().flatten().collect()
}

fn check(w: &Watched, sums: &anyhow::Result<BTreeMap<usize, f64>>, i: usize, window_seconds: u64) -> Check {
    let hours = window_seconds as f64 / 3600.0;
    let name = format!("no {} in the last {hours} h", w.metric);
    match sums {
        Err(e) => Check { name, ok: false, detail: format!("could not read {}: {e:#}", w.metric) },
        Ok(sums) => {
            let n = sums.get(&i).copied().unwrap_or(0.0);
            let detail =
                if n > 0.0 { format!("{}: {n} ({})", w.metric, w.meaning) } else { format!("{}: 0", w.metric) };
            Check { name, ok: n <= 0.0, detail }
        }
    }
}

/// The sum of each metric over the window, by its index in `chunk`.
async fn sums(aws: &Aws, region: &str, chunk: &[Watched], window_seconds: u64) -> anyhow::Result<BTreeMap<usize, f64>> {
    let now = std::time::SystemTime::now();
    let start = now - std::time::Duration::from_secs(window_seconds);
    // One period covers the whole window. CloudWatch wants a multiple of 60 seconds, of 300
    // for data older than 15 days and of 3,600 beyond 63 days (GetMetricData, Period).
    let step = match window_seconds {
        s if s > 63 * 86_400 => 3_600,
        s if s > 15 * 86_400 => 300,
        _ => 60,
    };
    let period = i32::try_from(window_seconds.div_ceil(step) * step).unwrap_or(i32::MAX);
    let queries: Vec<MetricDataQuery> = chunk
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let dimensions = w.dimensions.iter().map(|(n, v)| Dimension::builder().name(*n).value(v).build());
            let metric = Metric::builder()
                .namespace(w.namespace)
                .metric_name(w.metric)
                .set_dimensions(Some(dimensions.collect()))
                .build();
            let stat = MetricStat::builder().metric(metric).period(period).stat("Sum").build();
            MetricDataQuery::builder().id(format!("m{i}")).metric_stat(stat).return_data(true).build()
        })
        .collect();
    let mut sums = BTreeMap::new();
    let mut token = None;
    loop {
        let page = aws
            .cloudwatch_in(region)
            .get_metric_data()
            .set_metric_data_queries(Some(queries.clone()))
            .start_time(start.into())
            .end_time(now.into())
            .set_next_token(token)
            .send()
            .await
            .ctx(|| format!("reading delivery metrics in {region}"))?;
        for result in page.metric_data_results() {
            let Some(i) = result.id().and_then(|id| id.strip_prefix('m')).and_then(|i| i.parse().ok()) else {
                continue;
            };
            *sums.entry(i).or_insert(0.0) += result.values().iter().sum::<f64>();
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(sums);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::central_bus::{CentralBus, CentralRole};
    use crate::resources::testing::{HOME, flagship};

    #[test]
    fn a_rule_on_a_custom_bus_is_watched_by_its_bus_and_name() {
        let p = flagship();
        let events = p.events.as_ref().unwrap();
        let rule = &events.rules[0];
        let bus = CentralBus {
            arn: format!("arn:aws:events:{HOME}:123456789012:event-bus/ctguard-central"),
            partition: "aws".into(),
            region: HOME.into(),
            account: "123456789012".into(),
            name: "ctguard-central".into(),
            role: CentralRole::Owner { policy: serde_json::Value::Null },
        };
        let (listed, tags) = (Default::default(), Default::default());
        let home = rule::EventRule::new(&p, rule, &rule.parts[0], Default::default(), Default::default());
        let central = rule::EventRule::central(&p, rule, &rule.parts[0], &bus, listed, tags);
        let resources: Vec<Box<dyn Resource>> = vec![Box::new(home), Box::new(central)];
        let dims: Vec<Vec<(&str, String)>> = watched(&resources).into_iter().map(|w| w.dimensions).collect();
        let name = rule.parts[0].0.clone();
        assert_eq!(
            dims,
            vec![
                vec![("RuleName", name.clone())],
                vec![("EventBusName", "ctguard-central".to_string()), ("RuleName", name)],
            ]
        );
    }
}
