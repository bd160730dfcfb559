//! physio's integration tests: one test binary (faster to link than one per file), one
//! module per area. Tests that need Python readers (pyarrow, DuckDB, wfdb) skip with a
//! message when those are missing, unless `PHYSIO_REQUIRE_PY=1` (set by `.ci/run`) makes
//! their absence a failure.

#![allow(clippy::print_stdout, clippy::print_stderr)] // tests report skips and diagnostics

mod cli;
mod common;
mod convert;
mod disk;
mod edf;
mod edf_plan;
mod fetch;
mod info;
mod kaggle;
mod loaders;
mod objstore;
mod pipeline;
mod plot;
mod shard;
mod sync;
mod wfdb_bad_input;
mod wfdb_conformance;
mod wfdb_python;
mod wfdb_reference;
mod wfdb_roundtrip;
