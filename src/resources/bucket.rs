//! S3 buckets: the audit-log bucket and the bucket that receives its server access logs.
//! Both are hardened the same way; only policy, logging and encryption differ.
//! A bucket holds audit data: ctguard never deletes one.
//!
//! The policy and the lifecycle configuration are shared: ctguard owns only its statements
//! (see `policy::ownership`) and its lifecycle rules (IDs starting with `RULE_PREFIX`), and
//! writes everyone else's back exactly as it read them. Those that defeat a guarantee are
//! failing checks (see `foreign`). Likewise the audit bucket's notification configuration: ctguard
//! adds only its EventBridge setting, and writes back every topic, queue and function someone
//! else configured.

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, BucketLoggingStatus,
    BucketVersioningStatus, CreateBucketConfiguration, DefaultRetention, EventBridgeConfiguration, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, LoggingEnabled, NoncurrentVersionExpiration,
    NotificationConfiguration, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
    ObjectOwnership, OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
    Transition, TransitionStorageClass, VersioningConfiguration,
};
use serde::Serialize;
use serde_json::Value;

use super::foreign::{self, Delivers};
use super::kind::{Declared, Delta, Found, Kind, Outputs};
use super::tags::{self, MANAGED_KEYS, OWNER_TAG, Tags};
use super::{kms_key, loss};
use crate::aws::error::created;
use crate::aws::{Aws, AwsResultExt};
use crate::plan::{Address, UNKNOWN};
use crate::policy::grants::Delivery;
use crate::policy::ownership::{self, Rules};
use crate::profile::{AccessLogBucket, Encryption, Kms, Lifecycle, LockMode, ObjectLock, Profile};

pub const KIND: &str = "s3_bucket";
/// The lifecycle rule ctguard writes.
const RULE_ID: &str = "ctguard-retention";
/// Lifecycle rules whose ID starts with this are ctguard's; every other rule is someone
/// else's and stays as found (a rule that expires logs sooner is a failing check).
const RULE_PREFIX: &str = "ctguard-";

fn is_ours(rule: &LifecycleRule) -> bool {
    rule.id().is_some_and(|id| id.starts_with(RULE_PREFIX))
}

/// A bucket as ctguard compares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketSpec {
    /// Default encryption; `None` when the bucket has none.
    pub encryption: Option<SseDefault>,
    /// "Enabled", "Suspended", or "Disabled" for a bucket that never had versioning.
    pub versioning: String,
    pub public_access_block: PublicAccessBlock,
    pub object_ownership: Option<String>,
    /// ctguard's statements, canonical (see `policy::ownership::view`).
    pub policy: Option<Value>,
    /// ctguard's lifecycle rules.
    pub lifecycle: Vec<LifecycleRuleSpec>,
    pub logging: Option<Logging>,
    /// S3 Object Lock's default retention for new object versions; `None`: none. Absent from
    /// the plan when `None`, so a bucket without Object Lock reads as it always has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<LockSpec>,
    /// Whether Object Lock is on for the bucket at all: once on, S3 never switches it off.
    /// Not compared (what ctguard declares is the default retention); it decides what plan
    /// says before turning it on.
    #[serde(skip)]
    pub object_lock_enabled: bool,
    /// Whether S3 sends the bucket's object events to EventBridge (an `EventBridgeConfiguration`
    /// in its notification configuration). `None`: not ctguard's to manage, so absent from the
    /// plan; the live spec reads it only where the desired one declares it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eventbridge_notifications: Option<bool>,
    pub tags: Tags,
    /// Everyone else's lifecycle rules, as read: apply keeps them, so they are never drift
    /// (not serialized, so not compared), but what they already expire is not lost when
    /// ctguard's rules expire it too (see `Kind::destructive`). Empty in a desired spec.
    #[serde(skip)]
    pub foreign_lifecycle: Vec<LifecycleRuleSpec>,
    /// Who someone else's policy statements let write objects, as read (`type:value`): they
    /// stop delivering if the bucket moves to a KMS key their writes cannot use. Not compared;
    /// empty in a desired spec.
    #[serde(skip)]
    pub foreign_writers: Vec<String>,
}

crate::tagged_spec!(BucketSpec);

/// Default encryption: SSE-S3 names only the algorithm; SSE-KMS also the key and bucket key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SseDefault {
    S3 { sse_algorithm: String },
    Kms { sse_algorithm: String, kms_master_key_id: Option<String>, bucket_key_enabled: bool },
}

/// The four flags; an absent configuration reads as all off.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// One lifecycle rule, keeping anything of a live rule that would matter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LifecycleRuleSpec {
    pub id: Option<String>,
    pub status: String,
    pub prefix: String,
    pub transitions: Vec<TransitionSpec>,
    pub expiration_days: Option<i32>,
    pub noncurrent_expiration_days: Option<i32>,
    pub abort_incomplete_upload_days: Option<i32>,
    /// Set when a live rule filters by tag or size: never what ctguard writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// How many noncurrent-version transitions a live rule has: ctguard writes none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noncurrent_transitions: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired_object_delete_marker: Option<bool>,
}

impl LifecycleRuleSpec {
    /// The rule as far as expiry is concerned.
    fn expiring(&self) -> loss::Expiring<'_> {
        loss::Expiring {
            prefix: &self.prefix,
            enabled: self.status == ExpirationStatus::Enabled.as_str(),
            whole_prefix: self.filter.is_none(),
            current: self.expiration_days,
            noncurrent: self.noncurrent_expiration_days,
        }
    }
}

/// An Object Lock default retention: a mode and one period, days or years.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LockSpec {
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub years: Option<i32>,
}

impl LockSpec {
    fn of(l: &ObjectLock) -> Self {
        LockSpec { mode: l.mode.as_str().to_string(), days: l.days, years: l.years }
    }

    /// The period in days, a year counted as 365, for comparing two retentions.
    fn span(&self) -> i64 {
        i64::from(self.days.unwrap_or(0)) + 365 * i64::from(self.years.unwrap_or(0))
    }

    fn describe(&self) -> String {
        match (self.days, self.years) {
            (Some(d), _) => format!("{} {d} days", self.mode),
            (None, Some(y)) => format!("{} {y} years", self.mode),
            (None, None) => self.mode.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionSpec {
    pub days: Option<i32>,
    pub storage_class: Option<String>,
}

/// Where server access logs go.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Logging {
    pub target_bucket: String,
    pub target_prefix: String,
}

pub struct Bucket {
    name: String,
    region: String,
    guard: Guard,
    /// The managed key (`kms_key = "trail"`) whose ARN `resolve` fills into the encryption.
    key: Option<Address>,
}

/// What the parts of the bucket ctguard does not own must not defeat.
#[derive(Default)]
struct Guard {
    /// How long the profile keeps logs.
    keep: Lifecycle,
    /// Where logs are written in the bucket.
    log_prefixes: Vec<String>,
    deliveries: Vec<Delivers>,
}

/// One delivery request of `service`, with the condition keys AWS documents for it.
fn delivers(who: &'static str, service: &str, action: &str, resource: String, extra: &[(&str, &str)]) -> Delivers {
    let mut context: Vec<(String, String)> = vec![
        ("aws:securetransport".into(), "true".into()),
        ("aws:principalservicename".into(), service.into()),
        ("aws:principalisawsservice".into(), "true".into()),
    ];
    context.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let request = Delivery { service: service.into(), action: action.into(), resource, context };
    Delivers { who, request }
}

impl Guard {
    /// The audit bucket receives CloudTrail's logs (CloudTrail User Guide, "Amazon S3 bucket
    /// policy for CloudTrail") and, with [config], AWS Config's (AWS Config Developer Guide,
    /// "Permissions for the Amazon S3 bucket").
    fn audit(profile: &Profile) -> Self {
        let b = &profile.bucket;
        let (account, partition) = (&profile.runtime.account_id, &profile.runtime.partition);
        let arn = format!("arn:{partition}:s3:::{}", b.name);
        let under = |prefix: &str| if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        let trail_logs = format!("{}AWSLogs/{account}/", under(&b.trail_prefix));
        let acl = ("s3:x-amz-acl", "bucket-owner-full-control");
        let source = [("aws:sourceaccount", account.as_str()), ("aws:sourcearn", profile.trail.arn.as_str())];
        let mut put = source.to_vec();
        put.push(acl);
        if profile.trail.kms.is_some() {
            put.push(("s3:x-amz-server-side-encryption", "aws:kms"));
        }
        let ct = "cloudtrail.amazonaws.com";
        let mut deliveries = vec![
            delivers("CloudTrail", ct, "s3:GetBucketAcl", arn.clone(), &source),
            delivers("CloudTrail", ct, "s3:PutObject", format!("{arn}/{trail_logs}CloudTrail/log.json.gz"), &put),
        ];
        let mut log_prefixes = vec![trail_logs];
        if let Some(c) = &profile.config {
            let config_logs = format!("{}AWSLogs/{account}/Config/", under(&c.s3_prefix));
            let source = [("aws:sourceaccount", account.as_str())];
            let cfg = "config.amazonaws.com";
            deliveries.push(delivers("AWS Config", cfg, "s3:GetBucketAcl", arn.clone(), &source));
            let object = format!("{arn}/{config_logs}ConfigHistory/history.json.gz");
            deliveries.push(delivers("AWS Config", cfg, "s3:PutObject", object, &[source[0], acl]));
            log_prefixes.push(config_logs);
        }
        Guard { keep: b.lifecycle.clone(), log_prefixes, deliveries }
    }

    /// The access-log bucket receives S3's server access logs (S3 User Guide, "Enabling
    /// Amazon S3 server access logging").
    fn access_logs(profile: &Profile, a: &AccessLogBucket) -> Self {
        let partition = &profile.runtime.partition;
        let prefix = format!("{}{}/", a.prefix, profile.bucket.name);
        let source = format!("arn:{partition}:s3:::{}", profile.bucket.name);
        let context = [("aws:sourceaccount", profile.runtime.account_id.as_str()), ("aws:sourcearn", source.as_str())];
        let object = format!("arn:{partition}:s3:::{}/{prefix}log", a.name);
        let logging =
            delivers("S3 server access logging", "logging.s3.amazonaws.com", "s3:PutObject", object, &context);
        Guard { keep: a.lifecycle.clone(), log_prefixes: vec![prefix], deliveries: vec![logging] }
    }
}

impl Bucket {
    pub fn audit(profile: &Profile) -> Declared<Self> {
        let b = &profile.bucket;
        let encryption = match b.encryption {
            Encryption::Aes256 => sse_s3(),
            Encryption::Kms => SseDefault::Kms {
                sse_algorithm: ServerSideEncryption::AwsKms.as_str().to_string(),
                kms_master_key_id: b.kms_key_arn.clone(),
                bucket_key_enabled: true,
            },
        };
        let logging = profile
            .access_log_bucket
            .as_ref()
            .map(|a| Logging { target_bucket: a.name.clone(), target_prefix: format!("{}{}/", a.prefix, b.name) });
        let mut declared =
            Bucket::new(profile, &b.name, encryption, &b.policy, &b.lifecycle, logging, Guard::audit(profile));
        if let (true, Some(Kms::Managed { alias, .. })) = (b.trail_key, &profile.trail.kms) {
            let key = kms_key::address(alias, &declared.kind.region);
            declared.depends.push(key.clone());
            declared.kind.key = Some(key);
        }
        if let Some(want) = declared.want.as_mut() {
            want.object_lock = b.object_lock.as_ref().map(LockSpec::of);
            want.object_lock_enabled = want.object_lock.is_some();
            // Only turned on: someone else's rules may rely on it, so ctguard never turns it off.
            want.eventbridge_notifications = b.eventbridge_notifications.then_some(true);
        }
        declared
    }

    /// S3 server access logs can only be written with SSE-S3 (S3 User Guide, "Enabling Amazon
    /// S3 server access logging"), and a log bucket does not log its own access.
    pub fn access_logs(profile: &Profile, a: &AccessLogBucket) -> Declared<Self> {
        Bucket::new(profile, &a.name, sse_s3(), &a.policy, &a.lifecycle, None, Guard::access_logs(profile, a))
    }

    fn new(
        profile: &Profile,
        name: &str,
        encryption: SseDefault,
        policy_doc: &Value,
        lifecycle: &Lifecycle,
        logging: Option<Logging>,
        guard: Guard,
    ) -> Declared<Self> {
        let region = profile.runtime.region.clone();
        // Server access logging needs its target bucket first.
        let depends = logging
            .iter()
            .map(|l| Address { kind: KIND, name: l.target_bucket.clone(), region: region.clone() })
            .collect();
        let all = true;
        let want = BucketSpec {
            encryption: Some(encryption),
            versioning: BucketVersioningStatus::Enabled.as_str().to_string(),
            public_access_block: PublicAccessBlock {
                block_public_acls: all,
                ignore_public_acls: all,
                block_public_policy: all,
                restrict_public_buckets: all,
            },
            object_ownership: Some(ObjectOwnership::BucketOwnerEnforced.as_str().to_string()),
            policy: Some(ownership::view(policy_doc, false)),
            lifecycle: vec![lifecycle_rule(lifecycle)],
            logging,
            object_lock: None,
            object_lock_enabled: false,
            eventbridge_notifications: None,
            tags: tags::owner_tags(profile),
            foreign_lifecycle: Vec::new(),
            foreign_writers: Vec::new(),
        };
        let address = Address { kind: KIND, name: name.to_string(), region: region.clone() };
        Declared::new(Bucket { name: name.to_string(), region, guard, key: None }, address, want, depends)
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} S3 bucket {}", self.name)
    }
}

fn sse_s3() -> SseDefault {
    SseDefault::S3 { sse_algorithm: ServerSideEncryption::Aes256.as_str().to_string() }
}

/// The profile's lifecycle as the rule `flatten_rule` reads back.
fn lifecycle_rule(l: &Lifecycle) -> LifecycleRuleSpec {
    let step = |days: i32, class: TransitionStorageClass| {
        (days > 0).then(|| TransitionSpec { days: Some(days), storage_class: Some(class.as_str().to_string()) })
    };
    let transitions = [
        step(l.transition_to_ia_days, TransitionStorageClass::StandardIa),
        step(l.transition_to_glacier_days, TransitionStorageClass::Glacier),
    ];
    let days = |d: i32| (d > 0).then_some(d);
    LifecycleRuleSpec {
        id: Some(RULE_ID.to_string()),
        status: ExpirationStatus::Enabled.as_str().to_string(),
        prefix: String::new(),
        transitions: transitions.into_iter().flatten().collect(),
        expiration_days: days(l.expire_days),
        noncurrent_expiration_days: days(l.noncurrent_expire_days),
        abort_incomplete_upload_days: days(l.abort_incomplete_upload_days),
        filter: None,
        noncurrent_transitions: None,
        expired_object_delete_marker: None,
    }
}

/// A live rule in the shape of `lifecycle_rule` (flatten).
// Rules written before filters existed still carry the top-level prefix.
#[allow(deprecated)]
fn flatten_rule(r: &LifecycleRule) -> LifecycleRuleSpec {
    let other_filter = r.filter().is_some_and(|f| {
        f.tag().is_some()
            || f.and().is_some()
            || f.object_size_greater_than().is_some()
            || f.object_size_less_than().is_some()
    });
    let transitions = r
        .transitions()
        .iter()
        .map(|t| TransitionSpec { days: t.days(), storage_class: t.storage_class().map(|s| s.as_str().to_string()) })
        .collect();
    let noncurrent = r.noncurrent_version_transitions().len();
    LifecycleRuleSpec {
        id: r.id().map(str::to_string),
        status: r.status().as_str().to_string(),
        prefix: r.filter().and_then(|f| f.prefix()).or(r.prefix()).unwrap_or("").to_string(),
        transitions,
        expiration_days: r.expiration().and_then(|e| e.days()),
        noncurrent_expiration_days: r.noncurrent_version_expiration().and_then(|e| e.noncurrent_days()),
        abort_incomplete_upload_days: r.abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation()),
        filter: other_filter.then(|| "tag or size filter".to_string()),
        noncurrent_transitions: (noncurrent > 0).then_some(noncurrent),
        expired_object_delete_marker: r.expiration().and_then(|e| e.expired_object_delete_marker()).filter(|m| *m),
    }
}

/// The rule PutBucketLifecycleConfiguration writes (expand): always ctguard's own id, enabled,
/// on every object.
fn expand_rule(rule: &LifecycleRuleSpec) -> anyhow::Result<LifecycleRule> {
    let mut b = LifecycleRule::builder()
        .id(RULE_ID)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build());
    for t in &rule.transitions {
        let class = TransitionStorageClass::from(t.storage_class.as_deref().unwrap_or_default());
        b = b.transitions(Transition::builder().days(t.days.unwrap_or_default()).storage_class(class).build());
    }
    if let Some(d) = rule.expiration_days {
        b = b.expiration(LifecycleExpiration::builder().days(d).build());
    }
    if let Some(d) = rule.noncurrent_expiration_days {
        b = b.noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(d).build());
    }
    if let Some(d) = rule.abort_incomplete_upload_days {
        b = b.abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder().days_after_initiation(d).build(),
        );
    }
    Ok(b.build()?)
}

/// The default retention GetObjectLockConfiguration reports (flatten); `None` without one.
fn flatten_lock(conf: &ObjectLockConfiguration) -> Option<LockSpec> {
    let d = conf.rule()?.default_retention()?;
    Some(LockSpec {
        mode: d.mode()?.as_str().to_string(),
        days: d.days().filter(|n| *n > 0),
        years: d.years().filter(|n| *n > 0),
    })
}

/// The new KMS key a bucket moves to, if it does: `None` when the default encryption stays.
fn new_key<'a>(want: &'a BucketSpec, have: &BucketSpec) -> Option<&'a str> {
    let Some(SseDefault::Kms { kms_master_key_id: Some(key), .. }) = &want.encryption else { return None };
    let before = match &have.encryption {
        Some(SseDefault::Kms { kms_master_key_id, .. }) => kms_master_key_id.as_deref(),
        _ => None,
    };
    (before != Some(key.as_str())).then_some(key.as_str())
}

/// With SSE-KMS as the default, S3 asks KMS for a data key as the writer: writers the bucket
/// policy admits under someone else's statements fail unless the key's policy admits them, and
/// some (ELB access logs) cannot write to SSE-KMS at all. Their logs would be lost.
fn key_loss(want: &BucketSpec, have: &BucketSpec) -> Option<String> {
    let key = new_key(want, have)?;
    (!have.foreign_writers.is_empty()).then(|| {
        format!(
            "moves new objects to KMS key {key} while statements ctguard does not own let {} write here: \
             their writes fail unless the key's policy lets them generate data keys, and their logs are lost",
            have.foreign_writers.join(", ")
        )
    })
}

/// The writers of the statements of `policy` that are not ctguard's.
fn foreign_writers(policy: Option<&str>, owned: bool) -> anyhow::Result<Vec<String>> {
    let Some(text) = policy else { return Ok(Vec::new()) };
    let doc = crate::policy::parse_raw(text)?;
    let mut writers: Vec<String> =
        ownership::split(&doc, owned).foreign.iter().flat_map(|s| crate::policy::grants::object_writers(s)).collect();
    writers.sort();
    writers.dedup();
    Ok(writers)
}

fn lock_caution(want: &BucketSpec, have: Option<&BucketSpec>) -> Option<String> {
    let lock = want.object_lock.as_ref()?;
    if have.is_some_and(|h| h.object_lock_enabled) {
        return None;
    }
    let mut note =
        "turns on S3 Object Lock, which can never be switched off for this bucket, nor its versioning suspended"
            .to_string();
    if lock.mode == LockMode::Compliance.as_str() {
        note.push_str(
            "; in COMPLIANCE mode nobody, the root user included, can delete a log version or shorten its \
             retention before it expires",
        );
    }
    Some(note)
}

/// A bucket that exists and moves to a KMS key it did not use: the readers of its logs keep
/// working on the objects already there and fail on new ones unless the key lets them decrypt.
fn key_caution(want: &BucketSpec, have: Option<&BucketSpec>) -> Option<String> {
    new_key(want, have?).map(|key| {
        format!(
            "new objects are encrypted with KMS key {key}: whoever reads the logs (a SIEM, log analysis, Athena, \
             another account) also needs kms:Decrypt on that key from its key policy; objects already in the \
             bucket keep the encryption they were written with"
        )
    })
}

fn expand_lock(lock: &LockSpec) -> ObjectLockRule {
    let retention = DefaultRetention::builder()
        .mode(ObjectLockRetentionMode::from(lock.mode.as_str()))
        .set_days(lock.days)
        .set_years(lock.years)
        .build();
    ObjectLockRule::builder().default_retention(retention).build()
}

/// What a change of the default retention loses: new logs locked for less time, or less
/// firmly, from then on, however much the bucket holds now.
fn lock_loss(want: Option<&LockSpec>, have: Option<&LockSpec>) -> Vec<String> {
    let Some(have) = have else { return Vec::new() };
    let Some(want) = want else {
        return vec![format!(
            "removes the Object Lock default retention ({}): logs written from then on can be deleted at once",
            have.describe()
        )];
    };
    let mut out = Vec::new();
    let compliance = LockMode::Compliance.as_str();
    if have.mode == compliance && want.mode != compliance {
        out.push(format!(
            "switches the Object Lock default retention from COMPLIANCE to {}: logs written from then on can be \
             deleted by whoever may bypass governance retention",
            want.mode
        ));
    }
    if want.span() < have.span() {
        out.push(format!(
            "shortens the Object Lock default retention from {} to {}: logs written from then on are locked for less time",
            have.describe(),
            want.describe()
        ));
    }
    out
}

type EncryptionOutput = aws_sdk_s3::operation::get_bucket_encryption::GetBucketEncryptionOutput;

fn flatten_encryption(out: Option<&EncryptionOutput>) -> Option<SseDefault> {
    let rule = out.and_then(|e| e.server_side_encryption_configuration()).and_then(|c| c.rules().first())?;
    let d = rule.apply_server_side_encryption_by_default()?;
    let sse_algorithm = d.sse_algorithm().as_str().to_string();
    Some(match d.sse_algorithm() {
        ServerSideEncryption::Aes256 => SseDefault::S3 { sse_algorithm },
        _ => SseDefault::Kms {
            sse_algorithm,
            kms_master_key_id: d.kms_master_key_id().map(str::to_string),
            bucket_key_enabled: rule.bucket_key_enabled().unwrap_or(false),
        },
    })
}

fn expand_encryption(want: &SseDefault) -> anyhow::Result<ServerSideEncryptionConfiguration> {
    let (algorithm, key, bucket_key) = match want {
        SseDefault::S3 { sse_algorithm } => (sse_algorithm, None, false),
        SseDefault::Kms { sse_algorithm, kms_master_key_id, bucket_key_enabled } => {
            (sse_algorithm, kms_master_key_id.as_ref(), *bucket_key_enabled)
        }
    };
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::from(algorithm.as_str()))
        .set_kms_master_key_id(key.cloned());
    let mut rule = ServerSideEncryptionRule::builder();
    if bucket_key {
        rule = rule.bucket_key_enabled(true);
    }
    let rule = rule.apply_server_side_encryption_by_default(default.build()?).build();
    Ok(ServerSideEncryptionConfiguration::builder().rules(rule).build()?)
}

type PabOutput = aws_sdk_s3::operation::get_public_access_block::GetPublicAccessBlockOutput;

fn flatten_pab(out: Option<&PabOutput>) -> PublicAccessBlock {
    let pab = out.and_then(|p| p.public_access_block_configuration());
    let flag = |f: fn(&PublicAccessBlockConfiguration) -> Option<bool>| pab.and_then(f).unwrap_or(false);
    PublicAccessBlock {
        block_public_acls: flag(PublicAccessBlockConfiguration::block_public_acls),
        ignore_public_acls: flag(PublicAccessBlockConfiguration::ignore_public_acls),
        block_public_policy: flag(PublicAccessBlockConfiguration::block_public_policy),
        restrict_public_buckets: flag(PublicAccessBlockConfiguration::restrict_public_buckets),
    }
}

#[async_trait]
impl Kind for Bucket {
    type Spec = BucketSpec;

    /// A shorter expiry loses only data that is there: an empty bucket has none. A removed
    /// Deny or suspended versioning endangers the logs yet to come, so they count regardless.
    fn resolve(&self, mut want: BucketSpec, outputs: &Outputs) -> BucketSpec {
        if let (Some(key), Some(SseDefault::Kms { kms_master_key_id, .. })) = (&self.key, want.encryption.as_mut()) {
            // S3 wants the key's ARN, not its alias, for deliveries by AWS services (S3 User
            // Guide, "Specifying server-side encryption with AWS KMS").
            *kms_master_key_id = outputs.get(key).map_or(Some(UNKNOWN.to_string()), |e| e.arn.clone());
        }
        want
    }

    fn destructive(want: Option<&BucketSpec>, have: &BucketSpec, empty: bool) -> Vec<String> {
        let Some(want) = want else { return vec!["deletes the bucket and every log in it".into()] };
        let mut out = loss::removed_denies("bucket policy", want.policy.as_ref(), have.policy.as_ref());
        let enabled = BucketVersioningStatus::Enabled.as_str();
        if have.versioning == enabled && want.versioning != enabled {
            out.push("suspends versioning: logs overwritten or deleted from then on are gone for good".into());
        }
        out.extend(lock_loss(want.object_lock.as_ref(), have.object_lock.as_ref()));
        out.extend(key_loss(want, have));
        if empty {
            return out;
        }
        // Someone else's rules stay as they are: what they already expire, ctguard's cannot lose.
        let had: Vec<_> =
            have.lifecycle.iter().chain(&have.foreign_lifecycle).map(LifecycleRuleSpec::expiring).collect();
        // A bucket that never had versioning holds no noncurrent version to lose.
        let versioned = have.versioning != "Disabled";
        let wanted: Vec<_> = want
            .lifecycle
            .iter()
            .map(|r| loss::Expiring { noncurrent: r.noncurrent_expiration_days.filter(|_| versioned), ..r.expiring() })
            .collect();
        out.extend(loss::lifecycle(&wanted, &had));
        out
    }

    /// Object Lock, once on, stays on: plan says so before turning it on.
    fn cautions(want: &BucketSpec, have: Option<&BucketSpec>) -> Vec<String> {
        lock_caution(want, have).into_iter().chain(key_caution(want, have)).collect()
    }

    async fn read(&self, aws: &Aws, want: Option<&BucketSpec>) -> anyhow::Result<Option<Found<BucketSpec>>> {
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
        let wants_events = want.is_some_and(|w| w.eventbridge_notifications.is_some());
        let (
            versioning,
            encryption,
            pab,
            ownership,
            policy_doc,
            lifecycle,
            logging,
            tags,
            versions,
            lock,
            notifications,
        ) = tokio::try_join!(
            async { s3.get_bucket_versioning().bucket(b).send().await.ctx(|| self.what("reading versioning of")) },
            async { s3.get_bucket_encryption().bucket(b).send().await.found(|| self.what("reading encryption of")) },
            async {
                let req = s3.get_public_access_block().bucket(b);
                req.send().await.found(|| self.what("reading public access block of"))
            },
            async {
                let req = s3.get_bucket_ownership_controls().bucket(b);
                req.send().await.found(|| self.what("reading ownership controls of"))
            },
            async { s3.get_bucket_policy().bucket(b).send().await.found(|| self.what("reading policy of")) },
            async {
                let req = s3.get_bucket_lifecycle_configuration().bucket(b);
                req.send().await.found(|| self.what("reading lifecycle of"))
            },
            async { s3.get_bucket_logging().bucket(b).send().await.ctx(|| self.what("reading logging of")) },
            async { s3.get_bucket_tagging().bucket(b).send().await.found(|| self.what("reading tags of")) },
            // Any version, noncurrent ones too: whether a shorter expiry could delete anything.
            async {
                let req = s3.list_object_versions().bucket(b).max_keys(1);
                req.send().await.ctx(|| self.what("listing object versions of"))
            },
            async {
                let req = s3.get_object_lock_configuration().bucket(b);
                req.send().await.found(|| self.what("reading the Object Lock configuration of"))
            },
            async {
                if !wants_events {
                    return Ok(None);
                }
                let req = s3.get_bucket_notification_configuration().bucket(b);
                req.send().await.ctx(|| self.what("reading the event notifications of")).map(Some)
            },
        )?;
        let lock = lock.as_ref().and_then(|l| l.object_lock_configuration());
        let owner_rule = ownership.as_ref().and_then(|o| o.ownership_controls()).and_then(|c| c.rules().first());
        let tag_set = tags.as_ref().map(|t| t.tag_set()).unwrap_or_default();
        let owned = tag_set.iter().any(|t| t.key() == OWNER_TAG);
        let policy_text = policy_doc.as_ref().and_then(|p| p.policy());
        let policy = ownership::live_view(policy_text, owned).with_context(|| self.what("parsing the policy of"))?;
        let rules = lifecycle.as_ref().map(|l| l.rules()).unwrap_or_default();
        let logging = logging.logging_enabled().map(|l| Logging {
            target_bucket: l.target_bucket().to_string(),
            target_prefix: l.target_prefix().to_string(),
        });
        let spec = BucketSpec {
            encryption: flatten_encryption(encryption.as_ref()),
            versioning: versioning.status().map(|s| s.as_str()).unwrap_or("Disabled").to_string(),
            public_access_block: flatten_pab(pab.as_ref()),
            object_ownership: owner_rule.map(|r| r.object_ownership().as_str().to_string()),
            policy,
            lifecycle: rules.iter().filter(|r| is_ours(r)).map(flatten_rule).collect(),
            foreign_lifecycle: rules.iter().filter(|r| !is_ours(r)).map(flatten_rule).collect(),
            foreign_writers: foreign_writers(policy_text, owned)?,
            logging,
            object_lock: lock.and_then(flatten_lock),
            object_lock_enabled: lock.is_some_and(|l| l.object_lock_enabled() == Some(&ObjectLockEnabled::Enabled)),
            eventbridge_notifications: notifications.map(|n| n.event_bridge_configuration().is_some()),
            tags: tags::managed(tag_set.iter().map(|t| (t.key(), t.value()))),
        };
        // A merged policy AWS would refuse fails here, before apply makes any change.
        if let Some(want) = want
            && let Some(policy) = &want.policy
            && spec.policy.as_ref() != Some(policy)
        {
            let block = want.public_access_block.block_public_policy;
            self.policy_to_write(policy_text, policy, owned, block)?;
        }
        let empty = versions.versions().is_empty() && versions.delete_markers().is_empty();
        let undeclared_lock = spec.object_lock_enabled && want.is_some_and(|w| w.object_lock.is_none());
        let mut found = Found { empty, ..Found::new(spec) };
        if undeclared_lock && found.spec.object_lock.is_none() {
            found.notes.push(
                "S3 Object Lock is on for this bucket (it can never be switched off), with no default retention".into(),
            );
        }
        if let Some(text) = policy_text {
            let doc = crate::policy::parse_raw(text)?;
            found.checks.extend(foreign::statements(&doc, owned, "bucket policy", &self.guard.deliveries));
        }
        found.checks.extend(foreign::lifecycle(rules, is_ours, &self.guard.keep, &self.guard.log_prefixes));
        Ok(Some(found))
    }

    async fn create(&self, aws: &Aws, want: &BucketSpec) -> anyhow::Result<()> {
        // Tagged as it is made, so a run killed right after leaves a bucket the next run knows
        // as its own rather than one it would have to be told to adopt.
        let mut conf = CreateBucketConfiguration::builder().set_tags(Some(tags::sdk::<Tag>(&want.tags)?));
        // us-east-1 is the default location and must not be named.
        if self.region != "us-east-1" {
            conf = conf.location_constraint(BucketLocationConstraint::from(self.region.as_str()));
        }
        let req = aws
            .s3
            .create_bucket()
            .bucket(&self.name)
            .object_ownership(ObjectOwnership::BucketOwnerEnforced)
            // With Object Lock from the start, which also enables versioning.
            .set_object_lock_enabled_for_bucket(want.object_lock.is_some().then_some(true))
            .create_bucket_configuration(conf.build());
        // Made by an earlier, interrupted run or not: configure everything.
        created(req.send().await.ctx(|| self.what("creating")))?;
        self.update(aws, &Delta::all(want)).await
    }

    async fn update(&self, aws: &Aws, delta: &Delta<'_, BucketSpec>) -> anyhow::Result<()> {
        let s3 = &aws.s3;
        let b = self.name.as_str();
        let want = delta.want;
        // One configuration call at a time: S3 answers OperationAborted to concurrent changes
        // of the same bucket. Ownership and public access first, so nothing is ever open.
        if delta.changed(|s| &s.object_ownership) {
            let rule =
                OwnershipControlsRule::builder().object_ownership(ObjectOwnership::BucketOwnerEnforced).build()?;
            let controls = OwnershipControls::builder().rules(rule).build()?;
            let req = s3.put_bucket_ownership_controls().bucket(b).ownership_controls(controls);
            req.send().await.ctx(|| self.what("enforcing bucket-owner ownership (no ACLs) on"))?;
        }
        if delta.changed(|s| &s.public_access_block) {
            let p = &want.public_access_block;
            let conf = PublicAccessBlockConfiguration::builder()
                .block_public_acls(p.block_public_acls)
                .ignore_public_acls(p.ignore_public_acls)
                .block_public_policy(p.block_public_policy)
                .restrict_public_buckets(p.restrict_public_buckets)
                .build();
            let req = s3.put_public_access_block().bucket(b).public_access_block_configuration(conf);
            req.send().await.ctx(|| self.what("blocking public access to"))?;
        }
        if delta.changed(|s| &s.encryption)
            && let Some(encryption) = &want.encryption
        {
            let req = s3.put_bucket_encryption().bucket(b);
            req.server_side_encryption_configuration(expand_encryption(encryption)?)
                .send()
                .await
                .ctx(|| self.what("setting default encryption of"))?;
        }
        if delta.changed(|s| &s.versioning) {
            let conf = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
            let req = s3.put_bucket_versioning().bucket(b).versioning_configuration(conf);
            req.send().await.ctx(|| self.what("enabling versioning of"))?;
        }
        // After versioning: S3 takes an Object Lock configuration only on a versioned bucket.
        if delta.changed(|s| &s.object_lock) {
            self.put_object_lock(aws, want.object_lock.as_ref()).await?;
        }
        if delta.changed(|s| &s.policy)
            && let Some(policy) = &want.policy
        {
            self.put_policy(aws, policy, want.public_access_block.block_public_policy).await?;
        }
        if delta.changed(|s| &s.lifecycle) {
            self.put_lifecycle(aws, &want.lifecycle).await?;
        }
        if delta.changed(|s| &s.logging) {
            let mut status = BucketLoggingStatus::builder();
            if let Some(target) = &want.logging {
                let enabled = LoggingEnabled::builder()
                    .target_bucket(&target.target_bucket)
                    .target_prefix(&target.target_prefix)
                    .build()?;
                status = status.logging_enabled(enabled);
            }
            let req = s3.put_bucket_logging().bucket(b).bucket_logging_status(status.build());
            req.send().await.ctx(|| self.what("setting access logging of"))?;
        }
        if delta.changed(|s| &s.eventbridge_notifications) && want.eventbridge_notifications == Some(true) {
            self.put_eventbridge_notifications(aws).await?;
        }
        if delta.changed(|s| &s.tags) {
            self.put_tags(aws, &want.tags).await?;
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
    /// PutBucketPolicy replaces the whole document: ctguard's statements are merged into the
    /// document as it is now, read again so a statement added since plan is kept too.
    async fn put_policy(&self, aws: &Aws, want: &Value, block_public: bool) -> anyhow::Result<()> {
        let s3 = &aws.s3;
        let b = self.name.as_str();
        let (live, tags) = tokio::try_join!(
            async { s3.get_bucket_policy().bucket(b).send().await.found(|| self.what("reading policy of")) },
            async { s3.get_bucket_tagging().bucket(b).send().await.found(|| self.what("reading tags of")) },
        )?;
        let owned = tags.is_some_and(|t| t.tag_set().iter().any(|t| t.key() == OWNER_TAG));
        let text = live.as_ref().and_then(|p| p.policy());
        let doc = self.policy_to_write(text, want, owned, block_public)?;
        s3.put_bucket_policy().bucket(b).policy(doc).send().await.ctx(|| self.what("setting the policy of"))?;
        Ok(())
    }

    /// The merged policy, checked against S3's rules. With BlockPublicPolicy on, S3 rejects a
    /// PutBucketPolicy whose document is public (S3 User Guide, "Blocking public access to
    /// your Amazon S3 storage"): a statement of someone else's that grants anyone access
    /// would make the write fail halfway through an apply, so it is refused first, by name.
    fn policy_to_write(
        &self,
        live: Option<&str>,
        want: &Value,
        owned: bool,
        block_public: bool,
    ) -> anyhow::Result<String> {
        let text = ownership::to_write(live, want, owned, &Rules::s3_bucket(), &self.what("the"))?;
        if block_public {
            let doc: Value = serde_json::from_str(&text)?;
            let all = ownership::statements(&doc);
            if let Some((i, s)) = all.iter().enumerate().find(|(_, s)| crate::policy::grants::grants_public(s)) {
                anyhow::bail!(
                    "refusing to write the S3 bucket policy of {}: {}, which ctguard does not own, grants access \
                     to anyone, and S3 rejects such a policy once public policies are blocked; remove or restrict \
                     that statement, then apply again",
                    self.name,
                    ownership::label(s, i)
                );
            }
        }
        Ok(text)
    }

    /// PutBucketLifecycleConfiguration replaces the whole configuration: every rule ctguard
    /// does not own is written back as the SDK read it, with every field, and so is the
    /// configuration's default minimum transition size.
    async fn put_lifecycle(&self, aws: &Aws, want: &[LifecycleRuleSpec]) -> anyhow::Result<()> {
        let s3 = &aws.s3;
        let b = self.name.as_str();
        let req = s3.get_bucket_lifecycle_configuration().bucket(b);
        let live = req.send().await.found(|| self.what("reading lifecycle of"))?;
        let mut rules: Vec<LifecycleRule> =
            live.as_ref().map(|l| l.rules().iter().filter(|r| !is_ours(r)).cloned().collect()).unwrap_or_default();
        for rule in want {
            rules.push(expand_rule(rule)?);
        }
        let conf = BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build()?;
        let min_size = live.as_ref().and_then(|l| l.transition_default_minimum_object_size()).cloned();
        let req = s3.put_bucket_lifecycle_configuration().bucket(b).lifecycle_configuration(conf);
        req.set_transition_default_minimum_object_size(min_size)
            .send()
            .await
            .ctx(|| self.what("setting the lifecycle of"))?;
        Ok(())
    }

    /// PutObjectLockConfiguration turns Object Lock on (on an existing bucket too, once it is
    /// versioned: S3 User Guide, "Configuring S3 Object Lock") and sets the default retention.
    /// Without one declared it only removes the default retention, and only where there is
    /// one: it must never turn Object Lock on for a bucket that did not ask.
    async fn put_object_lock(&self, aws: &Aws, want: Option<&LockSpec>) -> anyhow::Result<()> {
        let s3 = &aws.s3;
        let b = self.name.as_str();
        let rule = match want {
            Some(lock) => Some(expand_lock(lock)),
            None => {
                let req = s3.get_object_lock_configuration().bucket(b);
                let live = req.send().await.found(|| self.what("reading the Object Lock configuration of"))?;
                if live.as_ref().and_then(|l| l.object_lock_configuration()).and_then(|c| c.rule()).is_none() {
                    return Ok(());
                }
                None
            }
        };
        let conf =
            ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled).set_rule(rule).build();
        let req = s3.put_object_lock_configuration().bucket(b).object_lock_configuration(conf);
        req.send().await.ctx(|| self.what("setting Object Lock on"))?;
        Ok(())
    }

    /// PutBucketNotificationConfiguration replaces the whole configuration: every topic, queue
    /// and function someone else configured is written back as read, with EventBridge added.
    /// Their destinations are not validated again (SkipDestinationValidation): they are not
    /// ctguard's, and one that no longer accepts S3's test message must not stop the apply.
    async fn put_eventbridge_notifications(&self, aws: &Aws) -> anyhow::Result<()> {
        let s3 = &aws.s3;
        let b = self.name.as_str();
        let req = s3.get_bucket_notification_configuration().bucket(b);
        let live = req.send().await.ctx(|| self.what("reading the event notifications of"))?;
        let conf = NotificationConfiguration::builder()
            .set_topic_configurations(Some(live.topic_configurations().to_vec()))
            .set_queue_configurations(Some(live.queue_configurations().to_vec()))
            .set_lambda_function_configurations(Some(live.lambda_function_configurations().to_vec()))
            .event_bridge_configuration(EventBridgeConfiguration::builder().build())
            .build();
        let req = s3.put_bucket_notification_configuration().bucket(b).notification_configuration(conf);
        req.skip_destination_validation(true)
            .send()
            .await
            .ctx(|| self.what("turning on EventBridge notifications for"))?;
        Ok(())
    }

    /// PutBucketTagging replaces the whole set: keep the tags ctguard does not declare.
    async fn put_tags(&self, aws: &Aws, want: &Tags) -> anyhow::Result<()> {
        let current =
            aws.s3.get_bucket_tagging().bucket(&self.name).send().await.found(|| self.what("reading tags of"))?;
        let mut set: Vec<Tag> = current
            .map(|t| t.tag_set().iter().filter(|t| !MANAGED_KEYS.contains(&t.key())).cloned().collect())
            .unwrap_or_default();
        set.extend(tags::sdk::<Tag>(want)?);
        let tagging = Tagging::builder().set_tag_set(Some(set)).build()?;
        aws.s3.put_bucket_tagging().bucket(&self.name).tagging(tagging).send().await.ctx(|| self.what("tagging"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_lifecycle_round_trips_through_the_sdk_shape() {
        let want = lifecycle_rule(&Lifecycle::default());
        let built = expand_rule(&want).unwrap();
        assert_eq!(flatten_rule(&built), want);
    }

    fn lock(mode: &str, days: Option<i32>, years: Option<i32>) -> LockSpec {
        LockSpec { mode: mode.into(), days, years }
    }

    #[test]
    fn a_default_retention_round_trips_through_the_sdk_shape() {
        for l in [lock("GOVERNANCE", Some(30), None), lock("COMPLIANCE", None, Some(7))] {
            let conf = ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(expand_lock(&l))
                .build();
            assert_eq!(flatten_lock(&conf), Some(l));
        }
        let bare = ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled).build();
        assert_eq!(flatten_lock(&bare), None);
    }

    #[test]
    fn removing_shortening_or_weakening_the_default_retention_is_destructive() {
        let (g30, g1y, c30) =
            (lock("GOVERNANCE", Some(30), None), lock("GOVERNANCE", None, Some(1)), lock("COMPLIANCE", Some(30), None));
        assert!(lock_loss(Some(&g1y), Some(&g30)).is_empty(), "a year is longer than 30 days");
        assert!(lock_loss(Some(&c30), Some(&g30)).is_empty(), "COMPLIANCE is firmer");
        assert!(lock_loss(Some(&g30), None).is_empty(), "turning it on loses nothing");
        assert!(lock_loss(None, None).is_empty());
        let shorter = lock_loss(Some(&g30), Some(&g1y));
        assert_eq!(shorter.len(), 1);
        assert!(shorter[0].contains("shortens") && shorter[0].contains("GOVERNANCE 1 years"), "{shorter:?}");
        let weaker = lock_loss(Some(&g30), Some(&c30));
        assert_eq!(weaker.len(), 1);
        assert!(weaker[0].contains("from COMPLIANCE to GOVERNANCE"), "{weaker:?}");
        let removed = lock_loss(None, Some(&c30));
        assert!(removed[0].starts_with("removes the Object Lock default retention (COMPLIANCE 30 days)"));
    }

    #[test]
    fn plan_says_object_lock_stays_on_before_turning_it_on() {
        let mut p = crate::resources::testing::flagship();
        p.bucket.object_lock = Some(ObjectLock { mode: LockMode::Compliance, days: Some(400), years: None });
        let want = Bucket::audit(&p).want.unwrap();
        let off = BucketSpec { object_lock: None, object_lock_enabled: false, ..want.clone() };
        for have in [None, Some(&off)] {
            let notes = Bucket::cautions(&want, have);
            assert!(notes.len() == 1 && notes[0].contains("can never be switched off"), "{notes:?}");
            assert!(notes[0].contains("COMPLIANCE mode nobody"), "{notes:?}");
        }
        let on = BucketSpec { object_lock: Some(lock("GOVERNANCE", Some(1), None)), ..want.clone() };
        assert!(Bucket::cautions(&want, Some(&on)).is_empty(), "already on: nothing new to say");
        assert!(Bucket::cautions(&off, None).is_empty(), "no Object Lock declared");
    }

    #[test]
    fn plan_says_readers_need_the_key_when_an_existing_bucket_moves_to_one() {
        let mut want = Bucket::audit(&crate::resources::testing::flagship()).want.unwrap();
        want.object_lock = None;
        let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        want.encryption = Some(SseDefault::Kms {
            sse_algorithm: "aws:kms".into(),
            kms_master_key_id: Some(key.into()),
            bucket_key_enabled: true,
        });
        let on_s3 = BucketSpec { encryption: Some(sse_s3()), ..want.clone() };
        let notes = Bucket::cautions(&want, Some(&on_s3));
        assert!(notes.len() == 1 && notes[0].contains("needs kms:Decrypt on that key"), "{notes:?}");
        assert!(Bucket::cautions(&want, Some(&want)).is_empty(), "already on that key");
        assert!(Bucket::cautions(&want, None).is_empty(), "a new bucket has no readers yet");

        // Someone else's writers make the move a loss, withheld without --allow-data-loss.
        assert!(Bucket::destructive(Some(&want), &on_s3, false).is_empty(), "only ctguard's writers");
        let shared = BucketSpec { foreign_writers: vec!["AWS:arn:aws:iam::127311923021:root".into()], ..on_s3 };
        let lost = Bucket::destructive(Some(&want), &shared, false);
        assert!(lost.len() == 1 && lost[0].contains("AWS:arn:aws:iam::127311923021:root write here"), "{lost:?}");
        assert!(
            Bucket::destructive(Some(&want), &BucketSpec { encryption: want.encryption.clone(), ..shared }, false)
                .is_empty()
        );
    }

    #[test]
    fn the_writers_of_statements_ctguard_does_not_own_are_read() {
        let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "CtguardCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:PutObject", "Resource": "*"},
            {"Sid": "ElbLogs", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::127311923021:root"},
             "Action": "s3:PutObject", "Resource": "*"},
            {"Sid": "Readers", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
             "Action": "s3:GetObject", "Resource": "*"}
        ]});
        let writers = foreign_writers(Some(&policy.to_string()), true).unwrap();
        assert_eq!(writers, ["AWS:arn:aws:iam::127311923021:root"]);
        assert!(foreign_writers(None, true).unwrap().is_empty());
    }

    #[test]
    fn disabled_steps_are_left_out() {
        let l = Lifecycle { transition_to_glacier_days: 0, expire_days: 0, ..Lifecycle::default() };
        let rule = lifecycle_rule(&l);
        assert_eq!(rule.transitions.len(), 1);
        assert_eq!(rule.expiration_days, None);
        assert_eq!(flatten_rule(&expand_rule(&rule).unwrap()), rule);
    }
}

#[cfg(test)]
mod kind_tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::resources::testing::{aws, flagship, mock};
    use aws_sdk_s3::{Client, operation as s3};

    #[tokio::test]
    async fn reads_every_setting_of_a_hardened_bucket() {
        let p = flagship();
        let bucket = Bucket::audit(&p);
        let want = bucket.want.clone().unwrap();
        let (w1, w2, w3, w4) = (want.clone(), want.clone(), want.clone(), want.clone());
        let rules = [
            mock!(Client::head_bucket).then_output(|| s3::head_bucket::HeadBucketOutput::builder().build()),
            mock!(Client::get_bucket_versioning).then_output(|| {
                s3::get_bucket_versioning::GetBucketVersioningOutput::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build()
            }),
            mock!(Client::get_bucket_encryption).then_output(move || {
                let conf = expand_encryption(w1.encryption.as_ref().unwrap()).unwrap();
                s3::get_bucket_encryption::GetBucketEncryptionOutput::builder()
                    .server_side_encryption_configuration(conf)
                    .build()
            }),
            mock!(Client::get_public_access_block).then_output(|| {
                let conf = PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build();
                s3::get_public_access_block::GetPublicAccessBlockOutput::builder()
                    .public_access_block_configuration(conf)
                    .build()
            }),
            mock!(Client::get_bucket_ownership_controls).then_output(|| {
                let rule = OwnershipControlsRule::builder().object_ownership(ObjectOwnership::BucketOwnerEnforced);
                let controls = OwnershipControls::builder().rules(rule.build().unwrap()).build().unwrap();
                s3::get_bucket_ownership_controls::GetBucketOwnershipControlsOutput::builder()
                    .ownership_controls(controls)
                    .build()
            }),
            mock!(Client::get_bucket_policy).then_output(move || {
                s3::get_bucket_policy::GetBucketPolicyOutput::builder()
                    .policy(serde_json::to_string(&w2.policy).unwrap())
                    .build()
            }),
            mock!(Client::get_bucket_lifecycle_configuration).then_output(move || {
                let rules = w3.lifecycle.iter().map(|r| expand_rule(r).unwrap()).collect();
                s3::get_bucket_lifecycle_configuration::GetBucketLifecycleConfigurationOutput::builder()
                    .set_rules(Some(rules))
                    .build()
            }),
            mock!(Client::get_bucket_logging).then_output(move || {
                let l = w4.logging.as_ref().unwrap();
                let enabled =
                    LoggingEnabled::builder().target_bucket(&l.target_bucket).target_prefix(&l.target_prefix).build();
                s3::get_bucket_logging::GetBucketLoggingOutput::builder().logging_enabled(enabled.unwrap()).build()
            }),
            mock!(Client::get_bucket_tagging).then_output(|| {
                let owner = Tag::builder().key("ctguard:profile").value("ai-agent-guard").build().unwrap();
                let theirs = Tag::builder().key("cost-center").value("42").build().unwrap();
                s3::get_bucket_tagging::GetBucketTaggingOutput::builder()
                    .tag_set(owner)
                    .tag_set(theirs)
                    .build()
                    .unwrap()
            }),
            mock!(Client::list_object_versions)
                .match_requests(|r| r.max_keys() == Some(1))
                .then_output(|| s3::list_object_versions::ListObjectVersionsOutput::builder().build()),
            mock!(Client::get_object_lock_configuration)
                .then_http_response(|| not_found("ObjectLockConfigurationNotFoundError")),
            mock!(Client::get_bucket_notification_configuration).then_output(|| {
                let on = EventBridgeConfiguration::builder().build();
                s3::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput::builder()
                    .event_bridge_configuration(on)
                    .build()
            }),
        ];
        let aws = aws(&rules.iter().collect::<Vec<_>>());
        let found = bucket.kind.read(&aws, Some(&want)).await.unwrap().unwrap();
        assert_eq!(found.spec, want);
        assert!(found.empty, "no object version listed: nothing a shorter expiry could delete");
    }

    fn not_found(code: &str) -> aws_smithy_runtime_api::client::orchestrator::HttpResponse {
        let body = format!("<Error><Code>{code}</Code><Message>absent</Message></Error>");
        let status = aws_smithy_runtime_api::http::StatusCode::try_from(404).unwrap();
        aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(status, body.into())
    }

    /// A rule someone else wrote, using fields ctguard's own rules never do.
    fn their_rule() -> LifecycleRule {
        use aws_sdk_s3::types::{LifecycleRuleAndOperator, NoncurrentVersionTransition};
        let and = LifecycleRuleAndOperator::builder()
            .prefix("exports/")
            .tags(Tag::builder().key("team").value("data").build().unwrap())
            .object_size_greater_than(1024)
            .build();
        LifecycleRule::builder()
            .id("team-exports")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().and(and).build())
            .noncurrent_version_transitions(
                NoncurrentVersionTransition::builder()
                    .noncurrent_days(10)
                    .newer_noncurrent_versions(2)
                    .storage_class(TransitionStorageClass::GlacierIr)
                    .build(),
            )
            .expiration(LifecycleExpiration::builder().expired_object_delete_marker(true).build())
            .build()
            .unwrap()
    }

    fn their_statement() -> serde_json::Value {
        serde_json::json!({"Sid": "TeamReads", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:root"]},
                           "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/exports/*",
                           "Condition": {"Bool": {"aws:SecureTransport": true}}})
    }

    #[tokio::test]
    async fn an_update_keeps_every_rule_and_statement_it_does_not_own() {
        use aws_sdk_s3::types::TransitionDefaultMinimumObjectSize;
        let p = flagship();
        let bucket = Bucket::audit(&p);
        let want = bucket.want.clone().unwrap();
        let old_rule = LifecycleRuleSpec { expiration_days: Some(1), ..want.lifecycle[0].clone() };
        let have = BucketSpec { policy: None, lifecycle: vec![old_rule.clone()], ..want.clone() };
        let min = TransitionDefaultMinimumObjectSize::VariesByStorageClass;
        let (m1, m2) = (min.clone(), min.clone());
        let keep = want.lifecycle[0].expiration_days;
        let live_policy = serde_json::json!({"Version": "2012-10-17", "Id": "team",
            "Statement": [their_statement(), {"Sid": "CtguardOld", "Effect": "Allow", "Action": "s3:*"}]});
        let rules = [
            mock!(Client::get_bucket_lifecycle_configuration).then_output(move || {
                s3::get_bucket_lifecycle_configuration::GetBucketLifecycleConfigurationOutput::builder()
                    .rules(their_rule())
                    .rules(expand_rule(&old_rule).unwrap())
                    .transition_default_minimum_object_size(m1.clone())
                    .build()
            }),
            mock!(Client::put_bucket_lifecycle_configuration)
                .match_requests(move |r| {
                    let rules = r.lifecycle_configuration().unwrap().rules();
                    rules.len() == 2
                        && rules[0] == their_rule()
                        && rules[1].expiration().and_then(|e| e.days()) == keep
                        && r.transition_default_minimum_object_size() == Some(&m2)
                })
                .then_output(|| {
                    s3::put_bucket_lifecycle_configuration::PutBucketLifecycleConfigurationOutput::builder().build()
                }),
            mock!(Client::get_bucket_policy).then_output(move || {
                s3::get_bucket_policy::GetBucketPolicyOutput::builder().policy(live_policy.to_string()).build()
            }),
            mock!(Client::get_bucket_tagging).then_output(|| {
                let owner = Tag::builder().key(OWNER_TAG).value("ai-agent-guard").build().unwrap();
                s3::get_bucket_tagging::GetBucketTaggingOutput::builder().tag_set(owner).build().unwrap()
            }),
            mock!(Client::put_bucket_policy)
                .match_requests(|r| {
                    let doc: serde_json::Value = serde_json::from_str(r.policy().unwrap()).unwrap();
                    let list = doc["Statement"].as_array().unwrap();
                    doc["Id"] == "team"
                        && list[0] == their_statement()
                        && list.iter().all(|s| s["Sid"] != "CtguardOld")
                        && list.iter().filter(|s| s["Sid"].as_str().is_some_and(|s| s.starts_with("Ctguard"))).count()
                            == 6
                })
                .then_output(|| s3::put_bucket_policy::PutBucketPolicyOutput::builder().build()),
        ];
        let aws = aws(&rules.iter().collect::<Vec<_>>());
        bucket.kind.update(&aws, &Delta::between(&want, Some(&have))).await.unwrap();
        assert_eq!(rules[1].num_calls(), 1);
        assert_eq!(rules[4].num_calls(), 1);
    }

    #[tokio::test]
    async fn turning_on_eventbridge_keeps_every_notification_it_does_not_own() {
        use aws_sdk_s3::types::{
            Event, FilterRule, FilterRuleName, NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
            TopicConfiguration,
        };
        let p = flagship();
        let bucket = Bucket::audit(&p);
        let want = bucket.want.clone().unwrap();
        assert_eq!(want.eventbridge_notifications, Some(true));
        let have = BucketSpec { eventbridge_notifications: Some(false), ..want.clone() };
        let suffix = FilterRule::builder().name(FilterRuleName::Suffix).value(".gz").build();
        let filter =
            NotificationConfigurationFilter::builder().key(S3KeyFilter::builder().filter_rules(suffix).build()).build();
        let topic = TopicConfiguration::builder()
            .id("team-topic")
            .topic_arn("arn:aws:sns:us-east-1:123456789012:team")
            .events(Event::S3ObjectCreated)
            .filter(filter)
            .build()
            .unwrap();
        let queue = QueueConfiguration::builder()
            .id("team-queue")
            .queue_arn("arn:aws:sqs:us-east-1:123456789012:team")
            .events(Event::S3ObjectRemoved)
            .build()
            .unwrap();
        let (t1, q1) = (topic.clone(), queue.clone());
        let rules = [
            mock!(Client::get_bucket_notification_configuration).then_output(move || {
                s3::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput::builder()
                    .topic_configurations(t1.clone())
                    .queue_configurations(q1.clone())
                    .build()
            }),
            mock!(Client::put_bucket_notification_configuration)
                .match_requests(move |r| {
                    let c = r.notification_configuration().unwrap();
                    c.topic_configurations() == [topic.clone()]
                        && c.queue_configurations() == [queue.clone()]
                        && c.lambda_function_configurations().is_empty()
                        && c.event_bridge_configuration().is_some()
                        && r.skip_destination_validation() == Some(true)
                })
                .then_output(|| {
                    s3::put_bucket_notification_configuration::PutBucketNotificationConfigurationOutput::builder()
                        .build()
                }),
        ];
        let aws = aws(&rules.iter().collect::<Vec<_>>());
        bucket.kind.update(&aws, &Delta::between(&want, Some(&have))).await.unwrap();
        assert_eq!(rules[1].num_calls(), 1);
    }

    #[test]
    fn eventbridge_is_declared_only_where_the_profile_turns_it_on() {
        let mut p = flagship();
        let access = p.access_log_bucket.clone().unwrap();
        assert_eq!(Bucket::access_logs(&p, &access).want.unwrap().eventbridge_notifications, None);
        p.bucket.eventbridge_notifications = false;
        // Off in the profile: left as found, never turned off (someone else may rely on it).
        assert_eq!(Bucket::audit(&p).want.unwrap().eventbridge_notifications, None);
    }

    #[tokio::test]
    async fn no_declared_lock_never_turns_object_lock_on() {
        let p = flagship();
        let bucket = Bucket::audit(&p);
        let rules = [mock!(Client::get_object_lock_configuration)
            .then_http_response(|| not_found("ObjectLockConfigurationNotFoundError"))];
        let aws = aws(&rules.iter().collect::<Vec<_>>());
        // A call no rule matches (PutObjectLockConfiguration) would panic.
        bucket.kind.put_object_lock(&aws, None).await.unwrap();
        assert_eq!(rules[0].num_calls(), 1);
    }

    #[tokio::test]
    async fn a_dropped_lock_removes_only_the_default_retention() {
        let p = flagship();
        let bucket = Bucket::audit(&p);
        let rules = [
            mock!(Client::get_object_lock_configuration).then_output(|| {
                let conf = ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::Enabled)
                    .rule(expand_lock(&LockSpec { mode: "GOVERNANCE".into(), days: Some(3), years: None }))
                    .build();
                s3::get_object_lock_configuration::GetObjectLockConfigurationOutput::builder()
                    .object_lock_configuration(conf)
                    .build()
            }),
            mock!(Client::put_object_lock_configuration)
                .match_requests(|r| {
                    let c = r.object_lock_configuration().unwrap();
                    c.object_lock_enabled() == Some(&ObjectLockEnabled::Enabled) && c.rule().is_none()
                })
                .then_output(|| s3::put_object_lock_configuration::PutObjectLockConfigurationOutput::builder().build()),
        ];
        let aws = aws(&rules.iter().collect::<Vec<_>>());
        bucket.kind.put_object_lock(&aws, None).await.unwrap();
        assert_eq!(rules[1].num_calls(), 1);
    }

    #[test]
    fn a_foreign_public_statement_is_refused_before_s3_would() {
        let p = flagship();
        let bucket = Bucket::audit(&p);
        let want = bucket.want.clone().unwrap().policy.unwrap();
        let public = serde_json::json!({"Sid": "Website", "Effect": "Allow", "Principal": "*",
                                        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"});
        let live = serde_json::json!({"Statement": [their_statement(), public]}).to_string();
        let e = bucket.kind.policy_to_write(Some(&live), &want, true, true).unwrap_err().to_string();
        assert!(e.contains("statement \"Website\"") && e.contains("grants access to anyone"), "{e}");
        // Without the block, S3 takes it (and verify reports it).
        assert!(bucket.kind.policy_to_write(Some(&live), &want, true, false).is_ok());
    }

    #[tokio::test]
    async fn a_bucket_is_closed_before_anything_else_is_set() {
        let p = flagship();
        let bucket = Bucket::access_logs(&p, p.access_log_bucket.as_ref().unwrap());
        let want = bucket.want.clone().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        // Each write notes its name when it is made.
        macro_rules! noted {
            ($op:ident, $output:ty, $name:expr) => {{
                let order = order.clone();
                mock!(Client::$op)
                    .match_requests(move |_| {
                        order.lock().unwrap().push($name);
                        true
                    })
                    .then_output(|| <$output>::builder().build())
            }};
        }
        use aws_sdk_s3::operation as op;
        let owned = mock!(Client::create_bucket).then_error(|| {
            s3::create_bucket::CreateBucketError::BucketAlreadyOwnedByYou(
                aws_sdk_s3::types::error::BucketAlreadyOwnedByYou::builder().build(),
            )
        });
        let rules = [
            owned,
            noted!(
                put_bucket_ownership_controls,
                op::put_bucket_ownership_controls::PutBucketOwnershipControlsOutput,
                "ownership"
            ),
            noted!(put_public_access_block, op::put_public_access_block::PutPublicAccessBlockOutput, "public access"),
            noted!(put_bucket_encryption, op::put_bucket_encryption::PutBucketEncryptionOutput, "encryption"),
            noted!(put_bucket_versioning, op::put_bucket_versioning::PutBucketVersioningOutput, "versioning"),
            noted!(put_bucket_policy, op::put_bucket_policy::PutBucketPolicyOutput, "policy"),
            noted!(
                put_bucket_lifecycle_configuration,
                op::put_bucket_lifecycle_configuration::PutBucketLifecycleConfigurationOutput,
                "lifecycle"
            ),
            mock!(Client::put_bucket_logging)
                .match_requests(|r| r.bucket_logging_status().is_some_and(|s| s.logging_enabled().is_none()))
                .then_output(|| op::put_bucket_logging::PutBucketLoggingOutput::builder().build()),
            // A bucket without tags, policy or lifecycle: S3's answers have only an (unmodelled)
            // error code.
            mock!(Client::get_bucket_tagging).then_http_response(|| not_found("NoSuchTagSet")),
            mock!(Client::get_bucket_policy).then_http_response(|| not_found("NoSuchBucketPolicy")),
            mock!(Client::get_bucket_lifecycle_configuration)
                .then_http_response(|| not_found("NoSuchLifecycleConfiguration")),
            // No Object Lock declared: read, found off, left off.
            mock!(Client::get_object_lock_configuration)
                .then_http_response(|| not_found("ObjectLockConfigurationNotFoundError")),
            mock!(Client::put_bucket_tagging)
                .match_requests(|r| r.tagging().is_some_and(|t| t.tag_set().len() == 1))
                .then_output(|| op::put_bucket_tagging::PutBucketTaggingOutput::builder().build()),
        ];
        let aws = aws(&rules.iter().collect::<Vec<_>>());
        bucket.kind.create(&aws, &want).await.unwrap();
        let order = order.lock().unwrap().clone();
        assert_eq!(order, ["ownership", "public access", "encryption", "versioning", "policy", "lifecycle"]);
    }
}
