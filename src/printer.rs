//! The one owner of output: data on stdout, status, warnings and progress on stderr.

use std::io::{self, Write};

use crate::engine::Hook;
use crate::events::RetryListener;
use crate::render::human::Paint;
use crate::render::progress;
use crate::settings::Output;

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

    /// The progress listener that fits stderr.
    pub fn progress(&self) -> Box<dyn Hook> {
        if self.output.interactive_stderr { Box::new(progress::Bars::new()) } else { Box::new(progress::Lines) }
    }
}
