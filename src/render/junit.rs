//! verify as JUnit XML, the report format CI systems show natively: one test case per resource
//! (failing when it drifted) and one per health check (failing when the check fails), in one
//! test suite per resource kind. A waived finding is a skipped case whose message is the reason.

use std::collections::BTreeMap;
use std::io::{self, Write};

use quick_xml::escape::escape;

use super::Context;
use crate::plan::{Action, Change};
use crate::render::phrase;
use crate::verdict::Verdict;

/// One `<testcase>`.
struct Case {
    name: String,
    outcome: Outcome,
}

enum Outcome {
    Passed,
    Failed { message: String, text: String },
    Skipped(String),
}

fn drift_text(c: &Change) -> String {
    let mut text = String::new();
    for d in &c.diffs {
        let show = |v: &Option<serde_json::Value>| v.as_ref().map_or("(absent)".into(), |v| v.to_string());
        text.push_str(&format!("{}: {} -> {}\n", d.path, show(&d.before), show(&d.after)));
    }
    text.extend(c.notes.iter().map(|n| format!("note: {n}\n")));
    text
}

fn cases(v: &Verdict) -> BTreeMap<String, Vec<Case>> {
    let mut suites: BTreeMap<String, Vec<Case>> = BTreeMap::new();
    for c in &v.plan.changes {
        let outcome = match c.action {
            Action::NoOp => Outcome::Passed,
            action => Outcome::Failed { message: format!("{} {}", c.address, phrase(action)), text: drift_text(c) },
        };
        let name = format!("{} ({}) matches the profile", c.address, c.address.region);
        suites.entry(c.address.kind.to_string()).or_default().push(Case { name, outcome });
    }
    for d in &v.waived_drift {
        let name = format!("{} ({}) field {} matches the profile", d.address, d.address.region, d.field);
        let outcome = Outcome::Skipped(format!("waived: {}", d.reason));
        suites.entry(d.address.kind.to_string()).or_default().push(Case { name, outcome });
    }
    for c in &v.checks {
        let outcome = match (&c.waived, c.check.ok) {
            (_, true) => Outcome::Passed,
            (Some(reason), false) => Outcome::Skipped(format!("waived: {reason} ({})", c.check.detail)),
            (None, false) => Outcome::Failed { message: c.check.detail.clone(), text: c.check.detail.clone() },
        };
        let name = format!("{} ({}): {}", c.address, c.address.region, c.check.name);
        suites.entry(c.address.kind.to_string()).or_default().push(Case { name, outcome });
    }
    suites
}

pub fn verify(w: &mut dyn Write, ctx: &Context, v: &Verdict) -> io::Result<()> {
    let suites = cases(v);
    let count = |f: fn(&Outcome) -> bool| suites.values().flatten().filter(|c| f(&c.outcome)).count();
    let (tests, failures, skipped) =
        (count(|_| true), count(|o| matches!(o, Outcome::Failed { .. })), count(|o| matches!(o, Outcome::Skipped(_))));
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    let title = format!("ctguard verify: profile {} in account {} ({})", ctx.profile, ctx.account, ctx.region);
    writeln!(
        w,
        r#"<testsuites name="{}" tests="{tests}" failures="{failures}" errors="0" skipped="{skipped}">"#,
        escape(&title)
    )?;
    for (kind, cases) in &suites {
        let failed = cases.iter().filter(|c| matches!(c.outcome, Outcome::Failed { .. })).count();
        let skipped = cases.iter().filter(|c| matches!(c.outcome, Outcome::Skipped(_))).count();
        writeln!(
            w,
            r#"  <testsuite name="{}" tests="{}" failures="{failed}" errors="0" skipped="{skipped}">"#,
            escape(kind.as_str()),
            cases.len()
        )?;
        for case in cases {
            let open =
                format!(r#"    <testcase classname="ctguard.{}" name="{}""#, escape(kind.as_str()), escape(&case.name));
            match &case.outcome {
                Outcome::Passed => writeln!(w, "{open}/>")?,
                Outcome::Failed { message, text } => {
                    writeln!(w, "{open}>")?;
                    writeln!(w, r#"      <failure message="{}">{}</failure>"#, escape(message), escape(text))?;
                    writeln!(w, "    </testcase>")?;
                }
                Outcome::Skipped(reason) => {
                    writeln!(w, "{open}>")?;
                    writeln!(w, r#"      <skipped message="{}"/>"#, escape(reason))?;
                    writeln!(w, "    </testcase>")?;
                }
            }
        }
        writeln!(w, "  </testsuite>")?;
    }
    writeln!(w, "</testsuites>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Address, AttrDiff, Plan};
    use crate::profile::Waiver;
    use crate::resources::Check;
    use crate::verdict::judge;
    use serde_json::json;

    #[test]
    fn one_case_per_resource_and_check_with_failures_and_waivers() {
        let address = |kind, name: &str| Address { kind, name: name.into(), region: "us-east-1".into() };
        let plan = Plan {
            changes: vec![
                Change {
                    address: address("s3_bucket", "b<&>"),
                    action: Action::Update,
                    diffs: vec![AttrDiff {
                        path: "versioning".into(),
                        before: Some(json!("Suspended")),
                        after: Some(json!("Enabled")),
                        forces_replacement: false,
                    }],
                    notes: vec![],
                    conflict: None,
                    destructive: vec![],
                },
                Change {
                    address: address("iam_role", "r"),
                    action: Action::NoOp,
                    diffs: vec![],
                    notes: vec![],
                    conflict: None,
                    destructive: vec![],
                },
            ],
        };
        let checks = vec![
            (
                address("cloudtrail_trail", "t"),
                Check { name: "trail delivers log files to S3".into(), ok: true, detail: String::new() },
            ),
            (
                address("sns_subscriptions", "s"),
                Check { name: "alert topic has a confirmed subscriber".into(), ok: false, detail: "none".into() },
            ),
        ];
        let waiver = Waiver {
            resource: "sns_subscriptions.*".into(),
            region: None,
            field: None,
            check: Some("alert topic*".into()),
            reason: "pager endpoint confirms out of band".into(),
        };
        let verdict = judge(plan, checks, &[waiver]);
        let ctx = Context { profile: "p".into(), account: "123456789012".into(), region: "us-east-1".into() };
        let mut out = Vec::new();
        verify(&mut out, &ctx, &verdict).unwrap();
        let xml = String::from_utf8(out).unwrap();
        assert!(xml.contains(r#"<testsuites name="ctguard verify: profile p in account 123456789012 (us-east-1)" tests="4" failures="1" errors="0" skipped="1">"#), "{xml}");
        assert!(xml.contains(r#"name="s3_bucket.b&lt;&amp;&gt; (us-east-1) matches the profile""#), "{xml}");
        assert!(xml.contains(r#"versioning: &quot;Suspended&quot; -&gt; &quot;Enabled&quot;"#), "{xml}");
        assert!(xml.contains(r#"<skipped message="waived: pager endpoint confirms out of band (none)"/>"#), "{xml}");
        // Well formed: every case opened is closed.
        assert_eq!(xml.matches("<testsuite ").count(), xml.matches("</testsuite>").count());
    }
}
