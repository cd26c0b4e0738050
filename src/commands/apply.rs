//! `ctguard apply`: converge the account, in dependency order.

use std::io::{BufRead, IsTerminal, Write};

use super::{Session, Status, Watch};
use crate::engine::{self, Event, Hook, Outcome, Report};
use crate::plan::{Action, Consent, Plan};
use crate::printer::Printer;
use crate::render::{self, human::PlanView};
use crate::saved_plan::SavedPlan;
use crate::settings::{ApplyOptions, Format, Settings};

/// Converges the account; with `saved`, only if the plan computed now is that one.
pub async fn run(
    settings: &Settings,
    printer: &Printer,
    options: ApplyOptions,
    watch: &Watch,
    saved: Option<&SavedPlan>,
) -> anyhow::Result<Status> {
    let ApplyOptions { auto_approve, consent } = options;
    // Refuse before touching AWS: nobody is there to answer the question.
    if !auto_approve && !std::io::stdin().is_terminal() {
        anyhow::bail!("stdin is not a terminal, so apply cannot ask for confirmation: pass --auto-approve");
    }
    let session = Session::open(settings, printer).await?;
    let (live, plan) = session.plan(printer).await?;
    if let Some(saved) = saved {
        let moved = saved.moved(&super::plan::basis(settings, &session, &live, &plan));
        anyhow::ensure!(
            moved.is_empty(),
            "refusing to apply the saved plan: it is stale, nothing was changed. Make and review a new one \
             with `ctguard plan --out FILE`.\n  {}",
            moved.join("\n  ")
        );
    }
    if settings.format == Format::Human {
        let view = PlanView { expand: settings.expand, summary_only: false };
        printer.data(|w, paint| render::human::plan(w, paint, &session.ctx, &plan, view))?;
    }
    if !plan.has_changes() {
        if settings.format == Format::Json {
            let report = engine::Report { outcomes: Vec::new() };
            printer.data(|w, _| render::json::apply_report(w, &session.ctx, &report, render::Verb::Apply))?;
        }
        return Ok(Status::Success);
    }
    refuse(&plan, consent)?;
    session.warn_about_example_endpoints(&plan, printer);
    if !auto_approve && !tokio::task::spawn_blocking(confirm).await?? {
        anyhow::bail!("apply cancelled: nothing was changed");
    }
    let mut report = carry_out(&session, &plan, &live, consent, printer, watch).await;
    if !report.failed() && deleted_destructively(&report) {
        // A deleted trail no longer needs the access the bucket and key policies gave it while
        // it was left over: plan again, without it, and narrow them.
        printer.status("Narrowing the policies that admitted the deleted trail");
        let session = Session::open(settings, printer).await?;
        let (live, follow_up) = session.plan(printer).await?;
        refuse(&follow_up, consent)?;
        report.outcomes.extend(carry_out(&session, &follow_up, &live, consent, printer, watch).await.outcomes);
    }
    printer.data(|w, paint| match settings.format {
        Format::Human => render::human::apply_report(w, paint, &report, render::Verb::Apply),
        Format::Json => render::json::apply_report(w, &session.ctx, &report, render::Verb::Apply),
    })?;
    if report.failed() {
        anyhow::bail!("apply did not complete; run it again once the errors above are fixed");
    }
    Ok(Status::Success)
}

/// Refuses, before any change, a plan with conflicts or with changes `consent` does not
/// cover, naming each and the flag that would allow it.
pub(super) fn refuse(plan: &Plan, consent: Consent) -> anyhow::Result<()> {
    let refusals = plan.refusals(consent);
    if refusals.is_empty() {
        return Ok(());
    }
    anyhow::bail!("refusing to apply, nothing was changed:\n  {}", refusals.join("\n  "))
}

/// Carries out what `consent` allows of `plan`, and reports what it withheld.
pub(super) async fn carry_out(
    session: &Session,
    plan: &Plan,
    live: &engine::LiveState,
    consent: Consent,
    printer: &Printer,
    watch: &Watch,
) -> Report {
    let hook = Tracked { inner: printer.progress(), watch };
    let run = plan.to_apply(consent);
    watch.applying(run.changes.iter().filter(|c| c.action != Action::NoOp).count());
    let mut report = engine::apply(&session.aws, &session.resources, &run, live, &hook).await;
    report.outcomes.extend(plan.withheld(consent).map(|c| (c.clone(), Outcome::Withheld)));
    report
}

pub(super) fn deleted_destructively(report: &Report) -> bool {
    report.outcomes.iter().any(|(c, o)| c.action == Action::Delete && !c.destructive.is_empty() && *o == Outcome::Done)
}

pub(super) fn confirm() -> anyhow::Result<bool> {
    eprint!("\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// Passes apply's progress on, and keeps the count Ctrl-C reports.
pub(super) struct Tracked<'a> {
    pub inner: Box<dyn Hook>,
    pub watch: &'a Watch,
}

impl Hook for Tracked<'_> {
    fn event(&self, event: &Event) {
        match event {
            Event::Started { address, .. } => self.watch.change(format!("{address} ({})", address.region), None),
            Event::Finished { address, .. } => self.watch.change(format!("{address} ({})", address.region), Some(true)),
            Event::Failed { address, .. } => self.watch.change(format!("{address} ({})", address.region), Some(false)),
            Event::Skipped { .. } => {}
        }
        self.inner.event(event);
    }
}
