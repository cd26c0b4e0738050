//! `ctguard test`: the profile's detections, as deployed, replayed over CloudTrail records.

use std::io;

use anyhow::Context as _;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::detect::catalog::{Catalog, Kind};
use crate::detect::replay::{self, Account, Hit, InputProblems, SkipRecord, Threshold};
use crate::detect::timeline::Timeline;
use crate::lookback::s3;
use crate::printer::Printer;
use crate::profile::{self, Profile, Runtime};
use crate::render::{html, human, json};
use crate::settings::{Format, TestSettings};

use super::Status;

pub fn run(settings: &TestSettings, printer: &Printer) -> anyhow::Result<Status> {
    let loaded = profile::load(&settings.profile.spec)?;
    let home = loaded.home_region().unwrap_or("us-east-1").to_string();
    let resolve = |account: &Account| -> anyhow::Result<Profile> {
        let id = settings.account.clone().unwrap_or_else(|| account.id.clone());
        // Documentation examples carry placeholders ("XXXXXXXXXXXX", "<account-id>"): such a
        // record names no account the profile could be deployed in, so it is reported and
        // passed over, and the replay goes on.
        if !id.is_empty() && !(id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())) {
            return Err(
                SkipRecord(format!("account id {id:?} is not a 12-digit AWS account id; record skipped")).into()
            );
        }
        let runtime = Runtime {
            account_id: if id.is_empty() { Runtime::placeholder(&home).account_id } else { id },
            partition: account.partition.clone(),
            region: home.clone(),
            enabled_regions: vec![home.clone()],
            organization: Runtime::placeholder(&home).organization,
        };
        Ok(loaded.resolve(&runtime, &settings.profile.overrides)?)
    };
    let catalog_for = |account: &Account| -> anyhow::Result<Catalog> { Ok(resolve(account)?.catalog()?) };
    // Validates the profile and its patterns before reading any input.
    let stand_in = Account { id: String::new(), partition: "aws".into() };
    let catalog = catalog_for(&stand_in)?;
    let thresholds = thresholds(&catalog, &resolve(&stand_in)?);
    let (inputs, mut problems) = replay::expand(&settings.inputs);
    let total: u64 = inputs
        .iter()
        .filter_map(|i| match i {
            replay::Input::Path(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            replay::Input::Stdin => None,
        })
        .sum();
    // The bar shares the terminal with the records listed on stdout only when none are listed.
    let listed = !settings.summary_only && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let total = (!inputs.contains(&replay::Input::Stdin)).then_some(total);
    // Drawn once the header is out, so the two do not interleave.
    let bar = std::sync::OnceLock::new();
    let start_bar = || {
        if let Some(b) = (!listed).then(|| printer.bytes_progress(total)).flatten() {
            let _ = bar.set(b);
        }
    };
    let progress = |n: u64| {
        if let Some(bar) = bar.get() {
            bar.inc(n);
        }
    };
    let mut download =
        settings.bucket.as_ref().map(|b| s3::open(b, &loaded, &settings.profile.overrides, printer)).transpose()?;
    let stats = download.as_ref().map(|d| d.stats.clone());
    let count = catalog.detections.len();
    let mut replay_with = |on_hit: &mut dyn FnMut(&Hit) -> io::Result<()>| match download.take() {
        Some(objects) => replay::run_sources(objects, settings.jobs, &catalog_for, count, &progress, on_hit),
        None => replay::run(&inputs, settings.jobs, &catalog_for, count, &progress, on_hit),
    };
    let started = Instant::now();
    let (mut alerted, mut counted) = (0u64, 0u64);
    let mut tally = Default::default();
    let mut timeline = Timeline::default();
    let name = &loaded.doc.profile.name;
    printer.data(|w, paint| {
        let mut note = |hit: &replay::Hit| {
            if settings.html.is_some() {
                timeline.add(hit);
            }
            if hit.fired.iter().any(|&i| thresholds[i].as_ref().is_none_or(|t| t.alerts_on_one_match)) {
                alerted += 1;
            } else {
                counted += 1;
            }
        };
        tally = match settings.format {
            Format::Human => {
                human::test_header(w, paint, name, &catalog)?;
                w.flush()?;
                start_bar();
                let run = replay_with(&mut |hit| {
                    note(hit);
                    if settings.summary_only {
                        return Ok(());
                    }
                    human::test_hit(w, paint, &catalog, &thresholds, hit, settings.output.verbose > 0)
                });
                let mut tally = run.map_err(io_error)?;
                if let Some(bar) = bar.get() {
                    bar.finish_and_clear();
                }
                problems.append(&mut tally.problems);
                tally.problems = std::mem::take(&mut problems);
                human::test_summary(w, paint, &catalog, &thresholds, &tally, (alerted, counted))?;
                tally
            }
            Format::Json => {
                let mut stream = json::TestStream::start(w, name, &catalog, &thresholds)?;
                start_bar();
                let run = replay_with(&mut |hit| {
                    note(hit);
                    if settings.summary_only { Ok(()) } else { stream.hit(&catalog, &thresholds, hit) }
                });
                // The document is finished whatever happened, so it always parses.
                let mut tally = run.map_err(io_error)?;
                if let Some(bar) = bar.get() {
                    bar.finish_and_clear();
                }
                problems.append(&mut tally.problems);
                tally.problems = std::mem::take(&mut problems);
                stream.finish(&catalog, &tally, (alerted, counted))?;
                tally
            }
        };
        Ok(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(path) = &settings.html {
        let report = html::TestReport {
            profile: name,
            catalog: &catalog,
            thresholds: &thresholds,
            tally: &tally,
            timeline: &timeline,
            alerted,
            counted,
        };
        let mut page = Vec::new();
        html::test(&mut page, &report)?;
        std::fs::write(path, page).with_context(|| format!("writing the HTML report to {}", path.display()))?;
    }
    let downloaded = stats.map_or(String::new(), |s| {
        let (objects, bytes) = (s.objects.load(Ordering::Relaxed), s.bytes.load(Ordering::Relaxed));
        format!(", {objects} objects ({:.1} MB) downloaded", bytes as f64 / 1e6)
    });
    printer.status(&format!(
        "replayed {} records in {seconds:.2} s ({:.0} records/s on {} workers){downloaded}",
        tally.records,
        tally.records as f64 / seconds.max(1e-9),
        settings.jobs
    ));
    let in_document = settings.format == Format::Json;
    if !tally.problems.is_empty() {
        let listed: Vec<String> = tally.problems.iter().map(|p| format!("{}: {}", p.input, p.message)).collect();
        let n = listed.len();
        let message = format!(
            "{n} input{} could not be replayed{}:\n  {}",
            if n == 1 { "" } else { "s" },
            if tally.records > 0 { " (the others were)" } else { "" },
            listed.join("\n  ")
        );
        return Err(InputProblems { message, in_document }.into());
    }
    if tally.records == 0 {
        let message = "no CloudTrail records in the input: nothing was tested".to_string();
        return Err(InputProblems { message, in_document }.into());
    }
    Ok(Status::Success)
}

/// Each detection's alarm condition, by catalog index (`None` for EventBridge rules).
fn thresholds(catalog: &Catalog, profile: &Profile) -> Vec<Option<Threshold>> {
    catalog
        .detections
        .iter()
        .map(|d| {
            let alarm = profile.alarms.iter().find(|a| d.kind == Kind::Alarm && a.id == d.id)?;
            Some(Threshold::new(alarm.threshold, alarm.comparison.as_str(), alarm.period, alarm.evaluation_periods))
        })
        .collect()
}

fn io_error(e: anyhow::Error) -> std::io::Error {
    match e.downcast::<std::io::Error>() {
        Ok(io) => io,
        Err(other) => std::io::Error::other(format!("{other:#}")),
    }
}
