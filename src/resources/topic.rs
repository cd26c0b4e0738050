//! The SNS topic every alert is published to: its policy (EventBridge and CloudWatch may
//! publish, scoped to this account; public to no one) and optional KMS encryption.

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_sns::types::Tag;
use serde_json::{Value, json};

use super::{Live, Resource, Spec, kms_key, managed_tags, owner_tags, tag_pairs};
use crate::aws::{Aws, AwsResultExt};
use crate::plan::{Address, Attrs};
use crate::policy;
use crate::profile::{Alerts, Kms, Profile};

pub const KIND: &str = "sns_topic";

pub fn address(alerts: &Alerts, region: &str) -> Address {
    Address { kind: KIND, name: alerts.topic.clone(), region: region.into() }
}

pub struct Topic {
    name: String,
    arn: String,
    region: String,
    spec: Spec,
}

impl Topic {
    pub fn new(profile: &Profile, alerts: &Alerts) -> Self {
        let region = profile.runtime.region.clone();
        let mut want = Attrs::new();
        want.insert("policy".into(), policy::canonical(&alerts.policy));
        // SNS keeps KmsMasterKeyId as it was set, so an alias compares as an alias.
        let (key, depends) = match &alerts.kms {
            Some(Kms::Managed { alias, .. }) => (json!(alias), vec![kms_key::address(alias, &region)]),
            Some(Kms::Existing { key_arn }) => (json!(key_arn), Vec::new()),
            None => (Value::Null, Vec::new()),
        };
        want.insert("kms_master_key_id".into(), key);
        want.insert("tags".into(), owner_tags(profile));
        let spec = Spec::new(address(alerts, &region), want, depends);
        Topic { name: alerts.topic.clone(), arn: alerts.topic_arn.clone(), region, spec }
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} SNS topic {}/{}", self.region, self.name)
    }

    fn tags(want: &Attrs) -> anyhow::Result<Vec<Tag>> {
        Ok(tag_pairs(want)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<_, _>>()?)
    }
}

#[async_trait]
impl Resource for Topic {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        let sns = &aws.sns;
        let Some(got) = sns.get_topic_attributes().topic_arn(&self.arn).send().await.found(|| self.what("reading"))?
        else {
            return Ok(None);
        };
        let tags =
            sns.list_tags_for_resource().resource_arn(&self.arn).send().await.ctx(|| self.what("reading tags of"))?;
        let attributes = got.attributes().cloned().unwrap_or_default();
        let mut attrs = Attrs::new();
        let doc = attributes.get("Policy").map(|p| policy::parse_live(p)).transpose()?;
        attrs.insert("policy".into(), doc.unwrap_or(Value::Null));
        let key = attributes.get("KmsMasterKeyId").filter(|k| !k.is_empty());
        attrs.insert("kms_master_key_id".into(), json!(key));
        attrs.insert("tags".into(), managed_tags(tags.tags().iter().map(|t| (t.key(), t.value()))));
        Ok(Some(Live { attrs, ..Live::default() }))
    }

    async fn create(&self, aws: &Aws, want: &Attrs) -> anyhow::Result<()> {
        let mut req = aws
            .sns
            .create_topic()
            .name(&self.name)
            .attributes("Policy", serde_json::to_string(&want["policy"])?)
            .set_tags(Some(Self::tags(want)?));
        if let Some(key) = want["kms_master_key_id"].as_str() {
            req = req.attributes("KmsMasterKeyId", key);
        }
        // CreateTopic is idempotent for the same name and attributes.
        req.send().await.ctx(|| self.what("creating"))?;
        Ok(())
    }

    async fn update(&self, aws: &Aws, want: &Attrs, changed: &BTreeSet<String>) -> anyhow::Result<()> {
        let sns = &aws.sns;
        let set = |name: &'static str, value: String| {
            sns.set_topic_attributes().topic_arn(&self.arn).attribute_name(name).attribute_value(value).send()
        };
        if changed.contains("policy") {
            set("Policy", serde_json::to_string(&want["policy"])?).await.ctx(|| self.what("setting the policy of"))?;
        }
        if changed.contains("kms_master_key_id") {
            // An empty value switches encryption off.
            let key = want["kms_master_key_id"].as_str().unwrap_or("").to_string();
            set("KmsMasterKeyId", key).await.ctx(|| self.what("setting encryption of"))?;
        }
        if changed.contains("tags") {
            sns.tag_resource()
                .resource_arn(&self.arn)
                .set_tags(Some(Self::tags(want)?))
                .send()
                .await
                .ctx(|| self.what("tagging"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        aws.sns.delete_topic().topic_arn(&self.arn).send().await.found(|| self.what("deleting"))?;
        Ok(())
    }
}
