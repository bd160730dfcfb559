//! `physio verify`: re-hash every file a version directory's SHA256SUMS.txt lists,
//! whatever the verified-state cache says, report missing and mismatched files by name,
//! and rewrite the cache from what was actually hashed. Hashing runs on a rayon pool
//! (CPU- and disk-bound work stays off the async runtime).

use std::path::Path;

use rayon::prelude::*;

use super::Manifest;
use super::hash::hash_file;
use super::state::{VerifiedState, stamp, state_path};
use crate::error::{EXIT_INTEGRITY, EXIT_PARTIAL, Error, Result};
use crate::fsutil::enclosed_path;

/// The outcome of verifying a directory.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Files whose bytes match.
    pub ok: Vec<String>,
    /// Listed files that are not on disk.
    pub missing: Vec<String>,
    /// Files whose digest differs: path and what was found.
    pub mismatched: Vec<(String, String)>,
    /// Files that could not be read: path and error.
    pub unreadable: Vec<(String, String)>,
    /// Bytes hashed.
    pub bytes: u64,
}

impl VerifyReport {
    /// 0 when everything verified; 4 on any mismatch; 1 when files are missing or
    /// unreadable.
    pub fn exit_code(&self) -> u8 {
        if !self.mismatched.is_empty() {
            EXIT_INTEGRITY
        } else if !self.missing.is_empty() || !self.unreadable.is_empty() {
            EXIT_PARTIAL
        } else {
            0
        }
    }
}

enum One {
    Ok(u64, u64, u128, [u8; 32]),
    Missing,
    Mismatch(String),
    Unreadable(String),
}

/// Verifies `dir` (a `DIR/<slug>/<version>` directory holding SHA256SUMS.txt) with
/// `jobs` hashing threads.
pub fn verify_dir(dir: &Path, jobs: usize) -> Result<VerifyReport> {
    let sums = dir.join("SHA256SUMS.txt");
    let text = std::fs::read_to_string(&sums).map_err(|e| Error::io(&sums, e))?;
    let manifest = Manifest::from_sha256sums(&text)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| Error::io(dir, std::io::Error::other(e)))?;
    let results: Vec<(String, One)> = pool.install(|| {
        manifest
            .entries
            .par_iter()
            .map(|e| {
                let r = (|| {
                    let path = dir.join(enclosed_path(&e.path).ok()?);
                    Some(path)
                })();
                let Some(path) = r else {
                    return (e.path.clone(), One::Unreadable("unsafe path".into()));
                };
                let meta = match std::fs::metadata(&path) {
                    Ok(m) => m,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        return (e.path.clone(), One::Missing);
                    }
                    Err(err) => return (e.path.clone(), One::Unreadable(err.to_string())),
                };
                let (size, mtime) = stamp(&meta);
                match hash_file(&path, false) {
                    Ok(d) if Some(d.sha256) == e.sha256 => {
                        (e.path.clone(), One::Ok(d.size, size, mtime, d.sha256))
                    }
                    Ok(d) => (
                        e.path.clone(),
                        One::Mismatch(format!(
                            "SHA-256 {} does not match {}",
                            hex::encode(d.sha256),
                            e.sha256.map(hex::encode).unwrap_or_default()
                        )),
                    ),
                    Err(err) => (e.path.clone(), One::Unreadable(err.to_string())),
                }
            })
            .collect()
    });
    let mut report = VerifyReport::default();
    let mut state = VerifiedState::default();
    for (path, r) in results {
        match r {
            One::Ok(n, size, mtime, sha) => {
                report.bytes += n;
                state.insert(&path, size, mtime, &sha);
                report.ok.push(path);
            }
            One::Missing => report.missing.push(path),
            One::Mismatch(m) => report.mismatched.push((path, m)),
            One::Unreadable(m) => report.unreadable.push((path, m)),
        }
    }
    // Replace every cache file: what was just hashed is the only truth now.
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if n.starts_with(".physio-state") && n.ends_with(".json") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    state.save(&state_path(dir, None))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_missing_and_mismatched() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a"), b"abc").unwrap();
        std::fs::write(d.join("b"), b"xyz").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        std::fs::write(
            d.join("SHA256SUMS.txt"),
            format!("{abc}  a\n{abc}  b\n{abc}  c\n"),
        )
        .unwrap();
        let r = verify_dir(d, 2).unwrap();
        assert_eq!(r.ok, ["a"]);
        assert_eq!(r.missing, ["c"]);
        assert_eq!(r.mismatched.len(), 1);
        assert_eq!(r.mismatched[0].0, "b");
        assert_eq!(r.exit_code(), EXIT_INTEGRITY);
        assert_eq!(VerifiedState::load(d).len(), 1);
    }
}
