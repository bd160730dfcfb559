//! `physio info`: the JSON keys and values of the contract (wfdb-python's attribute
//! names and read defaults) for every record of the conformance corpus, the readable
//! summary, and errors naming the file.

use serde_json::Value;

use crate::common::{conformance_dir, physio, success_json};

const KEYS: [&str; 23] = [
    "record_name",
    "n_sig",
    "fs",
    "counter_freq",
    "base_counter",
    "sig_len",
    "base_time",
    "base_date",
    "comments",
    "sig_name",
    "fmt",
    "samps_per_frame",
    "skew",
    "byte_offset",
    "adc_gain",
    "baseline",
    "units",
    "adc_res",
    "adc_zero",
    "init_value",
    "checksum",
    "block_size",
    "file_name",
];

fn info_json(record: &std::path::Path) -> Value {
    success_json(physio().arg("info").arg(record).arg("--json"))
}

#[test]
fn json_matches_wfdb_python_for_every_corpus_record() {
    let dir = conformance_dir();
    let exp: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let mut checked = 0;
    for r in exp["records"].as_array().unwrap() {
        let got = info_json(&dir.join(r["path"].as_str().unwrap()));
        let obj = got.as_object().unwrap();
        for k in KEYS {
            assert!(obj.contains_key(k), "{}: key {k} missing", r["name"]);
            // Multi-segment entries carry no per-signal lists in expected.json;
            // wfdb-python's MultiRecord has them as None.
            let want = r.get(k).unwrap_or(&Value::Null);
            assert!(
                crate::wfdb_conformance::json_eq(&got[k], want),
                "{}: {k}: got {}, want {want}",
                r["name"],
                got[k]
            );
            checked += 1;
        }
        if r["kind"] == "multi" {
            for k in ["n_seg", "seg_name", "seg_len", "layout"] {
                assert_eq!(got[k], r[k], "{}: {k}", r["name"]);
            }
        }
    }
    assert!(checked >= 12 * KEYS.len());
}

#[test]
fn accepts_the_hea_path_and_prints_a_summary() {
    let rec = conformance_dir().join("records/100.hea");
    let out = physio().arg("info").arg(&rec).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Record 100",
        "Length: 0:30:05.556 (650000 frames)",
        "Sampling frequency: 360 Hz",
        "2 signals",
        "Description: MLII",
        "Storage format: 212",
        "Baseline: 1024",
        "# Aldomet, Inderal",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let multi = physio()
        .arg("info")
        .arg(conformance_dir().join("records/s25047-2704-05-04-10-44"))
        .output()
        .unwrap();
    let text = String::from_utf8(multi.stdout).unwrap();
    assert!(text.contains("20 segments (variable layout)"), "{text}");
    assert!(text.contains("~ (gap)"), "{text}");
}

#[test]
fn missing_or_bad_header_exits_1_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = physio()
        .arg("info")
        .arg(dir.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.hea"));

    std::fs::write(dir.path().join("bad2.hea"), "bad2 1 250 10\nbad2.dat 99\n").unwrap();
    let out = physio()
        .arg("info")
        .arg(dir.path().join("bad2"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad2.hea:2: format: unsupported signal format 99"),
        "{err}"
    );
}
