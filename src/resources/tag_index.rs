//! The tags of every rule and alarm ctguard owns in a region, from one paginated Resource Groups
//! Tagging API call (GetResources) instead of one ListTagsForResource per resource: EventBridge,
//! CloudWatch and AWS Config list their rules and alarms without tags.
//!
//! The Tagging API is eventually consistent, and lists only resources that carry the ownership
//! tag. So the index is trusted only where it shows exactly the tags the profile wants; anywhere
//! else (a resource just created or retagged, one ctguard does not own yet) the resource's own
//! tags are read, as before. On a converged account that is never.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_resourcegroupstagging::types::TagFilter;
use serde_json::Value;

use super::{OWNER_TAG, Snapshot, managed_tags};
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

    /// The managed tags of `arn`: the index's when they are the tags `want`s, else those
    /// `read` fetches from the resource itself.
    pub async fn tags<F, Fut>(
        &self,
        aws: &Aws,
        region: &str,
        arn: &str,
        want: Option<&Value>,
        read: F,
    ) -> anyhow::Result<Value>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Vec<(String, String)>>>,
    {
        let index = self.snapshot.get(|| Self::fetch(aws, region)).await?;
        if let Some(tags) = index.get(arn) {
            let managed = managed_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            if want.is_some_and(|w| *w == managed) {
                return Ok(managed);
            }
        }
        let tags = read().await?;
        Ok(managed_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
    }
}

/// SDK tags as owned (key, value) pairs, for the `read` of [`TagIndex::tags`]. CloudWatch and
/// Config model a tag's key and value as optional.
pub fn pairs<'a>(tags: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>) -> Vec<(String, String)> {
    tags.into_iter().map(|(k, v)| (k.unwrap_or("").to_string(), v.unwrap_or("").to_string())).collect()
}

/// One index per region.
pub type TagIndexes = std::collections::BTreeMap<String, Arc<TagIndex>>;
