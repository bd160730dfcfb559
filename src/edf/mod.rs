//! EDF and EDF+ files (European Data Format, Kemp et al. 1992; EDF+, Kemp & Olivan
//! 2003; <https://www.edfplus.info/specs/>), read as records: the EEG and sleep half of
//! PhysioNet (sleep-edf, CHB-MIT, eegmmidb, Siena, HMC, ...) stores EDF, not WFDB.
//!
//! An EDF file is a header (256 bytes plus 256 per signal) followed by data records,
//! each holding, for every signal in turn, that signal's samples of the record's
//! duration as little-endian 16-bit integers. physio reads one as a multi-frequency
//! record (`docs/edf.md`):
//!
//! * the frame rate is `g / duration`, where `g` is the greatest common divisor of the
//!   ordinary signals' samples per data record (the finest rate at which every signal
//!   has a whole number of samples per frame, as wfdb-python's `read_edf` chooses it),
//!   and signal `j` has `samples_per_record[j] / g` samples per frame;
//! * physical values are `digital * gain + offset`, mapping digital min/max onto
//!   physical min/max (as MNE and pyedflib); blank channels (digital or physical
//!   min = max) read with MNE's rule ([`EdfSignal::scale`]);
//! * `EDF Annotations` signals are not channels: their TALs are the record's
//!   annotations ([`EdfReader::annotations`]);
//! * EDF+D (interrupted) files place each data record at the onset of its time-keeping
//!   TAL; frames between records are invalid (NaN in physical values).

use std::path::PathBuf;

use crate::error::EXIT_PARTIAL;

/// `physio info --json` of an EDF file.
pub mod describe;
/// The header grammar.
pub mod header;
/// Reading samples and annotations: `EdfReader`.
pub mod reader;
/// EDF+ time-stamped annotation lists.
pub mod tal;

pub use header::{EdfHeader, EdfSignal, EdfVariant, parse_header};
pub use reader::{EdfAnnotation, EdfReader, GAP};
pub use tal::{Tal, TalError, parse_tals};

/// True when `path` names an EDF file by its extension (`.edf`, any case).
pub fn is_edf_path(path: &std::path::Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("edf"))
}

/// Errors reading EDF files. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdfError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A header field is malformed or inconsistent.
    #[error("{}: header: {}{field}: {reason}", path.display(),
            signal.map(|s| format!("signal {s}: ")).unwrap_or_default())]
    Header {
        /// The file.
        path: PathBuf,
        /// The field (`"number of signals"`, `"digital minimum"`, ...).
        field: &'static str,
        /// 0-based signal index, for per-signal fields.
        signal: Option<usize>,
        /// What is wrong with it.
        reason: String,
    },
    /// The file holds fewer data records than the header declares.
    #[error("{}: truncated: {reason}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Sizes involved.
        reason: String,
    },
    /// An annotation signal holds a malformed TAL.
    #[error("{}: data record {record}: annotations: {source}", path.display())]
    Tal {
        /// The file.
        path: PathBuf,
        /// 0-based data record.
        record: u64,
        /// The TAL error.
        #[source]
        source: TalError,
    },
    /// The data records of an EDF+D file cannot be placed on one time line.
    #[error("{}: EDF+D: {reason}", path.display())]
    Discontinuous {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file uses something this reader does not support.
    #[error("{}: unsupported: {reason}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What.
        reason: String,
    },
    /// A frame range outside the record was requested.
    #[error("{}: frames {start}..{end} outside the record's {n_frames} frames", path.display())]
    Range {
        /// The file.
        path: PathBuf,
        /// Requested start frame.
        start: u64,
        /// Requested end frame (exclusive).
        end: u64,
        /// Frames in the record.
        n_frames: u64,
    },
}

impl EdfError {
    /// Exit code for this error: a bad file is a per-record failure.
    pub fn exit_code(&self) -> u8 {
        EXIT_PARTIAL
    }

    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            EdfError::Io { path, .. }
            | EdfError::Header { path, .. }
            | EdfError::Truncated { path, .. }
            | EdfError::Tal { path, .. }
            | EdfError::Discontinuous { path, .. }
            | EdfError::Unsupported { path, .. }
            | EdfError::Range { path, .. } => path,
        }
    }
}
