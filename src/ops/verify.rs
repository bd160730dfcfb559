//! The verify operation (`physio verify`): re-hash every file a local copy's
//! `SHA256SUMS.txt` lists — one version directory, or every `<slug>/<version>` (and
//! Kaggle `kaggle/<owner>/<dataset>/<version>`) below a fetch output root — or every
//! object of a version stored in an object store (`s3://bucket/prefix/<slug>/<version>`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::fetch::verify::{VerifyReport, verify_dir};
use crate::objstore::{self, ObjectUrl};

/// The result of [`verify()`].
#[derive(Debug, Default)]
pub struct Verified {
    /// The version directories (or the store URL) that were verified.
    pub versions: Vec<String>,
    /// Every file's outcome, named relative to the directory given (so several versions
    /// stay distinguishable).
    pub report: VerifyReport,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The directories to verify: `dir` itself when it holds SHA256SUMS.txt, else those one
/// or two levels below it (`<version>` or `<slug>/<version>`) that do, and Kaggle
/// copies (`kaggle/<owner>/<dataset>/<version>`).
fn version_dirs(dir: &Path) -> Vec<PathBuf> {
    if dir.join("SHA256SUMS.txt").is_file() {
        return vec![dir.to_path_buf()];
    }
    let subdirs = |d: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| !e.file_name().to_string_lossy().starts_with(".physio"))
            .map(|e| e.path())
            .collect();
        v.sort();
        v
    };
    let mut out = Vec::new();
    for a in subdirs(dir) {
        if a.join("SHA256SUMS.txt").is_file() {
            out.push(a);
            continue;
        }
        if a.file_name().is_some_and(|n| n == "kaggle") {
            // Kaggle copies sit two levels deeper: kaggle/<owner>/<dataset>/<version>.
            for ds in subdirs(&a).iter().flat_map(|owner| subdirs(owner)) {
                out.extend(
                    subdirs(&ds)
                        .into_iter()
                        .filter(|v| v.join("SHA256SUMS.txt").is_file()),
                );
            }
        }
        out.extend(
            subdirs(&a)
                .into_iter()
                .filter(|b| b.join("SHA256SUMS.txt").is_file()),
        );
    }
    out
}

/// Verifies `dir` (a local directory, or an object-store version prefix URL) with `jobs`
/// concurrent hashes. Per-file failures are in the report ([`VerifyReport::exit_code`]).
///
/// ```no_run
/// let rt = tokio::runtime::Runtime::new()?;
/// let v = rt.block_on(physio::ops::verify(std::path::Path::new("physionet/mitdb/1.0.0"), 4))?;
/// println!("{} ok, {} missing, {} mismatched", v.report.ok.len(), v.report.missing.len(), v.report.mismatched.len());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn verify(dir: &Path, jobs: usize) -> Result<Verified> {
    let started = Instant::now();
    if let Some(target) = ObjectUrl::parse(&dir.to_string_lossy())? {
        let target = target.into_prefix();
        let store = objstore::build_store(&target)?;
        let report = objstore::verify_store(store.as_ref(), &target, jobs).await?;
        return Ok(Verified {
            versions: vec![target.display_url()],
            report,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let dirs = version_dirs(dir);
    if dirs.is_empty() {
        return Err(Error::io(
            dir.join("SHA256SUMS.txt"),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no SHA256SUMS.txt here or in the <slug>/<version> directories below",
            ),
        ));
    }
    let mut total = VerifyReport::default();
    for d in &dirs {
        let prefix = d
            .strip_prefix(dir)
            .ok()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| format!("{}/", p.display()))
            .unwrap_or_default();
        let r = verify_dir(d, jobs)?;
        total
            .ok
            .extend(r.ok.into_iter().map(|p| format!("{prefix}{p}")));
        total
            .missing
            .extend(r.missing.into_iter().map(|p| format!("{prefix}{p}")));
        total.mismatched.extend(
            r.mismatched
                .into_iter()
                .map(|(p, w)| (format!("{prefix}{p}"), w)),
        );
        total.unreadable.extend(
            r.unreadable
                .into_iter()
                .map(|(p, w)| (format!("{prefix}{p}"), w)),
        );
        total.bytes += r.bytes;
    }
    Ok(Verified {
        versions: dirs.iter().map(|d| d.display().to_string()).collect(),
        report: total,
        seconds: started.elapsed().as_secs_f64(),
    })
}
