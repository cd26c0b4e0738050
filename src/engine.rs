//! Reads live state concurrently, plans, and applies changes in dependency order. Progress is
//! reported through `Hook`; the engine never prints.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::aws::Aws;
use crate::plan::{self, Action, Address, Change, Plan, UNKNOWN};
use crate::resources::{Check, Exports, Live, Outputs, Resource};

/// Reads in flight at once per region: enough to hide latency, few enough to stay clear of
/// throttling. AWS rate-limits each region separately, so regions do not share the bound, and
/// a plan over 17 regions takes about as long as the busiest region's reads.
const READ_CONCURRENCY: usize = 16;
/// Changes in flight at once. Write APIs have low rate limits (PutMetricAlarm allows a few
/// calls per second), and a burst that outruns the SDK's retries fails the apply.
const WRITE_CONCURRENCY: usize = 4;

/// Live state of every declared resource, keyed by address.
pub type LiveState = HashMap<Address, Option<Live>>;

/// Reads every resource concurrently, each region under its own bound. Fails on the first
/// error that is not "absent".
pub async fn read_all(aws: &Aws, resources: &[Box<dyn Resource>]) -> anyhow::Result<LiveState> {
    let mut by_region: BTreeMap<String, Vec<&dyn Resource>> = BTreeMap::new();
    for r in resources {
        by_region.entry(r.address().region).or_default().push(r.as_ref());
    }
    // Futures are built before they are streamed, here and below: a stream's closure over
    // borrowed items keeps the future from being Send (rust-lang/rust#89976), and --accounts
    // runs each account as a task.
    let regions = by_region.into_values().map(|rs| {
        let reads: Vec<_> = rs.into_iter().map(|r| async move { (r.address(), r.read(aws).await) }).collect();
        futures::stream::iter(reads).buffer_unordered(READ_CONCURRENCY).collect::<Vec<_>>()
    });
    let mut state = LiveState::new();
    for (address, result) in futures::future::join_all(regions).await.into_iter().flatten() {
        state.insert(address, result?);
    }
    Ok(state)
}

fn outputs_of(live: &LiveState) -> Outputs {
    live.iter().filter_map(|(a, l)| l.as_ref().map(|l| (a.clone(), l.exports.clone()))).collect()
}

/// The plan for the declared resources and their live state (see `plan::plan`).
pub fn plan(profile_name: &str, resources: &[Box<dyn Resource>], live: &LiveState) -> Plan {
    let outputs = outputs_of(live);
    let inputs = resources.iter().map(|r| {
        let address = r.address();
        let observed = live.get(&address).and_then(Option::as_ref).map(|l| plan::Observed {
            attrs: &l.attrs,
            owner: &l.owner,
            notes: &l.notes,
        });
        let have = live.get(&address).and_then(Option::as_ref);
        let destructive = have.map(|l| r.destructive(l, &outputs));
        plan::Input {
            cautions: r.cautions(have, &outputs),
            desired: r.desired(&outputs),
            live: observed,
            replace_on: r.replace_on(),
            destructive: destructive.unwrap_or_default(),
            address,
        }
    });
    plan::plan(profile_name, inputs)
}

/// Health checks gathered while reading.
pub fn checks(live: &LiveState, resources: &[Box<dyn Resource>]) -> Vec<(Address, Check)> {
    resources
        .iter()
        .filter_map(|r| live.get(&r.address()).and_then(Option::as_ref).map(|l| (r.address(), l)))
        .flat_map(|(a, l)| l.checks.iter().map(move |c| (a.clone(), c.clone())))
        .collect()
}

/// Health only verify asks about (it costs extra calls), for every resource that exists.
pub async fn health(aws: &Aws, resources: &[Box<dyn Resource>], live: &LiveState) -> Vec<(Address, Check)> {
    let asks: Vec<_> = resources
        .iter()
        .filter(|r| live.get(&r.address()).is_some_and(Option::is_some))
        .map(|r| async move { r.health(aws).await.into_iter().map(|c| (r.address(), c)).collect::<Vec<_>>() })
        .collect();
    let checks: Vec<Vec<(Address, Check)>> = futures::stream::iter(asks).buffered(READ_CONCURRENCY).collect().await;
    checks.into_iter().flatten().collect()
}

/// What apply reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started { address: Address, action: Action },
    Finished { address: Address, action: Action, elapsed: Duration },
    Failed { address: Address, action: Action, error: String },
    Skipped { address: Address, action: Action, because: Address },
}

/// A listener for apply's progress: a progress bar, plain lines, a test recorder.
pub trait Hook: Send + Sync {
    fn event(&self, event: &Event);
}

/// How one planned change ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    Failed(String),
    /// Not attempted because a dependency failed.
    Skipped(Address),
    /// Left undone on purpose: a destructive delete without `--allow-data-loss`.
    Withheld,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub outcomes: Vec<(Change, Outcome)>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.outcomes.iter().any(|(_, o)| matches!(o, Outcome::Failed(_) | Outcome::Skipped(_)))
    }
}

/// Executes the plan. A change runs once everything it depends on has succeeded; changes
/// whose dependencies are all done run concurrently. A failure skips its dependents and
/// lets independent changes finish.
pub async fn apply(
    aws: &Aws,
    resources: &[Box<dyn Resource>],
    plan: &Plan,
    live: &LiveState,
    hook: &dyn Hook,
) -> Report {
    let mut outputs = outputs_of(live);
    let by_address: HashMap<Address, &dyn Resource> = resources.iter().map(|r| (r.address(), r.as_ref())).collect();
    let mut pending: Vec<&Change> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    let mut done: BTreeSet<Address> =
        plan.changes.iter().filter(|c| c.action == Action::NoOp).map(|c| c.address.clone()).collect();
    // Failed or skipped address -> the failure that caused it.
    let mut failed: HashMap<Address, Address> = HashMap::new();
    let mut outcomes: HashMap<Address, Outcome> = HashMap::new();

    while !pending.is_empty() {
        let deps = |c: &Change| by_address.get(&c.address).map(|r| r.depends_on()).unwrap_or_default();
        // Skip anything that waits on a failure; remember the root cause.
        pending.retain(|c| match deps(c).iter().find_map(|d| failed.get(d).cloned()) {
            Some(root) => {
                hook.event(&Event::Skipped { address: c.address.clone(), action: c.action, because: root.clone() });
                failed.insert(c.address.clone(), root.clone());
                outcomes.insert(c.address.clone(), Outcome::Skipped(root));
                false
            }
            None => true,
        });
        let (ready, waiting): (Vec<&Change>, Vec<&Change>) =
            pending.into_iter().partition(|c| deps(c).iter().all(|d| done.contains(d)));
        if ready.is_empty() {
            for c in &waiting {
                outcomes.insert(c.address.clone(), Outcome::Failed("dependency cycle or undeclared dependency".into()));
            }
            break;
        }
        let runs: Vec<_> = ready
            .iter()
            .map(|c| {
                run_one(aws, by_address[&c.address], c, live.get(&c.address).and_then(Option::as_ref), &outputs, hook)
            })
            .collect();
        let results: Vec<_> = futures::stream::iter(runs).buffered(WRITE_CONCURRENCY).collect().await;
        for (change, result) in ready.iter().zip(results) {
            match result {
                Ok(new_outputs) => {
                    outputs.insert(change.address.clone(), new_outputs);
                    done.insert(change.address.clone());
                    outcomes.insert(change.address.clone(), Outcome::Done);
                }
                Err(e) => {
                    failed.insert(change.address.clone(), change.address.clone());
                    outcomes.insert(change.address.clone(), Outcome::Failed(format!("{e:#}")));
                }
            }
        }
        pending = waiting;
    }
    let outcomes = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| (c.clone(), outcomes.remove(&c.address).unwrap_or(Outcome::Done)))
        .collect();
    Report { outcomes }
}

/// Runs one change and reads the resource back. Returns its fresh exports.
async fn run_one(
    aws: &Aws,
    r: &dyn Resource,
    change: &Change,
    have: Option<&Live>,
    outputs: &Outputs,
    hook: &dyn Hook,
) -> anyhow::Result<Exports> {
    let address = change.address.clone();
    hook.event(&Event::Started { address: address.clone(), action: change.action });
    let start = Instant::now();
    let result = async {
        let want = r.desired(outputs).unwrap_or_default();
        // Values that only exist after a dependency is created must be known by now.
        if want.values().any(|v| v.to_string().contains(UNKNOWN)) {
            anyhow::bail!("internal error: {address} still has values {UNKNOWN:?}");
        }
        r.apply(aws, change.action, have, outputs).await?;
        if change.action == Action::Delete {
            return Ok(Exports::default());
        }
        let back = r
            .read_back(aws)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{address} is missing right after it was written"))?;
        let left = plan::diff(Some(&back.attrs), Some(&want));
        if let Some(d) = left.first() {
            anyhow::bail!(
                "{address} did not converge: {} reads back as {} after setting it",
                d.path,
                d.before.as_ref().map(|v| v.to_string()).unwrap_or("(absent)".into())
            );
        }
        Ok(back.exports)
    }
    .await;
    match &result {
        Ok(_) => hook.event(&Event::Finished { address, action: change.action, elapsed: start.elapsed() }),
        Err(e) => hook.event(&Event::Failed { address, action: change.action, error: format!("{e:#}") }),
    }
    result
}
