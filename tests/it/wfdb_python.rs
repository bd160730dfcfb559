//! Cross-check with wfdb-python: records written by `wfdb.wrsamp` (every format it
//! writes, several signals per file, several samples per frame, odd lengths, NaNs) are
//! read bit-exactly, and records written by physio's writer are read by
//! `wfdb.rdrecord` to the same digital and physical values. Driven by
//! `scripts/wfdbpy_roundtrip.py`; skipped when wfdb/numpy are missing (unless
//! `PHYSIO_REQUIRE_PY=1`).

use std::path::Path;
use std::process::Command;

use physio::wfdb::{RecordReader, SignalFormat, WriteSignal, write_record};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{have_python_modules, python, repo_root};

fn script(args: &[&std::ffi::OsStr]) -> Value {
    let out = Command::new(python())
        .arg(repo_root().join("scripts/wfdbpy_roundtrip.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "wfdbpy_roundtrip.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sha_i32(v: &[i32]) -> String {
    let mut h = Sha256::new();
    v.iter().for_each(|x| h.update(x.to_le_bytes()));
    hex::encode(h.finalize())
}

fn sha_f64(v: &[f64]) -> String {
    let mut h = Sha256::new();
    for x in v {
        if x.is_nan() {
            h.update([0, 0, 0, 0, 0, 0, 0xf8, 0x7f]);
        } else {
            h.update(x.to_le_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// Compares our reading of `dir/name` with wfdb-python's digests.
fn compare(dir: &Path, name: &str, want: &Value) {
    let rec = RecordReader::open(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(rec.n_frames(), want["sig_len"].as_u64().unwrap(), "{name}");
    let d = rec.read_digital(0..rec.n_frames()).unwrap();
    let p = rec.read_physical(0..rec.n_frames()).unwrap();
    let sigs = want["signals"].as_array().unwrap();
    assert_eq!(sigs.len(), d.len(), "{name}");
    for (j, s) in sigs.iter().enumerate() {
        assert_eq!(rec.signals()[j].name, s["name"].as_str().unwrap(), "{name}");
        assert_eq!(
            d[j].len() as u64,
            s["n_samples"].as_u64().unwrap(),
            "{name} {j}"
        );
        assert_eq!(
            sha_i32(&d[j]),
            s["sha256_i32le"],
            "{name} signal {j} digital"
        );
        assert_eq!(
            sha_f64(&p[j]),
            s["sha256_f64le"],
            "{name} signal {j} physical"
        );
    }
}

#[test]
fn records_written_by_wfdb_python_read_bit_exactly() {
    if !have_python_modules(&["wfdb", "numpy"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let want = script(&["write".as_ref(), dir.path().as_os_str()]);
    let records = want.as_object().unwrap();
    // 80/212/16/24/32 (+ FLAC 508/516/524 when soundfile is installed), mixed, spf.
    assert!(records.len() >= 8, "{records:?}");
    let formats: std::collections::HashSet<SignalFormat> = records
        .keys()
        .flat_map(|n| {
            RecordReader::open(&dir.path().join(n))
                .unwrap()
                .signals()
                .to_vec()
        })
        .filter_map(|s| s.format)
        .collect();
    for f in [
        SignalFormat::F16,
        SignalFormat::F212,
        SignalFormat::F80,
        SignalFormat::F24,
        SignalFormat::F32,
    ] {
        assert!(formats.contains(&f), "no {f} record written");
    }
    for (name, w) in records {
        compare(dir.path(), name, w);
    }
}

#[test]
fn records_written_by_physio_read_identically_by_wfdb_python() {
    if !have_python_modules(&["wfdb", "numpy"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let n_frames = 1003u64;
    let layout: [(SignalFormat, u32, &str, u32); 7] = [
        (SignalFormat::F16, 1, "a.dat", 16),
        (SignalFormat::F16, 2, "a.dat", 16),
        (SignalFormat::F212, 1, "b.dat", 12),
        (SignalFormat::F212, 3, "b.dat", 12),
        (SignalFormat::F80, 1, "c.dat", 8),
        (SignalFormat::F24, 1, "d.dat", 24),
        (SignalFormat::F32, 1, "e.dat", 32),
    ];
    let signals: Vec<WriteSignal> = layout
        .iter()
        .enumerate()
        .map(|(j, &(format, spf, file, res))| {
            let lo = -(1i64 << (res - 1));
            let hi = (1i64 << (res - 1)) - 1;
            let invalid = format.invalid_value().unwrap();
            let digital = (0..n_frames * u64::from(spf))
                .map(|_| {
                    if rng.u8(..) < 5 {
                        invalid
                    } else {
                        rng.i64(lo + 1..=hi) as i32
                    }
                })
                .collect();
            WriteSignal {
                name: format!("sig{j}"),
                units: if j % 2 == 0 {
                    "mV".into()
                } else {
                    "mmHg".into()
                },
                format,
                adc_gain: [200.0, 12.5, 1e3, 0.3][j % 4],
                baseline: j as i64 * 3 - 5,
                adc_res: res,
                samps_per_frame: spf,
                file_name: file.into(),
                digital,
            }
        })
        .collect();
    write_record(dir.path(), "ours", 360.0, n_frames, &signals).unwrap();
    let path = dir.path().join("ours");
    let got = script(&["read".as_ref(), path.as_os_str()]);
    let want = &got["ours"];
    let sigs = want["signals"].as_array().unwrap();
    for (j, s) in signals.iter().enumerate() {
        assert_eq!(
            sha_i32(&s.digital),
            sigs[j]["sha256_i32le"],
            "signal {j} digital"
        );
        let phys = physio::wfdb::signal::to_physical(&s.digital, s.format, s.baseline, s.adc_gain);
        assert_eq!(
            sha_f64(&phys),
            sigs[j]["sha256_f64le"],
            "signal {j} physical"
        );
    }
    // And our reader agrees with both.
    compare(dir.path(), "ours", want);
}
