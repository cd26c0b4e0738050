//! `ctguard investigate`: CloudTrail event history over a window, matched with the profile's
//! detections, rated, and reported newest first as it streams in.

use std::collections::{BTreeSet, HashSet};

use tokio::sync::mpsc;

use super::Status;
use crate::aws;
use crate::detect::catalog::Catalog;
use crate::detect::event_names::{AllowList, Unlisted};
use crate::lookback::event::Finding;
use crate::lookback::lookup::{self, Message};
use crate::lookback::merge::Merger;
use crate::lookback::pace::LOOKUPS_PER_SECOND;
use crate::lookback::principal::{Agents, Principals};
use crate::lookback::render::{Header, Report, Summary};
use crate::lookback::severity::{self, Assessor};
use crate::printer::Printer;
use crate::profile::{self, Runtime};
use crate::settings::{EventChoice, InvestigateSettings};

pub fn run(settings: &InvestigateSettings, printer: &Printer) -> anyhow::Result<Status> {
    // Everything that can be wrong with the input is found before the first AWS call.
    let loaded = profile::load(&settings.profile)?;
    let home = loaded.home_region().map(str::to_string).or_else(|| settings.regions.first().cloned());
    let stand_in =
        loaded.resolve(&Runtime::placeholder(home.as_deref().unwrap_or("us-east-1")), &settings.overrides)?;
    known_detections(&settings.detections, &stand_in.catalog()?)?;
    if settings.agents {
        Agents::of(&stand_in)?;
    }

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let on_retry = printer.retries();
    let connect = aws::ConnectOptions { region: home.clone(), ..settings.connect.clone() };
    let (config, caller) = runtime.block_on(async {
        let config = aws::load_config(&connect).await;
        let caller = aws::whoami(&config, &on_retry).await?;
        anyhow::Ok((config, caller))
    })?;
    let status = match &settings.fan_out {
        None => one_account(settings, printer, &runtime, &loaded, &config, caller),
        Some(fan) => every_account(settings, printer, &runtime, &loaded, &config, &caller, fan),
    };
    runtime.shutdown_background();
    status
}

/// Investigates each account `fan` selects, one after another (each streams its findings
/// under its own header), then prints the organization summary. An account that cannot be
/// reached is reported and the others go on.
fn every_account(
    settings: &InvestigateSettings,
    printer: &Printer,
    runtime: &tokio::runtime::Runtime,
    loaded: &profile::Loaded,
    base: &aws_config::SdkConfig,
    caller: &aws::Caller,
    fan: &crate::settings::FanOut,
) -> anyhow::Result<Status> {
    use crate::render::{AccountLine, AccountOutcome};
    let on_retry = printer.retries();
    let members = runtime.block_on(aws::accounts::select(base, &fan.accounts, &on_retry))?;
    anyhow::ensure!(!members.is_empty(), "--accounts: no ACTIVE account is selected");
    let mut lines = Vec::new();
    let mut worst = Status::Success;
    for m in &members {
        let reached = runtime.block_on(async {
            let config = aws::accounts::reach(base, caller, &m.id, &fan.role, fan.external_id.as_deref()).await?;
            let caller = aws::accounts::whoami_in(&config, &m.id, &on_retry).await?;
            anyhow::Ok((config, caller))
        });
        let mut line = AccountLine { id: m.id.clone(), name: m.name.clone(), outcome: AccountOutcome::Quiet };
        if settings.format == crate::lookback::render::Format::Human {
            printer.data(|w, paint| crate::render::human::account_header(w, paint, &line))?;
        }
        let status =
            reached.and_then(|(config, caller)| one_account(settings, printer, runtime, loaded, &config, caller));
        line.outcome = match status {
            Ok(Status::Differs) => AccountOutcome::Findings,
            Ok(Status::Partial) => AccountOutcome::Partial,
            Ok(_) => AccountOutcome::Quiet,
            Err(e) => {
                printer.warn(&format!("account {}: {e:#}", m.id));
                AccountOutcome::Failed(format!("{e:#}"))
            }
        };
        worst = match (&line.outcome, worst) {
            (AccountOutcome::Failed(_), _) | (_, Status::Failed) => Status::Failed,
            (AccountOutcome::Findings, _) | (_, Status::Differs) => Status::Differs,
            (AccountOutcome::Partial, _) | (_, Status::Partial) => Status::Partial,
            _ => Status::Success,
        };
        lines.push(line);
    }
    if settings.format == crate::lookback::render::Format::Human {
        printer.data(|w, paint| {
            writeln!(w)?;
            crate::render::human::organization_summary(w, paint, "investigate", &lines)
        })?;
    }
    Ok(worst)
}

/// Investigates the account `config` acts in (`caller`), streaming the findings.
fn one_account(
    settings: &InvestigateSettings,
    printer: &Printer,
    runtime: &tokio::runtime::Runtime,
    loaded: &profile::Loaded,
    config: &aws_config::SdkConfig,
    caller: aws::Caller,
) -> anyhow::Result<Status> {
    let on_retry = printer.retries();
    let enabled = if settings.regions.is_empty() && loaded.wants_enabled_regions() {
        runtime.block_on(aws::enabled_regions(config, &on_retry))?
    } else {
        Vec::new()
    };
    let account = super::runtime_of(&caller, enabled);
    let profile = loaded.resolve(&account, &settings.overrides)?;
    let catalog = profile.catalog()?;
    let regions = if settings.regions.is_empty() { profile.regions.clone() } else { settings.regions.clone() };
    let selected: Vec<usize> =
        settings.detections.iter().filter_map(|name| catalog.detections.iter().position(|d| &d.id == name)).collect();
    let (names, unlisted) = event_names(settings, &catalog, &selected, printer);
    let agents = if settings.agents { Some(Agents::of(&profile)?) } else { None };
    let principals = Principals { patterns: settings.principals.clone(), agents };
    let assessor = Assessor::new(&catalog, &profile);

    let specs = lookup::streams(&regions, names.as_deref());
    let (tx, mut rx) = mpsc::channel(64);
    let clients = regions.iter().map(|r| (r.clone(), lookup::client(config, r, &on_retry))).collect();
    let tasks = {
        let _inside = runtime.enter();
        lookup::spawn(clients, &specs, settings.window, LOOKUPS_PER_SECOND, tx)
    };

    let header = Header {
        profile: profile.name.clone(),
        account: account.account_id.clone(),
        window: settings.window,
        regions: regions.clone(),
        event_names: names.clone(),
        principals: principals.describe(),
        detections: settings.detections.clone(),
        unlisted,
    };
    let progress = Progress::new(printer, regions.len());
    let mut merger: Merger<Finding> = Merger::new(specs.len());
    let mut summary = Summary::default();
    let mut seen = HashSet::new();
    let mut failed_regions = BTreeSet::new();
    printer.data(|w, paint| {
        let mut report = Report::start(w, settings.format, paint.color, &header, &catalog)?;
        'read: while let Some(message) = rx.blocking_recv() {
            match message {
                Message::Page { stream, events, more } => {
                    summary.calls += 1;
                    let oldest = events.iter().map(|e| e.time).min();
                    let mut kept = Vec::new();
                    for mut found in events {
                        if !seen.insert(found.event_id.clone()) || !principals.matches(&found.record) {
                            continue;
                        }
                        let (assessment, record) = assessor.assess(std::mem::take(&mut found.record));
                        if !selected.is_empty() && !selected.iter().any(|i| assessment.fired.contains(i)) {
                            continue;
                        }
                        kept.push((found.time, found.tie_break(), Finding::new(found, assessment, record)));
                    }
                    progress.found(kept.len());
                    merger.page(stream, kept, oldest, more);
                }
                Message::Failed { stream, error, region_wide } => {
                    summary.calls += 1;
                    merger.close(stream);
                    // A region that fails fails once: calls already in flight there say it again.
                    if !region_wide || failed_regions.insert(specs[stream].region.clone()) {
                        progress.println(&format!("warning: {error}"));
                        summary.failures.push(error);
                    }
                }
                Message::Closed { stream } => merger.close(stream),
                Message::RegionDone { .. } => progress.region_done(),
            }
            progress.calls(summary.calls);
            while let Some(finding) = merger.pop() {
                report.event(&finding, &catalog, &assessor.alerts)?;
                summary.add(&finding);
                if settings.limit.is_some_and(|limit| summary.events >= limit) {
                    summary.limited = true;
                    break 'read;
                }
            }
        }
        progress.clear();
        report.finish(&summary)
    })?;
    drop(rx);
    for task in tasks {
        task.abort();
    }

    let worst = summary.worst().map(severity::rank);
    Ok(match settings.fail_on {
        Some(limit) if worst.is_some_and(|w| w >= severity::rank(limit)) => Status::Differs,
        _ if summary.partial() => Status::Partial,
        _ => Status::Success,
    })
}

/// Every `--detection` must name one of the profile's detections.
fn known_detections(names: &[String], catalog: &Catalog) -> anyhow::Result<()> {
    for name in names {
        if catalog.detections.iter().any(|d| &d.id == name) {
            continue;
        }
        let ids: Vec<&str> = catalog.detections.iter().map(|d| d.id.as_str()).collect();
        let close =
            ids.iter().copied().max_by(|a, b| strsim::jaro_winkler(name, a).total_cmp(&strsim::jaro_winkler(name, b)));
        let hint = match close {
            Some(c) if strsim::jaro_winkler(name, c) > 0.85 => format!(" (did you mean {c}?)"),
            _ => String::new(),
        };
        anyhow::bail!(
            "--detection {name:?}: the profile has no detection by that name{hint}; its rules and alarms are: {}",
            ids.join(", ")
        );
    }
    Ok(())
}

/// The event names to look up (`None`: every event), and the detections whose events the
/// list cannot all name. Warns about what the choice leaves out or costs.
fn event_names(
    settings: &InvestigateSettings,
    catalog: &Catalog,
    selected: &[usize],
    printer: &Printer,
) -> (Option<Vec<String>>, Vec<Unlisted>) {
    let everything = "reading every event in the window: LookupEvents returns at most 50 events per call, \
                      2 calls per second per region, so a busy account's day can take hours";
    let list = match &settings.events {
        EventChoice::Listed(names) => return (Some(names.clone()), Vec::new()),
        EventChoice::All => {
            printer.status(&format!("warning: {everything}; --event or --detection narrow it"));
            return (None, Vec::new());
        }
        EventChoice::Derived if selected.is_empty() => AllowList::of_catalog(catalog),
        EventChoice::Derived => AllowList::of(selected.iter().map(|&i| &catalog.detections[i])),
    };
    let named =
        |u: &[Unlisted]| u.iter().map(|u| format!("{} ({})", u.detection, u.why)).collect::<Vec<_>>().join(", ");
    if !selected.is_empty() && list.unlisted.iter().any(|u| u.any) {
        // A detection asked for by name can match any event: only reading everything finds all
        // it fires on.
        printer.status(&format!("--detection {}: {everything}", named(&list.unlisted)));
        return (None, list.unlisted);
    }
    if !list.unlisted.is_empty() {
        printer.status(&format!(
            "warning: {} detection{} can match event names the lookup list cannot hold, so {} events are found only \
             with --all-events or --event: {}",
            list.unlisted.len(),
            if list.unlisted.len() == 1 { "" } else { "s" },
            if list.unlisted.len() == 1 { "its" } else { "their" },
            named(&list.unlisted)
        ));
    }
    (Some(list.names.into_iter().collect()), list.unlisted)
}

/// Progress on a terminal's stderr: regions done, calls made, events found. Nothing otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    regions: usize,
    state: std::cell::Cell<(usize, u64, u64)>,
}

impl Progress {
    fn new(printer: &Printer, regions: usize) -> Progress {
        let bar = printer.output.interactive_stderr.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        let p = Progress { bar, regions, state: std::cell::Cell::new((0, 0, 0)) };
        p.draw();
        p
    }

    fn draw(&self) {
        if let Some(bar) = &self.bar {
            let (done, calls, found) = self.state.get();
            bar.set_message(format!(
                "{done}/{} regions done, {calls} LookupEvents calls, {found} events found",
                self.regions
            ));
        }
    }

    fn region_done(&self) {
        let (d, c, f) = self.state.get();
        self.state.set((d + 1, c, f));
        self.draw();
    }

    fn calls(&self, calls: u64) {
        let (d, _, f) = self.state.get();
        self.state.set((d, calls, f));
        self.draw();
    }

    fn found(&self, n: usize) {
        let (d, c, f) = self.state.get();
        self.state.set((d, c, f + n as u64));
    }

    /// A line on stderr that the spinner does not overwrite.
    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
