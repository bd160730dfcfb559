//! `physio ls`: the remote files of a dataset version with their sizes (from the
//! directory listings) and SHA-256 digests (from SHA256SUMS.txt), without downloading.

use std::io::Write;

use serde_json::json;

use crate::cli::args::{GlobalArgs, LsArgs};
use crate::fetch::DownloaderOptions;
use crate::fetch::plan::Selection;

/// Runs `physio ls`.
pub fn run(args: &LsArgs, _global: &GlobalArgs) -> anyhow::Result<u8> {
    if super::kaggle::is_kaggle(&args.dataset) {
        return super::kaggle::ls(args, _global);
    }
    if args.records {
        return super::plan::ls_records(args, _global);
    }
    let selection = Selection::new(&args.include, &args.exclude, None, None)?;
    let rt = crate::cli::runtime()?;
    rt.block_on(async {
        let mut r = super::fetch::resolve(
            &args.dataset,
            args.base_url.as_deref(),
            args.source,
            DownloaderOptions::default(),
        )
        .await?;
        r.source
            .fill_sizes(&r.downloader, &r.slug, &r.version, &mut r.manifest)
            .await?;
        let entries = selection.apply(&r.manifest.entries);
        let total: u64 = entries.iter().filter_map(|e| e.size).sum();
        let mut out = std::io::stdout().lock();
        if args.json {
            let files: Vec<_> = entries
                .iter()
                .map(|e| json!({"path": e.path, "size": e.size, "sha256": e.sha256.map(hex::encode)}))
                .collect();
            let doc = json!({
                "dataset": r.slug, "version": r.version, "checksums": r.manifest.has_checksums,
                "files": files, "total_files": entries.len(), "total_bytes": total,
            });
            writeln!(out, "{doc}")?;
        } else {
            for e in &entries {
                let size = e.size.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
                writeln!(out, "{size:>12}  {}", e.path)?;
            }
            writeln!(out, "{} files, {total} bytes ({}@{})", entries.len(), r.slug, r.version)?;
        }
        Ok(0)
    })
}
