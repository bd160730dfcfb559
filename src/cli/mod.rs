//! The command-line interface: argument parsing, logging set-up, the async runtime, and
//! the one place where errors and reports become exit codes. Only this module prints.

// Doc comments of `args` are clap's --help text, shown verbatim (`<slug>`, URLs,
// `zstd[:LEVEL]`): they are not rustdoc markup.
#![allow(
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls
)]

pub mod args;
pub mod commands;
pub mod logging;
pub mod reporter;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::error::{EXIT_INTERNAL, EXIT_PARTIAL, EXIT_USAGE};
use args::{Cli, Command};

/// Runs the `physio` command line and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` are not errors; clap knows which is which.
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    logging::setup(&cli.global);
    // A panic is a bug in physio: the hook has printed it; exit with the internal class,
    // never as if the user had made a mistake.
    let result = std::panic::catch_unwind(|| match &cli.command {
        Command::Fetch(a) => commands::fetch::run(a, &cli.global),
        Command::Verify(a) => commands::verify::run(a, &cli.global),
        Command::Ls(a) => commands::ls::run(a, &cli.global),
        Command::Info(a) => commands::info::run(a, &cli.global),
        Command::Convert(a) => commands::convert::run(a, &cli.global),
        Command::Sync(a) => commands::sync::run(a, &cli.global),
        Command::Plot(a) => commands::plot::run(a, &cli.global),
    });
    match result {
        Ok(Ok(code)) => ExitCode::from(code),
        Ok(Err(err)) => ExitCode::from(report_error(&err)),
        Err(_) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: internal error (physio panicked; please report this)"
            );
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}

/// Prints `err` (with its causes) on stderr and returns the exit code it maps to.
fn report_error(err: &anyhow::Error) -> u8 {
    // A closed stdout (`physio ls x | head`) is not a failure.
    if let Some(io) = err.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::BrokenPipe
    {
        return 0;
    }
    let _ = writeln!(std::io::stderr(), "error: {}", error_message(err));
    exit_code_of(err)
}

/// `err` and its causes on one line, `context: error: cause`, each text once. Most
/// library errors already put their cause in their own message (`x.hea: No such file or
/// directory`) and also expose it as `source()`, so anyhow's `{:#}` printed the cause
/// twice (issue 14); a cause whose text the line already holds is left out.
pub fn error_message(err: &anyhow::Error) -> String {
    error_chain_message(err.as_ref())
}

/// [`error_message`] for a library error: the error and each of its `source()`s.
pub fn error_chain_message(err: &(dyn std::error::Error + 'static)) -> String {
    crate::error::chain_message(err)
}

/// The exit code an error maps to: the library's own mapping where the chain holds a
/// [`crate::Error`], else 1.
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<crate::Error>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::wfdb::WfdbError>() {
            return e.exit_code();
        }
    }
    EXIT_PARTIAL
}

/// Builds the tokio runtime for commands that do network I/O.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
