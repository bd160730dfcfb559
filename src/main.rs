//! The `physio` binary: everything lives in the library; see `physio::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    physio::cli::main()
}
