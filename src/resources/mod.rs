//! Resource kinds, one file each. A kind knows how to read its live state as attributes,
//! what the profile wants, and how to create, update and delete itself. The engine decides
//! when; a kind never prints.

pub mod alarm;
pub mod bucket;
pub mod config_channel;
pub mod config_recorder;
pub mod config_rule;
pub mod kms_key;
pub mod log_group;
pub mod metric_filter;
pub mod role;
pub mod rule;
pub mod service_role;
pub mod subscriptions;
pub mod tag_index;
pub mod topic;
pub mod trail;

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::aws::Aws;
use crate::plan::{Address, Attrs};
use crate::profile::{Kms, Profile};

/// The tag that marks what ctguard created, valued with the profile's name.
pub const OWNER_TAG: &str = "ctguard:profile";

/// Live state of one resource.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Comparable attributes, in the same shape `desired` returns.
    pub attrs: Attrs,
    /// Values other resources need (a key ARN), which are not compared.
    pub outputs: Attrs,
    /// Runtime health that no plan can fix by declaration alone (delivery errors).
    pub checks: Vec<Check>,
    /// What the reader should know that is not drift (things found and left alone).
    pub notes: Vec<String>,
}

impl Live {
    /// The ctguard profile that owns this resource, from its tags.
    pub fn owner(&self) -> Option<&str> {
        self.attrs.get("tags").and_then(|t| t.get(OWNER_TAG)).and_then(Value::as_str)
    }
}

/// One health check result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// What every resource states about itself: where it is, what it should be, what it needs
/// first. A resource the profile no longer declares has no desired attributes.
#[derive(Debug, Clone)]
pub struct Spec {
    pub address: Address,
    pub want: Attrs,
    pub depends: Vec<Address>,
    pub declared: bool,
}

impl Spec {
    pub fn new(address: Address, want: Attrs, depends: Vec<Address>) -> Self {
        Spec { address, want, depends, declared: true }
    }

    /// Owned by the profile but no longer declared: plan proposes deleting it.
    pub fn undeclared(address: Address) -> Self {
        Spec { address, want: Attrs::new(), depends: Vec::new(), declared: false }
    }
}

/// Outputs of every resource read or applied so far.
pub type Outputs = HashMap<Address, Attrs>;

#[async_trait]
pub trait Resource: Send + Sync {
    /// Identity, desired attributes and dependencies.
    fn spec(&self) -> &Spec;
    fn address(&self) -> Address {
        self.spec().address.clone()
    }
    /// Resources that must exist before this one is created or updated.
    fn depends_on(&self) -> Vec<Address> {
        self.spec().depends.clone()
    }
    /// Desired attributes; values depending on resources not yet created are `plan::UNKNOWN`.
    fn desired(&self, _outputs: &Outputs) -> Attrs {
        self.spec().want.clone()
    }
    /// False for a resource ctguard owns that the profile no longer declares: plan deletes it.
    fn declared(&self) -> bool {
        self.spec().declared
    }
    /// Fields that cannot change in place.
    fn replace_on(&self) -> &'static [&'static str] {
        &[]
    }
    /// `None` when the resource does not exist.
    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>>;
    /// Reads again after a write. Kinds that read in batches drop their snapshot first.
    async fn read_back(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        self.read(aws).await
    }
    async fn create(&self, aws: &Aws, want: &Attrs) -> anyhow::Result<()>;
    /// `changed` holds the top-level attribute names that differ.
    async fn update(&self, aws: &Aws, want: &Attrs, changed: &BTreeSet<String>) -> anyhow::Result<()>;
    async fn delete(&self, aws: &Aws) -> anyhow::Result<()>;
    /// Health that only verify asks about, at the cost of extra calls (rule compliance).
    async fn health(&self, _aws: &Aws) -> Vec<Check> {
        Vec::new()
    }
}

/// Per-region listings read both by the declared resources and by the search for undeclared
/// ones, so each is fetched once per run.
pub struct Listings {
    pub event_rules: std::collections::BTreeMap<String, std::sync::Arc<rule::RegionEventRules>>,
    pub config_rules: std::collections::BTreeMap<String, std::sync::Arc<Snapshot<config_rule::Rules>>>,
    /// The metric filters of the trail's log group.
    pub metric_filters: std::sync::Arc<Snapshot<Option<metric_filter::Filters>>>,
    /// The tags of the rules and alarms ctguard owns, per region.
    pub tags: tag_index::TagIndexes,
}

impl Listings {
    pub fn new(regions: &[String]) -> Self {
        Listings {
            event_rules: regions.iter().map(|r| (r.clone(), Default::default())).collect(),
            config_rules: regions.iter().map(|r| (r.clone(), Default::default())).collect(),
            metric_filters: Default::default(),
            tags: regions.iter().map(|r| (r.clone(), Default::default())).collect(),
        }
    }
}

/// Every resource the profile declares, in dependency order.
pub fn declared(profile: &Profile, listings: &Listings) -> Vec<Box<dyn Resource>> {
    let mut out: Vec<Box<dyn Resource>> = Vec::new();
    let region = &profile.runtime.region;
    if let Some(logs) = &profile.access_log_bucket {
        out.push(Box::new(bucket::Bucket::access_logs(profile, logs)));
    }
    out.push(Box::new(bucket::Bucket::audit(profile)));
    if let Some(Kms::Managed { alias, policy }) = &profile.trail.kms {
        out.push(Box::new(kms_key::KmsKey::new(profile, alias, policy, "encrypts CloudTrail logs")));
    }
    if let Some(cw) = &profile.cloudwatch_logs {
        out.push(Box::new(log_group::LogGroup::new(profile, cw)));
        out.push(Box::new(role::Role::cloudtrail_logs(profile, cw)));
    }
    out.push(Box::new(trail::Trail::new(profile, region)));
    if let Some(alerts) = &profile.alerts {
        if let Some(Kms::Managed { alias, policy }) = &alerts.kms {
            out.push(Box::new(kms_key::KmsKey::new(profile, alias, policy, "encrypts the alert topic")));
        }
        out.push(Box::new(topic::Topic::new(profile, alerts)));
        out.push(Box::new(subscriptions::Subscriptions::new(profile, alerts)));
    }
    if let Some(events) = &profile.events {
        // The forwarding role is only needed when there is another region to forward from.
        if profile.regions.len() > 1 {
            out.push(Box::new(role::Role::events_forwarder(profile, events)));
        }
        for r in &profile.regions {
            for rule in &events.rules {
                let listed = listings.event_rules[r].clone();
                let tags = listings.tags[r].clone();
                out.push(Box::new(rule::EventRule::new(profile, events, rule, r, listed, tags)));
            }
        }
    }
    if let Some(setup) = &profile.config {
        if setup.service_linked {
            out.push(Box::new(service_role::ConfigServiceRole::default()));
        }
        for r in &profile.regions {
            let shared = std::sync::Arc::new(config_recorder::RegionConfig::default());
            out.push(Box::new(config_recorder::Recorder::new(profile, setup, r, shared.clone())));
            out.push(Box::new(config_channel::Channel::new(profile, setup, r, shared.clone())));
            out.push(Box::new(config_recorder::Recording::new(setup, r, shared)));
            let here: Vec<_> = setup.rules.iter().filter(|rule| rule.regions.contains(r)).collect();
            let names = here.iter().map(|rule| rule.name.clone()).collect();
            let shared =
                config_rule::RegionRules::new(names, listings.config_rules[r].clone(), listings.tags[r].clone());
            for rule in here {
                let fail = setup.fail_on_noncompliance;
                out.push(Box::new(config_rule::ManagedConfigRule::new(profile, rule, r, fail, shared.clone())));
            }
        }
    }
    if let Some(cw) = &profile.cloudwatch_logs {
        // Alarms on S3 data events would never fire: the trail records management events only.
        let alarms: Vec<&crate::profile::Alarm> = profile.alarms.iter().filter(|a| !a.requires_data_events).collect();
        let filters = listings.metric_filters.clone();
        let tags = listings.tags[&profile.runtime.region].clone();
        let set = alarm::AlarmSet::new(alarms.iter().map(|a| a.name.clone()).collect(), tags);
        for a in alarms {
            out.push(Box::new(metric_filter::MetricFilter::new(profile, cw, a, filters.clone())));
            out.push(Box::new(alarm::CloudWatchAlarm::new(profile, a, set.clone())));
        }
    }
    out
}

/// One batched read shared by every resource of a kind (all metric filters of a log group, all
/// alarms), so plan makes one call where it would otherwise make one per resource.
pub struct Snapshot<T> {
    value: tokio::sync::Mutex<Option<std::sync::Arc<T>>>,
}

impl<T> Default for Snapshot<T> {
    fn default() -> Self {
        Snapshot { value: tokio::sync::Mutex::new(None) }
    }
}

impl<T> Snapshot<T> {
    /// The snapshot, fetched by the first caller; the others wait for it and share it.
    pub async fn get<F, Fut>(&self, fetch: F) -> anyhow::Result<std::sync::Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let mut guard = self.value.lock().await;
        if let Some(v) = guard.as_ref() {
            return Ok(v.clone());
        }
        let v = std::sync::Arc::new(fetch().await?);
        *guard = Some(v.clone());
        Ok(v)
    }

    /// Drops the snapshot after a write, so the next read sees it.
    pub async fn forget(&self) {
        *self.value.lock().await = None;
    }
}

/// Rules, alarms and metric filters are listed by this name prefix (a server-side filter, so
/// discovery costs a call or two however large the account); ownership is then decided by tag.
/// Every shipped name starts with it; a resource named otherwise is never proposed for deletion.
pub const DISCOVERY_PREFIX: &str = "ctguard-";

/// Resources this profile's tag marks as ctguard's own that the profile no longer declares.
/// Only kinds that hold no audit data are looked for: buckets, log groups and keys are never
/// deleted, so there is nothing to propose for them.
pub async fn undeclared(
    aws: &Aws,
    profile: &Profile,
    declared: &[Box<dyn Resource>],
    listings: &Listings,
) -> anyhow::Result<Vec<Box<dyn Resource>>> {
    let known: std::collections::HashSet<Address> = declared.iter().map(|r| r.address()).collect();
    let role_path = profile.cloudwatch_logs.as_ref().map(|c| c.role_path.as_str()).unwrap_or("/ctguard/");
    let name = profile.name.as_str();
    let (trails, roles, rules, alarms, filters, config_rules) = tokio::try_join!(
        trail::owned(aws, name),
        role::owned(aws, name, role_path),
        rule::owned(aws, name, DISCOVERY_PREFIX, listings, &known),
        alarm::owned(aws, name, DISCOVERY_PREFIX, &listings.tags[aws.region()], &known),
        async {
            match &profile.cloudwatch_logs {
                Some(cw) => {
                    metric_filter::owned(aws, cw, DISCOVERY_PREFIX, &known, listings.metric_filters.clone()).await
                }
                None => Ok(Vec::new()),
            }
        },
        config_rule::owned(aws, name, DISCOVERY_PREFIX, listings, &known),
    )?;
    let all = trails.into_iter().chain(roles).chain(rules).chain(alarms).chain(filters).chain(config_rules);
    Ok(all.filter(|r| !known.contains(&r.address())).collect())
}

/// The ownership tags every resource carries.
pub fn owner_tags(profile: &Profile) -> Value {
    json!({ OWNER_TAG: profile.name })
}

/// Tag keys whose values ctguard declares; other tags (the user's, or ctguard's own
/// bookkeeping such as subscription records) are not compared.
pub(crate) const MANAGED_TAG_KEYS: [&str; 2] = [OWNER_TAG, "ctguard:severity"];

/// Live tags, cut down to the keys ctguard manages so other tags are not drift.
pub fn managed_tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let map: serde_json::Map<String, Value> = tags
        .into_iter()
        .filter(|(k, _)| MANAGED_TAG_KEYS.contains(k))
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    Value::Object(map)
}

/// The desired tags as (key, value) pairs, for tagging calls.
pub fn tag_pairs(want: &Attrs) -> Vec<(String, String)> {
    want.get("tags")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

/// Reads a string attribute that `desired` always sets.
pub fn text<'a>(want: &'a Attrs, key: &str) -> &'a str {
    want.get(key).and_then(Value::as_str).unwrap_or_default()
}

pub fn flag(want: &Attrs, key: &str) -> bool {
    want.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Retries `op` while AWS says a just-created dependency is not visible yet (IAM roles take
/// seconds to propagate to CloudTrail and KMS). Other errors return at once.
pub async fn retry_propagation<T, F, Fut>(mut op: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut delay = std::time::Duration::from_secs(2);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        match op().await {
            Err(e)
                if crate::aws::error::kind(&e) == crate::aws::ErrorKind::Propagating
                    && tokio::time::Instant::now() + delay < deadline =>
            {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(15));
            }
            other => return other,
        }
    }
}
