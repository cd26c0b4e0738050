//! `ctguard profiles`: the built-in profiles.

use std::path::Path;

use anyhow::Context;

use super::Status;
use crate::printer::Printer;
use crate::profile::{self, source};
use crate::settings::ProfilesTask;

pub fn run(task: &ProfilesTask, printer: &Printer) -> anyhow::Result<Status> {
    match task {
        ProfilesTask::List => {
            printer.data(|w, _| {
                for name in source::builtin_names() {
                    let description = match profile::load(&name) {
                        Ok(l) => l.doc.profile.description,
                        Err(e) => format!("(invalid: {e:#})"),
                    };
                    writeln!(w, "{name:<24} {description}")?;
                }
                Ok(())
            })?;
        }
        ProfilesTask::Show { name } => {
            let file = source::builtin_profile(name)
                .with_context(|| format!("no built-in profile {name:?}; see `ctguard profiles list`"))?;
            printer.data(|w, _| w.write_all(file.text.as_bytes()))?;
        }
        ProfilesTask::Export { name, dir } => export(name, dir, printer)?,
    }
    Ok(Status::Success)
}

/// Writes the profile and every template beside it, in the repository's layout, so the
/// profile's policies_dir ("../policies") still finds them.
fn export(name: &str, dir: &Path, printer: &Printer) -> anyhow::Result<()> {
    let file = source::builtin_profile(name)
        .with_context(|| format!("no built-in profile {name:?}; see `ctguard profiles list`"))?;
    let mut files = vec![(dir.join("profiles").join(format!("{name}.toml")), file.text)];
    for (template, text) in source::builtin_templates() {
        files.push((dir.join("policies").join(template), text.to_string()));
    }
    for (path, _) in &files {
        anyhow::ensure!(!path.exists(), "{} already exists: not overwriting it", path.display());
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    printer.status(&format!("wrote {} files; use it with: ctguard plan -p {}", files.len(), files[0].0.display()));
    Ok(())
}
