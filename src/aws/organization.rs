//! The account's AWS Organizations facts an organization trail needs, and the check that this
//! account may create one, made before any write.

use anyhow::Context;
use aws_config::SdkConfig;
use aws_sdk_organizations::Client;
use aws_sdk_organizations::types::OrganizationFeatureSet;

use super::{AwsResultExt, timing};
use crate::aws::retry::ReportRetries;
use crate::events::RetryListener;
use crate::profile::Organization;

/// CloudTrail's service principal, as Organizations names it for trusted access and delegated
/// administrators.
pub const CLOUDTRAIL: &str = "cloudtrail.amazonaws.com";

/// Who this account is in its organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Management,
    DelegatedAdministrator,
    Member,
}

fn client(config: &SdkConfig, on_retry: &RetryListener) -> Client {
    let conf = aws_sdk_organizations::config::Builder::from(config)
        .interceptor(ReportRetries::new(on_retry.clone()))
        .interceptor(timing::TimeCalls)
        .build();
    Client::from_conf(conf)
}

/// The organization `account` belongs to, checked to be one in which it may create an
/// organization trail: the management account with trusted access for CloudTrail on, or a
/// delegated administrator for CloudTrail (whose registration needs trusted access already).
/// Any other answer is an error that says what to do; nothing is written either way.
pub async fn for_organization_trail(
    config: &SdkConfig,
    account: &str,
    on_retry: &RetryListener,
) -> anyhow::Result<Organization> {
    let org = client(config, on_retry);
    let described = org.describe_organization().send().await;
    let described = match described {
        Err(e) if e.as_service_error().is_some_and(|s| s.is_aws_organizations_not_in_use_exception()) => {
            anyhow::bail!(
                "[trail] organization = true: account {account} belongs to no AWS Organizations organization; \
                 an organization trail needs one (remove organization = true for a trail of this account alone)"
            )
        }
        other => other.ctx(|| "reading the account's organization (organizations:DescribeOrganization)".into())?,
    };
    let o = described.organization().context("DescribeOrganization returned no organization")?;
    let id = o.id().context("DescribeOrganization returned no organization id")?.to_string();
    let management = o.master_account_id().context("DescribeOrganization returned no management account")?;
    let found = Organization { id: id.clone(), management_account: management.to_string() };
    // CloudTrail User Guide, "Prepare for creating a trail for your organization": all
    // features, not consolidated billing only.
    if o.feature_set() != Some(&OrganizationFeatureSet::All) {
        anyhow::bail!(
            "[trail] organization = true: organization {id} does not have all features enabled, which an \
             organization trail needs (Organizations console: enable all features)"
        );
    }
    match standing(&org, account, management).await? {
        Standing::Management => {
            let pages = org
                .list_aws_service_access_for_organization()
                .into_paginator()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .ctx(|| {
                    "reading trusted access of organization services (ListAWSServiceAccessForOrganization)".into()
                })?;
            let mut enabled = pages.iter().flat_map(|p| p.enabled_service_principals());
            if !enabled.any(|s| s.service_principal() == Some(CLOUDTRAIL)) {
                anyhow::bail!(
                    "[trail] organization = true: trusted access for CloudTrail is not enabled in organization {id}; \
                     CreateTrail refuses an organization trail without it. Enable it from the management account: \
                     aws organizations enable-aws-service-access --service-principal {CLOUDTRAIL}"
                );
            }
            Ok(found)
        }
        Standing::DelegatedAdministrator => Ok(found),
        Standing::Member => anyhow::bail!(
            "[trail] organization = true: account {account} is neither the management account ({management}) of \
             organization {id} nor a delegated administrator for CloudTrail, so it cannot create an organization \
             trail. Run from the management account, register this account (aws cloudtrail \
             register-organization-delegated-admin --member-account-id {account}, from the management account), \
             or remove organization = true"
        ),
    }
}

/// The organization `account` belongs to, or `None` when it belongs to none: what the account
/// that owns the central bus admits to it (`aws:PrincipalOrgID`). Any account of an
/// organization may call DescribeOrganization (Organizations API Reference).
pub async fn of_account(config: &SdkConfig, on_retry: &RetryListener) -> anyhow::Result<Option<Organization>> {
    let described = client(config, on_retry).describe_organization().send().await;
    let described = match described {
        Err(e) if e.as_service_error().is_some_and(|s| s.is_aws_organizations_not_in_use_exception()) => {
            return Ok(None);
        }
        other => other.ctx(|| "reading the account's organization (organizations:DescribeOrganization)".into())?,
    };
    let o = described.organization().context("DescribeOrganization returned no organization")?;
    Ok(Some(Organization {
        id: o.id().context("DescribeOrganization returned no organization id")?.to_string(),
        management_account: o
            .master_account_id()
            .context("DescribeOrganization returned no management account")?
            .to_string(),
    }))
}

/// Whether `account` manages the organization, administers CloudTrail for it, or neither.
async fn standing(org: &Client, account: &str, management: &str) -> anyhow::Result<Standing> {
    if account == management {
        return Ok(Standing::Management);
    }
    // Only the management account and delegated administrators may list delegated
    // administrators (Organizations API Reference, ListDelegatedAdministrators): a plain
    // member is refused, which answers the question.
    let listed = org
        .list_delegated_administrators()
        .service_principal(CLOUDTRAIL)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await;
    match listed {
        Ok(admins) if admins.iter().any(|a| a.id() == Some(account)) => Ok(Standing::DelegatedAdministrator),
        Ok(_) => Ok(Standing::Member),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_access_denied_exception()) => Ok(Standing::Member),
        Err(e) => Err(e).ctx(|| "reading CloudTrail's delegated administrators (ListDelegatedAdministrators)".into()),
    }
}
