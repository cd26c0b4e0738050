//! Makes the SDK's own retries visible. An interceptor on every client notes why an attempt
//! failed and, when the SDK starts another attempt of the same call, tells a listener. The
//! listener belongs to whoever owns output; this module never prints.

use std::fmt;

use aws_config::Region;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_types::SigningName;

use super::MAX_ATTEMPTS;
use crate::events::{Retry, RetryListener};

/// The interceptor every client carries.
#[derive(Clone)]
pub struct ReportRetries {
    listener: RetryListener,
}

impl ReportRetries {
    pub fn new(listener: RetryListener) -> Self {
        ReportRetries { listener }
    }
}

impl fmt::Debug for ReportRetries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReportRetries")
    }
}

/// Why the last attempt failed, kept in the operation's config bag: the SDK clears the
/// attempt's error before the next attempt starts, so `read_before_attempt` cannot see it.
#[derive(Debug, Clone)]
struct LastFailure(String);

impl Storable for LastFailure {
    type Storer = StoreReplace<Self>;
}

impl Intercept for ReportRetries {
    fn name(&self) -> &'static str {
        "ReportRetries"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Err(err)) = context.output_or_error() {
            let status = context.response().map(|r| r.status().as_u16());
            let why = if let Some(op) = err.as_operation_error() {
                error_code(&op.to_string()).unwrap_or_else(|| format!("HTTP {}", status.unwrap_or(0)))
            } else if err.is_timeout_error() {
                "a timeout".to_string()
            } else if err.is_connector_error() {
                "a connection error".to_string()
            } else if let Some(s) = status {
                format!("HTTP {s}")
            } else {
                "an unreadable response".to_string()
            };
            cfg.interceptor_state().store_put(LastFailure(why));
        }
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempt = cfg.load::<RequestAttempts>().map(RequestAttempts::attempts).unwrap_or(1);
        if attempt < 2 {
            return Ok(());
        }
        let metadata = cfg.load::<Metadata>();
        let retry = Retry {
            attempt,
            max: cfg.load::<aws_smithy_types::retry::RetryConfig>().map_or(MAX_ATTEMPTS, |r| r.max_attempts()),
            service: cfg
                .load::<SigningName>()
                .map(|s| s.as_ref().to_string())
                .or(metadata.map(|m| m.service().to_string()))
                .unwrap_or_default(),
            operation: metadata.map(|m| m.name().to_string()).unwrap_or_default(),
            region: cfg.load::<Region>().map(|r| r.to_string()).unwrap_or_default(),
            after: cfg.load::<LastFailure>().map(|f| f.0.clone()).unwrap_or_else(|| "a failed attempt".into()),
        };
        (self.listener)(&retry);
        Ok(())
    }
}

/// The AWS error code in an SDK operation error's text. The interceptor only sees the error
/// type-erased, so `ProvideErrorMetadata` is out of reach; the generated `Display` is
/// "Code: message" for modeled errors and "unhandled error (Code)" for the rest. Only used to
/// name the cause in a progress line, never to decide anything.
fn error_code(text: &str) -> Option<String> {
    let code = match text.strip_prefix("unhandled error (") {
        Some(rest) => rest.split(')').next().unwrap_or(""),
        None => text.split([':', ' ', '[']).next().unwrap_or(""),
    };
    let looks_like_code = !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
    (looks_like_code && code != "unhandled").then(|| code.to_string())
}

#[cfg(test)]
mod tests {
    use super::error_code;

    #[test]
    fn codes_are_read_from_both_shapes_of_sdk_error_text() {
        assert_eq!(error_code("ThrottlingException: Rate exceeded").as_deref(), Some("ThrottlingException"));
        assert_eq!(error_code("unhandled error (Throttling)").as_deref(), Some("Throttling"));
        assert_eq!(
            error_code("ServiceUnavailable [ServiceUnavailableException]").as_deref(),
            Some("ServiceUnavailable")
        );
        assert_eq!(error_code("unhandled error"), None);
        assert_eq!(error_code(""), None);
    }
}
