//! The one place AWS errors are classified. Everything else asks `kind()`; nothing matches on
//! message text.

use std::any::Any;
use std::fmt;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What a failed call means to ctguard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The thing does not exist: a finder returns `None`, a delete succeeds.
    NotFound,
    /// A create raced another writer (or an earlier, interrupted run).
    AlreadyExists,
    /// Rate limited after the SDK's own retries ran out.
    Throttled,
    AccessDenied,
    /// A just-created IAM role or policy is not visible to the service yet: retry.
    Propagating,
    /// The call may or may not have taken effect: a timeout, a lost connection, an unreadable
    /// response, or a server error (5xx) after the SDK's own retries ran out.
    Transient,
    Other,
}

/// The kinds the SDK models for the operations whose errors ctguard branches on, asked through
/// each operation error's `is_*()` helpers. `None` for an error type not listed, or an error
/// its operation does not model: those fall back to `kind_of_code`.
fn modeled(err: &dyn Any) -> Option<ErrorKind> {
    use ErrorKind::*;
    use aws_sdk_athena::operation as athena;
    use aws_sdk_cloudtrail::operation as ct;
    use aws_sdk_cloudwatch::operation as cw;
    use aws_sdk_cloudwatchlogs::operation as logs;
    use aws_sdk_config::operation as config;
    use aws_sdk_eventbridge::operation as events;
    use aws_sdk_iam::operation as iam;
    use aws_sdk_kms::operation as kms;
    use aws_sdk_s3::operation as s3;
    use aws_sdk_sns::operation as sns;
    use aws_sdk_sqs::operation as sqs;
    /// Tries each listed operation error type; the first `is_*()` that holds gives the kind.
    macro_rules! by_type {
        ($($t:ty { $($is:ident => $kind:ident),+ })+) => {$(
            if let Some(e) = err.downcast_ref::<$t>() {
                $(if e.$is() { return Some($kind); })+
                return None;
            }
        )+};
    }
    by_type! {
        s3::head_bucket::HeadBucketError { is_not_found => NotFound }
        s3::create_bucket::CreateBucketError { is_bucket_already_owned_by_you => AlreadyExists }
        iam::get_role::GetRoleError { is_no_such_entity_exception => NotFound }
        iam::create_role::CreateRoleError { is_entity_already_exists_exception => AlreadyExists }
        iam::delete_role::DeleteRoleError { is_no_such_entity_exception => NotFound }
        iam::delete_role_policy::DeleteRolePolicyError { is_no_such_entity_exception => NotFound }
        iam::detach_role_policy::DetachRolePolicyError { is_no_such_entity_exception => NotFound }
        ct::get_trail::GetTrailError {
            is_trail_not_found_exception => NotFound,
            is_cloud_trail_arn_invalid_exception => NotFound
        }
        ct::delete_trail::DeleteTrailError { is_trail_not_found_exception => NotFound }
        // A trail without Insights answers InsightNotEnabledException: none is a value.
        ct::get_insight_selectors::GetInsightSelectorsError { is_insight_not_enabled_exception => NotFound }
        // CloudTrail cannot assume a role IAM created seconds ago, nor see a fresh bucket or
        // key policy: the errors it answers then are retried while IAM and S3 catch up.
        ct::create_trail::CreateTrailError {
            is_trail_already_exists_exception => AlreadyExists,
            is_throttling_exception => Throttled,
            is_invalid_cloud_watch_logs_role_arn_exception => Propagating,
            is_invalid_cloud_watch_logs_log_group_arn_exception => Propagating,
            is_insufficient_s3_bucket_policy_exception => Propagating,
            is_insufficient_encryption_policy_exception => Propagating
        }
        ct::update_trail::UpdateTrailError {
            is_trail_not_found_exception => NotFound,
            is_throttling_exception => Throttled,
            is_invalid_cloud_watch_logs_role_arn_exception => Propagating,
            is_invalid_cloud_watch_logs_log_group_arn_exception => Propagating,
            is_insufficient_s3_bucket_policy_exception => Propagating,
            is_insufficient_encryption_policy_exception => Propagating
        }
        kms::describe_key::DescribeKeyError { is_not_found_exception => NotFound }
        kms::list_resource_tags::ListResourceTagsError { is_not_found_exception => NotFound }
        kms::create_alias::CreateAliasError { is_already_exists_exception => AlreadyExists }
        sns::get_topic_attributes::GetTopicAttributesError {
            is_not_found_exception => NotFound,
            is_authorization_error_exception => AccessDenied
        }
        sns::list_subscriptions_by_topic::ListSubscriptionsByTopicError {
            is_not_found_exception => NotFound,
            is_authorization_error_exception => AccessDenied
        }
        sns::unsubscribe::UnsubscribeError { is_not_found_exception => NotFound }
        sns::delete_topic::DeleteTopicError { is_not_found_exception => NotFound }
        sqs::get_queue_url::GetQueueUrlError { is_queue_does_not_exist => NotFound }
        sqs::delete_queue::DeleteQueueError { is_queue_does_not_exist => NotFound }
        sqs::list_queue_tags::ListQueueTagsError { is_queue_does_not_exist => NotFound }
        iam::list_role_tags::ListRoleTagsError { is_no_such_entity_exception => NotFound }
        logs::create_log_group::CreateLogGroupError { is_resource_already_exists_exception => AlreadyExists }
        logs::list_tags_for_resource::ListTagsForResourceError { is_resource_not_found_exception => NotFound }
        logs::describe_metric_filters::DescribeMetricFiltersError { is_resource_not_found_exception => NotFound }
        logs::delete_metric_filter::DeleteMetricFilterError { is_resource_not_found_exception => NotFound }
        events::list_targets_by_rule::ListTargetsByRuleError { is_resource_not_found_exception => NotFound }
        events::delete_rule::DeleteRuleError { is_resource_not_found_exception => NotFound }
        events::list_rules::ListRulesError { is_resource_not_found_exception => NotFound }
        events::describe_event_bus::DescribeEventBusError { is_resource_not_found_exception => NotFound }
        events::create_event_bus::CreateEventBusError { is_resource_already_exists_exception => AlreadyExists }
        cw::delete_alarms::DeleteAlarmsError { is_resource_not_found => NotFound }
        config::delete_config_rule::DeleteConfigRuleError { is_no_such_config_rule_exception => NotFound }
        // GetWorkGroup models no "not found": a workgroup that does not exist is its
        // InvalidRequestException, the only invalid request a validated name can make.
        athena::get_work_group::GetWorkGroupError { is_invalid_request_exception => NotFound }
        // Athena reports the Glue Data Catalog's EntityNotFoundException (a missing database or
        // table) as a MetadataException.
        athena::get_table_metadata::GetTableMetadataError { is_metadata_exception => NotFound }
        athena::list_tags_for_resource::ListTagsForResourceError { is_resource_not_found_exception => NotFound }
        // AWS Config cannot assume a service-linked role IAM created seconds ago.
        config::put_configuration_recorder::PutConfigurationRecorderError { is_invalid_role_exception => Propagating }
    }
    None
}

/// Error codes by kind, for what the SDK models nothing: S3's "no such configuration" answers
/// to its GetBucket* calls, throttling and access denied (which no service models as errors of
/// an operation), and an existing service-linked role.
fn kind_of_code(code: &str) -> ErrorKind {
    match code {
        "NoSuchBucket"
        | "NoSuchBucketPolicy"
        | "NoSuchLifecycleConfiguration"
        | "ServerSideEncryptionConfigurationNotFoundError"
        | "NoSuchPublicAccessBlockConfiguration"
        | "OwnershipControlsNotFoundError"
        | "NoSuchTagSet"
        | "NoSuchTagSetError"
        | "ObjectLockConfigurationNotFoundError" => ErrorKind::NotFound,
        // CreateServiceLinkedRole models no "already exists".
        "EntityAlreadyExists" => ErrorKind::AlreadyExists,
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "SlowDown"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "RequestThrottled" => ErrorKind::Throttled,
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AuthorizationError" => {
            ErrorKind::AccessDenied
        }
        _ => ErrorKind::Other,
    }
}

/// An AWS failure with its code and message kept apart, so summaries can show them and
/// callers can branch on `kind`.
#[derive(Debug)]
pub struct AwsError {
    pub kind: ErrorKind,
    pub code: Option<String>,
    pub message: Option<String>,
    detail: String,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, &self.message) {
            (Some(code), Some(msg)) => write!(f, "{code}: {msg}"),
            (Some(code), None) => write!(f, "{code}"),
            _ => write!(f, "{}", self.detail),
        }
    }
}

impl std::error::Error for AwsError {}

impl AwsError {
    pub fn from_sdk<E>(err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_string);
        let message = err.message().map(str::to_string);
        let server_error = err.raw_response().is_some_and(|r| r.status().is_server_error());
        let kind = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
                ErrorKind::Transient
            }
            _ => match err.as_service_error().and_then(|e| modeled(e)).or(code.as_deref().map(kind_of_code)) {
                Some(ErrorKind::Other) | None if server_error => ErrorKind::Transient,
                Some(kind) => kind,
                None => ErrorKind::Other,
            },
        };
        // Without a modeled code, the status and the parse failure say more than the raw dump.
        let detail = match (&err, err.raw_response()) {
            (SdkError::ResponseError(_), Some(raw)) => {
                let why = std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default();
                format!("HTTP {}: unreadable response: {why}", raw.status().as_u16())
            }
            (SdkError::ServiceError(se), Some(raw)) => format!("HTTP {}: {}", raw.status().as_u16(), causes(se.err())),
            // The chain of causes reads well; the DisplayErrorContext form appends a Debug dump
            // (of the whole request, for a construction failure) that no reader needs.
            _ => causes(&err),
        };
        AwsError { kind, code, message, detail }
    }
}

impl AwsError {
    /// The same failure with `secret` replaced by `shown` wherever AWS's answer quotes it (a
    /// refused subscription endpoint), so no error message carries a secret.
    pub fn redacted(mut self, secret: &str, shown: &str) -> Self {
        if !secret.is_empty() {
            self.message = self.message.map(|m| m.replace(secret, shown));
            self.detail = self.detail.replace(secret, shown);
        }
        self
    }
}

/// "dispatch failure: io error: connection closed before message completed": each cause in
/// the chain once.
pub fn causes(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.last().is_some_and(|p| p.ends_with(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The kind of an error chain's AWS failure, if it has one.
pub fn kind(err: &anyhow::Error) -> ErrorKind {
    err.chain().find_map(|e| e.downcast_ref::<AwsError>()).map(|e| e.kind).unwrap_or(ErrorKind::Other)
}

/// A create that may find its resource already there (left by an interrupted earlier run, or
/// made by a concurrent one): `Ok(true)` when this call created it, `Ok(false)` when it existed.
pub fn created<T>(result: anyhow::Result<T>) -> anyhow::Result<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if kind(&e) == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Converts SDK results, naming what was being done.
pub trait AwsResultExt<T> {
    /// Fails with context, e.g. "creating CloudTrail trail us-east-1/audit".
    fn ctx(self, what: impl FnOnce() -> String) -> anyhow::Result<T>;
    /// Like `ctx`, but "not found" is `Ok(None)`: absence is a value.
    fn found(self, what: impl FnOnce() -> String) -> anyhow::Result<Option<T>>;
}

impl<T, E> AwsResultExt<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn ctx(self, what: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::Error::new(AwsError::from_sdk(e)).context(what()))
    }

    fn found(self, what: impl FnOnce() -> String) -> anyhow::Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                let e = AwsError::from_sdk(e);
                if e.kind == ErrorKind::NotFound { Ok(None) } else { Err(anyhow::Error::new(e).context(what())) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_classify_what_the_sdk_does_not_model() {
        assert_eq!(kind_of_code("NoSuchBucketPolicy"), ErrorKind::NotFound);
        assert_eq!(kind_of_code("EntityAlreadyExists"), ErrorKind::AlreadyExists);
        assert_eq!(kind_of_code("ThrottlingException"), ErrorKind::Throttled);
        assert_eq!(kind_of_code("AccessDeniedException"), ErrorKind::AccessDenied);
        assert_eq!(kind_of_code("ValidationError"), ErrorKind::Other);
    }

    #[test]
    fn modeled_errors_classify_by_their_helpers() {
        use aws_sdk_cloudtrail::operation::create_trail::CreateTrailError;
        use aws_sdk_cloudtrail::types::error::{InvalidCloudWatchLogsRoleArnException, TrailAlreadyExistsException};
        use aws_sdk_kms::operation::create_key::CreateKeyError;
        use aws_sdk_kms::types::error::MalformedPolicyDocumentException;
        let role = CreateTrailError::InvalidCloudWatchLogsRoleArnException(
            InvalidCloudWatchLogsRoleArnException::builder().build(),
        );
        assert_eq!(modeled(&role), Some(ErrorKind::Propagating));
        let exists = CreateTrailError::TrailAlreadyExistsException(TrailAlreadyExistsException::builder().build());
        assert_eq!(modeled(&exists), Some(ErrorKind::AlreadyExists));
        use aws_sdk_config::operation::put_configuration_recorder::PutConfigurationRecorderError;
        let role = PutConfigurationRecorderError::InvalidRoleException(
            aws_sdk_config::types::error::InvalidRoleException::builder().build(),
        );
        assert_eq!(modeled(&role), Some(ErrorKind::Propagating));
        // A policy KMS rejects is the user's to fix, with KMS's message: never waited on.
        let malformed =
            CreateKeyError::MalformedPolicyDocumentException(MalformedPolicyDocumentException::builder().build());
        assert_eq!(modeled(&malformed), None);
        assert_eq!(kind_of_code("MalformedPolicyDocumentException"), ErrorKind::Other);
    }
}
