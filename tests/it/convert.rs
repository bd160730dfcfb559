//! `physio convert --to parquet`: every layout read back by real readers (pyarrow and
//! DuckDB) and compared with what wfdb-python reads from the same records; partial
//! failure, `--fail-fast`, determinism across `--jobs`, atomic output; `--dtype f16`
//! compared with a float16 tolerance; `--incremental` against a full conversion.

use std::path::{Path, PathBuf};
use std::process::Command;

use physio::wfdb::{SignalFormat, WriteSignal, write_record};

use crate::common::{conformance_dir, have_python_modules, physio, python, success_json};

const READERS: &[&str] = &["pyarrow", "duckdb", "wfdb", "numpy"];

/// Reads a physio Parquet output with pyarrow and DuckDB and compares every value with
/// wfdb-python. argv: OUT LAYOUT ROOT DTYPE [WINDOW_LEN STRIDE PAD]; prints "checked N".
const CHECK: &str = r#"
import glob, json, math, os, sys
import duckdb, numpy as np, pyarrow.parquet as pq, wfdb

out, layout, root, dtype = sys.argv[1:5]
files = [out] if out.endswith(".parquet") else sorted(glob.glob(os.path.join(out, "*.parquet")))
table = pq.read_table(files[0] if len(files) == 1 else out)
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")  # it draws on stdout under load
src = f"read_parquet({files!r})"
assert con.execute(f"select count(*) from {src}").fetchone()[0] == table.num_rows

def same(a, b, exact=True):
    a = np.asarray(a, dtype=np.float32); b = np.asarray(b, dtype=np.float32)
    assert a.shape == b.shape, (a.shape, b.shape)
    nan = np.isnan(a)
    assert (nan == np.isnan(b)).all(), "NaN positions differ"
    if exact:
        assert (a[~nan] == b[~nan]).all(), np.abs(a[~nan] - b[~nan]).max()
    else:
        assert np.allclose(a[~nan], b[~nan], rtol=1e-6, atol=1e-6)

def near16(a, b):
    # float16 output against wfdb's float64 values: within rtol 1e-3 plus half a
    # float16 ulp at the expected value (the rounding float16 itself adds).
    a = np.asarray(a, dtype=np.float64); b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    nan = np.isnan(b)
    assert (nan == np.isnan(a)).all(), "NaN positions differ"
    a, b = a[~nan], b[~nan]
    half_ulp = np.spacing(np.abs(b).astype(np.float16)).astype(np.float64) / 2
    err = np.abs(a - b) - (1e-3 * np.abs(b) + half_ulp)
    assert (err <= 0).all(), err.max()

def read(name, smooth):
    path = os.path.join(root, name)
    try:
        return wfdb.rdrecord(path, physical=True, smooth_frames=smooth)
    except Exception:
        # wfdb 4.3.1 cannot read format 61 with smooth_frames=False; with one sample
        # per frame both modes give the same values.
        return wfdb.rdrecord(path, physical=True, smooth_frames=True)

def chans(rec):
    if getattr(rec, "e_p_signal", None) is not None:
        return [np.asarray(x) for x in rec.e_p_signal]
    return [rec.p_signal[:, j] for j in range(rec.n_sig)]

checked = 0
if layout == "record":
    if dtype == "f16":
        assert str(table.schema.field("signal").type.value_type.value_type) == "halffloat"
    rows = table.to_pylist()
    duck = {r: f for r, f in con.execute(f"select record, flatten(signal) from {src}").fetchall()}
    for row in rows:
        if row["record"].endswith(".edf"):
            continue  # EDF records have their own oracles (tests/it/edf.rs)
        rec = read(row["record"], False)
        assert row["sig_name"] == rec.sig_name, (row["sig_name"], rec.sig_name)
        assert abs(row["fs"] - rec.fs) < 1e-9 and row["n_samples"] == rec.sig_len
        want = chans(rec)
        if dtype == "i16":
            got = [(np.asarray(d, dtype=np.float64) - b) / g
                   for d, g, b in zip(row["signal"], row["gain"], row["baseline"])]
            invalid = [np.asarray(d) == -32768 for d in row["signal"]]
            got = [np.where(i, np.nan, x) for x, i in zip(got, invalid)]
        else:
            got = [np.asarray(x, dtype=np.float32) for x in row["signal"]]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            near16(g, w) if dtype == "f16" else same(g, w)
        # DuckDB reads FLOAT16 as FLOAT (duckdb 2.0.1, scripts/requirements-test.txt);
        # widening float16 is exact, so its values equal pyarrow's for f16 as well.
        flat = np.concatenate([np.asarray(x, dtype=np.float32) for x in row["signal"]]) if dtype != "i16" else None
        if flat is not None:
            same(np.asarray(duck[row["record"]], dtype=np.float32), flat)
        checked += 1
elif layout == "samples":
    names = table.column("record").to_pylist()
    signal_cols = [c for c in table.column_names if c not in ("record", "sample", "time")]
    for name in sorted(set(names)):
        rec = read(name, True)
        idx = [i for i, n in enumerate(names) if n == name]
        sub = table.take(idx)
        assert sub.column("sample").to_pylist() == list(range(rec.sig_len))
        for col in signal_cols:
            j = rec.sig_name.index(col.rsplit("_", 1)[0] if col not in rec.sig_name else col)
            same(sub.column(col).to_numpy(zero_copy_only=False), rec.p_signal[:, j], exact=False)
            duck = con.execute(f'select "{col}" from {src} where record = ? order by sample', [name]).fetchnumpy()[col]
            same(np.asarray(duck, dtype=np.float32), sub.column(col).to_numpy(zero_copy_only=False))
        checked += 1
elif layout == "windows":
    win, stride, pad = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7] == "pad"
    col = table.column("signal")
    import pyarrow as pa
    assert isinstance(col.type, pa.FixedShapeTensorType), col.type
    tensor = col.combine_chunks().to_numpy_ndarray()
    meta = json.loads(pq.read_metadata(files[0]).metadata[b"physio.sig_name"])
    names = table.column("record").to_pylist()
    starts = table.column("start").to_pylist()
    duck = con.execute(f"select record, start, signal from {src}").fetchall()
    assert len(duck) == len(names)
    for k, (name, start) in enumerate(zip(names, starts)):
        rec = read(name, True)
        want = np.full((len(meta), win), np.nan)
        end = min(start + win, rec.sig_len)
        for c, sig in enumerate(meta):
            want[c, : end - start] = rec.p_signal[start:end, rec.sig_name.index(sig)]
        same(tensor[k], want)
        checked += 1
    assert [d[1] for d in duck] == starts
    same(np.asarray(duck[-1][2], dtype=np.float32), tensor[-1].reshape(-1))
print("checked", checked)
"#;

fn check(out: &Path, layout: &str, root: &Path, dtype: &str, window: &[&str]) -> usize {
    let o = Command::new(python())
        .arg("-c")
        .arg(CHECK)
        .arg(out)
        .arg(layout)
        .arg(root)
        .arg(dtype)
        .args(window)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "reader check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // wfdb-python may print warnings of its own; the count is on the last line.
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("checked "))
        .next_back()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no 'checked N' in {stdout:?}"))
}

/// Writes a small PTB-XL-like corpus: `records100/0000K/0000N_lr`, 3 leads at 100 Hz,
/// format 16 (with an invalid sample) and 212; records 2k+1 and 2k+2 have
/// 1000 + 37k frames.
fn generated_corpus(root: &Path, n_records: usize) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..n_records {
        let dir_rel = format!("records100/{:05}", i / 2 * 1000);
        let name = format!("{:05}_lr", i + 1);
        let dir = root.join(&dir_rel);
        std::fs::create_dir_all(&dir).unwrap();
        let n_frames = 1000 + 37 * (i / 2) as u64;
        let format = if i % 2 == 0 {
            SignalFormat::from_code(16).unwrap()
        } else {
            SignalFormat::from_code(212).unwrap()
        };
        let signals: Vec<WriteSignal> = ["I", "II", "V1"]
            .iter()
            .enumerate()
            .map(|(j, s)| WriteSignal {
                name: s.to_string(),
                units: "mV".to_string(),
                format,
                adc_gain: 1000.0 + j as f64,
                baseline: j as i64 * 3,
                adc_res: if i % 2 == 0 { 16 } else { 12 },
                samps_per_frame: 1,
                file_name: format!("{name}.dat"),
                digital: (0..n_frames as i64)
                    .map(|t| {
                        if i % 2 == 0 && j == 1 && t == 7 {
                            -32768
                        } else {
                            (((t * (j as i64 + 3) + i as i64 * 11) % 1800) - 900) as i32
                        }
                    })
                    .collect(),
            })
            .collect();
        write_record(&dir, &name, 100.0, n_frames, &signals).unwrap();
        names.push(format!("{dir_rel}/{name}"));
    }
    let list = names.join("\n") + "\n";
    std::fs::write(root.join("RECORDS"), list).unwrap();
    names
}

fn convert(args: &[&str]) -> assert_cmd::assert::Assert {
    physio().arg("convert").args(args).assert()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn conformance_records_convert_and_match_wfdb_python() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("conf.parquet");
    let records = conformance_dir().join("records");
    // The two header-only records (no signal files) fail by name; the rest convert
    // (test_generator_2.edf too, an EDF record beside its WFDB twin).
    let assert = convert(&[s(&records), "--to", "parquet", "--out", s(&out)]).code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("skipped 12726"), "{stderr}");
    assert!(
        stderr.contains("skipped n8_evoked_raw_95_F1_R9"),
        "{stderr}"
    );
    assert!(stderr.contains("2 record(s) failed"), "{stderr}");
    assert!(out.is_file());
    if have_python_modules(READERS) {
        assert_eq!(check(&out, "record", &records, "f32", &[]), 10);
    }
}

#[test]
fn fail_fast_stops_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("conf.parquet");
    let records = conformance_dir().join("records");
    convert(&[s(&records), "--out", s(&out), "--fail-fast"]).code(1);
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn record_layout_of_generated_corpus_in_f32_f16_and_i16() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ptbxl");
    generated_corpus(&root, 6);
    for dtype in ["f32", "f16", "i16"] {
        let out = dir.path().join(format!("out-{dtype}"));
        convert(&[s(&root), "--out", s(&out), "--dtype", dtype]).success();
        assert!(out.join("part-00000.parquet").is_file());
        if have_python_modules(READERS) {
            assert_eq!(check(&out, "record", &root, dtype, &[]), 6);
        }
    }
}

#[test]
fn samples_layout_matches_wfdb_python() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ptbxl");
    generated_corpus(&root, 3);
    let out = dir.path().join("samples");
    convert(&[
        s(&root),
        "--out",
        s(&out),
        "--layout",
        "samples",
        "--signals",
        "V1,I",
        "--row-group-rows",
        "500",
    ])
    .success();
    if have_python_modules(READERS) {
        assert_eq!(check(&out, "samples", &root, "f32", &[]), 3);
    }
}

#[test]
fn windows_layout_is_a_fixed_shape_tensor_matching_wfdb_python() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ptbxl");
    generated_corpus(&root, 4);
    let out = dir.path().join("w.parquet");
    convert(&[
        s(&root),
        "--out",
        s(&out),
        "--layout",
        "windows",
        "--window",
        "2.5",
        "--stride",
        "2",
        "--pad",
        "--records",
        "records100/*/0000[1-3]_lr",
    ])
    .success();
    if have_python_modules(READERS) {
        // 1000, 1000, 1037 frames; windows of 250 every 200, padded tail: 5 + 5 + 5.
        assert_eq!(
            check(&out, "windows", &root, "f32", &["250", "200", "pad"]),
            15
        );
    }
}

#[test]
fn output_is_identical_whatever_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ptbxl");
    generated_corpus(&root, 8);
    let mut outputs: Vec<Vec<u8>> = Vec::new();
    for jobs in ["1", "2", "4"] {
        let out = dir.path().join(format!("j{jobs}.parquet"));
        convert(&[
            s(&root),
            "--out",
            s(&out),
            "--jobs",
            jobs,
            "--row-group-rows",
            "3",
        ])
        .success();
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}

#[test]
fn bad_record_is_named_and_the_rest_converts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ptbxl");
    let names = generated_corpus(&root, 4);
    // Truncate one record's signal file.
    let dat: PathBuf = root.join(format!("{}.dat", names[2]));
    let bytes = std::fs::read(&dat).unwrap();
    std::fs::write(&dat, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.path().join("o");
    let assert = convert(&[s(&root), "--out", s(&out), "--json"]).code(1);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["records_written"], 3);
    assert_eq!(summary["failed"][0]["record"], names[2].as_str());
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains(&format!("skipped {}", names[2])),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let records = conformance_dir().join("records");
    let out = dir.path().join("o.parquet");
    convert(&[s(&records), "--out", s(&out), "--layout", "windows"]).code(2);
    convert(&[s(&records), "--out", s(&out), "--records", "a["]).code(2);
    convert(&[s(&records), "--out", s(&out), "--metadata", "x.csv"]).code(2);
    convert(&[s(&records), "--out", s(&out), "--shard", "3/2"]).code(2);
    assert!(!out.exists());
}

#[test]
fn annotations_and_metadata_join_into_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let records = conformance_dir().join("records");
    let csv = dir.path().join("labels.csv");
    std::fs::write(&csv, "rec,label,weight\n100,normal,71.5\na103l,alarm,\n").unwrap();
    let out = dir.path().join("ann.parquet");
    convert(&[
        s(&records.join("100.hea")),
        "--out",
        s(&out),
        "--annotations",
        "atr",
        "--metadata",
        s(&csv),
        "--key",
        "rec",
    ])
    .success();
    if !have_python_modules(READERS) {
        return;
    }
    let code = r#"
import sys, pyarrow.parquet as pq, wfdb
t = pq.read_table(sys.argv[1]).to_pylist()
assert len(t) == 1 and t[0]["record"] == "100"
assert t[0]["label"] == "normal" and t[0]["weight"] == 71.5, t[0]
ann = wfdb.rdann(sys.argv[2], "atr")
got = t[0]["annotations"]
assert [a["sample"] for a in got] == list(ann.sample), "samples differ"
assert [a["symbol"] for a in got] == list(ann.symbol), "symbols differ"
assert [a["aux"] for a in got] == [x.rstrip("\x00") for x in ann.aux_note], "aux differs"
print("ok", len(got))
"#;
    let o = Command::new(python())
        .args(["-c", code])
        .arg(&out)
        .arg(records.join("100"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn ptbxl_preset_labels_records_by_filename() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ptbxl");
    let names = generated_corpus(&root, 3);
    let mut db =
        String::from("ecg_id,patient_id,age,scp_codes,strat_fold,filename_lr,filename_hr\n");
    for (i, n) in names.iter().enumerate() {
        db.push_str(&format!(
            "{},{}.0,{},\"{{'NORM': 100.0, 'SR': 0.0}}\",{},{n},{}\n",
            i + 1,
            1000 + i,
            50 + i,
            i + 1,
            n.replace("records100", "records500").replace("_lr", "_hr")
        ));
    }
    std::fs::write(root.join("ptbxl_database.csv"), db).unwrap();
    std::fs::write(
        root.join("scp_statements.csv"),
        ",description,diagnostic,form,rhythm,diagnostic_class,diagnostic_subclass\n\
         NORM,normal ECG,1.0,,,NORM,NORM\nSR,sinus rhythm,,,1.0,,\n",
    )
    .unwrap();
    let out = dir.path().join("labels.parquet");
    convert(&[s(&root), "--out", s(&out), "--preset", "ptb-xl"]).success();
    if !have_python_modules(READERS) {
        return;
    }
    let code = r#"
import sys, duckdb
rows = duckdb.sql(f"select record, ecg_id, strat_fold, scp_codes['NORM'], diagnostic_superclass from read_parquet('{sys.argv[1]}') order by record").fetchall()
assert [r[1] for r in rows] == [1, 2, 3], rows
assert [r[2] for r in rows] == [1, 2, 3], rows
assert all(r[3] == 100.0 and r[4] == ["NORM"] for r in rows), rows
print("ok")
"#;
    let o = Command::new(python())
        .args(["-c", code])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn training_example_loads_every_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ptbxl");
    generated_corpus(&root, 4);
    // Same-length records for the [N, C, S] stack of the record layout.
    let same = ["--records", "records100/*/0000[12]_lr"];
    let cases: Vec<(&str, Vec<&str>, serde_json::Value)> = vec![
        (
            "rec-f32",
            vec![same[0], same[1]],
            serde_json::json!([2, 3, 1000]),
        ),
        (
            "rec-i16.parquet",
            vec![same[0], same[1], "--dtype", "i16"],
            serde_json::json!([2, 3, 1000]),
        ),
        (
            "win",
            vec!["--layout", "windows", "--window", "3", "--stride", "3"],
            serde_json::json!([12, 3, 300]),
        ),
    ];
    for (name, extra, shape) in cases {
        let out = dir.path().join(name);
        let mut args = vec![s(&root), "--out", s(&out)];
        args.extend(extra.iter().copied());
        convert(&args).success();
        if !have_python_modules(READERS) {
            continue;
        }
        let mut cmd = Command::new(python());
        cmd.arg(crate::common::repo_root().join("scripts/load_example.py"))
            .arg(&out);
        if !name.starts_with("win") {
            cmd.arg("--check").arg(&root);
        }
        let o = cmd.output().unwrap();
        assert!(
            o.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let summary: serde_json::Value =
            serde_json::from_slice(&o.stdout).expect("load_example prints JSON");
        assert_eq!(summary["shape"], shape, "{name}");
        assert_eq!(summary["dtype"], "float32", "{name}");
        if !name.contains("i16") {
            assert_eq!(summary["zero_copy"], true, "{name}");
        }
    }
}

#[test]
fn samples_and_windows_of_multi_segment_records_match_wfdb_python() {
    // s25047-...: variable layout, a leading gap, gains that differ between segments,
    // a signal present in only some segments; 100: 650,000 frames of format 212.
    let dir = tempfile::tempdir().unwrap();
    let records = conformance_dir().join("records");
    for name in ["s25047-2704-05-04-10-44", "100"] {
        let samples = dir.path().join(format!("{name}-samples"));
        convert(&[
            s(&records),
            "--out",
            s(&samples),
            "--layout",
            "samples",
            "--records",
            name,
        ])
        .success();
        let windows = dir.path().join(format!("{name}-windows.parquet"));
        convert(&[
            s(&records),
            "--out",
            s(&windows),
            "--layout",
            "windows",
            "--window",
            "30",
            "--records",
            name,
        ])
        .success();
        if have_python_modules(READERS) {
            assert_eq!(check(&samples, "samples", &records, "f32", &[]), 1);
            let fs = if name == "100" { 360 } else { 125 };
            let len = (30 * fs).to_string();
            assert!(check(&windows, "windows", &records, "f32", &[&len, &len, "drop"]) > 0);
        }
    }
}

#[test]
fn interrupted_convert_leaves_no_file_at_the_final_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ptbxl");
    generated_corpus(&root, 200);
    let bin = assert_cmd::cargo::cargo_bin("physio");
    let mut killed = 0;
    for delay_ms in [5u64, 30, 100, 400] {
        let out = dir.path().join(format!("o{delay_ms}.parquet"));
        let mut child = Command::new(&bin)
            .args(["convert", s(&root), "--out", s(&out), "--jobs", "1", "-q"])
            .args(["--row-group-rows", "1"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if out.exists() {
            // The run got as far as its rename (the kill may still land before the
            // process exits): whatever is at the final path must be complete.
            let bytes = std::fs::read(&out).unwrap();
            assert_eq!(&bytes[..4], b"PAR1", "{}", out.display());
            assert_eq!(&bytes[bytes.len() - 4..], b"PAR1", "{}", out.display());
            let file = std::fs::File::open(&out).unwrap();
            parquet::file::reader::SerializedFileReader::new(file)
                .unwrap_or_else(|e| panic!("{} is not a whole Parquet file: {e}", out.display()));
        } else {
            assert!(!status.success(), "a successful run must leave its output");
            killed += 1;
        }
    }
    // At least the earliest kill must land mid-run, or the test proves nothing.
    assert!(killed > 0, "every run finished before it was killed");
}

/// Runs `physio convert ... --json` and returns its summary.
fn convert_json(args: &[&str]) -> serde_json::Value {
    success_json(physio().arg("convert").args(args).arg("--json"))
}

/// `(file name, bytes)` of every Parquet file in `dir`, by name.
fn parquet_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn incremental_convert_of_parts_and_shards_equals_a_full_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ptbxl");
    generated_corpus(&root, 12);
    let small = ["--row-group-rows", "2", "--max-file-bytes", "15000"];
    let shardings: [&[&str]; 3] = [&[], &["--shard", "0/2"], &["--shard", "1/2"]];
    let run = |out: &Path, shard: &[&str], incremental: bool| {
        let mut args = vec![s(&root), "--out", s(out)];
        args.extend(small);
        args.extend(shard);
        if incremental {
            args.push("--incremental");
        }
        convert_json(&args)
    };
    let (all, sharded) = (dir.path().join("all"), dir.path().join("sharded"));
    for shard in shardings {
        let out = if shard.is_empty() { &all } else { &sharded };
        let day1 = run(out, shard, true);
        assert_eq!(day1["records_reused"], 0, "{day1:#}");
    }
    assert!(parquet_files(&all).len() > 2, "several parts");
    assert!(parquet_files(&sharded).len() > 3, "several parts per shard");

    // A new record, and one changed signal file.
    let names = generated_corpus(&root, 13);
    let changed = &names[4];
    let dat = root.join(format!("{changed}.dat"));
    let mut bytes = std::fs::read(&dat).unwrap();
    bytes[40] ^= 0x10;
    std::fs::write(&dat, bytes).unwrap();

    let mut converted: Vec<String> = Vec::new();
    let mut reused = 0;
    for shard in shardings {
        let out = if shard.is_empty() { &all } else { &sharded };
        let day2 = run(out, shard, true);
        if shard.is_empty() {
            assert_eq!(
                day2["converted_records"],
                serde_json::json!([changed, names[12]]),
                "{day2:#}"
            );
            assert_eq!(day2["records_reused"], 11);
        } else {
            converted.extend(
                day2["converted_records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_string()),
            );
            reused += day2["records_reused"].as_u64().unwrap();
        }
    }
    converted.sort();
    assert_eq!(converted, [changed.clone(), names[12].clone()]);
    assert_eq!(reused, 11);

    // The same inputs converted from scratch give the same files, byte for byte.
    let (all_full, sharded_full) = (dir.path().join("all-full"), dir.path().join("sharded-full"));
    for shard in shardings {
        let out = if shard.is_empty() {
            &all_full
        } else {
            &sharded_full
        };
        let full = run(out, shard, false);
        assert_eq!(full["records_reused"], 0);
    }
    assert!(parquet_files(&all) == parquet_files(&all_full));
    assert!(parquet_files(&sharded) == parquet_files(&sharded_full));

    // Nothing changed since: every row group's encoded column chunks are copied (none
    // is decoded or encoded), and the files still equal the full conversion's.
    let mut copied = 0;
    for shard in shardings {
        let out = if shard.is_empty() { &all } else { &sharded };
        let day3 = run(out, shard, true);
        assert_eq!(day3["records_converted"], 0, "{day3:#}");
        copied += day3["row_groups_copied"].as_u64().unwrap();
    }
    assert_eq!(copied, row_groups(&all) + row_groups(&sharded));
    assert!(parquet_files(&all) == parquet_files(&all_full));
    assert!(parquet_files(&sharded) == parquet_files(&sharded_full));
}

/// Row groups in the `.parquet` files of `dir`, read from their footers.
fn row_groups(dir: &Path) -> u64 {
    parquet_files(dir)
        .iter()
        .map(|(_, bytes)| {
            parquet::file::metadata::ParquetMetaDataReader::new()
                .parse_and_finish(&bytes::Bytes::from(bytes.clone()))
                .unwrap()
                .num_row_groups() as u64
        })
        .sum()
}

#[test]
fn incremental_convert_decodes_everything_when_the_metadata_csv_changes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ptbxl");
    let names = generated_corpus(&root, 4);
    let csv = dir.path().join("labels.csv");
    let rows = |label: &str| {
        let mut t = "name,label\n".to_string();
        for n in &names {
            t.push_str(&format!("{},{label}\n", n.rsplit('/').next().unwrap()));
        }
        t
    };
    std::fs::write(&csv, rows("a")).unwrap();
    let out = dir.path().join("m.parquet");
    let args = [
        s(&root),
        "--out",
        s(&out),
        "--metadata",
        s(&csv),
        "--key",
        "name",
        "--incremental",
    ];
    convert_json(&args);
    let again = convert_json(&args);
    assert_eq!(
        (&again["records_converted"], &again["records_reused"]),
        (&serde_json::json!(0), &serde_json::json!(4))
    );
    // The joined labels change though no WFDB file did: nothing old can be copied.
    std::fs::write(&csv, rows("b")).unwrap();
    let changed = convert_json(&args);
    assert_eq!(changed["records_converted"], 4, "{changed:#}");
    assert_eq!(changed["records_reused"], 0);
    let full = dir.path().join("full.parquet");
    convert_json(&[
        s(&root),
        "--out",
        s(&full),
        "--metadata",
        s(&csv),
        "--key",
        "name",
    ]);
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&full).unwrap());
}

#[test]
fn incremental_convert_notices_a_changed_segment_file() {
    // 041s is a multi-segment record: its inputs include the segment headers and their
    // signal files, so editing one segment's samples re-decodes just that record.
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records");
    std::fs::create_dir_all(&records).unwrap();
    for e in std::fs::read_dir(conformance_dir().join("records")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, records.join(p.file_name().unwrap())).unwrap();
        }
    }
    let run = |out: &Path, incremental: bool| {
        let mut args = vec![s(&records), "--out", s(out), "--row-group-rows", "1"];
        for r in ["041s", "binformats", "flacformats", "test01_00s_frame"] {
            args.extend(["--records", r]);
        }
        if incremental {
            args.push("--incremental");
        }
        convert_json(&args)
    };
    let out = dir.path().join("inc");
    assert_eq!(run(&out, true)["records_written"], 4);
    let dat = records.join("041s02.dat");
    let mut bytes = std::fs::read(&dat).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&dat, bytes).unwrap();
    let day2 = run(&out, true);
    assert_eq!(
        day2["converted_records"],
        serde_json::json!(["041s"]),
        "{day2:#}"
    );
    assert_eq!(day2["records_reused"], 3);
    let full = dir.path().join("full");
    assert_eq!(run(&full, false)["records_converted"], 4);
    assert!(parquet_files(&out) == parquet_files(&full));
}
