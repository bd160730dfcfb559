//! `physio ls kaggle:<owner>/<dataset>[@<version>]`: the files of a Kaggle dataset
//! version, listed by the library ([`crate::source::kaggle::list`]) and printed as a
//! table or one JSON object. (Fetching Kaggle datasets is [`crate::ops::fetch()`].)

use std::io::Write;

use crate::auth::kaggle::find_credentials;
use crate::cli::args::{GlobalArgs, LsArgs};
use crate::error::EXIT_OK;
use crate::source::kaggle::{self, KaggleRef};

/// Runs `physio ls` for a `kaggle:` dataset: the files of the version with their sizes
/// (Kaggle publishes no SHA-256, so `sha256` is null and `checksums` false).
pub fn ls(args: &LsArgs, _global: &GlobalArgs) -> anyhow::Result<u8> {
    let dataset = KaggleRef::parse(&args.dataset).map_err(crate::Error::from)?;
    let credentials = find_credentials(&|k| std::env::var(k).ok())
        .map_err(|e| crate::Error::from(kaggle::KaggleError::from(e)))?;
    let (version, files) = super::super::runtime()?.block_on(kaggle::list(
        &crate::ops::fetch::kaggle_api_base(),
        credentials,
        &dataset,
        &args.include,
        &args.exclude,
    ))?;
    let total: u64 = files.iter().filter_map(|f| f.total_bytes).sum();
    let name = format!(
        "{}{}/{}",
        kaggle::SPEC_PREFIX,
        dataset.owner,
        dataset.dataset
    );
    let mut out = std::io::stdout().lock();
    if args.json {
        let list: Vec<_> = files
            .iter()
            .map(|f| serde_json::json!({"path": f.name, "size": f.total_bytes, "sha256": null}))
            .collect();
        let doc = serde_json::json!({
            "dataset": name, "version": version, "checksums": false,
            "files": list, "total_files": files.len(), "total_bytes": total,
        });
        writeln!(out, "{doc}")?;
    } else {
        for f in &files {
            let size = f
                .total_bytes
                .map_or_else(|| "?".to_string(), |s| s.to_string());
            writeln!(out, "{size:>12}  {}", f.name)?;
        }
        writeln!(
            out,
            "{} files, {total} bytes ({name}@{version})",
            files.len()
        )?;
    }
    Ok(EXIT_OK)
}
