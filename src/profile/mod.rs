//! Profiles: the declared desired state. Loading parses and type-checks the TOML; resolving
//! fills in variables, renders the policy templates and checks every name AWS would reject.
//! A `Profile` that exists is complete and valid: nothing downstream re-checks it.

mod agents;
mod alerting;
pub mod athena;
mod catalog;
pub mod central_bus;
pub mod classes;
mod config;
pub mod managed_rules;
pub mod source;
pub mod trail_events;
mod typecheck;
pub mod types;
pub mod validate;
pub mod vars;

use std::fmt;

use serde_json::{Value, json};

pub use crate::detect::agents::Agents;
pub use alerting::{Alarm, AlertTopic, Alerts, Events, Rule, Subscription, restrict_event_pattern};
pub use config::{ConfigRule, ConfigSetup};
pub use source::{Origin, SourceFile};
pub use types::{Comparison, Encryption, Lifecycle, LockMode, ReadWrite, Severity};
use types::{ProfileDoc, WaiverDoc};
use vars::Vars;

/// One problem in a profile or template, located as precisely as ctguard knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found; the profile is unusable if there is at least one.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Invalid(pub Vec<Problem>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "the profile is invalid ({n} problem{}); nothing was changed", if n == 1 { "" } else { "s" })?;
        for p in &self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// Facts known only at run time, from STS and the resolved region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    pub account_id: String,
    pub partition: String,
    pub region: String,
    /// Regions enabled for the account; read only when the profile asks for ALL_ENABLED.
    pub enabled_regions: Vec<String>,
    /// The organization the account belongs to; read only when the profile declares an
    /// organization trail, or a central bus this account owns.
    pub organization: Option<Organization>,
}

/// An AWS Organizations organization, as DescribeOrganization names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// `o-` followed by 10 to 32 characters.
    pub id: String,
    /// The management account: an organization trail is its resource, whoever creates it.
    pub management_account: String,
}

/// The `regions` value that means "every region enabled for the account".
pub const ALL_ENABLED: &str = "all-enabled";

impl Runtime {
    /// Stand-in used to validate a profile before any AWS call is made.
    pub fn placeholder(region: &str) -> Self {
        Runtime {
            account_id: "000000000000".into(),
            partition: validate::partition_of(region).into(),
            region: region.into(),
            enabled_regions: vec![region.into()],
            organization: Some(Organization::stand_in()),
        }
    }
}

impl Organization {
    /// Stand-in for commands that resolve a profile without writing its documents (validate,
    /// permissions, test, hunt): the organization's ID only fills policy statements.
    pub fn stand_in() -> Self {
        Organization { id: "o-exampleorgid".into(), management_account: "000000000000".into() }
    }
}

/// A parsed, type-checked profile whose placeholders are not yet filled.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub file: SourceFile,
    pub origin: Origin,
    pub doc: ProfileDoc,
}

/// The resolved profile: plain values, rendered policy documents.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub file: String,
    pub runtime: Runtime,
    pub vars: Vars,
    pub bucket: Bucket,
    pub access_log_bucket: Option<AccessLogBucket>,
    pub trail: Trail,
    pub cloudwatch_logs: Option<CloudWatchLogs>,
    /// Every region the EventBridge rules cover, the home region first.
    pub regions: Vec<String>,
    /// Who the AI agents are, when the profile has an `[agents]` section.
    pub agents: Option<Agents>,
    pub alerts: Option<Alerts>,
    pub events: Option<Events>,
    pub alarms: Vec<Alarm>,
    pub config: Option<ConfigSetup>,
    /// Where `ctguard hunt` queries the trail's logs.
    pub athena: Option<athena::Athena>,
    pub waivers: Vec<Waiver>,
    /// How `ctguard investigate` rates an event no detection fired on.
    pub severity_classes: Vec<classes::SeverityClass>,
}

/// A resolved waiver: placeholders filled, exactly one of `field` and `check`, a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    pub resource: String,
    pub region: Option<String>,
    pub field: Option<String>,
    pub check: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Bucket {
    pub name: String,
    pub trail_prefix: String,
    pub encryption: Encryption,
    /// The SSE-KMS key given by ARN.
    pub kms_key_arn: Option<String>,
    /// SSE-KMS with the trail's managed key (`kms_key = "trail"`), whose ARN is known only
    /// once the key exists.
    pub trail_key: bool,
    pub policy: Value,
    pub lifecycle: Lifecycle,
    pub object_lock: Option<ObjectLock>,
    /// S3 sends the bucket's object events to EventBridge (ctguard turns it on; off, it leaves
    /// the setting alone).
    pub eventbridge_notifications: bool,
}

/// S3 Object Lock's default retention on the audit bucket: a period in days or in years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    pub mode: LockMode,
    pub days: Option<i32>,
    pub years: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct AccessLogBucket {
    pub name: String,
    pub prefix: String,
    pub policy: Value,
    /// The template file the policy was rendered from.
    pub policy_template: String,
    pub lifecycle: Lifecycle,
}

#[derive(Debug, Clone)]
pub struct Trail {
    pub name: String,
    pub arn: String,
    pub multi_region: bool,
    pub include_global_service_events: bool,
    pub log_file_validation: bool,
    pub management_events: ReadWrite,
    /// Whether the trail records deletes of objects in the audit bucket (S3 data events).
    pub record_log_deletions: bool,
    /// The declared data-event selectors (`[[trail.data_events]]`).
    pub data_events: Vec<trail_events::DataSelector>,
    /// The Insights types on, as PutInsightSelectors names them.
    pub insights: Vec<String>,
    /// `[trail.insights]` is declared: without it ctguard leaves the trail's Insights as found.
    pub insights_declared: bool,
    /// Selectors not named `ctguard…` are someone else's, kept as they are.
    pub shared_selectors: bool,
    pub kms: Option<Kms>,
    /// verify's log_integrity check covers this many hours; `None`: not checked.
    pub log_integrity_hours: Option<u32>,
    /// The organization an organization trail records; `None`: the trail records this account.
    pub organization: Option<Organization>,
    /// The account relies on an organization trail another account owns: ctguard makes no
    /// trail for it and checks that one covers it.
    pub use_organization_trail: bool,
}

#[derive(Debug, Clone)]
pub enum Kms {
    /// ctguard creates the key and its alias and keeps its policy and rotation.
    Managed { alias: String, policy: Value },
    /// The trail uses a key managed elsewhere.
    Existing { key_arn: String },
}

#[derive(Debug, Clone)]
pub struct CloudWatchLogs {
    pub log_group: String,
    pub log_group_arn: String,
    pub retention_days: i32,
    pub role_name: String,
    pub role_path: String,
    pub role_arn: String,
    pub trust_policy: Value,
    pub role_policy: Value,
    /// The key the group's events are encrypted with.
    pub kms: Option<Kms>,
}

/// Reads and type-checks a profile (by built-in name or path).
pub fn load(spec: &str) -> anyhow::Result<Loaded> {
    let (file, origin) = source::find_profile(spec)?;
    let doc = parse(&file)?;
    Ok(Loaded { file, origin, doc })
}

/// Parses and type-checks, reporting every unknown key, wrong type and bad value at once.
fn parse(file: &SourceFile) -> Result<ProfileDoc, Invalid> {
    typecheck::parse::<ProfileDoc>(file).map_err(Invalid)
}

/// The dotted key defined on a line, prefixed by the table in force there. An entry of an
/// array of tables is numbered as the resolver numbers it (`alarms[1].threshold`).
fn key_at_line(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let above = &lines[..line.min(lines.len())];
    let table = match above.iter().enumerate().rev().find_map(|(at, l)| Some((at, header(l)?))) {
        None => String::new(),
        Some((_, (name, false))) => name,
        Some((at, (name, true))) => {
            let index = above[..at].iter().filter(|l| header(l) == Some((name.clone(), true))).count();
            format!("{name}[{index}]")
        }
    };
    let this = lines.get(line - 1).map(|l| l.trim()).unwrap_or("");
    let key = if this.starts_with('[') { "" } else { this.split('=').next().unwrap_or("").trim() };
    match (table.is_empty(), key.is_empty()) {
        (_, true) => table,
        (true, false) => key.to_string(),
        (false, false) => format!("{table}.{key}"),
    }
}

/// A table header's name, and whether it opens an entry of an array of tables (`[[name]]`).
fn header(line: &str) -> Option<(String, bool)> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("[[") {
        return Some((rest.split("]]").next()?.trim().to_string(), true));
    }
    let rest = line.strip_prefix('[')?;
    Some((rest.split(']').next()?.trim().to_string(), false))
}

/// Parses `--var key=value` flags. A value starting with `[` or `{` is a TOML array or inline
/// table (`--var 'regions=["us-east-1","eu-west-1"]'`); anything else is text as written.
pub fn parse_overrides(flags: &[String]) -> anyhow::Result<Vars> {
    flags
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), override_value(k.trim(), v)?)),
            _ => anyhow::bail!("--var {f:?}: expected KEY=VALUE"),
        })
        .collect()
}

fn override_value(key: &str, raw: &str) -> anyhow::Result<Value> {
    if !raw.trim_start().starts_with(['[', '{']) {
        return Ok(Value::String(raw.to_string()));
    }
    let table: toml::Table = toml::from_str(&format!("v = {raw}")).map_err(|e| {
        anyhow::anyhow!(
            "--var {key}={raw}: expected a TOML list such as [\"a\", \"b\"] or an inline table: {}",
            e.message().trim()
        )
    })?;
    Ok(serde_json::to_value(&table["v"])?)
}

/// The longest window verify's log_integrity check may read.
const MAX_LOG_INTEGRITY_HOURS: u32 = 2160;

const BUILTINS: [&str; 4] = ["account_id", "partition", "region", "profile"];

impl Loaded {
    pub fn name(&self) -> &str {
        &self.doc.profile.name
    }

    /// Whether resolving needs the account's enabled regions.
    pub fn wants_enabled_regions(&self) -> bool {
        matches!(&self.doc.profile.regions, types::StringOrList::One(s) if s == ALL_ENABLED)
    }

    /// Whether resolving needs the account's organization (`[trail] organization = true`).
    pub fn wants_organization(&self) -> bool {
        self.doc.trail.organization
    }

    /// The account that owns the central bus, as the profile names it (`[events] central_bus`);
    /// `None` when there is none or the ARN does not parse (resolving then says why).
    pub fn central_bus_account(&self) -> Option<&str> {
        let arn = self.doc.events.as_ref()?.central_bus.as_deref()?;
        central_bus::parse_arn(arn).ok().map(|(_, _, account, _)| account)
    }

    /// The home region the profile asks for, if it names one.
    pub fn home_region(&self) -> Option<&str> {
        self.doc.profile.home_region.as_deref()
    }

    /// Fills every placeholder, renders templates and validates. Collects every problem
    /// rather than stopping at the first.
    pub fn resolve(&self, runtime: &Runtime, overrides: &Vars) -> Result<Profile, Invalid> {
        Resolver { loaded: self, problems: Vec::new() }.run(runtime, overrides)
    }
}

struct Resolver<'a> {
    loaded: &'a Loaded,
    problems: Vec<Problem>,
}

impl Resolver<'_> {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        let file = self.loaded.file.display.clone();
        self.problems.push(Problem { file, line: None, key: key.into(), message: message.into() });
    }

    /// Substitutes a profile string; records a problem and returns it unchanged on failure.
    fn text(&mut self, key: &str, raw: &str, vars: &Vars) -> String {
        match vars::substitute(raw, vars) {
            Ok(Value::String(s)) => s,
            Ok(other) => {
                self.problem(key, format!("expected text, but the placeholder holds {other}"));
                raw.to_string()
            }
            Err(e) => {
                self.problem(key, format!("{e}: define it under [variables] or pass --var {}=…", e.name));
                raw.to_string()
            }
        }
    }

    fn check(&mut self, key: &str, value: &str, rule: fn(&str) -> Result<(), String>) {
        // A value still holding a placeholder failed to resolve, and that is already reported;
        // its `$` and braces would only add a second, misleading problem.
        if !vars::references(value).is_empty() {
            return;
        }
        if let Err(expected) = rule(value) {
            self.problem(key, format!("{value:?} is not valid: expected {expected}"));
        }
    }

    fn variables(&mut self, runtime: &Runtime, overrides: &Vars) -> Vars {
        let doc = &self.loaded.doc;
        let mut builtins = Vars::new();
        builtins.insert("account_id".into(), json!(runtime.account_id));
        builtins.insert("partition".into(), json!(runtime.partition));
        builtins.insert("region".into(), json!(runtime.region));
        builtins.insert("profile".into(), json!(doc.profile.name));
        let mut user = Vars::new();
        for (k, v) in &doc.variables {
            if BUILTINS.contains(&k.as_str()) {
                self.problem(&format!("variables.{k}"), "this name is built in and cannot be redefined");
                continue;
            }
            match serde_json::to_value(v) {
                Ok(v) => {
                    user.insert(k.clone(), v);
                }
                Err(e) => self.problem(&format!("variables.{k}"), format!("unsupported value: {e}")),
            }
        }
        for (k, v) in overrides {
            let Some(declared) = user.get(k) else {
                let declared: Vec<&str> = user.keys().map(String::as_str).collect();
                self.problem(
                    &format!("--var {k}"),
                    format!("the profile declares no variable {k:?} (it declares: {})", declared.join(", ")),
                );
                continue;
            };
            let value = match (declared, v) {
                // A list variable takes a comma-separated list from the command line; an empty
                // value empties it (switching an agent signal off).
                (Value::Array(_), Value::String(text)) => {
                    json!(text.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>())
                }
                _ => v.clone(),
            };
            user.insert(k.clone(), value);
        }
        let (all, problems) = vars::resolve_all(user, &builtins);
        for (name, message) in problems {
            self.problem(&format!("variables.{name}"), message);
        }
        all
    }

    fn waiver(&mut self, i: usize, w: &WaiverDoc, vars: &Vars) -> Waiver {
        let key = format!("waivers[{i}]");
        let resource = self.text(&format!("{key}.resource"), &w.resource, vars);
        if w.reason.trim().is_empty() {
            self.problem(
                &format!("{key}.reason"),
                "expected the reason for the waiver, which verify prints: it is empty",
            );
        }
        if w.field.is_some() == w.check.is_some() {
            self.problem(&key, "expected exactly one of `field` (a drifting field) or `check` (a health check)");
        }
        for (k, glob) in [("resource", Some(&resource)), ("check", w.check.as_ref())] {
            if let Some(Err(e)) = glob.map(|g| globset::Glob::new(g)) {
                self.problem(&format!("{key}.{k}"), format!("expected a pattern with `*` wildcards: {e}"));
            }
        }
        if let Some(region) = &w.region {
            self.check(&format!("{key}.region"), region, validate::region);
        }
        Waiver {
            resource,
            region: w.region.clone(),
            field: w.field.clone(),
            check: w.check.clone(),
            reason: w.reason.trim().to_string(),
        }
    }

    /// Reads, parses and renders a template; `key` is the profile key that named it. `Null`
    /// when the template could not be rendered (the problem is recorded).
    fn template(&mut self, key: &str, name: &str, vars: &Vars) -> Value {
        self.rendered(key, name, vars).map(|(doc, _)| doc).unwrap_or(Value::Null)
    }

    /// A template for a document ctguard shares with others (a bucket, topic or key policy, a
    /// trust policy): every statement must carry ctguard's Sid prefix, or ctguard could not
    /// tell it from someone else's once written (see `policy::ownership`).
    fn shared_document(&mut self, key: &str, name: &str, vars: &Vars) -> Value {
        let Some((doc, file)) = self.rendered(key, name, vars) else { return Value::Null };
        for message in crate::policy::ownership::check_template(&doc) {
            self.problems.push(Problem { file: file.clone(), line: None, key: "Statement".into(), message });
        }
        doc
    }

    /// Like `template`, with the name errors should show for the template file, so a check of
    /// the rendered document can point into it.
    fn rendered(&mut self, key: &str, name: &str, vars: &Vars) -> Option<(Value, String)> {
        let dir = self.loaded.doc.profile.policies_dir.clone();
        let file = match self.loaded.origin.read_template(&dir, name) {
            Ok(f) => f,
            Err(e) => {
                self.problem(key, e);
                return None;
            }
        };
        let doc: Value = match serde_json::from_str(&file.text) {
            Ok(v) => v,
            Err(e) => {
                let p = Problem {
                    file: file.display,
                    line: Some(e.line()),
                    key: String::new(),
                    message: format!("malformed JSON: {e}"),
                };
                self.problems.push(p);
                return None;
            }
        };
        match vars::substitute_json(&doc, vars) {
            Ok(v) => Some((v, file.display)),
            Err((path, e)) => {
                let message = format!("{e}: ctguard defines {}", vars.keys().cloned().collect::<Vec<_>>().join(", "));
                self.problems.push(Problem { file: file.display, line: None, key: path, message });
                None
            }
        }
    }

    fn run(mut self, runtime: &Runtime, overrides: &Vars) -> Result<Profile, Invalid> {
        let doc = self.loaded.doc.clone();
        let (account, partition, region) = (&runtime.account_id, &runtime.partition, &runtime.region);
        let mut vars = self.variables(runtime, overrides);
        if let Some(home) = &doc.profile.home_region {
            self.check("profile.home_region", home, validate::region);
        }

        // Names first: the templates refer to the ARNs derived from them.
        let bucket_name = self.text("bucket.name", &doc.bucket.name, &vars);
        self.check("bucket.name", &bucket_name, validate::bucket_name);
        let trail_prefix = self.text("bucket.trail_prefix", &doc.bucket.trail_prefix, &vars);
        self.check("bucket.trail_prefix", &trail_prefix, validate::trail_prefix);
        let kms_key_arn = doc.bucket.kms_key_arn.as_ref().map(|k| self.text("bucket.kms_key_arn", k, &vars));
        let trail_key = doc.bucket.kms_key == Some(types::BucketKey::Trail);
        match (doc.bucket.encryption, &kms_key_arn, trail_key) {
            (Encryption::Kms, None, false) => {
                self.problem("bucket.kms_key_arn", "required when encryption = \"aws:kms\" (or kms_key = \"trail\")")
            }
            (Encryption::Kms, Some(_), true) => {
                self.problem("bucket.kms_key", "expected kms_key or kms_key_arn, not both")
            }
            (Encryption::Aes256, Some(_), _) => {
                self.problem("bucket.kms_key_arn", "only allowed when encryption = \"aws:kms\"")
            }
            (Encryption::Aes256, None, true) => {
                self.problem("bucket.kms_key", "only allowed when encryption = \"aws:kms\"")
            }
            (Encryption::Kms, Some(arn), false) => {
                self.check("bucket.kms_key_arn", &arn.clone(), validate::kms_key_arn)
            }
            _ => {}
        }
        if trail_key && !matches!(doc.trail.kms, Some(types::KmsDoc { alias: Some(_), .. })) {
            self.problem("bucket.kms_key", "\"trail\" needs a key ctguard creates: [trail.kms] with alias and policy");
        }
        self.lifecycle("bucket.lifecycle", &doc.bucket.lifecycle);
        self.audit_retention("bucket.lifecycle", &doc.bucket.lifecycle);
        let object_lock = doc.bucket.object_lock.as_ref().and_then(|l| self.object_lock("bucket.object_lock", l));
        let trail_name = self.text("trail.name", &doc.trail.name, &vars);
        self.check("trail.name", &trail_name, validate::trail_name);
        let organization = self.organization(&doc.trail, runtime);
        // An organization trail belongs to the management account, even when CloudTrail's
        // delegated administrator creates it (CloudTrail User Guide, "Organization delegated
        // administrator").
        let owner = organization.as_ref().map_or(account.as_str(), |o| o.management_account.as_str());
        let trail_arn = format!("arn:{partition}:cloudtrail:{region}:{owner}:trail/{trail_name}");
        let logs_under = |id: &str| {
            if trail_prefix.is_empty() { format!("AWSLogs/{id}") } else { format!("{trail_prefix}/AWSLogs/{id}") }
        };
        let log_path = logs_under(account);
        if let Some(o) = &organization {
            vars.insert("organization_id".into(), json!(o.id));
            vars.insert("management_account_id".into(), json!(o.management_account));
            vars.insert("organization_log_path".into(), json!(logs_under(&o.id)));
        }
        vars.insert("bucket_name".into(), json!(bucket_name));
        vars.insert("bucket_arn".into(), json!(format!("arn:{partition}:s3:::{bucket_name}")));
        vars.insert("trail_name".into(), json!(trail_name));
        vars.insert("trail_arn".into(), json!(trail_arn));
        vars.insert("trail_log_path".into(), json!(log_path));
        // Where CloudTrail writes for every account, the organization layout included
        // (`<prefix>/AWSLogs/<account or org id>/...`): what only CloudTrail may write.
        let log_prefix =
            if trail_prefix.is_empty() { "AWSLogs/".to_string() } else { format!("{trail_prefix}/AWSLogs/") };
        vars.insert("trail_log_prefix".into(), json!(log_prefix));

        let access_log_bucket =
            doc.access_log_bucket.as_ref().map(|a| self.access_log_names(a, &bucket_name, &mut vars));
        let cloudwatch_logs = doc.cloudwatch_logs.as_ref().map(|c| self.cloudwatch_logs_names(c, runtime, &mut vars));

        if let Some(alias) = doc.trail.kms.as_ref().and_then(|k| k.alias.as_ref()) {
            let alias = self.text("trail.kms.alias", alias, &vars);
            vars.insert("kms_alias".into(), json!(alias));
        }
        let mut kms = doc.trail.kms.as_ref().and_then(|k| self.kms("trail.kms", k, &vars));
        self.log_integrity(&doc.trail);
        self.relies_on_organization_trail(&doc);

        // Templates last, with every derived name defined.
        let mut bucket_policy = self.shared_document("bucket.policy", &doc.bucket.policy, &vars);
        if organization.is_some() {
            let extra =
                self.shared_document("trail.organization_bucket_policy", &doc.trail.organization_bucket_policy, &vars);
            extend_statements(&mut bucket_policy, &extra);
            if let Some(Kms::Managed { policy, .. }) = &mut kms {
                let extra =
                    self.shared_document("trail.organization_key_policy", &doc.trail.organization_key_policy, &vars);
                extend_statements(policy, &extra);
            }
        }
        let access_log_bucket = access_log_bucket.map(|mut a| {
            a.policy = self.shared_document("access_log_bucket.policy", &a.policy_template, &vars);
            a
        });
        let cloudwatch_logs = cloudwatch_logs.map(|(mut c, trust, policy)| {
            c.trust_policy = self.shared_document("cloudwatch_logs.trust_policy", &trust, &vars);
            c.role_policy = self.template("cloudwatch_logs.role_policy", &policy, &vars);
            if organization.is_some() {
                let name = &doc.trail.organization_logs_role_policy;
                let extra = self.template("trail.organization_logs_role_policy", name, &vars);
                extend_statements(&mut c.role_policy, &extra);
            }
            c.kms = doc
                .cloudwatch_logs
                .as_ref()
                .and_then(|d| d.kms.as_ref())
                .and_then(|k| self.kms("cloudwatch_logs.kms", k, &vars));
            c
        });
        let alerting = self.alerting(&doc, runtime, &mut vars);
        self.distinct_keys(&kms, cloudwatch_logs.as_ref().and_then(|c| c.kms.as_ref()), &alerting);
        let data_events = self.data_events(&doc.trail.data_events, alerting.agents.as_ref(), &vars);
        let insights = trail_events::insight_types(doc.trail.insights.as_ref());
        self.insights(&insights, doc.trail.management_events);
        let values = 2
            + if doc.trail.record_log_deletions { 5 } else { 0 }
            + data_events.iter().map(|s| 2 + s.conditions.iter().map(|c| c.values.len()).sum::<usize>()).sum::<usize>();
        self.selector_values(values);
        self.data_event_alarms(&alerting.alarms, &data_events);
        let config = doc.config.as_ref().map(|c| self.config(c, runtime, &alerting.regions, &mut vars));
        // Config delivers to the audit bucket: its statements join the bucket's policy.
        if let (Some((_, extra)), Some(Value::Array(list))) = (&config, bucket_policy.get_mut("Statement")) {
            list.extend(extra.iter().cloned());
        }

        let waivers = doc.waivers.iter().enumerate().map(|(i, w)| self.waiver(i, w, &vars)).collect();
        let severity_classes = self.severity_classes(&doc.severity_classes);
        let athena = doc.athena.as_ref().and_then(|a| match athena::resolve(a) {
            Ok(a) => Some(a),
            Err(problems) => {
                problems.into_iter().for_each(|(key, message)| self.problem(&key, message));
                None
            }
        });
        let athena = athena.map(|a| self.organization_layout(a, organization.as_ref(), runtime));

        if !self.problems.is_empty() {
            return Err(Invalid(self.problems));
        }
        Ok(Profile {
            name: doc.profile.name.clone(),
            file: self.loaded.file.display.clone(),
            runtime: runtime.clone(),
            bucket: Bucket {
                name: bucket_name,
                trail_prefix,
                encryption: doc.bucket.encryption,
                kms_key_arn,
                trail_key,
                policy: bucket_policy,
                lifecycle: doc.bucket.lifecycle.clone(),
                object_lock,
                eventbridge_notifications: doc.bucket.eventbridge_notifications,
            },
            access_log_bucket,
            trail: Trail {
                name: trail_name,
                arn: trail_arn,
                multi_region: doc.trail.multi_region,
                include_global_service_events: doc.trail.include_global_service_events,
                log_file_validation: doc.trail.log_file_validation,
                management_events: doc.trail.management_events,
                record_log_deletions: doc.trail.record_log_deletions,
                data_events,
                insights,
                insights_declared: doc.trail.insights.is_some(),
                shared_selectors: doc.trail.shared_selectors,
                kms,
                log_integrity_hours: doc.trail.log_integrity_hours,
                organization,
                use_organization_trail: doc.trail.use_organization_trail,
            },
            cloudwatch_logs,
            regions: alerting.regions,
            agents: alerting.agents,
            alerts: alerting.alerts,
            events: alerting.events,
            alarms: alerting.alarms,
            config: config.map(|(setup, _)| setup),
            athena,
            waivers,
            severity_classes,
            vars,
        })
    }

    /// An alarm that counts S3 data events is deployed only when the trail records some: on a
    /// trail that does not, it could never fire, so declaring it is a mistake to say, not hide.
    fn data_event_alarms(&mut self, alarms: &[Alarm], data_events: &[trail_events::DataSelector]) {
        if data_events.iter().any(|s| s.resource_type == "AWS::S3::Object") {
            return;
        }
        for (i, a) in alarms.iter().enumerate().filter(|(_, a)| a.requires_data_events) {
            self.problem(
                &format!("alarms[{i}].requires_data_events"),
                format!(
                    "alarm {:?} counts S3 data events, but the trail records none: declare them under \
                     [[trail.data_events]] (resource_type = \"AWS::S3::Object\"), or remove the alarm",
                    a.id
                ),
            );
        }
    }

    /// The organization an organization trail records, when the profile declares one.
    fn organization(&mut self, trail: &types::TrailDoc, runtime: &Runtime) -> Option<Organization> {
        if !trail.organization {
            return None;
        }
        match &runtime.organization {
            Some(o) => Some(o.clone()),
            None => {
                self.problem("trail.organization", "the account belongs to no AWS Organizations organization");
                None
            }
        }
    }

    /// With `use_organization_trail`, the account has no trail of its own: what would configure
    /// one, or read the logs it delivers to this account, is a mistake to say, not ignore.
    /// An organization trail writes every account's logs, this one's included, under
    /// `AWSLogs/<organization id>/<account>/`: the table reads that layout, for the accounts
    /// `[athena]` lists or else this account alone.
    fn organization_layout(
        &mut self,
        mut a: athena::Athena,
        organization: Option<&Organization>,
        runtime: &Runtime,
    ) -> athena::Athena {
        let Some(org) = organization else { return a };
        match &a.organization {
            // Offline, the organization is a stand-in: its id says nothing.
            Some(declared) if declared.id != org.id && *org != Organization::stand_in() => self.problem(
                "athena.organization_id",
                format!("expected {}, the organization the trail records (it is {})", org.id, declared.id),
            ),
            Some(_) => {}
            None => {
                a.organization =
                    Some(athena::Organization { id: org.id.clone(), accounts: vec![runtime.account_id.clone()] })
            }
        }
        a
    }

    fn relies_on_organization_trail(&mut self, doc: &ProfileDoc) {
        let t = &doc.trail;
        if !t.use_organization_trail {
            return;
        }
        let own_trail = "configures this account's own trail, which use_organization_trail = true does not make";
        let declared = [
            ("trail.organization", t.organization, "an account cannot both make an organization trail and rely on one"),
            ("trail.kms", t.kms.is_some(), own_trail),
            ("trail.data_events", !t.data_events.is_empty(), own_trail),
            ("trail.insights", t.insights.is_some(), own_trail),
            (
                "trail.log_integrity_hours",
                t.log_integrity_hours.is_some(),
                "the organization trail delivers to the management account's bucket: run validate-logs there",
            ),
        ];
        for (key, _, why) in declared.into_iter().filter(|(_, on, _)| *on) {
            self.problem(key, format!("not with trail.use_organization_trail = true: it {why}"));
        }
        // The organization trail delivers to CloudWatch Logs in the management account (if at
        // all), never to this account's log group: filters there would never see an event.
        let logs = "the organization trail delivers to the management account's log group, not this account's, so \
                    its metric filters and alarms would never fire: declare them in the management account's profile";
        if doc.cloudwatch_logs.is_some() {
            self.problem("cloudwatch_logs", format!("not with trail.use_organization_trail = true: {logs}"));
        }
        if !doc.alarms.is_empty() {
            self.problem("alarms", format!("not with trail.use_organization_trail = true: {logs}"));
        }
    }

    fn log_integrity(&mut self, trail: &types::TrailDoc) {
        match trail.log_integrity_hours {
            Some(h) if !(1..=MAX_LOG_INTEGRITY_HOURS).contains(&h) => self.problem(
                "trail.log_integrity_hours",
                format!("{h} is not valid: expected 1 to {MAX_LOG_INTEGRITY_HOURS} (90 days)"),
            ),
            Some(_) if !trail.log_file_validation => self.problem(
                "trail.log_integrity_hours",
                "needs log_file_validation = true: without it CloudTrail delivers no digest files",
            ),
            _ => {}
        }
    }

    /// The access-log bucket's names; its policy is rendered once every name is known.
    fn access_log_names(
        &mut self,
        a: &types::AccessLogBucketDoc,
        bucket_name: &str,
        vars: &mut Vars,
    ) -> AccessLogBucket {
        let partition = vars.get("partition").and_then(Value::as_str).unwrap_or("aws").to_string();
        let name = self.text("access_log_bucket.name", &a.name, vars);
        self.check("access_log_bucket.name", &name, validate::bucket_name);
        if name == bucket_name {
            self.problem("access_log_bucket.name", "must differ from bucket.name: a bucket cannot log its own access");
        }
        let prefix = self.text("access_log_bucket.prefix", &a.prefix, vars);
        self.lifecycle("access_log_bucket.lifecycle", &a.lifecycle);
        if a.lifecycle.allow_short_retention.is_some() {
            self.problem(
                "access_log_bucket.lifecycle.allow_short_retention",
                "only [bucket.lifecycle] takes allow_short_retention: the access-log bucket's retention is not checked",
            );
        }
        vars.insert("access_log_bucket_name".into(), json!(name));
        vars.insert("access_log_bucket_arn".into(), json!(format!("arn:{partition}:s3:::{name}")));
        vars.insert("access_log_prefix".into(), json!(prefix));
        AccessLogBucket {
            name,
            prefix,
            policy: Value::Null,
            policy_template: a.policy.clone(),
            lifecycle: a.lifecycle.clone(),
        }
    }

    /// The log group's and role's names and ARNs, and the two templates still to render.
    fn cloudwatch_logs_names(
        &mut self,
        c: &types::CloudWatchLogsDoc,
        runtime: &Runtime,
        vars: &mut Vars,
    ) -> (CloudWatchLogs, String, String) {
        let (account, partition, region) = (&runtime.account_id, &runtime.partition, &runtime.region);
        let log_group = self.text("cloudwatch_logs.log_group", &c.log_group, vars);
        self.check("cloudwatch_logs.log_group", &log_group, validate::log_group_name);
        if let Err(e) = validate::retention_days(c.retention_days) {
            self.problem("cloudwatch_logs.retention_days", format!("expected {e}"));
        }
        let role_name = self.text("cloudwatch_logs.role_name", &c.role_name, vars);
        self.check("cloudwatch_logs.role_name", &role_name, validate::role_name);
        self.check("cloudwatch_logs.role_path", &c.role_path, validate::role_path);
        let role_arn = format!("arn:{partition}:iam::{account}:role{}{role_name}", c.role_path);
        let log_group_arn = format!("arn:{partition}:logs:{region}:{account}:log-group:{log_group}:*");
        vars.insert("log_group_name".into(), json!(log_group));
        vars.insert("log_group_arn".into(), json!(log_group_arn));
        // The ARN without `:*`, as CloudWatch Logs puts it in the encryption context.
        vars.insert("log_group_plain_arn".into(), json!(log_group_arn.trim_end_matches(":*")));
        vars.insert("role_arn".into(), json!(role_arn));
        let resolved = CloudWatchLogs {
            log_group,
            log_group_arn,
            retention_days: c.retention_days,
            role_name,
            role_path: c.role_path.clone(),
            role_arn,
            trust_policy: Value::Null,
            role_policy: Value::Null,
            kms: None,
        };
        (resolved, c.trust_policy.clone(), c.role_policy.clone())
    }

    /// Each key ctguard creates has an alias of its own: two declarations of one alias would
    /// be two policies for one key, each undoing the other.
    fn distinct_keys(&mut self, trail: &Option<Kms>, logs: Option<&Kms>, alerting: &alerting::Alerting) {
        let topics = alerting.alerts.as_ref().and_then(|a| a.kms.as_ref());
        let declared = [("trail.kms", trail.as_ref()), ("cloudwatch_logs.kms", logs), ("alerts.kms", topics)];
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (key, kms) in declared {
            let Some(Kms::Managed { alias, .. }) = kms else { continue };
            if let Some((first, _)) = seen.iter().find(|(_, a)| a == alias) {
                self.problem(
                    &format!("{key}.alias"),
                    format!("{alias} is already {first}'s key: give each key its own alias"),
                );
            }
            seen.push((key, alias));
        }
    }

    /// A KMS key: created by ctguard (`alias` + `policy`, rendered now) or an existing key.
    fn kms(&mut self, key: &str, k: &types::KmsDoc, vars: &Vars) -> Option<Kms> {
        match (&k.alias, &k.policy, &k.key_arn) {
            (Some(alias), Some(template), None) => {
                let alias = self.text(&format!("{key}.alias"), alias, vars);
                self.check(&format!("{key}.alias"), &alias, validate::kms_alias);
                let policy = self.shared_document(&format!("{key}.policy"), template, vars);
                Some(Kms::Managed { alias, policy })
            }
            (None, None, Some(arn)) => {
                let key_arn = self.text(&format!("{key}.key_arn"), arn, vars);
                self.check(&format!("{key}.key_arn"), &key_arn, validate::kms_key_arn);
                Some(Kms::Existing { key_arn })
            }
            _ => {
                self.problem(
                    key,
                    "expected either alias and policy (ctguard creates the key) or key_arn alone (an existing key)",
                );
                None
            }
        }
    }

    /// A default retention as PutObjectLockConfiguration takes it: a mode and exactly one
    /// positive period, days or years (S3 API Reference, "DefaultRetention").
    fn object_lock(&mut self, key: &str, l: &types::ObjectLockDoc) -> Option<ObjectLock> {
        let positive = |this: &mut Self, field: &str, n: Option<i64>| match n {
            Some(n) if !(1..=i64::from(i32::MAX)).contains(&n) => {
                this.problem(&format!("{key}.{field}"), format!("expected a positive number of {field}, got {n}"));
                None
            }
            n => n.map(|n| n as i32),
        };
        let days = positive(self, "days", l.days);
        let years = positive(self, "years", l.years);
        match (l.days, l.years) {
            (None, None) => self.problem(key, "expected a retention period: days = N or years = N"),
            (Some(_), Some(_)) => {
                self.problem(key, "expected days or years, not both: S3 takes one default retention period")
            }
            _ if days.is_none() && years.is_none() => {}
            _ => return Some(ObjectLock { mode: l.mode, days, years }),
        }
        None
    }

    /// The audit bucket keeps logs at least a year (PCI DSS asks a year of audit trail
    /// history; many regimes ask more) unless the profile gives a reason. What counts is
    /// `expire_days`: once current logs expire they are hidden behind a delete marker, out of
    /// reach of whoever reads the trail's logs (Athena, validate-logs, an investigation), and
    /// `noncurrent_expire_days` later gone for good. `noncurrent_expire_days` on its own only
    /// applies to logs already deleted or overwritten: it is the window to recover those, not
    /// the retention, so it does not count.
    fn audit_retention(&mut self, key: &str, l: &Lifecycle) {
        const YEAR: i32 = 365;
        match l.allow_short_retention.as_deref().map(str::trim) {
            Some("") => self.problem(
                &format!("{key}.allow_short_retention"),
                "expected a reason (why logs may be deleted within a year), not an empty string",
            ),
            Some(_) => {}
            None if (1..YEAR).contains(&l.expire_days) => self.problem(
                &format!("{key}.expire_days"),
                format!(
                    "expected 0 (keep for ever) or at least {YEAR} days for audit logs, got {}; to keep them \
                     shorter on purpose, set allow_short_retention = \"<reason>\" under [{key}]",
                    l.expire_days
                ),
            ),
            None => {}
        }
    }

    fn lifecycle(&mut self, key: &str, l: &Lifecycle) {
        let fields = [
            ("transition_to_ia_days", l.transition_to_ia_days),
            ("transition_to_glacier_days", l.transition_to_glacier_days),
            ("expire_days", l.expire_days),
            ("noncurrent_expire_days", l.noncurrent_expire_days),
            ("abort_incomplete_upload_days", l.abort_incomplete_upload_days),
        ];
        for (name, days) in fields {
            if days < 0 {
                self.problem(
                    &format!("{key}.{name}"),
                    format!("expected 0 (off) or a positive number of days, got {days}"),
                );
            }
        }
        // S3 refuses a transition to STANDARD_IA sooner than 30 days after creation.
        if (1..30).contains(&l.transition_to_ia_days) {
            self.problem(
                &format!("{key}.transition_to_ia_days"),
                format!("expected 0 (off) or at least 30 (an S3 minimum), got {}", l.transition_to_ia_days),
            );
        }
        if l.transition_to_ia_days > 0
            && l.transition_to_glacier_days > 0
            && l.transition_to_glacier_days <= l.transition_to_ia_days
        {
            self.problem(&format!("{key}.transition_to_glacier_days"), "expected more days than transition_to_ia_days");
        }
        let last_transition = l.transition_to_ia_days.max(l.transition_to_glacier_days);
        if l.expire_days > 0 && l.expire_days <= last_transition {
            self.problem(&format!("{key}.expire_days"), "expected more days than every transition");
        }
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

/// Appends the statements of `extra` to those of `doc` (both rendered templates).
fn extend_statements(doc: &mut Value, extra: &Value) {
    if let (Some(Value::Array(list)), Some(Value::Array(more))) = (doc.get_mut("Statement"), extra.get("Statement")) {
        list.extend(more.iter().cloned());
    }
}
