//! The connection budget of one host: how many transfers may be in flight at once.
//!
//! physionet.org paces each connection to tens of KB/s and refuses (503) or times out
//! clients that hold more than a dozen or so connections (issue 13), so the right
//! number is the server's, not ours. Without `--jobs` the budget *searches* for it:
//! it starts at a safe [`START`] and, once per measurement window in which every slot
//! was wanted, grows while the run's aggregate throughput grows with it (each added
//! connection still brings at least `GAIN`, half, of the per-connection rate): it
//! doubles while growth is nearly linear (each added connection brings `LINEAR` of
//! the per-connection rate, as TCP's slow start doubles), by half after that, never by
//! more than `MAX_STEP` at once. It
//! settles when adding connections stops paying, and on a refusal (503/429, connect
//! timeouts, resets) it drops to the number of transfers the server was serving at that
//! moment and never grows past that again. With `--jobs N` the budget starts at N, never
//! exceeds it, halves on refusals and creeps back by one after a run of successes (AIMD).
//!
//! [`ConnectionBudget::try_acquire_idle`] hands out a slot only when no transfer is
//! queued for one: that is how the range scheduler (`split.rs`) knows a connection
//! would otherwise sit idle and may take over the tail of a slow transfer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Connections a searching budget starts with.
pub const START: usize = 4;

/// The most connections a searching budget tries (`--jobs` not given).
pub const SEARCH_CAP: usize = 32;

/// Length of one throughput measurement window.
const WINDOW: Duration = Duration::from_secs(1);

/// Growth pays when the aggregate rate rises by at least this fraction of the
/// per-connection rate for each connection added.
const GAIN: f64 = 0.5;

/// Growth doubles the budget while each added connection brings at least this
/// fraction of the per-connection rate (nearly linear scaling: the server is far from
/// its limit), and adds half after that.
const LINEAR: f64 = 0.9;

/// The most connections one growth step adds: a server's limit is found by overstepping
/// it, and each connection over it is a refused request (or, on physionet.org, a
/// connect timeout).
const MAX_STEP: usize = 8;

/// Refusals closer together than this count as one burst (one cut).
const BURST: Duration = Duration::from_millis(500);

/// A per-host limit of transfers in flight, fixed or searching (see the module docs).
#[derive(Debug, Clone)]
pub struct ConnectionBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    freed: Notify,
}

#[derive(Debug)]
struct State {
    /// Transfers allowed now.
    limit: usize,
    /// Never more than this (`--jobs`, or [`SEARCH_CAP`]).
    cap: usize,
    /// Searching for the server's budget (no `--jobs`).
    searching: bool,
    /// No more growth by measurement (the search is over).
    settled: bool,
    /// The most a refusal showed the server to take.
    ceiling: usize,
    in_flight: usize,
    /// The most transfers ever in flight at once.
    peak: usize,
    waiting: usize,
    successes: usize,
    last_cut: Option<Instant>,
    window: Window,
    /// (limit, aggregate bytes/s) of the last window in which every slot was wanted.
    last_busy: Option<(usize, f64)>,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    bytes: u64,
    /// Every slot was in use, or a transfer waited for one, during the window.
    busy: bool,
    limit: usize,
}

impl Window {
    fn new(limit: usize) -> Window {
        Window {
            start: Instant::now(),
            bytes: 0,
            busy: false,
            limit,
        }
    }
}

/// A transfer waiting for a slot; uncounted if its wait is abandoned.
struct Waiting<'a>(&'a ConnectionBudget);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.waiting = s.waiting.saturating_sub(1);
    }
}

/// A slot of the budget; returned when dropped.
#[derive(Debug)]
pub struct Slot {
    inner: Arc<Inner>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut s) = self.inner.state.lock() {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        self.inner.freed.notify_waiters();
    }
}

impl ConnectionBudget {
    /// A fixed budget of `max` transfers (at least 1): `--jobs`.
    pub fn fixed(max: usize) -> Self {
        Self::with(max.max(1), max.max(1), false)
    }

    /// A budget that searches for the server's limit, from [`START`] up to `cap`.
    pub fn searching(cap: usize) -> Self {
        let cap = cap.max(1);
        Self::with(START.min(cap), cap, true)
    }

    fn with(limit: usize, cap: usize, searching: bool) -> Self {
        ConnectionBudget {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    limit,
                    cap,
                    searching,
                    settled: !searching,
                    ceiling: cap,
                    in_flight: 0,
                    peak: 0,
                    waiting: 0,
                    successes: 0,
                    last_cut: None,
                    window: Window::new(limit),
                    last_busy: None,
                }),
                freed: Notify::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the counters are still usable.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot.
    pub async fn acquire(&self) -> Slot {
        // Counted as waiting (so idle slots are not handed to range takeovers) until it
        // gets a slot or is dropped.
        let mut waiting: Option<Waiting<'_>> = None;
        loop {
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut s = self.lock();
                s.tick();
                if s.in_flight < s.limit {
                    s.in_flight += 1;
                    s.peak = s.peak.max(s.in_flight);
                    if let Some(w) = waiting.take() {
                        // Uncounted here, under the lock its drop would take.
                        std::mem::forget(w);
                        s.waiting -= 1;
                    }
                    if s.in_flight >= s.limit {
                        s.window.busy = true;
                    }
                    return Slot {
                        inner: self.inner.clone(),
                    };
                }
                s.window.busy = true;
                if waiting.is_none() {
                    s.waiting += 1;
                    waiting = Some(Waiting(self));
                }
            }
            // Also wake now and then: a grown limit frees no slot.
            let _ = tokio::time::timeout(WINDOW / 4, freed).await;
        }
    }

    /// A slot, only when one is free and no transfer is waiting for it: the slot would
    /// otherwise sit idle.
    pub fn try_acquire_idle(&self) -> Option<Slot> {
        let mut s = self.lock();
        s.tick();
        if s.waiting == 0 && s.in_flight < s.limit {
            s.in_flight += 1;
            s.peak = s.peak.max(s.in_flight);
            if s.in_flight >= s.limit {
                s.window.busy = true;
            }
            return Some(Slot {
                inner: self.inner.clone(),
            });
        }
        None
    }

    /// Counts `n` body bytes received (the throughput the search measures).
    pub fn on_bytes(&self, n: u64) {
        let mut s = self.lock();
        s.window.bytes += n;
        s.tick();
    }

    /// The server pushed back (503, 429, a connect timeout, a reset, a stall): drop to
    /// what it was serving and stop searching upwards.
    pub fn refused(&self) {
        let mut s = self.lock();
        let now = Instant::now();
        let in_burst = s.last_cut.is_some_and(|t| now - t < BURST);
        // The transfers still in flight are what the server accepted (the refused one
        // has already returned its slot). A first refusal cuts at least one slot and at
        // most half; later refusals of the same burst only follow what is served.
        let served = s.in_flight;
        let new = if in_burst {
            s.limit.min(served)
        } else {
            (s.limit - 1).min(served.max(s.limit / 2))
        }
        .max(1);
        if new < s.limit {
            tracing::info!(limit = new, "server pushing back; fewer connections");
        }
        s.limit = new;
        if s.searching {
            s.ceiling = s.ceiling.min(new);
            s.settled = true;
        }
        s.successes = 0;
        s.last_cut = Some(now);
        s.window = Window::new(new);
    }

    /// Counts a completed transfer; a fixed budget cut by refusals grows back by one
    /// after twice its limit of successes in a row (never past `--jobs`). A searching
    /// budget keeps what its measurements and refusals showed.
    pub fn record_success(&self) {
        let mut s = self.lock();
        s.successes += 1;
        let top = s.cap.min(s.ceiling);
        if !s.searching && s.limit < top && s.successes >= s.limit * 2 {
            s.limit += 1;
            s.successes = 0;
            drop(s);
            self.inner.freed.notify_waiters();
        }
    }

    /// The current limit.
    pub fn current(&self) -> usize {
        self.lock().limit
    }

    /// The most this budget will ever allow.
    pub fn cap(&self) -> usize {
        self.lock().cap
    }

    /// The connection count the run settled at (the limit, or the most transfers it
    /// ever had in flight when that is fewer: a limit never used is no finding) and the
    /// per-connection rate (bytes/s) of the last window in which every slot was in use
    /// (0.0 when there was none).
    pub fn settled(&self) -> (usize, f64) {
        let s = self.lock();
        let n = s.limit.min(s.peak.max(1));
        match s.last_busy {
            Some((busy_n, rate)) if busy_n > 0 => (n, rate / busy_n as f64),
            _ => (n, 0.0),
        }
    }
}

impl State {
    /// Closes the measurement window when it is due, and grows a searching budget
    /// when the window shows that more connections bring more throughput.
    fn tick(&mut self) {
        let elapsed = self.window.start.elapsed();
        if elapsed < WINDOW {
            return;
        }
        let rate = self.window.bytes as f64 / elapsed.as_secs_f64();
        let (busy, limit) = (self.window.busy, self.window.limit);
        if busy && limit == self.limit {
            // (grows at all, grows nearly linearly)
            let (grows, linear) = match self.last_busy {
                // The first full window: try more, fast.
                None => (true, true),
                Some((prev_n, prev_rate)) if limit > prev_n => {
                    let per_conn = prev_rate / prev_n as f64;
                    let added = (limit - prev_n) as f64;
                    (
                        rate >= prev_rate + GAIN * per_conn * added,
                        rate >= prev_rate + LINEAR * per_conn * added,
                    )
                }
                // Measured again at the same (or a lower) limit: keep the better figure.
                Some((_, prev_rate)) => (rate > prev_rate, false),
            };
            if self.searching && !self.settled {
                if grows {
                    let step = match linear {
                        true => self.limit,
                        false => self.limit.div_ceil(2),
                    }
                    .min(MAX_STEP);
                    let next = (self.limit + step).min(self.cap).min(self.ceiling);
                    if next > self.limit {
                        tracing::debug!(limit = next, rate, "more connections pay; growing");
                        self.limit = next;
                    } else {
                        self.settled = true;
                    }
                } else {
                    // The last step brought nothing: go back to where it did.
                    if let Some((prev_n, _)) = self.last_busy
                        && prev_n < self.limit
                    {
                        self.limit = prev_n;
                    }
                    tracing::debug!(limit = self.limit, rate, "throughput flat; settled");
                    self.settled = true;
                }
            }
            if grows || self.last_busy.is_none_or(|(n, _)| n != limit) {
                self.last_busy = Some((limit, rate));
            }
        }
        self.window = Window::new(self.limit);
        self.window.busy = self.waiting > 0 || self.in_flight >= self.limit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fixed_budget_cuts_on_refusal_and_grows_back() {
        let b = ConnectionBudget::fixed(8);
        assert_eq!(b.current(), 8);
        b.refused();
        assert_eq!(b.current(), 4, "nothing in flight: halve");
        for _ in 0..8 {
            b.record_success();
        }
        assert_eq!(b.current(), 5);
        assert_eq!(b.cap(), 8);
    }

    #[tokio::test]
    async fn refusal_drops_to_what_the_server_was_serving() {
        let b = ConnectionBudget::fixed(20);
        let held: Vec<Slot> = futures_util::future::join_all((0..18).map(|_| b.acquire())).await;
        b.refused();
        assert_eq!(b.current(), 18);
        drop(held);
        let held: Vec<Slot> = futures_util::future::join_all((0..16).map(|_| b.acquire())).await;
        b.refused(); // the same burst: no halving floor
        assert_eq!(b.current(), 16);
        drop(held);
    }

    #[tokio::test]
    async fn idle_slots_only_when_nobody_waits() {
        let b = ConnectionBudget::fixed(2);
        let a = b.acquire().await;
        let idle = b.try_acquire_idle().expect("one slot free, nobody waiting");
        assert!(b.try_acquire_idle().is_none(), "all slots taken");
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.acquire().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(idle);
        let got = tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("the waiter gets the freed slot")
            .unwrap();
        assert!(b.try_acquire_idle().is_none());
        drop((a, got));
        assert!(b.try_acquire_idle().is_some());
    }

    #[test]
    fn search_grows_while_throughput_grows_and_settles_when_flat() {
        let mut s = ConnectionBudget::searching(32).lock_owned_for_test();
        // Window 1 at 4 connections, busy, 400 B/s: the first window doubles, to 8.
        s.fake_window(4, 400.0);
        assert_eq!(s.limit, 8);
        // 8 connections bring 800 B/s (linear: +100 per added connection): double, 16.
        s.fake_window(8, 800.0);
        assert_eq!(s.limit, 16);
        // 16 bring 1,600 B/s (linear again): doubling would overstep by 16 at once; a
        // step adds at most 8, to 24.
        s.fake_window(16, 1600.0);
        assert_eq!(s.limit, 24);
        // 24 bring 2,100 B/s (+62 per added connection: pays, not linear): +half of 24,
        // capped at 8: 32, the cap.
        s.fake_window(24, 2100.0);
        assert_eq!(s.limit, 32);
        // 32 bring no more (bandwidth-bound): back to 24, settled.
        s.fake_window(32, 2110.0);
        assert_eq!(s.limit, 24);
        assert!(s.settled);
        s.fake_window(24, 3000.0);
        assert_eq!(s.limit, 24, "settled: no more growth");
    }

    impl ConnectionBudget {
        fn lock_owned_for_test(&self) -> State {
            let s = self.lock();
            State {
                limit: s.limit,
                cap: s.cap,
                searching: s.searching,
                settled: s.settled,
                ceiling: s.ceiling,
                in_flight: 0,
                peak: 0,
                waiting: 0,
                successes: 0,
                last_cut: None,
                window: Window::new(s.limit),
                last_busy: None,
            }
        }
    }

    impl State {
        /// Ends a window of one second at `limit` connections, busy, at `rate` B/s.
        fn fake_window(&mut self, limit: usize, rate: f64) {
            assert_eq!(self.limit, limit);
            self.window = Window {
                start: Instant::now() - Duration::from_secs(1),
                bytes: rate as u64,
                busy: true,
                limit,
            };
            self.tick();
        }
    }
}
