//! verify as SARIF 2.1.0, for code-scanning dashboards: one rule per kind of finding (a
//! resource kind's drift, a resource kind's health checks), one result per drifted resource
//! and per failing check, each with a logical location naming the resource's address. A
//! waived finding is a result with an external suppression whose justification is the reason.

use std::collections::BTreeSet;
use std::io::{self, Write};

use serde_json::{Value, json};

use super::Context;
use crate::plan::{Action, Address, Change};
use crate::verdict::Verdict;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// What a rule is about: a kind's drift from the profile, or its health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Finding {
    Drift,
    Health,
}

fn rule_id(finding: Finding, kind: &str) -> String {
    match finding {
        Finding::Drift => format!("ctguard/drift/{kind}"),
        Finding::Health => format!("ctguard/health/{kind}"),
    }
}

fn rule(finding: Finding, kind: &str) -> Value {
    let (short, full) = match finding {
        Finding::Drift => (
            format!("{kind} matches the profile"),
            format!("Every {kind} the profile declares exists and has the settings it declares."),
        ),
        Finding::Health => (
            format!("{kind} is healthy"),
            format!("Every health check of a {kind} passes (delivery, confirmation, recording, compliance)."),
        ),
    };
    json!({
        "id": rule_id(finding, kind),
        "name": format!("{}{}", if finding == Finding::Drift { "Drift" } else { "Health" }, camel(kind)),
        "shortDescription": { "text": short },
        "fullDescription": { "text": full },
        "defaultConfiguration": { "level": "error" },
    })
}

/// `s3_bucket` -> `S3Bucket`, for a rule's readable name.
fn camel(kind: &str) -> String {
    kind.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

fn drift_message(c: &Change) -> String {
    let fields: Vec<&str> = c.diffs.iter().map(|d| d.path.as_str()).collect();
    let what = match c.action {
        Action::Create => "is missing".to_string(),
        Action::Delete => "is owned by the profile but no longer declared in it".to_string(),
        Action::Replace => format!("has drifted and must be replaced: {}", fields.join(", ")),
        _ => format!("has drifted: {}", fields.join(", ")),
    };
    format!("{} ({}) {what}", c.address, c.address.region)
}

/// Where a finding is: the resource, and the profile that declares it.
fn locations(address: &Address, profile_file: &str) -> Value {
    json!([{
        "physicalLocation": { "artifactLocation": { "uri": profile_file } },
        "logicalLocations": [{
            "name": address.to_string(),
            "fullyQualifiedName": format!("{}/{}", address.region, address),
            "kind": "resource",
        }],
    }])
}

struct Rules(Vec<(Finding, String)>);

impl Rules {
    fn index(&self, finding: Finding, kind: &str) -> usize {
        self.0.iter().position(|(f, k)| *f == finding && k == kind).expect("every finding's rule is listed")
    }
}

/// Writes the SARIF log. `profile_file` is the profile's path, the artifact every result
/// points at (a relative path as given, or `profiles/NAME.toml` for a built-in profile).
pub fn verify(w: &mut dyn Write, ctx: &Context, v: &Verdict, profile_file: &str) -> io::Result<()> {
    let mut kinds: BTreeSet<(Finding, String)> = BTreeSet::new();
    kinds.extend(v.plan.changes.iter().map(|c| (Finding::Drift, c.address.kind.to_string())));
    kinds.extend(v.waived_drift.iter().map(|d| (Finding::Drift, d.address.kind.to_string())));
    kinds.extend(v.checks.iter().map(|c| (Finding::Health, c.address.kind.to_string())));
    let rules = Rules(kinds.into_iter().collect());

    let result = |finding: Finding, address: &Address, id: &str, message: String, waived: Option<&str>| {
        let mut r = json!({
            "ruleId": rule_id(finding, address.kind),
            "ruleIndex": rules.index(finding, address.kind),
            "level": "error",
            "message": { "text": message },
            "locations": locations(address, profile_file),
            "partialFingerprints": { "ctguardFinding/v1": format!("{}/{}/{id}", address.region, address) },
        });
        if let Some(reason) = waived {
            r["suppressions"] = json!([{ "kind": "external", "justification": reason }]);
        }
        r
    };
    let mut results: Vec<Value> = Vec::new();
    for c in v.drifted() {
        results.push(result(Finding::Drift, &c.address, "drift", drift_message(c), None));
    }
    for d in &v.waived_drift {
        let message = format!("{} ({}) has drifted: {}", d.address, d.address.region, d.field);
        results.push(result(Finding::Drift, &d.address, &format!("drift/{}", d.field), message, Some(&d.reason)));
    }
    for c in v.checks.iter().filter(|c| !c.check.ok) {
        let mut message = format!("{} ({}): {} fails", c.address, c.address.region, c.check.name);
        if !c.check.detail.is_empty() {
            message.push_str(&format!(": {}", c.check.detail));
        }
        results.push(result(Finding::Health, &c.address, &c.check.name, message, c.waived.as_deref()));
    }

    let doc = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "ctguard",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules.0.iter().map(|(f, k)| rule(*f, k)).collect::<Vec<_>>(),
            }},
            "invocations": [{ "executionSuccessful": true }],
            "results": results,
            "properties": { "profile": ctx.profile, "account": ctx.account, "region": ctx.region },
        }],
    });
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{AttrDiff, Plan};
    use crate::profile::Waiver;
    use crate::resources::Check;
    use crate::verdict::judge;

    #[test]
    fn one_rule_per_kind_of_finding_one_result_per_finding() {
        let address = |kind, name: &str| Address { kind, name: name.into(), region: "us-east-1".into() };
        let change = |kind, action, path: &str| Change {
            address: address(kind, "audit"),
            action,
            diffs: vec![AttrDiff { path: path.into(), before: None, after: Some(json!(1)), forces_replacement: false }],
            notes: vec![],
            conflict: None,
            destructive: vec![],
        };
        let plan = Plan {
            changes: vec![
                change("s3_bucket", Action::Update, "versioning"),
                Change { diffs: vec![], ..change("iam_role", Action::NoOp, "") },
            ],
        };
        let checks = vec![
            (address("cloudtrail_trail", "t"), Check { name: "trail logs".into(), ok: true, detail: String::new() }),
            (address("sns_subscriptions", "s"), Check { name: "confirmed".into(), ok: false, detail: "none".into() }),
        ];
        let waiver = Waiver {
            resource: "sns_subscriptions.*".into(),
            region: None,
            field: None,
            check: Some("confirmed".into()),
            reason: "confirmed out of band".into(),
        };
        let verdict = judge(plan, checks, &[waiver]);
        let ctx = Context { profile: "p".into(), account: "123456789012".into(), region: "us-east-1".into() };
        let mut out = Vec::new();
        verify(&mut out, &ctx, &verdict, "profiles/p.toml").unwrap();
        let doc: Value = serde_json::from_slice(&out).unwrap();
        let run = &doc["runs"][0];
        let ids: Vec<&str> =
            run["tool"]["driver"]["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "ctguard/drift/iam_role",
                "ctguard/drift/s3_bucket",
                "ctguard/health/cloudtrail_trail",
                "ctguard/health/sns_subscriptions"
            ]
        );
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "{results:?}");
        assert_eq!(results[0]["ruleIndex"], 1);
        assert_eq!(results[0]["message"]["text"], "s3_bucket.audit (us-east-1) has drifted: versioning");
        assert_eq!(results[0]["locations"][0]["logicalLocations"][0]["name"], "s3_bucket.audit");
        assert_eq!(results[1]["suppressions"][0]["justification"], "confirmed out of band");
        assert_eq!(results[1]["message"]["text"], "sns_subscriptions.s (us-east-1): confirmed fails: none");
    }
}
