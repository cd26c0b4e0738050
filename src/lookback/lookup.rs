//! Reads CloudTrail event history: one paginated LookupEvents stream per region and event
//! name (or one per region for every event), every region at once, each region paced to
//! AWS's rate. Pages go to a channel as they arrive; a failed stream is reported there and
//! the rest go on.

use aws_config::{Region, SdkConfig};
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_smithy_types::DateTime;
use tokio::sync::mpsc;

use crate::aws::ErrorKind;
use crate::aws::error::AwsError;
use crate::aws::retry::ReportRetries;
use crate::events::RetryListener;
use crate::lookback::event::Found;
use crate::lookback::pace::Pace;
use crate::lookback::window::Window;

/// "The number of events to return. Possible values are 1 through 50."
pub const PAGE_SIZE: i32 = 50;
/// Calls in flight per region: LookupEvents can take longer than the 500 ms between two
/// paced calls, and two in flight keep the pace.
const IN_FLIGHT: usize = 2;

/// What one stream looks up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub region: String,
    /// `None`: every event (no lookup attribute).
    pub event_name: Option<String>,
}

/// Streams are numbered region by region, in `names` order within each.
pub fn streams(regions: &[String], names: Option<&[String]>) -> Vec<StreamSpec> {
    let names: Vec<Option<String>> = match names {
        Some(list) => list.iter().cloned().map(Some).collect(),
        None => vec![None],
    };
    regions
        .iter()
        .flat_map(|r| names.iter().map(move |n| StreamSpec { region: r.clone(), event_name: n.clone() }))
        .collect()
}

/// What the lookups report, in the order it happens.
#[derive(Debug)]
pub enum Message {
    /// One page of stream `stream`, newest first.
    Page { stream: usize, events: Vec<Found>, more: bool },
    /// Stream `stream` failed and delivers nothing more. `region_wide` when the failure ends
    /// every stream of its region (access denied, the region unreachable or not enabled).
    Failed { stream: usize, error: String, region_wide: bool },
    /// Stream `stream` was not read because its region failed.
    Closed { stream: usize },
    /// Every stream of the region is finished.
    RegionDone { region: String },
}

/// A CloudTrail client for `region`, reporting its retries.
pub fn client(config: &SdkConfig, region: &str, on_retry: &RetryListener) -> aws_sdk_cloudtrail::Client {
    let conf = aws_sdk_cloudtrail::config::Builder::from(config)
        .region(Region::new(region.to_string()))
        .interceptor(ReportRetries::new(on_retry.clone()))
        .build();
    aws_sdk_cloudtrail::Client::from_conf(conf)
}

/// Spawns one task per region on the current runtime. Each sends its pages to `tx` and stops
/// early once the receiver is gone.
pub fn spawn(
    clients: Vec<(String, aws_sdk_cloudtrail::Client)>,
    specs: &[StreamSpec],
    window: Window,
    rate: f64,
    tx: mpsc::Sender<Message>,
) -> Vec<tokio::task::JoinHandle<()>> {
    clients
        .into_iter()
        .map(|(region, client)| {
            let mine: Vec<(usize, Option<String>)> = specs
                .iter()
                .enumerate()
                .filter(|(_, s)| s.region == region)
                .map(|(i, s)| (i, s.event_name.clone()))
                .collect();
            let tx = tx.clone();
            tokio::spawn(async move {
                let pace = Pace::per_second(rate);
                run_region(&client, &region, mine, window, &pace, &tx).await;
                let _ = tx.send(Message::RegionDone { region }).await;
            })
        })
        .collect()
}

#[derive(Debug)]
enum State {
    /// Not called yet.
    Fresh,
    /// Has a next page; the oldest time seen so far (the scheduler's priority).
    More {
        token: String,
        oldest: i64,
    },
    Busy,
    Done,
}

struct Page {
    events: Vec<Found>,
    next: Option<String>,
}

async fn run_region(
    client: &aws_sdk_cloudtrail::Client,
    region: &str,
    streams: Vec<(usize, Option<String>)>,
    window: Window,
    pace: &Pace,
    tx: &mpsc::Sender<Message>,
) {
    let mut state: Vec<State> = streams.iter().map(|_| State::Fresh).collect();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut task_stream = std::collections::HashMap::new();
    loop {
        while in_flight.len() < IN_FLIGHT {
            let Some(k) = next_stream(&state) else { break };
            let token = match std::mem::replace(&mut state[k], State::Busy) {
                State::More { token, .. } => Some(token),
                _ => None,
            };
            pace.wait().await;
            let (client, region, name) = (client.clone(), region.to_string(), streams[k].1.clone());
            let task = in_flight.spawn(async move { lookup(&client, &region, name.as_deref(), window, token).await });
            task_stream.insert(task.id(), k);
        }
        let Some(joined) = in_flight.join_next_with_id().await else { break };
        let (id, result) = match joined {
            Ok((id, result)) => (id, result),
            Err(e) => (e.id(), Err(Failure { error: format!("the lookup stopped: {e}"), region_wide: false })),
        };
        let Some(k) = task_stream.remove(&id) else { continue };
        let stream = streams[k].0;
        let mut messages = Vec::new();
        match result {
            Ok(page) => {
                let more = page.next.is_some();
                state[k] = match page.next {
                    Some(token) => {
                        let oldest = page.events.iter().map(|e| e.time).min().unwrap_or(window.end);
                        State::More { token, oldest }
                    }
                    None => State::Done,
                };
                messages.push(Message::Page { stream, events: page.events, more });
            }
            Err(Failure { error, region_wide }) => {
                state[k] = State::Done;
                let what = match &streams[k].1 {
                    Some(name) => format!("{region}: LookupEvents EventName={name}"),
                    None => format!("{region}: LookupEvents"),
                };
                let error = format!("{what}: {error}");
                messages.push(Message::Failed { stream, error, region_wide });
                if region_wide {
                    // Every other lookup in the region would fail the same way: end them.
                    for (j, s) in state.iter_mut().enumerate() {
                        if !matches!(s, State::Done | State::Busy) {
                            *s = State::Done;
                            messages.push(Message::Closed { stream: streams[j].0 });
                        }
                    }
                }
            }
        }
        for message in messages {
            if tx.send(message).await.is_err() {
                in_flight.abort_all();
                return;
            }
        }
    }
}

struct Failure {
    error: String,
    /// See [`ends_region`].
    region_wide: bool,
}

/// Fresh streams first, in order (every stream's first page is needed before anything can be
/// released); then the stream whose next page may hold the newest events.
fn next_stream(state: &[State]) -> Option<usize> {
    if let Some(k) = state.iter().position(|s| matches!(s, State::Fresh)) {
        return Some(k);
    }
    state
        .iter()
        .enumerate()
        .filter_map(|(k, s)| match s {
            State::More { oldest, .. } => Some((k, *oldest)),
            _ => None,
        })
        .max_by_key(|&(k, oldest)| (oldest, std::cmp::Reverse(k)))
        .map(|(k, _)| k)
}

async fn lookup(
    client: &aws_sdk_cloudtrail::Client,
    region: &str,
    event_name: Option<&str>,
    window: Window,
    token: Option<String>,
) -> Result<Page, Failure> {
    let mut call = client
        .lookup_events()
        .start_time(DateTime::from_secs(window.start))
        .end_time(DateTime::from_secs(window.end))
        .max_results(PAGE_SIZE)
        .set_next_token(token);
    if let Some(name) = event_name {
        let attribute = LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::EventName)
            .attribute_value(name)
            .build()
            .expect("key and value are set");
        call = call.lookup_attributes(attribute);
    }
    let out = call.send().await.map_err(|e| {
        let e = AwsError::from_sdk(e);
        Failure { region_wide: ends_region(&e), error: e.to_string() }
    })?;
    let events = out.events().iter().map(|e| Found::from_lookup(region, e)).collect();
    Ok(Page { events, next: out.next_token().filter(|t| !t.is_empty()).map(str::to_string) })
}

/// Failures that are about the region or the caller, not the event name: every other lookup
/// in the region would fail the same way.
fn ends_region(e: &AwsError) -> bool {
    let code = e.code.as_deref().unwrap_or("");
    e.kind == ErrorKind::AccessDenied
        || matches!(
            code,
            "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "ExpiredTokenException"
                | "ExpiredToken"
                | "OptInRequired"
                | "AuthFailure"
                | "SignatureDoesNotMatch"
                | "IncompleteSignature"
        )
        // The endpoint could not be reached at all, after the SDK's retries.
        || (e.kind == ErrorKind::Transient && e.code.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_numbered_by_region_then_name() {
        let regions = ["us-east-1".to_string(), "eu-west-1".to_string()];
        let names = ["A".to_string(), "B".to_string()];
        let s = streams(&regions, Some(&names));
        assert_eq!(s.len(), 4);
        assert_eq!(s[2], StreamSpec { region: "eu-west-1".into(), event_name: Some("A".into()) });
        assert_eq!(streams(&regions, None)[1], StreamSpec { region: "eu-west-1".into(), event_name: None });
    }

    #[test]
    fn fresh_streams_first_then_the_newest_bound() {
        let more = |oldest| State::More { token: "t".into(), oldest };
        assert_eq!(next_stream(&[more(5), State::Fresh, State::Done]), Some(1));
        assert_eq!(next_stream(&[more(5), State::Busy, more(9), more(9)]), Some(2));
        assert_eq!(next_stream(&[State::Done, State::Busy]), None);
    }
}
