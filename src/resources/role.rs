//! IAM roles that AWS services assume on ctguard's behalf: CloudTrail writing to CloudWatch
//! Logs, and EventBridge forwarding matches between regions. Each has a trust policy scoped to
//! its source and one inline policy; any other inline or attached policy is drift, removed on
//! apply.

use std::collections::BTreeMap;

use anyhow::Context;
use async_trait::async_trait;
use futures::future::try_join_all;
use serde::Serialize;
use serde_json::Value;

use super::kind::{Declared, Delta, Found, Kind, Resource, field_names};
use super::tags::{self, OWNER_TAG, Tags};
use crate::aws::error::created;
use crate::aws::{Aws, AwsResultExt};
use crate::plan::Address;
use crate::policy;
use crate::profile::{CloudWatchLogs, Events, Profile};

pub const KIND: &str = "iam_role";
const INLINE_POLICY: &str = "ctguard-cloudtrail-to-logs";

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
    /// The trust policy, canonical (see `policy`).
    pub assume_role_policy: Option<Value>,
    /// Inline policies by name, canonical.
    pub inline_policies: BTreeMap<String, Value>,
    /// ARNs of attached managed policies, sorted.
    pub managed_policies: Vec<String>,
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

    pub fn events_forwarder(profile: &Profile, e: &Events) -> Declared<Self> {
        let description = "ctguard: lets EventBridge forward matches to the home region's event bus";
        let inline = ("ctguard-forward-events", &e.role_policy);
        Role::new(profile, &e.role_name, &e.role_path, description, &e.trust_policy, inline)
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
            assume_role_policy: Some(policy::canonical(trust)),
            inline_policies: BTreeMap::from([(inline.0.to_string(), policy::canonical(inline.1))]),
            managed_policies: Vec::new(),
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

    /// Puts every declared inline policy and removes any other.
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
        for extra in listed.policy_names().iter().filter(|n| !wanted.contains_key(n.as_str())) {
            let req = iam.delete_role_policy().role_name(&self.name).policy_name(extra);
            req.send().await.found(|| self.what("removing an extra inline policy from"))?;
        }
        Ok(())
    }

    /// Detaches every managed policy: the role declares none.
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

    fn replace_on(want: &RoleSpec) -> Vec<String> {
        field_names(&want.identity)
    }

    async fn read(&self, aws: &Aws, _: Option<&RoleSpec>) -> anyhow::Result<Option<Found<RoleSpec>>> {
        let iam = &aws.iam;
        let Some(got) = iam.get_role().role_name(&self.name).send().await.found(|| self.what("reading"))? else {
            return Ok(None);
        };
        let role = got.role().context("GetRole returned no role")?;
        let (names, attached) = tokio::try_join!(self.inline_names(aws), self.attached(aws))?;
        let docs = try_join_all(names.iter().map(|name| async move {
            let req = iam.get_role_policy().role_name(&self.name).policy_name(name);
            let got = req.send().await.ctx(|| self.what("reading an inline policy of"))?;
            anyhow::Ok((name.clone(), policy::parse_live(got.policy_document())?))
        }))
        .await?;
        let trust = role.assume_role_policy_document().map(policy::parse_live).transpose();
        let spec = RoleSpec {
            identity: RoleIdentity { path: role.path().to_string() },
            description: role.description().unwrap_or("").to_string(),
            assume_role_policy: trust.with_context(|| self.what("parsing the trust policy of"))?,
            inline_policies: docs.into_iter().collect(),
            managed_policies: attached,
            tags: tags::managed(role.tags().iter().map(|t| (t.key(), t.value()))),
        };
        Ok(Some(Found::new(spec)))
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
        if delta.changed(|r| &r.assume_role_policy) {
            let req = iam.update_assume_role_policy().role_name(&self.name);
            req.policy_document(serde_json::to_string(&want.assume_role_policy)?)
                .send()
                .await
                .ctx(|| self.what("setting the trust policy of"))?;
        }
        if delta.changed(|r| &r.description) {
            let req = iam.update_role().role_name(&self.name).description(&want.description);
            req.send().await.ctx(|| self.what("describing"))?;
        }
        if delta.changed(|r| &r.inline_policies) {
            self.put_inline(aws, &want.inline_policies).await?;
        }
        if delta.changed(|r| &r.managed_policies) {
            self.detach_all(aws).await?;
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
        self.put_inline(aws, &BTreeMap::new()).await?;
        self.detach_all(aws).await?;
        iam.delete_role().role_name(&self.name).send().await.found(|| self.what("deleting"))?;
        Ok(())
    }
}
