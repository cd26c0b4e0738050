//! verify and test as self-contained HTML pages (inline style, no script, no external asset),
//! for people who will not read a list of checks or of records. verify's page: the verdict and
//! its counts, a matrix of the detections by region coloured by state, each drifted field
//! before and after, the failing checks, and the waivers. test's page: the counts, and the
//! fires per detection over time as a heat map, with the detections that never fired and the
//! inputs that could not be replayed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use quick_xml::escape::escape;

use super::{Context, phrase};
use crate::detect::catalog::Catalog;
use crate::detect::replay::{Tally, Threshold};
use crate::detect::timeline::Timeline;
use crate::plan::{Action, Address};
use crate::resources::{alarm, config_rule, metric_filter, rule};
use crate::verdict::Verdict;

/// The kinds that detect something: the rows of the matrix.
const DETECTIONS: [&str; 4] = [rule::KIND, metric_filter::KIND, alarm::KIND, config_rule::KIND];

const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1b1f24; background: #fff; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
.verdict { display: inline-block; padding: .3em .8em; border-radius: 4px; font-weight: bold; color: #fff; }
.verdict.pass { background: #1a7f37; } .verdict.fail { background: #cf222e; }
.counts { display: flex; gap: 1.5em; list-style: none; padding: 0; }
.counts b { font-size: 1.6em; display: block; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
th, td { border: 1px solid #d0d7de; padding: .25em .6em; text-align: left; }
th { background: #f6f8fa; }
td.cell { text-align: center; min-width: 5.5em; }
.ok { background: #dafbe1; } .drift { background: #ffd8b5; } .failing { background: #ffcecb; }
.waived { background: #fff8c5; } .absent { background: #f6f8fa; color: #8c959f; }
code { font-size: 12px; word-break: break-all; }
#timeline th.time { writing-mode: vertical-rl; transform: rotate(180deg); font-weight: normal; white-space: nowrap; }
#timeline th.detection, #timeline td { white-space: nowrap; } td.heat { text-align: right; min-width: 1.6em; }
.wide { overflow-x: auto; }
.h0 { color: #d0d7de; } .h1 { background: #fff1e5; } .h2 { background: #ffd8b5; }
.h3 { background: #fb8f44; } .h4 { background: #bc4c00; color: #fff; }
";

/// The state of one detection in one region, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Failing,
    Drift,
    Waived,
    Ok,
}

impl State {
    fn class(self) -> &'static str {
        match self {
            State::Failing => "failing",
            State::Drift => "drift",
            State::Waived => "waived",
            State::Ok => "ok",
        }
    }

    fn label(self) -> &'static str {
        match self {
            State::Failing => "failing",
            State::Drift => "drifted",
            State::Waived => "waived",
            State::Ok => "ok",
        }
    }
}

fn states(v: &Verdict) -> BTreeMap<&Address, State> {
    fn worsen<'a>(states: &mut BTreeMap<&'a Address, State>, a: &'a Address, s: State) {
        let e = states.entry(a).or_insert(State::Ok);
        *e = (*e).min(s);
    }
    let mut states = BTreeMap::new();
    for c in &v.plan.changes {
        worsen(&mut states, &c.address, if c.action == Action::NoOp { State::Ok } else { State::Drift });
    }
    for d in &v.waived_drift {
        worsen(&mut states, &d.address, State::Waived);
    }
    for c in v.checks.iter().filter(|c| !c.check.ok) {
        worsen(&mut states, &c.address, if c.waived.is_some() { State::Waived } else { State::Failing });
    }
    states
}

fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    escape(text)
}

/// The page's head and its title as the first heading.
fn head(w: &mut dyn Write, title: &str) -> io::Result<()> {
    writeln!(w, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(w, "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>", esc(title))?;
    writeln!(w, "<h1>{}</h1>", esc(title))
}

/// The row of big numbers under the title: (id, label, count).
fn counts(w: &mut dyn Write, counts: &[(&str, &str, u64)]) -> io::Result<()> {
    writeln!(w, "<ul class=\"counts\">")?;
    for (id, label, n) in counts {
        writeln!(w, "<li><b id=\"count-{id}\">{n}</b>{label}</li>")?;
    }
    writeln!(w, "</ul>")
}

pub fn verify(w: &mut dyn Write, ctx: &Context, v: &Verdict) -> io::Result<()> {
    let title = format!("ctguard verify: profile {} in account {} ({})", ctx.profile, ctx.account, ctx.region);
    let drifted: Vec<_> = v.drifted().collect();
    let failing: Vec<_> = v.failing().collect();
    let waived_checks: Vec<_> = v.checks.iter().filter(|c| !c.check.ok && c.waived.is_some()).collect();
    head(w, &title)?;
    let (class, verdict) =
        if v.passed() { ("pass", "The account matches the profile") } else { ("fail", "Drift found") };
    writeln!(w, "<p id=\"verdict\" class=\"verdict {class}\">{verdict}</p>")?;
    counts(
        w,
        &[
            ("resources", "resources", v.plan.changes.len() as u64),
            ("drifted", "drifted", drifted.len() as u64),
            ("failing", "failing checks", failing.len() as u64),
            ("waived", "waived findings", (v.waived_drift.len() + waived_checks.len()) as u64),
        ],
    )?;
    matrix(w, v)?;

    writeln!(w, "<h2>Drift</h2>")?;
    if drifted.is_empty() {
        writeln!(w, "<p>None.</p>")?;
    }
    for c in &drifted {
        writeln!(w, "<h3>{} ({}) {}</h3>", esc(&c.address.to_string()), esc(&c.address.region), phrase(c.action))?;
        writeln!(w, "<table class=\"diff\"><tr><th>field</th><th>before</th><th>after</th></tr>")?;
        let show = |v: &Option<serde_json::Value>| v.as_ref().map_or("(absent)".into(), |v| v.to_string());
        for d in &c.diffs {
            writeln!(
                w,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                esc(&d.path),
                esc(&show(&d.before)),
                esc(&show(&d.after))
            )?;
        }
        writeln!(w, "</table>")?;
        for note in &c.notes {
            writeln!(w, "<p>note: {}</p>", esc(note))?;
        }
    }

    writeln!(w, "<h2>Failing checks</h2>")?;
    list(
        w,
        failing.iter().map(|c| format!("{} ({}): {}: {}", c.address, c.address.region, c.check.name, c.check.detail)),
    )?;
    writeln!(w, "<h2>Waivers</h2>")?;
    let waived = v
        .waived_drift
        .iter()
        .map(|d| format!("{} ({}) field {}: {}", d.address, d.address.region, d.field, d.reason))
        .chain(waived_checks.iter().map(|c| {
            format!("{} ({}): {}: {}", c.address, c.address.region, c.check.name, c.waived.as_deref().unwrap_or(""))
        }))
        .chain(v.unused.iter().map(|u| format!("unused waiver for {}: it matches nothing", u.resource)));
    list(w, waived)?;
    writeln!(w, "</body>\n</html>")
}

fn list(w: &mut dyn Write, items: impl Iterator<Item = String>) -> io::Result<()> {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        return writeln!(w, "<p>None.</p>");
    }
    writeln!(w, "<ul>")?;
    for item in items {
        writeln!(w, "<li>{}</li>", esc(&item))?;
    }
    writeln!(w, "</ul>")
}

/// Detections by region: one row per detection, one column per region it is declared in.
fn matrix(w: &mut dyn Write, v: &Verdict) -> io::Result<()> {
    let states = states(v);
    let detections: Vec<&&Address> = states.keys().filter(|a| DETECTIONS.contains(&a.kind)).collect();
    let regions: BTreeSet<&str> = detections.iter().map(|a| a.region.as_str()).collect();
    let mut rows: BTreeMap<(usize, String), BTreeMap<&str, State>> = BTreeMap::new();
    for a in &detections {
        let order = DETECTIONS.iter().position(|k| *k == a.kind).unwrap_or(0);
        rows.entry((order, a.to_string())).or_default().insert(a.region.as_str(), states[**a]);
    }
    writeln!(w, "<h2>Detections by region</h2>")?;
    write!(w, "<table id=\"matrix\">\n<tr><th>detection</th>")?;
    for r in &regions {
        write!(w, "<th>{}</th>", esc(r))?;
    }
    writeln!(w, "</tr>")?;
    for ((_, name), cells) in &rows {
        write!(w, "<tr><th>{}</th>", esc(name))?;
        for r in &regions {
            match cells.get(r) {
                Some(s) => write!(w, "<td class=\"cell {}\">{}</td>", s.class(), s.label())?,
                None => write!(w, "<td class=\"cell absent\">-</td>")?,
            }
        }
        writeln!(w, "</tr>")?;
    }
    writeln!(w, "</table>")
}

/// What a `ctguard test` run found, for its page.
pub struct TestReport<'a> {
    pub profile: &'a str,
    pub catalog: &'a Catalog,
    pub thresholds: &'a [Option<Threshold>],
    pub tally: &'a Tally,
    pub timeline: &'a Timeline,
    /// Records that raised an alert, and records that only counted towards an alarm.
    pub alerted: u64,
    pub counted: u64,
}

pub fn test(w: &mut dyn Write, r: &TestReport<'_>) -> io::Result<()> {
    let title = format!("ctguard test: profile {}", r.profile);
    let fired = r.tally.fires.iter().filter(|n| **n > 0).count();
    head(w, &title)?;
    counts(
        w,
        &[
            ("records", "records replayed", r.tally.records),
            ("alerted", "raised an alert", r.alerted),
            ("counted", "only counted towards an alarm", r.counted),
            ("fired", &format!("of {} detections fired", r.catalog.detections.len()), fired as u64),
            ("problems", "inputs not replayed", r.tally.problems.len() as u64),
        ],
    )?;
    heat_map(w, r)?;
    writeln!(w, "<h2>Never fired</h2>")?;
    let silent = r.catalog.detections.iter().zip(&r.tally.fires).filter(|(_, n)| **n == 0);
    list(w, silent.map(|(d, _)| format!("{} {} ({})", d.kind.as_str(), d.id, d.severity)))?;
    writeln!(w, "<h2>Inputs not replayed</h2>")?;
    list(w, r.tally.problems.iter().map(|p| format!("{}: {}", p.input, p.message)))?;
    if r.tally.records_skipped > 0 {
        writeln!(w, "<h2>Records passed over ({})</h2>", r.tally.records_skipped)?;
        list(w, r.tally.passed_over.iter().cloned())?;
    }
    writeln!(w, "</body>\n</html>")
}

/// Fires per detection over time: one row per detection that fired, one column per hour,
/// day or month, each row shaded by its own busiest cell so every detection's peaks show.
fn heat_map(w: &mut dyn Write, r: &TestReport<'_>) -> io::Result<()> {
    let columns = r.timeline.columns();
    writeln!(w, "<h2>Fires per detection over time (UTC)</h2>")?;
    write!(
        w,
        "<div class=\"wide\"><table id=\"timeline\">\n<tr><th>detection</th><th>severity</th><th>alerts on</th><th>total</th>"
    )?;
    for c in &columns {
        write!(w, "<th class=\"time\">{}</th>", esc(&c.label))?;
    }
    writeln!(w, "</tr>")?;
    for (i, d) in r.catalog.detections.iter().enumerate().filter(|(i, _)| r.tally.fires[*i] > 0) {
        // An alarm that needs more than one match alerts only when its count crosses.
        let alerts_on = match &r.thresholds[i] {
            Some(t) if !t.alerts_on_one_match => t.condition(),
            _ => "every match".to_string(),
        };
        let name = format!("{} {}", d.kind.as_str(), d.id);
        let (severity, total) = (esc(&d.severity), r.tally.fires[i]);
        write!(
            w,
            "<tr><th class=\"detection\">{}</th><td>{severity}</td><td>{}</td><td>{total}</td>",
            esc(&name),
            esc(&alerts_on)
        )?;
        let cells: Vec<u64> = columns.iter().map(|c| c.fires.get(&i).copied().unwrap_or(0)).collect();
        let busiest = cells.iter().copied().max().unwrap_or(0).max(1);
        for n in cells {
            // 0 blank, then four shades by the share of the row's busiest cell.
            let level = if n == 0 { 0 } else { (4 * n).div_ceil(busiest).clamp(1, 4) };
            write!(w, "<td class=\"heat h{level}\">{n}</td>")?;
        }
        writeln!(w, "</tr>")?;
    }
    writeln!(w, "</table></div>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{AttrDiff, Change, Plan};
    use crate::resources::Check;
    use crate::verdict::judge;
    use serde_json::json;

    #[test]
    fn the_page_shows_the_matrix_the_drift_and_the_counts() {
        let address = |kind, name: &str, region: &str| Address { kind, name: name.into(), region: region.into() };
        let change = |address, action, diffs| Change {
            address,
            action,
            diffs,
            notes: vec![],
            conflict: None,
            destructive: vec![],
        };
        let diff = AttrDiff {
            path: "state".into(),
            before: Some(json!("DISABLED")),
            after: Some(json!("ENABLED")),
            forces_replacement: false,
        };
        let plan = Plan {
            changes: vec![
                change(address(rule::KIND, "ctguard-destructive", "us-east-1"), Action::NoOp, vec![]),
                change(address(rule::KIND, "ctguard-destructive", "eu-west-1"), Action::Update, vec![diff]),
                change(address(alarm::KIND, "ctguard-<root>", "us-east-1"), Action::NoOp, vec![]),
                change(address("s3_bucket", "audit", "us-east-1"), Action::NoOp, vec![]),
            ],
        };
        let checks = vec![(
            address(alarm::KIND, "ctguard-<root>", "us-east-1"),
            Check { name: "alarm actions on".into(), ok: false, detail: "disabled".into() },
        )];
        let verdict = judge(plan, checks, &[]);
        let ctx = Context { profile: "p".into(), account: "123456789012".into(), region: "us-east-1".into() };
        let mut out = Vec::new();
        verify(&mut out, &ctx, &verdict).unwrap();
        let html = String::from_utf8(out).unwrap();
        assert!(
            html.contains("<title>ctguard verify: profile p in account 123456789012 (us-east-1)</title>"),
            "{html}"
        );
        assert!(html.contains("<tr><th>detection</th><th>eu-west-1</th><th>us-east-1</th></tr>"), "{html}");
        assert!(
            html.contains("<tr><th>events_rule.ctguard-destructive</th><td class=\"cell drift\">drifted</td><td class=\"cell ok\">ok</td></tr>"),
            "{html}"
        );
        assert!(
            html.contains("<tr><th>cloudwatch_alarm.ctguard-&lt;root&gt;</th><td class=\"cell absent\">-</td><td class=\"cell failing\">failing</td></tr>"),
            "{html}"
        );
        assert!(html.contains("<code>&quot;DISABLED&quot;</code></td><td><code>&quot;ENABLED&quot;</code>"), "{html}");
        assert!(
            html.contains("<b id=\"count-drifted\">1</b>") && html.contains("<b id=\"count-failing\">1</b>"),
            "{html}"
        );
        assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"), "self-contained");
    }

    #[test]
    fn the_test_page_names_what_never_fired_and_what_could_not_be_replayed() {
        use crate::detect::replay::{Hit, InputProblem};
        let runtime = crate::profile::Runtime::placeholder("us-east-1");
        let profile = crate::profile::load("cis-aws-foundations").unwrap().resolve(&runtime, &Default::default());
        let catalog = profile.unwrap().catalog().unwrap();
        let n = catalog.detections.len();
        let mut fires = vec![0; n];
        fires[0] = 3;
        let problems = vec![InputProblem { input: "bad.json".into(), message: "line 1: <not JSON>".into() }];
        let tally = Tally { records: 10, matched: 3, fires, problems, ..Default::default() };
        let mut timeline = Timeline::default();
        for time in ["2026-11-27T03:00:00Z", "2026-11-27T03:30:00Z", "2026-11-27T05:00:00Z"] {
            let hit = Hit {
                origin: "log.json".into(),
                index: 1,
                event_time: time.into(),
                region: "us-east-1".into(),
                event_source: "iam.amazonaws.com".into(),
                event_name: "DeleteUser".into(),
                principal: "p".into(),
                error_code: None,
                event_id: "e".into(),
                account: "123456789012".into(),
                fired: vec![0],
                signals: Vec::new(),
            };
            timeline.add(&hit);
        }
        let thresholds = vec![None; n];
        let report = TestReport {
            profile: "cis-aws-foundations",
            catalog: &catalog,
            thresholds: &thresholds,
            tally: &tally,
            timeline: &timeline,
            alerted: 3,
            counted: 0,
        };
        let mut out = Vec::new();
        test(&mut out, &report).unwrap();
        let html = String::from_utf8(out).unwrap();
        let first = &catalog.detections[0];
        let row = format!("<tr><th class=\"detection\">{} {}</th>", first.kind.as_str(), first.id);
        assert!(html.contains(&row), "{html}");
        assert!(
            html.contains("<td class=\"heat h4\">2</td><td class=\"heat h0\">0</td><td class=\"heat h2\">1</td>"),
            "{html}"
        );
        let second = &catalog.detections[1];
        assert!(html.contains(&format!("<li>{} {} (", second.kind.as_str(), second.id)), "never fired: {html}");
        assert!(html.contains("<li>bad.json: line 1: &lt;not JSON&gt;</li>"), "{html}");
        assert!(html.contains("<b id=\"count-fired\">1</b>of"), "{html}");
        assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"), "self-contained");
    }
}
