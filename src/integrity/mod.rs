//! CloudTrail log file integrity validation: `ctguard validate-logs`.
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

use crate::profile::Profile;
use layout::Trail;

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

/// "1 log file", "2 log files".
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}
