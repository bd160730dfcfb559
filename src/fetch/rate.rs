//! `--max-rate`: one bandwidth budget shared by every transfer of a run, so that
//! `--jobs 16 --max-rate 10M` means 10 MiB/s in total, not per connection.
//!
//! A virtual-clock limiter (the generic cell rate algorithm): each chunk advances a
//! "theoretical arrival time" by `len / rate`; a caller whose chunk would arrive early
//! sleeps until it is due. Idle time is not banked beyond one second of burst, so a pause
//! does not buy a later flood.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Most burst credit a limiter accumulates while idle.
const MAX_BURST: Duration = Duration::from_secs(1);

/// A shared bytes-per-second budget.
#[derive(Debug)]
pub struct RateLimiter {
    bytes_per_sec: f64,
    /// When the next byte is due (the virtual clock).
    next_due: Mutex<Instant>,
}

impl RateLimiter {
    /// A limiter for `bytes_per_sec` (at least 1).
    pub fn new(bytes_per_sec: u64) -> Self {
        RateLimiter {
            bytes_per_sec: bytes_per_sec.max(1) as f64,
            next_due: Mutex::new(Instant::now()),
        }
    }

    /// Waits until `n` more bytes fit in the budget.
    pub async fn acquire(&self, n: u64) {
        let wait_until = {
            // A poisoned lock only means another task panicked mid-update; the instant
            // inside is still a valid clock value.
            let mut due = self.next_due.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let start = (*due).max(now.checked_sub(MAX_BURST).unwrap_or(now));
            *due = start + Duration::from_secs_f64(n as f64 / self.bytes_per_sec);
            start
        };
        tokio::time::sleep_until(wait_until).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn shared_budget_paces_all_callers() {
        let limiter = std::sync::Arc::new(RateLimiter::new(1000));
        let t0 = Instant::now();
        // A chunk goes when it is due and pushes the clock by its length / rate:
        // 1000 bytes, then four tasks sharing the budget with 500 bytes each, then one
        // byte that is due only after those 3000 bytes, at 3 s.
        limiter.acquire(1000).await;
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move { l.acquire(500).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        limiter.acquire(1).await;
        let elapsed = t0.elapsed();
        assert!(elapsed >= Duration::from_millis(3000), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(3100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_banked_beyond_one_second() {
        let limiter = RateLimiter::new(100);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let t0 = Instant::now();
        limiter.acquire(100).await; // the one-second burst
        limiter.acquire(100).await; // due one second later
        limiter.acquire(1).await; // and this one after that
        let elapsed = t0.elapsed();
        assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1100), "{elapsed:?}");
    }
}
