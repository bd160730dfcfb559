//! `physio info`.

use crate::cli::args::{GlobalArgs, InfoArgs};

/// Runs `physio info`.
pub fn run(_args: &InfoArgs, _global: &GlobalArgs) -> anyhow::Result<u8> {
    super::not_yet("info")
}
