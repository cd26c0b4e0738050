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
use crate::plan::Address;
use crate::profile::Profile;
use crate::resources::{Check, trail};
use layout::Trail;
use report::Verdict;
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
/// digests and log files of the last N hours, with CloudTrail's public keys. An AWS failure
/// (no access to the bucket, for one) is an error: verify could not decide.
pub async fn verify_check(aws: &Aws, profile: &Profile) -> anyhow::Result<Option<(Address, Check)>> {
    let Some(hours) = profile.trail.log_integrity_hours else { return Ok(None) };
    let now = OffsetDateTime::now_utc();
    let supply = KeySupply::CloudTrail(aws.cloudtrail.clone());
    let report = validate::run(
        &aws.s3,
        &supply,
        &trail_of(profile),
        Window::last_hours(hours, now),
        &[aws.region().to_string()],
        now,
        &|_| (),
    )
    .await?;
    let t = report.totals();
    let problems: Vec<String> =
        report.problems().map(|(region, f)| format!("{} {} ({region})", f.kind.label(), f.object)).collect();
    let listed = || {
        let more = problems.len().saturating_sub(SHOWN);
        let shown = problems.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; ");
        if more > 0 { format!("{shown}; and {more} more") } else { shown }
    };
    let (ok, detail) = match report.verdict() {
        Verdict::Valid => (
            true,
            format!(
                "{} and {} in {} are as CloudTrail delivered them{}",
                plural(t.digests.valid, "digest file"),
                plural(t.log_files.valid, "log file"),
                plural(report.regions.len(), "region"),
                match t.chain.gaps {
                    0 => String::new(),
                    n => format!(" ({} in the chain: see ctguard validate-logs)", plural(n, "gap")),
                }
            ),
        ),
        Verdict::Invalid => (false, format!("deleted or altered: {}", listed())),
        Verdict::Undecided => (false, format!("could not check everything: {}", listed())),
    };
    let name = format!("log files and digests intact over the last {hours} hours");
    let address =
        Address { kind: trail::KIND, name: profile.trail.name.clone(), region: profile.runtime.region.clone() };
    Ok(Some((address, Check { name, ok, detail })))
}

/// "1 log file", "2 log files".
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}
