//! Bad input never panics: truncated and short signal files, garbage headers,
//! unsupported formats, missing files and segments, corrupt FLAC and annotation files
//! each give a typed error that names the file.

use std::path::{Path, PathBuf};

use physio::wfdb::{self, RecordReader, WfdbError};
use proptest::prelude::*;

use crate::common::conformance_dir;

/// Copies the named corpus files into a fresh directory.
fn copy(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        std::fs::copy(
            conformance_dir().join("records").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    dir
}

fn names(err: &WfdbError, file: &str) {
    assert!(
        err.path().ends_with(file) && err.to_string().contains(file),
        "error does not name {file}: {err}"
    );
}

#[test]
fn truncated_signal_file_is_an_error_naming_it() {
    let dir = copy(&["100.hea", "100.dat"]);
    let dat = dir.path().join("100.dat");
    let len = std::fs::metadata(&dat).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&dat)
        .unwrap()
        .set_len(len - 1000)
        .unwrap();
    let err = RecordReader::open(&dir.path().join("100")).unwrap_err();
    assert!(matches!(err, WfdbError::ShortSignalFile { .. }), "{err}");
    names(&err, "100.dat");
}

#[test]
fn signal_file_shrinking_after_open_is_an_error_not_a_panic() {
    let dir = copy(&["100.hea", "100.dat"]);
    let rec = RecordReader::open(&dir.path().join("100")).unwrap();
    std::fs::write(dir.path().join("100.dat"), [0u8; 30]).unwrap();
    assert!(
        rec.read_digital(0..10).is_ok(),
        "the first 10 frames are still there"
    );
    let err = rec.read_digital(0..1000).unwrap_err();
    assert!(matches!(err, WfdbError::ShortSignalFile { .. }), "{err}");
    names(&err, "100.dat");
}

#[test]
fn missing_signal_file_and_segment_name_the_file() {
    let dir = copy(&["100.hea"]);
    let err = RecordReader::open(&dir.path().join("100")).unwrap_err();
    names(&err, "100.dat");
    // A multi-segment record whose second segment is missing.
    let dir = copy(&["041s.hea", "041s01.hea", "041s01.dat"]);
    let err = RecordReader::open(&dir.path().join("041s")).unwrap_err();
    names(&err, "041s02.hea");
}

#[test]
fn unsupported_format_is_a_header_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.hea"), "r 1 250 10\nr.dat 17 200\n").unwrap();
    let err = RecordReader::open(&dir.path().join("r")).unwrap_err();
    match &err {
        WfdbError::Header { line, field, .. } => assert_eq!((*line, *field), (2, "format")),
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().contains("unsupported signal format 17"),
        "{err}"
    );
    names(&err, "r.hea");
}

#[test]
fn garbage_headers_are_errors_naming_file_line_and_field() {
    let cases: [(&[u8], usize, &str); 5] = [
        (b"\x00\x01\x02 garbage", 1, "record name"),
        (b"r 1 250 10\n\xff\xfe 16 200\n", 2, "format"),
        (b"r 1 250 ten\n", 1, "number of samples per signal"),
        (b"r 1 250 10 12:00:00 2000-01-01\n", 1, "base date"),
        (
            b"r 1 250 10\nr.dat 16 200/mV 12 0 0 0 0 desc\nextra.dat 16\n",
            1,
            "number of signals",
        ),
    ];
    for (text, line, field) in cases {
        let err = wfdb::parse_header(text, Path::new("/x/r.hea")).unwrap_err();
        match &err {
            WfdbError::Header {
                line: l, field: f, ..
            } => {
                assert_eq!((*l, *f), (line, field), "{}", String::from_utf8_lossy(text))
            }
            other => panic!("{other}"),
        }
        assert!(
            err.to_string()
                .starts_with(&format!("/x/r.hea:{line}: {field}")),
            "{err}"
        );
    }
}

#[test]
fn absurd_lengths_are_errors_not_aborts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.dat"), [0u8; 64]).unwrap();
    for len in ["18446744073709551615", "9223372036854775807", "100000"] {
        std::fs::write(
            dir.path().join("r.hea"),
            format!("r 2 250 {len}\nr.dat 16x3 200\nr.dat 16 200\n"),
        )
        .unwrap();
        let err = RecordReader::open(&dir.path().join("r")).unwrap_err();
        assert!(
            matches!(err, WfdbError::ShortSignalFile { .. }),
            "{len}: {err}"
        );
        names(&err, "r.dat");
    }
    let flac = copy(&[
        "flacformats.hea",
        "flacformats.d0",
        "flacformats.d1",
        "flacformats.d2",
    ]);
    let hea = flac.path().join("flacformats.hea");
    let text = std::fs::read_to_string(&hea)
        .unwrap()
        .replacen(" 499", " 99999999999", 1);
    std::fs::write(&hea, text).unwrap();
    let err = RecordReader::open(&flac.path().join("flacformats")).unwrap_err();
    assert!(matches!(err, WfdbError::ShortSignalFile { .. }), "{err}");
}

#[test]
fn physical_f32_is_the_f64_value_rounded() {
    for name in ["100", "binformats", "s25047-2704-05-04-10-44n", "041s"] {
        let rec = RecordReader::open(&conformance_dir().join("records").join(name)).unwrap();
        // 100 is read whole and from an odd offset: many conversion chunks.
        let n = rec.n_frames();
        let start = if name == "100" { 12_345 } else { 0 };
        let p64 = rec.read_physical(start..n).unwrap();
        let p32 = rec.read_physical_f32(start..n).unwrap();
        assert_eq!(
            p32.iter().map(Vec::len).collect::<Vec<_>>(),
            p64.iter().map(Vec::len).collect::<Vec<_>>()
        );
        for (a, b) in p64.iter().zip(&p32) {
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x.is_nan() && y.is_nan()) || (*x as f32).to_bits() == y.to_bits(),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn corrupt_flac_is_an_error() {
    let dir = copy(&[
        "flacformats.hea",
        "flacformats.d0",
        "flacformats.d1",
        "flacformats.d2",
    ]);
    let d1 = dir.path().join("flacformats.d1");
    let mut bytes = std::fs::read(&d1).unwrap();
    let n = bytes.len();
    bytes.truncate(n / 2);
    std::fs::write(&d1, &bytes).unwrap();
    let rec = RecordReader::open(&dir.path().join("flacformats")).unwrap();
    let err = rec.read_digital(0..rec.n_frames()).unwrap_err();
    names(&err, "flacformats.d1");
    std::fs::write(&d1, b"not flac at all").unwrap();
    let err = rec.read_digital(0..rec.n_frames()).unwrap_err();
    assert!(matches!(err, WfdbError::Data { .. }), "{err}");
    names(&err, "flacformats.d1");
}

#[test]
fn out_of_range_reads_are_errors() {
    let rec = RecordReader::open(&conformance_dir().join("records/binformats")).unwrap();
    let n = rec.n_frames();
    #[allow(clippy::reversed_empty_ranges)]
    for r in [0..n + 1, 5..4, n + 1..n + 2] {
        assert!(
            matches!(rec.read_digital(r.clone()), Err(WfdbError::Range { .. })),
            "{r:?}"
        );
    }
    assert_eq!(rec.read_digital(n..n).unwrap()[0].len(), 0);
}

#[test]
fn truncated_annotation_file_is_an_error() {
    let dir = copy(&["100.atr"]);
    let atr = dir.path().join("100.atr");
    let bytes = std::fs::read(&atr).unwrap();
    // Cut inside the first AUX string.
    let aux = (0..bytes.len() / 2)
        .map(|i| 2 * i)
        .find(|&i| bytes[i + 1] >> 2 == 63)
        .unwrap();
    std::fs::write(&atr, &bytes[..aux + 3]).unwrap();
    let err = wfdb::read_annotations(&dir.path().join("100"), "atr").unwrap_err();
    names(&err, "100.atr");
}

fn scratch(text: &[u8], data: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.hea"), text).unwrap();
    std::fs::write(dir.path().join("f.dat"), data).unwrap();
    let p = dir.path().join("f");
    (dir, p)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_header_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = wfdb::parse_header(&bytes, Path::new("x.hea"));
    }

    #[test]
    fn header_like_lines_never_panic(
        line in "[a-z0-9]{1,4}(/[0-9]{0,3})? [0-9]{0,3}( [0-9./()-]{0,12}){0,5}",
        sig in "[a-z.~]{1,6} [0-9]{1,3}(x[0-9]{0,2})?(:[0-9]{0,2})?(\\+[0-9]{0,3})?( [-0-9.e()/a-zA-Z]{0,12}){0,8}",
    ) {
        let _ = wfdb::parse_header(format!("{line}\n{sig}\n").as_bytes(), Path::new("x.hea"));
    }

    #[test]
    fn arbitrary_signal_data_never_panics(
        fmt_i in 0usize..13,
        spf in 1u32..4,
        skew in 0u32..3,
        offset in 0u64..8,
        n_sig in 1usize..4,
        sig_len in proptest::option::of(0u64..64),
        data in proptest::collection::vec(any::<u8>(), 0..300),
        range in any::<(u64, u64)>(),
    ) {
        let fmt = [8, 16, 24, 32, 61, 80, 160, 212, 310, 311, 508, 516, 524][fmt_i];
        let len = sig_len.map(|n| format!(" {n}")).unwrap_or_default();
        let mut text = format!("f {n_sig} 100{len}\n");
        for j in 0..n_sig {
            text.push_str(&format!("f.dat {fmt}x{spf}:{}+{offset} 100 12 0 5 0 0 s{j}\n", skew * j as u32));
        }
        let (_dir, path) = scratch(text.as_bytes(), &data);
        if let Ok(rec) = RecordReader::open(&path) {
            let n = rec.n_frames();
            let _ = rec.read_digital(0..n);
            let (a, b) = (range.0 % (n + 1), range.1 % (n + 1));
            let _ = rec.read_physical(a.min(b)..a.max(b));
            let _ = wfdb::verify_checksums(&rec);
        }
    }

    #[test]
    fn arbitrary_annotation_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = wfdb::annotation::parse_annotations(&bytes, Path::new("x.atr"));
    }
}

/// Regression (found by `cargo fuzz run decode_record`): a 410-byte FLAC file whose
/// STREAMINFO claims billions of samples made the reader allocate 8.6 GB up front.
#[test]
fn flac_claiming_more_samples_than_its_size_allows_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        crate::common::repo_root().join("tests/it/data/flac_huge_streaminfo.dat"),
        dir.path().join("f.dat"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("f.hea"),
        "f 1 100\nf.dat 524 100 12 0 3 0 0 s0\n",
    )
    .unwrap();
    let err = RecordReader::open(&dir.path().join("f")).unwrap_err();
    assert!(matches!(err, WfdbError::Data { .. }), "{err}");
    assert!(err.to_string().contains("more than"), "{err}");
    names(&err, "f.dat");
}
