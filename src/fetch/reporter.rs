//! Progress callbacks from the engine to whoever displays progress (the CLI implements
//! this with indicatif in `cli::reporter`; the library itself never prints), as uv's
//! `Reporter` trait.

/// How one file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Downloaded and verified.
    Fetched,
    /// Already present and verified; nothing transferred.
    Skipped,
    /// Failed after retries (the error is in the report).
    Failed,
}

impl Outcome {
    /// How a file whose fetch returned `result` ended: its outcome, or `Failed`.
    pub fn of<T, E>(result: &Result<(Outcome, T), E>) -> Outcome {
        match result {
            Ok((outcome, _)) => *outcome,
            Err(_) => Outcome::Failed,
        }
    }
}

/// Receives progress events. Every method has a no-op default.
pub trait Reporter: Send + Sync {
    /// The run will consider `files` files; `bytes` is their total size when known.
    fn on_plan(&self, _files: usize, _bytes: Option<u64>) {}
    /// A transfer of `path` starts.
    fn on_file_start(&self, _path: &str) {}
    /// `n` more body bytes arrived.
    fn on_bytes(&self, _n: u64) {}
    /// The connection budget stands at `connections`, each getting about
    /// `per_connection` bytes/s (0.0 before a first measurement).
    fn on_connections(&self, _connections: usize, _per_connection: f64) {}
    /// `path` is finished.
    fn on_file_done(&self, _path: &str, _outcome: Outcome) {}
    /// The run is over.
    fn on_finish(&self) {}
}

/// A reporter that ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {}
