//! Reads a trail's digests and the log files they list from S3, concurrently, and judges them.
//!
//! Listing is one ListObjectsV2 per region and day folder, many at once; digests and log files
//! are then read many at once, log files hashed on blocking threads as they arrive. The window
//! is read with the hour after it: the digest delivered then records the last one inside it.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context as _;
use aws_config::Region;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use futures::{StreamExt, TryStreamExt, stream};
use time::{Duration, OffsetDateTime};

use super::chain::{self, Body, Checked, Fetched, KeyAuthority, LogJob, file_name, uri};
use super::digest::{self, DigestFile, HASH_ALGORITHM};
use super::keys::{self, KeySource, PublicKeys};
use super::layout::{DigestName, Trail};
use super::report::{Finding, FindingKind, RegionReport, Report};
use super::window::{Window, rfc3339};
use crate::aws::AwsResultExt;

/// ListObjectsV2 calls in flight.
const LISTS_IN_FLIGHT: usize = 16;
/// GetObject calls in flight: digests are small, log files a few megabytes at most.
const READS_IN_FLIGHT: usize = 32;

/// Where the public keys come from.
pub enum KeySupply {
    /// ListPublicKeys in each region, through clients made from this one.
    CloudTrail(aws_sdk_cloudtrail::Client),
    Files {
        keys: PublicKeys,
        names: Vec<String>,
    },
}

impl KeySupply {
    fn source(&self) -> KeySource {
        match self {
            KeySupply::CloudTrail(_) => KeySource::ListPublicKeys,
            KeySupply::Files { names, .. } => KeySource::Files(names.clone()),
        }
    }
}

/// One chain: a region's digest folder, directly under the account or under an organization.
#[derive(Debug, Clone)]
struct Source {
    organization: Option<String>,
    region: String,
    /// `<...>/CloudTrail-Digest/`, the folder the region's folder is in.
    root: String,
}

impl Source {
    fn label(&self) -> String {
        match &self.organization {
            Some(org) => format!("{} ({org})", self.region),
            None => self.region.clone(),
        }
    }
}

/// Validates `trail`'s digests and log files for `window`. `regions` are checked even when
/// the bucket holds no digest folder for them. `note` receives progress detail (shown with -v).
pub async fn run(
    s3: &aws_sdk_s3::Client,
    supply: &KeySupply,
    trail: &Trail,
    window: Window,
    regions: &[String],
    now: OffsetDateTime,
    note: &(dyn Fn(String) + Sync),
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let sources = discover(s3, trail, regions).await?;
    let listed = list(s3, trail, &sources, &window).await?;
    let count: usize = listed.iter().map(Vec::len).sum();
    note(format!("listed {count} digest files in {} regions in {:.0} ms", sources.len(), ms(started)));

    let started = Instant::now();
    let keys = public_keys(supply, &sources, &listed, &window, now).await?;
    let (checked, outside) = read_and_check(s3, supply, trail, &sources, listed, &keys, &window).await?;
    let count = checked.iter().map(Vec::len).sum::<usize>() + outside.iter().map(Vec::len).sum::<usize>();
    note(format!("read and checked {count} digest files in {:.0} ms", ms(started)));

    let started = Instant::now();
    let mut reports = Vec::with_capacity(sources.len());
    let mut jobs = Vec::new();
    for (i, (source, digests)) in sources.iter().zip(checked).enumerate() {
        let folder = uri(&trail.bucket, &format!("{}{}/", source.root, source.region));
        let (report, logs) = chain::judge(&source.label(), &folder, &window, digests, &outside[i]);
        reports.push(report);
        jobs.extend(logs.into_iter().map(|job| (i, job)));
    }
    let count = jobs.len();
    check_logs(s3, jobs, &mut reports).await?;
    note(format!("checked {count} log files in {:.0} ms", ms(started)));

    Ok(Report {
        bucket: trail.bucket.clone(),
        prefix: trail.prefix.clone(),
        trail: trail.name.clone(),
        account: trail.account.clone(),
        start: rfc3339(window.start),
        end: rfc3339(window.end),
        public_keys: supply.source().describe(),
        regions: reports,
    })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// A digest object to read, for the source at `source`.
struct DigestRead {
    source: usize,
    bucket: String,
    key: String,
    name: Option<DigestName>,
}

/// Reads and checks each listed digest, then reads the predecessors the listing refers to but
/// lacks; both per source.
async fn read_and_check(
    s3: &aws_sdk_s3::Client,
    supply: &KeySupply,
    trail: &Trail,
    sources: &[Source],
    listed: Vec<Vec<(String, DigestName)>>,
    keys: &[PublicKeys],
    window: &Window,
) -> anyhow::Result<(Vec<Vec<Checked>>, Vec<Vec<Fetched>>)> {
    let authority = match supply {
        KeySupply::CloudTrail(_) => KeyAuthority::CloudTrail,
        KeySupply::Files { .. } => KeyAuthority::Files,
    };
    let reads = listed.into_iter().enumerate().flat_map(|(source, names)| {
        names.into_iter().map(move |(key, name)| DigestRead {
            source,
            bucket: trail.bucket.clone(),
            key,
            name: Some(name),
        })
    });
    let mut checked: Vec<Vec<Checked>> = vec![Vec::new(); sources.len()];
    for (i, f) in read_digests(s3, reads.collect()).await? {
        let status = chain::check(&f, &keys[i], authority, &sources[i].region);
        checked[i].push(Checked { fetched: f, status });
    }
    let before = checked.iter().enumerate().flat_map(|(source, c)| {
        chain::outside(c, window.start).into_iter().map(move |(bucket, key)| DigestRead {
            source,
            bucket,
            key,
            name: None,
        })
    });
    let mut outside: Vec<Vec<Fetched>> = vec![Vec::new(); sources.len()];
    for (i, f) in read_digests(s3, before.collect()).await? {
        outside[i].push(f);
    }
    Ok((checked, outside))
}

/// Reads and hashes every log file the valid digests list, into their sources' reports.
async fn check_logs(
    s3: &aws_sdk_s3::Client,
    jobs: Vec<(usize, LogJob)>,
    reports: &mut [RegionReport],
) -> anyhow::Result<()> {
    let results: Vec<(usize, LogJob, LogOutcome)> = stream::iter(jobs)
        .map(|(i, job)| async move { check_log(s3, &job).await.map(|outcome| (i, job, outcome)) })
        .buffer_unordered(READS_IN_FLIGHT)
        .try_collect()
        .await?;
    for (i, job, outcome) in results {
        record_log(&mut reports[i], &job, outcome);
    }
    for r in reports {
        r.findings.sort_by(|a, b| (a.kind, &a.object).cmp(&(b.kind, &b.object)));
    }
    Ok(())
}

/// The digest folders: the account's own and any under an organization, each region found in
/// them, plus `regions` (in the account's folder) where none was found.
async fn discover(s3: &aws_sdk_s3::Client, trail: &Trail, regions: &[String]) -> anyhow::Result<Vec<Source>> {
    let orgs = folders(s3, &trail.bucket, &trail.logs_root()).await?;
    let roots: Vec<(Option<String>, String)> = std::iter::once((None, trail.digest_root(None)))
        .chain(orgs.into_iter().filter(|o| Trail::is_org_folder(o)).map(|o| {
            let root = trail.digest_root(Some(&o));
            (Some(o), root)
        }))
        .collect();
    let found: Vec<Vec<Source>> = stream::iter(roots)
        .map(|(organization, root)| async move {
            let names = folders(s3, &trail.bucket, &root).await?;
            anyhow::Ok(
                names
                    .into_iter()
                    .filter(|r| crate::profile::validate::region(r).is_ok())
                    .map(|region| Source { organization: organization.clone(), region, root: root.clone() })
                    .collect(),
            )
        })
        .buffer_unordered(LISTS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut sources: Vec<Source> = found.concat();
    for region in regions {
        if !sources.iter().any(|s| &s.region == region) {
            sources.push(Source { organization: None, region: region.clone(), root: trail.digest_root(None) });
        }
    }
    sources.sort_by(|a, b| (&a.region, &a.organization).cmp(&(&b.region, &b.organization)));
    Ok(sources)
}

/// The names of the "folders" right under `prefix`.
async fn folders(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).delimiter("/").into_paginator().send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.ctx(|| format!("listing {} (s3:ListBucket)", uri(bucket, prefix)))?;
        names.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix()?.strip_prefix(prefix)?.strip_suffix('/').map(str::to_string)),
        );
    }
    Ok(names)
}

/// Each source's digest keys named for the window and the hour after it.
async fn list(
    s3: &aws_sdk_s3::Client,
    trail: &Trail,
    sources: &[Source],
    window: &Window,
) -> anyhow::Result<Vec<Vec<(String, DigestName)>>> {
    let until = window.end + Duration::HOUR;
    let days = window.days(Duration::HOUR);
    let jobs: Vec<(usize, String)> = sources
        .iter()
        .enumerate()
        .flat_map(|(i, s)| days.iter().map(move |d| (i, Trail::day_prefix(&s.root, &s.region, *d))))
        .collect();
    let pages: Vec<(usize, Vec<String>)> = stream::iter(jobs)
        .map(|(i, prefix)| async move {
            let mut pages = s3.list_objects_v2().bucket(&trail.bucket).prefix(&prefix).into_paginator().send();
            let mut keys = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.ctx(|| format!("listing {} (s3:ListBucket)", uri(&trail.bucket, &prefix)))?;
                keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
            }
            anyhow::Ok((i, keys))
        })
        .buffer_unordered(LISTS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut listed = vec![Vec::new(); sources.len()];
    for (i, keys) in pages {
        let region = &sources[i].region;
        listed[i].extend(keys.into_iter().filter_map(|key| {
            let name = trail.digest_name(&key, region)?;
            (name.end >= window.start && name.end <= until).then_some((key, name))
        }));
    }
    Ok(listed)
}

/// The keys each source's digests are checked with.
async fn public_keys(
    supply: &KeySupply,
    sources: &[Source],
    listed: &[Vec<(String, DigestName)>],
    window: &Window,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<PublicKeys>> {
    let home = match supply {
        KeySupply::Files { keys, .. } => return Ok(vec![keys.clone(); sources.len()]),
        KeySupply::CloudTrail(home) => home,
    };
    // Keys are per region; a region's digests are signed when delivered, up to an hour after
    // the window, and the API refuses times in the future.
    let (from, to) = (window.start - Duration::HOUR, (window.end + Duration::hours(2)).min(now));
    let mut wanted: Vec<&str> =
        sources.iter().zip(listed).filter(|(_, l)| !l.is_empty()).map(|(s, _)| s.region.as_str()).collect();
    wanted.sort();
    wanted.dedup();
    // Built before they are streamed: a stream's closure over borrowed items keeps the future
    // from being Send (rust-lang/rust#89976), and verify --accounts runs each account as a task.
    let lists: Vec<_> = wanted
        .into_iter()
        .map(|region| async move {
            let client = aws_sdk_cloudtrail::Client::from_conf(
                home.config().to_builder().region(Region::new(region.to_string())).build(),
            );
            anyhow::Ok((region, keys::list(&client, from, to).await?))
        })
        .collect();
    let by_region: BTreeMap<&str, PublicKeys> =
        stream::iter(lists).buffer_unordered(LISTS_IN_FLIGHT).try_collect().await?;
    Ok(sources.iter().map(|s| by_region.get(s.region.as_str()).cloned().unwrap_or_default()).collect())
}

/// Reads digest objects, keeping each one's source index.
async fn read_digests(s3: &aws_sdk_s3::Client, reads: Vec<DigestRead>) -> anyhow::Result<Vec<(usize, Fetched)>> {
    stream::iter(reads)
        .map(|DigestRead { source, bucket, key, name }| async move {
            let body = match get(s3, &bucket, &key).await? {
                Read::Missing => Body::Missing,
                Read::Archived => Body::Unreadable(ARCHIVED.into()),
                Read::Object(out) => {
                    let meta = |k: &str| out.metadata().and_then(|m| m.get(k)).cloned();
                    let (signature, algorithm) = (meta("signature"), meta("signature-algorithm"));
                    let bytes = out.body.collect().await.with_context(|| format!("reading {}", uri(&bucket, &key)))?;
                    let bytes = bytes.into_bytes();
                    let (sha256, file) = match digest::inflate(&bytes) {
                        Ok(inflated) => (digest::sha256_hex(&inflated), DigestFile::parse(&inflated).map(Box::new)),
                        Err(e) => (digest::sha256_hex(&bytes), Err(format!("not a gzip file: {e}"))),
                    };
                    Body::Read { sha256, signature, algorithm, file }
                }
            };
            anyhow::Ok((source, Fetched { bucket, key, name, body }))
        })
        .buffer_unordered(READS_IN_FLIGHT)
        .try_collect()
        .await
}

const ARCHIVED: &str = "archived (an S3 Glacier storage class): restore it to check it";

enum Read {
    Object(Box<GetObjectOutput>),
    Missing,
    Archived,
}

/// GetObject, with "no such key" and "archived" as answers rather than errors.
async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> anyhow::Result<Read> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => Ok(Read::Object(Box::new(out))),
        Err(e) => match absent(&e) {
            Some(read) => Ok(read),
            None => Err(e).ctx(|| format!("reading {} (s3:GetObject)", uri(bucket, key))),
        },
    }
}

fn absent(e: &SdkError<GetObjectError, HttpResponse>) -> Option<Read> {
    match e.as_service_error() {
        Some(se) if se.is_no_such_key() => Some(Read::Missing),
        Some(se) if se.is_invalid_object_state() => Some(Read::Archived),
        _ => None,
    }
}

/// What a log file turned out to be.
enum LogOutcome {
    Valid,
    Missing,
    Altered(String),
    Unreadable(String),
}

async fn check_log(s3: &aws_sdk_s3::Client, job: &LogJob) -> anyhow::Result<LogOutcome> {
    let e = &job.entry;
    if e.hash_algorithm != HASH_ALGORITHM {
        return Ok(LogOutcome::Unreadable(format!(
            "the digest {} records a {:?} hash; ctguard checks {HASH_ALGORITHM}",
            file_name(&job.digest),
            e.hash_algorithm
        )));
    }
    let out = match get(s3, &e.s3_bucket, &e.s3_object).await? {
        Read::Missing => return Ok(LogOutcome::Missing),
        Read::Archived => return Ok(LogOutcome::Unreadable(ARCHIVED.into())),
        Read::Object(out) => out,
    };
    let bytes = out.body.collect().await.with_context(|| format!("reading {}", uri(&e.s3_bucket, &e.s3_object)))?;
    let bytes = bytes.into_bytes();
    let hashed = tokio::task::spawn_blocking(move || digest::sha256_of_gzip(&bytes)).await?;
    Ok(match hashed {
        Err(err) => LogOutcome::Altered(format!(
            "not a gzip file any more ({err}); the digest {} recorded SHA-256 {}",
            file_name(&job.digest),
            e.hash_value
        )),
        Ok(sha) if sha.eq_ignore_ascii_case(e.hash_value.trim()) => LogOutcome::Valid,
        Ok(sha) => LogOutcome::Altered(format!(
            "the SHA-256 of its uncompressed content is {sha}; the digest {} recorded {}",
            file_name(&job.digest),
            e.hash_value
        )),
    })
}

fn record_log(report: &mut RegionReport, job: &LogJob, outcome: LogOutcome) {
    let object = uri(&job.entry.s3_bucket, &job.entry.s3_object);
    let (kind, detail) = match outcome {
        LogOutcome::Valid => {
            report.log_files.valid += 1;
            return;
        }
        LogOutcome::Missing => {
            report.log_files.missing += 1;
            (
                FindingKind::LogMissing,
                format!("the digest {} lists it, and it is not in the bucket", file_name(&job.digest)),
            )
        }
        LogOutcome::Altered(why) => {
            report.log_files.altered += 1;
            (FindingKind::LogAltered, why)
        }
        LogOutcome::Unreadable(why) => {
            report.log_files.unreadable += 1;
            (FindingKind::LogUnreadable, why)
        }
    };
    report.findings.push(Finding { kind, object, detail, related: Some(job.digest.clone()) });
}
