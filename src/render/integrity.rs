//! validate-logs' report as human text or as a versioned JSON document.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use serde_json::json;

use super::human::Paint;
use super::{Context, FORMAT_VERSION};
use crate::integrity::plural;
use crate::integrity::report::{FindingKind, RegionReport, Report, Verdict};

fn paint(p: Paint, style: Style, text: &str) -> String {
    if p.color { format!("{}{text}{}", style.render(), style.render_reset()) } else { text.to_string() }
}

fn colored(p: Paint, color: AnsiColor, text: &str) -> String {
    paint(p, Style::new().fg_color(Some(color.into())), text)
}

/// "24 valid, 1 missing": valid always, the rest when not zero.
fn counts(parts: &[(usize, &str)]) -> String {
    let mut out: Vec<String> = Vec::new();
    for (i, (n, what)) in parts.iter().enumerate() {
        if i == 0 || *n > 0 {
            out.push(format!("{n} {what}"));
        }
    }
    out.join(", ")
}

fn region_line(r: &RegionReport) -> String {
    let d = &r.digests;
    let l = &r.log_files;
    let c = &r.chain;
    format!(
        "digests {}; log files {}; chain {}",
        counts(&[(d.valid, "valid"), (d.missing, "missing"), (d.altered, "altered"), (d.unverified, "unverified")]),
        counts(&[(l.valid, "valid"), (l.missing, "missing"), (l.altered, "altered"), (l.unreadable, "unreadable")]),
        [(c.links, "link"), (c.broken, "broken link"), (c.gaps, "gap")]
            .iter()
            .enumerate()
            .filter(|(i, (n, _))| *i == 0 || *n > 0)
            .map(|(_, (n, noun))| plural(*n, noun))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

pub fn human(w: &mut dyn Write, p: Paint, report: &Report) -> io::Result<()> {
    let location = match report.prefix.as_str() {
        "" => format!("s3://{}", report.bucket),
        prefix => format!("s3://{}/{prefix}", report.bucket),
    };
    writeln!(
        w,
        "{}",
        paint(p, Style::new().bold(), &format!("Log file integrity of trail {} in {location}", report.trail))
    )?;
    writeln!(w, "Window {} to {}; public keys from {}.\n", report.start, report.end, report.public_keys)?;
    for r in &report.regions {
        writeln!(w, "  {:<16} {}", r.region, region_line(r))?;
        for f in &r.findings {
            let (mark, color) = match f.kind {
                k if k.is_invalid() => ("!", AnsiColor::Red),
                FindingKind::Gap => ("~", AnsiColor::Yellow),
                _ => ("?", AnsiColor::Yellow),
            };
            let head = format!("{mark} {:<19}", f.kind.label());
            writeln!(w, "    {} {}", colored(p, color, &head), f.object)?;
            writeln!(w, "        {}", f.detail)?;
        }
    }
    let t = report.totals();
    let region_count = plural(report.regions.len(), "region");
    let line = match report.verdict() {
        Verdict::Valid => colored(
            p,
            AnsiColor::Green,
            &format!(
                "Valid: {} and {} in {region_count} are as CloudTrail delivered them.",
                plural(t.digests.valid, "digest file"),
                plural(t.log_files.valid, "log file")
            ),
        ),
        Verdict::Invalid => {
            let mut parts = Vec::new();
            for (n, noun, what) in [
                (t.digests.missing, "digest file", "missing"),
                (t.digests.altered, "digest file", "altered"),
                (t.log_files.missing, "log file", "missing"),
                (t.log_files.altered, "log file", "altered"),
                (t.chain.broken, "broken link", "in the chain"),
            ] {
                if n > 0 {
                    parts.push(format!("{} {what}", plural(n, noun)));
                }
            }
            colored(p, AnsiColor::Red, &format!("Invalid: {}.", parts.join(", ")))
        }
        Verdict::Undecided => colored(
            p,
            AnsiColor::Yellow,
            &format!(
                "Undecided: nothing found deleted or altered, but {} and {} could not be checked.",
                plural(t.digests.unverified, "digest file"),
                plural(t.log_files.unreadable, "log file")
            ),
        ),
    };
    writeln!(w, "\n{line}")
}

pub fn json(w: &mut dyn Write, ctx: &Context, report: &Report) -> io::Result<()> {
    let t = report.totals();
    let doc = json!({
        "format_version": FORMAT_VERSION,
        "command": "validate-logs",
        "profile": ctx.profile,
        "account": ctx.account,
        "region": ctx.region,
        "trail": report.trail,
        "bucket": report.bucket,
        "prefix": report.prefix,
        "start": report.start,
        "end": report.end,
        "public_keys": report.public_keys,
        "status": report.verdict(),
        "summary": {"digests": t.digests, "log_files": t.log_files, "chain": t.chain},
        "regions": report.regions,
    });
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::report::Finding;

    fn report(findings: Vec<Finding>) -> Report {
        let mut region = RegionReport { region: "us-east-1".into(), ..Default::default() };
        region.digests.valid = 24;
        region.log_files.valid = 310;
        region.chain.links = 24;
        for f in &findings {
            match f.kind {
                FindingKind::DigestMissing => region.digests.missing += 1,
                FindingKind::LogAltered => region.log_files.altered += 1,
                FindingKind::Gap => region.chain.gaps += 1,
                _ => {}
            }
        }
        region.findings = findings;
        Report {
            bucket: "audit".into(),
            prefix: "cloudtrail".into(),
            trail: "ctguard-audit".into(),
            account: "123456789012".into(),
            start: "2026-11-26T10:00:00Z".into(),
            end: "2026-11-27T10:00:00Z".into(),
            public_keys: "CloudTrail ListPublicKeys".into(),
            regions: vec![region],
        }
    }

    fn text(r: &Report) -> String {
        let mut out = Vec::new();
        human(&mut out, Paint { color: false }, r).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_valid_report_reads_as_one_line_per_region_and_a_verdict() {
        let out = text(&report(vec![]));
        assert!(out.starts_with("Log file integrity of trail ctguard-audit in s3://audit/cloudtrail\n"), "{out}");
        assert!(out.contains("  us-east-1        digests 24 valid; log files 310 valid; chain 24 links\n"), "{out}");
        assert!(
            out.ends_with("\nValid: 24 digest files and 310 log files in 1 region are as CloudTrail delivered them.\n"),
            "{out}"
        );
    }

    #[test]
    fn findings_are_listed_under_their_region_with_the_object_and_why() {
        let r = report(vec![
            Finding {
                kind: FindingKind::DigestMissing,
                object: "s3://audit/d1".into(),
                detail: "recorded by d2".into(),
                related: None,
            },
            Finding {
                kind: FindingKind::LogAltered,
                object: "s3://audit/l1".into(),
                detail: "hash differs".into(),
                related: Some("s3://audit/d9".into()),
            },
            Finding {
                kind: FindingKind::Gap,
                object: "s3://audit/d0".into(),
                detail: "restarted".into(),
                related: None,
            },
        ]);
        let out = text(&r);
        assert!(
            out.contains("digests 24 valid, 1 missing; log files 310 valid, 1 altered; chain 24 links, 1 gap"),
            "{out}"
        );
        assert!(out.contains("    ! digest missing      s3://audit/d1\n        recorded by d2\n"), "{out}");
        assert!(out.contains("    ~ gap                 s3://audit/d0\n"), "{out}");
        assert!(out.ends_with("Invalid: 1 digest file missing, 1 log file altered.\n"), "{out}");
    }

    #[test]
    fn the_json_document_is_versioned_and_keeps_every_count() {
        let r = report(vec![Finding {
            kind: FindingKind::LogAltered,
            object: "s3://audit/l1".into(),
            detail: "x".into(),
            related: None,
        }]);
        let ctx = Context { profile: "p".into(), account: "123456789012".into(), region: "us-east-1".into() };
        let mut out = Vec::new();
        json(&mut out, &ctx, &r).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["format_version"], FORMAT_VERSION);
        assert_eq!(doc["command"], "validate-logs");
        assert_eq!(doc["status"], "invalid");
        assert_eq!(doc["summary"]["log_files"]["altered"], 1);
        assert_eq!(doc["regions"][0]["findings"][0]["kind"], "log_altered");
        assert_eq!(doc["regions"][0]["findings"][0].get("related"), None, "absent, not null");
        assert_eq!(doc["regions"][0]["digests"]["valid"], 24);
    }
}
