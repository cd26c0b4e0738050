//! The planner: a pure function of what the profile declares, what was read, and who owns
//! it, to a plan. It decides each action (adopting what exists untagged under a declared
//! name), marks changes another profile's resource would suffer as conflicts, carries each
//! kind's verdict on data loss, and attaches the notes a reader needs (ownership, what is
//! left in place, anything the read reported).

use super::{Action, Address, Attrs, Change, Ownership, Plan, plan_change};

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
    /// Why going from the live state to the desired one (or deleting, when undeclared)
    /// deletes or shortens audit data or coverage, as the kind judges it.
    pub destructive: Vec<String>,
    /// What the change cannot take back, as the kind says: notes on any change made.
    pub cautions: Vec<String>,
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
    let Input { address, desired, live, replace_on, destructive, cautions } = input;
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
            if *live.owner == Ownership::Unowned {
                // Replacing means deleting it first: not something to do to a resource
                // somebody else made.
                if change.action == Action::Replace {
                    let fields: Vec<&str> =
                        change.diffs.iter().filter(|d| d.forces_replacement).map(|d| d.path.as_str()).collect();
                    change.conflict = Some(format!(
                        "was not created by ctguard and differs in {} which cannot change in place: ctguard does not \
                         replace what it does not own; rename it in the profile, or change it by hand",
                        fields.join(", ")
                    ));
                }
                change.action = Action::Adopt;
            }
        }
        change.notes.extend(live.notes.iter().cloned());
    }
    if change.action != Action::NoOp {
        change.destructive = destructive;
        change.notes.extend(cautions);
    }
    if change.withheld_without_consent() {
        change.notes.push("left over: apply leaves it in place unless --allow-data-loss is given".into());
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
        Ownership::Unowned => {
            Some("exists and was not created by ctguard: apply --adopt tags it and manages it from then on".into())
        }
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
        Input {
            address: address("alerts"),
            desired,
            live,
            replace_on: Vec::new(),
            destructive: Vec::new(),
            cautions: Vec::new(),
        }
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
    fn an_untagged_resource_is_to_be_adopted_with_its_differences() {
        let live = Attrs::from([("tags".to_string(), json!({}))]);
        let plan = plan("guard", [input(Some(attrs("guard")), Some(observed(&live, &Ownership::Unowned, &[])))]);
        let c = &plan.changes[0];
        assert_eq!(c.action, Action::Adopt);
        assert_eq!(c.diffs[0].path, "tags.ctguard:profile");
        assert_eq!(
            c.notes,
            ["exists and was not created by ctguard: apply --adopt tags it and manages it from then on"]
        );
        assert_eq!(c.conflict, None);
        assert_eq!(plan.summary().adopt, 1);
    }

    #[test]
    fn a_foreign_resource_that_would_need_replacing_is_a_conflict() {
        let desired = Attrs::from([
            ("path".to_string(), json!("/a/")),
            ("tags".to_string(), json!({"ctguard:profile": "guard"})),
        ]);
        let live = Attrs::from([("path".to_string(), json!("/b/")), ("tags".to_string(), json!({}))]);
        let mut i = input(Some(desired), Some(observed(&live, &Ownership::Unowned, &[])));
        i.replace_on = vec!["path".into()];
        let plan = plan("guard", [i]);
        let c = &plan.changes[0];
        assert_eq!(c.action, Action::Adopt);
        assert!(c.conflict.as_deref().unwrap().contains("differs in path which cannot change in place"), "{c:?}");
    }

    #[test]
    fn a_kinds_cautions_are_notes_on_a_change_and_only_on_a_change() {
        let desired = Attrs::from([("object_lock".to_string(), json!({"mode": "COMPLIANCE", "days": 30}))]);
        let mut create = input(Some(desired.clone()), None);
        create.cautions = vec!["never off again".into()];
        assert_eq!(plan("guard", [create]).changes[0].notes, ["never off again"]);
        let owner = Ownership::Untracked;
        let mut same = input(Some(desired.clone()), Some(observed(&desired, &owner, &[])));
        same.cautions = vec!["never off again".into()];
        assert!(plan("guard", [same]).changes[0].notes.is_empty());
    }

    #[test]
    fn a_kinds_data_loss_verdict_rides_on_the_change() {
        let live = Attrs::from([("retention_in_days".to_string(), json!(null))]);
        let desired = Attrs::from([("retention_in_days".to_string(), json!(365))]);
        let owner = Ownership::Untracked;
        let mut i = input(Some(desired.clone()), Some(observed(&live, &owner, &[])));
        i.destructive = vec!["sets retention".into()];
        let plan = plan("guard", [i]);
        assert_eq!(plan.changes[0].destructive, ["sets retention"]);
        assert!(!plan.changes[0].withheld_without_consent());

        // No change, nothing lost, whatever the kind said.
        let mut same = input(Some(desired.clone()), Some(observed(&desired, &owner, &[])));
        same.destructive = vec!["sets retention".into()];
        assert!(super::plan("guard", [same]).changes[0].destructive.is_empty());
    }

    #[test]
    fn a_destructive_delete_of_an_undeclared_resource_is_withheld_with_a_note() {
        let live = attrs("guard");
        let owner = Ownership::Profile("guard".into());
        let mut i = input(None, Some(observed(&live, &owner, &[])));
        i.destructive = vec!["deletes the trail".into()];
        let plan = plan("guard", [i]);
        let c = &plan.changes[0];
        assert_eq!(c.action, Action::Delete);
        assert!(c.withheld_without_consent());
        assert_eq!(c.notes[1], "left over: apply leaves it in place unless --allow-data-loss is given");
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
