//! AWS clients, built once from one `SdkConfig` and shared. Retries, timeouts and the HTTP
//! client are set here and nowhere else.

pub mod accounts;
pub mod credentials;
pub mod error;
pub mod organization;
pub mod propagation;
pub mod retry;
pub mod timing;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
pub use error::{AwsResultExt, ErrorKind};
pub use propagation::while_propagating;
use retry::ReportRetries;

use crate::events::RetryListener;

/// How to reach AWS: resolved settings, no clap types.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Region from the command line or the profile; otherwise the SDK's chain decides.
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub aws_profile: Option<String>,
    /// AWS_MAX_ATTEMPTS and AWS_RETRY_MODE, over ctguard's own default.
    pub max_attempts: Option<u32>,
    pub retry_mode: Option<aws_config::retry::RetryMode>,
}

/// Standard retry with 5 attempts: with 30% injected faults 3 attempts still lose calls, 5 do
/// not. Adaptive mode is avoided: its client-side rate limiter stalls a throttled scan.
pub const MAX_ATTEMPTS: u32 = 5;
/// The SDK sets no read or operation timeout by default: a stalled response waits forever.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(90);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn load_config(opts: &ConnectOptions) -> SdkConfig {
    let http =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http.clone())
        .retry_config(
            RetryConfig::standard()
                .with_retry_mode(opts.retry_mode.unwrap_or(aws_config::retry::RetryMode::Standard))
                .with_max_attempts(opts.max_attempts.unwrap_or(MAX_ATTEMPTS)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
    if let Some(region) = &opts.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &opts.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(profile) = &opts.aws_profile {
        let only_this_profile = credentials::named_profile(profile, http.clone(), opts.region.as_deref());
        loader = loader.profile_name(profile).credentials_provider(only_this_profile);
    }
    loader.load().await
}

/// Who is calling, and from which home region: what STS says, before any profile is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    pub partition: String,
    /// The home region every non-regional client calls.
    pub region: String,
}

/// One client per service for the home region, EventBridge in every profile region, plus
/// who and where we are.
#[derive(Clone, Debug)]
pub struct Aws {
    pub caller: Caller,
    pub s3: aws_sdk_s3::Client,
    pub iam: aws_sdk_iam::Client,
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub kms: aws_sdk_kms::Client,
    pub sns: aws_sdk_sns::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// The workgroup and table `ctguard hunt` queries, in the home region.
    pub athena: aws_sdk_athena::Client,
    /// The temporary queue of `ctguard drill`, in the home region.
    pub sqs: aws_sdk_sqs::Client,
    /// The temporary role of `ctguard drill --end-to-end`.
    pub sts: aws_sdk_sts::Client,
    regional: BTreeMap<String, Regional>,
}

/// Clients for the services ctguard deploys in every region of the profile.
#[derive(Clone, Debug)]
struct Regional {
    events: aws_sdk_eventbridge::Client,
    /// For the delivery metrics of that region's rules (verify).
    cloudwatch: aws_sdk_cloudwatch::Client,
    config: aws_sdk_config::Client,
    tagging: aws_sdk_resourcegroupstagging::Client,
}

impl Aws {
    /// Every client reports its retries to `on_retry`.
    pub fn new(config: &SdkConfig, caller: Caller, regions: &[String], on_retry: &RetryListener) -> Self {
        Self::with_interceptor(config, caller, regions, SharedInterceptor::new(ReportRetries::new(on_retry.clone())))
    }

    /// Clients that all carry `interceptor`: the retry reporter, or in tests a mock that
    /// answers every call.
    pub fn with_interceptor(
        config: &SdkConfig,
        caller: Caller,
        regions: &[String],
        interceptor: SharedInterceptor,
    ) -> Self {
        let retries = interceptor;
        let partition = retry_partition();
        // Emulators and custom endpoints serve S3 path-style; with an IP address the SDK
        // switches by itself, with a host name such as localhost it does not.
        let s3_conf = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .retry_partition(partition.clone())
            .interceptor(retries.clone())
            .interceptor(timing::TimeCalls)
            .build();
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(config)
                        .retry_partition(partition.clone())
                        .interceptor(retries.clone())
                        .interceptor(timing::TimeCalls)
                        .build(),
                )
            };
            ($sdk:ident, $region:expr) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(config)
                        .region($region)
                        .retry_partition(partition.clone())
                        .interceptor(retries.clone())
                        .interceptor(timing::TimeCalls)
                        .build(),
                )
            };
        }
        Aws {
            caller,
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            iam: client!(aws_sdk_iam),
            cloudtrail: client!(aws_sdk_cloudtrail),
            logs: client!(aws_sdk_cloudwatchlogs),
            kms: client!(aws_sdk_kms),
            sns: client!(aws_sdk_sns),
            cloudwatch: client!(aws_sdk_cloudwatch),
            athena: client!(aws_sdk_athena),
            sqs: client!(aws_sdk_sqs),
            sts: client!(aws_sdk_sts),
            regional: regions
                .iter()
                .map(|r| {
                    let region = Region::new(r.clone());
                    let clients = Regional {
                        events: client!(aws_sdk_eventbridge, region.clone()),
                        cloudwatch: client!(aws_sdk_cloudwatch, region.clone()),
                        config: client!(aws_sdk_config, region.clone()),
                        tagging: client!(aws_sdk_resourcegroupstagging, region),
                    };
                    (r.clone(), clients)
                })
                .collect(),
        }
    }

    /// The EventBridge client for `region`, which must be one of the profile's regions.
    pub fn events(&self, region: &str) -> &aws_sdk_eventbridge::Client {
        &self.regional[region].events
    }

    /// The CloudWatch client for `region`: one of the profile's regions, or the home region.
    pub fn cloudwatch_in(&self, region: &str) -> &aws_sdk_cloudwatch::Client {
        self.regional.get(region).map_or(&self.cloudwatch, |r| &r.cloudwatch)
    }

    /// The AWS Config client for `region`, which must be one of the profile's regions.
    pub fn config(&self, region: &str) -> &aws_sdk_config::Client {
        &self.regional[region].config
    }

    /// The Resource Groups Tagging API client for `region`, one of the profile's regions.
    pub fn tagging(&self, region: &str) -> &aws_sdk_resourcegroupstagging::Client {
        &self.regional[region].tagging
    }

    pub fn region(&self) -> &str {
        &self.caller.region
    }
}

/// One retry partition for all of ctguard's clients, without the standard mode's retry quota.
/// The quota (500 tokens, 5 per retried error and 10 per retried timeout, returned on success)
/// guards a long-lived client against retry storms; ctguard already bounds each call to
/// MAX_ATTEMPTS and its calls in flight to fixed concurrency, and with reads running in every
/// region at once under throttling the quota ran dry, after which calls failed on their first
/// transient error.
fn retry_partition() -> aws_smithy_runtime::client::retries::RetryPartition {
    use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
    RetryPartition::custom("ctguard").token_bucket(TokenBucket::unlimited()).build()
}

/// The caller's account and partition, from STS. The first AWS call of every command.
pub async fn whoami(config: &SdkConfig, on_retry: &RetryListener) -> anyhow::Result<Caller> {
    let region = config
        .region()
        .map(|r| r.to_string())
        .context("no AWS region: pass --region, set home_region in the profile, or set AWS_REGION")?;
    let conf = aws_sdk_sts::config::Builder::from(config)
        .interceptor(ReportRetries::new(on_retry.clone()))
        .interceptor(timing::TimeCalls)
        .build();
    let sts = aws_sdk_sts::Client::from_conf(conf);
    let id =
        sts.get_caller_identity().send().await.ctx(|| "asking STS who the caller is (GetCallerIdentity)".into())?;
    let account_id = id.account().context("STS returned no account id")?.to_string();
    let partition = partition_of_caller(id.arn(), &region);
    Ok(Caller { account_id, partition, region })
}

/// The partition of the caller's ARN (`arn:PARTITION:sts::ACCOUNT:assumed-role/...`); without
/// one, the partition of the region the call went to, which is the same partition (STS answers
/// only for its own).
fn partition_of_caller(arn: Option<&str>, region: &str) -> String {
    arn.and_then(|a| a.split(':').nth(1))
        .filter(|p| p.starts_with("aws"))
        .unwrap_or_else(|| crate::profile::validate::partition_of(region))
        .to_string()
}

/// Every region enabled for the account, from the Account API (a small client, where EC2's
/// DescribeRegions would pull in by far the largest SDK crate).
pub async fn enabled_regions(config: &SdkConfig, on_retry: &RetryListener) -> anyhow::Result<Vec<String>> {
    use aws_sdk_account::types::RegionOptStatus;
    let conf = aws_sdk_account::config::Builder::from(config)
        .interceptor(ReportRetries::new(on_retry.clone()))
        .interceptor(timing::TimeCalls)
        .build();
    let account = aws_sdk_account::Client::from_conf(conf);
    let mut pages = account
        .list_regions()
        .region_opt_status_contains(RegionOptStatus::Enabled)
        .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
        .into_paginator()
        .send();
    let mut regions = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.ctx(|| "listing the account's enabled regions (account:ListRegions)".into())?;
        regions.extend(page.regions().iter().filter_map(|r| r.region_name().map(str::to_string)));
    }
    regions.sort();
    Ok(regions)
}

/// Every page of a list call the SDK offers no paginator for: `send` makes the request with
/// the given NextToken, `next` reads the page's, until a page has none.
pub async fn all_pages<P, F, Fut>(send: F, next: fn(&P) -> Option<&str>) -> anyhow::Result<Vec<P>>
where
    F: Fn(Option<String>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<P>>,
{
    let mut pages: Vec<P> = Vec::new();
    loop {
        let token = pages.last().and_then(next).map(str::to_string);
        if !pages.is_empty() && token.is_none() {
            return Ok(pages);
        }
        pages.push(send(token).await?);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_partition_comes_from_its_arn_else_its_region() {
        let arn = Some("arn:aws-us-gov:sts::111122223333:assumed-role/R/s");
        assert_eq!(partition_of_caller(arn, "us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of_caller(Some("arn:aws-cn:iam::111122223333:user/u"), "cn-north-1"), "aws-cn");
        assert_eq!(partition_of_caller(None, "cn-northwest-1"), "aws-cn");
        assert_eq!(partition_of_caller(None, "us-gov-east-1"), "aws-us-gov");
        assert_eq!(partition_of_caller(Some("garbled"), "eu-west-1"), "aws");
    }
}
