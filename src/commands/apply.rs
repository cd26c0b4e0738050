use std::io::{BufRead, IsTerminal, Write};

use super::{Session, Status};
use crate::cli::Format;
use crate::engine;
use crate::printer::Printer;
use crate::render;
use crate::settings::Settings;

pub async fn run(settings: &Settings, printer: &Printer, auto_approve: bool) -> anyhow::Result<Status> {
    // Refuse before touching AWS: nobody is there to answer the question.
    if !auto_approve && !std::io::stdin().is_terminal() {
        anyhow::bail!("stdin is not a terminal, so apply cannot ask for confirmation: pass --auto-approve");
    }
    let session = Session::open(settings, printer).await?;
    let (live, plan) = session.plan(printer).await?;
    if settings.format == Format::Human {
        printer.data(|w, paint| render::human::plan(w, paint, &session.ctx, &plan))?;
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
    if !auto_approve && !confirm()? {
        anyhow::bail!("apply cancelled: nothing was changed");
    }
    let hook = printer.progress();
    let report = engine::apply(&session.aws, &session.resources, &plan, &live, hook.as_ref()).await;
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
