//! plan, apply and verify over several accounts of an organization (`--accounts`).
//!
//! The organization is listed first, from the caller's account, so an id or OU that is not
//! there stops the run before any account is touched. Then each account is reached (its own
//! credentials for the caller's account, the assumed role elsewhere) and gets the same plan or
//! verdict as a run without --accounts; accounts run `--concurrency` at once, each with its own
//! per-region bounds, so the run takes about as long as its slowest account. An account that
//! fails (its role cannot be assumed, an AWS error) is reported in the summary; the others go on.

use std::io::IsTerminal;

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

/// The caller's start and the accounts the selection names, listed before any account is
/// touched.
async fn members(settings: &Settings, printer: &Printer, fan: &FanOut) -> anyhow::Result<(Start, Vec<Member>)> {
    let start = Start::new(settings, printer).await?;
    let members = accounts::select(&start.config, &fan.accounts, &printer.retries()).await?;
    anyhow::ensure!(!members.is_empty(), "--accounts: no ACTIVE account is selected; nothing was changed");
    printer.verbose(&format!(
        "{} account{} selected: {}",
        members.len(),
        if members.len() == 1 { "" } else { "s" },
        members.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", ")
    ));
    Ok((start, members))
}

/// The session of one member account, reached as `fan` says.
async fn open(
    settings: &Settings,
    printer: &Printer,
    start: &Start,
    fan: &FanOut,
    member: &Member,
) -> anyhow::Result<Session> {
    let config =
        accounts::reach(&start.config, &start.caller, &member.id, &fan.role, fan.external_id.as_deref()).await?;
    let caller = accounts::whoami_in(&config, &member.id, &printer.retries()).await?;
    Session::connect(settings, printer, &start.loaded, &config, caller).await
}

/// Runs `work` in every member, `fan.concurrency` at once, and returns the results in the
/// members' order.
async fn each<'a, T, F, Fut>(members: &'a [Member], fan: &FanOut, work: F) -> Vec<(&'a Member, anyhow::Result<T>)>
where
    F: Fn(&'a Member) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    futures::stream::iter(members)
        .map(|m| {
            let run = work(m);
            async move { (m, run.await) }
        })
        .buffered(fan.concurrency)
        .collect()
        .await
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
    let (start, members) = members(settings, printer, fan).await?;
    let results = each(&members, fan, |m| {
        let start = &start;
        async move {
            let session = open(settings, printer, start, fan, m).await?;
            let (_, plan) = session.plan(printer).await?;
            session.warn_about_example_endpoints(&plan, printer);
            Ok((session.ctx, plan))
        }
    })
    .await;
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
                &profile_name(&start),
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
    let (start, members) = members(settings, printer, fan).await?;
    let results = each(&members, fan, |m| {
        let start = &start;
        async move {
            let session = open(settings, printer, start, fan, m).await?;
            let verdict = super::verify::judge(&session, printer, options).await?;
            Ok((session.ctx, verdict))
        }
    })
    .await;
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
                &profile_name(&start),
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
    let (start, members) = members(settings, printer, fan).await?;
    let planned = each(&members, fan, |m| {
        let start = &start;
        async move {
            let session = open(settings, printer, start, fan, m).await?;
            let (live, plan) = session.plan(printer).await?;
            Ok(Planned { session, live, plan })
        }
    })
    .await;
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
    let reports = futures::stream::iter(&planned)
        .map(|(m, p)| {
            let start = &start;
            async move {
                let result = match p {
                    Ok(p) => converge(settings, printer, start, fan, m, p, consent, watch).await,
                    Err(e) => Err(anyhow::anyhow!("{e:#}")),
                };
                (*m, result)
            }
        })
        .buffered(fan.concurrency)
        .collect::<Vec<_>>()
        .await;
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
                &profile_name(&start),
                &lines.iter().cloned().zip(docs).collect::<Vec<_>>(),
            )
        }
    })?;
    Ok(status(&lines, false))
}

/// Carries out one account's plan, then, as apply does in one account, narrows the policies
/// that admitted a trail it deleted.
#[allow(clippy::too_many_arguments)]
async fn converge(
    settings: &Settings,
    printer: &Printer,
    start: &Start,
    fan: &FanOut,
    member: &Member,
    planned: &Planned,
    consent: crate::plan::Consent,
    watch: &Watch,
) -> anyhow::Result<(render::Context, Report)> {
    let Planned { session, live, plan } = planned;
    if !plan.has_changes() {
        return Ok((session.ctx.clone(), Report { outcomes: Vec::new() }));
    }
    let mut report = super::apply::carry_out(session, plan, live, consent, printer, watch).await;
    if !report.failed() && super::apply::deleted_destructively(&report) {
        let session = open(settings, printer, start, fan, member).await?;
        let (live, follow_up) = session.plan(printer).await?;
        super::apply::refuse(&follow_up, consent)?;
        report
            .outcomes
            .extend(super::apply::carry_out(&session, &follow_up, &live, consent, printer, watch).await.outcomes);
    }
    Ok((session.ctx.clone(), report))
}

/// The profile's name, as its documents show it.
fn profile_name(start: &Start) -> String {
    start.loaded.doc.profile.name.clone()
}
