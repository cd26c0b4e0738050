//! S3 buckets: the audit-log bucket and the bucket that receives its server access logs.
//! Both are hardened the same way; only policy, logging and encryption differ.
//! A bucket holds audit data: ctguard never deletes one.

use std::collections::BTreeSet;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, BucketLoggingStatus,
    BucketVersioningStatus, CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, LoggingEnabled, NoncurrentVersionExpiration, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging, Transition, TransitionStorageClass,
    VersioningConfiguration,
};
use serde_json::{Value, json};

use super::{Live, Resource, Spec, managed_tags, owner_tags};
use crate::aws::{Aws, AwsResultExt};
use crate::plan::{Address, Attrs};
use crate::policy;
use crate::profile::{AccessLogBucket, Encryption, Lifecycle, Profile};

pub const KIND: &str = "s3_bucket";
/// The one lifecycle rule ctguard writes. Any other rule is drift: an extra expiry rule is a
/// quiet way to destroy audit logs.
const RULE_ID: &str = "ctguard-retention";

pub struct Bucket {
    name: String,
    region: String,
    spec: Spec,
}

impl Bucket {
    pub fn audit(profile: &Profile) -> Self {
        let b = &profile.bucket;
        let encryption = match b.encryption {
            Encryption::Aes256 => json!({"sse_algorithm": "AES256"}),
            Encryption::Kms => json!({
                "sse_algorithm": "aws:kms",
                "kms_master_key_id": b.kms_key_arn,
                "bucket_key_enabled": true,
            }),
        };
        let logging = match &profile.access_log_bucket {
            Some(a) => json!({"target_bucket": a.name, "target_prefix": format!("{}{}/", a.prefix, b.name)}),
            None => Value::Null,
        };
        Bucket::new(profile, &b.name, encryption, &b.policy, &b.lifecycle, logging)
    }

    /// S3 server access logs can only be written with SSE-S3 (S3 User Guide, "Enabling Amazon
    /// S3 server access logging"), and a log bucket does not log its own access.
    pub fn access_logs(profile: &Profile, a: &AccessLogBucket) -> Self {
        Bucket::new(profile, &a.name, json!({"sse_algorithm": "AES256"}), &a.policy, &a.lifecycle, Value::Null)
    }

    fn new(
        profile: &Profile,
        name: &str,
        encryption: Value,
        policy_doc: &Value,
        lifecycle: &Lifecycle,
        logging: Value,
    ) -> Self {
        let mut want = Attrs::new();
        want.insert("encryption".into(), encryption);
        want.insert("versioning".into(), json!("Enabled"));
        want.insert(
            "public_access_block".into(),
            json!({"block_public_acls": true, "ignore_public_acls": true, "block_public_policy": true, "restrict_public_buckets": true}),
        );
        want.insert("object_ownership".into(), json!("BucketOwnerEnforced"));
        want.insert("policy".into(), policy::canonical(policy_doc));
        want.insert("lifecycle".into(), json!([lifecycle_rule(lifecycle)]));
        want.insert("logging".into(), logging);
        want.insert("tags".into(), owner_tags(profile));
        let region = profile.runtime.region.clone();
        // Server access logging needs its target bucket first.
        let depends = match want.get("logging").and_then(|l| l.get("target_bucket")).and_then(Value::as_str) {
            Some(target) => vec![Address { kind: KIND, name: target.to_string(), region: region.clone() }],
            None => Vec::new(),
        };
        let spec = Spec::new(Address { kind: KIND, name: name.to_string(), region: region.clone() }, want, depends);
        Bucket { name: name.to_string(), region, spec }
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} S3 bucket {}", self.name)
    }
}

/// The profile's lifecycle as the normalized rule `read` produces.
fn lifecycle_rule(l: &Lifecycle) -> Value {
    let mut transitions = Vec::new();
    if l.transition_to_ia_days > 0 {
        transitions.push(json!({"days": l.transition_to_ia_days, "storage_class": "STANDARD_IA"}));
    }
    if l.transition_to_glacier_days > 0 {
        transitions.push(json!({"days": l.transition_to_glacier_days, "storage_class": "GLACIER"}));
    }
    let days = |d: i32| if d > 0 { json!(d) } else { Value::Null };
    json!({
        "id": RULE_ID,
        "status": "Enabled",
        "prefix": "",
        "transitions": transitions,
        "expiration_days": days(l.expire_days),
        "noncurrent_expiration_days": days(l.noncurrent_expire_days),
        "abort_incomplete_upload_days": days(l.abort_incomplete_upload_days),
    })
}

/// A live rule in the same shape as `lifecycle_rule`, keeping anything that would matter.
// Rules written before filters existed still carry the top-level prefix.
#[allow(deprecated)]
fn normalize_rule(r: &LifecycleRule) -> Value {
    let prefix = r.filter().and_then(|f| f.prefix()).or(r.prefix()).unwrap_or("");
    let other_filter = r.filter().is_some_and(|f| {
        f.tag().is_some()
            || f.and().is_some()
            || f.object_size_greater_than().is_some()
            || f.object_size_less_than().is_some()
    });
    let transitions: Vec<Value> = r
        .transitions()
        .iter()
        .map(|t| json!({"days": t.days(), "storage_class": t.storage_class().map(|s| s.as_str())}))
        .collect();
    let mut rule = json!({
        "id": r.id(),
        "status": r.status().as_str(),
        "prefix": prefix,
        "transitions": transitions,
        "expiration_days": r.expiration().and_then(|e| e.days()),
        "noncurrent_expiration_days": r.noncurrent_version_expiration().and_then(|e| e.noncurrent_days()),
        "abort_incomplete_upload_days": r.abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation()),
    });
    if other_filter {
        rule["filter"] = json!("tag or size filter");
    }
    if !r.noncurrent_version_transitions().is_empty() {
        rule["noncurrent_transitions"] = json!(r.noncurrent_version_transitions().len());
    }
    if r.expiration().and_then(|e| e.expired_object_delete_marker()) == Some(true) {
        rule["expired_object_delete_marker"] = json!(true);
    }
    rule
}

fn build_rule(rule: &Value) -> anyhow::Result<LifecycleRule> {
    let int = |k: &str| rule.get(k).and_then(Value::as_i64).map(|d| d as i32);
    let mut b = LifecycleRule::builder()
        .id(RULE_ID)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build());
    for t in rule.get("transitions").and_then(Value::as_array).into_iter().flatten() {
        let class = t.get("storage_class").and_then(Value::as_str).unwrap_or_default();
        let days = t.get("days").and_then(Value::as_i64).unwrap_or_default() as i32;
        b = b.transitions(Transition::builder().days(days).storage_class(TransitionStorageClass::from(class)).build());
    }
    if let Some(d) = int("expiration_days") {
        b = b.expiration(LifecycleExpiration::builder().days(d).build());
    }
    if let Some(d) = int("noncurrent_expiration_days") {
        b = b.noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(d).build());
    }
    if let Some(d) = int("abort_incomplete_upload_days") {
        b = b.abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder().days_after_initiation(d).build(),
        );
    }
    Ok(b.build()?)
}

#[async_trait]
impl Resource for Bucket {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        let s3 = &aws.s3;
        let b = self.name.as_str();
        let head = s3.head_bucket().bucket(b).send().await;
        if let Err(e) = &head
            && e.raw_response().is_some_and(|r| r.status().as_u16() == 403)
        {
            anyhow::bail!(
                "S3 bucket {b} exists but is not readable by this caller: the name may belong to another account"
            );
        }
        if head.found(|| self.what("checking"))?.is_none() {
            return Ok(None);
        }
        let (versioning, encryption, pab, ownership, policy_doc, lifecycle, logging, tags) = tokio::try_join!(
            async { s3.get_bucket_versioning().bucket(b).send().await.ctx(|| self.what("reading versioning of")) },
            async { s3.get_bucket_encryption().bucket(b).send().await.found(|| self.what("reading encryption of")) },
            async {
                s3.get_public_access_block()
                    .bucket(b)
                    .send()
                    .await
                    .found(|| self.what("reading public access block of"))
            },
            async {
                s3.get_bucket_ownership_controls()
                    .bucket(b)
                    .send()
                    .await
                    .found(|| self.what("reading ownership controls of"))
            },
            async { s3.get_bucket_policy().bucket(b).send().await.found(|| self.what("reading policy of")) },
            async {
                s3.get_bucket_lifecycle_configuration()
                    .bucket(b)
                    .send()
                    .await
                    .found(|| self.what("reading lifecycle of"))
            },
            async { s3.get_bucket_logging().bucket(b).send().await.ctx(|| self.what("reading logging of")) },
            async { s3.get_bucket_tagging().bucket(b).send().await.found(|| self.what("reading tags of")) },
        )?;

        let mut attrs = Attrs::new();
        attrs.insert("versioning".into(), json!(versioning.status().map(|s| s.as_str()).unwrap_or("Disabled")));
        let rule =
            encryption.as_ref().and_then(|e| e.server_side_encryption_configuration()).and_then(|c| c.rules().first());
        let enc = rule.and_then(|r| r.apply_server_side_encryption_by_default()).map(|d| {
            let mut v = json!({"sse_algorithm": d.sse_algorithm().as_str()});
            if d.sse_algorithm() != &ServerSideEncryption::Aes256 {
                v["kms_master_key_id"] = json!(d.kms_master_key_id());
                v["bucket_key_enabled"] = json!(rule.and_then(|r| r.bucket_key_enabled()).unwrap_or(false));
            }
            v
        });
        attrs.insert("encryption".into(), enc.unwrap_or(Value::Null));
        let pab = pab.as_ref().and_then(|p| p.public_access_block_configuration());
        attrs.insert(
            "public_access_block".into(),
            json!({
                "block_public_acls": pab.and_then(|p| p.block_public_acls()).unwrap_or(false),
                "ignore_public_acls": pab.and_then(|p| p.ignore_public_acls()).unwrap_or(false),
                "block_public_policy": pab.and_then(|p| p.block_public_policy()).unwrap_or(false),
                "restrict_public_buckets": pab.and_then(|p| p.restrict_public_buckets()).unwrap_or(false),
            }),
        );
        let owner_rule = ownership.as_ref().and_then(|o| o.ownership_controls()).and_then(|c| c.rules().first());
        attrs.insert("object_ownership".into(), json!(owner_rule.map(|r| r.object_ownership().as_str())));
        let policy_doc = match policy_doc.as_ref().and_then(|p| p.policy()) {
            Some(text) => policy::parse_live(text).with_context(|| self.what("parsing the policy of"))?,
            None => Value::Null,
        };
        attrs.insert("policy".into(), policy_doc);
        let rules: Vec<Value> =
            lifecycle.as_ref().map(|l| l.rules().iter().map(normalize_rule).collect()).unwrap_or_default();
        attrs.insert("lifecycle".into(), Value::Array(rules));
        let logging = logging
            .logging_enabled()
            .map(|l| json!({"target_bucket": l.target_bucket(), "target_prefix": l.target_prefix()}));
        attrs.insert("logging".into(), logging.unwrap_or(Value::Null));
        let tag_set = tags.as_ref().map(|t| t.tag_set()).unwrap_or_default();
        attrs.insert("tags".into(), managed_tags(tag_set.iter().map(|t| (t.key(), t.value()))));
        Ok(Some(Live { attrs, ..Live::default() }))
    }

    async fn create(&self, aws: &Aws, want: &Attrs) -> anyhow::Result<()> {
        let mut req = aws.s3.create_bucket().bucket(&self.name).object_ownership(ObjectOwnership::BucketOwnerEnforced);
        // us-east-1 is the default location and must not be named.
        if self.region != "us-east-1" {
            let conf = CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                .build();
            req = req.create_bucket_configuration(conf);
        }
        match req.send().await.ctx(|| self.what("creating")) {
            Ok(_) => {}
            // An earlier run that was interrupted after CreateBucket: carry on configuring.
            Err(e) if crate::aws::error::kind(&e) == crate::aws::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let all: BTreeSet<String> = want.keys().cloned().collect();
        self.update(aws, want, &all).await
    }

    async fn update(&self, aws: &Aws, want: &Attrs, changed: &BTreeSet<String>) -> anyhow::Result<()> {
        let s3 = &aws.s3;
        let b = self.name.as_str();
        // One configuration call at a time: S3 answers OperationAborted to concurrent changes
        // of the same bucket. Ownership and public access first, so nothing is ever open.
        if changed.contains("object_ownership") {
            let rule =
                OwnershipControlsRule::builder().object_ownership(ObjectOwnership::BucketOwnerEnforced).build()?;
            let controls = OwnershipControls::builder().rules(rule).build()?;
            s3.put_bucket_ownership_controls()
                .bucket(b)
                .ownership_controls(controls)
                .send()
                .await
                .ctx(|| self.what("enforcing bucket-owner ownership (no ACLs) on"))?;
        }
        if changed.contains("public_access_block") {
            let conf = PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build();
            s3.put_public_access_block()
                .bucket(b)
                .public_access_block_configuration(conf)
                .send()
                .await
                .ctx(|| self.what("blocking public access to"))?;
        }
        if changed.contains("encryption") {
            s3.put_bucket_encryption()
                .bucket(b)
                .server_side_encryption_configuration(encryption_config(want)?)
                .send()
                .await
                .ctx(|| self.what("setting default encryption of"))?;
        }
        if changed.contains("versioning") {
            let conf = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
            s3.put_bucket_versioning()
                .bucket(b)
                .versioning_configuration(conf)
                .send()
                .await
                .ctx(|| self.what("enabling versioning of"))?;
        }
        if changed.contains("policy") {
            let doc = serde_json::to_string(&want["policy"])?;
            s3.put_bucket_policy().bucket(b).policy(doc).send().await.ctx(|| self.what("setting the policy of"))?;
        }
        if changed.contains("lifecycle") {
            let rules = want["lifecycle"]
                .as_array()
                .into_iter()
                .flatten()
                .map(build_rule)
                .collect::<anyhow::Result<Vec<_>>>()?;
            let conf = BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build()?;
            s3.put_bucket_lifecycle_configuration()
                .bucket(b)
                .lifecycle_configuration(conf)
                .send()
                .await
                .ctx(|| self.what("setting the lifecycle of"))?;
        }
        if changed.contains("logging") {
            let mut status = BucketLoggingStatus::builder();
            if let Some(target) = want["logging"].as_object() {
                let enabled = LoggingEnabled::builder()
                    .target_bucket(target["target_bucket"].as_str().unwrap_or_default())
                    .target_prefix(target["target_prefix"].as_str().unwrap_or_default())
                    .build()?;
                status = status.logging_enabled(enabled);
            }
            s3.put_bucket_logging()
                .bucket(b)
                .bucket_logging_status(status.build())
                .send()
                .await
                .ctx(|| self.what("setting access logging of"))?;
        }
        if changed.contains("tags") {
            self.put_tags(aws, want).await?;
        }
        Ok(())
    }

    async fn delete(&self, _: &Aws) -> anyhow::Result<()> {
        anyhow::bail!(
            "refusing to delete S3 bucket {}: it holds audit logs; delete it by hand if you mean to",
            self.name
        )
    }
}

impl Bucket {
    /// PutBucketTagging replaces the whole set: keep the tags ctguard does not declare.
    async fn put_tags(&self, aws: &Aws, want: &Attrs) -> anyhow::Result<()> {
        let current =
            aws.s3.get_bucket_tagging().bucket(&self.name).send().await.found(|| self.what("reading tags of"))?;
        let mut tags: Vec<Tag> = current
            .map(|t| t.tag_set().iter().filter(|t| !super::MANAGED_TAG_KEYS.contains(&t.key())).cloned().collect())
            .unwrap_or_default();
        for (k, v) in super::tag_pairs(want) {
            tags.push(Tag::builder().key(k).value(v).build()?);
        }
        let tagging = Tagging::builder().set_tag_set(Some(tags)).build()?;
        aws.s3.put_bucket_tagging().bucket(&self.name).tagging(tagging).send().await.ctx(|| self.what("tagging"))?;
        Ok(())
    }
}

fn encryption_config(want: &Attrs) -> anyhow::Result<ServerSideEncryptionConfiguration> {
    let enc = &want["encryption"];
    let mut default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::from(text_of(enc, "sse_algorithm")));
    let mut rule = ServerSideEncryptionRule::builder();
    if let Some(key) = enc.get("kms_master_key_id").and_then(Value::as_str) {
        default = default.kms_master_key_id(key);
        rule = rule.bucket_key_enabled(true);
    }
    let rule = rule.apply_server_side_encryption_by_default(default.build()?).build();
    Ok(ServerSideEncryptionConfiguration::builder().rules(rule).build()?)
}

fn text_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_lifecycle_round_trips_through_the_sdk_shape() {
        let want = lifecycle_rule(&Lifecycle::default());
        let built = build_rule(&want).unwrap();
        assert_eq!(normalize_rule(&built), want);
    }

    #[test]
    fn disabled_steps_are_left_out() {
        let l = Lifecycle { transition_to_glacier_days: 0, expire_days: 0, ..Lifecycle::default() };
        let rule = lifecycle_rule(&l);
        assert_eq!(rule["transitions"].as_array().unwrap().len(), 1);
        assert_eq!(rule["expiration_days"], Value::Null);
        assert_eq!(normalize_rule(&build_rule(&rule).unwrap()), rule);
    }
}
