//! One file: URL → verified file at its final path. The body streams into
//! `<dest>.part` while a blocking writer thread writes and hashes it (SHA-256, optionally
//! MD5; no second pass); an interrupted `.part` is hashed once and resumed with an HTTP
//! `Range` request (RFC 9110 §14); transient failures are retried with backoff; a
//! connection that delivers no bytes for the stall timeout is dropped and retried. Only
//! when size and digest match is the file fsynced and renamed over `dest`, so a final
//! path never holds unverified bytes. Memory stays flat: at most a few chunks in flight.
//!
//! This is the reusable core of every source (PhysioNet, mirrors, `file://`, Kaggle).

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::CONTENT_RANGE;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::rate::RateLimiter;
use tracing::{debug, info};
use url::Url;

use super::FetchError;
use super::client::HttpClient;
use super::concurrency::ConnectionBudget;
use super::hash::{Digests, StreamHash, hash_reader};
use super::retry::{
    RetryBudget, RetryPolicy, RetryState, is_congestion, is_transient, retry_after,
};
use super::scheduler::{MIN_PIECE, Scheduler};
use super::split::SplitStart;
use crate::auth::SafeUrl;
use crate::fsutil::BackgroundFlush;

/// What the downloaded bytes must match.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Exact size in bytes.
    pub size: Option<u64>,
    /// SHA-256 digest.
    pub sha256: Option<[u8; 32]>,
    /// MD5 digest (Kaggle's API publishes these).
    pub md5: Option<[u8; 16]>,
}

/// The result of a successful download.
#[derive(Debug, Clone, Copy)]
pub struct Downloaded {
    /// Size and digests of the final file.
    pub digests: Digests,
    /// Body bytes received over the network in this call (all attempts).
    pub transferred: u64,
    /// Bytes of an earlier `.part` file that were kept and resumed from.
    pub resumed_from: u64,
}

/// Settings of a [`Downloader`].
#[derive(Debug, Clone)]
pub struct DownloaderOptions {
    /// Concurrent transfers per host at most.
    pub jobs: usize,
    /// Search for the server's connection budget, from a few connections up to `jobs`
    /// (used when `--jobs` is not given), instead of starting at `jobs`.
    pub search_connections: bool,
    /// Backoff and attempts per file.
    pub retry: RetryPolicy,
    /// Retries allowed across the whole run.
    pub retry_budget: u64,
    /// A body that delivers no bytes for this long is dropped and retried.
    pub stall_timeout: Duration,
    /// Files at least this large are fetched as parallel byte ranges when the server
    /// supports them (0 = never).
    pub split_min: u64,
    /// Total bandwidth for the whole run in bytes per second (`--max-rate`), if limited.
    pub max_rate: Option<u64>,
}

impl Default for DownloaderOptions {
    fn default() -> Self {
        DownloaderOptions {
            jobs: 8,
            search_connections: false,
            retry: RetryPolicy::default(),
            retry_budget: 1000,
            stall_timeout: Duration::from_secs(30),
            split_min: DEFAULT_SPLIT_MIN,
            max_rate: None,
        }
    }
}

/// Default size from which a file is fetched as parallel ranges: 64 MiB. Below that a
/// second connection costs more in set-up than it saves.
pub const DEFAULT_SPLIT_MIN: u64 = 64 << 20;

/// Downloads files with shared client, retry budget and host concurrency limit.
///
/// ```
/// use std::time::Duration;
/// use physio::fetch::{Downloader, DownloaderOptions, Expected, HttpClient};
/// use sha2::Digest;
///
/// let dir = tempfile::tempdir()?;
/// let src = dir.path().join("100.hea");
/// std::fs::write(&src, b"100 2 360 650000\n")?;
/// let url = url::Url::from_file_path(&src).unwrap();
/// let expected = Expected {
///     size: Some(17),
///     sha256: Some(sha2::Sha256::digest(b"100 2 360 650000\n").into()),
///     md5: None,
/// };
/// let client = HttpClient::new(None, Duration::from_secs(30))?;
/// let dl = Downloader::new(client, DownloaderOptions::default());
/// let dest = dir.path().join("out/100.hea");
/// let rt = tokio::runtime::Runtime::new()?;
/// let got = rt.block_on(dl.download(&url, &dest, &expected, &|_bytes| {}))?;
/// assert_eq!(got.digests.size, 17);
/// assert_eq!(std::fs::read(&dest)?, b"100 2 360 650000\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Downloader {
    pub(super) client: HttpClient,
    pub(super) opts: DownloaderOptions,
    pub(super) budget: Arc<RetryBudget>,
    /// How many transfers may run at once (fixed, or searching for the server's limit).
    pub(super) limiter: ConnectionBudget,
    /// The run's split downloads, whose tails idle connections may take over.
    pub(super) scheduler: Arc<Scheduler>,
    /// A faster copy to take verified files from first (`--source auto`).
    mirror: Option<Arc<Mirror>>,
    /// The run's shared bandwidth budget (`--max-rate`).
    pub(super) rate: Option<Arc<RateLimiter>>,
}

/// The temporary name a download is written under: `<dest>.part`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// Renames the verified (and already fsynced) `part` to `dest` and syncs the directory
/// so the rename survives a crash; blocking file system calls run off the async threads.
pub(super) async fn rename_into_place(part: &Path, dest: &Path) -> Result<(), FetchError> {
    let (p, d) = (part.to_path_buf(), dest.to_path_buf());
    tokio::task::spawn_blocking(move || {
        std::fs::rename(&p, &d)?;
        crate::fsutil::sync_dir(d.parent().unwrap_or(Path::new(".")));
        Ok::<_, std::io::Error>(())
    })
    .await
    .map_err(|e| FetchError::io(dest, std::io::Error::other(e)))?
    .map_err(|e| FetchError::io(dest, e))
}

/// Chunks in flight between the network task and the writer thread. hyper hands out
/// chunks of at most its read buffer (a few hundred KiB), so this bounds the bytes
/// buffered per download to a few megabytes whatever the file size.
const CHANNEL_CHUNKS: usize = 16;

impl Downloader {
    /// A downloader over `client`.
    pub fn new(client: HttpClient, opts: DownloaderOptions) -> Self {
        Downloader {
            budget: Arc::new(RetryBudget::new(opts.retry_budget)),
            limiter: if opts.search_connections {
                ConnectionBudget::searching(opts.jobs)
            } else {
                ConnectionBudget::fixed(opts.jobs)
            },
            scheduler: Arc::new(Scheduler::default()),
            mirror: None,
            rate: opts.max_rate.map(|r| Arc::new(RateLimiter::new(r))),
            client,
            opts,
        }
    }

    /// Adds `n` retries to the run-wide retry budget.
    pub fn add_retries(&self, n: u64) {
        self.budget.add(n);
    }

    /// The most concurrent transfers this downloader allows.
    pub fn jobs(&self) -> usize {
        self.opts.jobs
    }

    /// The HTTP client (for manifest and listing requests).
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// Retry policy and budget, for other requests of the same run.
    pub fn retry(&self) -> (&RetryPolicy, &RetryBudget) {
        (&self.opts.retry, &self.budget)
    }

    /// The run's retry budget, to share with clients of other hosts (Kaggle's API).
    pub fn retry_budget(&self) -> Arc<RetryBudget> {
        self.budget.clone()
    }

    /// The connection count the run settled at and the per-connection rate (bytes/s)
    /// measured there (0.0 when no full measurement was made).
    pub fn connections(&self) -> (usize, f64) {
        self.limiter.settled()
    }

    /// Takes files from `mirror` first (see [`Mirror`]).
    pub fn with_mirror(mut self, mirror: Mirror) -> Self {
        self.mirror = Some(Arc::new(mirror));
        self
    }

    /// Files and bytes that came from the mirror so far.
    pub fn from_mirror(&self) -> (usize, u64) {
        self.mirror.as_ref().map_or((0, 0), |m| {
            (
                m.files.load(Ordering::Relaxed) as usize,
                m.bytes.load(Ordering::Relaxed),
            )
        })
    }

    /// Downloads `url` to `dest`, verifying `expected`. `progress` is called with the
    /// number of new body bytes as they arrive. On failure the `.part` file is kept for
    /// a later resume unless its bytes were shown to be wrong.
    ///
    /// With a mirror, a file with a published SHA-256 is taken from the mirror first
    /// and, when the mirror lacks it, serves it wrong or fails, from `url`.
    pub async fn download(
        &self,
        url: &Url,
        dest: &Path,
        expected: &Expected,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Downloaded, FetchError> {
        if let Some(m) = &self.mirror
            && expected.sha256.is_some()
            && let Some(alt) = m.map(url)
        {
            match self.download_from(&alt, dest, expected, progress).await {
                Ok(d) => {
                    m.files.fetch_add(1, Ordering::Relaxed);
                    m.bytes.fetch_add(d.transferred, Ordering::Relaxed);
                    return Ok(d);
                }
                // A full disk is not the mirror's fault: the origin's bytes would not fit
                // either, and the report must say the disk is full.
                Err(e) if super::is_disk_full(&e) => return Err(e),
                Err(e) => {
                    info!(path = %dest.display(), error = %e, "not from the mirror; fetching from the origin");
                    // Whatever the mirror left is not to be resumed from the origin.
                    let _ = tokio::fs::remove_file(part_path(dest)).await;
                    let _ = tokio::fs::remove_file(super::split::ranges_part_path(dest)).await;
                    let _ = tokio::fs::remove_file(super::split::ranges_log_path(dest)).await;
                }
            }
        }
        self.download_from(url, dest, expected, progress).await
    }

    /// [`Downloader::download`] from `url` only.
    async fn download_from(
        &self,
        url: &Url,
        dest: &Path,
        expected: &Expected,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Downloaded, FetchError> {
        let part = part_path(dest);
        let parent = dest.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| FetchError::io(parent, e))?;
        // An interrupted split download continues as one (see `split`).
        let d = dest.to_path_buf();
        let log = tokio::task::spawn_blocking(move || super::split::RangeLog::load(&d))
            .await
            .ok()
            .flatten();
        if let Some(log) = log {
            let total = log.total;
            return self
                .download_split(
                    url,
                    dest,
                    expected,
                    total,
                    SplitStart::Resume(log),
                    progress,
                )
                .await;
        }
        let with_md5 = expected.md5.is_some();
        let mut state = self.resume_state(&part, expected, with_md5).await?;
        let resumed_from = state.len();
        let mut transferred = 0u64;
        let mut restarted = resumed_from == 0;
        let mut retry = RetryState::new(&self.opts.retry, &self.budget);
        loop {
            let slot = self.limiter.acquire().await;
            let (st, res) = self.attempt(url, &part, state, progress).await;
            state = st;
            match res {
                Ok(Step::Done(n)) => {
                    drop(slot);
                    transferred += n;
                }
                Ok(Step::Ranged(total, resp)) => {
                    // The response keeps streaming as the file's first range; idle
                    // connections may take over its tail.
                    let _ = tokio::fs::remove_file(&part).await;
                    return self
                        .download_split(
                            url,
                            dest,
                            expected,
                            total,
                            SplitStart::Lead(resp, slot),
                            progress,
                        )
                        .await;
                }
                Err((n, e)) => {
                    drop(slot);
                    transferred += n;
                    if is_congestion(&e) {
                        self.limiter.refused();
                    }
                    if let Some(delay) = retry.next_delay(is_transient(&e), retry_after(&e)) {
                        info!(url = %SafeUrl::from(url), attempt = retry.attempts(), ?delay, error = %e, "retrying");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(e);
                }
            }
            let digests = state.clone().finish();
            match check(dest, expected, &digests) {
                Ok(()) => {}
                Err(_) if !restarted => {
                    // The kept `.part` may hold bytes of an older upstream file: start
                    // over once from zero before calling the file corrupt.
                    debug!(path = %dest.display(), "resumed bytes did not verify; restarting");
                    restarted = true;
                    let _ = tokio::fs::remove_file(&part).await;
                    state = StreamHash::new(with_md5);
                    continue;
                }
                Err(e) => {
                    let _ = tokio::fs::remove_file(&part).await;
                    return Err(e);
                }
            }
            rename_into_place(&part, dest).await?;
            self.limiter.record_success();
            return Ok(Downloaded {
                digests,
                transferred,
                resumed_from,
            });
        }
    }

    /// Hashes the bytes of an existing `.part` so the download can continue after them.
    async fn resume_state(
        &self,
        part: &Path,
        expected: &Expected,
        with_md5: bool,
    ) -> Result<StreamHash, FetchError> {
        let len = match tokio::fs::metadata(part).await {
            Ok(m) if m.is_file() => m.len(),
            _ => return Ok(StreamHash::new(with_md5)),
        };
        if len == 0 || expected.size.is_some_and(|s| len > s) {
            let _ = tokio::fs::remove_file(part).await;
            return Ok(StreamHash::new(with_md5));
        }
        let p = part.to_path_buf();
        let st = tokio::task::spawn_blocking(move || {
            let mut st = StreamHash::new(with_md5);
            let f = std::fs::File::open(&p)?;
            hash_reader(f, &mut st)?;
            Ok::<_, std::io::Error>(st)
        })
        .await
        .map_err(|e| FetchError::io(part, std::io::Error::other(e)))?
        .map_err(|e| FetchError::io(part, e))?;
        debug!(path = %part.display(), bytes = st.len(), "resuming partial download");
        Ok(st)
    }

    /// One attempt: request (from the current offset), stream the body to the writer.
    /// Returns the updated hash state (always consistent with the `.part` bytes) and
    /// the bytes received, or the error with the bytes received before it.
    async fn attempt(
        &self,
        url: &Url,
        part: &Path,
        mut state: StreamHash,
        progress: &(dyn Fn(u64) + Sync),
    ) -> (StreamHash, Result<Step, (u64, FetchError)>) {
        let offset = state.len();
        if url.scheme() == "file" {
            return self.attempt_file(url, part, state, progress).await;
        }
        let range = (offset > 0).then_some((offset, None));
        let resp = match self.client.get(url, range, true).await {
            Ok((final_url, resp)) => {
                if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE {
                    // The `.part` is not a prefix of what the server has now.
                    let _ = tokio::fs::remove_file(part).await;
                    let fresh = state.reset();
                    let e = FetchError::Transfer {
                        url: SafeUrl::from(url).to_string(),
                        message: "server refused to resume (416); restarting".into(),
                    };
                    return (fresh, Err((0, e)));
                }
                match self.client.check(&final_url, resp) {
                    Ok(r) => r,
                    Err(e) => return (state, Err((0, e))),
                }
            }
            Err(e) => return (state, Err((0, e))),
        };
        if let Some(total) = self.splittable(&resp, offset) {
            return (state, Ok(Step::Ranged(total, resp)));
        }
        let mut truncate = false;
        if offset > 0 {
            let ok_range = resp.status() == StatusCode::PARTIAL_CONTENT
                && resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(content_range)
                    .map(|(first, _)| first)
                    == Some(offset);
            if !ok_range {
                // A 200 (or a different range) means the whole body follows.
                debug!(url = %SafeUrl::from(url), "server ignored Range; restarting");
                truncate = true;
                state = state.reset();
            }
        }
        let total = resp.content_length().map(|n| n + state.len());
        let body = resp
            .bytes_stream()
            .map(|r| r.map_err(|e| super::client::transfer(url, &e)));
        let (state, got, res) = self
            .pump(url, part, state, truncate, Box::pin(body), progress)
            .await;
        let res = match res {
            Ok(()) => match total {
                Some(t) if state.len() < t => Err(FetchError::Transfer {
                    url: SafeUrl::from(url).to_string(),
                    message: format!("connection closed after {} of {t} bytes", state.len()),
                }),
                _ => Ok(Step::Done(got)),
            },
            Err(e) => Err(e),
        };
        (state, res.map_err(|e| (got, e)))
    }

    /// The total size when this fresh response should be fetched as ranges: the server
    /// advertises byte ranges, more than one connection is allowed, splitting is on
    /// (`--split-min` not 0), and the file can be halved into pieces of at least
    /// [`MIN_PIECE`]. Whether it is split, and how often, is then decided while it
    /// runs, by the time it has left (`scheduler.rs`); at `--split-min` and above it is
    /// split up front.
    fn splittable(&self, resp: &reqwest::Response, offset: u64) -> Option<u64> {
        let total = resp.content_length()?;
        let ranges = resp
            .headers()
            .get(reqwest::header::ACCEPT_RANGES)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("bytes"));
        (offset == 0
            && resp.status() == StatusCode::OK
            && self.opts.split_min > 0
            && self.limiter.cap() > 1
            && ranges
            && total >= 2 * MIN_PIECE)
            .then_some(total)
    }

    /// A `file://` URL: read the local file from the current offset.
    async fn attempt_file(
        &self,
        url: &Url,
        part: &Path,
        state: StreamHash,
        progress: &(dyn Fn(u64) + Sync),
    ) -> (StreamHash, Result<Step, (u64, FetchError)>) {
        let Ok(src) = url.to_file_path() else {
            let e = FetchError::Transfer {
                url: url.to_string(),
                message: "not a local file path".into(),
            };
            return (state, Err((0, e)));
        };
        let mut f = match tokio::fs::File::open(&src).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let e = FetchError::Status {
                    url: url.to_string(),
                    status: 404,
                    retry_after: None,
                };
                return (state, Err((0, e)));
            }
            Err(e) => return (state, Err((0, FetchError::io(&src, e)))),
        };
        let offset = state.len();
        if offset > 0
            && let Err(e) = tokio::io::AsyncSeekExt::seek(&mut f, SeekFrom::Start(offset)).await
        {
            return (state, Err((0, FetchError::io(&src, e))));
        }
        let stream = futures_util::stream::unfold((f, src), |(mut f, src)| async move {
            let mut buf = vec![0u8; 256 * 1024];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), (f, src)))
                }
                Err(e) => Some((Err(FetchError::io(&src, e)), (f, src))),
            }
        });
        let (state, got, res) = self
            .pump(url, part, state, false, Box::pin(stream), progress)
            .await;
        (state, res.map(|()| Step::Done(got)).map_err(|e| (got, e)))
    }

    /// Moves body chunks to a blocking writer thread that appends them to `part` and
    /// hashes them. The hash state comes back even on error, matching the bytes on disk.
    async fn pump(
        &self,
        url: &Url,
        part: &Path,
        state: StreamHash,
        truncate: bool,
        mut body: std::pin::Pin<
            Box<dyn futures_util::Stream<Item = Result<Bytes, FetchError>> + Send + '_>,
        >,
        progress: &(dyn Fn(u64) + Sync),
    ) -> (StreamHash, u64, Result<(), FetchError>) {
        let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
        let fresh = state.reset();
        let part_owned = part.to_path_buf();
        let writer = tokio::task::spawn_blocking(move || {
            let mut state = state;
            let res = (|| {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(truncate)
                    .open(&part_owned)?;
                // Drop any tail that was written but not hashed (a crash between the two).
                f.set_len(state.len())?;
                f.seek(SeekFrom::Start(state.len()))?;
                let mut writeback = Writeback::default();
                while let Some(chunk) = rx.blocking_recv() {
                    f.write_all(&chunk)?;
                    state.update(&chunk);
                    writeback.wrote(&f, chunk.len() as u64);
                }
                writeback.finish()?;
                f.sync_all()
            })();
            (state, res)
        });
        let mut got = 0u64;
        let stall = self.opts.stall_timeout;
        let mut result = Ok(());
        loop {
            match tokio::time::timeout(stall, body.next()).await {
                Err(_) => {
                    result = Err(FetchError::Stalled {
                        url: SafeUrl::from(url).to_string(),
                        secs: stall.as_secs_f64(),
                    });
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    result = Err(e);
                    break;
                }
                Ok(Some(Ok(chunk))) => {
                    let n = chunk.len() as u64;
                    if let Some(rate) = &self.rate {
                        rate.acquire(n).await;
                    }
                    if tx.send(chunk).await.is_err() {
                        break; // the writer failed; its error is reported below
                    }
                    got += n;
                    self.limiter.on_bytes(n);
                    progress(n);
                }
            }
        }
        drop(tx);
        match writer.await {
            Ok((st, Ok(()))) => (st, got, result),
            Ok((st, Err(e))) => (st, got, Err(FetchError::io(part, e))),
            // The writer died: its state is lost, so start the file over.
            Err(e) => (
                fresh,
                got,
                Err(FetchError::io(part, std::io::Error::other(e))),
            ),
        }
    }
}

/// A copy of the origin's version directory elsewhere (the AWS open-data mirror of
/// PhysioNet, `source::aws`): URLs under `origin` are tried under `mirror` first.
#[derive(Debug)]
pub struct Mirror {
    origin: Url,
    mirror: Url,
    files: AtomicU64,
    bytes: AtomicU64,
}

impl Mirror {
    /// Maps URLs under `origin` (ending in `/`) onto `mirror` (ending in `/`).
    pub fn new(origin: Url, mirror: Url) -> Mirror {
        Mirror {
            origin,
            mirror,
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// The mirror's URL for `url`, when `url` is under the origin.
    pub fn map(&self, url: &Url) -> Option<Url> {
        let rest = url.as_str().strip_prefix(self.origin.as_str())?;
        self.mirror.join(rest).ok()
    }
}

/// How an attempt ended when it did not fail.
enum Step {
    /// The body was received; this many bytes.
    Done(u64),
    /// The server takes ranges: fetch the file (of this size) as ranges, the first
    /// from this response.
    Ranged(u64, reqwest::Response),
}

/// Bytes written between background write-back requests.
const WRITEBACK_EVERY: u64 = 32 << 20;

/// Background write-back for large files. The final `fsync` of a multi-gigabyte file
/// would otherwise wait for all of it to reach the disk after the last byte arrives;
/// [`BackgroundFlush`] (the one background fsync of the crate) writes back every 32 MiB
/// while the network delivers, so the final `fsync` has little left to do. Small files
/// never start its thread. Its errors fail the file (issue 12): once a background
/// `fdatasync` has seen a write-back error, the final `fsync` may no longer report it.
#[derive(Default)]
struct Writeback {
    since: u64,
    flush: Option<BackgroundFlush>,
}

impl Writeback {
    fn wrote(&mut self, f: &std::fs::File, n: u64) {
        self.since += n;
        if self.since < WRITEBACK_EVERY {
            return;
        }
        self.since = 0;
        self.flush
            .get_or_insert_with(|| BackgroundFlush::new(f))
            .request();
    }

    /// Waits for the flush thread; the first write-back error, if there was one.
    fn finish(self) -> std::io::Result<()> {
        self.flush.map_or(Ok(()), BackgroundFlush::finish)
    }
}

/// `Content-Range: bytes <first>-<last>/<total>` → `(first, total)` (`total` is `None`
/// for `*`); `None` for an unsatisfied range (`bytes */<total>`) or a malformed value.
pub(crate) fn content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let (range, total) = v.trim().strip_prefix("bytes ")?.split_once('/')?;
    let first = range.split_once('-')?.0.trim().parse().ok()?;
    Some((first, total.trim().parse().ok()))
}

/// The complete length in `Content-Range: bytes <a>-<b>/<total>` or, in a 416 answer,
/// `bytes */<total>` (`None` for `*` or a malformed value).
pub(crate) fn content_range_total(v: &str) -> Option<u64> {
    v.trim()
        .strip_prefix("bytes ")?
        .rsplit('/')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Compares digests with what was expected.
pub(super) fn check(dest: &Path, expected: &Expected, got: &Digests) -> Result<(), FetchError> {
    let mismatch = |what: String| FetchError::Integrity {
        path: dest.to_path_buf(),
        what,
    };
    if let Some(size) = expected.size
        && size != got.size
    {
        return Err(mismatch(format!(
            "size {} bytes, expected {size}",
            got.size
        )));
    }
    if let Some(sha) = expected.sha256
        && sha != got.sha256
    {
        return Err(mismatch(format!(
            "SHA-256 {} does not match the published {}",
            hex::encode(got.sha256),
            hex::encode(sha)
        )));
    }
    if let (Some(want), Some(have)) = (expected.md5, got.md5)
        && want != have
    {
        return Err(mismatch(format!(
            "MD5 {} does not match the published {}",
            hex::encode(have),
            hex::encode(want)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_range() {
        assert_eq!(content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(content_range("bytes 0-9/*"), Some((0, None)));
        assert_eq!(content_range("bytes */200"), None);
        assert_eq!(content_range_total("bytes */200"), Some(200));
        assert_eq!(content_range_total("bytes 0-9/*"), None);
    }

    #[tokio::test]
    async fn file_url_download_verifies_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let dest = dir.path().join("out/dest.bin");
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        // A leftover .part holding the first 1000 bytes is resumed, not refetched.
        std::fs::write(part_path(&dest), &data[..1000]).unwrap();
        let sha: [u8; 32] = {
            use sha2::Digest;
            sha2::Sha256::digest(&data).into()
        };
        let client = HttpClient::new(None, Duration::from_secs(5)).unwrap();
        let d = Downloader::new(client, DownloaderOptions::default());
        let url = Url::from_file_path(&src).unwrap();
        let exp = Expected {
            size: Some(data.len() as u64),
            sha256: Some(sha),
            md5: None,
        };
        let got = d.download(&url, &dest, &exp, &|_| {}).await.unwrap();
        assert_eq!(got.resumed_from, 1000);
        assert_eq!(got.transferred, data.len() as u64 - 1000);
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        assert!(!part_path(&dest).exists());

        // Wrong checksum: error, nothing at the final path, no .part left.
        let dest2 = dir.path().join("out/bad.bin");
        let bad = Expected {
            size: None,
            sha256: Some([0; 32]),
            md5: None,
        };
        let err = d.download(&url, &dest2, &bad, &|_| {}).await.unwrap_err();
        assert!(matches!(err, FetchError::Integrity { .. }), "{err}");
        assert!(!dest2.exists() && !part_path(&dest2).exists());
    }
}
