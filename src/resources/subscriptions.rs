//! One alert topic's subscriptions, as one set. Subscriptions cannot be tagged, so ctguard
//! records the ones it created as tags on the topic (`ctguard:sub:<hash>`); only those are
//! ever removed. A subscription still pending confirmation is a failing health check: an alarm
//! nobody receives is not monitoring.
//!
//! Endpoints appear in the spec, notes, checks and errors only as `Subscription::label` shows
//! them: an HTTP(S) endpoint masked to its scheme and host unless `--show-endpoints` is given,
//! because webhook URLs carry their secret and plans end up in CI artifacts. The real endpoint
//! stays inside this kind, for the calls that need it.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_sns::types::Tag;
use serde::Serialize;

use super::kind::{Check, Declared, Delta, Found, Kind, Spec};
use super::tags::SdkTag;
use super::topic;
use crate::aws::error::AwsError;
use crate::aws::{Aws, AwsResultExt};
use crate::plan::Address;
use crate::profile::{AlertTopic, Alerts, Profile, Subscription};

pub const KIND: &str = "sns_subscriptions";
const SUB_TAG_PREFIX: &str = "ctguard:sub:";
/// What SNS reports instead of an ARN until the endpoint confirms.
const PENDING: &str = "PendingConfirmation";

/// The subscriptions ctguard manages, by label ("protocol:endpoint", the endpoint masked unless
/// shown): the declared ones, and the ones it created (recorded on the topic) that the profile
/// has since dropped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionsSpec {
    pub subscriptions: BTreeMap<String, Subscribed>,
}

impl Spec for SubscriptionsSpec {}

/// A subscription exists, confirmed or not (confirmation is a health check, not drift).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Subscribed {
    Subscribed,
}

pub struct Subscriptions {
    topic: Address,
    topic_arn: String,
    /// `--show-endpoints`: labels hold endpoints in full.
    show: bool,
    /// The declared subscriptions by label, with their real endpoints.
    declared: BTreeMap<String, Subscription>,
}

/// One subscription SNS lists.
struct Listed {
    label: String,
    /// "protocol:endpoint", in full: what the ownership record on the topic is keyed by.
    key: String,
    arn: String,
}

/// The stable key of one subscription: "protocol:endpoint".
fn key(protocol: &str, endpoint: &str) -> String {
    format!("{protocol}:{endpoint}")
}

/// FNV-1a: a short, stable tag key for a subscription (tag keys are limited to 128 characters,
/// endpoints are not).
fn tag_key(sub: &str) -> String {
    let hash = sub.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{SUB_TAG_PREFIX}{hash:016x}")
}

impl Subscriptions {
    pub fn new(profile: &Profile, alerts: &Alerts, on: &AlertTopic) -> Declared<Self> {
        let show = alerts.show_endpoints;
        let declared: BTreeMap<String, Subscription> =
            on.subscriptions.iter().map(|s| (s.label(show), s.clone())).collect();
        let subscriptions = declared.keys().map(|label| (label.clone(), Subscribed::Subscribed)).collect();
        let topic = topic::address(on, &profile.runtime.region);
        let address = Address { kind: KIND, name: topic.name.clone(), region: topic.region.clone() };
        let depends = vec![topic.clone()];
        let kind = Subscriptions { topic, topic_arn: on.arn.clone(), show, declared };
        Declared::new(kind, address, SubscriptionsSpec { subscriptions }, depends)
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} subscriptions of SNS topic {}", self.topic.name)
    }

    /// AWS's message may quote an endpoint (the one it refused): each declared one is replaced
    /// by its label, longest first so no endpoint is left half replaced.
    fn redacted(&self, mut err: AwsError) -> AwsError {
        let mut subs: Vec<(&String, &Subscription)> = self.declared.iter().collect();
        subs.sort_by_key(|(_, s)| std::cmp::Reverse(s.endpoint.len()));
        for (label, sub) in subs {
            let shown = label.strip_prefix(&format!("{}:", sub.protocol)).unwrap_or(label);
            err = err.redacted(&sub.endpoint, shown);
        }
        err
    }

    /// Every subscription on the topic, and the topic's tags.
    async fn list(&self, aws: &Aws) -> anyhow::Result<Option<(Vec<Listed>, BTreeMap<String, String>)>> {
        let mut subs = Vec::new();
        let mut pages = aws.sns.list_subscriptions_by_topic().topic_arn(&self.topic_arn).into_paginator().send();
        while let Some(page) = pages.next().await {
            let Some(page) = page.found(|| self.what("listing"))? else { return Ok(None) };
            for s in page.subscriptions() {
                let sub = Subscription {
                    protocol: s.protocol().unwrap_or("").to_string(),
                    endpoint: s.endpoint().unwrap_or("").to_string(),
                };
                subs.push(Listed {
                    label: sub.label(self.show),
                    key: key(&sub.protocol, &sub.endpoint),
                    arn: s.subscription_arn().unwrap_or(PENDING).to_string(),
                });
            }
        }
        let req = aws.sns.list_tags_for_resource().resource_arn(&self.topic_arn);
        let tags = req.send().await.ctx(|| self.what("reading tags for"))?;
        let tags = tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
        Ok(Some((subs, tags)))
    }
}

#[async_trait]
impl Kind for Subscriptions {
    type Spec = SubscriptionsSpec;

    async fn read(
        &self,
        aws: &Aws,
        want: Option<&SubscriptionsSpec>,
    ) -> anyhow::Result<Option<Found<SubscriptionsSpec>>> {
        let Some((subs, tags)) = self.list(aws).await? else { return Ok(None) };
        let declared = want.map(|w| w.subscriptions.clone()).unwrap_or_default();
        let mut live_state = Found::new(SubscriptionsSpec { subscriptions: BTreeMap::new() });
        for Listed { label, key, arn } in &subs {
            let owned = tags.contains_key(&tag_key(key));
            if declared.contains_key(label) || owned {
                live_state.spec.subscriptions.insert(label.clone(), Subscribed::Subscribed);
            } else {
                live_state.notes.push(format!("{label} is subscribed but was not created by ctguard: left alone"));
            }
            if declared.contains_key(label) {
                let ok = arn != PENDING;
                let detail = if ok {
                    "confirmed".to_string()
                } else {
                    "pending confirmation: alerts are not delivered until the endpoint confirms".to_string()
                };
                if !ok {
                    live_state.notes.push(format!("{label} is {detail}"));
                }
                live_state.checks.push(Check { name: format!("subscription {label} is confirmed"), ok, detail });
            }
        }
        // Any confirmed subscriber counts, declared or not: someone receives the alerts.
        let confirmed = subs.iter().filter(|s| s.arn != PENDING).count();
        live_state.checks.push(Check {
            name: "alert topic has a confirmed subscriber".into(),
            ok: confirmed > 0,
            detail: match confirmed {
                0 => "no confirmed subscription: every alert is dropped".into(),
                n => format!("{n} confirmed subscription(s)"),
            },
        });
        Ok(Some(live_state))
    }

    async fn update(&self, aws: &Aws, delta: &Delta<'_, SubscriptionsSpec>) -> anyhow::Result<()> {
        let sns = &aws.sns;
        let (subs, tags) = self
            .list(aws)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{}: the topic does not exist", self.what("updating")))?;
        let declared = &delta.want.subscriptions;
        let present: BTreeSet<&str> = subs.iter().map(|s| s.label.as_str()).collect();
        for label in declared.keys().filter(|l| !present.contains(l.as_str())) {
            let sub = self
                .declared
                .get(label)
                .ok_or_else(|| anyhow::anyhow!("internal error: {label} is not a declared subscription"))?;
            // Record ownership first: a crash after Subscribe must not leave an unowned twin.
            let tag = Tag::build(&tag_key(&key(&sub.protocol, &sub.endpoint)), &sub.protocol)?;
            sns.tag_resource().resource_arn(&self.topic_arn).tags(tag).send().await.ctx(|| self.what("recording"))?;
            sns.subscribe()
                .topic_arn(&self.topic_arn)
                .protocol(&sub.protocol)
                .endpoint(&sub.endpoint)
                .return_subscription_arn(true)
                .send()
                .await
                .map_err(|e| self.redacted(AwsError::from_sdk(e)))
                .map_err(|e| {
                    anyhow::Error::new(e).context(format!("subscribing {label} to SNS topic {}", self.topic.name))
                })?;
        }
        for s in subs.iter().filter(|s| !declared.contains_key(&s.label) && tags.contains_key(&tag_key(&s.key))) {
            let label = &s.label;
            if s.arn == PENDING {
                anyhow::bail!(
                    "cannot remove {label}: SNS does not allow unsubscribing a subscription pending confirmation"
                );
            }
            sns.unsubscribe().subscription_arn(&s.arn).send().await.found(|| format!("unsubscribing {label}"))?;
            sns.untag_resource()
                .resource_arn(&self.topic_arn)
                .tag_keys(tag_key(&s.key))
                .send()
                .await
                .ctx(|| self.what("forgetting"))?;
        }
        Ok(())
    }

    async fn delete(&self, _: &Aws) -> anyhow::Result<()> {
        anyhow::bail!("subscriptions are removed through the profile, one by one")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_keys_are_stable_and_short() {
        assert_eq!(tag_key("email:security@example.com"), tag_key("email:security@example.com"));
        assert_ne!(tag_key("email:a@example.com"), tag_key("email:b@example.com"));
        assert_eq!(tag_key(&"x".repeat(2000)).len(), SUB_TAG_PREFIX.len() + 16);
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;
    use crate::resources::testing::{aws, flagship, mock};
    use aws_sdk_sns::{Client, operation as sns, types::Subscription};

    fn subscribed(protocol: &str, endpoint: &str, arn: &str) -> Subscription {
        Subscription::builder().protocol(protocol).endpoint(endpoint).subscription_arn(arn).build()
    }

    #[tokio::test]
    async fn only_declared_or_recorded_subscriptions_are_managed_and_pending_ones_fail_health() {
        let p = flagship();
        let subs = Subscriptions::new(&p, p.alerts.as_ref().unwrap(), &p.alerts.as_ref().unwrap().topics[0]);
        let want = subs.want.clone().unwrap();
        let declared = want.subscriptions.keys().next().unwrap().clone();
        let (protocol, endpoint) = declared.split_once(':').unwrap();
        let (protocol, endpoint) = (protocol.to_string(), endpoint.to_string());
        let list = mock!(Client::list_subscriptions_by_topic).then_output(move || {
            sns::list_subscriptions_by_topic::ListSubscriptionsByTopicOutput::builder()
                .subscriptions(subscribed(&protocol, &endpoint, PENDING))
                .subscriptions(subscribed("email", "someone@example.com", "arn:aws:sns:us-east-1:1:t:1"))
                .build()
        });
        let tags = mock!(Client::list_tags_for_resource)
            .then_output(|| sns::list_tags_for_resource::ListTagsForResourceOutput::builder().build());
        let aws = aws(&[&list, &tags]);
        let found = subs.kind.read(&aws, Some(&want)).await.unwrap().unwrap();
        assert_eq!(found.spec, want, "a subscription ctguard did not make is not drift");
        assert!(
            found.notes.iter().any(|n| n.contains("someone@example.com is subscribed but was not created by ctguard"))
        );
        let pending = found.checks.iter().find(|c| c.name.contains(&declared)).unwrap();
        assert!(!pending.ok);
        // The other, confirmed subscriber still receives alerts.
        assert!(found.checks.iter().any(|c| c.name == "alert topic has a confirmed subscriber" && c.ok));
    }

    #[tokio::test]
    async fn ownership_is_recorded_on_the_topic_before_subscribing() {
        let p = flagship();
        let subs = Subscriptions::new(&p, p.alerts.as_ref().unwrap(), &p.alerts.as_ref().unwrap().topics[0]);
        let want = subs.want.clone().unwrap();
        let list = mock!(Client::list_subscriptions_by_topic)
            .then_output(|| sns::list_subscriptions_by_topic::ListSubscriptionsByTopicOutput::builder().build());
        let tags = mock!(Client::list_tags_for_resource)
            .then_output(|| sns::list_tags_for_resource::ListTagsForResourceOutput::builder().build());
        let record = mock!(Client::tag_resource)
            .match_requests(|r| r.tags()[0].key().starts_with(SUB_TAG_PREFIX))
            .then_output(|| sns::tag_resource::TagResourceOutput::builder().build());
        let subscribe = mock!(Client::subscribe)
            .match_requests(|r| r.return_subscription_arn() == Some(true))
            .then_output(|| sns::subscribe::SubscribeOutput::builder().build());
        let aws = aws(&[&list, &tags, &record, &subscribe]);
        subs.kind.create(&aws, &want).await.unwrap();
        assert_eq!((record.num_calls(), subscribe.num_calls()), (want.subscriptions.len(), want.subscriptions.len()));
    }
}
