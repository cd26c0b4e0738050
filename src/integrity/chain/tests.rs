//! The chain judged on hand-built digests (signatures are checked in `digest`; here each
//! digest's own status is given).

use super::*;
use crate::integrity::layout::Trail;

const BUCKET: &str = "audit";
const FOLDER: &str = "s3://audit/AWSLogs/111122223333/CloudTrail-Digest/us-east-2/";

fn trail() -> Trail {
    Trail {
        bucket: BUCKET.into(),
        prefix: String::new(),
        account: "111122223333".into(),
        name: "t".into(),
        home_region: "us-east-2".into(),
    }
}

fn key(hour: u32) -> String {
    format!(
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2026/11/27/111122223333_CloudTrail-Digest_us-east-2_t_us-east-2_20261127T{hour:02}0131Z.json.gz"
    )
}

fn window() -> Window {
    let at = |t: &str| OffsetDateTime::parse(t, &Rfc3339).unwrap();
    Window { start: at("2026-11-27T01:00:00Z"), end: at("2026-11-27T06:00:00Z") }
}

/// The digest ending at `hour`:01:31, chained to `previous` (with its real hash and signature).
fn digest(hour: u32, previous: Option<&Fetched>) -> Fetched {
    let k = key(hour);
    let (pb, pk, ph, ps) = match previous {
        Some(Fetched { bucket, key, body: Body::Read { sha256, signature, .. }, .. }) => {
            (Some(bucket.clone()), Some(key.clone()), Some(sha256.clone()), signature.clone())
        }
        _ => (None, None, None, None),
    };
    let file = DigestFile {
        aws_account_id: "111122223333".into(),
        digest_start_time: format!("2026-11-27T{:02}:01:31Z", hour.saturating_sub(1)),
        digest_end_time: format!("2026-11-27T{hour:02}:01:31Z"),
        digest_s3_bucket: BUCKET.into(),
        digest_s3_object: k.clone(),
        digest_public_key_fingerprint: "ab".into(),
        digest_signature_algorithm: SIGNATURE_ALGORITHM.into(),
        previous_digest_s3_bucket: pb,
        previous_digest_s3_object: pk,
        previous_digest_hash_value: ph,
        previous_digest_hash_algorithm: Some("SHA-256".into()),
        previous_digest_signature: ps,
        log_files: vec![LogFileEntry {
            s3_bucket: BUCKET.into(),
            s3_object: format!("AWSLogs/111122223333/CloudTrail/us-east-2/2026/11/27/log-{hour}.json.gz"),
            hash_value: format!("{hour:064x}"),
            hash_algorithm: "SHA-256".into(),
        }],
    };
    Fetched {
        bucket: BUCKET.into(),
        name: trail().digest_name(&k, "us-east-2"),
        key: k,
        body: Body::Read {
            sha256: format!("{:064x}", hour + 1000),
            signature: Some(format!("{:0512x}", hour + 2000)),
            algorithm: Some(SIGNATURE_ALGORITHM.into()),
            file: Ok(Box::new(file)),
        },
    }
}

fn valid(f: &Fetched) -> Checked {
    Checked { fetched: f.clone(), status: Status::Valid }
}

/// Hours 1 to 5, each linked to the one before; hour 1 to hour 0, before the window.
fn chain() -> Vec<Fetched> {
    let mut out = vec![digest(0, None)];
    for hour in 1..=5 {
        let next = digest(hour, out.last());
        out.push(next);
    }
    out
}

fn kinds(r: &RegionReport) -> Vec<(FindingKind, String)> {
    r.findings.iter().map(|f| (f.kind, f.object.clone())).collect()
}

#[test]
fn an_intact_chain_has_no_findings_and_vouches_for_every_log_file() {
    let all = chain();
    let listed: Vec<Checked> = all[1..].iter().map(valid).collect();
    assert_eq!(
        outside(&listed, window().start),
        [(BUCKET.to_string(), key(0))],
        "the predecessor before the window is read"
    );
    let (r, logs) = judge("us-east-2", FOLDER, &window(), listed, &all[..1]);
    assert_eq!(kinds(&r), []);
    assert_eq!((r.digests.valid, r.chain.links, r.chain.broken), (5, 5, 0));
    assert_eq!(logs.len(), 5);
    assert_eq!(logs[0].digest, all[1].uri());
}

#[test]
fn a_deleted_digest_is_named_once() {
    let all = chain();
    let listed: Vec<Checked> = [1, 2, 4, 5].iter().map(|&h| valid(&all[h])).collect();
    assert_eq!(
        outside(&listed, window().start),
        [(BUCKET.to_string(), key(0))],
        "hour 3 is inside the listing: missing without a read"
    );
    let (r, _) = judge("us-east-2", FOLDER, &window(), listed, &all[..1]);
    assert_eq!(kinds(&r), [(FindingKind::DigestMissing, format!("s3://{BUCKET}/{}", key(3)))]);
    assert!(
        r.findings[0].detail.contains(file_name(&key(4))),
        "names the digest that records it: {}",
        r.findings[0].detail
    );
    assert_eq!(r.findings[0].related, Some(all[4].uri()));
    assert_eq!(r.digests.missing, 1);
}

#[test]
fn a_deleted_predecessor_before_the_window_is_missing_too() {
    let all = chain();
    let listed: Vec<Checked> = all[1..].iter().map(valid).collect();
    let gone = Fetched { body: Body::Missing, ..all[0].clone() };
    let (r, _) = judge("us-east-2", FOLDER, &window(), listed, &[gone]);
    assert_eq!(kinds(&r), [(FindingKind::DigestMissing, all[0].uri())]);
}

#[test]
fn a_replaced_digest_breaks_the_link_to_it() {
    let mut all = chain();
    // Hour 3 replaced by another file that carries a valid signature of its own.
    if let Body::Read { sha256, signature, .. } = &mut all[3].body {
        *sha256 = "00".repeat(32);
        *signature = Some("11".repeat(256));
    }
    let listed: Vec<Checked> = all[1..].iter().map(valid).collect();
    let (r, _) = judge("us-east-2", FOLDER, &window(), listed, &all[..1]);
    assert_eq!(kinds(&r), [(FindingKind::ChainBroken, all[3].uri())]);
    let detail = &r.findings[0].detail;
    assert!(detail.contains("previousDigestHashValue") && detail.contains("previousDigestSignature"), "{detail}");
    assert_eq!(r.chain.broken, 1);
}

#[test]
fn an_altered_digest_is_reported_and_its_links_are_not_trusted() {
    let mut all = chain();
    // Hour 3's file was changed: its signature fails, and hour 4's record of it differs.
    if let Body::Read { sha256, .. } = &mut all[3].body {
        *sha256 = "00".repeat(32);
    }
    let mut listed: Vec<Checked> = all[1..].iter().map(valid).collect();
    listed[2].status = Status::Altered("the signature does not verify".into());
    let (r, logs) = judge("us-east-2", FOLDER, &window(), listed, &all[..1]);
    assert_eq!(kinds(&r), [(FindingKind::DigestAltered, all[3].uri())]);
    assert_eq!(logs.len(), 4, "the altered digest's log list is not used");
    assert_eq!(r.chain.links, 4);
}

#[test]
fn a_skipped_digest_is_a_broken_chain() {
    let mut all = chain();
    // Hour 4 records hour 2 as its predecessor: hour 3 is outside the chain.
    let relinked = digest(4, Some(&all[2]));
    all[4] = relinked;
    let listed: Vec<Checked> = all[1..].iter().map(valid).collect();
    let (r, _) = judge("us-east-2", FOLDER, &window(), listed, &all[..1]);
    assert_eq!(kinds(&r), [(FindingKind::ChainBroken, all[3].uri())]);
    assert!(r.findings[0].detail.contains("no later digest links to it"), "{}", r.findings[0].detail);
}

#[test]
fn a_restarted_chain_is_a_gap_not_tampering() {
    let mut all = chain();
    all[3] = digest(3, None);
    let listed: Vec<Checked> = all[1..].iter().map(valid).collect();
    let (r, _) = judge("us-east-2", FOLDER, &window(), listed, &all[..1]);
    assert_eq!(kinds(&r), [(FindingKind::Gap, all[3].uri())]);
    assert!(!r.findings[0].kind.is_invalid());
    assert_eq!((r.chain.gaps, r.chain.broken), (1, 0));
}

#[test]
fn backfill_digests_are_checked_but_stand_outside_the_chain() {
    let all = chain();
    let mut backfill = digest(3, None);
    backfill.key = key(3).replace("Z.json.gz", "Z_backfill.json.gz");
    backfill.name = trail().digest_name(&backfill.key, "us-east-2");
    let mut listed: Vec<Checked> = all[1..].iter().map(valid).collect();
    listed.push(valid(&backfill));
    let (r, logs) = judge("us-east-2", FOLDER, &window(), listed, &all[..1]);
    assert_eq!(kinds(&r), []);
    assert_eq!((r.digests.valid, logs.len()), (6, 6));
}

#[test]
fn a_stale_chain_and_an_empty_region_are_gaps() {
    let all = chain();
    let listed: Vec<Checked> = all[1..=2].iter().map(valid).collect();
    let (r, _) = judge("us-east-2", FOLDER, &window(), listed, &all[..1]);
    assert_eq!(kinds(&r), [(FindingKind::Gap, all[2].uri())]);
    assert!(r.findings[0].detail.contains("no digest after this one"));
    let (r, _) = judge("eu-west-1", FOLDER, &window(), vec![], &[]);
    assert_eq!(r.chain.gaps, 1);
    assert_eq!(kinds(&r), [(FindingKind::Gap, FOLDER.to_string())]);
    assert!(r.findings[0].detail.contains("no digest file"));
}

#[test]
fn digests_that_are_moved_unsigned_or_signed_by_an_unknown_key_are_named() {
    let keys = PublicKeys::default();
    let mut moved = chain()[1].clone();
    moved.key = key(9);
    let status = check(&moved, &keys, KeyAuthority::CloudTrail, "us-east-2");
    assert!(matches!(&status, Status::Altered(why) if why.contains("moved or copied")), "{status:?}");
    let mut unsigned = chain()[1].clone();
    if let Body::Read { signature, .. } = &mut unsigned.body {
        *signature = None;
    }
    assert!(
        matches!(check(&unsigned, &keys, KeyAuthority::CloudTrail, "us-east-2"), Status::Altered(why) if why.contains("no signature metadata"))
    );
    let d = &chain()[1];
    assert!(
        matches!(check(d, &keys, KeyAuthority::CloudTrail, "us-east-2"), Status::Altered(why) if why.contains("CloudTrail does not list"))
    );
    assert!(
        matches!(check(d, &keys, KeyAuthority::Files, "us-east-2"), Status::Unverified(why) if why.contains("no public key with fingerprint ab"))
    );
}
