//! Where CloudTrail delivers digest files, per its "CloudTrail digest file structure" page:
//!
//! ```text
//! <prefix>/AWSLogs/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/
//!     <account>_CloudTrail-Digest_<region>_<trail>_<home region>_<end, 20150817T150131Z>.json.gz
//! <prefix>/AWSLogs/<o-id>/<account>/CloudTrail-Digest/...     (organization trails)
//! ```
//!
//! The day folders are those of the digest's end time; `<region>` is the region the digest
//! covers (a multi-region trail delivers one chain per region), `<home region>` the trail's. A
//! backfill digest, for log files a digest missed through processing delays, ends in
//! `_backfill.json.gz`.

use time::{Date, OffsetDateTime};

use super::window::{day_path, parse_compact};

const DIGEST_DIR: &str = "CloudTrail-Digest";

/// The trail whose digests are validated, and where it delivers.
#[derive(Debug, Clone)]
pub struct Trail {
    pub bucket: String,
    /// The trail's S3 key prefix, without slashes at either end; empty for none.
    pub prefix: String,
    pub account: String,
    pub name: String,
    pub home_region: String,
}

impl Trail {
    /// `<prefix>/AWSLogs/`: what the organization folders are listed under.
    pub fn logs_root(&self) -> String {
        if self.prefix.is_empty() { "AWSLogs/".into() } else { format!("{}/AWSLogs/", self.prefix) }
    }

    /// The folder of the account's digests, directly under AWSLogs or under an organization.
    pub fn digest_root(&self, org: Option<&str>) -> String {
        match org {
            Some(org) => format!("{}{org}/{}/{DIGEST_DIR}/", self.logs_root(), self.account),
            None => format!("{}{}/{DIGEST_DIR}/", self.logs_root(), self.account),
        }
    }

    /// Whether `<org>/` under AWSLogs is an organization's folder (`o-` and 10 to 32 lowercase
    /// letters or digits).
    pub fn is_org_folder(name: &str) -> bool {
        name.strip_prefix("o-").is_some_and(|id| {
            (10..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
    }

    /// The folder of one region's digests for one day.
    pub fn day_prefix(root: &str, region: &str, day: Date) -> String {
        format!("{root}{region}/{}/", day_path(day))
    }

    /// Reads a digest's object key: `None` unless it is this trail's digest for `region`.
    pub fn digest_name(&self, key: &str, region: &str) -> Option<DigestName> {
        let file = key.rsplit('/').next()?;
        let expected = format!("{}_{DIGEST_DIR}_{region}_{}_{}_", self.account, self.name, self.home_region);
        let rest = file.strip_prefix(&expected)?.strip_suffix(".json.gz")?;
        let (stamp, backfill) = match rest.strip_suffix("_backfill") {
            Some(stamp) => (stamp, true),
            None => (rest, false),
        };
        Some(DigestName { end: parse_compact(stamp)?, backfill })
    }
}

/// What a digest's object name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestName {
    /// The end of the hour the digest covers.
    pub end: OffsetDateTime,
    pub backfill: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::window::rfc3339;

    fn trail(prefix: &str) -> Trail {
        Trail {
            bucket: "amzn-s3-demo-bucket".into(),
            prefix: prefix.into(),
            account: "111122223333".into(),
            name: "your-trail-name".into(),
            home_region: "us-east-2".into(),
        }
    }

    #[test]
    fn the_documented_digest_name_parses() {
        let key = "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz";
        let name = trail("").digest_name(key, "us-east-2").unwrap();
        assert_eq!(rfc3339(name.end), "2015-08-17T15:01:31Z");
        assert!(!name.backfill);
        let backfill = key.replace("Z.json.gz", "Z_backfill.json.gz");
        assert!(trail("").digest_name(&backfill, "us-east-2").unwrap().backfill);
    }

    #[test]
    fn another_trail_region_or_file_is_not_ours() {
        let t = trail("");
        let other_trail = "111122223333_CloudTrail-Digest_us-east-2_other_us-east-2_20150817T150131Z.json.gz";
        let other_region =
            "111122223333_CloudTrail-Digest_eu-west-1_your-trail-name_us-east-2_20150817T150131Z.json.gz";
        let log = "111122223333_CloudTrail_us-east-2_20150817T1445Z_9nYN7gp2eWAJHIfT.json.gz";
        assert_eq!(t.digest_name(other_trail, "us-east-2"), None);
        assert_eq!(t.digest_name(other_region, "us-east-2"), None);
        assert_eq!(t.digest_name(log, "us-east-2"), None);
        // A trail whose name ends like another's home region is still told apart.
        let mut sneaky = trail("");
        sneaky.name = "your-trail-name_us-east-2".into();
        assert_eq!(
            sneaky.digest_name(
                "111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz",
                "us-east-2"
            ),
            None
        );
    }

    #[test]
    fn roots_follow_the_prefix_and_the_organization_layout() {
        assert_eq!(trail("").digest_root(None), "AWSLogs/111122223333/CloudTrail-Digest/");
        assert_eq!(
            trail("cloudtrail").digest_root(Some("o-exampleorgid")),
            "cloudtrail/AWSLogs/o-exampleorgid/111122223333/CloudTrail-Digest/"
        );
        let day = Date::from_calendar_date(2015, time::Month::August, 7).unwrap();
        assert_eq!(
            Trail::day_prefix("AWSLogs/1/CloudTrail-Digest/", "us-east-2", day),
            "AWSLogs/1/CloudTrail-Digest/us-east-2/2015/08/07/"
        );
        assert!(Trail::is_org_folder("o-exampleorgid"));
        assert!(!Trail::is_org_folder("111122223333"));
        assert!(!Trail::is_org_folder("o-short"));
    }
}
