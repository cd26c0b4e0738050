//! CloudTrail log file integrity validation: `ctguard validate-logs`, and verify's
//! `log_integrity` check.
//!
//! With log file validation on, CloudTrail delivers a digest file every hour per region, which
//! lists the log files delivered in that hour with the SHA-256 of each and records the
//! previous digest's hash and signature; the digest's own RSA signature is in its object
//! metadata. Checking the signatures, the chain and every listed log file proves that no log
//! file or digest was deleted or altered after delivery, as AWS documents in "Validating
//! CloudTrail log file integrity" and "Custom implementations of CloudTrail log file integrity
//! validation".
//!
//! `layout` is where digests are, `digest` one digest's format and signature, `keys` the public
//! keys, `chain` judging a region's digests, `validate` the S3 reads, `report` the result.

pub mod chain;
pub mod digest;
pub mod keys;
pub mod layout;
pub mod report;
pub mod validate;
pub mod window;

use time::OffsetDateTime;

use crate::aws::Aws;
use crate::aws::error::{self, ErrorKind};
use crate::plan::Address;
use crate::profile::Profile;
use crate::resources::{Check, trail};
use layout::Trail;
use report::{Report, Verdict};
use validate::KeySupply;
use window::Window;

/// How many problems a failing check names before "and N more".
const SHOWN: usize = 3;

/// The trail the profile declares, where it delivers.
pub fn trail_of(profile: &Profile) -> Trail {
    Trail {
        bucket: profile.bucket.name.clone(),
        prefix: profile.bucket.trail_prefix.clone(),
        account: profile.runtime.account_id.clone(),
        name: profile.trail.name.clone(),
        home_region: profile.runtime.region.clone(),
    }
}

/// verify's `log_integrity` check, when the profile sets `trail.log_integrity_hours`: the
/// digests and log files of the last N hours, with CloudTrail's public keys. A missing bucket
/// fails the check (verify reports the bucket as drift too); any other AWS failure (no access
/// to the bucket, for one) is an error: verify could not decide.
pub async fn verify_check(aws: &Aws, profile: &Profile) -> anyhow::Result<Option<(Address, Check)>> {
    let Some(hours) = profile.trail.log_integrity_hours else { return Ok(None) };
    let name = format!("log files and digests intact over the last {hours} hours");
    let address =
        Address { kind: trail::KIND, name: profile.trail.name.clone(), region: profile.runtime.region.clone() };
    let now = OffsetDateTime::now_utc();
    let supply = KeySupply::CloudTrail(aws.cloudtrail.clone());
    let window = Window::last_hours(hours, now);
    let report =
        match validate::run(&aws.s3, &supply, &trail_of(profile), window, &[aws.region().to_string()], now, &|_| ())
            .await
        {
            Ok(report) => report,
            Err(e) if error::kind(&e) == ErrorKind::NotFound => {
                return Ok(Some((address, Check { name, ok: false, detail: format!("nothing to validate: {e:#}") })));
            }
            Err(e) => return Err(e.context("validating log file integrity for verify")),
        };
    let (ok, detail) = summary(&report);
    Ok(Some((address, Check { name, ok, detail })))
}

/// Whether a report passes, and the line verify prints for it.
fn summary(report: &Report) -> (bool, String) {
    let t = report.totals();
    let problems: Vec<String> =
        report.problems().map(|(region, f)| format!("{} {} ({region})", f.kind.label(), f.object)).collect();
    let listed = || {
        let more = problems.len().saturating_sub(SHOWN);
        let shown = problems.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; ");
        if more > 0 { format!("{shown}; and {more} more") } else { shown }
    };
    match report.verdict() {
        Verdict::Valid => {
            let gaps = match t.chain.gaps {
                0 => String::new(),
                n => format!(" ({} in the chain: see ctguard validate-logs)", plural(n, "gap")),
            };
            let line = format!(
                "{} and {} in {} are as CloudTrail delivered them{gaps}",
                plural(t.digests.valid, "digest file"),
                plural(t.log_files.valid, "log file"),
                plural(report.regions.len(), "region"),
            );
            (true, line)
        }
        Verdict::Invalid => (false, format!("deleted or altered: {}", listed())),
        Verdict::Undecided => (false, format!("could not check everything: {}", listed())),
    }
}

/// "1 log file", "2 log files".
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

#[cfg(test)]
mod tests {
    use super::report::{Finding, FindingKind, RegionReport};
    use super::*;

    fn report(findings: Vec<Finding>) -> Report {
        let mut region = RegionReport { region: "us-east-1".into(), ..Default::default() };
        region.digests.valid = 6;
        region.log_files.valid = 12;
        region.chain.gaps = findings.iter().filter(|f| f.kind == FindingKind::Gap).count();
        region.findings = findings;
        Report {
            bucket: "b".into(),
            prefix: String::new(),
            trail: "t".into(),
            account: "123456789012".into(),
            start: String::new(),
            end: String::new(),
            public_keys: String::new(),
            regions: vec![region],
        }
    }

    fn finding(kind: FindingKind, object: &str) -> Finding {
        Finding { kind, object: object.into(), detail: String::new(), related: None }
    }

    #[test]
    fn verify_passes_on_gaps_and_names_the_first_problems() {
        let (ok, line) = summary(&report(vec![finding(FindingKind::Gap, "s3://b/d0")]));
        assert!(ok);
        assert_eq!(
            line,
            "6 digest files and 12 log files in 1 region are as CloudTrail delivered them (1 gap in the chain: see ctguard validate-logs)"
        );
        let five = (0..5).map(|i| finding(FindingKind::LogAltered, &format!("s3://b/l{i}"))).collect();
        let (ok, line) = summary(&report(five));
        assert!(!ok);
        assert_eq!(
            line,
            "deleted or altered: log file altered s3://b/l0 (us-east-1); log file altered s3://b/l1 (us-east-1); log file altered s3://b/l2 (us-east-1); and 2 more"
        );
        let (ok, line) = summary(&report(vec![finding(FindingKind::LogUnreadable, "s3://b/l9")]));
        assert!(!ok && line.starts_with("could not check everything: log file unreadable s3://b/l9"), "{line}");
    }
}
