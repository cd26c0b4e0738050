//! IAM roles that AWS services assume on ctguard's behalf: CloudTrail writing to CloudWatch
//! Logs, and EventBridge forwarding matches between regions. Each has a trust policy scoped to
//! its source and one inline policy. ctguard owns its statements of the trust policy (see
//! `policy::ownership`) and its inline policies (named `INLINE_PREFIX`...); other inline
//! policies stay, and a managed policy someone attached is a failing check, never detached.

use std::collections::BTreeMap;

use anyhow::Context;
use async_trait::async_trait;
use futures::future::try_join_all;
use serde::Serialize;
use serde_json::Value;

use super::foreign;
use super::kind::{Check, Declared, Delta, Found, Kind, Resource, field_names};
use super::tags::{self, OWNER_TAG, Tags};
use crate::aws::error::created;
use crate::aws::{Aws, AwsResultExt};
use crate::plan::Address;
use crate::policy::{self, ownership, ownership::Rules};
use crate::profile::central_bus::CentralRole;
use crate::profile::{CloudWatchLogs, Events, Profile};

pub const KIND: &str = "iam_role";
const INLINE_POLICY: &str = "ctguard-cloudtrail-to-logs";
/// The forwarding role's inline policy admitting the central bus.
const CENTRAL_INLINE_POLICY: &str = "ctguard-forward-to-central";
/// Inline policies whose name starts with this are ctguard's; every shipped one does.
const INLINE_PREFIX: &str = "ctguard-";

pub fn address(name: &str, _region: &str) -> Address {
    // IAM is global; the address still carries a region so every address has the same shape.
    Address { kind: KIND, name: name.to_string(), region: "global".into() }
}

/// A role as ctguard compares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleSpec {
    #[serde(flatten)]
    pub identity: RoleIdentity,
    pub description: String,
    /// ctguard's statements of the trust policy, canonical (see `policy::ownership::view`).
    pub assume_role_policy: Option<Value>,
    /// ctguard's inline policies by name, canonical.
    pub inline_policies: BTreeMap<String, Value>,
    pub tags: Tags,
}

crate::tagged_spec!(RoleSpec);

/// What cannot change in place: a role with another path is another role.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleIdentity {
    pub path: String,
}

pub struct Role {
    name: String,
}

impl Role {
    pub fn cloudtrail_logs(profile: &Profile, cw: &CloudWatchLogs) -> Declared<Self> {
        let description = "ctguard: lets CloudTrail deliver events to CloudWatch Logs";
        let inline = (INLINE_POLICY, &cw.role_policy);
        Role::new(profile, &cw.role_name, &cw.role_path, description, &cw.trust_policy, inline)
    }

    /// In an account that forwards to a central bus it does not own, the role may also put
    /// events on that bus, through an inline policy of its own.
    pub fn events_forwarder(profile: &Profile, e: &Events) -> Declared<Self> {
        let description = "ctguard: lets EventBridge forward matches to the home region's event bus";
        let inline = ("ctguard-forward-events", &e.role_policy);
        let mut role = Role::new(profile, &e.role_name, &e.role_path, description, &e.trust_policy, inline);
        if let Some(CentralRole::Member { forwarder_policy }) = e.central.as_ref().map(|b| &b.role)
            && let Some(want) = role.want.as_mut()
        {
            want.inline_policies.insert(CENTRAL_INLINE_POLICY.to_string(), policy::canonical(forwarder_policy));
        }
        role
    }

    fn new(
        profile: &Profile,
        name: &str,
        path: &str,
        description: &str,
        trust: &Value,
        inline: (&str, &Value),
    ) -> Declared<Self> {
        let want = RoleSpec {
            identity: RoleIdentity { path: path.to_string() },
            description: description.to_string(),
            assume_role_policy: Some(ownership::view(trust, false)),
            inline_policies: BTreeMap::from([(inline.0.to_string(), policy::canonical(inline.1))]),
            tags: tags::owner_tags(profile),
        };
        Declared::new(Role { name: name.to_string() }, address(name, ""), want, Vec::new())
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} IAM role {}", self.name)
    }
}

/// Roles under `path` tagged as owned by `profile`.
pub async fn owned(aws: &Aws, profile: &str, path: &str) -> anyhow::Result<Vec<Box<dyn Resource>>> {
    let pages = aws.iam.list_roles().path_prefix(path).into_paginator().send().collect::<Vec<_>>().await;
    let mut names = Vec::new();
    for page in pages {
        names.extend(
            page.ctx(|| format!("listing IAM roles under {path}"))?.roles().iter().map(|r| r.role_name().to_string()),
        );
    }
    // ListRoles leaves tags out; ask per role (a handful at most under ctguard's path).
    let tagged = try_join_all(names.into_iter().map(|name| async move {
        let req = aws.iam.list_role_tags().role_name(&name);
        let tags = req.send().await.ctx(|| format!("reading tags of IAM role {name}"))?;
        let mine = tags.tags().iter().any(|t| t.key() == OWNER_TAG && t.value() == profile);
        anyhow::Ok(mine.then_some(name))
    }))
    .await?;
    Ok(tagged
        .into_iter()
        .flatten()
        .map(|name| {
            Box::new(Declared::undeclared(Role { name: name.clone() }, address(&name, ""))) as Box<dyn Resource>
        })
        .collect())
}

impl Role {
    async fn inline_names(&self, aws: &Aws) -> anyhow::Result<Vec<String>> {
        let pages = aws.iam.list_role_policies().role_name(&self.name).into_paginator().send();
        let mut names = Vec::new();
        for page in pages.collect::<Vec<_>>().await {
            names.extend(page.ctx(|| self.what("listing inline policies of"))?.policy_names().to_vec());
        }
        Ok(names)
    }

    async fn attached(&self, aws: &Aws) -> anyhow::Result<Vec<String>> {
        let pages = aws.iam.list_attached_role_policies().role_name(&self.name).into_paginator().send();
        let mut arns = Vec::new();
        for page in pages.collect::<Vec<_>>().await {
            let page = page.ctx(|| self.what("listing attached policies of"))?;
            arns.extend(page.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)));
        }
        arns.sort();
        Ok(arns)
    }

    /// Puts every declared inline policy and removes any other of ctguard's.
    async fn put_inline(&self, aws: &Aws, wanted: &BTreeMap<String, Value>) -> anyhow::Result<()> {
        let iam = &aws.iam;
        for (name, doc) in wanted {
            let req = iam.put_role_policy().role_name(&self.name).policy_name(name);
            req.policy_document(serde_json::to_string(doc)?)
                .send()
                .await
                .ctx(|| self.what("setting the inline policy of"))?;
        }
        let listed = iam
            .list_role_policies()
            .role_name(&self.name)
            .send()
            .await
            .ctx(|| self.what("listing inline policies of"))?;
        let extras = listed.policy_names().iter().filter(|n| n.starts_with(INLINE_PREFIX));
        for extra in extras.filter(|n| !wanted.contains_key(n.as_str())) {
            let req = iam.delete_role_policy().role_name(&self.name).policy_name(extra);
            req.send().await.found(|| self.what("removing an extra inline policy from"))?;
        }
        Ok(())
    }

    /// Detaches every managed policy and removes every inline one: IAM deletes only a role
    /// that has none, and only a role ctguard owns is ever deleted.
    async fn empty(&self, aws: &Aws) -> anyhow::Result<()> {
        let iam = &aws.iam;
        for name in self.inline_names(aws).await? {
            let req = iam.delete_role_policy().role_name(&self.name).policy_name(&name);
            req.send().await.found(|| self.what("removing an inline policy from"))?;
        }
        self.detach_all(aws).await
    }

    async fn detach_all(&self, aws: &Aws) -> anyhow::Result<()> {
        let iam = &aws.iam;
        let req = iam.list_attached_role_policies().role_name(&self.name);
        let listed = req.send().await.ctx(|| self.what("listing attached policies of"))?;
        for p in listed.attached_policies().iter().filter_map(|p| p.policy_arn()) {
            let req = iam.detach_role_policy().role_name(&self.name).policy_arn(p);
            req.send().await.found(|| self.what("detaching a policy from"))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Kind for Role {
    type Spec = RoleSpec;

    /// A role holds no audit data; only Deny statements taken out of its documents count.
    fn destructive(want: Option<&RoleSpec>, have: &RoleSpec, _empty: bool) -> Vec<String> {
        let Some(want) = want else { return Vec::new() };
        let trust = want.assume_role_policy.as_ref();
        let mut out = super::loss::removed_denies("trust policy", trust, have.assume_role_policy.as_ref());
        for (name, doc) in &have.inline_policies {
            let what = format!("inline policy {name}");
            out.extend(super::loss::removed_denies(&what, want.inline_policies.get(name), Some(doc)));
        }
        out
    }

    fn replace_on(want: &RoleSpec) -> Vec<String> {
        field_names(&want.identity)
    }

    async fn read(&self, aws: &Aws, want: Option<&RoleSpec>) -> anyhow::Result<Option<Found<RoleSpec>>> {
        let iam = &aws.iam;
        let Some(got) = iam.get_role().role_name(&self.name).send().await.found(|| self.what("reading"))? else {
            return Ok(None);
        };
        let role = got.role().context("GetRole returned no role")?;
        let (names, attached) = tokio::try_join!(self.inline_names(aws), self.attached(aws))?;
        let (mine, theirs): (Vec<String>, Vec<String>) = names.into_iter().partition(|n| n.starts_with(INLINE_PREFIX));
        let docs = try_join_all(mine.iter().map(|name| async move {
            let req = iam.get_role_policy().role_name(&self.name).policy_name(name);
            let got = req.send().await.ctx(|| self.what("reading an inline policy of"))?;
            anyhow::Ok((name.clone(), policy::parse_live(got.policy_document())?))
        }))
        .await?;
        let owned = role.tags().iter().any(|t| t.key() == OWNER_TAG);
        let text = role.assume_role_policy_document();
        let trust = ownership::live_view(text, owned).with_context(|| self.what("parsing the trust policy of"))?;
        let spec = RoleSpec {
            identity: RoleIdentity { path: role.path().to_string() },
            description: role.description().unwrap_or("").to_string(),
            assume_role_policy: trust,
            inline_policies: docs.into_iter().collect(),
            tags: tags::managed(role.tags().iter().map(|t| (t.key(), t.value()))),
        };
        if let Some(want) = want.and_then(|w| w.assume_role_policy.as_ref())
            && spec.assume_role_policy.as_ref() != Some(want)
        {
            ownership::to_write(text, want, owned, &Rules::iam_trust(), &self.what("the"))?;
        }
        let mut found = Found::new(spec);
        if let Some(text) = text {
            let doc = policy::parse_raw(text)?;
            found.checks.extend(foreign::statements(&doc, owned, "trust policy", &[]));
        }
        found.checks.extend(attached.iter().map(|arn| Check {
            name: format!("no managed policy is attached: {arn}"),
            ok: false,
            detail: format!(
                "{arn} is attached to the role, which ctguard does not do: whatever it grants, the service that \
                 assumes the role can do; ctguard leaves it attached: detach it or waive this check"
            ),
        }));
        found.notes.extend(
            theirs.iter().map(|n| format!("inline policy {n:?} of the role was not written by ctguard: left alone")),
        );
        Ok(Some(found))
    }

    async fn create(&self, aws: &Aws, want: &RoleSpec) -> anyhow::Result<()> {
        let made = aws
            .iam
            .create_role()
            .role_name(&self.name)
            .path(&want.identity.path)
            .description(&want.description)
            .assume_role_policy_document(serde_json::to_string(&want.assume_role_policy)?)
            .set_tags(Some(tags::sdk(&want.tags)?))
            .send()
            .await
            .ctx(|| self.what("creating"));
        match created(made)? {
            true => self.put_inline(aws, &want.inline_policies).await,
            // Left behind by an interrupted run: converge every field.
            false => self.update(aws, &Delta::all(want)).await,
        }
    }

    async fn update(&self, aws: &Aws, delta: &Delta<'_, RoleSpec>) -> anyhow::Result<()> {
        let iam = &aws.iam;
        let want = delta.want;
        if delta.changed(|r| &r.assume_role_policy)
            && let Some(trust) = &want.assume_role_policy
        {
            // UpdateAssumeRolePolicy replaces the whole document: merge into it as it is now.
            let got = iam.get_role().role_name(&self.name).send().await.ctx(|| self.what("reading"))?;
            let role = got.role().context("GetRole returned no role")?;
            let owned = role.tags().iter().any(|t| t.key() == OWNER_TAG);
            let text = role.assume_role_policy_document();
            let doc = ownership::to_write(text, trust, owned, &Rules::iam_trust(), &self.what("the"))?;
            let req = iam.update_assume_role_policy().role_name(&self.name);
            req.policy_document(doc).send().await.ctx(|| self.what("setting the trust policy of"))?;
        }
        if delta.changed(|r| &r.description) {
            let req = iam.update_role().role_name(&self.name).description(&want.description);
            req.send().await.ctx(|| self.what("describing"))?;
        }
        if delta.changed(|r| &r.inline_policies) {
            self.put_inline(aws, &want.inline_policies).await?;
        }
        if delta.changed(|r| &r.tags) {
            let req = iam.tag_role().role_name(&self.name).set_tags(Some(tags::sdk(&want.tags)?));
            req.send().await.ctx(|| self.what("tagging"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        let iam = &aws.iam;
        if iam.get_role().role_name(&self.name).send().await.found(|| self.what("reading"))?.is_none() {
            return Ok(());
        }
        self.empty(aws).await?;
        iam.delete_role().role_name(&self.name).send().await.found(|| self.what("deleting"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{aws, flagship, mock};
    use aws_sdk_iam::{
        Client, operation as iam,
        types::{AttachedPolicy, Role as SdkRole},
    };

    fn role(p: &Profile) -> Declared<Role> {
        Role::cloudtrail_logs(p, p.cloudwatch_logs.as_ref().unwrap())
    }

    #[test]
    fn the_path_forces_replacement() {
        let p = flagship();
        assert_eq!(role(&p).replace_on(), ["path"]);
    }

    #[tokio::test]
    async fn other_inline_and_attached_policies_are_left_alone_and_reported() {
        let p = flagship();
        let r = role(&p);
        let want = r.want.clone().unwrap();
        let trust = serde_json::to_string(&want.assume_role_policy).unwrap();
        let mine = serde_json::to_string(&want.inline_policies[INLINE_POLICY]).unwrap();
        let get = mock!(Client::get_role).then_output(move || {
            let role = SdkRole::builder()
                .role_name("ctguard-cloudtrail-to-logs")
                .role_id("AROA1")
                .arn("arn:aws:iam::123456789012:role/ctguard/ctguard-cloudtrail-to-logs")
                .path("/ctguard/")
                .create_date(aws_smithy_types::DateTime::from_secs(0))
                .assume_role_policy_document(
                    percent_encoding::utf8_percent_encode(&trust, percent_encoding::NON_ALPHANUMERIC).to_string(),
                )
                .description("ctguard: lets CloudTrail deliver events to CloudWatch Logs")
                .tags(
                    aws_sdk_iam::types::Tag::builder().key("ctguard:profile").value("ai-agent-guard").build().unwrap(),
                )
                .build()
                .unwrap();
            iam::get_role::GetRoleOutput::builder().role(role).build()
        });
        let names = mock!(Client::list_role_policies).then_output(|| {
            iam::list_role_policies::ListRolePoliciesOutput::builder()
                .policy_names(INLINE_POLICY)
                .policy_names("sneaky")
                .build()
                .unwrap()
        });
        let doc = mock!(Client::get_role_policy).then_compute_output(move |req| {
            let text =
                if req.policy_name() == Some(INLINE_POLICY) { mine.clone() } else { r#"{"Statement":[]}"#.into() };
            iam::get_role_policy::GetRolePolicyOutput::builder()
                .role_name("ctguard-cloudtrail-to-logs")
                .policy_name(req.policy_name().unwrap())
                .policy_document(text)
                .build()
                .unwrap()
        });
        let attached = mock!(Client::list_attached_role_policies).then_output(|| {
            let p = AttachedPolicy::builder().policy_arn("arn:aws:iam::aws:policy/AdministratorAccess").build();
            iam::list_attached_role_policies::ListAttachedRolePoliciesOutput::builder().attached_policies(p).build()
        });
        let aws = aws(&[&get, &names, &doc, &attached]);
        let found = r.kind.read(&aws, Some(&want)).await.unwrap().unwrap();
        assert_eq!(found.spec.assume_role_policy, want.assume_role_policy, "URL-encoded trust decodes");
        assert_eq!(found.spec.inline_policies.keys().collect::<Vec<_>>(), [INLINE_POLICY], "sneaky is not ctguard's");
        assert!(found.notes.iter().any(|n| n.contains("\"sneaky\"")), "{:?}", found.notes);
        let check = found.checks.iter().find(|c| c.name.contains("AdministratorAccess")).expect("a check on it");
        assert!(!check.ok);
        assert_eq!(found.spec.tags, want.tags);
    }

    #[tokio::test]
    async fn a_role_left_by_an_interrupted_run_is_converged_field_by_field() {
        let p = flagship();
        let r = role(&p);
        let want = r.want.clone().unwrap();
        let exists = mock!(Client::create_role).then_error(|| {
            iam::create_role::CreateRoleError::EntityAlreadyExistsException(
                aws_sdk_iam::types::error::EntityAlreadyExistsException::builder().build(),
            )
        });
        let describe = mock!(Client::update_role).then_output(|| iam::update_role::UpdateRoleOutput::builder().build());
        let put = mock!(Client::put_role_policy)
            .match_requests(|r| r.policy_name() == Some(INLINE_POLICY))
            .then_output(|| iam::put_role_policy::PutRolePolicyOutput::builder().build());
        let names = mock!(Client::list_role_policies).then_output(|| {
            iam::list_role_policies::ListRolePoliciesOutput::builder()
                .policy_names(INLINE_POLICY)
                .policy_names("ctguard-retired")
                .policy_names("sneaky")
                .build()
                .unwrap()
        });
        // Only ctguard's retired policy goes; no managed policy is ever detached (no rule
        // answers DetachRolePolicy, so a call would fail the test).
        let remove = mock!(Client::delete_role_policy)
            .match_requests(|r| r.policy_name() == Some("ctguard-retired"))
            .then_output(|| iam::delete_role_policy::DeleteRolePolicyOutput::builder().build());
        // Someone else's trust statement is written back with ctguard's.
        let theirs = serde_json::json!({"Sid": "BreakGlass", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:role/admin"}, "Action": "sts:AssumeRole"});
        let live = serde_json::json!({"Version": "2012-10-17", "Statement": [theirs.clone()]});
        let get = mock!(Client::get_role).then_output(move || {
            let role = SdkRole::builder()
                .role_name("ctguard-cloudtrail-to-logs")
                .role_id("AROA1")
                .arn("arn:aws:iam::123456789012:role/ctguard/ctguard-cloudtrail-to-logs")
                .path("/ctguard/")
                .create_date(aws_smithy_types::DateTime::from_secs(0))
                .assume_role_policy_document(live.to_string())
                .build()
                .unwrap();
            iam::get_role::GetRoleOutput::builder().role(role).build()
        });
        let trust = mock!(Client::update_assume_role_policy)
            .match_requests(move |r| {
                let doc: Value = serde_json::from_str(r.policy_document().unwrap()).unwrap();
                doc["Statement"][0] == theirs && doc["Statement"][1]["Sid"] == "CtguardCloudTrailAssumeRole"
            })
            .then_output(|| iam::update_assume_role_policy::UpdateAssumeRolePolicyOutput::builder().build());
        let tag = mock!(Client::tag_role).then_output(|| iam::tag_role::TagRoleOutput::builder().build());
        let aws = aws(&[&exists, &get, &trust, &describe, &put, &names, &remove, &tag]);
        r.kind.create(&aws, &want).await.unwrap();
        let calls = [trust.num_calls(), describe.num_calls(), put.num_calls(), remove.num_calls()];
        assert_eq!(calls, [1; 4]);
        assert_eq!(tag.num_calls(), 1);
    }
}
