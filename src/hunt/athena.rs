//! Running a hunt on Athena: the scan estimate behind `--max-scan`, then submit in a workgroup,
//! poll with progress, and read the rows back.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_config::SdkConfig;
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState};
use futures::{StreamExt, TryStreamExt};

use crate::aws::{AwsResultExt, retry::ReportRetries};
use crate::events::RetryListener;
use crate::hunt::RESULT_COLUMNS;

/// Athena's price: $5 per TB scanned, each query rounded up to the next MB with a 10 MB minimum
/// (Amazon Athena pricing).
pub const DOLLARS_PER_TB: f64 = 5.0;
const MB: u64 = 1_000_000;
const MIN_BILLED: u64 = 10 * MB;

/// What a query of `bytes` scanned costs.
pub fn cost(bytes: u64) -> f64 {
    let billed = bytes.div_ceil(MB).saturating_mul(MB).max(MIN_BILLED);
    billed as f64 / 1e12 * DOLLARS_PER_TB
}

/// `1.23 GB`, in decimal units as Athena reports them.
pub fn size(bytes: u64) -> String {
    let units = [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)];
    let b = bytes as f64;
    match units.iter().find(|(_, scale)| b >= *scale) {
        Some((unit, scale)) => format!("{:.2} {unit}", b / scale),
        None => format!("{bytes} B"),
    }
}

/// The Athena client, built from the shared configuration, reporting its retries.
pub fn client(config: &SdkConfig, on_retry: &RetryListener) -> aws_sdk_athena::Client {
    let conf = aws_sdk_athena::config::Builder::from(config).interceptor(ReportRetries::new(on_retry.clone())).build();
    aws_sdk_athena::Client::from_conf(conf)
}

/// A query's state while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub id: String,
    pub state: String,
    pub scanned: u64,
}

/// One result row: a detection that fired on an event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    pub detection: String,
    pub event_id: String,
    pub event_time: String,
    pub region: String,
    pub account: String,
    pub principal: String,
    pub event_name: String,
    pub event_source: String,
    pub error_code: Option<String>,
}

/// A query that succeeded.
#[derive(Debug, Clone)]
pub struct Finished {
    pub id: String,
    pub rows: Vec<Row>,
    pub scanned: u64,
    pub seconds: f64,
}

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct Submit<'a> {
    pub sql: &'a str,
    pub workgroup: &'a str,
    pub database: Option<&'a str>,
    /// First wait between polls; it grows to [`MAX_POLL`].
    pub poll: Duration,
}

const MAX_POLL: Duration = Duration::from_secs(2);

/// Submits the query, reports progress each time the state or the bytes scanned change, and
/// returns the rows once it succeeds. A failed or cancelled query is an error carrying Athena's
/// reason.
pub async fn run(
    client: &aws_sdk_athena::Client,
    submit: &Submit<'_>,
    mut on_progress: impl FnMut(&Progress),
) -> anyhow::Result<Finished> {
    let started = Instant::now();
    let context = submit.database.map(|db| QueryExecutionContext::builder().database(db).build());
    let id = client
        .start_query_execution()
        .query_string(submit.sql)
        .work_group(submit.workgroup)
        .set_query_execution_context(context)
        .send()
        .await
        .ctx(|| format!("starting the query in Athena workgroup {} (athena:StartQueryExecution)", submit.workgroup))?
        .query_execution_id
        .context("Athena returned no query execution id")?;
    let mut wait = submit.poll;
    let mut last: Option<Progress> = None;
    let scanned = loop {
        let execution = client
            .get_query_execution()
            .query_execution_id(&id)
            .send()
            .await
            .ctx(|| format!("reading the state of Athena query {id} (athena:GetQueryExecution)"))?
            .query_execution
            .context("Athena returned no query execution")?;
        let status = execution.status();
        let state = status.and_then(|s| s.state()).cloned().unwrap_or(QueryExecutionState::Queued);
        let scanned = execution.statistics().and_then(|s| s.data_scanned_in_bytes()).unwrap_or(0).max(0) as u64;
        let progress = Progress { id: id.clone(), state: state.as_str().to_string(), scanned };
        if last.as_ref() != Some(&progress) {
            on_progress(&progress);
            last = Some(progress);
        }
        match state {
            QueryExecutionState::Succeeded => break scanned,
            QueryExecutionState::Failed | QueryExecutionState::Cancelled => {
                let reason = status
                    .and_then(|s| s.athena_error().and_then(|e| e.error_message()).or(s.state_change_reason()))
                    .unwrap_or("no reason given");
                anyhow::bail!("Athena query {id} {}: {reason}", state.as_str().to_lowercase());
            }
            _ => {
                tokio::time::sleep(wait).await;
                wait = (wait * 3 / 2).min(MAX_POLL);
            }
        }
    };
    let rows = results(client, &id).await?;
    Ok(Finished { id, rows, scanned, seconds: started.elapsed().as_secs_f64() })
}

/// Every result row, by column name. The first row of a SELECT's results is its header.
async fn results(client: &aws_sdk_athena::Client, id: &str) -> anyhow::Result<Vec<Row>> {
    let pages: Vec<_> = client
        .get_query_results()
        .query_execution_id(id)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .ctx(|| format!("reading the results of Athena query {id} (athena:GetQueryResults)"))?;
    let mut columns: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for page in pages {
        let Some(set) = page.result_set else { continue };
        if columns.is_none() {
            let names: Vec<String> = set
                .result_set_metadata()
                .map(|m| m.column_info().iter().map(|c| c.name().to_string()).collect())
                .unwrap_or_default();
            columns =
                Some(if names.is_empty() { RESULT_COLUMNS.iter().map(|c| c.to_string()).collect() } else { names });
        }
        let names = columns.as_deref().unwrap_or_default();
        for row in set.rows() {
            let values: Vec<Option<&str>> = row.data().iter().map(|d| d.var_char_value()).collect();
            let is_header = values.iter().zip(names).all(|(v, n)| *v == Some(n.as_str()));
            if is_header {
                continue;
            }
            let get = |name: &str| names.iter().position(|n| n == name).and_then(|i| values.get(i).copied().flatten());
            let text = |name: &str| get(name).unwrap_or("").to_string();
            rows.push(Row {
                detection: text("detection"),
                event_id: text("eventid"),
                event_time: text("eventtime"),
                region: text("awsregion"),
                account: text("recipientaccountid"),
                principal: text("principal"),
                event_name: text("eventname"),
                event_source: text("eventsource"),
                error_code: get("errorcode").filter(|e| !e.is_empty()).map(str::to_string),
            });
        }
    }
    Ok(rows)
}

/// Bytes of log files under `root` (`prefix/AWSLogs/<account or org-id>/`) for one day
/// (`yyyy/MM/dd`), in every region, and for an organization in every account: the sample the
/// `--max-scan` estimate multiplies by the days in the window.
pub async fn day_bytes(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    root: &str,
    organization: bool,
    day: &str,
) -> anyhow::Result<u64> {
    let owners = if organization { folders(s3, bucket, root).await? } else { vec![root.to_string()] };
    let mut regions = Vec::new();
    for owner in owners {
        regions.extend(folders(s3, bucket, &format!("{owner}CloudTrail/")).await?);
    }
    let sizes = futures::stream::iter(regions)
        .map(|region| async move { total(s3, bucket, &format!("{region}{day}/")).await })
        .buffer_unordered(16)
        .try_collect::<Vec<u64>>()
        .await?;
    Ok(sizes.iter().sum())
}

/// The "folders" directly under `prefix`.
async fn folders(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
    let pages: Vec<_> = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .delimiter("/")
        .into_paginator()
        .send()
        .try_collect()
        .await
        .ctx(|| format!("listing s3://{bucket}/{prefix} (s3:ListBucket)"))?;
    Ok(pages.iter().flat_map(|p| p.common_prefixes().iter().filter_map(|c| c.prefix().map(str::to_string))).collect())
}

async fn total(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> anyhow::Result<u64> {
    let pages: Vec<_> = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .ctx(|| format!("listing s3://{bucket}/{prefix} (s3:ListBucket)"))?;
    Ok(pages.iter().flat_map(|p| p.contents().iter().map(|o| o.size().unwrap_or(0).max(0) as u64)).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_rounds_up_to_megabytes_with_a_ten_megabyte_minimum() {
        assert_eq!(cost(0), 10.0 * 1e6 / 1e12 * 5.0);
        assert_eq!(cost(1_000_000_000_000), 5.0);
        assert_eq!(cost(20_000_001), 21.0 * 1e6 / 1e12 * 5.0);
    }

    #[test]
    fn sizes_read_in_decimal_units() {
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1_234_000_000), "1.23 GB");
        assert_eq!(size(2_500_000_000_000), "2.50 TB");
    }
}
