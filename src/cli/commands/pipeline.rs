//! `physio convert <dataset>[@version] --to parquet --out OUT [--mirror DIR]
//! [--no-keep-raw] [--where EXPR]`: runs [`crate::ops::convert_dataset`] with two
//! progress bars (files fetched, rows written) and prints the summary as `convert`
//! does (issue 15).

use std::io::{IsTerminal, Write};
use std::path::Path;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::args::{ConvertArgs, GlobalArgs};
use crate::error::{EXIT_AUTH, EXIT_INTEGRITY, EXIT_OK, EXIT_PARTIAL, Error};
use crate::fetch::Outcome;
use crate::ops::{self, DatasetOutcome, DatasetRequest, FetchOutcome, FetchRequest};
use crate::pipeline::PipelineReport;
use crate::source::DatasetSpec;

/// True when `input` names a dataset (`ptb-xl`, `mitdb@1.0.0`, `kaggle:o/d`) rather
/// than a local path: neither it nor a record header `<input>.hea` exists on disk,
/// and it parses as a dataset spec.
pub fn is_dataset_input(input: &Path) -> bool {
    let Some(text) = input.to_str() else {
        return false;
    };
    let local = input.exists() || Path::new(&format!("{text}.hea")).exists();
    !local
        && (text.starts_with("kaggle:") || !text.contains('/'))
        && DatasetSpec::parse(text).is_ok()
}

/// Two bars: files fetched and rows written.
struct Display {
    files: ProgressBar,
    rows: ProgressBar,
}

impl Display {
    fn new(hidden: bool) -> Display {
        let multi = MultiProgress::with_draw_target(if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        });
        let files = multi.add(ProgressBar::new(0));
        let rows = multi.add(ProgressBar::new(0));
        if let Ok(s) = ProgressStyle::with_template("fetch   {bar:40} {pos}/{len} files  {msg}") {
            files.set_style(s);
        }
        if let Ok(s) = ProgressStyle::with_template("convert {bar:40} {pos}/{len} rows  eta {eta}")
        {
            rows.set_style(s);
        }
        Display { files, rows }
    }
}

impl crate::fetch::Reporter for Display {
    fn on_plan(&self, files: usize, _bytes: Option<u64>) {
        self.files.inc_length(files as u64);
    }
    fn on_file_done(&self, _path: &str, _outcome: Outcome) {
        self.files.inc(1);
    }
}

impl crate::convert::Reporter for Display {
    fn on_plan(&self, _records: usize, rows: u64) {
        self.rows.set_length(rows);
    }
    fn on_rows_written(&self, rows: u64) {
        self.rows.inc(rows);
    }
}

/// Runs `physio convert <dataset>`: builds the [`DatasetRequest`], runs
/// [`ops::convert_dataset`] with the two bars, and prints the report.
pub fn run(args: &ConvertArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    let mut fetch = FetchRequest::new(args.input.to_string_lossy(), &args.mirror);
    fetch.base_url = args.base_url.clone();
    fetch.source = args.source.into();
    fetch.jobs = args.fetch_jobs;
    fetch.filter = super::plan::parse_where(args.where_.as_deref())?;
    let req = DatasetRequest {
        fetch,
        convert: super::convert::options(args).map_err(Error::Convert)?,
        keep_raw: !args.no_keep_raw,
        ahead: args.ahead,
    };
    let rt = crate::cli::runtime()?;
    let hidden = global.quiet || args.json || !std::io::stderr().is_terminal();
    let display = Display::new(hidden);
    let outcome = ops::convert_dataset(&req, rt.handle(), &display, &display)?;
    display.files.finish_and_clear();
    display.rows.finish_and_clear();
    match outcome {
        DatasetOutcome::PhysioNet {
            dataset,
            version,
            mirror,
            report,
        } => print_report(args, global, &dataset, &version, &mirror, &report),
        DatasetOutcome::Kaggle {
            fetched,
            converted: None,
        } => {
            let mut err = std::io::stderr().lock();
            for (path, e) in &fetched.failed {
                writeln!(err, "error: {path}: {e}")?;
            }
            Ok(FetchOutcome::kaggle_exit_code(&fetched))
        }
        DatasetOutcome::Kaggle {
            converted: Some(c), ..
        } => super::convert::render(args, global, &c),
    }
}

fn print_report(
    args: &ConvertArgs,
    global: &GlobalArgs,
    slug: &str,
    version: &str,
    dir: &Path,
    report: &PipelineReport,
) -> anyhow::Result<u8> {
    let mut err = std::io::stderr().lock();
    for (path, e) in &report.failed_files {
        writeln!(err, "error: {path}: {e}")?;
    }
    for (name, e) in &report.failed_plans {
        writeln!(err, "error: skipped {name}: {e}")?;
    }
    let c = &report.convert;
    for (name, e) in &c.failed {
        writeln!(err, "error: skipped {name}: {e}")?;
    }
    let failed =
        !(report.failed_files.is_empty() && report.failed_plans.is_empty() && c.failed.is_empty());
    // A refused download (3) or an integrity failure (4) keeps its contract code; any
    // other failed record is 1.
    let codes: Vec<u8> = report
        .failed_files
        .iter()
        .map(|(_, e)| e.exit_code())
        .collect();
    let code = if codes.contains(&EXIT_AUTH) {
        EXIT_AUTH
    } else if codes.contains(&EXIT_INTEGRITY) {
        EXIT_INTEGRITY
    } else if failed {
        EXIT_PARTIAL
    } else {
        EXIT_OK
    };
    if args.json {
        let doc = serde_json::json!({
            "dataset": slug, "version": version, "mirror": dir.display().to_string(),
            "records_planned": report.planned, "records_selected": report.selected,
            "records_written": c.records_written, "records_converted": c.converted.len(),
            "records_reused": c.records_reused, "row_groups_copied": c.row_groups_copied,
            "rows": c.rows,
            "files": c.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "fetched_files": report.fetched_files, "skipped_files": report.skipped_files,
            "fetched_bytes": report.fetched_bytes,
            "peak_raw_bytes": report.peak_raw_bytes, "deleted_raw_files": report.deleted_files,
            "keep_raw": !args.no_keep_raw,
            "failed": c.failed.iter().map(|(n, e)| serde_json::json!({
                "record": n, "error": e.to_string() }))
                .chain(report.failed_plans.iter().map(|(n, e)| serde_json::json!({
                "record": n, "error": e })))
                .chain(report.failed_files.iter().map(|(p, e)| serde_json::json!({
                "path": p, "error": e.to_string() })))
                .collect::<Vec<_>>(),
            "exit_code": code,
        });
        writeln!(std::io::stdout().lock(), "{doc}")?;
    } else if !global.quiet {
        writeln!(
            err,
            "{slug}@{version}: {} of {} records converted ({} rows) into {} file(s); \
             {} files fetched ({} bytes), {} already verified in {}{}",
            c.records_written,
            report.selected,
            c.rows,
            c.files.len(),
            report.fetched_files,
            report.fetched_bytes,
            report.skipped_files,
            dir.display(),
            if args.no_keep_raw {
                format!(
                    "; raw files deleted as converted (peak {} bytes on disk)",
                    report.peak_raw_bytes
                )
            } else {
                String::new()
            }
        )?;
    }
    Ok(code)
}
