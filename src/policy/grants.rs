//! What a statement grants or denies, read the way IAM evaluates it, for the guarantees a
//! statement ctguard does not own can defeat: a grant to anyone, a Deny in the way of log
//! delivery, and a key policy nobody can change any more.
//!
//! Matching follows the IAM User Guide: actions case-insensitively with `*` and `?`
//! wildcards; resources with the same wildcards, case-sensitively; a condition key missing
//! from the request makes a positive operator false and a negated one (`StringNotEquals`)
//! true, and any `...IfExists` operator true ("Condition operators").

use serde_json::Value;

use super::ownership::statements;
use crate::wildcard::iam;

/// An AWS account principal, as a policy may name it: its root ARN or its bare id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub arn: String,
    pub account: String,
}

impl Principal {
    pub fn account_root(partition: &str, account: &str) -> Self {
        Principal { arn: format!("arn:{partition}:iam::{account}:root"), account: account.to_string() }
    }
}

/// The string values of a field that may be a string or a list.
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn effect(s: &Value, want: &str) -> bool {
    s.get("Effect").and_then(Value::as_str) == Some(want)
}

/// Whether the statement's `Action` (or `NotAction`) covers `action`.
fn covers_action(s: &Value, action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    let any = |key| strings(s.get(key)).iter().any(|p| iam(&p.to_ascii_lowercase(), &action));
    if s.get("NotAction").is_some() { !any("NotAction") } else { any("Action") }
}

/// Whether the statement's `Resource` (or `NotResource`) covers `arn`; no element at all
/// reads as every resource (key policies, trust policies).
fn covers_resource(s: &Value, arn: &str) -> bool {
    let any = |key| strings(s.get(key)).iter().any(|p| iam(p, arn));
    match (s.get("Resource"), s.get("NotResource")) {
        (_, Some(_)) => !any("NotResource"),
        (Some(_), None) => any("Resource"),
        (None, None) => true,
    }
}

/// The principal values of a statement's `Principal`, by type ("*" alone reads as AWS "*").
fn principals(v: &Value) -> Vec<(&str, &str)> {
    match v {
        Value::String(s) => vec![("AWS", s.as_str())],
        Value::Object(map) => {
            map.iter().flat_map(|(kind, v)| strings(Some(v)).into_iter().map(move |p| (kind.as_str(), p))).collect()
        }
        _ => Vec::new(),
    }
}

/// Whether the statement applies to a caller identified by `matches` over (type, value).
fn applies_to(s: &Value, matches: impl Fn(&str, &str) -> bool) -> bool {
    match (s.get("Principal"), s.get("NotPrincipal")) {
        (Some(p), _) => principals(p).into_iter().any(|(k, v)| v == "*" || matches(k, v)),
        (None, Some(np)) => !principals(np).into_iter().any(|(k, v)| matches(k, v)),
        (None, None) => false,
    }
}

fn names_account(kind: &str, value: &str, who: &Principal) -> bool {
    kind == "AWS" && (value == who.arn || value == who.account)
}

/// Whether `doc` lets `admin` call kms:PutKeyPolicy: an unconditional Allow naming the
/// account, and no unconditional Deny in its way. A conditional grant is not counted: a
/// condition the caller may not meet would leave the key without an administrator.
pub fn can_change_key_policy(doc: &Value, admin: &Principal) -> bool {
    let all = statements(doc);
    let relevant = |s: &Value| {
        s.get("Condition").is_none_or(|c| c.as_object().is_some_and(|m| m.is_empty()))
            && covers_action(s, "kms:PutKeyPolicy")
            && covers_resource(s, "*")
    };
    let allowed = all.iter().filter(|s| relevant(s)).any(|s| {
        effect(s, "Allow")
            && s.get("Principal").is_some_and(|p| principals(p).iter().any(|(k, v)| names_account(k, v, admin)))
    });
    let denied = all
        .iter()
        .filter(|s| relevant(s))
        .any(|s| effect(s, "Deny") && applies_to(s, |k, v| names_account(k, v, admin)));
    allowed && !denied
}

/// Condition keys that, pinned to fixed values, keep a wildcard-principal grant from being
/// public: the caller's or the source's account, organization, ARN, network or service (S3
/// User Guide, "Blocking public access to your Amazon S3 storage", The meaning of "public";
/// kms:CallerAccount for key policies, KMS Developer Guide "AWS KMS condition keys").
const RESTRICTING_KEYS: [&str; 14] = [
    "aws:sourcearn",
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceip",
    "aws:sourceorgid",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:userid",
    "s3:dataaccesspointarn",
    "s3:dataaccesspointaccount",
    "kms:calleraccount",
];

/// Whether a value pins the key: no wildcard that would let any account through, no address
/// range covering the internet.
fn fixed(key: &str, value: &str) -> bool {
    match key {
        "aws:sourceip" => !value.ends_with("/0"),
        k if k.ends_with("arn") => {
            // An ARN pins the account by its account field, or (S3's, which has none) by the
            // globally unique name after it.
            let fields: Vec<&str> = value.splitn(6, ':').collect();
            let fixed = |f: &str| !f.contains(['*', '?']);
            fields.len() == 6 && fixed(fields[4]) && (!fields[4].is_empty() || fixed(fields[5]))
        }
        _ => !value.contains(['*', '?']),
    }
}

/// The principals an Allow statement lets write objects (`s3:PutObject`), as `type:value`.
pub fn object_writers(s: &Value) -> Vec<String> {
    if !effect(s, "Allow") || !covers_action(s, "s3:PutObject") {
        return Vec::new();
    }
    s.get("Principal").map(principals).unwrap_or_default().into_iter().map(|(k, v)| format!("{k}:{v}")).collect()
}

/// Whether an Allow statement grants access to anyone: a wildcard principal (`"*"`,
/// `{"AWS": "*"}`) or a `NotPrincipal`, without a condition that pins the caller or the
/// source to fixed values with a positive operator.
pub fn grants_public(s: &Value) -> bool {
    if !effect(s, "Allow") {
        return false;
    }
    let anyone = match (s.get("Principal"), s.get("NotPrincipal")) {
        (Some(p), _) => principals(p).iter().any(|(_, v)| *v == "*"),
        (None, Some(_)) => true,
        (None, None) => false,
    };
    if !anyone {
        return false;
    }
    let Some(Value::Object(ops)) = s.get("Condition") else { return true };
    let restricted = ops.iter().any(|(op, keys)| {
        let op = op.to_ascii_lowercase();
        let positive = ["stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike", "ipaddress"]
            .contains(&op.as_str());
        positive
            && keys.as_object().is_some_and(|keys| {
                keys.iter().any(|(k, v)| {
                    let k = k.to_ascii_lowercase();
                    let values = strings(Some(v));
                    RESTRICTING_KEYS.contains(&k.as_str()) && !values.is_empty() && values.iter().all(|v| fixed(&k, v))
                })
            })
    });
    !restricted
}

/// One request an AWS service makes to deliver logs: who, what, on which ARN, and the
/// condition keys that request carries (a key left out is absent from the request).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The service principal: "cloudtrail.amazonaws.com".
    pub service: String,
    pub action: String,
    pub resource: String,
    /// Condition keys of the request, lower-case, with their values.
    pub context: Vec<(String, String)>,
}

/// Whether a Deny statement stops `d`: it names the service (or everyone), covers the action
/// and the resource, and every condition holds for the request.
pub fn blocks(s: &Value, d: &Delivery) -> bool {
    effect(s, "Deny")
        && applies_to(s, |k, v| k == "Service" && v.eq_ignore_ascii_case(&d.service))
        && covers_action(s, &d.action)
        && covers_resource(s, &d.resource)
        && conditions_hold(s.get("Condition"), &d.context)
}

fn conditions_hold(condition: Option<&Value>, context: &[(String, String)]) -> bool {
    let Some(Value::Object(ops)) = condition else { return true };
    ops.iter().all(|(op, keys)| {
        let Some(keys) = keys.as_object() else { return true };
        keys.iter().all(|(key, values)| {
            let found = context.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str());
            operator_holds(op, found, &strings(Some(values)), values)
        })
    })
}

/// One operator on one key. An operator ctguard does not evaluate counts as holding, so a
/// Deny it cannot rule out is reported rather than missed.
fn operator_holds(op: &str, found: Option<&str>, values: &[&str], raw: &Value) -> bool {
    let op = op.rsplit(':').next().unwrap_or(op).to_ascii_lowercase();
    let (op, if_exists) = match op.strip_suffix("ifexists") {
        Some(base) => (base.to_string(), true),
        None => (op, false),
    };
    if op == "null" {
        let want_absent = match raw {
            Value::Bool(b) => *b,
            _ => values.iter().any(|v| v.eq_ignore_ascii_case("true")),
        };
        return want_absent == found.is_none();
    }
    let negated = op.contains("not");
    let Some(found) = found else { return if_exists || negated };
    let bool_values: Vec<String> = match raw {
        Value::Bool(b) => vec![b.to_string()],
        _ => values.iter().map(|v| v.to_string()).collect(),
    };
    let base = op.replace("not", "");
    let any = match base.as_str() {
        "stringequals" | "arnequals" => values.contains(&found),
        "stringequalsignorecase" => values.iter().any(|v| v.eq_ignore_ascii_case(found)),
        "stringlike" | "arnlike" => values.iter().any(|v| iam(v, found)),
        "bool" => bool_values.iter().any(|v| v.eq_ignore_ascii_case(found)),
        _ => return true,
    };
    any != negated
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn public_is_a_wildcard_principal_without_a_pinning_condition() {
        let open =
            json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"});
        assert!(grants_public(&open));
        let aws_star = json!({"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "sns:Publish"});
        assert!(grants_public(&aws_star));
        let not_principal =
            json!({"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:GetObject"});
        assert!(grants_public(&not_principal));
        let org = json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                         "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}});
        assert!(!grants_public(&org));
        let account = json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt",
                             "Condition": {"StringEquals": {"kms:CallerAccount": "123456789012"}}});
        assert!(!grants_public(&account));
        // Conditions that do not pin who calls: still public.
        let tls_only = json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                              "Condition": {"Bool": {"aws:SecureTransport": "true"}}});
        assert!(grants_public(&tls_only));
        let any_org = json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                             "Condition": {"StringLike": {"aws:PrincipalOrgID": "o-*"}}});
        assert!(grants_public(&any_org));
        let negated = json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                             "Condition": {"StringNotEquals": {"aws:SourceAccount": "1"}}});
        assert!(grants_public(&negated));
        let internet = json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                              "Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}});
        assert!(grants_public(&internet));
        let any_account_arn = json!({"Effect": "Allow", "Principal": "*", "Action": "sns:Publish",
                                     "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:*:alarm:*"}}});
        assert!(grants_public(&any_account_arn));
        let one_account_arn = json!({"Effect": "Allow", "Principal": "*", "Action": "sns:Publish",
                                     "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:123:alarm:*"}}});
        assert!(!grants_public(&one_account_arn));
        // Named principals and Denies are never public grants.
        let named = json!({"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "*"});
        assert!(!grants_public(&named));
        assert!(!grants_public(&json!({"Effect": "Deny", "Principal": "*", "Action": "s3:*"})));
    }

    fn cloudtrail_put() -> Delivery {
        Delivery {
            service: "cloudtrail.amazonaws.com".into(),
            action: "s3:PutObject".into(),
            resource: "arn:aws:s3:::b/AWSLogs/123/CloudTrail/us-east-1/f.json.gz".into(),
            context: vec![
                ("aws:securetransport".into(), "true".into()),
                ("aws:sourceaccount".into(), "123".into()),
                ("s3:x-amz-acl".into(), "bucket-owner-full-control".into()),
            ],
        }
    }

    #[test]
    fn denies_in_the_way_of_delivery_are_found() {
        let d = cloudtrail_put();
        let everyone = json!({"Effect": "Deny", "Principal": "*", "Action": "s3:Put*", "Resource": "arn:aws:s3:::b/*"});
        assert!(blocks(&everyone, &d));
        let service = json!({"Effect": "Deny", "Principal": {"Service": ["cloudtrail.amazonaws.com"]},
                             "Action": "s3:*", "Resource": "arn:aws:s3:::b/AWSLogs/*"});
        assert!(blocks(&service, &d));
        // Outside the organization: a service principal has no org id, so the Deny applies.
        let org_only = json!({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
                              "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-abc"}}});
        assert!(blocks(&org_only, &d));
        // Requiring SSE-KMS by header: CloudTrail relies on the bucket default and sends none.
        let sse = json!({"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*",
                         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}});
        assert!(blocks(&sse, &d));
    }

    #[test]
    fn denies_that_spare_delivery_are_not_reported() {
        let d = cloudtrail_put();
        let tls = json!({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
                         "Condition": {"Bool": {"aws:SecureTransport": false}}});
        assert!(!blocks(&tls, &d));
        let services_spared = json!({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
                                     "Condition": {"StringNotEqualsIfExists": {"aws:SourceAccount": "123"}}});
        assert!(!blocks(&services_spared, &d));
        let other_prefix = json!({"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/public/*"});
        assert!(!blocks(&other_prefix, &d));
        let reads = json!({"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"});
        assert!(!blocks(&reads, &d));
        let someone =
            json!({"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::9:root"}, "Action": "s3:*", "Resource": "*"});
        assert!(!blocks(&someone, &d));
        let not_principal = json!({"Effect": "Deny", "NotPrincipal": {"Service": "cloudtrail.amazonaws.com"},
                                   "Action": "s3:*", "Resource": "*"});
        assert!(!blocks(&not_principal, &d));
        let absent_key = json!({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
                                "Condition": {"StringEquals": {"aws:PrincipalTag/team": "x"}}});
        assert!(!blocks(&absent_key, &d));
    }
}
