//! `ctguard drill`'s report: one line per path (delivered or not, how long it took, why), what
//! was cleaned up, and a summary; or one versioned JSON document.

use std::io::{self, Write};

use serde_json::json;

use super::human::Paint;
use super::{Context, FORMAT_VERSION};
use crate::drill::Report;

pub fn human(w: &mut dyn Write, p: Paint, ctx: &Context, report: &Report) -> io::Result<()> {
    writeln!(w, "Fire drill {} of profile {} in account {} ({})", report.run, ctx.profile, ctx.account, ctx.region)?;
    let width = report.outcomes.iter().map(|o| o.path.len()).max().unwrap_or(0);
    for o in &report.outcomes {
        let mark = if o.delivered { p.success("delivered") } else { p.failure("FAILED   ") };
        let took = o.seconds.map(|s| format!(" in {s:.1}s")).unwrap_or_default();
        writeln!(w, "  {mark} {:width$}{took}: {}", o.path, o.detail)?;
    }
    for c in &report.cleanup {
        writeln!(w, "  cleanup: {c}")?;
    }
    let ok = report.outcomes.iter().filter(|o| o.delivered).count();
    let total = report.outcomes.len();
    let summary = format!("Drill: {ok} of {total} paths delivered.");
    writeln!(w, "{}", if ok == total { p.success(&summary) } else { p.failure(&summary) })
}

/// `{"format_version", "command": "drill", "profile", "account", "region", "run", "delivered",
/// "paths": [{"path", "delivered", "seconds", "detail"}], "cleanup": [..]}`.
pub fn json(w: &mut dyn Write, ctx: &Context, report: &Report) -> io::Result<()> {
    let doc = json!({
        "format_version": FORMAT_VERSION,
        "command": "drill",
        "profile": ctx.profile,
        "account": ctx.account,
        "region": ctx.region,
        "run": report.run,
        "delivered": report.all_delivered(),
        "paths": report.outcomes,
        "cleanup": report.cleanup,
    });
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::Outcome;

    fn report() -> Report {
        let outcome = |path: &str, delivered: bool, seconds: Option<f64>, detail: &str| Outcome {
            path: path.into(),
            delivered,
            seconds,
            detail: detail.into(),
        };
        Report {
            run: "0123456789ab".into(),
            outcomes: vec![
                outcome("events/us-east-1", true, Some(0.42), "delivered to ctguard-alerts"),
                outcome("alarm/x", false, None, "alarm x has its actions disabled: it notifies nobody"),
            ],
            cleanup: vec!["deleted SQS queue ctguard-drill-0123456789ab".into()],
        }
    }

    fn ctx() -> Context {
        Context { profile: "p".into(), account: "123456789012".into(), region: "us-east-1".into() }
    }

    #[test]
    fn each_path_is_one_line_with_its_time_and_the_summary_counts_them() {
        let mut out = Vec::new();
        human(&mut out, Paint { color: false }, &ctx(), &report()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("  delivered events/us-east-1 in 0.4s: delivered to ctguard-alerts\n"), "{text}");
        assert!(text.contains("  FAILED    alarm/x         : alarm x has its actions disabled"), "{text}");
        assert!(text.contains("  cleanup: deleted SQS queue ctguard-drill-0123456789ab\n"), "{text}");
        assert!(text.ends_with("Drill: 1 of 2 paths delivered.\n"), "{text}");
    }

    #[test]
    fn the_json_document_is_versioned_with_stable_fields() {
        let mut out = Vec::new();
        json(&mut out, &ctx(), &report()).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["format_version"], FORMAT_VERSION);
        assert_eq!(doc["command"], "drill");
        assert_eq!(doc["delivered"], false);
        assert_eq!(doc["paths"][0]["seconds"], 0.42);
        assert_eq!(doc["paths"][1]["seconds"], serde_json::Value::Null);
        assert_eq!(doc["paths"][1]["path"], "alarm/x");
    }
}
