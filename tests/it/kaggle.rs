//! `physio fetch kaggle:...` end to end against the local Kaggle emulator
//! (`common::kaggle_server`): version resolution, the three ways to authenticate, the
//! redirect to a storage host that must never see Kaggle credentials, hash headers, 429
//! with `Retry-After`, resume, re-runs, `--include`, and hostile archives.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::Digest as _;

use crate::common::kaggle_server::{HashMode, KaggleServer, make_zip};
use crate::common::{conformance_dir, physio};

const TOKEN: &str = "KGAT_test_token_0123456789";

fn record_files() -> Vec<(String, Vec<u8>)> {
    let dir = conformance_dir().join("records");
    vec![
        ("RECORDS".to_string(), b"mitdb/100\n".to_vec()),
        (
            "mitdb/100.hea".to_string(),
            std::fs::read(dir.join("100.hea")).unwrap(),
        ),
        (
            "mitdb/100.dat".to_string(),
            std::fs::read(dir.join("100.dat")).unwrap(),
        ),
        (
            "notes/readme.txt".to_string(),
            b"re-packaged MIT-BIH\n".to_vec(),
        ),
    ]
}

fn record_zip() -> Vec<u8> {
    let files = record_files();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    make_zip(&refs)
}

/// A server with `o/ecg` versions 1 (one file) and 2 (the record files), bearer auth.
fn server() -> KaggleServer {
    let s = KaggleServer::start();
    s.add("o", "ecg", 1, make_zip(&[("old.txt", b"version one")]));
    s.add("o", "ecg", 2, record_zip());
    s.require_bearer(TOKEN);
    s
}

fn fetch(s: &KaggleServer, out: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    physio()
        .env("PHYSIO_KAGGLE_URL", s.api_base())
        .env("KAGGLE_API_TOKEN", TOKEN)
        // A config dir of our own so a developer's ~/.kaggle never leaks into tests.
        .env("KAGGLE_CONFIG_DIR", out.join("no-kaggle-config"))
        .args(["fetch", "--out"])
        .arg(out)
        .args(extra)
        .assert()
}

/// Every path under `dir`, relative and sorted (directories end in `/`), except
/// physio's lock and verified-state files (the contract's `.physio*` state entries).
/// Staging dirs, archives and `.part` files are listed, so tests see any leftovers.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(".physio-lock")
                || name.starts_with(".physio-state")
                || name == ".physio-complete"
            {
                continue;
            }
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            if p.is_dir() {
                out.push(format!("{rel}/"));
                walk(base, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn stdout_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn version_dir(out: &Path, v: u32) -> PathBuf {
    out.join(format!("kaggle/o/ecg/{v}"))
}

/// Storage requests that transfer content (not the one-byte `bytes=0-0` hash probes).
fn storage_downloads(s: &KaggleServer) -> Vec<crate::common::kaggle_server::Logged> {
    s.storage_requests()
        .into_iter()
        .filter(|r| r.header("range") != Some("bytes=0-0"))
        .collect()
}

/// The storage host never saw an Authorization header or the secret itself.
fn assert_storage_clean(s: &KaggleServer) {
    for req in s.storage_requests() {
        assert!(req.header("authorization").is_none(), "{req:?}");
        assert!(
            !req.target.contains(TOKEN),
            "secret in storage URL: {req:?}"
        );
        for (_, v) in &req.headers {
            assert!(!v.contains(TOKEN), "secret sent to storage: {req:?}");
        }
    }
}

#[test]
fn kaggle_fetches_current_version_archive() {
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("data");
    let a = fetch(&s, &out, &["kaggle:o/ecg", "--json", "-vv"]).success();
    let json: serde_json::Value = serde_json::from_str(stdout_of(&a).trim()).unwrap();
    assert_eq!(json["version"], 2);
    assert_eq!(json["mode"], "archive");
    assert_eq!(json["files"], 4);

    let vdir = version_dir(&out, 2);
    for (name, bytes) in record_files() {
        assert_eq!(std::fs::read(vdir.join(&name)).unwrap(), bytes, "{name}");
    }
    // SHA256SUMS.txt in PhysioNet's format, sorted by path.
    let mut expected: Vec<String> = record_files()
        .iter()
        .map(|(n, b)| format!("{}  {n}", sha_hex(b)))
        .collect();
    expected.sort_by(|a, b| a[66..].cmp(&b[66..]));
    let sums = std::fs::read_to_string(vdir.join("SHA256SUMS.txt")).unwrap();
    assert_eq!(sums.lines().collect::<Vec<_>>(), expected);

    // Nothing but the dataset: no archive, staging dir or .part left behind.
    assert_eq!(
        tree(&out),
        vec![
            "kaggle/",
            "kaggle/o/",
            "kaggle/o/ecg/",
            "kaggle/o/ecg/2/",
            "kaggle/o/ecg/2/RECORDS",
            "kaggle/o/ecg/2/SHA256SUMS.txt",
            "kaggle/o/ecg/2/mitdb/",
            "kaggle/o/ecg/2/mitdb/100.dat",
            "kaggle/o/ecg/2/mitdb/100.hea",
            "kaggle/o/ecg/2/notes/",
            "kaggle/o/ecg/2/notes/readme.txt",
        ]
    );

    // The API saw the bearer token on every request; storage saw no credentials.
    let log = s.log();
    let api: Vec<_> = log.iter().filter(|l| l.host == "api").collect();
    assert!(api.iter().any(|l| l.target.starts_with("/api/v1/hello")));
    assert!(
        api.iter()
            .any(|l| l.target == "/api/v1/datasets/view/o/ecg")
    );
    assert!(
        api.iter()
            .any(|l| l.target == "/api/v1/datasets/download/o/ecg?datasetVersionNumber=2")
    );
    for l in &api {
        assert_eq!(
            l.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    assert_eq!(storage_downloads(&s).len(), 1);
    assert_storage_clean(&s);
    // Never logged, even at -vv.
    assert!(!stderr_of(&a).contains(TOKEN) && !stdout_of(&a).contains(TOKEN));
}

#[test]
fn kaggle_pinned_version_lands_in_its_own_dir() {
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    fetch(&s, tmp.path(), &["kaggle:o/ecg@1"]).success();
    assert_eq!(
        std::fs::read(version_dir(tmp.path(), 1).join("old.txt")).unwrap(),
        b"version one"
    );
    assert!(!version_dir(tmp.path(), 2).exists());
    // A version Kaggle does not list is a clear error.
    let a = fetch(&s, tmp.path(), &["kaggle:o/ecg@9"]).code(1);
    assert!(stderr_of(&a).contains("not found"), "{}", stderr_of(&a));
}

#[test]
fn kaggle_basic_auth_from_kaggle_json() {
    let s = server();
    s.require_basic("alice", "legacy-key-42");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(
        cfg.join("kaggle.json"),
        r#"{"username":"alice","key":"legacy-key-42"}"#,
    )
    .unwrap();
    let a = physio()
        .env("PHYSIO_KAGGLE_URL", s.api_base())
        .env("KAGGLE_CONFIG_DIR", &cfg)
        .args(["fetch", "kaggle:o/ecg@1", "-vv", "--out"])
        .arg(tmp.path().join("out"))
        .assert()
        .success();
    assert!(
        version_dir(&tmp.path().join("out"), 1)
            .join("old.txt")
            .is_file()
    );
    for req in s.storage_requests() {
        assert!(req.header("authorization").is_none(), "{req:?}");
    }
    assert!(!stderr_of(&a).contains("legacy-key-42"));
}

#[test]
fn kaggle_basic_auth_from_env() {
    let s = server();
    s.require_basic("bob", "env-key-7");
    let tmp = tempfile::tempdir().unwrap();
    physio()
        .env("PHYSIO_KAGGLE_URL", s.api_base())
        .env("KAGGLE_CONFIG_DIR", tmp.path())
        .env("KAGGLE_USERNAME", "bob")
        .env("KAGGLE_KEY", "env-key-7")
        .args(["fetch", "kaggle:o/ecg@1", "--out"])
        .arg(tmp.path())
        .assert()
        .success();
    assert!(version_dir(tmp.path(), 1).join("old.txt").is_file());
}

#[test]
fn kaggle_invalid_credentials_exit_3_without_leaking() {
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    let a = physio()
        .env("PHYSIO_KAGGLE_URL", s.api_base())
        .env("KAGGLE_CONFIG_DIR", tmp.path())
        .env("KAGGLE_API_TOKEN", "KGAT_wrong_secret")
        .args(["fetch", "kaggle:o/ecg", "-vvv", "--out"])
        .arg(tmp.path())
        .assert()
        .code(3);
    let err = stderr_of(&a);
    assert!(
        err.contains("401") && err.contains("KAGGLE_API_TOKEN"),
        "{err}"
    );
    assert!(!err.contains("KGAT_wrong_secret"), "{err}");
    assert!(s.storage_requests().is_empty());
}

#[test]
fn kaggle_missing_credentials_exit_3_with_hint() {
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    let a = physio()
        .env("PHYSIO_KAGGLE_URL", s.api_base())
        .env("KAGGLE_CONFIG_DIR", tmp.path())
        .env("HOME", tmp.path())
        .args(["fetch", "kaggle:o/ecg", "--out"])
        .arg(tmp.path())
        .assert()
        .code(3);
    let err = stderr_of(&a);
    assert!(err.contains("no Kaggle credentials found"), "{err}");
}

#[test]
fn kaggle_unaccepted_rules_exit_3() {
    let s = server();
    s.with(|st| st.rules_accepted = false);
    let tmp = tempfile::tempdir().unwrap();
    let a = fetch(&s, tmp.path(), &["kaggle:o/ecg"]).code(3);
    let err = stderr_of(&a);
    assert!(err.contains("403") && err.contains("rules"), "{err}");
    assert!(
        err.contains("https://www.kaggle.com/datasets/o/ecg"),
        "{err}"
    );
    assert!(!err.contains(TOKEN));
    assert!(!version_dir(tmp.path(), 2).exists());
}

#[test]
fn kaggle_honours_retry_after_on_429() {
    let s = server();
    s.with(|st| st.throttle = 2);
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    fetch(&s, tmp.path(), &["kaggle:o/ecg"]).success();
    // Two 429s with `Retry-After: 1` cost at least two seconds.
    assert!(
        started.elapsed().as_millis() >= 2000,
        "{:?}",
        started.elapsed()
    );
    let downloads = s
        .log()
        .iter()
        .filter(|l| l.target.starts_with("/api/v1/datasets/download/"))
        .count();
    assert_eq!(downloads, 3);
    assert!(version_dir(tmp.path(), 2).join("mitdb/100.dat").is_file());
}

#[test]
fn kaggle_storage_429_is_retried_by_the_engine() {
    let s = server();
    s.with(|st| st.storage_throttle = 1);
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    fetch(&s, tmp.path(), &["kaggle:o/ecg"]).success();
    assert!(
        started.elapsed().as_millis() >= 1000,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(storage_downloads(&s).len(), 2);
    assert_storage_clean(&s);
    assert!(version_dir(tmp.path(), 2).join("mitdb/100.dat").is_file());
}

#[test]
fn kaggle_resumes_an_interrupted_download() {
    let s = server();
    s.with(|st| st.cut_archive_after = Some(300_000));
    let tmp = tempfile::tempdir().unwrap();
    fetch(&s, tmp.path(), &["kaggle:o/ecg"]).success();
    let storage = storage_downloads(&s);
    assert_eq!(storage.len(), 2, "{storage:?}");
    assert_eq!(storage[0].header("range"), None);
    // Resumed from the cut (an open range, or one to the last byte: the file is fetched
    // as a range that idle connections could split, issue 13).
    let resumed = storage[1].header("range").unwrap_or_default();
    assert!(resumed.starts_with("bytes=300000-"), "{resumed}");
    assert_storage_clean(&s);
    let dat = std::fs::read(version_dir(tmp.path(), 2).join("mitdb/100.dat")).unwrap();
    assert_eq!(dat, record_files()[2].1);
}

#[test]
fn kaggle_resumes_a_part_left_by_an_earlier_run() {
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    let ddir = tmp.path().join("kaggle/o/ecg");
    std::fs::create_dir_all(&ddir).unwrap();
    let zip = record_zip();
    std::fs::write(ddir.join(".physio-archive-2.zip.part"), &zip[..200_000]).unwrap();
    let a = fetch(&s, tmp.path(), &["kaggle:o/ecg", "--json"]).success();
    let json: serde_json::Value = serde_json::from_str(stdout_of(&a).trim()).unwrap();
    assert_eq!(json["bytes"].as_u64(), Some(zip.len() as u64 - 200_000));
    let storage = storage_downloads(&s);
    assert_eq!(storage.len(), 1);
    assert_eq!(storage[0].header("range"), Some("bytes=200000-"));
    assert_eq!(
        std::fs::read(version_dir(tmp.path(), 2).join("mitdb/100.dat")).unwrap(),
        record_files()[2].1
    );
    assert!(!ddir.join(".physio-archive-2.zip.part").exists());
}

#[test]
fn kaggle_storage_hash_mismatch_exit_4() {
    let s = server();
    s.with(|st| st.hash_mode = HashMode::WrongMd5);
    let tmp = tempfile::tempdir().unwrap();
    let a = fetch(&s, tmp.path(), &["kaggle:o/ecg"]).code(4);
    let err = stderr_of(&a);
    assert!(err.contains("integrity check failed: MD5"), "{err}");
    // Nothing landed, and the bad download was discarded.
    assert_eq!(
        tree(tmp.path()),
        vec!["kaggle/", "kaggle/o/", "kaggle/o/ecg/"]
    );
}

#[test]
fn kaggle_parallel_ranges_are_verified_too() {
    // Force the engine's parallel byte-range path on the ~1 MB archive.
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    fetch(&s, tmp.path(), &["kaggle:o/ecg", "--split-min", "65536"]).success();
    assert!(storage_downloads(&s).len() > 1);
    assert_storage_clean(&s);
    assert_eq!(
        std::fs::read(version_dir(tmp.path(), 2).join("mitdb/100.dat")).unwrap(),
        record_files()[2].1
    );
    let s = server();
    s.with(|st| st.hash_mode = HashMode::WrongMd5);
    let tmp = tempfile::tempdir().unwrap();
    let a = fetch(&s, tmp.path(), &["kaggle:o/ecg", "--split-min", "65536"]).code(4);
    assert!(stderr_of(&a).contains("MD5"), "{}", stderr_of(&a));
    assert!(!version_dir(tmp.path(), 2).exists());
}

#[test]
fn kaggle_crc32c_only_objects_are_checked() {
    let s = server();
    s.with(|st| st.hash_mode = HashMode::WrongCrc32c);
    let tmp = tempfile::tempdir().unwrap();
    // Single files: the bad bytes never reach their final name.
    let a = fetch(&s, tmp.path(), &["kaggle:o/ecg", "--include", "RECORDS"]).code(4);
    assert!(
        stderr_of(&a).contains("crc32c mismatch"),
        "{}",
        stderr_of(&a)
    );
    assert!(tree(&version_dir(tmp.path(), 2)).is_empty());
    let a = fetch(&s, tmp.path(), &["kaggle:o/ecg"]).code(4);
    assert!(
        stderr_of(&a).contains("crc32c mismatch"),
        "{}",
        stderr_of(&a)
    );
}

#[test]
fn kaggle_content_md5_crc32c_and_no_hash_are_accepted() {
    for mode in [HashMode::ContentMd5, HashMode::Crc32cOnly, HashMode::None] {
        let s = server();
        s.with(|st| st.hash_mode = mode);
        let tmp = tempfile::tempdir().unwrap();
        fetch(&s, tmp.path(), &["kaggle:o/ecg"]).success();
        assert!(version_dir(tmp.path(), 2).join("RECORDS").is_file());
    }
}

#[test]
fn kaggle_rerun_is_verified_and_repairs() {
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    fetch(&s, tmp.path(), &["kaggle:o/ecg"]).success();
    assert_eq!(storage_downloads(&s).len(), 1);

    // Second run: re-hashed against SHA256SUMS.txt, nothing downloaded.
    let a = fetch(&s, tmp.path(), &["kaggle:o/ecg", "--json"]).success();
    let json: serde_json::Value = serde_json::from_str(stdout_of(&a).trim()).unwrap();
    assert_eq!(json["mode"], "up_to_date");
    assert_eq!(
        (json["skipped"].as_u64(), json["bytes"].as_u64()),
        (Some(4), Some(0))
    );
    assert_eq!(storage_downloads(&s).len(), 1);

    // A damaged file is noticed and the version fetched again.
    let hea = version_dir(tmp.path(), 2).join("mitdb/100.hea");
    std::fs::write(&hea, b"damaged").unwrap();
    let a = fetch(&s, tmp.path(), &["kaggle:o/ecg", "--json"]).success();
    let json: serde_json::Value = serde_json::from_str(stdout_of(&a).trim()).unwrap();
    assert_eq!(json["mode"], "archive");
    assert_eq!(std::fs::read(&hea).unwrap(), record_files()[1].1);
    assert_eq!(storage_downloads(&s).len(), 2);
    // The previous copy was replaced, not left beside it; no staging or archive remains.
    let left: Vec<String> = tree(&tmp.path().join("kaggle/o/ecg"))
        .into_iter()
        .filter(|p| p == "2/" || !p.starts_with("2/"))
        .collect();
    assert_eq!(left, vec!["2/"]);
}

#[test]
fn kaggle_include_fetches_single_files() {
    let s = server();
    s.with(|st| st.page_size = 1); // exercise nextPageToken paging
    let tmp = tempfile::tempdir().unwrap();
    let a = fetch(
        &s,
        tmp.path(),
        &[
            "kaggle:o/ecg",
            "--include",
            "mitdb/*.hea",
            "--include",
            "RECORDS",
            "--json",
        ],
    )
    .success();
    let json: serde_json::Value = serde_json::from_str(stdout_of(&a).trim()).unwrap();
    assert_eq!(json["mode"], "files");
    assert_eq!(json["files"], 2);
    assert_eq!(
        (json["fetched"].as_u64(), json["exit_code"].as_u64()),
        (Some(2), Some(0))
    );
    let vdir = version_dir(tmp.path(), 2);
    assert_eq!(
        tree(&vdir),
        vec!["RECORDS", "SHA256SUMS.txt", "mitdb/", "mitdb/100.hea"]
    );
    let sums = std::fs::read_to_string(vdir.join("SHA256SUMS.txt")).unwrap();
    assert!(sums.contains(&format!("{}  mitdb/100.hea", sha_hex(&record_files()[1].1))));
    // One storage request per file, never the whole archive, never with credentials.
    let storage = storage_downloads(&s);
    assert_eq!(storage.len(), 2);
    assert!(storage.iter().all(|r| r.target.contains("/files/")));
    assert_storage_clean(&s);

    // Adding a file later keeps the earlier ones and their sums.
    fetch(&s, tmp.path(), &["kaggle:o/ecg", "--include", "notes/**"]).success();
    let sums = std::fs::read_to_string(vdir.join("SHA256SUMS.txt")).unwrap();
    assert_eq!(sums.lines().count(), 3, "{sums}");
    assert_eq!(storage_downloads(&s).len(), 3);
}

#[test]
fn kaggle_include_unpacks_auto_compressed_files() {
    let s = server();
    s.with(|st| st.zip_single_files = true);
    let tmp = tempfile::tempdir().unwrap();
    fetch(
        &s,
        tmp.path(),
        &["kaggle:o/ecg", "--include", "mitdb/100.dat"],
    )
    .success();
    let vdir = version_dir(tmp.path(), 2);
    // The file as requested, not `100.dat.zip`, and nothing else beside it.
    assert_eq!(
        std::fs::read(vdir.join("mitdb/100.dat")).unwrap(),
        record_files()[2].1
    );
    assert_eq!(
        tree(&vdir),
        vec!["SHA256SUMS.txt", "mitdb/", "mitdb/100.dat"]
    );
    assert!(storage_downloads(&s)[0].target.contains("100.dat.zip"));
}

#[test]
fn kaggle_whole_fetch_after_include_fetches_the_rest() {
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    fetch(&s, tmp.path(), &["kaggle:o/ecg", "--include", "RECORDS"]).success();
    // A partial copy is intact but not complete: the whole fetch must not skip it.
    let a = fetch(&s, tmp.path(), &["kaggle:o/ecg", "--json"]).success();
    let json: serde_json::Value = serde_json::from_str(stdout_of(&a).trim()).unwrap();
    assert_eq!(json["mode"], "archive");
    assert_eq!(json["files"], 4);
    assert!(version_dir(tmp.path(), 2).join("mitdb/100.dat").is_file());
}

#[test]
fn kaggle_dry_run_downloads_nothing() {
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    let a = fetch(&s, tmp.path(), &["kaggle:o/ecg", "--dry-run", "--json"]).success();
    let json: serde_json::Value = serde_json::from_str(stdout_of(&a).trim()).unwrap();
    assert_eq!(json["mode"], "dry_run");
    assert_eq!(json["files"], 4);
    assert!(s.storage_requests().is_empty());
    assert!(tree(tmp.path()).is_empty());
}

#[test]
fn kaggle_ls_lists_files_and_sizes() {
    let s = server();
    s.with(|st| st.page_size = 3);
    let tmp = tempfile::tempdir().unwrap();
    let a = physio()
        .env("PHYSIO_KAGGLE_URL", s.api_base())
        .env("KAGGLE_API_TOKEN", TOKEN)
        .env("KAGGLE_CONFIG_DIR", tmp.path())
        .args(["ls", "kaggle:o/ecg", "--exclude", "notes/**", "--json"])
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_str(stdout_of(&a).trim()).unwrap();
    assert_eq!(json["version"], 2);
    let paths: Vec<&str> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["RECORDS", "mitdb/100.hea", "mitdb/100.dat"]);
    let expected: u64 = record_files()[..3]
        .iter()
        .map(|(_, b)| b.len() as u64)
        .sum();
    assert_eq!(json["total_bytes"], expected);
    assert!(s.storage_requests().is_empty());
}

#[test]
fn kaggle_copy_passes_physio_verify() {
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    fetch(&s, tmp.path(), &["kaggle:o/ecg"]).success();
    let vdir = version_dir(tmp.path(), 2);
    physio().arg("verify").arg(&vdir).assert().success();
    // The output root finds Kaggle copies too (kaggle/<owner>/<dataset>/<version>).
    let a = physio()
        .args(["verify", "--json"])
        .arg(tmp.path())
        .assert()
        .success();
    assert!(stdout_of(&a).contains("\"ok\":4"), "{}", stdout_of(&a));
    std::fs::write(vdir.join("RECORDS"), b"tampered\n").unwrap();
    let a = physio().arg("verify").arg(&vdir).assert().code(4);
    assert!(stderr_of(&a).contains("RECORDS"), "{}", stderr_of(&a));
}

#[test]
fn kaggle_bad_spec_is_usage_error() {
    physio()
        .args(["fetch", "kaggle:only-owner"])
        .assert()
        .code(2);
    let a = physio()
        .args(["fetch", "kaggle:o/d", "--shard", "0/2"])
        .assert()
        .code(2);
    assert!(stderr_of(&a).contains("--shard is not supported for Kaggle"));
}

/// Serves `zip` as `o/evil` and checks the fetch is refused with exit 4, the message
/// contains `needle`, and nothing exists outside `out` or inside the version dir.
fn assert_hostile(zip: Vec<u8>, needle: &str) {
    let s = KaggleServer::start();
    s.add("o", "evil", 1, zip);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("a/b/c/out");
    std::fs::create_dir_all(&out).unwrap();
    let a = physio()
        .env("PHYSIO_KAGGLE_URL", s.api_base())
        .env("KAGGLE_CONFIG_DIR", tmp.path().join("none"))
        .args(["fetch", "kaggle:o/evil", "--out"])
        .arg(&out)
        .assert()
        .code(4);
    let err = stderr_of(&a);
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    // Nothing outside the output dir, nothing left inside it but the empty dataset dir.
    assert_eq!(
        tree(tmp.path()),
        vec![
            "a/",
            "a/b/",
            "a/b/c/",
            "a/b/c/out/",
            "a/b/c/out/kaggle/",
            "a/b/c/out/kaggle/o/",
            "a/b/c/out/kaggle/o/evil/",
        ]
    );
}

#[test]
fn kaggle_refuses_zip_slip() {
    assert_hostile(
        make_zip(&[("ok.txt", b"fine"), ("../../../../../evil.txt", b"owned")]),
        "parent directory",
    );
}

#[test]
fn kaggle_refuses_absolute_paths() {
    let target = std::env::temp_dir().join("physio-kaggle-absolute-test.txt");
    assert_hostile(
        make_zip(&[(target.to_str().unwrap(), b"owned")]),
        "absolute path",
    );
    assert!(!target.exists());
}

#[test]
fn kaggle_refuses_zip_bomb() {
    let zeros = vec![0u8; 8 << 20];
    assert_hostile(make_zip(&[("bomb.bin", &zeros)]), "zip bomb");
}

#[test]
fn kaggle_refuses_truncated_archive() {
    let zip = record_zip();
    assert_hostile(zip[..zip.len() / 2].to_vec(), "corrupt archive");
}

#[test]
fn kaggle_refuses_symlinks() {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.add_symlink("link", "/etc", zip::write::SimpleFileOptions::default())
        .unwrap();
    assert_hostile(w.finish().unwrap().into_inner(), "symbolic link");
}

#[test]
fn kaggle_max_extract_caps_expansion() {
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    let a = fetch(&s, tmp.path(), &["kaggle:o/ecg", "--max-extract", "1K"]).code(4);
    assert!(stderr_of(&a).contains("1024 bytes"), "{}", stderr_of(&a));
    assert!(!version_dir(tmp.path(), 2).exists());
}

#[test]
fn kaggle_tree_converts_to_parquet_unchanged() {
    // Issue 6 item 4: a WFDB tree from a Kaggle archive converts as a PhysioNet one does
    // (its RECORDS file names `mitdb/100`), with values equal to the digital samples
    // scaled by the header's gain and baseline.
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("data");
    fetch(&s, &out, &["kaggle:o/ecg"]).success();
    let parquet = tmp.path().join("ecg.parquet");
    let a = physio()
        .arg("convert")
        .arg(version_dir(&out, 2))
        .args(["--to", "parquet", "--json", "--out"])
        .arg(&parquet)
        .assert()
        .success();
    let summary: serde_json::Value = serde_json::from_str(stdout_of(&a).trim()).unwrap();
    assert_eq!(summary["records_written"], 1);

    use arrow_array::{Array, Float32Array, ListArray, StringArray};
    let file = std::fs::File::open(&parquet).unwrap();
    let mut reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batch = reader.next().unwrap().unwrap();
    let name = batch.column_by_name("record").unwrap();
    let name = name.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(name.value(0), "mitdb/100");
    let signal = batch.column_by_name("signal").unwrap();
    let signal = signal
        .as_any()
        .downcast_ref::<ListArray>()
        .unwrap()
        .value(0);
    let channels = signal.as_any().downcast_ref::<ListArray>().unwrap();
    let mlii = channels.value(0);
    let mlii = mlii.as_any().downcast_ref::<Float32Array>().unwrap();
    assert_eq!(mlii.len(), 650_000);
    // 100.dat starts with MLII = 995 (gain 200, baseline 1024): (995 - 1024) / 200.
    assert_eq!(mlii.value(0), ((995.0 - 1024.0) / 200.0) as f32);
}

/// Issue 13: every Kaggle API call goes through the engine's retry policy, the
/// credential check included: one 429 (with `Retry-After`) on each is waited out.
#[test]
fn kaggle_429_on_every_api_call_is_retried() {
    let s = server();
    s.with(|st| {
        for e in ["hello", "view", "list", "download"] {
            st.api_throttle.insert(e.to_string(), 1);
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    fetch(&s, tmp.path(), &["kaggle:o/ecg", "--include", "mitdb/*"]).success();
    assert!(
        started.elapsed().as_millis() >= 4000,
        "four Retry-After: 1 waited out: {:?}",
        started.elapsed()
    );
    let log = s.with(|st| st.log.clone());
    let hello = log
        .iter()
        .filter(|l| l.target.starts_with("/api/v1/hello"))
        .count();
    assert_eq!(hello, 2, "the credential check was retried once");
    assert!(s.with(|st| st.api_throttle.values().all(|n| *n == 0)));
    let vdir = version_dir(tmp.path(), 2);
    for (name, bytes) in record_files()
        .iter()
        .filter(|(n, _)| n.starts_with("mitdb/"))
    {
        assert_eq!(&std::fs::read(vdir.join(name)).unwrap(), bytes, "{name}");
    }
}

/// Issue 13: the credential check is advisory: a 404 (or other failure) of the check
/// itself does not stop a fetch whose real requests succeed; a 401 still exits 3.
#[test]
fn kaggle_credential_check_failure_is_advisory_but_401_is_not() {
    let s = server();
    s.with(|st| st.hello_status = Some(404));
    let tmp = tempfile::tempdir().unwrap();
    fetch(&s, tmp.path(), &["kaggle:o/ecg"]).success();
    assert!(version_dir(tmp.path(), 2).join("mitdb/100.dat").is_file());
    s.with(|st| st.hello_status = Some(401));
    let tmp = tempfile::tempdir().unwrap();
    fetch(&s, tmp.path(), &["kaggle:o/ecg"]).code(3);
}

/// Issue 12: Kaggle resolution yields a typed plan before any byte is downloaded: the
/// whole archive as one transfer to a staging file in the dataset directory or, with
/// `--include`, one transfer per selected file landing inside the version directory,
/// carrying the SHA-256 already recorded there; planning makes no storage request.
#[test]
fn kaggle_plan_is_typed_and_downloads_nothing() {
    use physio::auth::kaggle::KaggleCredentials;
    use physio::source::kaggle::{self, KaggleApi, KaggleFetchOptions, KaggleRef, KaggleStep};
    let s = server();
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let opts = |include: &[&str]| KaggleFetchOptions {
        dataset: KaggleRef::parse("kaggle:o/ecg").unwrap(),
        out: tmp.path().to_path_buf(),
        api_base: s.api_base(),
        credentials: Some(KaggleCredentials::bearer(TOKEN, "test")),
        include: include.iter().map(|g| g.to_string()).collect(),
        exclude: Vec::new(),
        limits: Default::default(),
        dry_run: false,
        downloader: Default::default(),
    };
    let api = |o: &KaggleFetchOptions| KaggleApi::new(&o.api_base, o.credentials.clone()).unwrap();

    let o = opts(&[]);
    let plan = rt.block_on(kaggle::plan(&o, &api(&o))).unwrap();
    assert_eq!(plan.version, 2);
    let KaggleStep::Archive(t) = &plan.step else {
        panic!("expected the archive: {:?}", plan.step)
    };
    assert!(t.dest.starts_with(tmp.path().join("kaggle/o/ecg")), "{t:?}");
    assert!(
        !t.dest.starts_with(&plan.dir),
        "the archive is staged beside the version"
    );
    drop(plan);

    let vdir = version_dir(tmp.path(), 2);
    std::fs::create_dir_all(&vdir).unwrap();
    std::fs::write(
        vdir.join("SHA256SUMS.txt"),
        format!("{}  RECORDS\n", "ab".repeat(32)),
    )
    .unwrap();
    let o = opts(&["RECORDS", "mitdb/*.hea"]);
    let plan = rt.block_on(kaggle::plan(&o, &api(&o))).unwrap();
    let KaggleStep::Files(ts) = &plan.step else {
        panic!("expected single files: {:?}", plan.step)
    };
    let mut names: Vec<_> = ts.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["RECORDS", "mitdb/100.hea"]);
    for t in ts {
        assert!(t.dest.starts_with(&vdir), "{t:?}");
        assert_eq!(
            t.known_sha256.is_some(),
            t.name == "RECORDS",
            "the recorded digest travels with the transfer"
        );
    }
    assert_eq!(plan.transfers().len(), 2);
    assert!(
        s.log().iter().all(|l| l.host == "api"),
        "planning asked storage for nothing"
    );
}
