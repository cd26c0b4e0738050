//! `ctguard plan`: what apply would change.

use super::{Session, Status};
use crate::engine::LiveState;
use crate::plan::Plan;
use crate::printer::Printer;
use crate::render::{self, human::PlanView};
use crate::saved_plan::{self, Basis, SavedPlan, SavedProfile};
use crate::settings::{Format, PlanOptions, Settings};

pub async fn run(settings: &Settings, printer: &Printer, options: PlanOptions) -> anyhow::Result<Status> {
    let session = Session::open(settings, printer).await?;
    let (live, plan) = session.plan(printer).await?;
    session.warn_about_example_endpoints(&plan, printer);
    if let Some(out) = &options.out {
        SavedPlan::new(&basis(settings, &session, &live, &plan)).write(out)?;
        printer.status(&format!("Saved the plan to {}: `ctguard apply {0}` carries it out exactly.", out.display()));
    }
    let view = PlanView { expand: settings.expand, summary_only: options.summary };
    printer.data(|w, paint| match settings.format {
        Format::Human => render::human::plan(w, paint, &session.ctx, &plan, view),
        Format::Json => render::json::plan(w, &session.ctx, &plan),
    })?;
    Ok(if options.detailed_exitcode && plan.has_changes() { Status::Differs } else { Status::Success })
}

/// What a saved plan records of this run, and what apply compares it with.
pub fn basis<'a>(settings: &Settings, session: &'a Session, live: &'a LiveState, plan: &'a Plan) -> Basis<'a> {
    let spec = &settings.profile.spec;
    // A path is kept absolute, so the plan can be applied from another directory.
    let spec = match std::path::Path::new(spec).is_file().then(|| std::fs::canonicalize(spec)) {
        Some(Ok(path)) => path.display().to_string(),
        _ => spec.clone(),
    };
    let profile = SavedProfile {
        name: session.profile.name.clone(),
        spec,
        vars: settings.profile.overrides.clone(),
        region_flag: settings.region.clone(),
        hash: saved_plan::profile_hash(&session.profile.name, &session.resources),
    };
    Basis {
        profile,
        account: &session.ctx.account,
        region: &session.ctx.region,
        resources: &session.resources,
        live,
        plan,
    }
}
