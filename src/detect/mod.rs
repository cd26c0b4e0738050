//! Offline evaluators for the two detection languages ctguard deploys, so a profile's detections
//! can be checked against CloudTrail records without calling AWS:
//!
//! - [`eventbridge`]: EventBridge event patterns (PutRule's `EventPattern`), matched against the
//!   event a CloudTrail record becomes on the default bus ([`eventbridge::envelope`]).
//! - [`logfilter`]: CloudWatch Logs JSON filter patterns (PutMetricFilter's `filterPattern`),
//!   matched against a CloudTrail record as it lands in the trail's log group.
//!
//! Both parse once and match many times: parsing validates the way the AWS API would and
//! returns a [`PatternError`]; matching never fails, never panics, and does not allocate on the
//! common paths, because it runs once per record over millions of records.

pub mod agents;
pub mod catalog;
pub mod event_names;
pub mod eventbridge;
pub mod logfilter;
pub mod replay;
pub mod timeline;

use std::fmt;

/// Why a pattern was rejected: where in the pattern (a JSON path such as
/// `$.detail.eventName[1]`, or a character offset in a filter pattern) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct PatternError {
    location: String,
    message: String,
}

impl PatternError {
    pub(crate) fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        PatternError { location: location.into(), message: message.into() }
    }

    /// Where the problem is: a JSON path (EventBridge) or "character N" (CloudWatch Logs).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// What is wrong there.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A fixed-size text buffer for formatting a number without a heap allocation, used on the
/// per-record path where a JSON number has to be seen as text.
pub(crate) struct StackText {
    bytes: [u8; 64],
    len: usize,
}

impl StackText {
    /// The `Display` text of `value`, or `None` if it does not fit in 64 bytes.
    pub(crate) fn of(value: &impl fmt::Display) -> Option<StackText> {
        use fmt::Write;
        let mut text = StackText { bytes: [0; 64], len: 0 };
        write!(text, "{value}").ok()?;
        Some(text)
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the bytes are valid UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
