//! `physio convert --to parquet`: every layout read back by real readers (pyarrow and
//! DuckDB) and compared with what wfdb-python reads from the same records; partial
//! failure, `--fail-fast`, determinism across `--jobs`, atomic output.

use std::path::{Path, PathBuf};
use std::process::Command;

use physio::wfdb::{SignalFormat, WriteSignal, write_record};

use crate::common::{conformance_dir, have_python_modules, physio, python};

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
    rows = table.to_pylist()
    duck = {r: f for r, f in con.execute(f"select record, flatten(signal) from {src}").fetchall()}
    for row in rows:
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
            same(g, w)
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
    stdout
        .trim()
        .strip_prefix("checked ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("expected `checked N`, got stdout {stdout:?}"))
}

/// Writes a small PTB-XL-like corpus: `records100/0000K/0000N_lr`, 3 leads at 100 Hz,
/// format 16 (with an invalid sample) and 212.
fn generated_corpus(root: &Path, n_records: usize) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..n_records {
        let dir_rel = format!("records100/{:05}", i / 2 * 1000);
        let name = format!("{:05}_lr", i + 1);
        let dir = root.join(&dir_rel);
        std::fs::create_dir_all(&dir).unwrap();
        let n_frames = 1000 + 37 * i as u64;
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
    // The two header-only records (no signal files) fail by name; the rest convert.
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
fn record_layout_of_generated_corpus_in_f32_and_i16() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ptbxl");
    generated_corpus(&root, 6);
    for dtype in ["f32", "i16"] {
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
        // 1000, 1037, 1074 frames; windows of 250 every 200, padded tail: 5 + 5 + 6.
        assert_eq!(
            check(&out, "windows", &root, "f32", &["250", "200", "pad"]),
            16
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
