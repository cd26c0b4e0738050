//! `ctguard apply`: converge the account, in dependency order.

use std::io::{BufRead, IsTerminal, Write};

use super::{Session, Status, Watch};
use crate::engine::{self, Event, Hook};
use crate::printer::Printer;
use crate::render::{self, human::PlanView};
use crate::settings::{Format, Settings};

pub async fn run(settings: &Settings, printer: &Printer, auto_approve: bool, watch: &Watch) -> anyhow::Result<Status> {
    // Refuse before touching AWS: nobody is there to answer the question.
    if !auto_approve && !std::io::stdin().is_terminal() {
        anyhow::bail!("stdin is not a terminal, so apply cannot ask for confirmation: pass --auto-approve");
    }
    let session = Session::open(settings, printer).await?;
    let (live, plan) = session.plan(printer).await?;
    if settings.format == Format::Human {
        let view = PlanView { expand: settings.expand, summary_only: false };
        printer.data(|w, paint| render::human::plan(w, paint, &session.ctx, &plan, view))?;
    }
    if !plan.has_changes() {
        if settings.format == Format::Json {
            let report = engine::Report { outcomes: Vec::new() };
            printer.data(|w, _| render::json::apply_report(w, &session.ctx, &report))?;
        }
        return Ok(Status::Success);
    }
    let conflicts: Vec<String> = plan.conflicts().map(|(a, why)| format!("{a}: {why}")).collect();
    if !conflicts.is_empty() {
        anyhow::bail!("refusing to apply: {}", conflicts.join("; "));
    }
    session.warn_about_example_endpoints(&plan, printer);
    if !auto_approve && !tokio::task::spawn_blocking(confirm).await?? {
        anyhow::bail!("apply cancelled: nothing was changed");
    }
    let hook = Tracked { inner: printer.progress(), watch };
    watch.applying(plan.changes.iter().filter(|c| c.action != crate::plan::Action::NoOp).count());
    let report = engine::apply(&session.aws, &session.resources, &plan, &live, &hook).await;
    printer.data(|w, paint| match settings.format {
        Format::Human => render::human::apply_report(w, paint, &report),
        Format::Json => render::json::apply_report(w, &session.ctx, &report),
    })?;
    if report.failed() {
        anyhow::bail!("apply did not complete; run it again once the errors above are fixed");
    }
    Ok(Status::Success)
}

fn confirm() -> anyhow::Result<bool> {
    eprint!("\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// Passes apply's progress on, and keeps the count Ctrl-C reports.
struct Tracked<'a> {
    inner: Box<dyn Hook>,
    watch: &'a Watch,
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
