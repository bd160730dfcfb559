//! WFDB records: headers, signal formats, multi-segment records, annotations and a
//! writer.
//!
//! The reference for every rule is the WFDB Programmer's Guide (header(5), signal(5),
//! annotation(5); <https://physionet.org/physiotools/wag/>) and, where the guide leaves
//! a choice, wfdb-python 4.3.1, against which `fixtures/conformance/` was generated.
//! `docs/wfdb.md` lists the rules as implemented.

use std::path::PathBuf;

use crate::error::EXIT_PARTIAL;

/// MIT-format annotation files.
pub mod annotation;
/// FLAC signal files (formats 508, 516, 524).
pub mod flac;
/// Signal formats and their byte-level codecs.
pub mod format;
/// Frame semantics of oversampled signals (WFDB C's frame mean, high resolution).
pub mod frame;
/// The `.hea` header grammar.
pub mod header;
/// Reading samples: `RecordReader`.
pub mod signal;
/// Writing records.
pub mod writer;

pub use annotation::{Annotation, read_annotations};
pub use format::SignalFormat;
pub use header::{
    BaseDate, BaseTime, Header, SegmentSpec, SignalSpec, header_path, parse_header, read_header,
};
pub use signal::{
    ChecksumResult, PhysicalScale, RecordReader, SignalInfo, to_physical, verify_checksums,
};
pub use writer::{WriteSignal, write_record};

/// Errors reading or writing WFDB files. Every variant names the file involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WfdbError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A header line is malformed.
    #[error("{}:{line}: {field}: {reason}", path.display())]
    Header {
        /// The header file.
        path: PathBuf,
        /// 1-based line number (0 when the file has no record line at all).
        line: usize,
        /// The field that failed (`"format"`, `"base time"`, ...).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A signal file holds fewer samples than the header says.
    #[error("{}: signal file too short: {reason}", path.display())]
    ShortSignalFile {
        /// The signal file.
        path: PathBuf,
        /// Sizes involved.
        reason: String,
    },
    /// Sample data is corrupt (e.g. an invalid FLAC stream).
    #[error("{}: bad signal data: {reason}", path.display())]
    Data {
        /// The signal file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The record uses something this reader does not support.
    #[error("{}: unsupported: {reason}", path.display())]
    Unsupported {
        /// The header or signal file.
        path: PathBuf,
        /// What is unsupported.
        reason: String,
    },
    /// The segments of a multi-segment record cannot be combined as asked.
    #[error("{}: {reason}", path.display())]
    Segments {
        /// The top-level header.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A frame range outside the record was requested.
    #[error("{}: frames {start}..{end} outside the record's {n_frames} frames", path.display())]
    Range {
        /// The header.
        path: PathBuf,
        /// Requested start frame.
        start: u64,
        /// Requested end frame (exclusive).
        end: u64,
        /// Frames in the record.
        n_frames: u64,
    },
    /// An annotation file is malformed.
    #[error("{}: byte {offset}: {reason}", path.display())]
    Annotation {
        /// The annotation file.
        path: PathBuf,
        /// Byte offset of the bad annotation.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A record cannot be written as asked.
    #[error("{}: cannot write: {reason}", path.display())]
    Write {
        /// The file that would be written.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl WfdbError {
    /// Exit code for this error: a bad record is a per-record failure.
    pub fn exit_code(&self) -> u8 {
        EXIT_PARTIAL
    }

    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            WfdbError::Io { path, .. }
            | WfdbError::Header { path, .. }
            | WfdbError::ShortSignalFile { path, .. }
            | WfdbError::Data { path, .. }
            | WfdbError::Unsupported { path, .. }
            | WfdbError::Segments { path, .. }
            | WfdbError::Range { path, .. }
            | WfdbError::Annotation { path, .. }
            | WfdbError::Write { path, .. } => path,
        }
    }
}
