use super::{Session, Status};
use crate::cli::Format;
use crate::engine;
use crate::printer::Printer;
use crate::render;
use crate::settings::Settings;

pub async fn run(settings: &Settings, printer: &Printer) -> anyhow::Result<Status> {
    let session = Session::open(settings, printer).await?;
    let (live, plan) = session.plan(printer).await?;
    let mut checks = engine::checks(&live, &session.resources);
    checks.extend(engine::health(&session.aws, &session.resources, &live).await);
    checks.extend(crate::checks::deployed_patterns(&session.resources, &live));
    checks.extend(crate::checks::cis_texts(&session.profile, &live));
    printer.data(|w, paint| match settings.format {
        Format::Human => render::human::verify(w, paint, &session.ctx, &plan, &checks),
        Format::Json => render::json::verify(w, &session.ctx, &plan, &checks),
    })?;
    let healthy = checks.iter().all(|(_, c)| c.ok);
    Ok(if plan.has_changes() || !healthy { Status::Differs } else { Status::Success })
}
