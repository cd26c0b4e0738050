//! EventBridge rules on CloudTrail events, one per profile rule and region. EventBridge only
//! sees events from its own region, and global services (IAM, STS, Organizations, Route 53)
//! deliver only to us-east-1, so every rule runs in every region of the profile. Matches in
//! other regions are forwarded to the home region's default bus, where the same rule turns
//! them into a readable message on the one alert topic: one topic, one set of subscribers.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_eventbridge::types::{InputTransformer, RuleState, Tag, Target};
use serde_json::{Value, json};

use super::tag_index::TagIndex;
use super::{Check, Live, Resource, Snapshot, Spec, owner_tags, role, tag_pairs, text, topic};
use crate::aws::{Aws, AwsResultExt};
use crate::plan::{Address, Attrs};
use crate::policy;
use crate::profile::{Events, Profile, Rule};

pub const KIND: &str = "events_rule";
const TOPIC_TARGET: &str = "ctguard-alert-topic";
const FORWARD_TARGET: &str = "ctguard-forward-to-home";

pub struct EventRule {
    name: String,
    region: String,
    arn: String,
    spec: Spec,
    region_rules: Arc<RegionEventRules>,
    tags: Arc<TagIndex>,
}

/// What ListRules says about one rule; it carries what DescribeRule would.
#[derive(Debug, Clone)]
struct Listed {
    arn: String,
    pattern: Option<String>,
    state: Option<String>,
    description: String,
}

/// Every rule of one region's default bus, from one paginated ListRules, shared by the
/// profile's rules in that region instead of a DescribeRule each.
#[derive(Default)]
pub struct RegionEventRules {
    snapshot: Snapshot<BTreeMap<String, Listed>>,
}

impl RegionEventRules {
    async fn get(&self, aws: &Aws, region: &str) -> anyhow::Result<Arc<BTreeMap<String, Listed>>> {
        self.snapshot
            .get(|| async {
                let mut rules = BTreeMap::new();
                let mut token = None;
                loop {
                    let page = aws.events(region).list_rules().set_next_token(token).send().await;
                    let page = page.ctx(|| format!("listing EventBridge rules in {region}"))?;
                    for r in page.rules() {
                        let listed = Listed {
                            arn: r.arn().unwrap_or("").to_string(),
                            pattern: r.event_pattern().map(str::to_string),
                            state: r.state().map(|s| s.as_str().to_string()),
                            description: r.description().unwrap_or("").to_string(),
                        };
                        rules.insert(r.name().unwrap_or("").to_string(), listed);
                    }
                    token = page.next_token().map(str::to_string);
                    if token.is_none() {
                        return Ok(rules);
                    }
                }
            })
            .await
    }
}

/// The alert text: "<principal> called <eventName> (<eventSource>) in <region> at <time>;
/// error: <errorCode>", headed by severity and title. An SNS target wants a JSON string.
fn input_transformer(rule: &Rule) -> Value {
    let text = format!(
        "[{}] {}: <principal> called <action> (<service>) in <region> at <time>; error: <error>",
        rule.severity.as_str().to_uppercase(),
        rule.title
    );
    json!({
        "paths": {
            "principal": "$.detail.userIdentity.arn",
            "action": "$.detail.eventName",
            "service": "$.detail.eventSource",
            "region": "$.region",
            "time": "$.time",
            "error": "$.detail.errorCode",
        },
        "template": serde_json::to_string(&text).unwrap_or_default(),
    })
}

/// Rules repeat in every region, so the region is part of the name.
fn address(name: &str, region: &str) -> Address {
    Address { kind: KIND, name: format!("{region}/{name}"), region: region.into() }
}

impl EventRule {
    /// `region_rules` is shared by every rule of the profile in `region`.
    pub fn new(
        profile: &Profile,
        events: &Events,
        rule: &Rule,
        region: &str,
        region_rules: Arc<RegionEventRules>,
        tags: Arc<TagIndex>,
    ) -> Self {
        let rt = &profile.runtime;
        let home = region == rt.region;
        let alerts = profile.alerts.as_ref().expect("validated: rules need [alerts]");
        let (target_id, target, depends) = if home {
            let t = json!({"arn": alerts.topic_arn, "role_arn": null, "input_transformer": input_transformer(rule)});
            (TOPIC_TARGET, t, vec![topic::address(alerts, &rt.region)])
        } else {
            let t = json!({"arn": events.home_bus_arn, "role_arn": events.role_arn, "input_transformer": null});
            (FORWARD_TARGET, t, vec![role::address(&events.role_name, region)])
        };
        let mut want = Attrs::new();
        want.insert("pattern".into(), policy::canonical_pattern(&rule.pattern));
        want.insert("state".into(), json!("ENABLED"));
        want.insert("description".into(), json!(rule.description));
        want.insert("targets".into(), json!({ target_id: target }));
        want.insert("tags".into(), owner_tags(profile));
        let arn = format!("arn:{}:events:{region}:{}:rule/{}", rt.partition, rt.account_id, rule.name);
        let spec = Spec::new(address(&rule.name, region), want, depends);
        EventRule { name: rule.name.clone(), region: region.into(), arn, spec, region_rules, tags }
    }

    fn orphan(aws: &Aws, name: &str, region: &str, region_rules: Arc<RegionEventRules>) -> Self {
        let rt = &aws.runtime;
        let arn = format!("arn:{}:events:{region}:{}:rule/{name}", rt.partition, rt.account_id);
        let spec = Spec::undeclared(address(name, region));
        // Orphans are found by their tags already; their read goes to the resource itself.
        let tags = Arc::new(TagIndex::default());
        EventRule { name: name.into(), region: region.into(), arn, spec, region_rules, tags }
    }

    fn what(&self, doing: &str) -> String {
        format!("{doing} EventBridge rule {}/{}", self.region, self.name)
    }

    fn target(id: &str, spec: &Value) -> anyhow::Result<Target> {
        let mut t = Target::builder().id(id).arn(spec["arn"].as_str().unwrap_or_default());
        if let Some(role) = spec["role_arn"].as_str() {
            t = t.role_arn(role);
        }
        if let Some(it) = spec["input_transformer"].as_object() {
            let paths: HashMap<String, String> = it["paths"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
                .unwrap_or_default();
            let transformer = InputTransformer::builder()
                .set_input_paths_map(Some(paths))
                .input_template(it["template"].as_str().unwrap_or_default())
                .build()?;
            t = t.input_transformer(transformer);
        }
        Ok(t.build()?)
    }
}

/// Rules named with `prefix` in `regions`, tagged as owned by `profile`, that are not `known`.
pub async fn owned(
    aws: &Aws,
    profile: &str,
    prefix: &str,
    listings: &super::Listings,
    known: &HashSet<Address>,
) -> anyhow::Result<Vec<Box<dyn Resource>>> {
    let per_region = listings.event_rules.iter().map(|(region, shared)| async move {
        let listed = shared.get(aws, region).await?;
        let mut found: Vec<Box<dyn Resource>> = Vec::new();
        for (name, rule) in listed.iter().filter(|(name, _)| name.starts_with(prefix)) {
            let candidate = EventRule::orphan(aws, name, region, shared.clone());
            if known.contains(&candidate.address()) {
                continue;
            }
            if listings.tags[region].owned_by(aws, region, &rule.arn, profile).await? {
                found.push(Box::new(candidate));
            }
        }
        anyhow::Ok(found)
    });
    Ok(futures::future::try_join_all(per_region).await?.into_iter().flatten().collect())
}

impl EventRule {
    /// An EventBridge rule delivers only when ENABLED and with its target in place.
    fn delivery_check(&self, attrs: &Attrs) -> Option<Check> {
        // A rule the profile no longer declares is not expected to deliver anything.
        let wanted = self.spec.want.get("targets")?.as_object();
        let state = attrs.get("state").and_then(Value::as_str).unwrap_or("(none)");
        let have = attrs.get("targets").and_then(Value::as_object);
        let missing: Vec<&String> = wanted
            .into_iter()
            .flat_map(|w| w.keys())
            .filter(|id| !have.is_some_and(|h| h.get(*id) == wanted.and_then(|w| w.get(*id))))
            .collect();
        let ok = state == "ENABLED" && missing.is_empty();
        let detail = match (state, missing.as_slice()) {
            ("ENABLED", []) => format!("ENABLED, {} target(s) as declared", have.map_or(0, |h| h.len())),
            ("ENABLED", m) => format!("ENABLED, but target {m:?} is missing or differs: matches go nowhere"),
            (s, _) => format!("{s}: it matches nothing until enabled"),
        };
        Some(Check { name: "rule is enabled and delivers to its target".into(), ok, detail })
    }
}

#[async_trait]
impl Resource for EventRule {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    async fn read(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        let eb = aws.events(&self.region);
        let listed = self.region_rules.get(aws, &self.region).await?;
        let Some(rule) = listed.get(&self.name) else { return Ok(None) };
        let (targets, tags) = tokio::try_join!(
            async { eb.list_targets_by_rule().rule(&self.name).send().await.ctx(|| self.what("listing targets of")) },
            self.tags.tags(aws, &self.region, &self.arn, self.spec.want.get("tags")),
        )?;
        let pattern: Value = match &rule.pattern {
            Some(p) => serde_json::from_str(p).with_context(|| self.what("parsing the pattern of"))?,
            None => Value::Null,
        };
        let targets: serde_json::Map<String, Value> = targets
            .targets()
            .iter()
            .map(|t| {
                let it = t
                    .input_transformer()
                    .map(|it| json!({"paths": it.input_paths_map(), "template": it.input_template()}));
                (t.id().to_string(), json!({"arn": t.arn(), "role_arn": t.role_arn(), "input_transformer": it}))
            })
            .collect();
        let mut attrs = Attrs::new();
        attrs.insert("pattern".into(), policy::canonical_pattern(&pattern));
        attrs.insert("state".into(), json!(rule.state));
        attrs.insert("description".into(), json!(rule.description));
        attrs.insert("targets".into(), Value::Object(targets));
        attrs.insert("tags".into(), tags);
        let checks = self.delivery_check(&attrs).into_iter().collect();
        Ok(Some(Live { attrs, checks, ..Live::default() }))
    }

    async fn read_back(&self, aws: &Aws) -> anyhow::Result<Option<Live>> {
        self.region_rules.snapshot.forget().await;
        self.read(aws).await
    }
    async fn create(&self, aws: &Aws, want: &Attrs) -> anyhow::Result<()> {
        let all: BTreeSet<String> = want.keys().cloned().collect();
        self.update(aws, want, &all).await
    }

    async fn update(&self, aws: &Aws, want: &Attrs, changed: &BTreeSet<String>) -> anyhow::Result<()> {
        let eb = aws.events(&self.region);
        if ["pattern", "state", "description"].iter().any(|k| changed.contains(*k)) {
            // PutRule creates or replaces the rule's definition; targets are kept.
            eb.put_rule()
                .name(&self.name)
                .event_pattern(serde_json::to_string(&want["pattern"])?)
                .state(RuleState::Enabled)
                .description(text(want, "description"))
                .send()
                .await
                .ctx(|| self.what("writing"))?;
        }
        if changed.contains("targets") {
            let wanted = want["targets"].as_object().cloned().unwrap_or_default();
            let targets = wanted.iter().map(|(id, spec)| Self::target(id, spec)).collect::<anyhow::Result<Vec<_>>>()?;
            let put = eb
                .put_targets()
                .rule(&self.name)
                .set_targets(Some(targets))
                .send()
                .await
                .ctx(|| self.what("setting targets of"))?;
            if let Some(failed) = put.failed_entries().first() {
                anyhow::bail!(
                    "{}: {}: {}",
                    self.what("setting targets of"),
                    failed.error_code().unwrap_or("error"),
                    failed.error_message().unwrap_or("")
                );
            }
            let listed =
                eb.list_targets_by_rule().rule(&self.name).send().await.ctx(|| self.what("listing targets of"))?;
            let extra: Vec<String> =
                listed.targets().iter().map(|t| t.id().to_string()).filter(|id| !wanted.contains_key(id)).collect();
            if !extra.is_empty() {
                eb.remove_targets()
                    .rule(&self.name)
                    .set_ids(Some(extra))
                    .send()
                    .await
                    .ctx(|| self.what("removing targets from"))?;
            }
        }
        if changed.contains("tags") {
            let tags = tag_pairs(want)
                .into_iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()?;
            eb.tag_resource().resource_arn(&self.arn).set_tags(Some(tags)).send().await.ctx(|| self.what("tagging"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws) -> anyhow::Result<()> {
        let eb = aws.events(&self.region);
        let Some(listed) =
            eb.list_targets_by_rule().rule(&self.name).send().await.found(|| self.what("listing targets of"))?
        else {
            return Ok(());
        };
        let ids: Vec<String> = listed.targets().iter().map(|t| t.id().to_string()).collect();
        if !ids.is_empty() {
            eb.remove_targets()
                .rule(&self.name)
                .set_ids(Some(ids))
                .send()
                .await
                .ctx(|| self.what("removing targets from"))?;
        }
        eb.delete_rule().name(&self.name).send().await.found(|| self.what("deleting"))?;
        Ok(())
    }
}
