//! EDF and EDF+ (issue 14): `physio info` and `physio convert` on `.edf` files against
//! independent readers. `scripts/edf_oracle.py` writes EDF/EDF+ files (several rates
//! with annotations, plain EDF, a blank channel, EDF+D with a gap) and compares
//! physio's Parquet and `info --json` with pyedflib, MNE and wfdb-python's EDF reader,
//! also on pyedflib's shipped test files and the corpus's `test_generator_2.edf`.
//! Python checks skip when the readers are missing, unless `PHYSIO_REQUIRE_PY=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use physio::convert::{DatasetOpener, SourceOpener};
use physio::edf::EdfReader;
use physio::wfdb::RecordReader;
use serde_json::Value;

use crate::common::{
    conformance_dir, have_python_modules, physio, python, repo_root, success_json,
};

const READERS: [&str; 5] = ["pyedflib", "mne", "wfdb", "pyarrow", "numpy"];

fn oracle(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(python())
        .arg(repo_root().join("scripts/edf_oracle.py"))
        .args(args)
        .output()
        .expect("run edf_oracle.py")
}

/// The generated files plus pyedflib's shipped test EDF files and the corpus's EDF+.
fn oracle_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = oracle(&["gen".as_ref(), dir.path().as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = Command::new(python())
        .args([
            "-c",
            "import os, pyedflib; print(os.path.join(os.path.dirname(pyedflib.__file__), 'tests', 'data'))",
        ])
        .output()
        .unwrap();
    let data = PathBuf::from(String::from_utf8_lossy(&data.stdout).trim());
    for f in ["test_generator.edf", "test_subsecond.edf", "test_utf8.edf"] {
        std::fs::copy(data.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::copy(corpus_edf(), dir.path().join("test_generator_2.edf")).unwrap();
    dir
}

fn corpus_edf() -> PathBuf {
    conformance_dir().join("records/test_generator_2.edf")
}

#[test]
fn edf_files_match_pyedflib_mne_and_wfdb_python() {
    if !have_python_modules(&READERS) {
        return;
    }
    let dir = oracle_dir();
    let bin = assert_cmd::cargo::cargo_bin("physio");
    let out = oracle(&["check".as_ref(), bin.as_os_str(), dir.path().as_os_str()]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(report["errors"], Value::Array(vec![]), "{report:#}");
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["files"], 8);
    let c = &report["compared"];
    // Every file was compared value by value, and each feature was exercised.
    for (key, want) in [
        ("test_generator.edf", "1320000 values vs pyedflib"),
        ("test_generator_2.edf", "1320000 values vs MNE"),
        ("multirate.edf", "3850 values vs pyedflib"),
        ("plain.edf", "1500 values vs pyedflib"),
        ("blank.edf", "512 values vs MNE"),
        ("discontinuous.edf", "24 values vs MNE"),
        ("test_subsecond.edf", "89344 values vs pyedflib"),
    ] {
        assert_eq!(c[key], want, "{report:#}");
    }
    assert_eq!(c["discontinuous.edf gap samples"], 20);
    assert_eq!(c["multirate.edf annotations"], 3);
    assert_eq!(c["test_utf8.edf annotations"], 5);
}

#[test]
fn edf_annotation_time_and_duration_match_pyedflib() {
    if !have_python_modules(&READERS) {
        return;
    }
    let dir = oracle_dir();
    let opener = DatasetOpener::new(dir.path());
    let mut checked = 0;
    for name in ["multirate.edf", "test_subsecond.edf", "test_utf8.edf"] {
        let out = oracle(&["annotations".as_ref(), dir.path().join(name).as_os_str()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want: Value = serde_json::from_slice(&out.stdout).unwrap();
        let want = want["annotations"].as_array().unwrap();
        let got = opener.annotations(name, "edf").unwrap().unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        for (g, w) in got.iter().zip(want) {
            // edflib keeps onsets in units of 100 ns.
            assert!(
                (g.time - w[0].as_f64().unwrap()).abs() <= 1e-7,
                "{name}: {g:?} {w}"
            );
            match (g.duration, w[1].as_f64()) {
                (None, None) => {}
                (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-7, "{name}: {g:?} {w}"),
                _ => panic!("{name}: duration {g:?} vs {w}"),
            }
            assert_eq!(g.aux, w[2].as_str().unwrap(), "{name}");
            assert_eq!((g.symbol.as_str(), g.subtype, g.chan, g.num), ("", 0, 0, 0));
            checked += 1;
        }
    }
    assert_eq!(checked, 3 + 4 + 5);
}

/// The corpus's EDF+ file and its WFDB twin (converted by wfdb-python's `edf2mit`,
/// whose values `wfdb_conformance` checks) hold the same digital samples; the twin
/// keeps the annotation signal as a 12th signal and one frame per data record.
#[test]
fn corpus_edf_digital_values_equal_its_wfdb_twin() {
    let edf = EdfReader::open(&corpus_edf()).unwrap();
    let twin = RecordReader::open(&conformance_dir().join("records/test_generator_2")).unwrap();
    assert_eq!((edf.fs(), edf.n_frames()), (200.0, 120_000));
    let d = edf.read_digital(0..edf.n_frames()).unwrap();
    let t = twin.read_digital(0..twin.n_frames()).unwrap();
    assert_eq!(d.len(), 11);
    for j in 0..11 {
        assert_eq!(d[j], t[j], "signal {j}");
    }
    // A range read equals the slice of the whole.
    let part = edf.read_digital(12_345..67_890).unwrap();
    assert_eq!(part[3], d[3][12_345..67_890]);
}

#[test]
fn info_json_reports_the_edf_header() {
    let v = success_json(physio().arg("info").arg(corpus_edf()).arg("--json"));
    assert_eq!(v["record_name"], "test_generator_2");
    assert_eq!(v["n_sig"], 11);
    assert_eq!(v["fs"], 200.0);
    assert_eq!(v["sig_len"], 120_000);
    assert_eq!(v["base_date"], "2009-12-10");
    assert_eq!(v["base_time"], "12:44:02");
    assert_eq!(v["sig_name"][0], "squarewave");
    assert_eq!(v["sig_name"][10], "sine 50 Hz");
    assert_eq!(v["units"][0], "uV");
    assert_eq!(v["samps_per_frame"], serde_json::json!(vec![1; 11]));
    let e = &v["edf"];
    assert_eq!(e["variant"], "EDF+C");
    assert_eq!(e["n_records"], 600);
    assert_eq!(e["record_duration"], 1.0);
    assert_eq!(
        e["recording_id"],
        "Startdate 10-DEC-2009 X X test_generator"
    );
    // EDF+ 2.1.3: `_` in a subfield stands for a space.
    assert_eq!(e["recording"]["equipment"], "test generator");
    assert_eq!(e["signals"].as_array().unwrap().len(), 12);
    assert_eq!(e["signals"][11]["label"], "EDF Annotations");
    assert_eq!(e["signals"][11]["samples_per_record"], 51);
    assert_eq!(e["signals"][0]["physical_min"], -1000.0);
    assert_eq!(e["signals"][0]["digital_max"], 32767);
    // The readable summary names the file and its flavour.
    let out = physio().arg("info").arg(corpus_edf()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("Record test_generator_2.edf (EDF+C)"),
        "{text}"
    );
}

#[test]
fn convert_reads_edf_and_wfdb_records_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let records = conformance_dir().join("records");
    for f in [
        "test_generator_2.hea",
        "test_generator_2.dat",
        "test_generator_2.edf",
    ] {
        std::fs::copy(records.join(f), dir.path().join(f)).unwrap();
    }
    let out = dir.path().join("o.parquet");
    physio()
        .arg("convert")
        .arg(dir.path())
        .args(["--to", "parquet", "--out"])
        .arg(&out)
        .args(["--annotations", "edf"])
        .assert()
        .success();
    let rows = read_rows(&out);
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(names, ["test_generator_2", "test_generator_2.edf"]);
    assert_eq!(rows[0].1, 1.0); // the WFDB twin: one frame per data record
    assert_eq!((rows[1].1, rows[1].2), (200.0, 120_000));
    // One EDF file given directly converts the same way.
    let one = dir.path().join("one.parquet");
    physio()
        .arg("convert")
        .arg(dir.path().join("test_generator_2.edf"))
        .args(["--to", "parquet", "--out"])
        .arg(&one)
        .assert()
        .success();
    assert_eq!(read_rows(&one)[0].0, "test_generator_2.edf");
}

/// `(record, fs, n_samples)` of every row.
fn read_rows(path: &Path) -> Vec<(String, f64, i64)> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let rec = b.column_by_name("record").unwrap().as_string::<i32>();
        let fs = b
            .column_by_name("fs")
            .unwrap()
            .as_primitive::<Float64Type>();
        let n = b
            .column_by_name("n_samples")
            .unwrap()
            .as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            rows.push((rec.value(i).to_string(), fs.value(i), n.value(i)));
        }
    }
    rows
}

#[test]
fn truncated_or_lying_edf_is_named_once_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(corpus_edf()).unwrap();
    std::fs::write(dir.path().join("short.edf"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(dir.path().join("ok.edf"), &bytes).unwrap();
    let mut liar = bytes.clone();
    liar[252..256].copy_from_slice(b"9999"); // more signals than the file has bytes for
    std::fs::write(dir.path().join("liar.edf"), &liar).unwrap();
    let out = dir.path().join("o.parquet");
    let res = physio()
        .arg("convert")
        .arg(dir.path())
        .args(["--to", "parquet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    // The CLI names the skipped record, the error its file; the cause comes once.
    assert_eq!(err.matches("short.edf").count(), 2, "{err}");
    assert_eq!(err.matches("truncated").count(), 1, "{err}");
    assert!(
        err.contains("liar.edf: header: header bytes: 3328, but 9999 signals"),
        "{err}"
    );
    assert_eq!(read_rows(&out).len(), 1);
    // info names the file and the cause, once.
    let res = physio()
        .arg("info")
        .arg(dir.path().join("short.edf"))
        .output()
        .unwrap();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(err.matches("truncated").count(), 1, "{err}");
}
