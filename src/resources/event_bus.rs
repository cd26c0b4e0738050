//! The central event bus (`[events] central_bus`), in the account that owns it: a custom bus
//! every account of the organization may put events on, through ctguard's statement of its
//! resource policy (`events:PutEvents` with `aws:PrincipalOrgID`). The policy is shared:
//! ctguard owns only its statements (see `policy::ownership`); the rest is written back as read.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use super::foreign;
use super::kind::{Declared, Delta, Found, Kind};
use super::tags::{self, OWNER_TAG, Tags};
use crate::aws::error::created;
use crate::aws::{Aws, AwsResultExt};
use crate::plan::Address;
use crate::policy::ownership::{self, Rules};
use crate::profile::Profile;
use crate::profile::central_bus::{CentralBus, CentralRole};

pub const KIND: &str = "event_bus";

pub fn address(bus: &CentralBus) -> Address {
    Address { kind: KIND, name: bus.name.clone(), region: bus.region.clone() }
}

/// A custom event bus as ctguard compares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BusSpec {
    /// ctguard's statements of the resource policy, canonical (see `policy::ownership::view`).
    pub policy: Option<Value>,
    pub tags: Tags,
}

crate::tagged_spec!(BusSpec);

pub struct EventBus {
    name: String,
    arn: String,
    region: String,
}

/// "The permission policy on the event bus cannot exceed 10 KB in size" (EventBridge API
/// Reference, PutPermission).
fn rules() -> Rules {
    Rules {
        what: "EventBridge event bus policy",
        max_bytes: Some(10 * 1024),
        max_statements: None,
        administrator: None,
    }
}

impl EventBus {
    /// The bus, declared only in the account that owns it.
    pub fn new(profile: &Profile, bus: &CentralBus) -> Option<Declared<Self>> {
        let CentralRole::Owner { policy } = &bus.role else { return None };
        let want = BusSpec { policy: Some(ownership::view(policy, false)), tags: tags::owner_tags(profile) };
        let kind = EventBus { name: bus.name.clone(), arn: bus.arn.clone(), region: bus.region.clone() };
        Some(Declared::new(kind, address(bus), want, Vec::new()))
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} EventBridge event bus {}/{}", self.region, self.name)
    }

    /// The bus's policy text and whether it carries ctguard's ownership tag; `None`: no bus.
    async fn live(&self, aws: &Aws) -> anyhow::Result<Option<(Option<String>, Vec<(String, String)>)>> {
        let eb = aws.events(&self.region);
        let Some(got) = eb.describe_event_bus().name(&self.name).send().await.found(|| self.what("reading"))? else {
            return Ok(None);
        };
        let listed = eb.list_tags_for_resource().resource_arn(&self.arn).send().await;
        let tags = listed.ctx(|| self.what("reading tags of"))?;
        let tags = tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
        Ok(Some((got.policy().map(str::to_string), tags)))
    }
}

#[async_trait]
impl Kind for EventBus {
    type Spec = BusSpec;

    fn destructive(want: Option<&BusSpec>, have: &BusSpec, _empty: bool) -> Vec<String> {
        super::loss::removed_denies("event bus policy", want.and_then(|w| w.policy.as_ref()), have.policy.as_ref())
    }

    async fn read(&self, aws: &Aws, want: Option<&BusSpec>) -> anyhow::Result<Option<Found<BusSpec>>> {
        let Some((text, tags)) = self.live(aws).await? else { return Ok(None) };
        let owned = tags.iter().any(|(k, _)| k == OWNER_TAG);
        let spec = BusSpec {
            policy: ownership::live_view(text.as_deref(), owned)?,
            tags: tags::managed(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        };
        // A merged policy EventBridge would refuse fails here, before apply makes any change.
        if let Some(want) = want.and_then(|w| w.policy.as_ref())
            && spec.policy.as_ref() != Some(want)
        {
            ownership::to_write(text.as_deref(), want, owned, &rules(), &self.what("the"))?;
        }
        let mut found = Found::new(spec);
        if let Some(text) = &text {
            let doc = crate::policy::parse_raw(text)?;
            found.checks.extend(foreign::statements(&doc, owned, "event bus policy", &[]));
        }
        Ok(Some(found))
    }

    async fn create(&self, aws: &Aws, want: &BusSpec) -> anyhow::Result<()> {
        let eb = aws.events(&self.region);
        let req = eb.create_event_bus().name(&self.name).set_tags(Some(tags::sdk(&want.tags)?));
        // A bus left by an interrupted run is converged like a new one.
        created(req.send().await.ctx(|| self.what("creating")))?;
        self.update(aws, &Delta::all(want)).await
    }

    async fn update(&self, aws: &Aws, delta: &Delta<'_, BusSpec>) -> anyhow::Result<()> {
        let eb = aws.events(&self.region);
        let want = delta.want;
        if delta.changed(|b| &b.policy)
            && let Some(policy) = &want.policy
        {
            // PutPermission with a Policy replaces the bus's whole policy: merge into it as it
            // is now (EventBridge API Reference, PutPermission).
            let (text, tags) = self.live(aws).await?.unwrap_or_default();
            let owned = tags.iter().any(|(k, _)| k == OWNER_TAG);
            let doc = ownership::to_write(text.as_deref(), policy, owned, &rules(), &self.what("the"))?;
            let req = eb.put_permission().event_bus_name(&self.name).policy(doc);
            req.send().await.ctx(|| self.what("setting the policy of"))?;
        }
        if delta.changed(|b| &b.tags) {
            let req = eb.tag_resource().resource_arn(&self.arn).set_tags(Some(tags::sdk(&want.tags)?));
            req.send().await.ctx(|| self.what("tagging"))?;
        }
        Ok(())
    }

    /// DeleteEventBus models no "not found": a bus already gone is seen by reading first.
    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        if self.live(aws).await?.is_none() {
            return Ok(());
        }
        let eb = aws.events(&self.region);
        eb.delete_event_bus().name(&self.name).send().await.ctx(|| self.what("deleting"))?;
        Ok(())
    }
}
