//! An SNS topic alerts are published to (the default one, or a severity's own): its policy (EventBridge and CloudWatch may
//! publish, scoped to this account; public to no one) and optional KMS encryption. The policy
//! is shared: ctguard owns only its statements (see `policy::ownership`), and a statement of
//! someone else's that grants anyone access is a failing check.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use super::foreign;
use super::kind::{Declared, Delta, Found, Kind};
use super::kms_key;
use super::tags::{self, OWNER_TAG, Tags};
use crate::aws::{Aws, AwsResultExt};
use crate::plan::Address;
use crate::policy::ownership::{self, Rules};
use crate::profile::{AlertTopic, Alerts, Kms, Profile};

pub const KIND: &str = "sns_topic";
/// The topic attributes ctguard sets (SetTopicAttributes names).
const POLICY: &str = "Policy";
const KMS_KEY: &str = "KmsMasterKeyId";

pub fn address(topic: &AlertTopic, region: &str) -> Address {
    Address { kind: KIND, name: topic.name.clone(), region: region.into() }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicSpec {
    /// ctguard's statements, canonical (see `policy::ownership::view`).
    pub policy: Option<Value>,
    /// As it was set: SNS keeps an alias as an alias. `None`: not encrypted.
    pub kms_master_key_id: Option<String>,
    pub tags: Tags,
}

crate::tagged_spec!(TopicSpec);

pub struct Topic {
    name: String,
    arn: String,
    region: String,
}

impl Topic {
    pub fn new(profile: &Profile, alerts: &Alerts, topic: &AlertTopic) -> Declared<Self> {
        let region = profile.runtime.region.clone();
        let (key, depends) = match &alerts.kms {
            Some(Kms::Managed { alias, .. }) => (Some(alias.clone()), vec![kms_key::address(alias, &region)]),
            Some(Kms::Existing { key_arn }) => (Some(key_arn.clone()), Vec::new()),
            None => (None, Vec::new()),
        };
        let want = TopicSpec {
            policy: Some(ownership::view(&topic.policy, false)),
            kms_master_key_id: key,
            tags: tags::owner_tags(profile),
        };
        let kind = Topic { name: topic.name.clone(), arn: topic.arn.clone(), region: region.clone() };
        Declared::new(kind, address(topic, &region), want, depends)
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} SNS topic {}/{}", self.region, self.name)
    }

    /// The topic's policy text and whether the topic carries ctguard's ownership tag.
    async fn live_policy(&self, aws: &Aws) -> anyhow::Result<Option<(Option<String>, bool)>> {
        let sns = &aws.sns;
        let Some(got) = sns.get_topic_attributes().topic_arn(&self.arn).send().await.found(|| self.what("reading"))?
        else {
            return Ok(None);
        };
        let tags =
            sns.list_tags_for_resource().resource_arn(&self.arn).send().await.ctx(|| self.what("reading tags of"))?;
        let owned = tags.tags().iter().any(|t| t.key() == OWNER_TAG);
        Ok(Some((got.attributes().and_then(|a| a.get(POLICY)).cloned(), owned)))
    }
}

#[async_trait]
impl Kind for Topic {
    type Spec = TopicSpec;

    fn destructive(want: Option<&TopicSpec>, have: &TopicSpec, _empty: bool) -> Vec<String> {
        super::loss::removed_denies("topic policy", want.and_then(|w| w.policy.as_ref()), have.policy.as_ref())
    }

    async fn read(&self, aws: &Aws, want: Option<&TopicSpec>) -> anyhow::Result<Option<Found<TopicSpec>>> {
        let sns = &aws.sns;
        let Some(got) = sns.get_topic_attributes().topic_arn(&self.arn).send().await.found(|| self.what("reading"))?
        else {
            return Ok(None);
        };
        let tags =
            sns.list_tags_for_resource().resource_arn(&self.arn).send().await.ctx(|| self.what("reading tags of"))?;
        let attributes = got.attributes().cloned().unwrap_or_default();
        let owned = tags.tags().iter().any(|t| t.key() == OWNER_TAG);
        let text = attributes.get(POLICY).map(String::as_str);
        let spec = TopicSpec {
            policy: ownership::live_view(text, owned)?,
            kms_master_key_id: attributes.get(KMS_KEY).filter(|k| !k.is_empty()).cloned(),
            tags: tags::managed(tags.tags().iter().map(|t| (t.key(), t.value()))),
        };
        // A merged policy SNS would refuse fails here, before apply makes any change.
        if let Some(want) = want.and_then(|w| w.policy.as_ref())
            && spec.policy.as_ref() != Some(want)
        {
            ownership::to_write(text, want, owned, &Rules::sns_topic(), &self.what("the"))?;
        }
        let mut found = Found::new(spec);
        if let Some(text) = text {
            let doc = crate::policy::parse_raw(text)?;
            found.checks.extend(foreign::statements(&doc, owned, "topic policy", &[]));
        }
        Ok(Some(found))
    }

    async fn create(&self, aws: &Aws, want: &TopicSpec) -> anyhow::Result<()> {
        let mut req = aws
            .sns
            .create_topic()
            .name(&self.name)
            .attributes(POLICY, serde_json::to_string(&want.policy)?)
            .set_tags(Some(tags::sdk(&want.tags)?));
        if let Some(key) = &want.kms_master_key_id {
            req = req.attributes(KMS_KEY, key);
        }
        // CreateTopic is idempotent for the same name and attributes.
        req.send().await.ctx(|| self.what("creating"))?;
        Ok(())
    }

    async fn update(&self, aws: &Aws, delta: &Delta<'_, TopicSpec>) -> anyhow::Result<()> {
        let sns = &aws.sns;
        let want = delta.want;
        let set = |name: &'static str, value: String| {
            sns.set_topic_attributes().topic_arn(&self.arn).attribute_name(name).attribute_value(value).send()
        };
        if delta.changed(|t| &t.policy)
            && let Some(policy) = &want.policy
        {
            // SetTopicAttributes replaces the whole document: merge into it as it is now.
            let (text, owned) = self.live_policy(aws).await?.unwrap_or_default();
            let doc = ownership::to_write(text.as_deref(), policy, owned, &Rules::sns_topic(), &self.what("the"))?;
            set(POLICY, doc).await.ctx(|| self.what("setting the policy of"))?;
        }
        if delta.changed(|t| &t.kms_master_key_id) {
            // An empty value switches encryption off.
            let key = want.kms_master_key_id.clone().unwrap_or_default();
            set(KMS_KEY, key).await.ctx(|| self.what("setting encryption of"))?;
        }
        if delta.changed(|t| &t.tags) {
            let req = sns.tag_resource().resource_arn(&self.arn).set_tags(Some(tags::sdk(&want.tags)?));
            req.send().await.ctx(|| self.what("tagging"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        aws.sns.delete_topic().topic_arn(&self.arn).send().await.found(|| self.what("deleting"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::tags::OWNER_TAG;
    use crate::resources::testing::{aws, flagship, mock};
    use aws_sdk_sns::{Client, operation as sns, types::Tag};

    #[tokio::test]
    async fn creates_the_declared_topic_and_reads_it_back() {
        let mut p = flagship();
        p.alerts.as_mut().unwrap().kms = None;
        let topic = Topic::new(&p, p.alerts.as_ref().unwrap(), &p.alerts.as_ref().unwrap().topics[0]);
        let want = topic.want.clone().unwrap();
        let policy = serde_json::to_string(&want.policy).unwrap();
        let sent = policy.clone();
        let create = mock!(Client::create_topic)
            .match_requests(move |r| {
                r.name() == Some("ctguard-alerts")
                    && r.attributes().and_then(|a| a.get(POLICY)) == Some(&sent)
                    && r.tags().iter().any(|t| t.key() == OWNER_TAG && t.value() == "ai-agent-guard")
            })
            .then_output(|| sns::create_topic::CreateTopicOutput::builder().build());
        let attributes = mock!(Client::get_topic_attributes).then_output(move || {
            sns::get_topic_attributes::GetTopicAttributesOutput::builder().attributes(POLICY, policy.clone()).build()
        });
        let tags = mock!(Client::list_tags_for_resource).then_output(|| {
            let owner = Tag::builder().key(OWNER_TAG).value("ai-agent-guard").build().unwrap();
            let theirs = Tag::builder().key("team").value("security").build().unwrap();
            sns::list_tags_for_resource::ListTagsForResourceOutput::builder().tags(owner).tags(theirs).build()
        });
        let aws = aws(&[&create, &attributes, &tags]);
        topic.kind.create(&aws, &want).await.unwrap();
        assert_eq!(create.num_calls(), 1);
        // Unencrypted, and the user's own tag is not compared.
        let found = topic.kind.read(&aws, Some(&want)).await.unwrap().unwrap();
        assert_eq!(found.spec, want);
    }

    #[tokio::test]
    async fn a_missing_topic_is_absent() {
        let p = flagship();
        let topic = Topic::new(&p, p.alerts.as_ref().unwrap(), &p.alerts.as_ref().unwrap().topics[0]);
        let missing = mock!(Client::get_topic_attributes).then_error(|| {
            sns::get_topic_attributes::GetTopicAttributesError::NotFoundException(
                aws_sdk_sns::types::error::NotFoundException::builder().build(),
            )
        });
        let aws = aws(&[&missing]);
        assert!(topic.kind.read(&aws, topic.want.as_ref()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_update_writes_only_what_differs() {
        let mut p = flagship();
        p.alerts.as_mut().unwrap().kms = None;
        let topic = Topic::new(&p, p.alerts.as_ref().unwrap(), &p.alerts.as_ref().unwrap().topics[0]);
        let want = topic.want.clone().unwrap();
        let have = TopicSpec { kms_master_key_id: Some("alias/old".into()), ..want.clone() };
        let set = mock!(Client::set_topic_attributes)
            .match_requests(|r| r.attribute_name() == Some(KMS_KEY) && r.attribute_value() == Some(""))
            .then_output(|| aws_sdk_sns::operation::set_topic_attributes::SetTopicAttributesOutput::builder().build());
        let aws = aws(&[&set]);
        topic.kind.update(&aws, &Delta::between(&want, Some(&have))).await.unwrap();
        assert_eq!(set.num_calls(), 1);
    }
}
