//! The one fetch loop (issue 12: "fetch-to-store is the normal fetch loop with another
//! destination"). [`run`] plans, downloads concurrently, records results, checkpoints and
//! finishes a run; a [`Destination`] says only what differs between a local version
//! directory ([`super::local::LocalDir`]) and an object-store prefix
//! (`objstore::fetch::StoreDestination`): what is already verified there, where the
//! downloader writes a file, and how a verified file becomes the destination's copy.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tracing::{info, instrument};

use super::{Downloaded, Downloader, Entry, Expected, FetchOptions, FetchPlan, FetchReport};
use super::{Outcome, Reporter};
use crate::error::{Error, Result};

/// How often a long run asks its destination to checkpoint (the verified-state cache of
/// a local directory), so that a run killed after hours does not leave terabytes to be
/// re-hashed by the next one.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Where a fetch puts verified files. Object-safe: [`run`] takes `&dyn Destination`.
///
/// The downloader always writes a file to [`Destination::staging_path`] and puts bytes
/// there only after their size and SHA-256 are verified (a `.part` file until then),
/// so no destination ever holds a half-written file at a final path or key.
pub(crate) trait Destination: Send + Sync {
    /// The destination as logs show it (a directory, or an object URL without
    /// credentials).
    fn describe(&self) -> String;

    /// Before the first file: take what the run needs (a directory lock, a listing of
    /// the store) and store `plan.sums_text` as `SHA256SUMS.txt` when it differs. An
    /// error here fails the whole run.
    fn prepare<'a>(&'a self, plan: &'a FetchPlan) -> BoxFuture<'a, Result<()>>;

    /// True when the destination already holds a copy of `entry` that verifies (the
    /// file is then skipped). An error fails this file only.
    fn verified<'a>(&'a self, entry: &'a Entry) -> BoxFuture<'a, Result<bool>>;

    /// Where the downloader writes `entry`: the final path for a local directory, a
    /// path below `plan.dir` (the run's private staging directory) for a store. Refuses
    /// paths that would leave the destination.
    fn staging_path(&self, plan: &FetchPlan, entry: &Entry) -> Result<PathBuf>;

    /// Makes the verified file at `staged` (as `got` describes it) the destination's copy
    /// of `entry`.
    fn commit<'a>(
        &'a self,
        entry: &'a Entry,
        staged: &'a Path,
        got: &'a Downloaded,
    ) -> BoxFuture<'a, Result<()>>;

    /// `path` failed: forget whatever the destination had recorded as verified about it.
    fn forget(&self, _path: &str) {}

    /// Called every [`CHECKPOINT_EVERY`] of a long run: persist what a killed run should
    /// not lose.
    fn checkpoint(&self) {}

    /// After the last file: the files present that the upstream manifest no longer
    /// lists (deleted when `delete`), and the saving of any run state.
    fn finish<'a>(&'a self, plan: &'a FetchPlan, delete: bool) -> BoxFuture<'a, Finished>;

    /// The entries whose copy at the destination is already verified, by the cheapest
    /// check the destination has (no hashing, no download): what `--dry-run` reports.
    fn already_present<'a>(
        &'a self,
        entries: &'a [Entry],
        jobs: usize,
    ) -> BoxFuture<'a, Result<HashSet<String>>>;
}

/// What [`Destination::finish`] found and did.
#[derive(Debug, Default)]
pub(crate) struct Finished {
    /// Files at the destination that the upstream manifest no longer lists.
    pub(crate) removed_upstream: Vec<String>,
    /// Of those, the ones deleted.
    pub(crate) deleted: Vec<String>,
    /// Saving the run's state failed (the files themselves are verified and in place).
    pub(crate) state_error: Option<Error>,
}

/// Brings `dest` in line with `plan`: each selected file the destination does not hold
/// verified is downloaded by `downloader` (`jobs × 2` at once), verified, and committed.
/// Per-file failures are in the report; an `Err` means the run could not start (lock
/// held, store not listable).
pub(crate) async fn run(
    plan: &FetchPlan,
    dest: &dyn Destination,
    downloader: &Downloader,
    opts: &FetchOptions,
    reporter: &dyn Reporter,
) -> Result<FetchReport> {
    let started = Instant::now();
    dest.prepare(plan).await?;
    let total_size = plan.entries.iter().map(|e| e.size).sum::<Option<u64>>();
    reporter.on_plan(plan.entries.len(), total_size);
    let jobs = downloader.jobs().max(1);
    let mirror_before = downloader.from_mirror();
    // A big dataset on a flaky server needs more retries than a small one.
    downloader.add_retries(plan.entries.len() as u64 / 10);
    let mut results = futures_util::stream::iter(plan.entries.iter())
        .map(|entry| async move {
            let r = fetch_one(plan, dest, entry, downloader, reporter).await;
            file_done(reporter, downloader, &entry.path, &r);
            (entry.path.clone(), r)
        })
        .buffer_unordered(jobs * 2);
    let mut report = FetchReport::default();
    let mut last_checkpoint = Instant::now();
    while let Some((path, r)) = results.next().await {
        if r.is_err() {
            dest.forget(&path);
        }
        report.record(path, r);
        if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            last_checkpoint = Instant::now();
            dest.checkpoint();
        }
    }
    drop(results);
    report.sort_by_path();
    // The report is kept even when the state cannot be saved (a full disk fails both):
    // the per-file failures are what the user needs to see.
    let finished = dest.finish(plan, opts.delete).await;
    report.removed_upstream = finished.removed_upstream;
    report.deleted = finished.deleted;
    report.state_error = finished.state_error;
    report.finish(started, downloader, mirror_before, reporter);
    info!(
        dest = %dest.describe(),
        fetched = report.done.len(),
        skipped = report.skipped.len(),
        failed = report.failed.len(),
        bytes = report.bytes,
        "fetch finished"
    );
    Ok(report)
}

/// Tells `reporter` that `path` is finished, with the connection figures of the moment.
fn file_done(
    reporter: &dyn Reporter,
    downloader: &Downloader,
    path: &str,
    result: &Result<(Outcome, u64)>,
) {
    let (n, per) = downloader.connections();
    reporter.on_connections(n, per);
    reporter.on_file_done(path, Outcome::of(result));
}

/// One file: skip it if the destination's copy verifies, else download, verify, commit.
#[instrument(skip_all, fields(path = %entry.path))]
async fn fetch_one(
    plan: &FetchPlan,
    dest: &dyn Destination,
    entry: &Entry,
    downloader: &Downloader,
    reporter: &dyn Reporter,
) -> Result<(Outcome, u64)> {
    if dest.verified(entry).await? {
        return Ok((Outcome::Skipped, 0));
    }
    reporter.on_file_start(&entry.path);
    let staged = dest.staging_path(plan, entry)?;
    let expected = Expected {
        size: entry.size,
        sha256: entry.sha256,
        md5: None,
    };
    let got = downloader
        .download(&plan.url_of(&entry.path), &staged, &expected, &|n| {
            reporter.on_bytes(n)
        })
        .await?;
    // Only verified bytes reach this point: `download` renames `.part` to `staged` after
    // the size and digest checks, and leaves nothing at `staged` otherwise.
    dest.commit(entry, &staged, &got).await?;
    Ok((Outcome::Fetched, got.transferred))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use futures_util::FutureExt;
    use sha2::Digest;

    use super::*;
    use crate::fetch::{DownloaderOptions, HttpClient, NoReporter};

    /// A destination that holds nothing but records what the loop asks of it.
    struct Recorder {
        /// Paths reported as already verified.
        present: Vec<&'static str>,
        /// (path, bytes at the staged path) per commit.
        committed: Mutex<Vec<(String, Vec<u8>)>>,
        forgotten: Mutex<Vec<String>>,
        prepared: Mutex<bool>,
    }

    impl Destination for Recorder {
        fn describe(&self) -> String {
            "recorder".into()
        }

        fn prepare<'a>(&'a self, _plan: &'a FetchPlan) -> BoxFuture<'a, Result<()>> {
            if let Ok(mut p) = self.prepared.lock() {
                *p = true;
            }
            futures_util::future::ready(Ok(())).boxed()
        }

        fn verified<'a>(&'a self, entry: &'a Entry) -> BoxFuture<'a, Result<bool>> {
            let hit = self.present.contains(&entry.path.as_str());
            futures_util::future::ready(Ok(hit)).boxed()
        }

        fn staging_path(&self, plan: &FetchPlan, entry: &Entry) -> Result<PathBuf> {
            Ok(plan.dir.join(&entry.path))
        }

        fn commit<'a>(
            &'a self,
            entry: &'a Entry,
            staged: &'a Path,
            _got: &'a Downloaded,
        ) -> BoxFuture<'a, Result<()>> {
            let bytes = std::fs::read(staged).unwrap_or_default();
            if let Ok(mut c) = self.committed.lock() {
                c.push((entry.path.clone(), bytes));
            }
            futures_util::future::ready(Ok(())).boxed()
        }

        fn forget(&self, path: &str) {
            if let Ok(mut f) = self.forgotten.lock() {
                f.push(path.to_string());
            }
        }

        fn finish<'a>(&'a self, _plan: &'a FetchPlan, delete: bool) -> BoxFuture<'a, Finished> {
            futures_util::future::ready(Finished {
                removed_upstream: vec!["old.dat".into()],
                deleted: if delete {
                    vec!["old.dat".into()]
                } else {
                    vec![]
                },
                state_error: None,
            })
            .boxed()
        }

        fn already_present<'a>(
            &'a self,
            _entries: &'a [Entry],
            _jobs: usize,
        ) -> BoxFuture<'a, Result<HashSet<String>>> {
            futures_util::future::ready(Ok(HashSet::new())).boxed()
        }
    }

    fn entry(path: &str, published: &[u8]) -> Entry {
        Entry {
            path: path.into(),
            size: Some(published.len() as u64),
            sha256: Some(sha2::Sha256::digest(published).into()),
        }
    }

    /// The loop skips what the destination vouches for, commits only verified bytes,
    /// has the destination forget a failed file, and takes its finish into the report.
    #[tokio::test]
    async fn run_drives_any_destination() {
        let upstream = tempfile::tempdir().expect("tempdir");
        let staging = tempfile::tempdir().expect("tempdir");
        for (name, bytes) in [("a.dat", &b"good"[..]), ("bad.dat", b"evil")] {
            std::fs::write(upstream.path().join(name), bytes).expect("write");
        }
        let plan = FetchPlan {
            dir: staging.path().to_path_buf(),
            base: url::Url::from_directory_path(upstream.path()).expect("file URL"),
            entries: vec![
                entry("a.dat", b"good"),
                entry("bad.dat", b"good"),
                entry("kept.dat", b"kept"),
            ],
            upstream: ["a.dat", "bad.dat", "kept.dat"].map(String::from).into(),
            sums_text: None,
        };
        let dest = Recorder {
            present: vec!["kept.dat"],
            committed: Mutex::new(Vec::new()),
            forgotten: Mutex::new(Vec::new()),
            prepared: Mutex::new(false),
        };
        let client = HttpClient::new(None, Duration::from_secs(5)).expect("client");
        let downloader = Downloader::new(client, DownloaderOptions::default());
        let opts = FetchOptions {
            delete: true,
            ..FetchOptions::default()
        };
        let report = run(&plan, &dest, &downloader, &opts, &NoReporter)
            .await
            .expect("run");
        assert!(*dest.prepared.lock().expect("lock"));
        assert_eq!(report.done, ["a.dat"]);
        assert_eq!(report.skipped, ["kept.dat"]);
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert_eq!(report.failed[0].0, "bad.dat");
        assert_eq!(report.bytes, 4);
        assert_eq!(
            *dest.committed.lock().expect("lock"),
            [("a.dat".to_string(), b"good".to_vec())]
        );
        assert_eq!(*dest.forgotten.lock().expect("lock"), ["bad.dat"]);
        assert_eq!(report.removed_upstream, ["old.dat"]);
        assert_eq!(report.deleted, ["old.dat"]);
        assert!(!staging.path().join("bad.dat").exists());
    }
}
