//! Versioned JSON documents. Field names are an API: add fields freely, rename or remove only
//! with a new FORMAT_VERSION.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::{Value, json};

use super::{AccountLine, AccountOutcome, Context, FORMAT_VERSION, Verb, json_actions, outcome_order};
use crate::detect::catalog::Catalog;
use crate::detect::replay::{Hit, Tally, Threshold};
use crate::engine::{Outcome, Report};
use crate::plan::{Change, Plan};
use crate::verdict::Verdict;

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
        "destructive": c.destructive,
    })
}

fn write(w: &mut dyn Write, doc: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, doc)?;
    writeln!(w)
}

pub fn plan(w: &mut dyn Write, ctx: &Context, plan: &Plan) -> io::Result<()> {
    write(w, &plan_doc(ctx, plan))
}

/// The plan document, also each account's part of an organization's.
pub fn plan_doc(ctx: &Context, plan: &Plan) -> Value {
    json!({
        "format_version": FORMAT_VERSION,
        "command": "plan",
        "profile": ctx.profile,
        "account": ctx.account,
        "region": ctx.region,
        "has_changes": plan.has_changes(),
        "summary": plan.summary(),
        "resource_changes": plan.changes.iter().map(change).collect::<Vec<_>>(),
    })
}

pub fn verify(w: &mut dyn Write, ctx: &Context, v: &Verdict) -> io::Result<()> {
    write(w, &verify_doc(ctx, v))
}

/// The verify document, also each account's part of an organization's.
pub fn verify_doc(ctx: &Context, v: &Verdict) -> Value {
    let drift: Vec<Value> = v.drifted().map(change).collect();
    let checks: Vec<Value> = v
        .checks
        .iter()
        .map(|c| {
            json!({"address": c.address.to_string(), "region": c.address.region, "name": c.check.name,
                   "ok": c.check.ok, "detail": c.check.detail, "waived": c.waived})
        })
        .collect();
    let waived_drift: Vec<Value> = v
        .waived_drift
        .iter()
        .map(|d| json!({"address": d.address.to_string(), "region": d.address.region, "field": d.field, "reason": d.reason}))
        .collect();
    let unused: Vec<Value> = v
        .unused
        .iter()
        .map(|u| json!({"resource": u.resource, "region": u.region, "field": u.field, "check": u.check}))
        .collect();
    json!({
        "format_version": FORMAT_VERSION,
        "command": "verify",
        "profile": ctx.profile,
        "account": ctx.account,
        "region": ctx.region,
        "status": if v.passed() { "ok" } else { "drift" },
        "resources": v.plan.changes.len(),
        "drift": drift,
        "checks": checks,
        "waived_drift": waived_drift,
        "unused_waivers": unused,
    })
}

pub fn apply_report(w: &mut dyn Write, ctx: &Context, report: &Report, verb: Verb) -> io::Result<()> {
    write(w, &apply_report_doc(ctx, report, verb))
}

/// The apply (or destroy) document, also each account's part of an organization's.
pub fn apply_report_doc(ctx: &Context, report: &Report, verb: Verb) -> Value {
    let results: Vec<Value> = report
        .outcomes
        .iter()
        .map(|(c, o)| {
            let (status, detail) = match o {
                Outcome::Done => ("done", Value::Null),
                Outcome::Failed(e) => ("failed", json!(e)),
                Outcome::Skipped(root) => ("skipped", json!(format!("{root} failed"))),
                Outcome::Withheld => ("withheld", json!("destructive: needs --allow-data-loss")),
            };
            json!({"address": c.address.to_string(), "actions": json_actions(c.action), "status": status, "error": detail})
        })
        .collect();
    json!({
        "format_version": FORMAT_VERSION,
        "command": verb.name(),
        "profile": ctx.profile,
        "account": ctx.account,
        "region": ctx.region,
        "status": if report.failed() { "failed" } else { "complete" },
        "results": results,
    })
}

/// A run over several accounts: each account's own document under `result` (absent when it
/// failed before one was made, with the reason under `error`), then the count per outcome.
pub fn organization(
    w: &mut dyn Write,
    command: &str,
    profile: &str,
    accounts: &[(AccountLine, Option<Value>)],
) -> io::Result<()> {
    let entries: Vec<Value> = accounts
        .iter()
        .map(|(line, result)| {
            let error = match &line.outcome {
                AccountOutcome::Failed(reason) => json!(reason),
                _ => Value::Null,
            };
            json!({"account": line.id, "name": line.name, "status": line.outcome.word(), "error": error, "result": result})
        })
        .collect();
    let mut summary = serde_json::Map::new();
    summary.insert("accounts".into(), json!(accounts.len()));
    for word in outcome_order(command) {
        summary.insert((*word).into(), json!(accounts.iter().filter(|(l, _)| l.outcome.word() == *word).count()));
    }
    let doc = json!({
        "format_version": FORMAT_VERSION,
        "command": command,
        "profile": profile,
        "accounts": entries,
        "summary": summary,
    });
    write(w, &doc)
}

/// The document an error becomes under `--format json`:
/// `{"format_version", "error": {"kind", "message", ...}}`. `kind` is one of `usage`,
/// `invalid-profile` (with `problems`), `credentials`, `aws` (with `code` and `aws_message`),
/// `input`, `interrupted` and `error`.
pub fn error(w: &mut dyn Write, e: &anyhow::Error) -> io::Result<()> {
    let (kind, extra) = e.chain().find_map(kind_of).unwrap_or(("error", Value::Null));
    error_document(w, kind, &format!("{e:#}"), Some(extra))
}

/// The kind of one error in the chain, with its extra fields, if it is a kind of its own.
fn kind_of(c: &(dyn std::error::Error + 'static)) -> Option<(&'static str, Value)> {
    // A marker around the error that says what it is: the kind is the wrapped error's.
    if let Some(unfit) = c.downcast_ref::<crate::commands::Unfit>() {
        return unfit.0.chain().find_map(kind_of);
    }
    if let Some(invalid) = c.downcast_ref::<crate::profile::Invalid>() {
        let problems: Vec<Value> = invalid
            .0
            .iter()
            .map(|p| json!({"file": p.file, "line": p.line, "key": p.key, "message": p.message}))
            .collect();
        return Some(("invalid-profile", json!({ "problems": problems })));
    }
    if c.is::<crate::commands::Interrupted>() {
        return Some(("interrupted", Value::Null));
    }
    if c.is::<crate::aws::credentials::CredentialsProblem>() {
        return Some(("credentials", Value::Null));
    }
    if c.is::<crate::detect::replay::InputProblems>() {
        return Some(("input", Value::Null));
    }
    let aws = c.downcast_ref::<crate::aws::error::AwsError>()?;
    Some(("aws", json!({"code": aws.code, "aws_message": aws.message})))
}

/// An error document from its parts; `extra`'s fields join `error`.
pub fn error_document(w: &mut dyn Write, kind: &str, message: &str, extra: Option<Value>) -> io::Result<()> {
    let mut error = json!({"kind": kind, "message": message});
    if let (Some(Value::Object(fields)), Value::Object(target)) = (extra, &mut error) {
        target.extend(fields);
    }
    write(w, &json!({"format_version": FORMAT_VERSION, "error": error}))?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Address, AttrDiff};

    #[test]
    fn errors_become_documents_with_a_kind() {
        let invalid = crate::profile::Invalid(vec![crate::profile::Problem {
            file: "p.toml".into(),
            line: Some(3),
            key: "trail.name".into(),
            message: "expected text".into(),
        }]);
        let mut out = Vec::new();
        error(&mut out, &anyhow::Error::new(invalid).context("loading")).unwrap();
        let doc: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["format_version"], "1");
        assert_eq!(doc["error"]["kind"], "invalid-profile");
        assert_eq!(doc["error"]["problems"][0]["line"], 3);
        assert!(doc["error"]["message"].as_str().unwrap().starts_with("loading: the profile is invalid"));

        // Marked as not fitting an account, it keeps its kind and its problems.
        let unfit = crate::commands::Unfit(anyhow::Error::new(crate::profile::Invalid(Vec::new())));
        let mut out = Vec::new();
        error(&mut out, &anyhow::Error::new(unfit)).unwrap();
        let doc: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["error"]["kind"], "invalid-profile");
        assert!(doc["error"]["message"].as_str().unwrap().starts_with("the profile is invalid"), "{doc}");

        let mut out = Vec::new();
        error(&mut out, &anyhow::anyhow!("something")).unwrap();
        let doc: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["error"], json!({"kind": "error", "message": "something"}));
    }

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
                destructive: vec!["removes Deny statement \"x\" from the trust policy".into()],
            }],
        };
        let mut out = Vec::new();
        super::plan(&mut out, &ctx, &plan).unwrap();
        let doc: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            doc,
            json!({
                "format_version": "1", "command": "plan", "profile": "p", "account": "123456789012", "region": "us-east-1",
                "has_changes": true, "summary": {"adopt": 0, "add": 1, "change": 0, "destroy": 1},
                "resource_changes": [{
                    "address": "iam_role.r", "kind": "iam_role", "name": "r", "region": "global",
                    "actions": ["delete", "create"],
                    "changes": [{"path": "path", "before": "/a/", "after": "/b/", "forces_replacement": true}],
                    "notes": [],
                    "conflict": null,
                    "destructive": ["removes Deny statement \"x\" from the trust policy"]
                }]
            })
        );
    }
}

/// `ctguard test` as one JSON document, written as the records stream past: the detections
/// (an alarm with its `threshold`), then each record that fired, with the detections that
/// raise an alert (`alerts`) apart from the alarm metrics it only counts towards (`counts`),
/// then the counts and the inputs that could not be replayed (`errors`). The document is
/// finished whatever the input held. Memory stays flat however many records fire.
pub struct TestStream<'w> {
    w: &'w mut dyn Write,
    first: bool,
}

impl<'w> TestStream<'w> {
    pub fn start(
        w: &'w mut dyn Write,
        profile: &str,
        catalog: &Catalog,
        thresholds: &[Option<Threshold>],
    ) -> io::Result<Self> {
        let detections: Vec<Value> = catalog
            .detections
            .iter()
            .zip(thresholds)
            .map(|(d, t)| {
                let mut doc =
                    json!({"id": d.id, "kind": d.kind, "severity": d.severity, "feeds": d.feed, "pattern": d.text});
                if let Some(t) = t {
                    doc["threshold"] = json!(t);
                }
                doc
            })
            .collect();
        write!(
            w,
            "{{\"format_version\":{},\"command\":\"test\",\"profile\":{},\"detections\":{},\"events\":[",
            Value::from(FORMAT_VERSION),
            Value::from(profile),
            Value::from(detections)
        )?;
        Ok(TestStream { w, first: true })
    }

    pub fn hit(&mut self, catalog: &Catalog, thresholds: &[Option<Threshold>], hit: &Hit) -> io::Result<()> {
        let mut doc = serde_json::to_value(hit).map_err(io::Error::other)?;
        let id = |i: &usize| catalog.detections.get(*i).map(|d| d.id.as_str());
        let counts_only =
            |i: &&usize| thresholds.get(**i).and_then(Option::as_ref).is_some_and(|t| !t.alerts_on_one_match);
        doc["fired"] = json!(hit.fired.iter().filter_map(id).collect::<Vec<_>>());
        doc["alerts"] = json!(hit.fired.iter().filter(|i| !counts_only(i)).filter_map(id).collect::<Vec<_>>());
        doc["counts"] = json!(hit.fired.iter().filter(counts_only).filter_map(id).collect::<Vec<_>>());
        if !std::mem::take(&mut self.first) {
            self.w.write_all(b",")?;
        }
        writeln!(self.w)?;
        serde_json::to_writer(&mut *self.w, &doc)?;
        Ok(())
    }

    pub fn finish(self, catalog: &Catalog, tally: &Tally, (alerted, counted): (u64, u64)) -> io::Result<()> {
        let fires: serde_json::Map<String, Value> =
            catalog.detections.iter().zip(&tally.fires).map(|(d, n)| (d.id.clone(), json!(n))).collect();
        let skipped: Vec<String> = tally.problems.iter().map(|p| format!("{}: {}", p.input, p.message)).collect();
        let summary = json!({
            "files": tally.files,
            "records": tally.records,
            "matched": tally.matched,
            "alerted": alerted,
            "counted_only": counted,
            "fires": fires,
            "skipped": skipped,
            "records_skipped": tally.records_skipped,
            "passed_over": tally.passed_over,
        });
        writeln!(self.w, "\n],\"summary\":{summary},\"errors\":{}}}", json!(tally.problems))?;
        self.w.flush()
    }
}
