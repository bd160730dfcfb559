//! `physio ls <dataset> --records [--where EXPR] [--json|--csv]`: one line per record
//! from its headers alone (issue 15), and the `--where` record selection that `fetch`
//! shares. Headers are cached in the mirror (`--mirror`), verified like any fetched file.

use std::io::Write;

use serde_json::json;

use crate::catalog::{self, Catalog, CatalogOptions, Filter, RecordInfo, Remote, Resolved};
use crate::cli::args::{GlobalArgs, LsArgs, SourceArg};
use crate::cli::reporter::ProgressReporter;
use crate::error::{EXIT_OK, EXIT_PARTIAL, Error};
use crate::fetch::DownloaderOptions;
use crate::source::Layout;

/// Parses a `--where` expression (a usage error, exit 2, when malformed).
pub(crate) fn parse_where(expr: Option<&str>) -> Result<Option<Filter>, Error> {
    expr.map(|e| Filter::parse(e).map_err(|e| Error::Usage(e.to_string())))
        .transpose()
}

/// Names of the records of `catalog` that `filter` selects (records that could not be
/// planned are left out; the caller reports them).
pub(crate) fn selected<'a>(catalog: &'a Catalog, filter: Option<&Filter>) -> Vec<&'a RecordInfo> {
    catalog
        .records
        .iter()
        .filter(|r| r.error.is_none() && filter.is_none_or(|f| f.matches(r)))
        .collect()
}

/// Names every record and header file that could not be planned on stderr.
pub(crate) fn report_plan_failures(catalog: &Catalog) -> std::io::Result<bool> {
    let mut err = std::io::stderr().lock();
    for (path, e) in &catalog.failed {
        writeln!(err, "error: {path}: {e}")?;
    }
    let mut any = !catalog.failed.is_empty();
    for r in catalog.records.iter().filter(|r| r.error.is_some()) {
        any = true;
        writeln!(
            err,
            "error: record {}: {}",
            r.name,
            r.error.as_deref().unwrap_or_default()
        )?;
    }
    Ok(any)
}

/// Runs `physio ls --records`.
pub fn ls_records(args: &LsArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    let filter = parse_where(args.where_.as_deref())?;
    let rt = crate::cli::runtime()?;
    rt.block_on(async {
        let mut r = catalog::resolve(
            &args.dataset,
            args.base_url.as_deref(),
            layout(args.source),
            DownloaderOptions::default(),
        )
        .await?;
        r.source
            .fill_sizes(&r.downloader, &r.slug, &r.version, &mut r.manifest)
            .await?;
        let dir = catalog::version_dir(&args.mirror, &r.slug, &r.version);
        let base = r.source.version_url(&r.slug, &r.version);
        let remote = Remote {
            downloader: &r.downloader,
            base: &base,
            manifest: &r.manifest,
            dir: &dir,
        };
        let reporter = ProgressReporter::new(global.quiet || args.json || args.csv);
        let opts = CatalogOptions::default();
        let catalog = catalog::plan(&remote, &opts, &reporter).await?;
        let failed = report_plan_failures(&catalog)?;
        let records = selected(&catalog, filter.as_ref());
        let mut out = std::io::stdout().lock();
        if args.json {
            let list: Vec<_> = records.iter().map(|r| record_json(r)).collect();
            let doc = json!({
                "dataset": r.slug, "version": r.version,
                "where": filter.as_ref().map(|f| f.text()),
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
                r.slug,
                r.version,
                catalog.bytes,
                dir.display()
            )?;
        }
        Ok(if failed { EXIT_PARTIAL } else { EXIT_OK })
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

/// The server layout `--source` names (any choice but `aws` plans from physionet.org's
/// layout).
pub(crate) fn layout(source: SourceArg) -> Layout {
    match source {
        SourceArg::Aws => Layout::Aws,
        _ => Layout::PhysioNet,
    }
}

/// `fetch --where EXPR`: resolves `dataset`, plans its records from their headers
/// (fetched into `out/<slug>/<version>`, the directory the fetch fills) and returns the
/// names of those the filter selects, one per line, as a `--records` file gives them
/// (intersected with `records`, the text of a `--records` file, when both are given).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn where_records(
    expr: &str,
    records: Option<&str>,
    dataset: &str,
    base_url: Option<&str>,
    source: SourceArg,
    out: &std::path::Path,
    quiet: bool,
) -> anyhow::Result<String> {
    let filter = parse_where(Some(expr))?;
    let r: Resolved = catalog::resolve(
        dataset,
        base_url,
        layout(source),
        DownloaderOptions::default(),
    )
    .await?;
    let r = &r;
    let dir = catalog::version_dir(out, &r.slug, &r.version);
    let dir = dir.as_path();
    let base = r.base();
    let remote = Remote {
        downloader: &r.downloader,
        base: &base,
        manifest: &r.manifest,
        dir,
    };
    let reporter = ProgressReporter::new(quiet);
    let catalog = catalog::plan(&remote, &CatalogOptions::default(), &reporter).await?;
    report_plan_failures(&catalog)?;
    let listed: Option<std::collections::HashSet<&str>> = records.map(|t| {
        t.lines()
            .map(|l| l.trim().trim_end_matches(".hea"))
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    });
    let names: Vec<&str> = selected(&catalog, filter.as_ref())
        .into_iter()
        .map(|r| r.name.as_str())
        .filter(|n| listed.as_ref().is_none_or(|l| l.contains(n)))
        .collect();
    if !quiet {
        let _ = writeln!(
            std::io::stderr(),
            "--where selects {} of {} records",
            names.len(),
            catalog.records.len()
        );
    }
    // An empty list selects no file (not every file): `Selection` treats a given
    // records list as the whole allow-list.
    Ok(names.join("\n"))
}
