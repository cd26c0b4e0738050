//! The end-to-end path's caller: a role with no permissions at all, under its own path, that the
//! account may assume. A call made with it is denied, and CloudTrail records the denial; that is
//! the event CIS 4.1's metric filter counts.

use std::time::Duration;

use serde_json::json;

use super::{EXPIRES_TAG, PREFIX};
use crate::aws::{Aws, AwsResultExt, all_pages};

/// Every drill role lives under this path, so listing and deleting them needs nothing else.
pub const PATH: &str = "/ctguard-drill/";

pub fn name(run: &str) -> String {
    format!("{PREFIX}{run}")
}

/// Only this account's principals (with sts:AssumeRole on the role) may assume it.
fn trust(aws: &Aws) -> serde_json::Value {
    let c = &aws.caller;
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:{}:iam::{}:root", c.partition, c.account_id) },
            "Action": "sts:AssumeRole",
        }],
    })
}

/// Creates the role: no policy, inline or attached, so every call it makes is denied.
pub async fn create(aws: &Aws, run: &str, expires: &str) -> anyhow::Result<String> {
    let name = name(run);
    let tag = |k: &str, v: &str| aws_sdk_iam::types::Tag::builder().key(k).value(v).build();
    let out = aws
        .iam
        .create_role()
        .role_name(&name)
        .path(PATH)
        .assume_role_policy_document(trust(aws).to_string())
        .description("ctguard drill --end-to-end: no permissions; deleted when the drill ends")
        .max_session_duration(3600)
        .tags(tag(EXPIRES_TAG, expires)?)
        .send()
        .await
        .ctx(|| format!("creating the drill's IAM role {name}"))?;
    Ok(out.role().map(|r| r.arn().to_string()).unwrap_or_default())
}

/// Assumes the role (retrying while IAM propagates it, which takes seconds) and makes one call
/// it has no permission for: S3 ListBuckets, a management event CloudTrail records with
/// errorCode AccessDenied. Returns what happened, in words.
pub async fn denied_call(aws: &Aws, role_arn: &str, patience: Duration) -> anyhow::Result<String> {
    let started = std::time::Instant::now();
    let creds = loop {
        let req = aws.sts.assume_role().role_arn(role_arn).role_session_name("ctguard-drill").duration_seconds(900);
        match req.send().await.ctx(|| format!("assuming the drill's role {role_arn}")) {
            Ok(out) => break out.credentials.ok_or_else(|| anyhow::anyhow!("AssumeRole returned no credentials"))?,
            // A new role cannot be assumed until IAM has propagated it.
            Err(_) if started.elapsed() < patience => tokio::time::sleep(Duration::from_secs(2)).await,
            Err(e) => return Err(e),
        }
    };
    let provider = aws_sdk_s3::config::Credentials::new(
        creds.access_key_id(),
        creds.secret_access_key(),
        Some(creds.session_token().to_string()),
        None,
        "ctguard-drill",
    );
    let s3 = aws_sdk_s3::Client::from_conf(aws.s3.config().to_builder().credentials_provider(provider).build());
    Ok(match s3.list_buckets().send().await {
        Ok(_) => {
            "S3 ListBuckets as the drill's role was allowed (nothing denies it here, so nothing is counted)".into()
        }
        Err(e) => {
            let e = crate::aws::error::AwsError::from_sdk(e);
            format!("S3 ListBuckets as the drill's role was refused: {e}")
        }
    })
}

/// Deletes the role; one already gone is fine.
pub async fn remove(aws: &Aws, name: &str) -> anyhow::Result<Option<String>> {
    let req = aws.iam.delete_role().role_name(name);
    Ok(req
        .send()
        .await
        .found(|| format!("deleting the drill's IAM role {name}"))?
        .map(|_| format!("deleted IAM role {name}")))
}

/// The drill roles a killed run left: under [`PATH`] and past their expiry tag.
pub async fn stale(aws: &Aws, now: &str) -> anyhow::Result<Vec<String>> {
    let list = |marker| async move {
        let req = aws.iam.list_roles().path_prefix(PATH).set_marker(marker);
        req.send().await.ctx(|| "listing the drill's IAM roles".into())
    };
    let pages = all_pages(list, aws_sdk_iam::operation::list_roles::ListRolesOutput::marker).await?;
    let mut out = Vec::new();
    for role in pages.iter().flat_map(|p| p.roles()) {
        let name = role.role_name();
        let req = aws.iam.list_role_tags().role_name(name);
        let tags = req.send().await.found(|| format!("reading the tags of IAM role {name}"))?;
        let expires =
            tags.as_ref().and_then(|t| t.tags().iter().find(|t| t.key() == EXPIRES_TAG).map(|t| t.value().to_string()));
        if expires.is_some_and(|e| e.as_str() < now) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}
