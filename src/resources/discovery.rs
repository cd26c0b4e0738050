//! Finding what this profile owns but no longer declares, and the per-region listings that
//! both the declared resources and that search read, so each is fetched once per run.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use super::kind::Resource;
use super::snapshot::Snapshot;
use super::tag_index::{TagIndex, TagIndexes};
use super::{alarm, config_rule, metric_filter, role, rule, trail};
use crate::aws::Aws;
use crate::plan::Address;
use crate::profile::Profile;

/// Rules, alarms and metric filters are listed by this name prefix (a server-side filter, so
/// discovery costs a call or two however large the account); ownership is then decided by tag.
/// Every shipped name starts with it; a resource named otherwise is never proposed for deletion.
pub const PREFIX: &str = "ctguard-";

/// Per-region listings read both by the declared resources and by the search for undeclared
/// ones.
pub struct Listings {
    pub event_rules: BTreeMap<String, Arc<rule::RegionEventRules>>,
    pub config_rules: BTreeMap<String, Arc<Snapshot<config_rule::Rules>>>,
    /// The metric filters of the trail's log group.
    pub metric_filters: Arc<Snapshot<Option<metric_filter::Filters>>>,
    /// The tags of the rules and alarms ctguard owns, per region.
    pub tags: TagIndexes,
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

/// What the search for undeclared resources may skip: the declared addresses.
pub type Known = HashSet<Address>;

/// What the search for undeclared resources works with.
pub struct Search<'a> {
    pub aws: &'a Aws,
    /// The profile's name, the value of its ownership tag.
    pub profile: &'a str,
    pub listings: &'a Listings,
    /// The declared addresses, which are not looked for.
    pub known: Known,
}

/// Resources this profile's tag marks as ctguard's own that the profile no longer declares.
/// Only kinds that hold no audit data are looked for: buckets, log groups and keys are never
/// deleted, so there is nothing to propose for them. Left-over trails (`trail::left_over`)
/// are found first, since the declared bucket and key policies must admit them.
pub async fn undeclared(
    aws: &Aws,
    profile: &Profile,
    declared: &[Box<dyn Resource>],
    listings: &Listings,
    left_over_trails: &[trail::LeftOver],
) -> anyhow::Result<Vec<Box<dyn Resource>>> {
    let known: Known = declared.iter().map(|r| r.address()).collect();
    let role_path = profile.cloudwatch_logs.as_ref().map(|c| c.role_path.as_str()).unwrap_or("/ctguard/");
    let search = Search { aws, profile: &profile.name, listings, known };
    let trails = trail::undeclared(profile, left_over_trails);
    let (roles, rules, alarms, filters, config_rules) = tokio::try_join!(
        role::owned(aws, search.profile, role_path),
        rule::owned(&search),
        alarm::owned(&search),
        async {
            match &profile.cloudwatch_logs {
                Some(cw) => metric_filter::owned(aws, cw, &search.known, listings.metric_filters.clone()).await,
                None => Ok(Vec::new()),
            }
        },
        config_rule::owned(&search),
    )?;
    let all = trails.into_iter().chain(roles).chain(rules).chain(alarms).chain(filters).chain(config_rules);
    Ok(all.filter(|r| !search.known.contains(&r.address())).collect())
}

impl<'a> Search<'a> {
    /// In every region of the profile, the candidates `list` finds there (see
    /// `tagged_as_owned`) that the region's tag index says the profile owns.
    pub async fn in_regions<F, Fut>(&'a self, list: F) -> anyhow::Result<Vec<Box<dyn Resource>>>
    where
        F: Fn(&'a str) -> Fut,
        Fut: Future<Output = anyhow::Result<Vec<(String, Box<dyn Resource>)>>>,
    {
        let list = &list;
        let per_region = self
            .listings
            .tags
            .iter()
            .map(|(region, index)| async move { self.tagged_as_owned(index, region, list(region).await?).await });
        Ok(futures::future::try_join_all(per_region).await?.into_iter().flatten().collect())
    }

    /// Of `candidates` (each a resource's ARN and the undeclared resource it would be), those
    /// not known that `index` says the profile owns.
    pub async fn tagged_as_owned(
        &self,
        index: &TagIndex,
        region: &str,
        candidates: impl IntoIterator<Item = (String, Box<dyn Resource>)>,
    ) -> anyhow::Result<Vec<Box<dyn Resource>>> {
        let mut found = Vec::new();
        for (arn, candidate) in candidates {
            if !self.known.contains(&candidate.address())
                && index.owned_by(self.aws, region, &arn, self.profile).await?
            {
                found.push(candidate);
            }
        }
        Ok(found)
    }
}
