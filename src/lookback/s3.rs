//! `ctguard test s3://BUCKET/PREFIX`: the log files a trail delivered to S3 in a window, listed
//! and downloaded concurrently and handed to the replay as they arrive.
//!
//! CloudTrail writes `PREFIX/AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/FILE` and, for an
//! organization trail, `PREFIX/AWSLogs/ORG-ID/ACCOUNT/CloudTrail/...`; the day folder and the
//! file name's `YYYYMMDDTHHmmZ` are the UTC time of delivery. Only the day folders the window
//! touches are listed, and only files delivered in the window are read. Records are delivered a
//! few minutes after the call, so a file delivered just after the window's end can hold calls
//! made just before it: widen the window to catch those.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use aws_config::{Region, SdkConfig};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use futures::{StreamExt, TryStreamExt, stream};
use tokio::sync::mpsc;

use crate::aws::retry::ReportRetries;
use crate::aws::{self, AwsResultExt, ConnectOptions};
use crate::detect::replay::Source;
use crate::events::RetryListener;
use crate::lookback::window::{Window, format_time};
use crate::printer::Printer;
use crate::profile::{self, vars::Vars};

/// Listings in flight at once.
const LISTINGS: usize = 16;
/// Downloads in flight at once; finished ones wait, in order, for the replay to take them.
const DOWNLOADS: usize = 16;

/// `s3://BUCKET[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the whole bucket.
    pub prefix: String,
}

impl S3Url {
    pub fn parse(text: &str) -> Result<S3Url, String> {
        let expected =
            "expected s3://BUCKET or s3://BUCKET/PREFIX, like s3://ctguard-audit-123456789012-us-east-1/cloudtrail";
        let rest = text.strip_prefix("s3://").ok_or_else(|| format!("{text:?}: {expected}"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{text:?}: no bucket name: {expected}"));
        }
        profile::validate::bucket_name(bucket)
            .map_err(|e| format!("{text:?}: {bucket:?} is not an S3 bucket name: expected {e}"))?;
        if prefix.contains("//") {
            return Err(format!("{text:?}: the prefix has an empty path segment (`//`)"));
        }
        Ok(S3Url { bucket: bucket.to_string(), prefix: prefix.trim_matches('/').to_string() })
    }

    pub fn is_s3(text: &str) -> bool {
        text.starts_with("s3:")
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// `ctguard test` reading from S3, resolved.
#[derive(Debug, Clone)]
pub struct BucketSettings {
    /// Empty: the profile's own audit bucket, under its trail prefix.
    pub urls: Vec<S3Url>,
    pub window: Window,
    pub connect: ConnectOptions,
}

/// Counts for the status line.
#[derive(Debug, Default)]
pub struct Stats {
    pub objects: AtomicU64,
    pub bytes: AtomicU64,
}

/// The log files in order, each downloaded ahead of the replay. Dropping it stops the
/// downloads.
pub struct Download {
    // Field order is drop order: the receiver closes before the runtime shuts down.
    rx: mpsc::Receiver<anyhow::Result<Source>>,
    _runtime: tokio::runtime::Runtime,
    pub stats: Arc<Stats>,
}

impl Iterator for Download {
    type Item = anyhow::Result<Source>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.blocking_recv()
    }
}

/// A log file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Object {
    bucket: String,
    key: String,
}

/// Lists the window's log files (every listing call made before this returns, so a missing
/// bucket or a denied listing fails before any output), then starts downloading them.
pub fn open(
    settings: &BucketSettings,
    loaded: &profile::Loaded,
    overrides: &Vars,
    printer: &Printer,
) -> anyhow::Result<Download> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let on_retry = printer.retries();
    let (clients, objects) = runtime.block_on(async {
        let mut connect = settings.connect.clone();
        connect.region = connect.region.or(loaded.home_region().map(str::to_string));
        let mut config = aws::load_config(&connect).await;
        if config.region().is_none() {
            // S3 answers with the bucket's region whatever region is asked; any will do to start.
            config = config.into_builder().region(Region::new("us-east-1")).build();
        }
        let urls = if settings.urls.is_empty() {
            vec![own_bucket(&config, loaded, overrides, &on_retry).await?]
        } else {
            settings.urls.clone()
        };
        let mut clients = std::collections::HashMap::new();
        let mut objects = Vec::new();
        for url in &urls {
            let client = bucket_client(&config, &url.bucket, &on_retry).await?;
            let found = list(&client, url, &settings.window).await?;
            printer.status(&format!(
                "{url}: {} log file{} delivered from {} to {}",
                found.len(),
                if found.len() == 1 { "" } else { "s" },
                format_time(settings.window.start),
                format_time(settings.window.end)
            ));
            objects.extend(found.into_iter().map(|key| Object { bucket: url.bucket.clone(), key }));
            clients.insert(url.bucket.clone(), client);
        }
        anyhow::Ok((clients, objects))
    })?;
    let stats = Arc::new(Stats::default());
    let (tx, rx) = mpsc::channel(DOWNLOADS);
    let counts = stats.clone();
    runtime.spawn(async move {
        let mut downloads = stream::iter(objects)
            .map(|o| {
                let client = clients[&o.bucket].clone();
                let counts = counts.clone();
                async move { download(&client, &o, &counts).await }
            })
            .buffered(DOWNLOADS);
        while let Some(result) = downloads.next().await {
            if tx.send(result).await.is_err() {
                return;
            }
        }
    });
    Ok(Download { rx, _runtime: runtime, stats })
}

/// The profile's audit bucket, under its trail prefix: its name holds the account id, so this
/// asks STS who the caller is.
async fn own_bucket(
    config: &SdkConfig,
    loaded: &profile::Loaded,
    overrides: &Vars,
    on_retry: &RetryListener,
) -> anyhow::Result<S3Url> {
    let caller = aws::whoami(config, on_retry).await?;
    let runtime = profile::Runtime {
        enabled_regions: vec![caller.region.clone()],
        account_id: caller.account_id,
        partition: caller.partition,
        region: caller.region,
        organization: Some(profile::Organization::stand_in()),
    };
    let profile = loaded.resolve(&runtime, overrides)?;
    Ok(S3Url { bucket: profile.bucket.name, prefix: profile.bucket.trail_prefix })
}

/// A client in the bucket's own region (S3 refuses requests sent to another region's
/// endpoint, and HeadBucket names the right one either way).
async fn bucket_client(
    config: &SdkConfig,
    bucket: &str,
    on_retry: &RetryListener,
) -> anyhow::Result<aws_sdk_s3::Client> {
    let build = |region: Option<String>| {
        let mut conf = aws_sdk_s3::config::Builder::from(config)
            // Emulators and custom endpoints serve S3 path-style.
            .force_path_style(config.endpoint_url().is_some())
            .interceptor(ReportRetries::new(on_retry.clone()));
        if let Some(r) = region {
            conf = conf.region(Region::new(r));
        }
        aws_sdk_s3::Client::from_conf(conf.build())
    };
    let client = build(None);
    let region = match client.head_bucket().bucket(bucket).send().await {
        Ok(out) => out.bucket_region().map(str::to_string),
        Err(e) => match e.raw_response().and_then(|r| r.headers().get("x-amz-bucket-region")) {
            Some(region) => Some(region.to_string()),
            None => return Err(e).ctx(|| format!("reading bucket s3://{bucket} (HeadBucket)")),
        },
    };
    let here = config.region().map(|r| r.to_string());
    Ok(match region {
        Some(r) if Some(&r) != here.as_ref() => build(Some(r)),
        _ => client,
    })
}

/// One ListObjectsV2 listing, every page: the "folders" under `prefix` with a delimiter,
/// otherwise the keys.
async fn ls(client: &aws_sdk_s3::Client, bucket: &str, prefix: String, folders: bool) -> anyhow::Result<Vec<String>> {
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&prefix)
        .set_delimiter(folders.then(|| "/".to_string()))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.ctx(|| format!("listing s3://{bucket}/{prefix} (ListObjectsV2)"))?;
        if folders {
            out.extend(page.common_prefixes().iter().filter_map(|p| p.prefix().map(str::to_string)));
        } else {
            out.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        }
    }
    Ok(out)
}

/// The last path segment of a folder prefix (`a/b/` -> `b`).
fn leaf(folder: &str) -> &str {
    folder.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// An organization id: `o-` and 10 to 32 lowercase letters or digits.
fn is_org(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|r| {
        (10..=32).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// What the URL's prefix already fixes below `AWSLogs/`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pinned {
    /// `…/AWSLogs/` itself.
    base: String,
    org: Option<String>,
    account: Option<String>,
    region: Option<String>,
}

fn pinned(url: &S3Url) -> Result<Pinned, String> {
    let parts: Vec<&str> = url.prefix.split('/').filter(|p| !p.is_empty()).collect();
    let Some(at) = parts.iter().position(|p| *p == "AWSLogs") else {
        let base = if parts.is_empty() { "AWSLogs/".to_string() } else { format!("{}/AWSLogs/", parts.join("/")) };
        return Ok(Pinned { base, org: None, account: None, region: None });
    };
    let base = format!("{}/", parts[..=at].join("/"));
    let mut rest = &parts[at + 1..];
    let mut take = |ok: fn(&str) -> bool| match rest.first() {
        Some(p) if ok(p) => {
            rest = &rest[1..];
            Some(p.to_string())
        }
        _ => None,
    };
    let org = take(is_org);
    let account = take(is_account);
    let trail = take(|p| p == "CloudTrail").is_some();
    let region = if trail { take(|p| profile::validate::region(p).is_ok()) } else { None };
    if !rest.is_empty() || (org.is_some() && account.is_none() && trail) || (account.is_none() && trail) {
        return Err(format!(
            "{url}: expected a prefix that ends at or above the region (…/AWSLogs/[ORG-ID/]ACCOUNT/CloudTrail/REGION); \
             the window chooses the days"
        ));
    }
    Ok(Pinned { base, org, account, region })
}

/// Every log file under `url` delivered in `window`, in path order (as a local replay of the
/// same tree walks it).
async fn list(client: &aws_sdk_s3::Client, url: &S3Url, window: &Window) -> anyhow::Result<Vec<String>> {
    let pin = pinned(url).map_err(anyhow::Error::msg)?;
    let bucket = url.bucket.as_str();
    // Accounts: `AWSLogs/ACCOUNT/` and, for organization trails, `AWSLogs/ORG-ID/ACCOUNT/`.
    let accounts: Vec<String> = match (&pin.org, &pin.account) {
        (org, Some(account)) => {
            vec![format!("{}{}{account}/", pin.base, org.as_ref().map(|o| format!("{o}/")).unwrap_or_default())]
        }
        (org, None) => {
            let tops = match org {
                Some(o) => vec![format!("{}{o}/", pin.base)],
                None => ls(client, bucket, pin.base.clone(), true).await?,
            };
            let mut found = Vec::new();
            let mut orgs = Vec::new();
            for top in tops {
                match leaf(&top) {
                    a if is_account(a) => found.push(top),
                    o if is_org(o) => orgs.push(top),
                    _ => {}
                }
            }
            let nested: Vec<Vec<String>> = stream::iter(orgs)
                .map(|o| ls(client, bucket, o, true))
                .buffer_unordered(LISTINGS)
                .try_collect()
                .await?;
            found.extend(nested.into_iter().flatten().filter(|p| is_account(leaf(p))));
            found
        }
    };
    let regions: Vec<String> = match &pin.region {
        Some(region) => accounts.iter().map(|a| format!("{a}CloudTrail/{region}/")).collect(),
        None => {
            let listed: Vec<Vec<String>> = stream::iter(&accounts)
                .map(|a| ls(client, bucket, format!("{a}CloudTrail/"), true))
                .buffer_unordered(LISTINGS)
                .try_collect()
                .await?;
            listed.into_iter().flatten().collect()
        }
    };
    let days: Vec<String> =
        regions.iter().flat_map(|r| window.days().into_iter().map(move |d| format!("{r}{d}/"))).collect();
    let listed: Vec<Vec<String>> =
        stream::iter(days).map(|d| ls(client, bucket, d, false)).buffer_unordered(LISTINGS).try_collect().await?;
    let mut keys: Vec<String> =
        listed.into_iter().flatten().filter(|k| is_log_file(k) && delivered_in(k, window)).collect();
    keys.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    Ok(keys)
}

fn is_log_file(key: &str) -> bool {
    key.ends_with(".json.gz") || key.ends_with(".json")
}

/// Whether the file name's delivery time (`ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_…`, to the
/// minute) falls in the window. A name without one is kept: its day folder is in the window.
fn delivered_in(key: &str, window: &Window) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    let stamp = name.split('_').find(|p| p.len() == 14 && p.as_bytes()[8] == b'T' && p.ends_with('Z'));
    let Some(s) = stamp else { return true };
    let text = format!("{}-{}-{}T{}:{}:00Z", &s[0..4], &s[4..6], &s[6..8], &s[9..11], &s[11..13]);
    match DateTime::from_str(&text, Format::DateTime) {
        Ok(t) => t.secs() + 59 >= window.start && t.secs() <= window.end,
        Err(_) => true,
    }
}

async fn download(client: &aws_sdk_s3::Client, o: &Object, stats: &Stats) -> anyhow::Result<Source> {
    let origin = format!("s3://{}/{}", o.bucket, o.key);
    let out = client
        .get_object()
        .bucket(&o.bucket)
        .key(&o.key)
        .send()
        .await
        .ctx(|| format!("downloading {origin} (GetObject)"))?;
    let bytes = out.body.collect().await.with_context(|| format!("downloading {origin}"))?.into_bytes();
    stats.objects.fetch_add(1, Ordering::Relaxed);
    stats.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    Ok(Source { origin, reader: Box::new(std::io::Cursor::new(bytes)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            S3Url::parse("s3://my-bucket").unwrap(),
            S3Url { bucket: "my-bucket".into(), prefix: String::new() }
        );
        assert_eq!(
            S3Url::parse("s3://my-bucket/cloudtrail/").unwrap(),
            S3Url { bucket: "my-bucket".into(), prefix: "cloudtrail".into() }
        );
        for bad in ["s3://", "s3:/my-bucket", "s3:my-bucket", "s3://My_Bucket/x", "s3:///x", "s3://ab", "s3://b-1/a//b"]
        {
            assert!(S3Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_pin_what_they_name() {
        let pin = |p: &str| pinned(&S3Url { bucket: "b".into(), prefix: p.into() });
        assert_eq!(pin("").unwrap().base, "AWSLogs/");
        assert_eq!(pin("cloudtrail").unwrap().base, "cloudtrail/AWSLogs/");
        let p = pin("ct/AWSLogs/o-abcdefghij/123456789012/CloudTrail/eu-west-1").unwrap();
        assert_eq!(
            p,
            Pinned {
                base: "ct/AWSLogs/".into(),
                org: Some("o-abcdefghij".into()),
                account: Some("123456789012".into()),
                region: Some("eu-west-1".into())
            }
        );
        assert_eq!(pin("AWSLogs/123456789012").unwrap().account.as_deref(), Some("123456789012"));
        assert!(pin("AWSLogs/123456789012/CloudTrail/us-east-1/2026/11").is_err());
        assert!(pin("AWSLogs/CloudTrail").is_err());
    }

    #[test]
    fn delivery_times_choose_files() {
        let window = Window { start: 1_795_000_000, end: 1_795_000_000 + 3600 };
        let at = |secs: i64| {
            let t = format_time(secs).replace(['-', ':'], "");
            format!(
                "AWSLogs/1/CloudTrail/us-east-1/x/123456789012_CloudTrail_us-east-1_{}{}Z_abc.json.gz",
                &t[..9],
                &t[9..13]
            )
        };
        assert!(delivered_in(&at(window.start + 60), &window));
        assert!(delivered_in(&at(window.start), &window));
        assert!(!delivered_in(&at(window.start - 120), &window));
        assert!(!delivered_in(&at(window.end + 120), &window));
        assert!(delivered_in("AWSLogs/x/odd-name.json.gz", &window));
    }

    #[test]
    fn account_and_organization_folders() {
        assert!(is_org("o-abcdefghij") && !is_org("o-short") && !is_org("o-ABCDEFGHIJ"));
        assert!(is_account("123456789012") && !is_account("12345678901a") && !is_account("1234"));
    }
}
