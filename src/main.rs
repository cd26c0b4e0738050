use std::ffi::OsString;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{CommandFactory, Parser};

use ctguard::cli::{Cli, Command};
use ctguard::commands::{self, Interrupted, Status, Watch};
use ctguard::printer::Printer;
use ctguard::settings::{self, Global, Settings};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e, json_requested(&args)),
    };
    let global = Global::resolve(&cli.global);
    let printer = Printer::new(global.output);
    printer.time_calls();
    match run(cli.command, global, printer) {
        Ok(Status::Success) => ExitCode::SUCCESS,
        Ok(Status::Differs) => ExitCode::from(2),
        Ok(Status::Partial) => ExitCode::from(3),
        Ok(Status::Failed) => ExitCode::from(1),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            printer.error(&e, global.format);
            // 128 + SIGINT, as a shell reports a program Ctrl-C stopped.
            ExitCode::from(if e.is::<Interrupted>() { 130 } else { 1 })
        }
    }
}

/// clap's own error or --help/--version text. clap exits 2 on usage errors, but 2 means drift
/// here: a typo must not read as drift.
fn usage_error(e: &clap::Error, json: bool) -> ExitCode {
    if !e.use_stderr() {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if json {
        let text = e.render().to_string();
        let _ = ctguard::render::json::error_document(&mut std::io::stdout(), "usage", text.trim(), None);
    }
    let _ = e.print();
    ExitCode::from(1)
}

/// Whether the command line asks for JSON, read before clap has accepted it, so that even a
/// usage error comes back as a JSON document.
fn json_requested(args: &[OsString]) -> bool {
    let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    args.windows(2).any(|w| w == ["--format", "json"]) || args.contains(&"--format=json")
}

fn run(command: Command, global: Global, printer: Printer) -> anyhow::Result<Status> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let watch = Watch::default();
    // The drill hears Ctrl-C and SIGTERM itself: it must delete its queue and role first.
    let own_signals = matches!(command, Command::Drill(_));
    let result = runtime.block_on(async {
        if own_signals {
            return dispatch(command, global, printer, watch.clone()).await;
        }
        // Ctrl-C is heard while the command runs: nothing in it blocks this thread (reading
        // stdin and `ctguard test` run on blocking threads).
        tokio::select! {
            result = dispatch(command, global, printer, watch.clone()) => result,
            _ = tokio::signal::ctrl_c() => Err(Interrupted(watch.describe()).into()),
        }
    });
    // Whatever is still in flight is abandoned; waiting for it would defeat Ctrl-C.
    runtime.shutdown_background();
    result
}

async fn dispatch(command: Command, global: Global, printer: Printer, watch: Watch) -> anyhow::Result<Status> {
    match command {
        Command::Plan(args) => {
            let settings = Settings::resolve(&global, &args.common)?
                .with_endpoints(&args.endpoints)
                .with_accounts(&args.accounts, &[("--out", args.out.is_some())])?;
            let options = settings::PlanOptions {
                detailed_exitcode: args.detailed_exitcode,
                summary: args.summary,
                out: args.out,
            };
            match &settings.fan_out {
                Some(fan) => commands::accounts::plan(&settings, &printer, fan, options).await,
                None => commands::plan::run(&settings, &printer, options).await,
            }
        }
        Command::Apply(args) => {
            let settings = Settings::resolve(&global, &args.common)?
                .with_endpoints(&args.endpoints)
                .with_accounts(&args.accounts, &[("a saved plan (PLANFILE)", args.plan_file.is_some())])?;
            let consent = ctguard::plan::Consent { adopt: args.adopt, data_loss: args.allow_data_loss };
            if let Some(fan) = &settings.fan_out {
                let options = settings::ApplyOptions { auto_approve: args.auto_approve, consent };
                return commands::accounts::apply(&settings, &printer, fan, options, &watch).await;
            }
            match args.plan_file {
                None => {
                    let options = settings::ApplyOptions { auto_approve: args.auto_approve, consent };
                    commands::apply::run(&settings, &printer, options, &watch, None).await
                }
                Some(file) => {
                    let saved = ctguard::saved_plan::SavedPlan::read(&file)?;
                    let settings = settings.for_saved_plan(&saved);
                    // A saved plan was reviewed when it was made: apply does not ask again.
                    let options = settings::ApplyOptions { auto_approve: true, consent };
                    commands::apply::run(&settings, &printer, options, &watch, Some(&saved)).await
                }
            }
        }
        Command::Verify(args) => {
            let refused =
                [("--junit", args.junit.is_some()), ("--sarif", args.sarif.is_some()), ("--html", args.html.is_some())];
            let settings = Settings::resolve(&global, &args.common)?
                .with_endpoints(&args.endpoints)
                .with_accounts(&args.accounts, &refused)?;
            let options = settings::VerifyOptions::resolve(&args)?;
            match &settings.fan_out {
                Some(fan) => commands::accounts::verify(&settings, &printer, fan, &options).await,
                None => commands::verify::run(&settings, &printer, &options).await,
            }
        }
        Command::ValidateLogs(args) => {
            let settings = settings::ValidateLogsSettings::resolve(&global, &args)?;
            commands::validate_logs::run(&settings, &printer).await
        }
        Command::Investigate(args) => {
            let settings = settings::InvestigateSettings::resolve(&global, &args)?;
            tokio::task::spawn_blocking(move || commands::investigate::run(&settings, &printer)).await?
        }
        Command::Hunt(args) => {
            let settings = settings::HuntSettings::resolve(&global, &args)?;
            tokio::task::spawn_blocking(move || commands::hunt::run(&settings, &printer)).await?
        }
        Command::Test(args) => {
            let settings = settings::TestSettings::resolve(&global, &args)?;
            // Offline, on its own worker threads.
            tokio::task::spawn_blocking(move || commands::test::run(&settings, &printer)).await?
        }
        Command::Profiles(args) => commands::profiles::run(&settings::ProfilesTask::resolve(&args.action), &printer),
        Command::Drill(args) => {
            let settings = settings::DrillSettings::resolve(&global, &args)?;
            commands::drill::run(&settings, &printer, global.format).await
        }
        Command::Permissions(args) => {
            let settings = settings::PermissionsSettings::resolve(&global, &args)?;
            commands::permissions::run(&settings, &printer).await
        }
        Command::Agents(args) => commands::agents::run(&args.action, &printer),
        Command::Destroy(args) => {
            let settings = Settings::resolve(&global, &args.common)?;
            let options =
                settings::DestroyOptions { auto_approve: args.auto_approve, allow_data_loss: args.allow_data_loss };
            commands::destroy::run(&settings, &printer, options, &watch).await
        }
        Command::Validate(args) => {
            commands::validate::run(&settings::ValidateSettings::resolve(&global, &args)?, &printer)
        }
        Command::Completions(args) => {
            let mut cli = Cli::command();
            printer.data(|w, _| {
                clap_complete::generate(args.shell, &mut cli, "ctguard", w);
                Ok(())
            })?;
            Ok(Status::Success)
        }
        Command::Man => {
            let page = clap_mangen::Man::new(Cli::command());
            printer.data(|w, _| page.render(w))?;
            Ok(Status::Success)
        }
    }
}

/// A closed stdout (`ctguard plan | head`) ends the program quietly.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
