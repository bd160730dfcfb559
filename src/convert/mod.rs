//! WFDB and EDF records to Parquet (`physio convert --to parquet`, issue 4).
//!
//! The conversion is a deterministic pipeline whose output does not depend on `--jobs`:
//!
//! 1. [`mod@discover`] lists the records of the input (RECORDS files, else `*.hea`), filters
//!    them by `--records` globs and `--shard`, and sorts them by name.
//! 2. Every record's header is opened (in parallel); records that fail are reported by
//!    name. The rows each record yields are known from its header alone, so
//!    `plan` cuts the sequence of rows into row groups of a fixed row count before any
//!    sample is decoded.
//! 3. Row groups are decoded and encoded in parallel on a rayon pool, a bounded wave at a
//!    time (memory is a few row groups, not the dataset), and appended in order by
//!    [`writer`], which rolls over to a new `part-NNNNN.parquet` at ~500 MB and writes
//!    each file under a `.parquet.tmp` name until it is complete.
//!
//! The column layout of each `--layout` is in [`schema`] and the contract
//! (`docs/parquet.md`); encoding choices and their measurements are in `docs/parquet.md`.

pub mod annotation_table;
pub(crate) mod batch;
pub mod card;
pub mod discover;
pub mod edf_source;
pub mod high_res;
pub mod metadata;
pub(crate) mod plan;
pub(crate) mod reuse;
pub mod schema;
pub(crate) mod signal_chunk;
pub mod source;
pub mod writer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{EXIT_INTERNAL, EXIT_PARTIAL, EXIT_USAGE};
use crate::shard::Shard;

pub use discover::{RecordRef, discover};
pub use edf_source::DatasetOpener;
pub use source::{RecordMeta, RecordSource, SourceOpener, WfdbOpener};

/// Errors converting records to Parquet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// Writing Parquet failed.
    #[error("writing {}: {source}", path.display())]
    Parquet {
        /// The output file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Building an Arrow batch failed (a bug or an overflow of Arrow's 32-bit offsets).
    #[error("building Arrow data: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// Reading an EDF file failed; carries the record's name so it can be reported.
    /// Displayed as the reader's error alone: that names the file already.
    #[error("{source}")]
    Edf {
        /// The record name (the file's path relative to the input).
        name: String,
        /// The reader's error.
        #[source]
        source: crate::edf::EdfError,
    },
    /// Reading a WFDB record failed; carries the record's name so it can be reported.
    #[error("record {name}: {source}")]
    Record {
        /// The record name, relative to the input.
        name: String,
        /// The reader's error.
        #[source]
        source: crate::wfdb::WfdbError,
    },
    /// A record was read but cannot go into this output (missing signal, other fs, ...).
    #[error("record {name}: {reason}")]
    Unsuitable {
        /// The record name, relative to the input.
        name: String,
        /// Why it was skipped.
        reason: String,
    },
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A RECORDS file names a path that escapes the dataset directory.
    #[error("{}: {reason}", path.display())]
    Discovery {
        /// The RECORDS file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--metadata` CSV (or a preset's CSV) could not be used.
    #[error("{}: {reason}", path.display())]
    Metadata {
        /// The CSV file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Invalid options (bad glob, `--window` missing, ...).
    #[error("{0}")]
    Usage(String),
    /// The input holds no record to convert (nothing is written).
    #[error("no WFDB or EDF records in {}: {found}", path.display())]
    NoRecords {
        /// The input.
        path: PathBuf,
        /// What the input holds instead (`3 files: 2 *.txt, 1 *.csv`).
        found: String,
    },
    /// A bug in physio, not a problem with the input or the options: a worker failed,
    /// or the planned row groups were not all encoded (exit code 5).
    #[error("internal error (please report this): {0}")]
    Internal(String),
}

impl ConvertError {
    /// Exit code for this error: 2 for invalid options, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConvertError::Usage(_) => EXIT_USAGE,
            ConvertError::Internal(_) => EXIT_INTERNAL,
            _ => EXIT_PARTIAL,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ConvertError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn unsuitable(name: &str, reason: impl Into<String>) -> Self {
        ConvertError::Unsuitable {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
}

/// Row layout of the output (see the contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One row per record; `signal` is `list<list<float32>>`, channel-major.
    #[default]
    Record,
    /// One row per frame, one column per signal.
    Samples,
    /// One row per fixed-length window; `signal` is a fixed-shape `[C, S]` tensor.
    Windows,
}

/// Sample type of the signal values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// float32 physical units, `(digital - baseline) / gain`, NaN where invalid.
    #[default]
    F32,
    /// float16 physical units (half the bytes; ~3 significant digits).
    F16,
    /// int16 digital values as stored, plus per-channel `gain` and `baseline` columns so a
    /// loader computes `(d - baseline) / gain` itself (on the GPU).
    I16,
    /// int32 digital values as stored, plus `gain` and `baseline` as for `I16`: lossless
    /// for every format, including 24, 32 and 524 (which `I16` refuses and float32 cannot
    /// hold exactly).
    I32,
}

impl std::str::FromStr for Layout {
    type Err = String;

    /// `record`, `samples` or `windows` (the names `--layout` and sync's `layout` take).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "record" => Ok(Layout::Record),
            "samples" => Ok(Layout::Samples),
            "windows" => Ok(Layout::Windows),
            other => Err(format!("layout {other:?}: record, samples or windows")),
        }
    }
}

impl std::str::FromStr for Dtype {
    type Err = String;

    /// `f32`, `f16`, `i16` or `i32` (the names `--dtype` and sync's `dtype` take).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Dtype::F32),
            "f16" => Ok(Dtype::F16),
            "i16" => Ok(Dtype::I16),
            "i32" => Ok(Dtype::I32),
            other => Err(format!("dtype {other:?}: f32, f16, i16 or i32")),
        }
    }
}

impl Dtype {
    /// Whether values are digital samples (`I16`, `I32`), with `gain`/`baseline` columns.
    pub fn is_digital(self) -> bool {
        matches!(self, Dtype::I16 | Dtype::I32)
    }
}

/// Window geometry for `--layout windows`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct WindowSpec {
    /// Window length in seconds.
    pub window_secs: f64,
    /// Step between window starts in seconds.
    pub stride_secs: f64,
    /// Keep the last partial window, padded with NaN (or the invalid value for i16).
    pub pad: bool,
}

/// How signal leaf columns are encoded (chosen by measurement; see `docs/parquet.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalEncoding {
    /// `BYTE_STREAM_SPLIT` (no dictionary): float bytes regrouped so the compressor sees
    /// the repetitive exponent bytes together (int16 output: DELTA_BINARY_PACKED).
    Bss,
    /// Dictionary (RLE_DICTIONARY) with fallback to PLAIN when the dictionary is full.
    /// The default: a 16-bit ADC gives a few thousand distinct values per row group, so
    /// bit-packed dictionary indices beat any float encoding (`docs/parquet.md`).
    #[default]
    Dict,
    /// PLAIN.
    Plain,
}

/// Tuning knobs of the Parquet writer. The defaults are the measured choices; the knobs
/// exist so `scripts/bench-convert` can measure the alternatives.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Tuning {
    /// Rows per row group; `None` picks the per-layout default (see `convert::plan`).
    pub row_group_rows: Option<usize>,
    /// Compression of the signal value columns: `auto`, `zstd` (optionally `zstd:LEVEL`),
    /// `lz4`, `snappy`, `none`. `auto` stores dictionary-encoded pages uncompressed and
    /// LZ4-compresses a PLAIN fallback. Every other column is zstd-compressed.
    pub compression: String,
    /// Encoding of the signal value columns.
    pub signal_encoding: SignalEncoding,
    /// Roll over to a new part file once a file holds this many bytes (directory output).
    pub max_file_bytes: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            row_group_rows: None,
            // Bit-packed dictionary indices are incompressible in practice: zstd saves
            // ~3% at a real CPU cost on both ends, LZ4 nothing (docs/parquet.md); a
            // PLAIN fallback (a dictionary past 1 MiB) still gets LZ4.
            compression: "auto".to_string(),
            signal_encoding: SignalEncoding::default(),
            max_file_bytes: 500 * 1000 * 1000,
        }
    }
}

/// Everything `convert` needs to know; built by the CLI from its arguments.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// A dataset directory or a single record path (with or without `.hea`).
    pub input: PathBuf,
    /// A `.parquet` file, or a directory of `part-NNNNN.parquet` files.
    pub out: PathBuf,
    /// Row layout.
    pub layout: Layout,
    /// `--records` globs on record names (any may match); empty = all.
    pub records: Vec<String>,
    /// `--signals`: signal names to keep, in this order; empty = all.
    pub signals: Vec<String>,
    /// Sample type.
    pub dtype: Dtype,
    /// Window geometry (required for `Layout::Windows`).
    pub window: Option<WindowSpec>,
    /// `--metadata CSV --key COLUMN`.
    pub metadata: Option<metadata::MetadataSpec>,
    /// `--preset`.
    pub preset: Option<metadata::Preset>,
    /// `--annotations EXT`: annotation file extension to add as a list column.
    pub annotations: Option<String>,
    /// `--annotations-table PATH`: also write the annotations (of `annotations`) as a
    /// flat Parquet table, one row per annotation keyed by `record`.
    pub annotations_table: Option<PathBuf>,
    /// `--high-resolution`: `samples`/`windows` rows at the highest sampling rate of the
    /// record (every sample of oversampled signals, as `rdsamp -H`) instead of one
    /// frame mean per frame ([`high_res`]).
    pub high_resolution: bool,
    /// Worker threads; 0 = all cores.
    pub jobs: usize,
    /// Stop at the first failed record instead of skipping it.
    pub fail_fast: bool,
    /// Which shard of the records to convert.
    pub shard: Shard,
    /// Parquet writer tuning.
    pub tuning: Tuning,
    /// `--incremental`: copy the rows of records whose inputs are unchanged from the
    /// previous output at `out` instead of decoding them (the bytes written are the same
    /// as a full conversion's; see `convert::reuse`).
    pub incremental: bool,
    /// Write a Hugging Face dataset card (`README.md`, see [`card`]) into a directory
    /// output (`--card`). Off by default: `pq.read_table(DIR)` reads every file of a
    /// directory that does not start with `.` or `_`, and fails on a README.md.
    pub card: bool,
}

impl ConvertOptions {
    /// Options with the defaults of `physio convert INPUT --to parquet --out OUT`.
    pub fn new(input: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        ConvertOptions {
            input: input.into(),
            out: out.into(),
            layout: Layout::Record,
            records: Vec::new(),
            signals: Vec::new(),
            dtype: Dtype::F32,
            window: None,
            metadata: None,
            preset: None,
            annotations: None,
            annotations_table: None,
            high_resolution: false,
            jobs: 0,
            fail_fast: false,
            shard: Shard::ALL,
            tuning: Tuning::default(),
            incremental: false,
            card: false,
        }
    }

    /// Sets the signal names to keep from a list as given (names trimmed, empty ones
    /// dropped), the window geometry from `--window`/`--stride`/`--pad`, and the
    /// `--metadata CSV --key COLUMN` join, refusing incomplete combinations.
    pub fn set_selection_window_metadata(
        &mut self,
        signals: &[String],
        window: (Option<f64>, Option<f64>, bool),
        metadata: (Option<&PathBuf>, Option<&String>),
    ) -> Result<(), ConvertError> {
        let usage = |s: &str| Err(ConvertError::Usage(s.to_string()));
        self.signals = signals
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        self.window = match window {
            (Some(w), stride, pad) => Some(WindowSpec {
                window_secs: w,
                stride_secs: stride.unwrap_or(w),
                pad,
            }),
            (None, Some(_), _) => return usage("--stride needs --window"),
            (None, None, _) => None,
        };
        self.metadata = match metadata {
            (Some(path), Some(key)) => Some(metadata::MetadataSpec {
                path: path.clone(),
                key: key.clone(),
            }),
            (Some(_), None) => return usage("--metadata needs --key COLUMN"),
            (None, Some(_)) => return usage("--key needs --metadata CSV"),
            (None, None) => None,
        };
        Ok(())
    }

    /// The options that shape the output, as JSON for the files' provenance metadata
    /// (`--jobs` and `--incremental` are left out: they never change the bytes written).
    pub fn provenance_json(&self) -> String {
        let value = serde_json::json!({
            "layout": self.layout,
            "records": self.records,
            "signals": self.signals,
            "dtype": self.dtype,
            "window": self.window,
            "metadata": self.metadata.as_ref().map(|m| serde_json::json!({
                "csv": m.path.display().to_string(), "key": m.key })),
            "preset": self.preset.map(|p| p.name()),
            "annotations": self.annotations,
            "shard": self.shard.to_string(),
            "tuning": self.tuning,
        });
        let mut value = value;
        // Only when set, so outputs written before the option existed stay reusable.
        if self.high_resolution {
            value["high_resolution"] = serde_json::Value::Bool(true);
        }
        value.to_string()
    }
}

/// Progress callbacks; the CLI draws a progress bar from them.
pub trait Reporter: Sync {
    /// The plan is known: `records` to convert into `rows` rows.
    fn on_plan(&self, _records: usize, _rows: u64) {}
    /// `rows` more rows were written.
    fn on_rows_written(&self, _rows: u64) {}
    /// A record was skipped.
    fn on_failure(&self, _name: &str, _error: &ConvertError) {}
    /// Every row of these records has been appended to the output (or they failed
    /// while their last row group was built): their input files are no longer read.
    /// `convert <dataset> --no-keep-raw` deletes their raw files here (issue 15).
    fn on_records_done(&self, _names: &[&str]) {}
}

/// A [`Reporter`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {}

/// What a conversion did. Failed records are listed, not fatal: the CLI names each on
/// stderr and exits 1.
#[derive(Debug, Default)]
pub struct ConvertReport {
    /// Records with at least one row written (or, in `record` layout, one row each).
    pub records_written: usize,
    /// Rows written in all files.
    pub rows: u64,
    /// The files written, in order.
    pub files: Vec<PathBuf>,
    /// Records that were skipped, with the reason.
    pub failed: Vec<(String, crate::Error)>,
    /// Names of the written records that were decoded from WFDB, in output order.
    pub converted: Vec<String>,
    /// Written records whose rows were copied from the previous output
    /// (`--incremental`); `converted.len() + records_reused == records_written`.
    pub records_reused: usize,
    /// Row groups whose encoded column chunks were copied from the previous output
    /// byte for byte, without decoding or encoding (`--incremental`).
    pub row_groups_copied: usize,
    /// Rows written to the `--annotations-table`, if one was asked for.
    pub annotation_rows: Option<u64>,
}

/// Converts the records of `opts.input` to Parquet at `opts.out`.
///
/// Returns `Err` only when nothing sensible can be written (bad options, unreadable
/// input directory, an output write error, or the first failure under `fail_fast`).
///
/// ```no_run
/// use physio::convert::{convert, ConvertOptions, NoReporter};
/// let opts = ConvertOptions::new("physionet/ptb-xl/1.0.3", "ptbxl.parquet");
/// let report = convert(&opts, &NoReporter)?;
/// println!("{} records, {} failed", report.records_written, report.failed.len());
/// # Ok::<(), physio::convert::ConvertError>(())
/// ```
pub fn convert(
    opts: &ConvertOptions,
    reporter: &dyn Reporter,
) -> Result<ConvertReport, ConvertError> {
    let found = discover::discover(&opts.input)?;
    let opener = DatasetOpener::new(&found.root);
    if opts.high_resolution {
        return convert_with(
            opts,
            &found,
            &high_res::HighResOpener::new(&opener),
            reporter,
        );
    }
    convert_with(opts, &found, &opener, reporter)
}

/// [`convert`] with an explicit record source (tests use in-memory records).
pub fn convert_with(
    opts: &ConvertOptions,
    found: &discover::Discovered,
    opener: &dyn SourceOpener,
    reporter: &dyn Reporter,
) -> Result<ConvertReport, ConvertError> {
    validate(opts)?;
    if found.records.is_empty() {
        return Err(ConvertError::NoRecords {
            path: opts.input.clone(),
            found: discover::describe_contents(&opts.input),
        });
    }
    let globs = discover::RecordFilter::new(&opts.records, opts.shard)?;
    let names: Vec<&RecordRef> = found
        .records
        .iter()
        .filter(|r| globs.matches(&r.name))
        .collect();
    // An empty shard is normal (fewer records than shards); globs matching nothing is
    // a mistake worth an error rather than an empty dataset.
    let by_glob = discover::RecordFilter::new(&opts.records, Shard::ALL)?;
    if !found.records.iter().any(|r| by_glob.matches(&r.name)) {
        return Err(ConvertError::NoRecords {
            path: opts.input.clone(),
            found: format!(
                "{} record(s), none matching --records {}",
                found.records.len(),
                opts.records.join(" ")
            ),
        });
    }

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs)
        .build()
        .map_err(|e| ConvertError::Internal(format!("cannot start {} workers: {e}", opts.jobs)))?;
    // `run` stays on the caller's thread (it appends to the file and waits for
    // encoded row groups); everything parallel runs in `pool`.
    let report = run(opts, found, &names, opener, reporter, &pool)?;
    if opts.card && !writer::is_single_file(&opts.out) && !report.files.is_empty() {
        card::write_card(&opts.out)?;
    }
    Ok(report)
}

fn validate(opts: &ConvertOptions) -> Result<(), ConvertError> {
    if opts.layout == Layout::Windows {
        let w = opts.window.ok_or_else(|| {
            ConvertError::Usage("--layout windows needs --window SECS".to_string())
        })?;
        if !(w.window_secs > 0.0 && w.window_secs.is_finite()) {
            return Err(ConvertError::Usage("--window must be > 0".to_string()));
        }
        if !(w.stride_secs > 0.0 && w.stride_secs.is_finite()) {
            return Err(ConvertError::Usage("--stride must be > 0".to_string()));
        }
    } else if opts.window.is_some() {
        return Err(ConvertError::Usage(
            "--window/--stride apply to --layout windows only".to_string(),
        ));
    }
    if opts.high_resolution && opts.layout == Layout::Record {
        return Err(ConvertError::Usage(
            "--high-resolution applies to --layout samples and windows (the record layout \
             keeps every sample already)"
                .to_string(),
        ));
    }
    if opts.annotations_table.is_some() && opts.annotations.is_none() {
        return Err(ConvertError::Usage(
            "--annotations-table needs --annotations EXT".to_string(),
        ));
    }
    writer::parse_compression(&opts.tuning.compression)?;
    if opts.card && writer::is_single_file(&opts.out) {
        return Err(ConvertError::Usage(
            "--card applies to a directory output (a .parquet file has no card)".to_string(),
        ));
    }
    Ok(())
}

/// The body of [`convert_with`], run inside the worker pool.
fn run(
    opts: &ConvertOptions,
    found: &discover::Discovered,
    names: &[&RecordRef],
    opener: &dyn SourceOpener,
    reporter: &dyn Reporter,
    pool: &rayon::ThreadPool,
) -> Result<ConvertReport, ConvertError> {
    let mut failed: BTreeMap<String, ConvertError> = BTreeMap::new();
    let fail = |failed: &mut BTreeMap<String, ConvertError>, name: &str, e: ConvertError| {
        reporter.on_failure(name, &e);
        tracing::debug!(record = name, error = %e, "skipping record");
        failed.entry(name.to_string()).or_insert(e);
    };

    // Headers (and, for streaming layouts, a probe of the last frame) in parallel.
    let streaming = opts.layout != Layout::Record;
    let opened: Vec<Result<RecordMeta, ConvertError>> = pool.install(|| {
        names
            .par_iter()
            .map(|r| opener.probe(&r.name, streaming))
            .collect()
    });
    let mut metas = Vec::new();
    for (r, res) in names.iter().zip(opened) {
        match res {
            Ok(m) => metas.push(m),
            Err(e) => {
                if opts.fail_fast {
                    return Err(e);
                }
                fail(&mut failed, &r.name, e);
            }
        }
    }

    let (shape, rejected) = plan::Shape::decide(opts, &metas);
    for (name, e) in rejected {
        if opts.fail_fast {
            return Err(e);
        }
        fail(&mut failed, &name, e);
    }
    metas.retain(|m| !failed.contains_key(&m.name));
    // No record is readable: report each failure and write nothing, rather than an
    // empty dataset (issue 14).
    if metas.is_empty() && !failed.is_empty() {
        return Ok(ConvertReport {
            failed: failed
                .into_iter()
                .map(|(n, e)| (n, crate::Error::Convert(e)))
                .collect(),
            ..ConvertReport::default()
        });
    }
    let reserved = schema::build(opts, &shape, &metadata::ExtraColumns::default())
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect::<Vec<_>>();
    let extra = metadata::ExtraColumns::load(opts, &found.root, &reserved)?;
    let plan = plan::Plan::new(opts, &shape, &metas);
    reporter.on_plan(metas.len(), plan.total_rows);

    let schema = Arc::new(schema::build(opts, &shape, &extra));
    let props = writer::writer_properties(opts, &shape, found, plan.rows_per_group)?;
    // The old output is opened (and vetted) before any new file is renamed over it.
    let reuse = if opts.incremental {
        pool.install(|| {
            // The provenance the new files will carry (already in the writer
            // properties: building it again would re-hash the metadata CSVs).
            reuse::Reuse::open(
                opts,
                props.key_value_metadata().map_or(&[], Vec::as_slice),
                &schema,
                &metas,
                |m| shape.rows_of(opts.layout, m),
                opener,
            )
        })
    } else {
        reuse::Reuse::none(metas.len())
    };
    let encoder = writer::RowGroupEncoder::new(opts, Arc::clone(&schema), props.clone())?;
    let mut out = writer::PartWriter::new(opts, Arc::clone(&schema), props)?;
    let ctx = batch::BatchContext {
        opts,
        shape: &shape,
        metas: &metas,
        opener,
        extra: &extra,
        schema: Arc::clone(&schema),
        digital_signal: opts.dtype == Dtype::F32 && encoder.encodes_signal_itself(),
    };

    // Row groups are decoded and encoded by the pool's workers, each taking the next
    // group in plan order, while this thread appends finished groups to the file in plan
    // order: file I/O overlaps the CPU work, no worker waits for a slower sibling, and at
    // most `window` groups are in flight (memory stays a few row groups, however large
    // the dataset).
    let threads = pool.current_num_threads().max(1);
    let window = 2 * threads;
    let groups = &plan.row_groups;
    let dispatch = std::sync::atomic::AtomicUsize::new(0);
    // (groups appended so far, aborted)
    let progress = std::sync::Mutex::new((0usize, false));
    let appended_cv = std::sync::Condvar::new();
    let (tx, rx) =
        std::sync::mpsc::channel::<(usize, Result<writer::EncodedRowGroup, ConvertError>)>();
    let mut written_records = vec![false; metas.len()];
    // The last row group holding each record: once it is appended, the record is done.
    let mut last_group = vec![usize::MAX; metas.len()];
    for (gi, g) in groups.iter().enumerate() {
        for p in &g.pieces {
            last_group[p.rec] = gi;
        }
    }
    let appended: Result<(), ConvertError> = std::thread::scope(|scope| {
        let workers = scope.spawn(|| {
            pool.install(|| {
                (0..threads).into_par_iter().for_each_with(tx, |tx, _| {
                    loop {
                        let i = dispatch.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(g) = groups.get(i) else { break };
                        {
                            let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
                            while !p.1 && i >= p.0 + window {
                                p = appended_cv.wait(p).unwrap_or_else(|e| e.into_inner());
                            }
                            if p.1 {
                                break;
                            }
                        }
                        let encoded = match reuse.copy_row_group(g) {
                            Some(copied) => Ok(copied),
                            None => reuse
                                .build_row_group(&ctx, g)
                                .and_then(|built| encoder.encode(built)),
                        };
                        if tx.send((i, encoded)).is_err() {
                            break;
                        }
                    }
                })
            });
        });
        let mut ready = BTreeMap::new();
        let mut next = 0;
        let mut result = Ok(());
        'receive: for (i, encoded) in rx.iter() {
            ready.insert(i, encoded);
            while let Some(encoded) = ready.remove(&next) {
                let step = encoded.and_then(|mut enc| {
                    for (idx, e) in std::mem::take(&mut enc.failures) {
                        if opts.fail_fast {
                            return Err(e);
                        }
                        fail(&mut failed, &metas[idx].name, e);
                    }
                    for idx in &enc.records {
                        written_records[*idx] = true;
                    }
                    reporter.on_rows_written(enc.rows);
                    out.append(enc)
                });
                if step.is_ok() {
                    let done: Vec<&str> = groups[next]
                        .pieces
                        .iter()
                        .filter(|p| last_group[p.rec] == next)
                        .map(|p| metas[p.rec].name.as_str())
                        .collect();
                    if !done.is_empty() {
                        reporter.on_records_done(&done);
                    }
                }
                next += 1;
                let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
                p.0 = next;
                if let Err(e) = step {
                    p.1 = true;
                    appended_cv.notify_all();
                    result = Err(e);
                    break 'receive;
                }
                appended_cv.notify_all();
            }
        }
        // On an error the receiver is dropped here, so workers stop at their next send.
        drop(rx);
        let joined = workers.join();
        if result.is_ok() && (joined.is_err() || next != groups.len()) {
            result = Err(ConvertError::Internal(format!(
                "only {next} of {} row groups were encoded",
                groups.len()
            )));
        }
        result
    });
    appended?;
    let any_written = metas
        .iter()
        .zip(&written_records)
        .any(|(m, w)| *w && !failed.contains_key(&m.name));
    let (files, rows) = if any_written || failed.is_empty() {
        out.finish()?
    } else {
        // Every record failed while decoding: as above, no empty dataset.
        out.abort();
        (Vec::new(), 0)
    };
    let mut converted = Vec::new();
    let mut records_reused = 0;
    let mut written = Vec::new();
    for (rec, (m, w)) in metas.iter().zip(&written_records).enumerate() {
        if *w && !failed.contains_key(&m.name) {
            written.push(m.name.clone());
            if reuse.was_decoded(rec) {
                converted.push(m.name.clone());
            } else {
                records_reused += 1;
            }
        }
    }
    let annotation_rows = match (&opts.annotations_table, &opts.annotations) {
        (Some(path), Some(ext)) => Some(annotation_table::write_annotation_table(
            path, ext, &written, opener,
        )?),
        _ => None,
    };
    Ok(ConvertReport {
        records_written: converted.len() + records_reused,
        converted,
        records_reused,
        row_groups_copied: reuse.row_groups_copied(),
        annotation_rows,
        rows,
        files,
        failed: failed
            .into_iter()
            .map(|(n, e)| (n, crate::Error::Convert(e)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::source::mem::{INVALID, MemOpener, MemRecord};
    use super::source::{AnnotationRow, ChannelMeta};
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Int16Type, Int64Type};
    use arrow_array::{Array, RecordBatch};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn record(name: &str, n: u64, sigs: &[&str], seed: i32) -> MemRecord {
        let channels: Vec<ChannelMeta> = sigs
            .iter()
            .enumerate()
            .map(|(j, s)| ChannelMeta {
                name: s.to_string(),
                units: "mV".to_string(),
                samps_per_frame: 1,
                gain: Some(100.0 + j as f64),
                baseline: Some(j as i64),
            })
            .collect();
        let digital = (0..sigs.len())
            .map(|j| {
                (0..n as i32)
                    .map(|i| (seed * 1000 + j as i32 * 100 + i) % 3000 - 1500)
                    .collect()
            })
            .collect();
        MemRecord {
            meta: RecordMeta {
                name: name.to_string(),
                fs: 100.0,
                n_frames: n,
                channels,
                base_date: None,
                base_time: Some("10:00:00".to_string()),
                comments: vec![format!("seed {seed}")],
            },
            digital,
            broken: false,
            annotations: None,
            scaled: true,
        }
    }

    #[test]
    fn layout_and_dtype_names_parse_as_their_serialized_form() {
        for l in [Layout::Record, Layout::Samples, Layout::Windows] {
            let name = serde_json::to_value(l).unwrap();
            assert_eq!(name.as_str().unwrap().parse::<Layout>(), Ok(l));
        }
        for d in [Dtype::F32, Dtype::F16, Dtype::I16, Dtype::I32] {
            let name = serde_json::to_value(d).unwrap();
            assert_eq!(name.as_str().unwrap().parse::<Dtype>(), Ok(d));
        }
        assert_eq!(
            "f64".parse::<Dtype>(),
            Err("dtype \"f64\": f32, f16, i16 or i32".to_string())
        );
        assert_eq!(
            "rows".parse::<Layout>(),
            Err("layout \"rows\": record, samples or windows".to_string())
        );
    }

    fn physical(r: &MemRecord, j: usize, i: usize) -> f32 {
        let c = &r.meta.channels[j];
        let d = r.digital[j][i];
        if d == INVALID {
            f32::NAN
        } else {
            ((f64::from(d) - c.baseline.unwrap() as f64) / c.gain.unwrap()) as f32
        }
    }

    fn run(opener: &MemOpener, opts: &ConvertOptions) -> ConvertReport {
        convert_with(opts, &opener.discovered(), opener, &NoReporter).unwrap()
    }

    fn read_all(files: &[PathBuf]) -> Vec<RecordBatch> {
        files
            .iter()
            .flat_map(|f| {
                let file = std::fs::File::open(f).unwrap();
                ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .build()
                    .unwrap()
                    .map(|b| b.unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn corpus() -> MemOpener {
        let mut o = MemOpener::default();
        o.add(record("b/2", 50, &["I", "II"], 2));
        o.add(record("a/1", 40, &["I", "II"], 1));
        let mut r3 = record("c/3", 30, &["I", "II"], 3);
        r3.digital[1][5] = INVALID;
        o.add(r3);
        o
    }

    #[test]
    fn digital_samples_write_the_same_file_as_physical_values() {
        // Single-segment records hand over digital samples and scales (held back until
        // the signal encoder), multi-segment ones only physical values; a group may mix
        // them, and a record with more distinct values than a dictionary holds sends
        // the held-back samples to arrow-rs. Every mix writes the bytes an
        // all-physical conversion writes.
        let convert = |wide: bool, scaled: &dyn Fn(&str) -> bool| {
            let mut o = corpus();
            if wide {
                let mut r = record("d/4", 300_000, &["I"], 4);
                r.digital[0] = (0..300_000).map(|i| i * 3 - 400_000).collect();
                o.add(r);
            }
            for r in o.records.values_mut() {
                r.scaled = scaled(&r.meta.name);
            }
            let dir = tempfile::tempdir().unwrap();
            let opts = ConvertOptions::new("mem", dir.path().join("out.parquet"));
            let report = run(&o, &opts);
            assert!(report.failed.is_empty());
            std::fs::read(&report.files[0]).unwrap()
        };
        for wide in [false, true] {
            let physical = convert(wide, &|_| false);
            assert_eq!(convert(wide, &|_| true), physical, "wide {wide}");
            assert_eq!(convert(wide, &|n| n != "b/2"), physical, "wide {wide}");
            assert_eq!(convert(wide, &|n| n == "b/2"), physical, "wide {wide}");
        }
    }

    #[test]
    fn record_layout_round_trips_values_in_name_order() {
        let o = corpus();
        let dir = tempfile::tempdir().unwrap();
        let opts = ConvertOptions::new("mem", dir.path().join("out.parquet"));
        let report = run(&o, &opts);
        assert_eq!((report.records_written, report.rows), (3, 3));
        assert!(report.failed.is_empty());
        let batches = read_all(&report.files);
        let b = &batches[0];
        let names: Vec<&str> = b.column(0).as_string::<i32>().iter().flatten().collect();
        assert_eq!(names, ["a/1", "b/2", "c/3"]);
        let signal = b.column_by_name("signal").unwrap().as_list::<i32>();
        for (row, name) in names.iter().enumerate() {
            let r = &o.records[*name];
            let chans = signal.value(row);
            let chans = chans.as_list::<i32>();
            assert_eq!(chans.len(), 2);
            for j in 0..2 {
                let v = chans.value(j);
                let v = v.as_primitive::<Float32Type>();
                assert_eq!(v.len() as u64, r.meta.n_frames);
                for i in 0..v.len() {
                    let want = physical(r, j, i);
                    assert!(
                        v.value(i) == want || (want.is_nan() && v.value(i).is_nan()),
                        "{name} {j} {i}"
                    );
                }
            }
        }
        assert!(
            signal
                .value(2)
                .as_list::<i32>()
                .value(1)
                .as_primitive::<Float32Type>()
                .value(5)
                .is_nan()
        );
        let n = b
            .column_by_name("n_samples")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert_eq!(n.values().to_vec(), vec![40, 50, 30]);
        assert!(!dir.path().join("out.parquet.tmp").exists());
    }

    #[test]
    fn output_bytes_do_not_depend_on_jobs() {
        let mut o = corpus();
        for i in 0..20 {
            o.add(record(&format!("d/{i:02}"), 64 + i, &["I", "II"], i as i32));
        }
        let dir = tempfile::tempdir().unwrap();
        for layout in [Layout::Record, Layout::Samples] {
            let mut bytes = Vec::new();
            for jobs in [1, 2, 3] {
                let mut opts =
                    ConvertOptions::new("mem", dir.path().join(format!("o{jobs}.parquet")));
                opts.layout = layout;
                opts.jobs = jobs;
                opts.tuning.row_group_rows = Some(if layout == Layout::Record { 3 } else { 100 });
                let report = run(&o, &opts);
                bytes.push(std::fs::read(&report.files[0]).unwrap());
            }
            assert_eq!(bytes[0], bytes[1], "{layout:?}");
            assert_eq!(bytes[0], bytes[2], "{layout:?}");
        }
    }

    #[test]
    fn failed_record_is_reported_and_the_rest_converts() {
        let mut o = corpus();
        o.records.get_mut("b/2").unwrap().broken = true;
        let dir = tempfile::tempdir().unwrap();
        let opts = ConvertOptions::new("mem", dir.path().join("out.parquet"));
        let report = run(&o, &opts);
        assert_eq!(report.records_written, 2);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0, "b/2");
        let batches = read_all(&report.files);
        let names: Vec<&str> = batches[0]
            .column(0)
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        assert_eq!(names, ["a/1", "c/3"]);
    }

    #[test]
    fn fail_fast_stops_and_leaves_no_file() {
        let mut o = corpus();
        o.records.get_mut("b/2").unwrap().broken = true;
        let dir = tempfile::tempdir().unwrap();
        let mut opts = ConvertOptions::new("mem", dir.path().join("out.parquet"));
        opts.fail_fast = true;
        let e = convert_with(&opts, &o.discovered(), &o, &NoReporter).unwrap_err();
        assert!(e.to_string().contains("b/2"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn samples_layout_has_one_column_per_signal_and_dedups_names() {
        let mut o = MemOpener::default();
        o.add(record("r", 25, &["II", "V1", "II"], 7));
        let dir = tempfile::tempdir().unwrap();
        let mut opts = ConvertOptions::new("mem", dir.path().join("s.parquet"));
        opts.layout = Layout::Samples;
        opts.tuning.row_group_rows = Some(10);
        let report = run(&o, &opts);
        assert_eq!(report.rows, 25);
        let batches = read_all(&report.files);
        let schema = batches[0].schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["record", "sample", "time", "II", "V1", "II_2"]);
        let r = &o.records["r"];
        let mut i = 0;
        for b in &batches {
            let ii2 = b.column(5).as_primitive::<Float32Type>();
            let t = b
                .column(2)
                .as_primitive::<arrow_array::types::Float64Type>();
            for k in 0..b.num_rows() {
                assert_eq!(ii2.value(k), physical(r, 2, i));
                assert_eq!(t.value(k), i as f64 / 100.0);
                i += 1;
            }
        }
        assert_eq!(i, 25);
    }

    #[test]
    fn windows_layout_pads_and_writes_a_tensor() {
        let mut o = MemOpener::default();
        o.add(record("r", 25, &["I", "II"], 4));
        let mut r2 = record("s", 10, &["II", "I"], 5);
        r2.annotations = Some(vec![
            AnnotationRow {
                sample: 9,
                symbol: "V".into(),
                subtype: 0,
                chan: 0,
                num: 0,
                aux: "".into(),
                time: 0.09,
                duration: None,
            },
            AnnotationRow {
                sample: 1,
                symbol: "N".into(),
                subtype: -1,
                chan: 255,
                num: 3,
                aux: "(N".into(),
                time: 0.01,
                duration: None,
            },
        ]);
        o.add(r2);
        let dir = tempfile::tempdir().unwrap();
        let mut opts = ConvertOptions::new("mem", dir.path().join("w.parquet"));
        opts.layout = Layout::Windows;
        opts.annotations = Some("atr".to_string());
        opts.window = Some(WindowSpec {
            window_secs: 0.1,
            stride_secs: 0.1,
            pad: true,
        });
        let report = run(&o, &opts);
        assert_eq!(report.rows, 3 + 1);
        let batches = read_all(&report.files);
        let b = &batches[0];
        let field = b.schema().field(2).clone();
        assert_eq!(
            field
                .metadata()
                .get("ARROW:extension:metadata")
                .map(String::as_str),
            Some("{\"shape\":[2,10]}")
        );
        let t = b.column(2).as_fixed_size_list();
        let row = |k: usize| t.value(k).as_primitive::<Float32Type>().values().to_vec();
        // Record r, window 2 (frames 20..30): 5 real samples then NaN padding per channel.
        let w = row(2);
        assert_eq!(w[0], physical(&o.records["r"], 0, 20));
        assert!(w[5..10].iter().all(|x| x.is_nan()));
        assert_eq!(w[10], physical(&o.records["r"], 1, 20));
        // Record s has its channels in the other order; output follows the first record.
        let w = row(3);
        assert_eq!(w[0], physical(&o.records["s"], 1, 0));
        let anns = b.column_by_name("annotations").unwrap().as_list::<i32>();
        assert!(anns.is_null(0));
        let s_anns = anns.value(3);
        let s_anns = s_anns.as_struct();
        let samples = s_anns
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec();
        assert_eq!(samples, vec![1, 9]);
        let col = |n: &str| s_anns.column_by_name(n).unwrap().clone();
        assert_eq!(col("aux").as_string::<i32>().value(0), "(N");
        assert_eq!(col("symbol").as_string::<i32>().value(1), "V");
        let i16s = |n: &str| col(n).as_primitive::<Int16Type>().values().to_vec();
        assert_eq!(i16s("subtype"), vec![-1, 0]);
        assert_eq!(i16s("chan"), vec![255, 0]);
        assert_eq!(i16s("num"), vec![3, 0]);
        let time = col("time");
        let time = time.as_primitive::<arrow_array::types::Float64Type>();
        assert_eq!(time.values().to_vec(), vec![0.01, 0.09]);
        assert_eq!(col("duration").null_count(), 2);
    }

    #[test]
    fn i16_keeps_digital_values_with_gain_and_baseline() {
        let o = corpus();
        let dir = tempfile::tempdir().unwrap();
        let mut opts = ConvertOptions::new("mem", dir.path().join("i.parquet"));
        opts.dtype = Dtype::I16;
        opts.signals = vec!["II".to_string()];
        let report = run(&o, &opts);
        let b = &read_all(&report.files)[0];
        let sig = b.column_by_name("signal").unwrap().as_list::<i32>();
        let first = sig.value(0);
        let first = first.as_list::<i32>().value(0);
        let vals = first.as_primitive::<Int16Type>();
        let r = &o.records["a/1"];
        assert_eq!(i32::from(vals.value(3)), r.digital[1][3]);
        let gain = b.column_by_name("gain").unwrap().as_list::<i32>().value(0);
        assert_eq!(
            gain.as_primitive::<arrow_array::types::Float64Type>()
                .value(0),
            101.0
        );
        let base = b
            .column_by_name("baseline")
            .unwrap()
            .as_list::<i32>()
            .value(0);
        assert_eq!(base.as_primitive::<Int64Type>().value(0), 1);
    }

    #[test]
    fn f16_stores_half_precision_physical_values() {
        let o = corpus();
        let dir = tempfile::tempdir().unwrap();
        let mut opts = ConvertOptions::new("mem", dir.path().join("h.parquet"));
        opts.dtype = Dtype::F16;
        let report = run(&o, &opts);
        let b = &read_all(&report.files)[0];
        let sig = b.column_by_name("signal").unwrap().as_list::<i32>();
        let chans = sig.value(2);
        let ch1 = chans.as_list::<i32>().value(1);
        let vals = ch1.as_primitive::<arrow_array::types::Float16Type>();
        let r = &o.records["c/3"];
        assert_eq!(vals.value(3), half::f16::from_f32(physical(r, 1, 3)));
        assert!(vals.value(5).is_nan());
    }

    #[test]
    fn missing_signal_is_reported_by_name() {
        let mut o = corpus();
        o.add(record("z", 10, &["I"], 9));
        let dir = tempfile::tempdir().unwrap();
        let mut opts = ConvertOptions::new("mem", dir.path().join("o.parquet"));
        opts.signals = vec!["II".to_string()];
        let report = run(&o, &opts);
        assert_eq!(report.records_written, 3);
        assert_eq!(report.failed.len(), 1);
        assert!(
            report.failed[0]
                .1
                .to_string()
                .contains("lacks signal(s) II")
        );
    }

    #[test]
    fn directory_output_rolls_parts_and_removes_stale_ones() {
        let mut o = MemOpener::default();
        for i in 0..12 {
            o.add(record(&format!("r{i:02}"), 2000, &["I", "II"], i));
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ds");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("part-00099.parquet"), b"stale").unwrap();
        std::fs::write(out.join("part-1-00000.parquet"), b"other shard").unwrap();
        std::fs::write(out.join("notes.txt"), b"mine").unwrap();
        let mut opts = ConvertOptions::new("mem", &out);
        opts.tuning.row_group_rows = Some(2);
        opts.tuning.max_file_bytes = 1;
        let report = run(&o, &opts);
        assert_eq!(report.files.len(), 6);
        assert_eq!(report.files[0], out.join("part-00000.parquet"));
        assert!(!out.join("part-00099.parquet").exists());
        assert!(out.join("part-1-00000.parquet").exists());
        assert!(out.join("notes.txt").exists());
        let rows: usize = read_all(&report.files).iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 12);
        let file = std::fs::File::open(&report.files[1]).unwrap();
        let meta = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let kv = meta
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap();
        let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
        assert_eq!(get("physio.version").as_deref(), Some(crate::VERSION));
        assert_eq!(
            get("physio.inputs_sha256").as_deref(),
            Some(r#"{"r02.hea":"sha-of-r02","r03.hea":"sha-of-r03"}"#)
        );
    }

    #[test]
    fn shard_output_is_named_by_shard() {
        let o = corpus();
        let dir = tempfile::tempdir().unwrap();
        let mut total = 0;
        for index in 0..2 {
            let mut opts = ConvertOptions::new("mem", dir.path());
            opts.shard = Shard { index, count: 2 };
            let report = run(&o, &opts);
            assert_eq!(
                report.files,
                vec![dir.path().join(format!("part-{index}-00000.parquet"))]
            );
            total += report.rows;
        }
        assert_eq!(total, 3);
    }
}
