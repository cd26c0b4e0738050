//! Ownership inside a shared policy document (a bucket, topic or key policy, a role's trust
//! policy): ctguard's statements are those whose `Sid` starts with `SID_PREFIX`; every other
//! statement belongs to someone else and is written back exactly as it was read.
//!
//! plan compares only ctguard's statements (`view`); apply writes the live document with
//! ctguard's statements replaced (`merge`), after checking the rules AWS enforces on the
//! merged whole (`Rules::check`): unique Sids, the service's size quota, and for a key
//! policy that the account can still change it.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::canonical;
use super::grants::{self, Principal};

/// The Sid prefix that marks a statement as ctguard's. Letters only, so one prefix is valid
/// everywhere: IAM accepts only A-Z, a-z and 0-9 in a Sid (IAM User Guide, "IAM JSON policy
/// elements: Sid"); S3, SNS and KMS accept any string.
pub const SID_PREFIX: &str = "Ctguard";

/// Sids of the statements ctguard's templates carried before they took the prefix. A document
/// written by such a release, on a resource carrying ctguard's ownership tag, holds no
/// prefixed statement; there these Sids are ctguard's too, so an upgrade replaces them
/// instead of adding a second copy. Once ctguard has written a prefixed statement, a
/// statement with one of these Sids is someone else's (several are the Sids of AWS's own
/// documentation examples, which other teams copy).
const LEGACY_SIDS: [&str; 23] = [
    "AWSCloudTrailAclCheck",
    "AWSCloudTrailWrite",
    "AWSConfigBucketDelivery",
    "AWSConfigBucketExistenceCheck",
    "AWSConfigBucketPermissionsCheck",
    "AccountAdministersKey",
    "AccountManagesTopic",
    "AccountPrincipalsDecryptLogs",
    "AlertPublishersUseKey",
    "CloudTrailAssumeRole",
    "CloudTrailDecryptsWithBucketKey",
    "CloudTrailDeliverToLogGroup",
    "CloudTrailDescribesKey",
    "CloudTrailEncryptsLogs",
    "CloudWatchAlarmsPublish",
    "CloudWatchAlarmsUseKey",
    "ConfigDeliversToBucket",
    "DenyInsecureTransport",
    "EventBridgeAssumeRole",
    "EventBridgeRulesPublish",
    "EventBridgeRulesUseKey",
    "ForwardToHomeBus",
    "S3ServerAccessLogsPolicy",
];

/// The statements of a document, whether `Statement` is a list or a single object.
pub fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => Vec::new(),
    }
}

pub fn sid(statement: &Value) -> Option<&str> {
    statement.get("Sid").and_then(Value::as_str)
}

/// How a statement is named in messages: its Sid, or its position in the document.
pub fn label(statement: &Value, index: usize) -> String {
    match sid(statement) {
        Some(s) if !s.is_empty() => format!("statement {s:?}"),
        _ => format!("statement #{} (no Sid)", index + 1),
    }
}

/// A live document divided by ownership. `owned`: the resource carries ctguard's ownership
/// tag (see `LEGACY_SIDS`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parts {
    /// ctguard's statements, as found.
    pub ours: Vec<Value>,
    /// Everyone else's, as found and in the document's order.
    pub foreign: Vec<Value>,
}

pub fn split(doc: &Value, owned: bool) -> Parts {
    let all = statements(doc);
    let prefixed = all.iter().any(|s| sid(s).is_some_and(|s| s.starts_with(SID_PREFIX)));
    let legacy = owned && !prefixed;
    let mut parts = Parts::default();
    for s in all {
        let ours = sid(s).is_some_and(|sid| sid.starts_with(SID_PREFIX) || (legacy && LEGACY_SIDS.contains(&sid)));
        match ours {
            true => parts.ours.push(s.clone()),
            false => parts.foreign.push(s.clone()),
        }
    }
    parts
}

/// What plan compares, canonical: the document's `Version` and ctguard's statements. A
/// template's view is all of it (every template statement is ctguard's, see
/// `check_template`); a live document's view leaves out everyone else's statements and any
/// other top-level field (`Id`), so none of them is drift.
pub fn view(doc: &Value, owned: bool) -> Value {
    let mut out = Map::new();
    if let Some(v) = doc.get("Version") {
        out.insert("Version".into(), v.clone());
    }
    out.insert("Statement".into(), Value::Array(split(doc, owned).ours));
    canonical(&Value::Object(out))
}

/// The document apply writes: the live document (`None`: there is none) with ctguard's
/// statements replaced by those of `want` (a `view`) and its `Version` set to `want`'s;
/// every other statement and top-level field stays as found. Refuses a merge that would
/// change what a kept statement means: under the 2008-10-17 grammar `${...}` is literal
/// text, under 2012-10-17 a policy variable (IAM User Guide, "IAM JSON policy elements:
/// Version").
pub fn merge(live: Option<&Value>, want: &Value, owned: bool) -> anyhow::Result<Value> {
    let mut out = match live {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    let foreign = live.map(|l| split(l, owned).foreign).unwrap_or_default();
    if let Some(version) = want.get("Version")
        && live.and_then(|l| l.get("Version")) != Some(version)
        && foreign.iter().any(|s| s.to_string().contains("${"))
    {
        anyhow::bail!(
            "the document's Version would become {version}, and a statement ctguard does not own contains \"${{\", \
             which that version reads as a policy variable; set the document's Version to {version} yourself first"
        );
    }
    if let Some(version) = want.get("Version") {
        out.insert("Version".into(), version.clone());
    }
    let mine = statements(want).into_iter().cloned();
    out.insert("Statement".into(), Value::Array(foreign.into_iter().chain(mine).collect()));
    let doc = Value::Object(out);
    unique_sids(&doc)?;
    Ok(doc)
}

/// A live document's text (`None`: there is none) as plan compares it (see `view`).
pub fn live_view(text: Option<&str>, owned: bool) -> anyhow::Result<Option<Value>> {
    text.map(|t| super::parse_raw(t).map(|doc| view(&doc, owned))).transpose()
}

/// The text apply sends: the live document's text merged with `want` (see `merge`) and
/// checked against `rules`. `resource` names the resource in a refusal.
pub fn to_write(
    live: Option<&str>,
    want: &Value,
    owned: bool,
    rules: &Rules,
    resource: &str,
) -> anyhow::Result<String> {
    let live = live.map(super::parse_raw).transpose()?;
    let doc = merge(live.as_ref(), want, owned)
        .map_err(|e| anyhow::anyhow!("refusing to write the {} of {resource}: {e}", rules.what))?;
    rules.check(resource, &doc)
}

/// Every service that takes these documents requires each Sid to be unique in it. ctguard's
/// Sids carry the prefix and no other statement's does, so only a document AWS would already
/// have refused fails here.
fn unique_sids(doc: &Value) -> anyhow::Result<()> {
    let mut seen = BTreeSet::new();
    for s in statements(doc).into_iter().filter_map(sid).filter(|s| !s.is_empty()) {
        if !seen.insert(s) {
            anyhow::bail!("two statements have the Sid {s:?}; AWS requires each Sid to be unique in a policy");
        }
    }
    Ok(())
}

/// The rules AWS enforces on one kind of document, checked on the merged document before
/// ctguard writes it, so a write AWS would refuse (or one that would lock the account out
/// of its key) fails before any call.
#[derive(Debug, Clone)]
pub struct Rules {
    /// What the document is, for messages: "S3 bucket policy".
    pub what: &'static str,
    /// AWS's quota on the document's size in bytes, where AWS documents one.
    pub max_bytes: Option<usize>,
    pub max_statements: Option<usize>,
    /// For a key policy: the account's root principal, which must keep kms:PutKeyPolicy.
    pub administrator: Option<Principal>,
}

impl Rules {
    /// "The maximum size of a bucket policy is 20 KB" (S3 User Guide, "Bucket policies for
    /// Amazon S3").
    pub fn s3_bucket() -> Self {
        Rules { what: "S3 bucket policy", max_bytes: Some(20 * 1024), max_statements: None, administrator: None }
    }

    /// 30 KB and 100 statements (SNS Developer Guide, "Amazon SNS API permissions: Actions
    /// and resources reference", Policy quotas).
    pub fn sns_topic() -> Self {
        Rules { what: "SNS topic policy", max_bytes: Some(30 * 1024), max_statements: Some(100), administrator: None }
    }

    /// 32 KB (KMS Developer Guide, "Key policies in AWS KMS"), and the account keeps the
    /// right to change the policy: KMS's lockout safety check refuses a policy that takes
    /// kms:PutKeyPolicy from the caller, and ctguard never bypasses it.
    pub fn kms_key(partition: &str, account: &str) -> Self {
        Rules {
            what: "KMS key policy",
            max_bytes: Some(32 * 1024),
            max_statements: None,
            administrator: Some(Principal::account_root(partition, account)),
        }
    }

    /// IAM's trust-policy length quota can be raised per account, so it is left to IAM.
    pub fn iam_trust() -> Self {
        Rules { what: "IAM role trust policy", max_bytes: None, max_statements: None, administrator: None }
    }

    /// The compact text to send, or why AWS would refuse it (or ctguard will not send it).
    pub fn check(&self, resource: &str, doc: &Value) -> anyhow::Result<String> {
        let text = serde_json::to_string(doc)?;
        let all = statements(doc);
        if let Some(max) = self.max_bytes
            && text.len() > max
        {
            let ours: usize = all
                .iter()
                .filter(|s| sid(s).is_some_and(|s| s.starts_with(SID_PREFIX)))
                .map(|s| s.to_string().len())
                .sum();
            anyhow::bail!(
                "refusing to write the {} of {resource}: with ctguard's statements it would be {} bytes \
                 ({ours} of them ctguard's, the rest statements ctguard keeps as found), over AWS's limit of {max} \
                 bytes; make room by removing statements ctguard does not own",
                self.what,
                text.len(),
            );
        }
        if let Some(max) = self.max_statements
            && all.len() > max
        {
            anyhow::bail!(
                "refusing to write the {} of {resource}: with ctguard's statements it would have {} statements, \
                 over AWS's limit of {max}; make room by removing statements ctguard does not own",
                self.what,
                all.len(),
            );
        }
        if let Some(admin) = &self.administrator
            && !grants::can_change_key_policy(doc, admin)
        {
            anyhow::bail!(
                "refusing to write the {} of {resource}: no statement of the merged policy would let the account \
                 ({}) call kms:PutKeyPolicy without conditions, so nobody could change the key's policy again; \
                 KMS's lockout safety check refuses such a policy and ctguard never bypasses it; keep a statement \
                 that allows the account kms:* (as the default key policy does)",
                self.what,
                admin.arn,
            );
        }
        Ok(text)
    }
}

/// A template statement ctguard could not recognise as its own afterwards: every statement
/// of a template for a shared document needs a Sid with ctguard's prefix, letters and digits
/// only, unique in the template. One message per problem, naming the statement.
pub fn check_template(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, s) in statements(doc).into_iter().enumerate() {
        match sid(s) {
            None | Some("") => problems.push(format!(
                "statement #{} has no Sid: every statement ctguard writes into a shared policy needs a Sid \
                 starting with {SID_PREFIX:?}, which is how ctguard tells its statements from everyone else's",
                i + 1
            )),
            Some(sid) if !sid.starts_with(SID_PREFIX) => problems.push(format!(
                "statement {sid:?} (#{}): expected a Sid starting with {SID_PREFIX:?}, which is how ctguard tells \
                 its statements from everyone else's",
                i + 1
            )),
            Some(sid) if !sid.chars().all(|c| c.is_ascii_alphanumeric()) => problems.push(format!(
                "statement {sid:?} (#{}): expected only letters and digits in a Sid (IAM accepts no other)",
                i + 1
            )),
            Some(sid) if !seen.insert(sid) => problems
                .push(format!("statement {sid:?} (#{}): the Sid is used twice; AWS requires unique Sids", i + 1)),
            Some(_) => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ours(sid: &str) -> Value {
        json!({"Sid": sid, "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
               "Action": "s3:GetBucketAcl", "Resource": "arn:aws:s3:::b"})
    }

    fn template() -> Value {
        json!({"Version": "2012-10-17", "Statement": [ours("CtguardAclCheck"), ours("CtguardWrite")]})
    }

    /// A statement someone else wrote, with details canonical form would rewrite (a bool
    /// condition value, a one-element list, key order).
    fn theirs() -> Value {
        json!({"Principal": {"AWS": ["arn:aws:iam::111122223333:root"]}, "Sid": "TeamReads", "Effect": "Allow",
               "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*",
               "Condition": {"Bool": {"aws:SecureTransport": true}}})
    }

    #[test]
    fn foreign_statements_are_kept_exactly_as_found() {
        let live = json!({"Version": "2012-10-17", "Id": "team-policy", "Statement": [theirs(), ours("CtguardOld")]});
        let merged = merge(Some(&live), &view(&template(), false), true).unwrap();
        let kept = statements(&merged);
        assert_eq!(kept[0], &theirs(), "written back as read, not in canonical form");
        assert_eq!(merged["Id"], "team-policy");
        let sids: Vec<_> = kept.iter().filter_map(|s| sid(s)).collect();
        assert_eq!(sids, ["TeamReads", "CtguardAclCheck", "CtguardWrite"], "CtguardOld is ctguard's and is gone");
    }

    #[test]
    fn plan_sees_only_ctguards_statements() {
        let live = merge(Some(&json!({"Statement": [theirs()]})), &view(&template(), false), true).unwrap();
        assert_eq!(view(&live, true), view(&template(), false));
        // Someone else's statement changing is not drift.
        let mut edited = live.clone();
        edited["Statement"][0]["Action"] = json!("s3:*");
        assert_eq!(view(&edited, true), view(&template(), false));
    }

    #[test]
    fn a_reordered_document_is_not_drift() {
        let live = merge(Some(&json!({"Statement": [theirs()]})), &view(&template(), false), true).unwrap();
        let mut reordered = live.clone();
        reordered["Statement"].as_array_mut().unwrap().reverse();
        reordered["Statement"][0]["Resource"] = json!(["arn:aws:s3:::b"]);
        assert_eq!(view(&reordered, true), view(&live, true));
    }

    #[test]
    fn legacy_sids_are_ours_only_on_an_owned_document_ctguard_has_not_rewritten() {
        let old = json!({"Version": "2012-10-17", "Statement": [ours("AWSCloudTrailAclCheck"), theirs()]});
        // Written by an earlier release on a resource ctguard owns: replaced, not duplicated.
        let upgraded = merge(Some(&old), &view(&template(), false), true).unwrap();
        let sids: Vec<_> = statements(&upgraded).into_iter().filter_map(sid).collect();
        assert_eq!(sids, ["TeamReads", "CtguardAclCheck", "CtguardWrite"]);
        // A resource ctguard does not own: AWS's example Sid is someone else's.
        assert_eq!(split(&old, false).foreign.len(), 2);
        // Once ctguard has written prefixed statements, a legacy Sid is someone else's.
        let mut later = upgraded.clone();
        later["Statement"].as_array_mut().unwrap().push(ours("AWSCloudTrailAclCheck"));
        assert_eq!(split(&later, true).foreign.len(), 2);
    }

    #[test]
    fn a_statement_that_claims_the_prefix_is_ctguards_and_a_duplicate_sid_is_refused() {
        // The prefix is the claim: a hand-written "Ctguard…" statement is replaced, and plan
        // shows it as ctguard's drift before apply does so.
        let live = json!({"Statement": [ours("CtguardHandMade"), theirs()]});
        assert_eq!(view(&live, false)["Statement"][0]["Sid"], "CtguardHandMade");
        let merged = merge(Some(&live), &view(&template(), false), false).unwrap();
        assert!(!merged.to_string().contains("CtguardHandMade"));
        // Two foreign statements sharing a Sid: AWS would refuse the document, so does ctguard.
        let clash = json!({"Statement": [theirs(), theirs()]});
        let e = merge(Some(&clash), &view(&template(), false), false).unwrap_err();
        assert!(e.to_string().contains("\"TeamReads\""), "{e}");
        // Ctguard's Sid spelt in another case is someone else's, and both stay.
        let near = json!({"Statement": [ours("ctguardAclCheck")]});
        let merged = merge(Some(&near), &view(&template(), false), false).unwrap();
        assert_eq!(statements(&merged).len(), 3);
    }

    #[test]
    fn a_version_change_under_a_kept_policy_variable_is_refused() {
        let mut literal = theirs();
        literal["Resource"] = json!("arn:aws:s3:::b/${literal}");
        let live = json!({"Version": "2008-10-17", "Statement": [literal]});
        assert!(merge(Some(&live), &view(&template(), false), false).is_err());
        let plain = json!({"Version": "2008-10-17", "Statement": [theirs()]});
        let merged = merge(Some(&plain), &view(&template(), false), false).unwrap();
        assert_eq!(merged["Version"], "2012-10-17");
    }

    /// A document of exactly `bytes` bytes when compact.
    fn sized(bytes: usize) -> Value {
        let mut doc = merge(None, &view(&template(), false), false).unwrap();
        let mut filler = theirs();
        filler["Sid"] = json!("Filler");
        filler["Resource"] = json!("");
        doc["Statement"].as_array_mut().unwrap().insert(0, filler);
        let short = serde_json::to_string(&doc).unwrap().len();
        doc["Statement"][0]["Resource"] = json!("x".repeat(bytes - short));
        doc
    }

    #[test]
    fn a_bucket_policy_at_the_limit_is_written_and_one_over_is_refused() {
        let rules = Rules::s3_bucket();
        let at = sized(20 * 1024);
        assert_eq!(rules.check("S3 bucket b", &at).unwrap().len(), 20 * 1024);
        let e = rules.check("S3 bucket b", &sized(20 * 1024 + 1)).unwrap_err().to_string();
        assert!(e.contains("S3 bucket b") && e.contains("20481 bytes") && e.contains("20480"), "{e}");
    }

    #[test]
    fn a_topic_policy_has_a_byte_and_a_statement_limit() {
        let rules = Rules::sns_topic();
        assert!(rules.check("t", &sized(30 * 1024)).is_ok());
        assert!(rules.check("t", &sized(30 * 1024 + 1)).is_err());
        let many: Vec<Value> = (0..101).map(|i| ours(&format!("S{i}"))).collect();
        let e = rules.check("t", &json!({"Statement": many})).unwrap_err().to_string();
        assert!(e.contains("101 statements"), "{e}");
    }

    #[test]
    fn a_key_policy_that_would_lock_out_the_account_is_refused() {
        let rules = Rules::kms_key("aws", "123456789012");
        let admin = json!({"Sid": "CtguardAccountAdministersKey", "Effect": "Allow",
                           "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"});
        let use_only = json!({"Sid": "CtguardUse", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                              "Action": "kms:GenerateDataKey*", "Resource": "*"});
        assert!(rules.check("k", &json!({"Statement": [admin, use_only.clone()]})).is_ok());
        let e = rules.check("KMS key alias/x", &json!({"Statement": [use_only.clone()]})).unwrap_err().to_string();
        assert!(e.contains("kms:PutKeyPolicy") && e.contains("alias/x") && e.contains("never bypasses"), "{e}");
        // The account's own default statement, kept as found, is enough.
        let default = json!({"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                             "Principal": {"AWS": "123456789012"}, "Action": "kms:*", "Resource": "*"});
        assert!(rules.check("k", &json!({"Statement": [default.clone(), use_only.clone()]})).is_ok());
        // An unconditional Deny of kms:PutKeyPolicy to everyone takes it away again.
        let deny = json!({"Effect": "Deny", "Principal": "*", "Action": "kms:Put*", "Resource": "*"});
        assert!(rules.check("k", &json!({"Statement": [default, use_only, deny]})).is_err());
    }

    #[test]
    fn templates_must_mark_every_statement_as_ctguards() {
        assert!(check_template(&template()).is_empty());
        let bad = json!({"Statement": [ours("AWSCloudTrailAclCheck"), {"Effect": "Allow"}, ours("Ctguard-x"),
                                        ours("CtguardA"), ours("CtguardA")]});
        let problems = check_template(&bad);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("\"AWSCloudTrailAclCheck\""));
        assert!(problems[1].contains("#2 has no Sid"));
        assert!(problems[2].contains("letters and digits"));
        assert!(problems[3].contains("used twice"));
    }
}
