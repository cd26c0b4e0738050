//! `ctguard test`: the profile's detections, as deployed, replayed over CloudTrail records.

use std::time::Instant;

use crate::detect::catalog::Catalog;
use crate::detect::replay::{self, Account};
use crate::printer::Printer;
use crate::profile::{self, Runtime};
use crate::render::{human, json};
use crate::settings::{Format, TestSettings};

use super::Status;

pub fn run(settings: &TestSettings, printer: &Printer) -> anyhow::Result<Status> {
    let loaded = profile::load(&settings.profile.spec)?;
    let home = loaded.home_region().unwrap_or("us-east-1").to_string();
    let catalog_for = |account: &Account| -> anyhow::Result<Catalog> {
        let id = settings.account.clone().unwrap_or_else(|| account.id.clone());
        let runtime = Runtime {
            account_id: if id.is_empty() { Runtime::placeholder(&home).account_id } else { id },
            partition: account.partition.clone(),
            region: home.clone(),
            enabled_regions: vec![home.clone()],
        };
        let profile = loaded.resolve(&runtime, &settings.profile.overrides)?;
        Ok(Catalog::of(&profile)?)
    };
    // Validates the profile and its patterns before reading any input.
    let catalog = catalog_for(&Account { id: String::new(), partition: "aws".into() })?;
    let inputs = replay::expand(&settings.inputs)?;
    let count = catalog.detections.len();
    let started = Instant::now();
    let mut result = Ok(Default::default());
    printer.data(|w, paint| {
        result = match settings.format {
            Format::Human => {
                human::test_header(w, paint, &loaded.doc.profile.name, &catalog)?;
                let tally = replay::run(&inputs, settings.jobs, &catalog_for, count, |hit| {
                    if settings.summary_only { Ok(()) } else { human::test_hit(w, paint, &catalog, hit) }
                });
                if let Ok(tally) = &tally {
                    human::test_summary(w, paint, &catalog, tally)?;
                }
                tally
            }
            Format::Json => {
                let mut stream = json::TestStream::start(w, &loaded.doc.profile.name, &catalog)?;
                let tally = replay::run(&inputs, settings.jobs, &catalog_for, count, |hit| {
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
    printer.status(&format!(
        "replayed {} records in {seconds:.2} s ({:.0} records/s on {} workers)",
        tally.records,
        tally.records as f64 / seconds.max(1e-9),
        settings.jobs
    ));
    Ok(Status::Success)
}
