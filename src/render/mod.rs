//! Renderers: plan, verify and apply results as human text or versioned JSON, written to any
//! `Write` so tests render into a `Vec<u8>`. The words and symbols for actions live here only.

pub mod attrs;
pub mod drill;
pub mod html;
pub mod human;
pub mod hunt;
pub mod integrity;
pub mod json;
pub mod junit;
pub mod progress;
pub mod sarif;

use crate::plan::Action;

/// The version of every JSON document ctguard prints. Bump it on any incompatible change.
pub const FORMAT_VERSION: &str = "1";

/// Where the output is about: shown in headers and JSON documents.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Context {
    pub profile: String,
    pub account: String,
    pub region: String,
}

/// The command whose result a report shows: apply and destroy share the engine and the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Apply,
    Destroy,
}

impl Verb {
    /// The command's name, as typed and as JSON's `command`.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Apply => "apply",
            Verb::Destroy => "destroy",
        }
    }

    /// Capitalised, as the summary line begins.
    pub fn title(self) -> &'static str {
        match self {
            Verb::Apply => "Apply",
            Verb::Destroy => "Destroy",
        }
    }
}

/// Terraform's symbols, and `@` for adopting what exists untagged.
pub fn symbol(action: Action) -> &'static str {
    match action {
        Action::NoOp => " ",
        Action::Create => "+",
        Action::Update => "~",
        Action::Replace => "-/+",
        Action::Delete => "-",
        Action::Adopt => "@",
    }
}

pub fn phrase(action: Action) -> &'static str {
    match action {
        Action::NoOp => "is unchanged",
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
        Action::Adopt => "will be adopted (tagged as ctguard's) and updated in place",
    }
}

/// Present participle, for apply's progress.
pub fn doing_phrase(action: Action) -> &'static str {
    match action {
        Action::NoOp => "checking",
        Action::Create => "creating",
        Action::Update => "updating",
        Action::Replace => "replacing",
        Action::Delete => "destroying",
        Action::Adopt => "adopting",
    }
}

/// Past tense, for apply's progress.
pub fn done_phrase(action: Action) -> &'static str {
    match action {
        Action::NoOp => "unchanged",
        Action::Create => "created",
        Action::Update => "updated",
        Action::Replace => "replaced",
        Action::Delete => "destroyed",
        Action::Adopt => "adopted",
    }
}

/// JSON's action list, as Terraform writes it (a replacement is delete then create).
pub fn json_actions(action: Action) -> &'static [&'static str] {
    match action {
        Action::NoOp => &["no-op"],
        Action::Create => &["create"],
        Action::Update => &["update"],
        Action::Replace => &["delete", "create"],
        Action::Delete => &["delete"],
        Action::Adopt => &["adopt"],
    }
}

/// How one account came out of a run over several accounts (`--accounts`). The organization
/// summary counts these; each word and JSON status is spelled here only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountOutcome {
    /// plan: nothing to change.
    Unchanged,
    /// plan: changes pending.
    Changes,
    /// apply: converged; verify: matches the profile.
    Converged,
    /// verify: drift or a failing health check.
    Drifted,
    /// investigate: nothing at or above --fail-on.
    Quiet,
    /// investigate: an event at or above --fail-on.
    Findings,
    /// investigate: some lookups failed, and nothing at or above --fail-on in the rest.
    Partial,
    /// The account could not be planned, applied, verified or investigated; the reason.
    Failed(String),
}

impl AccountOutcome {
    /// The word in the summary, and the JSON `status`.
    pub fn word(&self) -> &'static str {
        match self {
            AccountOutcome::Unchanged => "unchanged",
            AccountOutcome::Changes => "changes",
            AccountOutcome::Converged => "converged",
            AccountOutcome::Drifted => "drifted",
            AccountOutcome::Quiet => "quiet",
            AccountOutcome::Findings => "findings",
            AccountOutcome::Partial => "partial",
            AccountOutcome::Failed(_) => "failed",
        }
    }
}

/// One account in an organization summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLine {
    pub id: String,
    /// Its name in the organization; may be empty.
    pub name: String,
    pub outcome: AccountOutcome,
}

impl AccountLine {
    /// `111122223333 (prod)`, or the id alone.
    pub fn label(&self) -> String {
        if self.name.is_empty() { self.id.clone() } else { format!("{} ({})", self.id, self.name) }
    }
}

/// The order the summary counts outcomes in, by command.
pub fn outcome_order(command: &str) -> &'static [&'static str] {
    match command {
        "plan" => &["unchanged", "changes", "failed"],
        "verify" => &["converged", "drifted", "failed"],
        "investigate" => &["quiet", "findings", "partial", "failed"],
        _ => &["converged", "failed"],
    }
}
