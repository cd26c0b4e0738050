//! CloudTrail's public keys, from ListPublicKeys or from a file holding what that call returns.
//!
//! CloudTrail signs each region's digests with a key pair of that region and names the key by
//! `digestPublicKeyFingerprint`; ListPublicKeys, called in that region, returns the keys used
//! in a time range with their fingerprints. A key's `Value` is the DER-encoded RSA public key
//! (PKCS #1 `RSAPublicKey`; AWS's sample output also shows the X.509 `SubjectPublicKeyInfo`
//! form). AWS warns that the encoding of that blob "is subject to change", and the AWS CLI
//! base64-decodes the blob it receives a second time, so both raw DER and base64 text of DER
//! are accepted here.

use std::collections::HashMap;
use std::path::Path;

use aws_smithy_types::base64;
use serde_json::Value;
use time::OffsetDateTime;

use crate::aws::AwsResultExt;

/// Keys by fingerprint, each as PKCS #1 DER (what ring verifies with).
#[derive(Debug, Clone, Default)]
pub struct PublicKeys {
    by_fingerprint: HashMap<String, Result<Vec<u8>, String>>,
}

impl PublicKeys {
    /// The PKCS #1 DER of the key with `fingerprint`: `None` if there is no such key, an error
    /// if the key that has it is not an RSA key.
    pub fn get(&self, fingerprint: &str) -> Option<Result<&[u8], &str>> {
        self.by_fingerprint.get(fingerprint).map(|k| k.as_deref().map_err(String::as_str))
    }

    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }

    pub fn extend(&mut self, other: PublicKeys) {
        self.by_fingerprint.extend(other.by_fingerprint);
    }

    fn insert(&mut self, fingerprint: String, der: Result<Vec<u8>, String>) {
        self.by_fingerprint.insert(fingerprint, der);
    }
}

/// Where the keys came from, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// CloudTrail ListPublicKeys, in each region, for the window.
    ListPublicKeys,
    /// `--public-keys` files.
    Files(Vec<String>),
}

impl KeySource {
    pub fn describe(&self) -> String {
        match self {
            KeySource::ListPublicKeys => "CloudTrail ListPublicKeys".into(),
            KeySource::Files(files) => files.join(", "),
        }
    }
}

/// Reads `--public-keys` files, each the JSON `aws cloudtrail list-public-keys` prints (or the
/// API returns). Every problem names the file and the JSON path.
pub fn from_files(paths: &[impl AsRef<Path>]) -> Result<PublicKeys, String> {
    let mut keys = PublicKeys::default();
    for path in paths {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| format!("--public-keys {}: {e}", path.display()))?;
        let found = parse_list(&text).map_err(|e| format!("--public-keys {}: {e}", path.display()))?;
        keys.extend(found);
    }
    Ok(keys)
}

const SHAPE: &str = "expected the JSON ListPublicKeys returns: {\"PublicKeyList\": [{\"Value\": \"<base64>\", \"Fingerprint\": \"<hex>\", ...}]}";

/// Parses the ListPublicKeys response document.
pub fn parse_list(text: &str) -> Result<PublicKeys, String> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| format!("line {} column {}: not JSON ({e}); {SHAPE}", e.line(), e.column()))?;
    // The API and the CLI say PublicKeyList; AWS's guide prints publicKeyList.
    let (name, list) = ["PublicKeyList", "publicKeyList"]
        .iter()
        .find_map(|k| doc.get(*k).map(|v| (*k, v)))
        .ok_or_else(|| format!("$: no PublicKeyList; {SHAPE}"))?;
    let list = list.as_array().ok_or_else(|| format!("$.{name}: not a list; {SHAPE}"))?;
    let mut keys = PublicKeys::default();
    for (i, entry) in list.iter().enumerate() {
        let at = format!("$.{name}[{i}]");
        let field = |f: &str| -> Result<&str, String> {
            entry
                .get(f)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| format!("{at}.{f}: missing or not a string; {SHAPE}"))
        };
        let fingerprint = field("Fingerprint")?;
        if !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{at}.Fingerprint: {fingerprint:?} is not hexadecimal; {SHAPE}"));
        }
        let value = field("Value")?;
        let der = base64::decode(value.trim())
            .ok()
            .and_then(|bytes| rsa_public_key(&bytes))
            .ok_or_else(|| format!("{at}.Value: not the base64 of a DER-encoded RSA public key; {SHAPE}"))?;
        keys.insert(fingerprint.to_ascii_lowercase(), Ok(der));
    }
    Ok(keys)
}

/// ListPublicKeys in one region, for the keys that signed digests between `start` and `end`.
pub async fn list(
    client: &aws_sdk_cloudtrail::Client,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> anyhow::Result<PublicKeys> {
    let region = client.config().region().map(|r| r.to_string()).unwrap_or_default();
    let to_sdk = |t: OffsetDateTime| aws_smithy_types::DateTime::from_secs(t.unix_timestamp());
    let mut pages = client.list_public_keys().start_time(to_sdk(start)).end_time(to_sdk(end)).into_paginator().send();
    let mut keys = PublicKeys::default();
    while let Some(page) = pages.next().await {
        let page = page.ctx(|| format!("listing CloudTrail's public keys in {region} (cloudtrail:ListPublicKeys)"))?;
        for key in page.public_key_list() {
            let Some(fingerprint) = key.fingerprint() else { continue };
            let der = key.value().and_then(|v| rsa_public_key(v.as_ref())).ok_or_else(|| {
                format!("ListPublicKeys in {region} returned a key that is not a DER-encoded RSA public key")
            });
            keys.insert(fingerprint.to_ascii_lowercase(), der);
        }
    }
    Ok(keys)
}

/// The PKCS #1 `RSAPublicKey` DER in `bytes`: raw DER or base64 text of it, as PKCS #1 or as
/// an X.509 `SubjectPublicKeyInfo` for rsaEncryption. `None` for anything else.
pub fn rsa_public_key(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.first() == Some(&0x30) {
        return pkcs1(bytes).map(<[u8]>::to_vec);
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let der = base64::decode(text.trim()).ok()?;
    pkcs1(&der).map(<[u8]>::to_vec)
}

/// rsaEncryption, 1.2.840.113549.1.1.1, as a DER OBJECT IDENTIFIER.
const RSA_ENCRYPTION: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The `RSAPublicKey` inside `der` (itself, or the BIT STRING of a SubjectPublicKeyInfo). Only
/// the framing is read here; ring checks the key itself when it verifies.
fn pkcs1(der: &[u8]) -> Option<&[u8]> {
    if is_rsa_public_key(der) {
        return Some(der);
    }
    // SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, subjectPublicKey BIT STRING }
    let (tag, body, rest) = tlv(der)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (tag, algorithm, after) = tlv(body)?;
    if tag != 0x30 || !algorithm.starts_with(RSA_ENCRYPTION) {
        return None;
    }
    let (tag, bits, end) = tlv(after)?;
    let inner = bits.strip_prefix(&[0u8])?;
    (tag == 0x03 && end.is_empty() && is_rsa_public_key(inner)).then_some(inner)
}

/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
fn is_rsa_public_key(der: &[u8]) -> bool {
    let Some((0x30, body, [])) = tlv(der) else { return false };
    let Some((0x02, _, after)) = tlv(body) else { return false };
    matches!(tlv(after), Some((0x02, _, [])))
}

/// One DER tag-length-value: (tag, value, what follows).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first and third keys of AWS's sample ListPublicKeys output: PKCS #1 and X.509 forms.
    const SAMPLE_PKCS1: &str = "MIIBCgKCAQEAn11L2YZ9h7onug2ILi1MWyHiMRsTQjfWE+pHVRLk1QjfWhirG+lpOa8NrwQ/r7Ah5bNL6HepznOU9XTDSfmmnP97mqyc7z/upfZdS/AHhYcGaz7n6Wc/RRBU6VmiPCrAUojuSk6/GjvA8iOPFsYDuBtviXarvuLPlrT9kAd4Lb+rFfR5peEgBEkhlzc5HuWO7S0y+KunqxX6jQBnXGMtxmPBPP0FylgWGNdFtks/4YSKcgqwH0YDcawP9GGGDAeCIqPWIXDLG1jOjRRzWfCmD0iJUkz8vTsn4hq/5ZxRFE7UBAUiVcGbdnDdvVfhF9C3dQiDq3k7adQIziLT0cShgQIDAQAB";
    const SAMPLE_SPKI: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqlzPJbvZJ42UdcmLfPUqXYNfOs6I8lCfao/tOs8CmzPOEdtLWugB9xoIUz78qVHdKIqxbaG4jWHfJBiOSSFBM0lt8cdVo4TnRa7oG9io5pysS6DJhBBAeXsicufsiFJR+wrUNh8RSLxL4k6G1+BhLX20tJkZ/erT97tDGBujAelqseGg3vPZbTx9SMfOLN65PdLFudLP7Gat0Z9p5jw/rjpclKfo9Bfc3heeBxWGKwBBOKnFAaN9V57pOaosCvPKmHd9bg7jsQkI9Xp22IzGLsTFJZYVA3KiTAElDMu80iFXPHEq9hKNbt9e4URFam+1utKVEiLkR2disdCmPTK0VQIDAQAB";

    #[test]
    fn both_key_forms_and_both_encodings_give_pkcs1() {
        let der = base64::decode(SAMPLE_PKCS1).unwrap();
        assert_eq!(rsa_public_key(&der).as_deref(), Some(der.as_slice()), "raw PKCS #1 DER");
        assert_eq!(rsa_public_key(SAMPLE_PKCS1.as_bytes()).as_deref(), Some(der.as_slice()), "base64 text");
        let spki = base64::decode(SAMPLE_SPKI).unwrap();
        let inner = rsa_public_key(&spki).unwrap();
        assert_eq!(inner, spki[24..].to_vec(), "the RSAPublicKey inside the SubjectPublicKeyInfo");
        assert_eq!(rsa_public_key(b"not a key"), None);
        assert_eq!(rsa_public_key(&der[..der.len() - 1]), None, "truncated");
    }

    #[test]
    fn the_list_public_keys_document_parses_in_the_cli_and_guide_spellings() {
        let doc = format!(
            r#"{{"PublicKeyList": [
                {{"ValidityStartTime": "2015-07-08T01:04:01+00:00", "ValidityEndTime": "2015-08-07T01:04:01+00:00",
                  "Value": "{SAMPLE_PKCS1}", "Fingerprint": "8EBA5DB5BEA9B640D1C96A77256FE7F2"}},
                {{"Value": "{}", "Fingerprint": "31e8b5433410dfb61a9dc45cc65b22ff"}}
            ]}}"#,
            base64::encode(SAMPLE_SPKI)
        );
        let keys = parse_list(&doc).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(
            matches!(keys.get("8eba5db5bea9b640d1c96a77256fe7f2"), Some(Ok(_))),
            "fingerprints compare in lowercase"
        );
        assert!(matches!(keys.get("31e8b5433410dfb61a9dc45cc65b22ff"), Some(Ok(_))), "base64 of base64 of DER");
        let guide = format!(r#"{{"publicKeyList": [{{"Value": "{SAMPLE_PKCS1}", "Fingerprint": "ab"}}]}}"#);
        assert_eq!(parse_list(&guide).unwrap().len(), 1);
    }

    #[test]
    fn a_document_of_another_shape_is_refused_with_its_path() {
        let cases = [
            ("[]", "$: no PublicKeyList"),
            (r#"{"Keys": []}"#, "$: no PublicKeyList"),
            (r#"{"PublicKeyList": {}}"#, "$.PublicKeyList: not a list"),
            (r#"{"PublicKeyList": [{"Value": "MIIB"}]}"#, "$.PublicKeyList[0].Fingerprint: missing"),
            (r#"{"PublicKeyList": [{"Fingerprint": "ab"}]}"#, "$.PublicKeyList[0].Value: missing"),
            (r#"{"PublicKeyList": [{"Fingerprint": "xyz", "Value": "MIIB"}]}"#, "is not hexadecimal"),
            (
                r#"{"PublicKeyList": [{"Fingerprint": "ab", "Value": "bm90IGEga2V5"}]}"#,
                "$.PublicKeyList[0].Value: not the base64 of a DER-encoded RSA public key",
            ),
            ("{\"PublicKeyList\": [", "line 1 column 19: not JSON"),
        ];
        for (doc, expected) in cases {
            let err = parse_list(doc).unwrap_err();
            assert!(err.contains(expected) && err.contains("PublicKeyList"), "{doc}: {err}");
        }
    }
}
