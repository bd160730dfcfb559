//! WFDB records: headers, signal formats, multi-segment records, annotations and a
//! writer. (Being built under issue 3.)

use crate::error::EXIT_PARTIAL;

/// Errors reading or writing WFDB files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WfdbError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl WfdbError {
    /// Exit code for this error: a bad record is a per-record failure.
    pub fn exit_code(&self) -> u8 {
        EXIT_PARTIAL
    }
}
