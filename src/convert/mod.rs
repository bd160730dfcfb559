//! WFDB records to Parquet. (Being built under issue 4.)

use crate::error::EXIT_PARTIAL;

/// Errors converting records to Parquet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// Writing Parquet failed.
    #[error("writing {}: {source}", path.display())]
    Parquet {
        /// The output file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },
}

impl ConvertError {
    /// Exit code for this error.
    pub fn exit_code(&self) -> u8 {
        EXIT_PARTIAL
    }
}
