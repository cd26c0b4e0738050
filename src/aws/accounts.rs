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
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
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
/// credentials from assuming `role` there. The role is assumed here, once, so an account
/// whose role cannot be assumed fails before anything else is asked of it, with AWS's reason.
/// After that the SDK's assume-role provider serves the config, and its identity cache asks
/// it again before the credentials expire, so a long apply never runs on expired keys.
pub async fn reach(
    base: &SdkConfig,
    caller: &super::Caller,
    account: &str,
    role: &str,
    external_id: Option<&str>,
) -> anyhow::Result<SdkConfig> {
    if account == caller.account_id {
        return Ok(base.clone());
    }
    let arn = role_arn(&caller.partition, account, role);
    let mut builder = AssumeRoleProvider::builder(&arn).session_name(SESSION_NAME).configure(base);
    if let Some(id) = external_id {
        builder = builder.external_id(id);
    }
    let provider = builder.build().await;
    let first = provider
        .provide_credentials()
        .await
        .map_err(|e| anyhow::anyhow!("could not assume the role {arn} in account {account}: {}", assume_failure(&e)))?;
    let primed = Primed { first: std::sync::Mutex::new(Some(first)), provider };
    Ok(base.to_builder().credentials_provider(SharedCredentialsProvider::new(primed)).build())
}

/// The assume-role provider, with the credentials the first AssumeRole returned handed out
/// once before it is asked again: checking the role costs no second call.
#[derive(Debug)]
struct Primed {
    first: std::sync::Mutex<Option<Credentials>>,
    provider: AssumeRoleProvider,
}

impl ProvideCredentials for Primed {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner()).take();
        match first {
            Some(credentials) => future::ProvideCredentials::ready(Ok(credentials)),
            None => self.provider.provide_credentials(),
        }
    }
}

/// STS's own code and message for a failed AssumeRole (`AccessDenied: User: ... is not
/// authorized to perform: sts:AssumeRole ...`), else the whole chain of causes.
fn assume_failure(e: &CredentialsError) -> String {
    use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(sdk) = s.downcast_ref::<SdkError<AssumeRoleError, aws_smithy_runtime_api::http::Response>>()
            && let Some(code) = sdk.code()
        {
            return format!("{code}: {}", sdk.message().unwrap_or("no message"));
        }
        source = s.source();
    }
    super::error::causes(e)
}

/// Checks that `config` acts in `account` (an assumed role's trust may point elsewhere) and
/// returns who STS says the caller is there.
pub async fn whoami_in(config: &SdkConfig, account: &str, on_retry: &RetryListener) -> anyhow::Result<super::Caller> {
    let caller = super::whoami(config, on_retry).await.with_context(|| format!("account {account}"))?;
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
