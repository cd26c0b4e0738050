//! AWS Config managed rules, per region (rules about global IAM resources in the home region
//! only). All rules of a region are read in one paginated batch. verify also reports each
//! rule's compliance, with the non-compliant resources, as information unless the profile asks
//! to fail on it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_config::types::{ComplianceType, ConfigRule, Owner, Scope, Source, Tag};
use serde_json::{Value, json};

use super::tag_index::TagIndex;
use super::{Check, Live, Resource, Snapshot, Spec, config_recorder, owner_tags, tag_pairs};
use crate::aws::{Aws, AwsResultExt};
use crate::plan::{Address, Attrs};
use crate::profile::{self, Profile};

pub const KIND: &str = "config_rule";

/// Rules repeat in every region, so the region is part of the name.
fn address(name: &str, region: &str) -> Address {
    Address { kind: KIND, name: format!("{region}/{name}"), region: region.into() }
}

/// Every rule of one region by name, with its ARN.
pub type Rules = BTreeMap<String, (Attrs, String)>;

/// The rules of one region, read once: their definitions for plan, and their compliance
/// (DescribeComplianceByConfigRule takes up to 25 names per call) for verify.
pub struct RegionRules {
    names: Vec<String>,
    rules: Arc<Snapshot<Rules>>,
    tags: Arc<TagIndex>,
    compliance: Snapshot<Result<BTreeMap<String, ComplianceType>, String>>,
}

/// DescribeComplianceByConfigRule's limit on rule names per call.
const COMPLIANCE_NAMES_PER_CALL: usize = 25;

impl RegionRules {
    /// `rules` is the region's listing, shared with the search for undeclared rules.
    pub fn new(names: Vec<String>, rules: Arc<Snapshot<Rules>>, tags: Arc<TagIndex>) -> Arc<Self> {
        Arc::new(RegionRules { names, rules, tags, compliance: Snapshot::default() })
    }

    /// Compliance of every rule of the region; an error is kept, not retried per rule.
    async fn compliance(&self, aws: &Aws, region: &str) -> Arc<Result<BTreeMap<String, ComplianceType>, String>> {
        let fetched = self
            .compliance
            .get(|| async {
                let mut found = BTreeMap::new();
                for chunk in self.names.chunks(COMPLIANCE_NAMES_PER_CALL) {
                    let req = aws
                        .config(region)
                        .describe_compliance_by_config_rule()
                        .set_config_rule_names(Some(chunk.to_vec()));
                    match req.send().await.ctx(|| format!("reading AWS Config compliance in {region}")) {
                        Ok(out) => found.extend(summary(&out)),
                        Err(e) => return Ok(Err(format!("{e:#}"))),
                    }
                }
                Ok(Ok(found))
            })
            .await;
        fetched.unwrap_or_else(|e| Arc::new(Err(format!("{e:#}"))))
    }
}

pub struct ManagedConfigRule {
    name: String,
    region: String,
    spec: Spec,
    fail_on_noncompliance: bool,
    shared: Arc<RegionRules>,
}

/// Config stores input parameters as a JSON string; compare them as a JSON object.
fn parameters(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str::<Value>(t).ok())
        .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        .unwrap_or(Value::Null)
}

fn attrs_of(r: &ConfigRule) -> Attrs {
    let mut attrs = Attrs::new();
    let source = r.source();
    attrs.insert("owner".into(), json!(source.map(|s| s.owner().as_str())));
    attrs.insert("identifier".into(), json!(source.and_then(|s| s.source_identifier())));
    attrs.insert("input_parameters".into(), parameters(r.input_parameters()));
    let mut types: Vec<&str> =
        r.scope().map(|s| s.compliance_resource_types().iter().map(String::as_str).collect()).unwrap_or_default();
    types.sort();
    attrs.insert("resource_types".into(), json!(types));
    attrs
}

impl ManagedConfigRule {
    pub fn new(
        profile: &Profile,
        rule: &profile::ConfigRule,
        region: &str,
        fail: bool,
        shared: Arc<RegionRules>,
    ) -> Self {
        let mut want = Attrs::new();
        want.insert("owner".into(), json!("AWS"));
        want.insert("identifier".into(), json!(rule.identifier));
        let params: serde_json::Map<String, Value> =
            rule.parameters.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        want.insert("input_parameters".into(), if params.is_empty() { Value::Null } else { Value::Object(params) });
        let mut types = rule.resource_types.clone();
        types.sort();
        want.insert("resource_types".into(), json!(types));
        want.insert("tags".into(), owner_tags(profile));
        let depends = vec![config_recorder::address(config_recorder::KIND, region)];
        let spec = Spec::new(address(&rule.name, region), want, depends);
        ManagedConfigRule { name: rule.name.clone(), region: region.into(), spec, fail_on_noncompliance: fail, shared }
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} AWS Config rule {}/{}", self.region, self.name)
    }

    pub async fn fetch(aws: &Aws, region: &str) -> anyhow::Result<Rules> {
        let mut rules = Rules::new();
        let mut token = None;
        loop {
            let page = aws.config(region).describe_config_rules().set_next_token(token).send().await;
            let page = page.ctx(|| format!("reading AWS Config rules in {region}"))?;
            for r in page.config_rules() {
                let (Some(name), Some(arn)) = (r.config_rule_name(), r.config_rule_arn()) else { continue };
                rules.insert(name.to_string(), (attrs_of(r), arn.to_string()));
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(rules);
            }
        }
    }

    async fn arn(&self, aws: &Aws) -> anyhow::Result<Option<String>> {
        let rules = self.shared.rules.get(|| Self::fetch(aws, &self.region)).await?;
        Ok(rules.get(&self.name).map(|(_, arn)| arn.clone()))
    }
}

/// Rules named with `prefix`, tagged as owned by `profile`, that are not `known`.
pub async fn owned(
    aws: &Aws,
    profile: &str,
    prefix: &str,
    listings: &super::Listings,
    known: &HashSet<Address>,
) -> anyhow::Result<Vec<Box<dyn Resource>>> {
    let per_region = listings.config_rules.iter().map(|(region, listing)| async move {
        let rules = listing.get(|| ManagedConfigRule::fetch(aws, region)).await?;
        let mut found: Vec<Box<dyn Resource>> = Vec::new();
        for (name, (_, arn)) in rules.iter().filter(|(n, _)| n.starts_with(prefix)) {
            let address = address(name, region);
            if known.contains(&address) {
                continue;
            }
            if listings.tags[region].owned_by(aws, region, arn, profile).await? {
                let rule = ManagedConfigRule {
                    name: name.clone(),
                    region: region.clone(),
                    spec: Spec::undeclared(address),
                    fail_on_noncompliance: false,
                    shared: RegionRules::new(vec![name.clone()], listing.clone(), Default::default()),
                };
                found.push(Box::new(rule));
            }
        }
        anyhow::Ok(found)
    });
    Ok(futures::future::try_join_all(per_region).await?.into_iter().flatten().collect())
}

#[async_trait]
impl Resource for ManagedConfigRule {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Config evaluates nothing until the region has a recorder.
    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        let rules = self.shared.rules.get(|| Self::fetch(aws, &self.region)).await?;
        let Some((attrs, arn)) = rules.get(&self.name) else { return Ok(None) };
        let tags = self.shared.tags.tags(aws, &self.region, arn, self.spec.want.get("tags")).await?;
        let mut attrs = attrs.clone();
        attrs.insert("tags".into(), tags);
        Ok(Some(Live { attrs, ..Live::default() }))
    }

    async fn read_back(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        self.shared.rules.forget().await;
        self.read(aws).await
    }

    async fn create(&self, aws: &Aws, want: &Attrs) -> anyhow::Result<()> {
        self.put(aws, want, true).await
    }

    async fn update(&self, aws: &Aws, want: &Attrs, changed: &BTreeSet<String>) -> anyhow::Result<()> {
        if changed.iter().any(|c| c != "tags") {
            self.put(aws, want, false).await?;
        }
        if changed.contains("tags")
            && let Some(arn) = self.arn(aws).await?
        {
            let tags: Vec<Tag> =
                tag_pairs(want).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
            let req = aws.config(&self.region).tag_resource().resource_arn(arn).set_tags(Some(tags));
            req.send().await.ctx(|| self.what("tagging"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        let req = aws.config(&self.region).delete_config_rule().config_rule_name(&self.name);
        req.send().await.found(|| self.what("deleting"))?;
        Ok(())
    }

    async fn health(&self, aws: &Aws) -> Vec<Check> {
        vec![self.compliance(aws).await]
    }
}

impl ManagedConfigRule {
    /// PutConfigRule creates or replaces the rule; tags only apply when creating.
    async fn put(&self, aws: &Aws, want: &Attrs, with_tags: bool) -> anyhow::Result<()> {
        let source = Source::builder().owner(Owner::Aws).source_identifier(super::text(want, "identifier")).build()?;
        let types: Vec<String> = want["resource_types"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        let mut rule = ConfigRule::builder().config_rule_name(&self.name).source(source);
        if !types.is_empty() {
            rule = rule.scope(Scope::builder().set_compliance_resource_types(Some(types)).build());
        }
        if want["input_parameters"].is_object() {
            rule = rule.input_parameters(want["input_parameters"].to_string());
        }
        let mut req = aws.config(&self.region).put_config_rule().config_rule(rule.build());
        if with_tags {
            let tags = tag_pairs(want).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
            req = req.set_tags(Some(tags));
        }
        req.send().await.ctx(|| self.what("writing"))?;
        Ok(())
    }

    /// Compliance as a check: information (ok) unless the profile fails on non-compliance.
    async fn compliance(&self, aws: &Aws) -> Check {
        let all = self.shared.compliance(aws, &self.region).await;
        let kind = all.as_ref().as_ref().map(|m| m.get(&self.name).cloned()).map_err(Clone::clone);
        let details = match &kind {
            Ok(Some(ComplianceType::NonCompliant)) => {
                let req = aws.config(&self.region).get_compliance_details_by_config_rule().config_rule_name(&self.name);
                let got = req.compliance_types(ComplianceType::NonCompliant).limit(100).send().await;
                Some(got.ctx(|| self.what("reading non-compliant resources of")))
            }
            _ => None,
        };
        compliance_check(&self.region, &self.name, kind, details, self.fail_on_noncompliance)
    }
}

type Summary = aws_sdk_config::operation::describe_compliance_by_config_rule::DescribeComplianceByConfigRuleOutput;
type Details = aws_sdk_config::operation::get_compliance_details_by_config_rule::GetComplianceDetailsByConfigRuleOutput;

fn summary(s: &Summary) -> impl Iterator<Item = (String, ComplianceType)> + '_ {
    s.compliance_by_config_rules()
        .iter()
        .filter_map(|c| Some((c.config_rule_name()?.to_string(), c.compliance()?.compliance_type()?.clone())))
}

/// Turns Config's answers into one check. Pure, so it is tested on recorded responses.
pub fn compliance_check(
    region: &str,
    name: &str,
    kind: Result<Option<ComplianceType>, String>,
    details: Option<anyhow::Result<Details>>,
    fail: bool,
) -> Check {
    let check =
        |ok: bool, detail: String| Check { name: format!("AWS Config rule {region}/{name} compliance"), ok, detail };
    match kind {
        Err(e) => check(!fail, format!("compliance not available: {e}")),
        Ok(Some(ComplianceType::NonCompliant)) => {
            let resources: Vec<String> = match details {
                Some(Ok(d)) => d
                    .evaluation_results()
                    .iter()
                    .filter_map(|r| r.evaluation_result_identifier()?.evaluation_result_qualifier())
                    .map(|q| format!("{} {}", q.resource_type().unwrap_or("?"), q.resource_id().unwrap_or("?")))
                    .collect(),
                Some(Err(e)) => vec![format!("(resources not available: {e:#})")],
                None => Vec::new(),
            };
            check(!fail, format!("NON_COMPLIANT: {}", resources.join(", ")))
        }
        Ok(Some(other)) => check(true, other.as_str().to_string()),
        Ok(None) => check(true, "not evaluated yet".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_config::types::{
        Compliance, ComplianceByConfigRule, EvaluationResult, EvaluationResultIdentifier, EvaluationResultQualifier,
    };

    /// A DescribeComplianceByConfigRule answer as AWS sends it.
    fn recorded(kind: ComplianceType) -> Summary {
        let c = ComplianceByConfigRule::builder()
            .config_rule_name("r")
            .compliance(Compliance::builder().compliance_type(kind).build())
            .build();
        Summary::builder().compliance_by_config_rules(c).build()
    }

    /// The rule's compliance as ctguard extracts it from a batch answer.
    fn kind_of(s: Summary) -> Result<Option<ComplianceType>, String> {
        Ok(super::summary(&s).find(|(name, _)| name == "r").map(|(_, k)| k))
    }

    fn details(ids: &[&str]) -> Details {
        let mut b = Details::builder();
        for id in ids {
            let q = EvaluationResultQualifier::builder().resource_type("AWS::RDS::DBInstance").resource_id(*id).build();
            let r = EvaluationResult::builder()
                .evaluation_result_identifier(
                    EvaluationResultIdentifier::builder().evaluation_result_qualifier(q).build(),
                )
                .compliance_type(ComplianceType::NonCompliant)
                .build();
            b = b.evaluation_results(r);
        }
        b.build()
    }

    #[test]
    fn non_compliant_resources_are_listed_as_information() {
        let c = compliance_check(
            "us-east-1",
            "r",
            kind_of(recorded(ComplianceType::NonCompliant)),
            Some(Ok(details(&["db-1", "db-2"]))),
            false,
        );
        assert!(c.ok);
        assert_eq!(c.detail, "NON_COMPLIANT: AWS::RDS::DBInstance db-1, AWS::RDS::DBInstance db-2");
    }

    #[test]
    fn non_compliance_fails_when_the_profile_asks() {
        let c = compliance_check(
            "us-east-1",
            "r",
            kind_of(recorded(ComplianceType::NonCompliant)),
            Some(Ok(details(&["db-1"]))),
            true,
        );
        assert!(!c.ok);
    }

    #[test]
    fn compliant_and_unevaluated_rules_pass() {
        assert!(compliance_check("us-east-1", "r", kind_of(recorded(ComplianceType::Compliant)), None, true).ok);
        let empty = compliance_check("us-east-1", "r", kind_of(Summary::builder().build()), None, true);
        assert_eq!((empty.ok, empty.detail.as_str()), (true, "not evaluated yet"));
    }

    #[test]
    fn an_unavailable_compliance_api_is_reported_not_hidden() {
        let c = compliance_check("us-east-1", "r", Err("InternalFailure".to_string()), None, true);
        assert!(!c.ok);
        assert!(c.detail.contains("compliance not available: InternalFailure"));
    }
}
