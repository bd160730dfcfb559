//! Files as byte ranges. physionet.org throttles each connection to tens of KB/s, so a
//! multi-gigabyte file over one connection takes hours; split into ranges (RFC 9110
//! §14.2, `Range: bytes=<a>-<b>`) it goes as fast as the host's limit allows. Files of
//! at least `--split-min` are split up front; any other file served with
//! `Accept-Ranges: bytes` and large enough to halve is fetched as one range that idle
//! connections may split further while it is under way (`scheduler.rs`). Each range is written in place with positioned writes into a
//! pre-sized `<file>.ranges.part`, retried and resumed on its own (from the last byte it
//! wrote); when all are in, the file is fsynced and hashed — the one case where hashing
//! is a second pass, over bytes still in the page cache — and renamed only if it
//! verifies.
//!
//! Progress is recorded in `.physio-ranges-<name>.json` next to the file (each range's
//! next byte, saved about once a second), so a run that is killed resumes every range
//! where it stopped; the final hash check catches any bytes the record over-claims
//! (then the file is fetched once more from zero).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use reqwest::StatusCode;
use reqwest::header::CONTENT_RANGE;
use tracing::{debug, info};
use url::Url;

use super::FetchError;
use super::concurrency::Slot;
use super::download::{
    Downloaded, Downloader, Expected, check, content_range, content_range_total,
};
use super::hash::hash_file;
use super::retry::{RetryState, is_congestion, is_transient, retry_after};
use super::scheduler::SplitJob;
use crate::auth::SafeUrl;

/// Bytes buffered per range before one positioned write.
const WRITE_BATCH: usize = 256 << 10;

/// The smallest range ever given its own connection.
const MIN_RANGE: u64 = 64 << 10;

/// How often a split download looks for connections that would sit idle.
const STEAL_TICK: Duration = Duration::from_millis(200);

/// The temporary name of a split download: `<dest>.ranges.part`.
pub fn ranges_part_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".ranges.part");
    PathBuf::from(s)
}

/// The progress record of a split download: `.physio-ranges-<file name>.json` in the
/// file's directory (a `.physio*` entry, as the contract requires of physio's state).
pub fn ranges_log_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".physio-ranges-{name}.json"))
}

/// What a split download has written so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeLog {
    /// Size of the whole file.
    pub total: u64,
    /// `[start, end, next]` per range: bytes `start..next` are written, `next..=end` not.
    pub ranges: Vec<[u64; 3]>,
}

impl RangeLog {
    /// Reads the record for `dest` if it and a `.ranges.part` of the recorded size exist
    /// and it is consistent; otherwise removes whatever is left of an earlier split.
    pub fn load(dest: &Path) -> Option<RangeLog> {
        let (log_path, part) = (ranges_log_path(dest), ranges_part_path(dest));
        let log = std::fs::read_to_string(&log_path)
            .ok()
            .and_then(|t| serde_json::from_str::<RangeLog>(&t).ok())
            .filter(|l| {
                std::fs::metadata(&part).is_ok_and(|m| m.len() == l.total)
                    && !l.ranges.is_empty()
                    && l.ranges
                        .iter()
                        .all(|[a, b, n]| a <= n && *n <= b + 1 && *b < l.total)
            });
        if log.is_none() {
            let _ = std::fs::remove_file(&log_path);
            let _ = std::fs::remove_file(&part);
        }
        log
    }

    pub(super) fn save(&self, path: &Path) {
        // Not fsynced: the record only saves work after a crash, and the final hash check
        // catches anything it over-claims.
        if let Ok(text) = serde_json::to_vec(self) {
            let tmp = path.with_extension("json.tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, path);
            }
        }
    }
}

/// Splits `0..total` into at most `jobs` inclusive ranges of at least `min_range`
/// bytes (a quarter of the split threshold: 16 MiB by default).
pub fn plan_ranges(total: u64, jobs: usize, min_range: u64) -> Vec<(u64, u64)> {
    if total == 0 {
        return Vec::new();
    }
    let n = (total / min_range.max(MIN_RANGE)).clamp(1, jobs.max(1) as u64);
    let size = total.div_ceil(n);
    (0..n)
        .map(|i| (i * size, ((i + 1) * size).min(total) - 1))
        .filter(|(a, b)| a <= b)
        .collect()
}

/// Writes all of `buf` at `pos` (positioned write: ranges never share a file offset).
fn write_all_at(file: &File, buf: &[u8], pos: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, buf, pos)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            let n =
                std::os::windows::fs::FileExt::seek_write(file, &buf[done..], pos + done as u64)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            done += n;
        }
        Ok(())
    }
}

/// How a split download begins.
pub(super) enum SplitStart {
    /// From nothing.
    Fresh,
    /// Continuing the ranges of an earlier, interrupted run.
    Resume(RangeLog),
    /// With a plain GET from byte 0 already under way (it serves the first range), on
    /// the slot it holds.
    Lead(reqwest::Response, Slot),
}

impl Downloader {
    /// Fetches `url` (of `total` bytes) as parallel ranges into `dest`, verifying
    /// `expected` before the rename; continues the ranges of `resume` when given. With
    /// `first`, the response of a plain GET (from byte 0) already under way serves the
    /// first range, on the slot it holds. Idle connections of the run may take over the
    /// tail of any range (`scheduler.rs`).
    pub(super) async fn download_split(
        &self,
        url: &Url,
        dest: &Path,
        expected: &Expected,
        total: u64,
        start: SplitStart,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Downloaded, FetchError> {
        let (resume, first) = match start {
            SplitStart::Fresh => (None, None),
            SplitStart::Resume(log) => (Some(log), None),
            SplitStart::Lead(resp, slot) => (None, Some((resp, slot))),
        };
        if let Some(size) = expected.size
            && size != total
        {
            return Err(FetchError::Integrity {
                path: dest.to_path_buf(),
                what: format!("server announces {total} bytes, expected {size}"),
            });
        }
        let part = ranges_part_path(dest);
        let log_path = ranges_log_path(dest);
        let resumed = resume.is_some();
        let log = match resume {
            Some(l) => l,
            None => {
                let planned = if total >= self.opts.split_min {
                    plan_ranges(total, self.limiter.current(), self.opts.split_min / 4)
                } else {
                    plan_ranges(total, 1, total)
                };
                RangeLog {
                    total,
                    ranges: planned.into_iter().map(|(a, b)| [a, b, a]).collect(),
                }
            }
        };
        let resumed_from: u64 = log.ranges.iter().map(|[a, _, n]| n - a).sum();
        info!(url = %SafeUrl::from(url), total, ranges = log.ranges.len(), resumed_from, "fetching in ranges");
        let p = part.clone();
        let file = tokio::task::spawn_blocking(move || {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(!resumed)
                .open(&p)?;
            f.set_len(total)?;
            Ok::<_, std::io::Error>(f)
        })
        .await
        .map_err(|e| FetchError::io(&part, std::io::Error::other(e)))?
        .map_err(|e| FetchError::io(&part, e))?;
        let file = Arc::new(file);
        let todo: Vec<usize> = log
            .ranges
            .iter()
            .enumerate()
            .filter(|(_, [_, b, n])| n <= b)
            .map(|(i, _)| i)
            .collect();
        let job = Arc::new(SplitJob::new(log, log_path.clone()));
        job.lock().save();
        self.scheduler.register(&job);
        let mut first = first.map(|(resp, slot)| (Some(resp), slot));
        let mut running = FuturesUnordered::new();
        for i in todo {
            let lead = if i == 0 { first.take() } else { None };
            running.push(self.fetch_range(
                url,
                &part,
                file.clone(),
                i,
                &job,
                total,
                lead,
                progress,
            ));
        }
        drop(first);
        let mut tick = tokio::time::interval(STEAL_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut transferred = 0;
        let mut failure = None;
        loop {
            tokio::select! {
                Some(r) = running.next(), if !running.is_empty() => match r {
                    Ok(n) => transferred += n,
                    Err(e) => {
                        failure = failure.or(Some(e));
                        job.lock().close();
                    }
                },
                () = job.wake.notified() => {
                    let handed = job.lock().take_handed();
                    for (i, slot) in handed {
                        running.push(self.fetch_range(url, &part, file.clone(), i, &job, total, Some((None, slot)), progress));
                    }
                }
                _ = tick.tick() => {
                    if failure.is_none() {
                        self.scheduler.steal(&self.limiter);
                    }
                }
            }
            if running.is_empty() && job.lock().close_if_idle() {
                break;
            }
        }
        drop(running);
        if let Some(e) = failure {
            // Keep the bytes and the record for the next run, unless they are wrong.
            match &e {
                FetchError::Integrity { .. } => {
                    let _ = tokio::fs::remove_file(&part).await;
                    let _ = tokio::fs::remove_file(&log_path).await;
                }
                _ => job.lock().save(),
            }
            return Err(e);
        }
        let (p, with_md5) = (part.clone(), expected.md5.is_some());
        let digests = tokio::task::spawn_blocking(move || {
            file.sync_all()?;
            drop(file);
            hash_file(&p, with_md5)
        })
        .await
        .map_err(|e| FetchError::io(&part, std::io::Error::other(e)))?
        .map_err(|e| FetchError::io(&part, e))?;
        let _ = tokio::fs::remove_file(&log_path).await;
        if let Err(e) = check(dest, expected, &digests) {
            let _ = tokio::fs::remove_file(&part).await;
            if resumed {
                // The record may have claimed bytes that never reached the disk: once
                // more from zero before calling the file corrupt.
                debug!(path = %dest.display(), "resumed ranges did not verify; restarting");
                return Box::pin(self.download_split(
                    url,
                    dest,
                    expected,
                    total,
                    SplitStart::Fresh,
                    progress,
                ))
                .await;
            }
            return Err(e);
        }
        super::download::rename_into_place(&part, dest).await?;
        self.limiter.record_success();
        Ok(Downloaded {
            digests,
            transferred,
            resumed_from,
        })
    }

    /// Range `i` of `job`, retried and resumed from the last byte written, until it
    /// reaches its last byte (which a takeover may lower meanwhile). `lead` is a
    /// response already under way for it (or none) with the slot to use first.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_range(
        &self,
        url: &Url,
        part: &Path,
        file: Arc<File>,
        i: usize,
        job: &SplitJob,
        total: u64,
        mut lead: Option<(Option<reqwest::Response>, Slot)>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, FetchError> {
        let mut pos = job.lock().log.ranges[i][2];
        let mut got = 0u64;
        let mut retry = RetryState::new(&self.opts.retry, &self.budget);
        loop {
            let (resp, slot) = match lead.take() {
                Some(l) => l,
                None => (None, self.limiter.acquire().await),
            };
            let end = job.lock().begin(i, pos);
            if pos > end {
                job.lock().pause(i);
                return Ok(got);
            }
            let r = self
                .range_attempt(
                    url,
                    part,
                    &file,
                    (i, job),
                    (&mut pos, total),
                    resp,
                    &mut got,
                    progress,
                )
                .await;
            job.lock().pause(i);
            drop(slot);
            let Err(e) = r else { return Ok(got) };
            if is_congestion(&e) {
                self.limiter.refused();
            }
            match retry.next_delay(is_transient(&e), retry_after(&e)) {
                Some(delay) => {
                    info!(url = %SafeUrl::from(url), pos, attempt = retry.attempts(), error = %e, "retrying range");
                    tokio::time::sleep(delay).await;
                }
                None => return Err(e),
            }
        }
    }

    /// One request for range `i` from `*pos` (or `resp`, a plain GET from byte 0);
    /// advances `*pos` past every byte written, until the range's current last byte.
    #[allow(clippy::too_many_arguments)]
    async fn range_attempt(
        &self,
        url: &Url,
        part: &Path,
        file: &Arc<File>,
        (i, job): (usize, &SplitJob),
        (pos, total): (&mut u64, u64),
        resp: Option<reqwest::Response>,
        got: &mut u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), FetchError> {
        let safe = || SafeUrl::from(url).to_string();
        let resp = match resp {
            Some(r) if *pos == 0 && r.status() == StatusCode::OK => r,
            _ => {
                let end = job.lock().end(i);
                let (final_url, resp) = self.client.get(url, Some((*pos, Some(end))), true).await?;
                let resp = self.client.check(&final_url, resp)?;
                let range_header = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                // The file must still be the one the other ranges (and any record) came from.
                if content_range_total(&range_header).is_some_and(|t| t != total) {
                    return Err(FetchError::Integrity {
                        path: part.to_path_buf(),
                        what: format!("the file changed size on the server ({range_header})"),
                    });
                }
                let start_ok = content_range(&range_header).map(|(first, _)| first) == Some(*pos);
                if resp.status() != StatusCode::PARTIAL_CONTENT || !start_ok {
                    return Err(FetchError::Transfer {
                        url: safe(),
                        message: format!("server did not honour Range bytes={}-{end}", *pos),
                    });
                }
                resp
            }
        };
        let mut body = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
        let stall = self.opts.stall_timeout;
        let mut failure = None;
        let mut reached_end = false;
        loop {
            let next = match tokio::time::timeout(stall, body.next()).await {
                Err(_) => {
                    failure = Some(FetchError::Stalled {
                        url: safe(),
                        secs: stall.as_secs_f64(),
                    });
                    None
                }
                Ok(None) => None,
                Ok(Some(Err(e))) => {
                    failure = Some(super::client::transfer(url, &e));
                    None
                }
                Ok(Some(Ok(chunk))) => Some(chunk),
            };
            let done = next.is_none();
            if let Some(chunk) = next {
                self.limiter.on_bytes(chunk.len() as u64);
                // Keep what the range still wants: its tail may have been taken over.
                let want = job.lock().receive(i, chunk.len() as u64) as usize;
                progress(want as u64);
                buf.extend_from_slice(&chunk[..want]);
                reached_end = want < chunk.len() || *pos + buf.len() as u64 > job.lock().end(i);
            }
            // Write what arrived (also before giving up, so a retry resumes after it).
            let stop = done || failure.is_some() || reached_end;
            if buf.len() >= WRITE_BATCH || (stop && !buf.is_empty()) {
                let data = std::mem::replace(&mut buf, Vec::with_capacity(WRITE_BATCH));
                let (f, at, n) = (file.clone(), *pos, data.len() as u64);
                tokio::task::spawn_blocking(move || write_all_at(&f, &data, at))
                    .await
                    .map_err(|e| FetchError::io(part, std::io::Error::other(e)))?
                    .map_err(|e| FetchError::io(part, e))?;
                *pos += n;
                *got += n;
                job.lock().advance(i, *pos);
            }
            if let Some(e) = failure {
                return Err(e);
            }
            if stop {
                break;
            }
        }
        let end = job.lock().end(i);
        if *pos != end + 1 {
            return Err(FetchError::Transfer {
                url: safe(),
                message: format!("range closed at byte {} of {}", *pos, end + 1),
            });
        }
        debug!(url = %safe(), end, "range complete");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_file_exactly() {
        let m = 16 << 20;
        for (total, jobs) in [
            (1u64, 8usize),
            (m, 8),
            (5 * m + 3, 4),
            (1 << 30, 16),
            (100 << 20, 1),
            (MIN_RANGE * 3, 8),
        ] {
            let r = plan_ranges(total, jobs, m);
            assert!(!r.is_empty() && r.len() <= jobs);
            assert_eq!(r[0].0, 0);
            assert_eq!(r.last().unwrap().1, total - 1);
            for w in r.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
        }
        assert_eq!(plan_ranges(1 << 30, 16, m).len(), 16);
        assert_eq!(plan_ranges(40 << 20, 16, m).len(), 2);
        assert!(plan_ranges(0, 4, m).is_empty());
    }
}
