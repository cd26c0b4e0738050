use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

use ctguard::cli::{Cli, Command};
use ctguard::commands::{self, Status};
use ctguard::printer::Printer;
use ctguard::settings::{Output, Settings};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap exits 2 on usage errors, but 2 means drift here: a typo must not read as drift.
            return if e.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
    };
    match run(cli) {
        Ok(Status::Success) => ExitCode::SUCCESS,
        Ok(Status::Differs) => ExitCode::from(2),
        Ok(Status::Partial) => ExitCode::from(3),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Status> {
    let (common, job) = match cli.command {
        Command::Profiles(args) => {
            let printer = Printer::new(Output::resolve(ctguard::cli::ColorChoice::Auto, 0));
            return commands::profiles::run(&args.action, &printer);
        }
        Command::Permissions(args) => {
            let printer = Printer::new(Output::resolve(ctguard::cli::ColorChoice::Auto, 0));
            let doc = ctguard::permissions::policy(args.read_only);
            printer.data(|w, _| writeln!(w, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default()))?;
            return Ok(Status::Success);
        }
        Command::Agents(args) => {
            let printer = Printer::new(Output::resolve(ctguard::cli::ColorChoice::Auto, 0));
            return commands::agents::run(&args.action, &printer);
        }
        Command::Test(args) => {
            let settings = ctguard::settings::TestSettings::resolve(&args)?;
            return commands::test::run(&settings, &Printer::new(settings.output));
        }
        Command::ValidateLogs(args) => {
            let settings = ctguard::settings::ValidateLogsSettings::resolve(&args)?;
            let printer = Printer::new(settings.common.output);
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            return runtime.block_on(commands::validate_logs::run(&settings, &printer));
        }
        Command::Investigate(args) => {
            let settings = ctguard::settings::InvestigateSettings::resolve(&args)?;
            return commands::investigate::run(&settings, &Printer::new(settings.output));
        }
        Command::Hunt(args) => {
            let settings = ctguard::settings::HuntSettings::resolve(&args)?;
            return commands::hunt::run(&settings, &Printer::new(settings.output));
        }
        Command::Plan(args) => (args.common, Job::Plan { detailed_exitcode: args.detailed_exitcode }),
        Command::Apply(args) => (args.common, Job::Apply { auto_approve: args.auto_approve }),
        Command::Verify(args) => (args.common, Job::Verify { junit: args.junit }),
    };
    let settings = Settings::resolve(&common)?;
    let printer = Printer::new(settings.output);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match job {
            Job::Plan { detailed_exitcode } => commands::plan::run(&settings, &printer, detailed_exitcode).await,
            Job::Apply { auto_approve } => commands::apply::run(&settings, &printer, auto_approve).await,
            Job::Verify { junit } => commands::verify::run(&settings, &printer, junit.as_deref()).await,
        }
    })
}

/// The commands that talk to AWS, with their own flags.
enum Job {
    Plan { detailed_exitcode: bool },
    Apply { auto_approve: bool },
    Verify { junit: Option<std::path::PathBuf> },
}

/// A closed stdout (`ctguard plan | head`) ends the program quietly.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
