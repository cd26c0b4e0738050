//! CloudWatch Logs metric filters on the trail's log group: each counts the events its
//! pattern matches into a metric that an alarm watches. All filters of the group are read in
//! one paginated batch.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::MetricTransformation;
use serde_json::json;

use super::{Live, Resource, Snapshot, Spec, log_group, text};
use crate::aws::{Aws, AwsResultExt};
use crate::plan::{Address, Attrs};
use crate::profile::{Alarm, CloudWatchLogs, Profile};

pub const KIND: &str = "logs_metric_filter";

pub fn address(name: &str, region: &str) -> Address {
    Address { kind: KIND, name: name.into(), region: region.into() }
}

/// Every filter of one log group, by name, as attributes.
pub type Filters = BTreeMap<String, Attrs>;

pub struct MetricFilter {
    name: String,
    log_group: String,
    spec: Spec,
    group: Arc<Snapshot<Option<Filters>>>,
}

impl MetricFilter {
    /// `group` is shared by all filters of the log group.
    pub fn new(profile: &Profile, cw: &CloudWatchLogs, alarm: &Alarm, group: Arc<Snapshot<Option<Filters>>>) -> Self {
        let region = profile.runtime.region.clone();
        let mut want = Attrs::new();
        want.insert("pattern".into(), json!(alarm.pattern));
        want.insert("metric_name".into(), json!(alarm.metric));
        want.insert("metric_namespace".into(), json!(alarm.namespace));
        want.insert("metric_value".into(), json!("1"));
        let depends = vec![log_group::address(cw, &region)];
        let spec = Spec::new(address(&alarm.name, &region), want, depends);
        MetricFilter { name: alarm.name.clone(), log_group: cw.log_group.clone(), spec, group }
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} metric filter {} on log group {}", self.name, self.log_group)
    }

    async fn fetch(aws: &Aws, log_group: &str) -> anyhow::Result<Option<Filters>> {
        let mut filters = Filters::new();
        let mut pages = aws.logs.describe_metric_filters().log_group_name(log_group).into_paginator().send();
        while let Some(page) = pages.next().await {
            let Some(page) = page.found(|| format!("listing metric filters of log group {log_group}"))? else {
                return Ok(None);
            };
            for f in page.metric_filters() {
                let t = f.metric_transformations().first();
                let mut attrs = Attrs::new();
                attrs.insert("pattern".into(), json!(f.filter_pattern().unwrap_or("")));
                attrs.insert("metric_name".into(), json!(t.map(|t| t.metric_name())));
                attrs.insert("metric_namespace".into(), json!(t.map(|t| t.metric_namespace())));
                attrs.insert("metric_value".into(), json!(t.map(|t| t.metric_value())));
                filters.insert(f.filter_name().unwrap_or("").to_string(), attrs);
            }
        }
        Ok(Some(filters))
    }
}

/// Filters named with `prefix` on the profile's own log group that are not `known`. Filters
/// cannot be tagged; the log group is ctguard's, so prefixed filters on it are too.
pub async fn owned(
    aws: &Aws,
    cw: &CloudWatchLogs,
    prefix: &str,
    known: &HashSet<Address>,
    group: Arc<Snapshot<Option<Filters>>>,
) -> anyhow::Result<Vec<Box<dyn Resource>>> {
    let all = group.get(|| MetricFilter::fetch(aws, &cw.log_group)).await?;
    let Some(all) = all.as_ref() else { return Ok(Vec::new()) };
    let region = aws.region().to_string();
    Ok(all
        .keys()
        .filter(|name| name.starts_with(prefix))
        .map(|name| MetricFilter {
            name: name.clone(),
            log_group: cw.log_group.clone(),
            spec: Spec::undeclared(address(name, &region)),
            group: group.clone(),
        })
        .filter(|f| !known.contains(&f.address()))
        .map(|f| Box::new(f) as Box<dyn Resource>)
        .collect())
}

#[async_trait]
impl Resource for MetricFilter {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        let filters = self.group.get(|| Self::fetch(aws, &self.log_group)).await?;
        let found = filters.as_ref().as_ref().and_then(|f| f.get(&self.name));
        Ok(found.map(|attrs| Live { attrs: attrs.clone(), ..Live::default() }))
    }

    async fn read_back(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        self.group.forget().await;
        self.read(aws).await
    }

    async fn create(&self, aws: &Aws, want: &Attrs) -> anyhow::Result<()> {
        self.update(aws, want, &BTreeSet::new()).await
    }

    /// PutMetricFilter writes every field at once.
    async fn update(&self, aws: &Aws, want: &Attrs, _: &BTreeSet<String>) -> anyhow::Result<()> {
        let transformation = MetricTransformation::builder()
            .metric_name(text(want, "metric_name"))
            .metric_namespace(text(want, "metric_namespace"))
            .metric_value(text(want, "metric_value"))
            .build()?;
        aws.logs
            .put_metric_filter()
            .log_group_name(&self.log_group)
            .filter_name(&self.name)
            .filter_pattern(text(want, "pattern"))
            .metric_transformations(transformation)
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
