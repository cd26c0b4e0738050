//! `ctguard permissions`: the IAM policy a profile needs, with its names filled in for the
//! account STS reports (or `--account`, or every account when neither is known).

use super::Status;
use crate::aws;
use crate::permissions::{self, Options};
use crate::printer::Printer;
use crate::profile::{self, Runtime, validate};
use crate::settings::PermissionsSettings;

/// Stands in for an account nobody named; every occurrence is printed as `*`.
const UNKNOWN_ACCOUNT: &str = "000000000000";

pub async fn run(settings: &PermissionsSettings, printer: &Printer) -> anyhow::Result<Status> {
    let common = &settings.common;
    let loaded = profile::load(&common.profile.spec)?;
    if let Some(region) = &common.region {
        validate::region(region)
            .map_err(|e| anyhow::anyhow!("--region (or AWS_REGION): {region:?} is not valid: expected {e}"))?;
    }
    let home = common.region.clone().or(loaded.home_region().map(str::to_string));
    let (account, partition, region) = match &settings.account {
        Some(account) => {
            let region = home.unwrap_or_else(|| "us-east-1".into());
            (account.clone(), validate::partition_of(&region).to_string(), region)
        }
        None => {
            let config = aws::load_config(&common.connect(loaded.home_region())).await;
            match aws::whoami(&config, &printer.retries()).await {
                Ok(caller) => (caller.account_id, caller.partition, caller.region),
                Err(e) => {
                    printer.status(&format!(
                        "warning: could not ask STS for the account ({e:#}); the policy names every account (*): \
                         pass --account ID to name yours"
                    ));
                    let region = home.or(config.region().map(|r| r.to_string())).unwrap_or_else(|| "us-east-1".into());
                    (UNKNOWN_ACCOUNT.to_string(), validate::partition_of(&region).to_string(), region)
                }
            }
        }
    };
    let unknown_account = (account == UNKNOWN_ACCOUNT).then(|| account.clone());
    let runtime = Runtime {
        account_id: account,
        partition,
        enabled_regions: vec![region.clone()],
        region,
        organization: Some(profile::Organization::stand_in()),
    };
    let profile = loaded.resolve(&runtime, &common.profile.overrides)?;
    let options = Options {
        read_only: settings.read_only,
        destroy: settings.destroy,
        all_regions: loaded.wants_enabled_regions(),
        unknown_account,
    };
    let mut doc = if settings.drill {
        permissions::drill_policy(&profile, &options)
    } else {
        permissions::policy(&profile, &options)
    };
    if let (Some(role), Some(statements)) = (&settings.organization, doc["Statement"].as_array_mut()) {
        statements.extend(permissions::organization_statements(&runtime.partition, role));
    }
    let size = doc.to_string().len();
    if size > permissions::MANAGED_POLICY_LIMIT {
        printer.status(&format!(
            "note: this policy has {size} characters without white space, more than a managed policy's {} \
             (IAM quotas): attach it to the role as an inline policy (up to 10,240), or split its statements",
            permissions::MANAGED_POLICY_LIMIT
        ));
    }
    printer.data(|w, _| writeln!(w, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default()))?;
    Ok(Status::Success)
}
