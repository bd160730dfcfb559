//! Dataset sources: where a dataset's files and checksums come from. A [`DatasetSpec`]
//! names a dataset as the user typed it (`ptb-xl`, `mitdb@1.0.0`, `kaggle:o/d`);
//! [`physionet`] resolves versions and manifests on physionet.org, a mirror, a local
//! `file://` tree or the AWS open-data layout (whose bucket is listed through
//! `object_store`); [`crate::fetch::manifest`] and [`listing`] parse what those servers
//! publish; [`kaggle`] resolves and fetches Kaggle datasets.

pub mod aws;
mod bucket;
pub mod kaggle;
pub mod listing;
pub mod physionet;

use crate::error::{EXIT_PARTIAL, EXIT_USAGE};

pub use physionet::{Layout, PhysioNet};

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
    /// The dataset kind is recognised but not supported by this build.
    #[error("{0} datasets are not yet supported by this build")]
    Unsupported(&'static str),
    /// A base URL could not be used.
    #[error("invalid base URL {url:?}: {reason}")]
    BadBaseUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// No version of the dataset could be found.
    #[error("{slug}: no versions found at {url}")]
    NoVersion {
        /// The project slug.
        slug: String,
        /// The (redacted) URL that was searched.
        url: String,
    },
    /// A bucket listing answered, but not with a usable `ListBucketResult`.
    #[error("cannot read the listing of {url}: {message}")]
    Listing {
        /// The (redacted) bucket URL.
        url: String,
        /// What was wrong with the answer.
        message: String,
    },
    /// The dataset or version does not exist at the source.
    #[error("{slug}{}: not found at {url}", version.as_deref().map(|v| format!("@{v}")).unwrap_or_default())]
    NotFound {
        /// The project slug.
        slug: String,
        /// The version, when one was asked for.
        version: Option<String>,
        /// The (redacted) URL that answered 404.
        url: String,
    },
}

impl SourceError {
    /// Exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            SourceError::BadSpec { .. }
            | SourceError::Unsupported(_)
            | SourceError::BadBaseUrl { .. } => EXIT_USAGE,
            SourceError::NoVersion { .. }
            | SourceError::NotFound { .. }
            | SourceError::Listing { .. } => EXIT_PARTIAL,
        }
    }
}

/// A dataset as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetSpec {
    /// A PhysioNet project: slug and optional version.
    PhysioNet {
        /// Project slug (`ptb-xl`).
        slug: String,
        /// Version (`1.0.3`); `None` means the newest.
        version: Option<String>,
    },
    /// A Kaggle dataset `kaggle:<owner>/<dataset>[@version]`.
    Kaggle {
        /// Dataset owner.
        owner: String,
        /// Dataset name.
        dataset: String,
        /// Version number, if given.
        version: Option<String>,
    },
}

impl DatasetSpec {
    /// Parses `slug[@version]` or `kaggle:owner/dataset[@version]`.
    ///
    /// ```
    /// use physio::source::DatasetSpec;
    /// let s = DatasetSpec::parse("ptb-xl@1.0.3").unwrap();
    /// assert_eq!(s, DatasetSpec::PhysioNet { slug: "ptb-xl".into(), version: Some("1.0.3".into()) });
    /// ```
    pub fn parse(spec: &str) -> Result<DatasetSpec, SourceError> {
        let bad = |reason: &str| SourceError::BadSpec {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let (name, version) = match spec.split_once('@') {
            Some((n, v)) => {
                if !is_name(v, ".") {
                    return Err(bad(
                        "the version may hold only letters, digits, '.', '-', '_'",
                    ));
                }
                (n, Some(v.to_string()))
            }
            None => (spec, None),
        };
        if let Some(rest) = name.strip_prefix("kaggle:") {
            let (owner, dataset) = rest
                .split_once('/')
                .ok_or_else(|| bad("expected kaggle:<owner>/<dataset>"))?;
            if !is_name(owner, "") || !is_name(dataset, "") {
                return Err(bad("expected kaggle:<owner>/<dataset>"));
            }
            return Ok(DatasetSpec::Kaggle {
                owner: owner.to_string(),
                dataset: dataset.to_string(),
                version,
            });
        }
        // PhysioNet slugs are lower-case letters, digits and hyphens; be a little more
        // lenient, but never accept anything that could form a path or URL trick.
        if !is_name(name, "") {
            return Err(bad(
                "a PhysioNet slug holds only letters, digits, '-' and '_' (e.g. ptb-xl)",
            ));
        }
        Ok(DatasetSpec::PhysioNet {
            slug: name.to_string(),
            version,
        })
    }
}

/// True for a non-empty name of ASCII letters, digits, `-`, `_` and the `extra` chars,
/// not starting with `.` (so never `.` or `..`).
fn is_name(s: &str, extra: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || extra.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        assert_eq!(
            DatasetSpec::parse("mitdb").unwrap(),
            DatasetSpec::PhysioNet {
                slug: "mitdb".into(),
                version: None
            }
        );
        assert_eq!(
            DatasetSpec::parse("kaggle:shayanfazeli/heartbeat@2").unwrap(),
            DatasetSpec::Kaggle {
                owner: "shayanfazeli".into(),
                dataset: "heartbeat".into(),
                version: Some("2".into())
            }
        );
    }

    #[test]
    fn refuses_tricks() {
        for s in [
            "",
            "../x",
            "a/b",
            "x@",
            "x@../1",
            "x@1/2",
            "kaggle:x",
            "kaggle:/d",
            "a b",
            "x@.",
            "kaggle:o/d/e",
        ] {
            assert!(DatasetSpec::parse(s).is_err(), "{s:?} should be refused");
        }
    }
}
