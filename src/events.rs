//! Events the lower layers report and whoever owns output listens to. The AWS layer emits a
//! `Retry` through a `RetryListener` it is handed; the printer and renderers format it. Neither
//! side owns the other, so output never imports the AWS layer to learn what a retry is.

use std::sync::Arc;

/// One retry the SDK is about to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// The attempt about to start: 2 for the first retry, at most `max`.
    pub attempt: u32,
    pub max: u32,
    /// The signing name, which is also the IAM prefix ("logs", "sns", "monitoring").
    pub service: String,
    pub operation: String,
    pub region: String,
    /// Why the previous attempt failed: an AWS error code, "HTTP 503", "timeout", ...
    pub after: String,
}

/// Receives each retry. Called from the SDK's tasks, so it must be quick and thread-safe.
pub type RetryListener = Arc<dyn Fn(&Retry) + Send + Sync>;
