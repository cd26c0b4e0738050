//! Who counts as an AI agent, and how a detection recognises one in a CloudTrail record.
//!
//! A profile declares agents by several independent signals ([`Kind`]); an agent detection
//! fires when any declared signal matches. Each signal becomes one [`Clause`]: a few fields of
//! `userIdentity` (or `userAgent`) tested against `*` globs, ANDed. The same clause is written
//! into an EventBridge pattern ([`Restriction::event_branches`]) and into a CloudWatch Logs
//! filter pattern ([`Restriction::filter_clause`]), so a rule and an alarm restricted to agents
//! agree on every record, and [`Restriction::attribute`] says which signal made a record an
//! agent's.
//!
//! The record shapes are CloudTrail's `userIdentity` element (CloudTrail User Guide, "CloudTrail
//! userIdentity element"):
//!
//! - a role session is `type` `AssumedRole`, `arn` `arn:<partition>:sts::<account>:assumed-role/
//!   <role name>/<session name>` (never the IAM role ARN, which appears only as
//!   `sessionContext.sessionIssuer.arn`), `principalId` `<role id>:<session name>`;
//! - `sessionContext.sourceIdentity` holds the source identity set at AssumeRole, kept across
//!   role chaining;
//! - an IAM user is `type` `IAMUser` with `userName` (a failed console sign-in carries no `arn`,
//!   but has `userName`);
//! - an IAM Identity Center (SSO) session is an `AssumedRole` session of the role
//!   `AWSReservedSSO_<permission set name>_<16 hex>` that IAM Identity Center provisions;
//! - `userAgent` is what the caller's SDK says, including the AWS Labs MCP servers'
//!   `awslabs/mcp/<server>/<version>` suffix. The caller chooses it: a supplementary signal, never
//!   proof.

use serde_json::{Map, Value, json};

use crate::detect::eventbridge::EventPattern;

/// A kind of agent signal, as the profile's `[agents]` keys name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// IAM role names; sessions of these roles in the accounts in scope.
    Roles,
    /// Role session names, under any role.
    SessionNames,
    /// `sts:SourceIdentity` values.
    SourceIdentities,
    /// IAM user names.
    Users,
    /// IAM Identity Center permission set names.
    SsoPermissionSets,
    /// Substrings of the user agent: supplementary, the caller can set it to anything.
    UserAgents,
    /// Principal ARN patterns given on a rule or alarm itself (`principals = [...]`).
    Principals,
}

impl Kind {
    /// The profile key: `agents.<key>`, or `principals` on a rule or alarm.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Roles => "roles",
            Kind::SessionNames => "session_names",
            Kind::SourceIdentities => "source_identities",
            Kind::Users => "users",
            Kind::SsoPermissionSets => "sso_permission_sets",
            Kind::UserAgents => "user_agents",
            Kind::Principals => "principals",
        }
    }

    /// Every kind the `[agents]` section declares, in the order they are written into patterns.
    pub const DECLARED: [Kind; 6] = [
        Kind::Roles,
        Kind::SessionNames,
        Kind::SourceIdentities,
        Kind::Users,
        Kind::SsoPermissionSets,
        Kind::UserAgents,
    ];

    /// Characters the value itself may hold (besides `*`), and its longest length, from the IAM
    /// and STS API references; `None` for free text.
    fn alphabet(self) -> Option<(&'static str, fn(char) -> bool, usize)> {
        // IAM names: `[\w+=,.@-]+`. Source identity: "alphanumeric ... underscores or any of the
        // following characters: =,.@-" (STS AssumeRole, SourceIdentity), 2 to 64 characters.
        fn iam(c: char) -> bool {
            c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
        }
        fn source(c: char) -> bool {
            c.is_ascii_alphanumeric() || "_=,.@-".contains(c)
        }
        match self {
            Kind::Roles => Some(("an IAM role name", iam, 64)),
            Kind::SessionNames => Some(("a role session name", iam, 64)),
            Kind::SourceIdentities => Some(("a source identity", source, 64)),
            Kind::Users => Some(("an IAM user name", iam, 64)),
            Kind::SsoPermissionSets => Some(("a permission set name", iam, 32)),
            Kind::UserAgents | Kind::Principals => None,
        }
    }
}

/// One declared signal: its kind and the pattern as written in the profile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Signal {
    pub kind: Kind,
    pub pattern: String,
}

/// The agents a profile declares, resolved for the accounts in scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agents {
    pub signals: Vec<Signal>,
    /// Accounts whose role sessions the `roles` and `sso_permission_sets` signals name.
    pub accounts: Vec<String>,
    pub partition: String,
}

/// Why a declared pattern cannot be used: the index of the value in its list, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub kind: Kind,
    pub index: usize,
    pub message: String,
}

/// Checks one declared value: a pattern that is empty, matches everything, or can never match
/// (a character the identifier cannot hold, an IAM role ARN where CloudTrail writes the STS
/// session ARN) is refused with what to write instead.
pub fn check(kind: Kind, value: &str) -> Result<(), String> {
    let literal: String = value.chars().filter(|c| *c != '*').collect();
    if value.trim().is_empty() {
        return Err("an empty pattern: remove it, or write a name (`*` matches any characters)".into());
    }
    if literal.is_empty() {
        return Err(format!("{value:?} matches every caller, so every call would be an agent's: name the agents"));
    }
    if value.contains("**") {
        return Err(format!("{value:?}: `**` is refused by EventBridge wildcards; one `*` matches any characters"));
    }
    if value.contains('"') || value.contains('\\') {
        return Err(format!("{value:?}: a pattern cannot hold '\"' or '\\'"));
    }
    if kind == Kind::Principals {
        return principal_arn(value);
    }
    let Some((what, allowed, max)) = kind.alphabet() else { return Ok(()) };
    if value.starts_with("arn:") {
        let hint = match kind {
            Kind::Roles => " (for arn:aws:iam::123456789012:role/AIAgent write \"AIAgent\")",
            Kind::Users => " (for arn:aws:iam::123456789012:user/agent-ci write \"agent-ci\")",
            _ => "",
        };
        return Err(format!("{value:?} is an ARN; {} holds {what} (with * wildcards), not an ARN{hint}", kind.key()));
    }
    if let Some(c) = literal.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "{value:?} can never match: {what} cannot contain {c:?} (only letters, digits and {})",
            if kind == Kind::SourceIdentities { "_=,.@-" } else { "_+=,.@-" }
        ));
    }
    if literal.chars().count() > max {
        return Err(format!("{value:?} can never match: {what} is at most {max} characters"));
    }
    Ok(())
}

/// CloudTrail writes a role session's `userIdentity.arn` as the STS assumed-role ARN, so a
/// pattern naming the IAM role ARN can never match an event.
fn principal_arn(value: &str) -> Result<(), String> {
    if !value.starts_with("arn:") {
        return Err(format!(
            "{value:?} is not an ARN pattern: expected one like arn:aws:sts::123456789012:assumed-role/AIAgent*, \
             or declare the agent under [agents]"
        ));
    }
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    if let [_, partition, "iam", _, account, resource] = parts.as_slice()
        && let Some(role) = resource.strip_prefix("role/")
    {
        let name = role.rsplit('/').next().unwrap_or(role);
        return Err(format!(
            "{value:?} names an IAM role, but CloudTrail records a role session as \
             arn:{partition}:sts::{account}:assumed-role/<role>/<session>, so this never matches: write \
             \"arn:{partition}:sts::{account}:assumed-role/{name}/*\", or list \"{name}\" under [agents] roles"
        ));
    }
    Ok(())
}

/// A glob over one field: `*` matches any characters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Test {
    /// Field path under the record (`userIdentity.arn`).
    path: &'static [&'static str],
    glob: String,
}

/// One way a record is an agent's: every test holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// Index into [`Restriction::signals`].
    signal: usize,
    tests: Vec<Test>,
}

const ARN: &[&str] = &["userIdentity", "arn"];
const TYPE: &[&str] = &["userIdentity", "type"];
const PRINCIPAL_ID: &[&str] = &["userIdentity", "principalId"];
const USER_NAME: &[&str] = &["userIdentity", "userName"];
const SOURCE_IDENTITY: &[&str] = &["userIdentity", "sessionContext", "sourceIdentity"];
const ISSUER_NAME: &[&str] = &["userIdentity", "sessionContext", "sessionIssuer", "userName"];
const ISSUER_ACCOUNT: &[&str] = &["userIdentity", "sessionContext", "sessionIssuer", "accountId"];
const USER_AGENT: &[&str] = &["userAgent"];

/// A detection's agent restriction: the signals it accepts and their clauses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restriction {
    pub signals: Vec<Signal>,
    clauses: Vec<Clause>,
}

/// A signal that matched a record, and the record's value that it matched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Matched {
    pub signal: Kind,
    pub pattern: String,
    /// The field it matched on (`userIdentity.arn`) and its value in the record.
    pub field: String,
    pub value: String,
}

impl Restriction {
    /// The restriction an agent detection carries: every declared signal of `agents`, plus the
    /// detection's own principal ARN patterns. Empty when nothing is declared.
    pub fn new(agents: Option<&Agents>, principals: &[String]) -> Restriction {
        let mut r = Restriction::default();
        if let Some(a) = agents {
            for s in &a.signals {
                r.add(s.clone(), &a.accounts, &a.partition);
            }
        }
        for p in principals {
            r.add(Signal { kind: Kind::Principals, pattern: p.clone() }, &[], "");
        }
        r
    }

    pub fn is_empty(&self) -> bool {
        self.signals.is_empty()
    }

    /// One restriction accepting what any of `parts` accepts.
    pub fn union<'a>(parts: impl IntoIterator<Item = &'a Restriction>) -> Restriction {
        let mut out = Restriction::default();
        for r in parts {
            let offset = out.signals.len();
            out.signals.extend(r.signals.iter().cloned());
            out.clauses.extend(r.clauses.iter().map(|c| Clause { signal: c.signal + offset, tests: c.tests.clone() }));
        }
        out
    }

    fn add(&mut self, signal: Signal, accounts: &[String], partition: &str) {
        let at = self.signals.len();
        let clause = |tests: Vec<Test>| Clause { signal: at, tests };
        let glob = |path, glob: String| Test { path, glob };
        let p = signal.pattern.clone();
        let clauses: Vec<Clause> = match signal.kind {
            Kind::Roles => accounts.iter().map(|a| clause(role_tests(&p, a, partition))).collect(),
            Kind::SsoPermissionSets => {
                let role = format!("AWSReservedSSO_{p}{}", if p.ends_with('*') { "" } else { "_*" });
                accounts.iter().map(|a| clause(role_tests(&role, a, partition))).collect()
            }
            // principalId is "<role id>:<session name>" for a role session; a session name holds
            // no ':', so "*:<session>" anchors the pattern at the start of the session name.
            Kind::SessionNames => {
                let id = match p.strip_prefix('*') {
                    Some(_) => p.clone(),
                    None => format!("*:{p}"),
                };
                vec![clause(vec![glob(TYPE, "AssumedRole".into()), glob(PRINCIPAL_ID, id)])]
            }
            Kind::SourceIdentities => vec![clause(vec![glob(SOURCE_IDENTITY, p)])],
            Kind::Users => vec![clause(vec![glob(TYPE, "IAMUser".into()), glob(USER_NAME, p)])],
            Kind::UserAgents => vec![clause(vec![glob(USER_AGENT, format!("*{}*", p.trim_matches('*')))])],
            Kind::Principals => vec![clause(vec![glob(ARN, p)])],
        };
        self.signals.push(signal);
        self.clauses.extend(clauses);
    }

    /// The `detail` branches an EventBridge pattern ORs to accept any signal: one per clause,
    /// each an object under `detail`.
    pub fn event_branches(&self) -> Vec<Value> {
        // Clauses that test only `userIdentity.arn` share one array (values in a field's array
        // are ORed), which keeps the pattern short.
        let mut arns: Vec<Value> = Vec::new();
        let mut out = Vec::new();
        for c in &self.clauses {
            if let [Test { path, glob }] = c.tests.as_slice()
                && *path == ARN
            {
                arns.push(event_matcher(glob));
                continue;
            }
            out.push(event_object(&c.tests));
        }
        if !arns.is_empty() {
            out.insert(0, json!({"userIdentity": {"arn": arns}}));
        }
        out
    }

    /// `(a) || (b) || ...`, one term per clause, for a CloudWatch Logs filter pattern. A metric
    /// filter reads `*` as a wildcard only at the start or end of a value, so a glob with a `*`
    /// inside is refused, naming the signal.
    pub fn filter_clause(&self) -> Result<String, Vec<(Signal, String)>> {
        let mut terms = Vec::new();
        let mut refused = Vec::new();
        for c in &self.clauses {
            let mut parts = Vec::new();
            for t in &c.tests {
                let inner = t.glob.trim_start_matches('*').trim_end_matches('*');
                if inner.contains('*') {
                    let signal = self.signals[c.signal].clone();
                    let why = format!(
                        "{:?}: a metric filter treats `*` as a wildcard only at the start or end of a value, and \
                         this signal becomes {} = {:?}, which would match only a literal '*'",
                        signal.pattern,
                        t.path.join("."),
                        t.glob
                    );
                    refused.push((signal, why));
                    break;
                }
                parts.push(format!("($.{} = \"{}\")", t.path.join("."), t.glob));
            }
            terms.push(if parts.len() == 1 { parts.remove(0) } else { format!("({})", parts.join(" && ")) });
        }
        refused.dedup();
        if refused.is_empty() { Ok(terms.join(" || ")) } else { Err(refused) }
    }

    /// The detail-level pattern fragment that matches exactly the events no clause matches: what
    /// a rule on every principal ANDs in so that an agent's call raises the agent rule's alert
    /// alone. `not_arn` adds globs `userIdentity.arn` must not match either (the service-linked
    /// roles a rule leaves out), since a field can be tested once.
    ///
    /// The negation of `c1 || c2 || ...` is `!c1 && !c2 && ...`. A field that may be missing
    /// passes when missing (`anything-but` alone never matches a missing field). Clauses that
    /// test one field become one `anything-but` per field; clauses gated on
    /// `userIdentity.type` (session names, users, roles by issuer) become one `$or` with a branch
    /// for every other type and one branch per gated type.
    pub fn exclusion(&self, not_arn: &[String]) -> Result<Value, String> {
        type Nots = std::collections::BTreeMap<&'static [&'static str], Vec<String>>;
        let mut untyped: Nots = Nots::new();
        // Per gated type: a conjunction of disjunctions, each alternative one field's Nots.
        let mut typed: std::collections::BTreeMap<String, Vec<Vec<Nots>>> = Default::default();
        for c in &self.clauses {
            let gate = c.tests.iter().find(|t| t.path == TYPE).map(|t| t.glob.clone());
            let others: Vec<&Test> = c.tests.iter().filter(|t| t.path != TYPE).collect();
            match (gate, others.as_slice()) {
                (None, [one]) => untyped.entry(one.path).or_default().push(one.glob.clone()),
                (Some(ty), tests) if !tests.is_empty() && !ty.contains('*') => {
                    let alternatives = tests.iter().map(|t| Nots::from([(t.path, vec![t.glob.clone()])])).collect();
                    typed.entry(ty).or_default().push(alternatives);
                }
                _ => return Err(format!("the agent signal {:?} cannot be negated", self.signals[c.signal].pattern)),
            }
        }
        if !not_arn.is_empty() {
            untyped.entry(ARN).or_default().extend(not_arn.iter().cloned());
        }
        let mut root = Map::new();
        for (path, globs) in &untyped {
            put(&mut root, path, not_matching(globs));
        }
        if !typed.is_empty() {
            let gated: Vec<&String> = typed.keys().collect();
            let mut branches = vec![json!({"userIdentity": {"type": [{"anything-but": gated}, {"exists": false}]}})];
            for (ty, conjunction) in &typed {
                // The conjunction of disjunctions, multiplied out.
                let mut alternatives: Vec<Nots> = vec![Nots::new()];
                for disjunction in conjunction {
                    let mut next = Vec::new();
                    for have in &alternatives {
                        for add in disjunction {
                            let mut merged = have.clone();
                            for (path, globs) in add {
                                merged.entry(path).or_default().extend(globs.iter().cloned());
                            }
                            next.push(merged);
                        }
                    }
                    alternatives = next;
                    if alternatives.len() > MAX_EXCLUSION_BRANCHES {
                        return Err(format!(
                            "the agent signals on userIdentity.type {ty:?} are too many to leave out of a rule on every \
                             principal ({} alternatives, at most {MAX_EXCLUSION_BRANCHES})",
                            alternatives.len()
                        ));
                    }
                }
                for nots in alternatives {
                    let mut branch = Map::new();
                    put(&mut branch, TYPE, json!([ty]));
                    for (path, globs) in &nots {
                        put(&mut branch, path, not_matching(globs));
                    }
                    branches.push(Value::Object(branch));
                }
            }
            root.insert("$or".into(), Value::Array(branches));
        }
        Ok(Value::Object(root))
    }

    /// Compiled per clause, for [`Restriction::attribute`].
    pub fn compile(&self) -> Attribution {
        let clauses = self
            .clauses
            .iter()
            .filter_map(|c| {
                let pattern = EventPattern::parse(&json!({ "detail": event_object(&c.tests) })).ok()?;
                Some((c.signal, pattern, c.tests[c.tests.len() - 1].path))
            })
            .collect();
        Attribution { signals: self.signals.clone(), clauses }
    }
}

/// A restriction ready to say which signals a record matches.
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    signals: Vec<Signal>,
    clauses: Vec<(usize, EventPattern, &'static [&'static str])>,
}

impl Attribution {
    /// Whether any signal matches `record`, a CloudTrail record (not its envelope): what
    /// `ctguard investigate --agents` asks of every event it looks up.
    pub fn matches_record(&self, record: &Value) -> bool {
        // Clauses test only `userIdentity` and `userAgent`: an envelope of those two is enough.
        let mut detail = Map::with_capacity(2);
        for field in ["userIdentity", "userAgent"] {
            if let Some(v) = record.get(field) {
                detail.insert(field.to_string(), v.clone());
            }
        }
        let event = json!({ "detail": detail });
        self.clauses.iter().any(|(_, pattern, _)| pattern.matches(&event))
    }

    /// The signals `event` (the EventBridge envelope of a record) matches, each once.
    pub fn attribute(&self, event: &Value) -> Vec<Matched> {
        let mut out: Vec<Matched> = Vec::new();
        for (signal, pattern, path) in &self.clauses {
            let s = &self.signals[*signal];
            if out.iter().any(|m| m.signal == s.kind && m.pattern == s.pattern) || !pattern.matches(event) {
                continue;
            }
            let value = path.iter().try_fold(&event["detail"], |v, k| v.get(k)).and_then(Value::as_str);
            out.push(Matched {
                signal: s.kind,
                pattern: s.pattern.clone(),
                field: path.join("."),
                value: value.unwrap_or_default().to_string(),
            });
        }
        out
    }
}

/// A role name pattern as tests: the derived session ARN
/// `arn:<partition>:sts::<account>:assumed-role/<role>/*` where that is a prefix pattern, or the
/// session issuer's name and account where the role pattern starts with or holds a `*` (a
/// metric filter could not match that ARN).
fn role_tests(role: &str, account: &str, partition: &str) -> Vec<Test> {
    let inner = role.trim_end_matches('*');
    if !inner.contains('*') {
        // "AIAgent*" covers "AIAgent<x>/<session>"; an exact name needs the "/" after it.
        let tail = if role.ends_with('*') { "*" } else { "/*" };
        let arn = format!("arn:{partition}:sts::{account}:assumed-role/{inner}{tail}");
        return vec![Test { path: ARN, glob: arn }];
    }
    vec![
        Test { path: TYPE, glob: "AssumedRole".into() },
        Test { path: ISSUER_ACCOUNT, glob: account.into() },
        Test { path: ISSUER_NAME, glob: role.into() },
    ]
}

/// Most `$or` branches an exclusion may multiply out to, far below EventBridge's limits.
const MAX_EXCLUSION_BRANCHES: usize = 16;

/// Sets `value` at `path` under `root`, creating the objects on the way.
fn put(root: &mut Map<String, Value>, path: &[&str], value: Value) {
    let (last, parents) = path.split_last().expect("paths are never empty");
    let mut at = root;
    for k in parents {
        at = at.entry(*k).or_insert_with(|| json!({})).as_object_mut().expect("objects all the way down");
    }
    at.insert((*last).to_string(), value);
}

/// A leaf that matches a value none of `globs` matches, or a missing field: one `anything-but`,
/// by prefix for a single prefix glob, by wildcard otherwise. EventBridge documents a list of
/// values under `anything-but` `wildcard`, but `prefix` with a single string only.
fn not_matching(globs: &[String]) -> Value {
    let mut globs: Vec<String> = globs.to_vec();
    globs.sort();
    globs.dedup();
    let excluded = match globs.as_slice() {
        [one] if one.strip_suffix('*').is_some_and(|inner| !inner.is_empty() && !inner.contains('*')) => {
            json!({ "prefix": one.trim_end_matches('*') })
        }
        [one] => json!({ "wildcard": one }),
        many => json!({ "wildcard": many }),
    };
    json!([{ "anything-but": excluded }, { "exists": false }])
}

/// `{"userIdentity": {"type": [...], "userName": [...]}}` for a clause's tests.
fn event_object(tests: &[Test]) -> Value {
    let mut root = Map::new();
    for t in tests {
        let (last, parents) = t.path.split_last().expect("paths are never empty");
        let mut at = &mut root;
        for k in parents {
            at = at.entry(*k).or_insert_with(|| json!({})).as_object_mut().expect("objects all the way down");
        }
        at.insert((*last).to_string(), json!([event_matcher(&t.glob)]));
    }
    Value::Object(root)
}

/// The cheapest EventBridge matcher for a glob: exact, prefix, suffix, or wildcard (wildcards
/// count towards a rule's complexity).
fn event_matcher(glob: &str) -> Value {
    let inner = glob.trim_start_matches('*').trim_end_matches('*');
    match (glob.starts_with('*'), glob.ends_with('*') && glob.len() > 1, inner.contains('*')) {
        (false, false, false) => json!(glob),
        (false, true, false) => json!({ "prefix": inner }),
        (true, false, false) => json!({ "suffix": inner }),
        _ => json!({ "wildcard": glob }),
    }
}

#[cfg(test)]
mod tests;
