//! Saved plans: `plan --out FILE` writes the plan with everything it was computed from, and
//! `apply FILE` carries it out only if none of that has moved, as Terraform's saved plans do.
//!
//! What is kept: the profile (as given, with its `--var` values), a hash of what it declares,
//! the account and region, and for every resource the change planned and a fingerprint of the
//! live state it was planned from. Apply reads the account again, plans again, and refuses
//! unless the profile hash, every fingerprint and every change are what was saved: so what
//! runs is exactly what was reviewed, and a change made in the meantime is named, not undone.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::LiveState;
use crate::plan::{Address, Change, Plan};
use crate::profile::vars::Vars;
use crate::resources::{Outputs, Resource};

/// The version of the saved-plan format. Bump it on any incompatible change.
pub const FORMAT_VERSION: &str = "1";

/// A saved plan, as written to the file. Field names are an API, like the JSON output's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: String,
    /// The ctguard version that made it; apply refuses a plan another version made.
    pub ctguard_version: String,
    pub ctguard_commit: String,
    pub profile: SavedProfile,
    pub account: String,
    pub region: String,
    /// Every resource read, in plan order, with its planned change (no-ops included).
    pub resources: Vec<SavedChange>,
}

/// Which profile, resolved how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedProfile {
    pub name: String,
    /// `-p` as given (a path made absolute), so `apply FILE` needs no flags.
    pub spec: String,
    pub vars: Vars,
    /// The `--region` flag, if any.
    pub region_flag: Option<String>,
    /// SHA-256 of everything the profile declares, templates rendered (see `profile_hash`).
    pub hash: String,
}

/// One resource: the change as `plan --format json` shows it, and the live state it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedChange {
    pub address: String,
    pub region: String,
    /// SHA-256 of the live attributes and owner read, or `absent`.
    pub live: String,
    pub change: Value,
}

impl SavedChange {
    fn label(&self) -> String {
        format!("{} ({})", self.address, self.region)
    }
}

/// What a saved plan is computed from, at plan time or again at apply time.
pub struct Basis<'a> {
    pub profile: SavedProfile,
    pub account: &'a str,
    pub region: &'a str,
    pub resources: &'a [Box<dyn Resource>],
    pub live: &'a LiveState,
    pub plan: &'a Plan,
}

impl SavedPlan {
    pub fn new(basis: &Basis<'_>) -> Self {
        SavedPlan {
            format_version: FORMAT_VERSION.into(),
            ctguard_version: env!("CARGO_PKG_VERSION").into(),
            ctguard_commit: crate::build_info::COMMIT.into(),
            profile: basis.profile.clone(),
            account: basis.account.into(),
            region: basis.region.into(),
            resources: basis.plan.changes.iter().map(|c| saved_change(c, basis.live)).collect(),
        }
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading the saved plan {}: {e}", path.display()))?;
        let version: Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not a ctguard saved plan (malformed JSON: {e})", path.display()))?;
        let found = version.get("format_version").and_then(Value::as_str);
        anyhow::ensure!(
            found == Some(FORMAT_VERSION),
            "{}: saved-plan format_version {found:?}, expected {FORMAT_VERSION:?}: make the plan again with this ctguard",
            path.display()
        );
        serde_json::from_value(version)
            .map_err(|e| anyhow::anyhow!("{}: not a ctguard saved plan: {e}", path.display()))
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        std::fs::write(path, text).map_err(|e| anyhow::anyhow!("writing the saved plan {}: {e}", path.display()))
    }

    /// What moved between this plan and `now` (the same computation repeated), one line each;
    /// empty when the plan may be applied as saved.
    pub fn moved(&self, now: &Basis<'_>) -> Vec<String> {
        let mut moved = Vec::new();
        if self.ctguard_version != env!("CARGO_PKG_VERSION") {
            moved.push(format!(
                "the plan was made by ctguard {}, this is {}",
                self.ctguard_version,
                env!("CARGO_PKG_VERSION")
            ));
        }
        if self.account != now.account {
            moved.push(format!("the plan is for account {}, the credentials are for {}", self.account, now.account));
        }
        if self.region != now.region {
            moved.push(format!("the plan is for home region {}, not {}", self.region, now.region));
        }
        if self.profile.hash != now.profile.hash {
            moved.push(format!(
                "the profile {:?} changed since the plan was made (what it declares, or a template)",
                self.profile.name
            ));
        }
        if !moved.is_empty() {
            return moved;
        }
        let fresh = SavedPlan::new(now);
        let before: BTreeMap<String, &SavedChange> = self.resources.iter().map(|c| (c.label(), c)).collect();
        let after: BTreeMap<String, &SavedChange> = fresh.resources.iter().map(|c| (c.label(), c)).collect();
        for (label, was) in &before {
            match after.get(label) {
                None => moved.push(format!("{label}: no longer part of the plan (no longer found or declared)")),
                Some(is) if is.live != was.live => moved.push(format!(
                    "{label}: its live state changed since the plan was made ({})",
                    if is.live == ABSENT {
                        "now absent".into()
                    } else if was.live == ABSENT {
                        "now present".to_string()
                    } else {
                        "changed".into()
                    }
                )),
                Some(is) if is.change != was.change => {
                    moved.push(format!("{label}: the change planned now differs from the saved one"))
                }
                Some(_) => {}
            }
        }
        for label in after.keys().filter(|l| !before.contains_key(*l)) {
            moved.push(format!("{label}: found now, but not in the saved plan"));
        }
        moved
    }
}

const ABSENT: &str = "absent";

fn saved_change(c: &Change, live: &LiveState) -> SavedChange {
    let fingerprint = match live.get(&c.address).and_then(Option::as_ref) {
        None => ABSENT.to_string(),
        Some(l) => {
            let text = serde_json::to_string(&(&l.attrs, format!("{:?}", l.owner))).unwrap_or_default();
            sha256(&text)
        }
    };
    SavedChange {
        address: c.address.to_string(),
        region: c.address.region.clone(),
        live: fingerprint,
        change: serde_json::to_value(c).unwrap_or(Value::Null),
    }
}

/// The hash of what the profile declares: every resource's desired state (templates rendered,
/// values known only after apply left as such) and its dependencies. A comment or a reordered
/// key in the profile does not change it; anything apply would write differently does.
pub fn profile_hash(name: &str, resources: &[Box<dyn Resource>]) -> String {
    let outputs = Outputs::new();
    let declared: Vec<(Address, Option<crate::plan::Attrs>, &[Address])> =
        resources.iter().filter(|r| r.declared()).map(|r| (r.address(), r.desired(&outputs), r.depends_on())).collect();
    sha256(&serde_json::to_string(&(name, declared)).unwrap_or_default())
}

fn sha256(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Ownership};
    use crate::resources::Live;

    fn address() -> Address {
        Address { kind: "logs_log_group", name: "/ctguard/cloudtrail".into(), region: "us-east-1".into() }
    }

    fn plan(action: Action) -> Plan {
        Plan {
            changes: vec![Change {
                address: address(),
                action,
                diffs: vec![],
                notes: vec![],
                conflict: None,
                destructive: vec![],
            }],
        }
    }

    fn basis<'a>(account: &'a str, hash: &str, live: &'a LiveState, plan: &'a Plan) -> Basis<'a> {
        let profile = SavedProfile {
            name: "guard".into(),
            spec: "guard".into(),
            vars: Vars::new(),
            region_flag: None,
            hash: hash.into(),
        };
        Basis { profile, account, region: "us-east-1", resources: &[], live, plan }
    }

    #[test]
    fn nothing_moved_when_the_same_computation_is_repeated() {
        let (live, plan) = (LiveState::from([(address(), None)]), plan(Action::Create));
        let saved = SavedPlan::new(&basis("123456789012", "h", &live, &plan));
        assert_eq!(saved.resources[0].live, "absent");
        assert!(saved.moved(&basis("123456789012", "h", &live, &plan)).is_empty());
    }

    #[test]
    fn another_account_profile_or_plan_is_named() {
        let (live, create) = (LiveState::from([(address(), None)]), plan(Action::Create));
        let saved = SavedPlan::new(&basis("123456789012", "h", &live, &create));
        assert_eq!(
            saved.moved(&basis("210987654321", "other", &live, &create)),
            [
                "the plan is for account 123456789012, the credentials are for 210987654321",
                "the profile \"guard\" changed since the plan was made (what it declares, or a template)",
            ]
        );
        let update = plan(Action::Update);
        assert_eq!(
            saved.moved(&basis("123456789012", "h", &live, &update)),
            ["logs_log_group./ctguard/cloudtrail (us-east-1): the change planned now differs from the saved one"]
        );
        let empty = Plan { changes: vec![] };
        assert_eq!(
            saved.moved(&basis("123456789012", "h", &live, &empty)),
            [
                "logs_log_group./ctguard/cloudtrail (us-east-1): no longer part of the plan (no longer found or declared)"
            ]
        );
    }

    #[test]
    fn fingerprints_follow_the_owner_too() {
        let attrs = crate::plan::Attrs::from([("retention_days".to_string(), serde_json::json!(365))]);
        let a = Live::for_tests(attrs.clone(), Ownership::Unowned);
        let b = Live::for_tests(attrs, Ownership::Profile("guard".into()));
        let plan = plan(Action::NoOp);
        let fingerprint = |l: Live| saved_change(&plan.changes[0], &LiveState::from([(address(), Some(l))])).live;
        assert_ne!(fingerprint(a.clone()), fingerprint(b));
        assert_eq!(fingerprint(a.clone()), fingerprint(a));
    }

    #[test]
    fn a_file_of_another_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        std::fs::write(&path, r#"{"format_version": "9"}"#).unwrap();
        let e = SavedPlan::read(&path).unwrap_err().to_string();
        assert!(e.contains("format_version Some(\"9\"), expected \"1\""), "{e}");
    }
}
