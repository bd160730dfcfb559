//! The library's error type. Each module has its own error enum (parsers carry the
//! line and field that failed); [`Error`] wraps them so callers see one type, and
//! [`Error::exit_code`] is the single place that decides the process exit status.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code when some files or records failed (each named on stderr), the rest kept.
pub const EXIT_PARTIAL: u8 = 1;
/// Exit code for usage errors.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when authentication or authorization was refused.
pub const EXIT_AUTH: u8 = 3;
/// Exit code for integrity failures (checksum/size mismatch, corrupt or hostile archive).
pub const EXIT_INTEGRITY: u8 = 4;
/// Exit code for internal failures: a bug in physio (a worker panicked, an invariant
/// such as the planned row-group count did not hold), not a problem with the input.
pub const EXIT_INTERNAL: u8 = 5;

/// `err` and each of its `source()`s on one line, `error: cause: cause`, each text once:
/// most errors already put their cause in their own message and also expose it as
/// `source()`, so a cause whose text the line already holds is left out. The crate's one
/// error-chain printer (CLI messages, transfer errors, Kaggle and bucket requests).
pub(crate) fn chain_message(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

/// Any error the physio library returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or decoding a WFDB record failed.
    #[error(transparent)]
    Wfdb(#[from] crate::wfdb::WfdbError),
    /// Converting records to Parquet failed.
    #[error(transparent)]
    Convert(#[from] crate::convert::ConvertError),
    /// Resolving a dataset, its versions or its manifest failed.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// Downloading or verifying files failed.
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
    /// Talking to Kaggle failed or was refused.
    #[error(transparent)]
    Kaggle(#[from] crate::source::kaggle::KaggleError),
    /// Extracting an archive failed or was refused as hostile.
    #[error(transparent)]
    Extract(#[from] crate::extract::ExtractError),
    /// Writing to object storage (`--out s3://…`) failed or was refused.
    #[error(transparent)]
    ObjectStore(#[from] crate::objstore::ObjectStoreError),
    /// Drawing a record (`physio plot`) failed.
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
    /// A file system operation on `path` failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A path from a manifest, archive or listing would escape its target directory.
    #[error("unsafe path {path:?}: {reason}")]
    UnsafePath {
        /// The path as given.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A step of an operation failed; `step` says which (`fetching mitdb@1.0.0`), the
    /// source why. Shown as `step: cause` by error reporters that print the chain.
    #[error("{step}")]
    During {
        /// What was being done.
        step: String,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
    /// An internal failure: a bug in physio, not in the input or the request.
    #[error("internal error (please report this): {0}")]
    Internal(String),
    /// The request itself is invalid (bad option combination, unknown dataset spec).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// Attaches `path` to an I/O error.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps `source` with the step of an operation that failed.
    pub fn during(step: impl Into<String>, source: Error) -> Self {
        Error::During {
            step: step.into(),
            source: Box::new(source),
        }
    }

    /// The process exit code this error maps to (see the contract's exit codes).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Wfdb(e) => e.exit_code(),
            Error::Convert(e) => e.exit_code(),
            Error::Source(e) => e.exit_code(),
            Error::Fetch(e) => e.exit_code(),
            Error::Extract(e) => e.exit_code(),
            Error::Kaggle(e) => e.exit_code(),
            Error::ObjectStore(e) => e.exit_code(),
            Error::Plot(e) => e.exit_code(),
            Error::UnsafePath { .. } => EXIT_INTEGRITY,
            Error::Usage(_) => EXIT_USAGE,
            Error::Internal(_) => EXIT_INTERNAL,
            Error::During { source, .. } => source.exit_code(),
            Error::Io { .. } => EXIT_PARTIAL,
        }
    }
}
