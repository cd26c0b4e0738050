use std::process::ExitCode;

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
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Status> {
    if let Command::Profiles(args) = &cli.command {
        let printer = Printer::new(Output::resolve(ctguard::cli::ColorChoice::Auto, 0));
        return commands::profiles::run(&args.action, &printer);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match &cli.command {
            Command::Plan(args) => {
                let settings = Settings::resolve(&args.common)?;
                commands::plan::run(&settings, &Printer::new(settings.output), args.detailed_exitcode).await
            }
            Command::Apply(args) => {
                let settings = Settings::resolve(&args.common)?;
                commands::apply::run(&settings, &Printer::new(settings.output), args.auto_approve).await
            }
            Command::Verify(args) => {
                let settings = Settings::resolve(&args.common)?;
                commands::verify::run(&settings, &Printer::new(settings.output)).await
            }
            Command::Profiles(_) => unreachable!("handled above"),
        }
    })
}

/// A closed stdout (`ctguard plan | head`) ends the program quietly.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
