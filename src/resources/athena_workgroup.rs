//! The Athena workgroup `ctguard hunt` runs in: query results under a prefix of the audit
//! bucket, encrypted, a per-query limit on data scanned, and the workgroup's settings enforced
//! over whatever a client asks for. Query results are never deleted here: they live in the
//! audit bucket, whose lifecycle expires them.

use async_trait::async_trait;
use aws_sdk_athena::types::{
    EncryptionConfiguration, EncryptionOption, ResultConfiguration, ResultConfigurationUpdates, Tag, WorkGroup,
    WorkGroupConfiguration, WorkGroupConfigurationUpdates, WorkGroupState,
};
use serde::Serialize;

use super::kind::{Declared, Delta, Found, Kind, Outputs};
use super::tags::{self, Tags};
use super::{bucket, kms_key};
use crate::aws::error::{ErrorKind, kind};
use crate::aws::{Aws, AwsResultExt};
use crate::plan::{Address, UNKNOWN};
use crate::profile::athena::Athena;
use crate::profile::{Encryption, Kms, Profile};

pub const KIND: &str = "athena_workgroup";

/// The workgroup's settings ctguard declares. Each is `None` when AWS reports nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkGroupSpec {
    /// `ENABLED` or `DISABLED`: a disabled workgroup runs no query.
    pub state: Option<String>,
    /// `s3://<audit bucket>/<results prefix>/`.
    pub output_location: Option<String>,
    /// `SSE_S3`, or `SSE_KMS` with `kms_key` when the audit bucket uses a KMS key.
    pub encryption: Option<String>,
    pub kms_key: Option<String>,
    /// Athena cancels a query once it has scanned this many bytes.
    pub bytes_scanned_cutoff_per_query: Option<i64>,
    /// The workgroup's result location, encryption and limit override the client's.
    pub enforce_work_group_configuration: Option<bool>,
    pub publish_cloud_watch_metrics_enabled: Option<bool>,
    pub tags: Tags,
}

crate::tagged_spec!(WorkGroupSpec);

pub fn address(athena: &Athena, region: &str) -> Address {
    Address { kind: KIND, name: athena.workgroup.clone(), region: region.into() }
}

/// The audit bucket, which holds the workgroup's results and the table's logs.
pub fn audit_bucket(profile: &Profile) -> Address {
    Address { kind: bucket::KIND, name: profile.bucket.name.clone(), region: profile.runtime.region.clone() }
}

/// Where the workgroup writes query results: a prefix of the audit bucket, so the bucket's
/// encryption, policy and lifecycle cover them.
pub fn output_location(profile: &Profile, athena: &Athena) -> String {
    format!("s3://{}/{}/", profile.bucket.name, athena.results_prefix)
}

pub struct AthenaWorkGroup {
    name: String,
    arn: String,
    region: String,
    /// The bucket's managed key (`kms_key = "trail"`), whose ARN `resolve` fills in.
    key: Option<Address>,
}

impl AthenaWorkGroup {
    pub fn new(profile: &Profile, athena: &Athena) -> Declared<Self> {
        // Results are encrypted as the bucket encrypts what it holds: with its KMS key, if any.
        let (encryption, kms_key) = match profile.bucket.encryption {
            Encryption::Aes256 => (EncryptionOption::SseS3, None),
            Encryption::Kms => (EncryptionOption::SseKms, profile.bucket.kms_key_arn.clone()),
        };
        let want = WorkGroupSpec {
            state: Some(WorkGroupState::Enabled.as_str().into()),
            output_location: Some(output_location(profile, athena)),
            encryption: Some(encryption.as_str().into()),
            kms_key,
            bytes_scanned_cutoff_per_query: Some(i64::try_from(athena.scan_limit).unwrap_or(i64::MAX)),
            enforce_work_group_configuration: Some(true),
            publish_cloud_watch_metrics_enabled: Some(true),
            tags: tags::owner_tags(profile),
        };
        let runtime = &profile.runtime;
        let arn = format!(
            "arn:{}:athena:{}:{}:workgroup/{}",
            runtime.partition, runtime.region, runtime.account_id, athena.workgroup
        );
        let key = match (&profile.trail.kms, profile.bucket.trail_key) {
            (Some(Kms::Managed { alias, .. }), true) => Some(kms_key::address(alias, &runtime.region)),
            _ => None,
        };
        let depends = [audit_bucket(profile)].into_iter().chain(key.clone()).collect();
        let kind = AthenaWorkGroup { name: athena.workgroup.clone(), arn, region: runtime.region.clone(), key };
        Declared::new(kind, address(athena, &runtime.region), want, depends)
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} Athena workgroup {}/{}", self.region, self.name)
    }
}

/// The workgroup as the spec states it (flatten); tags come apart.
fn flatten(wg: &WorkGroup, tags: Tags) -> WorkGroupSpec {
    let config = wg.configuration();
    let result = config.and_then(|c| c.result_configuration());
    let encryption = result.and_then(|r| r.encryption_configuration());
    WorkGroupSpec {
        state: wg.state().map(|s| s.as_str().to_string()),
        output_location: result.and_then(|r| r.output_location()).map(str::to_string),
        encryption: encryption.map(|e| e.encryption_option().as_str().to_string()),
        kms_key: encryption.and_then(|e| e.kms_key()).map(str::to_string),
        bytes_scanned_cutoff_per_query: config.and_then(|c| c.bytes_scanned_cutoff_per_query()),
        enforce_work_group_configuration: config.and_then(|c| c.enforce_work_group_configuration()),
        publish_cloud_watch_metrics_enabled: config.and_then(|c| c.publish_cloud_watch_metrics_enabled()),
        tags,
    }
}

fn expand_encryption(spec: &WorkGroupSpec) -> anyhow::Result<Option<EncryptionConfiguration>> {
    let Some(option) = &spec.encryption else { return Ok(None) };
    let config = EncryptionConfiguration::builder()
        .encryption_option(EncryptionOption::from(option.as_str()))
        .set_kms_key(spec.kms_key.clone())
        .build()?;
    Ok(Some(config))
}

/// The configuration CreateWorkGroup takes (expand).
fn expand(spec: &WorkGroupSpec) -> anyhow::Result<WorkGroupConfiguration> {
    let result = ResultConfiguration::builder()
        .set_output_location(spec.output_location.clone())
        .set_encryption_configuration(expand_encryption(spec)?)
        .build();
    Ok(WorkGroupConfiguration::builder()
        .result_configuration(result)
        .set_bytes_scanned_cutoff_per_query(spec.bytes_scanned_cutoff_per_query)
        .set_enforce_work_group_configuration(spec.enforce_work_group_configuration)
        .set_publish_cloud_watch_metrics_enabled(spec.publish_cloud_watch_metrics_enabled)
        .build())
}

/// The ConfigurationUpdates UpdateWorkGroup takes: only what differs, or `None`.
fn expand_updates(delta: &Delta<'_, WorkGroupSpec>) -> anyhow::Result<Option<WorkGroupConfigurationUpdates>> {
    let want = delta.want;
    let mut any = false;
    let mut updates = WorkGroupConfigurationUpdates::builder();
    let mut results = ResultConfigurationUpdates::builder();
    if delta.changed(|s| &s.output_location) {
        any = true;
        results = match &want.output_location {
            Some(location) => results.output_location(location),
            None => results.remove_output_location(true),
        };
    }
    if delta.differs(|s| (s.encryption.clone(), s.kms_key.clone())) {
        any = true;
        results = match expand_encryption(want)? {
            Some(config) => results.encryption_configuration(config),
            None => results.remove_encryption_configuration(true),
        };
    }
    if delta.changed(|s| &s.bytes_scanned_cutoff_per_query) {
        any = true;
        updates = match want.bytes_scanned_cutoff_per_query {
            Some(limit) => updates.bytes_scanned_cutoff_per_query(limit),
            None => updates.remove_bytes_scanned_cutoff_per_query(true),
        };
    }
    if delta.changed(|s| &s.enforce_work_group_configuration) {
        any = true;
        updates = updates.set_enforce_work_group_configuration(want.enforce_work_group_configuration);
    }
    if delta.changed(|s| &s.publish_cloud_watch_metrics_enabled) {
        any = true;
        updates = updates.set_publish_cloud_watch_metrics_enabled(want.publish_cloud_watch_metrics_enabled);
    }
    Ok(any.then(|| updates.result_configuration_updates(results.build()).build()))
}

#[async_trait]
impl Kind for AthenaWorkGroup {
    type Spec = WorkGroupSpec;

    fn resolve(&self, mut want: WorkGroupSpec, outputs: &Outputs) -> WorkGroupSpec {
        if let Some(key) = &self.key {
            want.kms_key = outputs.get(key).map_or(Some(UNKNOWN.to_string()), |e| e.arn.clone());
        }
        want
    }

    async fn read(&self, aws: &Aws, _: Option<&WorkGroupSpec>) -> anyhow::Result<Option<Found<WorkGroupSpec>>> {
        let got = aws.athena.get_work_group().work_group(&self.name).send().await.found(|| self.what("reading"))?;
        let Some(wg) = got.and_then(|g| g.work_group) else { return Ok(None) };
        let req = aws.athena.list_tags_for_resource().resource_arn(&self.arn);
        let listed = req.send().await.found(|| self.what("reading tags of"))?;
        let listed = listed.iter().flat_map(|t| t.tags()).filter_map(|t| Some((t.key()?, t.value()?)));
        let spec = flatten(&wg, tags::managed(listed));
        let mut found = Found::new(spec);
        found.exports.arn = Some(self.arn.clone());
        Ok(Some(found))
    }

    async fn create(&self, aws: &Aws, want: &WorkGroupSpec) -> anyhow::Result<()> {
        let req = aws
            .athena
            .create_work_group()
            .name(&self.name)
            .description("ctguard hunt: the profile's detections over the audit bucket")
            .configuration(expand(want)?)
            .set_tags(Some(tags::sdk::<Tag>(&want.tags)?));
        match req.send().await.ctx(|| self.what("creating")) {
            Ok(_) => Ok(()),
            // CreateWorkGroup models no "already exists": a name taken (by an earlier,
            // interrupted run) is an invalid request. If the workgroup is there, converge it.
            Err(e) if kind(&e) == ErrorKind::Other && self.read(aws, None).await?.is_some() => {
                self.update(aws, &Delta::all(want)).await
            }
            Err(e) => Err(e),
        }
    }

    async fn update(&self, aws: &Aws, delta: &Delta<'_, WorkGroupSpec>) -> anyhow::Result<()> {
        let updates = expand_updates(delta)?;
        let state = delta.changed(|s| &s.state).then(|| delta.want.state.as_deref().map(WorkGroupState::from));
        if updates.is_some() || state.is_some() {
            let req = aws
                .athena
                .update_work_group()
                .work_group(&self.name)
                .set_configuration_updates(updates)
                .set_state(state.flatten());
            req.send().await.ctx(|| self.what("updating"))?;
        }
        if delta.changed(|s| &s.tags) {
            let req = aws.athena.tag_resource().resource_arn(&self.arn).set_tags(Some(tags::sdk(&delta.want.tags)?));
            req.send().await.ctx(|| self.what("tagging"))?;
        }
        Ok(())
    }

    /// Deletes the workgroup and its saved queries, never the results it wrote: those are in
    /// the audit bucket.
    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        let req = aws.athena.delete_work_group().work_group(&self.name).recursive_delete_option(true);
        match req.send().await.ctx(|| self.what("deleting")) {
            Ok(_) => Ok(()),
            Err(_) if self.read(aws, None).await?.is_none() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{aws, flagship, mock};
    use aws_sdk_athena::types::error::InvalidRequestException;
    use aws_sdk_athena::{Client, operation as athena};

    fn declared() -> (Profile, Declared<AthenaWorkGroup>) {
        let p = flagship();
        let wg = AthenaWorkGroup::new(&p, p.athena.as_ref().expect("the shipped profile declares [athena]"));
        (p, wg)
    }

    fn live(spec: &WorkGroupSpec) -> WorkGroup {
        WorkGroup::builder()
            .name("ctguard")
            .set_state(spec.state.as_deref().map(WorkGroupState::from))
            .configuration(expand(spec).unwrap())
            .build()
            .unwrap()
    }

    #[test]
    fn the_desired_workgroup_writes_results_encrypted_under_the_audit_bucket_and_enforces_a_limit() {
        let (p, wg) = declared();
        let want = wg.want.unwrap();
        assert_eq!(want.output_location.as_deref(), Some("s3://ctguard-audit-123456789012-us-east-1/athena-results/"));
        // The bucket encrypts with the trail's key: so do the results, once its ARN is known.
        assert_eq!(want.encryption.as_deref(), Some("SSE_KMS"));
        let key = kms_key::address("alias/ctguard-audit", "us-east-1");
        let outputs = Outputs::from([(key.clone(), super::super::kind::Exports { arn: Some("arn:k".into()) })]);
        assert_eq!(wg.kind.resolve(want.clone(), &outputs).kms_key.as_deref(), Some("arn:k"));
        assert_eq!(want.bytes_scanned_cutoff_per_query, Some(p.athena.as_ref().unwrap().scan_limit as i64));
        assert_eq!(want.enforce_work_group_configuration, Some(true));
        assert_eq!(want.publish_cloud_watch_metrics_enabled, Some(true));
        assert_eq!(wg.depends, vec![audit_bucket(&p), key]);
    }

    #[test]
    fn a_kms_bucket_gives_kms_encrypted_results_with_its_key() {
        let mut p = flagship();
        p.bucket.encryption = Encryption::Kms;
        p.bucket.kms_key_arn = Some("arn:aws:kms:us-east-1:123456789012:key/k".into());
        p.bucket.trail_key = false;
        let want = AthenaWorkGroup::new(&p, p.athena.as_ref().unwrap()).want.unwrap();
        assert_eq!(want.encryption.as_deref(), Some("SSE_KMS"));
        assert_eq!(want.kms_key.as_deref(), Some("arn:aws:kms:us-east-1:123456789012:key/k"));
    }

    #[tokio::test]
    async fn a_converged_workgroup_reads_back_as_declared() {
        let (_, wg) = declared();
        let want = wg.want.clone().unwrap();
        let spec = want.clone();
        let get = mock!(Client::get_work_group)
            .match_requests(|r| r.work_group() == Some("ctguard"))
            .then_output(move || athena::get_work_group::GetWorkGroupOutput::builder().work_group(live(&spec)).build());
        let tags = mock!(Client::list_tags_for_resource)
            .match_requests(|r| r.resource_arn() == Some("arn:aws:athena:us-east-1:123456789012:workgroup/ctguard"))
            .then_output(|| {
                let owner = Tag::builder().key("ctguard:profile").value("ai-agent-guard").build();
                let other = Tag::builder().key("team").value("security").build();
                athena::list_tags_for_resource::ListTagsForResourceOutput::builder().tags(owner).tags(other).build()
            });
        let found = wg.kind.read(&aws(&[&get, &tags]), None).await.unwrap().unwrap();
        assert_eq!(found.spec, want);
    }

    #[tokio::test]
    async fn a_missing_workgroup_reads_as_absent() {
        let (_, wg) = declared();
        let get = mock!(Client::get_work_group).then_error(|| {
            athena::get_work_group::GetWorkGroupError::InvalidRequestException(
                InvalidRequestException::builder().build(),
            )
        });
        assert!(wg.kind.read(&aws(&[&get]), None).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn drift_updates_only_what_differs() {
        let (_, wg) = declared();
        let want = wg.want.clone().unwrap();
        let have = WorkGroupSpec {
            bytes_scanned_cutoff_per_query: None,
            enforce_work_group_configuration: Some(false),
            ..want.clone()
        };
        let update = mock!(Client::update_work_group)
            .match_requests(|r| {
                let u = r.configuration_updates().unwrap();
                u.bytes_scanned_cutoff_per_query() == Some(100_000_000_000)
                    && u.enforce_work_group_configuration() == Some(true)
                    && u.publish_cloud_watch_metrics_enabled().is_none()
                    && u.result_configuration_updates()
                        .is_some_and(|r| r.output_location().is_none() && r.encryption_configuration().is_none())
                    && r.state().is_none()
            })
            .then_output(|| athena::update_work_group::UpdateWorkGroupOutput::builder().build());
        // No rule for TagResource: the tags are as declared, so tagging would panic.
        wg.kind.update(&aws(&[&update]), &Delta::between(&want, Some(&have))).await.unwrap();
        assert_eq!(update.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_workgroup_left_by_an_interrupted_run_is_converged() {
        let (_, wg) = declared();
        let want = wg.want.clone().unwrap();
        let create = mock!(Client::create_work_group).then_error(|| {
            athena::create_work_group::CreateWorkGroupError::InvalidRequestException(
                InvalidRequestException::builder().message("WorkGroup is already created").build(),
            )
        });
        let get = mock!(Client::get_work_group).then_output(|| {
            let bare = WorkGroup::builder().name("ctguard").state(WorkGroupState::Enabled).build().unwrap();
            athena::get_work_group::GetWorkGroupOutput::builder().work_group(bare).build()
        });
        let tags = mock!(Client::list_tags_for_resource)
            .then_output(|| athena::list_tags_for_resource::ListTagsForResourceOutput::builder().build());
        let update = mock!(Client::update_work_group)
            .match_requests(|r| r.configuration_updates().and_then(|u| u.bytes_scanned_cutoff_per_query()).is_some())
            .then_output(|| athena::update_work_group::UpdateWorkGroupOutput::builder().build());
        let tag =
            mock!(Client::tag_resource).then_output(|| athena::tag_resource::TagResourceOutput::builder().build());
        wg.kind.create(&aws(&[&create, &get, &tags, &update, &tag]), &want).await.unwrap();
        assert_eq!((update.num_calls(), tag.num_calls()), (1, 1));
    }
}
