//! Resolves command-line flags (and the environment clap reads for them) into plain settings,
//! once, before any work. Commands see only these types, never clap's.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::aws::ConnectOptions;
use crate::cli::{
    self, AccountsArgs, ColorChoice, Common, EndpointArgs, GlobalArgs, HuntArgs, InvestigateArgs, PermissionsArgs,
    SeverityArg, TestArgs, ValidateLogsArgs,
};
use crate::detect::replay::Input;
use crate::integrity::keys::{self, PublicKeys};
use crate::integrity::window::Window;
use crate::lookback::principal::PrincipalPattern;
use crate::lookback::render;
use crate::lookback::s3::{BucketSettings, S3Url};
use crate::lookback::window::WindowFlags;
use crate::profile::{self, Severity, vars::Vars};

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
    /// `--format jsonl`, which only `investigate` writes (`format` is then Json).
    pub jsonl: bool,
    pub output: Output,
}

impl Global {
    /// Refuses a format only `investigate` writes.
    fn document(&self) -> anyhow::Result<Format> {
        anyhow::ensure!(!self.jsonl, "--format jsonl: only investigate writes JSON lines; use json");
        Ok(self.format)
    }

    pub fn resolve(args: &GlobalArgs) -> Self {
        let format = match args.format {
            cli::Format::Human => Format::Human,
            cli::Format::Json | cli::Format::Jsonl => Format::Json,
        };
        Global { format, jsonl: args.format == cli::Format::Jsonl, output: Output::resolve(args.color, args.verbose) }
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

/// `ctguard validate`: a profile, checked offline.
#[derive(Debug, Clone)]
pub struct ValidateSettings {
    pub profile: ProfileChoice,
    /// The --region flag.
    pub region: Option<String>,
    pub format: Format,
}

impl ValidateSettings {
    pub fn resolve(global: &Global, args: &cli::ValidateArgs) -> anyhow::Result<Self> {
        Ok(ValidateSettings {
            profile: ProfileChoice::resolve(&args.profile, &args.vars)?,
            region: args.region.clone(),
            format: global.document()?,
        })
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
    /// `--show-endpoints`: subscription endpoints in full rather than masked.
    pub show_endpoints: bool,
    /// `--accounts`: run in these accounts of the organization; `None` for the caller's
    /// account alone, exactly as without fan-out.
    pub fan_out: Option<FanOut>,
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
            retry: RetryEnv::from_env()?,
            format: global.document()?,
            output: global.output,
            expand: common.expand || global.output.verbose > 0,
            show_endpoints: false,
            fan_out: None,
        })
    }

    /// The settings of a command that can run over several accounts. `refused` names the
    /// options given on the command line that hold one account's result (a saved plan, a
    /// report file) and so cannot go with --accounts.
    pub fn with_accounts(mut self, args: &AccountsArgs, refused: &[(&str, bool)]) -> anyhow::Result<Self> {
        self.fan_out = FanOut::resolve(args, refused)?;
        Ok(self)
    }

    /// The settings a saved plan was made with: its profile, variables and region.
    pub fn for_saved_plan(mut self, saved: &crate::saved_plan::SavedPlan) -> Self {
        self.profile = ProfileChoice { spec: saved.profile.spec.clone(), overrides: saved.profile.vars.clone() };
        self.region = saved.profile.region_flag.clone();
        self
    }

    /// The settings of a command that shows subscription endpoints.
    pub fn with_endpoints(mut self, endpoints: &EndpointArgs) -> Self {
        self.show_endpoints = endpoints.show_endpoints;
        self
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

/// Which accounts of the organization `--accounts` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountSelection {
    /// Every ACTIVE account.
    All,
    /// These 12-digit ids, in the order given, each once.
    Ids(Vec<String>),
    /// The accounts in this organizational unit and the OUs below it.
    Ou(String),
}

/// `--accounts` and the options that say how to reach each account, checked before any call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOut {
    pub accounts: AccountSelection,
    /// The role name assumed in each member account.
    pub role: String,
    pub external_id: Option<String>,
    /// Accounts worked on at once.
    pub concurrency: usize,
}

impl FanOut {
    fn resolve(args: &AccountsArgs, refused: &[(&str, bool)]) -> anyhow::Result<Option<Self>> {
        let Some(accounts) = &args.accounts else { return Ok(None) };
        let given: Vec<&str> = refused.iter().filter(|(_, set)| *set).map(|(name, _)| *name).collect();
        anyhow::ensure!(
            given.is_empty(),
            "--accounts cannot go with {}: each holds one account's result. Run without --accounts, once per account",
            given.join(", ")
        );
        let accounts = account_selection(accounts)?;
        role_name(&args.assume_role)?;
        if let Some(id) = &args.external_id {
            external_id(id)?;
        }
        Ok(Some(FanOut {
            accounts,
            role: args.assume_role.clone(),
            external_id: args.external_id.clone(),
            concurrency: usize::from(args.concurrency).max(1),
        }))
    }
}

/// `all`, an OU id, or comma-separated account ids.
fn account_selection(text: &str) -> anyhow::Result<AccountSelection> {
    let text = text.trim();
    if text == "all" {
        return Ok(AccountSelection::All);
    }
    if text.starts_with("ou-") {
        // Organizations' OU id pattern: ^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$.
        let ok = text[3..].split_once('-').is_some_and(|(root, ou)| {
            let lower = |s: &str, min, max| {
                (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
            };
            lower(root, 4, 32) && lower(ou, 8, 32)
        });
        anyhow::ensure!(ok, "--accounts {text:?}: expected an organizational unit id like ou-ab12-cd34ef56");
        return Ok(AccountSelection::Ou(text.to_string()));
    }
    let mut ids: Vec<String> = Vec::new();
    for id in text.split(',').map(str::trim) {
        anyhow::ensure!(
            id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()),
            "--accounts: {id:?} is not an account id: expected `all`, an OU id (ou-...), or 12-digit account ids \
             separated by commas"
        );
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }
    Ok(AccountSelection::Ids(ids))
}

/// IAM role names (CreateRole): 1 to 64 of letters, digits and `+=,.@_-`.
fn role_name(name: &str) -> anyhow::Result<()> {
    let ok = (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    anyhow::ensure!(
        ok,
        "--assume-role {name:?}: expected an IAM role name, 1 to 64 letters, digits and +=,.@_- (the name, not its ARN)"
    );
    Ok(())
}

/// STS external ids (AssumeRole): 2 to 1224 of letters, digits and `+=,.@:/_-`.
fn external_id(id: &str) -> anyhow::Result<()> {
    let ok = (2..=1224).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(c));
    anyhow::ensure!(ok, "--external-id: expected 2 to 1224 letters, digits and +=,.@:/_-");
    Ok(())
}

/// AWS_MAX_ATTEMPTS and AWS_RETRY_MODE, as the AWS CLI and SDKs read them; when unset,
/// ctguard's own default (standard mode, 5 attempts) applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryEnv {
    pub max_attempts: Option<u32>,
    pub mode: Option<aws_config::retry::RetryMode>,
}

impl RetryEnv {
    fn from_env() -> anyhow::Result<Self> {
        Self::resolve(|k| std::env::var(k).ok())
    }

    /// Connection options with these retry settings and nothing else set.
    fn options(self) -> ConnectOptions {
        ConnectOptions { max_attempts: self.max_attempts, retry_mode: self.mode, ..ConnectOptions::default() }
    }

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
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub detailed_exitcode: bool,
    /// Counts only.
    pub summary: bool,
    /// `--out FILE`: where to save the plan.
    pub out: Option<PathBuf>,
}

/// `apply`, resolved.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    pub auto_approve: bool,
    /// What apply may do beyond converging what ctguard owns (`--adopt`, `--allow-data-loss`).
    pub consent: crate::plan::Consent,
}

/// `destroy`, resolved.
#[derive(Debug, Clone, Copy)]
pub struct DestroyOptions {
    pub auto_approve: bool,
    /// Audit data (buckets, log group, the trail's key) may be deleted.
    pub allow_data_loss: bool,
}

/// `verify`, resolved.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub junit: Option<PathBuf>,
    pub sarif: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub only_failures: bool,
    /// `--health-window`, in seconds.
    pub health_window: u64,
}

impl VerifyOptions {
    pub fn resolve(args: &crate::cli::VerifyArgs) -> anyhow::Result<Self> {
        let health_window = duration(&args.health_window).ok_or_else(|| {
            anyhow::anyhow!("--health-window: expected a duration such as 30m, 24h or 7d, got {:?}", args.health_window)
        })?;
        Ok(VerifyOptions {
            junit: args.junit.clone(),
            sarif: args.sarif.clone(),
            html: args.html.clone(),
            only_failures: args.only_failures,
            health_window,
        })
    }
}

/// `drill`, resolved.
#[derive(Debug, Clone)]
pub struct DrillSettings {
    pub common: Settings,
    pub selection: crate::drill::Selection,
}

impl DrillSettings {
    pub fn resolve(global: &Global, args: &crate::cli::DrillArgs) -> anyhow::Result<Self> {
        let common = cli::Common {
            profile: args.profile.clone(),
            vars: args.vars.clone(),
            region: None,
            endpoint_url: args.endpoint_url.clone(),
            aws_profile: args.aws_profile.clone(),
            expand: false,
        };
        let timeout = match &args.timeout {
            None => None,
            Some(t) => Some(crate::drill::parse_timeout(t).ok_or_else(|| {
                anyhow::anyhow!("--timeout: expected a duration such as 30s, 2m or 1h (at most 24h), got {t:?}")
            })?),
        };
        let selection = crate::drill::Selection {
            regions: args.regions.clone(),
            alarms: args.alarms.clone(),
            events: !args.no_events,
            alarm_path: !args.no_alarms,
            end_to_end: args.end_to_end,
            timeout,
        };
        Ok(DrillSettings { common: Settings::resolve(global, &common)?, selection })
    }
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
    /// `--html`: where to write the page.
    pub html: Option<PathBuf>,
    pub format: Format,
    pub output: Output,
    pub inputs: Vec<Input>,
    /// Set when the log files come from S3; `inputs` is then empty.
    pub bucket: Option<BucketSettings>,
}

impl TestSettings {
    pub fn resolve(global: &Global, args: &TestArgs) -> anyhow::Result<Self> {
        if let Some(account) = &args.account
            && (account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()))
        {
            anyhow::bail!("--account: expected a 12-digit AWS account ID, got {account:?}");
        }
        let bucket = bucket_settings(args)?;
        let inputs = if bucket.is_some() {
            Vec::new()
        } else if args.paths.is_empty() {
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
            html: args.html.clone(),
            format: global.document()?,
            output: global.output,
            inputs,
            bucket,
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

/// `ctguard test s3://…` (or `--since` alone: the profile's bucket), resolved; `None` for a
/// local replay. Needs a window, and no local paths beside the URLs.
fn bucket_settings(args: &TestArgs) -> anyhow::Result<Option<BucketSettings>> {
    let b = &args.bucket;
    let flags = WindowFlags { since: b.since.clone(), start: b.start.clone(), end: b.end.clone() };
    let texts: Vec<&str> = args.paths.iter().map(|p| p.to_str().unwrap_or("")).collect();
    let urls: Vec<S3Url> = texts
        .iter()
        .filter(|t| S3Url::is_s3(t))
        .map(|t| S3Url::parse(t).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    let local = texts.len() - urls.len();
    if urls.is_empty() && (local > 0 || flags.is_empty()) {
        if !flags.is_empty() {
            anyhow::bail!(
                "--since, --start and --end choose log files in S3: give s3:// URLs, or no PATH for the profile's own bucket"
            );
        }
        return Ok(None);
    }
    if local > 0 {
        anyhow::bail!("s3:// URLs and local paths cannot be replayed in one run: replay them separately");
    }
    if flags.is_empty() {
        anyhow::bail!("{}: give the window to replay with --since (like 24h or 7d) or --start and --end", urls[0]);
    }
    let window = crate::lookback::window::Window::resolve(&flags, now(), None, false).map_err(anyhow::Error::msg)?;
    let connect = ConnectOptions {
        region: None,
        endpoint_url: b.endpoint_url.clone().filter(|u| !u.is_empty()),
        aws_profile: b.aws_profile.clone().filter(|p| !p.is_empty()),
        ..RetryEnv::from_env()?.options()
    };
    Ok(Some(BucketSettings { urls, window, connect }))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// What `ctguard investigate` looks up by event name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventChoice {
    /// The names the profile's detections (or the --detection ones) can match.
    Derived,
    Listed(Vec<String>),
    All,
}

/// `ctguard investigate`, resolved. Everything here is checked before any AWS call.
#[derive(Debug, Clone)]
pub struct InvestigateSettings {
    pub profile: String,
    pub overrides: Vars,
    /// Empty: the profile's regions.
    pub regions: Vec<String>,
    pub window: crate::lookback::window::Window,
    pub principals: Vec<PrincipalPattern>,
    pub agents: bool,
    pub events: EventChoice,
    pub detections: Vec<String>,
    pub limit: Option<u64>,
    pub fail_on: Option<Severity>,
    pub format: render::Format,
    pub output: Output,
    pub connect: ConnectOptions,
    /// `--accounts`: investigate each of these accounts in turn.
    pub fan_out: Option<FanOut>,
}

impl InvestigateSettings {
    pub fn resolve(global: &Global, args: &InvestigateArgs) -> anyhow::Result<Self> {
        let flags = WindowFlags { since: args.since.clone(), start: args.start.clone(), end: args.end.clone() };
        let window =
            crate::lookback::window::Window::resolve(&flags, now(), Some("24h"), true).map_err(anyhow::Error::msg)?;
        for r in &args.regions {
            profile::validate::region(r).map_err(|e| anyhow::anyhow!("--region {r:?}: expected {e}"))?;
        }
        let principals = args
            .principals
            .iter()
            .map(|p| PrincipalPattern::parse(p).map_err(|e| anyhow::anyhow!("--principal {e}")))
            .collect::<anyhow::Result<_>>()?;
        for name in &args.events {
            // LookupEvents' AttributeValue: 1 to 2000 characters; event names are API names.
            if name.is_empty() || name.len() > 2000 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                anyhow::bail!(
                    "--event {name:?}: expected an event name such as DeleteBucket (letters, digits and '_')"
                );
            }
        }
        let events = match (args.all_events, args.events.is_empty()) {
            (true, _) => EventChoice::All,
            (false, false) => EventChoice::Listed(dedup(&args.events)),
            (false, true) => EventChoice::Derived,
        };
        Ok(InvestigateSettings {
            profile: args.profile.clone(),
            overrides: profile::parse_overrides(&args.vars)?,
            regions: dedup(&args.regions),
            window,
            principals,
            agents: args.agents,
            events,
            detections: dedup(&args.detections),
            limit: args.limit,
            fail_on: args.fail_on.map(|s| match s {
                SeverityArg::Low => Severity::Low,
                SeverityArg::Medium => Severity::Medium,
                SeverityArg::High => Severity::High,
                SeverityArg::Critical => Severity::Critical,
            }),
            // One JSON document holds one account's findings as they stream; JSON lines name
            // each event's account and can follow one account with the next.
            fan_out: FanOut::resolve(
                &args.accounts,
                &[("--format json (use jsonl)", !global.jsonl && global.format == Format::Json)],
            )?,
            format: match (global.jsonl, global.format) {
                (true, _) => render::Format::Jsonl,
                (false, Format::Human) => render::Format::Human,
                (false, Format::Json) => render::Format::Json,
            },
            output: global.output,
            connect: ConnectOptions {
                region: None,
                endpoint_url: args.endpoint_url.clone().filter(|u| !u.is_empty()),
                aws_profile: args.aws_profile.clone().filter(|p| !p.is_empty()),
                ..RetryEnv::from_env()?.options()
            },
        })
    }
}

/// In order, each once.
fn dedup(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
    out
}

/// `ctguard hunt`, resolved.
#[derive(Debug, Clone)]
pub struct HuntSettings {
    pub profile: String,
    pub overrides: Vars,
    pub emit_sql: bool,
    pub detections: Vec<String>,
    pub table: Option<String>,
    /// Seconds back from now.
    pub since: Option<u64>,
    /// Bytes.
    pub max_scan: Option<u64>,
    pub workgroup: Option<String>,
    pub database: Option<String>,
    pub connect: ConnectOptions,
    pub format: Format,
    pub output: Output,
}

impl HuntSettings {
    pub fn resolve(global: &Global, args: &HuntArgs) -> anyhow::Result<Self> {
        let since = args
            .since
            .as_deref()
            .map(|s| {
                duration(s).ok_or_else(|| anyhow::anyhow!("--since {s:?}: expected a duration such as 90d, 36h or 2w"))
            })
            .transpose()?;
        let max_scan = args
            .max_scan
            .as_deref()
            .map(|s| {
                profile::athena::parse_bytes(s)
                    .ok_or_else(|| anyhow::anyhow!("--max-scan {s:?}: expected a size such as 50GB, 500MB or 2TB"))
            })
            .transpose()?;
        Ok(HuntSettings {
            profile: args.profile.clone(),
            overrides: profile::parse_overrides(&args.vars)?,
            emit_sql: args.emit_sql,
            detections: args.detections.clone(),
            table: args.table.clone(),
            since,
            max_scan,
            workgroup: args.workgroup.clone(),
            database: args.database.clone(),
            connect: ConnectOptions {
                region: args.region.clone().filter(|r| !r.is_empty()),
                endpoint_url: args.endpoint_url.clone().filter(|u| !u.is_empty()),
                aws_profile: args.aws_profile.clone().filter(|p| !p.is_empty()),
                ..RetryEnv::from_env()?.options()
            },
            format: global.format,
            output: global.output,
        })
    }
}

/// `90d`, `36h`, `2w`, `45m` in seconds; more than zero.
fn duration(text: &str) -> Option<u64> {
    let text = text.trim();
    // The unit is the last character, whatever its width (a typo may not be ASCII).
    let (at, _) = text.char_indices().last()?;
    let (number, unit) = text.split_at(at);
    let n: u64 = number.parse().ok().filter(|n| *n > 0)?;
    let scale = match unit {
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// `ctguard permissions`, resolved.
#[derive(Debug, Clone)]
pub struct PermissionsSettings {
    pub common: Settings,
    pub read_only: bool,
    /// `--destroy`: destroy's deletes as well.
    pub destroy: bool,
    /// `--drill`: only what `ctguard drill` needs.
    pub drill: bool,
    /// `--account`: the account to name without asking STS.
    pub account: Option<String>,
    /// `--organization`: the role `--accounts` assumes in member accounts.
    pub organization: Option<String>,
}

impl PermissionsSettings {
    pub fn resolve(global: &Global, args: &PermissionsArgs) -> anyhow::Result<Self> {
        if let Some(account) = &args.account
            && (account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()))
        {
            anyhow::bail!("--account: expected a 12-digit AWS account ID, got {account:?}");
        }
        Ok(PermissionsSettings {
            common: Settings::resolve(global, &args.common)?,
            read_only: args.read_only,
            destroy: args.destroy,
            drill: args.drill,
            account: args.account.clone(),
            organization: match &args.organization {
                Some(role) => {
                    role_name(role).map_err(|e| anyhow::anyhow!("--organization: {e:#}"))?;
                    Some(role.clone())
                }
                None => None,
            },
        })
    }
}

#[cfg(test)]
mod hunt_tests {
    #[test]
    fn durations() {
        assert_eq!(super::duration("90d"), Some(90 * 86_400));
        assert_eq!(super::duration("36h"), Some(36 * 3_600));
        assert_eq!(super::duration("2w"), Some(14 * 86_400));
        assert_eq!(super::duration("0d"), None);
        assert_eq!(super::duration("d"), None);
        assert_eq!(super::duration("5y"), None);
        assert_eq!(super::duration("5é"), None);
        assert_eq!(super::duration(""), None);
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

    fn accounts(text: &str) -> AccountsArgs {
        AccountsArgs {
            accounts: Some(text.into()),
            assume_role: "OrganizationAccountAccessRole".into(),
            external_id: None,
            concurrency: 8,
        }
    }

    #[test]
    fn account_selections_are_parsed_and_checked() {
        assert_eq!(account_selection("all").unwrap(), AccountSelection::All);
        assert_eq!(account_selection("ou-ab12-cd34ef56").unwrap(), AccountSelection::Ou("ou-ab12-cd34ef56".into()));
        assert_eq!(
            account_selection("111111111111, 222222222222,111111111111").unwrap(),
            AccountSelection::Ids(vec!["111111111111".into(), "222222222222".into()])
        );
        for bad in ["12345", "11111111111a", "111111111111,", "ou-AB12-cd34ef56", "ou-ab12", "ou-ab1-cd34ef56", ""] {
            assert!(account_selection(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn role_names_and_external_ids_follow_iam_and_sts() {
        assert!(role_name("AWSControlTowerExecution").is_ok());
        assert!(role_name("a+=,.@_-b").is_ok());
        for bad in ["", "has space", "arn:aws:iam::1:role/R", "path/R", "é", &"r".repeat(65)] {
            assert!(role_name(bad).is_err(), "{bad}");
        }
        assert!(external_id("ab:cd/ef").is_ok());
        assert!(external_id("a").is_err());
        assert!(external_id("no spaces").is_err());
    }

    #[test]
    fn accounts_refuse_one_account_options_and_bad_roles() {
        let none = AccountsArgs { accounts: None, ..accounts("all") };
        assert_eq!(FanOut::resolve(&none, &[("--out", true)]).unwrap(), None);
        let fan = FanOut::resolve(&accounts("all"), &[("--out", false)]).unwrap().unwrap();
        assert_eq!((fan.role.as_str(), fan.concurrency), ("OrganizationAccountAccessRole", 8));
        let e = FanOut::resolve(&accounts("all"), &[("--junit", true), ("--html", true)]).unwrap_err().to_string();
        assert!(e.starts_with("--accounts cannot go with --junit, --html"), "{e}");
        let bad_role = AccountsArgs { assume_role: "bad role".into(), ..accounts("all") };
        assert!(FanOut::resolve(&bad_role, &[]).unwrap_err().to_string().starts_with("--assume-role"));
    }
}
