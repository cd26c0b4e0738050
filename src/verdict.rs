//! What verify concludes: the drift and the health checks, with the profile's waivers applied.
//! Plain data, built by a pure function; the renderers turn it into text, JSON or JUnit XML.

use globset::{Glob, GlobMatcher};

use crate::plan::{Action, Address, Change, Plan};
use crate::profile::Waiver;
use crate::resources::Check;

/// The verdict. `plan` holds only the drift that is not waived: a change whose every diff is
/// waived becomes a no-op.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub plan: Plan,
    pub checks: Vec<Checked>,
    /// Drift that was found and waived, one entry per field.
    pub waived_drift: Vec<WaivedDrift>,
    /// Waivers that matched nothing: stale, or mistyped.
    pub unused: Vec<Waiver>,
}

/// A health check and, if it failed and a waiver covers it, the waiver's reason.
#[derive(Debug, Clone)]
pub struct Checked {
    pub address: Address,
    pub check: Check,
    pub waived: Option<String>,
}

#[derive(Debug, Clone)]
pub struct WaivedDrift {
    pub address: Address,
    pub field: String,
    pub reason: String,
}

impl Verdict {
    /// Whether the gate passes: no unwaived drift and no unwaived failing check.
    pub fn passed(&self) -> bool {
        !self.plan.has_changes() && self.failing().count() == 0
    }

    pub fn failing(&self) -> impl Iterator<Item = &Checked> {
        self.checks.iter().filter(|c| !c.check.ok && c.waived.is_none())
    }

    pub fn drifted(&self) -> impl Iterator<Item = &Change> {
        self.plan.changes.iter().filter(|c| c.action != Action::NoOp)
    }
}

struct Compiled<'a> {
    waiver: &'a Waiver,
    resource: GlobMatcher,
    check: Option<GlobMatcher>,
    used: bool,
}

impl Compiled<'_> {
    fn covers(&self, address: &Address) -> bool {
        self.resource.is_match(address.to_string()) && self.waiver.region.as_ref().is_none_or(|r| *r == address.region)
    }
}

fn glob(pattern: &str) -> GlobMatcher {
    // The profile validated every pattern; an invalid one matches nothing.
    Glob::new(pattern).map_or_else(|_| Glob::new("!").expect("literal").compile_matcher(), |g| g.compile_matcher())
}

/// `field` waives `path` and everything under it.
fn under(path: &str, field: &str) -> bool {
    path.strip_prefix(field).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// Applies `waivers` to what verify found. Only drift of resources that exist can be waived
/// field by field: a missing or orphaned resource is never waived away.
pub fn judge(mut plan: Plan, checks: Vec<(Address, Check)>, waivers: &[Waiver]) -> Verdict {
    let mut compiled: Vec<Compiled> = waivers
        .iter()
        .map(|w| Compiled { waiver: w, resource: glob(&w.resource), check: w.check.as_deref().map(glob), used: false })
        .collect();
    let mut waived_drift = Vec::new();
    for change in plan.changes.iter_mut().filter(|c| matches!(c.action, Action::Update | Action::Replace)) {
        change.diffs.retain(|d| {
            let hit = compiled
                .iter_mut()
                .find(|w| w.covers(&change.address) && w.waiver.field.as_deref().is_some_and(|f| under(&d.path, f)));
            let Some(w) = hit else { return true };
            w.used = true;
            waived_drift.push(WaivedDrift {
                address: change.address.clone(),
                field: d.path.clone(),
                reason: w.waiver.reason.clone(),
            });
            false
        });
        if change.diffs.is_empty() {
            change.action = Action::NoOp;
        }
    }
    let checks = checks
        .into_iter()
        .map(|(address, check)| {
            let waived = if check.ok {
                None
            } else {
                compiled
                    .iter_mut()
                    .find(|w| w.covers(&address) && w.check.as_ref().is_some_and(|g| g.is_match(&check.name)))
                    .map(|w| {
                        w.used = true;
                        w.waiver.reason.clone()
                    })
            };
            Checked { address, check, waived }
        })
        .collect();
    let unused = compiled.into_iter().filter(|w| !w.used).map(|w| w.waiver.clone()).collect();
    Verdict { plan, checks, waived_drift, unused }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::AttrDiff;
    use serde_json::json;

    fn address(kind: &'static str, name: &str) -> Address {
        Address { kind, name: name.into(), region: "us-east-1".into() }
    }

    fn diff(path: &str) -> AttrDiff {
        AttrDiff { path: path.into(), before: Some(json!(1)), after: Some(json!(2)), forces_replacement: false }
    }

    fn waiver(resource: &str, field: Option<&str>, check: Option<&str>) -> Waiver {
        Waiver {
            resource: resource.into(),
            region: None,
            field: field.map(Into::into),
            check: check.map(Into::into),
            reason: "accepted by the security team".into(),
        }
    }

    fn plan() -> Plan {
        let change = |kind, name: &str, action, diffs: Vec<AttrDiff>| Change {
            address: address(kind, name),
            action,
            diffs,
            notes: vec![],
            conflict: None,
            destructive: vec![],
        };
        Plan {
            changes: vec![
                change("s3_bucket", "logs", Action::Update, vec![diff("lifecycle.rules[0].days"), diff("versioning")]),
                change("cloudwatch_alarm", "a", Action::Update, vec![diff("lifecycle_x")]),
                change("events_rule", "r", Action::Create, vec![diff("pattern")]),
            ],
        }
    }

    #[test]
    fn a_field_waiver_covers_the_field_and_what_is_under_it_only() {
        let waivers = [waiver("s3_bucket.*", Some("lifecycle"), None)];
        let v = judge(plan(), vec![], &waivers);
        let bucket = &v.plan.changes[0];
        assert_eq!(bucket.diffs.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), ["versioning"]);
        assert_eq!(v.waived_drift.len(), 1);
        assert_eq!(v.plan.changes[1].diffs.len(), 1, "lifecycle_x is not under lifecycle, and not a bucket");
        assert!(!v.passed());
        assert!(v.unused.is_empty());
    }

    #[test]
    fn fully_waived_drift_passes_but_a_missing_resource_never_does() {
        let waivers = [
            waiver("s3_bucket.logs", Some("lifecycle"), None),
            waiver("s3_bucket.logs", Some("versioning"), None),
            waiver("cloudwatch_alarm.a", Some("lifecycle_x"), None),
            waiver("events_rule.r", Some("pattern"), None),
        ];
        let v = judge(plan(), vec![], &waivers);
        assert_eq!(v.drifted().map(|c| c.address.to_string()).collect::<Vec<_>>(), ["events_rule.r"]);
        assert_eq!(v.unused.len(), 1, "the waiver for a resource to be created is unused");
    }

    #[test]
    fn a_check_waiver_covers_failing_checks_it_names() {
        let check = |name: &str, ok| Check { name: name.into(), ok, detail: String::new() };
        let checks = vec![
            (address("sns_subscriptions", "t"), check("alert topic has a confirmed subscriber", false)),
            (address("cloudtrail_trail", "t"), check("trail delivers digest files to S3", false)),
        ];
        let waivers = [waiver("sns_subscriptions.*", None, Some("*confirmed subscriber"))];
        let v = judge(Plan { changes: vec![] }, checks, &waivers);
        assert_eq!(v.checks[0].waived.as_deref(), Some("accepted by the security team"));
        assert_eq!(v.failing().count(), 1);
        assert!(!v.passed());
    }
}
