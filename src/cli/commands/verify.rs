//! `physio verify`.

use crate::cli::args::{GlobalArgs, VerifyArgs};

/// Runs `physio verify`.
pub fn run(_args: &VerifyArgs, _global: &GlobalArgs) -> anyhow::Result<u8> {
    super::not_yet("verify")
}
