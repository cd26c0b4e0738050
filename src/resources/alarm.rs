//! CloudWatch alarms on the metric filters' metrics, notifying the alert topic. Alarms are
//! read in batches of 100 names per DescribeAlarms call, shared by every alarm of the profile.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic, Tag};
use serde_json::{Value, json};

use super::tag_index::TagIndex;
use super::{Live, Resource, Snapshot, Spec, metric_filter, tag_pairs, text};
use crate::aws::{Aws, AwsResultExt};
use crate::plan::{Address, Attrs};
use crate::profile::{Alarm, Profile};

pub const KIND: &str = "cloudwatch_alarm";
/// DescribeAlarms takes at most 100 names.
const NAMES_PER_CALL: usize = 100;

fn address(name: &str, region: &str) -> Address {
    Address { kind: KIND, name: name.into(), region: region.into() }
}

/// Every declared alarm's name and, once read, what AWS holds for each (attributes and ARN).
pub struct AlarmSet {
    names: Vec<String>,
    snapshot: Snapshot<BTreeMap<String, (Attrs, String)>>,
    tags: Arc<TagIndex>,
}

impl AlarmSet {
    pub fn new(names: Vec<String>, tags: Arc<TagIndex>) -> Arc<Self> {
        Arc::new(AlarmSet { names, snapshot: Snapshot::default(), tags })
    }

    async fn fetch(&self, aws: &Aws) -> anyhow::Result<BTreeMap<String, (Attrs, String)>> {
        let mut found = BTreeMap::new();
        for chunk in self.names.chunks(NAMES_PER_CALL) {
            let got = aws
                .cloudwatch
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .max_records(100)
                .send()
                .await
                .ctx(|| "reading CloudWatch alarms".into())?;
            for a in got.metric_alarms() {
                let mut attrs = Attrs::new();
                attrs.insert("metric_name".into(), json!(a.metric_name()));
                attrs.insert("namespace".into(), json!(a.namespace()));
                attrs.insert("statistic".into(), json!(a.statistic().map(|s| s.as_str())));
                attrs.insert("period".into(), json!(a.period()));
                attrs.insert("evaluation_periods".into(), json!(a.evaluation_periods()));
                attrs.insert("threshold".into(), json!(a.threshold()));
                attrs.insert("comparison_operator".into(), json!(a.comparison_operator().map(|c| c.as_str())));
                attrs.insert("treat_missing_data".into(), json!(a.treat_missing_data()));
                attrs.insert("actions_enabled".into(), json!(a.actions_enabled()));
                attrs.insert("alarm_actions".into(), json!(a.alarm_actions()));
                attrs.insert("description".into(), json!(a.alarm_description().unwrap_or("")));
                found
                    .insert(a.alarm_name().unwrap_or("").to_string(), (attrs, a.alarm_arn().unwrap_or("").to_string()));
            }
        }
        Ok(found)
    }
}

/// Alarms named with `prefix`, tagged as owned by `profile`, that are not `known`.
pub async fn owned(
    aws: &Aws,
    profile: &str,
    prefix: &str,
    tags: &TagIndex,
    known: &HashSet<Address>,
) -> anyhow::Result<Vec<Box<dyn Resource>>> {
    let region = aws.region();
    let mut found: Vec<Box<dyn Resource>> = Vec::new();
    let mut pages = aws.cloudwatch.describe_alarms().alarm_name_prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.ctx(|| "listing CloudWatch alarms".into())?;
        for a in page.metric_alarms() {
            let (Some(name), Some(arn)) = (a.alarm_name(), a.alarm_arn()) else { continue };
            let candidate = CloudWatchAlarm::orphan(name, region);
            if known.contains(&candidate.address()) {
                continue;
            }
            if tags.owned_by(aws, region, arn, profile).await? {
                found.push(Box::new(candidate));
            }
        }
    }
    Ok(found)
}

pub struct CloudWatchAlarm {
    name: String,
    region: String,
    spec: Spec,
    set: Arc<AlarmSet>,
}

impl CloudWatchAlarm {
    pub fn new(profile: &Profile, alarm: &Alarm, set: Arc<AlarmSet>) -> Self {
        let region = profile.runtime.region.clone();
        let alerts = profile.alerts.as_ref().expect("validated: alarms need [alerts]");
        let mut want = Attrs::new();
        want.insert("metric_name".into(), json!(alarm.metric));
        want.insert("namespace".into(), json!(alarm.namespace));
        want.insert("statistic".into(), json!("Sum"));
        want.insert("period".into(), json!(alarm.period));
        want.insert("evaluation_periods".into(), json!(alarm.evaluation_periods));
        want.insert("threshold".into(), json!(alarm.threshold));
        want.insert("comparison_operator".into(), json!(alarm.comparison.as_str()));
        // No events in a period is the normal, quiet state, not a breach.
        want.insert("treat_missing_data".into(), json!("notBreaching"));
        want.insert("actions_enabled".into(), json!(true));
        want.insert("alarm_actions".into(), json!([alerts.topic_arn]));
        want.insert("description".into(), json!(alarm.description));
        let mut tags = super::owner_tags(profile);
        tags["ctguard:severity"] = json!(alarm.severity.as_str());
        want.insert("tags".into(), tags);
        let depends = vec![
            Address { kind: metric_filter::KIND, name: alarm.name.clone(), region: region.clone() },
            super::topic::address(alerts, &region),
        ];
        let spec = Spec::new(address(&alarm.name, &region), want, depends);
        CloudWatchAlarm { name: alarm.name.clone(), region, spec, set }
    }

    fn orphan(name: &str, region: &str) -> Self {
        let set = AlarmSet::new(vec![name.to_string()], Default::default());
        CloudWatchAlarm { name: name.into(), region: region.into(), spec: Spec::undeclared(address(name, region)), set }
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} CloudWatch alarm {}/{}", self.region, self.name)
    }
}

#[async_trait]
impl Resource for CloudWatchAlarm {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        let all = self.set.snapshot.get(|| self.set.fetch(aws)).await?;
        let Some((attrs, arn)) = all.get(&self.name) else { return Ok(None) };
        // DescribeAlarms leaves tags out.
        let tags = self.set.tags.tags(aws, &self.region, arn, self.spec.want.get("tags")).await?;
        let mut attrs = attrs.clone();
        attrs.insert("tags".into(), tags);
        Ok(Some(Live { attrs, ..Live::default() }))
    }

    async fn read_back(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        self.set.snapshot.forget().await;
        self.read(aws).await
    }

    async fn create(&self, aws: &Aws, want: &Attrs) -> anyhow::Result<()> {
        self.put(aws, want, true).await
    }

    async fn update(&self, aws: &Aws, want: &Attrs, changed: &BTreeSet<String>) -> anyhow::Result<()> {
        if changed.iter().any(|c| c != "tags") {
            self.put(aws, want, false).await?;
        }
        if changed.contains("tags") {
            let all = self.set.snapshot.get(|| self.set.fetch(aws)).await?;
            let arn = all.get(&self.name).map(|(_, arn)| arn.clone()).unwrap_or_default();
            let tags = Self::tags(want)?;
            aws.cloudwatch
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(tags))
                .send()
                .await
                .ctx(|| self.what("tagging"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        aws.cloudwatch.delete_alarms().alarm_names(&self.name).send().await.found(|| self.what("deleting"))?;
        Ok(())
    }
}

impl CloudWatchAlarm {
    fn tags(want: &Attrs) -> anyhow::Result<Vec<Tag>> {
        Ok(tag_pairs(want).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect())
    }

    /// PutMetricAlarm replaces the whole alarm definition; tags only apply when creating.
    async fn put(&self, aws: &Aws, want: &Attrs, with_tags: bool) -> anyhow::Result<()> {
        let num = |k: &str| want[k].as_i64().unwrap_or_default() as i32;
        let actions: Vec<String> = want["alarm_actions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        let mut req = aws
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&self.name)
            .alarm_description(text(want, "description"))
            .actions_enabled(true)
            .set_alarm_actions(Some(actions))
            .metric_name(text(want, "metric_name"))
            .namespace(text(want, "namespace"))
            .statistic(Statistic::Sum)
            .period(num("period"))
            .evaluation_periods(num("evaluation_periods"))
            .threshold(want["threshold"].as_f64().unwrap_or(1.0))
            .comparison_operator(ComparisonOperator::from(text(want, "comparison_operator")))
            .treat_missing_data(text(want, "treat_missing_data"));
        if with_tags {
            req = req.set_tags(Some(Self::tags(want)?));
        }
        req.send().await.ctx(|| self.what("writing"))?;
        Ok(())
    }
}
