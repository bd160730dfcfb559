//! Integration tests of `physio fetch`, `verify` and `ls` (issue 5): the offline
//! `fixtures/mirror` end to end, and a fault-injecting 127.0.0.1 server for retries,
//! resume, corruption, version discovery and credentials.

use std::path::Path;
use std::time::Duration;

use crate::common::server::{Fault, TestServer};
use crate::common::{physio, repo_root};

fn mirror_url() -> String {
    format!("file://{}", repo_root().join("fixtures/mirror").display())
}

/// `physio fetch SPEC --base-url URL --out OUT`; a test adds its own flags with `.args`.
fn fetch(spec: &str, base_url: &str, out: impl AsRef<std::ffi::OsStr>) -> assert_cmd::Command {
    let mut cmd = physio();
    cmd.args(["fetch", spec, "--base-url", base_url, "--out"])
        .arg(out);
    cmd
}

/// Every regular file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(d: &Path, pre: &str, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let rel = if pre.is_empty() {
                n.clone()
            } else {
                format!("{pre}/{n}")
            };
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &rel, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

/// Deterministic pseudo-random bytes.
pub(crate) fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn project(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                format!("records/{:02}/r{i}.dat", i % 3),
                data(i as u64, 20_000 + i * 997),
            )
        })
        .chain([("RECORDS".to_string(), b"records/00/r0\n".to_vec())])
        .collect()
}

fn assert_identical(out: &Path, files: &[(String, Vec<u8>)]) {
    for (p, b) in files {
        let got = std::fs::read(out.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert!(got == *b, "{p}: bytes differ");
    }
}

/// Data-file GETs (anything but listings, SHA256SUMS.txt and /content/) in the log.
fn body_requests(s: &TestServer) -> Vec<String> {
    s.log()
        .into_iter()
        .filter(|l| {
            l.path.starts_with("/files/")
                && !l.path.ends_with('/')
                && !l.path.ends_with("SHA256SUMS.txt")
        })
        .map(|l| l.path)
        .collect()
}

#[test]
fn mirror_fetch_verify_refetch() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("data");
    fetch("physio-demo", &mirror_url(), &out).assert().success();
    let vdir = out.join("physio-demo/1.0.0");
    let src = repo_root().join("fixtures/mirror/files/physio-demo/1.0.0");
    let expected = tree(&src);
    let got: Vec<String> = tree(&vdir)
        .into_iter()
        .filter(|p| !p.rsplit('/').next().unwrap().starts_with(".physio"))
        .collect();
    assert_eq!(
        got, expected,
        "exactly the mirror's files, nothing else but .physio* state"
    );
    for p in &expected {
        assert_eq!(
            std::fs::read(vdir.join(p)).unwrap(),
            std::fs::read(src.join(p)).unwrap(),
            "{p}"
        );
    }
    physio().arg("verify").arg(&vdir).assert().success();
    // The output root works too: every <slug>/<version> below it is verified.
    let o = physio()
        .args(["verify", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], expected.len() - 1);
    physio()
        .arg("verify")
        .arg(tmp.path().join("nothing"))
        .assert()
        .code(1);

    // A re-run verifies from the state cache and transfers nothing.
    let o = fetch("physio-demo", &mirror_url(), &out)
        .args(["--json"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["fetched"], 0);
    assert_eq!(
        v["skipped"],
        expected.len() - 1,
        "every listed file (SHA256SUMS.txt aside)"
    );
    assert_eq!(v["bytes"], 0);
    let o = fetch("physio-demo", &mirror_url(), &out)
        .args(["--dry-run", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["total_files"].as_u64(), v["already_verified"].as_u64()),
        (Some(0), Some(25))
    );

    // Bytes changed on disk: verify names the file and exits 4; fetch repairs it.
    std::fs::write(vdir.join("generated/gen03.dat"), b"tampered").unwrap();
    physio()
        .arg("verify")
        .arg(&vdir)
        .assert()
        .code(4)
        .stderr(predicates::str::contains("generated/gen03.dat"));
    fetch("physio-demo", &mirror_url(), &out).assert().success();
    assert_eq!(
        std::fs::read(vdir.join("generated/gen03.dat")).unwrap(),
        std::fs::read(src.join("generated/gen03.dat")).unwrap()
    );
    physio().arg("verify").arg(&vdir).assert().success();
}

#[test]
fn mirror_dry_run_and_ls_list_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let o = fetch("physio-demo@1.0.0", &mirror_url(), tmp.path())
        .args(["--dry-run", "--json", "--include", "*.hea"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 12, "{v}");
    assert!(
        files
            .iter()
            .all(|f| f["path"].as_str().unwrap().ends_with(".hea"))
    );
    let hea100 =
        std::fs::metadata(repo_root().join("fixtures/mirror/files/physio-demo/1.0.0/100.hea"))
            .unwrap()
            .len();
    assert!(
        files
            .iter()
            .any(|f| f["path"] == "100.hea" && f["size"] == hea100)
    );
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
        "dry run writes nothing"
    );

    let o = physio()
        .args(["ls", "physio-demo", "--json", "--base-url", &mirror_url()])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["total_files"], 25);
    assert_eq!(v["version"], "1.0.0");
}

#[test]
fn faults_heal_to_identical_bytes_and_rerun_transfers_nothing() {
    let s = TestServer::start();
    let files = project(12);
    s.add_project("demo", "1.0.0", &files, true);
    s.set_latest("demo", "1.0.0");
    s.set_latency(Duration::from_millis(5));
    let p = |i: usize| format!("/files/demo/1.0.0/{}", files[i].0);
    s.fault(&p(0), &[Fault::Status(503), Fault::Status(502)]);
    s.fault(&p(1), &[Fault::TooMany(1)]);
    s.fault(&p(2), &[Fault::ResetAfter(5000), Fault::ResetAfter(12000)]);
    s.fault("/files/demo/1.0.0/SHA256SUMS.txt", &[Fault::Status(500)]);
    let tmp = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    fetch("demo", &s.url(), tmp.path())
        .args(["--jobs", "4"])
        .assert()
        .success();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    let vdir = tmp.path().join("demo/1.0.0");
    assert_identical(&vdir, &files);
    let log = s.log();
    let ranges: Vec<_> = log
        .iter()
        .filter(|l| l.path == p(2))
        .map(|l| l.range.clone())
        .collect();
    assert_eq!(ranges.len(), 3, "{ranges:?}");
    assert_eq!(
        ranges[1].as_deref(),
        Some("bytes=5000-"),
        "resumed after the reset"
    );
    // The injected reset answers 200 (whole body) even to a Range request, so the
    // client must start over from zero rather than append: 12000 fresh bytes.
    assert_eq!(ranges[2].as_deref(), Some("bytes=12000-"));
    assert!(log.iter().all(|l| l.auth.is_none()));
    assert!(!tree(&vdir).iter().any(|p| p.ends_with(".part")));

    s.clear_log();
    fetch("demo", &s.url(), tmp.path()).assert().success();
    assert_eq!(
        body_requests(&s),
        Vec::<String>::new(),
        "a re-run transfers no file bodies"
    );
}

#[test]
fn stalled_connection_is_dropped_and_resumed() {
    let s = TestServer::start();
    let files = project(2);
    s.add_project("demo", "1.0.0", &files, true);
    let p = format!("/files/demo/1.0.0/{}", files[0].0);
    s.fault(&p, &[Fault::StallAfter(4000)]);
    let tmp = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    fetch("demo@1.0.0", &s.url(), tmp.path())
        .args(["--stall-timeout", "0.5"])
        .assert()
        .success();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the stall was not cut short"
    );
    assert_identical(&tmp.path().join("demo/1.0.0"), &files);
    let ranges: Vec<_> = s
        .log()
        .into_iter()
        .filter(|l| l.path == p)
        .map(|l| l.range)
        .collect();
    assert_eq!(ranges, [None, Some("bytes=4000-".to_string())]);
}

#[test]
fn large_file_is_fetched_as_parallel_ranges() {
    let s = TestServer::start();
    let big = data(11, 3_000_000);
    let files = vec![
        ("big.dat".to_string(), big.clone()),
        ("small.dat".to_string(), data(12, 5000)),
    ];
    s.add_project("demo", "1.0.0", &files, true);
    let p = "/files/demo/1.0.0/big.dat";
    // The second request (the first range) is cut off and must be retried.
    s.fault(p, &[Fault::Pass, Fault::ResetAfter(1000)]);
    let tmp = tempfile::tempdir().unwrap();
    fetch("demo@1.0.0", &s.url(), tmp.path())
        .args(["--jobs", "4", "--split-min", "1000000"])
        .assert()
        .success();
    assert_identical(&tmp.path().join("demo/1.0.0"), &files);
    let ranges: Vec<String> = s
        .log()
        .into_iter()
        .filter(|l| l.path == p)
        .filter_map(|l| l.range)
        .collect();
    // The first, plain GET goes on as the first range; the other three (one of them
    // retried after the reset) are closed ranges.
    let closed: Vec<_> = ranges.iter().filter(|r| !r.ends_with('-')).collect();
    assert!(closed.len() >= 3, "3 more ranges (+1 retried): {ranges:?}");
    assert!(s.log().iter().any(|l| l.path == p && l.range.is_none()));
    assert!(closed.iter().any(|r| r.ends_with("-2999999")));
    assert!(
        !tree(&tmp.path().join("demo/1.0.0"))
            .iter()
            .any(|p| p.ends_with(".part"))
    );

    // Split bytes that do not match the manifest: exit 4, nothing left behind.
    s.corrupt(p, data(13, 3_000_000));
    let tmp = tempfile::tempdir().unwrap();
    fetch("demo@1.0.0", &s.url(), tmp.path())
        .args(["--jobs", "4", "--split-min", "1000000"])
        .assert()
        .code(4)
        .stderr(predicates::str::contains("big.dat"));
    let left = tree(&tmp.path().join("demo/1.0.0"));
    assert!(!left.iter().any(|p| p.starts_with("big.dat")), "{left:?}");
}

#[test]
fn corrupt_file_exits_4_named_and_not_at_final_path() {
    let s = TestServer::start();
    let files = project(6);
    s.add_project("demo", "1.0.0", &files, true);
    let bad = format!("/files/demo/1.0.0/{}", files[3].0);
    s.corrupt(&bad, data(99, files[3].1.len()));
    let tmp = tempfile::tempdir().unwrap();
    let o = fetch("demo@1.0.0", &s.url(), tmp.path())
        .args(["--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(&files[3].0), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["failed"], 1);
    assert_eq!(v["errors"][0]["path"], files[3].0.as_str());
    let vdir = tmp.path().join("demo/1.0.0");
    assert!(!vdir.join(&files[3].0).exists());
    assert!(!tree(&vdir).iter().any(|p| p.ends_with(".part")));
    let rest: Vec<_> = files
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, f)| f.clone())
        .collect();
    assert_identical(&vdir, &rest);
}

#[test]
fn latest_version_from_content_redirect_then_listing() {
    let s = TestServer::start();
    let one = vec![("a.dat".to_string(), data(1, 100))];
    let two = vec![("b.dat".to_string(), data(2, 100))];
    s.add_project("demo", "1.0.0", &one, true);
    s.add_project("demo", "1.10.0", &two, true);
    s.add_project("demo", "1.9.0", &one, true);
    // No redirect: the highest version in the /files/demo/ listing (numeric order).
    let tmp = tempfile::tempdir().unwrap();
    fetch("demo", &s.url(), tmp.path()).assert().success();
    assert!(tmp.path().join("demo/1.10.0/b.dat").exists());
    // The /content/ redirect wins when present.
    s.set_latest("demo", "1.9.0");
    fetch("demo", &s.url(), tmp.path()).assert().success();
    assert!(tmp.path().join("demo/1.9.0/a.dat").exists());
    assert!(
        s.log()
            .iter()
            .any(|l| l.path == "/content/demo/" && l.status == 302)
    );
}

#[test]
fn project_without_sums_is_walked_and_verified_by_size() {
    let s = TestServer::start();
    let files = project(5);
    s.add_project("nosums", "2.0", &files, false);
    let tmp = tempfile::tempdir().unwrap();
    fetch("nosums@2.0", &s.url(), tmp.path())
        .assert()
        .success()
        .stderr(predicates::str::contains("checksums unavailable"));
    assert_identical(&tmp.path().join("nosums/2.0"), &files);
}

#[test]
fn unsafe_manifest_path_is_refused() {
    let s = TestServer::start();
    let h = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    s.add(
        "/files/evil/1.0/SHA256SUMS.txt",
        format!("{h}  ok.dat\n{h}  ../../escape.dat\n"),
    );
    s.add("/files/evil/1.0/ok.dat", "");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    fetch("evil@1.0", &s.url(), &out)
        .assert()
        .code(4)
        .stderr(predicates::str::contains("../../escape.dat"));
    assert!(!tmp.path().join("escape.dat").exists() && !out.exists());
}

#[test]
fn sigkill_mid_download_resumes_with_range() {
    let s = TestServer::start();
    let big = data(7, 1_500_000);
    let files = vec![("big.dat".to_string(), big.clone())];
    s.add_project("demo", "1.0.0", &files, true);
    s.throttle(
        "/files/demo/1.0.0/big.dat",
        16 * 1024,
        Duration::from_millis(15),
    );
    let tmp = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("physio");
    let mut child = std::process::Command::new(&bin)
        // Splitting off: the one-stream `.part` path (split downloads have their own
        // SIGKILL tests below).
        .args([
            "fetch",
            "demo@1.0.0",
            "--quiet",
            "--split-min",
            "0",
            "--base-url",
            &s.url(),
            "--out",
        ])
        .arg(tmp.path())
        .env_remove("PHYSIONET_USERNAME")
        .env_remove("PHYSIONET_PASSWORD")
        .spawn()
        .unwrap();
    let part = tmp.path().join("demo/1.0.0/big.dat.part");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < 200_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "download never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 0 && kept < big.len() as u64);
    fetch("demo@1.0.0", &s.url(), tmp.path())
        .args(["--split-min", "0"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read(tmp.path().join("demo/1.0.0/big.dat")).unwrap(),
        big
    );
    assert!(!part.exists());
    let last = s
        .log()
        .into_iter()
        .rfind(|l| l.path.ends_with("big.dat"))
        .unwrap();
    let from: u64 = last
        .range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        from > 0 && from <= kept,
        "resumed from {from}, {kept} bytes were on disk"
    );
}

/// The bytes each range of a `.physio-ranges-*.json` record has written, by range.
fn written_ranges(log: &Path) -> Vec<[u64; 3]> {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map(|v| {
            v["ranges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| [0, 1, 2].map(|k| r[k].as_u64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `physio ARGS BASE_URL --out OUT` and SIGKILLs it as soon as `ready` returns a
/// value (polled every 20 ms, for at most 30 s; the run must not end first).
fn kill_when<T>(
    args: &[&str],
    base_url: &str,
    out: &Path,
    what: &str,
    mut ready: impl FnMut() -> Option<T>,
) -> T {
    let bin = assert_cmd::cargo::cargo_bin("physio");
    let mut child = std::process::Command::new(&bin)
        .args(args)
        .arg(base_url)
        .arg("--out")
        .arg(out)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let got = loop {
        assert!(std::time::Instant::now() < deadline, "{what}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the download ended before it could be killed"
        );
        if let Some(v) = ready() {
            break v;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    got
}

#[test]
fn sigkill_mid_split_download_resumes_every_range() {
    let s = TestServer::start();
    let big = data(21, 4_000_000);
    s.add_project(
        "demo",
        "1.0.0",
        &[("big.dat".to_string(), big.clone())],
        true,
    );
    let p = "/files/demo/1.0.0/big.dat";
    // ~320 KB/s per range: each 1 MB range takes about three seconds, long enough for
    // the once-a-second progress record to be written mid-way.
    s.throttle(p, 16 * 1024, Duration::from_millis(50));
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "fetch",
        "demo@1.0.0",
        "--quiet",
        "--jobs",
        "4",
        "--split-min",
        "1000000",
        "--base-url",
    ];
    let vdir = tmp.path().join("demo/1.0.0");
    let log = vdir.join(".physio-ranges-big.dat.json");
    kill_when(
        &args,
        &s.url(),
        tmp.path(),
        "no range progress recorded",
        || {
            let written: u64 = written_ranges(&log).iter().map(|[a, _, n]| n - a).sum();
            (written >= 1_000_000).then_some(())
        },
    );
    assert!(vdir.join("big.dat.ranges.part").exists() && !vdir.join("big.dat").exists());
    s.clear_log();
    physio()
        .args(args)
        .arg(s.url())
        .arg("--out")
        .arg(tmp.path())
        .assert()
        .success();
    assert_eq!(std::fs::read(vdir.join("big.dat")).unwrap(), big);
    let spans: Vec<(u64, u64)> = s
        .log()
        .into_iter()
        .filter(|l| l.path == p)
        .map(|l| {
            let r = l.range.expect("a resumed split sends only ranges");
            let (a, b) = r["bytes=".len()..].split_once('-').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert!(!spans.is_empty() && spans.len() <= 4, "{spans:?}");
    assert!(
        spans.iter().all(|(a, _)| a % 1_000_000 != 0),
        "ranges resumed mid-way: {spans:?}"
    );
    let refetched: u64 = spans.iter().map(|(a, b)| b + 1 - a).sum();
    assert!(
        refetched <= 3_000_000,
        "at most what was missing was fetched again: {spans:?}"
    );
    let left = tree(&vdir);
    assert!(!left.iter().any(|p| p.contains("ranges")), "{left:?}");
}

#[test]
fn include_exclude_records_and_shards_select_files() {
    let s = TestServer::start();
    let files = project(9);
    s.add_project("demo", "1.0.0", &files, true);
    let tmp = tempfile::tempdir().unwrap();
    let recs = tmp.path().join("recs.txt");
    std::fs::write(&recs, "records/01/r4\n").unwrap();
    let o = physio()
        .args([
            "fetch",
            "demo@1.0.0",
            "--json",
            "--dry-run",
            "--include",
            "records/**",
            "--exclude",
            "r1.dat",
            "--base-url",
            &s.url(),
            "--out",
        ])
        .arg(tmp.path().join("o"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["total_files"], 8, "{v}");
    physio()
        .args(["fetch", "demo@1.0.0", "--records"])
        .arg(&recs)
        .args(["--base-url", &s.url(), "--out"])
        .arg(tmp.path().join("r"))
        .assert()
        .success();
    let got: Vec<_> = tree(&tmp.path().join("r/demo/1.0.0"))
        .into_iter()
        .filter(|p| !p.starts_with(".physio") && p != "SHA256SUMS.txt")
        .collect();
    assert_eq!(got, ["records/01/r4.dat"]);
    // Two shards into one directory fetch everything exactly once.
    for i in 0..2 {
        physio()
            .args([
                "fetch",
                "demo@1.0.0",
                "--shard",
                &format!("{i}/2"),
                "--base-url",
                &s.url(),
                "--out",
            ])
            .arg(tmp.path().join("s"))
            .assert()
            .success();
    }
    assert_identical(&tmp.path().join("s/demo/1.0.0"), &files);
    physio()
        .args(["fetch", "demo", "--shard", "2/2", "--base-url", &s.url()])
        .assert()
        .code(2);
}

#[test]
fn removed_upstream_is_reported_and_deleted_on_request() {
    let s = TestServer::start();
    let files = project(3);
    s.add_project("demo", "1.0.0", &files, true);
    let tmp = tempfile::tempdir().unwrap();
    let vdir = tmp.path().join("demo/1.0.0");
    std::fs::create_dir_all(&vdir).unwrap();
    std::fs::write(vdir.join("old.dat"), "gone upstream").unwrap();
    let run = |extra: &[&str]| {
        let o = fetch("demo@1.0.0", &s.url(), tmp.path())
            .args(["--json"])
            .args(extra)
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    assert_eq!(run(&[])["removed_upstream"][0], "old.dat");
    assert!(vdir.join("old.dat").exists());
    assert_eq!(run(&["--delete"])["deleted"][0], "old.dat");
    assert!(!vdir.join("old.dat").exists());
}

// --- credentials --------------------------------------------------------------------

fn credentialed() -> (TestServer, Vec<(String, Vec<u8>)>) {
    let s = TestServer::start();
    let files = project(3);
    s.add_project("mimic", "1.0", &files, true);
    s.require_basic("alice", "s3cr3t-pw");
    (s, files)
}

fn no_secret(out: &std::process::Output) {
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(
            !text.contains("s3cr3t-pw") && !text.contains("wrong-pw"),
            "secret leaked: {text}"
        );
    }
}

#[test]
fn credentials_right_wrong_missing() {
    let (s, files) = credentialed();
    let tmp = tempfile::tempdir().unwrap();
    let o = fetch("mimic@1.0", &s.url(), tmp.path())
        .args(["-vvv"])
        .env("PHYSIONET_USERNAME", "alice")
        .env("PHYSIONET_PASSWORD", "s3cr3t-pw")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    no_secret(&o);
    assert_identical(&tmp.path().join("mimic/1.0"), &files);
    assert!(
        s.log().iter().all(|l| l.auth.is_some()),
        "Basic sent preemptively to its own loopback realm"
    );

    let o = physio()
        .args([
            "fetch",
            "mimic@1.0",
            "-vvv",
            "--base-url",
            &s.url(),
            "--out",
        ])
        .arg(tmp.path().join("w"))
        .env("PHYSIONET_USERNAME", "alice")
        .env("PHYSIONET_PASSWORD", "wrong-pw")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    no_secret(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not accepted"));

    let o = physio()
        .args(["fetch", "mimic@1.0", "--base-url", &s.url(), "--out"])
        .arg(tmp.path().join("m"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("PHYSIONET_USERNAME"));
}

#[test]
fn credentials_from_netrc_never_follow_a_redirect_to_another_host() {
    let (s, files) = credentialed();
    let foreign = TestServer::start();
    foreign.add("/elsewhere/r.dat", files[0].1.clone());
    s.redirect(
        &format!("/files/mimic/1.0/{}", files[0].0),
        &format!("{}/elsewhere/r.dat", foreign.url()),
    );
    let tmp = tempfile::tempdir().unwrap();
    let netrc = tmp.path().join("netrc");
    std::fs::write(&netrc, "machine 127.0.0.1 login alice password s3cr3t-pw\n").unwrap();
    let o = physio()
        .args([
            "fetch",
            "mimic@1.0",
            "-vvv",
            "--base-url",
            &s.url(),
            "--out",
        ])
        .arg(tmp.path().join("o"))
        .env("NETRC", &netrc)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    no_secret(&o);
    assert_identical(&tmp.path().join("o/mimic/1.0"), &files);
    let flog = foreign.log();
    assert_eq!(flog.len(), 1);
    assert!(
        flog[0].auth.is_none(),
        "credentials were forwarded to another host"
    );
}

#[test]
fn aws_layout_lists_versions_and_sizes_with_list_objects_v2() {
    let s = TestServer::start();
    let files = project(4);
    for v in ["1.0.0", "1.2.0"] {
        let mut sums = String::new();
        for (p, b) in &files {
            s.add(&format!("/demo/{v}/{p}"), b.clone());
            sums.push_str(&format!(
                "{}  {p}\n",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b))
            ));
        }
        s.add(&format!("/demo/{v}/SHA256SUMS.txt"), sums);
    }
    let o = physio()
        .args([
            "ls",
            "demo",
            "--source",
            "aws",
            "--json",
            "--base-url",
            &s.url(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], "1.2.0");
    let listed = v["files"].as_array().unwrap();
    assert_eq!(listed.len(), files.len());
    for (p, b) in &files {
        assert!(
            listed
                .iter()
                .any(|f| f["path"] == p.as_str() && f["size"] == b.len()),
            "{p}"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    fetch("demo", &s.url(), tmp.path())
        .args(["--source", "aws"])
        .assert()
        .success();
    assert_identical(&tmp.path().join("demo/1.2.0"), &files);
}

/// Issue 12: a mirror URL that names the bucket in its path
/// (`http://host/<bucket>/`) is listed path style (`GET /<bucket>?list-type=2…`), and
/// its files are fetched from `/<bucket>/<slug>/<version>/`.
#[test]
fn aws_layout_with_the_bucket_in_the_path_is_listed_path_style() {
    let s = TestServer::start();
    let files = project(3);
    for (p, b) in &files {
        s.add(&format!("/physionet-open/demo/1.0.0/{p}"), b.clone());
    }
    // A key outside the bucket is not listed.
    s.add("/other/demo/9.0.0/x.dat", vec![0u8; 4]);
    let base = format!("{}/physionet-open/", s.url());
    let o = physio()
        .args([
            "ls",
            "demo",
            "--source",
            "aws",
            "--json",
            "--base-url",
            &base,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], "1.0.0");
    assert_eq!(v["files"].as_array().unwrap().len(), files.len(), "{v}");
    assert!(
        s.log()
            .iter()
            .any(|l| l.path == "/physionet-open" && l.status == 200),
        "listed path style"
    );
    let tmp = tempfile::tempdir().unwrap();
    fetch("demo", &base, tmp.path())
        .args(["--source", "aws"])
        .assert()
        .success();
    assert_identical(&tmp.path().join("demo/1.0.0"), &files);
}

/// Issue 12, one retry policy: a bucket listing that fails with a 503 and then a 429
/// with `Retry-After: 1` is retried by physio's own policy (object_store's retries are
/// off), honouring the server's delay, and then succeeds; a 403 is not retried.
#[test]
fn aws_listing_retries_like_downloads_and_honours_retry_after() {
    let s = TestServer::start();
    let files = project(2);
    for (p, b) in &files {
        s.add(&format!("/demo/1.0.0/{p}"), b.clone());
    }
    s.fault("/", &[Fault::Status(503), Fault::TooMany(1)]);
    let started = std::time::Instant::now();
    let o = physio()
        .args(["ls", "demo", "--source", "aws", "--json", "--base-url"])
        .arg(s.url())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], "1.0.0");
    let statuses: Vec<u16> = s
        .log()
        .iter()
        .filter(|l| l.path == "/")
        .map(|l| l.status)
        .collect();
    assert_eq!(&statuses[..3], [503, 429, 200], "{statuses:?}");

    let s = TestServer::start();
    s.add("/demo/1.0.0/a.dat", vec![1u8; 10]);
    s.fault("/", &[Fault::Status(403)]);
    let o = physio()
        .args(["ls", "demo", "--source", "aws", "--base-url"])
        .arg(s.url())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("403"));
    assert_eq!(s.log().iter().filter(|l| l.path == "/").count(), 1);
}

#[test]
fn forbidden_with_credentials_blames_the_data_use_agreement() {
    let (s, _) = credentialed();
    s.fault("/files/mimic/1.0/SHA256SUMS.txt", &[Fault::Status(403)]);
    let tmp = tempfile::tempdir().unwrap();
    let o = fetch("mimic@1.0", &s.url(), tmp.path())
        .env("PHYSIONET_USERNAME", "alice")
        .env("PHYSIONET_PASSWORD", "s3cr3t-pw")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    no_secret(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("data use agreement"));
}

#[test]
fn a_second_run_on_a_locked_directory_is_refused() {
    let s = TestServer::start();
    s.add_project("demo", "1.0.0", &project(2), true);
    let tmp = tempfile::tempdir().unwrap();
    let vdir = tmp.path().join("demo/1.0.0");
    std::fs::create_dir_all(&vdir).unwrap();
    let held = std::fs::File::create(vdir.join(".physio-lock")).unwrap();
    held.try_lock().unwrap();
    fetch("demo@1.0.0", &s.url(), tmp.path())
        .assert()
        .code(1)
        .stderr(predicates::str::contains("another physio run"));
    drop(held);
    fetch("demo@1.0.0", &s.url(), tmp.path()).assert().success();
}

#[test]
fn max_rate_caps_the_whole_run_not_each_connection() {
    let s = TestServer::start();
    let files = project(8);
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    s.add_project("demo", "1.0.0", &files, true);
    s.set_latest("demo", "1.0.0");
    let tmp = tempfile::tempdir().unwrap();
    // A budget of a third of the project per second, shared by 8 connections: the last
    // chunk is due only after the rest has used up ~3 s of budget (8 uncapped
    // connections on loopback take milliseconds). A lower bound only: a loaded machine
    // can make the run slower, never faster.
    let rate = total / 3;
    let started = std::time::Instant::now();
    physio()
        .args([
            "fetch",
            "demo",
            "--jobs",
            "8",
            "--max-rate",
            &rate.to_string(),
        ])
        .args(["--base-url", &s.url(), "--out"])
        .arg(tmp.path())
        .assert()
        .success();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1800),
        "{elapsed:?} for {total} bytes at {rate}/s"
    );
    assert_identical(&tmp.path().join("demo/1.0.0"), &files);
    fetch("demo", &s.url(), tmp.path())
        .args(["--max-rate", "0"])
        .assert()
        .code(2);
}

/// Issue 13: a file below `--split-min` that one throttled connection would fetch for
/// ~10 s is split while in flight: idle connections take over the tail of its range.
/// Killed mid-way (SIGKILL), the next run resumes every range, stolen ones included,
/// and the file is byte-identical.
#[test]
fn transfer_split_mid_flight_is_identical_and_resumes_after_sigkill() {
    let s = TestServer::start();
    let big = data(31, 2_000_000);
    s.add_project(
        "demo",
        "1.0.0",
        &[("big.dat".to_string(), big.clone())],
        true,
    );
    s.pace(100_000);
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "fetch",
        "demo@1.0.0",
        "--quiet",
        "--jobs",
        "4",
        "--base-url",
    ];
    let vdir = tmp.path().join("demo/1.0.0");
    let log = vdir.join(".physio-ranges-big.dat.json");
    let at_kill = kill_when(&args, &s.url(), tmp.path(), "no split recorded", || {
        let r = written_ranges(&log);
        let written: u64 = r.iter().map(|[a, _, n]| n - a).sum();
        // Taken over (more than one range) and some bytes of a stolen range written.
        (r.len() >= 2 && r[1..].iter().any(|[a, _, n]| n > a) && written >= 500_000).then_some(r)
    });
    assert!(vdir.join("big.dat.ranges.part").exists() && !vdir.join("big.dat").exists());
    // The ranges cover the file exactly, one after another.
    let mut spans: Vec<(u64, u64)> = at_kill.iter().map(|[a, b, _]| (*a, *b)).collect();
    spans.sort();
    assert_eq!(spans[0].0, 0);
    assert_eq!(spans.last().unwrap().1, big.len() as u64 - 1);
    assert!(spans.windows(2).all(|w| w[0].1 + 1 == w[1].0), "{spans:?}");
    s.clear_log();
    s.pace(0);
    physio()
        .args(args)
        .arg(s.url())
        .arg("--out")
        .arg(tmp.path())
        .assert()
        .success();
    assert_eq!(std::fs::read(vdir.join("big.dat")).unwrap(), big);
    let refetched: u64 = s
        .log()
        .into_iter()
        .filter(|l| l.path == "/files/demo/1.0.0/big.dat")
        .map(|l| {
            let r = l.range.expect("a resumed split sends only ranges");
            let (a, b) = r["bytes=".len()..].split_once('-').unwrap();
            b.parse::<u64>().unwrap() + 1 - a.parse::<u64>().unwrap()
        })
        .sum();
    let written: u64 = at_kill.iter().map(|[a, _, n]| n - a).sum();
    assert!(
        refetched <= big.len() as u64 - written,
        "only what was missing at the kill was fetched again: {refetched} of {}",
        big.len()
    );
    let left = tree(&vdir);
    assert!(!left.iter().any(|p| p.contains("ranges")), "{left:?}");
}

/// Issue 13: with no `--jobs`, the connection budget searches for the server's limit:
/// it grows while throughput grows, drops back on 503s and settles at or under what the
/// server allows, so only a handful of requests are ever refused.
#[test]
fn connection_budget_search_settles_under_the_server_limit() {
    let s = TestServer::start();
    let mut files: Vec<(String, Vec<u8>)> = (0..80)
        .map(|i| (format!("r/{i:02}.dat"), data(100 + i, 30_000)))
        .collect();
    files.push(("long.dat".to_string(), data(200, 1_500_000)));
    s.add_project("demo", "1.0.0", &files, true);
    s.pace(150_000);
    s.limit_connections(6);
    let tmp = tempfile::tempdir().unwrap();
    let o = fetch("demo@1.0.0", &s.url(), tmp.path())
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_identical(&tmp.path().join("demo/1.0.0"), &files);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let conns = v["connections"].as_u64().unwrap();
    assert!((2..=6).contains(&conns), "settled at {conns}: {v}");
    assert!(v["connection_rate"].as_f64().unwrap() > 0.0, "{v}");
    let refused = s.refusals();
    assert!(
        refused <= 8,
        "{refused} requests refused: the budget overstepped the server's limit for long"
    );
    assert!(s.peak_active() <= 6);
}

fn mirror_project(s: &TestServer, slug: &str, version: &str, files: &[(String, Vec<u8>)]) {
    for (p, b) in files {
        s.add(&format!("/{slug}/{version}/{p}"), b.clone());
    }
}

/// Issue 13, `--source auto`: the manifest and checksums come from physionet.org (here
/// the primary test server, with credentials), the bytes from the AWS mirror
/// (`PHYSIO_AWS_URL`); a file the mirror lacks, and one it serves wrong, come from
/// physionet.org instead; nothing unverified is left; the mirror never sees the
/// PhysioNet credentials; the summary says where the bytes came from.
#[test]
fn source_auto_takes_verified_bytes_from_the_mirror_and_falls_back_per_file() {
    let s = TestServer::start();
    let files = project(6);
    s.add_project("demo", "1.0.0", &files, true);
    s.require_basic("alice", "s3cr3t-pw");
    let aws = TestServer::start();
    // The mirror lacks files[1] and serves files[2] with one byte changed.
    let lacking: Vec<_> = files
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, f)| f.clone())
        .collect();
    mirror_project(&aws, "demo", "1.0.0", &lacking);
    let mut wrong = files[2].1.clone();
    wrong[100] ^= 1;
    aws.corrupt(&format!("/demo/1.0.0/{}", files[2].0), wrong);
    let tmp = tempfile::tempdir().unwrap();
    let o = fetch("demo@1.0.0", &s.url(), tmp.path())
        .arg("--json")
        .env("PHYSIO_AWS_URL", aws.url())
        .env("PHYSIONET_USERNAME", "alice")
        .env("PHYSIONET_PASSWORD", "s3cr3t-pw")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    no_secret(&o);
    let vdir = tmp.path().join("demo/1.0.0");
    assert_identical(&vdir, &files);
    assert!(!tree(&vdir).iter().any(|p| p.ends_with(".part")));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = files.len() as u64;
    assert_eq!(v["sources"]["aws"]["files"], n - 2, "{v}");
    assert_eq!(v["sources"]["physionet"]["files"], 2, "{v}");
    // Only the two fallbacks were fetched from physionet.org.
    let from_origin = body_requests(&s);
    assert_eq!(from_origin.len(), 2, "{from_origin:?}");
    assert!(
        aws.log().iter().all(|l| l.auth.is_none()),
        "credentials reached the mirror"
    );
    assert!(
        aws.log()
            .iter()
            .any(|l| l.path == format!("/demo/1.0.0/{}", files[1].0) && l.status == 404)
    );

    // `--source physionet` never asks the mirror.
    aws.clear_log();
    let tmp = tempfile::tempdir().unwrap();
    fetch("demo@1.0.0", &s.url(), tmp.path())
        .args(["--source", "physionet"])
        .env("PHYSIO_AWS_URL", aws.url())
        .env("PHYSIONET_USERNAME", "alice")
        .env("PHYSIONET_PASSWORD", "s3cr3t-pw")
        .assert()
        .success();
    assert!(aws.log().is_empty());
}

/// `--source auto` with a mirror that does not hold the version fetches everything from
/// physionet.org, and says so.
#[test]
fn source_auto_without_the_version_on_the_mirror_uses_physionet() {
    let s = TestServer::start();
    let files = project(4);
    s.add_project("demo", "1.1.0", &files, true);
    let aws = TestServer::start();
    mirror_project(&aws, "demo", "1.0.0", &files);
    let tmp = tempfile::tempdir().unwrap();
    let o = fetch("demo@1.1.0", &s.url(), tmp.path())
        .arg("--json")
        .env("PHYSIO_AWS_URL", aws.url())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_identical(&tmp.path().join("demo/1.1.0"), &files);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sources"]["aws"]["files"], 0, "{v}");
    assert_eq!(v["sources"]["physionet"]["files"], files.len(), "{v}");
    assert!(
        aws.log().iter().all(|l| !l.path.ends_with(".dat")),
        "no file was asked of a mirror without the version"
    );
}
