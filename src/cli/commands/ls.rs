//! `physio ls`: the remote files of a dataset version with their sizes (from the
//! directory listings) and SHA-256 digests (from SHA256SUMS.txt), without downloading;
//! the listing itself is [`crate::ops::ls`].

use std::io::Write;

use serde_json::json;

use crate::cli::args::{GlobalArgs, LsArgs};
use crate::ops::{self, FetchRequest};

/// Runs `physio ls`.
pub fn run(args: &LsArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    if ops::fetch::is_kaggle(&args.dataset) {
        return super::kaggle::ls(args, global);
    }
    if args.records {
        return super::plan::ls_records(args, global);
    }
    let mut req = FetchRequest::new(&args.dataset, "");
    req.include = args.include.clone();
    req.exclude = args.exclude.clone();
    req.base_url = args.base_url.clone();
    req.source = args.source.into();
    let listing = crate::cli::runtime()?.block_on(ops::ls(&req))?;
    let total: u64 = listing.files.iter().filter_map(|e| e.size).sum();
    let mut out = std::io::stdout().lock();
    if args.json {
        let files: Vec<_> = listing
            .files
            .iter()
            .map(|e| json!({"path": e.path, "size": e.size, "sha256": e.sha256.map(hex::encode)}))
            .collect();
        let doc = json!({
            "dataset": listing.dataset, "version": listing.version,
            "checksums": listing.checksums,
            "files": files, "total_files": listing.files.len(), "total_bytes": total,
        });
        writeln!(out, "{doc}")?;
    } else {
        for e in &listing.files {
            let size = e.size.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
            writeln!(out, "{size:>12}  {}", e.path)?;
        }
        writeln!(
            out,
            "{} files, {total} bytes ({}@{})",
            listing.files.len(),
            listing.dataset,
            listing.version
        )?;
    }
    Ok(0)
}
