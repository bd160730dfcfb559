//! `physio verify DIR`: re-hash every file DIR's SHA256SUMS.txt lists, name each
//! missing or mismatched file on stderr, refresh the verified-state cache, and exit 4 on
//! any mismatch (1 when files are only missing).

use std::io::Write;

use serde_json::json;

use crate::cli::args::{GlobalArgs, VerifyArgs};
use crate::fetch::verify::verify_dir;

/// Runs `physio verify`.
pub fn run(args: &VerifyArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let started = std::time::Instant::now();
    let report = verify_dir(&args.dir, jobs)?;
    let secs = started.elapsed().as_secs_f64();
    let mut err = std::io::stderr().lock();
    for (p, why) in &report.mismatched {
        writeln!(err, "error: {p}: {why}")?;
    }
    for p in &report.missing {
        writeln!(err, "error: {p}: missing")?;
    }
    for (p, why) in &report.unreadable {
        writeln!(err, "error: {p}: {why}")?;
    }
    let code = report.exit_code();
    if args.json {
        let doc = json!({
            "dir": args.dir.display().to_string(),
            "ok": report.ok.len(), "missing": report.missing,
            "mismatched": report.mismatched.iter().map(|(p, w)| json!({"path": p, "error": w})).collect::<Vec<_>>(),
            "unreadable": report.unreadable.iter().map(|(p, w)| json!({"path": p, "error": w})).collect::<Vec<_>>(),
            "bytes": report.bytes, "seconds": secs, "exit_code": code,
        });
        writeln!(std::io::stdout().lock(), "{doc}")?;
    } else if !global.quiet {
        writeln!(
            err,
            "{}: {} verified ({} bytes in {secs:.1} s), {} missing, {} mismatched",
            args.dir.display(),
            report.ok.len(),
            report.bytes,
            report.missing.len(),
            report.mismatched.len()
        )?;
    }
    Ok(code)
}
