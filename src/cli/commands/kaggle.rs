//! `physio fetch kaggle:<owner>/<dataset>[@<version>]` and `physio ls kaggle:...`: turn
//! the arguments into [`crate::source::kaggle::KaggleFetchOptions`] (or a listing), run
//! the library and print its summary (one line, or one JSON object with `--json`).

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;

use crate::auth::kaggle::find_credentials;
use crate::cli::args::{FetchArgs, GlobalArgs, LsArgs, SourceArg};
use crate::cli::reporter::ProgressReporter;
use crate::env::EnvVars;
use crate::error::{EXIT_OK, EXIT_PARTIAL};
use crate::extract::{DEFAULT_MAX_RATIO, ExtractLimits};
use crate::fetch::DownloaderOptions;
use crate::fetch::retry::RetryPolicy;
use crate::source::kaggle::{self, DEFAULT_API_BASE, FetchMode, KaggleFetchOptions, KaggleRef};

/// True when `dataset` names a Kaggle dataset.
pub fn is_kaggle(dataset: &str) -> bool {
    dataset.starts_with(kaggle::SPEC_PREFIX)
}

/// Runs `physio fetch` for a `kaggle:` dataset; with `capture`, the JSON summary is
/// stored there instead of printed (for `physio sync`).
pub(crate) fn execute(
    args: &FetchArgs,
    global: &GlobalArgs,
    capture: Option<&mut serde_json::Value>,
) -> anyhow::Result<u8> {
    let dataset = KaggleRef::parse(&args.dataset).map_err(crate::Error::from)?;
    // PhysioNet-only options: refuse them rather than silently ignore them.
    for (given, flag) in [
        (args.records.is_some(), "--records"),
        (args.shard.is_some(), "--shard"),
        (args.delete, "--delete"),
        (args.source == SourceArg::Aws, "--source"),
    ] {
        if given {
            return Err(crate::Error::Usage(format!(
                "{flag} is not supported for Kaggle datasets"
            ))
            .into());
        }
    }
    let credentials = find_credentials(&|k| std::env::var(k).ok())
        .map_err(|e| crate::Error::from(kaggle::KaggleError::from(e)))?;
    let api_base = api_base();
    let max_bytes = args.max_extract;
    let opts = KaggleFetchOptions {
        dataset,
        out: args.out.clone(),
        api_base,
        credentials,
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        limits: ExtractLimits {
            max_ratio: DEFAULT_MAX_RATIO,
            max_bytes,
        },
        dry_run: args.dry_run,
        downloader: DownloaderOptions {
            jobs: args
                .jobs
                .unwrap_or(super::fetch::DEFAULT_JOBS)
                .clamp(1, 256),
            search_connections: false,
            retry: RetryPolicy {
                max_attempts: args.retries.max(1),
                ..RetryPolicy::default()
            },
            retry_budget: 1000,
            stall_timeout: Duration::from_secs_f64(args.stall_timeout.max(0.1)),
            split_min: args.split_min,
            max_rate: args.max_rate,
        },
    };
    let reporter = ProgressReporter::new(global.quiet || args.json);
    let started = std::time::Instant::now();
    let report = super::super::runtime()?
        .block_on(kaggle::fetch(&opts, &reporter))
        .with_context(|| format!("fetching {}", args.dataset))?;
    let seconds = started.elapsed().as_secs_f64();
    let code = if report.failed.is_empty() {
        EXIT_OK
    } else {
        report.exit_code.max(EXIT_PARTIAL)
    };
    let mut err = std::io::stderr().lock();
    for (name, why) in &report.failed {
        writeln!(err, "error: {name}: {why}")?;
    }
    if args.json || capture.is_some() {
        // The keys of PhysioNet fetches' summary, plus Kaggle's `mode` and `total_bytes`.
        let errors: Vec<_> = report
            .failed
            .iter()
            .map(|(p, e)| serde_json::json!({"path": p, "error": e}))
            .collect();
        let doc = serde_json::json!({
            "dataset": report.dataset, "version": report.version,
            "dir": report.dir.display().to_string(), "checksums": true,
            "mode": report.mode, "files": report.files, "total_bytes": report.bytes,
            "fetched": report.fetched, "skipped": report.skipped,
            "failed": report.failed.len(), "bytes": report.downloaded,
            "seconds": seconds, "errors": errors, "exit_code": code,
        });
        match capture {
            Some(slot) => *slot = doc,
            None => writeln!(std::io::stdout().lock(), "{doc}")?,
        }
    } else if args.dry_run {
        // What would be fetched is the result of a dry run: stdout.
        writeln!(
            std::io::stdout().lock(),
            "{}@{}: would fetch {} files, {} bytes -> {}",
            report.dataset,
            report.version,
            report.files,
            report.bytes,
            report.dir.display()
        )?;
    } else if !global.quiet {
        let what = match report.mode {
            FetchMode::UpToDate => "up to date",
            FetchMode::Archive => "fetched (archive)",
            FetchMode::Files => "fetched (selected files)",
            FetchMode::DryRun => "dry run",
        };
        writeln!(
            err,
            "{}@{}: {what}: {} files, {} bytes -> {} ({} bytes downloaded in {seconds:.1} s)",
            report.dataset,
            report.version,
            report.files,
            report.bytes,
            report.dir.display(),
            report.downloaded
        )?;
    }
    Ok(code)
}

/// Runs `physio ls` for a `kaggle:` dataset: the files of the version with their sizes
/// (Kaggle publishes no SHA-256, so `sha256` is null and `checksums` false).
pub fn ls(args: &LsArgs, _global: &GlobalArgs) -> anyhow::Result<u8> {
    let dataset = KaggleRef::parse(&args.dataset).map_err(crate::Error::from)?;
    let credentials = find_credentials(&|k| std::env::var(k).ok())
        .map_err(|e| crate::Error::from(kaggle::KaggleError::from(e)))?;
    let (version, files) = super::super::runtime()?.block_on(kaggle::list(
        &api_base(),
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

/// `PHYSIO_KAGGLE_URL`, else Kaggle's public API base.
fn api_base() -> String {
    std::env::var(EnvVars::PHYSIO_KAGGLE_URL)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_API_BASE.to_string())
}
