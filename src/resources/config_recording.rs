//! Whether AWS Config's recorder is recording, per region: started, and kept recording, once
//! its delivery channel exists. See config_region for the one-recorder-per-region rule.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_config::types::RecorderStatus;
use serde::Serialize;

use super::config_region::{self, Managed, RegionConfig, RegionState, left_alone};
use super::kind::{Check, Decl, Delta, Found, Kind};
use super::{config_channel, config_recorder};
use crate::aws::{Aws, AwsResultExt};
use crate::profile::ConfigSetup;

pub const KIND: &str = "config_recording";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordingSpec {
    pub recording: bool,
}

pub struct Recording {
    region: String,
    setup: ConfigSetup,
    decl: Decl<RecordingSpec>,
    shared: Arc<RegionConfig>,
}

impl Recording {
    pub fn new(setup: &ConfigSetup, region: &str, shared: Arc<RegionConfig>) -> Self {
        // Order matters to AWS: recorder, then delivery channel, then start.
        let depends = vec![
            config_region::address(config_recorder::KIND, region),
            config_region::address(config_channel::KIND, region),
        ];
        let decl = Decl::new(config_region::address(KIND, region), RecordingSpec { recording: true }, depends);
        Recording { region: region.into(), setup: setup.clone(), decl, shared }
    }
}

#[async_trait]
impl Kind for Recording {
    type Spec = RecordingSpec;

    fn decl(&self) -> &Decl<RecordingSpec> {
        &self.decl
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Found<RecordingSpec>>> {
        let (state, name) = match self.shared.read(aws, &self.region, &self.setup).await? {
            (state, Managed::Foreign(name)) => {
                let mut found = left_alone(&name, self.decl.want.as_ref(), "recording state");
                found.iter_mut().for_each(|f| f.checks.extend(status_check(&state, &name)));
                return Ok(found);
            }
            (state, Managed::Ours(name)) => (state, name),
        };
        if !state.recorders.iter().any(|r| r.name() == Some(name.as_str())) {
            return Ok(None);
        }
        let recording = state.statuses.iter().find(|s| s.name() == Some(name.as_str())).is_some_and(|s| s.recording());
        let mut found = Found::new(RecordingSpec { recording });
        found.checks.extend(status_check(&state, &name));
        Ok(Some(found))
    }

    async fn forget(&self) {
        self.shared.forget().await;
    }

    async fn create(&self, aws: &Aws, want: &RecordingSpec) -> anyhow::Result<()> {
        self.update(aws, &Delta::all(want)).await
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
