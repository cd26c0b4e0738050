//! Resolves command-line flags (and the environment clap reads for them) into plain settings.
//! Commands see only these types, never clap's.

use std::io::IsTerminal;

use crate::aws::ConnectOptions;
use crate::cli::{ColorChoice, Common, Format};
use crate::profile::{self, vars::Vars};

#[derive(Debug, Clone)]
pub struct Settings {
    /// A built-in profile name or a path.
    pub profile: String,
    pub overrides: Vars,
    /// The --region flag; the profile's home_region and the SDK's chain come after it.
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub aws_profile: Option<String>,
    pub format: Format,
    pub output: Output,
}

/// How the printer writes: colours per stream and verbosity.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub color_stdout: bool,
    pub color_stderr: bool,
    /// stderr is a terminal: progress may draw spinners.
    pub interactive_stderr: bool,
    pub verbose: u8,
}

impl Output {
    pub fn resolve(choice: ColorChoice, verbose: u8) -> Self {
        // https://no-color.org: any non-empty NO_COLOR turns colour off unless forced.
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let auto = |tty: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        let (out_tty, err_tty) = (std::io::stdout().is_terminal(), std::io::stderr().is_terminal());
        Output { color_stdout: auto(out_tty), color_stderr: auto(err_tty), interactive_stderr: err_tty, verbose }
    }
}

impl Settings {
    pub fn resolve(common: &Common) -> anyhow::Result<Self> {
        Ok(Settings {
            profile: common.profile.clone(),
            overrides: profile::parse_overrides(&common.vars)?,
            region: common.region.clone(),
            endpoint_url: common.endpoint_url.clone().filter(|u| !u.is_empty()),
            aws_profile: common.aws_profile.clone().filter(|p| !p.is_empty()),
            format: common.format,
            output: Output::resolve(common.color, common.verbose),
        })
    }

    /// Connection options once the profile's home region is known.
    pub fn connect(&self, home_region: Option<&str>) -> ConnectOptions {
        ConnectOptions {
            region: self.region.clone().or(home_region.map(str::to_string)),
            endpoint_url: self.endpoint_url.clone(),
            aws_profile: self.aws_profile.clone(),
        }
    }
}
