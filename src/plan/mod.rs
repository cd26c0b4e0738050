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
}

/// The whole plan, in dependency order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
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
            }
        }
        s
    }
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
    Change { address, action, diffs, notes: Vec::new(), conflict: None }
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
        let mk = |action| Change { address: addr(), action, diffs: vec![], notes: vec![], conflict: None };
        let plan =
            Plan { changes: vec![mk(Action::Create), mk(Action::Update), mk(Action::Replace), mk(Action::NoOp)] };
        assert_eq!(plan.summary(), Summary { add: 2, change: 1, destroy: 1 });
        assert!(plan.has_changes());
    }
}
