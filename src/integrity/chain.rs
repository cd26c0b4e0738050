//! Judging one region's digests: each file on its own (signature, location), then the chain
//! they form. Pure: the S3 reads happen in `validate`, which hands the files over.
//!
//! Each digest records its predecessor's location, hash and signature, and its own signature
//! covers that record. So a digest whose signature holds vouches for its predecessor: a
//! predecessor that is absent was deleted, one whose hash or signature differs from the record
//! was replaced. A starting digest (validation or logging was switched on) records no
//! predecessor: the chain starts anew there, which is a gap, not tampering.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::digest::{self, BadSignature, DigestFile, LogFileEntry, SIGNATURE_ALGORITHM};
use super::keys::PublicKeys;
use super::layout::DigestName;
use super::report::{Finding, FindingKind, RegionReport};
use super::window::{Window, rfc3339};

/// A digest object as read from S3.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bucket: String,
    pub key: String,
    /// `None` for a predecessor outside the listing whose name was not parsed.
    pub name: Option<DigestName>,
    pub body: Body,
}

#[derive(Debug, Clone)]
pub enum Body {
    /// NoSuchKey.
    Missing,
    /// Present but not readable now (archived, for one).
    Unreadable(String),
    Read {
        /// Hex SHA-256 of the uncompressed file; of the bytes as stored when they do not inflate.
        sha256: String,
        /// The `signature` and `signature-algorithm` object metadata.
        signature: Option<String>,
        algorithm: Option<String>,
        file: Result<Box<DigestFile>, String>,
    },
}

impl Fetched {
    pub fn uri(&self) -> String {
        uri(&self.bucket, &self.key)
    }

    fn file(&self) -> Option<&DigestFile> {
        match &self.body {
            Body::Read { file: Ok(f), .. } => Some(f),
            _ => None,
        }
    }
}

pub fn uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// A digest's standing on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Valid,
    Missing,
    Altered(String),
    Unverified(String),
}

/// Where the public keys came from decides what an unknown fingerprint means: CloudTrail's own
/// list is authoritative (the digest was not signed by CloudTrail), a file may be incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAuthority {
    CloudTrail,
    Files,
}

/// Checks one digest file: its format, that it lies where it says it was delivered, and its
/// signature against the key with its fingerprint.
pub fn check(f: &Fetched, keys: &PublicKeys, authority: KeyAuthority, region: &str) -> Status {
    let (sha256, signature, algorithm, file) = match &f.body {
        Body::Missing => return Status::Missing,
        Body::Unreadable(why) => return Status::Unverified(why.clone()),
        Body::Read { sha256, signature, algorithm, file } => (sha256, signature, algorithm, file),
    };
    let file = match file {
        Ok(file) => file,
        Err(why) => return Status::Altered(why.clone()),
    };
    if file.digest_s3_bucket != f.bucket || file.digest_s3_object != f.key {
        return Status::Altered(format!(
            "the file says it was delivered to {}: it was moved or copied here",
            uri(&file.digest_s3_bucket, &file.digest_s3_object)
        ));
    }
    let (Some(signature), Some(algorithm)) = (signature, algorithm) else {
        return Status::Altered(
            "the object has no signature metadata (x-amz-meta-signature, x-amz-meta-signature-algorithm)".into(),
        );
    };
    for alg in [algorithm, &file.digest_signature_algorithm] {
        if alg != SIGNATURE_ALGORITHM {
            return Status::Unverified(format!("signed with {alg:?}; ctguard checks {SIGNATURE_ALGORITHM}"));
        }
    }
    let fingerprint = file.digest_public_key_fingerprint.to_ascii_lowercase();
    let key = match (keys.get(&fingerprint), authority) {
        (Some(Ok(key)), _) => key,
        (Some(Err(why)), _) => return Status::Unverified(why.to_string()),
        (None, KeyAuthority::CloudTrail) => {
            return Status::Altered(format!(
                "signed with public key {fingerprint}, which CloudTrail does not list for {region} in the window"
            ));
        }
        (None, KeyAuthority::Files) => {
            return Status::Unverified(format!("no public key with fingerprint {fingerprint} was given"));
        }
    };
    match digest::verify(key, &digest::signing_string(file, sha256), signature) {
        Ok(()) => Status::Valid,
        Err(BadSignature::Malformed(why)) => Status::Altered(why),
        Err(BadSignature::Mismatch) => Status::Altered(format!(
            "the signature does not verify with public key {fingerprint}: the file or its signature metadata was changed"
        )),
    }
}

/// A digest of the listing with its status.
#[derive(Debug, Clone)]
pub struct Checked {
    pub fetched: Fetched,
    pub status: Status,
}

/// A log file to check: what the valid digest that lists it recorded.
#[derive(Debug, Clone)]
pub struct LogJob {
    pub digest: String,
    pub entry: LogFileEntry,
}

/// The predecessors a listing refers to but does not contain, to be read before `judge`: the
/// ones before the listed range, or in another bucket. A predecessor inside the range that the
/// listing lacks is missing without another read.
pub fn outside(listed: &[Checked], listed_from: OffsetDateTime) -> Vec<(String, String)> {
    let present: HashSet<String> = listed.iter().map(|c| c.fetched.uri()).collect();
    let mut wanted = Vec::new();
    for c in listed.iter().filter(|c| c.status == Status::Valid) {
        let Some((bucket, key)) = c.fetched.file().and_then(DigestFile::previous) else { continue };
        if present.contains(&uri(bucket, key))
            || c.fetched.bucket == bucket && stamped_at(key).is_some_and(|t| t >= listed_from)
        {
            continue;
        }
        wanted.push((bucket.to_string(), key.to_string()));
    }
    wanted.sort();
    wanted.dedup();
    wanted
}

/// The end time in a digest key's name, read from its end as the AWS CLI does.
fn stamped_at(key: &str) -> Option<OffsetDateTime> {
    let stem = key.strip_suffix(".json.gz")?;
    let stem = stem.strip_suffix("_backfill").unwrap_or(stem);
    super::window::parse_compact(stem.get(stem.len().checked_sub(16)?..)?)
}

/// Judges one region: counts, findings, and the log files the valid digests vouch for.
/// `listed` holds the digests named for the window (and the hour after it, whose digests link
/// back into it); `outside` the predecessors read because of `outside()`; `folder` is where the
/// region's digests are delivered (`s3://bucket/.../CloudTrail-Digest/region/`).
pub fn judge(
    region: &str,
    folder: &str,
    window: &Window,
    mut listed: Vec<Checked>,
    outside: &[Fetched],
) -> (RegionReport, Vec<LogJob>) {
    listed.sort_by_key(|c| (c.fetched.name.map(|n| n.end), c.fetched.key.clone()));
    let mut report = RegionReport { region: region.to_string(), ..Default::default() };
    let mut findings = Vec::new();
    let mut logs = Vec::new();
    for c in &listed {
        let object = c.fetched.uri();
        match &c.status {
            Status::Valid => {
                report.digests.valid += 1;
                let file = c.fetched.file().expect("a valid digest was parsed");
                logs.extend(file.log_files.iter().map(|e| LogJob { digest: object.clone(), entry: e.clone() }));
            }
            Status::Missing => {
                report.digests.missing += 1;
                findings.push(finding(FindingKind::DigestMissing, object, "listed, then gone when read".into(), None));
            }
            Status::Altered(why) => {
                report.digests.altered += 1;
                findings.push(finding(FindingKind::DigestAltered, object, why.clone(), None));
            }
            Status::Unverified(why) => {
                report.digests.unverified += 1;
                findings.push(finding(FindingKind::DigestUnverified, object, why.clone(), None));
            }
        }
    }

    // The chain: backfill digests stand outside it.
    let chain: Vec<&Checked> = listed.iter().filter(|c| c.fetched.name.is_some_and(|n| !n.backfill)).collect();
    let index: HashMap<String, usize> = chain.iter().enumerate().map(|(i, c)| (c.fetched.uri(), i)).collect();
    let outside: HashMap<String, &Fetched> = outside.iter().map(|f| (f.uri(), f)).collect();
    let mut linked_to: HashSet<usize> = HashSet::new();
    let mut resolved: Vec<Option<bool>> = vec![None; chain.len()];
    for (pos, c) in chain.iter().enumerate() {
        if c.status != Status::Valid {
            continue; // an unproven digest's record of its predecessor proves nothing
        }
        let file = c.fetched.file().expect("a valid digest was parsed");
        let here = c.fetched.uri();
        let Some((bucket, key)) = file.previous() else {
            if pos > 0 || starts_after(file, window) {
                report.chain.gaps += 1;
                let before = pos.checked_sub(1).map(|p| chain[p]);
                let since = match before {
                    None => format!("the window starts at {}", rfc3339(window.start)),
                    Some(b) => format!(
                        "the digest before it, {}, ends at {}",
                        file_name(&b.fetched.key),
                        chain_end(b).map(rfc3339).unwrap_or_default()
                    ),
                };
                let detail = format!(
                    "the chain starts anew here (log file validation or logging was switched on at {}); {since}, and no digest vouches for log files delivered in between",
                    file.digest_start_time
                );
                findings.push(finding(FindingKind::Gap, here, detail, before.map(|b| b.fetched.uri())));
            }
            continue;
        };
        report.chain.links += 1;
        let previous = uri(bucket, key);
        // An altered predecessor is reported as such; that the link to it fails follows.
        let mut altered = false;
        let target = match (index.get(&previous), outside.get(&previous)) {
            (Some(&i), _) => {
                linked_to.insert(i);
                altered = matches!(chain[i].status, Status::Altered(_));
                Some(&chain[i].fetched)
            }
            (None, Some(f)) => Some(*f),
            (None, None) => None,
        };
        resolved[pos] = Some(target.is_some_and(|t| !matches!(t.body, Body::Missing)));
        match target.map(|t| &t.body) {
            None | Some(Body::Missing) => {
                report.digests.missing += 1;
                let detail = format!(
                    "the next digest, {}, records it as its previous digest, and it is not in the bucket",
                    file_name(&here)
                );
                findings.push(finding(FindingKind::DigestMissing, previous, detail, Some(here)));
            }
            Some(Body::Unreadable(why)) => {
                report.digests.unverified += 1;
                findings.push(finding(FindingKind::DigestUnverified, previous, why.clone(), Some(here)));
            }
            Some(Body::Read { sha256, signature, .. }) => {
                let mut differs = Vec::new();
                if !same_hex(file.previous_digest_hash_value.as_deref(), Some(sha256)) {
                    differs.push(format!(
                        "previousDigestHashValue {} (this file's SHA-256 is {sha256})",
                        file.previous_digest_hash_value.as_deref().unwrap_or("null")
                    ));
                }
                if !same_hex(file.previous_digest_signature.as_deref(), signature.as_deref()) {
                    differs.push("previousDigestSignature, which is not this file's signature".into());
                }
                if !differs.is_empty() && !altered {
                    report.chain.broken += 1;
                    let detail = format!(
                        "the next digest, {}, records {}: this is not the digest CloudTrail chained",
                        file_name(&here),
                        differs.join(" and ")
                    );
                    findings.push(finding(FindingKind::ChainBroken, previous, detail, Some(here)));
                }
            }
        }
    }
    // A digest no later digest links to, while the next one links to another that exists.
    for (pos, c) in chain.iter().enumerate() {
        let Some(next) = chain.get(pos + 1) else { continue };
        if linked_to.contains(&pos) || c.status != Status::Valid || next.status != Status::Valid {
            continue;
        }
        let Some((_, key)) = next.fetched.file().and_then(DigestFile::previous) else { continue };
        if resolved[pos + 1] == Some(true) {
            report.chain.broken += 1;
            let detail = format!(
                "no later digest links to it: the next one, {}, records {} as its previous digest",
                file_name(&next.fetched.key),
                file_name(key)
            );
            findings.push(finding(FindingKind::ChainBroken, c.fetched.uri(), detail, Some(next.fetched.uri())));
        }
    }
    if let Some(last) = chain.iter().rev().find(|c| c.status == Status::Valid) {
        let end = chain_end(last);
        if end.is_some_and(|e| window.end - e > time::Duration::hours(2)) {
            report.chain.gaps += 1;
            let detail = format!(
                "no digest after this one, which ends at {}: CloudTrail delivers one every hour while the trail logs",
                end.map(rfc3339).unwrap_or_default()
            );
            findings.push(finding(FindingKind::Gap, last.fetched.uri(), detail, None));
        }
    } else if listed.is_empty() && window.end - window.start >= time::Duration::hours(2) {
        report.chain.gaps += 1;
        let detail = "no digest file for this trail and region in the window".to_string();
        findings.push(finding(FindingKind::Gap, folder.to_string(), detail, None));
    }
    findings.sort_by(|a, b| (a.kind, &a.object).cmp(&(b.kind, &b.object)));
    report.findings = findings;
    (report, logs)
}

fn finding(kind: FindingKind, object: String, detail: String, related: Option<String>) -> Finding {
    Finding { kind, object, detail, related }
}

/// The last part of an object's key: enough to tell digests of one folder apart in a detail.
pub fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

fn same_hex(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
        _ => false,
    }
}

fn chain_end(c: &Checked) -> Option<OffsetDateTime> {
    c.fetched
        .file()
        .and_then(|f| OffsetDateTime::parse(&f.digest_end_time, &Rfc3339).ok())
        .or(c.fetched.name.map(|n| n.end))
}

/// Whether a starting digest begins after the window does (so the window has an uncovered head).
fn starts_after(file: &DigestFile, window: &Window) -> bool {
    OffsetDateTime::parse(&file.digest_start_time, &Rfc3339).is_ok_and(|t| t > window.start)
}

#[cfg(test)]
mod tests;
