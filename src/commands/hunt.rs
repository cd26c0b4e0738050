//! `ctguard hunt`: the profile's detections compiled to Athena queries, printed or run.

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
        printer.data(|w, _| write_queries(w, &query.batches))?;
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
        let queries = query.batches.len();
        if let Some(limit) = settings.max_scan {
            check_scan(&config, &on_retry, &loaded, settings, &window, now, limit, queries, printer).await?;
        }
        let client = athena::client(&config, &on_retry);
        // One after the other: a query that fails (a missing table, a denied workgroup) stops
        // the hunt before the others are paid for, and the workgroup's concurrency quota is
        // left to other users.
        let mut finished = Vec::new();
        for (i, batch) in query.batches.iter().enumerate() {
            let submit = Submit {
                sql: &batch.sql,
                workgroup: &workgroup,
                database: database.as_deref(),
                poll: Duration::from_millis(250),
            };
            let of = if queries > 1 { format!(" ({} of {queries})", i + 1) } else { String::new() };
            let done = athena::run(&client, &submit, |p| {
                printer.status(&format!(
                    "athena query {}{of}: {}, {} scanned",
                    p.id,
                    p.state.to_lowercase(),
                    athena::size(p.scanned)
                ))
            })
            .await?;
            finished.push(done);
        }
        anyhow::Ok(finished)
    })?;

    let tested: Vec<usize> =
        query.detections.iter().filter_map(|(id, _)| catalog.detections.iter().position(|d| d.id == *id)).collect();
    let report = Report {
        profile: loaded.doc.profile.name.clone(),
        query_ids: finished.iter().map(|f| f.id.clone()).collect(),
        workgroup,
        table,
        since: Some(window.since.clone()),
        hits: hits(&catalog, &finished),
        tested,
        scanned: finished.iter().map(|f| f.scanned).sum(),
        // Each query is billed on its own, minimum included.
        cost: finished.iter().map(|f| athena::cost(f.scanned)).sum(),
        seconds: finished.iter().map(|f| f.seconds).sum(),
    };
    printer.data(|w, paint| match settings.format {
        Format::Human => report::human(w, paint, &catalog, &report),
        Format::Json => report::json(w, &catalog, &report),
    })?;
    Ok(Status::Success)
}

/// The queries, as `--emit-sql` prints them: one as it is, several each under a comment naming
/// its detections and ended by `;`.
fn write_queries(w: &mut dyn std::io::Write, batches: &[hunt::Batch]) -> std::io::Result<()> {
    if let [one] = batches {
        return writeln!(w, "{}", one.sql);
    }
    for (i, batch) in batches.iter().enumerate() {
        if i > 0 {
            writeln!(w)?;
        }
        let ids: Vec<&str> = batch.detections.iter().map(|(id, _)| id.as_str()).collect();
        writeln!(w, "{}{} of {}: {}", hunt::QUERY_HEADER, i + 1, batches.len(), ids.join(", "))?;
        writeln!(w, "{};", batch.sql)?;
    }
    Ok(())
}

/// Rows of every query, one per (detection, event), merged in the order one query would
/// return them, and grouped into one hit per event.
fn hits(catalog: &Catalog, finished: &[athena::Finished]) -> Vec<Hit> {
    let mut rows: Vec<(&str, &athena::Row)> =
        finished.iter().flat_map(|f| f.rows.iter().map(move |row| (f.id.as_str(), row))).collect();
    rows.sort_by(|(_, a), (_, b)| {
        (&a.event_time, &a.event_id, &a.detection).cmp(&(&b.event_time, &b.event_id, &b.detection))
    });
    let mut hits: Vec<Hit> = Vec::new();
    for (query_id, row) in rows {
        let Some(index) = catalog.detections.iter().position(|d| d.id == row.detection) else { continue };
        let same_event = hits.last().is_some_and(|h| h.event_id == row.event_id && h.event_time == row.event_time);
        if !same_event {
            hits.push(Hit {
                origin: format!("athena:{query_id}"),
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
    queries: usize,
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
    // Each query reads the whole window.
    let estimate = per_day.saturating_mul(days).saturating_mul(queries as u64);
    let times = if queries > 1 { format!(" x {queries} queries") } else { String::new() };
    printer.verbose(&format!(
        "scan estimate: {} of logs on {yesterday} x {days} days{times} = {}",
        athena::size(per_day),
        athena::size(estimate)
    ));
    if estimate > limit {
        anyhow::bail!(
            "refusing to start: the window would scan about {} ({} of logs on {yesterday} under s3://{}/{root} x {days} days{times}), more than --max-scan {}; narrow --since{}",
            athena::size(estimate),
            athena::size(per_day),
            profile.bucket.name,
            athena::size(limit),
            if queries > 1 {
                " or hunt with fewer detections (--detection): they need several queries, each reading the window"
            } else {
                " (the detections chosen do not change what is read)"
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::catalog::Detection;

    fn row(detection: &str, event: &str, time: &str) -> athena::Row {
        athena::Row {
            detection: detection.into(),
            event_id: event.into(),
            event_time: time.into(),
            ..athena::Row::default()
        }
    }

    #[test]
    fn rows_of_several_queries_merge_into_one_hit_per_event_in_event_order() {
        let rule = |id: &str| Detection::rule(id, &serde_json::json!({"source": ["aws.s3"]}), "high", None).unwrap();
        let catalog = Catalog { detections: vec![rule("a"), rule("b"), rule("c")] };
        let finished =
            |id: &str, rows: Vec<athena::Row>| athena::Finished { id: id.into(), rows, scanned: 0, seconds: 0.0 };
        let first =
            finished("q1", vec![row("a", "e1", "2025-01-01T00:00:01Z"), row("a", "e3", "2025-01-01T00:00:03Z")]);
        let second = finished(
            "q2",
            vec![
                row("c", "e1", "2025-01-01T00:00:01Z"),
                row("b", "e2", "2025-01-01T00:00:02Z"),
                row("c", "e3", "2025-01-01T00:00:03Z"),
            ],
        );
        let hits = hits(&catalog, &[first, second]);
        let got: Vec<(&str, Vec<usize>, &str)> =
            hits.iter().map(|h| (h.event_id.as_str(), h.fired.clone(), h.origin.as_str())).collect();
        assert_eq!(
            got,
            vec![("e1", vec![0, 2], "athena:q1"), ("e2", vec![1], "athena:q2"), ("e3", vec![0, 2], "athena:q1")]
        );
        assert_eq!(hits.iter().map(|h| h.index).collect::<Vec<_>>(), vec![1, 2, 3]);
    }
}
