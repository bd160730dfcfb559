//! The verified-state cache: for each file a run has verified, its size, modification
//! time and SHA-256. A re-run trusts a file whose size and mtime still match and whose
//! recorded digest equals the manifest's, so re-checking terabytes costs a `stat` per
//! file; `physio verify` re-hashes everything and refreshes it. Stored as JSON in
//! `.physio-state*.json` inside the version directory (contract: physio's own state
//! lives only in `.physio*` entries); each shard writes its own file so shards running
//! at once never overwrite each other, and every such file is read back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Name prefix of every entry physio itself writes.
pub const STATE_PREFIX: &str = ".physio";

/// One verified file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    /// Size in bytes when verified.
    pub size: u64,
    /// Modification time in nanoseconds since the epoch when verified.
    pub mtime_ns: u128,
    /// SHA-256, hex.
    pub sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    format: u32,
    files: BTreeMap<String, FileState>,
}

/// The cache for one version directory.
#[derive(Debug, Default)]
pub struct VerifiedState {
    files: BTreeMap<String, FileState>,
}

/// Size and mtime of a file, the cache key.
pub fn stamp(meta: &std::fs::Metadata) -> (u64, u128) {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (meta.len(), mtime)
}

/// The state file a run writes: `.physio-state.json`, or `.physio-state-<tag>.json` for
/// a shard.
pub fn state_path(dir: &Path, tag: Option<&str>) -> PathBuf {
    match tag {
        Some(t) => dir.join(format!("{STATE_PREFIX}-state-{t}.json")),
        None => dir.join(format!("{STATE_PREFIX}-state.json")),
    }
}

impl VerifiedState {
    /// Loads and merges every `.physio-state*.json` in `dir`; unreadable or corrupt
    /// files are ignored (the cache only ever saves work, never decides correctness
    /// alone: the manifest digest must match too).
    pub fn load(dir: &Path) -> VerifiedState {
        let mut files = BTreeMap::new();
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(".physio-state")
                    && name.ends_with(".json")
                    && let Ok(text) = std::fs::read_to_string(e.path())
                    && let Ok(sf) = serde_json::from_str::<StateFile>(&text)
                {
                    files.extend(sf.files);
                }
            }
        }
        VerifiedState { files }
    }

    /// The recorded SHA-256 of `path` if its size and mtime are unchanged.
    pub fn lookup(&self, path: &str, size: u64, mtime_ns: u128) -> Option<[u8; 32]> {
        let f = self.files.get(path)?;
        if f.size != size || f.mtime_ns != mtime_ns {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(&f.sha256, &mut out).ok()?;
        Some(out)
    }

    /// Records a verified file.
    pub fn insert(&mut self, path: &str, size: u64, mtime_ns: u128, sha256: &[u8; 32]) {
        self.files.insert(
            path.to_string(),
            FileState {
                size,
                mtime_ns,
                sha256: hex::encode(sha256),
            },
        );
    }

    /// Forgets `path`.
    pub fn remove(&mut self, path: &str) {
        self.files.remove(path);
    }

    /// Number of entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Writes the cache atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let sf = StateFile {
            format: 1,
            files: self.files.clone(),
        };
        let text = serde_json::to_vec(&sf).map_err(|e| crate::Error::io(path, e.into()))?;
        crate::fsutil::write_atomic(path, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = VerifiedState::default();
        s.insert("a/b.dat", 10, 123, &[7; 32]);
        s.save(&state_path(dir.path(), None)).unwrap();
        let mut t = VerifiedState::default();
        t.insert("c", 1, 1, &[1; 32]);
        t.save(&state_path(dir.path(), Some("shard-0-of-2")))
            .unwrap();
        let l = VerifiedState::load(dir.path());
        assert_eq!(l.len(), 2);
        assert_eq!(l.lookup("a/b.dat", 10, 123), Some([7; 32]));
        assert_eq!(l.lookup("a/b.dat", 10, 124), None);
        assert_eq!(l.lookup("a/b.dat", 11, 123), None);
        std::fs::write(state_path(dir.path(), Some("x")), "garbage").unwrap();
        assert_eq!(VerifiedState::load(dir.path()).len(), 2);
    }
}
