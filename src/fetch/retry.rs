//! Retries and politeness: exponential backoff with jitter (as object_store's
//! `Backoff`), which errors are worth retrying (as uv's `retry.rs`), a retry budget
//! shared by the whole run so a dead server cannot stretch a run to hours, and a
//! per-host concurrency limit that halves on timeouts and 429s and creeps back up on
//! success (physionet.org throttles each connection and drops clients that open dozens).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::FetchError;

/// How failed transfers are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per file, the first included.
    pub max_attempts: u32,
    /// First backoff delay.
    pub base: Duration,
    /// Longest backoff delay (and longest `Retry-After` honoured).
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `attempt + 1` (0-based `attempt` just failed): `base·2^n`
    /// capped, with "full jitter" in [d/2, d] so that many clients do not retry in step;
    /// a server's `Retry-After` wins when it is longer.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.cap);
        let jittered = exp.mul_f64(0.5 + fastrand::f64() * 0.5);
        match retry_after {
            Some(ra) => ra.min(self.cap).max(jittered),
            None => jittered,
        }
    }
}

/// Whether `e` is worth another attempt: connection errors, resets, stalls, timeouts,
/// and HTTP 408, 429 and 5xx.
pub fn is_transient(e: &FetchError) -> bool {
    match e {
        FetchError::Transfer { .. } | FetchError::Stalled { .. } => true,
        FetchError::Status { status, .. } => {
            *status == 408 || *status == 429 || (500..=599).contains(status)
        }
        _ => false,
    }
}

/// The server's requested delay, when `e` carries one.
pub fn retry_after(e: &FetchError) -> Option<Duration> {
    match e {
        FetchError::Status { retry_after, .. } => *retry_after,
        _ => None,
    }
}

/// True for errors that mean "slow down" (429, timeouts/stalls): they shrink the
/// host's concurrency.
pub fn is_congestion(e: &FetchError) -> bool {
    match e {
        FetchError::Stalled { .. } => true,
        FetchError::Status { status, .. } => *status == 429 || *status == 503,
        FetchError::Transfer { message, .. } => message.contains("timed out"),
        _ => false,
    }
}

/// A budget of retries shared by every file of a run.
#[derive(Debug)]
pub struct RetryBudget(AtomicU64);

impl RetryBudget {
    /// A budget of `n` retries.
    pub fn new(n: u64) -> Self {
        RetryBudget(AtomicU64::new(n))
    }

    /// Adds `n` retries to the budget.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes one retry from the budget; false when it is spent.
    pub fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
            .is_ok()
    }
}

/// An adaptive concurrency limit for one host (additive increase, multiplicative
/// decrease, as TCP congestion control).
#[derive(Debug, Clone)]
pub struct HostLimiter {
    sem: Arc<Semaphore>,
    state: Arc<Mutex<LimitState>>,
}

#[derive(Debug)]
struct LimitState {
    max: usize,
    current: usize,
    successes: usize,
}

impl HostLimiter {
    /// A limiter allowing up to `max` concurrent transfers (at least 1).
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        HostLimiter {
            sem: Arc::new(Semaphore::new(max)),
            state: Arc::new(Mutex::new(LimitState {
                max,
                current: max,
                successes: 0,
            })),
        }
    }

    /// Waits for a transfer slot.
    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.sem.clone().acquire_owned().await.ok()
    }

    /// The current limit.
    pub fn current(&self) -> usize {
        self.state.lock().map(|s| s.current).unwrap_or(1)
    }

    /// Halves the limit (not below 1) after a timeout or 429.
    pub fn shrink(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        let new = (s.current / 2).max(1);
        let drop_n = s.current - new;
        s.current = new;
        s.successes = 0;
        drop(s);
        if drop_n > 0 {
            tracing::info!(limit = new, "server pushing back; reducing concurrency");
            // Retire permits as they come back, without blocking the caller.
            let sem = self.sem.clone();
            tokio::spawn(async move {
                if let Ok(p) = sem.acquire_many_owned(drop_n as u32).await {
                    p.forget();
                }
            });
        }
    }

    /// Counts a success; after as many successes in a row as the current limit, raises
    /// the limit by one (up to the maximum).
    pub fn record_success(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        s.successes += 1;
        if s.current < s.max && s.successes >= s.current * 2 {
            s.current += 1;
            s.successes = 0;
            self.sem.add_permits(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        };
        for _ in 0..50 {
            let d0 = p.delay(0, None);
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
            let d9 = p.delay(9, None);
            assert!(d9 >= Duration::from_secs(1) && d9 <= Duration::from_secs(2));
            assert!(p.delay(0, Some(Duration::from_secs(1))) >= Duration::from_secs(1));
            assert_eq!(
                p.delay(0, Some(Duration::from_secs(99))),
                Duration::from_secs(2)
            );
        }
    }

    #[test]
    fn classifies() {
        let st = |status| FetchError::Status {
            url: String::new(),
            status,
            retry_after: None,
        };
        assert!(is_transient(&st(503)) && is_transient(&st(429)) && is_transient(&st(408)));
        assert!(!is_transient(&st(404)) && !is_transient(&st(400)));
    }

    #[test]
    fn budget_runs_out() {
        let b = RetryBudget::new(2);
        assert!(b.take() && b.take() && !b.take());
        b.add(1);
        assert!(b.take() && !b.take());
    }

    #[tokio::test]
    async fn limiter_shrinks_and_grows() {
        let l = HostLimiter::new(8);
        l.shrink();
        assert_eq!(l.current(), 4);
        l.shrink();
        l.shrink();
        l.shrink();
        assert_eq!(l.current(), 1);
        for _ in 0..2 {
            l.record_success();
        }
        assert_eq!(l.current(), 2);
    }
}
