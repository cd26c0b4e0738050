//! Resolves command-line flags (and the environment clap reads for them) into plain settings,
//! once, before any work. Commands see only these types, never clap's.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::aws::ConnectOptions;
use crate::cli::{self, ColorChoice, Common, GlobalArgs, TestArgs, ValidateLogsArgs};
use crate::detect::replay::Input;
use crate::integrity::keys::{self, PublicKeys};
use crate::integrity::window::Window;
use crate::profile::{self, vars::Vars};

/// What the data on stdout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    /// One versioned JSON document; errors are JSON documents too.
    Json,
}

/// The flags every command takes: how to print.
#[derive(Debug, Clone, Copy)]
pub struct Global {
    pub format: Format,
    pub output: Output,
}

impl Global {
    pub fn resolve(args: &GlobalArgs) -> Self {
        let format = match args.format {
            cli::Format::Human => Format::Human,
            cli::Format::Json => Format::Json,
        };
        Global { format, output: Output::resolve(args.color, args.verbose) }
    }
}

/// How the printer writes: colours per stream and verbosity.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub color_stdout: bool,
    pub color_stderr: bool,
    /// stderr is a terminal that can redraw: progress may draw bars and spinners.
    pub interactive_stderr: bool,
    pub verbose: u8,
}

impl Output {
    /// `--color auto` follows the conventions anstream implements: NO_COLOR (no-color.org)
    /// turns colour off, CLICOLOR_FORCE turns it on even into a pipe, CLICOLOR=0 and TERM=dumb
    /// turn it off, otherwise a terminal gets colour.
    pub fn resolve(choice: ColorChoice, verbose: u8) -> Self {
        fn auto<S: anstream::stream::RawStream>(choice: ColorChoice, stream: &S) -> bool {
            match choice {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => anstream::AutoStream::choice(stream) != anstream::ColorChoice::Never,
            }
        }
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Output {
            color_stdout: auto(choice, &std::io::stdout()),
            color_stderr: auto(choice, &std::io::stderr()),
            interactive_stderr: std::io::stderr().is_terminal() && !dumb,
            verbose,
        }
    }
}

/// A profile and the variables the command line sets in it.
#[derive(Debug, Clone)]
pub struct ProfileChoice {
    /// A built-in profile name or a path.
    pub spec: String,
    pub overrides: Vars,
}

impl ProfileChoice {
    fn resolve(spec: &str, vars: &[String]) -> anyhow::Result<Self> {
        Ok(ProfileChoice { spec: spec.to_string(), overrides: profile::parse_overrides(vars)? })
    }
}

/// plan, apply and verify: a profile, an account, and how to show the result.
#[derive(Debug, Clone)]
pub struct Settings {
    pub profile: ProfileChoice,
    /// The --region flag; the profile's home_region and the SDK's chain come after it.
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub aws_profile: Option<String>,
    pub retry: RetryEnv,
    pub format: Format,
    pub output: Output,
    /// One block per resource even when it is identical in several regions.
    pub expand: bool,
}

impl Settings {
    pub fn resolve(global: &Global, common: &Common) -> anyhow::Result<Self> {
        let endpoint_url = common.endpoint_url.clone().filter(|u| !u.is_empty());
        if let Some(url) = &endpoint_url {
            check_endpoint(url)?;
        }
        Ok(Settings {
            profile: ProfileChoice::resolve(&common.profile, &common.vars)?,
            region: common.region.clone(),
            endpoint_url,
            aws_profile: common.aws_profile.clone().filter(|p| !p.is_empty()),
            retry: RetryEnv::resolve(|k| std::env::var(k).ok())?,
            format: global.format,
            output: global.output,
            expand: common.expand || global.output.verbose > 0,
        })
    }

    /// Connection options once the profile's home region is known. The region is --region,
    /// else the profile's home_region; when both are absent the SDK's chain decides
    /// (AWS_REGION, then the shared config), so AWS_REGION never overrides the profile.
    pub fn connect(&self, home_region: Option<&str>) -> ConnectOptions {
        ConnectOptions {
            region: self.region.clone().or(home_region.map(str::to_string)),
            endpoint_url: self.endpoint_url.clone(),
            aws_profile: self.aws_profile.clone(),
            max_attempts: self.retry.max_attempts,
            retry_mode: self.retry.mode,
        }
    }
}

/// AWS_MAX_ATTEMPTS and AWS_RETRY_MODE, as the AWS CLI and SDKs read them; when unset,
/// ctguard's own default (standard mode, 5 attempts) applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryEnv {
    pub max_attempts: Option<u32>,
    pub mode: Option<aws_config::retry::RetryMode>,
}

impl RetryEnv {
    fn resolve(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        use aws_config::retry::RetryMode;
        let max_attempts = match var("AWS_MAX_ATTEMPTS").filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n >= 1 => Some(n),
                _ => anyhow::bail!("AWS_MAX_ATTEMPTS={v:?}: expected a whole number of attempts, 1 or more"),
            },
        };
        let mode = match var("AWS_RETRY_MODE").filter(|v| !v.is_empty()).map(|v| v.trim().to_ascii_lowercase()) {
            None => None,
            // The SDK for Rust has no legacy mode; standard is what replaced it.
            Some(m) if m == "standard" || m == "legacy" => Some(RetryMode::Standard),
            Some(m) if m == "adaptive" => Some(RetryMode::Adaptive),
            Some(m) => anyhow::bail!("AWS_RETRY_MODE={m:?}: expected standard or adaptive"),
        };
        Ok(RetryEnv { max_attempts, mode })
    }
}

/// An endpoint must be an absolute http(s) URL: anything else fails inside the SDK with an
/// error that is no help to a person.
fn check_endpoint(url: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).map_err(|e| {
        anyhow::anyhow!("--endpoint-url (or AWS_ENDPOINT_URL) {url:?}: {e}: expected a URL such as https://host:port")
    })?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some_and(|h| !h.is_empty()),
        "--endpoint-url (or AWS_ENDPOINT_URL) {url:?}: expected an http:// or https:// URL with a host, such as https://host:port"
    );
    Ok(())
}

/// `plan`, resolved.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    pub detailed_exitcode: bool,
    /// Counts only.
    pub summary: bool,
}

/// `verify`, resolved.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub junit: Option<PathBuf>,
    pub only_failures: bool,
}

/// `profiles`, resolved.
#[derive(Debug, Clone)]
pub enum ProfilesTask {
    List,
    Show { name: String },
    Export { name: String, dir: PathBuf },
}

impl ProfilesTask {
    pub fn resolve(action: &cli::ProfilesAction) -> Self {
        match action {
            cli::ProfilesAction::List => ProfilesTask::List,
            cli::ProfilesAction::Show { name } => ProfilesTask::Show { name: name.clone() },
            cli::ProfilesAction::Export { name, dir } => ProfilesTask::Export { name: name.clone(), dir: dir.clone() },
        }
    }
}

/// `ctguard test`, resolved.
#[derive(Debug, Clone)]
pub struct TestSettings {
    pub profile: ProfileChoice,
    pub account: Option<String>,
    pub jobs: usize,
    pub summary_only: bool,
    pub format: Format,
    pub output: Output,
    pub inputs: Vec<Input>,
}

impl TestSettings {
    pub fn resolve(global: &Global, args: &TestArgs) -> anyhow::Result<Self> {
        if let Some(account) = &args.account
            && (account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()))
        {
            anyhow::bail!("--account: expected a 12-digit AWS account ID, got {account:?}");
        }
        let inputs = if args.paths.is_empty() {
            vec![Input::Stdin]
        } else {
            args.paths
                .iter()
                .map(|p| if p.as_os_str() == "-" { Input::Stdin } else { Input::Path(p.clone()) })
                .collect()
        };
        Ok(TestSettings {
            profile: ProfileChoice::resolve(&args.profile, &args.vars)?,
            account: args.account.clone(),
            jobs: args.jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, usize::from), usize::from),
            summary_only: args.summary,
            format: global.format,
            output: global.output,
            inputs,
        })
    }
}

/// `ctguard validate-logs`, resolved: the window is parsed and any public-key files are read
/// and checked here, before any AWS call.
#[derive(Debug, Clone)]
pub struct ValidateLogsSettings {
    pub common: Settings,
    pub window: Window,
    /// Keys from --public-keys, with the files' names; `None`: ask ListPublicKeys.
    pub public_keys: Option<(PublicKeys, Vec<String>)>,
}

impl ValidateLogsSettings {
    pub fn resolve(global: &Global, args: &ValidateLogsArgs) -> anyhow::Result<Self> {
        let common = Settings::resolve(global, &args.common)?;
        let now = time::OffsetDateTime::now_utc();
        let window = Window::resolve(args.start.as_deref(), args.end.as_deref(), now).map_err(anyhow::Error::msg)?;
        let public_keys = match args.public_keys.as_slice() {
            [] => None,
            files => {
                let keys = keys::from_files(files).map_err(anyhow::Error::msg)?;
                Some((keys, files.iter().map(|f| f.display().to_string()).collect()))
            }
        };
        Ok(ValidateLogsSettings { common, window, public_keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_variables_override_the_default_and_are_checked() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(RetryEnv::resolve(env(&[])).unwrap(), RetryEnv::default());
        let r = RetryEnv::resolve(env(&[("AWS_MAX_ATTEMPTS", "9"), ("AWS_RETRY_MODE", "adaptive")])).unwrap();
        assert_eq!((r.max_attempts, r.mode), (Some(9), Some(aws_config::retry::RetryMode::Adaptive)));
        let e = RetryEnv::resolve(env(&[("AWS_MAX_ATTEMPTS", "many")])).unwrap_err().to_string();
        assert!(e.contains("AWS_MAX_ATTEMPTS=\"many\": expected a whole number"), "{e}");
        assert!(RetryEnv::resolve(env(&[("AWS_RETRY_MODE", "eager")])).is_err());
    }

    #[test]
    fn endpoints_must_be_http_urls_with_a_host() {
        assert!(check_endpoint("http://127.0.0.1:4566").is_ok());
        assert!(check_endpoint("https://vpce-1.s3.us-east-1.vpce.amazonaws.com").is_ok());
        for bad in ["not-a-url", "127.0.0.1:4566", "ftp://host", "http://"] {
            let e = check_endpoint(bad).unwrap_err().to_string();
            assert!(e.starts_with("--endpoint-url"), "{bad}: {e}");
        }
    }
}
