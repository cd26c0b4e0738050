//! AWS Config's recorder, per region: every supported resource type, global IAM resources in
//! the home region only. See config_region for the one-recorder-per-region rule.

use async_trait::async_trait;
use aws_sdk_config::types::{ConfigurationRecorder, RecordingGroup};
use serde::Serialize;

use super::config_region::{self, Managed, RegionConfig, RegionState};
use super::kind::{Declared, Delta, Found, Kind, Spec};
use super::service_role;
use crate::aws::{Aws, AwsResultExt, while_propagating};
use crate::profile::{ConfigSetup, Profile};
use std::sync::Arc;

pub const KIND: &str = "config_recorder";

/// What the recorder records, and as whom.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecorderSpec {
    pub role_arn: Option<String>,
    pub all_supported: bool,
    pub include_global_resource_types: bool,
}

impl Spec for RecorderSpec {}

pub struct Recorder {
    region: String,
    setup: ConfigSetup,
    shared: Arc<RegionConfig>,
}

impl Recorder {
    pub fn new(profile: &Profile, setup: &ConfigSetup, region: &str, shared: Arc<RegionConfig>) -> Declared<Self> {
        let want = RecorderSpec {
            role_arn: Some(setup.role_arn.clone()),
            all_supported: true,
            // Global resources (IAM) are recorded in the home region only, or they are
            // counted once per region.
            include_global_resource_types: region == profile.runtime.region,
        };
        let depends = if setup.service_linked { vec![service_role::address()] } else { Vec::new() };
        let kind = Recorder { region: region.into(), setup: setup.clone(), shared };
        Declared::new(kind, config_region::address(KIND, region), want, depends)
    }
}

/// The recorder as the spec states it (flatten).
fn flatten(r: &ConfigurationRecorder) -> RecorderSpec {
    let group = r.recording_group();
    RecorderSpec {
        role_arn: r.role_arn().map(str::to_string),
        all_supported: group.is_some_and(|g| g.all_supported()),
        include_global_resource_types: group.is_some_and(|g| g.include_global_resource_types()),
    }
}

/// The recorder PutConfigurationRecorder writes (expand).
fn expand(name: &str, spec: &RecorderSpec) -> ConfigurationRecorder {
    let group = RecordingGroup::builder()
        .all_supported(spec.all_supported)
        .include_global_resource_types(spec.include_global_resource_types)
        .build();
    ConfigurationRecorder::builder().name(name).set_role_arn(spec.role_arn.clone()).recording_group(group).build()
}

#[async_trait]
impl Kind for Recorder {
    type Spec = RecorderSpec;

    async fn read(&self, aws: &Aws, want: Option<&RecorderSpec>) -> anyhow::Result<Option<Found<RecorderSpec>>> {
        let ours = |state: &RegionState, name: &str| {
            state.recorders.iter().find(|r| r.name() == Some(name)).map(|r| Found::new(flatten(r)))
        };
        let shared = &self.shared;
        shared.read_kind(aws, &self.region, &self.setup, (want, "configuration"), ours, |_, _| None).await
    }

    async fn forget(&self) {
        self.shared.forget().await;
    }

    /// PutConfigurationRecorder creates or replaces the whole recorder.
    async fn update(&self, aws: &Aws, delta: &Delta<'_, RecorderSpec>) -> anyhow::Result<()> {
        let (_, Managed::Ours(name)) = self.shared.read(aws, &self.region, &self.setup).await? else { return Ok(()) };
        let put =
            aws.config(&self.region).put_configuration_recorder().configuration_recorder(expand(&name, delta.want));
        // A service-linked role created moments ago may not be assumable by Config yet.
        while_propagating(|| async {
            put.clone().send().await.ctx(|| format!("writing AWS Config recorder {}/{name}", self.region))
        })
        .await?;
        Ok(())
    }

    async fn delete(&self, _: &Aws) -> anyhow::Result<()> {
        anyhow::bail!("ctguard does not delete AWS Config recorders: the configuration history is audit evidence")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{HOME, OTHER, Rule, aws, flagship, mock};
    use aws_sdk_config::{Client, operation as config};

    #[tokio::test]
    async fn the_recorder_records_global_resources_in_the_home_region_only() {
        let p = flagship();
        let setup = p.config.as_ref().unwrap();
        let home = Recorder::new(&p, setup, HOME, Default::default());
        let other = Recorder::new(&p, setup, OTHER, Default::default());
        assert!(home.want.as_ref().unwrap().include_global_resource_types);
        assert!(!other.want.as_ref().unwrap().include_global_resource_types);
        let empty = [
            mock!(Client::describe_configuration_recorders).then_output(|| {
                config::describe_configuration_recorders::DescribeConfigurationRecordersOutput::builder().build()
            }),
            mock!(Client::describe_delivery_channels)
                .then_output(|| config::describe_delivery_channels::DescribeDeliveryChannelsOutput::builder().build()),
            mock!(Client::describe_configuration_recorder_status).then_output(|| {
                config::describe_configuration_recorder_status::DescribeConfigurationRecorderStatusOutput::builder()
                    .build()
            }),
        ];
        let put = mock!(Client::put_configuration_recorder)
            .match_requests(|r| {
                let rec = r.configuration_recorder().unwrap();
                rec.name() == Some("ctguard")
                    && rec.recording_group().is_some_and(|g| g.all_supported() && g.include_global_resource_types())
            })
            .then_output(|| config::put_configuration_recorder::PutConfigurationRecorderOutput::builder().build());
        let mut rules: Vec<&Rule> = empty.iter().collect();
        rules.push(&put);
        let aws = aws(&rules);
        assert!(home.kind.read(&aws, home.want.as_ref()).await.unwrap().is_none());
        home.kind.create(&aws, home.want.as_ref().unwrap()).await.unwrap();
        assert_eq!(put.num_calls(), 1);
    }
}
