//! AWS Config's delivery channel, per region: configuration snapshots and history go to the
//! audit bucket under the profile's prefix. See config_region for the one-per-region rule.
//! verify also reads the channel's delivery status (`health`): a configuration that matches
//! the profile still delivers nothing when the bucket's policy or key refuses Config.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_config::types::{
    ConfigExportDeliveryInfo, ConfigSnapshotDeliveryProperties, DeliveryChannel, DeliveryChannelStatus, DeliveryStatus,
    MaximumExecutionFrequency,
};
use serde::Serialize;

use super::config_region::{self, Managed, RegionConfig, RegionState};
use super::kind::{Check, Declared, Delta, Found, Kind, Spec};
use super::{bucket, config_recorder};
use crate::aws::{Aws, AwsResultExt};
use crate::plan::Address;
use crate::profile::{ConfigSetup, Profile};

pub const KIND: &str = "config_delivery_channel";

/// Where Config delivers, and how often it takes a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelSpec {
    pub s3_bucket_name: Option<String>,
    /// Config omits an empty prefix; an absent prefix reads as "".
    pub s3_key_prefix: String,
    pub snapshot_frequency: Option<String>,
}

impl Spec for ChannelSpec {}

pub struct Channel {
    region: String,
    setup: ConfigSetup,
    shared: Arc<RegionConfig>,
}

impl Channel {
    pub fn new(profile: &Profile, setup: &ConfigSetup, region: &str, shared: Arc<RegionConfig>) -> Declared<Self> {
        let want = ChannelSpec {
            s3_bucket_name: Some(profile.bucket.name.clone()),
            s3_key_prefix: setup.s3_prefix.clone(),
            snapshot_frequency: Some(setup.snapshot_frequency.as_str().to_string()),
        };
        // The channel needs a recorder, and the bucket policy that lets Config write.
        let home = &profile.runtime.region;
        let depends = vec![
            config_region::address(config_recorder::KIND, region),
            Address { kind: bucket::KIND, name: profile.bucket.name.clone(), region: home.clone() },
        ];
        let kind = Channel { region: region.into(), setup: setup.clone(), shared };
        Declared::new(kind, config_region::address(KIND, region), want, depends)
    }
}

fn flatten(c: &DeliveryChannel) -> ChannelSpec {
    let frequency = c.config_snapshot_delivery_properties().and_then(|p| p.delivery_frequency());
    ChannelSpec {
        s3_bucket_name: c.s3_bucket_name().map(str::to_string),
        s3_key_prefix: c.s3_key_prefix().unwrap_or("").to_string(),
        snapshot_frequency: frequency.map(|f| f.as_str().to_string()),
    }
}

fn expand(name: &str, spec: &ChannelSpec) -> DeliveryChannel {
    let properties = ConfigSnapshotDeliveryProperties::builder()
        .set_delivery_frequency(spec.snapshot_frequency.as_deref().map(MaximumExecutionFrequency::from))
        .build();
    DeliveryChannel::builder()
        .name(name)
        .set_s3_bucket_name(spec.s3_bucket_name.clone())
        .set_s3_key_prefix(Some(spec.s3_key_prefix.clone()).filter(|p| !p.is_empty()))
        .config_snapshot_delivery_properties(properties)
        .build()
}

#[async_trait]
impl Kind for Channel {
    type Spec = ChannelSpec;

    async fn read(&self, aws: &Aws, want: Option<&ChannelSpec>) -> anyhow::Result<Option<Found<ChannelSpec>>> {
        // One channel per region; it need not share the recorder's name.
        let ours = |state: &RegionState, name: &str| {
            let found = state.channels.iter().find(|c| c.name() == Some(name)).or(state.channels.first());
            found.map(|c| Found::new(flatten(c)))
        };
        let shared = &self.shared;
        shared.read_kind(aws, &self.region, &self.setup, (want, "delivery channel"), ours, |_, _| None).await
    }

    async fn forget(&self) {
        self.shared.forget().await;
    }

    /// PutDeliveryChannel creates or replaces the channel.
    async fn update(&self, aws: &Aws, delta: &Delta<'_, ChannelSpec>) -> anyhow::Result<()> {
        let (state, Managed::Ours(recorder)) = self.shared.read(aws, &self.region, &self.setup).await? else {
            return Ok(());
        };
        let name = state.channels.first().and_then(|c| c.name()).unwrap_or(&recorder).to_string();
        let put = aws.config(&self.region).put_delivery_channel().delivery_channel(expand(&name, delta.want));
        put.send().await.ctx(|| format!("writing AWS Config delivery channel {}/{name}", self.region))?;
        Ok(())
    }

    async fn delete(&self, _: &Aws) -> anyhow::Result<()> {
        anyhow::bail!("ctguard does not delete AWS Config delivery channels")
    }

    /// The region's channel delivers: DescribeDeliveryChannelStatus shows no Failure, and a
    /// snapshot arrived within the channel's frequency (plus `SNAPSHOT_GRACE`).
    async fn health(&self, aws: &Aws) -> Vec<Check> {
        let frequency = match self.shared.read(aws, &self.region, &self.setup).await {
            Ok((state, _)) => state.channels.first().map(flatten).and_then(|c| c.snapshot_frequency),
            Err(_) => None,
        };
        // AWS Config takes a snapshot every 24 hours when the channel sets no frequency.
        let frequency = frequency.as_deref().map_or(86_400, frequency_seconds);
        let read = aws.config(&self.region).describe_delivery_channel_status().send().await;
        let read = read.ctx(|| format!("reading the AWS Config delivery status in {}", self.region));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        match read {
            Ok(out) => {
                out.delivery_channels_status().iter().map(|s| delivery_check(&self.region, s, frequency, now)).collect()
            }
            Err(e) => vec![Check {
                name: format!("AWS Config delivery channel {} delivering", self.region),
                ok: false,
                detail: format!("could not read the delivery status: {e:#}"),
            }],
        }
    }
}

/// How late a snapshot may be beyond the channel's frequency: deliveries are not instant.
const SNAPSHOT_GRACE: i64 = 3_600;

fn frequency_seconds(f: &str) -> i64 {
    match MaximumExecutionFrequency::from(f) {
        MaximumExecutionFrequency::OneHour => 3_600,
        MaximumExecutionFrequency::ThreeHours => 3 * 3_600,
        MaximumExecutionFrequency::SixHours => 6 * 3_600,
        MaximumExecutionFrequency::TwelveHours => 12 * 3_600,
        _ => 24 * 3_600,
    }
}

/// One check per channel from its status (AWS Config API Reference, DeliveryChannelStatus):
/// failing when the last snapshot, history or stream delivery failed (lastStatus Failure), naming the error, or on a
/// last successful snapshot older than the frequency allows. Pure, so tested on answers.
pub fn delivery_check(region: &str, status: &DeliveryChannelStatus, frequency: i64, now: i64) -> Check {
    let channel = status.name().unwrap_or("(unnamed)");
    let name = format!("AWS Config delivery channel {region}/{channel} delivering");
    let mut problems = Vec::new();
    let export = |what: &str, info: Option<&ConfigExportDeliveryInfo>, problems: &mut Vec<String>| {
        if let Some(info) = info.filter(|i| i.last_status() == Some(&DeliveryStatus::Failure)) {
            let code = info.last_error_code().unwrap_or("no error code");
            let message = info.last_error_message().unwrap_or("no message");
            problems.push(format!("{what} delivery failed: {code}: {message}"));
        }
    };
    export("snapshot", status.config_snapshot_delivery_info(), &mut problems);
    export("history", status.config_history_delivery_info(), &mut problems);
    if let Some(stream) = status.config_stream_delivery_info()
        && stream.last_status() == Some(&DeliveryStatus::Failure)
    {
        let code = stream.last_error_code().unwrap_or("no error code");
        let message = stream.last_error_message().unwrap_or("no message");
        problems.push(format!("SNS stream delivery failed: {code}: {message}"));
    }
    let last = status.config_snapshot_delivery_info().and_then(|i| i.last_successful_time()).map(|t| t.secs());
    match last {
        Some(at) if now - at > frequency + SNAPSHOT_GRACE => problems.push(format!(
            "no snapshot delivered for {} h (the channel delivers every {} h)",
            (now - at) / 3_600,
            frequency / 3_600
        )),
        _ => {}
    }
    match problems.is_empty() {
        true => {
            let detail = match last {
                Some(at) => format!("deliveries succeed; last snapshot {} min ago", (now - at).max(0) / 60),
                None => "deliveries succeed; no snapshot delivered yet".into(),
            };
            Check { name, ok: true, detail }
        }
        false => Check { name, ok: false, detail: problems.join("; ") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{HOME, aws, flagship, mock};
    use aws_sdk_config::{Client, operation as config, types::ConfigurationRecorder};

    #[tokio::test]
    async fn the_one_channel_of_the_region_is_read_and_rewritten_under_its_own_name() {
        let p = flagship();
        let setup = p.config.as_ref().unwrap();
        let channel = Channel::new(&p, setup, HOME, Default::default());
        let want = channel.want.clone().unwrap();
        let recorders = mock!(Client::describe_configuration_recorders).then_output(|| {
            let r = ConfigurationRecorder::builder().name("ctguard").build();
            config::describe_configuration_recorders::DescribeConfigurationRecordersOutput::builder()
                .configuration_recorders(r)
                .build()
        });
        let bucket = want.s3_bucket_name.clone();
        let channels = mock!(Client::describe_delivery_channels).then_output(move || {
            let c = DeliveryChannel::builder().name("default").set_s3_bucket_name(bucket.clone()).build();
            config::describe_delivery_channels::DescribeDeliveryChannelsOutput::builder().delivery_channels(c).build()
        });
        let statuses = mock!(Client::describe_configuration_recorder_status).then_output(|| {
            config::describe_configuration_recorder_status::DescribeConfigurationRecorderStatusOutput::builder().build()
        });
        let put = mock!(Client::put_delivery_channel)
            .match_requests(|r| {
                let c = r.delivery_channel().unwrap();
                c.name() == Some("default") && c.s3_key_prefix() == Some("config")
            })
            .then_output(|| config::put_delivery_channel::PutDeliveryChannelOutput::builder().build());
        let aws = aws(&[&recorders, &channels, &statuses, &put]);
        let found = channel.kind.read(&aws, Some(&want)).await.unwrap().unwrap();
        // No prefix and no frequency set: both drift, neither a default.
        assert_eq!(found.spec, ChannelSpec { s3_key_prefix: String::new(), snapshot_frequency: None, ..want.clone() });
        channel.kind.update(&aws, &Delta::between(&want, Some(&found.spec))).await.unwrap();
        assert_eq!(put.num_calls(), 1);
    }

    fn info(status: DeliveryStatus, last_success: Option<i64>) -> ConfigExportDeliveryInfo {
        let info = ConfigExportDeliveryInfo::builder().last_status(status.clone());
        let info = match last_success {
            Some(t) => info.last_successful_time(aws_smithy_types::DateTime::from_secs(t)),
            None => info,
        };
        match status {
            DeliveryStatus::Failure => {
                info.last_error_code("AccessDenied").last_error_message("Access Denied by the bucket's key").build()
            }
            _ => info.build(),
        }
    }

    #[test]
    fn a_failed_delivery_or_a_late_snapshot_fails_naming_channel_and_error() {
        let now = 1_700_000_000;
        let ok = DeliveryChannelStatus::builder()
            .name("default")
            .config_snapshot_delivery_info(info(DeliveryStatus::Success, Some(now - 3_600)))
            .config_history_delivery_info(info(DeliveryStatus::Success, Some(now - 60)))
            .build();
        let check = delivery_check("eu-west-1", &ok, 86_400, now);
        assert!(check.ok, "{check:?}");
        assert_eq!(check.name, "AWS Config delivery channel eu-west-1/default delivering");

        let failed = DeliveryChannelStatus::builder()
            .name("default")
            .config_history_delivery_info(info(DeliveryStatus::Failure, None))
            .build();
        let check = delivery_check("eu-west-1", &failed, 86_400, now);
        assert!(!check.ok);
        assert_eq!(check.detail, "history delivery failed: AccessDenied: Access Denied by the bucket's key");

        // Every 3 hours, last one 5 hours ago: over the frequency and its hour of grace.
        let late = DeliveryChannelStatus::builder()
            .name("default")
            .config_snapshot_delivery_info(info(DeliveryStatus::Success, Some(now - 5 * 3_600)))
            .build();
        let check = delivery_check("eu-west-1", &late, frequency_seconds("Three_Hours"), now);
        assert!(!check.ok);
        assert_eq!(check.detail, "no snapshot delivered for 5 h (the channel delivers every 3 h)");
    }
}
