//! `physio convert`: turns [`ConvertArgs`] into [`ConvertOptions`], runs the conversion
//! with a progress bar, names every skipped record on stderr and maps the report to the
//! exit code (1 when any record failed).

use std::io::Write;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::args::{ConvertArgs, DtypeArg, GlobalArgs, LayoutArg};
use crate::convert::metadata::{MetadataSpec, Preset};
use crate::convert::{
    ConvertError, ConvertOptions, Dtype, Layout, Reporter, SignalEncoding, WindowSpec,
};
use crate::error::{EXIT_OK, EXIT_PARTIAL};

/// How many names of decoded records the JSON summary lists (`records_converted` has
/// the count): a first conversion of a large dataset would otherwise list them all.
const CONVERTED_NAMES_SHOWN: usize = 100;

/// Runs `physio convert`.
pub fn run(args: &ConvertArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    execute(args, global, None)
}

/// Runs a conversion. With `capture`, the JSON summary (the `--json` document) is stored
/// there instead of printed, so `physio sync` can put it in its run report.
pub(crate) fn execute(
    args: &ConvertArgs,
    global: &GlobalArgs,
    capture: Option<&mut serde_json::Value>,
) -> anyhow::Result<u8> {
    let mut opts = options(args).map_err(crate::Error::Convert)?;
    // `--out s3://…`: convert into a local staging directory, then upload (objstore.rs).
    let remote = crate::objstore::ObjectUrl::parse(&args.out.to_string_lossy())
        .map_err(crate::Error::from)?;
    if let Some(t) = &remote {
        crate::objstore::preflight(t).map_err(crate::Error::from)?;
    }
    let staging = remote.as_ref().map(|_| tempfile::tempdir()).transpose()?;
    // The staging directory holds this run's files only: it cannot describe the whole
    // prefix, so object-store output gets no dataset card (card.rs).
    if opts.card && remote.is_some() {
        return Err(crate::Error::Usage(
            "--card applies to a local output directory, not to object storage".to_string(),
        )
        .into());
    }
    if let (Some(t), Some(dir)) = (&remote, &staging) {
        opts.out = match t.is_single_file() {
            true => dir.path().join("out.parquet"),
            false => dir.path().to_path_buf(),
        };
    }
    let bar = progress_bar(global.quiet);
    let reporter = BarReporter { bar: bar.clone() };
    let report = crate::convert::convert(&opts, &reporter)
        .map_err(crate::Error::Convert)
        .context("convert")?;
    bar.finish_and_clear();
    let upload = crate::objstore::UploadOptions {
        shard_prefix: crate::convert::writer::shard_prefix(&opts),
        pause_before_complete: crate::objstore::pause_from_env(),
    };
    let uploaded = match (&remote, &staging) {
        (Some(t), Some(dir)) => {
            Some(crate::objstore::upload_dir(dir.path(), t, &upload).map_err(crate::Error::from)?)
        }
        _ => None,
    };

    let mut err = std::io::stderr().lock();
    for (name, e) in &report.failed {
        writeln!(err, "error: skipped {name}: {e}")?;
    }
    if args.json || capture.is_some() {
        let mut summary = serde_json::json!({
            "records_written": report.records_written,
            "records_converted": report.converted.len(),
            "records_reused": report.records_reused,
            "row_groups_copied": report.row_groups_copied,
            "converted_records": report.converted.iter().take(CONVERTED_NAMES_SHOWN)
                .collect::<Vec<_>>(),
            "rows": report.rows,
            "files": match &uploaded {
                Some(u) => u.uploaded.clone(),
                None => report.files.iter().map(|f| f.display().to_string()).collect(),
            },
            "failed": report.failed.iter().map(|(n, e)| serde_json::json!({
                "record": n, "error": e.to_string() })).collect::<Vec<_>>(),
        });
        if let Some(u) = &uploaded {
            summary["deleted_stale"] = serde_json::json!(u.deleted);
        }
        match capture {
            Some(slot) => *slot = summary,
            None => writeln!(std::io::stdout().lock(), "{summary}")?,
        }
    } else if !global.quiet {
        writeln!(
            err,
            "converted {} records ({} rows) into {} file(s){}{}",
            report.records_written,
            report.rows,
            report.files.len(),
            if opts.incremental {
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
    Ok(if report.failed.is_empty() {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    })
}

/// Validated options from the command line (usage errors exit 2).
fn options(args: &ConvertArgs) -> Result<ConvertOptions, ConvertError> {
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
    };
    opts.records = args.records.clone();
    opts.signals = args
        .signals
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    opts.window = match (args.window, args.stride) {
        (Some(w), stride) => Some(WindowSpec {
            window_secs: w,
            stride_secs: stride.unwrap_or(w),
            pad: args.pad,
        }),
        (None, Some(_)) => return Err(usage("--stride needs --window".to_string())),
        (None, None) => None,
    };
    opts.metadata = match (&args.metadata, &args.key) {
        (Some(path), Some(key)) => Some(MetadataSpec {
            path: path.clone(),
            key: key.clone(),
        }),
        (Some(_), None) => return Err(usage("--metadata needs --key COLUMN".to_string())),
        (None, Some(_)) => return Err(usage("--key needs --metadata CSV".to_string())),
        (None, None) => None,
    };
    opts.preset = args
        .preset
        .as_deref()
        .map(str::parse::<Preset>)
        .transpose()?;
    opts.annotations = args.annotations.clone();
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
