//! The organization trail a member account relies on (`[trail] use_organization_trail`): made
//! and owned by the management account (by ctguard there, or by Control Tower), so from here it
//! is only read. A member sees it as a shadow trail in DescribeTrails (CloudTrail API Reference,
//! DescribeTrails: "in the case of an organization trail, the replication of an organization
//! trail in member accounts"), and cannot change or delete it.

use async_trait::async_trait;
use serde::Serialize;

use super::kind::{Check, Declared, Delta, Found, Kind};
use crate::aws::{Aws, AwsResultExt};
use crate::plan::Address;
use crate::profile::Profile;

pub const KIND: &str = "organization_trail";

/// Whether an organization trail of another account records this one, and how.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoverageSpec {
    /// An organization trail whose home account is not this one is in DescribeTrails.
    pub covered: bool,
    /// It records every region (IsMultiRegionTrail).
    pub multi_region: bool,
    /// It records global service events (IAM, STS, CloudFront).
    pub include_global_service_events: bool,
    /// It is logging (GetTrailStatus by its ARN, which a member may call). A member's own trail
    /// is deleted only once this holds.
    pub logging: bool,
}

impl super::kind::Spec for CoverageSpec {}

/// An organization trail as a member reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Covering {
    pub arn: String,
    pub home_region: String,
    pub owner: String,
    pub multi_region: bool,
    pub include_global_service_events: bool,
}

/// The account that owns a trail, from its ARN (`arn:partition:cloudtrail:region:account:trail/name`).
pub fn owner_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4)
}

/// The organization trails of other accounts in the home region's DescribeTrails, shadow
/// trails included: what covers `account` without being its own.
pub async fn covering(aws: &Aws, account: &str) -> anyhow::Result<Vec<Covering>> {
    Ok(covering_in(&listed_with_shadows(aws).await?, account))
}

/// The home region's DescribeTrails, shadow trails (other regions' and accounts' trails that
/// record here) included.
pub async fn listed_with_shadows(aws: &Aws) -> anyhow::Result<Vec<aws_sdk_cloudtrail::types::Trail>> {
    let req = aws.cloudtrail.describe_trails().include_shadow_trails(true);
    let listed = req.send().await.ctx(|| "listing CloudTrail trails, shadow trails included".into())?;
    Ok(listed.trail_list().to_vec())
}

/// The organization trails of other accounts among `listed` (DescribeTrails with shadow trails).
pub fn covering_in(listed: &[aws_sdk_cloudtrail::types::Trail], account: &str) -> Vec<Covering> {
    listed
        .iter()
        .filter(|t| t.is_organization_trail() == Some(true))
        .filter_map(|t| {
            let arn = t.trail_arn()?.to_string();
            let owner = owner_of(&arn)?.to_string();
            (owner != account).then(|| Covering {
                home_region: t.home_region().unwrap_or_default().to_string(),
                multi_region: t.is_multi_region_trail().unwrap_or(false),
                include_global_service_events: t.include_global_service_events().unwrap_or(false),
                arn,
                owner,
            })
        })
        .collect()
}

/// One per profile: the organization trail covering the account, read in the home region.
pub fn address(region: &str) -> Address {
    Address { kind: KIND, name: "covering".into(), region: region.into() }
}

pub struct OrganizationTrail {
    account: String,
    region: String,
}

impl OrganizationTrail {
    pub fn new(profile: &Profile, region: &str) -> Declared<Self> {
        let want =
            CoverageSpec { covered: true, multi_region: true, include_global_service_events: true, logging: true };
        let kind = OrganizationTrail { account: profile.runtime.account_id.clone(), region: region.into() };
        Declared::new(kind, address(region), want, Vec::new())
    }

    fn looked_for(&self) -> String {
        format!(
            "no trail in DescribeTrails of {} (shadow trails included) has IsOrganizationTrail = true and a home \
             account other than {}",
            self.region, self.account
        )
    }
}

#[async_trait]
impl Kind for OrganizationTrail {
    type Spec = CoverageSpec;

    /// Always found: absence is itself the state to report, with what was looked for.
    async fn read(&self, aws: &Aws, _want: Option<&CoverageSpec>) -> anyhow::Result<Option<Found<CoverageSpec>>> {
        let found = covering(aws, &self.account).await?;
        // Prefer one that records every region, as the profile asks.
        let Some(trail) = found.iter().max_by_key(|t| (t.multi_region, t.include_global_service_events)) else {
            let spec = CoverageSpec {
                covered: false,
                multi_region: false,
                include_global_service_events: false,
                logging: false,
            };
            let mut out = Found::new(spec);
            out.checks.push(Check {
                name: "an organization trail records this account".into(),
                ok: false,
                detail: self.looked_for(),
            });
            return Ok(Some(out));
        };
        // A member reads the organization trail's status by its ARN (CloudTrail API Reference,
        // GetTrailStatus: "you must provide the full ARN of that trail"); a refusal is this
        // caller's missing permission, an error like any other.
        let status = aws.cloudtrail.get_trail_status().name(&trail.arn).send().await;
        let logging = status.ctx(|| format!("reading the status of organization trail {}", trail.arn))?.is_logging()
            == Some(true);
        let spec = CoverageSpec {
            covered: true,
            multi_region: trail.multi_region,
            include_global_service_events: trail.include_global_service_events,
            logging,
        };
        let mut out = Found::new(spec);
        out.notes.push(format!(
            "relies on organization trail {} (home region {}, account {}), which that account manages",
            trail.arn, trail.home_region, trail.owner
        ));
        let check = Check {
            name: "the organization trail is logging".into(),
            ok: logging,
            detail: match logging {
                true => format!("{} is logging", trail.arn),
                false => format!("{} is not logging: StartLogging in account {}", trail.arn, trail.owner),
            },
        };
        out.checks.push(check);
        Ok(Some(out))
    }

    /// The trail is another account's: nothing here can make or change it.
    async fn update(&self, _aws: &Aws, _delta: &Delta<'_, CoverageSpec>) -> anyhow::Result<()> {
        anyhow::bail!(
            "the organization trail this profile relies on (trail.use_organization_trail = true) is missing, or \
             does not record every region and global service events (plan and verify say which); only the \
             management account can make or change it (ctguard there with [trail] organization = true, or \
             Control Tower)"
        )
    }

    /// Nothing to delete: the trail is the management account's.
    async fn delete(&self, _aws: &Aws) -> anyhow::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_is_the_account_in_the_arn() {
        assert_eq!(owner_of("arn:aws:cloudtrail:us-east-1:111122223333:trail/org"), Some("111122223333"));
        assert_eq!(owner_of("not-an-arn"), None);
    }
}
