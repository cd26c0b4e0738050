//! Listeners for apply's progress: spinners on a terminal, plain lines otherwise. Both write
//! to stderr so stdout stays data.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{doing_phrase, done_phrase};
use crate::engine::{Event, Hook};
use crate::events::Retry;
use crate::plan::Address;

/// One spinner per resource in flight.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<Address, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Bars { multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()), bars: Mutex::new(HashMap::new()) }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Hook for Bars {
    fn event(&self, event: &Event) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Started { address, action } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(format!("{address}: {}", doing_phrase(*action)));
                bar.enable_steady_tick(Duration::from_millis(100));
                bars.insert(address.clone(), bar);
            }
            Event::Finished { address, action, elapsed } => {
                if let Some(bar) = bars.remove(address) {
                    // The template's running clock would repeat the time the message gives.
                    bar.set_style(done_style());
                    bar.finish_with_message(format!(
                        "{address}: {} in {:.1}s",
                        done_phrase(*action),
                        elapsed.as_secs_f64()
                    ));
                }
            }
            Event::Failed { address, error, .. } => {
                if let Some(bar) = bars.remove(address) {
                    bar.set_style(done_style());
                    bar.abandon_with_message(format!("{address}: failed: {error}"));
                }
            }
            Event::Skipped { address, because, .. } => {
                let _ = self.multi.println(format!("  {address}: skipped, {because} failed"));
            }
        }
    }
}

/// Bytes read of the input, with the rate; a bar when the total is known.
pub fn bytes_bar(total: Option<u64>) -> ProgressBar {
    let (bar, template) = match total {
        Some(n) => {
            (ProgressBar::new(n), "{spinner} reading {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}, {eta} left")
        }
        None => (ProgressBar::no_length(), "{spinner} reading {bytes} ({bytes_per_sec})"),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A finished line: the message alone.
fn done_style() -> ProgressStyle {
    ProgressStyle::with_template("  {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// Plain lines for logs and CI.
pub struct Lines;

impl Hook for Lines {
    fn event(&self, event: &Event) {
        let line = match event {
            Event::Started { address, action } => {
                format!("{address}: {}...", doing_phrase(*action))
            }
            Event::Finished { address, action, elapsed } => {
                format!("{address}: {} in {:.1}s", done_phrase(*action), elapsed.as_secs_f64())
            }
            Event::Failed { address, error, .. } => format!("{address}: failed: {error}"),
            Event::Skipped { address, because, .. } => format!("{address}: skipped, {because} failed"),
        };
        eprintln!("{line}");
    }
}

/// "call logs:PutMetricFilter (us-east-1) 41 ms", with the attempts when retried and
/// "failed" when the call did not succeed.
pub fn call_line(c: &crate::aws::timing::Call) -> String {
    let mut line = format!("call {}:{} ({}) {:.0} ms", c.service, c.operation, c.region, c.elapsed.as_secs_f64() * 1e3);
    if c.attempts > 1 {
        line.push_str(&format!(", {} attempts", c.attempts));
    }
    if !c.ok {
        line.push_str(", failed");
    }
    line
}

/// "retry 2/5 logs:PutMetricFilter (us-east-1) after ThrottlingException".
pub fn retry_line(r: &Retry) -> String {
    format!("retry {}/{} {}:{} ({}) after {}", r.attempt, r.max, r.service, r.operation, r.region, r.after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_line_names_the_call_its_time_and_retries() {
        let mut c = crate::aws::timing::Call {
            service: "sts".into(),
            operation: "GetCallerIdentity".into(),
            region: "us-east-1".into(),
            elapsed: Duration::from_millis(12),
            attempts: 1,
            ok: true,
        };
        assert_eq!(call_line(&c), "call sts:GetCallerIdentity (us-east-1) 12 ms");
        (c.attempts, c.ok) = (3, false);
        assert_eq!(call_line(&c), "call sts:GetCallerIdentity (us-east-1) 12 ms, 3 attempts, failed");
    }

    #[test]
    fn a_retry_names_the_call_and_its_cause() {
        let r = Retry {
            attempt: 2,
            max: 5,
            service: "logs".into(),
            operation: "PutMetricFilter".into(),
            region: "us-east-1".into(),
            after: "ThrottlingException".into(),
        };
        assert_eq!(retry_line(&r), "retry 2/5 logs:PutMetricFilter (us-east-1) after ThrottlingException");
    }
}
