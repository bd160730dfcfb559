//! Issue 14 (WFDB half): what `rdsamp`/`rdann` of the WFDB C library show, kept.
//!
//! * Annotations: every field `rdann` shows, nested and as the flat
//!   `--annotations-table`, read back with pyarrow and DuckDB and compared field by
//!   field with wfdb-python's `rdann` (`scripts/check_annotations.py`).
//! * Frame semantics of WFDB C 10.7.0 (`lib/signal.c` `meansamp`): an oversampled
//!   frame's value is its mean rounded half up, invalid when any sample is, in every
//!   dtype. The expected values are derived here from the raw bytes of the signal file
//!   (not from physio's reader), and the reference's own outputs (`rdsamp` 10.5.24
//!   targets, which truncate) are reproduced with the older rule.
//! * `--dtype i32` is lossless for formats 24, 32 and 524; `info --json` reports
//!   `sig_len` null when the header omits it; errors say their cause once; a directory
//!   without records is an error, not an empty dataset.

use std::path::Path;
use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type};
use arrow_array::{ArrayRef, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use physio::wfdb::RecordReader;
use physio::wfdb::frame::{FrameMean, frame_mean};

use crate::common::{conformance_dir, have_python_modules, physio, python, repo_root};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn records() -> std::path::PathBuf {
    conformance_dir().join("records")
}

/// All rows of a Parquet file as one batch.
fn read_parquet(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// A numeric column as f64 values (NaN kept), whatever its integer or float type.
fn values(col: &ArrayRef) -> Vec<f64> {
    match col.data_type() {
        arrow_schema::DataType::Int16 => col
            .as_primitive::<Int16Type>()
            .values()
            .iter()
            .map(|&x| f64::from(x))
            .collect(),
        arrow_schema::DataType::Int32 => col
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .map(|&x| f64::from(x))
            .collect(),
        arrow_schema::DataType::Float32 => col
            .as_primitive::<Float32Type>()
            .values()
            .iter()
            .map(|&x| f64::from(x))
            .collect(),
        arrow_schema::DataType::Float16 => col
            .as_primitive::<Float16Type>()
            .values()
            .iter()
            .map(|x| x.to_f64())
            .collect(),
        arrow_schema::DataType::Float64 => col.as_primitive::<Float64Type>().values().to_vec(),
        arrow_schema::DataType::Int64 => col
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .map(|&x| x as f64)
            .collect(),
        other => panic!("unexpected column type {other:?}"),
    }
}

fn convert(args: &[&str]) {
    let out = physio().arg("convert").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "convert {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_record(from: &Path, to: &Path, files: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for f in files {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

#[test]
fn issue14_annotations_match_rdann_field_by_field() {
    if !have_python_modules(&["wfdb", "pyarrow", "duckdb"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    copy_record(
        &records(),
        &root,
        &[
            "100.hea",
            "100.dat",
            "100.atr",
            "100.qrs",
            "12726.hea",
            "12726.anI",
            "12726.wqrs",
        ],
    );
    // 12726 comes without its signal file: zeros of the header's size stand in for
    // it (3 signals of format 16, 825,000 frames), so the record converts.
    std::fs::write(root.join("12726.dat"), vec![0u8; 825_000 * 3 * 2]).unwrap();
    // (annotator, record holding it, annotations rdann returns)
    let cases = [
        ("atr", "100", 2274),
        ("qrs", "100", 2273),
        ("anI", "12726", 22),
        ("wqrs", "12726", 3653),
    ];
    for (ext, record, count) in cases {
        let nested = dir.path().join(format!("{ext}.parquet"));
        let table = dir.path().join(format!("{ext}-table.parquet"));
        convert(&[
            s(&root),
            "--to",
            "parquet",
            "--out",
            s(&nested),
            "--annotations",
            ext,
            "--annotations-table",
            s(&table),
            "--signals",
            if record == "100" { "MLII" } else { "ECG" },
            "--records",
            record,
        ]);
        let out = Command::new(python())
            .arg(repo_root().join("scripts/check_annotations.py"))
            .args([s(&nested), s(&table), s(&root), ext, record])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "check_annotations.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["mismatches"], serde_json::json!([]), "{ext}");
        // pyarrow table, DuckDB table and the nested column each hold every annotation.
        assert_eq!(v["annotations"], 3 * count, "{ext}");
        assert_eq!(v["checked"], 3 * 8 * count, "{ext}");
    }
    // The `.anI` notes sit on channel 255 with their text in aux: both kept.
    let t = read_parquet(&dir.path().join("anI-table.parquet"));
    let chan = t
        .column_by_name("chan")
        .unwrap()
        .as_primitive::<Int16Type>();
    assert!(chan.values().iter().all(|&c| c == 255));
    let aux = t.column_by_name("aux").unwrap().as_string::<i32>();
    assert_eq!(aux.value(0), "Initiate slow tilt up");
}

/// test01_00s_frame: signal ECG_2 has 2 samples per frame in `test01_00s.dat`
/// (format 16; per frame ECG_1, ECG_2 ×2, ECG_3: 4 int16 words). Returns the ECG_2
/// sample pairs of every frame, read straight from the bytes.
fn ecg2_pairs(dat: &[u8]) -> Vec<[i32; 2]> {
    let word = |i: usize| i32::from(i16::from_le_bytes([dat[2 * i], dat[2 * i + 1]]));
    (0..dat.len() / 8)
        .map(|f| [word(4 * f + 1), word(4 * f + 2)])
        .collect()
}

/// The WFDB C 10.7.0 frame mean, written out independently of physio's:
/// `floor((a + b + 1) / 2)`, or the invalid value when either sample is invalid.
fn wfdb_10_7_mean(p: [i32; 2]) -> Option<i64> {
    if p.contains(&-32768) {
        return None;
    }
    Some((i64::from(p[0]) + i64::from(p[1]) + 1).div_euclid(2))
}

#[test]
fn issue14_frame_means_follow_wfdb_c_in_every_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    copy_record(
        &records(),
        &root,
        &["test01_00s_frame.hea", "test01_00s.dat"],
    );
    // Two frames get one invalid sample each (the issue: -32768 averaged with 40 must
    // not become a valid-looking -16364).
    let mut dat = std::fs::read(root.join("test01_00s.dat")).unwrap();
    for (frame, k) in [(10usize, 1usize), (20, 2)] {
        let at = 2 * (4 * frame + k);
        dat[at..at + 2].copy_from_slice(&i16::MIN.to_le_bytes());
    }
    std::fs::write(root.join("test01_00s.dat"), &dat).unwrap();
    let pairs = ecg2_pairs(&dat);
    assert_eq!(pairs.len(), 4000);
    let want: Vec<Option<i64>> = pairs.iter().map(|&p| wfdb_10_7_mean(p)).collect();
    assert_eq!(want.iter().filter(|w| w.is_none()).count(), 2);
    // The rule matters on this record: 10.5.24's truncation and the old
    // half-away-from-zero rounding each differ from it on many frames.
    let valid: Vec<([i32; 2], i64)> = pairs
        .iter()
        .zip(&want)
        .filter_map(|(p, w)| w.map(|w| (*p, w)))
        .collect();
    let truncating = valid
        .iter()
        .filter(|(p, w)| i64::from(p[0] + p[1]) / 2 != *w)
        .count();
    let away = valid
        .iter()
        .filter(|(p, w)| (f64::from(p[0] + p[1]) / 2.0).round() as i64 != *w)
        .count();
    assert!(truncating > 100 && away > 100, "{truncating} {away}");

    for dtype in ["i16", "i32", "f32", "f16"] {
        let out = dir.path().join(format!("{dtype}.parquet"));
        convert(&[
            s(&root),
            "--to",
            "parquet",
            "--out",
            s(&out),
            "--layout",
            "samples",
            "--dtype",
            dtype,
        ]);
        let b = read_parquet(&out);
        let col = b.column_by_name("ECG_2").unwrap();
        let got = values(col);
        assert_eq!(got.len(), 4000, "{dtype}");
        for (f, (g, w)) in got.iter().zip(&want).enumerate() {
            let expect = match (dtype, w) {
                ("i16" | "i32", None) => -32768.0,
                (_, None) => f64::NAN,
                ("i16" | "i32", Some(m)) => *m as f64,
                // gain 100, baseline 0: the physical value of the digital mean.
                ("f32", Some(m)) => f64::from((*m as f64 / 100.0) as f32),
                (_, Some(m)) => f64::from(half::f16::from_f64(*m as f64 / 100.0)),
            };
            assert!(
                *g == expect || (g.is_nan() && expect.is_nan()),
                "{dtype} frame {f}: got {g}, want {expect} from {:?}",
                pairs[f]
            );
        }
    }
}

#[test]
fn issue14_multi_segment_frame_means_use_each_segment() {
    // 041s: two segments of mimicdb/041 (format 212, III/I/V at 4 samples per frame).
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.parquet");
    convert(&[
        s(&records()),
        "--to",
        "parquet",
        "--out",
        s(&all),
        "--records",
        "041s",
        "--dtype",
        "i32",
    ]);
    let rec = read_parquet(&all);
    let signal = rec
        .column_by_name("signal")
        .unwrap()
        .as_list::<i32>()
        .value(0);
    let signal = signal.as_list::<i32>();
    let gains = rec
        .column_by_name("gain")
        .unwrap()
        .as_list::<i32>()
        .value(0);
    let gains = values(&gains);
    let baselines = rec
        .column_by_name("baseline")
        .unwrap()
        .as_list::<i32>()
        .value(0);
    let baselines = values(&baselines);
    let mut samples = Vec::new();
    for dtype in ["i32", "f32"] {
        let out = dir.path().join(format!("s-{dtype}.parquet"));
        convert(&[
            s(&records()),
            "--to",
            "parquet",
            "--out",
            s(&out),
            "--records",
            "041s",
            "--layout",
            "samples",
            "--dtype",
            dtype,
        ]);
        samples.push(read_parquet(&out));
    }
    let mut checked = 0;
    for (j, name) in ["III", "I", "V"].iter().enumerate() {
        let every: Vec<i32> = signal
            .value(j)
            .as_primitive::<Int32Type>()
            .values()
            .to_vec();
        assert_eq!(every.len(), 2000 * 4);
        let digital = values(samples[0].column_by_name(name).unwrap());
        let physical = values(samples[1].column_by_name(name).unwrap());
        for (f, frame) in every.chunks(4).enumerate() {
            let invalid = frame.contains(&-2048);
            let sum: i64 = frame.iter().map(|&x| i64::from(x)).sum();
            let mean = (sum + 2).div_euclid(4);
            if invalid {
                assert_eq!(digital[f], -2048.0, "{name} {f}");
                assert!(physical[f].is_nan(), "{name} {f}");
            } else {
                assert_eq!(digital[f], mean as f64, "{name} {f}");
                let want = ((mean as f64 - baselines[j]) / gains[j]) as f32;
                assert_eq!(physical[f], f64::from(want), "{name} {f}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 3 * 2000);
}

#[test]
fn issue14_reference_targets_are_reproduced_with_their_release_rule() {
    // `rdsamp` of WFDB C 10.5.24 (the release wfdb-python's targets were made with)
    // truncates; physio's library keeps that rule selectable so such targets can be
    // reproduced: the first frame of mimicdb/041 from WFDB's own change log.
    for (frame, v105, v107) in [
        ([-59, -60, -60, -60], -59, -60),
        ([265, 287, 265, 265], 270, 271),
        ([23, 23, 23, 23], 23, 23),
    ] {
        assert_eq!(frame_mean(&frame, FrameMean::Wfdb10_5), v105);
        assert_eq!(frame_mean(&frame, FrameMean::Wfdb10_7), v107);
    }
}

#[test]
fn issue14_i32_keeps_formats_24_32_and_524_lossless() {
    let dir = tempfile::tempdir().unwrap();
    // (record, its format-32 signal, if any)
    for (record, wide) in [("binformats", Some(9usize)), ("flacformats", None)] {
        let out = dir.path().join(format!("{record}.parquet"));
        convert(&[
            s(&records()),
            "--to",
            "parquet",
            "--out",
            s(&out),
            "--records",
            record,
            "--dtype",
            "i32",
        ]);
        let b = read_parquet(&out);
        let row = b
            .column_by_name("signal")
            .unwrap()
            .as_list::<i32>()
            .value(0);
        let row = row.as_list::<i32>();
        let reader = RecordReader::open(&records().join(record)).unwrap();
        let want = reader.read_digital(0..reader.n_frames()).unwrap();
        for (j, w) in want.iter().enumerate() {
            let got = row.value(j);
            assert_eq!(
                got.as_primitive::<Int32Type>().values().to_vec(),
                *w,
                "{record} {j}"
            );
        }
        // The format-32 signal goes past 2^24, where float32 cannot hold every value.
        if let Some(j) = wide {
            assert!(want[j].iter().any(|&x| x.unsigned_abs() > 1 << 24));
        }
        // int16 is refused for them, pointing at i32.
        let out16 = dir.path().join(format!("{record}-16.parquet"));
        let o = physio()
            .args([
                "convert",
                s(&records()),
                "--to",
                "parquet",
                "--out",
                s(&out16),
            ])
            .args(["--records", record, "--dtype", "i16"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("use --dtype i32"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn issue14_info_reports_sig_len_null_when_the_header_omits_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("r.hea"),
        "r 1 250\nr.dat 16 200/mV 16 0 0 0 0 x\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("r.dat"), [0u8; 20]).unwrap();
    let out = physio()
        .args(["info", "--json"])
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sig_len"], serde_json::Value::Null);
    assert_eq!(v["n_samples"], 10);
    if have_python_modules(&["wfdb"]) {
        // wfdb-python's rdheader says the same.
        let code = format!(
            "import wfdb; print(wfdb.rdheader({:?}).sig_len)",
            s(&dir.path().join("r"))
        );
        let py = Command::new(python()).args(["-c", &code]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), "None");
    }
}

#[test]
fn issue14_errors_name_the_file_and_the_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = physio()
        .arg("info")
        .arg(dir.path().join("x.edf"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("x.edf").count(), 1, "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn issue14_convert_without_records_fails_saying_what_it_found() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("notes.txt"), "x").unwrap();
    std::fs::write(input.join("labels.csv"), "a,b").unwrap();
    std::fs::write(input.join("more.csv"), "a,b").unwrap();
    let out_path = dir.path().join("out.parquet");
    let out = physio()
        .args([
            "convert",
            s(&input),
            "--to",
            "parquet",
            "--out",
            s(&out_path),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no WFDB or EDF records in"), "{err}");
    assert!(
        err.contains("3 file(s)") && err.contains("2 *.csv"),
        "{err}"
    );
    assert!(!out_path.exists(), "an empty dataset was written");

    // Records there, but none matching --records: also an error, also nothing written.
    let out = physio()
        .args([
            "convert",
            s(&records()),
            "--to",
            "parquet",
            "--out",
            s(&out_path),
        ])
        .args(["--records", "no-such-record"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("none matching --records no-such-record"),
        "{err}"
    );
    assert!(!out_path.exists());

    // A record whose signal file is missing: named with its cause, nothing written.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("r.hea"), "r 1 250 10\nr.dat 16\n").unwrap();
    let out = physio()
        .args([
            "convert",
            s(&broken),
            "--to",
            "parquet",
            "--out",
            s(&out_path),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("r.dat: No such file or directory"), "{err}");
    assert!(err.contains("no readable records in"), "{err}");
    assert!(!out_path.exists(), "an empty dataset was written");
}

#[test]
fn issue14_high_resolution_samples_repeat_slower_signals_as_rdsamp_h() {
    // 041s: III, I, V at 4 samples per frame, ABP, PAP, PLETH, RESP at 1.
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.parquet");
    convert(&[
        s(&records()),
        "--to",
        "parquet",
        "--out",
        s(&all),
        "--records",
        "041s",
        "--dtype",
        "i32",
    ]);
    let rec = read_parquet(&all);
    let signal = rec
        .column_by_name("signal")
        .unwrap()
        .as_list::<i32>()
        .value(0);
    let signal = signal.as_list::<i32>();
    let hi = dir.path().join("hi.parquet");
    convert(&[
        s(&records()),
        "--to",
        "parquet",
        "--out",
        s(&hi),
        "--records",
        "041s",
        "--layout",
        "samples",
        "--dtype",
        "i32",
        "--high-resolution",
    ]);
    let b = read_parquet(&hi);
    assert_eq!(b.num_rows(), 2000 * 4);
    let time = values(b.column_by_name("time").unwrap());
    assert_eq!(time[4], 1.0 / 125.0);
    let names = ["III", "I", "V", "ABP", "PAP", "PLETH", "RESP"];
    let mut highs = Vec::new();
    for (j, name) in names.iter().enumerate() {
        let every: Vec<f64> = signal
            .value(j)
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .map(|&x| f64::from(x))
            .collect();
        let got = values(b.column_by_name(name).unwrap());
        let want: Vec<f64> = if every.len() == 8000 {
            every
        } else {
            every.iter().flat_map(|&x| [x; 4]).collect()
        };
        assert_eq!(got, want, "{name}");
        highs.push(want);
    }
    // Windows of 1 s hold 500 high-resolution samples per channel (4 × 125 Hz).
    let win = dir.path().join("win.parquet");
    convert(&[
        s(&records()),
        "--to",
        "parquet",
        "--out",
        s(&win),
        "--records",
        "041s",
        "--layout",
        "windows",
        "--window",
        "1",
        "--dtype",
        "i32",
        "--high-resolution",
    ]);
    let w = read_parquet(&win);
    assert_eq!(w.num_rows(), 16);
    let starts = values(w.column_by_name("start").unwrap());
    assert_eq!(starts[3], 1500.0);
    let tensor = w.column_by_name("signal").unwrap().as_fixed_size_list();
    assert_eq!(tensor.value_length(), 7 * 500);
    let third = values(&tensor.value(3));
    for (j, want) in highs.iter().enumerate() {
        assert_eq!(
            third[j * 500..(j + 1) * 500],
            want[1500..2000],
            "{}",
            names[j]
        );
    }
    // The record layout keeps every sample already: the option is refused there.
    let o = physio()
        .args(["convert", s(&records()), "--to", "parquet", "--out"])
        .arg(dir.path().join("x.parquet"))
        .args(["--records", "041s", "--high-resolution"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn issue14_wfdb_c_targets_match_when_present() {
    // WFDB C's own outputs cannot be committed here (they come from the wfdb-python and
    // WFDB repositories, and no package on PyPI, npm, crates.io or Debian ships them or
    // the WFDB C tools); with a checkout of either named by these variables, every
    // target is compared (docs/wfdb.md, "A second oracle").
    let mut args: Vec<String> = Vec::new();
    for (var, flag) in [
        ("PHYSIO_WFDB_PYTHON_DIR", "--wfdb-python"),
        ("PHYSIO_WFDB_C_DIR", "--wfdb-c"),
    ] {
        if let Ok(dir) = std::env::var(var) {
            args.extend([flag.to_string(), dir]);
        }
    }
    if args.is_empty() {
        eprintln!("skipping: PHYSIO_WFDB_PYTHON_DIR / PHYSIO_WFDB_C_DIR not set");
        return;
    }
    if !have_python_modules(&["pyarrow"]) {
        return;
    }
    let out = Command::new(python())
        .arg(repo_root().join("scripts/check_wfdb_targets.py"))
        .arg(assert_cmd::cargo::cargo_bin("physio"))
        .args(&args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap();
    assert!(summary["values"].as_u64().unwrap_or(0) > 0, "{text}");
    assert_eq!(summary["failed"], serde_json::json!([]), "{text}");
}

#[test]
fn issue14_annotations_in_their_own_time_resolution_land_on_record_frames() {
    // A 250 Hz record whose annotation file counts in 1000 ticks per second
    // (`## time resolution: 1000`): a beat at tick 4000 is at 4 s, frame 1000, as WFDB
    // C's getann rescales it.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("r.hea"),
        "r 1 250 2000\nr.dat 16 200/mV 16 0 0 0 0 x\n",
    )
    .unwrap();
    std::fs::write(root.join("r.dat"), vec![0u8; 4000]).unwrap();
    let word = |a: u16, i: u16| ((a << 10) | i).to_le_bytes();
    let mut ann = Vec::new();
    let text = b"## time resolution: 1000";
    ann.extend(word(22, 0)); // NOTE at 0: the definition
    ann.extend(word(63, text.len() as u16));
    ann.extend(text);
    ann.extend(word(59, 0)); // SKIP 4000 (high half, then low half)
    ann.extend(0u16.to_le_bytes());
    ann.extend(4000u16.to_le_bytes());
    ann.extend(word(1, 0)); // N
    ann.extend(word(0, 0));
    std::fs::write(root.join("r.atr"), &ann).unwrap();
    let out = dir.path().join("o.parquet");
    let table = dir.path().join("t.parquet");
    convert(&[
        s(&root),
        "--to",
        "parquet",
        "--out",
        s(&out),
        "--annotations",
        "atr",
        "--annotations-table",
        s(&table),
    ]);
    let t = read_parquet(&table);
    assert_eq!(t.num_rows(), 1);
    assert_eq!(values(t.column_by_name("sample").unwrap()), vec![1000.0]);
    assert_eq!(values(t.column_by_name("time").unwrap()), vec![4.0]);
    let symbol = t.column_by_name("symbol").unwrap();
    assert_eq!(symbol.as_string::<i32>().value(0), "N");
}

#[test]
fn issue14_custom_symbols_defined_in_the_file_are_kept() {
    // `## annotation type definitions` NOTEs at sample 0 define code 42 as `Z`; a NOTE
    // later in the file is an annotation like any other and is kept with its text.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("r.hea"),
        "r 1 250 2000\nr.dat 16 200/mV 16 0 0 0 0 x\n",
    )
    .unwrap();
    std::fs::write(root.join("r.dat"), vec![0u8; 4000]).unwrap();
    let word = |a: u16, i: u16| ((a << 10) | i).to_le_bytes();
    let mut ann = Vec::new();
    let note = |ann: &mut Vec<u8>, at: u16, text: &[u8]| {
        ann.extend(word(22, at));
        ann.extend(word(63, text.len() as u16));
        ann.extend(text);
        if text.len() % 2 == 1 {
            ann.push(0);
        }
    };
    note(&mut ann, 0, b"## annotation type definitions");
    note(&mut ann, 0, b"42 Z Zebra beat");
    note(&mut ann, 0, b"## end of definitions");
    ann.extend(word(42, 10)); // Z at 10
    ann.extend(word(61, 3)); // subtype 3
    note(&mut ann, 5, b"lead off"); // NOTE at 15
    ann.extend(word(0, 0));
    std::fs::write(root.join("r.cus"), &ann).unwrap();
    let table = dir.path().join("t.parquet");
    convert(&[
        s(&root),
        "--to",
        "parquet",
        "--out",
        s(&dir.path().join("o.parquet")),
        "--annotations",
        "cus",
        "--annotations-table",
        s(&table),
    ]);
    let t = read_parquet(&table);
    let symbol = t.column_by_name("symbol").unwrap();
    let symbol = symbol.as_string::<i32>();
    let aux = t.column_by_name("aux").unwrap();
    let aux = aux.as_string::<i32>();
    assert_eq!(
        values(t.column_by_name("sample").unwrap()),
        vec![10.0, 15.0]
    );
    assert_eq!((symbol.value(0), symbol.value(1)), ("Z", "\""));
    assert_eq!(values(t.column_by_name("subtype").unwrap()), vec![3.0, 0.0]);
    assert_eq!(aux.value(1), "lead off");
    if have_python_modules(&["wfdb"]) {
        // wfdb-python's rdann reads the same symbols.
        let code = format!(
            "import wfdb; a = wfdb.rdann({:?}, 'cus'); print(a.symbol, [int(x) for x in a.sample])",
            s(&root.join("r"))
        );
        let py = Command::new(python()).args(["-c", &code]).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&py.stdout).trim(),
            "['Z', '\"'] [10, 15]",
            "{}",
            String::from_utf8_lossy(&py.stderr)
        );
    }
}
