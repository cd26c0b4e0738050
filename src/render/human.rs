//! Human-readable text, in Terraform's shape.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use super::{AccountLine, AccountOutcome, Context, Verb, outcome_order, phrase, symbol};
use crate::detect::catalog::{Catalog, Feed, Kind};
use crate::detect::replay::{Hit, Tally, Threshold};
use crate::engine::{Outcome, Report};
use crate::plan::{Action, Change, Plan};
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

    pub(crate) fn action(&self, action: Action, text: &str) -> String {
        let color = match action {
            Action::Create => AnsiColor::Green,
            Action::Update => AnsiColor::Yellow,
            Action::Replace | Action::Delete => AnsiColor::Red,
            Action::Adopt => AnsiColor::Cyan,
            Action::NoOp => return text.to_string(),
        };
        self.paint(Style::new().fg_color(Some(color.into())), text)
    }

    fn danger(&self, text: &str) -> String {
        self.paint(Style::new().bold().fg_color(Some(AnsiColor::Red.into())), text)
    }

    fn bold(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }

    pub fn warning(&self, text: &str) -> String {
        self.paint(Style::new().bold().fg_color(Some(AnsiColor::Yellow.into())), text)
    }

    pub fn success(&self, text: &str) -> String {
        self.paint(Style::new().bold().fg_color(Some(AnsiColor::Green.into())), text)
    }

    pub fn failure(&self, text: &str) -> String {
        self.paint(Style::new().bold().fg_color(Some(AnsiColor::Red.into())), text)
    }

    fn ok(&self, ok: bool, text: &str) -> String {
        let color = if ok { AnsiColor::Green } else { AnsiColor::Red };
        self.paint(Style::new().fg_color(Some(color.into())), text)
    }
}

/// The line above each account's part of a run over several accounts.
pub fn account_header(w: &mut dyn Write, p: Paint, line: &AccountLine) -> io::Result<()> {
    writeln!(w, "{}\n", p.bold(&format!("=== Account {} ===", line.label())))
}

/// The organization summary after every account's part: the count per outcome, then each
/// account with its outcome and, for a failed one, the reason.
pub fn organization_summary(w: &mut dyn Write, p: Paint, command: &str, accounts: &[AccountLine]) -> io::Result<()> {
    let counts: Vec<String> = outcome_order(command)
        .iter()
        .map(|word| format!("{} {word}", accounts.iter().filter(|a| a.outcome.word() == *word).count()))
        .collect();
    let n = accounts.len();
    writeln!(w, "{} {n} account{}: {}.", p.bold("Organization:"), if n == 1 { "" } else { "s" }, counts.join(", "))?;
    let width = accounts.iter().map(|a| a.label().len()).max().unwrap_or(0);
    for a in accounts {
        let word = match &a.outcome {
            AccountOutcome::Failed(reason) => format!("{}: {reason}", p.failure("failed")),
            AccountOutcome::Drifted | AccountOutcome::Findings => p.failure(a.outcome.word()),
            AccountOutcome::Partial => p.warning("partial"),
            AccountOutcome::Changes => p.warning("changes"),
            other => p.success(other.word()),
        };
        writeln!(w, "  {:width$}  {word}", a.label())?;
    }
    Ok(())
}

/// Changes to show, in plan order: one entry per resource, or with `expand` off one per set of
/// resources that differ only in their region (the same rule in sixteen regions reads once).
fn blocks<'a>(changes: impl Iterator<Item = &'a Change>, expand: bool) -> Vec<Vec<&'a Change>> {
    let mut blocks: Vec<Vec<&Change>> = Vec::new();
    for c in changes {
        let same = |b: &&mut Vec<&Change>| {
            let first = b[0];
            first.address.kind == c.address.kind
                && base_name(first) == base_name(c)
                && (first.action, &first.diffs, &first.notes, &first.conflict, &first.destructive)
                    == (c.action, &c.diffs, &c.notes, &c.conflict, &c.destructive)
        };
        match blocks.iter_mut().find(same) {
            Some(block) if !expand => block.push(c),
            _ => blocks.push(vec![c]),
        }
    }
    blocks
}

/// A regional resource's name without the region it starts with ("us-east-1/rule" is "rule").
fn base_name(c: &Change) -> &str {
    let name = c.address.name.as_str();
    name.strip_prefix(c.address.region.as_str()).and_then(|n| n.strip_prefix('/')).unwrap_or(name)
}

/// The address a block is shown under: for several regions, without any one region in it.
fn block_address(block: &[&Change]) -> String {
    match block {
        [one] => one.address.to_string(),
        many => format!("{}.{}", many[0].address.kind, base_name(many[0])),
    }
}

/// "us-east-1", or "16 regions: ap-northeast-1, ap-northeast-2, ...".
fn regions(block: &[&Change]) -> String {
    match block {
        [one] => one.address.region.clone(),
        many => {
            let names: Vec<&str> = many.iter().map(|c| c.address.region.as_str()).collect();
            format!("{} regions: {}", names.len(), names.join(", "))
        }
    }
}

fn change(w: &mut dyn Write, p: Paint, block: &[&Change]) -> io::Result<()> {
    let c = block[0];
    let where_ = if block.len() > 1 { format!(" in {} regions", block.len()) } else { String::new() };
    let address = block_address(block);
    writeln!(w, "  {}", p.bold(&format!("# {address} {}{where_}", phrase(c.action))))?;
    for note in &c.notes {
        writeln!(w, "  # ({note})")?;
    }
    for reason in &c.destructive {
        writeln!(w, "  {} {reason}", p.danger("! data loss:"))?;
    }
    writeln!(w, "  {} {address} ({})", p.action(c.action, symbol(c.action)), regions(block))?;
    super::attrs::write_diffs(w, p, &c.diffs, c.action, 6)?;
    writeln!(w)
}

/// How much of a plan to show.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanView {
    /// One block per resource, even when identical in several regions.
    pub expand: bool,
    /// Counts only.
    pub summary_only: bool,
}

/// How much of verify's result to show.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyView {
    pub expand: bool,
    /// Every passing check, one line each.
    pub passing: bool,
    /// Drift and failing checks only.
    pub only_failures: bool,
}

pub fn plan(w: &mut dyn Write, p: Paint, ctx: &Context, plan: &Plan, view: PlanView) -> io::Result<()> {
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
    if view.summary_only {
        return plan_counts(w, p, ctx, plan);
    }
    writeln!(
        w,
        "ctguard will perform the following actions in account {} ({}), profile {}:\n",
        ctx.account, ctx.region, ctx.profile
    )?;
    for block in blocks(plan.changes.iter().filter(|c| c.action != Action::NoOp), view.expand) {
        change(w, p, &block)?;
    }
    footer(w, p, plan)?;
    unchanged_notes(w, plan)
}

/// The Plan line, and how many changes lose audit data.
fn footer(w: &mut dyn Write, p: Paint, plan: &Plan) -> io::Result<()> {
    let s = plan.summary();
    // Like Terraform's imports, adoptions are counted only when there are some.
    let adopt = if s.adopt > 0 { format!("{} to adopt, ", s.adopt) } else { String::new() };
    writeln!(w, "{} {adopt}{} to add, {} to change, {} to destroy.", p.bold("Plan:"), s.add, s.change, s.destroy)?;
    let losing = plan.changes.iter().filter(|c| c.action != Action::NoOp && !c.destructive.is_empty()).count();
    if losing > 0 {
        writeln!(
            w,
            "{} {losing} change(s) delete or shorten audit data or coverage: apply makes them only with --allow-data-loss.",
            p.danger("Data loss:")
        )?;
    }
    Ok(())
}

/// `plan --summary`: how many resources of each kind each action touches, then the Plan line.
fn plan_counts(w: &mut dyn Write, p: Paint, ctx: &Context, plan: &Plan) -> io::Result<()> {
    writeln!(w, "Changes in account {} ({}), profile {}:\n", ctx.account, ctx.region, ctx.profile)?;
    let mut counts: Vec<(&str, Action, usize)> = Vec::new();
    for c in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
        match counts.iter_mut().find(|(k, a, _)| *k == c.address.kind && *a == c.action) {
            Some((_, _, n)) => *n += 1,
            None => counts.push((c.address.kind, c.action, 1)),
        }
    }
    let width = counts.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    for (kind, action, n) in counts {
        writeln!(w, "  {} {kind:<width$} {n:>4} {}", p.action(action, symbol(action)), phrase(action))?;
    }
    writeln!(w)?;
    footer(w, p, plan)
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

pub fn verify(w: &mut dyn Write, p: Paint, ctx: &Context, v: &Verdict, view: VerifyView) -> io::Result<()> {
    let drifted: Vec<&Change> = v.drifted().collect();
    if !drifted.is_empty() {
        writeln!(w, "{}\n", p.bold("Drift: the account differs from the profile"))?;
        for block in blocks(drifted.iter().copied(), view.expand) {
            change(w, p, &block)?;
        }
    }
    // Failing checks always; waived ones unless only failures are asked for; passing ones
    // with -v. The verdict line below counts them all.
    let shown: Vec<_> = v
        .checks
        .iter()
        .filter(|c| match (c.check.ok, &c.waived) {
            (true, _) => view.passing,
            (false, Some(_)) => !view.only_failures,
            (false, None) => true,
        })
        .collect();
    if !shown.is_empty() {
        writeln!(w, "{}", p.bold("Health checks:"))?;
        for c in shown {
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
    if view.only_failures {
        return verdict_line(w, p, ctx, v, drifted.len());
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
    verdict_line(w, p, ctx, v, drifted.len())
}

/// The last line of verify: the verdict and its counts.
fn verdict_line(w: &mut dyn Write, p: Paint, ctx: &Context, v: &Verdict, drifted: usize) -> io::Result<()> {
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
            "{} {} drifted resource(s), {} failing check(s); {} checks passed.",
            p.ok(false, "verify: FAILED"),
            drifted,
            failing,
            v.checks.iter().filter(|c| c.check.ok).count()
        )
    }
}

pub fn apply_report(w: &mut dyn Write, p: Paint, report: &Report, verb: Verb) -> io::Result<()> {
    let count = |a: Action| report.outcomes.iter().filter(|(c, o)| c.action == a && *o == Outcome::Done).count();
    let replaced = count(Action::Replace);
    let (added, changed, destroyed) =
        (count(Action::Create) + replaced, count(Action::Update), count(Action::Delete) + replaced);
    let adopted = match count(Action::Adopt) {
        0 => String::new(),
        n => format!("{n} adopted, "),
    };
    if !report.failed() {
        let title = format!("{} complete!", verb.title());
        match verb {
            // Terraform's destroy counts only what it destroyed.
            Verb::Destroy => writeln!(w, "{} Resources: {destroyed} destroyed.", p.ok(true, &title))?,
            Verb::Apply => writeln!(
                w,
                "{} Resources: {adopted}{added} added, {changed} changed, {destroyed} destroyed.",
                p.ok(true, &title)
            )?,
        }
        return withheld(w, p, report, verb);
    }
    let failed = report.outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Failed(_))).count();
    let skipped = report.outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Skipped(_))).count();
    writeln!(
        w,
        "{} {failed} failed, {skipped} skipped; {adopted}{added} added, {changed} changed, {destroyed} destroyed.",
        p.ok(false, &format!("{} failed:", verb.title()))
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
    withheld(w, p, report, verb)
}

/// Destructive deletes left undone for want of --allow-data-loss.
fn withheld(w: &mut dyn Write, p: Paint, report: &Report, verb: Verb) -> io::Result<()> {
    for (c, _) in report.outcomes.iter().filter(|(_, o)| *o == Outcome::Withheld) {
        writeln!(
            w,
            "  {} {}: {}; {} --allow-data-loss deletes it",
            p.bold("left in place"),
            c.address,
            c.destructive.join("; "),
            verb.name()
        )?;
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Address, AttrDiff, Plan};
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
                    destructive: vec![],
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
                    notes: vec![],
                    conflict: None,
                    destructive: vec![],
                },
                Change {
                    address: addr("logs_log_group", "/ctguard"),
                    action: Action::NoOp,
                    diffs: vec![],
                    notes: vec![],
                    conflict: None,
                    destructive: vec![],
                },
            ],
        }
    }

    #[test]
    fn plan_text_is_terraform_shaped() {
        let text = render(|w| plan(w, Paint { color: false }, &ctx(), &sample(), PlanView::default()));
        let expected = "\
ctguard will perform the following actions in account 123456789012 (us-east-1), profile ai-agent-guard:

  # s3_bucket.audit will be created
  + s3_bucket.audit (us-east-1)
      + versioning = \"Enabled\"

  # cloudtrail_trail.audit will be updated in place
  ~ cloudtrail_trail.audit (us-east-1)
      ~ is_logging = false -> true

Plan: 1 to add, 1 to change, 0 to destroy.
";
        assert_eq!(text, expected);
    }

    #[test]
    fn adoption_and_data_loss_have_their_own_marks_and_counts() {
        let mut plan = sample();
        plan.changes[1].action = Action::Adopt;
        plan.changes[1].notes.push("exists and was not created by ctguard".into());
        plan.changes.push(Change {
            address: addr("logs_log_group", "/trail"),
            action: Action::Update,
            diffs: vec![AttrDiff {
                path: "retention_in_days".into(),
                before: None,
                after: Some(json!(365)),
                forces_replacement: false,
            }],
            notes: vec![],
            conflict: None,
            destructive: vec!["retention goes from for ever to 365 days: older data is deleted".into()],
        });
        let text = render(|w| super::plan(w, Paint { color: false }, &ctx(), &plan, PlanView::default()));
        assert!(
            text.contains(
                "  # cloudtrail_trail.audit will be adopted (tagged as ctguard's) and updated in place\n  \
                 # (exists and was not created by ctguard)\n  @ cloudtrail_trail.audit (us-east-1)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  # logs_log_group./trail will be updated in place\n  ! data loss: retention goes from for ever to \
                 365 days: older data is deleted\n  ~ logs_log_group./trail (us-east-1)\n"
            ),
            "{text}"
        );
        assert!(text.contains("\nPlan: 1 to adopt, 1 to add, 1 to change, 0 to destroy.\n"), "{text}");
        assert!(text.contains(
            "Data loss: 1 change(s) delete or shorten audit data or coverage: apply makes them only with --allow-data-loss."
        ));
    }

    #[test]
    fn apply_report_counts_adoptions_and_names_what_was_left_in_place() {
        let plan = sample();
        let mut adopted = plan.changes[1].clone();
        adopted.action = Action::Adopt;
        let mut old = plan.changes[1].clone();
        old.action = Action::Delete;
        old.address.name = "old".into();
        old.destructive = vec!["deletes the trail".into()];
        let report = Report { outcomes: vec![(adopted, Outcome::Done), (old, Outcome::Withheld)] };
        let text = render(|w| apply_report(w, Paint { color: false }, &report, Verb::Apply));
        assert_eq!(
            text,
            "Apply complete! Resources: 1 adopted, 0 added, 0 changed, 0 destroyed.\n  left in place \
             cloudtrail_trail.old: deletes the trail; apply --allow-data-loss deletes it\n"
        );
    }

    #[test]
    fn empty_plan_says_no_changes() {
        let text = render(|w| plan(w, Paint { color: false }, &ctx(), &Plan { changes: vec![] }, PlanView::default()));
        assert_eq!(text, "No changes. The account 123456789012 matches profile ai-agent-guard in us-east-1.\n");
    }

    #[test]
    fn notes_on_unchanged_resources_are_shown() {
        let mut quiet = sample();
        quiet.changes.retain(|c| c.action == Action::NoOp);
        quiet.changes[0].notes.push("email:security@example.com is pending confirmation".into());
        let text = render(|w| plan(w, Paint { color: false }, &ctx(), &quiet, PlanView::default()));
        assert!(
            text.ends_with("\nNotes:\n  logs_log_group./ctguard: email:security@example.com is pending confirmation\n"),
            "{text}"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let plain = render(|w| plan(w, Paint { color: false }, &ctx(), &sample(), PlanView::default()));
        let coloured = render(|w| plan(w, Paint { color: true }, &ctx(), &sample(), PlanView::default()));
        assert!(!plain.contains('\u{1b}'));
        assert!(coloured.contains('\u{1b}'));
    }

    #[test]
    fn verify_shows_passing_checks_with_v_and_leaves_out_waived_ones_with_only_failures() {
        let check = |name: &str, ok: bool| {
            (addr("cloudtrail_trail", "audit"), Check { name: name.into(), ok, detail: "d".into() })
        };
        let waiver = crate::profile::Waiver {
            resource: "cloudtrail_trail.audit".into(),
            region: None,
            field: None,
            check: Some("waived one".into()),
            reason: "tracked in SEC-1".into(),
        };
        let quiet = Plan { changes: vec![] };
        let checks = vec![check("passing one", true), check("failing one", false), check("waived one", false)];
        let verdict = crate::verdict::judge(quiet, checks, &[waiver]);
        let show = |view| render(|w| verify(w, Paint { color: false }, &ctx(), &verdict, view));
        let default = show(VerifyView::default());
        assert!(!default.contains("passing one") && default.contains("failing one") && default.contains("waived one"));
        assert!(default.ends_with("1 failing check(s); 1 checks passed.\n"), "{default}");
        let all = show(VerifyView { passing: true, ..VerifyView::default() });
        assert!(all.contains("ok     cloudtrail_trail.audit: passing one"), "{all}");
        let failures = show(VerifyView { only_failures: true, ..VerifyView::default() });
        assert!(failures.contains("failing one") && !failures.contains("waived one"), "{failures}");
    }

    #[test]
    fn verify_lists_drift_and_failing_checks() {
        let checks = vec![(
            addr("cloudtrail_trail", "audit"),
            Check { name: "trail delivers log files to S3".into(), ok: false, detail: "AccessDenied".into() },
        )];
        let verdict = crate::verdict::judge(sample(), checks, &[]);
        let text = render(|w| verify(w, Paint { color: false }, &ctx(), &verdict, VerifyView::default()));
        assert!(text.contains("~ is_logging = false -> true"));
        assert!(text.contains("FAIL   cloudtrail_trail.audit: trail delivers log files to S3 (AccessDenied)"));
        assert!(
            text.ends_with("verify: FAILED 2 drifted resource(s), 1 failing check(s); 0 checks passed.\n"),
            "{text}"
        );
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

/// What a count-only match does: one more towards an alarm that needs more.
fn count_text(feed: &Feed, threshold: &Threshold) -> String {
    match feed {
        Feed::Metric { namespace, metric, alarm, .. } => {
            format!("+1 {namespace}/{metric}; alarm {alarm} fires at {}", threshold.condition())
        }
        Feed::Topic { .. } => feed_text(feed),
    }
}

/// Whether detection `i` raises an alert on one match (every rule does; an alarm only when a
/// single count crosses its threshold).
fn alerts(thresholds: &[Option<Threshold>], i: usize) -> bool {
    thresholds.get(i).and_then(Option::as_ref).is_none_or(|t| t.alerts_on_one_match)
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

/// One record that fired: the alerts it raises (`!`), then the alarm metrics it only counts
/// towards (`+`). A record that only counts is listed with -v.
pub fn test_hit(
    w: &mut dyn Write,
    p: Paint,
    catalog: &Catalog,
    thresholds: &[Option<Threshold>],
    hit: &Hit,
    verbose: bool,
) -> io::Result<()> {
    let alerting = hit.fired.iter().any(|&i| alerts(thresholds, i));
    if !alerting && !verbose {
        return Ok(());
    }
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
    for (i, d) in hit.fired.iter().filter_map(|&i| Some((i, catalog.detections.get(i)?))) {
        if alerts(thresholds, i) {
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
    }
    for (i, d) in hit.fired.iter().filter_map(|&i| Some((i, catalog.detections.get(i)?))) {
        if let Some(t) = thresholds.get(i).and_then(Option::as_ref).filter(|t| !t.alerts_on_one_match) {
            writeln!(w, "    + count {:<44} {:<8} {}", d.id, d.severity, count_text(&d.feed, t))?;
        }
    }
    for m in &hit.signals {
        writeln!(w, "      agent: {} {:?} matched {} = {}", m.signal.key(), m.pattern, m.field, m.value)?;
    }
    Ok(())
}

/// The counts: alerts per detection, then matches that only count towards an alarm, with the
/// alarm's threshold, then the inputs that could not be replayed.
pub fn test_summary(
    w: &mut dyn Write,
    p: Paint,
    catalog: &Catalog,
    thresholds: &[Option<Threshold>],
    tally: &Tally,
    (alerted, counted): (u64, u64),
) -> io::Result<()> {
    let from = match tally.files {
        0 => "stdin".to_string(),
        1 => "1 file".to_string(),
        n => format!("{n} files"),
    };
    writeln!(
        w,
        "\n{} {} records from {from}: {alerted} raised an alert, {counted} only counted towards an alarm.",
        p.bold("Replayed"),
        tally.records,
    )?;
    writeln!(w, "  {:<5} {:<44} {:<8} {:>9}", "alert", "detection", "severity", "records")?;
    for (i, (d, n)) in catalog.detections.iter().zip(&tally.fires).enumerate() {
        if alerts(thresholds, i) {
            writeln!(w, "  {:<5} {:<44} {:<8} {:>9}", d.kind.as_str(), d.id, d.severity, n)?;
        }
    }
    let counting: Vec<(usize, &Threshold)> = thresholds
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Some((i, t.as_ref()?)))
        .filter(|(_, t)| !t.alerts_on_one_match)
        .collect();
    if !counting.is_empty() {
        writeln!(w, "\n  {:<5} {:<44} {:<8} {:>9}  alarm fires at", "count", "alarm", "severity", "records")?;
        for (i, t) in counting {
            let d = &catalog.detections[i];
            writeln!(w, "  {:<5} {:<44} {:<8} {:>9}  {}", "alarm", d.id, d.severity, tally.fires[i], t.condition())?;
        }
    }
    if !tally.problems.is_empty() {
        writeln!(w, "\n{}", p.failure("Could not replay:"))?;
        for problem in &tally.problems {
            writeln!(w, "  {}: {}", problem.input, problem.message)?;
        }
    }
    if tally.records_skipped > 0 {
        writeln!(w, "\nPassed over:")?;
        for record in &tally.passed_over {
            writeln!(w, "  {record}")?;
        }
        writeln!(w, "  {} records passed over in all (the first few are named)", tally.records_skipped)?;
    }
    Ok(())
}

/// Renderers on hand-built plans, against the files under tests/golden/ (rewrite them with
/// CTGUARD_UPDATE_GOLDEN=1 after a deliberate change, and read the diff).
#[cfg(test)]
mod golden {
    use super::*;
    use crate::plan::{Address, AttrDiff};
    use serde_json::json;

    fn check(name: &str, text: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
        if std::env::var_os("CTGUARD_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, text).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(text, expected, "{name} differs from its golden file; the rendering is:\n{text}");
    }

    fn diff(path: &str, before: Option<serde_json::Value>, after: Option<serde_json::Value>) -> AttrDiff {
        AttrDiff { path: path.into(), before, after, forces_replacement: false }
    }

    fn rule(region: &str, action: Action, diffs: Vec<AttrDiff>) -> Change {
        let address = Address {
            kind: "events_rule",
            name: format!("{region}/ctguard-destructive-actions"),
            region: region.into(),
        };
        Change { address, action, diffs, notes: vec![], conflict: None, destructive: vec![] }
    }

    fn render(plan: &Plan, view: PlanView) -> String {
        let ctx =
            Context { profile: "ai-agent-guard".into(), account: "123456789012".into(), region: "us-east-1".into() };
        let mut out = Vec::new();
        super::plan(&mut out, Paint { color: false }, &ctx, plan, view).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The same rule created in four regions, one of which differs (the home region's target).
    fn regional_plan() -> Plan {
        let pattern = json!({"source": ["aws.ec2"], "detail": {"eventName": ["TerminateInstances", "DeleteVolume"]}});
        let create = |region: &str, target: &str| {
            rule(
                region,
                Action::Create,
                vec![
                    diff("pattern", None, Some(pattern.clone())),
                    diff("state", None, Some(json!("ENABLED"))),
                    diff("targets.ctguard", None, Some(json!({"arn": target}))),
                ],
            )
        };
        let bus = "arn:aws:events:us-east-1:123456789012:event-bus/default";
        Plan {
            changes: vec![
                create("us-east-1", "arn:aws:sns:us-east-1:123456789012:ctguard-alerts"),
                create("eu-west-1", bus),
                create("us-east-2", bus),
                create("us-west-2", bus),
            ],
        }
    }

    #[test]
    fn identical_resources_in_several_regions_collapse_into_one_block() {
        check("plan-collapsed.txt", &render(&regional_plan(), PlanView::default()));
        let expanded = render(&regional_plan(), PlanView { expand: true, summary_only: false });
        assert_eq!(expanded.matches("will be created").count(), 4);
        check("plan-summary.txt", &render(&regional_plan(), PlanView { expand: false, summary_only: true }));
    }

    #[test]
    fn json_documents_render_as_nested_diffs_marking_only_what_changed() {
        let statement = |sid: &str, effect: &str| json!({"Sid": sid, "Effect": effect, "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject", "Resource": "arn:aws:s3:::audit/AWSLogs/123456789012/*"});
        let before_pattern = json!(["TerminateInstances", "DeleteVolume", "DeleteVpc"]);
        let after_pattern = json!(["TerminateInstances", "DeleteVolume", "DeleteDBInstance"]);
        let bucket = Change {
            address: Address { kind: "s3_bucket", name: "audit".into(), region: "us-east-1".into() },
            action: Action::Update,
            diffs: vec![
                diff(
                    "policy.Statement[AWSCloudTrailWrite].Condition.StringEquals.aws:SourceArn",
                    Some(json!("arn:aws:cloudtrail:us-east-1:123456789012:trail/old")),
                    Some(json!("arn:aws:cloudtrail:us-east-1:123456789012:trail/audit")),
                ),
                diff(
                    "policy.Statement[DenyInsecureTransport]",
                    None,
                    Some(
                        json!({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::audit", "arn:aws:s3:::audit/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
                    ),
                ),
                diff("policy.Statement[Legacy]", Some(statement("Legacy", "Allow")), None),
                diff("versioning", Some(json!("Suspended")), Some(json!("Enabled"))),
            ],
            notes: vec![],
            conflict: None,
            destructive: vec![],
        };
        let rule = rule(
            "us-east-1",
            Action::Update,
            vec![diff("pattern.detail.eventName", Some(before_pattern), Some(after_pattern))],
        );
        check("plan-json-diff.txt", &render(&Plan { changes: vec![bucket, rule] }, PlanView::default()));
    }
}
