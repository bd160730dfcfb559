//! The download engine: given a plan (a version directory, the files to fetch and what
//! each must hash to), brings the local copy in line with it — concurrently, resumably,
//! verifying every byte — and returns a [`FetchReport`] in which partial failure is a
//! value (contract exit code 1 names every failed file and keeps the rest).
//!
//! Per file: a file already on disk whose size+mtime match the verified-state cache and
//! whose cached digest equals the manifest's is skipped with a `stat`; otherwise it is
//! hashed and kept if it matches, and downloaded (see [`download`]) if not. A lock file
//! stops two runs on the same directory (or shard) from racing.
//!
//! There is one fetch loop (`destination::run`) and two destinations: the local
//! version directory (`local::LocalDir`, what [`fetch()`] uses) and a prefix in an
//! object store (`objstore::StoreDestination`, what [`crate::objstore::fetch_to_store`]
//! uses). A destination says what is already verified there, where the downloader writes
//! a file, and how a verified file becomes its copy; everything else is the loop's.

pub mod body;
pub mod client;
pub mod concurrency;
pub(crate) mod destination;
pub mod download;
pub mod hash;
pub(crate) mod local;
pub mod manifest;
pub mod plan;
pub mod rate;
pub mod reporter;
pub mod retry;
pub(crate) mod scheduler;
pub(crate) mod split;
pub(crate) mod state;
pub mod verify;

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use url::Url;

pub use client::HttpClient;
pub(crate) use destination::{Destination, run};
pub use download::{Downloaded, Downloader, DownloaderOptions, Expected, Mirror};
pub(crate) use local::LocalDir;
pub use local::already_verified;
pub use manifest::{Entry, Manifest};
pub use reporter::{NoReporter, Outcome, Reporter};

use crate::error::{EXIT_AUTH, EXIT_INTEGRITY, EXIT_PARTIAL, Error, Result};

/// Why a server refused access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProblem {
    /// No credentials were configured.
    NoCredentials,
    /// Credentials exist but were not sent (plain HTTP to a non-loopback host).
    NotSent,
    /// The server rejected the credentials (401).
    Rejected,
    /// Credentials were accepted but access is refused (403): typically the dataset's
    /// data use agreement has not been signed, or the account lacks credentialing.
    Forbidden,
}

impl std::fmt::Display for AuthProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthProblem::NoCredentials => {
                "this dataset needs credentials: set PHYSIONET_USERNAME and PHYSIONET_PASSWORD, or add the host to ~/.netrc"
            }
            AuthProblem::NotSent => {
                "credentials are configured but are only sent over HTTPS (or to loopback); use an https:// base URL"
            }
            AuthProblem::Rejected => "the user name or password was not accepted",
            AuthProblem::Forbidden => {
                "access refused for this account: sign the dataset's data use agreement (and complete credentialing if it requires it) on the project page"
            }
        })
    }
}

/// Errors downloading or verifying files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// A line of SHA256SUMS.txt could not be parsed.
    #[error("SHA256SUMS.txt line {line}: {reason}")]
    BadManifest {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A connection-level failure (connect, reset, TLS, truncated body).
    #[error("{url}: {message}")]
    Transfer {
        /// The URL, with credentials removed.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server answered with an unexpected status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The URL, with credentials removed.
        url: String,
        /// The status code.
        status: u16,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<std::time::Duration>,
    },
    /// The server refused access (401/403).
    #[error("{url}: HTTP {status}: {problem}")]
    Auth {
        /// The URL, with credentials removed.
        url: String,
        /// 401 or 403.
        status: u16,
        /// Why, as far as physio can tell.
        problem: AuthProblem,
    },
    /// No body bytes arrived for the stall timeout.
    #[error("{url}: no data for {secs:.0} s (stalled connection)")]
    Stalled {
        /// The URL, with credentials removed.
        url: String,
        /// The stall timeout.
        secs: f64,
    },
    /// A redirect could not be followed.
    #[error("{url}: {reason}")]
    Redirect {
        /// The URL, with credentials removed.
        url: String,
        /// Why.
        reason: String,
    },
    /// Downloaded or local bytes do not match the manifest.
    #[error("{}: integrity check failed: {what}", path.display())]
    Integrity {
        /// The file (its final path; nothing was left there).
        path: PathBuf,
        /// What did not match.
        what: String,
    },
    /// Another physio run holds the lock on this directory.
    #[error("{}: another physio run is using this directory (lock held)", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl FetchError {
    /// Attaches `path` to an I/O error.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        FetchError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            FetchError::Auth { .. } => EXIT_AUTH,
            FetchError::Integrity { .. } | FetchError::BadManifest { .. } => EXIT_INTEGRITY,
            _ => EXIT_PARTIAL,
        }
    }
}

/// What a run does besides downloading.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Delete local files that are no longer in the upstream manifest.
    pub delete: bool,
    /// A tag for shard runs (`0-of-4`): they lock and record state separately so shards
    /// can share one output directory.
    pub shard_tag: Option<String>,
    /// Wait for the directory lock instead of failing at once when another run holds
    /// it (the index files every shard of a sharded fetch shares, `ops::fetch`).
    pub wait_for_lock: bool,
}

impl FetchOptions {
    /// The options for files every shard of a sharded run may need (index files,
    /// record headers): the `shared` lock, waited for, so concurrent shard runs on one
    /// directory take turns and the later ones find the files verified.
    pub fn shared() -> FetchOptions {
        FetchOptions {
            delete: false,
            shard_tag: Some("shared".into()),
            wait_for_lock: true,
        }
    }

    /// The options for one shard's own files: the shard's own lock and state file
    /// (tag `I-of-N`); no tag when the run is not sharded.
    pub fn for_shard(shard: Option<crate::shard::Shard>) -> FetchOptions {
        FetchOptions {
            shard_tag: shard.map(|s| format!("{}-of-{}", s.index, s.count)),
            ..FetchOptions::default()
        }
    }
}

/// What to fetch: one dataset version into one directory.
#[derive(Debug, Clone)]
pub struct FetchPlan {
    /// The local version directory (`DIR/<slug>/<version>`).
    pub dir: PathBuf,
    /// URL of the version's root on the server, ending in `/`.
    pub base: Url,
    /// The files selected for this run.
    pub entries: Vec<Entry>,
    /// Every path in the upstream manifest (to find files removed upstream).
    pub upstream: HashSet<String>,
    /// SHA256SUMS.txt as published, stored into `dir` for `physio verify`.
    pub sums_text: Option<String>,
}

impl FetchPlan {
    /// The URL of `path` (a manifest path) under [`FetchPlan::base`], each component
    /// percent-encoded.
    pub fn url_of(&self, path: &str) -> Url {
        join_path(&self.base, path)
    }
}

/// `base` (ending in `/`) joined with the `/`-separated `path`, percent-encoding each
/// component (a `#` or `?` in a file name must not become a fragment or query).
pub fn join_path(base: &Url, path: &str) -> Url {
    let mut u = base.clone();
    if let Ok(mut segs) = u.path_segments_mut() {
        segs.pop_if_empty();
        segs.extend(path.split('/').filter(|s| !s.is_empty()));
    }
    u
}

/// The outcome of a run.
#[derive(Debug, Default)]
pub struct FetchReport {
    /// Files downloaded and verified.
    pub done: Vec<String>,
    /// Files already present and verified.
    pub skipped: Vec<String>,
    /// Files that failed, with why.
    pub failed: Vec<(String, Error)>,
    /// Body bytes received.
    pub bytes: u64,
    /// Files on disk that the upstream manifest no longer lists.
    pub removed_upstream: Vec<String>,
    /// Of those, the ones deleted (`--delete`).
    pub deleted: Vec<String>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The connection count the run settled at (issue 13).
    pub connections: usize,
    /// The per-connection rate measured at that count, bytes per second (0.0 when the
    /// run was too short to measure one).
    pub connection_rate: f64,
    /// Of the files fetched, how many came from the mirror (`--source auto`), and
    /// their bytes; the rest came from the origin.
    pub mirror_files: usize,
    /// Body bytes received from the mirror.
    pub mirror_bytes: u64,
    /// Saving the verified-state cache failed (the files themselves are verified and in
    /// place; the next run re-hashes them instead of trusting the cache).
    pub state_error: Option<Error>,
}

impl FetchReport {
    /// The files that failed because the disk (or a quota) is full.
    pub fn disk_full(&self) -> Vec<&str> {
        self.failed
            .iter()
            .filter(|(_, e)| is_disk_full(e as &Error))
            .map(|(p, _)| p.as_str())
            .collect()
    }

    /// Puts each list in path order (files finish in no particular order).
    pub fn sort_by_path(&mut self) {
        self.done.sort();
        self.skipped.sort();
        self.failed.sort_by(|a, b| a.0.cmp(&b.0));
    }

    /// Adds the results of a second run over the same directory (the two phases of a
    /// sharded fetch).
    pub fn merge(&mut self, other: FetchReport) {
        self.done.extend(other.done);
        self.skipped.extend(other.skipped);
        self.failed.extend(other.failed);
        self.bytes += other.bytes;
        self.seconds += other.seconds;
        self.state_error = self.state_error.take().or(other.state_error);
        if other.connections > 0 {
            self.connections = other.connections;
        }
        if other.connection_rate > 0.0 {
            self.connection_rate = other.connection_rate;
        }
        self.mirror_files += other.mirror_files;
        self.mirror_bytes += other.mirror_bytes;
        for (mine, theirs) in [
            (&mut self.removed_upstream, other.removed_upstream),
            (&mut self.deleted, other.deleted),
        ] {
            mine.extend(theirs);
            mine.sort();
            mine.dedup();
        }
        self.sort_by_path();
    }

    /// Records the connection count `downloader` settled at and the files and bytes
    /// its mirror served since `mirror_before` (its [`Downloader::from_mirror`] when
    /// this run began: one downloader may serve several runs).
    pub fn record_sources(&mut self, downloader: &Downloader, mirror_before: (usize, u64)) {
        (self.connections, self.connection_rate) = downloader.connections();
        let (files, bytes) = downloader.from_mirror();
        self.mirror_files = files.saturating_sub(mirror_before.0);
        self.mirror_bytes = bytes.saturating_sub(mirror_before.1);
    }

    /// Closes a run that began at `started`: tells `reporter` it is over, records the
    /// wall-clock time and the connection and mirror figures of `downloader` (see
    /// [`FetchReport::record_sources`]).
    pub(crate) fn finish(
        &mut self,
        started: Instant,
        downloader: &Downloader,
        mirror_before: (usize, u64),
        reporter: &dyn Reporter,
    ) {
        reporter.on_finish();
        self.seconds = started.elapsed().as_secs_f64();
        self.record_sources(downloader, mirror_before);
    }

    /// Counts one file's result: fetched, skipped (already verified) or failed.
    pub fn record(&mut self, path: String, result: Result<(Outcome, u64)>) {
        match result {
            Ok((Outcome::Fetched, n)) => {
                self.bytes += n;
                self.done.push(path);
            }
            Ok((_, n)) => {
                self.bytes += n;
                self.skipped.push(path);
            }
            Err(e) => self.failed.push((path, e)),
        }
    }

    /// The exit code the report maps to: 0; else 3 if any failure was an
    /// authorization refusal, 4 if any was an integrity failure, else 1.
    pub fn exit_code(&self) -> u8 {
        let codes: Vec<u8> = self.failed.iter().map(|(_, e)| e.exit_code()).collect();
        if codes.is_empty() {
            0
        } else if codes.contains(&EXIT_AUTH) {
            EXIT_AUTH
        } else if codes.contains(&EXIT_INTEGRITY) {
            EXIT_INTEGRITY
        } else {
            EXIT_PARTIAL
        }
    }
}

/// True when `e` was caused by a full disk or an exhausted quota (ENOSPC, EDQUOT).
pub fn is_disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull
                || io.kind() == std::io::ErrorKind::QuotaExceeded)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// An exclusive lock on a directory, held until dropped (OS file lock: released even
/// when the process is killed, so a crashed run never leaves a stale lock).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes `.physio-lock` (or `.physio-lock-<tag>`) in `dir`, failing at once with
    /// [`FetchError::Locked`] when another process holds it.
    pub fn acquire(dir: &Path, tag: Option<&str>) -> Result<DirLock> {
        let (path, file) = Self::open(dir, tag)?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(FetchError::Locked { path }.into()),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    /// Takes the same lock as [`DirLock::acquire`], waiting (on a blocking thread) while
    /// another process holds it.
    pub async fn wait(dir: &Path, tag: Option<&str>) -> Result<DirLock> {
        let (path, file) = Self::open(dir, tag)?;
        tokio::task::spawn_blocking(move || match file.lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(e) => Err(Error::io(&path, e)),
        })
        .await
        .map_err(|e| Error::io(dir, std::io::Error::other(e)))?
    }

    /// Creates `dir` and opens its lock file.
    fn open(dir: &Path, tag: Option<&str>) -> Result<(PathBuf, File)> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = match tag {
            Some(t) => dir.join(format!(".physio-lock-{t}")),
            None => dir.join(".physio-lock"),
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok((path, file))
    }
}

/// Brings `plan.dir` in line with `plan`: see the module docs. The one fetch loop
/// (`destination::run`) with the local directory `plan.dir` as its destination.
pub async fn fetch(
    plan: &FetchPlan,
    downloader: &Downloader,
    opts: &FetchOptions,
    reporter: &dyn Reporter,
) -> Result<FetchReport> {
    let dest = LocalDir::new(&plan.dir, opts);
    run(plan, &dest, downloader, opts, reporter).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_path_encodes_components() {
        let base = Url::parse("http://h/files/x/1.0/").unwrap();
        assert_eq!(
            join_path(&base, "a b/c#d.dat").as_str(),
            "http://h/files/x/1.0/a%20b/c%23d.dat"
        );
        assert_eq!(
            join_path(&base, "RECORDS").as_str(),
            "http://h/files/x/1.0/RECORDS"
        );
    }

    #[test]
    fn lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let a = DirLock::acquire(dir.path(), None).unwrap();
        let err = DirLock::acquire(dir.path(), None).unwrap_err();
        assert!(
            matches!(err, Error::Fetch(FetchError::Locked { .. })),
            "{err}"
        );
        assert!(DirLock::acquire(dir.path(), Some("0-of-2")).is_ok());
        drop(a);
        assert!(DirLock::acquire(dir.path(), None).is_ok());
    }
}
