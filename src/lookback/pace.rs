//! A token bucket holding one token: calls start at most `rate` per second, evenly spaced,
//! so a region's LookupEvents calls stay under AWS's limit instead of being throttled and
//! retried.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// "The rate of lookup requests is limited to two per second, per account, per Region"
/// (LookupEvents). Calls are spaced a little wider than 500 ms: arrival times jitter, and a
/// client at exactly the limit would now and then see two calls land inside one 500 ms slot.
pub const LOOKUPS_PER_SECOND: f64 = 1.9;

#[derive(Debug)]
pub struct Pace {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pace {
    pub fn per_second(rate: f64) -> Pace {
        Pace { interval: Duration::from_secs_f64(1.0 / rate), next: Mutex::new(None) }
    }

    /// Waits for the token. The first call goes at once; each later one at least one interval
    /// after the previous one really started (a late wake-up delays the next token too, so two
    /// calls are never closer than the interval).
    pub async fn wait(&self) {
        let mut next = self.next.lock().await;
        if let Some(t) = *next {
            tokio::time::sleep_until(t).await;
        }
        *next = Some(Instant::now() + self.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_are_spaced_by_the_interval() {
        let pace = Pace::per_second(50.0);
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..5 {
            pace.wait().await;
            at.push(Instant::now() - start);
        }
        // Sleeps never end early: each call starts at least one interval after the last.
        assert!(at[0] < Duration::from_millis(15), "{at:?}");
        for pair in at.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(19), "{at:?}");
        }
        // After a pause the next call goes at once: the bucket holds one token, no burst.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = Instant::now();
        pace.wait().await;
        let first = Instant::now() - before;
        pace.wait().await;
        assert!(first < Duration::from_millis(15) && Instant::now() - before >= Duration::from_millis(19));
    }
}
