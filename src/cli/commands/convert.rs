//! `physio convert`: turns [`ConvertArgs`] into [`ConvertOptions`], runs the conversion
//! with a progress bar, names every skipped record on stderr and maps the report to the
//! exit code (1 when any record failed).

use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::args::{ConvertArgs, DtypeArg, GlobalArgs, LayoutArg};
use crate::convert::metadata::Preset;
use crate::convert::{ConvertError, ConvertOptions, Dtype, Layout, Reporter, SignalEncoding};
use crate::error::{EXIT_OK, EXIT_PARTIAL};
use crate::ops::ConvertOutcome;

/// How many names of decoded records the JSON summary lists (`records_converted` has
/// the count): a first conversion of a large dataset would otherwise list them all.
const CONVERTED_NAMES_SHOWN: usize = 100;

/// Runs `physio convert`.
pub fn run(args: &ConvertArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    if super::pipeline::is_dataset_input(&args.input) {
        return super::pipeline::run(args, global);
    }
    let opts = options(args).map_err(crate::Error::Convert)?;
    let bar = progress_bar(global.quiet);
    let reporter = BarReporter { bar: bar.clone() };
    let outcome = match crate::ops::convert(&opts, &reporter) {
        Ok(o) => o,
        Err(e @ crate::Error::Convert(_)) => return Err(anyhow::Error::new(e).context("convert")),
        Err(e) => return Err(e.into()),
    };
    bar.finish_and_clear();
    render(args, global, &outcome)
}

/// Prints a conversion's failures and summary (JSON on stdout with `--json`) and
/// returns its exit code.
pub(crate) fn render(
    args: &ConvertArgs,
    global: &GlobalArgs,
    outcome: &ConvertOutcome,
) -> anyhow::Result<u8> {
    let report = &outcome.report;
    let mut err = std::io::stderr().lock();
    print_failures(&mut err, outcome)?;
    if args.json {
        writeln!(std::io::stdout().lock(), "{}", convert_json(outcome))?;
    } else if !global.quiet && report.records_written == 0 && !report.failed.is_empty() {
        writeln!(
            err,
            "no readable records in {} ({} failed); nothing written",
            args.input.display(),
            report.failed.len()
        )?;
    } else if !global.quiet {
        writeln!(
            err,
            "converted {} records ({} rows) into {} file(s){}{}",
            report.records_written,
            report.rows,
            report.files.len(),
            if args.incremental {
                format!(
                    ": {} decoded, {} reused from the previous output \
                     ({} row group(s) copied unchanged)",
                    report.converted.len(),
                    report.records_reused,
                    report.row_groups_copied
                )
            } else {
                String::new()
            },
            if report.failed.is_empty() {
                String::new()
            } else {
                format!("; {} record(s) failed", report.failed.len())
            }
        )?;
    }
    Ok(exit_code(outcome))
}

/// 1 when any record failed, else 0.
pub(crate) fn exit_code(outcome: &ConvertOutcome) -> u8 {
    if outcome.report.failed.is_empty() {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    }
}

/// Names every skipped record on stderr.
pub(crate) fn print_failures(
    err: &mut impl Write,
    outcome: &ConvertOutcome,
) -> std::io::Result<()> {
    for (name, e) in &outcome.report.failed {
        writeln!(err, "error: skipped {name}: {e}")?;
    }
    Ok(())
}

/// The `--json` document of a conversion (also each dataset's `convert` entry in the
/// sync report): these keys are part of the user contract.
pub(crate) fn convert_json(outcome: &ConvertOutcome) -> serde_json::Value {
    let report = &outcome.report;
    let mut summary = serde_json::json!({
        "records_written": report.records_written,
        "records_converted": report.converted.len(),
        "records_reused": report.records_reused,
        "row_groups_copied": report.row_groups_copied,
        "converted_records": report.converted.iter().take(CONVERTED_NAMES_SHOWN)
            .collect::<Vec<_>>(),
        "rows": report.rows,
        "annotation_rows": report.annotation_rows,
        "files": outcome.files(),
        "failed": report.failed.iter().map(|(n, e)| serde_json::json!({
            "record": n, "error": e.to_string() })).collect::<Vec<_>>(),
    });
    if let Some(u) = &outcome.uploaded {
        summary["deleted_stale"] = serde_json::json!(u.deleted);
    }
    summary
}

/// Validated options from the command line (usage errors exit 2).
pub(crate) fn options(args: &ConvertArgs) -> Result<ConvertOptions, ConvertError> {
    let usage = |s: String| ConvertError::Usage(s);
    let mut opts = ConvertOptions::new(&args.input, &args.out);
    opts.layout = match args.layout {
        LayoutArg::Record => Layout::Record,
        LayoutArg::Samples => Layout::Samples,
        LayoutArg::Windows => Layout::Windows,
    };
    opts.dtype = match args.dtype {
        DtypeArg::F32 => Dtype::F32,
        DtypeArg::F16 => Dtype::F16,
        DtypeArg::I16 => Dtype::I16,
        DtypeArg::I32 => Dtype::I32,
    };
    opts.records = args.records.clone();
    opts.set_selection_window_metadata(
        &args.signals,
        (args.window, args.stride, args.pad),
        (args.metadata.as_ref(), args.key.as_ref()),
    )?;
    opts.preset = args
        .preset
        .as_deref()
        .map(str::parse::<Preset>)
        .transpose()?;
    opts.annotations = args.annotations.clone();
    opts.annotations_table = args.annotations_table.clone();
    opts.high_resolution = args.high_resolution;
    opts.jobs = args.jobs.unwrap_or(0);
    opts.fail_fast = args.fail_fast;
    opts.incremental = args.incremental;
    opts.card = args.card;
    if let Some(shard) = &args.shard {
        opts.shard = shard.parse().map_err(|e| usage(format!("--shard: {e}")))?;
    }
    if let Some(n) = args.row_group_rows {
        opts.tuning.row_group_rows = Some(n.max(1));
    }
    if let Some(c) = &args.compression {
        opts.tuning.compression = c.clone();
    }
    if let Some(e) = &args.signal_encoding {
        opts.tuning.signal_encoding = match e.as_str() {
            "bss" => SignalEncoding::Bss,
            "dict" => SignalEncoding::Dict,
            "plain" => SignalEncoding::Plain,
            other => {
                return Err(usage(format!(
                    "--signal-encoding {other:?}: bss, dict or plain"
                )));
            }
        };
    }
    if let Some(b) = args.max_file_bytes {
        opts.tuning.max_file_bytes = b.max(1);
    }
    Ok(opts)
}

fn progress_bar(quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {per_sec}  eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// Drives the progress bar from the library's callbacks.
struct BarReporter {
    bar: ProgressBar,
}

impl Reporter for BarReporter {
    fn on_plan(&self, _records: usize, rows: u64) {
        self.bar.set_length(rows);
    }

    fn on_rows_written(&self, rows: u64) {
        self.bar.inc(rows);
    }
}
