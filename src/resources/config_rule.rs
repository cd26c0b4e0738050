//! AWS Config managed rules, per region (rules about global IAM resources in the home region
//! only). All rules of a region are read in one paginated batch. verify also reports each
//! rule's compliance, with the non-compliant resources, as information unless the profile asks
//! to fail on it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_config::types::{ComplianceType, ConfigRule, Owner, Scope, Source};
use serde::Serialize;
use serde_json::{Map, Value};

use super::config_recorder;
use super::config_region;
use super::discovery::{PREFIX, Search};
use super::kind::{Check, Declared, Delta, Found, Kind, Resource};
use super::snapshot::Snapshot;
use super::tag_index::{Listed, TagIndex};
use super::tags::{self, Tags};
use crate::aws::{Aws, AwsResultExt, all_pages};
use crate::plan::Address;
use crate::profile::{self, Profile};

pub const KIND: &str = "config_rule";

/// Rules repeat in every region, so the region is part of the name.
fn address(name: &str, region: &str) -> Address {
    Address { kind: KIND, name: format!("{region}/{name}"), region: region.into() }
}

/// A managed rule as ctguard compares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigRuleSpec {
    pub owner: Option<String>,
    pub identifier: Option<String>,
    /// Config stores them as a JSON string; compared as an object. `None`: no parameters.
    pub input_parameters: Option<Map<String, Value>>,
    /// Sorted.
    pub resource_types: Vec<String>,
    pub tags: Tags,
}

crate::tagged_spec!(ConfigRuleSpec);

/// Every rule of one region by name, as DescribeConfigRules lists it (without tags).
pub type Rules = BTreeMap<String, Listed<ConfigRuleSpec>>;

type Page = aws_sdk_config::operation::describe_config_rules::DescribeConfigRulesOutput;

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
    fail_on_noncompliance: bool,
    shared: Arc<RegionRules>,
}

/// The rule as the spec states it, without tags (flatten).
fn flatten(r: &ConfigRule) -> ConfigRuleSpec {
    let source = r.source();
    let parameters = r.input_parameters().and_then(|t| serde_json::from_str::<Value>(t).ok());
    let mut types: Vec<String> = r.scope().map(|s| s.compliance_resource_types().to_vec()).unwrap_or_default();
    types.sort();
    ConfigRuleSpec {
        owner: source.map(|s| s.owner().as_str().to_string()),
        identifier: source.and_then(|s| s.source_identifier()).map(str::to_string),
        input_parameters: match parameters {
            Some(Value::Object(map)) if !map.is_empty() => Some(map),
            _ => None,
        },
        resource_types: types,
        tags: Tags::new(),
    }
}

/// The rule PutConfigRule writes (expand): an AWS managed rule.
fn expand(name: &str, spec: &ConfigRuleSpec) -> anyhow::Result<ConfigRule> {
    let source = Source::builder().owner(Owner::Aws).set_source_identifier(spec.identifier.clone()).build()?;
    let mut rule = ConfigRule::builder().config_rule_name(name).source(source);
    if !spec.resource_types.is_empty() {
        rule = rule.scope(Scope::builder().set_compliance_resource_types(Some(spec.resource_types.clone())).build());
    }
    if let Some(parameters) = &spec.input_parameters {
        rule = rule.input_parameters(Value::Object(parameters.clone()).to_string());
    }
    Ok(rule.build())
}

impl ManagedConfigRule {
    pub fn new(
        profile: &Profile,
        rule: &profile::ConfigRule,
        region: &str,
        fail: bool,
        shared: Arc<RegionRules>,
    ) -> Declared<Self> {
        let parameters: Map<String, Value> =
            rule.parameters.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let mut types = rule.resource_types.clone();
        types.sort();
        let want = ConfigRuleSpec {
            owner: Some(Owner::Aws.as_str().to_string()),
            identifier: Some(rule.identifier.clone()),
            input_parameters: Some(parameters).filter(|p| !p.is_empty()),
            resource_types: types,
            tags: tags::owner_tags(profile),
        };
        let depends = vec![config_region::address(config_recorder::KIND, region)];
        let kind =
            ManagedConfigRule { name: rule.name.clone(), region: region.into(), fail_on_noncompliance: fail, shared };
        Declared::new(kind, address(&rule.name, region), want, depends)
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} AWS Config rule {}/{}", self.region, self.name)
    }

    pub async fn fetch(aws: &Aws, region: &str) -> anyhow::Result<Rules> {
        let what = || format!("reading AWS Config rules in {region}");
        let send = |token| async move { aws.config(region).describe_config_rules().set_next_token(token).send().await };
        let pages = all_pages(|token| async move { send(token).await.ctx(what) }, Page::next_token).await?;
        let rules = pages.iter().flat_map(|p| p.config_rules()).filter_map(|r| {
            let (name, arn) = (r.config_rule_name()?, r.config_rule_arn()?);
            Some((name.to_string(), Listed { spec: flatten(r), arn: arn.to_string() }))
        });
        Ok(rules.collect())
    }

    async fn listed(&self, aws: &Aws) -> anyhow::Result<Option<Listed<ConfigRuleSpec>>> {
        let rules = self.shared.rules.get(|| Self::fetch(aws, &self.region)).await?;
        Ok(rules.get(&self.name).cloned())
    }

    /// PutConfigRule creates or replaces the rule; tags only apply when creating.
    async fn put(&self, aws: &Aws, want: &ConfigRuleSpec, with_tags: bool) -> anyhow::Result<()> {
        let mut req = aws.config(&self.region).put_config_rule().config_rule(expand(&self.name, want)?);
        if with_tags {
            req = req.set_tags(Some(tags::sdk(&want.tags)?));
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

/// Rules named with the discovery prefix that the profile owns but no longer declares, in
/// each of its regions.
pub async fn owned(search: &Search<'_>) -> anyhow::Result<Vec<Box<dyn Resource>>> {
    search
        .in_regions(|region| async move {
            let (aws, listing) = (search.aws, &search.listings.config_rules[region]);
            let rules = listing.get(|| ManagedConfigRule::fetch(aws, region)).await?;
            let orphan = |name: &String| {
                let shared = RegionRules::new(vec![name.clone()], listing.clone(), Default::default());
                let rule = ManagedConfigRule {
                    name: name.clone(),
                    region: region.into(),
                    fail_on_noncompliance: false,
                    shared,
                };
                Box::new(Declared::undeclared(rule, address(name, region))) as Box<dyn Resource>
            };
            Ok(rules
                .iter()
                .filter(|(n, _)| n.starts_with(PREFIX))
                .map(|(name, l)| (l.arn.clone(), orphan(name)))
                .collect())
        })
        .await
}

#[async_trait]
impl Kind for ManagedConfigRule {
    type Spec = ConfigRuleSpec;

    async fn create(&self, aws: &Aws, want: &ConfigRuleSpec) -> anyhow::Result<()> {
        self.put(aws, want, true).await
    }

    /// Config evaluates nothing until the region has a recorder.
    async fn read(&self, aws: &Aws, want: Option<&ConfigRuleSpec>) -> anyhow::Result<Option<Found<ConfigRuleSpec>>> {
        let listed = self.listed(aws).await?;
        self.shared.tags.found(aws, &self.region, (listed, want), |s| &mut s.tags).await
    }

    async fn update(&self, aws: &Aws, delta: &Delta<'_, ConfigRuleSpec>) -> anyhow::Result<()> {
        let tag = async {
            if let Some(listed) = self.listed(aws).await? {
                let req = aws.config(&self.region).tag_resource().resource_arn(listed.arn);
                req.set_tags(Some(tags::sdk(&delta.want.tags)?)).send().await.ctx(|| self.what("tagging"))?;
            }
            Ok(())
        };
        let untagged = |s: &ConfigRuleSpec| ConfigRuleSpec { tags: Tags::new(), ..s.clone() };
        delta.put_then_tag(untagged, self.put(aws, delta.want, false), tag).await
    }

    async fn forget(&self) {
        self.shared.rules.forget().await;
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

#[cfg(test)]
mod kind_tests {
    use super::*;
    use crate::resources::testing::{HOME, aws, flagship, mock};
    use aws_sdk_config::{Client, operation as config};
    use aws_sdk_resourcegroupstagging::operation as tagging;

    fn declared(p: &Profile) -> Vec<Declared<ManagedConfigRule>> {
        let setup = p.config.as_ref().unwrap();
        let here: Vec<_> = setup.rules.iter().filter(|r| r.regions.iter().any(|r| r == HOME)).collect();
        let shared =
            RegionRules::new(here.iter().map(|r| r.name.clone()).collect(), Default::default(), Default::default());
        here.into_iter().map(|r| ManagedConfigRule::new(p, r, HOME, false, shared.clone())).collect()
    }

    #[tokio::test]
    async fn rules_are_read_from_one_listing_and_parameters_compare_as_objects() {
        let p = flagship();
        let rules = declared(&p);
        let with_params = rules.iter().find(|r| r.want.as_ref().unwrap().input_parameters.is_some());
        let r = with_params.unwrap_or(&rules[0]);
        let want = r.want.clone().unwrap();
        let name = r.kind.name.clone();
        let listed = want.clone();
        let describe = mock!(Client::describe_config_rules).then_output(move || {
            let mut rule = expand(&name, &listed).unwrap();
            rule.config_rule_arn = Some(format!("arn:aws:config:us-east-1:123456789012:config-rule/{name}"));
            config::describe_config_rules::DescribeConfigRulesOutput::builder().config_rules(rule).build()
        });
        // The index does not list it: its own tags are asked for.
        let index = mock!(aws_sdk_resourcegroupstagging::Client::get_resources)
            .then_output(|| tagging::get_resources::GetResourcesOutput::builder().build());
        let own = mock!(Client::list_tags_for_resource).then_output(|| {
            let tag = aws_sdk_config::types::Tag::builder().key("ctguard:profile").value("ai-agent-guard").build();
            aws_sdk_config::operation::list_tags_for_resource::ListTagsForResourceOutput::builder().tags(tag).build()
        });
        let aws = aws(&[&describe, &index, &own]);
        let found = r.kind.read(&aws, Some(&want)).await.unwrap().unwrap();
        assert_eq!(found.spec, want);
        let other = rules.iter().find(|o| o.kind.name != r.kind.name).unwrap();
        assert!(other.kind.read(&aws, other.want.as_ref()).await.unwrap().is_none());
        assert_eq!(describe.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_create_puts_an_aws_managed_rule_with_its_tags() {
        let p = flagship();
        let r = &declared(&p)[0];
        let want = r.want.clone().unwrap();
        let identifier = want.identifier.clone();
        let put = mock!(Client::put_config_rule)
            .match_requests(move |req| {
                let rule = req.config_rule().unwrap();
                let source = rule.source().unwrap();
                source.owner() == &Owner::Aws
                    && source.source_identifier() == identifier.as_deref()
                    && req.tags().len() == 1
            })
            .then_output(|| config::put_config_rule::PutConfigRuleOutput::builder().build());
        let aws = aws(&[&put]);
        r.kind.create(&aws, &want).await.unwrap();
        assert_eq!(put.num_calls(), 1);
    }
}
