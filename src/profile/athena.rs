//! The optional `[athena]` section: where `ctguard hunt` runs the profile's detections over the
//! whole audit bucket (the workgroup, the database and table over the trail's logs, the
//! per-query scan limit), validated like the rest of the profile.

use serde::Deserialize;

/// `[athena]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AthenaDoc {
    /// The workgroup queries run in.
    #[serde(default = "default_workgroup")]
    pub workgroup: String,
    /// The Glue database holding the table.
    #[serde(default = "default_database")]
    pub database: String,
    /// The partition-projected CloudTrail table.
    #[serde(default = "default_table")]
    pub table: String,
    /// Where the workgroup writes query results, under the audit bucket.
    #[serde(default = "default_results_prefix")]
    pub results_prefix: String,
    /// The workgroup's per-query limit on data scanned, such as "100GB".
    #[serde(default = "default_scan_limit")]
    pub scan_limit: String,
    /// For an organization trail's bucket: the organization ID, with `accounts`.
    pub organization_id: Option<String>,
    /// The organization's accounts the table covers.
    #[serde(default)]
    pub accounts: Vec<String>,
}

fn default_workgroup() -> String {
    "ctguard".into()
}
fn default_database() -> String {
    "ctguard".into()
}
fn default_table() -> String {
    crate::hunt::DEFAULT_TABLE.into()
}
fn default_results_prefix() -> String {
    "athena-results".into()
}
fn default_scan_limit() -> String {
    "100GB".into()
}

/// `[athena]` resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Athena {
    pub workgroup: String,
    pub database: String,
    pub table: String,
    pub results_prefix: String,
    /// Bytes.
    pub scan_limit: u64,
    pub organization: Option<Organization>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub accounts: Vec<String>,
}

/// Athena's smallest per-query scan limit (BytesScannedCutoffPerQuery: minimum 10 MB).
pub const MIN_SCAN_LIMIT: u64 = 10_000_000;

/// Checks `[athena]`; each problem is `(key, expected)`.
pub fn resolve(doc: &AthenaDoc) -> Result<Athena, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let mut check = |key: &str, value: &str, ok: bool, expected: &str| {
        if !ok {
            problems.push((format!("athena.{key}"), format!("{value:?} is not valid: expected {expected}")));
        }
    };
    let w = &doc.workgroup;
    check(
        "workgroup",
        w,
        (1..=128).contains(&w.len()) && w.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
        "1 to 128 letters, digits, '.', '_' and '-'",
    );
    for (key, name) in [("database", &doc.database), ("table", &doc.table)] {
        check(
            key,
            name,
            (1..=255).contains(&name.len())
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "1 to 255 lowercase letters, digits and '_' (the names Athena and Glue both accept)",
        );
    }
    let p = &doc.results_prefix;
    check(
        "results_prefix",
        p,
        !p.is_empty() && !p.starts_with('/') && !p.ends_with('/') && !p.contains("//"),
        "an S3 key prefix without leading or trailing slash, such as athena-results",
    );
    let scan_limit = parse_bytes(&doc.scan_limit);
    match scan_limit {
        Some(n) if n >= MIN_SCAN_LIMIT => {}
        _ => check("scan_limit", &doc.scan_limit, false, "a size of at least 10MB, such as \"100GB\""),
    }
    let organization = match (&doc.organization_id, doc.accounts.is_empty()) {
        (Some(id), false) => {
            let id_ok = id.len() >= 12
                && id.len() <= 34
                && id.starts_with("o-")
                && id[2..].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            check("organization_id", id, id_ok, "an organization ID such as o-a1b2c3d4e5");
            for (i, a) in doc.accounts.iter().enumerate() {
                check(
                    &format!("accounts[{i}]"),
                    a,
                    a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()),
                    "a 12-digit account ID",
                );
            }
            Some(Organization { id: id.clone(), accounts: doc.accounts.clone() })
        }
        (None, true) => None,
        (Some(_), true) => {
            problems.push((
                "athena.accounts".into(),
                "expected the organization's account IDs with organization_id".into(),
            ));
            None
        }
        (None, false) => {
            problems.push((
                "athena.organization_id".into(),
                "expected with accounts: the organization the accounts belong to".into(),
            ));
            None
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Athena {
        workgroup: doc.workgroup.clone(),
        database: doc.database.clone(),
        table: doc.table.clone(),
        results_prefix: doc.results_prefix.clone(),
        scan_limit: scan_limit.unwrap_or(MIN_SCAN_LIMIT),
        organization,
    })
}

/// A size such as `50GB`, `1.5TB`, `500MB`, `10KB` or a plain number of bytes, in decimal units
/// as Athena's console and pricing state them.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: f64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return None,
    };
    let bytes = number * scale;
    (bytes.is_finite() && bytes >= 0.0 && bytes < 1.8e19).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(toml_text: &str) -> AthenaDoc {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn defaults_resolve() {
        let a = resolve(&doc("")).unwrap();
        assert_eq!(
            (a.workgroup.as_str(), a.database.as_str(), a.table.as_str()),
            ("ctguard", "ctguard", "ctguard_cloudtrail")
        );
        assert_eq!(a.scan_limit, 100_000_000_000);
        assert_eq!(a.organization, None);
    }

    #[test]
    fn every_problem_is_named() {
        let problems = resolve(&doc(
            "workgroup = 'a b'\ntable = 'Trail'\nscan_limit = '5MB'\nresults_prefix = '/x/'\naccounts = ['123']",
        ))
        .unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "athena.workgroup",
                "athena.table",
                "athena.results_prefix",
                "athena.scan_limit",
                "athena.organization_id"
            ]
        );
    }

    #[test]
    fn organizations_need_their_accounts() {
        let a = resolve(&doc("organization_id = 'o-a1b2c3d4e5'\naccounts = ['111111111111', '222222222222']")).unwrap();
        assert_eq!(a.organization.unwrap().accounts.len(), 2);
        assert!(resolve(&doc("organization_id = 'o-a1b2c3d4e5'")).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("50GB"), Some(50_000_000_000));
        assert_eq!(parse_bytes("1.5 TB"), Some(1_500_000_000_000));
        assert_eq!(parse_bytes("10mb"), Some(10_000_000));
        assert_eq!(parse_bytes("123"), Some(123));
        assert_eq!(parse_bytes("GB"), None);
        assert_eq!(parse_bytes("5XB"), None);
    }
}
