//! `ctguard destroy`: what the profile owns, deleted in reverse dependency order. Only
//! resources carrying this profile's ownership tag are deleted; a deletion each kind judges to
//! lose audit data or coverage (`Kind::destructive`: the buckets, the log group, the trail's
//! key, the trail) only when the user says so in as many words, and then what such a kept
//! resource depends on stays too.

use std::collections::HashSet;

use async_trait::async_trait;

use super::kind::{Check, Live, Outputs, Resource};
use super::{bucket, kms_key, log_group};
use crate::aws::{Aws, AwsResultExt};
use crate::engine::LiveState;
use crate::plan::{self, Action, Address, Attrs, Change, Ownership, Plan};

/// One resource as destroy sees it: what was read, what it needs, what deleting it loses.
pub struct Found<'a> {
    pub address: Address,
    pub live: Option<&'a Live>,
    pub depends: Vec<Address>,
    /// Why deleting it loses audit data or coverage; empty when nothing is lost.
    pub loss: Vec<String>,
}

/// Each resource as destroy sees it, in dependency order.
pub fn found<'a>(resources: &'a [Box<dyn Resource>], live: &'a LiveState) -> Vec<Found<'a>> {
    resources
        .iter()
        .map(|r| {
            let live = live.get(&r.address()).and_then(Option::as_ref);
            Found {
                address: r.address(),
                depends: r.depends_on().to_vec(),
                loss: live.map(|l| r.destroying(l)).unwrap_or_default(),
                live,
            }
        })
        .collect()
}

/// The destroy plan: for each resource that exists, last dependency first, a delete if this
/// profile owns it and deleting it loses nothing (or `allow_data_loss`), otherwise no change
/// with a note saying why it stays.
pub fn plan(profile: &str, found: &[Found<'_>], allow_data_loss: bool) -> Plan {
    let mut changes: Vec<Change> = Vec::new();
    // Dependencies of a resource that stays, and who needs them.
    let mut needed: Vec<(Address, Address)> = Vec::new();
    for f in found.iter().rev() {
        let Some(live) = f.live else { continue };
        let mut change = change(profile, f, live, allow_data_loss);
        if let (Action::Delete, Some((_, by))) = (change.action, needed.iter().find(|(a, _)| *a == f.address)) {
            change = keep(&f.address, format!("kept: {by} stays and needs it"));
        }
        if change.action == Action::NoOp && owned(profile, live) {
            needed.extend(f.depends.iter().map(|d| (d.clone(), f.address.clone())));
        }
        changes.push(change);
    }
    Plan { changes }
}

fn owned(profile: &str, live: &Live) -> bool {
    matches!(&live.owner, Ownership::Profile(owner) if owner == profile)
}

fn keep(address: &Address, why: String) -> Change {
    Change {
        address: address.clone(),
        action: Action::NoOp,
        diffs: vec![],
        notes: vec![why],
        conflict: None,
        destructive: vec![],
    }
}

fn change(profile: &str, f: &Found<'_>, live: &Live, allow_data_loss: bool) -> Change {
    match &live.owner {
        Ownership::Profile(owner) if owner == profile => {}
        Ownership::Profile(other) => {
            return keep(&f.address, format!("owned by ctguard profile {other:?}: left alone"));
        }
        Ownership::Unowned => return keep(&f.address, "not created by ctguard: left alone".into()),
        Ownership::Untracked => {
            return keep(
                &f.address,
                "carries no ownership tag, so ctguard cannot tell it is its own: left in place".into(),
            );
        }
    }
    if !f.loss.is_empty() && !allow_data_loss {
        return keep(&f.address, format!("kept: deleting it {}; --allow-data-loss deletes it", f.loss.join("; ")));
    }
    let mut change = plan::plan_change(f.address.clone(), None, Some(&live.attrs), &[]);
    change.destructive = f.loss.clone();
    change
}

/// The resources wrapped for deletion: each waits for those that depend on it (and are being
/// deleted) instead of those it depends on, and audit data is deleted for real.
pub fn reversed(resources: Vec<Box<dyn Resource>>, plan: &Plan) -> Vec<Box<dyn Resource>> {
    let deleting: HashSet<&Address> =
        plan.changes.iter().filter(|c| c.action == Action::Delete).map(|c| &c.address).collect();
    let dependents = |a: &Address| -> Vec<Address> {
        resources
            .iter()
            .filter(|r| deleting.contains(&r.address()) && r.depends_on().contains(a))
            .map(|r| r.address())
            .collect()
    };
    let waits: Vec<Vec<Address>> = resources.iter().map(|r| dependents(&r.address())).collect();
    resources
        .into_iter()
        .zip(waits)
        .map(|(inner, waits)| Box::new(Teardown { inner, waits }) as Box<dyn Resource>)
        .collect()
}

struct Teardown {
    inner: Box<dyn Resource>,
    /// What must be gone first: the resources being deleted that depend on this one.
    waits: Vec<Address>,
}

#[async_trait]
impl Resource for Teardown {
    fn address(&self) -> Address {
        self.inner.address()
    }

    fn depends_on(&self) -> &[Address] {
        &self.waits
    }

    fn declared(&self) -> bool {
        self.inner.declared()
    }

    fn desired(&self, _: &Outputs) -> Option<Attrs> {
        None
    }

    fn replace_on(&self) -> Vec<String> {
        Vec::new()
    }

    fn destructive(&self, have: &Live, outputs: &Outputs) -> Vec<String> {
        self.inner.destructive(have, outputs)
    }

    fn destroying(&self, have: &Live) -> Vec<String> {
        self.inner.destroying(have)
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        self.inner.read(aws).await
    }

    async fn read_back(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        self.inner.read_back(aws).await
    }

    async fn apply(&self, aws: &Aws, action: Action, have: Option<&Live>, outputs: &Outputs) -> anyhow::Result<()> {
        let address = self.inner.address();
        match (action, address.kind) {
            (Action::Delete, k) if k == bucket::KIND => delete_bucket(aws, &address.name).await,
            (Action::Delete, k) if k == log_group::KIND => delete_log_group(aws, &address.name).await,
            (Action::Delete, k) if k == kms_key::KIND => schedule_key_deletion(aws, &address.name).await,
            _ => self.inner.apply(aws, action, have, outputs).await,
        }
    }

    async fn health(&self, aws: &Aws) -> Vec<Check> {
        self.inner.health(aws).await
    }
}

/// Deletes every object version and delete marker, then the bucket: S3 deletes only an empty
/// bucket, and in a versioned bucket that means no version at all.
async fn delete_bucket(aws: &Aws, name: &str) -> anyhow::Result<()> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let what = || format!("emptying S3 bucket {name}");
    loop {
        let Some(page) = aws.s3.list_object_versions().bucket(name).max_keys(1000).send().await.found(what)? else {
            return Ok(());
        };
        let versions = page.versions().iter().map(|v| (v.key(), v.version_id()));
        let markers = page.delete_markers().iter().map(|m| (m.key(), m.version_id()));
        let ids: Vec<ObjectIdentifier> = versions
            .chain(markers)
            .filter_map(|(key, version)| {
                ObjectIdentifier::builder().key(key?).set_version_id(version.map(str::to_string)).build().ok()
            })
            .collect();
        if ids.is_empty() {
            break;
        }
        let delete = Delete::builder().set_objects(Some(ids)).quiet(true).build()?;
        aws.s3.delete_objects().bucket(name).delete(delete).send().await.ctx(what)?;
    }
    aws.s3.delete_bucket().bucket(name).send().await.found(|| format!("deleting S3 bucket {name}"))?;
    Ok(())
}

async fn delete_log_group(aws: &Aws, name: &str) -> anyhow::Result<()> {
    aws.logs.delete_log_group().log_group_name(name).send().await.found(|| format!("deleting log group {name}"))?;
    Ok(())
}

/// KMS deletes a key only after a waiting period (7 to 30 days; the shortest is asked for), in
/// which it can be cancelled. The alias goes at once, so a new apply makes a new key.
async fn schedule_key_deletion(aws: &Aws, alias: &str) -> anyhow::Result<()> {
    let what = || format!("scheduling deletion of KMS key {alias}");
    let Some(key) = aws.kms.describe_key().key_id(alias).send().await.found(what)? else { return Ok(()) };
    let Some(id) = key.key_metadata().map(|m| m.key_id().to_string()) else { return Ok(()) };
    aws.kms.delete_alias().alias_name(alias).send().await.found(what)?;
    aws.kms.schedule_key_deletion().key_id(id).pending_window_in_days(7).send().await.ctx(what)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn address(kind: &'static str, name: &str) -> Address {
        Address { kind, name: name.into(), region: "us-east-1".into() }
    }

    fn live(owner: Ownership) -> Live {
        Live::for_tests(Attrs::from([("name".to_string(), json!("x"))]), owner)
    }

    #[test]
    fn only_this_profiles_resources_are_deleted_last_dependency_first_and_data_only_when_allowed() {
        let mine = live(Ownership::Profile("guard".into()));
        let other = live(Ownership::Profile("other".into()));
        let unowned = live(Ownership::Unowned);
        let untracked = live(Ownership::Untracked);
        let found = |address, live, depends: &[Address], loss: &[&str]| Found {
            address,
            live,
            depends: depends.to_vec(),
            loss: loss.iter().map(|s| s.to_string()).collect(),
        };
        let (bucket, role) = (address(bucket::KIND, "audit"), address("iam_role", "logs"));
        let found = vec![
            found(bucket.clone(), Some(&mine), &[], &["deletes the bucket"]),
            found(address(log_group::KIND, "/ctguard"), Some(&mine), &[], &["deletes the group"]),
            found(role.clone(), Some(&mine), &[], &[]),
            found(address("cloudtrail_trail", "audit"), Some(&mine), &[bucket, role], &["stops logging"]),
            found(address("sns_topic", "gone"), None, &[], &[]),
            found(address("sns_topic", "alerts"), Some(&mine), &[], &[]),
            found(address("sns_topic", "theirs"), Some(&other), &[], &[]),
            found(address("cloudwatch_alarm", "hand-made"), Some(&unowned), &[], &[]),
            found(address("logs_metric_filter", "f"), Some(&untracked), &[], &[]),
        ];
        let kept = plan("guard", &found, false);
        let summary: Vec<(&str, Action)> = kept.changes.iter().map(|c| (c.address.name.as_str(), c.action)).collect();
        assert_eq!(
            summary,
            [
                ("f", Action::NoOp),
                ("hand-made", Action::NoOp),
                ("theirs", Action::NoOp),
                ("alerts", Action::Delete),
                ("audit", Action::NoOp),
                ("logs", Action::NoOp),
                ("/ctguard", Action::NoOp),
                ("audit", Action::NoOp),
            ]
        );
        assert_eq!(kept.changes[4].notes, ["kept: deleting it stops logging; --allow-data-loss deletes it"]);
        assert_eq!(kept.changes[5].notes, ["kept: cloudtrail_trail.audit stays and needs it"]);
        assert_eq!(kept.changes[2].notes, ["owned by ctguard profile \"other\": left alone"]);
        assert_eq!(kept.changes[3].diffs[0].after, None);

        let all = plan("guard", &found, true);
        let deleted: Vec<&str> =
            all.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.address.kind).collect();
        assert_eq!(deleted, ["sns_topic", "cloudtrail_trail", "iam_role", log_group::KIND, bucket::KIND]);
        assert_eq!(all.changes.last().unwrap().destructive, ["deletes the bucket"]);
    }
}
