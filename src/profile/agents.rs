//! The `[agents]` part of a profile: who the AI agents are, by any of several signals.

use super::types::{AgentsDoc, StringOrList};
use super::vars::Vars;
use super::{Resolver, Runtime};
use crate::detect::agents::{self, Agents, Kind, Signal};

impl Resolver<'_> {
    /// The declared signals, each value checked: an empty pattern, one that matches everyone
    /// and one that can never match are problems that name `agents.<key>[i]`.
    pub(super) fn agents(&mut self, doc: &AgentsDoc, runtime: &Runtime, vars: &Vars) -> Agents {
        let lists: [(Kind, &StringOrList); 6] = [
            (Kind::Roles, &doc.roles),
            (Kind::SessionNames, &doc.session_names),
            (Kind::SourceIdentities, &doc.source_identities),
            (Kind::Users, &doc.users),
            (Kind::SsoPermissionSets, &doc.sso_permission_sets),
            (Kind::UserAgents, &doc.user_agents),
        ];
        let mut signals = Vec::new();
        for (kind, raw) in lists {
            let key = format!("agents.{}", kind.key());
            for (i, pattern) in self.list(&key, raw, vars).into_iter().enumerate() {
                match agents::check(kind, &pattern) {
                    Ok(()) => signals.push(Signal { kind, pattern }),
                    Err(why) => self.problem(&format!("{key}[{i}]"), why),
                }
            }
        }
        Agents { signals, accounts: vec![runtime.account_id.clone()], partition: runtime.partition.clone() }
    }
}
