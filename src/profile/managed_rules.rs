//! The catalogue of AWS Config managed rules, used to validate profile rules before apply and
//! to suggest the intended identifier on a typo.

use std::sync::LazyLock;

/// One managed rule as AWS documents it.
#[derive(Debug, Clone)]
pub struct ManagedRule {
    pub identifier: &'static str,
    pub periodic: bool,
    /// (name, optional)
    pub parameters: Vec<(&'static str, bool)>,
    pub resource_types: Vec<&'static str>,
}

impl ManagedRule {
    /// Rules about IAM and account-level resources: Config records those in one region, so
    /// the rule belongs in the home region only.
    pub fn is_global(&self) -> bool {
        self.identifier.starts_with("IAM_")
            || self.identifier.starts_with("ROOT_ACCOUNT_")
            || self.resource_types.iter().any(|t| t.starts_with("AWS::IAM::"))
    }
}

static CATALOGUE: LazyLock<Vec<ManagedRule>> = LazyLock::new(|| {
    include_str!("../../data/config-managed-rules.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.split('\t');
            let identifier = cols.next().unwrap_or_default();
            let periodic = cols.next().unwrap_or_default().contains("periodic");
            let parameters = cols
                .next()
                .unwrap_or_default()
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| (p.trim_end_matches('?'), p.ends_with('?')))
                .collect();
            let resource_types = cols.next().unwrap_or_default().split(',').filter(|t| !t.is_empty()).collect();
            ManagedRule { identifier, periodic, parameters, resource_types }
        })
        .collect()
});

pub fn lookup(identifier: &str) -> Option<&'static ManagedRule> {
    CATALOGUE.iter().find(|r| r.identifier == identifier)
}

/// The closest known identifier, for "did you mean".
pub fn nearest(identifier: &str) -> Option<&'static str> {
    let wanted = identifier.to_ascii_uppercase();
    CATALOGUE
        .iter()
        .map(|r| (strsim::levenshtein(&wanted, r.identifier), r.identifier))
        .min()
        .filter(|(distance, _)| *distance <= wanted.len() / 3 + 2)
        .map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_knows_the_rules_ctguard_ships() {
        for id in [
            "RDS_INSTANCE_DELETION_PROTECTION_ENABLED",
            "RDS_CLUSTER_DELETION_PROTECTION_ENABLED",
            "S3_BUCKET_VERSIONING_ENABLED",
            "CLOUD_TRAIL_ENABLED",
            "MULTI_REGION_CLOUD_TRAIL_ENABLED",
            "CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED",
            "CLOUD_TRAIL_CLOUD_WATCH_LOGS_ENABLED",
            "CLOUD_TRAIL_ENCRYPTION_ENABLED",
        ] {
            assert!(lookup(id).is_some(), "{id}");
        }
        assert!(CATALOGUE.len() > 800);
    }

    #[test]
    fn typos_from_the_source_documents_get_the_real_identifier() {
        assert_eq!(lookup("CLOUDTRAIL_LOG_FILE_VALIDATION_ENABLED").map(|r| r.identifier), None);
        assert_eq!(nearest("CLOUDTRAIL_LOG_FILE_VALIDATION_ENABLED"), Some("CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED"));
        assert_eq!(
            nearest("rds_instance_deletion_protection_enable"),
            Some("RDS_INSTANCE_DELETION_PROTECTION_ENABLED")
        );
        assert_eq!(nearest("SOMETHING_ELSE_ENTIRELY_DIFFERENT_HERE"), None);
    }

    #[test]
    fn global_rules_are_recognised() {
        assert!(lookup("IAM_PASSWORD_POLICY").unwrap().is_global());
        assert!(lookup("MFA_ENABLED_FOR_IAM_CONSOLE_ACCESS").unwrap().is_global());
        assert!(!lookup("S3_BUCKET_VERSIONING_ENABLED").unwrap().is_global());
    }
}
