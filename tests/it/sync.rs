//! `physio sync`: nightly runs against a changing upstream (a `file://` copy of the
//! fixture mirror that the test edits between "days").

use std::path::Path;

use serde_json::Value;

use crate::common::{physio, repo_root, success_json};

pub(crate) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Rewrites `SHA256SUMS.txt` of an upstream version directory from its files.
pub(crate) fn reseal(version_dir: &Path) {
    use sha2::{Digest, Sha256};
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.file_name().unwrap() != "SHA256SUMS.txt" {
                let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
                let hash = hex::encode(Sha256::digest(std::fs::read(&p).unwrap()));
                out.push(format!("{hash}  {rel}"));
            }
        }
    }
    let mut lines = Vec::new();
    walk(version_dir, version_dir, &mut lines);
    lines.sort_by(|a, b| a[66..].cmp(&b[66..]));
    std::fs::write(version_dir.join("SHA256SUMS.txt"), lines.join("\n") + "\n").unwrap();
}

fn sync(config: &Path, mirror: &Path, extra: &[&str]) -> (Value, i32) {
    let out = physio()
        .arg("sync")
        .arg(config)
        .args(extra)
        .env("PHYSIO_BASE_URL", format!("file://{}", mirror.display()))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "report is not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.code().unwrap())
}

#[test]
fn nightly_sync_fetches_and_reconverts_only_after_upstream_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    copy_tree(&repo_root().join("fixtures/mirror"), &mirror);
    let upstream = mirror.join("files/physio-demo/1.0.0");
    let config = tmp.path().join("sync.toml");
    std::fs::write(
        &config,
        "[[dataset]]\nname = \"physio-demo\"\nout = \"data\"\n\n\
         [dataset.convert]\nout = \"parquet/demo.parquet\"\n",
    )
    .unwrap();
    let parquet = tmp.path().join("parquet/demo.parquet");

    // Day 1: everything is fetched and converted.
    let (day1, code) = sync(&config, &mirror, &[]);
    assert_eq!(code, 0, "{day1:#}");
    let d = &day1["datasets"][0];
    assert_eq!(d["version"], "1.0.0");
    assert_eq!(d["fetch"]["fetched"], d["fetch"]["total_files"]);
    assert_eq!(d["convert"]["status"], "converted");
    assert_eq!(d["convert"]["records_written"], 10);
    let day1_parquet = std::fs::read(&parquet).unwrap();

    // Upstream changes one signal file and adds a record.
    let dat = upstream.join("generated/gen01.dat");
    let mut bytes = std::fs::read(&dat).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&dat, bytes).unwrap();
    let hea = std::fs::read_to_string(upstream.join("generated/gen06.hea")).unwrap();
    std::fs::write(
        upstream.join("generated/gen07.hea"),
        hea.replace("gen06", "gen07"),
    )
    .unwrap();
    std::fs::copy(
        upstream.join("generated/gen06.dat"),
        upstream.join("generated/gen07.dat"),
    )
    .unwrap();
    let records = std::fs::read_to_string(upstream.join("RECORDS")).unwrap();
    std::fs::write(upstream.join("RECORDS"), records + "generated/gen07\n").unwrap();
    reseal(&upstream);

    // Day 2: only the changed and new files move, and only the changed and new records
    // are decoded; the other nine are copied from day 1's Parquet (issue 7).
    let (day2, code) = sync(&config, &mirror, &[]);
    assert_eq!(code, 0, "{day2:#}");
    let d = &day2["datasets"][0];
    assert_eq!(
        d["fetch"]["fetched"], 4,
        "gen01.dat, gen07.hea, gen07.dat, RECORDS: {d:#}"
    );
    assert_eq!(d["convert"]["status"], "converted");
    assert_eq!(d["convert"]["records_written"], 11);
    assert_eq!(d["convert"]["records_converted"], 2, "{d:#}");
    assert_eq!(
        d["convert"]["converted_records"],
        serde_json::json!(["generated/gen01", "generated/gen07"])
    );
    assert_eq!(d["convert"]["records_reused"], 9);
    let day2_parquet = std::fs::read(&parquet).unwrap();
    assert_ne!(day2_parquet, day1_parquet);
    // The incremental result is byte for byte a fresh conversion of the day-2 inputs.
    let fresh = tmp.path().join("fresh.parquet");
    let summary = success_json(
        physio()
            .arg("convert")
            .arg(tmp.path().join("data/physio-demo/1.0.0"))
            .args(["--to", "parquet", "--out"])
            .arg(&fresh)
            .args(["--json", "--quiet"]),
    );
    assert_eq!(summary["records_converted"], 11);
    assert_eq!(summary["records_reused"], 0);
    assert!(
        std::fs::read(&fresh).unwrap() == day2_parquet,
        "incremental output differs from a full conversion"
    );

    // Day 3: nothing changed upstream, nothing is transferred or converted.
    let (day3, code) = sync(&config, &mirror, &[]);
    assert_eq!(code, 0);
    let d = &day3["datasets"][0];
    assert_eq!(d["fetch"]["fetched"], 0);
    assert_eq!(d["convert"]["status"], "up_to_date");
    assert!(d.get("upgrade_available").is_none());

    // A new upstream version is reported but not taken without --upgrade.
    copy_tree(&upstream, &mirror.join("files/physio-demo/1.1.0"));
    let (day4, code) = sync(&config, &mirror, &[]);
    assert_eq!(code, 0);
    let d = &day4["datasets"][0];
    assert_eq!(d["version"], "1.0.0");
    assert_eq!(d["upgrade_available"], "1.1.0");
    let (day5, code) = sync(&config, &mirror, &["--upgrade"]);
    assert_eq!(code, 0, "{day5:#}");
    let d = &day5["datasets"][0];
    assert_eq!(d["version"], "1.1.0");
    assert_eq!(d["upgraded_from"], "1.0.0");
    assert_eq!(d["convert"]["status"], "converted");
    assert!(tmp.path().join("data/physio-demo/1.1.0/RECORDS").is_file());
}

#[test]
fn report_file_and_failures_set_the_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    copy_tree(&repo_root().join("fixtures/mirror"), &mirror);
    // Corrupt one upstream file: its checksum no longer matches SHA256SUMS.txt.
    let dat = mirror.join("files/physio-demo/1.0.0/generated/gen02.dat");
    let mut bytes = std::fs::read(&dat).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&dat, bytes).unwrap();
    let config = tmp.path().join("sync.toml");
    std::fs::write(
        &config,
        "[[dataset]]\nname = \"physio-demo\"\nout = \"data\"\n\
         [dataset.convert]\nout = \"pq\"\n\n\
         [[dataset]]\nname = \"no-such-dataset\"\nout = \"data\"\n",
    )
    .unwrap();
    let report_path = tmp.path().join("report.json");
    let out = physio()
        .args([
            "sync",
            config.to_str().unwrap(),
            "--report",
            report_path.to_str().unwrap(),
        ])
        .env("PHYSIO_BASE_URL", format!("file://{}", mirror.display()))
        .output()
        .unwrap();
    assert!(out.stdout.is_empty(), "report goes to the file only");
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let first = &report["datasets"][0];
    assert_eq!(first["fetch"]["exit_code"], 4, "{first:#}");
    assert_eq!(first["convert"]["status"], "skipped");
    let second = &report["datasets"][1];
    assert_eq!(second["fetch"]["status"], "failed", "{second:#}");
    // The run exits with the most serious failure: the checksum mismatch.
    assert_eq!(report["exit_code"], 4);
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn malformed_config_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("sync.toml");
    std::fs::write(&config, "[[dataset]]\nnmae = \"typo\"\n").unwrap();
    let out = physio().arg("sync").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nmae"));
}
