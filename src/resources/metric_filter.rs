//! CloudWatch Logs metric filters on the trail's log group: each counts the events its
//! pattern matches into a metric that an alarm watches. All filters of the group are read in
//! one paginated batch.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::{MetricFilter as SdkFilter, MetricTransformation};
use serde::Serialize;

use super::discovery::{Known, PREFIX};
use super::kind::{Declared, Delta, Found, Kind, Resource, Spec};
use super::log_group;
use super::snapshot::Snapshot;
use crate::aws::{Aws, AwsResultExt};
use crate::plan::Address;
use crate::profile::{Alarm, CloudWatchLogs, Profile};

pub const KIND: &str = "logs_metric_filter";

pub fn address(name: &str, region: &str) -> Address {
    Address { kind: KIND, name: name.into(), region: region.into() }
}

/// A filter as ctguard compares it: the pattern and the one metric it counts into.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterSpec {
    pub pattern: String,
    pub metric_name: Option<String>,
    pub metric_namespace: Option<String>,
    pub metric_value: Option<String>,
}

impl Spec for FilterSpec {}

/// Every filter of one log group, by name.
pub type Filters = BTreeMap<String, FilterSpec>;

pub struct MetricFilter {
    name: String,
    log_group: String,
    group: Arc<Snapshot<Option<Filters>>>,
}

impl MetricFilter {
    /// `group` is shared by all filters of the log group.
    pub fn new(
        profile: &Profile,
        cw: &CloudWatchLogs,
        alarm: &Alarm,
        group: Arc<Snapshot<Option<Filters>>>,
    ) -> Declared<Self> {
        let region = profile.runtime.region.clone();
        let want = FilterSpec {
            pattern: alarm.pattern.clone(),
            metric_name: Some(alarm.metric.clone()),
            metric_namespace: Some(alarm.namespace.clone()),
            // Each matching event counts once.
            metric_value: Some("1".to_string()),
        };
        let kind = MetricFilter { name: alarm.name.clone(), log_group: cw.log_group.clone(), group };
        Declared::new(kind, address(&alarm.name, &region), want, vec![log_group::address(cw, &region)])
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} metric filter {} on log group {}", self.name, self.log_group)
    }

    /// `None` when the log group does not exist.
    async fn fetch(aws: &Aws, log_group: &str) -> anyhow::Result<Option<Filters>> {
        let mut filters = Filters::new();
        let mut pages = aws.logs.describe_metric_filters().log_group_name(log_group).into_paginator().send();
        while let Some(page) = pages.next().await {
            let Some(page) = page.found(|| format!("listing metric filters of log group {log_group}"))? else {
                return Ok(None);
            };
            filters
                .extend(page.metric_filters().iter().map(|f| (f.filter_name().unwrap_or("").to_string(), flatten(f))));
        }
        Ok(Some(filters))
    }
}

fn flatten(f: &SdkFilter) -> FilterSpec {
    let t = f.metric_transformations().first();
    FilterSpec {
        pattern: f.filter_pattern().unwrap_or("").to_string(),
        metric_name: t.map(|t| t.metric_name().to_string()),
        metric_namespace: t.map(|t| t.metric_namespace().to_string()),
        metric_value: t.map(|t| t.metric_value().to_string()),
    }
}

fn expand(spec: &FilterSpec) -> anyhow::Result<MetricTransformation> {
    Ok(MetricTransformation::builder()
        .set_metric_name(spec.metric_name.clone())
        .set_metric_namespace(spec.metric_namespace.clone())
        .set_metric_value(spec.metric_value.clone())
        .build()?)
}

/// Filters named with the discovery prefix on the profile's own log group that are not
/// `known`. Filters cannot be tagged; the log group is ctguard's, so prefixed filters on it
/// are too.
pub async fn owned(
    aws: &Aws,
    cw: &CloudWatchLogs,
    known: &Known,
    group: Arc<Snapshot<Option<Filters>>>,
) -> anyhow::Result<Vec<Box<dyn Resource>>> {
    let all = group.get(|| MetricFilter::fetch(aws, &cw.log_group)).await?;
    let Some(all) = all.as_ref() else { return Ok(Vec::new()) };
    let region = aws.region().to_string();
    Ok(all
        .keys()
        .filter(|name| name.starts_with(PREFIX))
        .map(|name| {
            let filter = MetricFilter { name: name.clone(), log_group: cw.log_group.clone(), group: group.clone() };
            Declared::undeclared(filter, address(name, &region))
        })
        .filter(|f| !known.contains(&f.address))
        .map(|f| Box::new(f) as Box<dyn Resource>)
        .collect())
}

#[async_trait]
impl Kind for MetricFilter {
    type Spec = FilterSpec;

    async fn read(&self, aws: &Aws, _: Option<&FilterSpec>) -> anyhow::Result<Option<Found<FilterSpec>>> {
        let filters = self.group.get(|| Self::fetch(aws, &self.log_group)).await?;
        let found = filters.as_ref().as_ref().and_then(|f| f.get(&self.name));
        Ok(found.map(|spec| Found::new(spec.clone())))
    }

    async fn forget(&self) {
        self.group.forget().await;
    }

    /// PutMetricFilter writes every field at once.
    async fn update(&self, aws: &Aws, delta: &Delta<'_, FilterSpec>) -> anyhow::Result<()> {
        let req = aws.logs.put_metric_filter().log_group_name(&self.log_group).filter_name(&self.name);
        req.filter_pattern(&delta.want.pattern)
            .metric_transformations(expand(delta.want)?)
            .send()
            .await
            .ctx(|| self.what("writing"))?;
        Ok(())
    }

    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        let req = aws.logs.delete_metric_filter().log_group_name(&self.log_group).filter_name(&self.name);
        req.send().await.found(|| self.what("deleting"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{aws, flagship, mock};
    use aws_sdk_cloudwatchlogs::{Client, operation as logs};

    fn filters(p: &Profile) -> Vec<Declared<MetricFilter>> {
        let cw = p.cloudwatch_logs.as_ref().unwrap();
        let group: Arc<Snapshot<Option<Filters>>> = Default::default();
        p.alarms.iter().take(3).map(|a| MetricFilter::new(p, cw, a, group.clone())).collect()
    }

    #[tokio::test]
    async fn every_filter_of_the_group_is_read_in_one_call() {
        let p = flagship();
        let declared = filters(&p);
        let wants: Vec<FilterSpec> = declared.iter().map(|f| f.want.clone().unwrap()).collect();
        let names: Vec<String> = declared.iter().map(|f| f.kind.name.clone()).collect();
        let listed = mock!(Client::describe_metric_filters).then_output(move || {
            let mut out = logs::describe_metric_filters::DescribeMetricFiltersOutput::builder();
            for (name, want) in names.iter().zip(&wants) {
                out = out.metric_filters(
                    SdkFilter::builder()
                        .filter_name(name)
                        .filter_pattern(&want.pattern)
                        .metric_transformations(expand(want).unwrap())
                        .build(),
                );
            }
            out.build()
        });
        let aws = aws(&[&listed]);
        for f in &declared {
            let found = f.kind.read(&aws, f.want.as_ref()).await.unwrap().unwrap();
            assert_eq!(Some(found.spec), f.want);
        }
        assert_eq!(listed.num_calls(), 1);
    }

    #[tokio::test]
    async fn no_log_group_means_no_filters_and_a_put_writes_the_metric() {
        let p = flagship();
        let declared = filters(&p);
        let f = &declared[0];
        let missing = mock!(Client::describe_metric_filters).then_error(|| {
            let e = aws_sdk_cloudwatchlogs::types::error::ResourceNotFoundException::builder().build();
            logs::describe_metric_filters::DescribeMetricFiltersError::ResourceNotFoundException(e)
        });
        let want = f.want.clone().unwrap();
        let expected = want.clone();
        let put = mock!(Client::put_metric_filter)
            .match_requests(move |r| {
                let t = &r.metric_transformations()[0];
                r.filter_pattern() == Some(expected.pattern.as_str())
                    && Some(t.metric_value()) == expected.metric_value.as_deref()
                    && Some(t.metric_name()) == expected.metric_name.as_deref()
            })
            .then_output(|| logs::put_metric_filter::PutMetricFilterOutput::builder().build());
        let aws = aws(&[&missing, &put]);
        assert!(f.kind.read(&aws, Some(&want)).await.unwrap().is_none());
        f.kind.create(&aws, &want).await.unwrap();
        assert_eq!(put.num_calls(), 1);
    }
}
