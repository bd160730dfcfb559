//! The one retry policy of every HTTP call physio makes (issue 13): exponential backoff
//! with jitter (as object_store's `Backoff`), which errors are worth retrying (as uv's
//! `retry.rs`), `Retry-After`, and a retry budget shared by the whole run so a dead
//! server cannot stretch a run to hours. [`RetryState`] counts one request's attempts;
//! [`retry`] wraps a whole request. How many transfers run at once is
//! `concurrency.rs`'s business.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

/// True for errors that mean "slow down" (503, 429, timeouts, resets, stalls): they cut
/// the host's connection budget.
pub fn is_congestion(e: &FetchError) -> bool {
    match e {
        FetchError::Stalled { .. } => true,
        FetchError::Status { status, .. } => *status == 429 || *status == 503,
        FetchError::Transfer { message, .. } => {
            let m = message.to_ascii_lowercase();
            m.contains("timed out") || m.contains("reset") || m.contains("refused")
        }
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

/// The retries of one request or transfer: counts its attempts against the policy
/// and takes each retry from the run's budget (uv's `RetryState`). Every HTTP call
/// physio makes — downloads, ranges, listings, manifests, S3 listings, Kaggle API
/// calls — retries through this, so they all back off alike.
#[derive(Debug)]
pub struct RetryState<'a> {
    policy: &'a RetryPolicy,
    budget: &'a RetryBudget,
    attempts: u32,
}

impl<'a> RetryState<'a> {
    /// No attempt made yet.
    pub fn new(policy: &'a RetryPolicy, budget: &'a RetryBudget) -> Self {
        RetryState {
            policy,
            budget,
            attempts: 0,
        }
    }

    /// Counts a failed attempt. Returns how long to wait before the next one, or `None`
    /// when the failure is not `transient`, the attempts are used up or the run's
    /// budget is spent. A server's `retry_after` is honoured (up to the policy's cap).
    pub fn next_delay(
        &mut self,
        transient: bool,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        self.attempts += 1;
        (transient && self.attempts < self.policy.max_attempts && self.budget.take())
            .then(|| self.policy.delay(self.attempts - 1, retry_after))
    }

    /// Failed attempts so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// How a [`FetchError`] is retried: `Some(retry_after)` when it is transient.
pub fn classify(e: &FetchError) -> Option<Option<Duration>> {
    is_transient(e).then(|| retry_after(e))
}

/// Runs `op` until it succeeds, fails for good (`classify` returns `None`), or the
/// policy's attempts or the run's budget are spent; the last error is returned.
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    budget: &RetryBudget,
    what: &str,
    classify: impl Fn(&E) -> Option<Option<Duration>>,
    mut op: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut state = RetryState::new(policy, budget);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let hint = classify(&e);
                match state.next_delay(hint.is_some(), hint.flatten()) {
                    Some(delay) => {
                        tracing::info!(%what, attempt = state.attempts(), ?delay, error = %e, "retrying");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(e),
                }
            }
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

    #[test]
    fn retry_state_counts_attempts_and_spends_the_budget() {
        let p = RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(10),
        };
        let budget = RetryBudget::new(10);
        let mut r = RetryState::new(&p, &budget);
        assert!(r.next_delay(false, None).is_none(), "not transient");
        let mut r = RetryState::new(&p, &budget);
        assert!(r.next_delay(true, None).is_some());
        assert!(r.next_delay(true, None).is_some());
        assert!(r.next_delay(true, None).is_none(), "three attempts made");
        let empty = RetryBudget::new(0);
        assert!(RetryState::new(&p, &empty).next_delay(true, None).is_none());
        let ra = RetryState::new(&p, &budget).next_delay(true, Some(Duration::from_millis(7)));
        assert_eq!(ra, Some(Duration::from_millis(7)), "Retry-After honoured");
    }

    #[tokio::test]
    async fn retry_helper_retries_transient_errors_only() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        };
        let budget = RetryBudget::new(100);
        let calls = std::sync::atomic::AtomicU32::new(0);
        let st = |status| FetchError::Status {
            url: String::new(),
            status,
            retry_after: None,
        };
        let got = retry(&p, &budget, "x", classify, || async {
            match calls.fetch_add(1, Ordering::Relaxed) {
                0 | 1 => Err(st(429)),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(got.unwrap(), 2);
        calls.store(0, Ordering::Relaxed);
        let got: Result<u32, _> = retry(&p, &budget, "x", classify, || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err(st(404))
        })
        .await;
        assert!(got.is_err());
        assert_eq!(calls.load(Ordering::Relaxed), 1, "404 is not retried");
    }
}
