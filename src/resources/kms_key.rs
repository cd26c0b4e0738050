//! Customer-managed KMS keys, found by alias: the one that encrypts the trail's log files, and
//! the one that encrypts the alert topic. Rotation stays on; the policy comes from the profile.
//! The key policy is shared: ctguard owns only its statements (see `policy::ownership`), and
//! never writes a policy that would take kms:PutKeyPolicy from the account.
//! ctguard never schedules a key that carries its alias for deletion: that would make every log
//! it encrypted unreadable. Only a spare made by a race, which never had the alias, is retired.

use anyhow::Context;
use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_sdk_kms::types::{KeyState, Tag};
use serde::Serialize;
use serde_json::Value;

use super::foreign;
use super::kind::{Declared, Delta, Exports, Found, Kind};
use super::tags::{self, OWNER_TAG, SdkTag, Tags};
use crate::aws::error::kind;
use crate::aws::{Aws, AwsResultExt, ErrorKind, MAX_ATTEMPTS};
use crate::plan::Address;
use crate::policy::ownership::{self, Rules};
use crate::profile::Profile;

pub const KIND: &str = "kms_key";

/// Records, on the key itself, the alias ctguard is about to give it.
pub const ALIAS_TAG: &str = "ctguard:alias";

pub fn address(alias: &str, region: &str) -> Address {
    Address { kind: KIND, name: alias.to_string(), region: region.into() }
}

/// A customer-managed key as ctguard compares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeySpec {
    /// ctguard's statements, canonical (see `policy::ownership::view`); `None` when KMS
    /// returns no policy.
    pub policy: Option<Value>,
    pub key_rotation_enabled: bool,
    pub key_state: Option<String>,
    pub description: String,
    pub tags: Tags,
}

crate::tagged_spec!(KeySpec);

pub struct KmsKey {
    alias: String,
    region: String,
    rules: Rules,
}

impl KmsKey {
    pub fn new(profile: &Profile, alias: &str, key_policy: &Value, purpose: &str) -> Declared<Self> {
        let want = KeySpec {
            policy: Some(ownership::view(key_policy, false)),
            key_rotation_enabled: true,
            key_state: Some(KeyState::Enabled.as_str().to_string()),
            description: format!("ctguard: {purpose} (profile {})", profile.name),
            tags: tags::owner_tags(profile),
        };
        let region = profile.runtime.region.clone();
        let rules = Rules::kms_key(&profile.runtime.partition, &profile.runtime.account_id);
        let kind = KmsKey { alias: alias.to_string(), region: region.clone(), rules };
        Declared::new(kind, address(alias, &region), want, Vec::new())
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} KMS key {}/{}", self.region, self.alias)
    }

    /// A key ctguard created for this alias that never got it. Only called on the create
    /// path, so listing the account's keys is a one-off cost.
    async fn unnamed(&self, aws: &Aws) -> anyhow::Result<Option<String>> {
        let mut pages = aws.kms.list_keys().into_paginator().send();
        while let Some(page) = pages.next().await {
            for key in page.ctx(|| "listing KMS keys".into())?.keys() {
                let Some(id) = key.key_id() else { continue };
                let tags = aws
                    .kms
                    .list_resource_tags()
                    .key_id(id)
                    .send()
                    .await
                    .ctx(|| format!("reading tags of KMS key {id}"));
                // Keys of other accounts' grants or AWS-managed keys may not be readable. Any
                // other failure must not be read as "no key": it would lead to a second key.
                let tags = match tags {
                    Ok(tags) => tags,
                    Err(e) if matches!(kind(&e), ErrorKind::AccessDenied | ErrorKind::NotFound) => continue,
                    Err(e) => return Err(e),
                };
                if tags.tags().iter().any(|t| t.tag_key() == ALIAS_TAG && t.tag_value() == self.alias) {
                    return Ok(Some(id.to_string()));
                }
            }
        }
        Ok(None)
    }

    /// Gives key `id` the alias. When the alias already exists, a retried CreateAlias or a
    /// concurrent apply named a key first: if that is `id`, done; if it is another key, `id`
    /// is a spare nobody uses, and it is untagged and scheduled for deletion so the account
    /// keeps one key for the alias. Nothing was ever encrypted with it, so nothing is lost.
    async fn name_key(&self, aws: &Aws, id: &str) -> anyhow::Result<()> {
        let named = aws.kms.create_alias().alias_name(&self.alias).target_key_id(id).send().await;
        let Err(e) = named.ctx(|| self.what("naming")) else { return Ok(()) };
        if kind(&e) != ErrorKind::AlreadyExists {
            return Err(e);
        }
        let (target, _) = self.id(aws).await?;
        if target != id {
            aws.kms
                .untag_resource()
                .key_id(id)
                .tag_keys(ALIAS_TAG)
                .send()
                .await
                .ctx(|| self.what("untagging a spare"))?;
            aws.kms
                .schedule_key_deletion()
                .key_id(id)
                .pending_window_in_days(7)
                .send()
                .await
                .ctx(|| self.what("retiring a spare"))?;
        }
        Ok(())
    }

    /// The key the alias names, for the calls that take a key id.
    async fn id(&self, aws: &Aws) -> anyhow::Result<(String, Option<KeyState>)> {
        let found = aws.kms.describe_key().key_id(&self.alias).send().await.ctx(|| self.what("reading"))?;
        let meta = found.key_metadata().context("DescribeKey returned no key metadata")?;
        Ok((meta.key_id().to_string(), meta.key_state().cloned()))
    }

    /// The policy PutKeyPolicy sends: ctguard's statements merged into the key's policy as it
    /// is now.
    async fn policy_to_write(&self, aws: &Aws, id: &str, want: &Value) -> anyhow::Result<String> {
        let (live, tags) = tokio::try_join!(
            async {
                let req = aws.kms.get_key_policy().key_id(id).policy_name("default");
                req.send().await.ctx(|| self.what("reading the policy of"))
            },
            async { aws.kms.list_resource_tags().key_id(id).send().await.ctx(|| self.what("reading tags of")) },
        )?;
        let owned = tags.tags().iter().any(|t| t.tag_key() == OWNER_TAG);
        ownership::to_write(live.policy(), want, owned, &self.rules, &self.what("the"))
    }

    async fn enable_rotation(&self, aws: &Aws, id: &str) -> anyhow::Result<()> {
        aws.kms.enable_key_rotation().key_id(id).send().await.ctx(|| self.what("enabling rotation of"))?;
        Ok(())
    }
}

#[async_trait]
impl Kind for KmsKey {
    type Spec = KeySpec;

    fn destructive(want: Option<&KeySpec>, have: &KeySpec, _empty: bool) -> Vec<String> {
        match want {
            None => vec!["schedules the key for deletion: every log encrypted with it becomes unreadable".into()],
            Some(want) => super::loss::removed_denies("key policy", want.policy.as_ref(), have.policy.as_ref()),
        }
    }

    async fn read(&self, aws: &Aws, want: Option<&KeySpec>) -> anyhow::Result<Option<Found<KeySpec>>> {
        let kms = &aws.kms;
        let want_policy = want.and_then(|w| w.policy.as_ref());
        let Some(found) = kms.describe_key().key_id(&self.alias).send().await.found(|| self.what("reading"))? else {
            // A template that would lock the account out of a new key fails before any change.
            if let Some(want) = want_policy {
                ownership::to_write(None, want, false, &self.rules, &self.what("the"))?;
            }
            return Ok(None);
        };
        let meta = found.key_metadata().context("DescribeKey returned no key metadata")?;
        let id = meta.key_id();
        let (key_policy, rotation, tags) = tokio::try_join!(
            async {
                kms.get_key_policy()
                    .key_id(id)
                    .policy_name("default")
                    .send()
                    .await
                    .ctx(|| self.what("reading the policy of"))
            },
            async { kms.get_key_rotation_status().key_id(id).send().await.ctx(|| self.what("reading rotation of")) },
            async { kms.list_resource_tags().key_id(id).send().await.ctx(|| self.what("reading tags of")) },
        )?;
        let owned = tags.tags().iter().any(|t| t.tag_key() == OWNER_TAG);
        let text = key_policy.policy();
        let policy = ownership::live_view(text, owned).with_context(|| self.what("parsing the policy of"))?;
        if let Some(want) = want_policy
            && policy.as_ref() != Some(want)
        {
            ownership::to_write(text, want, owned, &self.rules, &self.what("the"))?;
        }
        let mut checks = Vec::new();
        if let Some(text) = text {
            let doc = crate::policy::parse_raw(text)?;
            checks.extend(foreign::statements(&doc, owned, "key policy", &[]));
        }
        let spec = KeySpec {
            policy,
            key_rotation_enabled: rotation.key_rotation_enabled(),
            key_state: meta.key_state().map(|s| s.as_str().to_string()),
            description: meta.description().unwrap_or("").to_string(),
            tags: tags::managed(tags.tags().iter().map(|t| (t.tag_key(), t.tag_value()))),
        };
        let exports = Exports { arn: meta.arn().map(str::to_string) };
        Ok(Some(Found { exports, checks, ..Found::new(spec) }))
    }

    async fn create(&self, aws: &Aws, want: &KeySpec) -> anyhow::Result<()> {
        let mut tags: Vec<Tag> = tags::sdk(&want.tags)?;
        tags.push(Tag::build(ALIAS_TAG, &self.alias)?);
        let policy = want.policy.as_ref().context("internal error: a key is declared without a policy")?;
        // Never with BypassPolicyLockoutSafetyCheck: KMS's check stays on.
        let doc = ownership::to_write(None, policy, false, &self.rules, &self.what("the"))?;
        // CreateKey is not idempotent: an attempt whose response was lost has made a key all
        // the same, and the SDK's retry would make a second one. So CreateKey runs without
        // the SDK's retries, and every try starts by looking for a key tagged for this alias:
        // one left by a lost response, or by a run interrupted before CreateAlias.
        let mut delay = std::time::Duration::from_millis(500);
        let mut tries = 0;
        let (id, fresh) = loop {
            tries += 1;
            if let Some(id) = self.unnamed(aws).await? {
                break (id, false);
            }
            let created = aws
                .kms
                .create_key()
                .policy(&doc)
                .description(&want.description)
                .set_tags(Some(tags.clone()))
                .customize()
                .config_override(aws_sdk_kms::config::Builder::default().retry_config(RetryConfig::disabled()))
                .send()
                .await
                .ctx(|| self.what("creating"));
            match created {
                Ok(out) => {
                    let id = out.key_metadata().map(|m| m.key_id().to_string());
                    break (id.context("CreateKey returned no key id")?, true);
                }
                Err(e) if tries < MAX_ATTEMPTS && matches!(kind(&e), ErrorKind::Transient | ErrorKind::Throttled) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(e),
            }
        };
        self.name_key(aws, &id).await?;
        // A fresh key has everything but rotation; an adopted one may lack anything.
        match fresh {
            true => self.enable_rotation(aws, &id).await,
            false => self.update(aws, &Delta::all(want)).await,
        }
    }

    async fn update(&self, aws: &Aws, delta: &Delta<'_, KeySpec>) -> anyhow::Result<()> {
        let kms = &aws.kms;
        let want = delta.want;
        // Tags are merged, so the alias record (ALIAS_TAG) set at creation stays.
        let (id, state) = self.id(aws).await?;
        let id = id.as_str();
        if delta.changed(|k| &k.key_state) {
            if state == Some(KeyState::PendingDeletion) {
                kms.cancel_key_deletion().key_id(id).send().await.ctx(|| self.what("cancelling deletion of"))?;
            }
            kms.enable_key().key_id(id).send().await.ctx(|| self.what("enabling"))?;
        }
        if delta.changed(|k| &k.policy)
            && let Some(policy) = &want.policy
        {
            let doc = self.policy_to_write(aws, id, policy).await?;
            kms.put_key_policy()
                .key_id(id)
                .policy_name("default")
                .policy(doc)
                .send()
                .await
                .ctx(|| self.what("setting the policy of"))?;
        }
        if delta.changed(|k| &k.key_rotation_enabled) {
            self.enable_rotation(aws, id).await?;
        }
        if delta.changed(|k| &k.description) {
            kms.update_key_description()
                .key_id(id)
                .description(&want.description)
                .send()
                .await
                .ctx(|| self.what("describing"))?;
        }
        if delta.changed(|k| &k.tags) {
            let tags = tags::sdk(&want.tags)?;
            kms.tag_resource().key_id(id).set_tags(Some(tags)).send().await.ctx(|| self.what("tagging"))?;
        }
        Ok(())
    }

    async fn delete(&self, _: &Aws) -> anyhow::Result<()> {
        anyhow::bail!("refusing to delete {}: logs encrypted with it would become unreadable", self.what("the"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{aws, flagship, mock};
    use aws_sdk_kms::{Client, operation as kms, types::KeyMetadata};

    fn key(p: &Profile) -> Declared<KmsKey> {
        let Some(Kms::Managed { alias, policy }) = &p.trail.kms else { panic!("the flagship trail has a managed key") };
        KmsKey::new(p, alias, policy, "encrypts CloudTrail logs")
    }
    use crate::profile::Kms;

    fn metadata(id: &str) -> KeyMetadata {
        KeyMetadata::builder()
            .key_id(id)
            .arn(format!("arn:aws:kms:us-east-1:123456789012:key/{id}"))
            .key_state(KeyState::Enabled)
            .description("ctguard: encrypts CloudTrail logs (profile ai-agent-guard)")
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn a_fresh_key_is_tagged_for_its_alias_named_and_rotated() {
        let p = flagship();
        let k = key(&p);
        let want = k.want.clone().unwrap();
        let none = mock!(Client::list_keys).then_output(|| kms::list_keys::ListKeysOutput::builder().build());
        let create = mock!(Client::create_key)
            .match_requests(|r| r.tags().iter().any(|t| t.tag_key() == ALIAS_TAG) && r.policy().is_some())
            .then_output(|| kms::create_key::CreateKeyOutput::builder().key_metadata(metadata("k-1")).build());
        let alias = mock!(Client::create_alias)
            .match_requests(|r| r.target_key_id() == Some("k-1"))
            .then_output(|| kms::create_alias::CreateAliasOutput::builder().build());
        let rotate = mock!(Client::enable_key_rotation)
            .then_output(|| kms::enable_key_rotation::EnableKeyRotationOutput::builder().build());
        let aws = aws(&[&none, &create, &alias, &rotate]);
        k.kind.create(&aws, &want).await.unwrap();
        assert_eq!([create.num_calls(), alias.num_calls(), rotate.num_calls()], [1; 3]);
    }

    #[tokio::test]
    async fn a_spare_key_that_lost_the_alias_race_is_retired() {
        let p = flagship();
        let k = key(&p);
        let taken = mock!(Client::create_alias).then_error(|| {
            kms::create_alias::CreateAliasError::AlreadyExistsException(
                aws_sdk_kms::types::error::AlreadyExistsException::builder().build(),
            )
        });
        let winner = mock!(Client::describe_key)
            .then_output(|| kms::describe_key::DescribeKeyOutput::builder().key_metadata(metadata("k-1")).build());
        let untag = mock!(Client::untag_resource)
            .match_requests(|r| r.key_id() == Some("k-2"))
            .then_output(|| kms::untag_resource::UntagResourceOutput::builder().build());
        let retire = mock!(Client::schedule_key_deletion)
            .match_requests(|r| r.key_id() == Some("k-2") && r.pending_window_in_days() == Some(7))
            .then_output(|| kms::schedule_key_deletion::ScheduleKeyDeletionOutput::builder().build());
        let aws = aws(&[&taken, &winner, &untag, &retire]);
        k.kind.name_key(&aws, "k-2").await.unwrap();
        assert_eq!((untag.num_calls(), retire.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn reads_policy_rotation_state_and_exports_the_arn() {
        let p = flagship();
        let k = key(&p);
        let want = k.want.clone().unwrap();
        let policy = serde_json::to_string(&want.policy).unwrap();
        let describe = mock!(Client::describe_key)
            .then_output(|| kms::describe_key::DescribeKeyOutput::builder().key_metadata(metadata("k-1")).build());
        let got_policy = mock!(Client::get_key_policy)
            .then_output(move || kms::get_key_policy::GetKeyPolicyOutput::builder().policy(&policy).build());
        let rotation = mock!(Client::get_key_rotation_status).then_output(|| {
            kms::get_key_rotation_status::GetKeyRotationStatusOutput::builder().key_rotation_enabled(false).build()
        });
        let tags = mock!(Client::list_resource_tags).then_output(|| {
            let owner = Tag::builder().tag_key("ctguard:profile").tag_value("ai-agent-guard").build().unwrap();
            let alias = Tag::builder().tag_key(ALIAS_TAG).tag_value("alias/ctguard-audit").build().unwrap();
            kms::list_resource_tags::ListResourceTagsOutput::builder().tags(owner).tags(alias).build()
        });
        let aws = aws(&[&describe, &got_policy, &rotation, &tags]);
        let found = k.kind.read(&aws, Some(&want)).await.unwrap().unwrap();
        assert_eq!(found.spec, KeySpec { key_rotation_enabled: false, ..want });
        assert_eq!(found.exports.arn.as_deref(), Some("arn:aws:kms:us-east-1:123456789012:key/k-1"));
    }
}
