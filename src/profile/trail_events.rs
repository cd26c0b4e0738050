//! What the trail records beyond management events: `[[trail.data_events]]`, each one advanced
//! event selector, and `[trail.insights]`. Checked completely against what CloudTrail accepts
//! (CloudTrail API Reference, AdvancedFieldSelector, PutEventSelectors, PutInsightSelectors),
//! so a selector AWS would refuse is a profile problem before any call.

use super::types::{DataEventDoc, FieldDoc, InsightsDoc, ReadWrite};
use super::vars::Vars;
use super::{Resolver, validate};
use crate::detect::agents::{Agents, Kind};

/// A field selector operator, as AWS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operator {
    Equals,
    StartsWith,
    EndsWith,
    NotEquals,
    NotStartsWith,
    NotEndsWith,
}

impl Operator {
    pub const ALL: [Operator; 6] = [
        Operator::Equals,
        Operator::StartsWith,
        Operator::EndsWith,
        Operator::NotEquals,
        Operator::NotStartsWith,
        Operator::NotEndsWith,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "Equals",
            Operator::StartsWith => "StartsWith",
            Operator::EndsWith => "EndsWith",
            Operator::NotEquals => "NotEquals",
            Operator::NotStartsWith => "NotStartsWith",
            Operator::NotEndsWith => "NotEndsWith",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// One condition of a selector: the record field, the operator, the values (ORed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub field: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

/// A declared data-event selector. `eventCategory = Data` and `resources.type` are implied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSelector {
    /// As CloudTrail stores it, with ctguard's prefix (`OWNED_PREFIX`).
    pub name: String,
    pub resource_type: String,
    pub conditions: Vec<Condition>,
}

impl DataSelector {
    /// Whether no condition narrows it to some resources: every bucket, every function.
    pub fn every_resource(&self) -> bool {
        !self.conditions.iter().any(|c| c.field == "resources.ARN")
    }
}

/// The names of the selectors ctguard writes start with this; on a trail whose selectors are
/// shared, the others are someone else's (as statements are by their Sid prefix).
pub const OWNED_PREFIX: &str = "ctguard";

/// AWS's published prices (https://aws.amazon.com/cloudtrail/pricing/), shown on plans.
pub const DATA_EVENT_PRICE: &str = "$0.10 per 100,000 data events delivered";
pub const INSIGHTS_PRICE: &str = "$0.35 per 100,000 events analysed, per Insights type";

/// "You can use up to 500 total values for all conditions in all advanced event selectors on
/// the trail" (CloudTrail User Guide, "Logging data events").
pub const MAX_SELECTOR_VALUES: usize = 500;

/// Fields a data-event selector may test besides `eventCategory` and `resources.type`, which
/// ctguard sets (AdvancedFieldSelector, "For CloudTrail data events, supported fields").
const DATA_FIELDS: [&str; 7] = [
    "eventName",
    "eventSource",
    "eventType",
    "readOnly",
    "resources.ARN",
    "sessionCredentialFromConsole",
    "userIdentity.arn",
];

/// The `resources.type` values CloudTrail documents for data events (CloudTrail User Guide,
/// "Logging data events", the data events table; AWS adds types over time).
pub const RESOURCE_TYPES: &[&str] = &[
    "AWS::AIOps::Investigation",
    "AWS::AppConfig::Configuration",
    "AWS::AppSync::GraphQLApi",
    "AWS::B2BI::Transformer",
    "AWS::Backup::BackupVault",
    "AWS::Bedrock::AgentAlias",
    "AWS::Bedrock::AsyncInvoke",
    "AWS::Bedrock::FlowAlias",
    "AWS::Bedrock::Guardrail",
    "AWS::Bedrock::InlineAgent",
    "AWS::Bedrock::KnowledgeBase",
    "AWS::Bedrock::Model",
    "AWS::Bedrock::PromptVersion",
    "AWS::Bedrock::Session",
    "AWS::BedrockAgentCore::Browser",
    "AWS::BedrockAgentCore::CodeInterpreter",
    "AWS::BedrockAgentCore::Gateway",
    "AWS::BedrockAgentCore::Memory",
    "AWS::BedrockAgentCore::Runtime",
    "AWS::BedrockAgentCore::RuntimeEndpoint",
    "AWS::BedrockAgentCore::WorkloadIdentity",
    "AWS::Cassandra::Table",
    "AWS::CloudFront::KeyValueStore",
    "AWS::CloudTrail::Channel",
    "AWS::CloudWatch::Metric",
    "AWS::CodeConnections::Connection",
    "AWS::CodeWhisperer::Customization",
    "AWS::CodeWhisperer::Profile",
    "AWS::Cognito::IdentityPool",
    "AWS::DataExchange::Asset",
    "AWS::Deadline::Fleet",
    "AWS::Deadline::Job",
    "AWS::Deadline::Queue",
    "AWS::Deadline::Worker",
    "AWS::DynamoDB::Stream",
    "AWS::DynamoDB::Table",
    "AWS::EC2::Snapshot",
    "AWS::EMRWAL::Workspace",
    "AWS::FinSpace::Environment",
    "AWS::Glue::Table",
    "AWS::GreengrassV2::ComponentVersion",
    "AWS::GreengrassV2::Deployment",
    "AWS::GuardDuty::Detector",
    "AWS::IoT::Certificate",
    "AWS::IoT::Thing",
    "AWS::IoTSiteWise::Asset",
    "AWS::IoTSiteWise::TimeSeries",
    "AWS::IoTTwinMaker::Entity",
    "AWS::IoTTwinMaker::Workspace",
    "AWS::KendraRanking::ExecutionPlan",
    "AWS::Kinesis::Stream",
    "AWS::Kinesis::StreamConsumer",
    "AWS::KinesisVideo::Stream",
    "AWS::Lambda::Function",
    "AWS::MachineLearning::MlModel",
    "AWS::ManagedBlockchain::Network",
    "AWS::ManagedBlockchain::Node",
    "AWS::MedicalImaging::Datastore",
    "AWS::NeptuneGraph::Graph",
    "AWS::One::UKey",
    "AWS::One::User",
    "AWS::PaymentCryptography::Alias",
    "AWS::PaymentCryptography::Key",
    "AWS::PCAConnectorAD::Connector",
    "AWS::PCAConnectorSCEP::Connector",
    "AWS::QApps::QApp",
    "AWS::QBusiness::Application",
    "AWS::QBusiness::DataSource",
    "AWS::QBusiness::Index",
    "AWS::QBusiness::WebExperience",
    "AWS::RDS::DBCluster",
    "AWS::RUM::AppMonitor",
    "AWS::S3::AccessPoint",
    "AWS::S3::Object",
    "AWS::S3Express::Object",
    "AWS::S3ObjectLambda::AccessPoint",
    "AWS::S3Outposts::Object",
    "AWS::SageMaker::Endpoint",
    "AWS::SageMaker::ExperimentTrialComponent",
    "AWS::SageMaker::FeatureGroup",
    "AWS::SCN::Instance",
    "AWS::ServiceDiscovery::Namespace",
    "AWS::ServiceDiscovery::Service",
    "AWS::SNS::PlatformEndpoint",
    "AWS::SNS::Topic",
    "AWS::SQS::Queue",
    "AWS::SSM::ManagedNode",
    "AWS::SSMMessages::ControlChannel",
    "AWS::StepFunctions::StateMachine",
    "AWS::SWF::Domain",
    "AWS::ThinClient::Device",
    "AWS::ThinClient::Environment",
    "AWS::Timestream::Database",
    "AWS::Timestream::Table",
    "AWS::VerifiedPermissions::PolicyStore",
    "AWS::XRay::Trace",
];

/// The Insights types, as `[trail.insights]` keys and as PutInsightSelectors names them.
pub fn insight_types(doc: Option<&InsightsDoc>) -> Vec<String> {
    let Some(doc) = doc else { return Vec::new() };
    [(doc.api_call_rate, "ApiCallRateInsight"), (doc.api_error_rate, "ApiErrorRateInsight")]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name.to_string())
        .collect()
}

impl Resolver<'_> {
    /// The declared data-event selectors, every problem recorded under `trail.data_events[i]`.
    pub(super) fn data_events(
        &mut self,
        docs: &[DataEventDoc],
        agents: Option<&Agents>,
        vars: &Vars,
    ) -> Vec<DataSelector> {
        let mut out: Vec<DataSelector> = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let key = format!("trail.data_events[{i}]");
            let selector = self.data_selector(&key, doc, agents, vars);
            if out.iter().any(|s| s.name == selector.name) {
                self.problem(
                    &format!("{key}.name"),
                    format!("{:?} names another entry too: names must differ", doc.name),
                );
            }
            out.push(selector);
        }
        out
    }

    fn data_selector(&mut self, key: &str, doc: &DataEventDoc, agents: Option<&Agents>, vars: &Vars) -> DataSelector {
        let name = self.text(&format!("{key}.name"), &doc.name, vars);
        // AdvancedEventSelector Name: at most 1000 characters.
        let full = format!("{OWNED_PREFIX}: {}", name.trim());
        if name.trim().is_empty() || full.len() > 1000 {
            self.problem(&format!("{key}.name"), "expected a name of 1 to 990 characters");
        }
        let resource_type = doc.resource_type.clone();
        if !RESOURCE_TYPES.contains(&resource_type.as_str()) {
            self.problem(
                &format!("{key}.resource_type"),
                format!(
                    "{resource_type:?} is not a resources.type CloudTrail records data events for: expected one \
                     such as AWS::S3::Object, AWS::Lambda::Function, AWS::DynamoDB::Table (CloudTrail User Guide, \
                     \"Logging data events\")"
                ),
            );
        }
        let mut conditions: Vec<Condition> = Vec::new();
        let mut add = |field: &str, operator: Operator, values: Vec<String>| match conditions
            .iter_mut()
            .find(|c| c.field == field && c.operator == operator)
        {
            Some(c) => c.values.extend(values),
            None => conditions.push(Condition { field: field.into(), operator, values }),
        };
        for (list, operator, k) in
            [(&doc.arn_prefixes, Operator::StartsWith, "arn_prefixes"), (&doc.arns, Operator::Equals, "arns")]
        {
            let mut values = Vec::new();
            for (j, raw) in list.iter().enumerate() {
                let at = format!("{key}.{k}[{j}]");
                let arn = self.text(&at, raw, vars);
                if let Err(expected) = resource_arn(&resource_type, &arn, operator) {
                    self.problem(&at, format!("{arn:?} is not valid: expected {expected}"));
                }
                values.push(arn);
            }
            if !values.is_empty() {
                add("resources.ARN", operator, values);
            }
        }
        if let Some(read) = doc.read_only {
            add("readOnly", Operator::Equals, vec![read.to_string()]);
        }
        if !doc.event_names.is_empty() {
            let names: Vec<String> = doc
                .event_names
                .iter()
                .enumerate()
                .map(|(j, n)| self.text(&format!("{key}.event_names[{j}]"), n, vars))
                .collect();
            add("eventName", Operator::Equals, names);
        }
        if doc.agents {
            for s in agents.map(|a| a.signals.as_slice()).unwrap_or_default().iter().filter(|s| selects_by_arn(s)) {
                if s.pattern.starts_with('*') {
                    self.problem(
                        &format!("{key}.agents"),
                        format!(
                            "[agents] {} pattern {:?} starts with a wildcard: CloudTrail selects data events by \
                             userIdentity.arn prefix, so it would record every {}'s data events; start the \
                             pattern with the name's literal beginning, or select callers with `fields`",
                            s.kind.key(),
                            s.pattern,
                            if s.kind == Kind::Users { "IAM user" } else { "role session" },
                        ),
                    );
                }
            }
            match agents.map(agent_arn_prefixes) {
                Some(prefixes) if !prefixes.is_empty() => add("userIdentity.arn", Operator::StartsWith, prefixes),
                _ => self.problem(
                    &format!("{key}.agents"),
                    "expected [agents] to declare roles, users or sso_permission_sets: CloudTrail selects data \
                     events by userIdentity.arn, which the other signals do not determine",
                ),
            }
        }
        for (j, f) in doc.fields.iter().enumerate() {
            let at = format!("{key}.fields[{j}]");
            if let Some((field, operator, values)) = self.raw_field(&at, f, vars) {
                add(&field, operator, values);
            }
        }
        if doc.read_only.is_some() && doc.fields.iter().any(|f| f.field == "readOnly") {
            self.problem(&format!("{key}.read_only"), "readOnly is set twice: by read_only and in fields");
        }
        for c in &conditions {
            for v in &c.values {
                if v.is_empty() || v.len() > 2048 {
                    self.problem(
                        key,
                        format!("{} {}: expected values of 1 to 2048 characters", c.field, c.operator.as_str()),
                    );
                }
            }
        }
        DataSelector { name: full, resource_type, conditions }
    }

    /// One `fields` entry: a field CloudTrail accepts for data events, an operator it has, values.
    fn raw_field(&mut self, at: &str, f: &FieldDoc, vars: &Vars) -> Option<(String, Operator, Vec<String>)> {
        let operator = Operator::parse(&f.operator);
        if operator.is_none() {
            let all: Vec<&str> = Operator::ALL.iter().map(|o| o.as_str()).collect();
            self.problem(
                &format!("{at}.operator"),
                format!("{:?} is not an operator: expected one of {}", f.operator, all.join(", ")),
            );
        }
        let field_ok = DATA_FIELDS.contains(&f.field.as_str());
        if matches!(f.field.as_str(), "eventCategory" | "resources.type") {
            self.problem(
                &format!("{at}.field"),
                format!("{} is set by the entry itself (resource_type): leave it out", f.field),
            );
        } else if !field_ok {
            self.problem(
                &format!("{at}.field"),
                format!(
                    "{:?} is not a field CloudTrail selects data events on: expected one of {}",
                    f.field,
                    DATA_FIELDS.join(", ")
                ),
            );
        }
        if f.values.is_empty() {
            self.problem(&format!("{at}.values"), "expected at least one value");
        }
        let values: Vec<String> =
            f.values.iter().enumerate().map(|(j, v)| self.text(&format!("{at}.values[{j}]"), v, vars)).collect();
        let operator = operator?;
        if matches!(f.field.as_str(), "readOnly" | "sessionCredentialFromConsole") {
            if operator != Operator::Equals && f.field == "readOnly" {
                self.problem(&format!("{at}.operator"), "readOnly takes Equals only");
            }
            if values.len() != 1 || !matches!(values[0].as_str(), "true" | "false") {
                self.problem(
                    &format!("{at}.values"),
                    format!("{} takes one value: expected \"true\" or \"false\"", f.field),
                );
            }
        }
        field_ok.then(|| (f.field.clone(), operator, values))
    }

    /// Insights analyses management events: the API call rate type write events, the error
    /// rate type both (CloudTrail User Guide, "Working with CloudTrail Insights").
    pub(super) fn insights(&mut self, types: &[String], management: ReadWrite) {
        if management == ReadWrite::ReadOnly && types.iter().any(|t| t == "ApiCallRateInsight") {
            self.problem(
                "trail.insights.api_call_rate",
                "expected the trail to record write management events (management_events = \"All\" or \
                 \"WriteOnly\"): API call rate Insights analyses write events only",
            );
        }
    }

    /// CloudTrail's limit on the values of every condition of every selector on the trail.
    pub(super) fn selector_values(&mut self, count: usize) {
        if count > MAX_SELECTOR_VALUES {
            self.problem(
                "trail.data_events",
                format!(
                    "the trail's selectors hold {count} condition values: expected at most {MAX_SELECTOR_VALUES} \
                     (CloudTrail's limit per trail)"
                ),
            );
        }
    }
}

/// What `resources.ARN` may hold for `resource_type` (CloudTrail User Guide, "Filtering data
/// events by using advanced event selectors").
fn resource_arn(resource_type: &str, arn: &str, operator: Operator) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() < 6 || parts[0] != "arn" || parts[1].is_empty() || parts[2].is_empty() {
        return Err("an ARN, arn:<partition>:<service>:<region>:<account>:<resource>".into());
    }
    if resource_type != "AWS::S3::Object" {
        return Ok(());
    }
    let expected = || {
        let form = if operator == Operator::StartsWith { "[<key prefix>]" } else { "<key>" };
        format!("an S3 object ARN arn:<partition>:s3:::<bucket>/{form}")
    };
    if parts[2] != "s3" || !parts[3].is_empty() || !parts[4].is_empty() {
        return Err(expected());
    }
    let Some((bucket, _)) = parts[5].split_once('/') else { return Err(expected()) };
    validate::bucket_name(bucket).map_err(|e| format!("{} (the bucket: {e})", expected()))
}

/// Whether a signal names callers by ARN, so a data-event selector can select them.
fn selects_by_arn(s: &crate::detect::agents::Signal) -> bool {
    matches!(s.kind, Kind::Roles | Kind::Users | Kind::SsoPermissionSets)
}

/// The `userIdentity.arn` prefixes of the agents' roles, permission sets and users: the text
/// before the first `*` of each pattern. A prefix may select a few more callers than the
/// pattern, never fewer; the detections themselves still match exactly.
pub fn agent_arn_prefixes(agents: &Agents) -> Vec<String> {
    let p = &agents.partition;
    let mut out = Vec::new();
    for account in &agents.accounts {
        for s in &agents.signals {
            let (literal, whole) = match s.pattern.split_once('*') {
                Some((before, _)) => (before.to_string(), false),
                None => (s.pattern.clone(), true),
            };
            let prefix = match s.kind {
                Kind::Roles => format!("arn:{p}:sts::{account}:assumed-role/{literal}{}", if whole { "/" } else { "" }),
                Kind::SsoPermissionSets => {
                    format!(
                        "arn:{p}:sts::{account}:assumed-role/AWSReservedSSO_{literal}{}",
                        if whole { "_" } else { "" }
                    )
                }
                Kind::Users => format!("arn:{p}:iam::{account}:user/{literal}"),
                _ => continue,
            };
            if !out.contains(&prefix) {
                out.push(prefix);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::agents::Signal;

    #[test]
    fn s3_object_arns_name_a_bucket_and_a_slash() {
        assert!(resource_arn("AWS::S3::Object", "arn:aws:s3:::my-bucket/", Operator::StartsWith).is_ok());
        assert!(resource_arn("AWS::S3::Object", "arn:aws:s3:::my-bucket/logs/", Operator::StartsWith).is_ok());
        for bad in ["arn:aws:s3:::my-bucket", "arn:aws:s3:::My_Bucket/", "arn:aws:s3:us-east-1::b/", "s3://my-bucket/"]
        {
            assert!(resource_arn("AWS::S3::Object", bad, Operator::StartsWith).is_err(), "{bad}");
        }
        assert!(
            resource_arn("AWS::Lambda::Function", "arn:aws:lambda:us-east-1:123456789012:function:f", Operator::Equals)
                .is_ok()
        );
        assert!(resource_arn("AWS::Lambda::Function", "my-function", Operator::Equals).is_err());
    }

    #[test]
    fn agent_prefixes_come_from_roles_permission_sets_and_users() {
        let signal = |kind, pattern: &str| Signal { kind, pattern: pattern.into() };
        let agents = Agents {
            signals: vec![
                signal(Kind::Roles, "AIAgent*"),
                signal(Kind::Roles, "claude-runner"),
                signal(Kind::SessionNames, "agent-*"),
                signal(Kind::Users, "ai-agent-*"),
                signal(Kind::SsoPermissionSets, "AIAgent*"),
            ],
            accounts: vec!["123456789012".into()],
            partition: "aws".into(),
        };
        assert_eq!(
            agent_arn_prefixes(&agents),
            [
                "arn:aws:sts::123456789012:assumed-role/AIAgent",
                "arn:aws:sts::123456789012:assumed-role/claude-runner/",
                "arn:aws:iam::123456789012:user/ai-agent-",
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_AIAgent",
            ]
        );
    }
}
