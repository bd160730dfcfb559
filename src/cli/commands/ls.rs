//! `physio ls`.

use crate::cli::args::{GlobalArgs, LsArgs};

/// Runs `physio ls`.
pub fn run(_args: &LsArgs, _global: &GlobalArgs) -> anyhow::Result<u8> {
    super::not_yet("ls")
}
