//! `[[severity_classes]]`: the severity `ctguard investigate` gives an event no detection fired
//! on, by the class of call it is. Optional: a profile that declares none gets
//! [`default_classes`]; one that declares any gets exactly those, in its order.

use serde::Deserialize;

use super::Resolver;
use super::types::Severity;

/// One class as written in the profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityClassDoc {
    pub name: String,
    pub severity: Severity,
    /// `NAME` or `SOURCE:NAME` (`iam.amazonaws.com:Create*`), `*` wildcards in either part.
    pub events: Vec<String>,
    /// Only calls whose `readOnly` flag is this.
    pub read_only: Option<bool>,
    /// Only calls by these `userIdentity.type`s (`Root`, `IAMUser`, `AssumedRole`, ...).
    #[serde(default)]
    pub principal_types: Vec<String>,
}

/// A resolved class: an event belongs to it when its event (and source) match one of
/// `events` and the optional conditions hold. The first class an event belongs to decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeverityClass {
    pub name: String,
    pub severity: Severity,
    pub events: Vec<EventRef>,
    pub read_only: Option<bool>,
    pub principal_types: Vec<String>,
}

/// An event name pattern, optionally tied to an event source pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    pub source: Option<String>,
    pub name: String,
}

/// `userIdentity.type` values CloudTrail writes (CloudTrail userIdentity element reference).
const PRINCIPAL_TYPES: [&str; 12] = [
    "Root",
    "IAMUser",
    "AssumedRole",
    "Role",
    "FederatedUser",
    "Directory",
    "AWSAccount",
    "AWSService",
    "IdentityCenterUser",
    "SAMLUser",
    "WebIdentityUser",
    "Unknown",
];

impl EventRef {
    fn parse(text: &str) -> Result<EventRef, String> {
        let (source, name) = match text.split_once(':') {
            Some((source, name)) => (Some(source), name),
            None => (None, text),
        };
        let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '*');
        let source_ok = source.is_none_or(|s| {
            !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-*".contains(c))
        });
        if !name_ok || !source_ok {
            return Err(format!(
                "{text:?}: expected an event name or SOURCE:NAME, like \"StopLogging\" or \"iam.amazonaws.com:Create*\" (`*` wildcards)"
            ));
        }
        Ok(EventRef { source: source.map(str::to_string), name: name.to_string() })
    }
}

impl Resolver<'_> {
    pub(super) fn severity_classes(&mut self, docs: &[SeverityClassDoc]) -> Vec<SeverityClass> {
        if docs.is_empty() {
            return default_classes();
        }
        let classes: Vec<SeverityClass> = docs
            .iter()
            .enumerate()
            .map(|(i, doc)| {
                let key = format!("severity_classes[{i}]");
                if doc.name.trim().is_empty() {
                    self.problem(&format!("{key}.name"), "expected a name for the class, which investigate prints");
                }
                if doc.events.is_empty() {
                    self.problem(&format!("{key}.events"), "expected at least one event name pattern (\"*\" for any)");
                }
                let events = doc
                    .events
                    .iter()
                    .filter_map(|e| EventRef::parse(e).map_err(|m| self.problem(&format!("{key}.events"), m)).ok())
                    .collect();
                for t in &doc.principal_types {
                    if !PRINCIPAL_TYPES.contains(&t.as_str()) {
                        self.problem(
                            &format!("{key}.principal_types"),
                            format!("{t:?}: expected one of {}", PRINCIPAL_TYPES.join(", ")),
                        );
                    }
                }
                SeverityClass {
                    name: doc.name.trim().to_string(),
                    severity: doc.severity,
                    events,
                    read_only: doc.read_only,
                    principal_types: doc.principal_types.clone(),
                }
            })
            .collect();
        self.unique("severity_classes", classes.iter().map(|c| c.name.clone()));
        classes
    }
}

/// The classes a profile gets when it declares none, in the order they are tried: monitoring
/// tampering, key destruction, root use and organization changes are high; IAM, network,
/// public-S3 and AWS Config changes medium; read-only calls (reconnaissance) low. An event in
/// no class is low.
pub fn default_classes() -> Vec<SeverityClass> {
    use Severity::{High, Low, Medium};
    let table: [(&str, Severity, Option<bool>, &[&str], &[&str]); 9] = [
        (
            "monitoring tampering",
            High,
            None,
            &[],
            &[
                "cloudtrail.amazonaws.com:StopLogging",
                "cloudtrail.amazonaws.com:DeleteTrail",
                "cloudtrail.amazonaws.com:UpdateTrail",
                "cloudtrail.amazonaws.com:PutEventSelectors",
                "cloudtrail.amazonaws.com:DeleteEventDataStore",
                "cloudtrail.amazonaws.com:StopEventDataStoreIngestion",
                "ec2.amazonaws.com:DeleteFlowLogs",
                "guardduty.amazonaws.com:DeleteDetector",
                "guardduty.amazonaws.com:UpdateDetector",
                "guardduty.amazonaws.com:Disassociate*",
                "guardduty.amazonaws.com:StopMonitoringMembers",
                "securityhub.amazonaws.com:DisableSecurityHub",
                "securityhub.amazonaws.com:BatchDisableStandards",
                "config.amazonaws.com:StopConfigurationRecorder",
                "config.amazonaws.com:DeleteConfigurationRecorder",
                "config.amazonaws.com:DeleteDeliveryChannel",
                "events.amazonaws.com:DeleteRule",
                "events.amazonaws.com:DisableRule",
                "events.amazonaws.com:RemoveTargets",
                "monitoring.amazonaws.com:DeleteAlarms",
                "monitoring.amazonaws.com:DisableAlarmActions",
                "logs.amazonaws.com:DeleteMetricFilter",
                "logs.amazonaws.com:DeleteLogGroup",
                "logs.amazonaws.com:DeleteLogStream",
                "logs.amazonaws.com:DeleteSubscriptionFilter",
                "sns.amazonaws.com:DeleteTopic",
                "sns.amazonaws.com:Unsubscribe",
                "macie2.amazonaws.com:DisableMacie",
                "access-analyzer.amazonaws.com:DeleteAnalyzer",
                "route53resolver.amazonaws.com:DeleteResolverQueryLogConfig",
                "route53resolver.amazonaws.com:DisassociateResolverQueryLogConfig",
            ],
        ),
        (
            "key destruction",
            High,
            None,
            &[],
            &[
                "kms.amazonaws.com:ScheduleKeyDeletion",
                "kms.amazonaws.com:DisableKey",
                "kms.amazonaws.com:DeleteImportedKeyMaterial",
            ],
        ),
        ("root use", High, None, &["Root"], &["*"]),
        ("organization changes", High, Some(false), &[], &["organizations.amazonaws.com:*", "account.amazonaws.com:*"]),
        (
            "IAM changes",
            Medium,
            Some(false),
            &[],
            &[
                "iam.amazonaws.com:*",
                "sts.amazonaws.com:SetSourceIdentity",
                "kms.amazonaws.com:PutKeyPolicy",
                "kms.amazonaws.com:CreateGrant",
                "sso.amazonaws.com:*",
            ],
        ),
        (
            "network changes",
            Medium,
            Some(false),
            &[],
            &[
                "ec2.amazonaws.com:*SecurityGroup*",
                "ec2.amazonaws.com:*NetworkAcl*",
                "ec2.amazonaws.com:*Route*",
                "ec2.amazonaws.com:*Vpc*",
                "ec2.amazonaws.com:*Subnet*",
                "ec2.amazonaws.com:*Gateway*",
                "ec2.amazonaws.com:*VpnConnection*",
                "ec2.amazonaws.com:ModifyInstanceAttribute",
            ],
        ),
        (
            "public S3 changes",
            Medium,
            Some(false),
            &[],
            &[
                "s3.amazonaws.com:PutBucketPolicy",
                "s3.amazonaws.com:DeleteBucketPolicy",
                "s3.amazonaws.com:PutBucketAcl",
                "s3.amazonaws.com:PutObjectAcl",
                "s3.amazonaws.com:PutBucketPublicAccessBlock",
                "s3.amazonaws.com:DeleteBucketPublicAccessBlock",
                "s3.amazonaws.com:PutAccountPublicAccessBlock",
                "s3.amazonaws.com:DeleteAccountPublicAccessBlock",
                "s3.amazonaws.com:PutBucketOwnershipControls",
                "s3.amazonaws.com:DeleteBucketOwnershipControls",
                "s3.amazonaws.com:PutBucketWebsite",
                "s3.amazonaws.com:PutBucketCors",
            ],
        ),
        ("AWS Config changes", Medium, Some(false), &[], &["config.amazonaws.com:*"]),
        ("read-only reconnaissance", Low, Some(true), &[], &["*"]),
    ];
    table
        .into_iter()
        .map(|(name, severity, read_only, types, events)| SeverityClass {
            name: name.into(),
            severity,
            events: events.iter().map(|e| EventRef::parse(e).expect("built-in classes are well formed")).collect(),
            read_only,
            principal_types: types.iter().map(|t| t.to_string()).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_well_formed_and_named_once() {
        let classes = default_classes();
        let mut names: Vec<&str> = classes.iter().map(|c| c.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), classes.len());
    }

    #[test]
    fn event_refs() {
        assert_eq!(
            EventRef::parse("iam.amazonaws.com:Create*").unwrap(),
            EventRef { source: Some("iam.amazonaws.com".into()), name: "Create*".into() }
        );
        for bad in ["", ":X", "iam.amazonaws.com:", "Stop Logging", "IAM.amazonaws.com:X", "a:b:c"] {
            assert!(EventRef::parse(bad).is_err(), "{bad:?}");
        }
    }
}
