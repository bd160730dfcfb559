//! physio gets medical-signal datasets from PhysioNet (and Kaggle) onto a machine fast
//! and intact, reads WFDB records exactly, and converts them to columnar Parquet that
//! training pipelines read directly.
//!
//! The crate is one library with a thin binary (`src/main.rs`). Modules:
//!
//! * [`wfdb`] — WFDB headers, signal formats, multi-segment records, annotations, writer.
//! * [`convert`] — WFDB records to Parquet (`record`, `samples`, `windows` layouts).
//! * [`source`] — where datasets come from: PhysioNet (and mirrors), Kaggle; manifests.
//! * [`fetch`] — the concurrent, resumable, verifying download engine.
//! * [`auth`] — credentials, realms and redaction of secrets.
//! * [`extract`] — safe zip extraction (zip-slip, symlinks, zip bombs refused).
//! * [`fsutil`] — atomic writes and safe relative paths.
//! * [`plot`] — drawing a record (or a row of physio's Parquet) to PNG or SVG.
//! * [`objstore`] — Parquet output to object storage (`--out s3://bucket/prefix/`).
//! * [`cli`] — the command-line interface (the only module that prints).

pub mod auth;
pub mod cli;
pub mod convert;
pub mod env;
pub mod error;
pub mod extract;
pub mod fetch;
pub mod fsutil;
pub mod objstore;
pub mod plot;
pub mod shard;
pub mod source;
pub mod sync;
pub mod wfdb;

pub use error::{Error, Result};

/// physio's version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
