//! `physio fetch`.

use crate::cli::args::{FetchArgs, GlobalArgs};

/// Runs `physio fetch`.
pub fn run(_args: &FetchArgs, _global: &GlobalArgs) -> anyhow::Result<u8> {
    super::not_yet("fetch")
}
