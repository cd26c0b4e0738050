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
