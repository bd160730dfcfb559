//! Issue 15: `physio ls <dataset> --records` (headers only), `--where` selections, and
//! `physio convert <dataset>` (fetch and convert overlapped) against a PTB-XL-shaped
//! dataset served by the 127.0.0.1 test server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::common::server::TestServer;
use crate::common::{physio, physio_process, success_json};

const SLUG: &str = "ptbxl-like";
const VERSION: &str = "1.0.3";
const LEADS: [&str; 12] = [
    "I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6",
];

/// A PTB-XL-shaped version: `records100/<k>/<i>_lr` (100 Hz, 10 s) and
/// `records500/<k>/<i>_hr` (500 Hz, 10 s) per patient, format 16, 12 leads, listed in a
/// top-level RECORDS file. Every 5th high-rate record has only 6 leads (no V1..V6) and
/// every 7th low-rate record is 5 s long, so `--where` has something to select.
fn ptbxl_like(patients: usize) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut records = String::new();
    for i in 1..=patients {
        for (dir, suffix, fs) in [("records100", "lr", 100u32), ("records500", "hr", 500)] {
            let name = format!("{i:05}_{suffix}");
            let rel = format!("{dir}/{:05}/{name}", (i / 1000) * 1000);
            let leads: &[&str] = if fs == 500 && i % 5 == 0 {
                &LEADS[..6]
            } else {
                &LEADS
            };
            let secs = if fs == 100 && i % 7 == 0 { 5 } else { 10 };
            let n = (fs * secs) as usize;
            let mut hea = format!("{name} {} {fs} {n}\n", leads.len());
            for (j, l) in leads.iter().enumerate() {
                hea.push_str(&format!("{name}.dat 16 1000.0(0)/mV 16 0 0 0 {j} {l}\n"));
            }
            let mut dat = Vec::with_capacity(n * leads.len() * 2);
            for t in 0..n {
                for j in 0..leads.len() {
                    let v = (((t * 7 + j * 13 + i * 3) % 400) as i16) - 200;
                    dat.extend_from_slice(&v.to_le_bytes());
                }
            }
            files.push((format!("{rel}.hea"), hea.into_bytes()));
            files.push((format!("{rel}.dat"), dat));
            records.push_str(&rel);
            records.push('\n');
        }
    }
    files.push(("RECORDS".into(), records.into_bytes()));
    files.push(("LICENSE.txt".into(), b"test data\n".to_vec()));
    // The tables `--preset ptb-xl` joins.
    let mut db = String::from("ecg_id,patient_id,scp_codes,strat_fold,filename_lr,filename_hr\n");
    for i in 1..=patients {
        let k = (i / 1000) * 1000;
        db.push_str(&format!(
            "{i},{}.0,\"{{'NORM': 100.0, 'SR': 0.0}}\",{},records100/{k:05}/{i:05}_lr,records500/{k:05}/{i:05}_hr\n",
            i * 7,
            i % 10 + 1
        ));
    }
    files.push(("ptbxl_database.csv".into(), db.into_bytes()));
    files.push((
        "scp_statements.csv".into(),
        b",description,diagnostic,form,rhythm,diagnostic_class,diagnostic_subclass\n\
          NORM,normal ECG,1.0,,,NORM,NORM\nSR,sinus rhythm,,,1.0,,\n"
            .to_vec(),
    ));
    files
}

fn serve(patients: usize) -> (TestServer, Vec<(String, Vec<u8>)>) {
    let s = TestServer::start();
    let files = ptbxl_like(patients);
    s.add_project(SLUG, VERSION, &files, true);
    s.set_latest(SLUG, VERSION);
    (s, files)
}

/// Paths (relative to the version) of file GETs in the log, listings and
/// SHA256SUMS.txt left out.
fn file_gets(s: &TestServer) -> Vec<String> {
    let prefix = format!("/files/{SLUG}/{VERSION}/");
    let mut v: Vec<String> = s
        .log()
        .into_iter()
        .filter_map(|l| l.path.strip_prefix(&prefix).map(String::from))
        .filter(|p| !p.is_empty() && !p.ends_with('/') && p != "SHA256SUMS.txt")
        .collect();
    v.sort();
    v
}

fn size_of(files: &[(String, Vec<u8>)], path: &str) -> u64 {
    files.iter().find(|(p, _)| p == path).unwrap().1.len() as u64
}

fn convert_dataset(s: &TestServer, mirror: &Path, out: &Path, extra: &[&str]) -> Value {
    let mut cmd = physio();
    cmd.args([
        "convert",
        SLUG,
        "--to",
        "parquet",
        "--json",
        "--base-url",
        &s.url(),
    ])
    .arg("--mirror")
    .arg(mirror)
    .arg("--out")
    .arg(out)
    .args(extra);
    success_json(&mut cmd)
}

#[test]
fn ls_records_fetches_only_headers_and_where_fetches_exactly_the_selection() {
    let (s, files) = serve(30);
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    let mut cmd = physio();
    cmd.args(["ls", SLUG, "--records", "--json", "--base-url", &s.url()])
        .arg("--mirror")
        .arg(&mirror);
    let doc = success_json(&mut cmd);
    assert_eq!(doc["total_records"], 60);
    let recs = doc["records"].as_array().unwrap();
    let first = &recs[0];
    assert_eq!(first["record"], "records100/00000/00001_lr");
    assert_eq!(first["fs"], 100.0);
    assert_eq!(first["sig_len"], 1000);
    assert_eq!(first["duration"], 10.0);
    assert_eq!(first["n_sig"], 12);
    assert_eq!(first["sig_name"][6], "V1");
    assert_eq!(first["units"][0], "mV");
    let dat = "records100/00000/00001_lr.dat";
    assert_eq!(first["files"][0]["path"], dat);
    assert_eq!(first["files"][0]["size"], size_of(&files, dat));
    // Only headers (and the RECORDS index) crossed the wire.
    let gets = file_gets(&s);
    assert!(
        gets.iter().all(|p| p.ends_with(".hea") || p == "RECORDS"),
        "{gets:?}"
    );
    let header_bytes: u64 = files
        .iter()
        .filter(|(p, _)| p.ends_with(".hea") || p == "RECORDS")
        .map(|(_, b)| b.len() as u64)
        .sum();
    assert_eq!(doc["header_bytes_fetched"], header_bytes);
    assert_eq!(gets.len(), 61);

    // A second listing comes from the mirror's verified headers: nothing is fetched.
    s.clear_log();
    let mut cmd = physio();
    cmd.args(["ls", SLUG, "--records", "--csv", "--base-url", &s.url()])
        .args(["--where", "fs == 500 and \"V1\" in sig_name"])
        .arg("--mirror")
        .arg(&mirror);
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("record,fs,n_sig,sig_len,duration"));
    assert_eq!(lines.len(), 1 + 24, "{csv}");
    assert!(lines[1].starts_with("records500/00000/00001_hr,500,12,5000,10,"));
    assert!(file_gets(&s).is_empty(), "{:?}", file_gets(&s));

    // `fetch --where` into the same mirror: exactly the selected records' files.
    s.clear_log();
    let expr = "(fs == 500 and \"V1\" in sig_name) or duration < 10";
    let mut cmd = physio();
    cmd.args([
        "fetch",
        SLUG,
        "--json",
        "--base-url",
        &s.url(),
        "--where",
        expr,
    ])
    .arg("--out")
    .arg(&mirror);
    let doc = success_json(&mut cmd);
    let mut want: Vec<String> = Vec::new();
    for i in 1..=30 {
        if i % 5 != 0 {
            want.push(format!("records500/00000/{i:05}_hr.dat"));
        }
        if i % 7 == 0 {
            want.push(format!("records100/00000/{i:05}_lr.dat"));
        }
    }
    want.sort();
    assert_eq!(file_gets(&s), want, "headers must come from the mirror");
    assert_eq!(doc["fetched"], want.len());
    assert_eq!(
        doc["skipped"],
        want.len(),
        "their headers were verified already"
    );
    // A filter nothing matches fetches nothing (not everything).
    s.clear_log();
    let mut cmd = physio();
    cmd.args([
        "fetch",
        SLUG,
        "--json",
        "--base-url",
        &s.url(),
        "--where",
        "fs == 1",
    ])
    .arg("--out")
    .arg(&mirror);
    let doc = success_json(&mut cmd);
    assert_eq!(doc["total_files"], 0);
    assert!(file_gets(&s).is_empty(), "{:?}", file_gets(&s));
    // A malformed filter is a usage error naming the column.
    let out = physio()
        .args([
            "ls",
            SLUG,
            "--records",
            "--base-url",
            &s.url(),
            "--where",
            "fs = 500",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("column 4"));
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every `*.dat` under `dir`.
fn dats(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "dat") {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn convert_dataset_equals_fetch_then_convert_with_and_without_raw_files() {
    let (s, files) = serve(40);
    let tmp = tempfile::tempdir().unwrap();
    let opts = ["--row-group-rows", "7", "--preset", "ptb-xl"];

    // Reference: fetch, then convert the directory.
    let m0 = tmp.path().join("m0");
    let mut cmd = physio();
    cmd.args(["fetch", SLUG, "--quiet", "--base-url", &s.url()])
        .arg("--out")
        .arg(&m0);
    cmd.assert().success();
    let reference = tmp.path().join("ref.parquet");
    let mut cmd = physio();
    cmd.arg("convert")
        .arg(m0.join(SLUG).join(VERSION))
        .args(["--to", "parquet", "--quiet"])
        .args(opts)
        .arg("--out")
        .arg(&reference);
    cmd.assert().success();

    // One command, raw files kept.
    s.clear_log();
    let m1 = tmp.path().join("m1");
    let out1 = tmp.path().join("one.parquet");
    let doc = convert_dataset(&s, &m1, &out1, &opts);
    assert_eq!(doc["records_written"], 80);
    assert!(
        read(&out1) == read(&reference),
        "output differs from fetch-then-convert"
    );
    let mut gets = file_gets(&s);
    let mut all: Vec<String> = files
        .iter()
        .map(|(p, _)| p.clone())
        .filter(|p| p != "LICENSE.txt")
        .collect();
    all.sort();
    gets.sort();
    assert_eq!(gets, all, "every needed file fetched exactly once");
    assert_eq!(dats(&m1).len(), 80, "raw files kept in the mirror");
    // Re-run: nothing downloaded, same bytes.
    s.clear_log();
    let doc = convert_dataset(&s, &m1, &out1, &opts);
    assert!(file_gets(&s).is_empty(), "{:?}", file_gets(&s));
    assert_eq!(doc["fetched_files"], 0);
    assert!(read(&out1) == read(&reference));

    // --no-keep-raw: same bytes, no signal file left, raw disk use bounded.
    let m2 = tmp.path().join("m2");
    let out2 = tmp.path().join("two.parquet");
    let doc = convert_dataset(
        &s,
        &m2,
        &out2,
        &[&opts[..], &["--no-keep-raw", "--ahead", "8"]].concat(),
    );
    assert!(
        read(&out2) == read(&reference),
        "--no-keep-raw output differs"
    );
    assert!(dats(&m2).is_empty(), "{:?}", dats(&m2));
    let largest = files
        .iter()
        .filter(|(p, _)| p.ends_with(".dat"))
        .map(|(_, b)| b.len() as u64)
        .max()
        .unwrap();
    let total: u64 = files
        .iter()
        .filter(|(p, _)| p.ends_with(".dat"))
        .map(|(_, b)| b.len() as u64)
        .sum();
    let peak = doc["peak_raw_bytes"].as_u64().unwrap();
    // The bound: 2 x --ahead records plus the converter's in-flight row groups
    // (2 x threads x 7 records here).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let bound = (2 * 8 + 2 * threads * 7) * largest;
    assert!(peak > 0 && peak <= bound, "peak {peak} > bound {bound}");
    assert!(peak < total, "peak {peak} is the whole dataset {total}");

    // Streaming layouts plan from headers the same way: `--layout windows`.
    let win = [
        "--layout",
        "windows",
        "--window",
        "2",
        "--records",
        "records500/**",
        "--signals",
        "I,II",
    ];
    let ref_w = tmp.path().join("ref-w.parquet");
    let mut cmd = physio();
    cmd.arg("convert")
        .arg(m0.join(SLUG).join(VERSION))
        .args(["--to", "parquet", "--quiet"])
        .args(win)
        .arg("--out")
        .arg(&ref_w);
    cmd.assert().success();
    let out_w = tmp.path().join("w.parquet");
    let doc = convert_dataset(&s, &tmp.path().join("mw"), &out_w, &win);
    assert_eq!(doc["rows"], 40 * 5);
    assert!(read(&out_w) == read(&ref_w), "windows output differs");

    // --where: only the selected records, equal to converting the same records.
    let m3 = tmp.path().join("m3");
    let out3 = tmp.path().join("three.parquet");
    s.clear_log();
    let doc = convert_dataset(
        &s,
        &m3,
        &out3,
        &["--where", "fs == 500 and 'V1' not in sig_name"],
    );
    assert_eq!(doc["records_written"], 8);
    let gets: Vec<String> = file_gets(&s)
        .into_iter()
        .filter(|p| p.ends_with(".dat"))
        .collect();
    assert_eq!(gets.len(), 8, "{gets:?}");
    assert!(gets.iter().all(|p| p.starts_with("records500/")));
}

#[test]
fn sigkill_mid_convert_resumes_without_refetching_or_reconverting() {
    let (s, files) = serve(60);
    for (p, _) in files.iter().filter(|(p, _)| p.ends_with(".dat")) {
        s.throttle(
            &format!("/files/{SLUG}/{VERSION}/{p}"),
            4096,
            Duration::from_millis(2),
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let opts = ["--row-group-rows", "4", "--max-file-bytes", "1"];
    let mirror = tmp.path().join("m");
    let out = tmp.path().join("out");
    let bin = assert_cmd::cargo::cargo_bin("physio");
    let mut child = std::process::Command::new(&bin)
        .args([
            "convert",
            SLUG,
            "--to",
            "parquet",
            "--quiet",
            "--base-url",
            &s.url(),
        ])
        .args(["--fetch-jobs", "2"])
        .args(opts)
        .arg("--mirror")
        .arg(&mirror)
        .arg("--out")
        .arg(&out)
        .env_remove("PHYSIO_BASE_URL")
        .spawn()
        .unwrap();
    let parts = |d: &Path| {
        std::fs::read_dir(d)
            .map(|r| {
                r.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while parts(&out) < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "conversion never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Files verified at their final path before the kill must not be fetched again.
    let version = mirror.join(SLUG).join(VERSION);
    let verified: Vec<String> = files
        .iter()
        .map(|(p, _)| p.clone())
        .filter(|p| version.join(p).is_file())
        .collect();
    assert!(verified.iter().any(|p| p.ends_with(".dat")));
    assert!(verified.len() < files.len() - 2, "the kill came too late");
    s.clear_log();
    let doc = convert_dataset(&s, &mirror, &out, &opts);
    let again: Vec<String> = file_gets(&s)
        .into_iter()
        .filter(|p| verified.contains(p))
        .collect();
    assert!(again.is_empty(), "downloaded twice: {again:?}");
    assert!(doc["row_groups_copied"].as_u64().unwrap() > 0, "{doc}");
    assert_eq!(doc["records_written"], 120);

    // Same bytes as an uninterrupted run.
    let m2 = tmp.path().join("m2");
    let out2 = tmp.path().join("out2");
    convert_dataset(&s, &m2, &out2, &opts);
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&out), names(&out2));
    for n in names(&out) {
        assert!(read(&out.join(&n)) == read(&out2.join(&n)), "{n} differs");
    }
}

#[test]
fn convert_kaggle_dataset_fetches_then_converts_the_extracted_directory() {
    use crate::common::conformance_dir;
    use crate::common::kaggle_server::{KaggleServer, make_zip};
    let rec = conformance_dir().join("records");
    let hea = std::fs::read(rec.join("100.hea")).unwrap();
    let dat = std::fs::read(rec.join("100.dat")).unwrap();
    let s = KaggleServer::start();
    s.add(
        "o",
        "ecg",
        1,
        make_zip(&[
            ("RECORDS", b"mitdb/100\n"),
            ("mitdb/100.hea", &hea),
            ("mitdb/100.dat", &dat),
        ]),
    );
    s.require_bearer("KGAT_test");
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("m");
    let out = tmp.path().join("k.parquet");
    let mut cmd = physio();
    cmd.env("PHYSIO_KAGGLE_URL", s.api_base())
        .env("KAGGLE_API_TOKEN", "KGAT_test")
        .env("KAGGLE_CONFIG_DIR", tmp.path().join("no-config"))
        .args(["convert", "kaggle:o/ecg", "--to", "parquet", "--json"])
        .arg("--mirror")
        .arg(&mirror)
        .arg("--out")
        .arg(&out);
    let doc = success_json(&mut cmd);
    assert_eq!(doc["records_written"], 1);
    // The same bytes as converting the fetched directory.
    let reference = tmp.path().join("ref.parquet");
    let mut cmd = physio();
    cmd.arg("convert")
        .arg(mirror.join("kaggle/o/ecg/1"))
        .args(["--to", "parquet", "--quiet", "--out"])
        .arg(&reference);
    cmd.assert().success();
    assert!(read(&out) == read(&reference));
}

#[test]
fn failed_download_and_bad_record_are_named_skipped_and_set_the_exit_code() {
    let s = TestServer::start();
    let mut files = ptbxl_like(6);
    // Record 00002_lr: its signal file is shorter than its header says (decode error).
    let short = "records100/00000/00002_lr.dat";
    for (p, b) in files.iter_mut() {
        if p == short {
            b.truncate(100);
        }
    }
    s.add_project(SLUG, VERSION, &files, true);
    s.set_latest(SLUG, VERSION);
    let tmp = tempfile::tempdir().unwrap();
    let run = |out: &Path| {
        let mut cmd = physio();
        cmd.args([
            "convert",
            SLUG,
            "--to",
            "parquet",
            "--json",
            "--base-url",
            &s.url(),
        ])
        .arg("--mirror")
        .arg(tmp.path().join("m"))
        .arg("--out")
        .arg(out);
        cmd.output().unwrap()
    };
    let out = run(&tmp.path().join("a.parquet"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("records100/00000/00002_lr"), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["records_written"], 11);

    // Record 00003_hr: the server sends wrong bytes (integrity failure, exit 4).
    let bad = format!("/files/{SLUG}/{VERSION}/records500/00000/00003_hr.dat");
    s.corrupt(&bad, vec![0u8; 120_000]);
    let tmp2 = tempfile::tempdir().unwrap();
    let mut cmd = physio();
    cmd.args([
        "convert",
        SLUG,
        "--to",
        "parquet",
        "--json",
        "--base-url",
        &s.url(),
    ])
    .args(["--no-keep-raw"])
    .arg("--mirror")
    .arg(tmp2.path().join("m"))
    .arg("--out")
    .arg(tmp2.path().join("b.parquet"));
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("records500/00000/00003_hr"), "{stderr}");
    assert!(stderr.contains("integrity"), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["records_written"], 10);
    assert!(dats(&tmp2.path().join("m")).is_empty());
}

#[test]
fn multi_segment_records_plan_from_all_their_headers_and_convert_identically() {
    use crate::common::conformance_dir;
    let dir = conformance_dir().join("records");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("041s")
                || n.starts_with("3234460")
                || n.starts_with("s25047")
                || n.starts_with("100.")
        })
        .map(|n| (n.clone(), std::fs::read(dir.join(&n)).unwrap()))
        .collect();
    files.push((
        "RECORDS".into(),
        b"041s\n100\ns25047-2704-05-04-10-44\n".to_vec(),
    ));
    let s = TestServer::start();
    s.add_project("multi", "1.0", &files, true);
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("m");
    let mut cmd = physio();
    cmd.args([
        "ls",
        "multi@1.0",
        "--records",
        "--json",
        "--base-url",
        &s.url(),
    ])
    .arg("--mirror")
    .arg(&mirror);
    let doc = success_json(&mut cmd);
    let recs = doc["records"].as_array().unwrap();
    assert_eq!(recs.len(), 3);
    let fixed = &recs[0];
    assert_eq!(fixed["record"], "041s");
    assert_eq!(fixed["segments"], serde_json::json!(["041s01", "041s02"]));
    assert_eq!(fixed["sig_len"], 2000);
    assert_eq!(fixed["n_sig"], 7);
    assert_eq!(fixed["files"].as_array().unwrap().len(), 2);
    let variable = &recs[2];
    assert_eq!(variable["segments"][0], "3234460_layout");
    assert_eq!(variable["sig_name"], serde_json::json!(["II", "V", "ABP"]));
    assert_eq!(variable["base_date"], "2704-05-04");
    let n_headers = variable["headers"].as_array().unwrap().len();
    assert!(n_headers > 10, "layout and segment headers: {n_headers}");
    let gets: Vec<String> = s
        .log()
        .into_iter()
        .filter_map(|l| l.path.strip_prefix("/files/multi/1.0/").map(String::from))
        .filter(|p| !p.is_empty() && !p.ends_with('/') && p != "SHA256SUMS.txt")
        .collect();
    assert!(
        gets.iter().all(|p| p.ends_with(".hea") || p == "RECORDS"),
        "{gets:?}"
    );
    assert_eq!(gets.len(), 1 + 1 + 1 + 2 + n_headers, "{gets:?}");

    // convert <dataset> (multi-segment records are planned once their files are in)
    // writes what fetch-then-convert writes.
    let one = tmp.path().join("one.parquet");
    let piped = physio()
        .args([
            "convert",
            "multi@1.0",
            "--to",
            "parquet",
            "--quiet",
            "--base-url",
            &s.url(),
        ])
        .args(["--annotations", "atr", "--mirror"])
        .arg(&mirror)
        .arg("--out")
        .arg(&one)
        .output()
        .unwrap();
    let m0 = tmp.path().join("m0");
    physio()
        .args([
            "fetch",
            "multi@1.0",
            "--quiet",
            "--base-url",
            &s.url(),
            "--out",
        ])
        .arg(&m0)
        .assert()
        .success();
    let two = tmp.path().join("two.parquet");
    let direct = physio()
        .arg("convert")
        .arg(m0.join("multi/1.0"))
        .args([
            "--to",
            "parquet",
            "--quiet",
            "--annotations",
            "atr",
            "--out",
        ])
        .arg(&two)
        .output()
        .unwrap();
    assert_eq!(
        piped.status.code(),
        direct.status.code(),
        "{}\n{}",
        String::from_utf8_lossy(&piped.stderr),
        String::from_utf8_lossy(&direct.stderr)
    );
    assert!(read(&one) == read(&two), "multi-segment output differs");

    // --high-resolution (041s holds signals at 4 samples per frame) goes through the
    // same opener in both paths.
    let flags = ["--high-resolution", "--layout", "samples", "--dtype", "i32"];
    let hi_piped = tmp.path().join("hi1.parquet");
    physio()
        .args(["convert", "multi@1.0", "--to", "parquet", "--quiet"])
        .args(["--base-url", &s.url(), "--records", "041s"])
        .args(flags)
        .arg("--mirror")
        .arg(&mirror)
        .arg("--out")
        .arg(&hi_piped)
        .assert()
        .success();
    let hi_direct = tmp.path().join("hi2.parquet");
    physio()
        .arg("convert")
        .arg(m0.join("multi/1.0"))
        .args(["--to", "parquet", "--quiet", "--records", "041s"])
        .args(flags)
        .arg("--out")
        .arg(&hi_direct)
        .assert()
        .success();
    let hi = read(&hi_piped);
    assert!(hi == read(&hi_direct), "--high-resolution output differs");
    let lo = tmp.path().join("lo.parquet");
    physio()
        .arg("convert")
        .arg(m0.join("multi/1.0"))
        .args(["--to", "parquet", "--quiet", "--records", "041s"])
        .args(["--layout", "samples", "--dtype", "i32", "--out"])
        .arg(&lo)
        .assert()
        .success();
    assert!(hi != read(&lo), "--high-resolution made no difference");
}

/// `convert <dataset> --shard I/N` uses the record-name shard key of `fetch --shard` and
/// `convert --shard`: each shard fetches only its records' signal files (the shards'
/// files are disjoint and together every file), and writes what `convert --shard I/N`
/// of a fully fetched mirror writes, byte for byte.
#[test]
fn convert_dataset_shards_by_record_name_like_fetch_and_convert() {
    let (s, files) = serve(12);
    let tmp = tempfile::tempdir().unwrap();
    let m0 = tmp.path().join("m0");
    let mut cmd = physio();
    cmd.args(["fetch", SLUG, "--quiet", "--base-url", &s.url()])
        .arg("--out")
        .arg(&m0);
    cmd.assert().success();
    let mut fetched_dats: Vec<String> = Vec::new();
    let mut written = 0;
    for i in 0..2 {
        let shard = format!("{i}/2");
        let reference = tmp.path().join(format!("ref-{i}"));
        let mut cmd = physio();
        cmd.arg("convert")
            .arg(m0.join(SLUG).join(VERSION))
            .args(["--to", "parquet", "--quiet", "--shard", &shard])
            .arg("--out")
            .arg(&reference);
        cmd.assert().success();
        s.clear_log();
        let out = tmp.path().join(format!("out-{i}"));
        let doc = convert_dataset(
            &s,
            &tmp.path().join(format!("m{}", i + 1)),
            &out,
            &["--shard", &shard],
        );
        written += doc["records_written"].as_u64().unwrap();
        let part = format!("part-{i}-00000.parquet");
        assert!(
            read(&out.join(&part)) == read(&reference.join(&part)),
            "shard {shard} differs from convert --shard"
        );
        let dats: Vec<String> = file_gets(&s)
            .into_iter()
            .filter(|p| p.ends_with(".dat"))
            .collect();
        // Each fetched signal file belongs to a record of this shard.
        for d in &dats {
            let record = d.trim_end_matches(".dat");
            assert!(
                physio::shard::Shard { index: i, count: 2 }.contains(record),
                "{d} fetched by shard {shard}"
            );
        }
        fetched_dats.extend(dats);
    }
    assert_eq!(written, 24, "every record converted by exactly one shard");
    fetched_dats.sort();
    let mut all: Vec<String> = files
        .iter()
        .map(|(p, _)| p.clone())
        .filter(|p| p.ends_with(".dat"))
        .collect();
    all.sort();
    assert_eq!(
        fetched_dats, all,
        "the shards' signal files: disjoint, complete"
    );
}

#[test]
fn concurrent_where_shards_on_one_mirror_equal_one_unsharded_run() {
    // Four `fetch --where --shard I/4` processes started together on one mirror: the
    // header phase is shared (its lock waited for), each shard's files are its own, so
    // none fails with "lock held" and the union is the unsharded selection. Latency
    // makes the processes overlap.
    let (s, _files) = serve(30);
    s.set_latency(Duration::from_millis(5));
    let tmp = tempfile::tempdir().unwrap();
    let expr = "(fs == 500 and \"V1\" in sig_name) or duration < 10";
    let one = tmp.path().join("one");
    let mut cmd = physio();
    cmd.args([
        "fetch",
        SLUG,
        "--quiet",
        "--base-url",
        &s.url(),
        "--where",
        expr,
    ])
    .arg("--out")
    .arg(&one);
    cmd.assert().success();
    let shared = tmp.path().join("shared");
    let children: Vec<_> = (0..4)
        .map(|i| {
            physio_process()
                .args([
                    "fetch",
                    SLUG,
                    "--quiet",
                    "--base-url",
                    &s.url(),
                    "--where",
                    expr,
                ])
                .args(["--shard", &format!("{i}/4")])
                .arg("--out")
                .arg(&shared)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    wait_all(children, "fetch shard");
    let rel = |root: &Path| -> Vec<PathBuf> {
        let base = root.join(SLUG).join(VERSION);
        let mut v: Vec<PathBuf> = dats(&base)
            .into_iter()
            .map(|p| p.strip_prefix(&base).unwrap().to_path_buf())
            .collect();
        v.sort();
        v
    };
    let (want, got) = (rel(&one), rel(&shared));
    assert!(!want.is_empty());
    assert_eq!(got, want, "the shards' files are the unsharded selection");
    for p in &want {
        let (a, b) = (
            one.join(SLUG).join(VERSION).join(p),
            shared.join(SLUG).join(VERSION).join(p),
        );
        assert!(read(&a) == read(&b), "{} differs", p.display());
    }

    // `convert <dataset> --shard I/2`, both at once on one mirror: no "lock held"
    // either, and every record is converted by exactly one of them.
    let mirror = tmp.path().join("m");
    let children: Vec<_> = (0..2)
        .map(|i| {
            physio_process()
                .args([
                    "convert",
                    SLUG,
                    "--to",
                    "parquet",
                    "--quiet",
                    "--base-url",
                    &s.url(),
                ])
                .args(["--shard", &format!("{i}/2"), "--mirror"])
                .arg(&mirror)
                .arg("--out")
                .arg(tmp.path().join(format!("pq-{i}")))
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    wait_all(children, "convert shard");
    assert_eq!(dats(&mirror).len(), 60, "every record's signal file, once");
}

/// Waits for every child (started with piped stderr) and asserts each succeeded,
/// naming the one that did not with its stderr.
fn wait_all(children: Vec<std::process::Child>, what: &str) {
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{what} {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
