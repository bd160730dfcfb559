//! `physio fetch`: turns [`FetchArgs`] into an [`ops::FetchRequest`], runs
//! [`ops::fetch()`] (or [`ops::fetch_plan`] for `--dry-run`) with a progress display, and
//! prints the typed report: text on stderr, or one JSON object on stdout with `--json`.

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::args::{FetchArgs, GlobalArgs};
use crate::cli::reporter::ProgressReporter;
use crate::error::Error;
use crate::ops::{self, DryRun, FetchOutcome, FetchRequest, Fetched, PlanOutcome};
use crate::shard::Shard;
use crate::source::kaggle::{FetchMode, KaggleReport};

/// Runs `physio fetch`.
pub fn run(args: &FetchArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    let req = request(args)?;
    let rt = crate::cli::runtime()?;
    let mut out = std::io::stdout().lock();
    if args.dry_run {
        match rt.block_on(ops::fetch_plan(&req))? {
            PlanOutcome::PhysioNet(plan) => {
                warn_no_checksums(plan.checksums, &plan.dataset, &plan.version, global);
                if args.json {
                    writeln!(out, "{}", dry_run_json(&plan))?;
                } else {
                    print_dry_run(&mut out, &plan)?;
                }
            }
            PlanOutcome::Kaggle(k) => {
                if args.json {
                    writeln!(out, "{}", kaggle_json(&k, 0.0))?;
                } else {
                    // What would be fetched is the result of a dry run: stdout.
                    writeln!(
                        out,
                        "{}@{}: would fetch {} files, {} bytes -> {}",
                        k.dataset,
                        k.version,
                        k.files,
                        k.bytes,
                        k.dir.display()
                    )?;
                }
            }
        }
        return Ok(0);
    }
    let reporter = ProgressReporter::new(global.quiet || args.json);
    let started = std::time::Instant::now();
    let outcome = rt.block_on(ops::fetch(&req, &reporter));
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) if req.dataset.starts_with("kaggle:") => {
            return Err(anyhow::Error::new(e).context(format!("fetching {}", req.dataset)));
        }
        Err(e) => return Err(e.into()),
    };
    let mut err = std::io::stderr().lock();
    if let FetchOutcome::PhysioNet(f) = &outcome {
        warn_no_checksums(f.checksums, &f.dataset, &f.version, global);
        if let Some(w) = &f.selection {
            super::plan::print_plan_failures(&w.failed)?;
            if !(global.quiet || args.json) {
                writeln!(
                    err,
                    "--where selects {} of {} records",
                    w.selected, w.planned
                )?;
            }
        }
    }
    print_failures(&mut err, &outcome, args.delete, global.quiet)?;
    let code = outcome.exit_code();
    if args.json {
        writeln!(
            out,
            "{}",
            fetch_json(&outcome, started.elapsed().as_secs_f64())
        )?;
    } else if !global.quiet {
        writeln!(
            err,
            "{}",
            summary_line(&outcome, started.elapsed().as_secs_f64())
        )?;
    }
    Ok(code)
}

/// The library request for `args` (usage errors exit 2).
pub(crate) fn request(args: &FetchArgs) -> Result<FetchRequest, Error> {
    let mut req = FetchRequest::new(&args.dataset, &args.out);
    req.include = args.include.clone();
    req.exclude = args.exclude.clone();
    req.records = match &args.records {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| Error::Usage(format!("--records {}: {e}", p.display())))?
                .lines()
                .map(str::to_string)
                .collect(),
        ),
        None => None,
    };
    req.shard = args
        .shard
        .as_deref()
        .map(|s| s.parse::<Shard>())
        .transpose()
        .map_err(|e| Error::Usage(format!("--shard: {e}")))?;
    req.jobs = args.jobs;
    req.base_url = args.base_url.clone();
    req.source = args.source.into();
    req.filter = super::plan::parse_where(args.where_.as_deref())?;
    req.retries = args.retries;
    req.stall_timeout = if args.stall_timeout > 0.0 && args.stall_timeout.is_finite() {
        Duration::from_secs_f64(args.stall_timeout.min(1e9))
    } else if ops::fetch::is_kaggle(&args.dataset) {
        // Kaggle fetches always took the smallest sensible timeout instead.
        Duration::from_millis(100)
    } else {
        return Err(Error::Usage(
            "--stall-timeout must be > 0 and --retries >= 1".into(),
        ));
    };
    req.split_min = args.split_min;
    req.max_rate = args.max_rate;
    req.max_extract = args.max_extract;
    req.delete = args.delete;
    Ok(req)
}

fn warn_no_checksums(checksums: bool, slug: &str, version: &str, global: &GlobalArgs) {
    if !checksums && !global.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "warning: {slug}@{version} publishes no SHA256SUMS.txt; checksums unavailable, files are verified by size only",
        );
    }
}

/// Names every failed file on stderr, and files removed upstream.
pub(crate) fn print_failures(
    err: &mut impl Write,
    outcome: &FetchOutcome,
    delete: bool,
    quiet: bool,
) -> std::io::Result<()> {
    match outcome {
        FetchOutcome::PhysioNet(f) => {
            for (path, e) in &f.report.failed {
                writeln!(err, "error: {path}: {e}")?;
            }
            let full = f.report.disk_full();
            if !full.is_empty() {
                writeln!(
                    err,
                    "error: the disk is full (no space left on device): {} file(s) did not complete: {}; \
                     free space and run again (verified files are kept, partial downloads resume)",
                    full.len(),
                    full.join(", ")
                )?;
            }
            if let Some(e) = &f.report.state_error {
                writeln!(
                    err,
                    "warning: physio's verified-state cache was not saved ({e}); the next run re-hashes the files instead"
                )?;
            }
            if !f.report.removed_upstream.is_empty() && !quiet {
                let verb = if delete {
                    "deleted"
                } else {
                    "kept (use --delete to remove)"
                };
                for p in &f.report.removed_upstream {
                    writeln!(err, "note: {p}: no longer upstream; {verb}")?;
                }
            }
        }
        FetchOutcome::Kaggle(k) => {
            for (name, why) in &k.failed {
                writeln!(err, "error: {name}: {why}")?;
            }
        }
    }
    Ok(())
}

/// The `--json` document of a fetch (also each dataset's `fetch` entry in the sync
/// report): these keys are part of the user contract.
pub(crate) fn fetch_json(outcome: &FetchOutcome, seconds: f64) -> Value {
    match outcome {
        FetchOutcome::PhysioNet(f) => physionet_json(f),
        FetchOutcome::Kaggle(k) => kaggle_json(k, seconds),
    }
}

fn physionet_json(f: &Fetched) -> Value {
    let r = &f.report;
    let errors: Vec<_> = r
        .failed
        .iter()
        .map(|(p, e)| json!({"path": p, "error": e.to_string(), "exit_code": e.exit_code()}))
        .collect();
    json!({
        "dataset": f.dataset, "version": f.version,
        "dir": f.dest,
        "checksums": f.checksums,
        "total_files": f.total_files,
        "fetched": r.done.len(), "skipped": r.skipped.len(),
        "failed": r.failed.len(), "bytes": r.bytes,
        "seconds": r.seconds,
        "sources": {
            "aws": {"files": r.mirror_files, "bytes": r.mirror_bytes},
            "physionet": {
                "files": r.done.len().saturating_sub(r.mirror_files),
                "bytes": r.bytes.saturating_sub(r.mirror_bytes),
            },
        },
        "connections": r.connections,
        "connection_rate": r.connection_rate.round(),
        "removed_upstream": r.removed_upstream, "deleted": r.deleted,
        "errors": errors, "exit_code": r.exit_code(),
    })
}

/// The keys of PhysioNet fetches' summary, plus Kaggle's `mode` and `total_bytes`.
fn kaggle_json(k: &KaggleReport, seconds: f64) -> Value {
    let errors: Vec<_> = k
        .failed
        .iter()
        .map(|(p, e)| json!({"path": p, "error": e}))
        .collect();
    let code = FetchOutcome::kaggle_exit_code(k);
    json!({
        "dataset": k.dataset, "version": k.version,
        "dir": k.dir.display().to_string(), "checksums": true,
        "mode": k.mode, "files": k.files, "total_bytes": k.bytes,
        "fetched": k.fetched, "skipped": k.skipped,
        "failed": k.failed.len(), "bytes": k.downloaded,
        "seconds": seconds, "errors": errors, "exit_code": code,
    })
}

fn dry_run_json(plan: &DryRun) -> Value {
    let files: Vec<_> = plan
        .files
        .iter()
        .map(|e| json!({"path": e.path, "size": e.size, "sha256": e.sha256.map(hex::encode)}))
        .collect();
    json!({
        "dataset": plan.dataset, "version": plan.version, "dry_run": true,
        "checksums": plan.checksums,
        "files": files, "total_files": plan.files.len(), "total_bytes": plan.total_bytes,
        "unknown_sizes": plan.unknown_sizes, "already_verified": plan.already_verified,
    })
}

fn print_dry_run(out: &mut impl Write, plan: &DryRun) -> std::io::Result<()> {
    for e in &plan.files {
        let size = e.size.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
        writeln!(out, "{size:>12}  {}", e.path)?;
    }
    writeln!(
        out,
        "{} files, {} bytes{} would be fetched into {} ({} already verified)",
        plan.files.len(),
        plan.total_bytes,
        if plan.unknown_sizes > 0 {
            format!(" (+{} of unknown size)", plan.unknown_sizes)
        } else {
            String::new()
        },
        plan.dest,
        plan.already_verified
    )
}

/// The one-line human summary on stderr.
fn summary_line(outcome: &FetchOutcome, seconds: f64) -> String {
    match outcome {
        FetchOutcome::PhysioNet(f) => {
            let r = &f.report;
            let mut line = String::new();
            if r.mirror_files > 0 {
                line = format!(
                    "{} files ({} bytes) from the AWS open-data mirror, {} from physionet.org; all verified against physionet.org's SHA256SUMS.txt\n",
                    r.mirror_files,
                    r.mirror_bytes,
                    r.done.len().saturating_sub(r.mirror_files),
                );
            }
            line.push_str(&format!(
                "{}@{}: {} fetched ({} bytes in {:.1} s, {} connections{}), {} already verified, {} failed -> {}",
                f.dataset,
                f.version,
                r.done.len(),
                r.bytes,
                r.seconds,
                r.connections,
                if r.connection_rate > 0.0 {
                    format!(" at {:.0} KB/s each", r.connection_rate / 1000.0)
                } else {
                    String::new()
                },
                r.skipped.len(),
                r.failed.len(),
                f.dest
            ));
            line
        }
        FetchOutcome::Kaggle(k) => {
            let what = match k.mode {
                FetchMode::UpToDate => "up to date",
                FetchMode::Archive => "fetched (archive)",
                FetchMode::Files => "fetched (selected files)",
                FetchMode::DryRun => "dry run",
            };
            format!(
                "{}@{}: {what}: {} files, {} bytes -> {} ({} bytes downloaded in {seconds:.1} s)",
                k.dataset,
                k.version,
                k.files,
                k.bytes,
                k.dir.display(),
                k.downloaded
            )
        }
    }
}
