//! Commands: short orchestration over profile, engine and renderers.

pub mod agents;
pub mod apply;
pub mod hunt;
pub mod investigate;
pub mod plan;
pub mod profiles;
pub mod test;
pub mod validate_logs;
pub mod verify;

use std::time::Instant;

use crate::aws::{self, Aws};
use crate::engine::{self, LiveState};
use crate::plan::Plan;
use crate::printer::Printer;
use crate::profile::{self, Profile, Runtime};
use crate::render::Context;
use crate::resources::{self, Resource};
use crate::settings::Settings;

/// How a command ended, mapped to the exit code in `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 0.
    Success,
    /// 2: changes pending (plan --detailed-exitcode) or drift (verify), or an event at or
    /// above investigate's --fail-on.
    Differs,
    /// 3: investigate read only part of what it was asked to (some lookups failed) and found
    /// nothing at or above --fail-on in that part.
    Partial,
}

/// A profile resolved against a live account, with its clients and resources.
pub struct Session {
    pub aws: Aws,
    pub profile: Profile,
    pub resources: Vec<Box<dyn Resource>>,
    pub ctx: Context,
}

impl Session {
    /// Loads and fully validates the profile, then connects. The profile is checked once with
    /// stand-in account facts before any AWS call, so a bad profile fails without credentials.
    pub async fn open(settings: &Settings, printer: &Printer) -> anyhow::Result<Session> {
        let loaded = profile::load(&settings.profile)?;
        // The profile's own home_region is checked with the rest of the profile, in resolve.
        if let Some(region) = &settings.region {
            profile::validate::region(region)
                .map_err(|e| anyhow::anyhow!("--region (or AWS_REGION): {region:?} is not valid: expected {e}"))?;
        }
        let home = settings.region.clone().or(loaded.home_region().map(str::to_string));
        loaded.resolve(&Runtime::placeholder(home.as_deref().unwrap_or("us-east-1")), &settings.overrides)?;

        let started = Instant::now();
        let config = aws::load_config(&settings.connect(loaded.home_region())).await;
        let on_retry = printer.retries();
        let caller = aws::whoami(&config, &on_retry).await?;
        let enabled_regions =
            if loaded.wants_enabled_regions() { aws::enabled_regions(&config, &on_retry).await? } else { Vec::new() };
        let runtime = runtime_of(&caller, enabled_regions);
        printer.verbose(&format!(
            "account {} in {} ({:.0} ms)",
            runtime.account_id,
            runtime.region,
            started.elapsed().as_secs_f64() * 1e3
        ));
        let profile = loaded.resolve(&runtime, &settings.overrides)?;
        let ctx = Context {
            profile: profile.name.clone(),
            account: runtime.account_id.clone(),
            region: runtime.region.clone(),
        };
        let aws = Aws::new(&config, caller, &profile.regions, &on_retry);
        let listings = resources::Listings::new(&profile.regions);
        let mut resources = resources::declared(&profile, &listings);
        let orphans = resources::undeclared(&aws, &profile, &resources, &listings).await?;
        resources.extend(orphans);
        Ok(Session { aws, profile, resources, ctx })
    }

    /// Reads live state and plans.
    pub async fn plan(&self, printer: &Printer) -> anyhow::Result<(LiveState, Plan)> {
        let started = Instant::now();
        let live = engine::read_all(&self.aws, &self.resources).await?;
        printer.verbose(&format!("read {} resources in {:.0} ms", live.len(), started.elapsed().as_secs_f64() * 1e3));
        let plan = engine::plan(&self.profile.name, &self.resources, &live);
        Ok((live, plan))
    }
}

/// The run-time facts a profile is resolved against: who STS says is calling, and the
/// regions enabled for the account when the profile asks for all of them.
pub(crate) fn runtime_of(caller: &aws::Caller, enabled_regions: Vec<String>) -> Runtime {
    Runtime {
        account_id: caller.account_id.clone(),
        partition: caller.partition.clone(),
        region: caller.region.clone(),
        enabled_regions,
    }
}
