//! Waiting out IAM's eventual consistency. A role or policy IAM created seconds ago is not yet
//! visible to the service that must assume or check it: CloudTrail answers
//! InvalidCloudWatchLogsRoleArnException for a fresh log-delivery role, and AWS Config may not
//! assume a just-created service-linked role. The SDK's own retries are far too short for that
//! (IAM documents "a few seconds" and more), so such calls are repeated here, and only for the
//! errors the classifier names as `Propagating`; everything else returns at once.

use std::future::Future;
use std::time::Duration;

use super::error::{ErrorKind, kind};

/// First pause; it doubles up to `MAX_DELAY`.
const FIRST_DELAY: Duration = Duration::from_secs(2);
const MAX_DELAY: Duration = Duration::from_secs(15);
/// How long a dependency may take to become visible before the error is final.
const DEADLINE: Duration = Duration::from_secs(90);

/// Runs `op` until it succeeds, fails with anything but `Propagating`, or the deadline passes.
pub async fn while_propagating<T, F, Fut>(mut op: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut delay = FIRST_DELAY;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match op().await {
            Err(e) if kind(&e) == ErrorKind::Propagating && tokio::time::Instant::now() + delay < deadline => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_DELAY);
            }
            other => return other,
        }
    }
}
