//! Commands: short orchestration over profile, engine and renderers.

pub mod accounts;
pub mod agents;
pub mod apply;
pub mod destroy;
pub mod drill;
pub mod hunt;
pub mod investigate;
pub mod permissions;
pub mod plan;
pub mod profiles;
pub mod test;
pub mod validate;
pub mod validate_logs;
pub mod verify;

use std::sync::{Arc, Mutex};
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
    /// 1, with the failure already reported in the command's output: a run over several
    /// accounts in which some account failed.
    Failed,
}

/// Where a command is, for the message Ctrl-C leaves: what state the account is in.
#[derive(Debug, Clone, Default)]
pub struct Watch(Arc<Mutex<Phase>>);

#[derive(Debug, Clone, Default)]
enum Phase {
    /// Loading, reading, planning or asking: nothing has been changed.
    #[default]
    ReadOnly,
    /// Apply is making changes.
    Applying { total: usize, done: usize, failed: usize, in_flight: Vec<String> },
}

impl Watch {
    fn with<T>(&self, f: impl FnOnce(&mut Phase) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Apply is about to make `total` changes, on top of those it is making in other accounts.
    pub fn applying(&self, total: usize) {
        self.with(|p| match p {
            Phase::Applying { total: all, .. } => *all += total,
            Phase::ReadOnly => *p = Phase::Applying { total, done: 0, failed: 0, in_flight: Vec::new() },
        });
    }

    /// A change started (`None`) or ended (`Some(ok)`).
    pub fn change(&self, address: String, ended: Option<bool>) {
        self.with(|p| {
            if let Phase::Applying { done, failed, in_flight, .. } = p {
                match ended {
                    None => in_flight.push(address),
                    Some(ok) => {
                        in_flight.retain(|a| *a != address);
                        if ok { *done += 1 } else { *failed += 1 }
                    }
                }
            }
        })
    }

    /// What the account is left with, in words.
    pub fn describe(&self) -> String {
        self.with(|p| match p {
            Phase::ReadOnly => "nothing was changed".to_string(),
            Phase::Applying { total, done, failed, in_flight } => {
                let waiting = *total - *done - *failed - in_flight.len();
                let mut text = format!(
                    "apply stopped part-way: {done} of {total} changes made, {failed} failed, {} in progress, {waiting} not started",
                    in_flight.len()
                );
                if !in_flight.is_empty() {
                    text.push_str(&format!(
                        " ({} may or may not have taken effect: {})",
                        if in_flight.len() == 1 { "it" } else { "each" },
                        in_flight.join(", ")
                    ));
                }
                text.push_str(
                    ". The account is partly converged; run `ctguard apply` again to finish: every step is safe to repeat, and `ctguard plan` shows what is left",
                );
                text
            }
        })
    }
}

/// The user pressed Ctrl-C; the text says what state the account is left in.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: {0}")]
pub struct Interrupted(pub String);

/// The profile does not fit an account: it does not resolve there, or the account may not hold
/// what it declares (an organization trail outside the management account). Bad input, not an
/// account that could not be reached: a run over several accounts changes none of them.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Unfit(#[from] pub anyhow::Error);

/// A profile resolved against a live account, with its clients and resources.
pub struct Session {
    pub aws: Aws,
    pub profile: Profile,
    pub resources: Vec<Box<dyn Resource>>,
    pub ctx: Context,
}

/// What every account's session starts from: the profile checked offline, and the caller's
/// configuration and identity.
pub struct Start {
    pub loaded: profile::Loaded,
    pub config: aws_config::SdkConfig,
    pub caller: aws::Caller,
}

impl Start {
    /// Loads and fully validates the profile, then connects as the caller. The profile is
    /// checked once with stand-in account facts before any AWS call, so a bad profile fails
    /// without credentials.
    pub async fn new(settings: &Settings, printer: &Printer) -> anyhow::Result<Start> {
        let (loaded, _) = validate::offline(&settings.profile, settings.region.as_deref())?;
        let home = settings.region.clone().or(loaded.home_region().map(str::to_string));
        let config = aws::load_config(&settings.connect(loaded.home_region())).await;
        if home.is_none() {
            // The region came from AWS_REGION or the shared config: held to the same rules.
            if let Some(region) = config.region().map(|r| r.as_ref()) {
                profile::validate::region(region).map_err(|e| {
                    anyhow::anyhow!("region {region:?} (from AWS_REGION or the shared AWS config): expected {e}")
                })?;
            }
        }
        aws::credentials::check(&config, settings.aws_profile.as_deref()).await?;
        let caller = aws::whoami(&config, &printer.retries()).await?;
        Ok(Start { loaded, config, caller })
    }
}

impl Session {
    /// The session of the caller's own account.
    pub async fn open(settings: &Settings, printer: &Printer) -> anyhow::Result<Session> {
        let start = Start::new(settings, printer).await?;
        Session::connect(settings, printer, &start.loaded, &start.config, start.caller).await
    }

    /// The caller's own account resolved, without its resources: what a command that reads no
    /// resource state needs (`drill`).
    pub async fn prepare(settings: &Settings, printer: &Printer) -> anyhow::Result<(Aws, Profile, Context)> {
        let start = Start::new(settings, printer).await?;
        Session::resolve(settings, printer, &start.loaded, &start.config, start.caller).await
    }

    /// The session of the account `config` acts in, `caller` being who STS says that is: the
    /// profile resolved for that account (its id, partition and regions), with its clients.
    pub async fn connect(
        settings: &Settings,
        printer: &Printer,
        loaded: &profile::Loaded,
        config: &aws_config::SdkConfig,
        caller: aws::Caller,
    ) -> anyhow::Result<Session> {
        let (aws, mut profile, ctx) = Session::resolve(settings, printer, loaded, config, caller).await?;
        // The trails a rename left behind keep logging until they are deleted: the documents
        // that admit only the declared trail must admit them too.
        let survey = resources::trail::survey(&aws, &profile).await?;
        let left_over = survey.left_over;
        if !profile.trail.use_organization_trail && profile.trail.organization.is_none() {
            for t in &survey.covering {
                printer.status(&format!(
                    "note: organization trail {} (account {}) already records this account; \
                     `[trail] use_organization_trail = true` relies on it instead of a second, paid trail",
                    t.arn, t.owner
                ));
            }
        }
        resources::trail::admit(&mut profile, &left_over);
        let listings = resources::Listings::new(&profile.regions);
        let mut resources = resources::declared(&profile, &listings);
        let orphans = resources::undeclared(&aws, &profile, &resources, &listings, &left_over).await?;
        resources.extend(orphans);
        Ok(Session { aws, profile, resources, ctx })
    }

    /// The profile resolved for the account `config` acts in, and its clients.
    async fn resolve(
        settings: &Settings,
        printer: &Printer,
        loaded: &profile::Loaded,
        config: &aws_config::SdkConfig,
        caller: aws::Caller,
    ) -> anyhow::Result<(Aws, Profile, Context)> {
        let started = Instant::now();
        let on_retry = printer.retries();
        let enabled_regions =
            if loaded.wants_enabled_regions() { aws::enabled_regions(config, &on_retry).await? } else { Vec::new() };
        let mut runtime = runtime_of(&caller, enabled_regions);
        // Checked before anything is read or written: only the management account or
        // CloudTrail's delegated administrator may make an organization trail.
        runtime.organization = if loaded.wants_organization() {
            let found = aws::organization::for_organization_trail(config, &caller.account_id, &on_retry).await;
            Some(found.map_err(Unfit)?)
        } else if loaded.central_bus_account() == Some(caller.account_id.as_str()) {
            // The central bus's policy admits the organization of the account that owns it.
            aws::organization::of_account(config, &on_retry).await?
        } else {
            None
        };
        printer.verbose(&format!(
            "account {} in {} ({:.0} ms)",
            runtime.account_id,
            runtime.region,
            started.elapsed().as_secs_f64() * 1e3
        ));
        let mut profile = loaded.resolve(&runtime, &settings.profile.overrides).map_err(|e| Unfit(e.into()))?;
        if let Some(alerts) = profile.alerts.as_mut() {
            alerts.show_endpoints = settings.show_endpoints;
        }
        let ctx = Context {
            profile: profile.name.clone(),
            account: runtime.account_id.clone(),
            region: runtime.region.clone(),
        };
        let aws = Aws::new(config, caller, &profile.regions, &on_retry);
        Ok((aws, profile, ctx))
    }

    /// Warns about each subscription the plan would make to an endpoint in a domain reserved
    /// for examples (RFC 2606): alerts sent there reach nobody.
    pub fn warn_about_example_endpoints(&self, plan: &Plan, printer: &Printer) {
        let Some(alerts) = &self.profile.alerts else { return };
        for s in alerts.subscriptions().filter(|s| is_example_endpoint(&s.endpoint)) {
            let key = format!("{}:{}", s.protocol, s.endpoint);
            let subscribing = plan
                .changes
                .iter()
                .filter(|c| c.action != crate::plan::Action::NoOp)
                .flat_map(|c| &c.diffs)
                .any(|d| d.after.is_some() && d.path.ends_with(&key));
            if subscribing {
                printer.warn(&format!(
                    "the alert subscription {key} is in a domain reserved for examples: nobody will receive the alerts. \
                     Subscribe a real endpoint (the shipped profiles take it from --var alert_email=you@your-company.com)"
                ));
            }
        }
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
        // Replaced by the account's own in `Session::resolve`, the one command path that writes
        // the documents it fills.
        organization: Some(profile::Organization::stand_in()),
    }
}

/// An email address or URL in a domain RFC 2606 reserves for documentation and tests.
pub fn is_example_endpoint(endpoint: &str) -> bool {
    let host = match endpoint.rsplit_once('@') {
        Some((_, domain)) if !endpoint.contains("://") => domain.to_string(),
        _ => url::Url::parse(endpoint).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default(),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    ["example.com", "example.net", "example.org"].iter().any(|d| host == *d || host.ends_with(&format!(".{d}")))
        || [".example", ".test", ".invalid"].iter().any(|tld| host.ends_with(tld))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_endpoints_are_recognised() {
        for e in
            ["security-alerts@example.com", "a@mail.example.org", "https://hooks.example.net/x?token=1", "x@host.test"]
        {
            assert!(is_example_endpoint(e), "{e}");
        }
        for e in ["security@acme.com", "https://example.com.evil.io/x", "arn:aws:sqs:us-east-1:123456789012:q"] {
            assert!(!is_example_endpoint(e), "{e}");
        }
    }

    #[test]
    fn ctrl_c_names_what_apply_had_done() {
        let watch = Watch::default();
        assert_eq!(watch.describe(), "nothing was changed");
        watch.applying(4);
        watch.change("a".into(), None);
        watch.change("a".into(), Some(true));
        watch.change("b".into(), None);
        let text = watch.describe();
        assert!(
            text.starts_with("apply stopped part-way: 1 of 4 changes made, 0 failed, 1 in progress, 2 not started"),
            "{text}"
        );
        assert!(text.contains("may or may not have taken effect: b"), "{text}");
        assert!(text.contains("run `ctguard apply` again"), "{text}");
    }
}
