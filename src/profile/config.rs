//! The AWS Config part of a profile: recorder, delivery channel and managed rules.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::types::{ConfigDoc, ConfigRuleDoc, SnapshotFrequency};
use super::vars::Vars;
use super::{Resolver, Runtime, managed_rules, validate};

/// The canonical name of Config's service-linked role.
pub const SERVICE_LINKED_ROLE: &str = "aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig";

#[derive(Debug, Clone)]
pub struct ConfigSetup {
    pub recorder: String,
    pub role_arn: String,
    /// ctguard creates AWSServiceRoleForConfig when it is missing.
    pub service_linked: bool,
    pub s3_prefix: String,
    pub snapshot_frequency: SnapshotFrequency,
    pub adopt_existing_recorder: bool,
    pub fail_on_noncompliance: bool,
    pub rules: Vec<ConfigRule>,
}

#[derive(Debug, Clone)]
pub struct ConfigRule {
    pub name: String,
    pub identifier: String,
    /// Config takes every input parameter as a string.
    pub parameters: BTreeMap<String, String>,
    pub resource_types: Vec<String>,
    pub periodic: bool,
    /// The regions this rule is deployed in.
    pub regions: Vec<String>,
}

impl Resolver<'_> {
    /// Returns the setup and the statements to add to the audit bucket's policy.
    pub(super) fn config(
        &mut self,
        doc: &ConfigDoc,
        runtime: &Runtime,
        regions: &[String],
        vars: &mut Vars,
    ) -> (ConfigSetup, Vec<Value>) {
        let (account, partition) = (&runtime.account_id, &runtime.partition);
        self.check("config.recorder", &doc.recorder, validate::config_name);
        let s3_prefix = self.text("config.s3_prefix", &doc.s3_prefix, vars);
        self.check("config.s3_prefix", &s3_prefix, validate::trail_prefix);
        let role = self.text("config.role", &doc.role, vars);
        let service_linked = role == "service-linked";
        let role_arn = if service_linked {
            format!("arn:{partition}:iam::{account}:role/{SERVICE_LINKED_ROLE}")
        } else {
            if !role.starts_with("arn:") || !role.contains(":role/") {
                self.problem("config.role", format!("expected \"service-linked\" or an IAM role ARN, got {role:?}"));
            }
            role
        };
        let log_path = if s3_prefix.is_empty() {
            format!("AWSLogs/{account}/Config")
        } else {
            format!("{s3_prefix}/AWSLogs/{account}/Config")
        };
        vars.insert("config_prefix".into(), json!(s3_prefix));
        vars.insert("config_log_path".into(), json!(log_path));
        let policy = self.shared_document("config.bucket_policy", &doc.bucket_policy, vars);
        let statements = match &policy["Statement"] {
            Value::Array(list) => list.clone(),
            Value::Null => Vec::new(),
            other => vec![other.clone()],
        };
        let rules: Vec<ConfigRule> = doc
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| self.config_rule(&format!("config.rules[{i}]"), r, regions, vars))
            .collect();
        self.unique("config.rules", rules.iter().map(|r| r.name.clone()));
        let setup = ConfigSetup {
            recorder: doc.recorder.clone(),
            role_arn,
            service_linked,
            s3_prefix,
            snapshot_frequency: doc.snapshot_frequency,
            adopt_existing_recorder: doc.adopt_existing_recorder,
            fail_on_noncompliance: doc.fail_on_noncompliance,
            rules,
        };
        (setup, statements)
    }

    fn config_rule(&mut self, key: &str, r: &ConfigRuleDoc, regions: &[String], vars: &Vars) -> ConfigRule {
        let name = self.text(&format!("{key}.name"), &r.name, vars);
        self.check(&format!("{key}.name"), &name, validate::config_name);
        let mut parameters = BTreeMap::new();
        for (k, v) in &r.parameters {
            let text = match v {
                toml::Value::String(s) => self.text(&format!("{key}.parameters.{k}"), s, vars),
                other => other.to_string(),
            };
            parameters.insert(k.clone(), text);
        }
        let managed = managed_rules::lookup(&r.identifier);
        match managed {
            None => {
                let hint = match managed_rules::nearest(&r.identifier) {
                    Some(id) => format!("; did you mean {id}?"),
                    None => String::new(),
                };
                self.problem(
                    &format!("{key}.identifier"),
                    format!("{:?} is not an AWS Config managed rule{hint}", r.identifier),
                );
            }
            Some(m) => {
                for k in parameters.keys() {
                    if !m.parameters.iter().any(|(p, _)| p == k) {
                        let known: Vec<&str> = m.parameters.iter().map(|(p, _)| *p).collect();
                        let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                        self.problem(
                            &format!("{key}.parameters.{k}"),
                            format!("{} takes no parameter {k:?} (it takes: {known})", m.identifier),
                        );
                    }
                }
                for (p, optional) in &m.parameters {
                    if !optional && !parameters.contains_key(*p) {
                        self.problem(
                            &format!("{key}.parameters"),
                            format!("{} requires the parameter {p:?}", m.identifier),
                        );
                    }
                }
            }
        }
        let home_only = r.home_region_only.unwrap_or_else(|| managed.is_some_and(|m| m.is_global()));
        let regions = if home_only { regions[..1].to_vec() } else { regions.to_vec() };
        ConfigRule {
            name,
            identifier: r.identifier.clone(),
            parameters,
            resource_types: r.resource_types.clone(),
            periodic: managed.is_some_and(|m| m.periodic),
            regions,
        }
    }
}
