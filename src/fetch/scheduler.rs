//! Work stealing on byte ranges: keeps the whole connection budget busy until the last
//! byte (issue 13). Once fewer transfers are left than connections, a connection that
//! would sit idle takes over the unfinished second half of the transfer expected to
//! finish last — aria2's `BitfieldMan::getSparseMissingUnusedIndex`, which hands an
//! idle connection the midpoint of the longest run of missing, unclaimed pieces.
//!
//! Which transfer, and whether at all, is decided by the estimated time left (bytes
//! left ÷ the rate that range is getting), not by a size threshold: a range is split
//! only when each half would still take at least [`MIN_STEAL_SECS`] and hold at least
//! [`MIN_PIECE`] bytes, so a fast server sees no extra requests and a throttled one
//! (physionet.org paces each connection to tens of KB/s) gets every idle connection on
//! the tail. A stolen range is an ordinary range of the split download (`split.rs`):
//! recorded in its `.physio-ranges-*.json`, resumed after a kill, and verified with the
//! rest of the file before the rename.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::concurrency::{ConnectionBudget, Slot};
use super::split::RangeLog;

/// The smallest piece a range is split into.
pub const MIN_PIECE: u64 = 64 << 10;

/// A range is split only when each half would still take at least this long at the
/// rate the range is getting: below that, a new request costs more than it saves.
pub const MIN_STEAL_SECS: f64 = 1.0;

/// A range's rate is trusted after it has been measured this long.
const MIN_MEASURE: Duration = Duration::from_millis(300);

/// How a range is doing right now (not persisted).
#[derive(Debug, Clone)]
pub(super) struct Live {
    /// Bytes `..recv` are received (written or about to be).
    recv: u64,
    /// The range's last byte; lowered when its tail is taken over.
    end: u64,
    /// When the current request started delivering, and the bytes it has delivered.
    since: Option<(Instant, u64)>,
}

/// The ranges of one split download and the progress record they share.
#[derive(Debug)]
pub(super) struct JobState {
    /// What is persisted: `[start, end, next]` per range.
    pub(super) log: RangeLog,
    live: Vec<Live>,
    path: PathBuf,
    saved: Instant,
    /// Ranges taken over by idle connections, with the slot each one holds, not yet
    /// started by the download's loop.
    handed: Vec<(usize, Slot)>,
    /// False once the download has finished or failed: no more takeovers.
    open: bool,
}

/// One split download, shared between its own loop and the [`Scheduler`].
#[derive(Debug)]
pub(super) struct SplitJob {
    state: Mutex<JobState>,
    /// Wakes the download's loop when a range was handed to it.
    pub(super) wake: Notify,
}

impl SplitJob {
    /// A job over `log`, recorded at `path`.
    pub(super) fn new(log: RangeLog, path: PathBuf) -> SplitJob {
        let live = log
            .ranges
            .iter()
            .map(|&[_, end, next]| Live {
                recv: next,
                end,
                since: None,
            })
            .collect();
        SplitJob {
            state: Mutex::new(JobState {
                log,
                live,
                path,
                saved: Instant::now(),
                handed: Vec::new(),
                open: true,
            }),
            wake: Notify::new(),
        }
    }

    /// The shared state (a poisoned lock still holds consistent numbers).
    pub(super) fn lock(&self) -> MutexGuard<'_, JobState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl JobState {
    /// A request for range `i` starts at `pos`: its current last byte.
    pub(super) fn begin(&mut self, i: usize, pos: u64) -> u64 {
        let l = &mut self.live[i];
        l.recv = pos;
        l.since = Some((Instant::now(), 0));
        l.end
    }

    /// The request for range `i` ended (done, failed or cut short).
    pub(super) fn pause(&mut self, i: usize) {
        self.live[i].since = None;
    }

    /// The range's last byte now.
    pub(super) fn end(&self, i: usize) -> u64 {
        self.live[i].end
    }

    /// `n` more bytes arrived for range `i`: how many of them the range still wants
    /// (fewer when its tail was taken over meanwhile).
    pub(super) fn receive(&mut self, i: usize, n: u64) -> u64 {
        let l = &mut self.live[i];
        let take = (l.end + 1).saturating_sub(l.recv).min(n);
        l.recv += take;
        if let Some((_, b)) = &mut l.since {
            *b += take;
        }
        take
    }

    /// Records that range `i` has written everything before `next`; saved about once a
    /// second.
    pub(super) fn advance(&mut self, i: usize, next: u64) {
        self.log.ranges[i][2] = next;
        if self.saved.elapsed() >= Duration::from_secs(1) {
            self.save();
        }
    }

    /// Writes the progress record now.
    pub(super) fn save(&mut self) {
        self.saved = Instant::now();
        self.log.save(&self.path);
    }

    /// The ranges handed over since the last call, with their slots.
    pub(super) fn take_handed(&mut self) -> Vec<(usize, Slot)> {
        std::mem::take(&mut self.handed)
    }

    /// No more takeovers into this job (it failed); handed ranges are dropped.
    pub(super) fn close(&mut self) {
        self.open = false;
        self.handed.clear();
    }

    /// Closes the job if nothing was handed to it that it has not started yet.
    pub(super) fn close_if_idle(&mut self) -> bool {
        if self.handed.is_empty() {
            self.open = false;
        }
        !self.open
    }

    /// The range expected to finish last and the seconds it still needs, among those
    /// that can be halved into pieces of at least [`MIN_PIECE`].
    fn slowest(&self, now: Instant) -> Option<(usize, f64)> {
        self.live
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let (t0, got) = l.since?;
                let secs = now.saturating_duration_since(t0);
                if secs < MIN_MEASURE || got == 0 {
                    return None;
                }
                let left = (l.end + 1).saturating_sub(l.recv);
                if left / 2 < MIN_PIECE {
                    return None;
                }
                let rate = got as f64 / secs.as_secs_f64();
                Some((i, left as f64 / rate))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Splits range `i` at the middle of what it has left; the second half becomes a
    /// new range, whose index is returned.
    fn split(&mut self, i: usize) -> Option<usize> {
        let l = &self.live[i];
        let left = (l.end + 1).saturating_sub(l.recv);
        if left / 2 < MIN_PIECE {
            return None;
        }
        let mid = l.recv + left / 2;
        let end = l.end;
        self.live[i].end = mid - 1;
        self.log.ranges[i][1] = mid - 1;
        self.live.push(Live {
            recv: mid,
            end,
            since: None,
        });
        self.log.ranges.push([mid, end, mid]);
        self.save();
        Some(self.live.len() - 1)
    }
}

/// The split downloads of one run, for idle connections to take work from.
#[derive(Debug, Default)]
pub struct Scheduler {
    jobs: Mutex<Vec<Weak<SplitJob>>>,
}

impl Scheduler {
    /// Makes `job`'s ranges available to idle connections until it is dropped.
    pub(super) fn register(&self, job: &Arc<SplitJob>) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.retain(|w| w.strong_count() > 0);
        jobs.push(Arc::downgrade(job));
    }

    /// While `budget` has a slot nobody is waiting for, hands it the second half of the
    /// range expected to finish last (when halving it pays, see the module docs).
    /// Returns how many ranges were handed over.
    pub(super) fn steal(&self, budget: &ConnectionBudget) -> usize {
        let mut handed = 0;
        loop {
            let jobs: Vec<Arc<SplitJob>> = {
                let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
                jobs.iter().filter_map(Weak::upgrade).collect()
            };
            let now = Instant::now();
            let best = jobs
                .iter()
                .filter_map(|j| {
                    let st = j.lock();
                    if !st.open {
                        return None;
                    }
                    st.slowest(now).map(|(i, secs)| (j, i, secs))
                })
                .max_by(|a, b| a.2.total_cmp(&b.2));
            let Some((job, i, secs)) = best else {
                return handed;
            };
            if secs < 2.0 * MIN_STEAL_SECS {
                return handed;
            }
            let Some(slot) = budget.try_acquire_idle() else {
                return handed;
            };
            let mut st = job.lock();
            if !st.open {
                continue;
            }
            let Some(j) = st.split(i) else {
                return handed;
            };
            tracing::debug!(
                range = i,
                new = j,
                secs_left = secs,
                "idle connection takes over a range's tail"
            );
            st.handed.push((j, slot));
            drop(st);
            job.wake.notify_one();
            handed += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(total: u64) -> Arc<SplitJob> {
        let dir = tempfile::tempdir().unwrap();
        let log = RangeLog {
            total,
            ranges: vec![[0, total - 1, 0]],
        };
        Arc::new(SplitJob::new(log, dir.path().join("log.json")))
    }

    #[tokio::test]
    async fn idle_connection_takes_the_second_half_of_a_slow_range() {
        let budget = ConnectionBudget::fixed(4);
        let sched = Scheduler::default();
        let j = job(4 << 20);
        sched.register(&j);
        // Range 0 has received 1 MiB in one second: 3 MiB (3 s) left.
        {
            let mut st = j.lock();
            st.begin(0, 0);
            assert_eq!(st.receive(0, 1 << 20), 1 << 20);
            st.live[0].since = Some((Instant::now() - Duration::from_secs(1), 1 << 20));
        }
        assert_eq!(
            sched.steal(&budget),
            1,
            "3 s left: halve it once (1.5 s each)"
        );
        let mut st = j.lock();
        let mid = (1 << 20) + (3 << 20) / 2;
        assert_eq!(
            st.log.ranges,
            vec![[0, mid - 1, 0], [mid, (4 << 20) - 1, mid]]
        );
        // Range 0 keeps what it wants, and no more.
        assert_eq!(st.receive(0, 4 << 20), mid - (1 << 20));
        let handed = st.take_handed();
        assert_eq!(handed.len(), 1);
        assert_eq!(handed[0].0, 1);
    }

    #[tokio::test]
    async fn fast_or_unmeasured_ranges_are_left_alone() {
        let budget = ConnectionBudget::fixed(4);
        let sched = Scheduler::default();
        let j = job(4 << 20);
        sched.register(&j);
        assert_eq!(sched.steal(&budget), 0, "no rate measured yet");
        {
            let mut st = j.lock();
            st.begin(0, 0);
            st.receive(0, 1 << 20);
            // 1 MiB in 0.5 s: 3 MiB left is 1.5 s, under two seconds: not worth a request.
            st.live[0].since = Some((Instant::now() - Duration::from_millis(500), 1 << 20));
        }
        assert_eq!(sched.steal(&budget), 0);
        assert_eq!(j.lock().log.ranges.len(), 1);
    }

    #[tokio::test]
    async fn no_slot_is_taken_while_transfers_wait() {
        let budget = ConnectionBudget::fixed(1);
        let _busy = budget.acquire().await;
        let sched = Scheduler::default();
        let j = job(64 << 20);
        sched.register(&j);
        {
            let mut st = j.lock();
            st.begin(0, 0);
            st.receive(0, 1 << 20);
            st.live[0].since = Some((Instant::now() - Duration::from_secs(1), 1 << 20));
        }
        assert_eq!(sched.steal(&budget), 0, "the only slot is in use");
    }
}
