//! Versioned JSON documents. Field names are an API: add fields freely, rename or remove only
//! with a new FORMAT_VERSION.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::{Value, json};

use super::{Context, FORMAT_VERSION, json_actions};
use crate::engine::{Outcome, Report};
use crate::plan::{Action, Address, Change, Plan};
use crate::resources::Check;

fn change(c: &Change) -> Value {
    json!({
        "address": c.address.to_string(),
        "kind": c.address.kind,
        "name": c.address.name,
        "region": c.address.region,
        "actions": json_actions(c.action),
        "changes": c.diffs,
        "notes": c.notes,
        "conflict": c.conflict,
    })
}

fn write(w: &mut dyn Write, doc: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, doc)?;
    writeln!(w)
}

pub fn plan(w: &mut dyn Write, ctx: &Context, plan: &Plan) -> io::Result<()> {
    let doc = json!({
        "format_version": FORMAT_VERSION,
        "command": "plan",
        "profile": ctx.profile,
        "account": ctx.account,
        "region": ctx.region,
        "has_changes": plan.has_changes(),
        "summary": plan.summary(),
        "resource_changes": plan.changes.iter().map(change).collect::<Vec<_>>(),
    });
    write(w, &doc)
}

pub fn verify(w: &mut dyn Write, ctx: &Context, plan: &Plan, checks: &[(Address, Check)]) -> io::Result<()> {
    let drift: Vec<Value> = plan.changes.iter().filter(|c| c.action != Action::NoOp).map(change).collect();
    let failing = checks.iter().any(|(_, c)| !c.ok);
    let status = if drift.is_empty() && !failing { "ok" } else { "drift" };
    let checks: Vec<Value> = checks
        .iter()
        .map(|(a, c)| json!({"address": a.to_string(), "name": c.name, "ok": c.ok, "detail": c.detail}))
        .collect();
    let doc = json!({
        "format_version": FORMAT_VERSION,
        "command": "verify",
        "profile": ctx.profile,
        "account": ctx.account,
        "region": ctx.region,
        "status": status,
        "resources": plan.changes.len(),
        "drift": drift,
        "checks": checks,
    });
    write(w, &doc)
}

pub fn apply_report(w: &mut dyn Write, ctx: &Context, report: &Report) -> io::Result<()> {
    let results: Vec<Value> = report
        .outcomes
        .iter()
        .map(|(c, o)| {
            let (status, detail) = match o {
                Outcome::Done => ("done", Value::Null),
                Outcome::Failed(e) => ("failed", json!(e)),
                Outcome::Skipped(root) => ("skipped", json!(format!("{root} failed"))),
            };
            json!({"address": c.address.to_string(), "actions": json_actions(c.action), "status": status, "error": detail})
        })
        .collect();
    let doc = json!({
        "format_version": FORMAT_VERSION,
        "command": "apply",
        "profile": ctx.profile,
        "account": ctx.account,
        "region": ctx.region,
        "status": if report.failed() { "failed" } else { "complete" },
        "results": results,
    });
    write(w, &doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::AttrDiff;

    #[test]
    fn plan_document_is_stable() {
        let ctx = Context { profile: "p".into(), account: "123456789012".into(), region: "us-east-1".into() };
        let plan = Plan {
            changes: vec![Change {
                address: Address { kind: "iam_role", name: "r".into(), region: "global".into() },
                action: Action::Replace,
                diffs: vec![AttrDiff {
                    path: "path".into(),
                    before: Some(json!("/a/")),
                    after: Some(json!("/b/")),
                    forces_replacement: true,
                }],
                notes: vec![],
                conflict: None,
            }],
        };
        let mut out = Vec::new();
        super::plan(&mut out, &ctx, &plan).unwrap();
        let doc: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            doc,
            json!({
                "format_version": "1", "command": "plan", "profile": "p", "account": "123456789012", "region": "us-east-1",
                "has_changes": true, "summary": {"add": 1, "change": 0, "destroy": 1},
                "resource_changes": [{
                    "address": "iam_role.r", "kind": "iam_role", "name": "r", "region": "global",
                    "actions": ["delete", "create"],
                    "changes": [{"path": "path", "before": "/a/", "after": "/b/", "forces_replacement": true}],
                    "notes": [],
                    "conflict": null
                }]
            })
        );
    }
}
