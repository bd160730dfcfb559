//! `physio verify DIR`: re-hash every file DIR's SHA256SUMS.txt lists, name each
//! missing or mismatched file on stderr, refresh the verified-state cache, and exit 4 on
//! any mismatch (1 when files are only missing). DIR may also be a fetch output root
//! (`./physionet`) or a dataset directory: every `<slug>/<version>` below it that holds
//! a SHA256SUMS.txt is verified. DIR may also be an object-store version prefix
//! (`s3://bucket/prefix/<slug>/<version>`), whose objects are re-read and hashed. The
//! work is [`crate::ops::verify()`]; this file prints its report.

use std::io::Write;

use serde_json::json;

use crate::cli::args::{GlobalArgs, VerifyArgs};
use crate::fetch::verify::VerifyReport;

/// Runs `physio verify`.
pub fn run(args: &VerifyArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let v = crate::cli::runtime()?.block_on(crate::ops::verify(&args.dir, jobs))?;
    print_report(args, global, &v.versions, &v.report, v.seconds)
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
