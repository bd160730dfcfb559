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
            // WFDB's NOTE, as wfdb-python's `rdedfann` labels EDF+ annotations.
            assert_eq!(
                (g.symbol.as_str(), g.subtype, g.chan, g.num),
                ("\"", 0, 0, 0)
            );
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

/// Writes an EDF+C file of three 1-s data records: `A` at 4 samples per record, `B`
/// at 2 (so fs 2 Hz, `A` with 2 samples per frame), gain 1 and offset 0 (digital =
/// physical), and an `EDF Annotations` signal with two annotations.
fn write_multirate_edf(path: &Path) {
    fn field(out: &mut Vec<u8>, s: &str, n: usize) {
        let mut b = s.as_bytes().to_vec();
        b.resize(n, b' ');
        out.extend(b);
    }
    let a: [[i16; 4]; 3] = [[1, 2, -1, -2], [10, 11, 12, 13], [0, 0, 5, 6]];
    let b: [[i16; 2]; 3] = [[100, 200], [300, 400], [500, 600]];
    let tals = [
        "+0\x14\x14\x00+0.5\x151.5\x14Apnea\x14\x00",
        "+1\x14\x14\x00",
        "+2\x14\x14\x00+2.25\x14Lights off\x14\x00",
    ];
    let ann_samples = 30;
    let sigs = [("A", 4), ("B", 2), ("EDF Annotations", ann_samples)];
    let mut h = Vec::new();
    field(&mut h, "0", 8);
    field(&mut h, "X X X X", 80);
    field(&mut h, "Startdate 01-JAN-2020 X X X", 80);
    field(&mut h, "01.01.20", 8);
    field(&mut h, "10.00.00", 8);
    field(&mut h, &(256 * (1 + sigs.len())).to_string(), 8);
    field(&mut h, "EDF+C", 44);
    field(&mut h, "3", 8);
    field(&mut h, "1", 8);
    field(&mut h, &sigs.len().to_string(), 4);
    let per = |h: &mut Vec<u8>, f: &dyn Fn(&str, usize) -> String, n: usize| {
        for (label, spr) in sigs {
            field(h, &f(label, spr), n);
        }
    };
    per(&mut h, &|l, _| l.to_string(), 16);
    per(&mut h, &|_, _| String::new(), 80);
    per(
        &mut h,
        &|l, _| if l == "A" { "uV".into() } else { String::new() },
        8,
    );
    per(&mut h, &|_, _| "-32768".into(), 8);
    per(&mut h, &|_, _| "32767".into(), 8);
    per(&mut h, &|_, _| "-32768".into(), 8);
    per(&mut h, &|_, _| "32767".into(), 8);
    per(&mut h, &|_, _| String::new(), 80);
    per(&mut h, &|_, n| n.to_string(), 8);
    per(&mut h, &|_, _| String::new(), 32);
    for r in 0..3 {
        for v in a[r].iter().chain(&b[r]) {
            h.extend(v.to_le_bytes());
        }
        let mut tal = tals[r].as_bytes().to_vec();
        tal.resize(2 * ann_samples, 0);
        h.extend(tal);
    }
    std::fs::write(path, h).unwrap();
}

/// Every column of every row of a Parquet file, as strings (`None` for null), by name.
pub(crate) fn read_columns(path: &Path) -> std::collections::BTreeMap<String, Vec<Option<String>>> {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut cols: std::collections::BTreeMap<String, Vec<Option<String>>> = Default::default();
    for b in reader {
        let b = b.unwrap();
        for (f, c) in b.schema().fields().iter().zip(b.columns()) {
            let col = cols.entry(f.name().clone()).or_default();
            for i in 0..b.num_rows() {
                col.push(c.is_valid(i).then(|| cell(c.as_ref(), i)));
            }
        }
    }
    cols
}

/// One value as text: numbers as Rust prints them (`2.0`, `-1`), strings as they are,
/// lists of integers as `[0, 0]`, anything else (annotation structs) as Arrow's debug
/// output, which holds every field.
fn cell(c: &dyn arrow_array::Array, i: usize) -> String {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Float64Type, Int16Type, Int32Type, Int64Type};
    use arrow_schema::DataType;
    match c.data_type() {
        DataType::Utf8 => c.as_string::<i32>().value(i).to_string(),
        DataType::Int16 => c.as_primitive::<Int16Type>().value(i).to_string(),
        DataType::Int32 => c.as_primitive::<Int32Type>().value(i).to_string(),
        DataType::Int64 => c.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Float32 => format!("{:?}", c.as_primitive::<Float32Type>().value(i)),
        DataType::Float64 => format!("{:?}", c.as_primitive::<Float64Type>().value(i)),
        DataType::List(f) if f.data_type() == &DataType::Int64 => format!(
            "{:?}",
            c.as_list::<i32>()
                .value(i)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        ),
        _ => format!("{:?}", c.slice(i, 1)),
    }
}

fn strings(v: &[&str]) -> Vec<Option<String>> {
    v.iter().map(|s| Some(s.to_string())).collect()
}

/// Issue 14: an EDF file whose channels have different rates is a multi-frequency
/// record, and the WFDB-half options treat it as WFDB records: `samples` holds WFDB
/// C's frame means of the digital samples (halves up) in f32 and i32 alike,
/// `--high-resolution` every sample with slower channels repeated, and
/// `--annotations edf` fills the annotation fields, in the list column and in the flat
/// `--annotations-table`.
#[test]
fn multirate_edf_has_wfdb_frame_semantics_and_flat_annotations() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    write_multirate_edf(&input.join("m.edf"));
    let convert = |out: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        physio()
            .arg("convert")
            .arg(&input)
            .args(["--to", "parquet", "--layout", "samples", "--out"])
            .arg(&out)
            .args(extra)
            .assert()
            .success();
        read_columns(&out)
    };
    // Frame means: (1+2)/2 = 1.5 -> 2, (-1-2)/2 = -1.5 -> -1, 10.5 -> 11, 12.5 -> 13.
    let means = ["2", "-1", "11", "13", "0", "6"];
    let floats = convert("f.parquet", &[]);
    assert_eq!(
        floats["A"],
        strings(&["2.0", "-1.0", "11.0", "13.0", "0.0", "6.0"])
    );
    assert_eq!(
        floats["B"],
        strings(&["100.0", "200.0", "300.0", "400.0", "500.0", "600.0"])
    );
    assert_eq!(
        floats["time"],
        strings(&["0.0", "0.5", "1.0", "1.5", "2.0", "2.5"])
    );
    let ints = convert("i.parquet", &["--dtype", "i32"]);
    assert_eq!(ints["A"], strings(&means));
    assert_eq!(ints["baseline"][0].as_deref(), Some("[0, 0]"));

    // High resolution: 4 Hz, every sample of A, B repeated.
    let hi = convert(
        "h.parquet",
        &[
            "--high-resolution",
            "--dtype",
            "i32",
            "--annotations",
            "edf",
        ],
    );
    assert_eq!(
        hi["A"],
        strings(&[
            "1", "2", "-1", "-2", "10", "11", "12", "13", "0", "0", "5", "6"
        ])
    );
    assert_eq!(
        hi["B"],
        strings(&[
            "100", "100", "200", "200", "300", "300", "400", "400", "500", "500", "600", "600"
        ])
    );
    assert_eq!(hi["time"][3].as_deref(), Some("0.75"));

    // Annotations: onset 0.5 s is frame 1 (high resolution: sample 2); 2.25 s frame 5
    // (round(4.5)), high resolution 10: as for WFDB, the frame number × k
    // (`docs/parquet.md`), not the onset rounded at the high rate (9).
    let table = dir.path().join("ann.parquet");
    let with_ann = convert(
        "a.parquet",
        &[
            "--annotations",
            "edf",
            "--annotations-table",
            table.to_str().unwrap(),
        ],
    );
    let list: Vec<&str> = with_ann["annotations"]
        .iter()
        .map(|a| a.as_deref().unwrap_or("null"))
        .collect();
    assert!(
        list[1].contains("Apnea") && list[5].contains("Lights off"),
        "{list:?}"
    );
    // The other rows' lists are empty (no struct marked valid).
    let non_empty = list.iter().filter(|a| a.contains("  valid,")).count();
    assert_eq!(non_empty, 2, "{list:?}");
    let t = read_columns(&table);
    assert_eq!(t["record"], strings(&["m.edf", "m.edf"]));
    assert_eq!(t["sample"], strings(&["1", "5"]));
    assert_eq!(t["symbol"], strings(&["\"", "\""]));
    assert_eq!(t["subtype"], strings(&["0", "0"]));
    assert_eq!(t["chan"], strings(&["0", "0"]));
    assert_eq!(t["num"], strings(&["0", "0"]));
    assert_eq!(t["aux"], strings(&["Apnea", "Lights off"]));
    assert_eq!(t["time"], strings(&["0.5", "2.25"]));
    assert_eq!(t["duration"], vec![Some("1.5".to_string()), None]);
    let hi_list: Vec<&str> = hi["annotations"]
        .iter()
        .map(|a| a.as_deref().unwrap_or("null"))
        .collect();
    assert!(
        hi_list[2].contains("Apnea") && hi_list[10].contains("Lights off"),
        "{hi_list:?}"
    );
}

/// EDF records go through the library's convert operation like WFDB ones: sharded by
/// record name (each record in exactly one shard) and reused by `--incremental`.
#[test]
fn edf_records_shard_and_convert_incrementally() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    for n in ["a", "b", "c", "d"] {
        write_multirate_edf(&input.join(format!("{n}.edf")));
    }
    let run = |out: &Path, extra: &[&str]| {
        success_json(
            physio()
                .arg("convert")
                .arg(&input)
                .args(["--to", "parquet", "--json", "--out"])
                .arg(out)
                .args(extra),
        )
    };
    let mut names: Vec<String> = Vec::new();
    for i in 0..2 {
        let out = dir.path().join(format!("s{i}"));
        let v = run(&out, &["--shard", &format!("{i}/2")]);
        for n in v["converted_records"].as_array().unwrap() {
            names.push(n.as_str().unwrap().to_string());
        }
    }
    names.sort();
    assert_eq!(names, ["a.edf", "b.edf", "c.edf", "d.edf"]);

    let out = dir.path().join("inc");
    let day1 = run(&out, &["--incremental"]);
    assert_eq!(day1["records_reused"], 0, "{day1:#}");
    let bytes = std::fs::read(input.join("c.edf")).unwrap();
    let mut changed = bytes.clone();
    let at = bytes.len() - 2 * 30 - 2 * 2 - 2; // the last sample of A in record 3
    changed[at] ^= 1;
    std::fs::write(input.join("c.edf"), changed).unwrap();
    let day2 = run(&out, &["--incremental"]);
    assert_eq!(
        day2["converted_records"],
        serde_json::json!(["c.edf"]),
        "{day2:#}"
    );
    assert_eq!(day2["records_reused"], 3, "{day2:#}");
}
