//! `physio sync`: keep a declared set of datasets fetched, verified and converted, for
//! cron and job schedulers. (Issue 7; the configuration format is in [`config`].)

pub mod config;

pub use config::{ConfigError, ConvertEntry, DatasetEntry, SyncConfig};
