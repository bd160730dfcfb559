//! Planning EDF-only datasets (CHB-MIT, sleep-edfx, eegmmidb shaped) from their headers
//! alone: `ls --records` fetches only each `.edf` file's header bytes (Range requests),
//! describes it as `physio info --json` does, `--where` selects on those values, and
//! `convert <dataset>` writes what `fetch` then `convert DIR` writes.

use std::path::Path;

use serde_json::Value;

use crate::common::server::TestServer;
use crate::common::{physio, success_json};

const SLUG: &str = "chbmit-like";
const VERSION: &str = "1.0.0";

/// One signal of [`edf_file`]: label, units, samples per data record, digital min/max.
type Sig = (&'static str, &'static str, usize, i64, i64);

/// An EDF+C file: `sigs` at their rates, a blank channel (`-`, digital min = max, as
/// CHB-MIT's), an `EDF Annotations` channel, `n_records` data records of `duration` s.
fn edf_file(sigs: &[Sig], n_records: usize, duration: &str, seed: usize) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, s: &str, n: usize) {
        let mut b = s.as_bytes().to_vec();
        b.resize(n, b' ');
        out.extend(b);
    }
    let ann = 30usize;
    let mut all: Vec<Sig> = sigs.to_vec();
    all.push(("-", "", sigs[0].2, 0, 0));
    all.push(("EDF Annotations", "", ann, -32768, 32767));
    let mut h = Vec::new();
    field(&mut h, "0", 8);
    field(&mut h, "X X X X", 80);
    field(&mut h, "Startdate 12-MAR-2021 X X X", 80);
    field(&mut h, "12.03.21", 8);
    field(&mut h, "09.30.05", 8);
    field(&mut h, &(256 * (1 + all.len())).to_string(), 8);
    field(&mut h, "EDF+C", 44);
    field(&mut h, &n_records.to_string(), 8);
    field(&mut h, duration, 8);
    field(&mut h, &all.len().to_string(), 4);
    let per = |h: &mut Vec<u8>, f: &dyn Fn(&Sig) -> String, n: usize| {
        for s in &all {
            field(h, &f(s), n);
        }
    };
    per(&mut h, &|s| s.0.to_string(), 16);
    per(&mut h, &|_| String::new(), 80);
    per(&mut h, &|s| s.1.to_string(), 8);
    per(&mut h, &|s| (s.3 * 2).to_string(), 8);
    per(&mut h, &|s| (s.4 * 2).to_string(), 8);
    per(&mut h, &|s| s.3.to_string(), 8);
    per(&mut h, &|s| s.4.to_string(), 8);
    per(&mut h, &|_| String::new(), 80);
    per(&mut h, &|s| s.2.to_string(), 8);
    per(&mut h, &|_| String::new(), 32);
    let secs: f64 = duration.parse().unwrap();
    for r in 0..n_records {
        for (j, s) in sigs.iter().enumerate() {
            for t in 0..s.2 {
                let v = ((t * 7 + j * 13 + r * 5 + seed * 3) % 400) as i16 - 200;
                h.extend(v.to_le_bytes());
            }
        }
        h.extend(std::iter::repeat_n(0u8, sigs[0].2 * 2)); // the blank channel
        let mut tal = format!("+{}\x14\x14\x00", r as f64 * secs).into_bytes();
        if r == 1 {
            tal.extend(format!("+{}\x14seizure\x14\x00", r as f64 * secs + 0.5).bytes());
        }
        tal.resize(2 * ann, 0);
        h.extend(tal);
    }
    h
}

/// A CHB-MIT-shaped version: `chb01/chb01_0{1,2}.edf` (256 and 128 Hz signals, 1 s data
/// records; 10 and 4 records), `chb02/chb02_01.edf` (2 s data records and a 64-sample signal, so a 32 Hz frame
/// rate, 20 records), listed in RECORDS with their extension as PhysioNet lists them.
fn chbmit_like() -> Vec<(String, Vec<u8>)> {
    let a: [Sig; 2] = [
        ("FP1-F7", "uV", 256, -2048, 2047),
        ("ECG", "mV", 128, -1000, 1000),
    ];
    let b: [Sig; 3] = [
        ("FP1-F7", "uV", 256, -2048, 2047),
        ("T7-P7", "uV", 256, -2048, 2047),
        ("RESP", "", 64, -100, 100),
    ];
    let files = vec![
        ("chb01/chb01_01.edf".to_string(), edf_file(&a, 10, "1", 1)),
        ("chb01/chb01_02.edf".to_string(), edf_file(&a, 4, "1", 2)),
        ("chb02/chb02_01.edf".to_string(), edf_file(&b, 20, "2", 3)),
    ];
    let mut all = files.clone();
    let records: String = files.iter().map(|(p, _)| format!("{p}\n")).collect();
    all.push(("RECORDS".into(), records.into_bytes()));
    all.push(("LICENSE.txt".into(), b"test data\n".to_vec()));
    all
}

fn serve(slug: &str, files: &[(String, Vec<u8>)]) -> TestServer {
    let s = TestServer::start();
    s.add_project(slug, VERSION, files, true);
    s.set_latest(slug, VERSION);
    s
}

/// `(path relative to the version, Range header)` of every GET under the version,
/// listings and SHA256SUMS.txt left out.
fn gets(s: &TestServer, slug: &str) -> Vec<(String, Option<String>)> {
    let prefix = format!("/files/{slug}/{VERSION}/");
    let mut v: Vec<_> = s
        .log()
        .into_iter()
        .filter_map(|l| Some((l.path.strip_prefix(&prefix)?.to_string(), l.range)))
        .filter(|(p, _)| !p.is_empty() && !p.ends_with('/') && p != "SHA256SUMS.txt")
        .collect();
    v.sort();
    v
}

/// Header bytes of an EDF file, `256 × (ns + 1)`.
fn header_len(edf: &[u8]) -> u64 {
    let ns: u64 = String::from_utf8_lossy(&edf[252..256])
        .trim()
        .parse()
        .unwrap();
    256 * (ns + 1)
}

fn ls(s: &TestServer, slug: &str, mirror: &Path, extra: &[&str]) -> Value {
    let mut cmd = physio();
    cmd.args(["ls", slug, "--records", "--json", "--base-url", &s.url()])
        .arg("--mirror")
        .arg(mirror)
        .args(extra);
    success_json(&mut cmd)
}

#[test]
fn ls_records_plans_edf_from_header_bytes_only_like_info() {
    let files = chbmit_like();
    let s = serve(SLUG, &files);
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    let doc = ls(&s, SLUG, &mirror, &[]);
    assert_eq!(doc["total_records"], 3, "{doc}");
    let recs = doc["records"].as_array().unwrap();
    let names: Vec<&str> = recs.iter().map(|r| r["record"].as_str().unwrap()).collect();
    // Named as `convert DIR` names EDF records: with the extension.
    assert_eq!(
        names,
        [
            "chb01/chb01_01.edf",
            "chb01/chb01_02.edf",
            "chb02/chb02_01.edf"
        ]
    );

    // Only the RECORDS index and each file's header crossed the wire: `bytes=0-255`,
    // then the rest of the header.
    let edfs: Vec<&(String, Vec<u8>)> = files.iter().filter(|(p, _)| p.ends_with(".edf")).collect();
    let mut want: Vec<(String, Option<String>)> = vec![("RECORDS".into(), None)];
    let mut header_total = 0u64;
    let mut file_total = 0u64;
    for (p, b) in &edfs {
        let hl = header_len(b);
        header_total += hl;
        file_total += b.len() as u64;
        want.push((p.clone(), Some("bytes=0-255".into())));
        want.push((p.clone(), Some(format!("bytes=256-{}", hl - 1))));
    }
    want.sort();
    assert_eq!(gets(&s, SLUG), want);
    let records_len = files.iter().find(|(p, _)| p == "RECORDS").unwrap().1.len() as u64;
    assert_eq!(doc["header_bytes_fetched"], header_total + records_len);
    assert!(
        header_total * 10 < file_total,
        "{header_total} header bytes of {file_total}"
    );
    println!("EDF plan: {header_total} header bytes fetched of {file_total} file bytes");
    // Nothing but RECORDS is left in the mirror: header bytes are not the file.
    let version_dir = mirror.join(SLUG).join(VERSION);
    assert!(!version_dir.join("chb01").exists());
    assert!(!version_dir.join("chb01/chb01_01.edf.part").exists());

    // The same values as `physio info --json` of the files themselves.
    let local = tmp.path().join("local");
    for (rec, (p, b)) in recs.iter().zip(&edfs) {
        let path = local.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b).unwrap();
        let info = success_json(physio().arg("info").arg(&path).arg("--json"));
        for key in [
            "fs",
            "sig_len",
            "sig_name",
            "units",
            "n_sig",
            "base_date",
            "base_time",
        ] {
            assert_eq!(rec[key], info[key], "{p}: {key}");
        }
        let fs = info["fs"].as_f64().unwrap();
        let n = info["sig_len"].as_f64().unwrap();
        assert_eq!(rec["duration"].as_f64().unwrap(), n / fs, "{p}");
        assert_eq!(rec["headers"], serde_json::json!([]));
        assert_eq!(
            rec["files"],
            serde_json::json!([{"path": p, "size": b.len()}])
        );
    }
    assert_eq!(recs[0]["fs"], 128.0);
    assert_eq!(recs[0]["sig_len"], 1280);
    assert_eq!(
        recs[0]["sig_name"],
        serde_json::json!(["FP1-F7", "ECG", "-"])
    );
    assert_eq!(recs[2]["fs"], 32.0);
    assert_eq!(recs[2]["duration"], 40.0);

    // `--where` on the same columns.
    s.clear_log();
    let doc = ls(
        &s,
        SLUG,
        &mirror,
        &["--where", "duration >= 10 and \"ECG\" in sig_name"],
    );
    let names: Vec<&str> = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["chb01/chb01_01.edf"]);

    // `fetch --where`: exactly the selected `.edf` files, whole and verified.
    s.clear_log();
    let out = tmp.path().join("fetched");
    let mut cmd = physio();
    cmd.args(["fetch", SLUG, "--json", "--base-url", &s.url()])
        .args(["--where", "fs < 100"])
        .arg("--out")
        .arg(&out);
    success_json(&mut cmd);
    let whole: Vec<_> = gets(&s, SLUG)
        .into_iter()
        .filter(|(_, r)| r.is_none() || r.as_deref() == Some("bytes=0-"))
        .map(|(p, _)| p)
        .filter(|p| p.ends_with(".edf"))
        .collect();
    assert_eq!(whole, ["chb02/chb02_01.edf"]);
    let got = std::fs::read(out.join(SLUG).join(VERSION).join("chb02/chb02_01.edf")).unwrap();
    assert!(got == edfs[2].1, "the fetched file is the whole file");
    assert!(
        !out.join(SLUG)
            .join(VERSION)
            .join("chb01/chb01_01.edf")
            .exists()
    );
}

#[test]
fn edf_without_records_file_and_lying_header_fail_per_record() {
    // eegmmidb-shaped: no RECORDS, every `.edf` of the manifest is a record.
    let sig: [Sig; 1] = [("Fc5.", "uV", 160, -32767, 32767)];
    let good = edf_file(&sig, 3, "1", 4);
    let mut liar = edf_file(&sig, 3, "1", 5);
    liar[252..256].copy_from_slice(b"9999"); // 2.5 MB of header in a small file
    let files = vec![
        ("S001/S001R01.edf".to_string(), good.clone()),
        ("S001/S001R02.edf".to_string(), liar),
    ];
    let slug = "eegmmidb-like";
    let s = serve(slug, &files);
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = physio();
    cmd.args(["ls", slug, "--records", "--json", "--base-url", &s.url()])
        .arg("--mirror")
        .arg(tmp.path());
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a record failed: partial");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["planned_records"], 2);
    assert_eq!(doc["records"][0]["record"], "S001/S001R01.edf");
    assert_eq!(doc["records"][0]["fs"], 160.0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("record S001/S001R02.edf") && err.contains("number of signals"),
        "{err}"
    );
    // The liar cost 256 bytes, not its declared header.
    let liar_gets: Vec<_> = gets(&s, slug)
        .into_iter()
        .filter(|(p, _)| p == "S001/S001R02.edf")
        .collect();
    assert_eq!(
        liar_gets,
        [(
            "S001/S001R02.edf".to_string(),
            Some("bytes=0-255".to_string())
        )]
    );
}

#[test]
fn convert_edf_dataset_equals_fetch_then_convert() {
    let files = chbmit_like();
    let s = serve(SLUG, &files);
    let tmp = tempfile::tempdir().unwrap();
    let opts = ["--row-group-rows", "100"];

    // Reference: fetch everything, then convert the directory.
    let m0 = tmp.path().join("m0");
    let mut cmd = physio();
    cmd.args(["fetch", SLUG, "--quiet", "--base-url", &s.url()])
        .arg("--out")
        .arg(&m0);
    cmd.assert().success();
    let convert_dir = |out: &Path, extra: &[&str]| {
        let mut cmd = physio();
        cmd.arg("convert")
            .arg(m0.join(SLUG).join(VERSION))
            .args(["--to", "parquet", "--quiet"])
            .args(opts)
            .args(extra)
            .arg("--out")
            .arg(out);
        cmd.assert().success();
        std::fs::read(out).unwrap()
    };
    let convert_dataset = |mirror: &Path, out: &Path, extra: &[&str]| {
        let mut cmd = physio();
        cmd.args(["convert", SLUG, "--to", "parquet", "--json"])
            .args(["--base-url", &s.url()])
            .args(opts)
            .args(extra)
            .arg("--mirror")
            .arg(mirror)
            .arg("--out")
            .arg(out);
        let doc = success_json(&mut cmd);
        (doc, std::fs::read(out).unwrap())
    };
    let reference = convert_dir(&tmp.path().join("ref.parquet"), &[]);
    let (doc, one) = convert_dataset(&tmp.path().join("m1"), &tmp.path().join("one.parquet"), &[]);
    assert_eq!(doc["records_written"], 3, "{doc}");
    assert!(
        one == reference,
        "convert <dataset> differs from fetch + convert"
    );
    let (_, two) = convert_dataset(
        &tmp.path().join("m2"),
        &tmp.path().join("two.parquet"),
        &["--no-keep-raw"],
    );
    assert!(two == reference, "--no-keep-raw output differs");
    assert!(
        !tmp.path()
            .join("m2")
            .join(SLUG)
            .join(VERSION)
            .join("chb01/chb01_01.edf")
            .exists()
    );

    // A `--where` selection: the same rows as a `--records` glob of the directory (the
    // files' provenance metadata names the options, so only the rows are compared).
    s.clear_log();
    let sel_ref = tmp.path().join("sel_ref.parquet");
    convert_dir(&sel_ref, &["--records", "chb01/*"]);
    let sel = tmp.path().join("sel.parquet");
    let (doc, _) = convert_dataset(&tmp.path().join("m3"), &sel, &["--where", "fs == 128"]);
    assert_eq!(doc["records_written"], 2, "{doc}");
    let rows = crate::edf::read_columns(&sel);
    assert!(
        rows == crate::edf::read_columns(&sel_ref),
        "--where rows differ from the same records converted"
    );
    assert_eq!(
        rows["record"],
        [
            Some("chb01/chb01_01.edf".to_string()),
            Some("chb01/chb01_02.edf".to_string())
        ]
    );
    let whole: Vec<String> = gets(&s, SLUG)
        .into_iter()
        .filter(|(p, r)| {
            p.ends_with(".edf")
                && !r
                    .as_deref()
                    .is_some_and(|r| r.starts_with("bytes=0-2") || r.starts_with("bytes=256-"))
        })
        .map(|(p, _)| p)
        .collect();
    assert_eq!(whole, ["chb01/chb01_01.edf", "chb01/chb01_02.edf"]);
}

#[test]
fn edf_plan_without_server_range_support_reads_the_header_from_the_whole_body() {
    let files = chbmit_like();
    let s = serve(SLUG, &files);
    let tmp = tempfile::tempdir().unwrap();
    let ranged = ls(&s, SLUG, &tmp.path().join("a"), &[]);
    s.disable_ranges();
    s.clear_log();
    let mirror = tmp.path().join("b");
    let whole = ls(&s, SLUG, &mirror, &[]);
    assert_eq!(whole["records"], ranged["records"]);
    // The server answered 200 with whole files; still nothing but RECORDS is stored.
    assert!(
        s.log()
            .iter()
            .filter(|l| l.path.ends_with(".edf"))
            .all(|l| l.status == 200)
    );
    let version_dir = mirror.join(SLUG).join(VERSION);
    assert!(version_dir.join("RECORDS").is_file());
    assert!(!version_dir.join("chb01").exists());
}
