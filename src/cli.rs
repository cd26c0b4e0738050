//! Command-line interface: clap structs only. Their doc comments are the help text.
//! Nothing here does work; `settings` resolves these into plain values first.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Declare, apply and verify the AWS monitoring that catches destructive actions.
///
/// ctguard reads a profile (a TOML file that says what the account must have), compares it with
/// the live account and shows, applies or verifies the difference: the hardened audit-log bucket,
/// the multi-region CloudTrail trail and its CloudWatch Logs delivery, the EventBridge rules,
/// metric filters and alarms that catch destructive calls, their alert topic, and AWS Config.
/// `ctguard test` replays CloudTrail logs through those detections offline; `ctguard
/// validate-logs` proves no log file was deleted or altered since CloudTrail delivered it.
///
/// Start with `ctguard plan -p ai-agent-guard`: it changes nothing.
#[derive(Debug, Parser)]
#[command(
    name = "ctguard",
    version = crate::build_info::VERSION,
    long_version = crate::build_info::LONG_VERSION,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes, before or after its name.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format: human text, or one versioned JSON document on stdout (errors too);
    /// `investigate` also writes JSON lines.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// When to use colours. `auto` uses them on a terminal unless NO_COLOR is set or
    /// TERM=dumb; CLICOLOR_FORCE=1 forces them.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// More detail on stderr: timings, every health check and each AWS retry with -v; each
    /// AWS call with its duration with -vv. Also expands plans collapsed across regions.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what apply would change, field by field. Makes no changes.
    ///
    /// Exit status: 0 success, 1 error; with --detailed-exitcode, 2 when changes are pending.
    Plan(PlanArgs),
    /// Converge the account to the profile, in dependency order.
    ///
    /// Shows the plan first and asks for confirmation on a terminal. Without a terminal it
    /// refuses unless --auto-approve is given. A second apply changes nothing.
    Apply(ApplyArgs),
    /// Fail when the account has drifted from the profile: the CI gate.
    ///
    /// Exit status: 0 the account matches, 2 drift or a failing health check, 1 could not decide.
    Verify(VerifyArgs),
    /// Replay CloudTrail records through the profile's detections, offline: no AWS call.
    ///
    /// For each record that raises an alert, shows which EventBridge rules and metric-filter
    /// alarms fire and where each sends it, and apart from those the alarm metrics it only
    /// counts towards (with each alarm's threshold); with -v also records that only count.
    /// Then the records per detection. Patterns are the ones apply deploys,
    /// matched with AWS's documented semantics; each record is matched as deployed in the account
    /// that logged it (agent principal ARNs name the account), unless --account says otherwise.
    ///
    /// Reads CloudTrail log files as delivered to S3 (`{"Records": [...]}`, gzipped or not),
    /// arrays of records, single records and JSON lines. Directories are walked for *.json,
    /// *.jsonl and their .gz forms, skipping CloudTrail-Digest files. With no PATH, or `-`,
    /// reads stdin.
    ///
    /// With an s3:// URL and --since (or --start/--end), replays the log files the trail
    /// delivered to that bucket in the window, downloading them concurrently; with --since and
    /// no PATH, the profile's own audit bucket.
    ///
    /// Input that holds no CloudTrail records (another JSON shape, an empty file, a directory
    /// with no log files) is an error naming it and what was found, and a malformed file is
    /// named with the record and line where it breaks; the other inputs still replay. Large
    /// files are read in chunks spread over every worker, in flat memory, with a progress bar
    /// on a terminal.
    ///
    /// Exit status: 0 replayed, 1 an input could not be replayed or held no records, or the
    /// profile is invalid.
    Test(TestArgs),
    /// Prove no CloudTrail log file or digest was deleted or altered since delivery.
    ///
    /// Walks the trail's digest files in the audit bucket for the window, region by region
    /// (organization trails' layout too), and checks what CloudTrail's log file integrity
    /// validation promises: each digest's SHA256withRSA signature against CloudTrail's public
    /// key for it, the chain of digests (each records its predecessor's hash and signature),
    /// and the SHA-256 of every log file a digest lists. Reports, per region, digests and log
    /// files valid, missing and altered, and gaps in the chain.
    ///
    /// Needs s3:ListBucket and s3:GetObject on the bucket, cloudtrail:ListPublicKeys (unless
    /// --public-keys is given), and kms:Decrypt for log files encrypted with SSE-KMS.
    ///
    /// Exit status: 0 all valid, 2 anything missing or altered, 1 could not decide.
    ValidateLogs(ValidateLogsArgs),
    /// Look back through CloudTrail event history: what a principal did, where, and how
    /// serious it was.
    ///
    /// Reads LookupEvents in the profile's regions (or --region) over a window (default the
    /// last 24 hours; at most the 90 days AWS keeps). By default it looks up every event name
    /// the profile's detections can match, so the look-back and the live alerts agree on what
    /// matters; detections that can match any event name are named, and --all-events reads
    /// everything. Each event is matched with the profile's detections as deployed and given
    /// a severity: that of the detections that alert on it, or of its class where that is
    /// higher or nothing alerted (monitoring tampering, key destruction, root use and
    /// organization changes high; IAM, network, public-S3 and Config changes medium; read-only
    /// calls low; one tier up when the call failed). Events stream newest first as soon as
    /// their order is certain.
    ///
    /// AWS allows 2 LookupEvents calls per second per region: regions are read at once, each
    /// paced below that rate. A lookup that fails is reported and the rest goes on.
    ///
    /// Exit status: 0 nothing at or above --fail-on, 2 something at or above it, 3 partial
    /// (some lookups failed, nothing at or above --fail-on in the rest), 1 could not run.
    Investigate(InvestigateArgs),
    /// Run the profile's detections over the whole audit bucket with Athena, or print the SQL.
    ///
    /// Every EventBridge rule and metric filter of the profile, as deployed, becomes one Athena
    /// (Trino) query over the CloudTrail table (AWS's documented table for CloudTrail logs,
    /// partitioned by region and day): one row per detection and event, each record matched as
    /// deployed in its own account, with the same meaning as `ctguard test` and the live rules.
    /// A pattern the SQL cannot express exactly is an error naming the detection and the
    /// construct. Detections that together exceed Athena's 262,144-byte query limit are split
    /// over as few queries as fit, run one after the other and merged; each reads the window
    /// again, so each adds its scan to the cost (--max-scan counts them all).
    ///
    /// With --emit-sql the query (or each query, under a `-- query N of M` comment) is printed
    /// and nothing is called. Otherwise it runs in the profile's Athena workgroup, with
    /// progress on stderr, the matches printed as `ctguard test` prints them, then the data
    /// scanned and its cost at $5 per TB.
    ///
    /// Exit status: 0 the query ran (or was printed), 1 error (invalid profile, a pattern SQL
    /// cannot express, a scan over --max-scan, a failed query with Athena's reason).
    Hunt(HuntArgs),
    /// List the profiles built into ctguard, print one, or write one out to customise it.
    Profiles(ProfilesArgs),
    /// Print the least-privilege IAM policy ctguard needs for a profile.
    ///
    /// By default the policy for apply (which includes plan and verify); with --read-only the
    /// policy for plan, verify and validate-logs alone, for a CI role that must not change
    /// anything. Writes name the profile's own resources (or ctguard's name prefix and role
    /// path), KMS writes need the profile's ownership tag, and each role may be passed only to
    /// the service that uses it. The account ID comes from STS, or --account; when neither
    /// is available the policy names every account (`*`). Always JSON.
    Permissions(PermissionsArgs),
    /// Fire drill: prove, in the live account, that every alert path delivers a message.
    ///
    /// Subscribes a temporary SQS queue (`ctguard-drill-<run>`) to every alert topic, then, for
    /// each path, makes the call that should alert and waits for the message: PutEvents of a
    /// `ctguard.drill` event in every region (the drill rule `ctguard-drill`, which apply
    /// manages beside the rules, alerts at home and forwards elsewhere), and SetAlarmState to
    /// ALARM on every alarm, then back to OK (an alarm's OK actions, if any, fire too). Every
    /// message says `[DRILL]`. Each topic's declared subscriptions must exist and be confirmed,
    /// and its policy must let EventBridge and CloudWatch publish, for its paths to pass.
    /// The queue (and the --end-to-end role) is deleted at the end, on failure and on
    /// Ctrl-C/SIGTERM; those a killed run left are deleted by the next run once expired.
    ///
    /// Exit status: 0 every path delivered, 2 a path failed or timed out, 1 could not run.
    Drill(DrillArgs),
    /// Print a shell completion script.
    ///
    /// bash: `ctguard completions bash > ~/.local/share/bash-completion/completions/ctguard`;
    /// zsh: `ctguard completions zsh > ~/.zfunc/_ctguard` (with ~/.zfunc on fpath);
    /// fish: `ctguard completions fish > ~/.config/fish/completions/ctguard.fish`;
    /// PowerShell: `ctguard completions powershell | Out-String | Invoke-Expression`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `ctguard man > ctguard.1 && man ./ctguard.1`.
    Man,
    /// Help AI agents be recognisable: the IAM side of the profile's `[agents]` signals.
    Agents(AgentsArgs),
    /// Check a profile and its policy templates without calling AWS.
    ///
    /// Everything plan and apply check before their first AWS call: every key and type, every
    /// placeholder, every template rendered and parsed, names, patterns, regions and limits,
    /// with the account ID, partition and region standing in as placeholders. No credentials
    /// and no network are needed, so it suits a pre-commit hook.
    ///
    /// Exit status: 0 valid, 1 invalid (every problem named, with file, line and key).
    Validate(ValidateArgs),
    /// Delete what ctguard made for the profile, in reverse dependency order.
    ///
    /// Only resources tagged with this profile's ownership tag are deleted; anything else
    /// (another profile's, made by hand, or a kind that carries no tag, such as AWS Config's
    /// recorder) is left as it is and listed. What loses audit data or coverage (the audit and
    /// access-log buckets, the log group, the trail's KMS key, the trail) is kept unless
    /// --allow-data-loss is given, and so is what a kept resource needs. Shows the plan first
    /// and asks for confirmation on a terminal, as apply does.
    ///
    /// Exit status: 0 done (or nothing to delete), 1 error or cancelled.
    Destroy(DestroyArgs),
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub common: Common,

    /// Destroy without asking. Required when stdin is not a terminal.
    #[arg(long)]
    pub auto_approve: bool,

    /// Also delete what loses audit data or coverage: the trail, the audit and access-log
    /// buckets (emptied: every log in them), the log group, and the trail's KMS key (scheduled
    /// for deletion after 7 days; logs encrypted with it become unreadable).
    #[arg(long)]
    pub allow_data_loss: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Profile to check: the name of a built-in profile or a path to a .toml file.
    #[arg(short = 'p', long = "profile", value_name = "NAME|PATH", default_value = "ai-agent-guard")]
    pub profile: String,

    /// Set a profile variable, overriding the profile's [variables] table. Repeatable. A value
    /// starting with `[` or `{` is read as TOML: `--var 'regions=["us-east-1","eu-west-1"]'`.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,

    /// The home region to check the profile with. Without it: the profile's home_region, then
    /// us-east-1 (AWS_REGION and the shared config are not read).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

#[derive(Debug, Args)]
pub struct Common {
    /// Profile to use: the name of a built-in profile (see `ctguard profiles list`) or a path
    /// to a .toml file.
    #[arg(short = 'p', long = "profile", value_name = "NAME|PATH", default_value = "ai-agent-guard")]
    pub profile: String,

    /// Set a profile variable, overriding the profile's [variables] table. Repeatable. A value
    /// starting with `[` or `{` is read as TOML: `--var 'regions=["us-east-1","eu-west-1"]'`.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,

    /// The home region: where the bucket, trail and log group live. Without it: the profile's
    /// home_region, then AWS_REGION, then the region of the AWS profile in the shared config.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Send every AWS call to this endpoint (an emulator, a VPC endpoint).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Named profile from the shared AWS config and credentials files. When given (or
    /// AWS_PROFILE is set), its credentials are used even if AWS_ACCESS_KEY_ID is set.
    #[arg(long, env = "AWS_PROFILE", value_name = "NAME")]
    pub aws_profile: Option<String>,

    /// Show resources that are identical in several regions once per region, instead of one
    /// block that lists the regions (as -v does).
    #[arg(long)]
    pub expand: bool,
}

/// Running one profile over several accounts of an organization.
#[derive(Debug, Args)]
pub struct AccountsArgs {
    /// Run in several accounts of the organization at once: `all` (every ACTIVE account), a
    /// comma-separated list of 12-digit account ids, or an organizational unit id (`ou-...`:
    /// the accounts in it and in every OU below it). Listed with AWS Organizations, so run it
    /// from the management account or a delegated administrator. Each account gets its own
    /// plan or verdict, then an organization summary. The account ctguard runs in uses its own
    /// credentials; every other account is reached by assuming --assume-role in it.
    #[arg(long, value_name = "all|ID,ID,...|ou-...", help_heading = "Organization")]
    pub accounts: Option<String>,

    /// The role to assume in each member account (session name `ctguard`). Organizations
    /// creates OrganizationAccountAccessRole in the accounts it creates; with AWS Control Tower
    /// use AWSControlTowerExecution.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "OrganizationAccountAccessRole",
        requires = "accounts",
        help_heading = "Organization"
    )]
    pub assume_role: String,

    /// The external id the member accounts' role trust policies require (sts:ExternalId).
    #[arg(long, value_name = "ID", requires = "accounts", help_heading = "Organization")]
    pub external_id: Option<String>,

    /// Accounts worked on at once. Within each account, regions keep their own bounds, as
    /// without --accounts.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 8,
        value_parser = clap::value_parser!(u16).range(1..=64),
        requires = "accounts",
        help_heading = "Organization"
    )]
    pub concurrency: u16,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub common: Common,

    #[command(flatten)]
    pub accounts: AccountsArgs,

    #[command(flatten)]
    pub endpoints: EndpointArgs,

    /// Exit 2 when changes are pending, 0 when there are none, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Print only the counts: per kind of resource and action, and the Plan line.
    #[arg(long)]
    pub summary: bool,

    /// Also save the plan to FILE, for `ctguard apply FILE` to carry out exactly. The file
    /// holds the profile and its --var values, a hash of what the profile declares, the
    /// account, and a fingerprint of the live state each change was computed from.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub common: Common,

    #[command(flatten)]
    pub accounts: AccountsArgs,

    #[command(flatten)]
    pub endpoints: EndpointArgs,

    /// Apply without asking. Required when stdin is not a terminal.
    #[arg(long)]
    pub auto_approve: bool,

    /// Take over resources that exist under a name the profile declares but were not created
    /// by ctguard (plan shows them as "adopt"): tag them as ctguard's and converge them.
    /// Without it, apply refuses before changing anything.
    #[arg(long)]
    pub adopt: bool,

    /// Allow changes that delete or shorten audit data or coverage (plan marks them "data
    /// loss"): a shorter or new log retention or lifecycle expiry, suspended versioning, a
    /// removed Deny statement, deleting a trail. Without it, apply refuses before changing
    /// anything, except that a trail the profile no longer declares (after a rename) is left
    /// in place, still logging.
    #[arg(long)]
    pub allow_data_loss: bool,

    /// A plan saved by `ctguard plan --out FILE`: apply exactly it, without asking (it was
    /// reviewed). The profile, variables and region come from the file. Refused, changing
    /// nothing, when the account, the profile or any resource's live state has changed since
    /// the plan was made; the error names what moved.
    #[arg(value_name = "PLANFILE", conflicts_with_all = ["profile", "vars", "region"])]
    pub plan_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub common: Common,

    #[command(flatten)]
    pub accounts: AccountsArgs,

    #[command(flatten)]
    pub endpoints: EndpointArgs,

    /// Also write the result as JUnit XML to FILE: one test case per resource and per health
    /// check, failing ones as failures and waived ones as skipped, for CI systems to show.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Also write the result as SARIF 2.1.0 to FILE, for code-scanning dashboards: one rule
    /// per resource kind's drift and per resource kind's health checks, one result per drifted
    /// resource and per failing check (waived ones as suppressed), located at the resource's
    /// address.
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,

    /// Also write the result as one self-contained HTML page to FILE (no external asset): the
    /// verdict and its counts, the detections by region coloured by state, each drifted field
    /// before and after, the failing checks and the waivers.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// How far back the delivery-health checks look: EventBridge's FailedInvocations of every
    /// rule and SNS's NumberOfNotificationsFailed of every alert topic must be zero over it
    /// (30m, 24h, 7d).
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub health_window: String,

    /// Print only drift and failing checks, and the verdict: no waived findings or notes
    /// (and no passing checks, even with -v).
    #[arg(long)]
    pub only_failures: bool,
}

/// How subscription endpoints are shown, for the commands that show them.
#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// Show subscription endpoints in full. By default an HTTP(S) endpoint shows only its
    /// scheme and host, and a short hash that tells endpoints apart: webhook and paging URLs
    /// carry their secret in the path or query, and CI logs and artifacts are widely readable.
    #[arg(long)]
    pub show_endpoints: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Profile whose detections to replay: a built-in name or a path to a .toml file.
    #[arg(short = 'p', long = "profile", value_name = "NAME|PATH", default_value = "ai-agent-guard")]
    pub profile: String,

    /// Set a profile variable, overriding the profile's [variables] table. Repeatable. A value
    /// starting with `[` or `{` is read as TOML: `--var 'regions=["us-east-1","eu-west-1"]'`.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,

    /// Match every record as deployed in this account, instead of each record's own
    /// recipientAccountId.
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,

    /// Worker threads. Defaults to one per CPU.
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Print only the count per detection, not each record that fired.
    #[arg(long)]
    pub summary: bool,

    /// Also write the result as one self-contained HTML page to FILE (no external asset): the
    /// counts, the fires per detection over time (by hour, day or month of the records'
    /// eventTime), the detections that never fired and the inputs that could not be replayed.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    #[command(flatten)]
    pub bucket: BucketArgs,

    /// CloudTrail log files, record files or directories; `-` for stdin (the default); or
    /// s3://BUCKET[/PREFIX] with a window.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// `ctguard test` reading a trail's log files straight from S3.
#[derive(Debug, Args)]
pub struct BucketArgs {
    /// Replay the log files delivered in the last DURATION (30m, 24h, 7d; at most 90d) from
    /// the s3:// URLs given, or from the profile's own audit bucket when no PATH is given.
    #[arg(long, value_name = "DURATION", help_heading = "Reading from S3")]
    pub since: Option<String>,

    /// Replay the log files delivered from TIME (RFC 3339, like 2026-11-27T03:00:00Z).
    #[arg(long, value_name = "TIME", help_heading = "Reading from S3")]
    pub start: Option<String>,

    /// ... until TIME (default: now).
    #[arg(long, value_name = "TIME", help_heading = "Reading from S3")]
    pub end: Option<String>,

    /// Send every AWS call to this endpoint (an emulator, a VPC endpoint).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL", help_heading = "Reading from S3")]
    pub endpoint_url: Option<String>,

    /// Named profile from the shared AWS config and credentials files.
    #[arg(long, env = "AWS_PROFILE", value_name = "NAME", help_heading = "Reading from S3")]
    pub aws_profile: Option<String>,
}

#[derive(Debug, Args)]
pub struct ValidateLogsArgs {
    #[command(flatten)]
    pub common: Common,

    /// Start of the window: an RFC 3339 time (2026-11-27T10:00:00Z), a date (2026-11-27, at
    /// midnight UTC), or a span before now (90m, 6h, 7d). Defaults to 24 hours before --end.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,

    /// End of the window, in the same forms, or `now` (the default). Digests delivered in the
    /// hour after it are read too: the first of them records the last one inside it.
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,

    /// Check signatures with the public keys in FILE instead of calling ListPublicKeys: the
    /// JSON `aws cloudtrail list-public-keys` prints for the window. Repeatable: keys are per
    /// region, so give one file per region for a multi-region trail.
    #[arg(long = "public-keys", value_name = "FILE")]
    pub public_keys: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct InvestigateArgs {
    #[command(flatten)]
    pub accounts: AccountsArgs,

    /// Profile whose detections, regions and agent principals to use: a built-in name or a
    /// path to a .toml file.
    #[arg(short = 'p', long = "profile", value_name = "NAME|PATH", default_value = "ai-agent-guard")]
    pub profile: String,

    /// Set a profile variable, overriding the profile's [variables] table. Repeatable.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,

    /// Look back this far: 30m, 24h, 7d (minutes, hours, days; at most 90d). The default is 24h.
    #[arg(long, value_name = "DURATION", help_heading = "Window")]
    pub since: Option<String>,

    /// Look back from TIME (RFC 3339, like 2026-11-27T03:00:00Z or 2026-11-27T05:00:00+02:00).
    #[arg(long, value_name = "TIME", help_heading = "Window")]
    pub start: Option<String>,

    /// ... until TIME (default: now).
    #[arg(long, value_name = "TIME", help_heading = "Window")]
    pub end: Option<String>,

    /// Only calls by this principal: an ARN (arn:aws:sts::123456789012:assumed-role/Deploy/*)
    /// or a role, user or session name, with `*` wildcards. Repeatable (any of them).
    #[arg(long = "principal", value_name = "PATTERN", help_heading = "What to look for")]
    pub principals: Vec<String>,

    /// Only calls by the profile's AI-agent principals (with --principal: either).
    #[arg(long, help_heading = "What to look for")]
    pub agents: bool,

    /// Look up this event name, instead of those the profile's detections can match. Repeatable.
    #[arg(long = "event", value_name = "NAME", help_heading = "What to look for", conflicts_with = "all_events")]
    pub events: Vec<String>,

    /// Read every event in the window. At 50 events per call and 2 calls per second per region,
    /// a busy account's day can take hours.
    #[arg(long, help_heading = "What to look for")]
    pub all_events: bool,

    /// Only events this detection (a rule name or an alarm id) would have fired on. Repeatable.
    #[arg(long = "detection", value_name = "NAME", help_heading = "What to look for")]
    pub detections: Vec<String>,

    /// Look in this region instead of the profile's regions. Repeatable.
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,

    /// Stop after the N newest events found.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,

    /// Exit 2 when an event at or above this severity is found.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<SeverityArg>,

    /// Send every AWS call to this endpoint (an emulator, a VPC endpoint).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Named profile from the shared AWS config and credentials files.
    #[arg(long, env = "AWS_PROFILE", value_name = "NAME")]
    pub aws_profile: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InvestigateFormat {
    Human,
    Json,
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Args)]
pub struct HuntArgs {
    /// Profile whose detections to hunt with: a built-in name or a path to a .toml file.
    #[arg(short = 'p', long = "profile", value_name = "NAME|PATH", default_value = "ai-agent-guard")]
    pub profile: String,

    /// Set a profile variable, overriding the profile's [variables] table. Repeatable.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,

    /// Print the SQL and stop: no AWS call.
    #[arg(long)]
    pub emit_sql: bool,

    /// Only this detection (a rule name or an alarm id, as `ctguard test` names them).
    /// Repeatable; all of the profile's detections by default.
    #[arg(long = "detection", value_name = "NAME")]
    pub detections: Vec<String>,

    /// The CloudTrail table to read (`table` or `database.table`). Defaults to the profile's
    /// [athena] table, then ctguard_cloudtrail.
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,

    /// Read only the last DURATION of logs, such as 90d, 36h or 2w: the day partitions and
    /// eventTime are filtered. Required to run on Athena.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,

    /// Refuse to start a query whose window would scan more than SIZE (such as 50GB),
    /// estimated from the size of yesterday's log files times the days in the window.
    #[arg(long, value_name = "SIZE")]
    pub max_scan: Option<String>,

    /// Athena workgroup. Defaults to the profile's [athena] workgroup.
    #[arg(long, value_name = "NAME")]
    pub workgroup: Option<String>,

    /// Database the table is in. Defaults to the profile's [athena] database.
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,

    /// The region Athena runs in. Defaults to the profile's home_region, then AWS_REGION and
    /// the shared config.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Send every AWS call to this endpoint (an emulator, a VPC endpoint).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Named profile from the shared AWS config and credentials files.
    #[arg(long, env = "AWS_PROFILE", value_name = "NAME")]
    pub aws_profile: Option<String>,
}

#[derive(Debug, Args)]
pub struct PermissionsArgs {
    #[command(flatten)]
    pub common: Common,

    /// Only what plan, verify and validate-logs need.
    #[arg(long, conflicts_with = "destroy")]
    pub read_only: bool,

    /// Add what `destroy --allow-data-loss` needs: deleting the buckets and their objects, the
    /// log group, the topic and the key's alias. Without it the policy cannot delete logs, so
    /// a role that applies in CI cannot either.
    #[arg(long)]
    pub destroy: bool,

    /// Only what `ctguard drill` needs, to grant apart from apply: PutEvents on the default
    /// buses, SetAlarmState on ctguard's alarms, the temporary queue and subscriptions, and the
    /// temporary role of --end-to-end.
    #[arg(long, conflicts_with_all = ["read_only", "destroy"])]
    pub drill: bool,

    /// The 12-digit account ID the policy names, without asking STS (for an offline machine).
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,

    /// Add what `--accounts` needs in the account it runs from (the management account or a
    /// delegated administrator): listing the organization's accounts and OUs, and
    /// sts:AssumeRole on ROLE (default OrganizationAccountAccessRole) in the other accounts.
    /// The role in each member account needs the rest of this policy.
    #[arg(
        long,
        value_name = "ROLE",
        num_args = 0..=1,
        default_missing_value = "OrganizationAccountAccessRole",
        conflicts_with = "drill"
    )]
    pub organization: Option<String>,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Profile to use: the name of a built-in profile (see `ctguard profiles list`) or a path
    /// to a .toml file.
    #[arg(short = 'p', long = "profile", value_name = "NAME|PATH", default_value = "ai-agent-guard")]
    pub profile: String,

    /// Set a profile variable, overriding the profile's [variables] table. Repeatable.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,

    /// Drill the EventBridge path of this region only (repeatable); by default every region
    /// of the profile. The home region is the profile's home_region, else AWS_REGION.
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,

    /// Drill this alarm only (repeatable); by default every alarm of the profile.
    #[arg(long = "alarm", value_name = "NAME")]
    pub alarms: Vec<String>,

    /// Skip the EventBridge paths.
    #[arg(long)]
    pub no_events: bool,

    /// Skip the alarm paths.
    #[arg(long)]
    pub no_alarms: bool,

    /// Also drill through CloudTrail: a role ctguard creates with no permissions makes one
    /// call that is denied, and the drill waits for the access-denied metric filter's count and
    /// its alarm's message (CIS 4.1), then deletes the role. Takes minutes: CloudTrail delivers
    /// to CloudWatch Logs within about 5 (default wait 20m). That alarm's message is the real
    /// one, without [DRILL].
    #[arg(long)]
    pub end_to_end: bool,

    /// How long to wait for each path's message: 30s, 2m, 1h. Default 2m (20m for
    /// --end-to-end).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Send every AWS call to this endpoint (an emulator, a VPC endpoint).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Named profile from the shared AWS config and credentials files.
    #[arg(long, env = "AWS_PROFILE", value_name = "NAME")]
    pub aws_profile: Option<String>,
}

#[derive(Debug, Args)]
pub struct AgentsArgs {
    #[command(subcommand)]
    pub action: AgentsAction,
}

#[derive(Debug, Subcommand)]
pub enum AgentsAction {
    /// Print a trust policy for ROLE that requires a source identity (`sts:SourceIdentity`).
    ///
    /// Whoever assumes ROLE must then set a source identity matching one of the profile's
    /// `[agents] source_identities` patterns. CloudTrail records it on every call of the session
    /// and of every role it chains into, so the agent's calls carry the signal wherever it goes,
    /// whatever the role or session name. Merge the statements into ROLE's trust policy (the Deny
    /// alone is safe to add to any trust policy), then apply it with
    /// `aws iam update-assume-role-policy --role-name ROLE --policy-document file://trust.json`.
    /// Makes no AWS call.
    TrustPolicy(TrustPolicyArgs),
}

#[derive(Debug, Args)]
pub struct TrustPolicyArgs {
    /// The role the agent assumes.
    pub role: String,
    /// Who starts agent sessions (an IAM role, user or account ARN); repeatable. With it, an
    /// Allow statement for them is printed beside the Deny.
    #[arg(long = "principal", value_name = "ARN")]
    pub principals: Vec<String>,
    /// A built-in profile, or a path to a .toml file, whose [agents] source_identities to use.
    #[arg(short, long, default_value = "ai-agent-guard")]
    pub profile: String,
    /// Override a variable the profile declares (a list takes a comma-separated value).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProfilesArgs {
    #[command(subcommand)]
    pub action: ProfilesAction,
}

#[derive(Debug, Subcommand)]
pub enum ProfilesAction {
    /// List the built-in profiles.
    List,
    /// Print a built-in profile's TOML.
    Show {
        /// Profile name.
        name: String,
    },
    /// Write a built-in profile and the policy templates it uses into DIR, laid out as
    /// DIR/profiles/NAME.toml and DIR/policies/*.json, ready to edit and pass to -p.
    Export {
        /// Profile name.
        name: String,
        /// Directory to write into; existing files are not overwritten.
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    /// One JSON object per line (`investigate` only, for piping).
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}
