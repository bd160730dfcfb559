//! Dataset sources: PhysioNet (and mirrors) and Kaggle. (Being built under issues 5, 6.)

pub mod kaggle;

use crate::error::EXIT_USAGE;

/// Errors resolving a dataset, its versions or its manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The dataset spec could not be parsed.
    #[error("invalid dataset {spec:?}: {reason}")]
    BadSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl SourceError {
    /// Exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            SourceError::BadSpec { .. } => EXIT_USAGE,
        }
    }
}
