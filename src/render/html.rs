//! verify as one self-contained HTML page (inline style, no script, no external asset), for
//! people who will not read a list of checks: the verdict and its counts, a matrix of the
//! detections by region coloured by state, each drifted field before and after, the failing
//! checks, and the waivers.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use quick_xml::escape::escape;

use super::{Context, phrase};
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

pub fn verify(w: &mut dyn Write, ctx: &Context, v: &Verdict) -> io::Result<()> {
    let title = format!("ctguard verify: profile {} in account {} ({})", ctx.profile, ctx.account, ctx.region);
    let drifted: Vec<_> = v.drifted().collect();
    let failing: Vec<_> = v.failing().collect();
    let waived_checks: Vec<_> = v.checks.iter().filter(|c| !c.check.ok && c.waived.is_some()).collect();
    writeln!(w, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(w, "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>", esc(&title))?;
    writeln!(w, "<h1>{}</h1>", esc(&title))?;
    let (class, verdict) =
        if v.passed() { ("pass", "The account matches the profile") } else { ("fail", "Drift found") };
    writeln!(w, "<p id=\"verdict\" class=\"verdict {class}\">{verdict}</p>")?;
    writeln!(w, "<ul class=\"counts\">")?;
    for (id, label, n) in [
        ("resources", "resources", v.plan.changes.len()),
        ("drifted", "drifted", drifted.len()),
        ("failing", "failing checks", failing.len()),
        ("waived", "waived findings", v.waived_drift.len() + waived_checks.len()),
    ] {
        writeln!(w, "<li><b id=\"count-{id}\">{n}</b>{label}</li>")?;
    }
    writeln!(w, "</ul>")?;
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
}
