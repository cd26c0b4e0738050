//! IAM roles that AWS services assume on ctguard's behalf: CloudTrail writing to CloudWatch
//! Logs, and EventBridge forwarding matches between regions. Each has a trust policy scoped to
//! its source and one inline policy; any other inline or attached policy is drift, removed on
//! apply.

use std::collections::BTreeSet;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_iam::types::Tag;
use futures::future::try_join_all;
use serde_json::{Value, json};

use super::{Live, Resource, Spec, managed_tags, owner_tags, tag_pairs, text};
use crate::aws::{Aws, AwsResultExt, ErrorKind};
use crate::plan::{Address, Attrs};
use crate::policy;
use crate::profile::{CloudWatchLogs, Events, Profile};

pub const KIND: &str = "iam_role";
const INLINE_POLICY: &str = "ctguard-cloudtrail-to-logs";

pub fn address(name: &str, _region: &str) -> Address {
    // IAM is global; the address still carries a region so every address has the same shape.
    Address { kind: KIND, name: name.to_string(), region: "global".into() }
}

pub struct Role {
    name: String,
    spec: Spec,
}

impl Role {
    pub fn cloudtrail_logs(profile: &Profile, cw: &CloudWatchLogs) -> Self {
        let description = "ctguard: lets CloudTrail deliver events to CloudWatch Logs";
        let inline = (INLINE_POLICY, &cw.role_policy);
        Role::new(profile, &cw.role_name, &cw.role_path, description, &cw.trust_policy, inline)
    }

    pub fn events_forwarder(profile: &Profile, e: &Events) -> Self {
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
    ) -> Self {
        let mut want = Attrs::new();
        want.insert("path".into(), json!(path));
        want.insert("description".into(), json!(description));
        want.insert("assume_role_policy".into(), policy::canonical(trust));
        want.insert("inline_policies".into(), json!({ inline.0: policy::canonical(inline.1) }));
        want.insert("managed_policies".into(), json!([]));
        want.insert("tags".into(), owner_tags(profile));
        Role { name: name.to_string(), spec: Spec::new(address(name, ""), want, Vec::new()) }
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} IAM role {}", self.name)
    }

    fn tags(want: &Attrs) -> anyhow::Result<Vec<Tag>> {
        Ok(tag_pairs(want)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<_, _>>()?)
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
        let tags = aws
            .iam
            .list_role_tags()
            .role_name(&name)
            .send()
            .await
            .ctx(|| format!("reading tags of IAM role {name}"))?;
        let mine = tags.tags().iter().any(|t| t.key() == super::OWNER_TAG && t.value() == profile);
        anyhow::Ok(mine.then_some(name))
    }))
    .await?;
    Ok(tagged
        .into_iter()
        .flatten()
        .map(|name| Box::new(Role { spec: Spec::undeclared(address(&name, "")), name }) as Box<dyn Resource>)
        .collect())
}

#[async_trait]
impl Resource for Role {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The path is part of the role's identity: changing it means a new role.
    fn replace_on(&self) -> &'static [&'static str] {
        &["path"]
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        let iam = &aws.iam;
        let Some(got) = iam.get_role().role_name(&self.name).send().await.found(|| self.what("reading"))? else {
            return Ok(None);
        };
        let role = got.role().context("GetRole returned no role")?;
        let (names, attached) = tokio::try_join!(
            async {
                let pages =
                    iam.list_role_policies().role_name(&self.name).into_paginator().send().collect::<Vec<_>>().await;
                let mut names = Vec::new();
                for page in pages {
                    names.extend(page.ctx(|| self.what("listing inline policies of"))?.policy_names().to_vec());
                }
                anyhow::Ok(names)
            },
            async {
                let pages = iam
                    .list_attached_role_policies()
                    .role_name(&self.name)
                    .into_paginator()
                    .send()
                    .collect::<Vec<_>>()
                    .await;
                let mut arns = Vec::new();
                for page in pages {
                    let page = page.ctx(|| self.what("listing attached policies of"))?;
                    arns.extend(page.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)));
                }
                anyhow::Ok(arns)
            },
        )?;
        let docs = try_join_all(names.iter().map(|name| async move {
            let got = iam
                .get_role_policy()
                .role_name(&self.name)
                .policy_name(name)
                .send()
                .await
                .ctx(|| self.what("reading an inline policy of"))?;
            anyhow::Ok((name.clone(), policy::parse_live(got.policy_document())?))
        }))
        .await?;
        let trust = match role.assume_role_policy_document() {
            Some(doc) => policy::parse_live(doc).with_context(|| self.what("parsing the trust policy of"))?,
            None => Value::Null,
        };
        let mut attrs = Attrs::new();
        attrs.insert("path".into(), json!(role.path()));
        attrs.insert("description".into(), json!(role.description().unwrap_or("")));
        attrs.insert("assume_role_policy".into(), trust);
        attrs.insert("inline_policies".into(), Value::Object(docs.into_iter().collect()));
        let mut attached = attached;
        attached.sort();
        attrs.insert("managed_policies".into(), json!(attached));
        attrs.insert("tags".into(), managed_tags(role.tags().iter().map(|t| (t.key(), t.value()))));
        Ok(Some(Live { attrs, ..Live::default() }))
    }

    async fn create(&self, aws: &Aws, want: &Attrs) -> anyhow::Result<()> {
        let created = aws
            .iam
            .create_role()
            .role_name(&self.name)
            .path(text(want, "path"))
            .description(text(want, "description"))
            .assume_role_policy_document(serde_json::to_string(&want["assume_role_policy"])?)
            .set_tags(Some(Self::tags(want)?))
            .send()
            .await
            .ctx(|| self.what("creating"));
        let rest: BTreeSet<String> = match created {
            Ok(_) => ["inline_policies".to_string()].into(),
            // Left behind by an interrupted run: converge every field.
            Err(e) if crate::aws::error::kind(&e) == ErrorKind::AlreadyExists => want.keys().cloned().collect(),
            Err(e) => return Err(e),
        };
        self.update(aws, want, &rest).await
    }

    async fn update(&self, aws: &Aws, want: &Attrs, changed: &BTreeSet<String>) -> anyhow::Result<()> {
        let iam = &aws.iam;
        if changed.contains("assume_role_policy") {
            let doc = serde_json::to_string(&want["assume_role_policy"])?;
            iam.update_assume_role_policy()
                .role_name(&self.name)
                .policy_document(doc)
                .send()
                .await
                .ctx(|| self.what("setting the trust policy of"))?;
        }
        if changed.contains("description") {
            iam.update_role()
                .role_name(&self.name)
                .description(text(want, "description"))
                .send()
                .await
                .ctx(|| self.what("describing"))?;
        }
        if changed.contains("inline_policies") {
            let wanted = want["inline_policies"].as_object().cloned().unwrap_or_default();
            for (name, doc) in &wanted {
                iam.put_role_policy()
                    .role_name(&self.name)
                    .policy_name(name)
                    .policy_document(serde_json::to_string(doc)?)
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
                iam.delete_role_policy()
                    .role_name(&self.name)
                    .policy_name(extra)
                    .send()
                    .await
                    .found(|| self.what("removing an extra inline policy from"))?;
            }
        }
        if changed.contains("managed_policies") {
            let listed = iam
                .list_attached_role_policies()
                .role_name(&self.name)
                .send()
                .await
                .ctx(|| self.what("listing attached policies of"))?;
            for p in listed.attached_policies().iter().filter_map(|p| p.policy_arn()) {
                iam.detach_role_policy()
                    .role_name(&self.name)
                    .policy_arn(p)
                    .send()
                    .await
                    .found(|| self.what("detaching a policy from"))?;
            }
        }
        if changed.contains("tags") {
            iam.tag_role()
                .role_name(&self.name)
                .set_tags(Some(Self::tags(want)?))
                .send()
                .await
                .ctx(|| self.what("tagging"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        let iam = &aws.iam;
        let all: BTreeSet<String> = ["inline_policies", "managed_policies"].map(String::from).into();
        let none =
            Attrs::from([("inline_policies".to_string(), json!({})), ("managed_policies".to_string(), json!([]))]);
        if iam.get_role().role_name(&self.name).send().await.found(|| self.what("reading"))?.is_none() {
            return Ok(());
        }
        self.update(aws, &none, &all).await?;
        iam.delete_role().role_name(&self.name).send().await.found(|| self.what("deleting"))?;
        Ok(())
    }
}
