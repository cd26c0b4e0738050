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
        for list in [READ, WRITE, READ_TRAIL_LOGS] {
            let mut sorted = list.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted, list, "keep the list sorted and free of repeats");
        }
        assert!(READ.iter().all(|a| !WRITE.contains(a) && !READ_TRAIL_LOGS.contains(a)));
    }

    #[test]
    fn the_read_only_policy_has_no_writes() {
        let doc = policy(true).to_string();
        assert!(!doc.contains("Put") && !doc.contains("Create") && !doc.contains("Delete"), "{doc}");
        assert_eq!(policy(true)["Statement"].as_array().unwrap().len(), 2);
        assert_eq!(policy(false)["Statement"].as_array().unwrap().len(), 6);
        assert!(doc.contains("cloudtrail:LookupEvents") && doc.contains("s3:GetObject"), "{doc}");
    }
}
