//! `physio fetch`: resolve the dataset and version, read its manifest, select files,
//! then either print the plan (`--dry-run`) or run the download engine and print a
//! summary (text on stderr, or one JSON object on stdout with `--json`). `--out` may be
//! an object-store URL (`s3://bucket/prefix`), see `objstore::fetch_to_store`.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use url::Url;

use crate::auth::Credentials;
use crate::cli::args::{FetchArgs, GlobalArgs, SourceArg};
use crate::cli::reporter::ProgressReporter;
use crate::error::Error;
use crate::fetch::plan::Selection;
use crate::fetch::retry::RetryPolicy;
use crate::fetch::{Downloader, DownloaderOptions, FetchOptions, FetchPlan, HttpClient};
use crate::objstore::{self, ObjectUrl, UploadOptions};
use crate::shard::Shard;
use crate::source::physionet::{AWS_BASE, DEFAULT_BASE};
use crate::source::{DatasetSpec, Layout, Manifest, PhysioNet, SourceError};

/// Default concurrent downloads: physionet.org throttles each connection to tens of
/// KB/s and drops clients that open dozens, so about eight is both fast and polite.
pub const DEFAULT_JOBS: usize = 8;

/// A resolved dataset version: where it is, what it holds, and the downloader to use.
pub(crate) struct Resolved {
    pub source: PhysioNet,
    pub slug: String,
    pub version: String,
    pub manifest: Manifest,
    pub downloader: Downloader,
}

/// Parses the spec, builds client and source, finds the version and reads the manifest.
pub(crate) async fn resolve(
    dataset: &str,
    base_url: Option<&str>,
    source: SourceArg,
    opts: DownloaderOptions,
) -> anyhow::Result<Resolved> {
    let (slug, version) = match DatasetSpec::parse(dataset).map_err(Error::from)? {
        DatasetSpec::PhysioNet { slug, version } => (slug, version),
        DatasetSpec::Kaggle { .. } => {
            return Err(Error::from(SourceError::Unsupported("Kaggle")).into());
        }
    };
    let layout = match source {
        SourceArg::Physionet => Layout::PhysioNet,
        SourceArg::Aws => Layout::Aws,
    };
    let default = if layout == Layout::Aws {
        AWS_BASE
    } else {
        DEFAULT_BASE
    };
    let src = PhysioNet::new(base_url.unwrap_or(default), layout)?;
    let creds = Url::parse(src.base().as_str())
        .ok()
        .filter(|u| u.scheme() != "file")
        .and_then(|u| Credentials::lookup(&u));
    let client = HttpClient::new(creds, Duration::from_secs(30))?;
    let downloader = Downloader::new(client, opts);
    let version = match version {
        Some(v) => v,
        None => src.resolve_version(&downloader, &slug).await?,
    };
    let manifest = src.manifest(&downloader, &slug, &version).await?;
    Ok(Resolved {
        source: src,
        slug,
        version,
        manifest,
        downloader,
    })
}

/// Runs `physio fetch`.
pub fn run(args: &FetchArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    execute(args, global, None)
}

/// Runs a fetch. With `capture`, the JSON summary (the `--json` document) is stored
/// there instead of printed, so `physio sync` can put it in its run report.
pub(crate) fn execute(
    args: &FetchArgs,
    global: &GlobalArgs,
    capture: Option<&mut serde_json::Value>,
) -> anyhow::Result<u8> {
    // `--out s3://…` (or gs://, az://): the same layout as on disk, under a key prefix
    // (docs/object-store.md). Parsed first so a bad URL is a usage error at once.
    let out_text = args.out.to_string_lossy();
    let target = match ObjectUrl::parse(&out_text).map_err(Error::from)? {
        Some(t) => Some(t.into_prefix()),
        None if out_text.contains("://") => {
            return Err(Error::Usage(format!(
                "fetch --out {out_text}: give a local directory or an s3://, gs:// or az:// URL"
            ))
            .into());
        }
        None => None,
    };
    if super::kaggle::is_kaggle(&args.dataset) {
        if target.is_some() {
            return Err(Error::Usage(
                "object-store output (--out s3://…) is supported for PhysioNet datasets only; fetch Kaggle datasets to a local directory".to_string(),
            )
            .into());
        }
        return super::kaggle::execute(args, global, capture);
    }
    if args.max_rate == Some(0) {
        return Err(Error::Usage("--max-rate must be at least 1 byte per second".into()).into());
    }
    let jobs = args.jobs.unwrap_or(DEFAULT_JOBS);
    if jobs == 0 || jobs > 256 {
        return Err(Error::Usage("--jobs must be between 1 and 256".into()).into());
    }
    if !(args.stall_timeout > 0.0 && args.stall_timeout.is_finite()) || args.retries == 0 {
        return Err(Error::Usage("--stall-timeout must be > 0 and --retries >= 1".into()).into());
    }
    let shard = args
        .shard
        .as_deref()
        .map(|s| s.parse::<Shard>())
        .transpose()
        .map_err(|e| Error::Usage(format!("--shard: {e}")))?;
    let records = match &args.records {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| Error::Usage(format!("--records {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let selection = Selection::new(&args.include, &args.exclude, records.as_deref(), shard)?;
    let opts = DownloaderOptions {
        jobs,
        retry: RetryPolicy {
            max_attempts: args.retries,
            ..RetryPolicy::default()
        },
        retry_budget: 1000,
        stall_timeout: Duration::from_secs_f64(args.stall_timeout),
        split_min: args.split_min,
        max_rate: args.max_rate,
    };
    let store = match &target {
        Some(t) => Some((objstore::build_store(t).map_err(Error::from)?, t)),
        None => None,
    };
    let rt = crate::cli::runtime()?;
    rt.block_on(async {
        let mut r = resolve(&args.dataset, args.base_url.as_deref(), args.source, opts).await?;
        // Where the version goes: a directory, or in a store its key prefix.
        let version_dir = args.out.join(&r.slug).join(&r.version);
        let in_store = store
            .as_ref()
            .map(|(store, t)| (store.as_ref(), t.join(&format!("{}/{}", r.slug, r.version))));
        let dest = match &in_store {
            Some((_, prefix)) => prefix.display_url(),
            None => version_dir.display().to_string(),
        };
        // `--where`: the records selected by their headers (issue 15).
        let selection = match &args.where_ {
            Some(expr) if in_store.is_none() => {
                let names = super::plan::where_records(
                    expr,
                    records.as_deref(),
                    &args.dataset,
                    args.base_url.as_deref(),
                    args.source,
                    &args.out,
                    global.quiet || args.json,
                )
                .await?;
                Selection::new(&args.include, &args.exclude, Some(&names), shard)?
            }
            Some(_) => {
                return Err(Error::Usage("--where needs a local --out directory".into()).into());
            }
            None => selection,
        };
        let mut out = std::io::stdout().lock();
        if !r.manifest.has_checksums && !global.quiet {
            let _ = writeln!(
                std::io::stderr(),
                "warning: {}@{} publishes no SHA256SUMS.txt; checksums unavailable, files are verified by size only",
                r.slug,
                r.version
            );
        }
        let entries = selection.apply(&r.manifest.entries);
        if args.dry_run {
            r.source
                .fill_sizes(&r.downloader, &r.slug, &r.version, &mut r.manifest)
                .await?;
            let mut entries = selection.apply(&r.manifest.entries);
            // Files the state cache (or, in a store, the objects' recorded digests)
            // already vouch for would not be transferred.
            let present = match &in_store {
                Some((store, prefix)) => objstore::already_in_store(*store, prefix, &entries, jobs)
                    .await
                    .map_err(Error::from)?,
                None => crate::fetch::already_verified(&version_dir, &entries),
            };
            entries.retain(|e| !present.contains(&e.path));
            let total: u64 = entries.iter().filter_map(|e| e.size).sum();
            let unknown = entries.iter().filter(|e| e.size.is_none()).count();
            if args.json || capture.is_some() {
                let files: Vec<_> = entries
                    .iter()
                    .map(|e| json!({"path": e.path, "size": e.size, "sha256": e.sha256.map(hex::encode)}))
                    .collect();
                let doc = json!({
                    "dataset": r.slug, "version": r.version, "dry_run": true,
                    "checksums": r.manifest.has_checksums,
                    "files": files, "total_files": entries.len(), "total_bytes": total,
                    "unknown_sizes": unknown, "already_verified": present.len(),
                });
                match capture {
                    Some(slot) => *slot = doc,
                    None => writeln!(out, "{doc}")?,
                }
            } else {
                for e in &entries {
                    let size = e.size.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
                    writeln!(out, "{size:>12}  {}", e.path)?;
                }
                writeln!(
                    out,
                    "{} files, {} bytes{} would be fetched into {} ({} already verified)",
                    entries.len(),
                    total,
                    if unknown > 0 { format!(" (+{unknown} of unknown size)") } else { String::new() },
                    dest,
                    present.len()
                )?;
            }
            return Ok(0);
        }
        // In a store, files are staged (and verified) one by one in a private temporary
        // directory before upload; it is removed when the run ends.
        let staging = match &in_store {
            Some(_) => Some(tempfile::Builder::new().prefix("physio-fetch-").tempdir()?),
            None => None,
        };
        let plan = FetchPlan {
            dir: match &staging {
                Some(s) => s.path().to_path_buf(),
                None => version_dir,
            },
            base: r.source.version_url(&r.slug, &r.version),
            entries,
            upstream: r.manifest.entries.iter().map(|e| e.path.clone()).collect(),
            sums_text: r.manifest.sums_text.clone(),
        };
        let fopts = FetchOptions {
            delete: args.delete,
            shard_tag: shard.map(|s| format!("{}-of-{}", s.index, s.count)),
        };
        let reporter = ProgressReporter::new(global.quiet || args.json);
        let report = match &in_store {
            Some((store, prefix)) => {
                let upload = UploadOptions {
                    pause_before_complete: objstore::pause_from_env(),
                    ..UploadOptions::default()
                };
                objstore::fetch_to_store(
                    *store, prefix, &plan, &r.downloader, &fopts, &upload, &reporter,
                )
                .await
                .with_context(|| format!("fetching {}@{} into {dest}", r.slug, r.version))?
            }
            None => crate::fetch::fetch(&plan, &r.downloader, &fopts, &reporter)
                .await
                .with_context(|| format!("fetching {}@{}", r.slug, r.version))?,
        };
        let mut err = std::io::stderr().lock();
        for (path, e) in &report.failed {
            writeln!(err, "error: {path}: {e}")?;
        }
        if !report.removed_upstream.is_empty() && !global.quiet {
            let verb = if args.delete { "deleted" } else { "kept (use --delete to remove)" };
            for p in &report.removed_upstream {
                writeln!(err, "note: {p}: no longer upstream; {verb}")?;
            }
        }
        let code = report.exit_code();
        if args.json || capture.is_some() {
            let errors: Vec<_> = report
                .failed
                .iter()
                .map(|(p, e)| json!({"path": p, "error": e.to_string(), "exit_code": e.exit_code()}))
                .collect();
            let doc = json!({
                "dataset": r.slug, "version": r.version,
                "dir": dest,
                "checksums": r.manifest.has_checksums,
                "total_files": plan.entries.len(),
                "fetched": report.done.len(), "skipped": report.skipped.len(),
                "failed": report.failed.len(), "bytes": report.bytes,
                "seconds": report.seconds,
                "removed_upstream": report.removed_upstream, "deleted": report.deleted,
                "errors": errors, "exit_code": code,
            });
            match capture {
                Some(slot) => *slot = doc,
                None => writeln!(out, "{doc}")?,
            }
        } else if !global.quiet {
            writeln!(
                err,
                "{}@{}: {} fetched ({} bytes in {:.1} s), {} already verified, {} failed -> {}",
                r.slug,
                r.version,
                report.done.len(),
                report.bytes,
                report.seconds,
                report.skipped.len(),
                report.failed.len(),
                dest
            )?;
        }
        Ok(code)
    })
}
