//! The tags of every rule and alarm ctguard owns in a region, from one paginated Resource Groups
//! Tagging API call (GetResources) instead of one ListTagsForResource per resource: EventBridge,
//! CloudWatch and AWS Config list their rules and alarms without tags.
//!
//! The Tagging API is eventually consistent, and lists only resources that carry the ownership
//! tag. So the index is trusted only where it shows exactly the tags the profile wants; anywhere
//! else (a resource just created or retagged, one ctguard does not own yet) the resource's own
//! tags are read, as before. On a converged account that is never. The search for rules and
//! alarms the profile owns but no longer declares asks the index first the same way.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_resourcegroupstagging::types::TagFilter;

use super::kind::{Found, Spec};
use super::snapshot::Snapshot;
use super::tags::{self, OWNER_TAG, Tags};
use crate::aws::{Aws, AwsResultExt, ErrorKind};

/// Resource types whose tags the index holds.
const TYPES: [&str; 3] = ["events:rule", "config:config-rule", "cloudwatch:alarm"];

/// ARN to (key, value) tags.
type Tagged = HashMap<String, Vec<(String, String)>>;

#[derive(Default)]
pub struct TagIndex {
    snapshot: Snapshot<Tagged>,
}

impl TagIndex {
    async fn fetch(aws: &Aws, region: &str) -> anyhow::Result<Tagged> {
        let owned = TagFilter::builder().key(OWNER_TAG).build();
        let mut pages = aws
            .tagging(region)
            .get_resources()
            .tag_filters(owned)
            .set_resource_type_filters(Some(TYPES.iter().map(|t| t.to_string()).collect()))
            // The most a page may hold (Resource Groups Tagging API, GetResources): the home
            // region's rules, alarms and Config rules then fit in one call.
            .resources_per_page(100)
            .into_paginator()
            .send();
        let mut out = Tagged::new();
        while let Some(page) = pages.next().await {
            let page = match page.ctx(|| format!("listing ctguard's tagged resources in {region} (tag:GetResources)")) {
                // Without tag:GetResources (a role granted an older policy), read tags one by one.
                Err(e) if crate::aws::error::kind(&e) == ErrorKind::AccessDenied => return Ok(Tagged::new()),
                other => other?,
            };
            for mapping in page.resource_tag_mapping_list() {
                let Some(arn) = mapping.resource_arn() else { continue };
                let tags = mapping.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
                out.insert(arn.to_string(), tags);
            }
        }
        Ok(out)
    }

    /// The managed tags of `arn`: the index's when they are the tags `want`s, else the
    /// resource's own.
    pub async fn tags(&self, aws: &Aws, region: &str, arn: &str, want: Option<&Tags>) -> anyhow::Result<Tags> {
        let index = self.snapshot.get(|| Self::fetch(aws, region)).await?;
        let managed = |tags: &[(String, String)]| tags::managed(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(indexed) = index.get(arn).map(|t| managed(t))
            && want.is_some_and(|w| *w == indexed)
        {
            return Ok(indexed);
        }
        Ok(managed(&read_one(aws, region, arn).await?))
    }

    /// Whether `profile` owns `arn`. The index lists only owned resources, so a resource
    /// missing from it (or owned by another profile there) is asked directly.
    pub async fn owned_by(&self, aws: &Aws, region: &str, arn: &str, profile: &str) -> anyhow::Result<bool> {
        let owner = |tags: &[(String, String)]| tags.iter().any(|(k, v)| k == OWNER_TAG && v == profile);
        let index = self.snapshot.get(|| Self::fetch(aws, region)).await?;
        if index.get(arn).is_some_and(|t| owner(t)) {
            return Ok(true);
        }
        Ok(owner(&read_one(aws, region, arn).await?))
    }
}

/// The tags of one rule or alarm, from its own service.
async fn read_one(aws: &Aws, region: &str, arn: &str) -> anyhow::Result<Vec<(String, String)>> {
    let what = || format!("reading tags of {arn}");
    let owned = |k: &str, v: &str| (k.to_string(), v.to_string());
    Ok(match arn.split(':').nth(2) {
        Some("events") => {
            let out = aws.events(region).list_tags_for_resource().resource_arn(arn).send().await.ctx(what)?;
            out.tags().iter().map(|t| owned(t.key(), t.value())).collect()
        }
        Some("config") => {
            let out = aws.config(region).list_tags_for_resource().resource_arn(arn).send().await.ctx(what)?;
            out.tags().iter().map(|t| owned(t.key().unwrap_or(""), t.value().unwrap_or(""))).collect()
        }
        // Alarms live in the home region, the CloudWatch client's.
        Some("cloudwatch") => {
            let out = aws.cloudwatch.list_tags_for_resource().resource_arn(arn).send().await.ctx(what)?;
            out.tags().iter().map(|t| owned(t.key().unwrap_or(""), t.value().unwrap_or(""))).collect()
        }
        _ => anyhow::bail!("internal error: no tag reader for {arn}"),
    })
}

/// A resource found in a batched listing, with its ARN; its tags are read through the index.
#[derive(Debug, Clone)]
pub struct Listed<S> {
    pub spec: S,
    pub arn: String,
}

impl TagIndex {
    /// What the read of a listed resource finds: its listed spec with its tags (which the
    /// listing leaves out) put in by `set`; `None` when it is not listed.
    pub async fn found<S: Spec>(
        &self,
        aws: &Aws,
        region: &str,
        (listed, want): (Option<Listed<S>>, Option<&S>),
        set: impl FnOnce(&mut S) -> &mut Tags,
    ) -> anyhow::Result<Option<Found<S>>> {
        let Some(Listed { mut spec, arn }) = listed else { return Ok(None) };
        *set(&mut spec) = self.tags(aws, region, &arn, want.and_then(Spec::tags)).await?;
        Ok(Some(Found::new(spec)))
    }
}

/// One index per region.
pub type TagIndexes = std::collections::BTreeMap<String, Arc<TagIndex>>;
