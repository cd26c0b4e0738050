//! Whether AWS Config's recorder is recording, per region: started, and kept recording, once
//! its delivery channel exists. See config_region for the one-recorder-per-region rule.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_config::types::RecorderStatus;
use serde::Serialize;

use super::config_region::{self, Managed, RegionConfig, RegionState};
use super::kind::{Check, Declared, Delta, Found, Kind, Spec};
use super::{config_channel, config_recorder};
use crate::aws::{Aws, AwsResultExt};
use crate::profile::ConfigSetup;

pub const KIND: &str = "config_recording";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordingSpec {
    pub recording: bool,
}

impl Spec for RecordingSpec {}

pub struct Recording {
    region: String,
    setup: ConfigSetup,
    shared: Arc<RegionConfig>,
}

impl Recording {
    pub fn new(setup: &ConfigSetup, region: &str, shared: Arc<RegionConfig>) -> Declared<Self> {
        // Order matters to AWS: recorder, then delivery channel, then start.
        let depends = vec![
            config_region::address(config_recorder::KIND, region),
            config_region::address(config_channel::KIND, region),
        ];
        let kind = Recording { region: region.into(), setup: setup.clone(), shared };
        Declared::new(kind, config_region::address(KIND, region), RecordingSpec { recording: true }, depends)
    }
}

#[async_trait]
impl Kind for Recording {
    type Spec = RecordingSpec;

    async fn read(&self, aws: &Aws, want: Option<&RecordingSpec>) -> anyhow::Result<Option<Found<RecordingSpec>>> {
        let ours = |state: &RegionState, name: &str| {
            state.recorders.iter().any(|r| r.name() == Some(name)).then(|| {
                let status = state.statuses.iter().find(|s| s.name() == Some(name));
                Found::new(RecordingSpec { recording: status.is_some_and(|s| s.recording()) })
            })
        };
        let shared = &self.shared;
        shared.read_kind(aws, &self.region, &self.setup, (want, "recording state"), ours, status_check).await
    }

    async fn forget(&self) {
        self.shared.forget().await;
    }

    async fn update(&self, aws: &Aws, _: &Delta<'_, RecordingSpec>) -> anyhow::Result<()> {
        let (_, Managed::Ours(name)) = self.shared.read(aws, &self.region, &self.setup).await? else { return Ok(()) };
        let start = aws.config(&self.region).start_configuration_recorder().configuration_recorder_name(&name);
        start.send().await.ctx(|| format!("starting AWS Config recorder {}/{name}", self.region))?;
        Ok(())
    }

    async fn delete(&self, _: &Aws) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The recorder's last status, for verify: recording, and no failure on the last delivery.
fn status_check(state: &RegionState, name: &str) -> Option<Check> {
    let s = state.statuses.iter().find(|s| s.name() == Some(name))?;
    let failed = s.last_status() == Some(&RecorderStatus::Failure);
    let detail = match (s.recording(), failed) {
        (_, true) => format!(
            "last status Failure: {} {}",
            s.last_error_code().unwrap_or(""),
            s.last_error_message().unwrap_or("")
        ),
        (true, false) => format!("recording; last status {}", s.last_status().map(|l| l.as_str()).unwrap_or("unknown")),
        (false, false) => "not recording".to_string(),
    };
    Some(Check { name: format!("AWS Config recorder {name} is recording"), ok: s.recording() && !failed, detail })
}

/// The three Config kinds of a region together: one read of the region, and someone else's
/// recorder left alone by all of them.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::Delta;
    use crate::resources::testing::{OTHER, Rule, aws, flagship, mock};
    use aws_sdk_config::types::{ConfigurationRecorder, ConfigurationRecorderStatus};
    use aws_sdk_config::{Client, operation as config};

    /// Config's answers for a region holding one recorder named `name`, recording or not.
    fn region_holding(name: &'static str, recording: bool) -> [Rule; 3] {
        [
            mock!(Client::describe_configuration_recorders).then_output(move || {
                let r = ConfigurationRecorder::builder().name(name).role_arn("arn:aws:iam::1:role/theirs").build();
                config::describe_configuration_recorders::DescribeConfigurationRecordersOutput::builder()
                    .configuration_recorders(r)
                    .build()
            }),
            mock!(Client::describe_delivery_channels)
                .then_output(|| config::describe_delivery_channels::DescribeDeliveryChannelsOutput::builder().build()),
            mock!(Client::describe_configuration_recorder_status).then_output(move || {
                let s = ConfigurationRecorderStatus::builder().name(name).recording(recording).build();
                config::describe_configuration_recorder_status::DescribeConfigurationRecorderStatusOutput::builder()
                    .configuration_recorders_status(s)
                    .build()
            }),
        ]
    }

    #[tokio::test]
    async fn someone_elses_recorder_is_reported_and_never_written() {
        let p = flagship();
        let setup = p.config.as_ref().unwrap();
        let shared = Arc::new(RegionConfig::default());
        let recorder = config_recorder::Recorder::new(&p, setup, OTHER, shared.clone());
        let channel = config_channel::Channel::new(&p, setup, OTHER, shared.clone());
        let recording = Recording::new(setup, OTHER, shared.clone());
        let rules = region_holding("default", false);
        // No rule for any Put*: a write would panic.
        let aws = aws(&rules.iter().collect::<Vec<_>>());
        let found = recorder.kind.read(&aws, recorder.want.as_ref()).await.unwrap().unwrap();
        assert_eq!(Some(found.spec), recorder.want);
        assert!(found.notes[0].contains("\"default\" already exists and was not created by ctguard"));
        assert!(channel.kind.read(&aws, channel.want.as_ref()).await.unwrap().is_some());
        let found = recording.kind.read(&aws, recording.want.as_ref()).await.unwrap().unwrap();
        assert_eq!(found.checks[0].detail, "not recording");
        recorder.kind.update(&aws, &Delta::all(recorder.want.as_ref().unwrap())).await.unwrap();
        assert_eq!(rules[0].num_calls(), 1, "the region is read once for its three kinds");
    }
}
