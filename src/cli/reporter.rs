//! The terminal progress display for downloads: one indicatif bar of files done, with
//! bytes received, rate and ETA. Hidden with `--quiet` or when stderr is not a terminal
//! (cron, pipes), so scripts see nothing but errors.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::fetch::{Outcome, Reporter};

/// An indicatif implementation of [`Reporter`].
#[derive(Debug)]
pub struct ProgressReporter {
    bar: ProgressBar,
    bytes: AtomicU64,
    last_shown: AtomicU64,
    started: Instant,
    /// The connection count and per-connection rate (bytes/s, as bits of an f64).
    connections: AtomicU64,
    connection_rate: AtomicU64,
}

impl ProgressReporter {
    /// A reporter drawing on stderr, or hidden when `quiet` or stderr is no terminal.
    pub fn new(quiet: bool) -> Self {
        let bar = ProgressBar::new(0);
        if quiet || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        } else {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} files  {msg}  ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        ProgressReporter {
            bar,
            bytes: AtomicU64::new(0),
            last_shown: AtomicU64::new(0),
            started: Instant::now(),
            connections: AtomicU64::new(0),
            connection_rate: AtomicU64::new(0),
        }
    }

    fn show_bytes(&self) {
        let b = self.bytes.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let conns = self.connections.load(Ordering::Relaxed);
        let per = f64::from_bits(self.connection_rate.load(Ordering::Relaxed));
        let links = match (conns, per > 0.0) {
            (0, _) => String::new(),
            (n, true) => format!("  {n} conn x {}/s", HumanBytes(per as u64)),
            (n, false) => format!("  {n} conn"),
        };
        self.bar.set_message(format!(
            "{}  {}/s{links}",
            HumanBytes(b),
            HumanBytes((b as f64 / secs) as u64)
        ));
    }
}

impl Reporter for ProgressReporter {
    fn on_plan(&self, files: usize, _bytes: Option<u64>) {
        self.bar.set_length(files as u64);
    }

    fn on_bytes(&self, n: u64) {
        let b = self.bytes.fetch_add(n, Ordering::Relaxed) + n;
        // Refresh the message about every 256 KiB; indicatif rate-limits drawing itself.
        if b - self.last_shown.load(Ordering::Relaxed) > 256 * 1024 {
            self.last_shown.store(b, Ordering::Relaxed);
            self.show_bytes();
        }
    }

    fn on_connections(&self, connections: usize, per_connection: f64) {
        self.connections
            .store(connections as u64, Ordering::Relaxed);
        self.connection_rate
            .store(per_connection.to_bits(), Ordering::Relaxed);
    }

    fn on_file_done(&self, _path: &str, _outcome: Outcome) {
        self.bar.inc(1);
        self.show_bytes();
    }

    fn on_finish(&self) {
        self.bar.finish_and_clear();
    }
}
