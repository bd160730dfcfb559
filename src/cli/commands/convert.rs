//! `physio convert`.

use crate::cli::args::{ConvertArgs, GlobalArgs};

/// Runs `physio convert`.
pub fn run(_args: &ConvertArgs, _global: &GlobalArgs) -> anyhow::Result<u8> {
    super::not_yet("convert")
}
