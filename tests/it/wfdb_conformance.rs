//! Conformance: every record and annotation file in `fixtures/conformance/` must
//! reproduce `expected.json` (wfdb-python 4.3.1's results) exactly — header fields,
//! per-signal digests of digital samples, invalid counts, physical values, multi-segment
//! combined reads and annotations. Any difference fails, and every difference found is
//! listed (not just the first).

use std::collections::BTreeMap;
use std::path::Path;

use physio::wfdb::{self, RecordReader, SignalFormat};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::conformance_dir;

fn expected() -> Value {
    let text = std::fs::read_to_string(conformance_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Collects differences instead of stopping at the first.
#[derive(Default)]
struct Diffs(Vec<String>, usize);

impl Diffs {
    fn eq(&mut self, ctx: &str, field: &str, got: &Value, want: &Value) {
        self.1 += 1;
        if !json_eq(got, want) {
            self.0
                .push(format!("{ctx}: {field}: got {got}, want {want}"));
        }
    }
}

/// JSON equality where numbers compare as numbers (1 == 1.0) and floats within a few
/// ulps (serde_json's float parser is not guaranteed to be correctly rounded; exactness
/// of physical values is checked by the SHA-256 of their bits instead).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return x == y;
            }
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn sha256_hex(bytes: impl IntoIterator<Item = [u8; 8]>) -> String {
    let mut h = Sha256::new();
    for b in bytes {
        h.update(b);
    }
    hex::encode(h.finalize())
}

fn sha256_i32(v: &[i32]) -> String {
    let mut h = Sha256::new();
    for x in v {
        h.update(x.to_le_bytes());
    }
    hex::encode(h.finalize())
}

fn first_last5<T: Clone + Into<Value>>(v: &[T]) -> (Value, Value) {
    let first: Vec<Value> = v.iter().take(5).cloned().map(Into::into).collect();
    let last: Vec<Value> = v[v.len().saturating_sub(5)..]
        .iter()
        .cloned()
        .map(Into::into)
        .collect();
    (Value::Array(first), Value::Array(last))
}

fn float_or_null(x: f64) -> Value {
    if x.is_nan() { Value::Null } else { json!(x) }
}

/// Per-signal digital fields shared by single entries and multi `combined.digital`.
fn digital_fields(d: &[i32], format: Option<SignalFormat>) -> BTreeMap<&'static str, Value> {
    let invalid = format.and_then(SignalFormat::invalid_value);
    let (f5, l5) = first_last5(d);
    let sum: i64 = d.iter().map(|&x| i64::from(x)).sum();
    BTreeMap::from([
        ("n_samples", json!(d.len())),
        ("sha256_i32le", json!(sha256_i32(d))),
        ("min", json!(d.iter().min())),
        ("max", json!(d.iter().max())),
        ("sum", json!(sum)),
        ("first5", f5),
        ("last5", l5),
        ("invalid_value", json!(invalid)),
        (
            "n_invalid",
            json!(invalid.map(|bad| d.iter().filter(|&&x| x == bad).count())),
        ),
    ])
}

/// Header fields every record kind carries, straight from `physio`'s wfdb-python view.
const RECORD_FIELDS: [&str; 9] = [
    "record_name",
    "n_sig",
    "fs",
    "counter_freq",
    "base_counter",
    "sig_len",
    "base_time",
    "base_date",
    "comments",
];
const SIGNAL_FIELDS: [&str; 14] = [
    "sig_name",
    "file_name",
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
];

fn check_header_fields(diffs: &mut Diffs, ctx: &str, path: &Path, want: &Value, signals: bool) {
    let header = match wfdb::read_header(path) {
        Ok(h) => h,
        Err(e) => {
            diffs.0.push(format!("{ctx}: header: {e}"));
            return;
        }
    };
    // sig_len: wfdb-python derives it from the file size when the header lacks it.
    let n_frames = RecordReader::open(path).ok().map(|r| r.n_frames());
    let got = header.wfdb_python_fields(n_frames);
    for f in RECORD_FIELDS {
        diffs.eq(ctx, f, &got[f], &want[f]);
    }
    if signals {
        for f in SIGNAL_FIELDS {
            diffs.eq(ctx, f, &got[f], &want[f]);
        }
    }
    if want.get("seg_name").is_some() {
        for f in ["n_seg", "seg_name", "seg_len"] {
            diffs.eq(ctx, f, &got[f], &want[f]);
        }
        let layout = if header.segments.as_ref().unwrap()[0].len == 0 {
            "variable"
        } else {
            "fixed"
        };
        diffs.eq(ctx, "layout", &json!(layout), &want["layout"]);
    }
}

fn check_single(diffs: &mut Diffs, ctx: &str, path: &Path, want: &Value) {
    check_header_fields(diffs, ctx, path, want, true);
    let rec = match RecordReader::open(path) {
        Ok(r) => r,
        Err(e) => return diffs.0.push(format!("{ctx}: open: {e}")),
    };
    let digital = match rec.read_digital(0..rec.n_frames()) {
        Ok(d) => d,
        Err(e) => return diffs.0.push(format!("{ctx}: read_digital: {e}")),
    };
    let physical = match rec.read_physical(0..rec.n_frames()) {
        Ok(p) => p,
        Err(e) => return diffs.0.push(format!("{ctx}: read_physical: {e}")),
    };
    let want_sigs = want["signals"].as_array().unwrap();
    if want_sigs.len() != digital.len() {
        diffs.0.push(format!(
            "{ctx}: {} signals read, {} expected",
            digital.len(),
            want_sigs.len()
        ));
        return;
    }
    for (j, ws) in want_sigs.iter().enumerate() {
        let sctx = format!("{ctx} signal {j}");
        let spec = &rec.header().signals[j];
        diffs.eq(
            &sctx,
            "sig_name",
            &json!(rec.signals()[j].name),
            &ws["sig_name"],
        );
        let mut got = digital_fields(&digital[j], Some(spec.format));
        let sum: i64 = digital[j].iter().map(|&x| i64::from(x)).sum();
        got.insert(
            "checksum_computed",
            json!(sum.rem_euclid(65536) as u16 as i16),
        );
        got.insert(
            "checksum_matches_header",
            json!(
                spec.checksum
                    .is_none_or(|c| (sum - c).rem_euclid(65536) == 0)
            ),
        );
        got.insert(
            "physical_first5",
            Value::Array(
                physical[j]
                    .iter()
                    .take(5)
                    .map(|&x| float_or_null(x))
                    .collect(),
            ),
        );
        for (k, v) in got {
            diffs.eq(&sctx, k, &v, &ws[k]);
        }
    }
}

/// Lists wfdb-python reports for a merged record: `null` as a whole where any signal's
/// value differs between segments (wfdb-python drops the attribute).
fn merged_list<T: Into<Value> + Clone>(items: &[Option<T>]) -> Value {
    if items.iter().any(Option::is_none) {
        Value::Null
    } else {
        Value::Array(items.iter().map(|x| x.clone().unwrap().into()).collect())
    }
}

fn check_multi(diffs: &mut Diffs, ctx: &str, dir: &Path, path: &Path, want: &Value) {
    check_header_fields(diffs, ctx, path, want, false);
    assert_eq!(want["read_range"], json!({"sampfrom": 0, "sampto": null}));
    for seg in want["segments"].as_array().unwrap() {
        let seg_path = dir
            .join("records")
            .join(seg["record_name"].as_str().unwrap());
        let sctx = format!("{ctx} segment {}", seg["record_name"]);
        if seg["segment_role"] == "layout" {
            check_header_fields(diffs, &sctx, &seg_path, seg, true);
        } else {
            check_single(diffs, &sctx, &seg_path, seg);
        }
    }
    let rec = match RecordReader::open(path) {
        Ok(r) => r,
        Err(e) => return diffs.0.push(format!("{ctx}: open: {e}")),
    };
    assert!(rec.is_multi_segment());
    let all = 0..rec.n_frames();
    let info = rec.signals();
    let header_lists = |c: &Value, cctx: &str, diffs: &mut Diffs| {
        diffs.eq(cctx, "sig_len", &json!(rec.n_frames()), &c["sig_len"]);
        let names: Vec<&str> = info.iter().map(|s| s.name.as_str()).collect();
        diffs.eq(cctx, "sig_name", &json!(names), &c["sig_name"]);
        let spf: Vec<u32> = info.iter().map(|s| s.samps_per_frame).collect();
        diffs.eq(cctx, "samps_per_frame", &json!(spf), &c["samps_per_frame"]);
        let fmt: Vec<Option<String>> = info
            .iter()
            .map(|s| s.format.map(|f| f.code().to_string()))
            .collect();
        diffs.eq(cctx, "fmt", &merged_list(&fmt), &c["fmt"]);
        let gain: Vec<Option<f64>> = info.iter().map(|s| s.adc_gain).collect();
        diffs.eq(cctx, "adc_gain", &merged_list(&gain), &c["adc_gain"]);
        let base: Vec<Option<i64>> = info.iter().map(|s| s.baseline).collect();
        diffs.eq(cctx, "baseline", &merged_list(&base), &c["baseline"]);
        let units: Vec<&str> = info.iter().map(|s| s.units.as_str()).collect();
        diffs.eq(cctx, "units", &json!(units), &c["units"]);
    };
    let combined = &want["combined"];
    let cd = &combined["digital"];
    match (rec.read_digital(all.clone()), cd.is_null()) {
        (Err(e), true) => {
            // wfdb-python refused too (its message is in digital_error).
            assert!(combined["digital_error"].is_string(), "{ctx}: {e}");
        }
        (Err(e), false) => diffs.0.push(format!("{ctx}: combined digital: {e}")),
        (Ok(_), true) => diffs.0.push(format!(
            "{ctx}: combined digital read succeeded, wfdb-python refuses: {}",
            combined["digital_error"]
        )),
        (Ok(d), false) => {
            header_lists(cd, &format!("{ctx} combined digital"), diffs);
            for (j, ws) in cd["signals"].as_array().unwrap().iter().enumerate() {
                let sctx = format!("{ctx} combined digital signal {j}");
                diffs.eq(&sctx, "sig_name", &json!(info[j].name), &ws["sig_name"]);
                for (k, v) in digital_fields(&d[j], info[j].format) {
                    diffs.eq(&sctx, k, &v, &ws[k]);
                }
            }
        }
    }
    let cp = &combined["physical"];
    let physical = match rec.read_physical(all) {
        Ok(p) => p,
        Err(e) => return diffs.0.push(format!("{ctx}: combined physical: {e}")),
    };
    header_lists(cp, &format!("{ctx} combined physical"), diffs);
    for (j, ws) in cp["signals"].as_array().unwrap().iter().enumerate() {
        let sctx = format!("{ctx} combined physical signal {j}");
        let p = &physical[j];
        let finite: Vec<f64> = p.iter().copied().filter(|x| !x.is_nan()).collect();
        let (f5, l5) = first_last5(p);
        let nan_to_null = |v: Value| {
            Value::Array(
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| float_or_null(x.as_f64().unwrap_or(f64::NAN)))
                    .collect(),
            )
        };
        let hash = sha256_hex(p.iter().map(|&x| {
            if x.is_nan() {
                [0, 0, 0, 0, 0, 0, 0xf8, 0x7f]
            } else {
                x.to_le_bytes()
            }
        }));
        diffs.eq(&sctx, "sig_name", &json!(info[j].name), &ws["sig_name"]);
        diffs.eq(&sctx, "n_samples", &json!(p.len()), &ws["n_samples"]);
        diffs.eq(&sctx, "n_nan", &json!(p.len() - finite.len()), &ws["n_nan"]);
        diffs.eq(&sctx, "sha256_f64le", &json!(hash), &ws["sha256_f64le"]);
        let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        diffs.eq(&sctx, "min", &json!(min), &ws["min"]);
        diffs.eq(&sctx, "max", &json!(max), &ws["max"]);
        // The sum is a float sum (numpy's pairwise order): compare with a tolerance.
        let sum: f64 = finite.iter().sum();
        let want_sum = ws["sum"].as_f64().unwrap();
        if (sum - want_sum).abs() > 1e-9 * want_sum.abs().max(1.0) {
            diffs
                .0
                .push(format!("{sctx}: sum: got {sum}, want {want_sum}"));
        }
        diffs.eq(&sctx, "first5", &nan_to_null(f5), &ws["first5"]);
        diffs.eq(&sctx, "last5", &nan_to_null(l5), &ws["last5"]);
    }
}

fn count<K: ToString>(keys: impl IntoIterator<Item = K>) -> Value {
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    for k in keys {
        *m.entry(k.to_string()).or_default() += 1;
    }
    json!(m)
}

fn check_annotation(diffs: &mut Diffs, dir: &Path, want: &Value) {
    let ctx = want["name"].as_str().unwrap().to_string();
    let path = dir.join(want["file"].as_str().unwrap());
    let file = match wfdb::annotation::read_annotation_file(&path) {
        Ok(f) => f,
        Err(e) => return diffs.0.push(format!("{ctx}: {e}")),
    };
    let anns = &file.annotations;
    let rec_path = path.with_extension("");
    // fs: from the annotation file, else from the record header (wfdb-python rdann).
    let (fs, source) = match file.fs {
        Some(fs) => (Some(fs), Some("annotation_file")),
        None => match wfdb::read_header(&rec_path) {
            Ok(h) => (Some(h.fs), Some("header")),
            Err(_) => (None, None),
        },
    };
    diffs.eq(&ctx, "fs", &json!(fs), &want["fs"]);
    diffs.eq(&ctx, "fs_source", &json!(source), &want["fs_source"]);
    diffs.eq(&ctx, "count", &json!(anns.len()), &want["count"]);
    let samples: Vec<i64> = anns.iter().map(|a| a.sample).collect();
    let hash = sha256_hex(samples.iter().map(|s| s.to_le_bytes()));
    diffs.eq(
        &ctx,
        "sha256_sample_i64le",
        &json!(hash),
        &want["sha256_sample_i64le"],
    );
    let (f5, l5) = first_last5(&samples);
    diffs.eq(&ctx, "sample_first5", &f5, &want["sample_first5"]);
    diffs.eq(&ctx, "sample_last5", &l5, &want["sample_last5"]);
    diffs.eq(
        &ctx,
        "symbol_counts",
        &count(anns.iter().map(|a| &a.symbol)),
        &want["symbol_counts"],
    );
    diffs.eq(
        &ctx,
        "label_store_counts",
        &count(anns.iter().map(|a| a.code)),
        &want["label_store_counts"],
    );
    diffs.eq(
        &ctx,
        "subtype_counts",
        &count(anns.iter().map(|a| a.subtype)),
        &want["subtype_counts"],
    );
    diffs.eq(
        &ctx,
        "chan_counts",
        &count(anns.iter().map(|a| a.chan)),
        &want["chan_counts"],
    );
    diffs.eq(
        &ctx,
        "num_counts",
        &count(anns.iter().map(|a| a.num)),
        &want["num_counts"],
    );
    // wfdb-python builds aux strings with chr() per byte: Latin-1.
    let aux: Vec<String> = anns
        .iter()
        .take(5)
        .map(|a| a.aux.iter().map(|&b| char::from(b)).collect())
        .collect();
    diffs.eq(
        &ctx,
        "aux_note_first5",
        &json!(aux),
        &want["aux_note_first5"],
    );
    let nonempty = anns.iter().filter(|a| !a.aux.is_empty()).count();
    diffs.eq(
        &ctx,
        "n_aux_note_nonempty",
        &json!(nonempty),
        &want["n_aux_note_nonempty"],
    );
    let custom: Vec<Value> = file
        .custom_labels
        .iter()
        .map(|c| json!({"label_store": c.code, "symbol": c.symbol, "description": c.description}))
        .collect();
    let custom = if custom.is_empty() {
        Value::Null
    } else {
        Value::Array(custom)
    };
    diffs.eq(&ctx, "custom_labels", &custom, &want["custom_labels"]);
}

#[test]
fn every_record_matches_wfdb_python() {
    let dir = conformance_dir();
    let exp = expected();
    let mut diffs = Diffs::default();
    let records = exp["records"].as_array().unwrap();
    assert!(
        records.len() >= 12,
        "corpus shrank: {} records",
        records.len()
    );
    for r in records {
        let name = r["name"].as_str().unwrap();
        let path = dir.join(r["path"].as_str().unwrap());
        match r["kind"].as_str().unwrap() {
            "single" => check_single(&mut diffs, name, &path, r),
            "multi" => check_multi(&mut diffs, name, &dir, &path, r),
            "header_only" => check_header_fields(&mut diffs, name, &path, r, true),
            k => panic!("unknown kind {k}"),
        }
    }
    println!("{} record fields compared", diffs.1);
    // Guards against a vacuous pass (e.g. an expected.json without signals).
    assert!(diffs.1 > 2000, "only {} fields compared", diffs.1);
    assert!(
        diffs.0.is_empty(),
        "{} differences:\n{}",
        diffs.0.len(),
        diffs.0.join("\n")
    );
}

#[test]
fn every_annotation_file_matches_wfdb_python() {
    let dir = conformance_dir();
    let exp = expected();
    let mut diffs = Diffs::default();
    let anns = exp["annotations"].as_array().unwrap();
    assert_eq!(anns.len(), 4);
    for a in anns {
        check_annotation(&mut diffs, &dir, a);
    }
    assert!(diffs.1 >= 4 * 14, "only {} fields compared", diffs.1);
    assert!(
        diffs.0.is_empty(),
        "{} differences:\n{}",
        diffs.0.len(),
        diffs.0.join("\n")
    );
}

#[test]
fn corpus_files_are_intact() {
    // The expectations only mean something for the exact bytes they were computed on.
    let dir = conformance_dir();
    let exp = expected();
    for (rel, meta) in exp["files"].as_object().unwrap() {
        let bytes = std::fs::read(dir.join(rel)).unwrap();
        assert_eq!(bytes.len() as u64, meta["bytes"].as_u64().unwrap(), "{rel}");
        assert_eq!(hex::encode(Sha256::digest(&bytes)), meta["sha256"], "{rel}");
    }
}

#[test]
fn stored_checksums_verify_for_every_corpus_record() {
    // Header checksums cover the samples as stored (skew not applied), so every record
    // of the corpus verifies, including test01_00s_skew whose skewed read does not.
    let dir = conformance_dir();
    let exp = expected();
    let mut checked = 0;
    for r in exp["records"].as_array().unwrap() {
        if r["kind"] == "header_only" {
            continue;
        }
        let rec = RecordReader::open(&dir.join(r["path"].as_str().unwrap())).unwrap();
        for c in wfdb::verify_checksums(&rec).unwrap() {
            assert!(c.ok, "{}: {c:?}", r["name"]);
            checked += usize::from(c.expected.is_some());
        }
    }
    assert!(checked > 60, "only {checked} checksums compared");
}

#[test]
fn a_corrupted_sample_fails_its_checksum() {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["100.hea", "100.dat"] {
        std::fs::copy(
            conformance_dir().join("records").join(f),
            tmp.path().join(f),
        )
        .unwrap();
    }
    let dat = tmp.path().join("100.dat");
    let mut bytes = std::fs::read(&dat).unwrap();
    bytes[3000] ^= 0x01; // low bits of one sample of signal 0
    std::fs::write(&dat, bytes).unwrap();
    let rec = RecordReader::open(&tmp.path().join("100")).unwrap();
    let results = wfdb::verify_checksums(&rec).unwrap();
    assert!(!results[0].ok && results[1].ok, "{results:?}");
}
