//! `ctguard hunt`: the profile's detections compiled to one Athena query, printed or run.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::aws;
use crate::detect::catalog::Catalog;
use crate::detect::replay::Hit;
use crate::hunt::athena::{self, Submit};
use crate::hunt::{self, Request, Window};
use crate::printer::Printer;
use crate::profile::{self, Runtime};
use crate::render::hunt::{self as report, Report};
use crate::settings::Format;
use crate::settings::HuntSettings;

use super::Status;

pub fn run(settings: &HuntSettings, printer: &Printer) -> anyhow::Result<Status> {
    let loaded = profile::load(&settings.profile)?;
    // Resolved as `ctguard test` resolves it, so both name and match detections alike.
    let home = loaded.home_region().unwrap_or("us-east-1").to_string();
    let catalog_for =
        |runtime: &Runtime| -> anyhow::Result<Catalog> { Ok(loaded.resolve(runtime, &settings.overrides)?.catalog()?) };
    let resolved = loaded.resolve(&Runtime::placeholder(&home), &settings.overrides)?;
    let athena_section = resolved.athena.clone();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let window = settings.since.map(|seconds| Window::last(seconds, now));
    let table = settings
        .table
        .clone()
        .or_else(|| athena_section.as_ref().map(|a| a.table.clone()))
        .unwrap_or_else(|| hunt::DEFAULT_TABLE.to_string());
    let request = Request { table: table.clone(), detections: settings.detections.clone(), window: window.clone() };
    let query = hunt::compile(&catalog_for, &home, &request)?;
    for note in hunt::left_out(&catalog_for(&Runtime::placeholder(&home))?, &request) {
        printer.status(&note);
    }
    if settings.emit_sql {
        printer.data(|w, _| writeln!(w, "{}", query.sql))?;
        return Ok(Status::Success);
    }
    let Some(window) = window else {
        anyhow::bail!(
            "--since is required to run on Athena (such as --since 90d): without it the query reads every log file in the bucket"
        );
    };
    let workgroup = settings
        .workgroup
        .clone()
        .or_else(|| athena_section.as_ref().map(|a| a.workgroup.clone()))
        .unwrap_or_else(|| "primary".into());
    let database = settings.database.clone().or_else(|| athena_section.as_ref().map(|a| a.database.clone()));
    let catalog = catalog_for(&Runtime::placeholder(&home))?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let finished = runtime.block_on(async {
        let mut connect = settings.connect.clone();
        connect.region = connect.region.or(Some(home.clone()));
        let config = aws::load_config(&connect).await;
        let on_retry = printer.retries();
        if let Some(limit) = settings.max_scan {
            check_scan(&config, &on_retry, &loaded, settings, &window, now, limit, printer).await?;
        }
        let client = athena::client(&config, &on_retry);
        let submit = Submit {
            sql: &query.sql,
            workgroup: &workgroup,
            database: database.as_deref(),
            poll: Duration::from_millis(250),
        };
        athena::run(&client, &submit, |p| {
            printer.status(&format!(
                "athena query {}: {}, {} scanned",
                p.id,
                p.state.to_lowercase(),
                athena::size(p.scanned)
            ))
        })
        .await
    })?;

    let tested: Vec<usize> =
        query.detections.iter().filter_map(|(id, _)| catalog.detections.iter().position(|d| d.id == *id)).collect();
    let report = Report {
        profile: loaded.doc.profile.name.clone(),
        query_id: finished.id.clone(),
        workgroup,
        table,
        since: Some(window.since.clone()),
        hits: hits(&catalog, &finished),
        tested,
        scanned: finished.scanned,
        cost: athena::cost(finished.scanned),
        seconds: finished.seconds,
    };
    printer.data(|w, paint| match settings.format {
        Format::Human => report::human(w, paint, &catalog, &report),
        Format::Json => report::json(w, &catalog, &report),
    })?;
    Ok(Status::Success)
}

/// Rows, one per (detection, event) and ordered by event, grouped into one hit per event.
fn hits(catalog: &Catalog, finished: &athena::Finished) -> Vec<Hit> {
    let mut hits: Vec<Hit> = Vec::new();
    for row in &finished.rows {
        let Some(index) = catalog.detections.iter().position(|d| d.id == row.detection) else { continue };
        let same_event = hits.last().is_some_and(|h| h.event_id == row.event_id && h.event_time == row.event_time);
        if !same_event {
            hits.push(Hit {
                origin: format!("athena:{}", finished.id),
                index: hits.len() as u64 + 1,
                event_time: row.event_time.clone(),
                region: row.region.clone(),
                event_source: row.event_source.clone(),
                event_name: row.event_name.clone(),
                principal: row.principal.clone(),
                error_code: row.error_code.clone(),
                event_id: row.event_id.clone(),
                account: row.account.clone(),
                fired: Vec::new(),
                signals: Vec::new(),
            });
        }
        if let Some(hit) = hits.last_mut() {
            hit.fired.push(index);
            hit.fired.sort_unstable();
            hit.fired.dedup();
        }
    }
    hits
}

/// Refuses a query whose window would obviously scan more than `limit`: the size of
/// yesterday's log files, in every region (and account) of the table's location, times the
/// days in the window.
#[allow(clippy::too_many_arguments)]
async fn check_scan(
    config: &aws_config::SdkConfig,
    on_retry: &crate::events::RetryListener,
    loaded: &profile::Loaded,
    settings: &HuntSettings,
    window: &Window,
    now: u64,
    limit: u64,
    printer: &Printer,
) -> anyhow::Result<()> {
    let caller = aws::whoami(config, on_retry).await?;
    let runtime = super::runtime_of(&caller, vec![caller.region.clone()]);
    let profile = loaded.resolve(&runtime, &settings.overrides)?;
    let organization = profile.athena.as_ref().and_then(|a| a.organization.clone());
    let owner = organization.as_ref().map_or(runtime.account_id.clone(), |o| o.id.clone());
    let prefix = &profile.bucket.trail_prefix;
    let root = if prefix.is_empty() { format!("AWSLogs/{owner}/") } else { format!("{prefix}/AWSLogs/{owner}/") };
    let s3_conf = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .interceptor(aws::retry::ReportRetries::new(on_retry.clone()))
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(s3_conf);
    let yesterday = Window::last(86_400, now).first_day;
    let per_day = athena::day_bytes(&s3, &profile.bucket.name, &root, organization.is_some(), &yesterday).await?;
    let days = window.days(now);
    let estimate = per_day.saturating_mul(days);
    printer.verbose(&format!(
        "scan estimate: {} of logs on {yesterday} x {days} days = {}",
        athena::size(per_day),
        athena::size(estimate)
    ));
    if estimate > limit {
        anyhow::bail!(
            "refusing to start: the window would scan about {} ({} of logs on {yesterday} under s3://{}/{root} x {days} days), more than --max-scan {}; narrow --since (the detections chosen do not change what is read)",
            athena::size(estimate),
            athena::size(per_day),
            profile.bucket.name,
            athena::size(limit)
        );
    }
    Ok(())
}
