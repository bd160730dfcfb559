//! `physio ls <dataset> --records [--where EXPR] [--json|--csv]`: one line per record
//! from its headers alone (issue 15), listed by [`crate::ops::ls_records`]; and the
//! `--where` parsing that `ls`, `fetch` and `convert` share. Headers are cached in the
//! mirror (`--mirror`), verified like any fetched file.

use std::io::Write;

use serde_json::json;

use crate::catalog::{Filter, RecordInfo};
use crate::cli::args::{GlobalArgs, LsArgs};
use crate::cli::reporter::ProgressReporter;
use crate::error::{EXIT_OK, EXIT_PARTIAL, Error};
use crate::ops::{self, FetchRequest};

/// Parses a `--where` expression (a usage error, exit 2, when malformed).
pub(crate) fn parse_where(expr: Option<&str>) -> Result<Option<Filter>, Error> {
    expr.map(|e| Filter::parse(e).map_err(|e| Error::Usage(e.to_string())))
        .transpose()
}

/// Names every header file and record that could not be planned on stderr.
pub(crate) fn print_plan_failures(failures: &[(String, String)]) -> std::io::Result<()> {
    let mut err = std::io::stderr().lock();
    for (what, e) in failures {
        writeln!(err, "error: {what}: {e}")?;
    }
    Ok(())
}

/// Runs `physio ls --records`.
pub fn ls_records(args: &LsArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    let mut req = FetchRequest::new(&args.dataset, &args.mirror);
    req.filter = parse_where(args.where_.as_deref())?;
    req.base_url = args.base_url.clone();
    req.source = args.source.into();
    let reporter = ProgressReporter::new(global.quiet || args.json || args.csv);
    let listing = crate::cli::runtime()?.block_on(ops::ls_records(&req, &reporter))?;
    let catalog = &listing.catalog;
    let failures = catalog.failures();
    print_plan_failures(&failures)?;
    let records = listing.selected();
    let dir = &listing.dir;
    let mut out = std::io::stdout().lock();
    if args.json {
        let list: Vec<_> = records.iter().map(|r| record_json(r)).collect();
        let doc = json!({
            "dataset": listing.dataset, "version": listing.version,
            "where": listing.filter.as_ref().map(|f| f.text()),
            "records": list, "total_records": records.len(),
            "planned_records": catalog.records.len(),
            "header_bytes_fetched": catalog.bytes,
            "header_files_fetched": catalog.fetched,
            "mirror": dir.display().to_string(),
        });
        writeln!(out, "{doc}")?;
    } else if args.csv {
        let mut w = csv::Writer::from_writer(&mut out);
        w.write_record([
            "record",
            "fs",
            "n_sig",
            "sig_len",
            "duration",
            "base_date",
            "base_time",
            "sig_name",
            "units",
            "size",
            "files",
        ])?;
        for r in &records {
            w.write_record([
                r.name.clone(),
                r.fs.to_string(),
                r.sig_name.len().to_string(),
                opt(r.sig_len),
                opt(r.duration()),
                r.base_date.clone().unwrap_or_default(),
                r.base_time.clone().unwrap_or_default(),
                r.sig_name.join(";"),
                r.units.join(";"),
                opt(r.size().map(|s| s as u64)),
                r.all_files().collect::<Vec<_>>().join(";"),
            ])?;
        }
        w.flush()?;
    } else {
        for r in &records {
            let start = match (&r.base_date, &r.base_time) {
                (Some(d), Some(t)) => format!("{d}T{t}"),
                (None, Some(t)) => t.clone(),
                (Some(d), None) => d.clone(),
                (None, None) => "-".to_string(),
            };
            writeln!(
                out,
                "{:<28} {:>7} Hz {:>9} frames {:>10} s  start {:<19} {:>10} B  {}",
                r.name,
                r.fs,
                opt(r.sig_len),
                r.duration()
                    .map(|d| format!("{d:.3}"))
                    .unwrap_or_else(|| "?".into()),
                start,
                opt(r.size().map(|s| s as u64)),
                r.sig_name
                    .iter()
                    .zip(&r.units)
                    .map(|(n, u)| format!("{n}[{u}]"))
                    .collect::<Vec<_>>()
                    .join(",")
            )?;
        }
        writeln!(
            out,
            "{} of {} records ({}@{}); {} header bytes fetched into {}",
            records.len(),
            catalog.records.len(),
            listing.dataset,
            listing.version,
            catalog.bytes,
            dir.display()
        )?;
    }
    Ok(if failures.is_empty() {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    })
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// One record of `ls --records --json`.
fn record_json(r: &RecordInfo) -> serde_json::Value {
    let files = |v: &[(String, Option<u64>)]| {
        v.iter()
            .map(|(p, s)| json!({"path": p, "size": s}))
            .collect::<Vec<_>>()
    };
    json!({
        "record": r.name, "fs": r.fs, "n_sig": r.sig_name.len(), "sig_len": r.sig_len,
        "duration": r.duration(), "base_date": r.base_date, "base_time": r.base_time,
        "sig_name": r.sig_name, "units": r.units, "comments": r.comments,
        "segments": r.segments, "size": r.size().map(|s| s as u64),
        "headers": files(&r.headers), "files": files(&r.files),
    })
}
