//! The one owner of output: data on stdout, status, warnings and progress on stderr.

use std::io::{self, Write};

use crate::engine::Hook;
use crate::events::RetryListener;
use crate::render::human::Paint;
use crate::render::progress;
use crate::settings::{Format, Output};

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub output: Output,
}

impl Printer {
    pub fn new(output: Output) -> Self {
        Printer { output }
    }

    /// Writes data to stdout through `f`, flushing at the end so a closed pipe surfaces here.
    pub fn data(&self, f: impl FnOnce(&mut dyn Write, Paint) -> io::Result<()>) -> io::Result<()> {
        let stdout = io::stdout();
        let mut lock = stdout.lock();
        f(&mut lock, Paint { color: self.output.color_stdout })?;
        lock.flush()
    }

    /// A status line on stderr.
    pub fn status(&self, msg: &str) {
        eprintln!("{msg}");
    }

    /// A warning on stderr, whatever the verbosity.
    pub fn warn(&self, msg: &str) {
        let paint = Paint { color: self.output.color_stderr };
        eprintln!("{} {msg}", paint.warning("warning:"));
    }

    /// The error that ends the command: text on stderr, and with `--format json` also a JSON
    /// document on stdout, so a program reading stdout always gets a document.
    pub fn error(&self, e: &anyhow::Error, format: Format) {
        // `ctguard test` puts its input problems in the document it has written already.
        let in_document = e.downcast_ref::<crate::detect::replay::InputProblems>().is_some_and(|p| p.in_document);
        if format == Format::Json && !in_document {
            let _ = crate::render::json::error(&mut io::stdout().lock(), e);
        }
        let paint = Paint { color: self.output.color_stderr };
        eprintln!("{} {e:#}", paint.failure("error:"));
    }

    /// Detail shown with -v.
    pub fn verbose(&self, msg: &str) {
        if self.output.verbose > 0 {
            eprintln!("{msg}");
        }
    }

    /// The listener for the SDK's retries: one line each with -v, nothing otherwise.
    pub fn retries(&self) -> RetryListener {
        let verbose = self.output.verbose > 0;
        std::sync::Arc::new(move |retry| {
            if verbose {
                eprintln!("{}", progress::retry_line(retry));
            }
        })
    }

    /// With -vv, one line per AWS call with its duration, from here on.
    pub fn time_calls(&self) {
        if self.output.verbose >= 2 {
            crate::aws::timing::listen(std::sync::Arc::new(|call| eprintln!("{}", progress::call_line(call))));
        }
    }

    /// A bar for bytes read on a terminal (a counter when the total is unknown); none otherwise.
    pub fn bytes_progress(&self, total: Option<u64>) -> Option<indicatif::ProgressBar> {
        self.output.interactive_stderr.then(|| progress::bytes_bar(total))
    }

    /// The progress listener that fits stderr.
    pub fn progress(&self) -> Box<dyn Hook> {
        if self.output.interactive_stderr { Box::new(progress::Bars::new()) } else { Box::new(progress::Lines) }
    }
}
