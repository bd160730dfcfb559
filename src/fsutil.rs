//! File system helpers every writer in physio uses, so that no final path ever holds a
//! half-written file and no path taken from a server, manifest or archive escapes the
//! directory it belongs in.
//!
//! The pattern (as in uv's `uv-fs`): write to a temporary file *in the destination
//! directory* (same file system, so the rename is atomic), `fsync` it, rename it over the
//! final name, then `fsync` the directory so the rename itself survives a crash.

use std::fs::File;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// Creates a temporary file next to `dest` (same directory, hidden `.physio-tmp-` name),
/// creating the parent directory if needed.
pub fn temp_in(dest: &Path) -> Result<NamedTempFile> {
    let dir = parent_dir(dest);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".physio-tmp-");
    // tempfile creates 0600 files; a dataset file must get the same mode as any other
    // new file (0666 minus the umask), or a shared copy becomes unreadable to the group.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))
}

/// Writes `bytes` to `dest` atomically: temp file, fsync, rename, fsync of the directory.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = temp_in(dest)?;
    tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
    persist(tmp, dest)
}

/// Flushes `tmp` to disk and renames it to `dest`, replacing any file there.
pub fn persist(tmp: NamedTempFile, dest: &Path) -> Result<()> {
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
    sync_dir(parent_dir(dest));
    Ok(())
}

/// Renames the finished file at `from` to `dest` after an `fsync`, then syncs the directory.
pub fn persist_path(from: &Path, dest: &Path) -> Result<()> {
    File::open(from)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(from, e))?;
    std::fs::rename(from, dest).map_err(|e| Error::io(dest, e))?;
    sync_dir(parent_dir(dest));
    Ok(())
}

/// Writes a file's dirty pages to disk from a background thread while the file is still
/// being written, so the `fsync` before its rename finds little left to do: a large
/// output otherwise pays for all of its write-back at the very end, on one thread.
///
/// [`BackgroundFlush::request`] asks for a flush (requests made while one runs are
/// merged); [`BackgroundFlush::finish`] waits for the thread and returns the first
/// error, which must be reported: once a background `fdatasync` has seen a write-back
/// error, a later `fsync` of the file may no longer return it.
pub struct BackgroundFlush {
    tx: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl BackgroundFlush {
    /// A flusher for `file` (a duplicate handle is moved to the thread). If the handle
    /// or thread cannot be had, requests do nothing and the final `fsync` does it all.
    pub fn new(file: &File) -> Self {
        let inert = BackgroundFlush {
            tx: None,
            thread: None,
        };
        let Ok(file) = file.try_clone() else {
            return inert;
        };
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("physio-flush".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    while rx.try_recv().is_ok() {}
                    file.sync_data()?;
                }
                Ok(())
            });
        match thread {
            Ok(t) => BackgroundFlush {
                tx: Some(tx),
                thread: Some(t),
            },
            Err(_) => inert,
        }
    }

    /// Asks for the pages written so far to be written back.
    pub fn request(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(());
        }
    }

    /// Waits for any running flush; the first write-back error, if there was one.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> std::io::Result<()> {
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(std::io::Error::other("the flush thread panicked")),
        }
    }
}

impl Drop for BackgroundFlush {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Drops the cached pages of the existing file at `path`, which is about to be replaced,
/// on a background thread (best effort; Linux only). Otherwise the rename that replaces
/// it frees them, on the critical path at the very end of a run.
pub fn uncache_in_background(path: &Path) {
    #[cfg(target_os = "linux")]
    {
        let Ok(file) = File::open(path) else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("physio-uncache".into())
            .spawn(move || {
                let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
            });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = path;
}

/// Best-effort `fsync` of a directory (makes a rename durable; not supported everywhere).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Checks that `rel`, a `/`-separated path from a manifest, listing or archive, stays
/// inside its root, and returns it as a relative [`PathBuf`].
///
/// Refused: empty paths, absolute paths, `..` components, backslashes, drive letters
/// (`C:`), NUL bytes and other control characters. `.` components and repeated slashes
/// are dropped.
///
/// ```
/// use physio::fsutil::enclosed_path;
/// assert_eq!(enclosed_path("records100/00000/00001_lr.hea").unwrap().to_str(),
///            Some("records100/00000/00001_lr.hea"));
/// assert!(enclosed_path("../etc/passwd").is_err());
/// assert!(enclosed_path("/etc/passwd").is_err());
/// ```
pub fn enclosed_path(rel: &str) -> Result<PathBuf> {
    let refuse = |reason| {
        Err(Error::UnsafePath {
            path: rel.to_string(),
            reason,
        })
    };
    if rel.is_empty() {
        return refuse("empty path");
    }
    if rel.chars().any(|c| c.is_control()) {
        return refuse("control character in path");
    }
    if rel.contains('\\') {
        return refuse("backslash in path");
    }
    if rel.starts_with('/') {
        return refuse("absolute path");
    }
    let mut out = PathBuf::new();
    for part in rel.split('/') {
        match part {
            "" | "." => continue,
            ".." => return refuse("parent directory component"),
            p if p.len() >= 2
                && p.as_bytes()[1] == b':'
                && p.as_bytes()[0].is_ascii_alphabetic() =>
            {
                return refuse("drive letter");
            }
            p => {
                // Belt and braces: the platform must see exactly one normal component.
                let mut comps = Path::new(p).components();
                match (comps.next(), comps.next()) {
                    (Some(Component::Normal(_)), None) => out.push(p),
                    _ => return refuse("not a plain file name component"),
                }
            }
        }
    }
    if out.as_os_str().is_empty() {
        return refuse("path names no file");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! refused {
        ($($name:ident: $path:expr,)*) => {$(
            #[test]
            fn $name() {
                assert!(enclosed_path($path).is_err(), "{:?} should be refused", $path);
            }
        )*};
    }

    refused! {
        refuses_empty: "",
        refuses_parent: "../x",
        refuses_inner_parent: "a/../../x",
        refuses_trailing_parent: "a/..",
        refuses_absolute: "/etc/passwd",
        refuses_backslash: "a\\..\\b",
        refuses_drive: "C:/x",
        refuses_drive_only: "c:",
        refuses_nul: "a\0b",
        refuses_newline: "a\nb",
        refuses_only_dots: "./.",
    }

    #[test]
    fn normalises_harmless_forms() {
        assert_eq!(
            enclosed_path("./a//b/./c.dat").unwrap(),
            PathBuf::from("a/b/c.dat")
        );
        assert_eq!(enclosed_path("a/b/").unwrap(), PathBuf::from("a/b"));
        assert_eq!(
            enclosed_path("..hidden").unwrap(),
            PathBuf::from("..hidden")
        );
    }

    #[test]
    fn background_flush_syncs_while_writing_and_reports_at_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = File::create(&path).unwrap();
        let flush = BackgroundFlush::new(&file);
        for _ in 0..4 {
            file.write_all(&[7u8; 1 << 16]).unwrap();
            flush.request();
        }
        flush.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 4 << 16]);
        // Dropped without `finish` (an aborted write): the thread is joined, no hang.
        drop(BackgroundFlush::new(&file));
        // Uncaching a file leaves its bytes alone.
        uncache_in_background(&path);
        assert_eq!(std::fs::read(&path).unwrap().len(), 4 << 16);
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/file.txt");
        write_atomic(&dest, b"one").unwrap();
        write_atomic(&dest, b"two").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("file.txt")]);
    }

    #[cfg(unix)]
    #[test]
    fn atomic_files_are_not_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("SHA256SUMS.txt");
        write_atomic(&dest, b"x").unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // Same mode as a file created the ordinary way (0666 minus this process's umask).
        assert_eq!(mode(&dest), mode(&plain));
    }
}
