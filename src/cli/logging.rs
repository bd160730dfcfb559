//! Logging set-up: `tracing` events to stderr, filtered by `PHYSIO_LOG`, else `RUST_LOG`,
//! else by `-v` (warnings only by default, errors only with `--quiet`).

use tracing_subscriber::EnvFilter;

use super::args::GlobalArgs;
use crate::env::EnvVars;

/// Installs the global tracing subscriber.
pub fn setup(global: &GlobalArgs) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "physio=info",
        (false, 2) => "physio=debug",
        (false, _) => "physio=trace",
    };
    let filter = std::env::var(EnvVars::PHYSIO_LOG)
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
