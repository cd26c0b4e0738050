//! `ctguard test`: the profile's detections, as deployed, replayed over CloudTrail records.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::cli::Format;
use crate::detect::catalog::Catalog;
use crate::detect::replay::{self, Account, Hit, SkipRecord};
use crate::lookback::s3;
use crate::printer::Printer;
use crate::profile::{self, Runtime};
use crate::render::{human, json};
use crate::settings::TestSettings;

use super::Status;

pub fn run(settings: &TestSettings, printer: &Printer) -> anyhow::Result<Status> {
    let loaded = profile::load(&settings.profile)?;
    let home = loaded.home_region().unwrap_or("us-east-1").to_string();
    let catalog_for = |account: &Account| -> anyhow::Result<Catalog> {
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
        };
        let profile = loaded.resolve(&runtime, &settings.overrides)?;
        Ok(profile.catalog()?)
    };
    // Validates the profile and its patterns before reading any input.
    let catalog = catalog_for(&Account { id: String::new(), partition: "aws".into() })?;
    let inputs = replay::expand(&settings.inputs)?;
    let mut download =
        settings.bucket.as_ref().map(|b| s3::open(b, &loaded, &settings.overrides, printer)).transpose()?;
    let stats = download.as_ref().map(|d| d.stats.clone());
    let count = catalog.detections.len();
    let mut replay_with = |on_hit: &mut dyn FnMut(&Hit) -> io::Result<()>| match download.take() {
        Some(objects) => replay::run_sources(objects, settings.jobs, &catalog_for, count, on_hit),
        None => replay::run(&inputs, settings.jobs, &catalog_for, count, on_hit),
    };
    let started = Instant::now();
    let mut result = Ok(Default::default());
    printer.data(|w, paint| {
        result = match settings.format {
            Format::Human => {
                human::test_header(w, paint, &loaded.doc.profile.name, &catalog)?;
                let tally = replay_with(&mut |hit| {
                    if settings.summary_only { Ok(()) } else { human::test_hit(w, paint, &catalog, hit) }
                });
                if let Ok(tally) = &tally {
                    human::test_summary(w, paint, &catalog, tally)?;
                }
                tally
            }
            Format::Json => {
                let mut stream = json::TestStream::start(w, &loaded.doc.profile.name, &catalog)?;
                let tally = replay_with(&mut |hit| {
                    if settings.summary_only { Ok(()) } else { stream.hit(&catalog, hit) }
                });
                if let Ok(tally) = &tally {
                    stream.finish(&catalog, tally)?;
                }
                tally
            }
        };
        Ok(())
    })?;
    let tally = result?;
    let seconds = started.elapsed().as_secs_f64();
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
    Ok(Status::Success)
}
