//! `physio fetch`.

use crate::cli::args::{FetchArgs, GlobalArgs};

/// Runs `physio fetch`.
pub fn run(_args: &FetchArgs, _global: &GlobalArgs) -> anyhow::Result<u8> {
    if super::kaggle::is_kaggle(&_args.dataset) {
        return super::kaggle::run(_args, _global);
    }
    super::not_yet("fetch")
}
