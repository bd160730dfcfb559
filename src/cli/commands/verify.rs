//! `physio verify DIR`: re-hash every file DIR's SHA256SUMS.txt lists, name each
//! missing or mismatched file on stderr, refresh the verified-state cache, and exit 4 on
//! any mismatch (1 when files are only missing). DIR may also be a fetch output root
//! (`./physionet`) or a dataset directory: every `<slug>/<version>` below it that holds
//! a SHA256SUMS.txt is verified. DIR may also be an object-store version prefix
//! (`s3://bucket/prefix/<slug>/<version>`), whose objects are re-read and hashed.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::cli::args::{GlobalArgs, VerifyArgs};
use crate::error::Error;
use crate::fetch::verify::{VerifyReport, verify_dir};
use crate::objstore::{self, ObjectUrl};

/// The directories to verify: `dir` itself when it holds SHA256SUMS.txt, else those one
/// or two levels below it (`<version>` or `<slug>/<version>`) that do, and Kaggle
/// copies (`kaggle/<owner>/<dataset>/<version>`).
fn version_dirs(dir: &Path) -> Vec<PathBuf> {
    if dir.join("SHA256SUMS.txt").is_file() {
        return vec![dir.to_path_buf()];
    }
    let subdirs = |d: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| !e.file_name().to_string_lossy().starts_with(".physio"))
            .map(|e| e.path())
            .collect();
        v.sort();
        v
    };
    let mut out = Vec::new();
    for a in subdirs(dir) {
        if a.join("SHA256SUMS.txt").is_file() {
            out.push(a);
            continue;
        }
        if a.file_name().is_some_and(|n| n == "kaggle") {
            // Kaggle copies sit two levels deeper: kaggle/<owner>/<dataset>/<version>.
            for ds in subdirs(&a).iter().flat_map(|owner| subdirs(owner)) {
                out.extend(
                    subdirs(&ds)
                        .into_iter()
                        .filter(|v| v.join("SHA256SUMS.txt").is_file()),
                );
            }
        }
        out.extend(
            subdirs(&a)
                .into_iter()
                .filter(|b| b.join("SHA256SUMS.txt").is_file()),
        );
    }
    out
}

/// Runs `physio verify`.
pub fn run(args: &VerifyArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let dir_text = args.dir.to_string_lossy();
    if let Some(target) = ObjectUrl::parse(&dir_text).map_err(Error::from)? {
        return run_store(args, global, &target.into_prefix(), jobs);
    }
    let dirs = version_dirs(&args.dir);
    if dirs.is_empty() {
        return Err(Error::io(
            args.dir.join("SHA256SUMS.txt"),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no SHA256SUMS.txt here or in the <slug>/<version> directories below",
            ),
        )
        .into());
    }
    let started = std::time::Instant::now();
    let mut total = VerifyReport::default();
    for d in &dirs {
        // Name files relative to DIR so several versions stay distinguishable.
        let prefix = d
            .strip_prefix(&args.dir)
            .ok()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| format!("{}/", p.display()))
            .unwrap_or_default();
        let r = verify_dir(d, jobs)?;
        total
            .ok
            .extend(r.ok.into_iter().map(|p| format!("{prefix}{p}")));
        total
            .missing
            .extend(r.missing.into_iter().map(|p| format!("{prefix}{p}")));
        total.mismatched.extend(
            r.mismatched
                .into_iter()
                .map(|(p, w)| (format!("{prefix}{p}"), w)),
        );
        total.unreadable.extend(
            r.unreadable
                .into_iter()
                .map(|(p, w)| (format!("{prefix}{p}"), w)),
        );
        total.bytes += r.bytes;
    }
    let versions: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    print_report(
        args,
        global,
        &versions,
        &total,
        started.elapsed().as_secs_f64(),
    )
}

/// `physio verify s3://bucket/prefix/<slug>/<version>` (or gs://, az://): re-reads every
/// object the stored SHA256SUMS.txt lists (docs/object-store.md).
fn run_store(
    args: &VerifyArgs,
    global: &GlobalArgs,
    target: &ObjectUrl,
    jobs: usize,
) -> anyhow::Result<u8> {
    let started = std::time::Instant::now();
    let store = objstore::build_store(target).map_err(Error::from)?;
    let rt = crate::cli::runtime()?;
    let report = rt.block_on(objstore::verify_store(store.as_ref(), target, jobs))?;
    let versions = [target.display_url()];
    print_report(
        args,
        global,
        &versions,
        &report,
        started.elapsed().as_secs_f64(),
    )
}

/// Names every failed file on stderr, then prints the summary (text on stderr, or one
/// JSON object on stdout with `--json`); returns the exit code.
fn print_report(
    args: &VerifyArgs,
    global: &GlobalArgs,
    versions: &[String],
    total: &VerifyReport,
    secs: f64,
) -> anyhow::Result<u8> {
    let mut err = std::io::stderr().lock();
    for (p, why) in &total.mismatched {
        writeln!(err, "error: {p}: {why}")?;
    }
    for p in &total.missing {
        writeln!(err, "error: {p}: missing")?;
    }
    for (p, why) in &total.unreadable {
        writeln!(err, "error: {p}: {why}")?;
    }
    let code = total.exit_code();
    if args.json {
        let doc = json!({
            "dir": args.dir.display().to_string(),
            "versions": versions,
            "ok": total.ok.len(), "missing": total.missing,
            "mismatched": total.mismatched.iter().map(|(p, w)| json!({"path": p, "error": w})).collect::<Vec<_>>(),
            "unreadable": total.unreadable.iter().map(|(p, w)| json!({"path": p, "error": w})).collect::<Vec<_>>(),
            "bytes": total.bytes, "seconds": secs, "exit_code": code,
        });
        writeln!(std::io::stdout().lock(), "{doc}")?;
    } else if !global.quiet {
        writeln!(
            err,
            "{}: {} verified ({} bytes in {secs:.1} s), {} missing, {} mismatched",
            args.dir.display(),
            total.ok.len(),
            total.bytes,
            total.missing.len(),
            total.mismatched.len()
        )?;
    }
    Ok(code)
}
