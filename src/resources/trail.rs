//! The CloudTrail trail: multi-region, global service events, log-file validation, optional
//! KMS, CloudWatch Logs delivery, management events, and logging kept on.

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_cloudtrail::types::{EventSelector, ReadWriteType, Tag};
use serde_json::{Value, json};

use super::{
    Check, Live, Outputs, Resource, Spec, flag, kms_key, log_group, managed_tags, owner_tags, retry_propagation, role,
    text,
};
use crate::aws::{Aws, AwsResultExt};
use crate::plan::{Address, Attrs, UNKNOWN};
use crate::profile::{Kms, Profile};

pub const KIND: &str = "cloudtrail_trail";

/// Fields UpdateTrail sets. CloudWatch Logs role and group must travel together.
const TRAIL_FIELDS: [&str; 8] = [
    "s3_bucket_name",
    "s3_key_prefix",
    "is_multi_region_trail",
    "include_global_service_events",
    "log_file_validation_enabled",
    "kms_key_id",
    "cloud_watch_logs_log_group_arn",
    "cloud_watch_logs_role_arn",
];

pub struct Trail {
    name: String,
    arn: String,
    region: String,
    spec: Spec,
    /// Where the key ARN comes from when ctguard manages the key.
    key: Option<Address>,
}

fn address(name: &str, region: &str) -> Address {
    Address { kind: KIND, name: name.into(), region: region.into() }
}

impl Trail {
    pub fn new(profile: &Profile, region: &str) -> Self {
        let t = &profile.trail;
        let mut want = Attrs::new();
        want.insert("s3_bucket_name".into(), json!(profile.bucket.name));
        want.insert("s3_key_prefix".into(), json!(profile.bucket.trail_prefix));
        want.insert("is_multi_region_trail".into(), json!(t.multi_region));
        want.insert("include_global_service_events".into(), json!(t.include_global_service_events));
        want.insert("log_file_validation_enabled".into(), json!(t.log_file_validation));
        want.insert(
            "event_selectors".into(),
            json!([{"read_write_type": t.management_events.as_str(), "include_management_events": true, "data_resources": []}]),
        );
        want.insert("is_logging".into(), json!(true));
        want.insert("tags".into(), owner_tags(profile));
        let mut depends =
            vec![Address { kind: super::bucket::KIND, name: profile.bucket.name.clone(), region: region.into() }];
        let (group, role_arn) = match &profile.cloudwatch_logs {
            Some(cw) => {
                depends.push(log_group::address(cw, region));
                depends.push(role::address(&cw.role_name, region));
                (json!(cw.log_group_arn), json!(cw.role_arn))
            }
            None => (Value::Null, Value::Null),
        };
        want.insert("cloud_watch_logs_log_group_arn".into(), group);
        want.insert("cloud_watch_logs_role_arn".into(), role_arn);
        let key = match &t.kms {
            Some(Kms::Managed { alias, .. }) => {
                let a = kms_key::address(alias, region);
                depends.push(a.clone());
                Some(a)
            }
            Some(Kms::Existing { key_arn }) => {
                want.insert("kms_key_id".into(), json!(key_arn));
                None
            }
            None => {
                want.insert("kms_key_id".into(), Value::Null);
                None
            }
        };
        let spec = Spec::new(address(&t.name, region), want, depends);
        Trail { name: t.name.clone(), arn: t.arn.clone(), region: region.into(), spec, key }
    }

    /// A trail this profile owns but no longer declares.
    fn orphan(name: &str, arn: &str, region: &str) -> Self {
        let spec = Spec::undeclared(address(name, region));
        Trail { name: name.into(), arn: arn.into(), region: region.into(), spec, key: None }
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} CloudTrail trail {}/{}", self.region, self.name)
    }
}

/// Trails in the home region tagged as owned by `profile`.
pub async fn owned(aws: &Aws, profile: &str) -> anyhow::Result<Vec<Box<dyn Resource>>> {
    let region = aws.region();
    let listed = aws
        .cloudtrail
        .describe_trails()
        .include_shadow_trails(false)
        .send()
        .await
        .ctx(|| "listing CloudTrail trails".into())?;
    let local: Vec<(String, String)> = listed
        .trail_list()
        .iter()
        .filter(|t| t.home_region() == Some(region))
        .filter_map(|t| Some((t.name()?.to_string(), t.trail_arn()?.to_string())))
        .collect();
    let mut out: Vec<Box<dyn Resource>> = Vec::new();
    // ListTags takes at most 20 trails per call.
    for chunk in local.chunks(20) {
        let arns: Vec<String> = chunk.iter().map(|(_, arn)| arn.clone()).collect();
        let tags = aws
            .cloudtrail
            .list_tags()
            .set_resource_id_list(Some(arns))
            .send()
            .await
            .ctx(|| "reading trail tags".into())?;
        for r in tags.resource_tag_list() {
            let mine = r.tags_list().iter().any(|t| t.key() == super::OWNER_TAG && t.value() == Some(profile));
            if let Some((name, arn)) = chunk.iter().find(|(_, arn)| Some(arn.as_str()) == r.resource_id())
                && mine
            {
                out.push(Box::new(Trail::orphan(name, arn, region)));
            }
        }
    }
    Ok(out)
}

fn selectors(list: &[EventSelector]) -> Value {
    list.iter()
        .map(|s| {
            let data: Vec<Value> =
                s.data_resources().iter().map(|d| json!({"type": d.r#type(), "values": d.values()})).collect();
            let mut v = json!({
                "read_write_type": s.read_write_type().map(|r| r.as_str()),
                "include_management_events": s.include_management_events(),
                "data_resources": data,
            });
            if !s.exclude_management_event_sources().is_empty() {
                v["exclude_management_event_sources"] = json!(s.exclude_management_event_sources());
            }
            v
        })
        .collect()
}

/// An empty string or absent value means "none" for optional trail fields.
fn opt(v: Option<&str>) -> Value {
    match v {
        Some(s) if !s.is_empty() => json!(s),
        _ => Value::Null,
    }
}

#[async_trait]
impl Resource for Trail {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn desired(&self, outputs: &Outputs) -> Attrs {
        let mut want = self.spec.want.clone();
        if let Some(key) = &self.key {
            let arn = outputs.get(key).and_then(|o| o.get("arn")).cloned().unwrap_or(json!(UNKNOWN));
            want.insert("kms_key_id".into(), arn);
        }
        want
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        let ct = &aws.cloudtrail;
        let Some(got) = ct.get_trail().name(&self.name).send().await.found(|| self.what("reading"))? else {
            return Ok(None);
        };
        let Some(trail) = got.trail() else { return Ok(None) };
        if let Some(home) = trail.home_region()
            && home != self.region
        {
            anyhow::bail!(
                "CloudTrail trail {} lives in {home}, not {}: set home_region = \"{home}\" in the profile",
                self.name,
                self.region
            );
        }
        let (status, selected, tags) = tokio::try_join!(
            async { ct.get_trail_status().name(&self.arn).send().await.ctx(|| self.what("reading the status of")) },
            async {
                ct.get_event_selectors()
                    .trail_name(&self.arn)
                    .send()
                    .await
                    .ctx(|| self.what("reading event selectors of"))
            },
            async { ct.list_tags().resource_id_list(&self.arn).send().await.ctx(|| self.what("reading tags of")) },
        )?;
        let mut attrs = Attrs::new();
        attrs.insert("s3_bucket_name".into(), opt(trail.s3_bucket_name()));
        attrs.insert("s3_key_prefix".into(), json!(trail.s3_key_prefix().unwrap_or("")));
        attrs.insert("is_multi_region_trail".into(), json!(trail.is_multi_region_trail().unwrap_or(false)));
        attrs.insert(
            "include_global_service_events".into(),
            json!(trail.include_global_service_events().unwrap_or(false)),
        );
        attrs.insert("log_file_validation_enabled".into(), json!(trail.log_file_validation_enabled().unwrap_or(false)));
        attrs.insert("kms_key_id".into(), opt(trail.kms_key_id()));
        attrs.insert("cloud_watch_logs_log_group_arn".into(), opt(trail.cloud_watch_logs_log_group_arn()));
        attrs.insert("cloud_watch_logs_role_arn".into(), opt(trail.cloud_watch_logs_role_arn()));
        let sel = if selected.advanced_event_selectors().is_empty() {
            selectors(selected.event_selectors())
        } else {
            json!(format!("{} advanced event selectors", selected.advanced_event_selectors().len()))
        };
        attrs.insert("event_selectors".into(), sel);
        attrs.insert("is_logging".into(), json!(status.is_logging().unwrap_or(false)));
        let tag_list = tags.resource_tag_list().first().map(|r| r.tags_list()).unwrap_or_default();
        attrs.insert("tags".into(), managed_tags(tag_list.iter().map(|t| (t.key(), t.value().unwrap_or("")))));
        let mut checks = Vec::new();
        for (name, err) in [
            ("trail delivers log files to S3", status.latest_delivery_error()),
            ("trail delivers digest files to S3", status.latest_digest_delivery_error()),
            ("trail delivers events to CloudWatch Logs", status.latest_cloud_watch_logs_delivery_error()),
        ] {
            let detail = match err {
                Some(e) if !e.is_empty() => e.to_string(),
                _ => "no delivery error reported".to_string(),
            };
            checks.push(Check { name: name.into(), ok: err.is_none_or(str::is_empty), detail });
        }
        if self.spec.want.get("cloud_watch_logs_log_group_arn").is_some_and(|v| !v.is_null()) {
            checks.push(recent_delivery(status.latest_cloud_watch_logs_delivery_time(), std::time::SystemTime::now()));
        }
        Ok(Some(Live { attrs, checks, ..Live::default() }))
    }

    async fn create(&self, aws: &Aws, want: &Attrs) -> anyhow::Result<()> {
        let tags = super::tag_pairs(want)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()?;
        let created = retry_propagation(|| async {
            aws.cloudtrail
                .create_trail()
                .name(&self.name)
                .s3_bucket_name(text(want, "s3_bucket_name"))
                .s3_key_prefix(text(want, "s3_key_prefix"))
                .is_multi_region_trail(flag(want, "is_multi_region_trail"))
                .include_global_service_events(flag(want, "include_global_service_events"))
                .enable_log_file_validation(flag(want, "log_file_validation_enabled"))
                .set_kms_key_id(want["kms_key_id"].as_str().map(str::to_string))
                .set_cloud_watch_logs_log_group_arn(want["cloud_watch_logs_log_group_arn"].as_str().map(str::to_string))
                .set_cloud_watch_logs_role_arn(want["cloud_watch_logs_role_arn"].as_str().map(str::to_string))
                .set_tags_list(Some(tags.clone()))
                .send()
                .await
                .ctx(|| self.what("creating"))
        })
        .await;
        let mut rest: BTreeSet<String> = ["event_selectors", "is_logging"].map(String::from).into();
        if let Err(e) = created {
            // A run interrupted after CreateTrail left the trail behind: converge it instead.
            if crate::aws::error::kind(&e) != crate::aws::ErrorKind::AlreadyExists {
                return Err(e);
            }
            rest = want.keys().cloned().collect();
        }
        self.update(aws, want, &rest).await
    }

    async fn update(&self, aws: &Aws, want: &Attrs, changed: &BTreeSet<String>) -> anyhow::Result<()> {
        let ct = &aws.cloudtrail;
        if TRAIL_FIELDS.iter().any(|f| changed.contains(*f)) {
            // An empty string removes an optional setting; UpdateTrail needs the CloudWatch
            // Logs role and group together.
            let or_empty = |k: &str| want[k].as_str().unwrap_or("").to_string();
            retry_propagation(|| async {
                ct.update_trail()
                    .name(&self.name)
                    .s3_bucket_name(text(want, "s3_bucket_name"))
                    .s3_key_prefix(text(want, "s3_key_prefix"))
                    .is_multi_region_trail(flag(want, "is_multi_region_trail"))
                    .include_global_service_events(flag(want, "include_global_service_events"))
                    .enable_log_file_validation(flag(want, "log_file_validation_enabled"))
                    .kms_key_id(or_empty("kms_key_id"))
                    .cloud_watch_logs_log_group_arn(or_empty("cloud_watch_logs_log_group_arn"))
                    .cloud_watch_logs_role_arn(or_empty("cloud_watch_logs_role_arn"))
                    .send()
                    .await
                    .ctx(|| self.what("updating"))
            })
            .await?;
        }
        if changed.contains("event_selectors") {
            let rw = want["event_selectors"][0]["read_write_type"].as_str().unwrap_or("All");
            let selector = EventSelector::builder()
                .read_write_type(ReadWriteType::from(rw))
                .include_management_events(true)
                .build();
            ct.put_event_selectors()
                .trail_name(&self.name)
                .event_selectors(selector)
                .send()
                .await
                .ctx(|| self.what("setting event selectors of"))?;
        }
        if changed.contains("tags") {
            let tags = super::tag_pairs(want)
                .into_iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()?;
            ct.add_tags().resource_id(&self.arn).set_tags_list(Some(tags)).send().await.ctx(|| self.what("tagging"))?;
        }
        // A new trail does not log until StartLogging; last, so logging starts fully configured.
        if changed.contains("is_logging") {
            ct.start_logging().name(&self.name).send().await.ctx(|| self.what("starting logging of"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        aws.cloudtrail.delete_trail().name(&self.name).send().await.found(|| self.what("deleting"))?;
        Ok(())
    }
}

/// A trail that logs management events delivers to its log group every few minutes: AWS's own
/// services make calls in every account. Hours of silence mean the group has stopped receiving
/// (a broken role, a deleted stream) even when no delivery error is reported.
const QUIET_LIMIT: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

fn recent_delivery(last: Option<&aws_smithy_types::DateTime>, now: std::time::SystemTime) -> Check {
    let name = "log group received events from the trail recently".to_string();
    let Some(last) = last else {
        return Check { name, ok: true, detail: "the API reports no delivery time yet".into() };
    };
    let age = std::time::SystemTime::try_from(*last).ok().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
    let minutes = age.as_secs() / 60;
    let ok = age <= QUIET_LIMIT;
    let detail = if ok {
        format!("last delivery {minutes} min ago")
    } else {
        format!(
            "last delivery {minutes} min ago, more than {} h: CloudWatch Logs alarms see nothing",
            QUIET_LIMIT.as_secs() / 3600
        )
    };
    Check { name, ok, detail }
}

#[cfg(test)]
mod delivery_tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn delivery_recency() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |secs_ago: i64| aws_smithy_types::DateTime::from_secs(1_800_000_000 - secs_ago);
        assert!(recent_delivery(Some(&at(300)), now).ok);
        let stale = recent_delivery(Some(&at(3 * 3600)), now);
        assert!(!stale.ok && stale.detail.contains("180 min ago"), "{}", stale.detail);
        assert!(recent_delivery(None, now).ok);
    }
}
