//! `ctguard validate`: a profile and its templates checked offline, with no AWS call.

use serde_json::json;

use super::Status;
use crate::printer::Printer;
use crate::profile::{self, Loaded, Profile, Runtime};
use crate::render::FORMAT_VERSION;
use crate::resources;
use crate::settings::{Format, ProfileChoice, ValidateSettings};

/// Loads the profile and resolves it against stand-in account facts: every check that needs no
/// AWS call. plan, apply and verify run this before connecting, so `validate` passing means
/// they get past it too.
pub fn offline(choice: &ProfileChoice, region: Option<&str>) -> anyhow::Result<(Loaded, Profile)> {
    let loaded = profile::load(&choice.spec)?;
    // The profile's own home_region is checked with the rest of the profile, in resolve.
    if let Some(region) = region {
        profile::validate::region(region).map_err(|e| anyhow::anyhow!("--region {region:?}: expected {e}"))?;
    }
    let home = region.or(loaded.home_region()).unwrap_or("us-east-1").to_string();
    let resolved = loaded.resolve(&Runtime::placeholder(&home), &choice.overrides)?;
    Ok((loaded, resolved))
}

pub fn run(settings: &ValidateSettings, printer: &Printer) -> anyhow::Result<Status> {
    let (_, profile) = offline(&settings.profile, settings.region.as_deref())?;
    let declared = resources::declared(&profile, &resources::Listings::new(&profile.regions)).len();
    printer.data(|w, paint| match settings.format {
        Format::Human => writeln!(
            w,
            "{} The profile {:?} ({}) is valid: {declared} resources in {} region{}.",
            paint.success("Success!"),
            profile.name,
            profile.file,
            profile.regions.len(),
            if profile.regions.len() == 1 { "" } else { "s" }
        ),
        Format::Json => {
            let doc = json!({
                "format_version": FORMAT_VERSION,
                "command": "validate",
                "valid": true,
                "profile": profile.name,
                "file": profile.file,
                "regions": profile.regions,
                "resources": declared,
            });
            serde_json::to_writer_pretty(&mut *w, &doc)?;
            writeln!(w)
        }
    })?;
    Ok(Status::Success)
}
