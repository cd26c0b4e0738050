//! The IAM policies ctguard needs, scoped to what one profile declares. One table says, for
//! every action ctguard calls, whether plan and verify need it or only apply, and what it
//! touches (`On`); the policy is that table with the profile's names filled in. The printed
//! policies, the README's list of unscoped actions and the test that watches every call at the
//! emulator (tests/permissions.rs) all read this table.
//!
//! Writes name the declared resources, or ctguard's name prefix and role path where apply may
//! delete what the profile dropped (`resources::discovery` looks for nothing else). Reads name
//! the declared buckets, and elsewhere the resource type across the account, because finding
//! what the profile dropped reads the tags of every trail, role, rule and alarm in reach.
//! `"Resource": "*"` only where AWS offers no resource-level permission (`UNSCOPED` says why).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::profile::{Kms, Profile};
use crate::resources::discovery::PREFIX;
use crate::resources::kms_key::ALIAS_TAG;
use crate::resources::tags::OWNER_TAG;

/// IAM's quota for a customer managed policy, in characters without white space.
pub const MANAGED_POLICY_LIMIT: usize = 6_144;

/// Where `resources::discovery` looks for roles when the profile declares no log role.
const DROPPED_ROLES_PATH: &str = "/ctguard/";

/// Who needs an action: plan, verify and validate-logs (read), apply as well (write), or only
/// `destroy` (deleting what holds audit data: apply's policy leaves these out, so a role that
/// applies in CI cannot remove the logs it set up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
    Destroy,
}

/// What an action touches, as a statement's `Resource` and `Condition` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum On {
    /// No resource-level permission: `"*"` (the reason is in `UNSCOPED`).
    Anything,
    /// The same, for KMS calls made only when ctguard creates a key.
    AnyKey,
    /// The same, for AWS Config's recorder and delivery channel (one each per region).
    AnyConfig,
    /// The same, for the Organizations reads made only for `[trail] organization = true`.
    AnyOrganization,
    /// The same, for DescribeOrganization: made for an organization trail, and in the account
    /// that owns the central bus (`[events] central_bus`), whose policy names the organization.
    OrganizationId,
    /// The declared buckets.
    Buckets,
    /// Every object in the declared buckets.
    BucketObjects,
    /// The audit bucket, when the profile has it send its object events to EventBridge.
    AuditBucketEvents,
    /// The trail's log and digest files in the audit bucket.
    TrailLogs,
    /// The declared trail, and trails named with ctguard's prefix (a renamed trail).
    Trails,
    /// Every trail of the account: owned ones are found by their tags.
    AnyTrail,
    /// The declared log group.
    LogGroup,
    /// Every log group in the home region (DescribeLogGroups lists by prefix).
    AnyLogGroup,
    /// The declared roles, and every role under their paths other than `/`.
    Roles,
    /// `Roles`, and AWS Config's service-linked role.
    RolesAndConfigRole,
    /// AWS Config's service-linked role, created only for AWS Config.
    ConfigServiceRole,
    /// The alert topic.
    Topic,
    /// KMS keys in the home region: found by alias, their IDs are not known in advance.
    Keys,
    /// KMS keys that carry this profile's ownership tag.
    OwnedKeys,
    /// Tagging KMS keys, only with this profile's ownership tag in the request.
    KeyTagging,
    /// Creating a KMS key, only with this profile's ownership tag in the request.
    NewKeys,
    /// The declared KMS aliases.
    Aliases,
    /// Decrypting log files, only through S3.
    KeysViaS3,
    /// The audit bucket's key, only through S3, when `[athena]` writes query results with
    /// SSE-KMS: S3 asks KMS for a data key as the caller.
    ResultsKeyViaS3,
    /// The declared EventBridge rules, and rules named with ctguard's prefix, in every
    /// region of the profile.
    EventRules,
    /// The central event bus, in the account that owns it (`[events] central_bus`).
    EventBus,
    /// The declared alarms, and alarms named with ctguard's prefix.
    Alarms,
    /// Every alarm in the home region (DescribeAlarms lists by prefix).
    AnyAlarm,
    /// AWS Config rules in every region of the profile: their ARNs end in an ID AWS Config
    /// generates, so the name cannot scope them.
    ConfigRules,
    /// The `[athena]` workgroup, where apply keeps the settings and `ctguard hunt` queries.
    WorkGroup,
    /// Athena's data catalog: GetTableMetadata is authorised on the catalog, not the workgroup.
    DataCatalog,
    /// The Glue catalog, database and table Athena reads and apply's DDL writes, as the caller.
    Glue,
    /// Query results under the workgroup's result prefix: Athena writes them as the caller, so
    /// a hunt needs these object writes even with the read-only policy.
    AthenaResults,
}

/// One action ctguard calls.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub action: &'static str,
    pub access: Access,
    pub on: On,
}

const fn read(action: &'static str, on: On) -> Row {
    Row { action, access: Access::Read, on }
}

const fn write(action: &'static str, on: On) -> Row {
    Row { action, access: Access::Write, on }
}

const fn destroy(action: &'static str, on: On) -> Row {
    Row { action, access: Access::Destroy, on }
}

/// Every action ctguard calls, sorted by action. account:ListRegions only with `regions =
/// "all-enabled"`; ListPublicKeys, GetObject and Decrypt only for validate-logs, verify's
/// log_integrity check and `ctguard test s3://`; LookupEvents for investigate's event history;
/// kms:ListKeys finds a key an interrupted apply left without its alias.
pub const TABLE: &[Row] = &[
    read("account:ListRegions", On::Anything),
    write("athena:CreateWorkGroup", On::WorkGroup),
    write("athena:DeleteWorkGroup", On::WorkGroup),
    read("athena:GetQueryExecution", On::WorkGroup),
    read("athena:GetQueryResults", On::WorkGroup),
    read("athena:GetTableMetadata", On::DataCatalog),
    read("athena:GetWorkGroup", On::WorkGroup),
    read("athena:ListTagsForResource", On::WorkGroup),
    read("athena:StartQueryExecution", On::WorkGroup),
    read("athena:StopQueryExecution", On::WorkGroup),
    write("athena:TagResource", On::WorkGroup),
    write("athena:UpdateWorkGroup", On::WorkGroup),
    write("cloudtrail:AddTags", On::Trails),
    write("cloudtrail:CreateTrail", On::Trails),
    write("cloudtrail:DeleteTrail", On::Trails),
    read("cloudtrail:DescribeTrails", On::Anything),
    read("cloudtrail:GetEventSelectors", On::AnyTrail),
    read("cloudtrail:GetInsightSelectors", On::AnyTrail),
    read("cloudtrail:GetTrail", On::AnyTrail),
    read("cloudtrail:GetTrailStatus", On::AnyTrail),
    read("cloudtrail:ListPublicKeys", On::Anything),
    read("cloudtrail:ListTags", On::AnyTrail),
    read("cloudtrail:LookupEvents", On::Anything),
    write("cloudtrail:PutEventSelectors", On::Trails),
    write("cloudtrail:PutInsightSelectors", On::Trails),
    write("cloudtrail:StartLogging", On::Trails),
    write("cloudtrail:UpdateTrail", On::Trails),
    write("cloudwatch:DeleteAlarms", On::Alarms),
    read("cloudwatch:DescribeAlarms", On::AnyAlarm),
    read("cloudwatch:GetMetricData", On::Anything),
    read("cloudwatch:ListTagsForResource", On::AnyAlarm),
    write("cloudwatch:PutMetricAlarm", On::Alarms),
    write("cloudwatch:TagResource", On::Alarms),
    write("config:DeleteConfigRule", On::ConfigRules),
    read("config:DescribeComplianceByConfigRule", On::ConfigRules),
    read("config:DescribeConfigRules", On::ConfigRules),
    read("config:DescribeConfigurationRecorderStatus", On::AnyConfig),
    read("config:DescribeConfigurationRecorders", On::AnyConfig),
    read("config:DescribeDeliveryChannelStatus", On::AnyConfig),
    read("config:DescribeDeliveryChannels", On::AnyConfig),
    read("config:GetComplianceDetailsByConfigRule", On::ConfigRules),
    read("config:ListTagsForResource", On::ConfigRules),
    write("config:PutConfigRule", On::ConfigRules),
    write("config:PutConfigurationRecorder", On::AnyConfig),
    write("config:PutDeliveryChannel", On::AnyConfig),
    write("config:StartConfigurationRecorder", On::AnyConfig),
    write("config:TagResource", On::ConfigRules),
    write("events:CreateEventBus", On::EventBus),
    write("events:DeleteEventBus", On::EventBus),
    write("events:DeleteRule", On::EventRules),
    read("events:DescribeEventBus", On::EventBus),
    read("events:ListRules", On::Anything),
    read("events:ListTagsForResource", On::EventRules),
    read("events:ListTargetsByRule", On::EventRules),
    write("events:PutPermission", On::EventBus),
    write("events:PutRule", On::EventRules),
    write("events:PutTargets", On::EventRules),
    write("events:RemoveTargets", On::EventRules),
    write("events:TagResource", On::EventRules),
    write("glue:CreateDatabase", On::Glue),
    write("glue:CreateTable", On::Glue),
    write("glue:DeleteTable", On::Glue),
    read("glue:GetDatabase", On::Glue),
    read("glue:GetPartitions", On::Glue),
    read("glue:GetTable", On::Glue),
    write("glue:UpdateTable", On::Glue),
    write("iam:CreateRole", On::Roles),
    write("iam:CreateServiceLinkedRole", On::ConfigServiceRole),
    write("iam:DeleteRole", On::Roles),
    write("iam:DeleteRolePolicy", On::Roles),
    write("iam:DetachRolePolicy", On::Roles),
    read("iam:GetRole", On::RolesAndConfigRole),
    read("iam:GetRolePolicy", On::Roles),
    read("iam:ListAttachedRolePolicies", On::Roles),
    read("iam:ListRolePolicies", On::Roles),
    read("iam:ListRoleTags", On::Roles),
    read("iam:ListRoles", On::Anything),
    write("iam:PutRolePolicy", On::Roles),
    write("iam:TagRole", On::Roles),
    write("iam:UpdateAssumeRolePolicy", On::Roles),
    write("iam:UpdateRole", On::Roles),
    write("kms:CancelKeyDeletion", On::OwnedKeys),
    write("kms:CreateAlias", On::Aliases),
    write("kms:CreateAlias", On::OwnedKeys),
    write("kms:CreateKey", On::NewKeys),
    read("kms:Decrypt", On::KeysViaS3),
    // Authorised on the alias and on the key it names, as CreateAlias is.
    destroy("kms:DeleteAlias", On::Aliases),
    destroy("kms:DeleteAlias", On::OwnedKeys),
    read("kms:DescribeKey", On::Keys),
    write("kms:EnableKey", On::OwnedKeys),
    write("kms:EnableKeyRotation", On::OwnedKeys),
    read("kms:GenerateDataKey", On::ResultsKeyViaS3),
    read("kms:GetKeyPolicy", On::Keys),
    read("kms:GetKeyRotationStatus", On::Keys),
    write("kms:ListKeys", On::AnyKey),
    read("kms:ListResourceTags", On::Keys),
    write("kms:PutKeyPolicy", On::OwnedKeys),
    write("kms:ScheduleKeyDeletion", On::OwnedKeys),
    write("kms:TagResource", On::KeyTagging),
    write("kms:UntagResource", On::OwnedKeys),
    write("kms:UpdateKeyDescription", On::OwnedKeys),
    write("logs:AssociateKmsKey", On::LogGroup),
    write("logs:CreateLogGroup", On::LogGroup),
    destroy("logs:DeleteLogGroup", On::LogGroup),
    write("logs:DeleteMetricFilter", On::LogGroup),
    read("logs:DescribeLogGroups", On::AnyLogGroup),
    // Whether a group whose storedBytes reads zero really holds no event.
    read("logs:DescribeLogStreams", On::LogGroup),
    read("logs:DescribeMetricFilters", On::LogGroup),
    destroy("logs:DisassociateKmsKey", On::LogGroup),
    read("logs:ListTagsForResource", On::LogGroup),
    write("logs:PutMetricFilter", On::LogGroup),
    write("logs:PutRetentionPolicy", On::LogGroup),
    write("logs:TagResource", On::LogGroup),
    read("organizations:DescribeOrganization", On::OrganizationId),
    read("organizations:ListAWSServiceAccessForOrganization", On::AnyOrganization),
    read("organizations:ListDelegatedAdministrators", On::AnyOrganization),
    read("s3:AbortMultipartUpload", On::AthenaResults),
    write("s3:CreateBucket", On::Buckets),
    destroy("s3:DeleteBucket", On::Buckets),
    // DeleteObjects is authorised per object: DeleteObject, or DeleteObjectVersion for a
    // version or delete marker (S3 API Reference, DeleteObjects).
    destroy("s3:DeleteObject", On::BucketObjects),
    destroy("s3:DeleteObjectVersion", On::BucketObjects),
    read("s3:GetBucketLocation", On::Buckets),
    read("s3:GetBucketLogging", On::Buckets),
    // GetBucketNotificationConfiguration, and PutBucketNotificationConfiguration for its
    // EventBridge setting (S3 API Reference: both are authorised as s3:*BucketNotification).
    read("s3:GetBucketNotification", On::AuditBucketEvents),
    read("s3:GetBucketObjectLockConfiguration", On::Buckets),
    read("s3:GetBucketOwnershipControls", On::Buckets),
    read("s3:GetBucketPolicy", On::Buckets),
    read("s3:GetBucketPublicAccessBlock", On::Buckets),
    read("s3:GetBucketTagging", On::Buckets),
    read("s3:GetBucketVersioning", On::Buckets),
    read("s3:GetEncryptionConfiguration", On::Buckets),
    read("s3:GetLifecycleConfiguration", On::Buckets),
    read("s3:GetObject", On::TrailLogs),
    read("s3:ListBucket", On::Buckets),
    // ListObjectVersions: whether a bucket holds anything a shorter expiry would delete.
    read("s3:ListBucketVersions", On::Buckets),
    read("s3:ListMultipartUploadParts", On::AthenaResults),
    write("s3:PutBucketLogging", On::Buckets),
    write("s3:PutBucketNotification", On::AuditBucketEvents),
    // PutObjectLockConfiguration, and CreateBucket with Object Lock (S3 User Guide, "Required
    // permissions" for Object Lock).
    write("s3:PutBucketObjectLockConfiguration", On::Buckets),
    write("s3:PutBucketOwnershipControls", On::Buckets),
    write("s3:PutBucketPolicy", On::Buckets),
    write("s3:PutBucketPublicAccessBlock", On::Buckets),
    write("s3:PutBucketTagging", On::Buckets),
    write("s3:PutBucketVersioning", On::Buckets),
    write("s3:PutEncryptionConfiguration", On::Buckets),
    write("s3:PutLifecycleConfiguration", On::Buckets),
    read("s3:PutObject", On::AthenaResults),
    // CreateBucket with tags (S3 API Reference, CreateBucketConfiguration: Tags).
    write("s3:TagResource", On::Buckets),
    write("sns:CreateTopic", On::Topic),
    destroy("sns:DeleteTopic", On::Topic),
    read("sns:GetTopicAttributes", On::Topic),
    read("sns:ListSubscriptionsByTopic", On::Topic),
    read("sns:ListTagsForResource", On::Topic),
    write("sns:SetTopicAttributes", On::Topic),
    write("sns:Subscribe", On::Topic),
    write("sns:TagResource", On::Topic),
    write("sns:Unsubscribe", On::Anything),
    write("sns:UntagResource", On::Topic),
    read("sts:GetCallerIdentity", On::Anything),
    read("tag:GetResources", On::Anything),
];

/// Why each action on `"*"` is there: the Service Authorization Reference lists no resource
/// type for it (or, for AWS Config's recorder and channel, none ctguard can name).
pub const UNSCOPED: &[(&str, &str)] = &[
    ("account:ListRegions", "no resource-level permission; read only with `regions = \"all-enabled\"`"),
    ("cloudtrail:DescribeTrails", "no resource-level permission; lists the region's trails"),
    ("cloudtrail:ListPublicKeys", "no resource-level permission; the keys are CloudTrail's, not the account's"),
    ("cloudtrail:LookupEvents", "no resource-level permission; the event history `ctguard investigate` reads"),
    (
        "cloudwatch:GetMetricData",
        "no resource-level permission; verify's delivery health reads the rules' and topics' failure metrics",
    ),
    ("config:DescribeConfigurationRecorderStatus", "no resource-level permission; one recorder per region"),
    ("config:DescribeConfigurationRecorders", "no resource-level permission; one recorder per region"),
    ("config:DescribeDeliveryChannelStatus", "no resource-level permission; one delivery channel per region"),
    ("config:DescribeDeliveryChannels", "no resource-level permission; one delivery channel per region"),
    ("config:PutConfigurationRecorder", "no resource-level permission; one recorder per region"),
    ("config:PutDeliveryChannel", "no resource-level permission; one delivery channel per region"),
    ("config:StartConfigurationRecorder", "no resource-level permission; one recorder per region"),
    ("events:ListRules", "no resource-level permission; lists by name prefix"),
    ("iam:ListRoles", "no resource-level permission; lists by path prefix"),
    (
        "kms:CreateKey",
        "no resource-level permission (the key does not exist yet); allowed only with this profile's ownership tag in the request",
    ),
    ("kms:ListKeys", "no resource-level permission; finds a key an interrupted apply left without its alias"),
    (
        "organizations:DescribeOrganization",
        "no resource-level permission; read only with `[trail] organization = true`, and in the account that owns \
         `[events] central_bus`",
    ),
    (
        "organizations:ListAWSServiceAccessForOrganization",
        "no resource-level permission; whether CloudTrail has trusted access, only for an organization trail",
    ),
    (
        "organizations:ListDelegatedAdministrators",
        "no resource-level permission; whether this account administers CloudTrail, only for an organization trail",
    ),
    ("sns:Unsubscribe", "no resource-level permission; ctguard unsubscribes only what it recorded on its topic"),
    ("sts:GetCallerIdentity", "no resource-level permission (and needs none)"),
    ("tag:GetResources", "no resource-level permission; reads the tags of the rules and alarms in one call"),
];

/// What the policy is built for, beyond the profile itself.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only what plan, verify and validate-logs need.
    pub read_only: bool,
    /// What `destroy --allow-data-loss` needs as well.
    pub destroy: bool,
    /// The profile covers every enabled region: per-region resources get the region `*`, so
    /// the policy holds when a region is enabled later.
    pub all_regions: bool,
    /// The account the profile was resolved with stands for an unknown one: it is printed
    /// as `*`.
    pub unknown_account: Option<String>,
}

/// The identity policy ctguard needs for `profile`: read-only for plan, verify and
/// validate-logs, everything apply does as well, or with destroy's deletes on top.
pub fn policy(profile: &Profile, options: &Options) -> Value {
    let names = Names::of(profile, options);
    // One statement per kind of resource, reads and writes together: each resource list is
    // spelled once, which keeps the policy within IAM's size limits.
    let mut groups: BTreeMap<On, Vec<&str>> = BTreeMap::new();
    let wanted = |access: Access| match access {
        Access::Read => true,
        Access::Write => !options.read_only,
        Access::Destroy => options.destroy,
    };
    for row in TABLE.iter().filter(|r| wanted(r.access)) {
        groups.entry(row.on).or_default().push(row.action);
    }
    let mut statements = Vec::new();
    for (on, actions) in groups {
        let resources = names.resources(on);
        if resources.is_empty() {
            continue;
        }
        let mut statement = json!({
            "Sid": format!("Ctguard{on:?}"),
            "Effect": "Allow",
            "Action": actions,
            "Resource": resources,
        });
        if let Some(condition) = names.condition(on) {
            statement["Condition"] = condition;
        }
        statements.push(statement);
    }
    if !options.read_only {
        statements.extend(names.pass_roles());
    }
    let mut doc = json!({"Version": "2012-10-17", "Statement": statements});
    if let Some(stand_in) = &options.unknown_account {
        unknown_account(&mut doc, stand_in);
    }
    doc
}

/// What `ctguard drill` needs, and nothing it does not: granted apart from apply's policy, so a
/// team can let a scheduled job drill without letting it change the pipeline. Each statement
/// names what the drill touches: the default buses of the profile's regions, its alarms, its
/// topics, the temporary queue and (for --end-to-end) the temporary role, by the drill's
/// name prefix and role path.
pub fn drill_policy(profile: &Profile, options: &Options) -> Value {
    let names = Names::of(profile, options);
    let (partition, account, home) = (names.partition, names.account, names.home);
    let buses: Vec<String> = names.regions.iter().map(|r| names.arn("events", r, "event-bus/default")).collect();
    let alarms: Vec<String> =
        profile.alarms.iter().map(|a| names.arn("cloudwatch", home, &format!("alarm:{}", a.name))).collect();
    let topics: Vec<String> = profile.alerts.iter().flat_map(|a| a.topics.iter().map(|t| t.arn.clone())).collect();
    let queue = format!("arn:{partition}:sqs:{home}:{account}:{}*", crate::drill::PREFIX);
    let role = format!("arn:{partition}:iam::{account}:role{}{}*", crate::drill::role::PATH, crate::drill::PREFIX);
    let statement = |sid: &str, actions: &[&str], resources: Vec<String>| json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources});
    let mut unscoped = vec!["cloudwatch:GetMetricStatistics", "sns:Unsubscribe", "sqs:ListQueues", "iam:ListRoles"];
    unscoped.push("sts:GetCallerIdentity");
    if options.all_regions {
        unscoped.push("account:ListRegions");
    }
    unscoped.sort();
    let mut statements = vec![
        statement("CtguardDrillEvents", &["events:PutEvents"], buses),
        statement("CtguardDrillAlarms", &["cloudwatch:DescribeAlarms", "cloudwatch:SetAlarmState"], alarms),
        statement(
            "CtguardDrillTopics",
            &["sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic", "sns:Subscribe"],
            topics,
        ),
        statement(
            "CtguardDrillQueue",
            &[
                "sqs:CreateQueue",
                "sqs:DeleteQueue",
                "sqs:GetQueueUrl",
                "sqs:ListQueueTags",
                "sqs:ReceiveMessage",
                "sqs:SetQueueAttributes",
                "sqs:TagQueue",
            ],
            vec![queue],
        ),
        statement(
            "CtguardDrillRole",
            &["iam:CreateRole", "iam:DeleteRole", "iam:ListRoleTags", "iam:TagRole", "sts:AssumeRole"],
            vec![role],
        ),
        statement("CtguardDrillUnscoped", &unscoped, vec!["*".into()]),
    ];
    statements.retain(|s| s["Resource"].as_array().is_some_and(|r| !r.is_empty()));
    let mut doc = json!({"Version": "2012-10-17", "Statement": statements});
    if let Some(stand_in) = &options.unknown_account {
        unknown_account(&mut doc, stand_in);
    }
    doc
}

/// Every string of the document with the stand-in account ID replaced by `*`.
fn unknown_account(value: &mut Value, stand_in: &str) {
    match value {
        Value::String(s) => *s = s.replace(stand_in, "*"),
        Value::Array(items) => items.iter_mut().for_each(|v| unknown_account(v, stand_in)),
        Value::Object(map) => map.values_mut().for_each(|v| unknown_account(v, stand_in)),
        _ => {}
    }
}

/// The profile's names, as ARNs and ARN patterns.
struct Names<'a> {
    profile: &'a Profile,
    partition: &'a str,
    account: &'a str,
    home: &'a str,
    /// The regions of per-region resources (`*` for every enabled region).
    regions: Vec<String>,
}

impl<'a> Names<'a> {
    fn of(profile: &'a Profile, options: &Options) -> Self {
        let rt = &profile.runtime;
        let regions = if options.all_regions { vec!["*".to_string()] } else { profile.regions.clone() };
        Names { profile, partition: &rt.partition, account: &rt.account_id, home: &rt.region, regions }
    }

    fn arn(&self, service: &str, region: &str, rest: &str) -> String {
        format!("arn:{}:{service}:{region}:{}:{rest}", self.partition, self.account)
    }

    /// `{name}` and ctguard's name prefix, once if the name already has it.
    fn with_prefix(name: &str) -> Vec<String> {
        let prefixed = format!("{PREFIX}*");
        if name.starts_with(PREFIX) { vec![prefixed] } else { vec![name.to_string(), prefixed] }
    }

    fn managed_keys(&self) -> Vec<&str> {
        let p = self.profile;
        let trail = p.trail.kms.iter();
        let topic = p.alerts.iter().filter_map(|a| a.kms.as_ref());
        let logs = p.cloudwatch_logs.iter().filter_map(|c| c.kms.as_ref());
        trail
            .chain(topic)
            .chain(logs)
            .filter_map(|k| match k {
                Kms::Managed { alias, .. } => Some(alias.as_str()),
                Kms::Existing { .. } => None,
            })
            .collect()
    }

    /// The declared roles: (ARN, the service that assumes it, its path).
    fn roles(&self) -> Vec<(&str, &'static str, &str)> {
        let p = self.profile;
        let logs =
            p.cloudwatch_logs.iter().map(|c| (c.role_arn.as_str(), "cloudtrail.amazonaws.com", c.role_path.as_str()));
        // The forwarding role exists only when there is another region to forward from, or a
        // central bus of another account to send to.
        let to_central = |e: &&crate::profile::Events| e.central.as_ref().is_some_and(|b| !b.owned_here());
        let forward = p.events.iter().filter(|e| p.regions.len() > 1 || self.regions == ["*"] || to_central(e));
        let events = forward.map(|e| (e.role_arn.as_str(), "events.amazonaws.com", e.role_path.as_str()));
        logs.chain(events).collect()
    }

    /// The central bus, when this account owns it.
    fn central_bus(&self) -> Option<&crate::profile::central_bus::CentralBus> {
        self.profile.events.as_ref()?.central.as_ref().filter(|b| b.owned_here())
    }

    fn config_role(&self) -> Option<(&str, bool)> {
        self.profile.config.as_ref().map(|c| (c.role_arn.as_str(), c.service_linked))
    }

    fn resources(&self, on: On) -> Vec<String> {
        let p = self.profile;
        let home = self.home;
        let unique = |mut v: Vec<String>| {
            v.sort();
            v.dedup();
            v
        };
        let every_region = |service: &str, rest: &[String]| -> Vec<String> {
            self.regions.iter().flat_map(|r| rest.iter().map(move |x| self.arn(service, r, x))).collect()
        };
        match on {
            On::Anything => vec!["*".into()],
            On::AnyKey | On::NewKeys if self.managed_keys().is_empty() => Vec::new(),
            On::AnyKey | On::NewKeys => vec!["*".into()],
            On::AnyConfig if p.config.is_none() => Vec::new(),
            On::AnyConfig => vec!["*".into()],
            On::AnyOrganization if p.trail.organization.is_none() => Vec::new(),
            On::AnyOrganization => vec!["*".into()],
            On::OrganizationId if p.trail.organization.is_none() && self.central_bus().is_none() => Vec::new(),
            On::OrganizationId => vec!["*".into()],
            On::Buckets => {
                let buckets = std::iter::once(&p.bucket.name).chain(p.access_log_bucket.iter().map(|a| &a.name));
                buckets.map(|b| format!("arn:{}:s3:::{b}", self.partition)).collect()
            }
            On::BucketObjects => self.resources(On::Buckets).into_iter().map(|b| format!("{b}/*")).collect(),
            On::AuditBucketEvents if !p.bucket.eventbridge_notifications => Vec::new(),
            On::AuditBucketEvents => vec![format!("arn:{}:s3:::{}", self.partition, p.bucket.name)],
            On::TrailLogs => {
                let prefix = if p.bucket.trail_prefix.is_empty() {
                    String::new()
                } else {
                    format!("{}/", p.bucket.trail_prefix)
                };
                vec![format!("arn:{}:s3:::{}/{prefix}AWSLogs/*", self.partition, p.bucket.name)]
            }
            On::Trails => Self::with_prefix(&p.trail.name)
                .iter()
                .map(|n| self.arn("cloudtrail", home, &format!("trail/{n}")))
                .collect(),
            // The organization trail a member relies on is the management account's.
            On::AnyTrail if p.trail.use_organization_trail => {
                vec![self.arn("cloudtrail", "*", "trail/*"), format!("arn:{}:cloudtrail:*:*:trail/*", self.partition)]
            }
            On::AnyTrail => vec![self.arn("cloudtrail", "*", "trail/*")],
            On::LogGroup => p
                .cloudwatch_logs
                .iter()
                .flat_map(|c| {
                    let group = self.arn("logs", home, &format!("log-group:{}", c.log_group));
                    [group.clone(), format!("{group}:*")]
                })
                .collect(),
            On::AnyLogGroup if p.cloudwatch_logs.is_none() => Vec::new(),
            On::AnyLogGroup => vec![self.arn("logs", home, "log-group:*")],
            On::Roles | On::RolesAndConfigRole => {
                let mut out: Vec<String> = Vec::new();
                // Roles the profile dropped are looked for under the log role's path.
                let dropped = p.cloudwatch_logs.as_ref().map_or(DROPPED_ROLES_PATH, |c| c.role_path.as_str());
                for (arn, path) in self.roles().into_iter().map(|(a, _, p)| (Some(a), p)).chain([(None, dropped)]) {
                    // A role under a path of its own is named by the path's wildcard; `/`
                    // would be every role, so a role there is named alone.
                    if path != "/" {
                        out.push(format!("arn:{}:iam::{}:role{path}*", self.partition, self.account));
                    } else {
                        out.extend(arn.map(str::to_string));
                    }
                }
                if on == On::RolesAndConfigRole
                    && let Some((arn, _)) = self.config_role()
                {
                    out.push(arn.to_string());
                }
                unique(out)
            }
            On::ConfigServiceRole => match self.config_role() {
                Some((arn, true)) => vec![arn.to_string()],
                _ => Vec::new(),
            },
            On::Topic => p.alerts.iter().flat_map(|a| a.topics.iter().map(|t| t.arn.clone())).collect(),
            On::Keys | On::OwnedKeys | On::KeyTagging if self.managed_keys().is_empty() => Vec::new(),
            On::Keys | On::OwnedKeys | On::KeyTagging => vec![self.arn("kms", home, "key/*")],
            On::Aliases => self.managed_keys().iter().map(|a| self.arn("kms", home, a)).collect(),
            On::KeysViaS3 => {
                let existing = [p.bucket.kms_key_arn.as_ref()]
                    .into_iter()
                    .flatten()
                    .chain(p.trail.kms.iter().filter_map(|k| match k {
                        Kms::Existing { key_arn } => Some(key_arn),
                        Kms::Managed { .. } => None,
                    }))
                    .cloned();
                let managed = (!self.managed_keys().is_empty()).then(|| self.arn("kms", home, "key/*"));
                unique(existing.chain(managed).collect())
            }
            On::ResultsKeyViaS3 if p.athena.is_none() || p.bucket.encryption != crate::profile::Encryption::Kms => {
                Vec::new()
            }
            On::ResultsKeyViaS3 => match &p.bucket.kms_key_arn {
                Some(arn) => vec![arn.clone()],
                None => vec![self.arn("kms", home, "key/*")],
            },
            // Rules, alarms and Config rules the profile dropped are looked for (and deleted)
            // even when it declares none any more.
            On::EventRules => {
                let declared = p.events.iter().flat_map(|e| e.rules.iter().flat_map(|r| Self::with_prefix(&r.name)));
                let names: Vec<String> = declared.chain([format!("{PREFIX}*")]).map(|n| format!("rule/{n}")).collect();
                let mut arns = every_region("events", &unique(names));
                // The central bus (tagged like the rules) and the rules on it.
                if let Some(bus) = self.central_bus() {
                    arns.extend([bus.arn.clone(), self.arn("events", &bus.region, &format!("rule/{}/*", bus.name))]);
                }
                unique(arns)
            }
            On::EventBus => self.central_bus().map(|b| b.arn.clone()).into_iter().collect(),
            On::Alarms => {
                let declared = p.alarms.iter().flat_map(|a| Self::with_prefix(&a.name));
                let names = declared.chain([format!("{PREFIX}*")]).map(|n| format!("alarm:{n}"));
                unique(names.map(|n| self.arn("cloudwatch", home, &n)).collect())
            }
            On::AnyAlarm => vec![self.arn("cloudwatch", home, "alarm:*")],
            On::ConfigRules => every_region("config", &["config-rule/*".to_string()]),
            On::WorkGroup => {
                p.athena.iter().map(|a| self.arn("athena", home, &format!("workgroup/{}", a.workgroup))).collect()
            }
            On::DataCatalog => {
                p.athena.iter().map(|_| self.arn("athena", home, "datacatalog/AwsDataCatalog")).collect()
            }
            // Glue checks each action against the catalog, the database and (for tables) the table.
            On::Glue => p
                .athena
                .iter()
                .flat_map(|a| {
                    let table = format!("table/{}/{}", a.database, a.table);
                    ["catalog".to_string(), format!("database/{}", a.database), table]
                        .map(|r| self.arn("glue", home, &r))
                })
                .collect(),
            On::AthenaResults => p
                .athena
                .iter()
                .map(|a| format!("arn:{}:s3:::{}/{}/*", self.partition, p.bucket.name, a.results_prefix))
                .collect(),
        }
    }

    fn condition(&self, on: On) -> Option<Value> {
        let owner = format!("aws:ResourceTag/{OWNER_TAG}");
        let request = format!("aws:RequestTag/{OWNER_TAG}");
        let name = &self.profile.name;
        match on {
            On::OwnedKeys => Some(json!({"StringEquals": {owner: name}})),
            // The tags a new key is created with: the owner and the alias it is for.
            On::NewKeys | On::KeyTagging => Some(json!({
                "StringEquals": {request: name},
                "ForAllValues:StringEquals": {"aws:TagKeys": [OWNER_TAG, ALIAS_TAG]},
            })),
            On::ConfigServiceRole => Some(json!({"StringEquals": {"iam:AWSServiceName": "config.amazonaws.com"}})),
            // S3 decrypts an SSE-KMS log file for GetObject with the caller's kms:Decrypt; KMS
            // sets kms:ViaService to s3.<region>.amazonaws.com. No encryption-context condition:
            // with S3 Bucket Keys the context is the bucket's, not the trail's.
            On::KeysViaS3 | On::ResultsKeyViaS3 => {
                Some(json!({"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}))
            }
            _ => None,
        }
    }

    /// iam:PassRole for each role ctguard hands to a service, to that service only.
    fn pass_roles(&self) -> Vec<Value> {
        let mut by_service: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (arn, service, _) in self.roles() {
            by_service.entry(service).or_default().push(arn);
        }
        if let Some((arn, _)) = self.config_role() {
            by_service.entry("config.amazonaws.com").or_default().push(arn);
        }
        by_service
            .into_iter()
            .map(|(service, roles)| {
                let who = service.split('.').next().unwrap_or(service);
                json!({
                    "Sid": format!("CtguardPassRoleTo{}{}", who[..1].to_uppercase(), &who[1..]),
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": roles,
                    "Condition": {"StringEquals": {"iam:PassedToService": service}},
                })
            })
            .collect()
    }
}

/// What a run over several accounts (`--accounts`) needs in the account it starts from:
/// listing the organization (crate::aws::accounts) and assuming `role` in the other accounts.
pub fn organization_statements(partition: &str, role: &str) -> Vec<Value> {
    vec![
        json!({
            "Sid": "CtguardListOrganization",
            "Effect": "Allow",
            "Action": [
                "organizations:ListAccounts",
                "organizations:ListAccountsForParent",
                "organizations:ListOrganizationalUnitsForParent",
            ],
            "Resource": "*",
        }),
        json!({
            "Sid": "CtguardAssumeMemberRole",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": format!("arn:{partition}:iam::*:role/{role}"),
        }),
    ]
}

#[cfg(test)]
mod drill_tests {
    use super::*;

    #[test]
    fn the_drill_policy_names_only_what_the_drill_touches() {
        let p = crate::resources::testing::flagship();
        let options = Options { read_only: false, destroy: false, all_regions: false, unknown_account: None };
        let doc = drill_policy(&p, &options);
        let text = doc.to_string();
        for action in ["events:PutEvents", "cloudwatch:SetAlarmState", "sqs:CreateQueue", "sts:AssumeRole"] {
            assert!(text.contains(action), "{action}");
        }
        for apply_only in ["events:PutRule", "sns:SetTopicAttributes", "iam:PutRolePolicy", "iam:PassRole"] {
            assert!(!text.contains(apply_only), "{apply_only}");
        }
        let by_sid = |sid: &str| doc["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == sid).unwrap().clone();
        assert_eq!(by_sid("CtguardDrillQueue")["Resource"][0], "arn:aws:sqs:us-east-1:123456789012:ctguard-drill-*");
        assert_eq!(
            by_sid("CtguardDrillRole")["Resource"][0],
            "arn:aws:iam::123456789012:role/ctguard-drill/ctguard-drill-*"
        );
        assert_eq!(by_sid("CtguardDrillEvents")["Resource"].as_array().unwrap().len(), p.regions.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Runtime, load, vars::Vars};

    fn flagship(options: &Options) -> Value {
        let runtime = Runtime {
            account_id: "123456789012".into(),
            partition: "aws".into(),
            region: "us-east-1".into(),
            enabled_regions: vec!["us-east-1".into(), "eu-west-1".into()],
            organization: None,
        };
        let profile = load("ai-agent-guard").unwrap().resolve(&runtime, &Vars::new()).unwrap();
        policy(&profile, options)
    }

    fn full() -> Options {
        Options { read_only: false, destroy: false, all_regions: true, unknown_account: None }
    }

    fn statements(doc: &Value) -> &Vec<Value> {
        doc["Statement"].as_array().unwrap()
    }

    #[test]
    fn only_the_destroy_policy_deletes_audit_data_and_only_the_declared_buckets() {
        let deletes = [
            "s3:DeleteBucket",
            "s3:DeleteObjectVersion",
            "logs:DeleteLogGroup",
            "logs:DisassociateKmsKey",
            "kms:DeleteAlias",
        ];
        let apply = flagship(&full()).to_string();
        for action in deletes {
            assert!(!apply.contains(action), "apply's policy allows {action}");
        }
        let doc = flagship(&Options { destroy: true, ..full() });
        let text = doc.to_string();
        for action in deletes {
            assert!(text.contains(action), "the destroy policy lacks {action}");
        }
        let objects = statements(&doc).iter().find(|s| s["Sid"] == "CtguardBucketObjects").unwrap();
        assert_eq!(
            objects["Resource"],
            json!([
                "arn:aws:s3:::ctguard-audit-123456789012-us-east-1/*",
                "arn:aws:s3:::ctguard-audit-123456789012-us-east-1-access/*"
            ])
        );
    }

    #[test]
    fn the_organization_reads_come_only_with_an_organization_trail() {
        assert!(!flagship(&full()).to_string().contains("organizations:"));
        let runtime = Runtime {
            organization: Some(crate::profile::Organization::stand_in()),
            ..Runtime::placeholder("us-east-1")
        };
        let mut profile = load("ai-agent-guard").unwrap().resolve(&runtime, &Vars::new()).unwrap();
        profile.trail.organization = runtime.organization.clone();
        let text = policy(&profile, &full()).to_string();
        for action in ["DescribeOrganization", "ListAWSServiceAccessForOrganization", "ListDelegatedAdministrators"] {
            assert!(text.contains(&format!("organizations:{action}")), "{action}");
        }
    }

    #[test]
    fn the_account_owning_the_central_bus_reads_its_organization_and_manages_the_bus() {
        let runtime = Runtime {
            organization: Some(crate::profile::Organization::stand_in()),
            ..Runtime::placeholder("us-east-1")
        };
        let mut loaded = load("ai-agent-guard").unwrap();
        let bus = format!("arn:aws:events:us-east-1:{}:event-bus/ctguard-central", runtime.account_id);
        loaded.doc.events.as_mut().unwrap().central_bus = Some(bus.clone());
        let profile = loaded.resolve(&runtime, &Vars::new()).unwrap();
        let text = policy(&profile, &full()).to_string();
        assert!(text.contains("organizations:DescribeOrganization"));
        assert!(!text.contains("organizations:ListDelegatedAdministrators"), "only an organization trail needs it");
        for action in ["CreateEventBus", "DescribeEventBus", "PutPermission"] {
            assert!(text.contains(&format!("events:{action}")), "{action}");
        }
        assert!(text.contains(&bus) && text.contains("rule/ctguard-central/*"), "{text}");

        // Another account only sends to it: no Organizations read, no bus of its own.
        loaded.doc.events.as_mut().unwrap().central_bus = Some(bus.replace(&runtime.account_id, "999988887777"));
        let member = loaded.resolve(&runtime, &Vars::new()).unwrap();
        let text = policy(&member, &full()).to_string();
        assert!(!text.contains("organizations:") && !text.contains("events:CreateEventBus"), "{text}");
    }

    #[test]
    fn the_table_is_sorted_and_each_action_has_one_access() {
        let actions: Vec<&str> = TABLE.iter().map(|r| r.action).collect();
        let mut sorted = actions.clone();
        sorted.sort();
        assert_eq!(actions, sorted, "keep the table sorted by action");
        for row in TABLE {
            assert!(TABLE.iter().filter(|r| r.action == row.action).all(|r| r.access == row.access), "{}", row.action);
        }
    }

    #[test]
    fn every_action_on_anything_has_a_reason_listed_in_the_readme() {
        let readme = include_str!("../README.md");
        let unscoped: Vec<&str> = TABLE
            .iter()
            .filter(|r| {
                matches!(
                    r.on,
                    On::Anything | On::AnyKey | On::AnyConfig | On::AnyOrganization | On::OrganizationId | On::NewKeys
                )
            })
            .map(|r| r.action)
            .collect();
        let reasons: Vec<&str> = UNSCOPED.iter().map(|(a, _)| *a).collect();
        assert_eq!(unscoped, reasons, "UNSCOPED lists exactly the actions on \"*\", in table order");
        for action in reasons {
            assert!(
                readme.contains(&format!("`{action}`")),
                "README.md does not list {action} among the actions on \"*\""
            );
        }
    }

    #[test]
    fn writes_never_name_everything_unless_aws_allows_nothing_else() {
        let doc = flagship(&full());
        for s in statements(&doc) {
            let resources = s["Resource"].to_string();
            if resources.contains("\"*\"") {
                let actions: Vec<&str> = match &s["Action"] {
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    other => vec![other.as_str().unwrap()],
                };
                for a in actions {
                    assert!(UNSCOPED.iter().any(|(u, _)| *u == a), "{a} on \"*\" without a reason: {s}");
                }
            }
        }
        let text = doc.to_string();
        for gone in ["\"iam:PassRole\",\"Resource\":\"*\"", "s3:::*\""] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
    }

    #[test]
    fn roles_are_passed_only_to_the_service_that_uses_each() {
        let doc = flagship(&full());
        let pass: Vec<&Value> = statements(&doc).iter().filter(|s| s["Action"] == "iam:PassRole").collect();
        let to = |service: &str| {
            pass.iter().find(|s| s["Condition"]["StringEquals"]["iam:PassedToService"] == service).unwrap()["Resource"]
                .clone()
        };
        assert_eq!(
            to("cloudtrail.amazonaws.com"),
            json!(["arn:aws:iam::123456789012:role/ctguard/ctguard-cloudtrail-to-logs"])
        );
        assert_eq!(
            to("events.amazonaws.com"),
            json!(["arn:aws:iam::123456789012:role/ctguard/ctguard-events-forwarder"])
        );
        assert_eq!(
            to("config.amazonaws.com"),
            json!(["arn:aws:iam::123456789012:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"])
        );
    }

    #[test]
    fn kms_writes_need_the_ownership_tag() {
        let doc = flagship(&full());
        let by_sid = |sid: &str| statements(&doc).iter().find(|s| s["Sid"] == sid).unwrap().clone();
        let owned = by_sid("CtguardOwnedKeys");
        assert_eq!(owned["Condition"]["StringEquals"]["aws:ResourceTag/ctguard:profile"], "ai-agent-guard");
        assert!(owned["Action"].to_string().contains("kms:PutKeyPolicy"));
        let create = by_sid("CtguardNewKeys");
        assert_eq!(create["Action"], json!(["kms:CreateKey"]));
        assert_eq!(create["Condition"]["StringEquals"]["aws:RequestTag/ctguard:profile"], "ai-agent-guard");
        assert!(create["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"].is_array());
    }

    #[test]
    fn the_read_only_policy_has_no_writes_and_scopes_list_bucket() {
        let mut doc = flagship(&Options { read_only: true, ..full() });
        // Beside query results, which Athena writes as the caller under the results prefix.
        doc["Statement"].as_array_mut().unwrap().retain(|s| s["Sid"] != "CtguardAthenaResults");
        let text = doc.to_string();
        for verb in ["Put", "Create", "Delete", "PassRole", "Tag\""] {
            assert!(!text.contains(verb), "{verb} in {text}");
        }
        let buckets = statements(&doc).iter().find(|s| s["Sid"] == "CtguardBuckets").unwrap();
        assert!(buckets["Action"].to_string().contains("s3:ListBucket"));
        assert_eq!(
            buckets["Resource"],
            json!([
                "arn:aws:s3:::ctguard-audit-123456789012-us-east-1",
                "arn:aws:s3:::ctguard-audit-123456789012-us-east-1-access"
            ])
        );
    }

    #[test]
    fn an_unknown_account_is_a_wildcard() {
        let doc = flagship(&Options { unknown_account: Some("123456789012".into()), ..full() });
        let text = doc.to_string();
        assert!(!text.contains("123456789012"), "{text}");
        assert!(text.contains("arn:aws:s3:::ctguard-audit-*-us-east-1"), "{text}");
    }

    #[test]
    fn athena_statements_name_the_workgroup_catalog_database_table_and_results() {
        let doc = flagship(&full());
        let scoped = |sid: &str| statements(&doc).iter().find(|s| s["Sid"] == sid).unwrap()["Resource"].clone();
        assert_eq!(scoped("CtguardWorkGroup"), json!(["arn:aws:athena:us-east-1:123456789012:workgroup/ctguard"]));
        assert_eq!(
            scoped("CtguardGlue"),
            json!([
                "arn:aws:glue:us-east-1:123456789012:catalog",
                "arn:aws:glue:us-east-1:123456789012:database/ctguard",
                "arn:aws:glue:us-east-1:123456789012:table/ctguard/ctguard_cloudtrail"
            ])
        );
        assert_eq!(
            scoped("CtguardAthenaResults"),
            json!(["arn:aws:s3:::ctguard-audit-123456789012-us-east-1/athena-results/*"])
        );
        // A hunt writes its results as the caller, with the read-only policy too.
        let read_only = flagship(&Options { read_only: true, ..full() });
        let results = statements(&read_only).iter().find(|s| s["Sid"] == "CtguardAthenaResults").unwrap();
        assert!(results["Action"].to_string().contains("s3:PutObject"));
    }
}
