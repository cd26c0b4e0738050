//! AWS Config's delivery channel, per region: configuration snapshots and history go to the
//! audit bucket under the profile's prefix. See config_region for the one-per-region rule.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_config::types::{ConfigSnapshotDeliveryProperties, DeliveryChannel, MaximumExecutionFrequency};
use serde::Serialize;

use super::config_region::{self, Managed, RegionConfig, RegionState};
use super::kind::{Declared, Delta, Found, Kind, Spec};
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
}
