//! The accounts of an organization, and how to act in each: AWS Organizations lists them, STS
//! assume-role reaches them.
//!
//! Organizations answers only in the management account or a delegated administrator, so the
//! listing is the first thing a fan-out does, before any account is touched: an id that is not
//! in the organization, or an OU that does not exist, stops the run with nothing changed.

use std::collections::BTreeSet;

use anyhow::Context as _;
use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_organizations::types::{Account, AccountState, AccountStatus};

use super::AwsResultExt;
use super::retry::ReportRetries;
use crate::events::RetryListener;
use crate::settings::AccountSelection;

/// The session name every assumed role carries: CloudTrail records it in the member account
/// (`assumed-role/ROLE/ctguard`), so what ctguard did there is plain to see.
pub const SESSION_NAME: &str = "ctguard";

/// One account of the organization that a fan-out runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    /// The account's name in the organization, for headers; may be empty.
    pub name: String,
}

fn organizations(config: &SdkConfig, on_retry: &RetryListener) -> aws_sdk_organizations::Client {
    let conf = aws_sdk_organizations::config::Builder::from(config)
        .interceptor(ReportRetries::new(on_retry.clone()))
        .interceptor(super::timing::TimeCalls)
        .build();
    aws_sdk_organizations::Client::from_conf(conf)
}

/// The ACTIVE accounts `selection` names, in the order asked (by id for `all` and OUs). Fails,
/// naming each, on ids that are not in the organization or not active, and on an OU that does
/// not exist.
pub async fn select(
    config: &SdkConfig,
    selection: &AccountSelection,
    on_retry: &RetryListener,
) -> anyhow::Result<Vec<Member>> {
    let client = organizations(config, on_retry);
    match selection {
        AccountSelection::All => Ok(active(list_all(&client).await?)),
        AccountSelection::Ids(ids) => {
            let all = list_all(&client).await?;
            pick(&all, ids)
        }
        AccountSelection::Ou(ou) => Ok(active(under_ou(&client, ou).await?)),
    }
}

/// Whether Organizations counts the account as active. `State` replaces `Status` (retired
/// in September 2026); either is read, whichever the answer carries.
fn is_active(a: &Account) -> bool {
    match (a.state(), a.status()) {
        (Some(state), _) => *state == AccountState::Active,
        (None, Some(status)) => *status == AccountStatus::Active,
        (None, None) => false,
    }
}

fn member(a: &Account) -> Member {
    Member { id: a.id().unwrap_or_default().to_string(), name: a.name().unwrap_or_default().to_string() }
}

fn active(accounts: Vec<Account>) -> Vec<Member> {
    let mut members: Vec<Member> = accounts.iter().filter(|a| is_active(a)).map(member).collect();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    members.dedup_by(|a, b| a.id == b.id);
    members
}

/// The listed ids, each of which must be an active account of the organization.
fn pick(all: &[Account], ids: &[String]) -> anyhow::Result<Vec<Member>> {
    let mut problems = Vec::new();
    let mut chosen = Vec::new();
    for id in ids {
        match all.iter().find(|a| a.id() == Some(id.as_str())) {
            None => problems.push(format!("{id} is not an account of the organization")),
            Some(a) if !is_active(a) => problems.push(format!(
                "{id} is not active (it is {})",
                a.state().map(|s| s.as_str().to_string()).unwrap_or_else(|| "in an unknown state".into())
            )),
            Some(a) => chosen.push(member(a)),
        }
    }
    anyhow::ensure!(problems.is_empty(), "--accounts: {}; nothing was changed", problems.join("; "));
    Ok(chosen)
}

async fn list_all(client: &aws_sdk_organizations::Client) -> anyhow::Result<Vec<Account>> {
    let mut pages = client.list_accounts().into_paginator().send();
    let mut accounts = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(not_in_organization)
            .map_err(|e| e.context("listing the organization's accounts (organizations:ListAccounts)".to_string()))?;
        accounts.extend(page.accounts().iter().cloned());
    }
    Ok(accounts)
}

/// The accounts in `ou` and in every OU below it: an OU groups its child OUs' accounts too
/// (service control policies attached to it apply to all of them), so that is what a person
/// naming an OU means.
async fn under_ou(client: &aws_sdk_organizations::Client, ou: &str) -> anyhow::Result<Vec<Account>> {
    let mut accounts = Vec::new();
    let mut pending = vec![ou.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(parent) = pending.pop() {
        if !seen.insert(parent.clone()) {
            continue;
        }
        let mut pages = client.list_accounts_for_parent().parent_id(&parent).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Err(e) if e.as_service_error().is_some_and(|s| s.is_parent_not_found_exception()) => {
                    anyhow::bail!(
                        "--accounts {ou}: the organizational unit {parent} does not exist in the organization; nothing was changed"
                    )
                }
                other => other.map_err(not_in_organization).map_err(|e| {
                    e.context(format!("listing the accounts in {parent} (organizations:ListAccountsForParent)"))
                })?,
            };
            accounts.extend(page.accounts().iter().cloned());
        }
        let mut pages = client.list_organizational_units_for_parent().parent_id(&parent).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.ctx(|| {
                format!("listing the organizational units in {parent} (organizations:ListOrganizationalUnitsForParent)")
            })?;
            pending.extend(page.organizational_units().iter().filter_map(|u| u.id().map(str::to_string)));
        }
    }
    Ok(accounts)
}

/// Organizations' answer when the caller cannot list the organization, with what to do.
fn not_in_organization<E>(
    e: aws_sdk_organizations::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> anyhow::Error
where
    E: aws_sdk_organizations::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_organizations::error::ProvideErrorMetadata;
    let hint = match e.code() {
        Some("AWSOrganizationsNotInUseException") => {
            Some("the account ctguard runs in is not in an organization: --accounts needs AWS Organizations")
        }
        Some("AccessDeniedException") => Some(
            "--accounts lists the organization's accounts, which only the management account or a delegated \
             administrator may do (organizations:ListAccounts, ListAccountsForParent)",
        ),
        _ => None,
    };
    let err = anyhow::Error::new(super::error::AwsError::from_sdk(e));
    match hint {
        Some(hint) => err.context(hint),
        None => err,
    }
}

/// The ARN of role `name` in `account`.
pub fn role_arn(partition: &str, account: &str, name: &str) -> String {
    format!("arn:{partition}:iam::{account}:role/{name}")
}

/// How to reach `account`: `base` itself for the caller's own account (it needs no role, and
/// the management account has no OrganizationAccountAccessRole of its own), otherwise
/// credentials from assuming `role` there. The SDK's assume-role provider asks STS when a
/// client first needs credentials; the config's identity cache keeps them and asks again
/// before they expire, so a long apply never runs on expired keys.
pub async fn reach(
    base: &SdkConfig,
    caller: &super::Caller,
    account: &str,
    role: &str,
    external_id: Option<&str>,
) -> SdkConfig {
    if account == caller.account_id {
        return base.clone();
    }
    let mut builder = AssumeRoleProvider::builder(role_arn(&caller.partition, account, role))
        .session_name(SESSION_NAME)
        .configure(base);
    if let Some(id) = external_id {
        builder = builder.external_id(id);
    }
    let provider = builder.build().await;
    base.to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build()
}

/// Checks that `config` acts in `account`: the first call with assumed credentials, so a role
/// that cannot be assumed fails here, with the reason, before anything else in that account.
pub async fn whoami_in(
    config: &SdkConfig,
    account: &str,
    role: &str,
    partition: &str,
    own: bool,
    on_retry: &RetryListener,
) -> anyhow::Result<super::Caller> {
    let caller = super::whoami(config, on_retry).await.with_context(|| {
        if own {
            format!("account {account}: asking STS who the caller is")
        } else {
            format!("could not assume the role {} in account {account}", role_arn(partition, account, role))
        }
    })?;
    anyhow::ensure!(
        caller.account_id == account,
        "account {account}: the credentials act in account {} instead",
        caller.account_id
    );
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str, state: AccountState) -> Account {
        Account::builder().id(id).name(format!("n{id}")).state(state).build()
    }

    #[test]
    fn role_arns_follow_the_partition() {
        assert_eq!(role_arn("aws", "111122223333", "R"), "arn:aws:iam::111122223333:role/R");
        assert_eq!(role_arn("aws-us-gov", "111122223333", "R"), "arn:aws-us-gov:iam::111122223333:role/R");
        assert_eq!(role_arn("aws-cn", "111122223333", "R"), "arn:aws-cn:iam::111122223333:role/R");
    }

    #[test]
    fn only_active_accounts_are_selected_once_each_by_id() {
        let all = vec![
            account("222222222222", AccountState::Active),
            account("111111111111", AccountState::Active),
            account("333333333333", AccountState::Suspended),
            account("111111111111", AccountState::Active),
        ];
        let ids: Vec<String> = active(all).into_iter().map(|m| m.id).collect();
        assert_eq!(ids, ["111111111111", "222222222222"]);
        let legacy = Account::builder().id("444444444444").status(AccountStatus::Active).build();
        assert!(is_active(&legacy));
    }

    #[test]
    fn listed_ids_must_be_active_members() {
        let all = vec![account("111111111111", AccountState::Active), account("333333333333", AccountState::Suspended)];
        let chosen = pick(&all, &["111111111111".into()]).unwrap();
        assert_eq!(chosen, [Member { id: "111111111111".into(), name: "n111111111111".into() }]);
        let err = pick(&all, &["999999999999".into(), "333333333333".into()]).unwrap_err().to_string();
        assert!(err.contains("999999999999 is not an account of the organization"), "{err}");
        assert!(err.contains("333333333333 is not active (it is SUSPENDED)"), "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
    }
}
