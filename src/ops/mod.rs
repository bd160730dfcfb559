//! Library operations: what the `physio` commands do, callable from Rust with typed
//! options and typed reports (cargo's `ops::` pattern, issue 12).
//!
//! Each operation takes a request struct (checked here: a bad combination is
//! [`crate::Error::Usage`]), runs the library, and returns a report value in which
//! partial failure is data, not an early return. The command line (`crate::cli`) only
//! turns arguments into these requests, renders progress and prints the reports;
//! [`crate::sync`] calls these operations directly, never the command line.
//!
//! * [`fetch()`] / [`fetch_plan`] — download (or plan) a dataset version, PhysioNet or
//!   Kaggle, into a directory or an object store.
//! * [`latest_version`] — the newest published version of a PhysioNet dataset.
//! * [`ls()`] — the remote files of a version, without downloading.
//! * [`verify()`] — re-hash a local copy (or a stored version) against its checksums.
//! * [`convert()`] — WFDB and EDF records to Parquet, locally or into an object store (with
//!   `card`, a dataset card beside the part files).
//! * [`ls_records`] — a version's records planned from their headers (`ls --records`).
//! * [`convert_dataset`] — from a dataset spec to Parquet, fetch and convert overlapped
//!   (`convert <dataset>`).
//! * [`plot()`] — draw a record, or a row of physio's Parquet, to PNG or SVG
//!   ([`crate::plot`]).

pub mod convert;
pub mod dataset;
pub mod fetch;
pub mod records;
pub mod verify;

pub use crate::plot::{PlotInput, PlotOptions, PlotReport, plot};
pub use convert::{ConvertOutcome, ConvertRequest, convert};
pub use dataset::{DatasetOutcome, DatasetRequest, convert_dataset};
pub use fetch::{
    DEFAULT_JOBS, DryRun, FetchOutcome, FetchRequest, FetchSource, Fetched, Listing, PlanOutcome,
    Resolved, WhereReport, fetch, fetch_plan, latest_version, ls, resolve,
};
pub use records::{RecordListing, ls_records};
pub use verify::{Verified, verify};
