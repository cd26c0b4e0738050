//! The planner: a pure function of what the profile declares, what was read, and who owns
//! it, to a plan. It decides each action, marks changes another profile's resource would
//! suffer as conflicts, and attaches the notes a reader needs (adoption, ownership, anything
//! the read reported).

use super::{Address, Attrs, Change, Ownership, Plan, plan_change};

/// What the planner knows about one resource.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub address: Address,
    /// The declared attributes; `None` for a resource this profile owns but no longer declares.
    pub desired: Option<Attrs>,
    /// What was read; `None` when the resource does not exist.
    pub live: Option<Observed<'a>>,
    /// Fields that cannot change in place.
    pub replace_on: Vec<String>,
}

/// A resource as read.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub attrs: &'a Attrs,
    pub owner: &'a Ownership,
    /// What the read found worth saying that is not drift.
    pub notes: &'a [String],
}

/// The plan for `profile`, one change per input, in the inputs' order.
pub fn plan<'a>(profile: &str, inputs: impl IntoIterator<Item = Input<'a>>) -> Plan {
    Plan { changes: inputs.into_iter().map(|input| change(profile, input)).collect() }
}

fn change(profile: &str, input: Input<'_>) -> Change {
    let Input { address, desired, live, replace_on } = input;
    let mut change = plan_change(address, desired.as_ref(), live.map(|l| l.attrs), &replace_on);
    if desired.is_none() {
        change.notes.push("owned by this profile but no longer declared in it".into());
    }
    if let Some(live) = live {
        // Ownership is only known for kinds that carry tags, and only matters if declared.
        if desired.is_some() {
            change.notes.extend(ownership_note(profile, live.owner));
            change.conflict = match live.owner {
                Ownership::Profile(other) if other != profile => Some(format!("owned by ctguard profile {other:?}")),
                _ => None,
            };
        }
        change.notes.extend(live.notes.iter().cloned());
    }
    change
}

fn ownership_note(profile: &str, owner: &Ownership) -> Option<String> {
    match owner {
        Ownership::Untracked => None,
        Ownership::Profile(o) if o == profile => None,
        Ownership::Profile(other) => Some(format!(
            "owned by ctguard profile {other:?}: apply will not take it over; rename it in {profile:?} or drop it from {other:?}"
        )),
        Ownership::Unowned => Some("exists and was not created by ctguard; apply adopts it and tags it".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use serde_json::json;

    fn address(name: &str) -> Address {
        Address { kind: "sns_topic", name: name.into(), region: "us-east-1".into() }
    }

    fn attrs(owner: &str) -> Attrs {
        Attrs::from([("tags".to_string(), json!({ "ctguard:profile": owner }))])
    }

    fn input<'a>(desired: Option<Attrs>, live: Option<Observed<'a>>) -> Input<'a> {
        Input { address: address("alerts"), desired, live, replace_on: Vec::new() }
    }

    fn observed<'a>(attrs: &'a Attrs, owner: &'a Ownership, notes: &'a [String]) -> Observed<'a> {
        Observed { attrs, owner, notes }
    }

    #[test]
    fn a_missing_resource_is_created_without_notes() {
        let plan = plan("guard", [input(Some(attrs("guard")), None)]);
        let c = &plan.changes[0];
        assert_eq!((c.action, c.notes.is_empty(), c.conflict.is_none()), (Action::Create, true, true));
    }

    #[test]
    fn an_untagged_resource_is_adopted_with_a_note() {
        let live = Attrs::from([("tags".to_string(), json!({}))]);
        let plan = plan("guard", [input(Some(attrs("guard")), Some(observed(&live, &Ownership::Unowned, &[])))]);
        let c = &plan.changes[0];
        assert_eq!(c.action, Action::Update);
        assert_eq!(c.notes, ["exists and was not created by ctguard; apply adopts it and tags it"]);
        assert_eq!(c.conflict, None);
    }

    #[test]
    fn another_profiles_resource_is_a_conflict() {
        let live = attrs("other");
        let owner = Ownership::Profile("other".into());
        let plan = plan("guard", [input(Some(attrs("guard")), Some(observed(&live, &owner, &[])))]);
        let c = &plan.changes[0];
        assert_eq!(c.conflict.as_deref(), Some("owned by ctguard profile \"other\""));
        assert!(
            c.notes[0].starts_with("owned by ctguard profile \"other\": apply will not take it over"),
            "{:?}",
            c.notes
        );
        assert_eq!(plan.conflicts().count(), 1);
    }

    #[test]
    fn our_own_resource_needs_no_ownership_note() {
        let live = attrs("guard");
        let owner = Ownership::Profile("guard".into());
        let plan = plan("guard", [input(Some(attrs("guard")), Some(observed(&live, &owner, &[])))]);
        let c = &plan.changes[0];
        assert_eq!((c.action, c.notes.len(), c.conflict.is_none()), (Action::NoOp, 0, true));
    }

    #[test]
    fn an_undeclared_owned_resource_is_deleted_with_a_note_and_no_ownership_verdict() {
        let live = attrs("guard");
        let owner = Ownership::Profile("guard".into());
        let plan = plan("guard", [input(None, Some(observed(&live, &owner, &[])))]);
        let c = &plan.changes[0];
        assert_eq!(c.action, Action::Delete);
        assert_eq!(c.notes, ["owned by this profile but no longer declared in it"]);
    }

    #[test]
    fn kinds_without_tags_get_no_ownership_note_but_keep_read_notes() {
        let live = Attrs::from([("subscriptions".to_string(), json!({}))]);
        let desired = Attrs::from([("subscriptions".to_string(), json!({}))]);
        let notes = ["x is subscribed but was not created by ctguard: left alone".to_string()];
        let plan = plan("guard", [input(Some(desired), Some(observed(&live, &Ownership::Untracked, &notes)))]);
        assert_eq!(plan.changes[0].notes, notes);
        assert_eq!(plan.changes[0].action, Action::NoOp);
    }

    #[test]
    fn fields_named_in_replace_on_force_a_replacement() {
        let desired = Attrs::from([("path".to_string(), json!("/a/"))]);
        let live = Attrs::from([("path".to_string(), json!("/b/"))]);
        let mut i = input(Some(desired), Some(observed(&live, &Ownership::Untracked, &[])));
        i.replace_on = vec!["path".into()];
        let plan = plan("guard", [i]);
        assert_eq!(plan.changes[0].action, Action::Replace);
        assert!(plan.changes[0].diffs[0].forces_replacement);
    }
}
