//! `ctguard agents trust-policy ROLE`: the trust policy that makes a role require a source
//! identity, so an agent's calls carry the `source_identities` signal through role chaining.

use serde_json::{Value, json};

use crate::cli::AgentsAction;
use crate::detect::agents::{Kind, check};
use crate::printer::Printer;
use crate::profile::{self, Runtime};

use super::Status;

pub fn run(action: &AgentsAction, printer: &Printer) -> anyhow::Result<Status> {
    let AgentsAction::TrustPolicy(args) = action;
    let loaded = profile::load(&args.profile)?;
    let overrides = profile::parse_overrides(&args.vars)?;
    let resolved = loaded.resolve(&Runtime::placeholder(loaded.home_region().unwrap_or("us-east-1")), &overrides)?;
    let patterns: Vec<String> = resolved
        .agents
        .iter()
        .flat_map(|a| &a.signals)
        .filter(|s| s.kind == Kind::SourceIdentities)
        .map(|s| s.pattern.clone())
        .collect();
    if patterns.is_empty() {
        anyhow::bail!(
            "profile {} declares no [agents] source_identities: add the pattern your agents will set \
             (for example source_identities = [\"agent-*\"]), so that the alerts recognise them",
            loaded.name()
        );
    }
    for p in &args.principals {
        if !p.starts_with("arn:") {
            anyhow::bail!("--principal {p:?}: expected an ARN, like arn:aws:iam::123456789012:role/agent-runner");
        }
    }
    if let Err(e) = check(Kind::Roles, &args.role).and(if args.role.contains('*') {
        Err("a role name, not a pattern".to_string())
    } else {
        Ok(())
    }) {
        anyhow::bail!("ROLE {:?}: {e}", args.role);
    }
    let doc = trust_policy(&patterns, &args.principals);
    printer.data(|w, _| writeln!(w, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default()))?;
    let covered = resolved.agents.iter().flat_map(|a| &a.signals).any(|s| {
        s.kind == Kind::Roles && globset::Glob::new(&s.pattern).is_ok_and(|g| g.compile_matcher().is_match(&args.role))
    });
    printer.status(&format!(
        "Merge these statements into the trust policy of {role}, then: aws iam update-assume-role-policy \
         --role-name {role} --policy-document file://trust.json. The agent runner must call AssumeRole with \
         SourceIdentity set (and hold sts:SetSourceIdentity in its own policy).{extra}",
        role = args.role,
        extra = if covered { "" } else { " Note: the profile's [agents] roles do not name this role; its sessions will be recognised by their source identity only." }
    ));
    Ok(Status::Success)
}

/// The Deny refuses any AssumeRole whose source identity is missing or matches none of the
/// patterns: with a negated operator (StringNotLike) a missing key makes the condition true
/// (IAM User Guide, "Condition operators"), so one statement covers both. It names only AWS
/// principals, so a service that assumes the role is not affected. The Allow, when principals
/// are given, lets them set a matching source identity (`sts:SetSourceIdentity`).
pub fn trust_policy(patterns: &[String], principals: &[String]) -> Value {
    let condition = json!({ "StringNotLike": { "sts:SourceIdentity": patterns } });
    let mut statements = vec![json!({
        "Sid": "RequireAgentSourceIdentity",
        "Effect": "Deny",
        "Principal": { "AWS": "*" },
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
        "Condition": condition,
    })];
    if !principals.is_empty() {
        statements.insert(
            0,
            json!({
                "Sid": "AgentRunnersAssumeWithSourceIdentity",
                "Effect": "Allow",
                "Principal": { "AWS": principals },
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                "Condition": { "StringLike": { "sts:SourceIdentity": patterns } },
            }),
        );
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deny_requires_a_matching_source_identity_and_the_allow_lets_runners_set_it() {
        let doc = trust_policy(&["agent-*".into()], &["arn:aws:iam::123456789012:role/agent-runner".into()]);
        let statements = doc["Statement"].as_array().unwrap();
        assert_eq!(statements[0]["Effect"], "Allow");
        assert_eq!(statements[0]["Condition"]["StringLike"]["sts:SourceIdentity"], json!(["agent-*"]));
        assert_eq!(statements[1]["Effect"], "Deny");
        assert_eq!(statements[1]["Condition"]["StringNotLike"]["sts:SourceIdentity"], json!(["agent-*"]));
        assert_eq!(trust_policy(&["agent-*".into()], &[])["Statement"].as_array().unwrap().len(), 1);
    }
}
