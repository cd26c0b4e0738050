//! The profile's TOML schema. Every table denies unknown keys so a typo is an error, not a
//! silently ignored setting. Strings may hold `${variable}` placeholders until resolved.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A profile as written in its file. After `resolve`, no string holds a placeholder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileDoc {
    pub profile: Meta,
    #[serde(default)]
    pub variables: BTreeMap<String, toml::Value>,
    pub bucket: BucketDoc,
    pub access_log_bucket: Option<AccessLogBucketDoc>,
    pub trail: TrailDoc,
    pub cloudwatch_logs: Option<CloudWatchLogsDoc>,
    pub agents: Option<AgentsDoc>,
    pub alerts: Option<AlertsDoc>,
    pub events: Option<EventsDoc>,
    pub metrics: Option<MetricsDoc>,
    #[serde(default)]
    pub alarms: Vec<AlarmDoc>,
    pub config: Option<ConfigDoc>,
    pub athena: Option<super::athena::AthenaDoc>,
    #[serde(default)]
    pub waivers: Vec<WaiverDoc>,
    #[serde(default)]
    pub severity_classes: Vec<super::classes::SeverityClassDoc>,
}

/// A finding verify reports but does not fail on, with the reason it prints. Waives either the
/// drift of one field (and everything under it) or one health check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaiverDoc {
    /// The resource, by the address plan prints (`kind.name`); `*` matches any characters.
    pub resource: String,
    /// Only in this region; all regions when absent.
    pub region: Option<String>,
    /// A field whose drift is waived, as plan prints its path (`lifecycle`, `tags.team`).
    pub field: Option<String>,
    /// A health check, by the name verify prints; `*` matches any characters.
    pub check: Option<String>,
    /// Why: required, and printed by verify next to what it waives.
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Where the bucket, trail and log group live. Falls back to --region / AWS_REGION.
    pub home_region: Option<String>,
    /// Regions the EventBridge rules cover. The home region is always included. A string
    /// (such as "${regions}") may name a list variable.
    #[serde(default)]
    pub regions: StringOrList,
    /// Directory of policy templates, relative to the profile file.
    #[serde(default = "default_policies_dir")]
    pub policies_dir: String,
}

fn default_policies_dir() -> String {
    "../policies".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketDoc {
    pub name: String,
    /// S3 key prefix the trail writes under (no leading or trailing slash); empty for none.
    #[serde(default)]
    pub trail_prefix: String,
    #[serde(default)]
    pub encryption: Encryption,
    /// Key for SSE-KMS: a key ARN. With encryption = "aws:kms", this or `kms_key`.
    pub kms_key_arn: Option<String>,
    /// Key for SSE-KMS: `"trail"`, the trail's ctguard-managed key (`[trail.kms]`).
    pub kms_key: Option<BucketKey>,
    /// Bucket policy template file name, under the profile's policies_dir.
    pub policy: String,
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// S3 Object Lock with a default retention for every new log object; off when absent.
    pub object_lock: Option<ObjectLockDoc>,
    /// The bucket's "Send notifications to Amazon EventBridge" setting, which the rules on S3's
    /// own events (`source` aws.s3) need. `false` leaves the setting as it is found.
    #[serde(default = "yes")]
    pub eventbridge_notifications: bool,
}

/// `[bucket.object_lock]`: the default retention S3 applies to each new object version.
/// Exactly one of `days` and `years`, as PutObjectLockConfiguration takes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectLockDoc {
    pub mode: LockMode,
    pub days: Option<i64>,
    pub years: Option<i64>,
}

/// Object Lock retention modes (S3 User Guide, "Locking objects with Object Lock"): in
/// GOVERNANCE mode a principal with s3:BypassGovernanceRetention may still delete a locked
/// version; in COMPLIANCE mode nobody can, the root user included, until it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum LockMode {
    #[serde(rename = "GOVERNANCE")]
    Governance,
    #[serde(rename = "COMPLIANCE")]
    Compliance,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogBucketDoc {
    pub name: String,
    /// Prefix of the access-log objects in this bucket.
    #[serde(default = "default_access_log_prefix")]
    pub prefix: String,
    pub policy: String,
    #[serde(default)]
    pub lifecycle: Lifecycle,
}

fn default_access_log_prefix() -> String {
    "s3-access-logs/".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Encryption {
    #[default]
    #[serde(rename = "AES256")]
    Aes256,
    #[serde(rename = "aws:kms")]
    Kms,
}

/// A key the audit bucket can name instead of an ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum BucketKey {
    /// The key `[trail.kms]` has ctguard create.
    #[serde(rename = "trail")]
    Trail,
}

/// Object lifecycle, in days. 0 switches a step off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    #[serde(default = "days::<30>")]
    pub transition_to_ia_days: i32,
    #[serde(default = "days::<90>")]
    pub transition_to_glacier_days: i32,
    /// 2555 days is seven years, a common audit-retention requirement.
    #[serde(default = "days::<2555>")]
    pub expire_days: i32,
    #[serde(default = "days::<90>")]
    pub noncurrent_expire_days: i32,
    #[serde(default = "days::<7>")]
    pub abort_incomplete_upload_days: i32,
    /// Why the audit bucket may expire logs within a year: without it, validation refuses
    /// an `expire_days` under 365. Only `[bucket.lifecycle]` takes it.
    #[serde(default)]
    pub allow_short_retention: Option<String>,
}

fn days<const N: i32>() -> i32 {
    N
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            transition_to_ia_days: 30,
            transition_to_glacier_days: 90,
            expire_days: 2555,
            noncurrent_expire_days: 90,
            abort_incomplete_upload_days: 7,
            allow_short_retention: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailDoc {
    pub name: String,
    #[serde(default = "yes")]
    pub multi_region: bool,
    #[serde(default = "yes")]
    pub include_global_service_events: bool,
    #[serde(default = "yes")]
    pub log_file_validation: bool,
    #[serde(default)]
    pub management_events: ReadWrite,
    /// Record the S3 data events that delete objects in the audit bucket (DeleteObject,
    /// DeleteObjects), so a deleted log is itself on record and can raise an alert.
    #[serde(default = "yes")]
    pub record_log_deletions: bool,
    pub kms: Option<KmsDoc>,
    /// Data events the trail records, each one advanced event selector (CloudTrail charges for
    /// data events; plan states the price of what it adds).
    #[serde(default)]
    pub data_events: Vec<DataEventDoc>,
    /// CloudTrail Insights on the trail's management events (charged per event analysed).
    pub insights: Option<InsightsDoc>,
    /// Other tools set event selectors on this trail too: ctguard keeps the selectors whose
    /// names do not start with `ctguard` (its own all do). Otherwise any other selector is
    /// drift, which apply replaces (refused without --allow-data-loss when it records data).
    #[serde(default)]
    pub shared_selectors: bool,
    /// verify also validates the digest chain and log files delivered in the last N hours, as
    /// `ctguard validate-logs` does.
    pub log_integrity_hours: Option<u32>,
    /// An organization trail (IsOrganizationTrail): it records every account of the
    /// organization. Made from the management account or CloudTrail's delegated administrator.
    #[serde(default)]
    pub organization: bool,
    /// Rely on the organization trail that records this member account (ctguard's, made from
    /// the management account, or Control Tower's) instead of a trail of its own.
    #[serde(default)]
    pub use_organization_trail: bool,
    /// The statements an organization trail adds to the audit bucket's policy.
    #[serde(default = "organization_bucket_policy")]
    pub organization_bucket_policy: String,
    /// The statements an organization trail adds to the policy of the key ctguard manages.
    #[serde(default = "organization_key_policy")]
    pub organization_key_policy: String,
    /// The statements an organization trail adds to the policy of the role CloudTrail delivers
    /// to CloudWatch Logs with: the members' events go to streams named `<organization id>_*`.
    #[serde(default = "organization_logs_role_policy")]
    pub organization_logs_role_policy: String,
}

fn organization_bucket_policy() -> String {
    "organization-trail-bucket-policy.json".into()
}

fn organization_key_policy() -> String {
    "organization-trail-key-policy.json".into()
}

fn organization_logs_role_policy() -> String {
    "organization-trail-logs-role-policy.json".into()
}

/// One `[[trail.data_events]]` entry: one advanced event selector recording data events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataEventDoc {
    /// Names the selector (CloudTrail shows it as `ctguard: <name>`).
    pub name: String,
    /// `resources.type`: AWS::S3::Object, AWS::Lambda::Function, AWS::DynamoDB::Table, ...
    pub resource_type: String,
    /// `resources.ARN` StartsWith: for S3 objects `arn:<partition>:s3:::<bucket>/[<key prefix>]`.
    #[serde(default)]
    pub arn_prefixes: Vec<String>,
    /// `resources.ARN` Equals.
    #[serde(default)]
    pub arns: Vec<String>,
    /// `readOnly`: true records reads only, false writes only; absent records both.
    pub read_only: Option<bool>,
    /// `eventName` Equals.
    #[serde(default)]
    pub event_names: Vec<String>,
    /// Only calls by the agents `[agents]` declares: `userIdentity.arn` StartsWith the session
    /// ARNs of its roles and permission sets and the ARNs of its users.
    #[serde(default)]
    pub agents: bool,
    /// Any other condition, as AWS writes it.
    #[serde(default)]
    pub fields: Vec<FieldDoc>,
}

/// A raw advanced field selector condition: `field`, an AWS operator and its values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDoc {
    pub field: String,
    pub operator: String,
    pub values: Vec<String>,
}

/// `[trail.insights]`: the Insights types CloudTrail has (PutInsightSelectors, InsightType).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsightsDoc {
    #[serde(default)]
    pub api_call_rate: bool,
    #[serde(default)]
    pub api_error_rate: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ReadWrite {
    #[default]
    All,
    ReadOnly,
    WriteOnly,
}

impl ReadWrite {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadWrite::All => "All",
            ReadWrite::ReadOnly => "ReadOnly",
            ReadWrite::WriteOnly => "WriteOnly",
        }
    }
}

/// Either ctguard creates and manages a key (`alias` + `policy`), or the trail uses an
/// existing one (`key_arn`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsDoc {
    pub alias: Option<String>,
    pub policy: Option<String>,
    pub key_arn: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchLogsDoc {
    pub log_group: String,
    #[serde(default = "default_retention")]
    pub retention_days: i32,
    pub role_name: String,
    #[serde(default = "default_role_path")]
    pub role_path: String,
    pub trust_policy: String,
    pub role_policy: String,
    /// The key CloudWatch Logs encrypts the group's events with; none: the group is not
    /// encrypted with a KMS key (taking a key off is a data-loss change).
    pub kms: Option<KmsDoc>,
}

fn default_retention() -> i32 {
    365
}

fn default_role_path() -> String {
    "/ctguard/".into()
}

/// A list of strings, or one string holding a placeholder for a list variable.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(untagged)]
pub enum StringOrList {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

/// Who the AI agents are. Every value is a list of `*` patterns, or a placeholder naming a list
/// variable (so `--var` can replace it); an agent detection matches when any signal does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsDoc {
    /// IAM role names; ctguard derives their session ARNs for the account.
    #[serde(default)]
    pub roles: StringOrList,
    /// Role session names, under any role.
    #[serde(default)]
    pub session_names: StringOrList,
    /// `sts:SourceIdentity` values (kept across role chaining).
    #[serde(default)]
    pub source_identities: StringOrList,
    /// IAM user names.
    #[serde(default)]
    pub users: StringOrList,
    /// IAM Identity Center permission set names (roles `AWSReservedSSO_<name>_<suffix>`).
    #[serde(default)]
    pub sso_permission_sets: StringOrList,
    /// Substrings of the user agent: supplementary, since the caller sets it.
    #[serde(default)]
    pub user_agents: StringOrList,
}

/// The SNS topics alerts go to: the default topic, and one per severity that needs its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsDoc {
    /// The default topic: every severity without a topic of its own publishes here.
    pub topic: Option<String>,
    /// The policy template of every topic (rendered once per topic, `${topic_arn}` its own).
    pub policy: String,
    pub kms: Option<KmsDoc>,
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionDoc>,
    /// A topic of its own for a severity (`[alerts.topics.critical]`).
    #[serde(default)]
    pub topics: std::collections::BTreeMap<Severity, SeverityTopicDoc>,
    /// The account's alias, named in every alert beside the account id.
    pub account_alias: Option<String>,
}

/// The topic one severity publishes to, with its own subscriptions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityTopicDoc {
    pub topic: String,
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionDoc>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionDoc {
    pub protocol: String,
    pub endpoint: String,
}

/// EventBridge rules, deployed in every region.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsDoc {
    /// The role EventBridge assumes to forward matches from other regions to the home bus.
    pub forwarder_role: String,
    #[serde(default = "default_role_path")]
    pub forwarder_role_path: String,
    pub forwarder_trust_policy: String,
    pub forwarder_role_policy: String,
    /// An event bus in another (security) account where every account's matches also go:
    /// `arn:PARTITION:events:REGION:ACCOUNT:event-bus/NAME`. In ACCOUNT, ctguard manages the bus,
    /// its policy and rules on it that alert like the profile's own.
    #[serde(default)]
    pub central_bus: Option<String>,
    /// The bus's resource policy (ctguard's statements), in the account that owns the bus.
    #[serde(default = "default_central_bus_policy")]
    pub central_bus_policy: String,
    /// The forwarding role's inline policy admitting the central bus, in every other account.
    #[serde(default = "default_central_forwarder_policy")]
    pub central_forwarder_policy: String,
    pub rules: Vec<RuleDoc>,
}

fn default_central_bus_policy() -> String {
    "central-bus-policy.json".into()
}

fn default_central_forwarder_policy() -> String {
    "central-bus-forwarder-policy.json".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Event pattern template file.
    pub pattern: String,
    /// Headline of the alert message.
    pub title: String,
    pub severity: Severity,
    /// Only events by the agents `[agents]` declares (any of its signals).
    #[serde(default)]
    pub agents: bool,
    /// Leave out calls an AWS service makes (`userIdentity.invokedBy` present, or a
    /// service-linked role's session): Auto Scaling, AWS Backup or snapshot lifecycles deleting
    /// what they manage. For rules on every principal; never for tampering rules.
    #[serde(default)]
    pub exclude_service_calls: bool,
    /// Restrict the rule to these principal ARN patterns (`*` wildcards); with `agents`, either.
    #[serde(default)]
    pub principals: StringOrList,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsDoc {
    #[serde(default = "default_namespace")]
    pub namespace: String,
}

fn default_namespace() -> String {
    "ctguard".into()
}

/// A CloudWatch Logs metric filter on the trail's log group and the alarm on its metric.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmDoc {
    pub id: String,
    pub name: String,
    pub metric: String,
    #[serde(default)]
    pub description: String,
    pub pattern: String,
    #[serde(default = "one")]
    pub threshold: f64,
    #[serde(default)]
    pub comparison: Comparison,
    #[serde(default = "five_minutes")]
    pub period: i32,
    #[serde(default = "one_period")]
    pub evaluation_periods: i32,
    pub severity: Severity,
    /// Only events by the agents `[agents]` declares (any of its signals).
    #[serde(default)]
    pub agents: bool,
    #[serde(default)]
    pub principals: StringOrList,
    /// Only meaningful when the trail records S3 data events.
    #[serde(default)]
    pub requires_data_events: bool,
}

fn one() -> f64 {
    1.0
}

fn five_minutes() -> i32 {
    300
}

fn one_period() -> i32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Comparison {
    #[default]
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl Comparison {
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            Comparison::GreaterThanThreshold => "GreaterThanThreshold",
            Comparison::LessThanThreshold => "LessThanThreshold",
            Comparison::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }
}

/// AWS Config in every region of the profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigDoc {
    /// Name of the recorder and the delivery channel ctguard manages.
    #[serde(default = "default_recorder")]
    pub recorder: String,
    /// "service-linked" (AWSServiceRoleForConfig, created when missing) or an IAM role ARN.
    #[serde(default = "default_config_role")]
    pub role: String,
    /// Key prefix in the audit bucket.
    #[serde(default = "default_config_prefix")]
    pub s3_prefix: String,
    #[serde(default)]
    pub snapshot_frequency: SnapshotFrequency,
    /// Manage a recorder that already exists under another name instead of leaving it alone.
    #[serde(default)]
    pub adopt_existing_recorder: bool,
    /// Make verify fail (exit 2) when a rule reports non-compliant resources.
    #[serde(default)]
    pub fail_on_noncompliance: bool,
    /// Template whose statements are added to the audit bucket's policy so Config can deliver.
    pub bucket_policy: String,
    #[serde(default)]
    pub rules: Vec<ConfigRuleDoc>,
}

fn default_recorder() -> String {
    "ctguard".into()
}

fn default_config_role() -> String {
    "service-linked".into()
}

fn default_config_prefix() -> String {
    "config".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[allow(non_camel_case_types)] // AWS's own spelling, as written in profiles
pub enum SnapshotFrequency {
    One_Hour,
    Three_Hours,
    Six_Hours,
    Twelve_Hours,
    #[default]
    TwentyFour_Hours,
}

impl SnapshotFrequency {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotFrequency::One_Hour => "One_Hour",
            SnapshotFrequency::Three_Hours => "Three_Hours",
            SnapshotFrequency::Six_Hours => "Six_Hours",
            SnapshotFrequency::Twelve_Hours => "Twelve_Hours",
            SnapshotFrequency::TwentyFour_Hours => "TwentyFour_Hours",
        }
    }
}

/// An AWS managed Config rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRuleDoc {
    pub name: String,
    /// The managed rule's identifier, such as RDS_INSTANCE_DELETION_PROTECTION_ENABLED.
    pub identifier: String,
    #[serde(default)]
    pub parameters: BTreeMap<String, toml::Value>,
    /// Restrict the rule to these resource types.
    #[serde(default)]
    pub resource_types: Vec<String>,
    /// Deploy in the home region only. Defaults to true for rules about global (IAM and
    /// account-level) resources, which Config records in one region.
    pub home_region_only: Option<bool>,
}
