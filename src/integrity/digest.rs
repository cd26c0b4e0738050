//! One digest file, checked as AWS's "Custom implementations of CloudTrail log file integrity
//! validation" page specifies:
//!
//! - the file is gzipped JSON; its signature is the hex in the object's `signature` metadata
//!   (`x-amz-meta-signature`), made with `signature-algorithm` `SHA256withRSA`;
//! - the signed string is, joined by `\n`: `digestEndTime` as written in the file, the
//!   digest's S3 path `digestS3Bucket/digestS3Object`, the hex SHA-256 of the uncompressed
//!   file, and `previousDigestSignature` (`null` in a starting digest, as the AWS CLI writes
//!   it to match CloudTrail's own implementation);
//! - RSA PKCS #1 v1.5 with SHA-256 over that string, with the public key whose fingerprint is
//!   `digestPublicKeyFingerprint`;
//! - `previousDigestHashValue` is the hex SHA-256 of the previous digest's uncompressed file,
//!   and each `logFiles[].hashValue` the hex SHA-256 of the log file's uncompressed content.

use std::io::{self, Read, Write};

use flate2::read::MultiGzDecoder;
use ring::digest::{Context, SHA256};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde::Deserialize;

/// The algorithms CloudTrail documents; anything else cannot be checked.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
pub const HASH_ALGORITHM: &str = "SHA-256";

/// A digest file's fields, as CloudTrail writes them. Unknown fields are ignored: AWS may add
/// some, and they are covered by the signature anyway.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestFile {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    pub digest_s3_bucket: String,
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: String,
    pub previous_digest_s3_bucket: Option<String>,
    pub previous_digest_s3_object: Option<String>,
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: Option<String>,
    pub previous_digest_signature: Option<String>,
    pub log_files: Vec<LogFileEntry>,
}

/// One log file a digest vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFileEntry {
    pub s3_bucket: String,
    pub s3_object: String,
    pub hash_value: String,
    pub hash_algorithm: String,
}

impl DigestFile {
    /// Parses the uncompressed digest.
    pub fn parse(inflated: &[u8]) -> Result<DigestFile, String> {
        serde_json::from_slice(inflated).map_err(|e| format!("not a CloudTrail digest file: {e}"))
    }

    /// The previous digest, as `(bucket, key)`; `None` in a starting digest.
    pub fn previous(&self) -> Option<(&str, &str)> {
        Some((self.previous_digest_s3_bucket.as_deref()?, self.previous_digest_s3_object.as_deref()?))
    }
}

/// The string CloudTrail signs for a digest, given the hex SHA-256 of its uncompressed file.
pub fn signing_string(digest: &DigestFile, file_sha256_hex: &str) -> String {
    format!(
        "{}\n{}/{}\n{}\n{}",
        digest.digest_end_time,
        digest.digest_s3_bucket,
        digest.digest_s3_object,
        file_sha256_hex,
        digest.previous_digest_signature.as_deref().unwrap_or("null")
    )
}

/// Why a signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadSignature {
    /// The metadata is absent or not hex, or names another algorithm.
    Malformed(String),
    /// The RSA check failed: the file, its metadata or the key is not what CloudTrail signed.
    Mismatch,
}

/// Checks `signature_hex` over `signed` with the PKCS #1 DER `public_key`.
pub fn verify(public_key: &[u8], signed: &str, signature_hex: &str) -> Result<(), BadSignature> {
    let signature = hex::decode(signature_hex.trim())
        .map_err(|_| BadSignature::Malformed("the signature metadata is not hexadecimal".into()))?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| BadSignature::Mismatch)
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&SHA256, bytes))
}

/// Inflates a gzip file whole (digest files are a few kilobytes). Every gzip member is read, so
/// data appended after the first one is not silently ignored.
pub fn inflate(gzipped: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(gzipped.len() * 8);
    MultiGzDecoder::new(gzipped).read_to_end(&mut out)?;
    Ok(out)
}

/// Hex SHA-256 of a gzip file's uncompressed content, streamed: log files can be large.
pub fn sha256_of_gzip(gzipped: &[u8]) -> io::Result<String> {
    let mut hasher = Hasher(Context::new(&SHA256));
    io::copy(&mut MultiGzDecoder::new(gzipped), &mut hasher)?;
    Ok(hex::encode(hasher.0.finish()))
}

struct Hasher(Context);

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use ring::rand::SystemRandom;
    use ring::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};

    /// The sample digest from AWS's "CloudTrail digest file structure" page.
    const SAMPLE: &str = r#"{
  "awsAccountId": "111122223333",
  "digestStartTime": "2015-08-17T14:01:31Z",
  "digestEndTime": "2015-08-17T15:01:31Z",
  "digestS3Bucket": "S3-bucket-name",
  "digestS3Object": "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz",
  "digestPublicKeyFingerprint": "31e8b5433410dfb61a9dc45cc65b22ff",
  "digestSignatureAlgorithm": "SHA256withRSA",
  "newestEventTime": "2015-08-17T14:52:27Z",
  "oldestEventTime": "2015-08-17T14:42:27Z",
  "previousDigestS3Bucket": "S3-bucket-name",
  "previousDigestS3Object": "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T140131Z.json.gz",
  "previousDigestHashValue": "97fb791cf91ffc440d274f8190dbdd9aa09c34432aba82739df18b6d3c13df2d",
  "previousDigestHashAlgorithm": "SHA-256",
  "previousDigestSignature": "50887ccffad4c002b97caa37cc9dc626e3c680207d41d27fa5835458e066e0d3",
  "logFiles": [
    {
      "s3Bucket": "S3-bucket-name",
      "s3Object": "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/111122223333_CloudTrail_us-east-2_20150817T1445Z_9nYN7gp2eWAJHIfT.json.gz",
      "hashValue": "9bb6196fc6b84d6f075a56548feca262bd99ba3c2de41b618e5b6e22c1fc71f6",
      "hashAlgorithm": "SHA-256",
      "newestEventTime": "2015-08-17T14:52:27Z",
      "oldestEventTime": "2015-08-17T14:42:27Z"
    }
  ]
}"#;

    /// A 2048-bit RSA key made for these tests only, PKCS #8 (`openssl genpkey -algorithm RSA |
    /// openssl pkcs8 -topk8 -nocrypt -outform DER`).
    const TEST_KEY_PKCS8: &str = include_str!("test_key.pkcs8.b64");

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn the_sample_digest_parses() {
        let d = DigestFile::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(d.digest_public_key_fingerprint, "31e8b5433410dfb61a9dc45cc65b22ff");
        assert_eq!(d.previous().unwrap().0, "S3-bucket-name");
        assert_eq!(d.log_files.len(), 1);
        assert_eq!(d.log_files[0].hash_algorithm, HASH_ALGORITHM);
        let starting = SAMPLE
            .replace("\"S3-bucket-name\",\n  \"previousDigestS3Object\"", "null,\n  \"previousDigestS3Object\"")
            .replace(
                "\"previousDigestSignature\": \"50887ccffad4c002b97caa37cc9dc626e3c680207d41d27fa5835458e066e0d3\"",
                "\"previousDigestSignature\": null",
            );
        let d = DigestFile::parse(starting.as_bytes()).unwrap();
        assert_eq!(d.previous(), None);
        assert!(
            DigestFile::parse(b"{\"awsAccountId\": \"1\"}").unwrap_err().starts_with("not a CloudTrail digest file")
        );
    }

    #[test]
    fn the_signing_string_is_the_documented_one() {
        let d = DigestFile::parse(SAMPLE.as_bytes()).unwrap();
        let hash = sha256_hex(SAMPLE.as_bytes());
        assert_eq!(
            signing_string(&d, &hash),
            format!(
                "2015-08-17T15:01:31Z\n\
                 S3-bucket-name/AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz\n\
                 {hash}\n\
                 50887ccffad4c002b97caa37cc9dc626e3c680207d41d27fa5835458e066e0d3"
            )
        );
        let mut starting = d.clone();
        starting.previous_digest_signature = None;
        assert!(signing_string(&starting, &hash).ends_with(&format!("{hash}\nnull")));
    }

    #[test]
    fn hashes_are_of_the_uncompressed_bytes() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_hex(b"abc"), abc);
        let gz = gzip(b"abc");
        assert_eq!(sha256_of_gzip(&gz).unwrap(), abc);
        assert_eq!(sha256_hex(&inflate(&gz).unwrap()), abc);
        assert_ne!(sha256_hex(&gz), abc, "the compressed bytes hash differently");
        // A second gzip member appended to a log file changes its content, and its hash.
        let mut two = gz.clone();
        two.extend(gzip(b"def"));
        assert_eq!(sha256_of_gzip(&two).unwrap(), sha256_hex(b"abcdef"));
        let mut junk = gz.clone();
        junk.extend(b"trailing bytes");
        assert!(sha256_of_gzip(&junk).is_err(), "bytes after the gzip data are not ignored");
        assert!(inflate(b"{\"not\": \"gzip\"}").is_err());
    }

    #[test]
    fn a_signature_over_the_signing_string_verifies_and_any_change_breaks_it() {
        let pkcs8 = aws_smithy_types::base64::decode(TEST_KEY_PKCS8.split_whitespace().collect::<String>()).unwrap();
        let key = RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
        let public = key.public_key().as_ref().to_vec();
        let d = DigestFile::parse(SAMPLE.as_bytes()).unwrap();
        let signed = signing_string(&d, &sha256_hex(SAMPLE.as_bytes()));
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut signature).unwrap();
        let hex_sig = hex::encode(&signature);
        assert_eq!(verify(&public, &signed, &hex_sig), Ok(()));
        assert_eq!(verify(&public, &signed, &hex_sig.to_uppercase()), Ok(()), "hex in either case");
        let altered = SAMPLE.replace("14:52:27Z", "14:52:28Z");
        let resigned = signing_string(&DigestFile::parse(altered.as_bytes()).unwrap(), &sha256_hex(altered.as_bytes()));
        assert_eq!(verify(&public, &resigned, &hex_sig), Err(BadSignature::Mismatch));
        let mut flipped = signature.clone();
        flipped[10] ^= 1;
        assert_eq!(verify(&public, &signed, &hex::encode(flipped)), Err(BadSignature::Mismatch));
        assert!(matches!(verify(&public, &signed, "zz"), Err(BadSignature::Malformed(_))));
    }
}
