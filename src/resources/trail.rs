//! The CloudTrail trail: multi-region, global service events, log-file validation, optional
//! KMS, CloudWatch Logs delivery, management events, and logging kept on.

use async_trait::async_trait;
use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector, InsightSelector, InsightType, Tag};
use serde::Serialize;

use super::kind::{Check, Declared, Delta, Found, Kind, Outputs, Resource};
use super::tags::{self, OWNER_TAG, Tags};
use super::{kms_key, log_group, role};
use crate::aws::error::created;
use crate::aws::{Aws, AwsResultExt, while_propagating};
use crate::plan::{Address, UNKNOWN};
use crate::profile::trail_events::{DATA_EVENT_PRICE, DataSelector, INSIGHTS_PRICE, OWNED_PREFIX, Operator};
use crate::profile::{Kms, Profile, ReadWrite};

pub const KIND: &str = "cloudtrail_trail";

/// A trail as ctguard compares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrailSpec {
    #[serde(flatten)]
    pub settings: TrailSettings,
    pub event_selectors: Selectors,
    /// The Insights types on (GetInsightSelectors), sorted; empty when Insights is off.
    pub insight_selectors: Vec<String>,
    pub is_logging: bool,
    pub tags: Tags,
}

crate::tagged_spec!(TrailSpec);

/// What CreateTrail and UpdateTrail set. An empty string or absent value means "none" for
/// the optional ones; the CloudWatch Logs role and group must travel together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrailSettings {
    pub s3_bucket_name: Option<String>,
    pub s3_key_prefix: String,
    pub is_multi_region_trail: bool,
    pub include_global_service_events: bool,
    pub log_file_validation_enabled: bool,
    pub kms_key_id: Option<String>,
    pub cloud_watch_logs_log_group_arn: Option<String>,
    pub cloud_watch_logs_role_arn: Option<String>,
    /// IsOrganizationTrail: the trail records every account of the organization.
    pub is_organization_trail: bool,
}

/// The trail's event selectors: advanced ones, which ctguard writes, or the basic ones a trail
/// made elsewhere may have (any is drift). CloudTrail applies selectors as a set, so both are
/// kept in one canonical order and compared regardless of the order AWS returns them in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Selectors {
    Basic(Vec<Selector>),
    Advanced(Vec<AdvancedSelector>),
}

/// One advanced event selector: its name and its field selectors, ANDed (CloudTrail API
/// Reference, AdvancedEventSelector).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct AdvancedSelector {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub field_selectors: Vec<FieldSelector>,
}

/// One field of an event record and the values each operator matches it against.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FieldSelector {
    pub field: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub equals: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub starts_with: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ends_with: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_equals: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_starts_with: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_ends_with: Vec<String>,
}

impl FieldSelector {
    fn equals(field: &str, values: &[&str]) -> Self {
        FieldSelector {
            field: field.into(),
            equals: values.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        }
    }
}

impl AdvancedSelector {
    /// Values, fields and selectors sorted: the order-insensitive form.
    fn canonical(mut self) -> Self {
        for f in &mut self.field_selectors {
            for list in [
                &mut f.equals,
                &mut f.starts_with,
                &mut f.ends_with,
                &mut f.not_equals,
                &mut f.not_starts_with,
                &mut f.not_ends_with,
            ] {
                list.sort();
                list.dedup();
            }
        }
        self.field_selectors.sort();
        self
    }

    /// Whether it selects data events (what a removed selector would stop recording).
    fn records_data(&self) -> bool {
        self.field_selectors.iter().any(|f| f.field == "eventCategory" && f.equals.iter().any(|v| v == "Data"))
    }

    /// Whether ctguard wrote it: its name carries ctguard's prefix, or it has a name ctguard
    /// gave its selectors before the prefix and selects exactly what a selector of `declared`
    /// does. An upgraded shared trail then renames it instead of keeping a second copy as
    /// someone else's.
    fn owned(&self, declared: &[AdvancedSelector]) -> bool {
        let Some(name) = self.name.as_deref() else { return false };
        name.starts_with(OWNED_PREFIX)
            || (UNPREFIXED_NAMES.contains(&name) && declared.iter().any(|d| d.field_selectors == self.field_selectors))
    }

    fn field(&self, name: &str) -> Option<&FieldSelector> {
        self.field_selectors.iter().find(|f| f.field == name)
    }

    /// Data events on every resource of a type billed per event at volume: every S3 bucket or
    /// every Lambda function of the account, by anyone (no `resources.ARN` condition, nor one
    /// on the caller).
    fn every_resource_of(&self) -> Option<&str> {
        let kind = self.field("resources.type")?.equals.first()?;
        let broad = ["AWS::S3::Object", "AWS::Lambda::Function"].contains(&kind.as_str());
        let unbounded = self.field("resources.ARN").is_none() && self.field("userIdentity.arn").is_none();
        (self.records_data() && broad && unbounded).then_some(kind.as_str())
    }

    /// Whether every event `other` records, this one records too: each of this selector's
    /// conditions is one `other` also sets, at least as narrowly (its values a subset of ours
    /// for a matching operator, ours a subset of its for an excluding one). Extra conditions
    /// on `other` only narrow it. Sufficient, not necessary: an unproven case counts as a loss.
    fn covers(&self, other: &AdvancedSelector) -> bool {
        let subset = |a: &[String], b: &[String]| a.iter().all(|v| b.contains(v));
        // A field that only excludes (NotEquals alone) matches almost everything: it is never
        // within a field that names what it matches.
        let names = |f: &FieldSelector| !(f.equals.is_empty() && f.starts_with.is_empty() && f.ends_with.is_empty());
        self.field_selectors.iter().all(|mine| {
            other.field(&mine.field).is_some_and(|theirs| {
                (!names(mine) || names(theirs))
                    && subset(&theirs.equals, &mine.equals)
                    && subset(&theirs.starts_with, &mine.starts_with)
                    && subset(&theirs.ends_with, &mine.ends_with)
                    && subset(&mine.not_equals, &theirs.not_equals)
                    && subset(&mine.not_starts_with, &theirs.not_starts_with)
                    && subset(&mine.not_ends_with, &theirs.not_ends_with)
            })
        })
    }

    fn label(&self) -> String {
        self.name.as_deref().map(|n| format!(" {n:?}")).unwrap_or_default()
    }
}

/// A declared data-event selector in CloudTrail's form.
fn data_selector(s: &DataSelector) -> AdvancedSelector {
    let mut fields = vec![
        FieldSelector::equals("eventCategory", &["Data"]),
        FieldSelector::equals("resources.type", &[&s.resource_type]),
    ];
    for c in &s.conditions {
        let at = match fields.iter().position(|f| f.field == c.field) {
            Some(at) => at,
            None => {
                fields.push(FieldSelector { field: c.field.clone(), ..Default::default() });
                fields.len() - 1
            }
        };
        let f = &mut fields[at];
        let list = match c.operator {
            Operator::Equals => &mut f.equals,
            Operator::StartsWith => &mut f.starts_with,
            Operator::EndsWith => &mut f.ends_with,
            Operator::NotEquals => &mut f.not_equals,
            Operator::NotStartsWith => &mut f.not_starts_with,
            Operator::NotEndsWith => &mut f.not_ends_with,
        };
        list.extend(c.values.iter().cloned());
    }
    AdvancedSelector { name: Some(s.name.clone()), field_selectors: fields }
}

/// The names of ctguard's management and audit-log-deletion selectors before they carried
/// `OWNED_PREFIX`.
const UNPREFIXED_NAMES: [&str; 2] = ["Management events", "Deletes of audit log objects"];

fn canonical(list: impl IntoIterator<Item = AdvancedSelector>) -> Vec<AdvancedSelector> {
    let mut out: Vec<AdvancedSelector> = list.into_iter().map(AdvancedSelector::canonical).collect();
    out.sort();
    out
}

/// Management events as declared, in advanced form (CloudTrail User Guide, "Logging
/// management events": `readOnly` left out records both reads and writes).
fn management_selector(rw: ReadWrite) -> AdvancedSelector {
    let mut fields = vec![FieldSelector::equals("eventCategory", &["Management"])];
    match rw {
        ReadWrite::All => {}
        ReadWrite::ReadOnly => fields.push(FieldSelector::equals("readOnly", &["true"])),
        ReadWrite::WriteOnly => fields.push(FieldSelector::equals("readOnly", &["false"])),
    }
    AdvancedSelector { name: Some(format!("{OWNED_PREFIX}: management events")), field_selectors: fields }
}

/// Deletes of objects in the audit bucket, and nothing else in it: CloudTrail's own deliveries
/// there are PutObject calls, which this selector leaves out, so logging them never feeds
/// itself, and the cost stays that of the deletes alone (CloudTrail User Guide, "Filtering
/// data events by using advanced event selectors").
fn log_deletions_selector(partition: &str, bucket: &str) -> AdvancedSelector {
    AdvancedSelector {
        name: Some(format!("{OWNED_PREFIX}: deletes of audit log objects")),
        field_selectors: vec![
            FieldSelector::equals("eventCategory", &["Data"]),
            FieldSelector::equals("resources.type", &["AWS::S3::Object"]),
            FieldSelector {
                field: "resources.ARN".into(),
                starts_with: vec![format!("arn:{partition}:s3:::{bucket}/")],
                ..Default::default()
            },
            FieldSelector::equals("eventName", &["DeleteObject", "DeleteObjects"]),
        ],
    }
}

/// A basic selector as read (a trail made elsewhere).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selector {
    pub read_write_type: Option<String>,
    pub include_management_events: Option<bool>,
    pub data_resources: Vec<DataResource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_management_event_sources: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataResource {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub values: Vec<String>,
}

pub struct Trail {
    name: String,
    arn: String,
    region: String,
    /// Where the key ARN comes from when ctguard manages the key.
    key: Option<Address>,
    /// Selectors not named `ctguard…` are someone else's: kept, never compared.
    shared: bool,
    /// The profile declares `[trail.insights]`; without it, Insights are left as found.
    insights: bool,
}

fn address(name: &str, region: &str) -> Address {
    Address { kind: KIND, name: name.into(), region: region.into() }
}

impl Trail {
    pub fn new(profile: &Profile, region: &str) -> Declared<Self> {
        let t = &profile.trail;
        let mut depends =
            vec![Address { kind: super::bucket::KIND, name: profile.bucket.name.clone(), region: region.into() }];
        let (group, role_arn) = match &profile.cloudwatch_logs {
            Some(cw) => {
                depends.push(log_group::address(cw, region));
                depends.push(role::address(&cw.role_name, region));
                (Some(cw.log_group_arn.clone()), Some(cw.role_arn.clone()))
            }
            None => (None, None),
        };
        let (key, kms_key_id) = match &t.kms {
            Some(Kms::Managed { alias, .. }) => {
                let a = kms_key::address(alias, region);
                depends.push(a.clone());
                // Filled in from the key's exports by `desired`.
                (Some(a), None)
            }
            Some(Kms::Existing { key_arn }) => (None, Some(key_arn.clone())),
            None => (None, None),
        };
        let settings = TrailSettings {
            s3_bucket_name: Some(profile.bucket.name.clone()),
            s3_key_prefix: profile.bucket.trail_prefix.clone(),
            is_multi_region_trail: t.multi_region,
            include_global_service_events: t.include_global_service_events,
            log_file_validation_enabled: t.log_file_validation,
            kms_key_id,
            cloud_watch_logs_log_group_arn: group,
            cloud_watch_logs_role_arn: role_arn,
            is_organization_trail: t.organization.is_some(),
        };
        let mut selectors = vec![management_selector(t.management_events)];
        if t.record_log_deletions {
            selectors.push(log_deletions_selector(&profile.runtime.partition, &profile.bucket.name));
        }
        selectors.extend(t.data_events.iter().map(data_selector));
        let mut insight_selectors = t.insights.clone();
        insight_selectors.sort();
        let want = TrailSpec {
            settings,
            event_selectors: Selectors::Advanced(canonical(selectors)),
            insight_selectors,
            is_logging: true,
            tags: tags::owner_tags(profile),
        };
        let (name, arn, shared, insights) = (t.name.clone(), t.arn.clone(), t.shared_selectors, t.insights_declared);
        let kind = Trail { name, arn, region: region.into(), key, shared, insights };
        Declared::new(kind, address(&t.name, region), want, depends)
    }

    /// A trail this profile owns but no longer declares: the one it had before a rename. It
    /// is deleted (with `--allow-data-loss`) only once `successor`, the declared trail, has
    /// been created and read back logging, so the account is never without a trail.
    pub fn left_over(trail: &LeftOver, successor: Address) -> Declared<Self> {
        let kind = Trail {
            name: trail.name.clone(),
            arn: trail.arn.clone(),
            region: trail.region.clone(),
            key: None,
            shared: false,
            insights: false,
        };
        let mut declared = Declared::undeclared(kind, address(&trail.name, &trail.region));
        declared.depends.push(successor);
        declared
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} CloudTrail trail {}/{}", self.region, self.name)
    }

    /// How calls name the trail: by name in the account that owns it; by ARN from CloudTrail's
    /// delegated administrator, since an organization trail belongs to the management account
    /// and names resolve in the caller's own account only (CloudTrail API Reference,
    /// DescribeTrails: "names of trails belonging only to the current Region and current account").
    fn handle(&self, aws: &Aws) -> &str {
        if super::org_trail::owner_of(&self.arn) == Some(aws.caller.account_id.as_str()) {
            &self.name
        } else {
            &self.arn
        }
    }
}

/// A trail this profile owns in the home region under another name than the one it
/// declares: left over from a rename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOver {
    pub name: String,
    pub arn: String,
    pub region: String,
}

/// What the home region's trails say before planning: the trails the profile owns but no
/// longer declares, and the organization trails of other accounts that record this one.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    pub left_over: Vec<LeftOver>,
    pub covering: Vec<super::org_trail::Covering>,
}

/// The trails `profile` owns but no longer declares, and the organization trails covering the
/// account, from one DescribeTrails.
pub async fn survey(aws: &Aws, profile: &Profile) -> anyhow::Result<Survey> {
    let (owned, covering) = owned(aws, &profile.name).await?;
    // Relying on an organization trail, every trail of its own is left over.
    let declared = (!profile.trail.use_organization_trail).then_some(profile.trail.name.as_str());
    let left_over = owned.into_iter().filter(|t| Some(t.name.as_str()) != declared).collect();
    Ok(Survey { left_over, covering })
}

/// The undeclared resources for the trails left over, each deleted only after the declared
/// trail it gave way to.
pub fn undeclared(profile: &Profile, left: &[LeftOver]) -> Vec<Box<dyn Resource>> {
    // Relying on an organization trail, the trail that takes over is that one: a trail of its
    // own is deleted only once the organization trail was read covering the account.
    let successor = if profile.trail.use_organization_trail {
        super::org_trail::address(&profile.runtime.region)
    } else {
        address(&profile.trail.name, &profile.runtime.region)
    };
    left.iter().map(|t| Box::new(Trail::left_over(t, successor.clone())) as Box<dyn Resource>).collect()
}

/// While a left-over trail exists it keeps logging, so the documents that let only the
/// declared trail write (statements conditioned on `aws:SourceArn` being its ARN: the audit
/// bucket policy, the trail key's policy) admit the left-over trails' ARNs as well. Once they
/// are deleted, the next plan narrows the documents again.
pub fn admit(profile: &mut Profile, left: &[LeftOver]) {
    if left.is_empty() {
        return;
    }
    let arns: Vec<&str> = left.iter().map(|t| t.arn.as_str()).collect();
    let declared = profile.trail.arn.clone();
    admit_in(&mut profile.bucket.policy, &declared, &arns);
    if let Some(Kms::Managed { policy, .. }) = &mut profile.trail.kms {
        admit_in(policy, &declared, &arns);
    }
}

/// In every statement of `doc`, a condition on `aws:SourceArn` that names `declared` also
/// names `others`.
fn admit_in(doc: &mut serde_json::Value, declared: &str, others: &[&str]) {
    use serde_json::Value;
    let statements = match doc.get_mut("Statement") {
        Some(Value::Array(list)) => list.iter_mut().collect::<Vec<_>>(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return,
    };
    for statement in statements {
        let Some(Value::Object(operators)) = statement.get_mut("Condition") else { continue };
        for keys in operators.values_mut().filter_map(Value::as_object_mut) {
            // Condition keys are case-insensitive (IAM User Guide, "IAM JSON policy elements: Condition").
            for (_, value) in keys.iter_mut().filter(|(k, _)| k.eq_ignore_ascii_case("aws:SourceArn")) {
                let mut names: Vec<Value> = match value {
                    Value::String(s) if s == declared => vec![value.clone()],
                    Value::Array(list) if list.iter().any(|v| v == declared) => list.clone(),
                    _ => continue,
                };
                for other in others.iter().map(|a| Value::from(*a)) {
                    if !names.contains(&other) {
                        names.push(other);
                    }
                }
                *value = Value::Array(names);
            }
        }
    }
}

/// Trails in the home region tagged as owned by `profile`, and the organization trails of
/// other accounts covering this one (shadow trails, listed by the same call).
async fn owned(aws: &Aws, profile: &str) -> anyhow::Result<(Vec<LeftOver>, Vec<super::org_trail::Covering>)> {
    let region = aws.region();
    let account = aws.caller.account_id.as_str();
    let listed = super::org_trail::listed_with_shadows(aws).await?;
    let covering = super::org_trail::covering_in(&listed, account);
    let local: Vec<(String, String)> = listed
        .iter()
        .filter(|t| t.home_region() == Some(region))
        .filter(|t| t.trail_arn().and_then(super::org_trail::owner_of) == Some(account))
        .filter_map(|t| Some((t.name()?.to_string(), t.trail_arn()?.to_string())))
        .collect();
    let mut out = Vec::new();
    // ListTags takes at most 20 trails per call.
    for chunk in local.chunks(20) {
        let arns: Vec<String> = chunk.iter().map(|(_, arn)| arn.clone()).collect();
        let tags = aws
            .cloudtrail
            .list_tags()
            .set_resource_id_list(Some(arns))
            .send()
            .await
            .ctx(|| "reading trail tags".into())?;
        for r in tags.resource_tag_list() {
            let mine = r.tags_list().iter().any(|t| t.key() == OWNER_TAG && t.value() == Some(profile));
            if let Some((name, arn)) = chunk.iter().find(|(_, arn)| Some(arn.as_str()) == r.resource_id())
                && mine
            {
                out.push(LeftOver { name: name.clone(), arn: arn.clone(), region: region.to_string() });
            }
        }
    }
    Ok((out, covering))
}

/// The basic selectors as the spec states them (flatten).
fn flatten_selectors(list: &[aws_sdk_cloudtrail::types::EventSelector]) -> Vec<Selector> {
    list.iter()
        .map(|s| Selector {
            read_write_type: s.read_write_type().map(|r| r.as_str().to_string()),
            include_management_events: s.include_management_events(),
            data_resources: s
                .data_resources()
                .iter()
                .map(|d| DataResource { kind: d.r#type().map(str::to_string), values: d.values().to_vec() })
                .collect(),
            exclude_management_event_sources: Some(s.exclude_management_event_sources().to_vec())
                .filter(|v| !v.is_empty()),
        })
        .collect()
}

/// The advanced selectors as read, in canonical order (flatten).
fn flatten_advanced(list: &[AdvancedEventSelector]) -> Vec<AdvancedSelector> {
    canonical(list.iter().map(|s| {
        AdvancedSelector {
            name: s.name().map(str::to_string),
            field_selectors: s
                .field_selectors()
                .iter()
                .map(|f| FieldSelector {
                    field: f.field().to_string(),
                    equals: f.equals().to_vec(),
                    starts_with: f.starts_with().to_vec(),
                    ends_with: f.ends_with().to_vec(),
                    not_equals: f.not_equals().to_vec(),
                    not_starts_with: f.not_starts_with().to_vec(),
                    not_ends_with: f.not_ends_with().to_vec(),
                })
                .collect(),
        }
    }))
}

/// The advanced selectors PutEventSelectors writes (expand); they replace every selector the
/// trail had, basic ones included.
fn expand_advanced(list: &[AdvancedSelector]) -> anyhow::Result<Vec<AdvancedEventSelector>> {
    let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    list.iter()
        .map(|s| {
            let fields = s
                .field_selectors
                .iter()
                .map(|f| {
                    AdvancedFieldSelector::builder()
                        .field(&f.field)
                        .set_equals(some(&f.equals))
                        .set_starts_with(some(&f.starts_with))
                        .set_ends_with(some(&f.ends_with))
                        .set_not_equals(some(&f.not_equals))
                        .set_not_starts_with(some(&f.not_starts_with))
                        .set_not_ends_with(some(&f.not_ends_with))
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(AdvancedEventSelector::builder().set_name(s.name.clone()).set_field_selectors(Some(fields)).build()?)
        })
        .collect()
}

/// What the trail records now that `want` would no longer: data events a selector someone
/// added selects (management events stay declared, in whatever form).
fn lost_data_events(want: &Selectors, have: &Selectors) -> Vec<String> {
    // A selector renamed, or narrowed by hand and put back, loses nothing: a wanted selector
    // still records all it did.
    let kept = |s: &AdvancedSelector| matches!(want, Selectors::Advanced(w) if w.iter().any(|k| k.covers(s)));
    match have {
        Selectors::Advanced(list) => list
            .iter()
            .filter(|s| s.records_data() && !kept(s))
            .map(|s| format!("stops recording the data events of advanced event selector{}", s.label()))
            .collect(),
        Selectors::Basic(list) => list
            .iter()
            .flat_map(|s| &s.data_resources)
            .map(|d| format!("stops recording the data events of {}", d.kind.as_deref().unwrap_or("a data resource")))
            .collect(),
    }
}

/// An empty string or absent value means "none" for optional trail fields.
fn opt(v: Option<&str>) -> Option<String> {
    v.filter(|s| !s.is_empty()).map(str::to_string)
}

/// Applies the settings CreateTrail and UpdateTrail share to either request.
macro_rules! with_settings {
    ($req:expr, $s:expr) => {
        $req.s3_bucket_name($s.s3_bucket_name.clone().unwrap_or_default())
            .s3_key_prefix(&$s.s3_key_prefix)
            .is_multi_region_trail($s.is_multi_region_trail)
            .include_global_service_events($s.include_global_service_events)
            .enable_log_file_validation($s.log_file_validation_enabled)
            .is_organization_trail($s.is_organization_trail)
    };
}

#[async_trait]
impl Kind for Trail {
    type Spec = TrailSpec;

    /// Deleting the trail, or narrowing what it records, loses coverage from then on.
    fn destructive(want: Option<&TrailSpec>, have: &TrailSpec, _empty: bool) -> Vec<String> {
        let Some(want) = want else {
            return vec!["deletes the trail: the events it records are no longer logged".into()];
        };
        let (w, h) = (&want.settings, &have.settings);
        let narrowed = [
            (h.is_multi_region_trail && !w.is_multi_region_trail, "stops recording events of every other region"),
            (
                h.include_global_service_events && !w.include_global_service_events,
                "stops recording global service events (IAM, STS, CloudFront)",
            ),
            (have.is_logging && !want.is_logging, "stops logging"),
            (
                h.is_organization_trail && !w.is_organization_trail,
                "stops recording the organization's member accounts (an organization trail becomes a trail of this \
                 account alone)",
            ),
        ];
        let mut out: Vec<String> =
            narrowed.into_iter().filter(|(lost, _)| *lost).map(|(_, why)| why.to_string()).collect();
        out.extend(lost_data_events(&want.event_selectors, &have.event_selectors));
        for gone in have.insight_selectors.iter().filter(|t| !want.insight_selectors.contains(t)) {
            out.push(format!("stops CloudTrail Insights {gone}: unusual API activity is no longer flagged"));
        }
        out
    }

    /// What the change adds to the bill, at AWS's prices, and a warning for a selector on every
    /// bucket or function of the account.
    fn cautions(want: &TrailSpec, have: Option<&TrailSpec>) -> Vec<String> {
        let had: &[AdvancedSelector] = match have.map(|h| &h.event_selectors) {
            Some(Selectors::Advanced(list)) => list,
            _ => &[],
        };
        let mut out = Vec::new();
        if let Selectors::Advanced(list) = &want.event_selectors {
            let added =
                list.iter().filter(|s| s.records_data() && !had.iter().any(|h| h.field_selectors == s.field_selectors));
            for s in added {
                out.push(format!("records data events (advanced event selector{}): {DATA_EVENT_PRICE}", s.label()));
                if let Some(kind) = s.every_resource_of() {
                    out.push(format!(
                        "warning: advanced event selector{} records {kind} data events on every resource of the \
                         account, with no resources.ARN condition: at {DATA_EVENT_PRICE}, a busy account pays for \
                         millions of events a day",
                        s.label()
                    ));
                }
            }
        }
        let before: &[String] = have.map(|h| h.insight_selectors.as_slice()).unwrap_or_default();
        for t in want.insight_selectors.iter().filter(|t| !before.contains(t)) {
            out.push(format!("turns on CloudTrail Insights {t}: {INSIGHTS_PRICE}"));
        }
        out
    }

    fn resolve(&self, mut want: TrailSpec, outputs: &Outputs) -> TrailSpec {
        if let Some(key) = &self.key {
            want.settings.kms_key_id = outputs.get(key).map_or(Some(UNKNOWN.to_string()), |e| e.arn.clone());
        }
        want
    }

    async fn read(&self, aws: &Aws, want: Option<&TrailSpec>) -> anyhow::Result<Option<Found<TrailSpec>>> {
        let ct = &aws.cloudtrail;
        let Some(got) = ct.get_trail().name(self.handle(aws)).send().await.found(|| self.what("reading"))? else {
            return Ok(None);
        };
        let Some(trail) = got.trail() else { return Ok(None) };
        if let Some(home) = trail.home_region()
            && home != self.region
        {
            anyhow::bail!(
                "CloudTrail trail {} lives in {home}, not {}: set home_region = \"{home}\" in the profile",
                self.name,
                self.region
            );
        }
        let (status, selected, insights, tags) = tokio::try_join!(
            async { ct.get_trail_status().name(&self.arn).send().await.ctx(|| self.what("reading the status of")) },
            async {
                let req = ct.get_event_selectors().trail_name(&self.arn);
                req.send().await.ctx(|| self.what("reading event selectors of"))
            },
            async {
                let req = ct.get_insight_selectors().trail_name(&self.arn);
                req.send().await.found(|| self.what("reading Insights selectors of"))
            },
            async { ct.list_tags().resource_id_list(&self.arn).send().await.ctx(|| self.what("reading tags of")) },
        )?;
        let settings = TrailSettings {
            s3_bucket_name: opt(trail.s3_bucket_name()),
            s3_key_prefix: trail.s3_key_prefix().unwrap_or("").to_string(),
            is_multi_region_trail: trail.is_multi_region_trail().unwrap_or(false),
            include_global_service_events: trail.include_global_service_events().unwrap_or(false),
            log_file_validation_enabled: trail.log_file_validation_enabled().unwrap_or(false),
            kms_key_id: opt(trail.kms_key_id()),
            cloud_watch_logs_log_group_arn: opt(trail.cloud_watch_logs_log_group_arn()),
            cloud_watch_logs_role_arn: opt(trail.cloud_watch_logs_role_arn()),
            is_organization_trail: trail.is_organization_trail().unwrap_or(false),
        };
        // A trail has one kind or the other (CloudTrail API Reference, PutEventSelectors).
        let mut foreign = Vec::new();
        let tag_list = tags.resource_tag_list().first().map(|r| r.tags_list()).unwrap_or_default();
        let tagged = tag_list.iter().any(|t| t.key() == OWNER_TAG);
        let event_selectors = match selected.advanced_event_selectors() {
            [] => Selectors::Basic(flatten_selectors(selected.event_selectors())),
            list => {
                let declared = match want.map(|w| &w.event_selectors) {
                    Some(Selectors::Advanced(d)) if tagged => d.as_slice(),
                    _ => &[],
                };
                let (ours, theirs): (Vec<_>, Vec<_>) =
                    flatten_advanced(list).into_iter().partition(|s| !self.shared || s.owned(declared));
                foreign = theirs;
                Selectors::Advanced(ours)
            }
        };
        let mut insight_selectors: Vec<String> = insights
            .iter()
            .flat_map(|i| i.insight_selectors())
            .filter_map(|i| i.insight_type().map(|t| t.as_str().to_string()))
            .collect();
        insight_selectors.sort();
        insight_selectors.dedup();
        // Insights the profile does not declare are someone else's choice (and bill): left as
        // they are, never compared, so they are neither drift nor switched off.
        if !self.insights {
            insight_selectors = want.map(|w| w.insight_selectors.clone()).unwrap_or(insight_selectors);
        }
        let spec = TrailSpec {
            settings,
            event_selectors,
            insight_selectors,
            is_logging: status.is_logging().unwrap_or(false),
            tags: tags::managed(tag_list.iter().map(|t| (t.key(), t.value().unwrap_or("")))),
        };
        let mut found = Found::new(spec);
        for s in &foreign {
            found.notes.push(format!(
                "keeps advanced event selector{} ctguard does not own (its name does not start with {OWNED_PREFIX:?}; \
                 the profile shares the trail's selectors)",
                s.label()
            ));
        }
        for (name, err) in [
            ("trail delivers log files to S3", status.latest_delivery_error()),
            ("trail delivers digest files to S3", status.latest_digest_delivery_error()),
            ("trail delivers events to CloudWatch Logs", status.latest_cloud_watch_logs_delivery_error()),
        ] {
            let detail = match err {
                Some(e) if !e.is_empty() => e.to_string(),
                _ => "no delivery error reported".to_string(),
            };
            found.checks.push(Check { name: name.into(), ok: err.is_none_or(str::is_empty), detail });
        }
        let delivers_to_logs = want.is_some_and(|w| w.settings.cloud_watch_logs_log_group_arn.is_some());
        if delivers_to_logs {
            let last = status.latest_cloud_watch_logs_delivery_time();
            found.checks.push(recent_delivery(last, std::time::SystemTime::now()));
        }
        Ok(Some(found))
    }

    async fn create(&self, aws: &Aws, want: &TrailSpec) -> anyhow::Result<()> {
        let s = &want.settings;
        let tags: Vec<Tag> = tags::sdk(&want.tags)?;
        // A role IAM created moments ago is not assumable by CloudTrail yet.
        let made = while_propagating(|| async {
            with_settings!(aws.cloudtrail.create_trail().name(&self.name), s)
                .set_kms_key_id(s.kms_key_id.clone())
                .set_cloud_watch_logs_log_group_arn(s.cloud_watch_logs_log_group_arn.clone())
                .set_cloud_watch_logs_role_arn(s.cloud_watch_logs_role_arn.clone())
                .set_tags_list(Some(tags.clone()))
                .send()
                .await
                .ctx(|| self.what("creating"))
        })
        .await;
        if created(made)? {
            self.put_selectors(aws, &want.event_selectors).await?;
            if !want.insight_selectors.is_empty() {
                self.put_insights(aws, &want.insight_selectors).await?;
            }
            self.start_logging(aws).await
        } else {
            // A run interrupted after CreateTrail left the trail behind: converge it instead.
            self.update(aws, &Delta::all(want)).await
        }
    }

    async fn update(&self, aws: &Aws, delta: &Delta<'_, TrailSpec>) -> anyhow::Result<()> {
        let ct = &aws.cloudtrail;
        let want = delta.want;
        if delta.changed(|t| &t.settings) {
            let s = &want.settings;
            // An empty string removes an optional setting.
            while_propagating(|| async {
                with_settings!(ct.update_trail().name(self.handle(aws)), s)
                    .kms_key_id(s.kms_key_id.clone().unwrap_or_default())
                    .cloud_watch_logs_log_group_arn(s.cloud_watch_logs_log_group_arn.clone().unwrap_or_default())
                    .cloud_watch_logs_role_arn(s.cloud_watch_logs_role_arn.clone().unwrap_or_default())
                    .send()
                    .await
                    .ctx(|| self.what("updating"))
            })
            .await?;
        }
        if delta.changed(|t| &t.event_selectors) {
            self.put_selectors(aws, &want.event_selectors).await?;
        }
        if delta.changed(|t| &t.insight_selectors) {
            self.put_insights(aws, &want.insight_selectors).await?;
        }
        if delta.changed(|t| &t.tags) {
            let req = ct.add_tags().resource_id(&self.arn).set_tags_list(Some(tags::sdk(&want.tags)?));
            req.send().await.ctx(|| self.what("tagging"))?;
        }
        // A new trail does not log until StartLogging; last, so logging starts fully configured.
        if delta.changed(|t| &t.is_logging) {
            self.start_logging(aws).await?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        aws.cloudtrail.delete_trail().name(self.handle(aws)).send().await.found(|| self.what("deleting"))?;
        Ok(())
    }
}

impl Trail {
    /// ctguard declares advanced selectors only. PutEventSelectors replaces them all, so on a
    /// shared trail the others' selectors, read just before, are written back with ours.
    async fn put_selectors(&self, aws: &Aws, want: &Selectors) -> anyhow::Result<()> {
        let Selectors::Advanced(list) = want else {
            anyhow::bail!("internal error: ctguard declares advanced event selectors only")
        };
        let mut list = list.clone();
        if self.shared {
            let req = aws.cloudtrail.get_event_selectors().trail_name(&self.arn);
            let now = req.send().await.ctx(|| self.what("reading event selectors of"))?;
            let req = aws.cloudtrail.list_tags().resource_id_list(&self.arn);
            let tags = req.send().await.ctx(|| self.what("reading tags of"))?;
            let tagged = tags.resource_tag_list().iter().flat_map(|r| r.tags_list()).any(|t| t.key() == OWNER_TAG);
            let declared = if tagged { list.clone() } else { Vec::new() };
            let theirs: Vec<_> =
                flatten_advanced(now.advanced_event_selectors()).into_iter().filter(|s| !s.owned(&declared)).collect();
            list.extend(theirs);
        }
        let req = aws.cloudtrail.put_event_selectors().trail_name(self.handle(aws));
        let req = req.set_advanced_event_selectors(Some(expand_advanced(&list)?));
        req.send().await.ctx(|| self.what("setting event selectors of"))?;
        Ok(())
    }

    /// PutInsightSelectors replaces the trail's Insights types; an empty list turns Insights off.
    async fn put_insights(&self, aws: &Aws, types: &[String]) -> anyhow::Result<()> {
        let selectors =
            types.iter().map(|t| InsightSelector::builder().insight_type(InsightType::from(t.as_str())).build());
        let req = aws.cloudtrail.put_insight_selectors().trail_name(self.handle(aws));
        req.set_insight_selectors(Some(selectors.collect())).send().await.ctx(|| self.what("setting Insights of"))?;
        Ok(())
    }

    async fn start_logging(&self, aws: &Aws) -> anyhow::Result<()> {
        aws.cloudtrail.start_logging().name(self.handle(aws)).send().await.ctx(|| self.what("starting logging of"))?;
        Ok(())
    }
}

/// A trail that logs management events delivers to its log group every few minutes: AWS's own
/// services make calls in every account. Hours of silence mean the group has stopped receiving
/// (a broken role, a deleted stream) even when no delivery error is reported.
const QUIET_LIMIT: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

fn recent_delivery(last: Option<&aws_smithy_types::DateTime>, now: std::time::SystemTime) -> Check {
    let name = "log group received events from the trail recently".to_string();
    let Some(last) = last else {
        return Check { name, ok: true, detail: "the API reports no delivery time yet".into() };
    };
    let age = std::time::SystemTime::try_from(*last).ok().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
    let minutes = age.as_secs() / 60;
    let ok = age <= QUIET_LIMIT;
    let detail = if ok {
        format!("last delivery {minutes} min ago")
    } else {
        format!(
            "last delivery {minutes} min ago, more than {} h: CloudWatch Logs alarms see nothing",
            QUIET_LIMIT.as_secs() / 3600
        )
    };
    Check { name, ok, detail }
}

#[cfg(test)]
mod delivery_tests {
    use super::*;

    use std::time::{Duration, SystemTime};

    #[test]
    fn delivery_recency() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |secs_ago: i64| aws_smithy_types::DateTime::from_secs(1_800_000_000 - secs_ago);
        assert!(recent_delivery(Some(&at(300)), now).ok);
        let stale = recent_delivery(Some(&at(3 * 3600)), now);
        assert!(!stale.ok && stale.detail.contains("180 min ago"), "{}", stale.detail);
        assert!(recent_delivery(None, now).ok);
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;
    use crate::resources::kind::Exports;
    use crate::resources::testing::{Rule, aws, flagship, mock};
    use aws_sdk_cloudtrail::{
        Client, operation as ct,
        types::{AdvancedEventSelector, EventSelector, ReadWriteType, ResourceTag, Trail as SdkTrail},
    };

    /// The desired trail with the key ARN the key's exports give.
    fn declared() -> (Declared<Trail>, TrailSpec) {
        let p = flagship();
        let trail = Trail::new(&p, "us-east-1");
        let key = trail.kind.key.clone().unwrap();
        let arn = "arn:aws:kms:us-east-1:123456789012:key/k-1".to_string();
        let outputs = Outputs::from([(key, Exports { arn: Some(arn) })]);
        let want = trail.kind.resolve(trail.want.clone().unwrap(), &outputs);
        (trail, want)
    }

    #[test]
    fn the_key_arn_is_unknown_until_the_key_exists() {
        let (trail, _) = declared();
        let unresolved = trail.kind.resolve(trail.want.clone().unwrap(), &Outputs::new());
        assert_eq!(unresolved.settings.kms_key_id.as_deref(), Some(UNKNOWN));
    }

    /// AWS's answers for a trail like `want`, with these advanced selectors (`None`: a basic one).
    fn reads(want: &TrailSpec, selected: Option<Vec<AdvancedEventSelector>>) -> Vec<Rule> {
        let s = want.settings.clone();
        vec![
            mock!(Client::get_trail).then_output(move || {
                let t = SdkTrail::builder()
                    .name("ctguard-audit")
                    .home_region("us-east-1")
                    .set_s3_bucket_name(s.s3_bucket_name.clone())
                    .s3_key_prefix(&s.s3_key_prefix)
                    .is_multi_region_trail(s.is_multi_region_trail)
                    .include_global_service_events(s.include_global_service_events)
                    .log_file_validation_enabled(s.log_file_validation_enabled)
                    .set_kms_key_id(s.kms_key_id.clone())
                    .set_cloud_watch_logs_log_group_arn(s.cloud_watch_logs_log_group_arn.clone())
                    .set_cloud_watch_logs_role_arn(s.cloud_watch_logs_role_arn.clone())
                    .build();
                ct::get_trail::GetTrailOutput::builder().trail(t).build()
            }),
            mock!(Client::get_trail_status).then_output(|| {
                ct::get_trail_status::GetTrailStatusOutput::builder()
                    .is_logging(true)
                    .latest_delivery_error("AccessDenied")
                    .build()
            }),
            mock!(Client::get_event_selectors).then_output(move || {
                let out = ct::get_event_selectors::GetEventSelectorsOutput::builder();
                match &selected {
                    Some(list) => out.set_advanced_event_selectors(Some(list.clone())),
                    // A basic selector, as a trail made before advanced ones has.
                    None => out.event_selectors(
                        EventSelector::builder()
                            .read_write_type(ReadWriteType::All)
                            .include_management_events(true)
                            .build(),
                    ),
                }
                .build()
            }),
            mock!(Client::get_insight_selectors).then_error(|| {
                ct::get_insight_selectors::GetInsightSelectorsError::InsightNotEnabledException(
                    aws_sdk_cloudtrail::types::error::InsightNotEnabledException::builder().message("off").build(),
                )
            }),
            mock!(Client::list_tags).then_output(|| {
                let tag =
                    aws_sdk_cloudtrail::types::Tag::builder().key(OWNER_TAG).value("ai-agent-guard").build().unwrap();
                ct::list_tags::ListTagsOutput::builder()
                    .resource_tag_list(ResourceTag::builder().tags_list(tag).build())
                    .build()
            }),
        ]
    }

    fn advanced(spec: &TrailSpec) -> Vec<AdvancedSelector> {
        match &spec.event_selectors {
            Selectors::Advanced(list) => list.clone(),
            Selectors::Basic(_) => panic!("ctguard declares advanced selectors"),
        }
    }

    /// The declared selectors as AWS may return them: selectors, fields and values in another order.
    fn shuffled(want: &TrailSpec) -> Vec<AdvancedEventSelector> {
        let mut list = advanced(want);
        list.reverse();
        for s in &mut list {
            s.field_selectors.reverse();
            s.field_selectors.iter_mut().for_each(|f| f.equals.reverse());
        }
        expand_advanced(&list).unwrap()
    }

    #[test]
    fn the_trail_records_management_events_and_deletes_in_the_audit_bucket_only() {
        let (_, want) = declared();
        let list = advanced(&want);
        assert_eq!(list.len(), 3, "management events, audit log deletes, the agents' object calls");
        let deletes = Some("ctguard: deletes of audit log objects");
        let data = list.iter().find(|s| s.name.as_deref() == deletes).unwrap();
        let field = |name: &str| data.field_selectors.iter().find(|f| f.field == name).unwrap().clone();
        assert_eq!(field("resources.type").equals, ["AWS::S3::Object"]);
        assert_eq!(field("resources.ARN").starts_with, ["arn:aws:s3:::ctguard-audit-123456789012-us-east-1/"]);
        assert_eq!(field("eventName").equals, ["DeleteObject", "DeleteObjects"]);
        let management = list.iter().find(|s| !s.records_data()).unwrap();
        assert_eq!(management.field_selectors, [FieldSelector::equals("eventCategory", &["Management"])]);
        let agents = list.iter().find(|s| s.records_data() && s.name.as_deref() != deletes).unwrap();
        assert_eq!(agents.every_resource_of(), None, "bounded by the agents' calls");
        assert!(agents.field("userIdentity.arn").unwrap().starts_with.iter().all(|p| p.contains(":123456789012:")));
        let mut p = flagship();
        p.trail.record_log_deletions = false;
        p.trail.data_events.clear();
        p.trail.management_events = ReadWrite::WriteOnly;
        let only = advanced(&Trail::new(&p, "us-east-1").want.unwrap());
        assert_eq!(only.len(), 1);
        assert!(only[0].field_selectors.contains(&FieldSelector::equals("readOnly", &["false"])));
    }

    #[test]
    fn dropping_a_data_event_selector_is_destructive() {
        let (_, want) = declared();
        let mut theirs = log_deletions_selector("aws", "exports");
        theirs.name = Some("exports bucket".into());
        let mut list = advanced(&want);
        list.push(theirs);
        let have = TrailSpec { event_selectors: Selectors::Advanced(canonical(list)), ..want.clone() };
        let lost = Trail::destructive(Some(&want), &have, false);
        assert_eq!(lost, ["stops recording the data events of advanced event selector \"exports bucket\""]);
        assert!(Trail::destructive(Some(&want), &want, false).is_empty());
        let basic = TrailSpec { event_selectors: Selectors::Basic(Vec::new()), ..want.clone() };
        assert!(Trail::destructive(Some(&want), &basic, false).is_empty(), "management events stay recorded");
    }

    #[test]
    fn declared_data_events_are_selectors_with_a_price_and_a_warning_when_unbounded() {
        use crate::profile::trail_events::{Condition, DataSelector};
        let mut p = flagship();
        p.trail.data_events = vec![DataSelector {
            name: "ctguard: every object".into(),
            resource_type: "AWS::S3::Object".into(),
            conditions: vec![Condition {
                field: "readOnly".into(),
                operator: Operator::Equals,
                values: vec!["false".into()],
            }],
        }];
        p.trail.insights = vec!["ApiErrorRateInsight".into()];
        p.trail.insights_declared = true;
        let want = Trail::new(&p, "us-east-1").want.unwrap();
        let list = advanced(&want);
        let every = list.iter().find(|s| s.name.as_deref() == Some("ctguard: every object")).unwrap();
        assert_eq!(every.field("readOnly").unwrap().equals, ["false"]);
        assert_eq!(every.every_resource_of(), Some("AWS::S3::Object"));
        let notes = Trail::cautions(&want, None);
        assert!(notes.iter().any(|n| n.contains("$0.10 per 100,000") && n.contains("every object")), "{notes:?}");
        assert!(notes.iter().any(|n| n.starts_with("warning:") && n.contains("every resource")), "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("ApiErrorRateInsight") && n.contains("$0.35")), "{notes:?}");
        // Nothing added: no price to state.
        assert!(Trail::cautions(&want, Some(&want)).is_empty());
        // Insights switched off loses coverage.
        let off = TrailSpec { insight_selectors: Vec::new(), ..want.clone() };
        let lost = Trail::destructive(Some(&off), &want, false);
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert!(lost[0].contains("ApiErrorRateInsight"));
    }

    #[test]
    fn a_selector_that_only_excludes_is_wider_than_one_that_names_its_events() {
        let declared = log_deletions_selector("aws", "audit");
        let mut theirs = declared.clone();
        for f in theirs.field_selectors.iter_mut().filter(|f| f.field == "eventName") {
            f.not_equals = vec!["GetObject".into()];
            f.equals.clear();
        }
        assert!(!declared.covers(&theirs), "NotEquals GetObject records every other call");
        assert!(declared.covers(&declared));
    }

    #[test]
    fn a_selector_narrowed_by_hand_and_put_back_loses_nothing_but_a_wider_one_does() {
        let declared = log_deletions_selector("aws", "audit");
        let mut narrowed = declared.clone();
        narrowed.field_selectors.iter_mut().filter(|f| f.field == "eventName").for_each(|f| f.equals.truncate(1));
        assert!(declared.covers(&narrowed) && !narrowed.covers(&declared));
        let mut extra = declared.clone();
        extra.field_selectors.push(FieldSelector::equals("readOnly", &["false"]));
        assert!(declared.covers(&extra), "an extra condition only narrows");
        let mut wider = declared.clone();
        wider.field_selectors.retain(|f| f.field != "eventName");
        assert!(!declared.covers(&wider));
    }

    #[test]
    fn a_selector_renamed_but_selecting_the_same_events_loses_nothing() {
        let (_, want) = declared();
        let mut renamed = advanced(&want);
        renamed.iter_mut().for_each(|s| s.name = Some("Deletes of audit log objects".into()));
        let have = TrailSpec { event_selectors: Selectors::Advanced(canonical(renamed)), ..want.clone() };
        assert!(Trail::destructive(Some(&want), &have, false).is_empty());
    }

    #[tokio::test]
    async fn on_a_shared_trail_the_selectors_of_others_are_kept_out_of_the_comparison() {
        let (mut trail, want) = declared();
        trail.kind.shared = true;
        let mut theirs = log_deletions_selector("aws", "exports");
        theirs.name = Some("exports bucket".into());
        let mut list = advanced(&want);
        list.push(theirs);
        let rules = reads(&want, Some(expand_advanced(&list).unwrap()));
        let client = aws(&rules.iter().collect::<Vec<_>>());
        let found = trail.kind.read(&client, Some(&want)).await.unwrap().unwrap();
        assert_eq!(found.spec, want);
        assert!(found.notes.iter().any(|n| n.contains("\"exports bucket\"")), "{:?}", found.notes);
        // A selector ctguard named before its prefix is its own when it selects what a declared
        // one does; under that name with other fields, it is someone else's.
        let mut renamed = advanced(&want);
        let management = renamed.iter_mut().find(|s| s.name.as_deref() == Some("ctguard: management events")).unwrap();
        management.name = Some("Management events".into());
        let mut console = log_deletions_selector("aws", "exports");
        console.name = Some("Deletes of audit log objects".into());
        renamed.push(console);
        let rules = reads(&want, Some(expand_advanced(&renamed).unwrap()));
        let old = trail.kind.read(&aws(&rules.iter().collect::<Vec<_>>()), Some(&want)).await.unwrap().unwrap();
        let Selectors::Advanced(ours) = &old.spec.event_selectors else { panic!("advanced") };
        assert!(ours.iter().any(|s| s.name.as_deref() == Some("Management events")), "{ours:?}");
        assert!(old.notes.iter().any(|n| n.contains("\"Deletes of audit log objects\"")), "{:?}", old.notes);
        // Not shared: the same selector is drift.
        trail.kind.shared = false;
        let found = trail.kind.read(&client, Some(&want)).await.unwrap().unwrap();
        assert_ne!(found.spec.event_selectors, want.event_selectors);
    }

    #[tokio::test]
    async fn reads_the_trail_its_selectors_status_and_delivery_health() {
        let (trail, want) = declared();
        let rules = reads(&want, Some(shuffled(&want)));
        let aws = aws(&rules.iter().collect::<Vec<_>>());
        let found = trail.kind.read(&aws, Some(&want)).await.unwrap().unwrap();
        assert_eq!(found.spec, want);
        let s3 = found.checks.iter().find(|c| c.name == "trail delivers log files to S3").unwrap();
        assert_eq!((s3.ok, s3.detail.as_str()), (false, "AccessDenied"));
    }

    #[tokio::test]
    async fn basic_or_edited_selectors_are_drift() {
        let (trail, want) = declared();
        let rules = reads(&want, None);
        let client = aws(&rules.iter().collect::<Vec<_>>());
        let found = trail.kind.read(&client, Some(&want)).await.unwrap().unwrap();
        assert!(matches!(&found.spec.event_selectors, Selectors::Basic(list) if list.len() == 1));
        let mut edited = advanced(&want);
        edited[0].field_selectors.retain(|f| f.field != "eventName");
        let rules = reads(&want, Some(expand_advanced(&edited).unwrap()));
        let client = aws(&rules.iter().collect::<Vec<_>>());
        let found = trail.kind.read(&client, Some(&want)).await.unwrap().unwrap();
        assert_ne!(found.spec.event_selectors, want.event_selectors);
    }

    #[tokio::test]
    async fn a_new_trail_gets_its_selectors_and_then_starts_logging() {
        let (trail, want) = declared();
        let create = mock!(Client::create_trail)
            .match_requests(|r| {
                r.kms_key_id() == Some("arn:aws:kms:us-east-1:123456789012:key/k-1")
                    && r.is_multi_region_trail() == Some(true)
                    && r.cloud_watch_logs_role_arn().is_some()
            })
            .then_output(|| ct::create_trail::CreateTrailOutput::builder().build());
        let selectors = mock!(Client::put_event_selectors)
            .match_requests(|r| r.event_selectors().is_empty() && r.advanced_event_selectors().len() == 3)
            .then_output(|| ct::put_event_selectors::PutEventSelectorsOutput::builder().build());
        let start =
            mock!(Client::start_logging).then_output(|| ct::start_logging::StartLoggingOutput::builder().build());
        let aws = aws(&[&create, &selectors, &start]);
        trail.kind.create(&aws, &want).await.unwrap();
        assert_eq!([create.num_calls(), selectors.num_calls(), start.num_calls()], [1; 3]);
    }
}

#[cfg(test)]
mod replacement_tests {
    use super::*;
    use crate::resources::testing::flagship;
    use serde_json::{Value, json};

    fn left(name: &str) -> LeftOver {
        LeftOver {
            name: name.into(),
            arn: format!("arn:aws:cloudtrail:us-east-1:123456789012:trail/{name}"),
            region: "us-east-1".into(),
        }
    }

    fn source_arns(doc: &Value, sid: &str) -> Value {
        let statement = doc["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == sid).unwrap();
        statement["Condition"]["StringEquals"]["aws:SourceArn"].clone()
    }

    #[test]
    fn while_a_left_over_trail_exists_the_bucket_and_key_policies_admit_it() {
        let mut p = flagship();
        let declared = p.trail.arn.clone();
        let before = p.bucket.policy.clone();
        admit(&mut p, &[]);
        assert_eq!(p.bucket.policy, before, "nothing left over: nothing changes");

        let old = left("old-audit");
        admit(&mut p, std::slice::from_ref(&old));
        assert_eq!(source_arns(&p.bucket.policy, "CtguardCloudTrailWrite"), json!([declared, old.arn]));
        assert_eq!(source_arns(&p.bucket.policy, "CtguardCloudTrailAclCheck"), json!([declared, old.arn]));
        let Some(Kms::Managed { policy, .. }) = &p.trail.kms else { panic!("the flagship profile manages its key") };
        assert_eq!(source_arns(policy, "CtguardCloudTrailEncryptsLogs"), json!([declared, old.arn]));
        // Statements conditioned on anything else are untouched.
        let tls = p.bucket.policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "CtguardDenyInsecureTransport");
        assert_eq!(tls.unwrap()["Condition"], json!({"Bool": {"aws:SecureTransport": "false"}}));
        // Admitting twice adds nothing.
        admit(&mut p, &[old.clone()]);
        assert_eq!(source_arns(&p.bucket.policy, "CtguardCloudTrailWrite"), json!([declared, old.arn]));
    }

    #[test]
    fn a_left_over_trail_is_deleted_only_after_the_declared_one() {
        let p = flagship();
        let resources = undeclared(&p, &[left("old-audit")]);
        assert_eq!(resources.len(), 1);
        let old = &resources[0];
        assert!(!old.declared());
        assert_eq!(old.address(), address("old-audit", "us-east-1"));
        assert_eq!(old.depends_on(), [address(&p.trail.name, "us-east-1")]);
    }
}
