//! The regions AWS has, per partition, so a typo fails validation at once instead of reaching
//! AWS. New regions open every year: one missing here can be allowed without a new build by
//! listing it in CTGUARD_EXTRA_REGIONS (comma-separated), and belongs in this table.

/// Environment variable naming regions to accept beyond the table.
pub const EXTRA_REGIONS_VAR: &str = "CTGUARD_EXTRA_REGIONS";

/// (partition, regions). From the AWS general reference's region list and the SDKs'
/// partition data (endpoints.json), December 2026.
pub const PARTITIONS: &[(&str, &[&str])] = &[
    (
        "aws",
        &[
            "af-south-1",
            "ap-east-1",
            "ap-east-2",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "ap-southeast-6",
            "ap-southeast-7",
            "ca-central-1",
            "ca-west-1",
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "il-central-1",
            "me-central-1",
            "me-south-1",
            "mx-central-1",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        ],
    ),
    ("aws-cn", &["cn-north-1", "cn-northwest-1"]),
    ("aws-us-gov", &["us-gov-east-1", "us-gov-west-1"]),
    ("aws-iso", &["us-iso-east-1", "us-iso-west-1"]),
    ("aws-iso-b", &["us-isob-east-1"]),
    ("aws-iso-e", &["eu-isoe-west-1"]),
    ("aws-iso-f", &["us-isof-east-1", "us-isof-south-1"]),
    ("aws-eusc", &["eusc-de-east-1"]),
];

/// The partition a known region belongs to.
pub fn partition_of(region: &str) -> Option<&'static str> {
    PARTITIONS.iter().find(|(_, regions)| regions.contains(&region)).map(|(p, _)| *p)
}

fn extra(listed: Option<String>, region: &str) -> bool {
    listed.is_some_and(|list| list.split(',').any(|r| r.trim() == region))
}

/// Ok for a region in the table or in CTGUARD_EXTRA_REGIONS; otherwise what was expected,
/// with the nearest known name when there is a close one.
pub fn check(region: &str) -> Result<(), String> {
    check_with(region, std::env::var(EXTRA_REGIONS_VAR).ok())
}

fn check_with(region: &str, extra_regions: Option<String>) -> Result<(), String> {
    if partition_of(region).is_some() || extra(extra_regions, region) {
        return Ok(());
    }
    let nearest = PARTITIONS
        .iter()
        .flat_map(|(_, regions)| regions.iter())
        .map(|known| (strsim::levenshtein(region, known), *known))
        .min()
        .filter(|(distance, _)| *distance <= 2)
        .map(|(_, known)| format!(" (did you mean {known}?)"))
        .unwrap_or_default();
    Err(format!(
        "a region AWS has{nearest}; if AWS opened it after this build of ctguard, allow it with {EXTRA_REGIONS_VAR}={region}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_regions_pass_and_typos_get_the_nearest_name() {
        assert_eq!(check_with("eu-west-1", None), Ok(()));
        assert_eq!(partition_of("cn-north-1"), Some("aws-cn"));
        let e = check_with("eu-wst-1", None).unwrap_err();
        assert!(e.contains("did you mean eu-west-1?"), "{e}");
        assert!(e.contains("CTGUARD_EXTRA_REGIONS=eu-wst-1"), "{e}");
        assert!(!check_with("xx-nowhere-9", None).unwrap_err().contains("did you mean"));
    }

    #[test]
    fn a_region_newer_than_the_table_can_be_allowed() {
        assert!(check_with("ap-southeast-9", None).is_err());
        assert_eq!(check_with("ap-southeast-9", Some("us-east-1, ap-southeast-9".into())), Ok(()));
    }

    #[test]
    fn every_region_is_listed_once() {
        let mut all: Vec<&str> = PARTITIONS.iter().flat_map(|(_, r)| r.iter().copied()).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
