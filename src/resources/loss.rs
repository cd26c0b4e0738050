//! What counts as losing audit data or coverage, shared by the kinds' `Kind::destructive`
//! hooks: a retention or expiry made shorter (or set where there was none), a Deny statement
//! taken out of a policy document. Each kind decides which of its fields these apply to; the
//! planner carries the reasons, and apply refuses them unless `--allow-data-loss` is given.

use serde_json::Value;

/// A retention or expiry in days; `None` keeps data for ever.
pub type Days = Option<i32>;

/// Whether going from `have` to `want` keeps data for less time.
pub fn shorter(want: Days, have: Days) -> bool {
    match (want, have) {
        (Some(w), Some(h)) => w < h,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// "365 days", or "for ever".
pub fn kept(days: Days) -> String {
    days.map_or_else(|| "for ever".to_string(), |d| format!("{d} days"))
}

/// The reason for a retention that gets shorter: `what` names the field in plain words.
pub fn retention(what: &str, want: Days, have: Days) -> Option<String> {
    shorter(want, have).then(|| format!("{what} goes from {} to {}: older data is deleted", kept(have), kept(want)))
}

/// One lifecycle rule as far as expiry is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Expiring<'a> {
    pub prefix: &'a str,
    pub enabled: bool,
    /// The rule applies to every object under its prefix (no tag or size filter).
    pub whole_prefix: bool,
    /// Days after which current versions expire.
    pub current: Days,
    /// Days after which noncurrent versions are deleted for good.
    pub noncurrent: Days,
}

/// Lifecycle expiry that `want` adds or shortens compared with `have`. For each enabled
/// desired rule, the objects it covers were kept as long as the shortest expiry among the
/// live rules that already covered all of them (enabled, unfiltered, a prefix of its prefix);
/// expiring them sooner than that, or at all where nothing did, loses data.
pub fn lifecycle(want: &[Expiring], have: &[Expiring]) -> Vec<String> {
    let mut out = Vec::new();
    for rule in want.iter().filter(|r| r.enabled) {
        let covering = || have.iter().filter(|h| h.enabled && h.whole_prefix && rule.prefix.starts_with(h.prefix));
        let prior = |field: fn(&Expiring) -> Days| covering().filter_map(field).min();
        for (versions, field) in [
            ("current versions", (|e: &Expiring| e.current) as fn(&Expiring) -> Days),
            ("noncurrent versions", |e: &Expiring| e.noncurrent),
        ] {
            let (now, before) = (field(rule), prior(field));
            if shorter(now, before) {
                let under = match rule.prefix {
                    "" => "every object".to_string(),
                    p => format!("objects under {p:?}"),
                };
                out.push(format!(
                    "lifecycle expires {versions} of {under} after {} where they were kept {}",
                    kept(now),
                    kept(before)
                ));
            }
        }
    }
    out
}

/// Deny statements of `have` that `want` no longer has, by `Sid` (or, for a statement
/// without one, by its whole content). `document` names the policy in the reason.
pub fn removed_denies(document: &str, want: Option<&Value>, have: Option<&Value>) -> Vec<String> {
    let statements = |doc: Option<&Value>| -> Vec<Value> {
        match doc.and_then(|d| d.get("Statement")) {
            Some(Value::Array(list)) => list.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => Vec::new(),
        }
    };
    let kept = statements(want);
    let sid = |s: &Value| s.get("Sid").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    statements(have)
        .into_iter()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Deny"))
        .filter(|s| match sid(s) {
            Some(id) => !kept.iter().any(|k| sid(k).as_deref() == Some(id.as_str())),
            None => !kept.contains(s),
        })
        .map(|s| match sid(&s) {
            Some(id) => format!("removes Deny statement {id:?} from the {document}"),
            None => format!("removes a Deny statement without Sid from the {document}: {s}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::Kind;
    use crate::resources::testing::flagship;
    use crate::resources::{bucket, kms_key, log_group, role, topic, trail};
    use serde_json::json;

    #[test]
    fn retention_is_lost_when_shortened_or_set_where_it_was_unlimited() {
        assert!(retention("retention", Some(30), Some(365)).is_some());
        assert!(retention("retention", Some(365), None).unwrap().contains("goes from for ever to 365 days"));
        assert!(retention("retention", Some(365), Some(30)).is_none());
        assert!(retention("retention", None, Some(30)).is_none());
        assert!(retention("retention", Some(30), Some(30)).is_none());
    }

    fn rule(prefix: &str, current: Days, noncurrent: Days) -> Expiring<'_> {
        Expiring { prefix, enabled: true, whole_prefix: true, current, noncurrent }
    }

    #[test]
    fn lifecycle_expiry_added_or_shortened_is_lost_data() {
        let ours = [rule("", Some(2555), Some(90))];
        // Nothing expired before: both expirations are new.
        assert_eq!(lifecycle(&ours, &[]).len(), 2);
        // The same rule: nothing changes.
        assert!(lifecycle(&ours, &ours).is_empty());
        // Longer than before: nothing lost.
        assert!(lifecycle(&ours, &[rule("", Some(365), Some(30))]).is_empty());
        // Shorter noncurrent expiry only.
        let reasons = lifecycle(&ours, &[rule("", Some(2555), Some(365))]);
        assert_eq!(
            reasons,
            ["lifecycle expires noncurrent versions of every object after 90 days where they were kept 365 days"]
        );
        // A narrower live rule covers only some of the objects: the rest kept for ever.
        let narrow = [rule("logs/", Some(30), Some(30))];
        assert_eq!(lifecycle(&ours, &narrow).len(), 2);
        // A disabled or filtered live rule guarantees nothing either.
        let disabled = [Expiring { enabled: false, ..rule("", Some(30), Some(30)) }];
        assert_eq!(lifecycle(&ours, &disabled).len(), 2);
        let filtered = [Expiring { whole_prefix: false, ..rule("", Some(30), Some(30)) }];
        assert_eq!(lifecycle(&ours, &filtered).len(), 2);
        // A foreign rule kept alongside ours that already expired everything sooner.
        let both = [rule("", Some(2555), Some(90)), rule("", Some(30), Some(1))];
        assert!(lifecycle(&both, &[rule("", Some(30), Some(1))]).is_empty());
    }

    #[test]
    fn only_deny_statements_that_disappear_count() {
        let have = json!({"Statement": [
            {"Sid": "Tls", "Effect": "Deny", "Action": "s3:*"},
            {"Sid": "Write", "Effect": "Allow", "Action": "s3:PutObject"},
            {"Effect": "Deny", "Action": "s3:DeleteObject"}
        ]});
        let want = json!({"Statement": [{"Sid": "Write", "Effect": "Allow", "Action": "s3:PutObject"}]});
        let reasons = removed_denies("bucket policy", Some(&want), Some(&have));
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert_eq!(reasons[0], "removes Deny statement \"Tls\" from the bucket policy");
        assert!(reasons[1].starts_with("removes a Deny statement without Sid from the bucket policy"));
        // A Deny kept, even changed, is not removed; a removed Allow does not count.
        let changed = json!({"Statement": [{"Sid": "Tls", "Effect": "Deny", "Action": "s3:Get*"},
                                           {"Effect": "Deny", "Action": "s3:DeleteObject"}]});
        assert!(removed_denies("bucket policy", Some(&changed), Some(&have)).is_empty());
        assert_eq!(removed_denies("bucket policy", None, Some(&have)).len(), 2);
    }

    #[test]
    fn log_group_retention() {
        let p = flagship();
        let want = log_group::LogGroup::new(&p, p.cloudwatch_logs.as_ref().unwrap()).want.unwrap();
        let mut have = want.clone();
        have.retention_in_days = None;
        let reasons = log_group::LogGroup::destructive(Some(&want), &have, false);
        assert_eq!(reasons, ["retention goes from for ever to 365 days: older data is deleted"]);
        have.retention_in_days = Some(3653);
        assert_eq!(log_group::LogGroup::destructive(Some(&want), &have, false).len(), 1);
        have.retention_in_days = Some(30);
        assert!(log_group::LogGroup::destructive(Some(&want), &have, false).is_empty());
        // An empty group (a run killed before it set retention) loses nothing.
        have.retention_in_days = None;
        assert!(log_group::LogGroup::destructive(Some(&want), &have, true).is_empty());
        assert!(log_group::LogGroup::destructive(None, &have, false)[0].contains("deletes the log group"));
    }

    #[test]
    fn bucket_versioning_lifecycle_policy_and_deletion() {
        let p = flagship();
        let want = bucket::Bucket::audit(&p).want.unwrap();
        assert!(bucket::Bucket::destructive(Some(&want), &want, false).is_empty());
        let mut have = want.clone();
        have.lifecycle.clear();
        let reasons = bucket::Bucket::destructive(Some(&want), &have, false);
        assert!(reasons.iter().any(|r| r.contains("current versions of every object after")), "{reasons:?}");
        // An empty bucket has nothing to expire.
        assert!(bucket::Bucket::destructive(Some(&want), &have, true).is_empty());
        // Someone else's rule, kept by apply, already expires everything sooner: nothing lost.
        let purge = bucket::LifecycleRuleSpec {
            id: Some("purge-all".into()),
            expiration_days: Some(30),
            noncurrent_expiration_days: Some(1),
            ..want.lifecycle[0].clone()
        };
        let foreign = bucket::BucketSpec { foreign_lifecycle: vec![purge], ..have.clone() };
        assert!(bucket::Bucket::destructive(Some(&want), &foreign, false).is_empty());
        // Never versioned: there is no noncurrent version to lose, only current ones.
        let unversioned = bucket::BucketSpec { versioning: "Disabled".into(), ..have.clone() };
        let reasons = bucket::Bucket::destructive(Some(&want), &unversioned, false);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("current versions of every object"), "{reasons:?}");
        let mut suspended = want.clone();
        suspended.versioning = "Suspended".into();
        assert!(bucket::Bucket::destructive(Some(&suspended), &want, false)[0].contains("suspends versioning"));
        assert_eq!(bucket::Bucket::destructive(Some(&suspended), &want, true).len(), 1);
        let mut denied = want.clone();
        denied.policy = Some(json!({"Statement": [{"Sid": "NoDelete", "Effect": "Deny", "Action": "s3:Delete*"}]}));
        let reasons = bucket::Bucket::destructive(Some(&want), &denied, false);
        assert!(reasons.contains(&"removes Deny statement \"NoDelete\" from the bucket policy".to_string()));
        // A Deny protects what is yet to come: removing it counts even in an empty bucket.
        assert_eq!(bucket::Bucket::destructive(Some(&want), &denied, true).len(), 1);
        assert!(bucket::Bucket::destructive(None, &want, false)[0].contains("deletes the bucket"));
    }

    #[test]
    fn trail_deletion_and_coverage() {
        let p = flagship();
        let want = trail::Trail::new(&p, "us-east-1").want.unwrap();
        assert!(trail::Trail::destructive(Some(&want), &want, false).is_empty());
        assert!(trail::Trail::destructive(None, &want, false)[0].starts_with("deletes the trail"));
        let mut narrower = want.clone();
        narrower.settings.is_multi_region_trail = false;
        narrower.settings.include_global_service_events = false;
        assert_eq!(trail::Trail::destructive(Some(&narrower), &want, false).len(), 2);
        // Widening is never a loss.
        assert!(trail::Trail::destructive(Some(&want), &narrower, false).is_empty());
    }

    #[test]
    fn key_topic_and_role_documents_and_key_deletion() {
        let p = flagship();
        let deny = json!({"Statement": [{"Sid": "Guard", "Effect": "Deny", "Action": "*"}]});
        let (alias, policy) = match p.trail.kms.as_ref().unwrap() {
            crate::profile::Kms::Managed { alias, policy } => (alias.clone(), policy.clone()),
            _ => unreachable!("the flagship profile manages its key"),
        };
        let key = kms_key::KmsKey::new(&p, &alias, &policy, "test").want.unwrap();
        let mut have = key.clone();
        have.policy = Some(deny.clone());
        assert_eq!(
            kms_key::KmsKey::destructive(Some(&key), &have, false),
            ["removes Deny statement \"Guard\" from the key policy"]
        );
        assert!(kms_key::KmsKey::destructive(None, &key, false)[0].contains("unreadable"));

        let t = topic::Topic::new(&p, p.alerts.as_ref().unwrap(), &p.alerts.as_ref().unwrap().topics[0]).want.unwrap();
        let mut have = t.clone();
        have.policy = Some(deny.clone());
        assert_eq!(topic::Topic::destructive(Some(&t), &have, false).len(), 1);

        let r = role::Role::cloudtrail_logs(&p, p.cloudwatch_logs.as_ref().unwrap()).want.unwrap();
        let mut have = r.clone();
        have.assume_role_policy = Some(deny.clone());
        have.inline_policies.insert("ctguard-cloudtrail-to-logs".into(), deny);
        assert_eq!(role::Role::destructive(Some(&r), &have, false).len(), 2);
        // Deleting a role loses no audit data.
        assert!(role::Role::destructive(None, &r, false).is_empty());
    }
}
