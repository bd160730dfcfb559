//! `physio convert <dataset>` (issue 15): from a dataset name to Parquet in one run,
//! with downloading and decoding overlapped.
//!
//! 1. [`catalog::plan`] fetches the RECORDS files and the selected records' headers into
//!    the mirror (`DIR/<slug>/<version>`), verified like any fetched file; `--where`
//!    narrows the records; a `--preset`'s metadata tables are fetched too.
//! 2. The records' signal and annotation files are fetched by the ordinary engine, in
//!    record (= output) order, on a thread of their own, while the ordinary converter
//!    ([`convert::convert_with`]) runs on the mirror directory through a
//!    [`SourceOpener`] that answers from the headers at once and blocks a record's
//!    *sample* reads only until that record's files are verified. The converter plans
//!    row groups from headers alone, so it starts at once and each row group is decoded
//!    as soon as its records have arrived: the run takes about as long as the longer of
//!    download and conversion, not their sum. Because the conversion is the same code
//!    on the same files, the Parquet is byte for byte what `fetch` then `convert` writes.
//! 3. `--no-keep-raw`: once every row of a record is appended to the output, its signal
//!    and annotation files are deleted, and the download is held back so that at most
//!    2 × [`PipelineOptions::ahead`] records (plus those the converter is waiting for)
//!    have raw files on disk: peak raw disk use is bounded by a record count, not the
//!    dataset size (measured as [`PipelineReport::peak_raw_bytes`]). Headers are kept:
//!    they are the plan's cache (a few KB per record).
//!
//! A re-run after an interruption re-uses what is verified on disk (the engine's
//! verified-state cache and `.part` resumption) and, because the run converts with
//! `--incremental` whenever the output already exists, copies the row groups of every
//! finished part file instead of decoding them again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use crate::catalog::{self, CatalogOptions, Filter, RecordInfo, Remote};
use crate::convert::source::{AnnotationRow, ChannelMeta};
use crate::convert::{
    self, ConvertError, ConvertOptions, ConvertReport, DatasetOpener, RecordMeta, RecordSource,
    SourceOpener,
};
use crate::error::{Error, Result};
use crate::fetch::{FetchOptions, Outcome, Reporter as FetchReporter};

/// Options of `physio convert <dataset>`.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// The conversion; `input` is replaced by the version directory in the mirror.
    pub convert: ConvertOptions,
    /// `--where`: only records whose headers match.
    pub filter: Option<Filter>,
    /// Keep the verified raw files in the mirror (the default); `false` is
    /// `--no-keep-raw`.
    pub keep_raw: bool,
    /// With `keep_raw == false`: a new batch of downloads (of at most `ahead` records,
    /// 256 at most) starts only while fewer than `ahead` records downloaded are not yet
    /// converted, so at most `2 × ahead` records (plus those of the converter's
    /// in-flight row groups, which it waits for) have raw files on disk.
    pub ahead: usize,
}

/// What a pipeline run did.
#[derive(Debug, Default)]
pub struct PipelineReport {
    /// The conversion's report (records written, failed, files).
    pub convert: ConvertReport,
    /// Records the headers describe (after `--records` / `--shard`).
    pub planned: usize,
    /// Records selected (after `--where`, without planning failures).
    pub selected: usize,
    /// Files downloaded (headers included).
    pub fetched_files: usize,
    /// Files found verified in the mirror.
    pub skipped_files: usize,
    /// Bytes downloaded (headers included).
    pub fetched_bytes: u64,
    /// Files (or records' headers) that could not be fetched or planned, with why.
    pub failed_files: Vec<(String, Error)>,
    /// Records that could not be planned from their headers, with why.
    pub failed_plans: Vec<(String, String)>,
    /// Most bytes of signal/annotation files on disk at once during the run.
    pub peak_raw_bytes: u64,
    /// Raw files deleted (`--no-keep-raw`).
    pub deleted_files: usize,
}

/// Per-record download state.
#[derive(Debug, Clone, PartialEq)]
enum Ready {
    Pending(usize),
    Done,
    Failed(String),
}

#[derive(Debug)]
struct Shared {
    ready: Vec<Ready>,
    /// Records whose downloads have been started (a prefix of the record order).
    scheduled: usize,
    /// Every record before this index is finished by the converter (or never will be
    /// read): their raw files may be gone.
    done_upto: usize,
    /// The highest record index a converter thread is waiting for, plus one.
    wanted: usize,
    /// The converter finished: the fetch thread stops scheduling.
    closed: bool,
    raw_bytes: u64,
    peak_raw_bytes: u64,
    deleted: usize,
}

/// What the converter and the fetch thread share.
struct Staging<'a> {
    dir: PathBuf,
    records: &'a [&'a RecordInfo],
    index: HashMap<&'a str, usize>,
    /// Data files (manifest paths in the manifest) of each record.
    files: Vec<Vec<String>>,
    /// file -> the records that need it.
    owners: HashMap<String, Vec<usize>>,
    digests: HashMap<String, Option<[u8; 32]>>,
    shared: Mutex<Shared>,
    cv: Condvar,
    /// The converter's own opener (`--high-resolution` wrapped like `physio convert`).
    inner: &'a dyn SourceOpener,
    keep_raw: bool,
}

impl Staging<'_> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until record `name`'s files are verified (or failed).
    fn wait(&self, name: &str) -> std::result::Result<(), ConvertError> {
        let Some(&i) = self.index.get(name) else {
            return Ok(());
        };
        let mut s = self.lock();
        if s.wanted <= i {
            s.wanted = i + 1;
            self.cv.notify_all();
        }
        loop {
            match &s.ready[i] {
                Ready::Done => return Ok(()),
                Ready::Failed(why) => {
                    return Err(ConvertError::Unsuitable {
                        name: name.to_string(),
                        reason: format!("download failed: {why}"),
                    });
                }
                Ready::Pending(_) => s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    /// Marks every still-pending record in `range` as failed (the fetch stopped).
    fn fail_pending(&self, range: std::ops::Range<usize>, why: &str) {
        let mut s = self.lock();
        for i in range {
            if matches!(s.ready[i], Ready::Pending(_)) {
                s.ready[i] = Ready::Failed(why.to_string());
            }
        }
        self.cv.notify_all();
    }

    fn file_done(&self, path: &str, outcome: Outcome) {
        let Some(owners) = self.owners.get(path) else {
            return;
        };
        let size = match outcome {
            Outcome::Failed => 0,
            _ => std::fs::metadata(self.dir.join(path)).map_or(0, |m| m.len()),
        };
        let mut s = self.lock();
        s.raw_bytes += size;
        s.peak_raw_bytes = s.peak_raw_bytes.max(s.raw_bytes);
        for &i in owners {
            s.ready[i] = match (&s.ready[i], outcome) {
                (Ready::Failed(w), _) => Ready::Failed(w.clone()),
                (_, Outcome::Failed) => Ready::Failed(format!("{path} (see its error)")),
                (Ready::Pending(n), _) if *n > 1 => Ready::Pending(n - 1),
                _ => Ready::Done,
            };
        }
        self.cv.notify_all();
    }

    /// The converter finished these records: with `--no-keep-raw`, delete their files.
    fn records_done(&self, names: &[&str]) {
        let Some(max) = names.iter().filter_map(|n| self.index.get(n)).max() else {
            return;
        };
        let mut freed = 0u64;
        let mut deleted = 0;
        if !self.keep_raw {
            for n in names {
                let Some(&i) = self.index.get(n) else {
                    continue;
                };
                for f in &self.files[i] {
                    // A file two records share stays until the later one is done.
                    if self.owners[f].iter().any(|&o| o > i) {
                        continue;
                    }
                    let p = self.dir.join(f);
                    let len = std::fs::metadata(&p).map_or(0, |m| m.len());
                    if std::fs::remove_file(&p).is_ok() {
                        freed += len;
                        deleted += 1;
                    }
                }
            }
        }
        let mut s = self.lock();
        s.done_upto = s.done_upto.max(max + 1);
        s.raw_bytes = s.raw_bytes.saturating_sub(freed);
        s.deleted += deleted;
        self.cv.notify_all();
    }

    /// Waits until the fetch thread may schedule records from `next` on.
    fn gate(&self, next: usize, ahead: usize) -> bool {
        let mut s = self.lock();
        loop {
            if s.closed {
                return false;
            }
            if self.keep_raw || next.saturating_sub(s.done_upto) < ahead || s.wanted > next {
                s.scheduled = next;
                return true;
            }
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The [`RecordMeta`] the WFDB reader would give, from the header alone, for a
    /// single-segment record with a signal length (the common case); `None` otherwise.
    fn meta_from_header(&self, name: &str) -> Option<RecordMeta> {
        // An EDF record's header is inside its (not yet fetched) file.
        if crate::edf::is_edf_path(Path::new(name)) {
            return None;
        }
        let h = crate::wfdb::read_header(&self.dir.join(name)).ok()?;
        if h.segments.is_some() || h.signals.is_empty() {
            return None;
        }
        let n_frames = h.sig_len?;
        Some(RecordMeta {
            name: name.to_string(),
            fs: h.fs,
            n_frames,
            channels: h
                .signals
                .iter()
                .map(|s| ChannelMeta {
                    name: s.description.clone(),
                    units: s.units.clone(),
                    samps_per_frame: s.samps_per_frame,
                    gain: Some(s.adc_gain),
                    baseline: Some(s.baseline),
                })
                .collect(),
            base_date: h.base_date.map(|d| d.to_string()),
            base_time: h.base_time.map(|t| t.to_string()),
            comments: h.comments.clone(),
        })
    }
}

impl SourceOpener for Staging<'_> {
    /// From the header alone where it gives everything (so the converter can plan
    /// every row group before any signal byte arrives); else after the download.
    fn probe(&self, name: &str, check_data: bool) -> std::result::Result<RecordMeta, ConvertError> {
        match self.meta_from_header(name) {
            Some(m) => Ok(m),
            None => {
                self.wait(name)?;
                self.inner.probe(name, check_data)
            }
        }
    }

    /// After the download; the reader's view of the record must equal what `probe`
    /// said from the header, or the record is refused rather than written wrongly.
    fn open(&self, name: &str) -> std::result::Result<Box<dyn RecordSource>, ConvertError> {
        self.wait(name)?;
        if let Some(m) = self.meta_from_header(name)
            && self.inner.probe(name, false)? != m
        {
            return Err(ConvertError::Unsuitable {
                name: name.to_string(),
                reason: "the record as read differs from its header's plan".to_string(),
            });
        }
        self.inner.open(name)
    }

    fn annotations(
        &self,
        name: &str,
        ext: &str,
    ) -> std::result::Result<Option<Vec<AnnotationRow>>, ConvertError> {
        self.wait(name)?;
        self.inner.annotations(name, ext)
    }

    /// From the manifest's SHA-256 of each file (every file was verified against it),
    /// so provenance needs no second pass over the bytes; the reader's own hashing
    /// where the manifest has no digest.
    fn input_digests(
        &self,
        name: &str,
    ) -> std::result::Result<Vec<(String, String)>, ConvertError> {
        if let Some(&i) = self.index.get(name) {
            let r = self.records[i];
            let mut out = Vec::new();
            for (path, _) in r.headers.iter().chain(&r.files) {
                match self.digests.get(path) {
                    Some(Some(d)) => out.push((path.clone(), hex::encode(d))),
                    _ => {
                        out.clear();
                        break;
                    }
                }
            }
            if !out.is_empty() {
                out.sort();
                out.dedup();
                return Ok(out);
            }
        }
        self.wait(name)?;
        self.inner.input_digests(name)
    }
}

/// Forwards the engine's events to the display and to the staging area.
struct StagingReporter<'a> {
    staging: &'a Staging<'a>,
    display: &'a dyn FetchReporter,
}

impl FetchReporter for StagingReporter<'_> {
    fn on_plan(&self, files: usize, bytes: Option<u64>) {
        self.display.on_plan(files, bytes);
    }
    fn on_file_start(&self, path: &str) {
        self.display.on_file_start(path);
    }
    fn on_bytes(&self, n: u64) {
        self.display.on_bytes(n);
    }
    fn on_file_done(&self, path: &str, outcome: Outcome) {
        self.staging.file_done(path, outcome);
        self.display.on_file_done(path, outcome);
    }
}

/// Forwards the converter's events to the display and to the staging area.
struct ConvertForward<'a> {
    staging: &'a Staging<'a>,
    display: &'a dyn convert::Reporter,
}

impl convert::Reporter for ConvertForward<'_> {
    fn on_plan(&self, records: usize, rows: u64) {
        self.display.on_plan(records, rows);
    }
    fn on_rows_written(&self, rows: u64) {
        self.display.on_rows_written(rows);
    }
    fn on_failure(&self, name: &str, error: &ConvertError) {
        self.display.on_failure(name, error);
    }
    fn on_records_done(&self, names: &[&str]) {
        self.staging.records_done(names);
        self.display.on_records_done(names);
    }
}

/// Most records per download batch with `--no-keep-raw` (each batch is one engine run,
/// which saves the verified-state cache once: small batches of a large dataset would
/// rewrite it thousands of times).
const MAX_BATCH: usize = 256;

/// Records per download batch when raw files are kept (no disk bound to keep; each
/// batch boundary lets the last files of a batch run on fewer connections).
const KEEP_RAW_BATCH: usize = 1024;

/// Files a `--preset` joins, fetched before the conversion starts.
fn preset_files(opts: &ConvertOptions) -> Vec<String> {
    match opts.preset {
        Some(convert::metadata::Preset::PtbXl) => {
            vec!["ptbxl_database.csv".into(), "scp_statements.csv".into()]
        }
        None => Vec::new(),
    }
}

/// Runs `physio convert <dataset>` on an already resolved version: see the module docs.
/// `handle` runs the downloads; this function blocks (call it outside the runtime).
pub fn run(
    handle: &tokio::runtime::Handle,
    remote: &Remote<'_>,
    opts: &PipelineOptions,
    fetch_display: &dyn FetchReporter,
    convert_display: &dyn convert::Reporter,
) -> Result<PipelineReport> {
    let mut report = PipelineReport::default();
    let mut copts = opts.convert.clone();
    copts.input = remote.dir.to_path_buf();
    // Resuming: records whose rows an earlier (interrupted) run finished are copied.
    if copts.out.exists() {
        copts.incremental = true;
    }
    let catalog = handle.block_on(catalog::plan(
        remote,
        &CatalogOptions {
            records: copts.records.clone(),
            shard: copts.shard,
        },
        fetch_display,
    ))?;
    report.planned = catalog.records.len();
    report.fetched_bytes += catalog.bytes;
    report.fetched_files += catalog.fetched;
    report.failed_files.extend(catalog.failed);
    report.failed_plans = catalog
        .records
        .iter()
        .filter_map(|r| r.error.clone().map(|e| (r.name.clone(), e)))
        .collect();
    let presets = preset_files(&copts);
    if !presets.is_empty() {
        let r = handle.block_on(remote.fetch_paths(
            &presets,
            &FetchOptions::shared(),
            fetch_display,
        ))?;
        report.fetched_bytes += r.bytes;
        report.fetched_files += r.done.len();
        report.skipped_files += r.skipped.len();
        report.failed_files.extend(r.failed);
    }
    let selected: Vec<&RecordInfo> = catalog
        .records
        .iter()
        .filter(|r| r.error.is_none() && opts.filter.as_ref().is_none_or(|f| f.matches(r)))
        .collect();
    report.selected = selected.len();

    let in_manifest = |p: &str| {
        remote
            .manifest
            .entries
            .binary_search_by(|e| e.path.as_str().cmp(p))
            .is_ok()
    };
    let mut files = Vec::with_capacity(selected.len());
    let mut owners: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in selected.iter().enumerate() {
        let mut fs: Vec<String> = r.files.iter().map(|(p, _)| p.clone()).collect();
        if let Some(ext) = &copts.annotations {
            fs.push(format!("{}.{ext}", r.name));
        }
        // A file the manifest lacks is not waited for: the reader reports it missing.
        fs.retain(|p| in_manifest(p));
        for f in &fs {
            owners.entry(f.clone()).or_default().push(i);
        }
        files.push(fs);
    }
    let ready = files
        .iter()
        .map(|f| match f.len() {
            0 => Ready::Done,
            n => Ready::Pending(n),
        })
        .collect();
    let digests = remote
        .manifest
        .entries
        .iter()
        .map(|e| (e.path.clone(), e.sha256))
        .collect();
    let dataset_opener = DatasetOpener::new(remote.dir);
    let high_res = convert::high_res::HighResOpener::new(&dataset_opener);
    let inner: &dyn SourceOpener = match copts.high_resolution {
        true => &high_res,
        false => &dataset_opener,
    };
    let staging = Staging {
        dir: remote.dir.to_path_buf(),
        records: &selected,
        index: selected
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str(), i))
            .collect(),
        files,
        owners,
        digests,
        shared: Mutex::new(Shared {
            ready,
            scheduled: 0,
            done_upto: 0,
            wanted: 0,
            closed: false,
            raw_bytes: 0,
            peak_raw_bytes: 0,
            deleted: 0,
        }),
        cv: Condvar::new(),
        inner,
        keep_raw: opts.keep_raw,
    };
    let found = convert::discover::Discovered {
        root: remote.dir.to_path_buf(),
        records: selected
            .iter()
            .map(|r| convert::RecordRef {
                name: r.name.clone(),
            })
            .collect(),
    };
    let ahead = opts.ahead.max(1);
    // Keeping raw files, batches only let a failed conversion stop the downloads.
    let batch = if opts.keep_raw {
        KEEP_RAW_BATCH
    } else {
        ahead.min(MAX_BATCH)
    };
    let fetch_reporter = StagingReporter {
        staging: &staging,
        display: fetch_display,
    };
    let convert_reporter = ConvertForward {
        staging: &staging,
        display: convert_display,
    };
    let (converted, fetched) = std::thread::scope(|scope| {
        let fetcher = scope.spawn(|| {
            // This run's records' files: its shard's own lock, so concurrent shard
            // runs on one mirror fetch side by side.
            let own = FetchOptions::for_shard((copts.shard.count > 1).then_some(copts.shard));
            let mut reports = Vec::new();
            let n = staging.records.len();
            let mut start = 0;
            while start < n {
                let end = (start + batch).min(n);
                if !staging.gate(start, ahead) {
                    break;
                }
                let paths: Vec<String> = staging.files[start..end].concat();
                match handle.block_on(remote.fetch_paths(&paths, &own, &fetch_reporter)) {
                    Ok(r) => reports.push(Ok(r)),
                    Err(e) => {
                        staging.fail_pending(start..n, &e.to_string());
                        reports.push(Err(e));
                        break;
                    }
                }
                // Files the engine did not report (none, unless it stopped early).
                staging.fail_pending(start..end, "not downloaded");
                start = end;
            }
            reports
        });
        let converted = convert::convert_with(&copts, &found, &staging, &convert_reporter);
        {
            let mut s = staging.lock();
            s.closed = true;
            staging.cv.notify_all();
        }
        let fetched = fetcher.join();
        (converted, fetched)
    });
    let fetched =
        fetched.map_err(|_| Error::Usage("internal: the download thread panicked".into()))?;
    for r in fetched {
        let r = r?;
        report.fetched_bytes += r.bytes;
        report.fetched_files += r.done.len();
        report.skipped_files += r.skipped.len();
        report.failed_files.extend(r.failed);
    }
    report.convert = converted?;
    if !opts.keep_raw {
        // Records the converter never read to the end (failed, zero rows).
        let all: Vec<&str> = selected.iter().map(|r| r.name.as_str()).collect();
        staging.records_done(&all);
    }
    let s = staging.lock();
    report.peak_raw_bytes = s.peak_raw_bytes;
    report.deleted_files = s.deleted;
    Ok(report)
}
