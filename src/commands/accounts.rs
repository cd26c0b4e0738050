//! plan, apply and verify over several accounts of an organization (`--accounts`).
//!
//! The organization is listed first, from the caller's account, so an id or OU that is not
//! there stops the run before any account is touched. Then each account is reached (its own
//! credentials for the caller's account, the assumed role elsewhere) and gets the same plan or
//! verdict as a run without --accounts; accounts run `--concurrency` at once, each a task on
//! the runtime's worker threads with its own per-region bounds, so the run takes about as long
//! as its slowest account. An account that fails (its role cannot be assumed, an AWS error) is
//! reported in the summary; the others go on. Output waits for every account and keeps the
//! accounts' order.

use std::io::IsTerminal;
use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;

use super::{Session, Start, Status, Watch};
use crate::aws::accounts::{self, Member};
use crate::engine::{LiveState, Report};
use crate::plan::Plan;
use crate::printer::Printer;
use crate::render::human::{PlanView, VerifyView};
use crate::render::{self, AccountLine, AccountOutcome, Verb};
use crate::settings::{ApplyOptions, FanOut, Format, PlanOptions, Settings, VerifyOptions};
use crate::verdict::Verdict;

/// What every account's task shares: the settings, the caller's start and how each account
/// is reached.
struct Org {
    settings: Settings,
    printer: Printer,
    start: Start,
    fan: FanOut,
}

impl Org {
    /// The caller's start and the accounts the selection names, listed before any account is
    /// touched.
    async fn list(settings: &Settings, printer: &Printer, fan: &FanOut) -> anyhow::Result<(Arc<Org>, Vec<Member>)> {
        let start = Start::new(settings, printer).await?;
        let members = accounts::select(&start.config, &fan.accounts, &printer.retries()).await?;
        anyhow::ensure!(!members.is_empty(), "--accounts: no ACTIVE account is selected; nothing was changed");
        printer.verbose(&format!(
            "{} account{} selected: {}",
            members.len(),
            if members.len() == 1 { "" } else { "s" },
            members.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", ")
        ));
        let org = Org { settings: settings.clone(), printer: *printer, start, fan: fan.clone() };
        Ok((Arc::new(org), members))
    }

    /// The session of one member account, reached as `fan` says.
    async fn open(&self, member: &Member) -> anyhow::Result<Session> {
        let Org { settings, printer, start, fan } = self;
        let config =
            accounts::reach(&start.config, &start.caller, &member.id, &fan.role, fan.external_id.as_deref()).await?;
        let caller = accounts::whoami_in(&config, &member.id, &printer.retries()).await?;
        Session::connect(settings, printer, &start.loaded, &config, caller).await
    }

    /// The profile's name, as its documents show it.
    fn profile_name(&self) -> String {
        self.start.loaded.doc.profile.name.clone()
    }
}

/// Runs `work` on every item, `fan.concurrency` at once (see `in_tasks`).
async fn each<I, T, F, Fut>(org: &Arc<Org>, items: Vec<I>, work: F) -> Vec<anyhow::Result<T>>
where
    F: Fn(Arc<Org>, I) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    in_tasks(org.fan.concurrency, items, |item| work(org.clone(), item)).await
}

/// Runs `work` on every item, `concurrency` at once, and returns the results in the items'
/// order. Each runs as a task of its own, so the accounts' CPU work (signing, parsing,
/// planning) spreads over the runtime's worker threads instead of sharing one, and the next
/// account starts as soon as any one finishes, not when the oldest does.
async fn in_tasks<I, T, F, Fut>(concurrency: usize, items: Vec<I>, work: F) -> Vec<anyhow::Result<T>>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    // buffer_unordered pulls the next item, and so spawns its task, only when fewer than
    // `concurrency` are running.
    let mut results: Vec<(usize, anyhow::Result<T>)> = futures::stream::iter(items.into_iter().enumerate())
        .map(|(i, item)| {
            let task = tokio::spawn(work(item));
            async move { (i, joined(task.await)) }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// An account task's result; its panic is the run's, as it would be without a task.
fn joined<T>(result: Result<anyhow::Result<T>, tokio::task::JoinError>) -> anyhow::Result<T> {
    match result {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(anyhow::anyhow!("the account's run was cancelled: {e}")),
    }
}

fn line(member: &Member, outcome: AccountOutcome) -> AccountLine {
    AccountLine { id: member.id.clone(), name: member.name.clone(), outcome }
}

fn failed(member: &Member, e: &anyhow::Error) -> AccountLine {
    line(member, AccountOutcome::Failed(format!("{e:#}")))
}

/// The exit status once every account has been reported: any failed account fails the run.
fn status(lines: &[AccountLine], differs: bool) -> Status {
    if lines.iter().any(|l| matches!(l.outcome, AccountOutcome::Failed(_))) {
        Status::Failed
    } else if differs {
        Status::Differs
    } else {
        Status::Success
    }
}

/// `ctguard plan --accounts`.
pub async fn plan(
    settings: &Settings,
    printer: &Printer,
    fan: &FanOut,
    options: PlanOptions,
) -> anyhow::Result<Status> {
    let (org, members) = Org::list(settings, printer, fan).await?;
    let results = each(&org, members.clone(), |org, m| async move {
        let session = org.open(&m).await?;
        let (_, plan) = session.plan(&org.printer).await?;
        session.warn_about_example_endpoints(&plan, &org.printer);
        Ok((session.ctx, plan))
    })
    .await;
    let results: Vec<_> = members.iter().zip(results).collect();
    let lines: Vec<AccountLine> = results
        .iter()
        .map(|(m, r)| match r {
            Ok((_, plan)) if plan.has_changes() => line(m, AccountOutcome::Changes),
            Ok(_) => line(m, AccountOutcome::Unchanged),
            Err(e) => failed(m, e),
        })
        .collect();
    let view = PlanView { expand: settings.expand, summary_only: options.summary };
    printer.data(|w, paint| match settings.format {
        Format::Human => {
            for ((_, result), l) in results.iter().zip(&lines) {
                if let Ok((ctx, plan)) = result {
                    render::human::account_header(w, paint, l)?;
                    render::human::plan(w, paint, ctx, plan, view)?;
                    writeln!(w)?;
                }
            }
            render::human::organization_summary(w, paint, "plan", &lines)
        }
        Format::Json => {
            let docs = results.iter().map(|(_, r)| r.as_ref().ok().map(|(ctx, p)| render::json::plan_doc(ctx, p)));
            render::json::organization(
                w,
                "plan",
                &org.profile_name(),
                &lines.iter().cloned().zip(docs).collect::<Vec<_>>(),
            )
        }
    })?;
    Ok(status(&lines, options.detailed_exitcode && lines.iter().any(|l| l.outcome == AccountOutcome::Changes)))
}

/// `ctguard verify --accounts`: exit 1 if any account could not be verified, else 2 if any
/// drifted, else 0.
pub async fn verify(
    settings: &Settings,
    printer: &Printer,
    fan: &FanOut,
    options: &VerifyOptions,
) -> anyhow::Result<Status> {
    let (org, members) = Org::list(settings, printer, fan).await?;
    let results = each(&org, members.clone(), |org, m| {
        let options = options.clone();
        async move {
            let session = org.open(&m).await?;
            let verdict = super::verify::judge(&session, &org.printer, &options).await?;
            Ok((session.ctx, verdict))
        }
    })
    .await;
    let results: Vec<_> = members.iter().zip(results).collect();
    let lines: Vec<AccountLine> = results
        .iter()
        .map(|(m, r)| match r {
            Ok((_, v)) if v.passed() => line(m, AccountOutcome::Converged),
            Ok(_) => line(m, AccountOutcome::Drifted),
            Err(e) => failed(m, e),
        })
        .collect();
    let view = VerifyView {
        expand: settings.expand,
        passing: settings.output.verbose > 0 && !options.only_failures,
        only_failures: options.only_failures,
    };
    printer.data(|w, paint| match settings.format {
        Format::Human => {
            for ((_, result), l) in results.iter().zip(&lines) {
                if let Ok((ctx, verdict)) = result {
                    render::human::account_header(w, paint, l)?;
                    render::human::verify(w, paint, ctx, verdict, view)?;
                    writeln!(w)?;
                }
            }
            render::human::organization_summary(w, paint, "verify", &lines)
        }
        Format::Json => {
            let docs = results
                .iter()
                .map(|(_, r)| r.as_ref().ok().map(|(ctx, v): &(_, Verdict)| render::json::verify_doc(ctx, v)));
            render::json::organization(
                w,
                "verify",
                &org.profile_name(),
                &lines.iter().cloned().zip(docs).collect::<Vec<_>>(),
            )
        }
    })?;
    Ok(status(&lines, lines.iter().any(|l| l.outcome == AccountOutcome::Drifted)))
}

/// One account's plan, ready to carry out.
struct Planned {
    session: Session,
    live: LiveState,
    plan: Plan,
}

/// `ctguard apply --accounts`: every account is planned first and every plan shown; a plan
/// that needs --adopt or --allow-data-loss refuses the whole run before any change, as it does
/// in one account. One confirmation covers every account; then the accounts converge,
/// `--concurrency` at once.
pub async fn apply(
    settings: &Settings,
    printer: &Printer,
    fan: &FanOut,
    options: ApplyOptions,
    watch: &Watch,
) -> anyhow::Result<Status> {
    let ApplyOptions { auto_approve, consent } = options;
    if !auto_approve && !std::io::stdin().is_terminal() {
        anyhow::bail!("stdin is not a terminal, so apply cannot ask for confirmation: pass --auto-approve");
    }
    let (org, members) = Org::list(settings, printer, fan).await?;
    let planned = each(&org, members.clone(), |org, m| async move {
        let session = org.open(&m).await?;
        let (live, plan) = session.plan(&org.printer).await?;
        Ok(Planned { session, live, plan })
    })
    .await;
    let planned: Vec<_> = members.iter().zip(planned).collect();
    if settings.format == Format::Human {
        let view = PlanView { expand: settings.expand, summary_only: false };
        printer.data(|w, paint| {
            for (m, p) in &planned {
                if let Ok(p) = p {
                    render::human::account_header(w, paint, &line(m, AccountOutcome::Changes))?;
                    render::human::plan(w, paint, &p.session.ctx, &p.plan, view)?;
                    writeln!(w)?;
                }
            }
            Ok(())
        })?;
    }
    // A profile that does not fit some account is bad input, like a plan that needs consent:
    // no account changes. An account that could not be reached fails alone below.
    let unfit = planned.iter().filter_map(|(m, p)| {
        let e = p.as_ref().err().filter(|e| e.downcast_ref::<super::Unfit>().is_some())?;
        Some(format!("account {}: {e:#}", m.id))
    });
    let refusals: Vec<String> = unfit
        .chain(
            planned
                .iter()
                .filter_map(|(m, p)| p.as_ref().ok().map(|p| (m, p.plan.refusals(consent))))
                .flat_map(|(m, r)| r.into_iter().map(move |r| format!("account {}: {r}", m.id))),
        )
        .collect();
    anyhow::ensure!(
        refusals.is_empty(),
        "refusing to apply, nothing was changed in any account:\n  {}",
        refusals.join("\n  ")
    );
    let changing = planned.iter().any(|(_, p)| p.as_ref().is_ok_and(|p| p.plan.has_changes()));
    if changing {
        for (_, p) in &planned {
            if let Ok(p) = p {
                p.session.warn_about_example_endpoints(&p.plan, printer);
            }
        }
        if !auto_approve && !tokio::task::spawn_blocking(super::apply::confirm).await?? {
            anyhow::bail!("apply cancelled: nothing was changed");
        }
    }
    let work = planned.into_iter().map(|(m, p)| (m.clone(), p)).collect();
    let reports = each(&org, work, |org, (m, p)| {
        let watch = watch.clone();
        async move { converge(&org, &m, p?, consent, &watch).await }
    })
    .await;
    let reports: Vec<_> = members.iter().zip(reports).collect();
    let lines: Vec<AccountLine> = reports
        .iter()
        .map(|(m, r)| match r {
            Ok((_, report)) if report.failed() => {
                line(m, AccountOutcome::Failed("apply did not complete: see the errors above".into()))
            }
            Ok(_) => line(m, AccountOutcome::Converged),
            Err(e) => failed(m, e),
        })
        .collect();
    printer.data(|w, paint| match settings.format {
        Format::Human => {
            for ((_, result), l) in reports.iter().zip(&lines) {
                if let Ok((_, report)) = result
                    && !report.outcomes.is_empty()
                {
                    render::human::account_header(w, paint, l)?;
                    render::human::apply_report(w, paint, report, Verb::Apply)?;
                    writeln!(w)?;
                }
            }
            render::human::organization_summary(w, paint, "apply", &lines)
        }
        Format::Json => {
            let docs: Vec<Option<Value>> = reports
                .iter()
                .map(|(_, r)| {
                    r.as_ref().ok().map(|(ctx, report)| render::json::apply_report_doc(ctx, report, Verb::Apply))
                })
                .collect();
            render::json::organization(
                w,
                "apply",
                &org.profile_name(),
                &lines.iter().cloned().zip(docs).collect::<Vec<_>>(),
            )
        }
    })?;
    Ok(status(&lines, false))
}

/// Carries out one account's plan, then, as apply does in one account, narrows the policies
/// that admitted a trail it deleted.
async fn converge(
    org: &Org,
    member: &Member,
    planned: Planned,
    consent: crate::plan::Consent,
    watch: &Watch,
) -> anyhow::Result<(render::Context, Report)> {
    let Planned { session, live, plan } = planned;
    let printer = &org.printer;
    if !plan.has_changes() {
        return Ok((session.ctx, Report { outcomes: Vec::new() }));
    }
    let mut report = super::apply::carry_out(&session, &plan, &live, consent, printer, watch).await;
    if !report.failed() && super::apply::deleted_destructively(&report) {
        let session = org.open(member).await?;
        let (live, follow_up) = session.plan(printer).await?;
        super::apply::refuse(&follow_up, consent)?;
        report
            .outcomes
            .extend(super::apply::carry_out(&session, &follow_up, &live, consent, printer, watch).await.outcomes);
    }
    Ok((session.ctx, report))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tasks_keep_the_items_order_and_the_bound() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads = Arc::new(Mutex::new(Vec::new()));
        // The first items take longest, so they finish last; each waits long enough for the
        // next ones to start.
        let items: Vec<u64> = (0..12).rev().collect();
        let results = in_tasks(3, items, |n| {
            let (running, most, threads) = (running.clone(), most.clone(), threads.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                threads.lock().unwrap().push(std::thread::current().id());
                tokio::time::sleep(Duration::from_millis(50 + 5 * n)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                anyhow::ensure!(n != 4, "item {n} failed");
                Ok(n * 10)
            }
        })
        .await;
        let shown: Vec<String> =
            results.iter().map(|r| r.as_ref().map(|v| v.to_string()).unwrap_or_else(|e| e.to_string())).collect();
        assert_eq!(shown, ["110", "100", "90", "80", "70", "60", "50", "item 4 failed", "30", "20", "10", "0"]);
        assert_eq!(most.load(Ordering::SeqCst), 3, "at most `concurrency` at once, and as many as that");
        // Spawned on the runtime's workers, not polled on the thread that awaits them.
        let caller = std::thread::current().id();
        assert!(threads.lock().unwrap().iter().all(|t| *t != caller), "a task ran on the caller's thread");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[should_panic(expected = "account bug")]
    async fn a_panicking_task_panics_the_run() {
        in_tasks(2, vec![1, 2], |n| async move {
            assert!(n != 2, "account bug");
            anyhow::Ok(n)
        })
        .await;
    }
}
