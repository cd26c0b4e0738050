//! Name and value rules AWS enforces, checked before any call so a bad profile changes nothing.
//! Each function returns what was expected, phrased to follow "expected …"; the two pattern
//! checks return the pattern parser's located error instead.

use crate::detect::PatternError;
use crate::detect::eventbridge::EventPattern;
use crate::detect::logfilter::FilterPattern;

/// S3 general purpose bucket naming rules (S3 User Guide, "Bucket naming rules").
pub fn bucket_name(name: &str) -> Result<(), String> {
    let len = name.len();
    if !(3..=63).contains(&len) {
        return Err(format!("3 to 63 characters, got {len}"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-')) {
        return Err(format!("only lowercase letters, digits, dots and hyphens, found {c:?}"));
    }
    let first_last_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_last_ok(name.chars().next()) || !first_last_ok(name.chars().last()) {
        return Err("a name that begins and ends with a letter or digit".into());
    }
    if name.contains("..") {
        return Err("no two adjacent periods".into());
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err("a name that is not formatted as an IP address".into());
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return Err(format!("a name that does not start with the reserved prefix {prefix:?}"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return Err(format!("a name that does not end with the reserved suffix {suffix:?}"));
        }
    }
    Ok(())
}

/// CloudTrail trail naming rules (CreateTrail, Name).
pub fn trail_name(name: &str) -> Result<(), String> {
    let len = name.len();
    if !(3..=128).contains(&len) {
        return Err(format!("3 to 128 characters, got {len}"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("only ASCII letters, digits, '.', '_' and '-', found {c:?}"));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        return Err("a name that begins and ends with a letter or digit".into());
    }
    let punct = |c: char| matches!(c, '.' | '_' | '-');
    if name.as_bytes().windows(2).any(|w| punct(w[0] as char) && punct(w[1] as char)) {
        return Err("no adjacent '.', '_' or '-' (like \"my--trail\" or \"my-_trail\")".into());
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err("a name that is not formatted as an IP address".into());
    }
    Ok(())
}

/// CloudWatch Logs log group names (CreateLogGroup).
pub fn log_group_name(name: &str) -> Result<(), String> {
    let len = name.len();
    if !(1..=512).contains(&len) {
        return Err(format!("1 to 512 characters, got {len}"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#'))) {
        return Err(format!("only letters, digits and '.', '-', '_', '/', '#', found {c:?}"));
    }
    if name.starts_with("aws/") {
        return Err("a name that does not start with the reserved \"aws/\"".into());
    }
    Ok(())
}

/// The retention values PutRetentionPolicy accepts.
pub const RETENTION_DAYS: [i32; 22] =
    [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

pub fn retention_days(days: i32) -> Result<(), String> {
    if RETENTION_DAYS.contains(&days) {
        Ok(())
    } else {
        let list: Vec<String> = RETENTION_DAYS.iter().map(|d| d.to_string()).collect();
        Err(format!("one of {}, got {days}", list.join(", ")))
    }
}

/// IAM role names (CreateRole, RoleName).
pub fn role_name(name: &str) -> Result<(), String> {
    let len = name.len();
    if !(1..=64).contains(&len) {
        return Err(format!("1 to 64 characters, got {len}"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c))) {
        return Err(format!("only letters, digits and '+=,.@_-', found {c:?}"));
    }
    Ok(())
}

/// IAM paths: "/" or "/segment/.../".
pub fn role_path(path: &str) -> Result<(), String> {
    let ok = path.starts_with('/')
        && path.ends_with('/')
        && path.len() <= 512
        && path.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c));
    if ok { Ok(()) } else { Err("a path that begins and ends with '/', like \"/ctguard/\"".into()) }
}

/// KMS alias names that a customer may create.
pub fn kms_alias(alias: &str) -> Result<(), String> {
    let Some(rest) = alias.strip_prefix("alias/") else {
        return Err("an alias that begins with \"alias/\"".into());
    };
    if rest.starts_with("aws/") {
        return Err("an alias outside the reserved \"alias/aws/\" namespace".into());
    }
    if rest.is_empty() || alias.len() > 256 {
        return Err("an alias of 1 to 250 characters after \"alias/\"".into());
    }
    if let Some(c) = rest.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-'))) {
        return Err(format!("only letters, digits and '/', '_', '-', found {c:?}"));
    }
    Ok(())
}

/// A KMS key ARN (not an alias: CloudTrail reports the key ARN, so only that compares).
pub fn kms_key_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6 && parts[0] == "arn" && parts[2] == "kms" && parts[5].starts_with("key/");
    if ok { Ok(()) } else { Err("a key ARN like arn:aws:kms:us-east-1:111122223333:key/1234abcd-…".into()) }
}

/// An S3 key prefix for CloudTrail: no leading or trailing slash, at most 200 characters.
pub fn trail_prefix(prefix: &str) -> Result<(), String> {
    if prefix.starts_with('/') || prefix.ends_with('/') {
        return Err("a prefix without a leading or trailing '/', like \"cloudtrail\"".into());
    }
    if prefix.len() > 200 {
        return Err(format!("at most 200 characters, got {}", prefix.len()));
    }
    Ok(())
}

/// A region code such as us-east-1 or us-gov-west-1, of a region AWS has (`crate::regions`).
pub fn region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if !ok {
        return Err("a region code like us-east-1".into());
    }
    crate::regions::check(region)
}

/// The partition a region belongs to, by its code (the region, unlike STS, is known before any
/// call).
pub fn partition_of(region: &str) -> &'static str {
    const BY_PREFIX: [(&str, &str); 6] = [
        ("us-gov-", "aws-us-gov"),
        ("cn-", "aws-cn"),
        ("us-isob-", "aws-iso-b"),
        ("us-isof-", "aws-iso-f"),
        ("eu-isoe-", "aws-iso-e"),
        ("us-iso-", "aws-iso"),
    ];
    BY_PREFIX.iter().find(|(prefix, _)| region.starts_with(prefix)).map_or("aws", |(_, partition)| partition)
}

/// The region of a partition where AWS delivers the events of its global services (IAM, STS,
/// Organizations, Route 53) to EventBridge ("Events from AWS services", EventBridge User Guide).
/// `None` for a partition ctguard knows no such region for.
pub fn global_region(partition: &str) -> Option<&'static str> {
    match partition {
        "aws" => Some("us-east-1"),
        "aws-us-gov" => Some("us-gov-west-1"),
        "aws-cn" => Some("cn-north-1"),
        _ => None,
    }
}

/// SNS topic names (CreateTopic): 1 to 256 letters, digits, '-' and '_'.
pub fn topic_name(name: &str) -> Result<(), String> {
    let ok = (1..=256).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok { Ok(()) } else { Err("1 to 256 letters, digits, '-' and '_'".into()) }
}

/// EventBridge rule names (PutRule): 1 to 64 of `[.\-_A-Za-z0-9]`.
pub fn rule_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok { Ok(()) } else { Err("1 to 64 letters, digits, '.', '-' and '_'".into()) }
}

/// Alarm names double as metric filter names, so both rules apply: 1 to 255 characters, no
/// control characters, and (for the filter) no ':' or '*'.
pub fn alarm_name(name: &str) -> Result<(), String> {
    let ok = (1..=255).contains(&name.len()) && !name.chars().any(|c| c.is_control() || c == ':' || c == '*');
    if ok { Ok(()) } else { Err("1 to 255 characters without ':', '*' or control characters".into()) }
}

pub fn metric_name(name: &str) -> Result<(), String> {
    let ok =
        (1..=255).contains(&name.len()) && !name.chars().any(|c| c.is_control() || c == ':' || c == '*' || c == '$');
    if ok { Ok(()) } else { Err("1 to 255 characters without ':', '*', '$' or control characters".into()) }
}

/// A CloudWatch Logs JSON filter pattern, parsed with the full grammar PutMetricFilter accepts
/// (`crate::detect::logfilter`): a malformed pattern is refused here rather than by AWS halfway
/// through an apply. The error locates the problem by character.
pub fn filter_pattern(p: &str) -> Result<(), PatternError> {
    FilterPattern::parse(p).map(drop)
}

/// An EventBridge event pattern, parsed with the rules PutRule applies
/// (`crate::detect::eventbridge`). The error locates the problem by JSON path.
pub fn event_pattern(p: &serde_json::Value) -> Result<(), PatternError> {
    EventPattern::parse(p).map(drop)
}

/// AWS Config recorder, channel and rule names: 1 to 128 characters, no whitespace.
pub fn config_name(name: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&name.len()) && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(()) } else { Err("1 to 128 characters without whitespace".into()) }
}

/// CloudWatch alarm periods: 10, 30 or a multiple of 60 seconds; the evaluation window at
/// most one day.
pub fn alarm_period(period: i32, evaluation_periods: i32) -> Result<(), String> {
    if !(period == 10 || period == 30 || (period > 0 && period % 60 == 0)) {
        return Err(format!("a period of 10, 30 or a multiple of 60 seconds, got {period}"));
    }
    if evaluation_periods < 1 || i64::from(period) * i64::from(evaluation_periods) > 86_400 {
        return Err("at least one evaluation period, and period x evaluation_periods of at most one day".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for good in ["ctguard-audit-123456789012", "a.b.c", "abc"] {
            assert_eq!(bucket_name(good), Ok(()), "{good}");
        }
        for bad in ["ab", "Upper", "-dash", "dash-", "a..b", "192.168.1.1", "xn--abc", "x-s3alias", "under_score"] {
            assert!(bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trail_names() {
        assert_eq!(trail_name("ctguard-audit"), Ok(()));
        for bad in ["ab", "my--trail", "my-_trail", "-x-", "has space", "10.0.0.1"] {
            assert!(trail_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn log_groups_and_retention() {
        assert_eq!(log_group_name("/ctguard/cloudtrail"), Ok(()));
        assert!(log_group_name("bad name").is_err());
        assert_eq!(retention_days(365), Ok(()));
        assert!(retention_days(366).unwrap_err().contains("365, 400"));
    }

    #[test]
    fn iam_and_kms() {
        assert_eq!(role_name("ctguard-cloudtrail-logs"), Ok(()));
        assert!(role_name("no spaces").is_err());
        assert_eq!(role_path("/ctguard/"), Ok(()));
        assert!(role_path("ctguard").is_err());
        assert_eq!(kms_alias("alias/ctguard-audit"), Ok(()));
        assert!(kms_alias("alias/aws/sns").is_err());
        assert!(kms_alias("ctguard").is_err());
        assert_eq!(kms_key_arn("arn:aws:kms:us-east-1:123456789012:key/abcd"), Ok(()));
        assert!(kms_key_arn("alias/x").is_err());
    }

    #[test]
    fn alerting_names() {
        assert_eq!(topic_name("ctguard-alerts"), Ok(()));
        assert!(topic_name("has.dot").is_err());
        assert_eq!(rule_name("ctguard-destructive-actions"), Ok(()));
        assert!(rule_name(&"x".repeat(65)).is_err());
        assert!(alarm_name("a:b").is_err());
        assert_eq!(filter_pattern("{ ($.a = \"x\") && ($.b != \"}\") }"), Ok(()));
        assert!(filter_pattern("{ ($.a = \"x\" }").is_err());
        assert!(filter_pattern("ERROR").is_err());
        // Balanced but not a pattern: the old bracket count let these through to PutMetricFilter.
        for bad in ["{ $.a == 1 }", "{ $.a[x] = 1 }", "{ ($.a = 1) & ($.b = 2) }", "{ $.a > \"x\" }", "{}"] {
            let e = filter_pattern(bad).expect_err(bad);
            assert!(e.location().starts_with("character "), "{bad}: {e}");
        }
        assert_eq!(alarm_period(300, 1), Ok(()));
        assert!(alarm_period(90, 1).is_err());
        assert!(alarm_period(3600, 25).is_err());
    }

    #[test]
    fn regions_and_prefixes() {
        for good in ["us-east-1", "us-gov-west-1", "ap-southeast-4", "cn-northwest-1"] {
            assert_eq!(region(good), Ok(()), "{good}");
        }
        for bad in ["useast1", "US-EAST-1", "us-east-", "eu-wst-1"] {
            assert!(region(bad).is_err(), "{bad}");
        }
        assert_eq!(trail_prefix("cloudtrail"), Ok(()));
        let global = |r| global_region(partition_of(r));
        assert_eq!(global("eu-west-1"), Some("us-east-1"));
        assert_eq!(global("us-gov-east-1"), Some("us-gov-west-1"));
        assert_eq!(global("cn-northwest-1"), Some("cn-north-1"));
        assert_eq!(global("us-iso-east-1"), None);
        assert!(trail_prefix("/cloudtrail/").is_err());
    }
}
