//! The CloudWatch Logs group CloudTrail delivers to. It holds audit data: ctguard never
//! deletes it. With `[cloudwatch_logs] kms`, CloudWatch Logs encrypts its events with that key
//! (AssociateKmsKey); taking the key off (DisassociateKmsKey) leaves new events protected only
//! by AWS's own encryption, so it is a data-loss change apply makes only when asked.

use std::collections::HashMap;

use async_trait::async_trait;
use serde::Serialize;

use super::kind::{Declared, Delta, Found, Kind, Outputs};
use super::tags::{self, Tags};
use super::{kms_key, loss};
use crate::aws::error::created;
use crate::aws::{Aws, AwsResultExt};
use crate::plan::{Address, UNKNOWN};
use crate::profile::{CloudWatchLogs, Kms, Profile};

pub const KIND: &str = "logs_log_group";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogGroupSpec {
    /// `None`: events are kept for ever.
    pub retention_in_days: Option<i32>,
    /// The ARN of the KMS key the group's events are encrypted with (DescribeLogGroups'
    /// `kmsKeyId`); `None`: no customer-managed key.
    pub kms_key_id: Option<String>,
    pub tags: Tags,
}

crate::tagged_spec!(LogGroupSpec);

pub fn address(cw: &CloudWatchLogs, region: &str) -> Address {
    Address { kind: KIND, name: cw.log_group.clone(), region: region.into() }
}

pub struct LogGroup {
    name: String,
    /// ARN without the trailing `:*`, as the tagging API wants it.
    arn: String,
    region: String,
    /// The managed key whose ARN `resolve` fills in.
    key: Option<Address>,
}

impl LogGroup {
    pub fn new(profile: &Profile, cw: &CloudWatchLogs) -> Declared<Self> {
        let region = profile.runtime.region.clone();
        let (key, kms_key_id) = match &cw.kms {
            Some(Kms::Managed { alias, .. }) => (Some(kms_key::address(alias, &region)), None),
            Some(Kms::Existing { key_arn }) => (None, Some(key_arn.clone())),
            None => (None, None),
        };
        let want =
            LogGroupSpec { retention_in_days: Some(cw.retention_days), kms_key_id, tags: tags::owner_tags(profile) };
        let arn = cw.log_group_arn.trim_end_matches(":*").to_string();
        // AssociateKmsKey fails unless the key's policy already lets this region's Logs use it.
        let depends = key.iter().cloned().collect();
        let kind = LogGroup { name: cw.log_group.clone(), arn, region: region.clone(), key };
        Declared::new(kind, address(cw, &region), want, depends)
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} CloudWatch Logs log group {}/{}", self.region, self.name)
    }
}

/// The tags CloudWatch Logs takes: a map.
fn sdk_tags(tags: &Tags) -> HashMap<String, String> {
    tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl LogGroup {
    /// Whether the group holds no event at all. `storedBytes` is not updated in real time, so
    /// a zero is confirmed by the absence of any log stream (events only live in streams).
    async fn empty(&self, aws: &Aws, stored_bytes: Option<i64>) -> anyhow::Result<bool> {
        if stored_bytes != Some(0) {
            return Ok(false);
        }
        let req = aws.logs.describe_log_streams().log_group_name(&self.name).limit(1);
        let streams = req.send().await.ctx(|| self.what("listing log streams of"))?;
        Ok(streams.log_streams().is_empty())
    }
}

#[async_trait]
impl Kind for LogGroup {
    type Spec = LogGroupSpec;

    fn destructive(want: Option<&LogGroupSpec>, have: &LogGroupSpec, empty: bool) -> Vec<String> {
        let Some(want) = want else { return vec!["deletes the log group and every event in it".into()] };
        let mut out = Vec::new();
        if let (None, Some(key)) = (&want.kms_key_id, &have.kms_key_id) {
            out.push(format!("stops encrypting new events with KMS key {key} (DisassociateKmsKey)"));
        }
        if !empty {
            out.extend(loss::retention("retention", want.retention_in_days, have.retention_in_days));
        }
        out
    }

    fn resolve(&self, mut want: LogGroupSpec, outputs: &Outputs) -> LogGroupSpec {
        if let Some(key) = &self.key {
            want.kms_key_id = outputs.get(key).map_or(Some(UNKNOWN.to_string()), |e| e.arn.clone());
        }
        want
    }

    async fn read(&self, aws: &Aws, _: Option<&LogGroupSpec>) -> anyhow::Result<Option<Found<LogGroupSpec>>> {
        // The prefix filter is the only server-side name filter; pick the exact match.
        let req = aws.logs.describe_log_groups().log_group_name_prefix(&self.name);
        let found = req.send().await.ctx(|| self.what("reading"))?;
        let Some(group) = found.log_groups().iter().find(|g| g.log_group_name() == Some(self.name.as_str())) else {
            return Ok(None);
        };
        let req = aws.logs.list_tags_for_resource().resource_arn(&self.arn);
        let tags = req.send().await.found(|| self.what("reading tags of"))?;
        let tags = tags.as_ref().and_then(|t| t.tags()).into_iter().flatten();
        let spec = LogGroupSpec {
            retention_in_days: group.retention_in_days(),
            kms_key_id: group.kms_key_id().map(str::to_string),
            tags: tags::managed(tags.map(|(k, v)| (k.as_str(), v.as_str()))),
        };
        Ok(Some(Found { empty: self.empty(aws, group.stored_bytes()).await?, ..Found::new(spec) }))
    }

    async fn create(&self, aws: &Aws, want: &LogGroupSpec) -> anyhow::Result<()> {
        let req = aws.logs.create_log_group().log_group_name(&self.name).set_tags(Some(sdk_tags(&want.tags)));
        let req = req.set_kms_key_id(want.kms_key_id.clone());
        if created(req.send().await.ctx(|| self.what("creating")))? {
            // Tags and key were set at creation; retention cannot be.
            let made = LogGroupSpec { retention_in_days: None, ..want.clone() };
            return self.update(aws, &Delta::between(want, Some(&made))).await;
        }
        // Made by an earlier, interrupted run: set every field.
        self.update(aws, &Delta::all(want)).await
    }

    async fn update(&self, aws: &Aws, delta: &Delta<'_, LogGroupSpec>) -> anyhow::Result<()> {
        if delta.changed(|g| &g.retention_in_days) {
            let req = aws.logs.put_retention_policy().log_group_name(&self.name);
            req.set_retention_in_days(delta.want.retention_in_days)
                .send()
                .await
                .ctx(|| self.what("setting retention of"))?;
        }
        if delta.changed(|g| &g.kms_key_id) {
            // Events already stored stay encrypted with the key they were written with.
            match &delta.want.kms_key_id {
                Some(key) => {
                    let req = aws.logs.associate_kms_key().log_group_name(&self.name).kms_key_id(key);
                    req.send().await.ctx(|| self.what("associating the KMS key with"))?;
                }
                // Only a key the live group was read with is taken off (a data-loss change,
                // refused unless asked); a group found on the create path is left as it is.
                None if delta.before().is_some_and(|h| h.kms_key_id.is_some()) => {
                    let req = aws.logs.disassociate_kms_key().log_group_name(&self.name);
                    req.send().await.ctx(|| self.what("disassociating the KMS key from"))?;
                }
                None => {}
            }
        }
        if delta.changed(|g| &g.tags) {
            let req = aws.logs.tag_resource().resource_arn(&self.arn).set_tags(Some(sdk_tags(&delta.want.tags)));
            req.send().await.ctx(|| self.what("tagging"))?;
        }
        Ok(())
    }

    async fn delete(&self, _: &Aws) -> anyhow::Result<()> {
        anyhow::bail!("refusing to delete {}: it holds audit logs", self.what("the"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{aws, flagship, mock};
    use aws_sdk_cloudwatchlogs::{Client, operation as logs, types::LogGroup as SdkGroup, types::LogStream};

    #[tokio::test]
    async fn a_group_left_by_an_interrupted_run_is_converged() {
        let p = flagship();
        let group = LogGroup::new(&p, p.cloudwatch_logs.as_ref().unwrap());
        let want = group.want.clone().unwrap();
        let exists = mock!(Client::create_log_group).then_error(|| {
            let e = aws_sdk_cloudwatchlogs::types::error::ResourceAlreadyExistsException::builder().build();
            logs::create_log_group::CreateLogGroupError::ResourceAlreadyExistsException(e)
        });
        let retention = mock!(Client::put_retention_policy)
            .match_requests(|r| r.retention_in_days() == Some(365))
            .then_output(|| logs::put_retention_policy::PutRetentionPolicyOutput::builder().build());
        let tag = mock!(Client::tag_resource)
            .match_requests(|r| {
                r.resource_arn() == Some("arn:aws:logs:us-east-1:123456789012:log-group:/ctguard/cloudtrail")
            })
            .then_output(|| logs::tag_resource::TagResourceOutput::builder().build());
        let aws = aws(&[&exists, &retention, &tag]);
        group.kind.create(&aws, &want).await.unwrap();
        assert_eq!((retention.num_calls(), tag.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn the_declared_key_is_associated_and_taking_it_off_is_a_data_loss_change() {
        let p = flagship();
        let group = LogGroup::new(&p, p.cloudwatch_logs.as_ref().unwrap());
        let key = kms_key::address("alias/ctguard-logs", "us-east-1");
        assert_eq!(group.depends, vec![key.clone()]);
        let arn = "arn:aws:kms:us-east-1:123456789012:key/k-9";
        let outputs = Outputs::from([(key, super::super::kind::Exports { arn: Some(arn.into()) })]);
        let want = group.kind.resolve(group.want.clone().unwrap(), &outputs);
        assert_eq!(want.kms_key_id.as_deref(), Some(arn));
        let have = LogGroupSpec { kms_key_id: None, ..want.clone() };
        let associate = mock!(Client::associate_kms_key)
            .match_requests(move |r| r.log_group_name() == Some("/ctguard/cloudtrail") && r.kms_key_id() == Some(arn))
            .then_output(|| logs::associate_kms_key::AssociateKmsKeyOutput::builder().build());
        group.kind.update(&aws(&[&associate]), &Delta::between(&want, Some(&have))).await.unwrap();
        assert_eq!(associate.num_calls(), 1);
        assert!(LogGroup::destructive(Some(&want), &have, false).is_empty());

        // A profile without a key, on a group that has one.
        let plain = LogGroupSpec { kms_key_id: None, ..want.clone() };
        let lost = LogGroup::destructive(Some(&plain), &want, true);
        assert_eq!(lost, [format!("stops encrypting new events with KMS key {arn} (DisassociateKmsKey)")]);
        let off = mock!(Client::disassociate_kms_key)
            .then_output(|| logs::disassociate_kms_key::DisassociateKmsKeyOutput::builder().build());
        group.kind.update(&aws(&[&off]), &Delta::between(&plain, Some(&want))).await.unwrap();
        assert_eq!(off.num_calls(), 1);
        // Never on the create path, where nothing was read: no rule, so a call would panic.
        let retention = mock!(Client::put_retention_policy)
            .then_output(|| logs::put_retention_policy::PutRetentionPolicyOutput::builder().build());
        let tag = mock!(Client::tag_resource).then_output(|| logs::tag_resource::TagResourceOutput::builder().build());
        group.kind.update(&aws(&[&retention, &tag]), &Delta::all(&plain)).await.unwrap();
    }

    #[tokio::test]
    async fn reads_the_exact_group_and_its_managed_tags() {
        let p = flagship();
        let group = LogGroup::new(&p, p.cloudwatch_logs.as_ref().unwrap());
        let listed = mock!(Client::describe_log_groups).then_output(|| {
            let other = SdkGroup::builder().log_group_name("/ctguard/cloudtrail-old").retention_in_days(1).build();
            let ours = SdkGroup::builder().log_group_name("/ctguard/cloudtrail").build();
            logs::describe_log_groups::DescribeLogGroupsOutput::builder().log_groups(other).log_groups(ours).build()
        });
        let tags = mock!(Client::list_tags_for_resource).then_output(|| {
            logs::list_tags_for_resource::ListTagsForResourceOutput::builder()
                .tags("ctguard:profile", "ai-agent-guard")
                .build()
        });
        let aws = aws(&[&listed, &tags]);
        let found = group.kind.read(&aws, None).await.unwrap().unwrap();
        // No retention policy means events are kept for ever: absent, not a default.
        assert_eq!(found.spec.retention_in_days, None);
        assert_eq!(found.spec.tags, tags::owner_tags(&p));
        // No stored bytes reported: not known to be empty, and no stream listing needed.
        assert!(!found.empty);
    }

    #[tokio::test]
    async fn a_group_is_empty_only_when_it_has_no_stream() {
        let p = flagship();
        let group = LogGroup::new(&p, p.cloudwatch_logs.as_ref().unwrap());
        let listed = mock!(Client::describe_log_groups).then_output(|| {
            let ours = SdkGroup::builder().log_group_name("/ctguard/cloudtrail").stored_bytes(0).build();
            logs::describe_log_groups::DescribeLogGroupsOutput::builder().log_groups(ours).build()
        });
        let tags = mock!(Client::list_tags_for_resource)
            .then_output(|| logs::list_tags_for_resource::ListTagsForResourceOutput::builder().build());
        let no_stream = mock!(Client::describe_log_streams)
            .match_requests(|r| r.log_group_name() == Some("/ctguard/cloudtrail") && r.limit() == Some(1))
            .then_output(|| logs::describe_log_streams::DescribeLogStreamsOutput::builder().build());
        let found = group.kind.read(&aws(&[&listed, &tags, &no_stream]), None).await.unwrap().unwrap();
        assert!(found.empty);
        // storedBytes lags behind: a zero with a stream is not taken for empty.
        let a_stream = mock!(Client::describe_log_streams).then_output(|| {
            let stream = LogStream::builder().log_stream_name("s").build();
            logs::describe_log_streams::DescribeLogStreamsOutput::builder().log_streams(stream).build()
        });
        let found = group.kind.read(&aws(&[&listed, &tags, &a_stream]), None).await.unwrap().unwrap();
        assert!(!found.empty);
    }
}
