//! Parts of a resource ctguard does not own that defeat one of its guarantees: a statement
//! that grants anyone access, a Deny in the way of log delivery, a lifecycle rule that
//! deletes logs sooner than the profile keeps them. ctguard never removes them (they are not
//! its own); verify reports each as a failing check naming it, so a person decides.

use aws_sdk_s3::types::{ExpirationStatus, LifecycleRule};
use serde_json::Value;

use super::kind::Check;
use crate::policy::grants::{self, Delivery};
use crate::policy::ownership;
use crate::profile::Lifecycle;

/// One way logs reach a bucket, named for messages ("CloudTrail").
#[derive(Debug, Clone)]
pub struct Delivers {
    pub who: &'static str,
    pub request: Delivery,
}

/// Failing checks for the statements of `doc` (parsed as found) that are not ctguard's and
/// grant anyone access or block one of `deliveries`.
pub fn statements(doc: &Value, owned: bool, what: &str, deliveries: &[Delivers]) -> Vec<Check> {
    let foreign = ownership::split(doc, owned).foreign;
    let all = ownership::statements(doc);
    let mut checks = Vec::new();
    for s in &foreign {
        let index = all.iter().position(|a| *a == s).unwrap_or(0);
        let label = ownership::label(s, index);
        if grants::grants_public(s) {
            checks.push(Check {
                name: format!("{what}: {label} does not grant access to anyone"),
                ok: false,
                detail: format!(
                    "{label}, which ctguard does not own, allows any principal without a condition that pins the \
                     caller's account or organization; ctguard leaves it in place: remove it or restrict it"
                ),
            });
        }
        for d in deliveries.iter().filter(|d| grants::blocks(s, &d.request)) {
            checks.push(Check {
                name: format!("{what}: {label} does not block {} delivery", d.who),
                ok: false,
                detail: format!(
                    "{label}, which ctguard does not own, denies {} to {} on {}: {} cannot deliver; ctguard \
                     leaves it in place: remove it or exempt the service",
                    d.request.action, d.request.service, d.request.resource, d.who
                ),
            });
        }
    }
    checks
}

/// Where a rule applies, for the purpose of log objects: its prefix, or `None` when it
/// filters by tag (CloudTrail, Config and S3 logging tag no object, so it never applies).
#[allow(deprecated)]
fn rule_prefix(r: &LifecycleRule) -> Option<String> {
    let Some(filter) = r.filter() else { return Some(r.prefix().unwrap_or("").to_string()) };
    if filter.tag().is_some() || filter.and().is_some_and(|a| !a.tags().is_empty()) {
        return None;
    }
    let prefix = filter.prefix().or(filter.and().and_then(|a| a.prefix())).or(r.prefix());
    Some(prefix.unwrap_or("").to_string())
}

/// Failing checks for enabled rules ctguard does not own that expire objects under one of
/// `log_prefixes` (current versions, or noncurrent ones) sooner than `keep` does. An
/// expiration on a date expires everything at that date, so it is always sooner.
pub fn lifecycle(
    rules: &[LifecycleRule],
    is_ours: impl Fn(&LifecycleRule) -> bool,
    keep: &Lifecycle,
    log_prefixes: &[String],
) -> Vec<Check> {
    let mut checks = Vec::new();
    for r in rules.iter().filter(|r| !is_ours(r) && *r.status() == ExpirationStatus::Enabled) {
        let Some(prefix) = rule_prefix(r) else { continue };
        let Some(logs) = log_prefixes.iter().find(|l| l.starts_with(&prefix) || prefix.starts_with(l.as_str())) else {
            continue;
        };
        let sooner = |days: Option<i32>, kept: i32| days.is_some_and(|d| kept <= 0 || d < kept);
        let mut found = Vec::new();
        if let Some(e) = r.expiration() {
            if sooner(e.days(), keep.expire_days) {
                found.push(format!("expires log objects after {} days", e.days().unwrap_or_default()));
            }
            if let Some(date) = e.date() {
                found.push(format!("expires every log object on {date}"));
            }
        }
        let noncurrent = r.noncurrent_version_expiration().and_then(|e| e.noncurrent_days());
        if sooner(noncurrent, keep.noncurrent_expire_days) {
            found.push(format!("deletes noncurrent log versions after {} days", noncurrent.unwrap_or_default()));
        }
        if found.is_empty() {
            continue;
        }
        let id = r.id().unwrap_or("(no ID)");
        let kept = |d: i32| if d > 0 { format!("{d} days") } else { "forever".to_string() };
        checks.push(Check {
            name: format!("lifecycle rule {id:?} does not expire logs sooner than the profile"),
            ok: false,
            detail: format!(
                "lifecycle rule {id:?}, which ctguard does not own, applies to {logs:?} and {} (the profile keeps \
                 logs {} and noncurrent versions {}); ctguard leaves it in place: remove it or narrow its filter",
                found.join(" and "),
                kept(keep.expire_days),
                kept(keep.noncurrent_expire_days)
            ),
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::types::{
        LifecycleExpiration, LifecycleRuleAndOperator, LifecycleRuleFilter, NoncurrentVersionExpiration, Tag,
    };
    use serde_json::json;

    fn rule(id: &str, prefix: &str) -> aws_sdk_s3::types::builders::LifecycleRuleBuilder {
        LifecycleRule::builder()
            .id(id)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
    }

    fn expire(days: i32) -> LifecycleExpiration {
        LifecycleExpiration::builder().days(days).build()
    }

    #[test]
    fn foreign_rules_that_expire_logs_sooner_are_reported() {
        let keep = Lifecycle::default();
        let logs = vec!["AWSLogs/".to_string()];
        let rules = vec![
            rule("ctguard-retention", "").expiration(expire(1)).build().unwrap(),
            rule("whole-bucket", "").expiration(expire(30)).build().unwrap(),
            rule("deep", "AWSLogs/123/CloudTrail/").expiration(expire(7)).build().unwrap(),
            rule("elsewhere", "tmp/").expiration(expire(1)).build().unwrap(),
            rule("longer", "").expiration(expire(keep.expire_days + 1)).build().unwrap(),
            rule("noncurrent", "AWSLogs/")
                .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(1).build())
                .build()
                .unwrap(),
            rule("off", "").status(ExpirationStatus::Disabled).expiration(expire(1)).build().unwrap(),
            LifecycleRule::builder()
                .id("tagged")
                .status(ExpirationStatus::Enabled)
                .filter(
                    LifecycleRuleFilter::builder()
                        .and(
                            LifecycleRuleAndOperator::builder()
                                .prefix("")
                                .tags(Tag::builder().key("k").value("v").build().unwrap())
                                .build(),
                        )
                        .build(),
                )
                .expiration(expire(1))
                .build()
                .unwrap(),
        ];
        let checks = lifecycle(&rules, |r| r.id() == Some("ctguard-retention"), &keep, &logs);
        let named: Vec<_> = checks.iter().map(|c| c.name.split('"').nth(1).unwrap()).collect();
        assert_eq!(named, ["whole-bucket", "deep", "noncurrent"]);
        assert!(checks.iter().all(|c| !c.ok));
        assert!(checks[0].detail.contains("after 30 days"), "{}", checks[0].detail);
    }

    #[test]
    fn a_profile_that_keeps_logs_forever_finds_any_expiry_sooner() {
        let keep = Lifecycle { expire_days: 0, ..Lifecycle::default() };
        let rules = vec![rule("ten-years", "").expiration(expire(3650)).build().unwrap()];
        let checks = lifecycle(&rules, |_| false, &keep, &["AWSLogs/".to_string()]);
        assert_eq!(checks.len(), 1);
        assert!(checks[0].detail.contains("keeps logs forever"), "{}", checks[0].detail);
    }

    #[test]
    fn foreign_statements_that_open_or_block_are_reported_by_name() {
        let doc = json!({"Statement": [
            {"Sid": "CtguardDenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": "arn:aws:s3:::b/*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "Website", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*",
             "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-1"}}},
            {"Sid": "Team", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::b/*"}
        ]});
        let put = Delivers {
            who: "CloudTrail",
            request: Delivery {
                service: "cloudtrail.amazonaws.com".into(),
                action: "s3:PutObject".into(),
                resource: "arn:aws:s3:::b/AWSLogs/1/CloudTrail/x.json.gz".into(),
                context: vec![("aws:securetransport".into(), "true".into())],
            },
        };
        let checks = statements(&doc, true, "bucket policy", &[put]);
        let names: Vec<_> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bucket policy: statement \"Website\" does not grant access to anyone",
                "bucket policy: statement #3 (no Sid) does not block CloudTrail delivery",
            ]
        );
    }
}
