//! `ctguard plan`: what apply would change.

use super::{Session, Status};
use crate::printer::Printer;
use crate::render::{self, human::PlanView};
use crate::settings::{Format, PlanOptions, Settings};

pub async fn run(settings: &Settings, printer: &Printer, options: PlanOptions) -> anyhow::Result<Status> {
    let session = Session::open(settings, printer).await?;
    let (_, plan) = session.plan(printer).await?;
    session.warn_about_example_endpoints(&plan, printer);
    let view = PlanView { expand: settings.expand, summary_only: options.summary };
    printer.data(|w, paint| match settings.format {
        Format::Human => render::human::plan(w, paint, &session.ctx, &plan, view),
        Format::Json => render::json::plan(w, &session.ctx, &plan),
    })?;
    Ok(if options.detailed_exitcode && plan.has_changes() { Status::Differs } else { Status::Success })
}
