//! CloudWatch alarms on the metric filters' metrics, notifying the alert topic. Alarms are
//! read in batches of 100 names per DescribeAlarms call, shared by every alarm of the profile.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricAlarm, Statistic};
use serde::Serialize;

use super::discovery::{PREFIX, Search};
use super::kind::{Declared, Delta, Found, Kind, Resource};
use super::snapshot::Snapshot;
use super::tag_index::{Listed, TagIndex};
use super::tags::{self, SEVERITY_TAG, Tags};
use super::{metric_filter, topic};
use crate::aws::{Aws, AwsResultExt};
use crate::plan::Address;
use crate::profile::{Alarm, Profile};

pub const KIND: &str = "cloudwatch_alarm";
/// DescribeAlarms takes at most 100 names.
const NAMES_PER_CALL: usize = 100;
/// No events in a period is the normal, quiet state, not a breach.
const NOT_BREACHING: &str = "notBreaching";

fn address(name: &str, region: &str) -> Address {
    Address { kind: KIND, name: name.into(), region: region.into() }
}

/// An alarm as ctguard compares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmSpec {
    pub metric_name: Option<String>,
    pub namespace: Option<String>,
    pub statistic: Option<String>,
    pub period: Option<i32>,
    pub evaluation_periods: Option<i32>,
    pub threshold: Option<f64>,
    pub comparison_operator: Option<String>,
    pub treat_missing_data: Option<String>,
    pub actions_enabled: Option<bool>,
    pub alarm_actions: Vec<String>,
    /// CloudWatch omits an empty description; absent reads as "".
    pub description: String,
    pub tags: Tags,
}

crate::tagged_spec!(AlarmSpec);

/// Every declared alarm's name and, once read, what AWS holds for each.
pub struct AlarmSet {
    names: Vec<String>,
    snapshot: Snapshot<BTreeMap<String, Listed<AlarmSpec>>>,
    tags: Arc<TagIndex>,
}

impl AlarmSet {
    pub fn new(names: Vec<String>, tags: Arc<TagIndex>) -> Arc<Self> {
        Arc::new(AlarmSet { names, snapshot: Snapshot::default(), tags })
    }

    async fn fetch(&self, aws: &Aws) -> anyhow::Result<BTreeMap<String, Listed<AlarmSpec>>> {
        let mut found = BTreeMap::new();
        for chunk in self.names.chunks(NAMES_PER_CALL) {
            let req = aws.cloudwatch.describe_alarms().set_alarm_names(Some(chunk.to_vec())).max_records(100);
            let got = req.send().await.ctx(|| "reading CloudWatch alarms".into())?;
            for a in got.metric_alarms() {
                let listed = Listed { spec: flatten(a), arn: a.alarm_arn().unwrap_or("").to_string() };
                found.insert(a.alarm_name().unwrap_or("").to_string(), listed);
            }
        }
        Ok(found)
    }
}

/// An alarm as DescribeAlarms lists it, without its tags (which it leaves out).
fn flatten(a: &MetricAlarm) -> AlarmSpec {
    AlarmSpec {
        metric_name: a.metric_name().map(str::to_string),
        namespace: a.namespace().map(str::to_string),
        statistic: a.statistic().map(|s| s.as_str().to_string()),
        period: a.period(),
        evaluation_periods: a.evaluation_periods(),
        threshold: a.threshold(),
        comparison_operator: a.comparison_operator().map(|c| c.as_str().to_string()),
        treat_missing_data: a.treat_missing_data().map(str::to_string),
        actions_enabled: a.actions_enabled(),
        alarm_actions: a.alarm_actions().to_vec(),
        description: a.alarm_description().unwrap_or("").to_string(),
        tags: Tags::new(),
    }
}

/// Alarms named with the discovery prefix, tagged as owned by `profile`, that are not `known`.
pub async fn owned(search: &Search<'_>) -> anyhow::Result<Vec<Box<dyn Resource>>> {
    let (aws, region) = (search.aws, search.aws.region());
    let mut candidates: Vec<(String, Box<dyn Resource>)> = Vec::new();
    let mut pages = aws.cloudwatch.describe_alarms().alarm_name_prefix(PREFIX).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.ctx(|| "listing CloudWatch alarms".into())?;
        for a in page.metric_alarms() {
            let (Some(name), Some(arn)) = (a.alarm_name(), a.alarm_arn()) else { continue };
            candidates.push((arn.to_string(), Box::new(CloudWatchAlarm::orphan(name, region))));
        }
    }
    search.tagged_as_owned(&search.listings.tags[region], region, candidates).await
}

pub struct CloudWatchAlarm {
    name: String,
    region: String,
    set: Arc<AlarmSet>,
}

/// CloudWatch's own notification carries the alarm description, the one part of it the profile
/// controls: it opens with the severity and ends with where the events behind the alarm are.
/// CloudWatch takes at most 1024 characters.
fn description(alarm: &Alarm, log_group: Option<&str>) -> String {
    let mut text = format!("[{}] {}", alarm.severity.as_str().to_uppercase(), alarm.description.trim());
    if !text.ends_with('.') {
        text.push('.');
    }
    if let Some(group) = log_group {
        text.push_str(&format!(
            " The CloudTrail events behind it are in log group {group}, matched by metric filter {}.",
            alarm.name
        ));
    }
    text.chars().take(1024).collect()
}

impl CloudWatchAlarm {
    pub fn new(profile: &Profile, alarm: &Alarm, set: Arc<AlarmSet>) -> Declared<Self> {
        let region = profile.runtime.region.clone();
        let alerts = profile.alerts.as_ref().expect("validated: alarms need [alerts]");
        let mut tags = tags::owner_tags(profile);
        tags.insert(SEVERITY_TAG.to_string(), alarm.severity.as_str().to_string());
        let want = AlarmSpec {
            metric_name: Some(alarm.metric.clone()),
            namespace: Some(alarm.namespace.clone()),
            statistic: Some(Statistic::Sum.as_str().to_string()),
            period: Some(alarm.period),
            evaluation_periods: Some(alarm.evaluation_periods),
            threshold: Some(alarm.threshold),
            comparison_operator: Some(alarm.comparison.as_str().to_string()),
            treat_missing_data: Some(NOT_BREACHING.to_string()),
            actions_enabled: Some(true),
            alarm_actions: vec![alerts.topic_for(alarm.severity).arn.clone()],
            description: description(alarm, profile.cloudwatch_logs.as_ref().map(|c| c.log_group.as_str())),
            tags,
        };
        let depends = vec![
            metric_filter::address(&alarm.name, &region),
            topic::address(alerts.topic_for(alarm.severity), &region),
        ];
        let address = address(&alarm.name, &region);
        Declared::new(CloudWatchAlarm { name: alarm.name.clone(), region, set }, address, want, depends)
    }

    fn orphan(name: &str, region: &str) -> Declared<Self> {
        let set = AlarmSet::new(vec![name.to_string()], Default::default());
        Declared::undeclared(CloudWatchAlarm { name: name.into(), region: region.into(), set }, address(name, region))
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} CloudWatch alarm {}/{}", self.region, self.name)
    }

    async fn listed(&self, aws: &Aws) -> anyhow::Result<Option<Listed<AlarmSpec>>> {
        let all = self.set.snapshot.get(|| self.set.fetch(aws)).await?;
        Ok(all.get(&self.name).cloned())
    }

    /// PutMetricAlarm replaces the whole alarm definition; tags only apply when creating.
    async fn put(&self, aws: &Aws, want: &AlarmSpec, with_tags: bool) -> anyhow::Result<()> {
        let mut req = aws
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&self.name)
            .alarm_description(&want.description)
            .set_actions_enabled(want.actions_enabled)
            .set_alarm_actions(Some(want.alarm_actions.clone()))
            .set_metric_name(want.metric_name.clone())
            .set_namespace(want.namespace.clone())
            .set_statistic(want.statistic.as_deref().map(Statistic::from))
            .set_period(want.period)
            .set_evaluation_periods(want.evaluation_periods)
            .set_threshold(want.threshold)
            .set_comparison_operator(want.comparison_operator.as_deref().map(ComparisonOperator::from))
            .set_treat_missing_data(want.treat_missing_data.clone());
        if with_tags {
            req = req.set_tags(Some(tags::sdk(&want.tags)?));
        }
        req.send().await.ctx(|| self.what("writing"))?;
        Ok(())
    }
}

#[async_trait]
impl Kind for CloudWatchAlarm {
    type Spec = AlarmSpec;

    async fn read(&self, aws: &Aws, want: Option<&AlarmSpec>) -> anyhow::Result<Option<Found<AlarmSpec>>> {
        let listed = self.listed(aws).await?;
        self.set.tags.found(aws, &self.region, (listed, want), |s| &mut s.tags).await
    }

    async fn forget(&self) {
        self.set.snapshot.forget().await;
    }

    async fn create(&self, aws: &Aws, want: &AlarmSpec) -> anyhow::Result<()> {
        self.put(aws, want, true).await
    }

    async fn update(&self, aws: &Aws, delta: &Delta<'_, AlarmSpec>) -> anyhow::Result<()> {
        let tag = async {
            let arn = self.listed(aws).await?.map(|l| l.arn).unwrap_or_default();
            let req = aws.cloudwatch.tag_resource().resource_arn(arn).set_tags(Some(tags::sdk(&delta.want.tags)?));
            req.send().await.ctx(|| self.what("tagging"))?;
            Ok(())
        };
        let untagged = |s: &AlarmSpec| AlarmSpec { tags: Tags::new(), ..s.clone() };
        delta.put_then_tag(untagged, self.put(aws, delta.want, false), tag).await
    }

    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        aws.cloudwatch.delete_alarms().alarm_names(&self.name).send().await.found(|| self.what("deleting"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{aws, flagship, mock};
    use aws_sdk_cloudwatch::{Client, operation as cw};
    use aws_sdk_resourcegroupstagging::{
        operation as tagging,
        types::{ResourceTagMapping, Tag as IndexTag},
    };

    const ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:";

    fn alarms(p: &Profile) -> Vec<Declared<CloudWatchAlarm>> {
        let chosen: Vec<&Alarm> = p.alarms.iter().filter(|a| !a.requires_data_events).take(2).collect();
        let set = AlarmSet::new(chosen.iter().map(|a| a.name.clone()).collect(), Default::default());
        chosen.into_iter().map(|a| CloudWatchAlarm::new(p, a, set.clone())).collect()
    }

    /// An alarm as DescribeAlarms lists it, as `want` would write it.
    fn listed(name: &str, want: &AlarmSpec) -> MetricAlarm {
        MetricAlarm::builder()
            .alarm_name(name)
            .alarm_arn(format!("{ARN}{name}"))
            .set_metric_name(want.metric_name.clone())
            .set_namespace(want.namespace.clone())
            .set_statistic(want.statistic.as_deref().map(Statistic::from))
            .set_period(want.period)
            .set_evaluation_periods(want.evaluation_periods)
            .set_threshold(want.threshold)
            .set_comparison_operator(want.comparison_operator.as_deref().map(ComparisonOperator::from))
            .set_treat_missing_data(want.treat_missing_data.clone())
            .set_actions_enabled(want.actions_enabled)
            .set_alarm_actions(Some(want.alarm_actions.clone()))
            .alarm_description(&want.description)
            .build()
    }

    #[tokio::test]
    async fn alarms_are_read_in_one_batch_with_tags_from_the_index() {
        let p = flagship();
        let declared = alarms(&p);
        let pairs: Vec<(String, AlarmSpec)> =
            declared.iter().map(|a| (a.kind.name.clone(), a.want.clone().unwrap())).collect();
        let listing = pairs.clone();
        let describe = mock!(Client::describe_alarms).then_output(move || {
            let found = listing.iter().map(|(name, want)| listed(name, want)).collect();
            cw::describe_alarms::DescribeAlarmsOutput::builder().set_metric_alarms(Some(found)).build()
        });
        let index = mock!(aws_sdk_resourcegroupstagging::Client::get_resources).then_output(move || {
            let mappings = pairs.iter().map(|(name, want)| {
                let tags = want.tags.iter().map(|(k, v)| IndexTag::builder().key(k).value(v).build().unwrap());
                ResourceTagMapping::builder()
                    .resource_arn(format!("{ARN}{name}"))
                    .set_tags(Some(tags.collect()))
                    .build()
            });
            tagging::get_resources::GetResourcesOutput::builder()
                .set_resource_tag_mapping_list(Some(mappings.collect()))
                .build()
        });
        let set = declared[0].kind.set.clone();
        let set = AlarmSet::new(set.names.clone(), Arc::new(TagIndex::default()));
        let aws = aws(&[&describe, &index]);
        for a in &declared {
            let alarm = CloudWatchAlarm { set: set.clone(), name: a.kind.name.clone(), region: a.kind.region.clone() };
            let found = alarm.read(&aws, a.want.as_ref()).await.unwrap().unwrap();
            assert_eq!(Some(found.spec), a.want);
        }
        assert_eq!((describe.num_calls(), index.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn tags_go_with_the_put_on_create_and_by_themselves_on_update() {
        let p = flagship();
        let a = &alarms(&p)[0];
        let want = a.want.clone().unwrap();
        let created = mock!(Client::put_metric_alarm)
            .match_requests(|r| {
                r.tags().len() == 2
                    && r.statistic() == Some(&Statistic::Sum)
                    && r.treat_missing_data() == Some(NOT_BREACHING)
            })
            .then_output(|| cw::put_metric_alarm::PutMetricAlarmOutput::builder().build());
        let aws_create = aws(&[&created]);
        a.kind.create(&aws_create, &want).await.unwrap();
        assert_eq!(created.num_calls(), 1);

        // Only the severity tag differs: no PutMetricAlarm, one TagResource on the listed ARN.
        let mut have = want.clone();
        have.tags.insert(SEVERITY_TAG.into(), "edited-by-hand".into());
        let name = a.kind.name.clone();
        let listing = want.clone();
        let describe = mock!(Client::describe_alarms).then_output(move || {
            cw::describe_alarms::DescribeAlarmsOutput::builder().metric_alarms(listed(&name, &listing)).build()
        });
        let arn = format!("{ARN}{}", a.kind.name);
        let tag = mock!(Client::tag_resource)
            .match_requests(move |r| r.resource_arn() == Some(arn.as_str()))
            .then_output(|| cw::tag_resource::TagResourceOutput::builder().build());
        let aws_update = aws(&[&describe, &tag]);
        a.kind.update(&aws_update, &Delta::between(&want, Some(&have))).await.unwrap();
        assert_eq!(tag.num_calls(), 1);
    }
}
