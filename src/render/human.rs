//! Human-readable text, in Terraform's shape.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use serde_json::Value;

use super::{Context, phrase, symbol};
use crate::detect::catalog::{Catalog, Feed, Kind};
use crate::detect::replay::{Hit, Tally};
use crate::engine::{Outcome, Report};
use crate::plan::{Action, AttrDiff, Change, Plan};
use crate::verdict::Verdict;

/// Paints text when colour is on.
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    pub color: bool,
}

impl Paint {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.color { format!("{}{text}{}", style.render(), style.render_reset()) } else { text.to_string() }
    }

    fn action(&self, action: Action, text: &str) -> String {
        let color = match action {
            Action::Create => AnsiColor::Green,
            Action::Update => AnsiColor::Yellow,
            Action::Replace | Action::Delete => AnsiColor::Red,
            Action::NoOp => return text.to_string(),
        };
        self.paint(Style::new().fg_color(Some(color.into())), text)
    }

    fn bold(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }

    fn ok(&self, ok: bool, text: &str) -> String {
        let color = if ok { AnsiColor::Green } else { AnsiColor::Red };
        self.paint(Style::new().fg_color(Some(color.into())), text)
    }
}

fn value(v: &Option<Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
    }
}

fn diff_line(w: &mut dyn Write, p: Paint, d: &AttrDiff) -> io::Result<()> {
    let (action, text) = match (&d.before, &d.after) {
        (None, _) => (Action::Create, format!("+ {} = {}", d.path, value(&d.after))),
        (_, None) => (Action::Delete, format!("- {} = {}", d.path, value(&d.before))),
        _ => (Action::Update, format!("~ {} = {} -> {}", d.path, value(&d.before), value(&d.after))),
    };
    let forces = if d.forces_replacement { " # forces replacement" } else { "" };
    writeln!(w, "      {}{}", p.action(action, &text), p.action(Action::Delete, forces))
}

fn change(w: &mut dyn Write, p: Paint, c: &Change) -> io::Result<()> {
    writeln!(w, "  {}", p.bold(&format!("# {} {}", c.address, phrase(c.action))))?;
    for note in &c.notes {
        writeln!(w, "  # ({note})")?;
    }
    writeln!(w, "  {} {} ({})", p.action(c.action, symbol(c.action)), c.address, c.address.region)?;
    for d in &c.diffs {
        diff_line(w, p, d)?;
    }
    writeln!(w)
}

pub fn plan(w: &mut dyn Write, p: Paint, ctx: &Context, plan: &Plan) -> io::Result<()> {
    if !plan.has_changes() {
        writeln!(
            w,
            "{} The account {} matches profile {} in {}.",
            p.bold("No changes."),
            ctx.account,
            ctx.profile,
            ctx.region
        )?;
        return unchanged_notes(w, plan);
    }
    writeln!(
        w,
        "ctguard will perform the following actions in account {} ({}), profile {}:\n",
        ctx.account, ctx.region, ctx.profile
    )?;
    for c in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
        change(w, p, c)?;
    }
    let s = plan.summary();
    writeln!(w, "{} {} to add, {} to change, {} to destroy.", p.bold("Plan:"), s.add, s.change, s.destroy)?;
    unchanged_notes(w, plan)
}

/// What a reader should know about resources that need no change (a subscription nobody has
/// confirmed, a recorder ctguard leaves alone).
fn unchanged_notes(w: &mut dyn Write, plan: &Plan) -> io::Result<()> {
    let notes: Vec<(&Change, &String)> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::NoOp)
        .flat_map(|c| c.notes.iter().map(move |n| (c, n)))
        .collect();
    if !notes.is_empty() {
        writeln!(w, "\nNotes:")?;
    }
    for (c, note) in notes {
        writeln!(w, "  {}: {note}", c.address)?;
    }
    Ok(())
}

pub fn verify(w: &mut dyn Write, p: Paint, ctx: &Context, v: &Verdict) -> io::Result<()> {
    let drifted: Vec<&Change> = v.drifted().collect();
    if !drifted.is_empty() {
        writeln!(w, "{}\n", p.bold("Drift: the account differs from the profile"))?;
        for c in &drifted {
            change(w, p, c)?;
        }
    }
    if !v.checks.is_empty() {
        writeln!(w, "{}", p.bold("Health checks:"))?;
        for c in &v.checks {
            let mark = match (&c.waived, c.check.ok) {
                (_, true) => p.ok(true, "ok    "),
                (Some(_), false) => p.bold("WAIVED"),
                (None, false) => p.ok(false, "FAIL  "),
            };
            writeln!(w, "  {mark} {}: {} ({})", c.address, c.check.name, c.check.detail)?;
            if let Some(reason) = &c.waived {
                writeln!(w, "         waived: {reason}")?;
            }
        }
        writeln!(w)?;
    }
    if !v.waived_drift.is_empty() {
        writeln!(w, "{}", p.bold("Waived drift:"))?;
        for d in &v.waived_drift {
            writeln!(w, "  {}: {} (waived: {})", d.address, d.field, d.reason)?;
        }
        writeln!(w)?;
    }
    for u in &v.unused {
        let what = u
            .field
            .as_ref()
            .map_or_else(|| format!("check {:?}", u.check.as_deref().unwrap_or("")), |f| format!("field {f:?}"));
        writeln!(w, "note: the waiver for {} {what} matches nothing: remove it, or fix its address", u.resource)?;
    }
    let failing = v.failing().count();
    if v.passed() {
        writeln!(
            w,
            "{} account {} matches profile {} in {} ({} resources, {} checks passed{}).",
            p.ok(true, "verify: OK"),
            ctx.account,
            ctx.profile,
            ctx.region,
            v.plan.changes.len(),
            v.checks.iter().filter(|c| c.check.ok).count(),
            match v.checks.iter().filter(|c| c.waived.is_some()).count() + v.waived_drift.len() {
                0 => String::new(),
                n => format!(", {n} waived"),
            }
        )
    } else {
        writeln!(
            w,
            "{} {} drifted resource(s), {} failing check(s).",
            p.ok(false, "verify: FAILED"),
            drifted.len(),
            failing
        )
    }
}

pub fn apply_report(w: &mut dyn Write, p: Paint, report: &Report) -> io::Result<()> {
    let count = |a: Action| report.outcomes.iter().filter(|(c, o)| c.action == a && *o == Outcome::Done).count();
    let replaced = count(Action::Replace);
    let (added, changed, destroyed) =
        (count(Action::Create) + replaced, count(Action::Update), count(Action::Delete) + replaced);
    if !report.failed() {
        return writeln!(
            w,
            "{} Resources: {added} added, {changed} changed, {destroyed} destroyed.",
            p.ok(true, "Apply complete!")
        );
    }
    let failed = report.outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Failed(_))).count();
    let skipped = report.outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Skipped(_))).count();
    writeln!(
        w,
        "{} {failed} failed, {skipped} skipped; {added} added, {changed} changed, {destroyed} destroyed.",
        p.ok(false, "Apply failed:")
    )?;
    for (c, o) in &report.outcomes {
        if let Outcome::Failed(e) = o {
            writeln!(w, "  {} {}: {e}", p.ok(false, "failed "), c.address)?;
        }
    }
    // Skipped resources, one line per failure that caused them.
    let mut roots: Vec<(&crate::plan::Address, usize)> = Vec::new();
    for (_, o) in &report.outcomes {
        if let Outcome::Skipped(root) = o {
            match roots.iter_mut().find(|(r, _)| *r == root) {
                Some((_, n)) => *n += 1,
                None => roots.push((root, 1)),
            }
        }
    }
    for (root, n) in roots {
        writeln!(w, "  {} {n} resource(s) that depend on {root}", p.ok(false, "skipped"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Address, Plan};
    use crate::resources::Check;
    use serde_json::json;

    fn ctx() -> Context {
        Context { profile: "ai-agent-guard".into(), account: "123456789012".into(), region: "us-east-1".into() }
    }

    fn addr(kind: &'static str, name: &str) -> Address {
        Address { kind, name: name.into(), region: "us-east-1".into() }
    }

    fn render(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn sample() -> Plan {
        Plan {
            changes: vec![
                Change {
                    address: addr("s3_bucket", "audit"),
                    action: Action::Create,
                    diffs: vec![AttrDiff {
                        path: "versioning".into(),
                        before: None,
                        after: Some(json!("Enabled")),
                        forces_replacement: false,
                    }],
                    notes: vec![],
                    conflict: None,
                },
                Change {
                    address: addr("cloudtrail_trail", "audit"),
                    action: Action::Update,
                    diffs: vec![AttrDiff {
                        path: "is_logging".into(),
                        before: Some(json!(false)),
                        after: Some(json!(true)),
                        forces_replacement: false,
                    }],
                    notes: vec!["exists and was not created by ctguard; apply adopts it and tags it".into()],
                    conflict: None,
                },
                Change {
                    address: addr("logs_log_group", "/ctguard"),
                    action: Action::NoOp,
                    diffs: vec![],
                    notes: vec![],
                    conflict: None,
                },
            ],
        }
    }

    #[test]
    fn plan_text_is_terraform_shaped() {
        let text = render(|w| plan(w, Paint { color: false }, &ctx(), &sample()));
        let expected = "\
ctguard will perform the following actions in account 123456789012 (us-east-1), profile ai-agent-guard:

  # s3_bucket.audit will be created
  + s3_bucket.audit (us-east-1)
      + versioning = \"Enabled\"

  # cloudtrail_trail.audit will be updated in place
  # (exists and was not created by ctguard; apply adopts it and tags it)
  ~ cloudtrail_trail.audit (us-east-1)
      ~ is_logging = false -> true

Plan: 1 to add, 1 to change, 0 to destroy.
";
        assert_eq!(text, expected);
    }

    #[test]
    fn empty_plan_says_no_changes() {
        let text = render(|w| plan(w, Paint { color: false }, &ctx(), &Plan { changes: vec![] }));
        assert_eq!(text, "No changes. The account 123456789012 matches profile ai-agent-guard in us-east-1.\n");
    }

    #[test]
    fn notes_on_unchanged_resources_are_shown() {
        let mut quiet = sample();
        quiet.changes.retain(|c| c.action == Action::NoOp);
        quiet.changes[0].notes.push("email:security@example.com is pending confirmation".into());
        let text = render(|w| plan(w, Paint { color: false }, &ctx(), &quiet));
        assert!(
            text.ends_with("\nNotes:\n  logs_log_group./ctguard: email:security@example.com is pending confirmation\n"),
            "{text}"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let plain = render(|w| plan(w, Paint { color: false }, &ctx(), &sample()));
        let coloured = render(|w| plan(w, Paint { color: true }, &ctx(), &sample()));
        assert!(!plain.contains('\u{1b}'));
        assert!(coloured.contains('\u{1b}'));
    }

    #[test]
    fn verify_lists_drift_and_failing_checks() {
        let checks = vec![(
            addr("cloudtrail_trail", "audit"),
            Check { name: "trail delivers log files to S3".into(), ok: false, detail: "AccessDenied".into() },
        )];
        let verdict = crate::verdict::judge(sample(), checks, &[]);
        let text = render(|w| verify(w, Paint { color: false }, &ctx(), &verdict));
        assert!(text.contains("~ is_logging = false -> true"));
        assert!(text.contains("FAIL   cloudtrail_trail.audit: trail delivers log files to S3 (AccessDenied)"));
        assert!(text.ends_with("verify: FAILED 2 drifted resource(s), 1 failing check(s).\n"));
    }
}

/// Where a fired detection sends the record, in words.
fn feed_text(feed: &Feed) -> String {
    let topic = |t: &Option<String>| {
        t.as_deref().map_or("no topic (the profile declares no alerts)".into(), |t| format!("topic {t}"))
    };
    match feed {
        Feed::Topic { topic: t } => format!("-> {}", topic(t)),
        Feed::Metric { namespace, metric, alarm, condition, topic: t } => {
            format!("-> +1 {namespace}/{metric} -> alarm {alarm} ({condition}) -> {}", topic(t))
        }
    }
}

/// The header of `ctguard test`.
pub fn test_header(w: &mut dyn Write, p: Paint, profile: &str, catalog: &Catalog) -> io::Result<()> {
    let rules = catalog.detections.iter().filter(|d| d.kind == Kind::Rule).count();
    let alarms = catalog.detections.len() - rules;
    writeln!(
        w,
        "{}",
        p.bold(&format!("Replaying CloudTrail records through profile {profile}: {rules} rules, {alarms} alarms."))
    )?;
    writeln!(w)
}

/// One record that fired, and each detection it fired.
pub fn test_hit(w: &mut dyn Write, p: Paint, catalog: &Catalog, hit: &Hit) -> io::Result<()> {
    let error = hit.error_code.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
    writeln!(
        w,
        "{} {} {} {}{error} by {}  [{}#{}]",
        if hit.event_time.is_empty() { "(no time)" } else { &hit.event_time },
        hit.region,
        hit.event_source,
        p.bold(&hit.event_name),
        if hit.principal.is_empty() { "(no principal)" } else { &hit.principal },
        hit.origin,
        hit.index
    )?;
    for d in hit.fired.iter().filter_map(|&i| catalog.detections.get(i)) {
        writeln!(
            w,
            "    {} {:<5} {:<44} {:<8} {}",
            p.ok(false, "!"),
            d.kind.as_str(),
            d.id,
            d.severity,
            feed_text(&d.feed)
        )?;
    }
    for m in &hit.signals {
        writeln!(w, "      agent: {} {:?} matched {} = {}", m.signal.key(), m.pattern, m.field, m.value)?;
    }
    Ok(())
}

/// The count per detection.
pub fn test_summary(w: &mut dyn Write, p: Paint, catalog: &Catalog, tally: &Tally) -> io::Result<()> {
    let from = match tally.files {
        0 => "stdin".to_string(),
        1 => "1 file".to_string(),
        n => format!("{n} files"),
    };
    writeln!(
        w,
        "\n{} {} records from {from}; {} fired at least one detection.",
        p.bold("Replayed"),
        tally.records,
        tally.matched
    )?;
    writeln!(w, "  {:<5} {:<44} {:<8} {:>9}", "kind", "detection", "severity", "fires")?;
    for (d, n) in catalog.detections.iter().zip(&tally.fires) {
        writeln!(w, "  {:<5} {:<44} {:<8} {:>9}", d.kind.as_str(), d.id, d.severity, n)?;
    }
    for s in &tally.skipped {
        writeln!(w, "  skipped {s}")?;
    }
    if tally.records_skipped > 0 {
        writeln!(w, "  {} records skipped in all (first few named above)", tally.records_skipped)?;
    }
    Ok(())
}
