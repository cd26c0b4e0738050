//! The CloudWatch Logs group CloudTrail delivers to. It holds audit data: ctguard never
//! deletes it.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use serde_json::json;

use super::{Live, Resource, Spec, managed_tags, owner_tags, tag_pairs};
use crate::aws::{Aws, AwsResultExt, ErrorKind};
use crate::plan::{Address, Attrs};
use crate::profile::{CloudWatchLogs, Profile};

pub const KIND: &str = "logs_log_group";

pub fn address(cw: &CloudWatchLogs, region: &str) -> Address {
    Address { kind: KIND, name: cw.log_group.clone(), region: region.into() }
}

pub struct LogGroup {
    name: String,
    /// ARN without the trailing `:*`, as the tagging API wants it.
    arn: String,
    region: String,
    spec: Spec,
}

impl LogGroup {
    pub fn new(profile: &Profile, cw: &CloudWatchLogs) -> Self {
        let mut want = Attrs::new();
        want.insert("retention_in_days".into(), json!(cw.retention_days));
        want.insert("tags".into(), owner_tags(profile));
        let arn = cw.log_group_arn.trim_end_matches(":*").to_string();
        let region = profile.runtime.region.clone();
        let spec = Spec::new(address(cw, &region), want, Vec::new());
        LogGroup { name: cw.log_group.clone(), arn, region, spec }
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} CloudWatch Logs log group {}/{}", self.region, self.name)
    }
}

#[async_trait]
impl Resource for LogGroup {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        // The prefix filter is the only server-side name filter; pick the exact match.
        let found = aws
            .logs
            .describe_log_groups()
            .log_group_name_prefix(&self.name)
            .send()
            .await
            .ctx(|| self.what("reading"))?;
        let Some(group) = found.log_groups().iter().find(|g| g.log_group_name() == Some(self.name.as_str())) else {
            return Ok(None);
        };
        let tags = aws
            .logs
            .list_tags_for_resource()
            .resource_arn(&self.arn)
            .send()
            .await
            .found(|| self.what("reading tags of"))?;
        let tags = tags.as_ref().and_then(|t| t.tags());
        let mut attrs = Attrs::new();
        attrs.insert("retention_in_days".into(), json!(group.retention_in_days()));
        attrs.insert("tags".into(), managed_tags(tags.into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()))));
        Ok(Some(Live { attrs, ..Live::default() }))
    }

    async fn create(&self, aws: &Aws, want: &Attrs) -> anyhow::Result<()> {
        let tags: HashMap<String, String> = tag_pairs(want).into_iter().collect();
        match aws
            .logs
            .create_log_group()
            .log_group_name(&self.name)
            .set_tags(Some(tags))
            .send()
            .await
            .ctx(|| self.what("creating"))
        {
            Ok(_) => {}
            Err(e) if crate::aws::error::kind(&e) == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let all: BTreeSet<String> = want.keys().cloned().collect();
        self.update(aws, want, &all).await
    }

    async fn update(&self, aws: &Aws, want: &Attrs, changed: &BTreeSet<String>) -> anyhow::Result<()> {
        if changed.contains("retention_in_days") {
            let days = want["retention_in_days"].as_i64().unwrap_or(365) as i32;
            aws.logs
                .put_retention_policy()
                .log_group_name(&self.name)
                .retention_in_days(days)
                .send()
                .await
                .ctx(|| self.what("setting retention of"))?;
        }
        if changed.contains("tags") {
            let tags: HashMap<String, String> = tag_pairs(want).into_iter().collect();
            aws.logs
                .tag_resource()
                .resource_arn(&self.arn)
                .set_tags(Some(tags))
                .send()
                .await
                .ctx(|| self.what("tagging"))?;
        }
        Ok(())
    }

    async fn delete(&self, _: &Aws) -> anyhow::Result<()> {
        anyhow::bail!("refusing to delete {}: it holds audit logs", self.what("the"))
    }
}
