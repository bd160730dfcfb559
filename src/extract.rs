//! Safe extraction of zip archives (Kaggle serves every dataset as one zip).
//!
//! An archive from the network is hostile until proven otherwise, so extraction refuses,
//! with an integrity error (exit 4) and before or instead of writing the entry:
//!
//! * entry names that are absolute, contain `..`, backslashes, drive letters or control
//!   characters (checked with [`crate::fsutil::enclosed_path`] — the "zip-slip" family);
//! * symbolic links (unix mode `S_IFLNK` in the external attributes, APPNOTE 4.4.15), which
//!   could point outside the tree and redirect later writes;
//! * duplicate names (a second entry would silently replace the first);
//! * encrypted entries and compression methods other than stored/deflate;
//! * entries that decompress to more bytes than their declared size, or fewer;
//! * total expansion past `min(ratio × archive size, max_bytes)`: the limit is checked
//!   against the declared sizes up front *and* against the bytes actually decompressed,
//!   because a zip bomb lies about its sizes;
//! * CRC-32 mismatches and truncated archives (the zip crate checks each entry's CRC at its
//!   end; a missing central directory fails the open).
//!
//! Extraction writes into a directory the caller owns and has just created (a
//! `.physio-tmp-*` staging directory), so nothing reaches a dataset's final path until the
//! whole archive has been checked; the caller renames the staging directory into place.
//! Every file's SHA-256 is computed while it is written, so the caller can write the
//! `SHA256SUMS.txt` without reading the tree again.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{EXIT_INTEGRITY, EXIT_PARTIAL};
use crate::fsutil::enclosed_path;

/// Default bound on expansion: extracted bytes may be at most this many times the archive's
/// size (the contract's "expansion beyond 200×").
pub const DEFAULT_MAX_RATIO: u64 = 200;

/// `S_IFMT` and `S_IFLNK` from POSIX `<sys/stat.h>`: the file-type bits of a unix mode.
const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;

/// Errors extracting an archive. All but [`ExtractError::Io`] are integrity failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The archive cannot be read as a zip (truncated, corrupt, CRC mismatch).
    #[error("{}: corrupt archive: {message}", archive.display())]
    Corrupt {
        /// The archive file.
        archive: PathBuf,
        /// What the zip reader reported.
        message: String,
    },
    /// An entry's name would escape the target directory.
    #[error("hostile archive: entry {name:?} refused: {reason}")]
    UnsafeName {
        /// The entry name as stored.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// An entry is a symbolic link.
    #[error("hostile archive: entry {name:?} is a symbolic link; links are never extracted")]
    Symlink {
        /// The entry name as stored.
        name: String,
    },
    /// Two entries have the same path.
    #[error("hostile archive: entry {name:?} appears more than once")]
    Duplicate {
        /// The entry name as stored.
        name: String,
    },
    /// An entry is encrypted or uses a compression method physio does not read.
    #[error("unsupported archive entry {name:?}: {reason}")]
    Unsupported {
        /// The entry name as stored.
        name: String,
        /// What is unsupported.
        reason: String,
    },
    /// An entry decompressed to a size other than the one it declares.
    #[error(
        "hostile archive: entry {name:?} declares {declared} bytes but decompresses to {actual}{}",
        if *.larger { " or more" } else { "" }
    )]
    SizeMismatch {
        /// The entry name as stored.
        name: String,
        /// The uncompressed size in the central directory.
        declared: u64,
        /// Bytes actually produced (a lower bound when `larger`).
        actual: u64,
        /// True when extraction stopped because the entry grew past its declared size.
        larger: bool,
    },
    /// The archive expands past the allowed total.
    #[error(
        "hostile archive: expands past {limit} bytes (archive is {archive_size} bytes; limit is \
         min({ratio}× its size, --max-extract)); refusing a possible zip bomb"
    )]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
        /// Size of the archive file.
        archive_size: u64,
        /// The ratio in force.
        ratio: u64,
    },
    /// Reading the archive or writing the target failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ExtractError {
    /// Exit code: 4 (integrity) for every refusal, 1 for local I/O failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            ExtractError::Io { .. } => EXIT_PARTIAL,
            _ => EXIT_INTEGRITY,
        }
    }

    fn io(path: &Path, source: std::io::Error) -> Self {
        ExtractError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Bounds on what an archive may expand to.
#[derive(Debug, Clone, Copy)]
pub struct ExtractLimits {
    /// Extracted bytes may be at most `max_ratio` × the archive's size.
    pub max_ratio: u64,
    /// An absolute cap on extracted bytes (`--max-extract`), if any.
    pub max_bytes: Option<u64>,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_ratio: DEFAULT_MAX_RATIO,
            max_bytes: None,
        }
    }
}

impl ExtractLimits {
    /// The byte limit for an archive of `archive_size` bytes.
    pub fn limit_for(&self, archive_size: u64) -> u64 {
        let by_ratio = archive_size.saturating_mul(self.max_ratio);
        self.max_bytes.map_or(by_ratio, |m| m.min(by_ratio))
    }
}

/// One regular file written by [`extract_zip`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedFile {
    /// Path relative to the target directory, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the contents.
    pub sha256: String,
}

/// What [`extract_zip`] wrote.
#[derive(Debug, Clone, Default)]
pub struct ExtractReport {
    /// Every regular file, in archive order.
    pub files: Vec<ExtractedFile>,
    /// Total bytes written.
    pub total_bytes: u64,
}

/// A checked entry from the pre-pass: where it goes and what it claims to be.
struct Planned {
    index: usize,
    name: String,
    rel: PathBuf,
    is_dir: bool,
    declared: u64,
}

/// Extracts the zip at `archive` into `dest` (created if missing; it should be a fresh,
/// empty staging directory), refusing hostile content as described in the module docs.
///
/// Every entry is validated before anything is written, so a hostile name, a symlink or a
/// declared size past the limit leaves `dest` untouched. Failures found while decompressing
/// (CRC, sizes that lie) may leave earlier entries in `dest`; the caller discards the
/// staging directory on any error. Nothing is ever written outside `dest`.
///
/// This is blocking I/O and CPU work: call it from `spawn_blocking` in async code.
///
/// ```
/// use std::io::Write;
/// use physio::extract::{extract_zip, ExtractLimits};
///
/// let dir = tempfile::tempdir().unwrap();
/// let zip_path = dir.path().join("data.zip");
/// let mut w = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
/// w.start_file("rec/100.hea", zip::write::SimpleFileOptions::default()).unwrap();
/// w.write_all(b"100 2 360 650000\n").unwrap();
/// w.finish().unwrap();
///
/// let report = extract_zip(&zip_path, &dir.path().join("out"), &ExtractLimits::default()).unwrap();
/// assert_eq!(report.files[0].path, "rec/100.hea");
/// assert!(dir.path().join("out/rec/100.hea").is_file());
/// ```
pub fn extract_zip(
    archive: &Path,
    dest: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractReport, ExtractError> {
    let file = File::open(archive).map_err(|e| ExtractError::io(archive, e))?;
    let archive_size = file
        .metadata()
        .map_err(|e| ExtractError::io(archive, e))?
        .len();
    let limit = limits.limit_for(archive_size);
    let too_large = || ExtractError::TooLarge {
        limit,
        archive_size,
        ratio: limits.max_ratio,
    };
    let corrupt = |e: &dyn std::fmt::Display| ExtractError::Corrupt {
        archive: archive.to_path_buf(),
        message: e.to_string(),
    };

    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| corrupt(&e))?;
    let planned = plan(&mut zip, &corrupt)?;
    let declared_total = planned
        .iter()
        .fold(0u64, |sum, p| sum.saturating_add(p.declared));
    if declared_total > limit {
        return Err(too_large());
    }

    std::fs::create_dir_all(dest).map_err(|e| ExtractError::io(dest, e))?;
    let mut report = ExtractReport::default();
    let mut buf = vec![0u8; 256 * 1024];
    for p in planned {
        let target = dest.join(&p.rel);
        if p.is_dir {
            std::fs::create_dir_all(&target).map_err(|e| ExtractError::io(&target, e))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ExtractError::io(parent, e))?;
        }
        let mut entry = zip.by_index(p.index).map_err(|e| corrupt(&e))?;
        // `create_new`: a path that already exists (a file/dir clash the name check
        // cannot see) is an error, never an overwrite.
        let out = File::options()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| ExtractError::io(&target, e))?;
        let mut out = BufWriter::new(out);
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        loop {
            let n = match entry.read(&mut buf) {
                Ok(n) => n,
                // The zip crate stops an entry that grows past its declared size.
                Err(e) if e.to_string().contains("declared") => {
                    return Err(ExtractError::SizeMismatch {
                        name: p.name,
                        declared: p.declared,
                        actual: written,
                        larger: true,
                    });
                }
                Err(e) => return Err(corrupt(&format_args!("entry {:?}: {e}", p.name))),
            };
            if n == 0 {
                break;
            }
            // Count what was actually decompressed; declared sizes are only claims.
            written += n as u64;
            if written > p.declared {
                return Err(ExtractError::SizeMismatch {
                    name: p.name,
                    declared: p.declared,
                    actual: written,
                    larger: true,
                });
            }
            if report.total_bytes + written > limit {
                return Err(too_large());
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| ExtractError::io(&target, e))?;
        }
        if written != p.declared {
            return Err(ExtractError::SizeMismatch {
                name: p.name,
                declared: p.declared,
                actual: written,
                larger: false,
            });
        }
        out.flush().map_err(|e| ExtractError::io(&target, e))?;
        report.total_bytes += written;
        report.files.push(ExtractedFile {
            path: rel_string(&p.rel),
            size: written,
            sha256: hex::encode(hasher.finalize()),
        });
    }
    Ok(report)
}

/// The pre-pass: validates every entry's name, type and method without decompressing.
fn plan<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    corrupt: &dyn Fn(&dyn std::fmt::Display) -> ExtractError,
) -> Result<Vec<Planned>, ExtractError> {
    let mut seen = HashSet::new();
    let mut planned = Vec::with_capacity(zip.len());
    for index in 0..zip.len() {
        let entry = zip.by_index_raw(index).map_err(|e| corrupt(&e))?;
        let name = match entry.name() {
            Ok(n) => n.into_owned(),
            Err(_) => {
                return Err(ExtractError::UnsafeName {
                    name: String::from_utf8_lossy(entry.name_raw()).into_owned(),
                    reason: "name is not valid text".into(),
                });
            }
        };
        // A directory entry for the archive root itself (`./`) names nothing to create.
        if entry.is_dir()
            && matches!(name.trim_end_matches('/'), "." | "")
            && !name.starts_with('/')
        {
            continue;
        }
        let rel = enclosed_path(&name).map_err(|e| ExtractError::UnsafeName {
            name: name.clone(),
            reason: match e {
                crate::Error::UnsafePath { reason, .. } => reason.to_string(),
                other => other.to_string(),
            },
        })?;
        let is_symlink = entry
            .unix_mode()
            .is_some_and(|mode| mode & S_IFMT == S_IFLNK);
        if is_symlink || entry.is_symlink() {
            return Err(ExtractError::Symlink { name });
        }
        if entry.encrypted() {
            return Err(ExtractError::Unsupported {
                name,
                reason: "encrypted entry".into(),
            });
        }
        let is_dir = entry.is_dir();
        if !is_dir {
            use zip::CompressionMethod as M;
            let method = entry.compression();
            if !matches!(method, M::Stored | M::Deflated) {
                return Err(ExtractError::Unsupported {
                    name,
                    reason: format!("compression method {method:?} (only stored and deflate)"),
                });
            }
        }
        if !seen.insert(rel.clone()) && !is_dir {
            return Err(ExtractError::Duplicate { name });
        }
        planned.push(Planned {
            index,
            declared: if is_dir { 0 } else { entry.size() },
            name,
            rel,
            is_dir,
        });
    }
    Ok(planned)
}

/// `rel` as a `/`-separated string (it holds only normal components, see `enclosed_path`).
fn rel_string(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use zip::write::SimpleFileOptions;

    /// Builds a zip in memory from `(name, contents)` pairs with the given options.
    fn zip_bytes(entries: &[(&str, &[u8])], opts: SimpleFileOptions) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn deflated() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
    }

    fn stored() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)
    }

    /// Writes `bytes` as `root/archive.zip` and extracts into `root/stage/out`.
    fn extract_bytes(
        bytes: &[u8],
        limits: ExtractLimits,
    ) -> (tempfile::TempDir, Result<ExtractReport, ExtractError>) {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("archive.zip");
        std::fs::write(&path, bytes).unwrap();
        let result = extract_zip(&path, &root.path().join("stage/out"), &limits);
        (root, result)
    }

    /// Every file under `dir`, relative, sorted.
    fn tree(dir: &Path) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    /// Overwrites every occurrence (local header and central directory) of entry `name`'s
    /// uncompressed size with `size`, to build archives that lie about their sizes.
    fn patch_uncompressed_size(bytes: &mut [u8], name: &str, size: u32) {
        let name = name.as_bytes();
        let mut patched = 0;
        for sig in [[0x50, 0x4b, 0x03, 0x04], [0x50, 0x4b, 0x01, 0x02]] {
            let (size_at, name_at) = if sig[2] == 3 { (22, 30) } else { (24, 46) };
            let mut i = 0;
            while i + name_at + name.len() <= bytes.len() {
                if bytes[i..i + 4] == sig && &bytes[i + name_at..i + name_at + name.len()] == name {
                    bytes[i + size_at..i + size_at + 4].copy_from_slice(&size.to_le_bytes());
                    patched += 1;
                }
                i += 1;
            }
        }
        assert_eq!(patched, 2, "expected one local and one central header");
    }

    #[test]
    fn extracts_files_dirs_and_hashes() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.add_directory("records/", deflated()).unwrap();
        w.start_file("records/100.hea", deflated()).unwrap();
        w.write_all(b"100 2 360 650000\n").unwrap();
        w.start_file("RECORDS", stored()).unwrap();
        w.write_all(b"records/100\n").unwrap();
        let bytes = w.finish().unwrap().into_inner();
        let (root, result) = extract_bytes(&bytes, ExtractLimits::default());
        let report = result.unwrap();
        let out = root.path().join("stage/out");
        assert_eq!(tree(&out), vec!["RECORDS", "records/100.hea"]);
        assert_eq!(report.total_bytes, 17 + 12);
        assert_eq!(report.files[0].path, "records/100.hea");
        assert_eq!(
            report.files[0].sha256,
            hex::encode(Sha256::digest(b"100 2 360 650000\n"))
        );
        assert_eq!(
            std::fs::read(out.join("RECORDS")).unwrap(),
            b"records/100\n"
        );
    }

    #[test]
    fn root_directory_entry_is_ignored() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.add_directory("./", deflated()).unwrap();
        w.start_file("a.txt", deflated()).unwrap();
        w.write_all(b"a").unwrap();
        let bytes = w.finish().unwrap().into_inner();
        let (root, result) = extract_bytes(&bytes, ExtractLimits::default());
        assert_eq!(result.unwrap().files.len(), 1);
        assert_eq!(tree(&root.path().join("stage/out")), vec!["a.txt"]);
    }

    #[test]
    fn empty_file_entries_are_kept() {
        let bytes = zip_bytes(&[("empty.txt", b"")], deflated());
        let (root, result) = extract_bytes(&bytes, ExtractLimits::default());
        assert_eq!(result.unwrap().files[0].size, 0);
        assert!(root.path().join("stage/out/empty.txt").is_file());
    }

    macro_rules! refuses_name {
        ($($test:ident: $name:expr,)*) => {$(
            #[test]
            fn $test() {
                let bytes = zip_bytes(&[("ok.txt", b"fine"), ($name, b"owned")], deflated());
                let (root, result) = extract_bytes(&bytes, ExtractLimits::default());
                let err = result.unwrap_err();
                assert!(matches!(err, ExtractError::UnsafeName { .. }), "{err}");
                assert_eq!(err.exit_code(), EXIT_INTEGRITY);
                // Checked before anything is written: not even the harmless entry exists.
                assert!(!root.path().join("stage/out").exists());
                assert_eq!(tree(root.path()), vec!["archive.zip"]);
            }
        )*};
    }

    refuses_name! {
        refuses_zip_slip: "../evil.txt",
        refuses_deep_zip_slip: "a/b/../../../evil.txt",
        refuses_absolute: "/tmp/evil.txt",
        refuses_backslash_slip: "..\\evil.txt",
        refuses_drive_letter: "C:/evil.txt",
    }

    #[test]
    fn refuses_symlinks() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("ok.txt", deflated()).unwrap();
        w.write_all(b"fine").unwrap();
        w.add_symlink("link", "/etc/passwd", deflated()).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        let (root, result) = extract_bytes(&bytes, ExtractLimits::default());
        let err = result.unwrap_err();
        assert!(matches!(err, ExtractError::Symlink { .. }), "{err}");
        assert_eq!(err.exit_code(), EXIT_INTEGRITY);
        assert!(!root.path().join("stage/out").exists());
    }

    #[test]
    fn refuses_duplicate_names() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("a.txt", deflated()).unwrap();
        w.write_all(b"one").unwrap();
        w.start_file("./a.txt", deflated()).unwrap();
        w.write_all(b"two").unwrap();
        let bytes = w.finish().unwrap().into_inner();
        let (_root, result) = extract_bytes(&bytes, ExtractLimits::default());
        assert!(matches!(
            result.unwrap_err(),
            ExtractError::Duplicate { .. }
        ));
    }

    #[test]
    fn refuses_honest_zip_bomb_by_ratio() {
        // 4 MiB of zeros deflates to a few KiB: far past 200× the archive size.
        let zeros = vec![0u8; 4 << 20];
        let bytes = zip_bytes(&[("zeros.bin", &zeros)], deflated());
        assert!(bytes.len() * 200 < zeros.len());
        let (root, result) = extract_bytes(&bytes, ExtractLimits::default());
        let err = result.unwrap_err();
        assert!(matches!(err, ExtractError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("zip bomb"));
        assert_eq!(err.exit_code(), EXIT_INTEGRITY);
        assert!(!root.path().join("stage/out").exists());
    }

    #[test]
    fn max_bytes_caps_below_the_ratio() {
        let data = vec![7u8; 1000];
        let bytes = zip_bytes(&[("a.bin", &data)], stored());
        let limits = ExtractLimits {
            max_ratio: DEFAULT_MAX_RATIO,
            max_bytes: Some(999),
        };
        let (_root, result) = extract_bytes(&bytes, limits);
        assert!(matches!(
            result.unwrap_err(),
            ExtractError::TooLarge { limit: 999, .. }
        ));
        let limits = ExtractLimits {
            max_bytes: Some(1000),
            ..limits
        };
        let (_root, result) = extract_bytes(&bytes, limits);
        assert_eq!(result.unwrap().total_bytes, 1000);
    }

    #[test]
    fn refuses_bomb_that_lies_about_its_size() {
        // Declares 10 bytes, decompresses to 4 MiB: the declared-size check passes, so
        // only counting the decompressed bytes catches it.
        let zeros = vec![0u8; 4 << 20];
        let mut bytes = zip_bytes(&[("zeros.bin", &zeros)], deflated());
        patch_uncompressed_size(&mut bytes, "zeros.bin", 10);
        let (root, result) = extract_bytes(&bytes, ExtractLimits::default());
        let err = result.unwrap_err();
        assert!(
            matches!(err, ExtractError::SizeMismatch { larger: true, .. }),
            "{err}"
        );
        assert_eq!(err.exit_code(), EXIT_INTEGRITY);
        // At most the declared bytes (plus one buffer) reached the staging dir.
        let written = std::fs::metadata(root.path().join("stage/out/zeros.bin"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(written <= 256 * 1024, "wrote {written} bytes");
    }

    #[test]
    fn refuses_entry_shorter_than_declared() {
        let mut bytes = zip_bytes(&[("a.txt", b"hello")], stored());
        patch_uncompressed_size(&mut bytes, "a.txt", 50);
        let (_root, result) = extract_bytes(&bytes, ExtractLimits::default());
        let err = result.unwrap_err();
        assert_eq!(err.exit_code(), EXIT_INTEGRITY, "{err}");
    }

    #[test]
    fn refuses_truncated_archive() {
        let data: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let bytes = zip_bytes(&[("a.bin", &data), ("b.bin", &data)], deflated());
        let (root, result) = extract_bytes(&bytes[..bytes.len() / 2], ExtractLimits::default());
        let err = result.unwrap_err();
        assert!(matches!(err, ExtractError::Corrupt { .. }), "{err}");
        assert_eq!(err.exit_code(), EXIT_INTEGRITY);
        assert!(!root.path().join("stage/out").exists());
    }

    #[test]
    fn refuses_crc_mismatch() {
        let mut bytes = zip_bytes(&[("a.txt", b"hello world")], stored());
        // Flip one byte of the stored data (right after the 30-byte header + name).
        let at = 30 + "a.txt".len();
        assert_eq!(&bytes[at..at + 5], b"hello");
        bytes[at] = b'j';
        let (_root, result) = extract_bytes(&bytes, ExtractLimits::default());
        let err = result.unwrap_err();
        assert!(matches!(err, ExtractError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("a.txt"), "{err}");
    }

    #[test]
    fn refuses_garbage() {
        let (_root, result) = extract_bytes(b"this is not a zip file", ExtractLimits::default());
        assert!(matches!(result.unwrap_err(), ExtractError::Corrupt { .. }));
    }

    #[test]
    fn limit_saturates() {
        let l = ExtractLimits::default();
        assert_eq!(l.limit_for(u64::MAX), u64::MAX);
        assert_eq!(l.limit_for(10), 2000);
    }
}
