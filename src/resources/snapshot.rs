//! One batched read shared by every resource of a kind (all metric filters of a log group, all
//! alarms, a region's rules), so plan makes one call where it would otherwise make one per
//! resource. A write drops it (`Kind::forget`), so the read back sees the write.

use std::future::Future;
use std::sync::Arc;

pub struct Snapshot<T> {
    value: tokio::sync::Mutex<Option<Arc<T>>>,
}

impl<T> Default for Snapshot<T> {
    fn default() -> Self {
        Snapshot { value: tokio::sync::Mutex::new(None) }
    }
}

impl<T> Snapshot<T> {
    /// The snapshot, fetched by the first caller; the others wait for it and share it.
    pub async fn get<F, Fut>(&self, fetch: F) -> anyhow::Result<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let mut guard = self.value.lock().await;
        if let Some(v) = guard.as_ref() {
            return Ok(v.clone());
        }
        let v = Arc::new(fetch().await?);
        *guard = Some(v.clone());
        Ok(v)
    }

    /// Drops the snapshot after a write, so the next read sees it.
    pub async fn forget(&self) {
        *self.value.lock().await = None;
    }
}
