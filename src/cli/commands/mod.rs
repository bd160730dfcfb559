//! One file per subcommand: each turns parsed arguments into library options, runs the
//! library, prints results, and returns the exit code.

pub mod convert;
pub mod fetch;
pub mod info;
pub mod kaggle;
pub mod ls;
pub mod sync;
pub mod verify;

/// Refuses a subcommand whose issue has not landed yet (exit 2, as a usage error).
pub(crate) fn not_yet(name: &str) -> anyhow::Result<u8> {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "error: `physio {name}` is not yet available in this build"
    );
    Ok(crate::error::EXIT_USAGE)
}
