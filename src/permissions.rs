//! The IAM actions ctguard calls: what plan and verify need (read-only), and what apply adds.
//! One table, so the printed policies, the README and the tests that watch the calls agree.

use serde_json::{Value, json};

/// Actions plan, verify, validate-logs and investigate call. account:ListRegions only with
/// `regions = "all-enabled"`; ListPublicKeys and GetObject (digest and log files) only for
/// validate-logs and verify's log_integrity check; LookupEvents for investigate's event history.
pub const READ: &[&str] = &[
    "account:ListRegions",
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetEventSelectors",
    "cloudtrail:GetTrail",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:ListPublicKeys",
    "cloudtrail:ListTags",
    "cloudtrail:LookupEvents",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:ListTagsForResource",
    "config:DescribeComplianceByConfigRule",
    "config:DescribeConfigRules",
    "config:DescribeConfigurationRecorderStatus",
    "config:DescribeConfigurationRecorders",
    "config:DescribeDeliveryChannels",
    "config:GetComplianceDetailsByConfigRule",
    "config:ListTagsForResource",
    "events:ListRules",
    "events:ListTagsForResource",
    "events:ListTargetsByRule",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
    "iam:ListRoleTags",
    "iam:ListRoles",
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListResourceTags",
    "logs:DescribeLogGroups",
    "logs:DescribeMetricFilters",
    "logs:ListTagsForResource",
    "s3:GetBucketLogging",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetObject",
    "s3:ListBucket",
    "sns:GetTopicAttributes",
    "sns:ListSubscriptionsByTopic",
    "sns:ListTagsForResource",
    "sts:GetCallerIdentity",
    "tag:GetResources",
];

/// Actions apply adds. Deletes are only of what ctguard owns and the profile dropped;
/// kms:ListKeys finds a key an interrupted apply left without its alias.
pub const WRITE: &[&str] = &[
    "cloudtrail:AddTags",
    "cloudtrail:CreateTrail",
    "cloudtrail:DeleteTrail",
    "cloudtrail:PutEventSelectors",
    "cloudtrail:StartLogging",
    "cloudtrail:UpdateTrail",
    "cloudwatch:DeleteAlarms",
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:TagResource",
    "config:DeleteConfigRule",
    "config:PutConfigRule",
    "config:PutConfigurationRecorder",
    "config:PutDeliveryChannel",
    "config:StartConfigurationRecorder",
    "config:TagResource",
    "events:DeleteRule",
    "events:PutRule",
    "events:PutTargets",
    "events:RemoveTargets",
    "events:TagResource",
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePolicy",
    "iam:TagRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRole",
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateKey",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:ListKeys",
    "kms:PutKeyPolicy",
    "kms:TagResource",
    "kms:UpdateKeyDescription",
    "logs:CreateLogGroup",
    "logs:DeleteMetricFilter",
    "logs:PutMetricFilter",
    "logs:PutRetentionPolicy",
    "logs:TagResource",
    "s3:CreateBucket",
    "s3:PutBucketLogging",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutLifecycleConfiguration",
    "sns:CreateTopic",
    "sns:SetTopicAttributes",
    "sns:Subscribe",
    "sns:TagResource",
    "sns:Unsubscribe",
    "sns:UntagResource",
];

/// Actions on the spare key of a lost race, allowed only on keys ctguard tagged.
pub const RETIRE_SPARE_KEY: &[&str] = &["kms:ScheduleKeyDeletion", "kms:UntagResource"];

/// Decrypting what CloudTrail encrypted, to hash log files delivered with SSE-KMS.
pub const READ_TRAIL_LOGS: &[&str] = &["kms:Decrypt"];

/// Athena actions on the workgroup that plan and verify read and `ctguard hunt` runs queries
/// in. Athena answers GetTableMetadata for the data catalog, not the workgroup.
pub const ATHENA_READ: &[&str] = &[
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:GetWorkGroup",
    "athena:ListTagsForResource",
    "athena:StartQueryExecution",
    "athena:StopQueryExecution",
];
pub const ATHENA_CATALOG_READ: &[&str] = &["athena:GetTableMetadata"];

/// What Athena asks the Glue Data Catalog for, as the caller, to read the table and plan a
/// query over it.
pub const GLUE_READ: &[&str] = &["glue:GetDatabase", "glue:GetPartitions", "glue:GetTable"];

/// What a query writes under the workgroup's result location (Athena writes as the caller).
pub const ATHENA_RESULTS: &[&str] =
    &["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:ListMultipartUploadParts", "s3:PutObject"];

/// What apply adds on the workgroup, and on the catalog for the DDL it runs there (CREATE
/// DATABASE, CREATE EXTERNAL TABLE, ALTER TABLE SET TBLPROPERTIES, DROP TABLE).
pub const ATHENA_WRITE: &[&str] =
    &["athena:CreateWorkGroup", "athena:DeleteWorkGroup", "athena:TagResource", "athena:UpdateWorkGroup"];
pub const GLUE_WRITE: &[&str] = &["glue:CreateDatabase", "glue:CreateTable", "glue:DeleteTable", "glue:UpdateTable"];

/// The names the Athena statements are scoped to: the profile's `[athena]` section, or its
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthenaScope {
    pub workgroup: String,
    pub database: String,
    pub table: String,
    /// `bucket/prefix`, where query results go.
    pub results: String,
}

impl Default for AthenaScope {
    /// The shipped defaults, in any audit bucket.
    fn default() -> Self {
        let doc: crate::profile::athena::AthenaDoc = toml::from_str("").expect("[athena] has defaults for every key");
        AthenaScope {
            workgroup: doc.workgroup,
            database: doc.database,
            table: doc.table,
            results: format!("*/{}", doc.results_prefix),
        }
    }
}

/// The Athena, Glue and S3 statements for the workgroup, catalog, database and table in
/// `scope`: reads and queries always, the DDL and workgroup writes unless `read_only`.
pub fn athena_statements(scope: &AthenaScope, read_only: bool) -> Vec<Value> {
    let workgroup = format!("arn:*:athena:*:*:workgroup/{}", scope.workgroup);
    // Glue checks each action against the catalog, the database and (for tables) the table.
    let glue = json!([
        "arn:*:glue:*:*:catalog",
        format!("arn:*:glue:*:*:database/{}", scope.database),
        format!("arn:*:glue:*:*:table/{}/{}", scope.database, scope.table),
    ]);
    let mut statements = vec![
        json!({"Sid": "CtguardAthenaRead", "Effect": "Allow", "Action": ATHENA_READ, "Resource": workgroup}),
        json!({
            "Sid": "CtguardAthenaCatalogRead",
            "Effect": "Allow",
            "Action": ATHENA_CATALOG_READ,
            "Resource": "arn:*:athena:*:*:datacatalog/AwsDataCatalog"
        }),
        json!({"Sid": "CtguardGlueRead", "Effect": "Allow", "Action": GLUE_READ, "Resource": glue}),
        json!({
            "Sid": "CtguardAthenaResults",
            "Effect": "Allow",
            "Action": ATHENA_RESULTS,
            "Resource": [format!("arn:*:s3:::{}", scope.results.split('/').next().unwrap_or("*")), format!("arn:*:s3:::{}/*", scope.results)]
        }),
    ];
    if !read_only {
        statements.push(
            json!({"Sid": "CtguardAthenaApply", "Effect": "Allow", "Action": ATHENA_WRITE, "Resource": workgroup}),
        );
        statements.push(json!({"Sid": "CtguardGlueApply", "Effect": "Allow", "Action": GLUE_WRITE, "Resource": glue}));
    }
    statements
}

/// The identity policy ctguard needs: read-only for plan, verify and validate-logs, or
/// everything for apply.
pub fn policy(read_only: bool) -> Value {
    let mut statements = vec![
        json!({"Sid": "CtguardRead", "Effect": "Allow", "Action": READ, "Resource": "*"}),
        // S3 decrypts an SSE-KMS log file for GetObject with the caller's kms:Decrypt: allowed
        // only through S3 (kms:ViaService, which KMS sets to s3.<region>.amazonaws.com). No
        // encryption-context condition: with S3 Bucket Keys the context is the bucket's, not
        // the trail's.
        json!({
            "Sid": "CtguardReadTrailLogs",
            "Effect": "Allow",
            "Action": READ_TRAIL_LOGS,
            "Resource": "*",
            "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}
        }),
    ];
    statements.extend(athena_statements(&AthenaScope::default(), read_only));
    if !read_only {
        statements.push(json!({"Sid": "CtguardApply", "Effect": "Allow", "Action": WRITE, "Resource": "*"}));
        // Roles are handed only to the services that assume them.
        statements.push(json!({
            "Sid": "CtguardPassRoles",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:PassedToService": [
                "cloudtrail.amazonaws.com", "events.amazonaws.com", "config.amazonaws.com"
            ]}}
        }));
        // Two applies that race to create the trail key leave one spare, never used; the loser
        // retires it. Only keys carrying ctguard's ownership tag can be touched.
        statements.push(json!({
            "Sid": "CtguardRetireSpareKey",
            "Effect": "Allow",
            "Action": RETIRE_SPARE_KEY,
            "Resource": "*",
            "Condition": {"Null": {"aws:ResourceTag/ctguard:profile": "false"}}
        }));
        statements.push(json!({
            "Sid": "CtguardConfigServiceLinkedRole",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:AWSServiceName": "config.amazonaws.com"}}
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_and_disjoint() {
        for list in [READ, WRITE, READ_TRAIL_LOGS, ATHENA_READ, ATHENA_RESULTS, ATHENA_WRITE, GLUE_READ, GLUE_WRITE] {
            let mut sorted = list.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted, list, "keep the list sorted and free of repeats");
        }
        assert!(READ.iter().all(|a| !WRITE.contains(a) && !READ_TRAIL_LOGS.contains(a)));
    }

    #[test]
    fn the_read_only_policy_has_no_writes() {
        // Beside query results, which Athena writes as the caller under the results prefix.
        let mut read_only = policy(true);
        read_only["Statement"].as_array_mut().unwrap().retain(|s| s["Sid"] != "CtguardAthenaResults");
        let doc = read_only.to_string();
        assert!(!doc.contains("Put") && !doc.contains("Create") && !doc.contains("Delete"), "{doc}");
        assert_eq!(policy(true)["Statement"].as_array().unwrap().len(), 6);
        assert_eq!(policy(false)["Statement"].as_array().unwrap().len(), 12);
        assert!(doc.contains("cloudtrail:LookupEvents") && doc.contains("s3:GetObject"), "{doc}");
    }

    #[test]
    fn athena_statements_name_the_workgroup_catalog_database_and_table() {
        let scope = AthenaScope {
            workgroup: "hunt".into(),
            database: "audit".into(),
            table: "trail".into(),
            results: "my-bucket/results".into(),
        };
        let doc = Value::Array(athena_statements(&scope, false)).to_string();
        for arn in [
            "arn:*:athena:*:*:workgroup/hunt",
            "arn:*:glue:*:*:catalog",
            "arn:*:glue:*:*:database/audit",
            "arn:*:glue:*:*:table/audit/trail",
            "arn:*:s3:::my-bucket/results/*",
        ] {
            assert!(doc.contains(arn), "{arn} missing: {doc}");
        }
        assert!(!doc.contains("\"Resource\":\"*\""), "{doc}");
        assert_eq!(AthenaScope::default().workgroup, "ctguard");
    }
}
