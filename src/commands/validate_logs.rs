//! `ctguard validate-logs`: the trail's digest chain and log files, checked against CloudTrail's
//! signatures over a window.

use time::OffsetDateTime;

use super::Status;
use crate::aws::{self, Aws};
use crate::integrity::report::Verdict;
use crate::integrity::validate::{self, KeySupply};
use crate::integrity::{self, plural};
use crate::printer::Printer;
use crate::profile::{self, Runtime};
use crate::render::{self, Context};
use crate::settings::{Format, ValidateLogsSettings};

pub async fn run(settings: &ValidateLogsSettings, printer: &Printer) -> anyhow::Result<Status> {
    let common = &settings.common;
    let loaded = profile::load(&common.profile.spec)?;
    if let Some(region) = &common.region {
        profile::validate::region(region).map_err(|e| anyhow::anyhow!("--region {region:?}: expected {e}"))?;
    }
    // The whole profile is checked before any AWS call, with stand-in account facts.
    let home = common.region.clone().or(loaded.home_region().map(str::to_string));
    let checked =
        loaded.resolve(&Runtime::placeholder(home.as_deref().unwrap_or("us-east-1")), &common.profile.overrides)?;
    if !checked.trail.log_file_validation {
        anyhow::bail!(
            "{}: trail.log_file_validation is false: CloudTrail delivers no digest files to validate",
            checked.file
        );
    }

    let config = aws::load_config(&common.connect(loaded.home_region())).await;
    aws::credentials::check(&config, common.aws_profile.as_deref()).await?;
    let on_retry = printer.retries();
    let caller = aws::whoami(&config, &on_retry).await?;
    let profile = loaded.resolve(&super::runtime_of(&caller, Vec::new()), &common.profile.overrides)?;
    let aws = Aws::new(&config, caller, &profile.regions, &on_retry);
    let supply = match &settings.public_keys {
        Some((keys, names)) => KeySupply::Files { keys: keys.clone(), names: names.clone() },
        None => KeySupply::CloudTrail(aws.cloudtrail.clone()),
    };
    let trail = integrity::trail_of(&profile);
    let note = |m: String| printer.verbose(&m);
    let now = OffsetDateTime::now_utc();
    let report =
        validate::run(&aws.s3, &supply, &trail, settings.window, &[aws.region().to_string()], now, &note).await?;

    let ctx =
        Context { profile: profile.name.clone(), account: aws.caller.account_id.clone(), region: aws.region().into() };
    printer.data(|w, paint| match common.format {
        Format::Human => render::integrity::human(w, paint, &report),
        Format::Json => render::integrity::json(w, &ctx, &report),
    })?;
    match report.verdict() {
        Verdict::Valid => Ok(Status::Success),
        Verdict::Invalid => Ok(Status::Differs),
        Verdict::Undecided => {
            let t = report.totals();
            anyhow::bail!(
                "could not decide: {} and {} could not be checked",
                plural(t.digests.unverified, "digest file"),
                plural(t.log_files.unreadable, "log file")
            )
        }
    }
}
