//! AWS Config's delivery channel, per region: configuration snapshots and history go to the
//! audit bucket under the profile's prefix. See config_recorder for the one-per-region rule.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_config::types::{ConfigSnapshotDeliveryProperties, DeliveryChannel, MaximumExecutionFrequency};
use serde_json::json;

use super::config_recorder::{self, Managed, RegionConfig};
use super::{Live, Resource, Spec, bucket, text};
use crate::aws::{Aws, AwsResultExt};
use crate::plan::{Address, Attrs};
use crate::profile::{ConfigSetup, Profile};

pub const KIND: &str = "config_delivery_channel";

pub struct Channel {
    region: String,
    setup: ConfigSetup,
    spec: Spec,
    shared: Arc<RegionConfig>,
}

impl Channel {
    pub fn new(profile: &Profile, setup: &ConfigSetup, region: &str, shared: Arc<RegionConfig>) -> Self {
        let mut want = Attrs::new();
        want.insert("s3_bucket_name".into(), json!(profile.bucket.name));
        want.insert("s3_key_prefix".into(), json!(setup.s3_prefix));
        want.insert("snapshot_frequency".into(), json!(setup.snapshot_frequency.as_str()));
        // The channel needs a recorder, and the bucket policy that lets Config write.
        let home = &profile.runtime.region;
        let depends = vec![
            config_recorder::address(config_recorder::KIND, region),
            Address { kind: bucket::KIND, name: profile.bucket.name.clone(), region: home.clone() },
        ];
        let spec = Spec::new(config_recorder::address(KIND, region), want, depends);
        Channel { region: region.into(), setup: setup.clone(), spec, shared }
    }
}

#[async_trait]
impl Resource for Channel {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        let state = self.shared.state(aws, &self.region).await?;
        let name = match RegionConfig::managed(&state, &self.setup) {
            Managed::Foreign(name) => {
                return Ok(Some(RegionConfig::left_alone(&name, &self.spec.want, "delivery channel")));
            }
            Managed::Ours(name) => name,
        };
        // One channel per region; it need not share the recorder's name.
        let Some(c) = state.channels.iter().find(|c| c.name() == Some(name.as_str())).or(state.channels.first()) else {
            return Ok(None);
        };
        let mut attrs = Attrs::new();
        attrs.insert("s3_bucket_name".into(), json!(c.s3_bucket_name()));
        attrs.insert("s3_key_prefix".into(), json!(c.s3_key_prefix().unwrap_or("")));
        let frequency =
            c.config_snapshot_delivery_properties().and_then(|p| p.delivery_frequency()).map(|f| f.as_str());
        attrs.insert("snapshot_frequency".into(), json!(frequency));
        Ok(Some(Live { attrs, ..Live::default() }))
    }

    async fn read_back(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        self.shared.forget().await;
        self.read(aws).await
    }

    async fn create(&self, aws: &Aws, want: &Attrs) -> anyhow::Result<()> {
        self.update(aws, want, &BTreeSet::new()).await
    }

    /// PutDeliveryChannel creates or replaces the channel.
    async fn update(&self, aws: &Aws, want: &Attrs, _: &BTreeSet<String>) -> anyhow::Result<()> {
        let state = self.shared.state(aws, &self.region).await?;
        let Managed::Ours(recorder) = RegionConfig::managed(&state, &self.setup) else { return Ok(()) };
        let name = state.channels.first().and_then(|c| c.name()).unwrap_or(&recorder).to_string();
        let properties = ConfigSnapshotDeliveryProperties::builder()
            .delivery_frequency(MaximumExecutionFrequency::from(text(want, "snapshot_frequency")))
            .build();
        let prefix = Some(text(want, "s3_key_prefix").to_string()).filter(|p| !p.is_empty());
        let channel = DeliveryChannel::builder()
            .name(&name)
            .s3_bucket_name(text(want, "s3_bucket_name"))
            .set_s3_key_prefix(prefix)
            .config_snapshot_delivery_properties(properties)
            .build();
        let put = aws.config(&self.region).put_delivery_channel().delivery_channel(channel);
        put.send().await.ctx(|| format!("writing AWS Config delivery channel {}/{name}", self.region))?;
        Ok(())
    }

    async fn delete(&self, _: &Aws) -> anyhow::Result<()> {
        anyhow::bail!("ctguard does not delete AWS Config delivery channels")
    }
}
