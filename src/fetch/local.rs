//! A local version directory as a fetch [`Destination`]: files are downloaded straight to
//! their final path (verified into place by the downloader's `.part` + rename), a lock
//! file stops two runs on the same directory (or shard) from racing, and the
//! verified-state cache lets a re-run skip an unchanged file with a `stat`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tracing::{debug, info, warn};

use super::destination::{Destination, Finished};
use super::state::{self, VerifiedState, stamp, state_path};
use super::{DirLock, Downloaded, Entry, FetchOptions, FetchPlan, hash};
use crate::error::{Error, Result};
use crate::fsutil::enclosed_path;

/// A local version directory (`DIR/<slug>/<version>`, or a shard's share of it).
pub(crate) struct LocalDir {
    /// The version directory.
    dir: PathBuf,
    /// The shard tag: a shard locks and records its state separately.
    shard_tag: Option<String>,
    /// Wait for the lock instead of failing at once.
    wait_for_lock: bool,
    /// Where this run saves the verified-state cache.
    save_path: PathBuf,
    /// The lock, held from [`Destination::prepare`] to the end of
    /// [`Destination::finish`].
    lock: Mutex<Option<DirLock>>,
    /// The verified-state cache, loaded in [`Destination::prepare`].
    state: Mutex<VerifiedState>,
}

impl LocalDir {
    /// The directory `dir`, locked and recorded as `opts` (shard tag, waiting) say.
    pub(crate) fn new(dir: &Path, opts: &FetchOptions) -> LocalDir {
        let shard = opts.shard_tag.as_deref().map(|t| format!("shard-{t}"));
        LocalDir {
            dir: dir.to_path_buf(),
            shard_tag: opts.shard_tag.clone(),
            wait_for_lock: opts.wait_for_lock,
            save_path: state_path(dir, shard.as_deref()),
            lock: Mutex::new(None),
            state: Mutex::new(VerifiedState::default()),
        }
    }

    /// The final path of `entry`, refused when it would leave the directory (`..`, an
    /// absolute path, a symlinked parent directory).
    fn path_of(&self, entry: &Entry) -> Result<PathBuf> {
        let rel = enclosed_path(&entry.path)?;
        refuse_symlinked_parents(&self.dir, &rel, &entry.path)?;
        Ok(self.dir.join(rel))
    }

    /// Takes the lock, writes `SHA256SUMS.txt` when it differs, loads the state cache.
    async fn open(&self, plan: &FetchPlan) -> Result<()> {
        let tag = self.shard_tag.as_deref();
        let lock = match self.wait_for_lock {
            true => DirLock::wait(&self.dir, tag).await?,
            false => DirLock::acquire(&self.dir, tag)?,
        };
        if let Ok(mut held) = self.lock.lock() {
            *held = Some(lock);
        }
        if let Some(text) = &plan.sums_text {
            let dest = self.dir.join("SHA256SUMS.txt");
            if std::fs::read_to_string(&dest).ok().as_deref() != Some(text.as_str()) {
                crate::fsutil::write_atomic(&dest, text.as_bytes())?;
            }
        }
        if let Ok(mut s) = self.state.lock() {
            *s = VerifiedState::load(&self.dir);
        }
        Ok(())
    }

    /// True when the file on disk matches `entry` (see [`local_copy_verifies`]); a
    /// symlink or directory in its place is an error.
    async fn check(&self, entry: &Entry) -> Result<bool> {
        let dest = self.path_of(entry)?;
        let Ok(meta) = tokio::fs::symlink_metadata(&dest).await else {
            return Ok(false);
        };
        if meta.file_type().is_symlink() || !meta.is_file() {
            return Err(Error::UnsafePath {
                path: entry.path.clone(),
                reason: "a symlink or directory is in the way of a dataset file",
            });
        }
        let (size, mtime) = stamp(&meta);
        if local_copy_verifies(&dest, entry, size, mtime, &self.state).await? {
            return Ok(true);
        }
        debug!("local copy differs from the manifest; replacing");
        Ok(false)
    }

    /// Reports (and with `delete` removes) the files upstream no longer lists, saves the
    /// state cache, and releases the lock.
    fn close(&self, plan: &FetchPlan, delete: bool) -> Finished {
        let (removed_upstream, deleted) = removed_upstream(&self.dir, plan, delete, &self.state);
        let mut state_error = None;
        if let Ok(s) = self.state.lock()
            && let Err(e) = s.save(&self.save_path)
        {
            warn!(error = %e, "cannot save the verified-state cache");
            state_error = Some(e);
        }
        if let Ok(mut held) = self.lock.lock() {
            held.take();
        }
        Finished {
            removed_upstream,
            deleted,
            state_error,
        }
    }
}

impl Destination for LocalDir {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn prepare<'a>(&'a self, plan: &'a FetchPlan) -> BoxFuture<'a, Result<()>> {
        self.open(plan).boxed()
    }

    fn verified<'a>(&'a self, entry: &'a Entry) -> BoxFuture<'a, Result<bool>> {
        self.check(entry).boxed()
    }

    fn staging_path(&self, _plan: &FetchPlan, entry: &Entry) -> Result<PathBuf> {
        self.path_of(entry)
    }

    fn commit<'a>(
        &'a self,
        entry: &'a Entry,
        staged: &'a Path,
        got: &'a Downloaded,
    ) -> BoxFuture<'a, Result<()>> {
        if let Ok(meta) = std::fs::metadata(staged) {
            let (size, mtime) = stamp(&meta);
            if let Ok(mut s) = self.state.lock() {
                s.insert(&entry.path, size, mtime, &got.digests.sha256);
            }
        }
        futures_util::future::ready(Ok(())).boxed()
    }

    fn forget(&self, path: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.remove(path);
        }
    }

    fn checkpoint(&self) {
        if let Ok(s) = self.state.lock()
            && let Err(e) = s.save(&self.save_path)
        {
            warn!(error = %e, "cannot checkpoint the verified-state cache");
        }
    }

    fn finish<'a>(&'a self, plan: &'a FetchPlan, delete: bool) -> BoxFuture<'a, Finished> {
        futures_util::future::ready(self.close(plan, delete)).boxed()
    }

    fn already_present<'a>(
        &'a self,
        entries: &'a [Entry],
        _jobs: usize,
    ) -> BoxFuture<'a, Result<HashSet<String>>> {
        futures_util::future::ready(Ok(already_verified(&self.dir, entries))).boxed()
    }
}

/// The entries whose local copy under `dir` the verified-state cache vouches for
/// (size and mtime unchanged, cached digest equal to the manifest's). Only `stat`s, no
/// hashing: what `--dry-run` uses to say what a run would actually transfer.
pub fn already_verified(dir: &Path, entries: &[Entry]) -> HashSet<String> {
    let state = VerifiedState::load(dir);
    entries
        .iter()
        .filter(|e| {
            let Ok(rel) = enclosed_path(&e.path) else {
                return false;
            };
            let Ok(meta) = std::fs::symlink_metadata(dir.join(rel)) else {
                return false;
            };
            let (size, mtime) = stamp(&meta);
            meta.is_file()
                && match e.sha256 {
                    Some(want) => state.lookup(&e.path, size, mtime) == Some(want),
                    None => e.size == Some(size),
                }
        })
        .map(|e| e.path.clone())
        .collect()
}

/// Refuses to write through a symlinked directory inside the version directory: a
/// planted `records -> /etc` link would otherwise send downloads outside it, even
/// though the manifest path itself is clean.
fn refuse_symlinked_parents(root: &Path, rel: &Path, shown: &str) -> Result<()> {
    let mut at = root.to_path_buf();
    let parents: Vec<_> = rel.components().collect();
    for c in parents.iter().take(parents.len().saturating_sub(1)) {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::UnsafePath {
                    path: shown.to_string(),
                    reason: "a parent directory in the output is a symlink",
                });
            }
            Ok(_) => {}
            Err(_) => break, // not created yet: nothing below it exists either
        }
    }
    Ok(())
}

/// True when the file at `dest` matches `entry`: by the state cache (size+mtime and
/// digest) or, failing that, by hashing it (then recorded in the cache). Without a
/// published digest, an equal size is the only check available.
async fn local_copy_verifies(
    dest: &Path,
    entry: &Entry,
    size: u64,
    mtime: u128,
    state: &Mutex<VerifiedState>,
) -> Result<bool> {
    if entry.size.is_some_and(|s| s != size) {
        return Ok(false);
    }
    let Some(want) = entry.sha256 else {
        return Ok(entry.size == Some(size));
    };
    let cached = state
        .lock()
        .ok()
        .and_then(|s| s.lookup(&entry.path, size, mtime));
    if cached == Some(want) {
        return Ok(true);
    }
    let p = dest.to_path_buf();
    let d = tokio::task::spawn_blocking(move || hash::hash_file(&p, false))
        .await
        .map_err(|e| Error::io(dest, std::io::Error::other(e)))?
        .map_err(|e| Error::io(dest, e))?;
    if d.sha256 == want {
        if let Ok(mut s) = state.lock() {
            s.insert(&entry.path, size, mtime, &d.sha256);
        }
        return Ok(true);
    }
    Ok(false)
}

/// Files under `dir` that the upstream manifest does not list (physio's own `.physio*`
/// entries, `.part` files and SHA256SUMS.txt aside); deleted with `delete`.
fn removed_upstream(
    dir: &Path,
    plan: &FetchPlan,
    delete: bool,
    state: &Mutex<VerifiedState>,
) -> (Vec<String>, Vec<String>) {
    let mut found = Vec::new();
    walk(dir, "", &mut found);
    found.retain(|p| {
        let name = p.rsplit('/').next().unwrap_or(p);
        !(name.starts_with(state::STATE_PREFIX)
            || p == "SHA256SUMS.txt"
            || plan.upstream.contains(p)
            || p.strip_suffix(".part")
                .is_some_and(|s| plan.upstream.contains(s)))
    });
    found.sort();
    let mut deleted = Vec::new();
    for p in &found {
        if !delete {
            info!(path = %p, "removed upstream (kept; --delete removes it)");
            continue;
        }
        match std::fs::remove_file(dir.join(p)) {
            Ok(()) => {
                if let Ok(mut s) = state.lock() {
                    s.remove(p);
                }
                deleted.push(p.clone());
            }
            Err(e) => warn!(path = %p, error = %e, "cannot delete"),
        }
    }
    (found, deleted)
}

/// Collects regular files under `dir` as `/`-separated relative paths (symlinks are
/// not followed).
fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        match e.file_type() {
            Ok(t) if t.is_dir() && !name.starts_with(state::STATE_PREFIX) => {
                walk(&e.path(), &rel, out);
            }
            Ok(t) if t.is_file() => out.push(rel),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn refuses_symlinked_parent_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("records")).unwrap();
        let rel = Path::new("records/a.dat");
        assert!(refuse_symlinked_parents(dir.path(), rel, "records/a.dat").is_err());
        assert!(refuse_symlinked_parents(dir.path(), Path::new("other/a.dat"), "x").is_ok());
        assert!(refuse_symlinked_parents(dir.path(), Path::new("records"), "x").is_ok());
    }
}
