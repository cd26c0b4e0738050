//! AWS Config's recorder, per region, and whether it is recording. AWS allows one recorder and
//! one delivery channel per region, so these kinds share one read of the region's Config state
//! and agree on which recorder ctguard manages: the profile's, or (only when the profile says
//! so) one that already exists under another name. Any other existing recorder is reported
//! and left alone, so an apply never fails halfway on it.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_config::types::{ConfigurationRecorder, DeliveryChannel, RecorderStatus, RecordingGroup};
use serde_json::json;

use super::{Check, Live, Resource, Snapshot, Spec, service_role};
use crate::aws::{Aws, AwsResultExt};
use crate::plan::{Address, Attrs};
use crate::profile::{ConfigSetup, Profile};

pub const KIND: &str = "config_recorder";
pub const RECORDING_KIND: &str = "config_recording";

/// What Config holds in one region.
#[derive(Debug, Default)]
pub struct RegionState {
    pub recorders: Vec<ConfigurationRecorder>,
    pub channels: Vec<DeliveryChannel>,
    pub statuses: Vec<aws_sdk_config::types::ConfigurationRecorderStatus>,
}

/// The region's Config state, read once and shared by its recorder, channel and recording.
#[derive(Default)]
pub struct RegionConfig {
    snapshot: Snapshot<RegionState>,
}

/// Which recorder and channel name ctguard works with in a region.
pub enum Managed {
    /// ctguard's own (the profile's name), present or not.
    Ours(String),
    /// Another recorder exists and the profile does not adopt it: leave the region alone.
    Foreign(String),
}

impl RegionConfig {
    pub async fn state(&self, aws: &Aws, region: &str) -> anyhow::Result<Arc<RegionState>> {
        self.snapshot
            .get(|| async {
                let cfg = aws.config(region);
                let what = || format!("reading AWS Config in {region}");
                let (recorders, channels, statuses) = tokio::try_join!(
                    async { cfg.describe_configuration_recorders().send().await.ctx(what) },
                    async { cfg.describe_delivery_channels().send().await.ctx(what) },
                    async { cfg.describe_configuration_recorder_status().send().await.ctx(what) },
                )?;
                Ok(RegionState {
                    recorders: recorders.configuration_recorders().to_vec(),
                    channels: channels.delivery_channels().to_vec(),
                    statuses: statuses.configuration_recorders_status().to_vec(),
                })
            })
            .await
    }

    pub async fn forget(&self) {
        self.snapshot.forget().await;
    }

    /// The recorder name ctguard manages here, given what exists.
    pub fn managed(state: &RegionState, setup: &ConfigSetup) -> Managed {
        match state.recorders.first().and_then(|r| r.name()) {
            Some(existing) if existing != setup.recorder && !setup.adopt_existing_recorder => {
                Managed::Foreign(existing.into())
            }
            Some(existing) => Managed::Ours(existing.into()),
            None => Managed::Ours(setup.recorder.clone()),
        }
    }

    /// Live state for a region whose recorder is someone else's: reported, never changed.
    pub fn left_alone(name: &str, want: &Attrs, what: &str) -> Live {
        let note = format!(
            "AWS Config recorder {name:?} already exists and was not created by ctguard: its {what} is left alone \
             (set adopt_existing_recorder = true to manage it)"
        );
        Live { attrs: want.clone(), notes: vec![note], ..Live::default() }
    }
}

pub fn address(kind: &'static str, region: &str) -> Address {
    Address { kind, name: region.to_string(), region: region.to_string() }
}

pub struct Recorder {
    region: String,
    setup: ConfigSetup,
    spec: Spec,
    shared: Arc<RegionConfig>,
}

impl Recorder {
    pub fn new(profile: &Profile, setup: &ConfigSetup, region: &str, shared: Arc<RegionConfig>) -> Self {
        let mut want = Attrs::new();
        want.insert("role_arn".into(), json!(setup.role_arn));
        want.insert("all_supported".into(), json!(true));
        // Global resources (IAM) are recorded in the home region only, or they are counted
        // once per region.
        want.insert("include_global_resource_types".into(), json!(region == profile.runtime.region));
        let depends = if setup.service_linked { vec![service_role::address()] } else { Vec::new() };
        let spec = Spec::new(address(KIND, region), want, depends);
        Recorder { region: region.into(), setup: setup.clone(), spec, shared }
    }
}

#[async_trait]
impl Resource for Recorder {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        let state = self.shared.state(aws, &self.region).await?;
        let name = match RegionConfig::managed(&state, &self.setup) {
            Managed::Foreign(name) => {
                return Ok(Some(RegionConfig::left_alone(&name, &self.spec.want, "configuration")));
            }
            Managed::Ours(name) => name,
        };
        let Some(r) = state.recorders.iter().find(|r| r.name() == Some(name.as_str())) else { return Ok(None) };
        let group = r.recording_group();
        let mut attrs = Attrs::new();
        attrs.insert("role_arn".into(), json!(r.role_arn()));
        attrs.insert("all_supported".into(), json!(group.is_some_and(|g| g.all_supported())));
        attrs.insert(
            "include_global_resource_types".into(),
            json!(group.is_some_and(|g| g.include_global_resource_types())),
        );
        Ok(Some(Live { attrs, ..Live::default() }))
    }

    async fn read_back(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        self.shared.forget().await;
        self.read(aws).await
    }

    async fn create(&self, aws: &Aws, want: &Attrs) -> anyhow::Result<()> {
        self.update(aws, want, &BTreeSet::new()).await
    }

    /// PutConfigurationRecorder creates or replaces the whole recorder.
    async fn update(&self, aws: &Aws, want: &Attrs, _: &BTreeSet<String>) -> anyhow::Result<()> {
        let state = self.shared.state(aws, &self.region).await?;
        let Managed::Ours(name) = RegionConfig::managed(&state, &self.setup) else { return Ok(()) };
        let group = RecordingGroup::builder()
            .all_supported(true)
            .include_global_resource_types(want["include_global_resource_types"].as_bool().unwrap_or(false))
            .build();
        let recorder = ConfigurationRecorder::builder()
            .name(&name)
            .role_arn(super::text(want, "role_arn"))
            .recording_group(group)
            .build();
        let put = aws.config(&self.region).put_configuration_recorder().configuration_recorder(recorder);
        super::retry_propagation(|| async {
            put.clone().send().await.ctx(|| format!("writing AWS Config recorder {}/{name}", self.region))
        })
        .await?;
        Ok(())
    }

    async fn delete(&self, _: &Aws) -> anyhow::Result<()> {
        anyhow::bail!("ctguard does not delete AWS Config recorders: the configuration history is audit evidence")
    }
}

/// The recorder is started, and kept recording, once its delivery channel exists.
pub struct Recording {
    region: String,
    setup: ConfigSetup,
    spec: Spec,
    shared: Arc<RegionConfig>,
}

impl Recording {
    pub fn new(setup: &ConfigSetup, region: &str, shared: Arc<RegionConfig>) -> Self {
        let want = Attrs::from([("recording".to_string(), json!(true))]);
        // Order matters to AWS: recorder, then delivery channel, then start.
        let depends = vec![address(KIND, region), address(super::config_channel::KIND, region)];
        let spec = Spec::new(address(RECORDING_KIND, region), want, depends);
        Recording { region: region.into(), setup: setup.clone(), spec, shared }
    }
}

#[async_trait]
impl Resource for Recording {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        let state = self.shared.state(aws, &self.region).await?;
        let name = match RegionConfig::managed(&state, &self.setup) {
            Managed::Foreign(name) => {
                let mut live = RegionConfig::left_alone(&name, &self.spec.want, "recording state");
                live.checks.extend(status_check(&state, &name));
                return Ok(Some(live));
            }
            Managed::Ours(name) => name,
        };
        if !state.recorders.iter().any(|r| r.name() == Some(name.as_str())) {
            return Ok(None);
        }
        let recording = state.statuses.iter().find(|s| s.name() == Some(name.as_str())).is_some_and(|s| s.recording());
        let mut live = Live { attrs: Attrs::from([("recording".to_string(), json!(recording))]), ..Live::default() };
        live.checks.extend(status_check(&state, &name));
        Ok(Some(live))
    }

    async fn read_back(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        self.shared.forget().await;
        self.read(aws).await
    }

    async fn create(&self, aws: &Aws, want: &Attrs) -> anyhow::Result<()> {
        self.update(aws, want, &BTreeSet::new()).await
    }

    async fn update(&self, aws: &Aws, _: &Attrs, _: &BTreeSet<String>) -> anyhow::Result<()> {
        let state = self.shared.state(aws, &self.region).await?;
        let Managed::Ours(name) = RegionConfig::managed(&state, &self.setup) else { return Ok(()) };
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
