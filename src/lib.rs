//! physio gets medical-signal datasets from PhysioNet (and Kaggle) onto a machine fast
//! and intact, reads WFDB records exactly, and converts them to columnar Parquet that
//! training pipelines read directly.
//!
//! The crate is one library with a thin binary (`src/main.rs`). Modules:
//!
//! * [`wfdb`] — WFDB headers, signal formats, multi-segment records, annotations, writer.
//! * [`catalog`] — a version's records planned from headers only; the `--where` filter.
//! * [`edf`] — EDF and EDF+ files read as records (EEG, sleep), with their annotations.
//! * [`convert`] — WFDB and EDF records to Parquet (`record`, `samples`, `windows` layouts).
//! * [`source`] — where datasets come from: PhysioNet (and mirrors), Kaggle; manifests.
//! * [`fetch`] — the concurrent, resumable, verifying download engine.
//! * [`auth`] — credentials, realms and redaction of secrets.
//! * [`extract`] — safe zip extraction (zip-slip, symlinks, zip bombs refused).
//! * [`fsutil`] — atomic writes and safe relative paths.
//! * [`plot`] — drawing a record (or a row of physio's Parquet) to PNG or SVG.
//! * [`objstore`] — Parquet output to object storage (`--out s3://bucket/prefix/`).
//! * [`ops`] — the operations behind the commands (fetch, ls, convert, plot) with typed
//!   requests and reports; [`sync`] runs them for a whole configuration.
//! * [`pipeline`] — `convert <dataset>`: fetch and convert overlapped.
//! * [`cli`] — the command-line interface (the only module that prints).
//!
//! ## Operations
//!
//! What the `physio` commands do is callable from Rust with typed requests and
//! reports ([`ops`], [`sync`]); the command line only parses, prints and maps reports
//! to exit codes. Fetch a dataset version (`physio fetch`):
//!
//! ```no_run
//! use physio::ops::{FetchOutcome, FetchRequest};
//! let mut req = FetchRequest::new("mitdb@1.0.0", "physionet");
//! req.include = vec!["1*.hea".into(), "1*.dat".into()];
//! let rt = tokio::runtime::Runtime::new()?;
//! let outcome = rt.block_on(physio::ops::fetch(&req, &physio::fetch::NoReporter))?;
//! if let FetchOutcome::PhysioNet(f) = &outcome {
//!     for (path, err) in &f.report.failed {
//!         eprintln!("{path}: {err}");
//!     }
//! }
//! std::process::exit(outcome.exit_code().into());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! List a version's files without downloading (`physio ls`):
//!
//! ```no_run
//! let rt = tokio::runtime::Runtime::new()?;
//! let listing = rt.block_on(physio::ops::ls(&physio::ops::FetchRequest::new("ptb-xl", "")))?;
//! println!("{}@{}: {} files", listing.dataset, listing.version, listing.files.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Convert records to Parquet, locally or into an object store (`physio convert`):
//!
//! ```no_run
//! use physio::convert::{ConvertOptions, Layout, NoReporter};
//! let mut opts = ConvertOptions::new("physionet/mitdb/1.0.0", "mitdb-parquet");
//! opts.layout = Layout::Samples;
//! let outcome = physio::ops::convert(&opts, &NoReporter)?;
//! println!("{} records, {} failed", outcome.report.records_written, outcome.report.failed.len());
//! # Ok::<(), physio::Error>(())
//! ```
//!
//! Draw ten seconds of a record with its beat annotations (`physio plot`):
//!
//! ```no_run
//! use physio::ops::{PlotInput, PlotOptions};
//! let mut opts = PlotOptions::new(PlotInput::Record("mitdb/100".into()), "100.svg");
//! (opts.from, opts.to) = (Some(10.0), Some(20.0));
//! opts.annotations = Some("atr".into());
//! let report = physio::ops::plot(&opts)?;
//! println!("{} panels, {} annotations", report.signals.len(), report.annotations);
//! # Ok::<(), physio::plot::PlotError>(())
//! ```
//!
//! Keep a set of datasets fetched and converted (`physio sync`; see also
//! `examples/sync.rs`):
//!
//! ```no_run
//! use physio::sync::{SyncConfig, SyncOptions};
//! let config = SyncConfig::load(std::path::Path::new("sync.toml"))?;
//! let rt = tokio::runtime::Runtime::new()?;
//! let report = rt.block_on(physio::sync::run(&config, &SyncOptions::default()));
//! std::process::exit(report.exit_code().into());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod auth;
pub mod catalog;
#[doc(hidden)] // the command line is the binary's, not library API
pub mod cli;
pub mod convert;
pub mod edf;
pub mod env;
pub mod error;
pub mod extract;
pub mod fetch;
pub mod fsutil;
pub mod objstore;
pub mod ops;
pub mod pipeline;
pub mod plot;
pub mod shard;
pub mod source;
pub mod sync;
pub mod wfdb;

pub use error::{Error, Result};

/// physio's version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
