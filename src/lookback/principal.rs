//! Who made a call: `--principal` patterns and the profile's AI-agent principals, matched
//! against a CloudTrail record's `userIdentity`.

use serde_json::Value;

use crate::profile::Profile;

/// `*` matches any run of characters (none included); every other character matches itself.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and how much of the text it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

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
            who.arn.is_some_and(|arn| wildcard(&self.text, arn))
        } else {
            who.names().any(|n| wildcard(&self.text, n))
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

/// The profile's AI-agent principals: the one place `--agents` learns who the agents are.
/// Today that is the `agent_principals` variable of the shipped profiles (ARN patterns matched
/// against `userIdentity.arn`, as the agent rules and filters match them).
#[derive(Debug, Clone)]
pub struct Agents {
    arns: Vec<PrincipalPattern>,
}

impl Agents {
    pub fn of(profile: &Profile) -> anyhow::Result<Agents> {
        let declared: Vec<String> = match profile.vars.get("agent_principals") {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        if declared.is_empty() {
            anyhow::bail!(
                "--agents: profile {} declares no AI-agent principals (the agent_principals variable): \
                 declare them, or name the principals with --principal",
                profile.name
            );
        }
        let arns = declared
            .iter()
            .map(|p| PrincipalPattern::parse(p).map_err(|e| anyhow::anyhow!("{}: agent_principals: {e}", profile.file)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Agents { arns })
    }

    pub fn matches(&self, record: &Value) -> bool {
        let who = Identity::of(record);
        self.arns.iter().any(|p| p.matches(&who))
    }

    pub fn describe(&self) -> Vec<String> {
        self.arns.iter().map(|p| format!("agent: {}", p.text)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_match_any_run() {
        for (p, t, ok) in [
            ("*", "", true),
            ("AIAgent*", "AIAgent-ops", true),
            ("AIAgent*", "XAIAgent", false),
            ("*agent*", "my-agent-1", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("**x", "abx", true),
        ] {
            assert_eq!(wildcard(p, t), ok, "{p} ~ {t}");
        }
    }

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
}
