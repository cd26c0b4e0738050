//! `ctguard destroy`: delete what the profile owns, in reverse dependency order, after showing
//! the plan and asking as apply does. Audit data stays unless `--allow-data-loss`.

use std::io::IsTerminal;

use super::{Session, Status, Watch, apply};
use crate::engine;
use crate::printer::Printer;
use crate::render::{self, human::PlanView};
use crate::resources::teardown;
use crate::settings::{DestroyOptions, Format, Settings};

pub async fn run(
    settings: &Settings,
    printer: &Printer,
    options: DestroyOptions,
    watch: &Watch,
) -> anyhow::Result<Status> {
    if !options.auto_approve && !std::io::stdin().is_terminal() {
        anyhow::bail!("stdin is not a terminal, so destroy cannot ask for confirmation: pass --auto-approve");
    }
    let Session { aws, profile, resources, ctx } = Session::open(settings, printer).await?;
    let live = engine::read_all(&aws, &resources).await?;
    let plan = teardown::plan(&profile.name, &teardown::found(&resources, &live), options.allow_data_loss);
    if settings.format == Format::Human {
        let view = PlanView { expand: settings.expand, summary_only: false };
        printer.data(|w, paint| render::human::plan(w, paint, &ctx, &plan, view))?;
    }
    if !plan.has_changes() {
        if settings.format == Format::Json {
            let report = engine::Report { outcomes: Vec::new() };
            printer.data(|w, _| render::json::apply_report(w, &ctx, &report, render::Verb::Destroy))?;
        }
        return Ok(Status::Success);
    }
    if !options.auto_approve && !tokio::task::spawn_blocking(apply::confirm).await?? {
        anyhow::bail!("destroy cancelled: nothing was changed");
    }
    let resources = teardown::reversed(resources, &plan);
    let hook = apply::Tracked { inner: printer.progress(), watch };
    watch.applying(plan.changes.iter().filter(|c| c.action != crate::plan::Action::NoOp).count());
    let report = engine::apply(&aws, &resources, &plan, &live, &hook).await;
    printer.data(|w, paint| match settings.format {
        Format::Human => render::human::apply_report(w, paint, &report, render::Verb::Destroy),
        Format::Json => render::json::apply_report(w, &ctx, &report, render::Verb::Destroy),
    })?;
    if report.failed() {
        anyhow::bail!("destroy did not complete; run it again once the errors above are fixed");
    }
    Ok(Status::Success)
}
