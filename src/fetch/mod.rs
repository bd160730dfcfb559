//! The download engine. (Being built under issue 5.)

use crate::error::EXIT_PARTIAL;

/// Errors downloading or verifying files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// A transfer failed after its retries.
    #[error("{url}: {message}")]
    Transfer {
        /// The URL, with credentials removed.
        url: String,
        /// What went wrong.
        message: String,
    },
}

impl FetchError {
    /// Exit code for this error.
    pub fn exit_code(&self) -> u8 {
        EXIT_PARTIAL
    }
}
