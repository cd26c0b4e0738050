//! Who made a call: `--principal` patterns and the profile's AI agents (`[agents]`), matched
//! against a CloudTrail record's `userIdentity`.

use serde_json::Value;

use crate::detect::agents::{Attribution, Restriction, Signal};
use crate::profile::Profile;
use crate::wildcard::star;

/// A `--principal` pattern: an ARN pattern (`arn:…`, matched against `userIdentity.arn`), or a
/// name pattern matched against the IAM user name, the role name and the role session name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalPattern {
    pub text: String,
    arn: bool,
}

impl PrincipalPattern {
    /// Checks the pattern's shape; the error says what was expected.
    pub fn parse(text: &str) -> Result<PrincipalPattern, String> {
        if text.is_empty() {
            return Err(
                "expected an ARN, a role, user or session name, with `*` wildcards; got an empty pattern".into()
            );
        }
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{text:?}: expected no whitespace or control characters, found {c:?}"));
        }
        if text.starts_with("arn:") {
            let parts: Vec<&str> = text.splitn(6, ':').collect();
            if parts.len() < 6 || parts[1].is_empty() || parts[2].is_empty() || parts[5].is_empty() {
                return Err(format!(
                    "{text:?}: expected an ARN pattern arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE, \
                     like arn:aws:sts::123456789012:assumed-role/AIAgent*"
                ));
            }
            return Ok(PrincipalPattern { text: text.to_string(), arn: true });
        }
        // IAM user and role names and role session names: letters, digits and +=,.@_-
        if let Some(c) = text.chars().find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-*".contains(*c))) {
            return Err(format!(
                "{text:?}: a name pattern may hold letters, digits, `+=,.@_-` and `*` (IAM user, role and \
                 session names), found {c:?}; write an ARN pattern (arn:…) to match whole ARNs"
            ));
        }
        Ok(PrincipalPattern { text: text.to_string(), arn: false })
    }

    pub fn matches(&self, who: &Identity<'_>) -> bool {
        if self.arn {
            who.arn.is_some_and(|arn| star(&self.text, arn))
        } else {
            who.names().any(|n| star(&self.text, n))
        }
    }
}

/// The parts of `userIdentity` principals are matched on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Identity<'a> {
    pub kind: &'a str,
    pub arn: Option<&'a str>,
    pub user_name: Option<&'a str>,
    pub role_name: Option<&'a str>,
    pub session_name: Option<&'a str>,
    pub invoked_by: Option<&'a str>,
    pub principal_id: Option<&'a str>,
}

impl<'a> Identity<'a> {
    pub fn of(record: &'a Value) -> Identity<'a> {
        let id = record.get("userIdentity");
        let text = |v: Option<&'a Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty());
        let arn = text(id.and_then(|i| i.get("arn")));
        // arn:aws:sts::123456789012:assumed-role/ROLE/SESSION, federated-user/NAME
        let resource = arn.and_then(|a| a.splitn(6, ':').nth(5));
        let mut parts = resource.map(|r| r.split('/')).into_iter().flatten();
        let (role_name, session_name) = match parts.next() {
            Some("assumed-role") => (parts.next(), parts.next()),
            Some("federated-user") => (None, parts.next()),
            _ => (None, None),
        };
        let issuer = id.and_then(|i| i.get("sessionContext")).and_then(|s| s.get("sessionIssuer"));
        Identity {
            kind: text(id.and_then(|i| i.get("type"))).unwrap_or(""),
            arn,
            user_name: text(id.and_then(|i| i.get("userName"))),
            role_name: role_name.or(text(issuer.and_then(|i| i.get("userName")))),
            session_name,
            invoked_by: text(id.and_then(|i| i.get("invokedBy"))),
            principal_id: text(id.and_then(|i| i.get("principalId"))),
        }
    }

    fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        [self.user_name, self.role_name, self.session_name].into_iter().flatten()
    }

    /// What to show for the caller: the ARN, else the user name (a failed console sign-in
    /// carries no ARN), the calling service, or the principal id.
    pub fn display(&self) -> String {
        self.arn.or(self.user_name).or(self.invoked_by).or(self.principal_id).unwrap_or("-").to_string()
    }
}

/// Who to look for: anyone matching one of the patterns, or an AI agent of the profile (with
/// neither: everyone).
#[derive(Debug, Clone, Default)]
pub struct Principals {
    pub patterns: Vec<PrincipalPattern>,
    pub agents: Option<Agents>,
}

impl Principals {
    pub fn matches(&self, record: &Value) -> bool {
        if self.patterns.is_empty() && self.agents.is_none() {
            return true;
        }
        let who = Identity::of(record);
        self.patterns.iter().any(|p| p.matches(&who)) || self.agents.as_ref().is_some_and(|a| a.matches(record))
    }

    /// What is looked for, for the output's header.
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self.patterns.iter().map(|p| p.text.clone()).collect();
        out.extend(self.agents.iter().flat_map(Agents::describe));
        out
    }
}

/// The profile's AI agents: every signal its `[agents]` section declares, matched by the same
/// clauses the deployed agent rules and metric filters are built from
/// (`crate::detect::agents::Restriction`), so `--agents` sees a call as an agent's exactly when
/// an agent detection would.
#[derive(Debug, Clone)]
pub struct Agents {
    signals: Vec<Signal>,
    matcher: Attribution,
}

impl Agents {
    pub fn of(profile: &Profile) -> anyhow::Result<Agents> {
        let restriction = Restriction::new(profile.agents.as_ref(), &[]);
        if restriction.is_empty() {
            anyhow::bail!(
                "--agents: profile {} declares no AI agents (an [agents] section with roles, session_names, \
                 source_identities, users, sso_permission_sets or user_agents): declare them, or name the \
                 principals with --principal",
                profile.name
            );
        }
        Ok(Agents { signals: restriction.signals.clone(), matcher: restriction.compile() })
    }

    pub fn matches(&self, record: &Value) -> bool {
        self.matcher.matches_record(record)
    }

    pub fn describe(&self) -> Vec<String> {
        self.signals.iter().map(|s| format!("agent: {} {}", s.kind.key(), s.pattern)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Runtime;
    use serde_json::json;

    fn record(identity: Value) -> Value {
        json!({"eventName": "DeleteBucket", "userIdentity": identity})
    }

    #[test]
    fn patterns_match_arns_and_names() {
        let assumed = record(json!({"type": "AssumedRole",
            "arn": "arn:aws:sts::123456789012:assumed-role/AIAgent-ops/agent-run-7",
            "sessionContext": {"sessionIssuer": {"userName": "AIAgent-ops"}}}));
        let user =
            record(json!({"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice", "userName": "alice"}));
        let failed_login = record(json!({"type": "IAMUser", "userName": "bob", "accountId": "123456789012"}));
        let cases = [
            ("arn:aws:sts::*:assumed-role/AIAgent*", [true, false, false]),
            ("AIAgent*", [true, false, false]),
            ("agent-run-*", [true, false, false]),
            ("alice", [false, true, false]),
            ("bob", [false, false, true]),
            ("arn:aws:iam::123456789012:user/*", [false, true, false]),
        ];
        for (pattern, expected) in cases {
            let p = Principals { patterns: vec![PrincipalPattern::parse(pattern).unwrap()], agents: None };
            let got = [p.matches(&assumed), p.matches(&user), p.matches(&failed_login)];
            assert_eq!(got, expected, "{pattern}");
        }
        assert_eq!(Identity::of(&failed_login).display(), "bob");
        assert!(Principals::default().matches(&user));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["", "arn:aws", "arn::sts::1:x", "arn:aws:sts::123:", "role name", "role/with/slash", "a\tb"] {
            assert!(PrincipalPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// Every sample record the detections suite keeps, from every file.
    fn sample_records() -> Vec<Value> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/detections/samples");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let sample: Value = serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
            for key in ["fires", "silent"] {
                out.extend(sample[key].as_array().into_iter().flatten().cloned());
            }
        }
        out
    }

    #[test]
    fn agents_are_the_callers_the_deployed_agent_rules_fire_for() {
        let runtime =
            crate::profile::Runtime { account_id: "123456789012".into(), ..Runtime::placeholder("us-east-1") };
        let profile = crate::profile::load("ai-agent-guard").unwrap().resolve(&runtime, &Default::default()).unwrap();
        let catalog = profile.catalog().unwrap();
        let agents = Agents::of(&profile).unwrap();
        let index = |id: &str| catalog.detections.iter().position(|d| d.id == id).unwrap();
        // Each agent rule shares its template with a rule on everyone: where that one fires, the
        // agent rule fires exactly for the calls `--agents` calls an agent's.
        let pairs: Vec<(usize, usize)> = catalog
            .detections
            .iter()
            .filter(|d| d.id.starts_with("ctguard-agent-") && d.id != "ctguard-agent-object-deletion")
            .map(|d| (index(&d.id.replacen("ctguard-agent-", "ctguard-", 1)), index(&d.id)))
            .collect();
        assert_eq!(pairs.len(), 6);
        let (mut compared, mut kinds) = (0, std::collections::BTreeSet::new());
        for record in sample_records() {
            let (fired, record) = catalog.evaluate(record);
            for &(everyone, agent) in &pairs {
                if !fired.contains(&everyone) {
                    continue;
                }
                compared += 1;
                assert_eq!(agents.matches(&record), fired.contains(&agent), "{}", record["userIdentity"]);
            }
            if agents.matches(&record) {
                kinds.extend(catalog.signals(&record, &fired).into_iter().map(|m| m.signal));
            }
        }
        assert!(compared > 100, "{compared}");
        // Every kind of signal recognised somewhere in the samples.
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), crate::detect::agents::Kind::DECLARED);
        assert!(agents.describe().contains(&"agent: roles AIAgent*".to_string()), "{:?}", agents.describe());
    }

    #[test]
    fn a_profile_without_agents_is_refused_by_name() {
        let mut profile = crate::profile::load("cis-aws-foundations")
            .unwrap()
            .resolve(&Runtime::placeholder("us-east-1"), &Default::default())
            .unwrap();
        profile.agents = None;
        let e = Agents::of(&profile).unwrap_err().to_string();
        assert!(e.contains("declares no AI agents") && e.contains("[agents]"), "{e}");
    }
}
