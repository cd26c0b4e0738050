//! The one place AWS errors are classified. Everything else asks `kind()`; nothing matches on
//! message text.

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

/// Error codes by kind. Codes are per service; several services share a spelling.
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
        | "TrailNotFoundException"
        | "CloudTrailARNInvalidException"
        | "ResourceNotFoundException"
        | "NoSuchEntity"
        | "NotFound"
        | "NotFoundException" => ErrorKind::NotFound,
        "BucketAlreadyOwnedByYou"
        | "TrailAlreadyExistsException"
        | "ResourceAlreadyExistsException"
        | "EntityAlreadyExists"
        | "AlreadyExistsException" => ErrorKind::AlreadyExists,
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
        // CloudTrail cannot assume a role IAM created seconds ago; KMS rejects a key policy
        // naming a principal it cannot see yet; S3 may not see a fresh bucket policy.
        "InvalidCloudWatchLogsRoleArnException"
        | "InvalidCloudWatchLogsLogGroupArnException"
        | "InsufficientS3BucketPolicyException"
        | "InsufficientEncryptionPolicyException"
        | "MalformedPolicyDocumentException" => ErrorKind::Propagating,
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
            _ => match code.as_deref().map(kind_of_code) {
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
    fn codes_classify() {
        assert_eq!(kind_of_code("NoSuchBucketPolicy"), ErrorKind::NotFound);
        assert_eq!(kind_of_code("TrailNotFoundException"), ErrorKind::NotFound);
        assert_eq!(kind_of_code("EntityAlreadyExists"), ErrorKind::AlreadyExists);
        assert_eq!(kind_of_code("ThrottlingException"), ErrorKind::Throttled);
        assert_eq!(kind_of_code("InvalidCloudWatchLogsRoleArnException"), ErrorKind::Propagating);
        assert_eq!(kind_of_code("ValidationError"), ErrorKind::Other);
    }
}
