//! `ctguard verify`: the CI gate.

use anyhow::Context as _;

use super::{Session, Status};
use crate::printer::Printer;
use crate::render::human::VerifyView;
use crate::settings::{Format, Settings, VerifyOptions};
use crate::verdict::Verdict;
use crate::{checks, delivery, engine, render, verdict};

pub async fn run(settings: &Settings, printer: &Printer, options: &VerifyOptions) -> anyhow::Result<Status> {
    let session = Session::open(settings, printer).await?;
    let verdict = judge(&session, printer, options).await?;
    if let Some(path) = &options.junit {
        let mut xml = Vec::new();
        render::junit::verify(&mut xml, &session.ctx, &verdict)?;
        std::fs::write(path, xml).with_context(|| format!("writing the JUnit report to {}", path.display()))?;
    }
    if let Some(path) = &options.sarif {
        let mut sarif = Vec::new();
        let file = session.profile.file.trim_start_matches("<built-in>/");
        render::sarif::verify(&mut sarif, &session.ctx, &verdict, file)?;
        std::fs::write(path, sarif).with_context(|| format!("writing the SARIF report to {}", path.display()))?;
    }
    if let Some(path) = &options.html {
        let mut page = Vec::new();
        render::html::verify(&mut page, &session.ctx, &verdict)?;
        std::fs::write(path, page).with_context(|| format!("writing the HTML report to {}", path.display()))?;
    }
    let view = VerifyView {
        expand: settings.expand,
        passing: settings.output.verbose > 0 && !options.only_failures,
        only_failures: options.only_failures,
    };
    printer.data(|w, paint| match settings.format {
        Format::Human => render::human::verify(w, paint, &session.ctx, &verdict, view),
        Format::Json => render::json::verify(w, &session.ctx, &verdict),
    })?;
    Ok(if verdict.passed() { Status::Success } else { Status::Differs })
}

/// The account's verdict: drift, and every health check.
pub(super) async fn judge(session: &Session, printer: &Printer, options: &VerifyOptions) -> anyhow::Result<Verdict> {
    let (live, plan) = session.plan(printer).await?;
    let mut found = engine::checks(&live, &session.resources);
    found.extend(engine::health(&session.aws, &session.resources, &live).await);
    found.extend(delivery::checks(&session.aws, &session.resources, options.health_window).await);
    found.extend(checks::deployed_patterns(&session.profile, &session.resources, &live));
    found.extend(checks::cis_texts(&session.profile, &live));
    found.extend(crate::integrity::verify_check(&session.aws, &session.profile).await?);
    Ok(verdict::judge(plan, found, &session.profile.waivers))
}
