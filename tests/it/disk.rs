//! A disk that fills up mid-fetch (issue 12), tested for real on a small tmpfs: the run
//! says the disk is full and names the files that did not complete, keeps every
//! verified file, leaves no unverified file at a final path, and a re-run after space
//! is freed completes. Needs `mount` (root, as in CI); skips with the reason otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::physio;
use crate::common::server::TestServer;

/// A tmpfs of `size` mounted at a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
        let dir = parent.path().join("fs");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs not permitted: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            dir,
            _parent: parent,
        })
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success(), "remount");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// Files at final paths under `dir` (physio's `.physio*` state and `.part` files aside).
fn final_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if !name.starts_with(".physio") && !name.ends_with(".part") {
            out.push(name);
        }
    }
    out.sort();
    out
}

#[test]
fn disk_full_mid_fetch_is_reported_and_a_rerun_completes_r12() {
    let fs = match Tmpfs::mount("1M") {
        Ok(fs) => fs,
        Err(why) => {
            println!("skipped disk_full_mid_fetch_is_reported_and_a_rerun_completes_r12: {why}");
            return;
        }
    };
    let server = TestServer::start();
    // Six files of 300 KB: about three fit in 1 MiB.
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("big{i}.dat"), crate::fetch::data(i, 300_000)))
        .collect();
    server.add_project("full", "1.0", &files, true);
    let fetch = || {
        physio()
            .args([
                "fetch",
                "full@1.0",
                "--jobs",
                "2",
                "--retries",
                "1",
                "--base-url",
            ])
            .arg(server.url())
            .arg("--out")
            .arg(&fs.dir)
            .output()
            .unwrap()
    };

    let out = fetch();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the disk is full"), "{stderr}");
    let dir = fs.dir.join("full/1.0");
    let present = final_files(&dir);
    let missing: Vec<&str> = files
        .iter()
        .map(|(p, _)| p.as_str())
        .filter(|p| !present.iter().any(|f| f == p))
        .collect();
    assert!(!missing.is_empty(), "everything fit: {present:?}");
    for name in &missing {
        assert!(
            stderr.contains(&format!("error: {name}: ")),
            "{name} not named: {stderr}"
        );
    }
    // No unverified file at a final path: each one there has exactly its bytes.
    for (name, want) in &files {
        if present.contains(name) {
            assert!(std::fs::read(dir.join(name)).unwrap() == *want, "{name}");
        }
    }
    // The state file's own failure does not hide the per-file failures (it may or may
    // not fail, depending on where the disk filled up), and never names a temp file as
    // the only error.
    assert!(
        !stderr.lines().all(|l| l.contains(".physio-tmp-")),
        "{stderr}"
    );

    fs.resize("8M");
    let out = fetch();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for (name, want) in &files {
        assert!(std::fs::read(dir.join(name)).unwrap() == *want, "{name}");
    }
    assert!(
        final_files(&dir)
            .iter()
            .all(|f| f == "SHA256SUMS.txt" || f.starts_with("big")),
        "{:?}",
        final_files(&dir)
    );
    assert!(
        std::fs::read_dir(&dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".part")),
        "no .part left after the successful run"
    );
}
