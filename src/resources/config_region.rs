//! What AWS Config holds in one region, read once and shared by the region's recorder,
//! delivery channel and recording. AWS allows one recorder and one delivery channel per
//! region, so these kinds agree here on which recorder ctguard manages: the profile's, or
//! (only when the profile says so) one that already exists under another name. Any other
//! existing recorder is reported and left alone, so an apply never fails halfway on it.

use std::sync::Arc;

use aws_sdk_config::types::{ConfigurationRecorder, ConfigurationRecorderStatus, DeliveryChannel};

use super::kind::{Check, Found};
use super::snapshot::Snapshot;
use crate::aws::{Aws, AwsResultExt};
use crate::plan::Address;
use crate::profile::ConfigSetup;

/// What Config holds in one region.
#[derive(Debug, Default)]
pub struct RegionState {
    pub recorders: Vec<ConfigurationRecorder>,
    pub channels: Vec<DeliveryChannel>,
    pub statuses: Vec<ConfigurationRecorderStatus>,
}

/// Which recorder ctguard works with in a region.
pub enum Managed {
    /// ctguard's own (the profile's name), present or not.
    Ours(String),
    /// Another recorder exists and the profile does not adopt it: leave the region alone.
    Foreign(String),
}

/// The region's Config state, shared by its recorder, channel and recording.
#[derive(Default)]
pub struct RegionConfig {
    snapshot: Snapshot<RegionState>,
}

/// The region's kinds are addressed by region alone: there is one of each.
pub fn address(kind: &'static str, region: &str) -> Address {
    Address { kind, name: region.to_string(), region: region.to_string() }
}

impl RegionConfig {
    /// The region's state, and which recorder ctguard manages given what exists.
    pub async fn read(
        &self,
        aws: &Aws,
        region: &str,
        setup: &ConfigSetup,
    ) -> anyhow::Result<(Arc<RegionState>, Managed)> {
        let state = self.snapshot.get(|| fetch(aws, region)).await?;
        let managed = match state.recorders.first().and_then(|r| r.name()) {
            Some(existing) if existing != setup.recorder && !setup.adopt_existing_recorder => {
                Managed::Foreign(existing.into())
            }
            Some(existing) => Managed::Ours(existing.into()),
            None => Managed::Ours(setup.recorder.clone()),
        };
        Ok((state, managed))
    }

    /// Reads one of the region's kinds. `ours` finds it in the region's state, given the name
    /// of the recorder ctguard manages; in a region whose recorder is someone else's, the
    /// desired state is reported as live, with a note (`left_alone`). `check` adds the health
    /// check the kind reports either way.
    pub async fn read_kind<S: Clone>(
        &self,
        aws: &Aws,
        region: &str,
        setup: &ConfigSetup,
        (want, what): (Option<&S>, &str),
        ours: impl FnOnce(&RegionState, &str) -> Option<Found<S>>,
        check: impl Fn(&RegionState, &str) -> Option<Check>,
    ) -> anyhow::Result<Option<Found<S>>> {
        let (state, managed) = self.read(aws, region, setup).await?;
        let (mut found, name) = match managed {
            Managed::Foreign(name) => (left_alone(&name, want, what), name),
            Managed::Ours(name) => (ours(&state, &name), name),
        };
        found.iter_mut().for_each(|f| f.checks.extend(check(&state, &name)));
        Ok(found)
    }

    pub async fn forget(&self) {
        self.snapshot.forget().await;
    }
}

async fn fetch(aws: &Aws, region: &str) -> anyhow::Result<RegionState> {
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
}

/// Live state for a region whose recorder is someone else's: the desired state, so nothing
/// is planned, with a note saying why. Reported, never changed.
fn left_alone<S: Clone>(name: &str, want: Option<&S>, what: &str) -> Option<Found<S>> {
    let note = format!(
        "AWS Config recorder {name:?} already exists and was not created by ctguard: its {what} is left alone \
         (set adopt_existing_recorder = true to manage it)"
    );
    want.map(|w| Found { notes: vec![note], ..Found::new(w.clone()) })
}
