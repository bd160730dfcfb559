//! `physio sync`: keep a declared set of datasets fetched, verified and converted, for
//! cron and job schedulers. (Issue 7; the configuration format is in [`config`].)
//!
//! For each `[[dataset]]`, [`sync_dataset`] calls [`crate::ops::fetch()`] (idempotent:
//! only what changed upstream is transferred), then [`crate::ops::convert()`] with
//! `incremental` when the fetch changed the local copy or no output exists yet, and
//! returns a typed [`DatasetReport`] (issue 12: no command lines, no untyped JSON).
//! The conversion decodes only records whose input files changed; the others are copied
//! from the previous output — read back from the object store when `convert.out` is a
//! URL — and the report's `records_converted` / `records_reused` say which.
//!
//! Versions: a dataset without a pin follows the newest version, but once a version is
//! on disk a nightly run keeps to it and reports a newer upstream version
//! (`upgrade_available`); [`SyncOptions::upgrade`] moves to it. Silently switching a
//! training set to new data overnight is the one thing a reproducible pipeline must
//! not do.
//!
//! ```no_run
//! use physio::sync::{SyncConfig, SyncOptions};
//! let config = SyncConfig::load(std::path::Path::new("sync.toml"))?;
//! let rt = tokio::runtime::Runtime::new()?;
//! let report = rt.block_on(physio::sync::run(&config, &SyncOptions::default()));
//! for d in &report.datasets {
//!     println!("{} {:?}: exit {}", d.name, d.version, d.exit_code());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod config;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use config::{ConfigError, ConvertEntry, DatasetEntry, SyncConfig};

use crate::convert::metadata::Preset;
use crate::convert::{ConvertOptions, NoReporter};
use crate::error::{EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, Error, Result};
use crate::objstore::ObjectUrl;
use crate::ops::{self, ConvertOutcome, FetchOutcome, FetchRequest};
use crate::shard::Shard;
use crate::source::DatasetSpec;

/// How a sync run behaves beyond its configuration.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Move datasets that follow the latest version to a newer upstream version.
    pub upgrade: bool,
    /// Run only this shard of every dataset (fetch and convert use one shard key).
    pub shard: Option<Shard>,
    /// Replaces `https://physionet.org` for every PhysioNet dataset.
    pub base_url: Option<String>,
}

/// The outcome of a whole run.
#[derive(Debug)]
pub struct SyncReport {
    /// One entry per `[[dataset]]`, in file order.
    pub datasets: Vec<DatasetReport>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl SyncReport {
    /// The run's exit code: the most serious of its datasets'
    /// (integrity 4 > auth 3 > usage 2 > partial 1 > ok 0).
    pub fn exit_code(&self) -> u8 {
        self.datasets
            .iter()
            .map(DatasetReport::exit_code)
            .max()
            .unwrap_or(EXIT_OK)
    }
}

/// Why a convert step did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Some files failed to fetch: converting a partial copy would publish it.
    FetchHadFailures,
}

impl SkipReason {
    /// The reason as the report states it.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::FetchHadFailures => "fetch had failures",
        }
    }
}

/// What the convert step of one dataset did.
#[derive(Debug)]
pub enum ConvertStep {
    /// Not run.
    Skipped(SkipReason),
    /// Nothing changed upstream and the output exists.
    UpToDate {
        /// The output (path or URL).
        out: PathBuf,
    },
    /// Converted (some records may have failed: see the outcome).
    Converted {
        /// The output (path or URL).
        out: PathBuf,
        /// What was decoded, reused, written and uploaded.
        outcome: ConvertOutcome,
    },
    /// The conversion could not run.
    Failed {
        /// The output (path or URL).
        out: PathBuf,
        /// Why.
        error: Error,
    },
}

impl ConvertStep {
    /// This step's exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConvertStep::Converted { outcome, .. } if !outcome.report.failed.is_empty() => {
                EXIT_PARTIAL
            }
            ConvertStep::Failed { error, .. } => error.exit_code(),
            _ => EXIT_OK,
        }
    }
}

/// The outcome of one `[[dataset]]`.
#[derive(Debug)]
pub struct DatasetReport {
    /// The dataset as configured.
    pub name: String,
    /// The version fetched (`None` when the fetch could not start).
    pub version: Option<String>,
    /// A newer upstream version than the one kept, when there is one.
    pub upgrade_available: Option<String>,
    /// The version left behind by [`SyncOptions::upgrade`].
    pub upgraded_from: Option<String>,
    /// The fetch: its outcome, or why it could not run.
    pub fetch: Result<FetchOutcome>,
    /// Seconds the fetch step took.
    pub fetch_seconds: f64,
    /// The convert step, when the dataset has one and the fetch ran.
    pub convert: Option<ConvertStep>,
}

impl DatasetReport {
    /// This dataset's exit code: the more serious of its fetch's and convert's.
    pub fn exit_code(&self) -> u8 {
        match &self.fetch {
            Err(e) => match e.exit_code() {
                EXIT_OK => EXIT_USAGE,
                c => c,
            },
            Ok(f) => f.exit_code().max(
                self.convert
                    .as_ref()
                    .map_or(EXIT_OK, ConvertStep::exit_code),
            ),
        }
    }
}

/// Syncs every dataset of `config`, one after the other; a failing dataset is
/// reported and the next one still runs.
pub async fn run(config: &SyncConfig, opts: &SyncOptions) -> SyncReport {
    let started = Instant::now();
    let mut datasets = Vec::new();
    for entry in &config.datasets {
        datasets.push(sync_dataset(entry, opts).await);
    }
    SyncReport {
        datasets,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Syncs one dataset: fetch, then convert when needed. Never fails as a whole: errors
/// are in the report.
pub async fn sync_dataset(entry: &DatasetEntry, opts: &SyncOptions) -> DatasetReport {
    let mut report = DatasetReport {
        name: entry.name.clone(),
        version: None,
        upgrade_available: None,
        upgraded_from: None,
        fetch: Err(Error::Usage(String::new())),
        fetch_seconds: 0.0,
        convert: None,
    };
    let out = entry
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("physionet"));
    let started = Instant::now();
    let fetched = match fetch_request(entry, &out, opts, &mut report).await {
        Ok(req) => ops::fetch(&req, &crate::fetch::NoReporter).await,
        Err(e) => Err(e),
    };
    report.fetch_seconds = started.elapsed().as_secs_f64();
    let fetched = match fetched {
        Ok(f) => f,
        Err(e) => {
            report.fetch = Err(e);
            return report;
        }
    };
    report.version = Some(fetched.version());
    if let Some(conv) = &entry.convert {
        report.convert = Some(match fetched.local_dir() {
            _ if fetched.exit_code() != EXIT_OK => {
                ConvertStep::Skipped(SkipReason::FetchHadFailures)
            }
            Some(dir) => convert_step(conv, dir, fetched.changed(), opts).await,
            None => ConvertStep::Failed {
                out: conv.out.clone(),
                error: Error::Usage("a convert step needs a local fetch directory".into()),
            },
        });
    }
    report.fetch = Ok(fetched);
    report
}

/// The fetch request for `entry`, with the version to fetch: the pin, else the one on
/// disk (unless upgrading), else the newest. Records `upgrade_available` and
/// `upgraded_from` in `report`.
async fn fetch_request(
    entry: &DatasetEntry,
    out: &Path,
    opts: &SyncOptions,
    report: &mut DatasetReport,
) -> Result<FetchRequest> {
    let mut req = FetchRequest::new(&entry.name, out);
    req.include = entry.include.clone();
    req.exclude = entry.exclude.clone();
    req.shard = opts.shard;
    req.base_url = opts.base_url.clone();
    let (slug, pinned) = match DatasetSpec::parse(&entry.name)? {
        DatasetSpec::PhysioNet { slug, version } => (slug, version),
        // Kaggle versions are numbered by Kaggle; the fetch keeps its own layout.
        DatasetSpec::Kaggle { .. } => return Ok(req),
    };
    if let Some(v) = entry.version.clone().or(pinned) {
        req.dataset = format!("{slug}@{v}");
        return Ok(req);
    }
    let local = local_versions(&out.join(&slug));
    let Some(current) = local.last() else {
        req.dataset = slug;
        return Ok(req);
    };
    let latest = ops::latest_version(&req).await?;
    req.dataset = format!("{slug}@{current}");
    if latest != *current {
        report.upgrade_available = Some(latest.clone());
        if opts.upgrade {
            report.upgraded_from = Some(current.clone());
            req.dataset = format!("{slug}@{latest}");
        }
    }
    Ok(req)
}

/// Version directories already under `DIR/<slug>/`, oldest first (numeric-aware order,
/// so `1.10.0` sorts after `1.9.0`).
fn local_versions(slug_dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(slug_dir) else {
        return Vec::new();
    };
    let mut versions: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    versions.sort_by_key(|v| version_key(v));
    versions
}

fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split(['.', '-'])
        .map(|p| (p.parse::<u64>().unwrap_or(0), p.to_string()))
        .collect()
}

/// Runs the `[dataset.convert]` step on the fetched version directory `dir`, unless
/// nothing changed and the output exists.
async fn convert_step(
    conv: &ConvertEntry,
    dir: &Path,
    changed: bool,
    opts: &SyncOptions,
) -> ConvertStep {
    let failed = |error| ConvertStep::Failed {
        out: conv.out.clone(),
        error,
    };
    let copts = match convert_options(conv, dir, opts.shard) {
        Ok(o) => o,
        Err(e) => return failed(e),
    };
    let shard_prefix = crate::convert::writer::shard_prefix(&copts);
    let out = conv.out.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<Option<ConvertOutcome>> {
        // Does an output exist? Locally a path; in a store, its objects.
        let exists = match ObjectUrl::parse(&copts.out.to_string_lossy())? {
            Some(target) => crate::objstore::has_output(&target, shard_prefix)?,
            None => copts.out.exists(),
        };
        if !changed && exists {
            return Ok(None);
        }
        ops::convert(&copts, &NoReporter).map(Some)
    })
    .await;
    match result {
        Ok(Ok(None)) => ConvertStep::UpToDate { out },
        Ok(Ok(Some(outcome))) => ConvertStep::Converted { out, outcome },
        Ok(Err(e)) => failed(e),
        Err(join) => failed(Error::Internal(format!("convert worker: {join}"))),
    }
}

/// The conversion options of a `[dataset.convert]` table (the `physio convert` flags
/// as keys), reading `dir` and converting incrementally.
pub fn convert_options(
    conv: &ConvertEntry,
    dir: &Path,
    shard: Option<Shard>,
) -> Result<ConvertOptions> {
    let usage = |what: String| Error::Usage(format!("invalid sync entry: {what}"));
    let mut o = ConvertOptions::new(dir, &conv.out);
    // Only records whose input files changed are decoded again (issue 7); the output
    // is the same bytes as a full conversion.
    o.incremental = true;
    o.layout = parse_or_default(conv.layout.as_deref()).map_err(usage)?;
    o.dtype = parse_or_default(conv.dtype.as_deref()).map_err(usage)?;
    o.preset = conv
        .preset
        .as_deref()
        .map(str::parse::<Preset>)
        .transpose()?;
    o.records = conv.records.clone();
    o.set_selection_window_metadata(
        &conv.signals,
        (conv.window, conv.stride, false),
        (conv.metadata.as_ref(), conv.key.as_ref()),
    )?;
    o.annotations = conv.annotations.clone();
    o.annotations_table = conv.annotations_table.clone();
    o.high_resolution = conv.high_resolution;
    o.card = conv.card;
    if let Some(s) = shard {
        o.shard = s;
    }
    Ok(o)
}

/// `value` parsed, or the type's default when the key is absent.
fn parse_or_default<T: std::str::FromStr<Err = String> + Default>(
    value: Option<&str>,
) -> std::result::Result<T, String> {
    value
        .map(str::parse)
        .transpose()
        .map(Option::unwrap_or_default)
}
