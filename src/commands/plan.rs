use super::{Session, Status};
use crate::cli::Format;
use crate::printer::Printer;
use crate::render;
use crate::settings::Settings;

pub async fn run(settings: &Settings, printer: &Printer, detailed_exitcode: bool) -> anyhow::Result<Status> {
    let session = Session::open(settings, printer).await?;
    let (_, plan) = session.plan(printer).await?;
    printer.data(|w, paint| match settings.format {
        Format::Human => render::human::plan(w, paint, &session.ctx, &plan),
        Format::Json => render::json::plan(w, &session.ctx, &plan),
    })?;
    Ok(if detailed_exitcode && plan.has_changes() { Status::Differs } else { Status::Success })
}
