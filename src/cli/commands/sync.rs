//! `physio sync`.

use crate::cli::args::{GlobalArgs, SyncArgs};

/// Runs `physio sync`.
pub fn run(_args: &SyncArgs, _global: &GlobalArgs) -> anyhow::Result<u8> {
    super::not_yet("sync")
}
