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
