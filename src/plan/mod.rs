//! The plan as plain data. Computing it is a pure function of desired and live attributes;
//! nothing here prints or calls AWS. Renderers in `render/` turn it into text or JSON.

mod diff;
mod planner;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

pub use diff::diff;
pub use planner::{Input, Observed, plan};

/// Attributes of one resource: a flat map of field name to JSON value. Policies are stored in
/// canonical form (see `policy`), so equal values mean equal meaning.
pub type Attrs = BTreeMap<String, Value>;

/// Who owns a live resource, by ctguard's ownership tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// The kind carries no ownership tag (subscriptions, metric filters, Config's recorder).
    Untracked,
    /// Tagged by no ctguard profile.
    Unowned,
    /// Tagged by this ctguard profile.
    Profile(String),
}

/// Stands for a value that only exists once a dependency has been created.
pub const UNKNOWN: &str = "(known after apply)";

/// What apply will do to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    /// Delete, then create: some fields cannot change in place.
    Replace,
    Delete,
    /// Take over a resource that exists under a declared name without ctguard's ownership
    /// tag: tag it and converge it in place. Apply does it only when told to (`--adopt`).
    Adopt,
}

/// Identifies a resource: its kind, its name and where it lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Address {
    pub kind: &'static str,
    pub name: String,
    pub region: String,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind, self.name)
    }
}

/// One field that differs. `None` on a side means absent there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttrDiff {
    pub path: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// Changing this field forces the resource to be replaced.
    pub forces_replacement: bool,
}

/// The planned change to one resource.
///
/// Invariants: `NoOp` has no diffs; `Create` has `before == None`; `Delete` has `after == None`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    pub diffs: Vec<AttrDiff>,
    /// Anything the reader should know about this resource (ownership, why it is kept).
    pub notes: Vec<String>,
    /// Set when another ctguard profile owns the resource: apply refuses to touch it, so two
    /// profiles never take a resource back and forth.
    pub conflict: Option<String>,
    /// Why this change deletes or shortens audit data or coverage, one reason each; empty
    /// when it does not. Apply makes such a change only when told to (`--allow-data-loss`).
    pub destructive: Vec<String>,
}

/// The whole plan, in dependency order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub adopt: usize,
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Plan {
    /// Changes apply must refuse, with the reason.
    pub fn conflicts(&self) -> impl Iterator<Item = (&Address, &str)> {
        self.changes.iter().filter_map(|c| c.conflict.as_deref().map(|why| (&c.address, why)))
    }

    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::NoOp => {}
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::Delete => s.destroy += 1,
                Action::Adopt => s.adopt += 1,
            }
        }
        s
    }

    /// Why apply must not start, given what the user allowed: one line per resource, naming
    /// it and the flag that would allow it. Empty when apply may go ahead.
    pub fn refusals(&self, consent: Consent) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.changes {
            if let Some(why) = &c.conflict {
                out.push(format!("{}: {why}", c.address));
                continue;
            }
            if c.action == Action::Adopt && !consent.adopt {
                out.push(format!("{} exists and was not created by ctguard: pass --adopt to take it over", c.address));
            }
            if !c.destructive.is_empty() && !consent.data_loss && !c.withheld_without_consent() {
                out.push(format!("{} {}: pass --allow-data-loss to allow it", c.address, c.destructive.join("; ")));
            }
        }
        out
    }

    /// The changes apply leaves undone without `--allow-data-loss` rather than refusing: see
    /// `Change::withheld_without_consent`.
    pub fn withheld(&self, consent: Consent) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| !consent.data_loss && c.withheld_without_consent())
    }

    /// The plan apply carries out: withheld changes become no-ops.
    pub fn to_apply(&self, consent: Consent) -> Plan {
        let mut plan = self.clone();
        for c in plan.changes.iter_mut().filter(|c| !consent.data_loss && c.withheld_without_consent()) {
            c.action = Action::NoOp;
        }
        plan
    }
}

impl Change {
    /// A destructive delete of a resource the profile no longer declares (an old trail after
    /// a rename) is withheld, not refused, without `--allow-data-loss`: leaving it in place
    /// harms nothing the profile declares, so the rest of the plan can go ahead, and the
    /// resource keeps doing its job until someone decides. Every other destructive change
    /// refuses the whole plan, since carrying out the rest would leave the account half
    /// converged.
    pub fn withheld_without_consent(&self) -> bool {
        self.action == Action::Delete && !self.destructive.is_empty()
    }
}

/// What the user allowed apply beyond converging what ctguard owns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Consent {
    /// `--adopt`: take over resources that exist under declared names without ctguard's tag.
    pub adopt: bool,
    /// `--allow-data-loss`: make changes that delete or shorten audit data or coverage.
    pub data_loss: bool,
}

/// Decides the action for one resource. `desired == None` means it should not exist;
/// `replace_on` lists fields that cannot change in place.
pub fn plan_change(address: Address, desired: Option<&Attrs>, live: Option<&Attrs>, replace_on: &[String]) -> Change {
    let diffs = match (desired, live) {
        (None, None) => Vec::new(),
        (Some(want), have) => diff(have, Some(want)),
        (None, Some(have)) => diff(Some(have), None),
    };
    let diffs: Vec<AttrDiff> = diffs
        .into_iter()
        .map(|mut d| {
            let top = d.path.split(['.', '[']).next().unwrap_or("");
            d.forces_replacement = live.is_some() && desired.is_some() && replace_on.iter().any(|f| f == top);
            d
        })
        .collect();
    let action = match (desired, live) {
        (Some(_), None) => Action::Create,
        (None, Some(_)) => Action::Delete,
        (None, None) => Action::NoOp,
        (Some(_), Some(_)) if diffs.is_empty() => Action::NoOp,
        (Some(_), Some(_)) if diffs.iter().any(|d| d.forces_replacement) => Action::Replace,
        (Some(_), Some(_)) => Action::Update,
    };
    Change { address, action, diffs, notes: Vec::new(), conflict: None, destructive: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn addr() -> Address {
        Address { kind: "cloudtrail_trail", name: "audit".into(), region: "us-east-1".into() }
    }

    fn attrs(pairs: &[(&str, Value)]) -> Attrs {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn actions_follow_the_table() {
        let want = attrs(&[("logging", json!(true)), ("path", json!("/a/"))]);
        let same = want.clone();
        let off = attrs(&[("logging", json!(false)), ("path", json!("/a/"))]);
        let moved = attrs(&[("logging", json!(true)), ("path", json!("/b/"))]);
        let cases = [
            (Some(&want), None, Action::Create),
            (Some(&want), Some(&same), Action::NoOp),
            (Some(&want), Some(&off), Action::Update),
            (Some(&want), Some(&moved), Action::Replace),
            (None, Some(&same), Action::Delete),
            (None, None, Action::NoOp),
        ];
        for (desired, live, expected) in cases {
            let change = plan_change(addr(), desired, live, &["path".to_string()]);
            assert_eq!(change.action, expected, "{desired:?} vs {live:?}");
        }
    }

    #[test]
    fn update_lists_only_changed_fields() {
        let want = attrs(&[("logging", json!(true)), ("retention", json!(365))]);
        let have = attrs(&[("logging", json!(false)), ("retention", json!(365))]);
        let change = plan_change(addr(), Some(&want), Some(&have), &[]);
        assert_eq!(change.diffs.len(), 1);
        assert_eq!(change.diffs[0].path, "logging");
        assert_eq!(change.diffs[0].before, Some(json!(false)));
        assert_eq!(change.diffs[0].after, Some(json!(true)));
    }

    #[test]
    fn summary_counts_replace_twice() {
        let mk = |action| Change {
            address: addr(),
            action,
            diffs: vec![],
            notes: vec![],
            conflict: None,
            destructive: vec![],
        };
        let changes =
            vec![mk(Action::Create), mk(Action::Update), mk(Action::Replace), mk(Action::NoOp), mk(Action::Adopt)];
        let plan = Plan { changes };
        assert_eq!(plan.summary(), Summary { adopt: 1, add: 2, change: 1, destroy: 1 });
        assert!(plan.has_changes());
    }

    fn change(name: &str, action: Action, destructive: &[&str], conflict: Option<&str>) -> Change {
        Change {
            address: Address { kind: "cloudtrail_trail", name: name.into(), region: "us-east-1".into() },
            action,
            diffs: vec![],
            notes: vec![],
            conflict: conflict.map(str::to_string),
            destructive: destructive.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn gated() -> Plan {
        Plan {
            changes: vec![
                change("foreign", Action::Adopt, &[], None),
                change("shorter", Action::Update, &["shortens retention"], None),
                change("old", Action::Delete, &["deletes the trail"], None),
                change("theirs", Action::Update, &[], Some("owned by ctguard profile \"x\"")),
                change("plain", Action::Create, &[], None),
            ],
        }
    }

    #[test]
    fn apply_refuses_foreign_and_destructive_changes_unless_allowed_naming_each_and_its_flag() {
        let plan = gated();
        let none = plan.refusals(Consent::default());
        assert_eq!(
            none,
            [
                "cloudtrail_trail.foreign exists and was not created by ctguard: pass --adopt to take it over",
                "cloudtrail_trail.shorter shortens retention: pass --allow-data-loss to allow it",
                "cloudtrail_trail.theirs: owned by ctguard profile \"x\"",
            ]
        );
        let adopt = plan.refusals(Consent { adopt: true, data_loss: false });
        assert_eq!(adopt.len(), 2);
        let both = plan.refusals(Consent { adopt: true, data_loss: true });
        // A conflict is never allowed by a flag.
        assert_eq!(both, ["cloudtrail_trail.theirs: owned by ctguard profile \"x\""]);
    }

    #[test]
    fn a_destructive_delete_is_withheld_without_consent_and_carried_out_with_it() {
        let plan = gated();
        let without = Consent { adopt: true, data_loss: false };
        let withheld: Vec<&str> = plan.withheld(without).map(|c| c.address.name.as_str()).collect();
        assert_eq!(withheld, ["old"]);
        assert_eq!(plan.to_apply(without).changes[2].action, Action::NoOp);
        let with = Consent { adopt: true, data_loss: true };
        assert_eq!(plan.withheld(with).count(), 0);
        assert_eq!(plan.to_apply(with).changes[2].action, Action::Delete);
    }
}
