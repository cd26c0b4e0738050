//! `ctguard validate-logs` and verify's log_integrity check against the emulator.
//!
//! The emulator delivers no digest files, so each test delivers them itself, as CloudTrail does
//! and as AWS's "CloudTrail digest file structure" page describes: gzipped CloudTrail log files
//! under `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`, an hourly digest per region that
//! lists them with the SHA-256 of their uncompressed content and records the previous digest's
//! hash and signature, signed SHA256withRSA with a key made for the test, the signature in the
//! object's `signature` metadata. The test registers the public key with the emulator's
//! ListPublicKeys (which moto lacks; tests/emulator/server.py answers it).

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures::{StreamExt, stream};
use ring::rand::SystemRandom;
use ring::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Serialize;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

const PREFIX: &str = "cloudtrail";
const ORG: &str = "o-aa11bb22cc";

/// A CloudTrail signing key pair of one region, made for the test.
struct Signer {
    key: RsaKeyPair,
    /// Base64 of the DER RSAPublicKey, as ListPublicKeys' `Value`.
    public: String,
    fingerprint: String,
}

impl Signer {
    /// A fresh 2048-bit key, made by the `cryptography` package in the emulator's virtualenv
    /// (ring verifies and signs RSA but does not generate keys).
    fn new() -> Signer {
        let script = "import base64, hashlib\n\
            from cryptography.hazmat.primitives import serialization as s\n\
            from cryptography.hazmat.primitives.asymmetric import rsa\n\
            k = rsa.generate_private_key(public_exponent=65537, key_size=2048)\n\
            der = k.public_key().public_bytes(s.Encoding.DER, s.PublicFormat.PKCS1)\n\
            print(base64.b64encode(k.private_bytes(s.Encoding.DER, s.PrivateFormat.PKCS8, s.NoEncryption())).decode())\n\
            print(hashlib.md5(der).hexdigest())";
        let out = std::process::Command::new(repo().join(".venv/bin/python"))
            .args(["-c", script])
            .output()
            .expect("the emulator's Python runs (scripts/emulator-setup installs it)");
        assert!(out.status.success(), "key generation failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let pkcs8 = aws_smithy_types::base64::decode(lines.next().unwrap()).unwrap();
        let key = RsaKeyPair::from_pkcs8(&pkcs8).expect("a PKCS #8 RSA key");
        let public = aws_smithy_types::base64::encode(key.public_key().as_ref());
        // CloudTrail's fingerprints are the MD5 of the DER key (AWS's sample keys bear this out).
        Signer { key, public, fingerprint: lines.next().unwrap().to_string() }
    }

    fn sign(&self, text: &str) -> String {
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), text.as_bytes(), &mut signature).unwrap();
        hex::encode(signature)
    }

    /// This key as ListPublicKeys lists it, valid for the month around now.
    fn listed(&self) -> Value {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        json!({"Value": self.public, "Fingerprint": self.fingerprint,
               "ValidityStartTime": now - 30 * 86400, "ValidityEndTime": now + 30 * 86400})
    }
}

/// A digest file's fields, in the order of AWS's sample.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct DigestFile {
    aws_account_id: String,
    digest_start_time: String,
    digest_end_time: String,
    digest_s3_bucket: String,
    digest_s3_object: String,
    digest_public_key_fingerprint: String,
    digest_signature_algorithm: String,
    newest_event_time: Option<String>,
    oldest_event_time: Option<String>,
    previous_digest_s3_bucket: Option<String>,
    previous_digest_s3_object: Option<String>,
    previous_digest_hash_value: Option<String>,
    previous_digest_hash_algorithm: Option<String>,
    previous_digest_signature: Option<String>,
    log_files: Vec<LogFileEntry>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct LogFileEntry {
    s3_bucket: String,
    s3_object: String,
    hash_value: String,
    hash_algorithm: String,
    newest_event_time: String,
    oldest_event_time: String,
}

/// One delivered object.
#[derive(Debug, Clone)]
struct Object {
    key: String,
    body: Vec<u8>,
    /// Digest files carry their signature in metadata.
    signature: Option<String>,
}

/// A digest as delivered, with the log files it lists.
#[derive(Debug, Clone)]
struct Delivered {
    file: DigestFile,
    digest: Object,
    logs: Vec<Object>,
}

fn stamp(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn rfc3339(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn day(t: OffsetDateTime) -> String {
    format!("{:04}/{:02}/{:02}", t.year(), u8::from(t.month()), t.day())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// `AWSLogs/<account>/` or `AWSLogs/<org>/<account>/`, under the trail's prefix.
fn account_root(org: Option<&str>) -> String {
    match org {
        Some(org) => format!("{PREFIX}/AWSLogs/{org}/{ACCOUNT}/"),
        None => format!("{PREFIX}/AWSLogs/{ACCOUNT}/"),
    }
}

/// A CloudTrail log file with `n` management events, all before `at`.
fn log_file(region: &str, at: OffsetDateTime, n: usize) -> Value {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let t = at - Duration::minutes(i as i64 + 1);
            json!({
                "eventVersion": "1.11",
                "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLEID:agent-session",
                    "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/AIAgentRole/agent-session"), "accountId": ACCOUNT},
                "eventTime": rfc3339(t),
                "eventSource": "ec2.amazonaws.com",
                "eventName": "DescribeInstances",
                "awsRegion": region,
                "sourceIPAddress": "203.0.113.10",
                "userAgent": "aws-sdk-rust/1.3.9",
                "requestParameters": {"maxResults": 100},
                "responseElements": null,
                "requestID": format!("{:08x}-0000-4000-8000-{:012x}", at.unix_timestamp(), i),
                "eventID": format!("{:08x}-1111-4000-8000-{:012x}", at.unix_timestamp(), i),
                "readOnly": true,
                "eventType": "AwsApiCall",
                "managementEvent": true,
                "recipientAccountId": ACCOUNT,
                "eventCategory": "Management"
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The string CloudTrail signs, per "Custom implementations of CloudTrail log file integrity
/// validation".
fn signing_string(file: &DigestFile, uncompressed: &[u8]) -> String {
    format!(
        "{}\n{}/{}\n{}\n{}",
        file.digest_end_time,
        file.digest_s3_bucket,
        file.digest_s3_object,
        sha256_hex(uncompressed),
        file.previous_digest_signature.as_deref().unwrap_or("null")
    )
}

/// Serializes, gzips and signs a digest file.
fn seal(signer: &Signer, file: &DigestFile) -> Object {
    let json = serde_json::to_vec(file).unwrap();
    let signature = signer.sign(&signing_string(file, &json));
    Object { key: file.digest_s3_object.clone(), body: gzip(&json), signature: Some(signature) }
}

/// A region's hourly digests ending at `ends`, chained, the first a starting digest, each
/// listing `logs` log files.
fn deliver(signer: &Signer, region: &str, org: Option<&str>, ends: &[OffsetDateTime], logs: usize) -> Vec<Delivered> {
    let root = account_root(org);
    let mut out: Vec<Delivered> = Vec::new();
    for (n, &end) in ends.iter().enumerate() {
        let (log_objects, entries): (Vec<Object>, Vec<LogFileEntry>) = (0..logs)
            .map(|i| {
                let at = end - Duration::minutes(50 - 15 * i as i64);
                let key = format!(
                    "{root}CloudTrail/{region}/{}/{ACCOUNT}_CloudTrail_{region}_{}Z_{:016x}.json.gz",
                    day(at),
                    &stamp(at)[..13],
                    n * 100 + i
                );
                let json = serde_json::to_vec(&log_file(region, at, 5 + i)).unwrap();
                let entry = LogFileEntry {
                    s3_bucket: BUCKET.into(),
                    s3_object: key.clone(),
                    hash_value: sha256_hex(&json),
                    hash_algorithm: "SHA-256".into(),
                    newest_event_time: rfc3339(at - Duration::minutes(1)),
                    oldest_event_time: rfc3339(at - Duration::minutes(5 + i as i64)),
                };
                (Object { key, body: gzip(&json), signature: None }, entry)
            })
            .unzip();
        let key = format!(
            "{root}CloudTrail-Digest/{region}/{}/{ACCOUNT}_CloudTrail-Digest_{region}_{TRAIL}_{REGION}_{}.json.gz",
            day(end),
            stamp(end)
        );
        let previous = out.last();
        let file = DigestFile {
            aws_account_id: ACCOUNT.into(),
            digest_start_time: rfc3339(end - Duration::HOUR),
            digest_end_time: rfc3339(end),
            digest_s3_bucket: BUCKET.into(),
            digest_s3_object: key,
            digest_public_key_fingerprint: signer.fingerprint.clone(),
            digest_signature_algorithm: "SHA256withRSA".into(),
            newest_event_time: entries.last().map(|e| e.newest_event_time.clone()),
            oldest_event_time: entries.first().map(|e| e.oldest_event_time.clone()),
            previous_digest_s3_bucket: previous.map(|_| BUCKET.to_string()),
            previous_digest_s3_object: previous.map(|p| p.digest.key.clone()),
            previous_digest_hash_value: previous.map(|p| sha256_hex(&serde_json::to_vec(&p.file).unwrap())),
            previous_digest_hash_algorithm: previous.map(|_| "SHA-256".to_string()),
            previous_digest_signature: previous.and_then(|p| p.digest.signature.clone()),
            log_files: entries,
        };
        let digest = seal(signer, &file);
        out.push(Delivered { file, digest, logs: log_objects });
    }
    out
}

/// `count` hourly digest end times, the last 20 minutes ago.
fn hourly(count: usize) -> Vec<OffsetDateTime> {
    let last = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - Duration::minutes(20);
    (0..count).rev().map(|i| last - Duration::hours(i as i64)).collect()
}

async fn create_bucket(emu: &Emulator) {
    emu.s3().await.create_bucket().bucket(BUCKET).send().await.unwrap();
}

async fn put_all(emu: &Emulator, objects: Vec<Object>) {
    let s3 = emu.s3().await;
    stream::iter(objects)
        .map(|o| {
            let s3 = s3.clone();
            async move {
                let mut put = s3.put_object().bucket(BUCKET).key(&o.key).body(ByteStream::from(o.body));
                if let Some(sig) = o.signature {
                    put = put.metadata("signature", sig).metadata("signature-algorithm", "SHA256withRSA");
                }
                put.send().await.unwrap_or_else(|e| panic!("putting {}: {e:?}", o.key));
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

fn objects(chain: &[Delivered]) -> Vec<Object> {
    chain.iter().flat_map(|d| std::iter::once(d.digest.clone()).chain(d.logs.iter().cloned())).collect()
}

fn uri(key: &str) -> String {
    format!("s3://{BUCKET}/{key}")
}

/// `--start` half an hour before the second digest ends (the first is read as its
/// predecessor), `--end` five minutes after the last.
fn window(chain: &[Delivered]) -> [String; 4] {
    let at = |d: &Delivered| {
        time::OffsetDateTime::parse(&d.file.digest_end_time, &time::format_description::well_known::Rfc3339).unwrap()
    };
    let start = at(&chain[1]) - Duration::minutes(30);
    let end = at(chain.last().unwrap()) + Duration::minutes(5);
    ["--start".into(), rfc3339(start), "--end".into(), rfc3339(end)]
}

fn validate(emu: &Emulator, extra: &[&str]) -> Run {
    let mut args = vec!["validate-logs"];
    args.extend(extra);
    emu.ctguard(&args)
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", run.stdout))
}

/// The findings of a JSON report: (kind, object).
fn findings(doc: &Value) -> BTreeSet<(String, String)> {
    doc["regions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap().iter())
        .map(|f| (f["kind"].as_str().unwrap().to_string(), f["object"].as_str().unwrap().to_string()))
        .collect()
}

fn read_only_actions() -> BTreeSet<String> {
    let r = run(ctguard_cmd().args(["permissions", "--read-only"]));
    r.expect(0);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| match &s["Action"] {
            Value::Array(list) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Value::String(a) => vec![a.clone()],
            _ => Vec::new(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_intact_chain_validates_in_the_account_and_organization_layouts() {
    let emu = Emulator::start();
    create_bucket(&emu).await;
    let (east, west) = (Signer::new(), Signer::new());
    let ends = hourly(6);
    let us = deliver(&east, "us-east-1", None, &ends, 3);
    let eu = deliver(&west, "eu-west-1", Some(ORG), &ends, 2);
    put_all(&emu, objects(&us).into_iter().chain(objects(&eu)).collect()).await;
    emu.register_public_keys("us-east-1", json!([east.listed()]));
    emu.register_public_keys("eu-west-1", json!([west.listed()]));

    emu.clear_requests();
    let w = window(&us);
    let args: Vec<&str> = w.iter().map(String::as_str).collect();
    let human = validate(&emu, &args);
    human.expect(0);
    assert!(
        human.stdout.contains(
            "Log file integrity of trail ctguard-audit in s3://ctguard-audit-123456789012-us-east-1/cloudtrail"
        ),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("eu-west-1 (o-aa11bb22cc) digests 5 valid; log files 10 valid; chain 5 links"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("us-east-1        digests 5 valid; log files 15 valid; chain 5 links"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("Valid: 10 digest files and 25 log files in 2 regions are as CloudTrail delivered them."),
        "{}",
        human.stdout
    );

    // Read-only, and inside the read-only policy.
    let requests = emu.requests();
    assert!(emu.mutating_requests().is_empty(), "{:?}", emu.mutating_requests());
    let seen: BTreeSet<String> = requests.iter().map(Request::iam_action).collect();
    let allowed = read_only_actions();
    let outside: Vec<&String> = seen.difference(&allowed).collect();
    assert!(outside.is_empty(), "validate-logs called actions outside the read-only policy: {outside:?}");
    for action in ["cloudtrail:ListPublicKeys", "s3:GetObject", "s3:ListBucket"] {
        assert!(seen.contains(action), "{action} not called: {seen:?}");
    }
    let key_calls = requests.iter().filter(|r| r.operation.ends_with("ListPublicKeys")).count();
    assert_eq!(key_calls, 2, "one ListPublicKeys per region");

    let mut json_args = args.clone();
    json_args.extend(["--format", "json"]);
    let doc = json_of(validate(&emu, &json_args).expect(0));
    assert_eq!(doc["format_version"], "1");
    assert_eq!(doc["command"], "validate-logs");
    assert_eq!(doc["status"], "valid");
    assert_eq!(doc["summary"]["digests"], json!({"valid": 10, "missing": 0, "altered": 0, "unverified": 0}));
    assert_eq!(doc["summary"]["log_files"], json!({"valid": 25, "missing": 0, "altered": 0, "unreadable": 0}));
    assert_eq!(doc["summary"]["chain"], json!({"links": 10, "broken": 0, "gaps": 0}));
    assert_eq!(findings(&doc), BTreeSet::new());

    // With the whole history in the window, the first digest starts the chain: a gap before
    // it, which is not a failure.
    let doc = json_of(validate(&emu, &["--start", "12h", "--format", "json"]).expect(0));
    assert_eq!(doc["summary"]["digests"]["valid"], 12);
    assert_eq!(doc["summary"]["chain"]["gaps"], 2, "{doc:#}");
    assert!(findings(&doc).contains(&("gap".to_string(), uri(&us[0].digest.key))));
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_and_altered_files_and_a_broken_link_are_each_named() {
    let emu = Emulator::start();
    create_bucket(&emu).await;
    let signer = Signer::new();
    let chain = deliver(&signer, "us-east-1", None, &hourly(11), 3);
    put_all(&emu, objects(&chain)).await;
    emu.register_public_keys("us-east-1", json!([signer.listed()]));
    let s3 = emu.s3().await;

    // A log file of digest 1 deleted.
    let deleted_log = chain[1].logs[0].key.clone();
    s3.delete_object().bucket(BUCKET).key(&deleted_log).send().await.unwrap();
    // A log file of digest 2 rewritten with one record fewer.
    let altered_log = chain[2].logs[1].key.clone();
    let mut records = log_file("us-east-1", OffsetDateTime::now_utc(), 6);
    records["Records"].as_array_mut().unwrap().remove(0);
    put_all(
        &emu,
        vec![Object { key: altered_log.clone(), body: gzip(&serde_json::to_vec(&records).unwrap()), signature: None }],
    )
    .await;
    // Digest 4 deleted.
    let deleted_digest = chain[4].digest.key.clone();
    s3.delete_object().bucket(BUCKET).key(&deleted_digest).send().await.unwrap();
    // Digest 6 edited (a log file dropped from its list), its signature metadata kept.
    let mut edited = chain[6].file.clone();
    edited.log_files.pop();
    let altered_digest = Object { body: gzip(&serde_json::to_vec(&edited).unwrap()), ..chain[6].digest.clone() };
    put_all(&emu, vec![altered_digest.clone()]).await;
    // Digest 9 replaced by another that is validly signed (as by a stolen key), so it holds up
    // on its own; only digest 10's record of its predecessor shows it is not the one delivered.
    let mut forged = chain[9].file.clone();
    forged.log_files.truncate(1);
    put_all(&emu, vec![seal(&signer, &forged)]).await;

    let w = window(&chain);
    let mut args: Vec<&str> = w.iter().map(String::as_str).collect();
    let human = validate(&emu, &args);
    human.expect(2);
    for object in [&deleted_log, &altered_log, &deleted_digest, &altered_digest.key, &chain[9].digest.key] {
        assert!(human.stdout.contains(&uri(object)), "{object} not named:\n{}", human.stdout);
    }
    assert!(human.stdout.contains("Invalid: 1 digest file missing, 1 digest file altered, 1 log file missing, 1 log file altered, 1 broken link in the chain."), "{}", human.stdout);

    args.extend(["--format", "json"]);
    let doc = json_of(validate(&emu, &args).expect(2));
    assert_eq!(doc["status"], "invalid");
    let expected: BTreeSet<(String, String)> = [
        ("log_missing", &deleted_log),
        ("log_altered", &altered_log),
        ("digest_missing", &deleted_digest),
        ("digest_altered", &altered_digest.key),
        ("chain_broken", &chain[9].digest.key),
    ]
    .into_iter()
    .map(|(k, o)| (k.to_string(), uri(o)))
    .collect();
    assert_eq!(findings(&doc), expected, "{doc:#}");
    // Ten digests in the window: one deleted, one altered; the eight others vouch for their
    // three log files each (the forged one for its one), of which two are gone or changed.
    assert_eq!(doc["summary"]["digests"], json!({"valid": 8, "missing": 1, "altered": 1, "unverified": 0}));
    assert_eq!(doc["summary"]["log_files"], json!({"valid": 20, "missing": 1, "altered": 1, "unreadable": 0}));
    let region = &doc["regions"][0];
    let finding =
        |kind: &str| region["findings"].as_array().unwrap().iter().find(|f| f["kind"] == kind).unwrap().clone();
    let name = |d: &Delivered| d.digest.key.rsplit('/').next().unwrap().to_string();
    // Each names the evidence: the digest that records or lists the object.
    for (kind, evidence, words) in [
        ("digest_missing", &chain[5], "records it as its previous digest"),
        ("log_missing", &chain[1], "lists it"),
        ("log_altered", &chain[2], "the SHA-256 of its uncompressed content is"),
        ("chain_broken", &chain[10], "previousDigestHashValue"),
    ] {
        let f = finding(kind);
        assert_eq!(f["related"], uri(&evidence.digest.key), "{f:#}");
        let detail = f["detail"].as_str().unwrap();
        assert!(detail.contains(&name(evidence)) && detail.contains(words), "{f:#}");
    }
    assert!(finding("digest_altered")["detail"].as_str().unwrap().contains("signature does not verify"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_wrong_public_key_is_reported() {
    let emu = Emulator::start();
    create_bucket(&emu).await;
    let (signer, stranger) = (Signer::new(), Signer::new());
    let chain = deliver(&signer, "us-east-1", None, &hourly(3), 1);
    put_all(&emu, objects(&chain)).await;
    let w = window(&chain);
    let window: Vec<&str> = w.iter().map(String::as_str).collect();

    // CloudTrail lists only another key: the digests were not signed by CloudTrail.
    emu.register_public_keys("us-east-1", json!([stranger.listed()]));
    let run = validate(&emu, &window);
    run.expect(2);
    assert!(
        run.stdout.contains(&format!(
            "signed with public key {}, which CloudTrail does not list for us-east-1",
            signer.fingerprint
        )),
        "{}",
        run.stdout
    );

    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, keys: Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&json!({"PublicKeyList": keys})).unwrap()).unwrap();
        path.display().to_string()
    };
    let with = |path: &str| {
        let mut args = window.clone();
        args.extend(["--public-keys", path]);
        emu.clear_requests();
        let run = validate(&emu, &args);
        let asked = emu.requests().iter().filter(|r| r.operation.ends_with("ListPublicKeys")).count();
        assert_eq!(asked, 0, "--public-keys replaces ListPublicKeys");
        run
    };

    // The right fingerprint with another key's value: the signatures do not verify.
    let mut wrong = stranger.listed();
    wrong["Fingerprint"] = json!(signer.fingerprint);
    let run = with(&file("wrong.json", json!([wrong])));
    run.expect(2);
    assert!(
        run.stdout.contains(&format!("the signature does not verify with public key {}", signer.fingerprint)),
        "{}",
        run.stdout
    );

    // No key with the digests' fingerprint in the file: nothing proven either way.
    let run = with(&file("other.json", json!([stranger.listed()])));
    run.expect(1);
    assert!(
        run.stdout.contains(&format!("no public key with fingerprint {} was given", signer.fingerprint)),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("could not decide: 2 digest files and 0 log files could not be checked"),
        "{}",
        run.stderr
    );

    // The right key, air-gapped: as the AWS CLI prints it (its blob base64-encoded once more).
    let mut cli = signer.listed();
    cli["Value"] = json!(aws_smithy_types::base64::encode(signer.public.as_bytes()));
    with(&file("right.json", json!([stranger.listed(), cli]))).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_checks_log_integrity_when_the_profile_asks() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    run(ctguard_cmd().args(["profiles", "export", "ai-agent-guard"]).arg(dir.path())).expect(0);
    let path = dir.path().join("profiles/ai-agent-guard.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text =
        text.replacen("log_file_validation = true\n", "log_file_validation = true\nlog_integrity_hours = 6\n", 1);
    std::fs::write(&path, text).unwrap();
    let profile = path.display().to_string();
    emu.ctguard(&["apply", "--auto-approve", "-p", &profile]).expect(0);

    let signer = Signer::new();
    let chain = deliver(&signer, "us-east-1", None, &hourly(8), 2);
    put_all(&emu, objects(&chain)).await;
    emu.register_public_keys("us-east-1", json!([signer.listed()]));
    let check = "log files and digests intact over the last 6 hours";

    let ok = emu.ctguard(&["verify", "-p", &profile, "--format", "json"]);
    ok.expect(0);
    let doc = json_of(&ok);
    let found = doc["checks"].as_array().unwrap().iter().find(|c| c["name"] == check).expect("the check ran").clone();
    assert_eq!(found["ok"], true, "{found:#}");
    assert_eq!(found["address"], "cloudtrail_trail.ctguard-audit");
    assert!(found["detail"].as_str().unwrap().starts_with("6 digest files and 12 log files in 1 region"), "{found:#}");

    let altered = chain[6].logs[0].key.clone();
    put_all(&emu, vec![Object { key: altered.clone(), body: gzip(b"{\"Records\": []}"), signature: None }]).await;
    let bad = emu.ctguard(&["verify", "-p", &profile]);
    bad.expect(2);
    assert!(
        bad.stdout.contains(check) && bad.stdout.contains(&format!("log file altered {}", uri(&altered))),
        "{}",
        bad.stdout
    );
}

/// A day of hourly digests in four regions, three log files each: every object read once.
#[tokio::test(flavor = "multi_thread")]
async fn a_day_in_four_regions_validates_reading_each_object_once() {
    let emu = Emulator::start();
    create_bucket(&emu).await;
    let regions = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];
    let ends = hourly(25);
    let mut all = Vec::new();
    for region in regions {
        let signer = Signer::new();
        all.extend(objects(&deliver(&signer, region, None, &ends, 3)));
        emu.register_public_keys(region, json!([signer.listed()]));
    }
    put_all(&emu, all).await;

    emu.clear_requests();
    let started = Instant::now();
    let doc = json_of(validate(&emu, &["--format", "json"]).expect(0));
    let elapsed = started.elapsed();
    let t = &doc["summary"];
    let digests = t["digests"]["valid"].as_u64().unwrap();
    let logs = t["log_files"]["valid"].as_u64().unwrap();
    // The last 24 hours hold 24 digests per region, and the one before them is read for the link.
    assert_eq!(digests, 4 * 24, "{doc:#}");
    assert_eq!(logs, 4 * 24 * 3);
    let gets = emu.requests().iter().filter(|r| r.iam_action() == "s3:GetObject").count() as u64;
    assert_eq!(gets, digests + logs + 4, "each digest and log file once, and each region's predecessor");
    println!("validated {digests} digests and {logs} log files in {} regions in {elapsed:.2?}", regions.len());
}
