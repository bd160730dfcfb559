//! `physio plot` (issue 16): the structure of what is drawn, checked in the SVG output
//! (one panel per signal, points after decimation, gaps, annotation labels, signals of
//! two rates lining up), never by pixel hashes; PNG output is checked as a PNG of the
//! reported size.

use std::path::Path;

use physio::wfdb::{SignalFormat, WriteSignal, write_record};

use crate::common::{conformance_dir, physio, success_json};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The line pieces of one panel: the `points` of each `<polyline class="signal">`.
type Runs = Vec<Vec<(f32, f32)>>;

/// The `data-name` of every panel `<g>` and its line pieces, in drawing order.
fn panels(svg: &str) -> Vec<(String, Runs)> {
    let mut out: Vec<(String, Runs)> = Vec::new();
    for line in svg.lines() {
        if let Some(rest) = line.strip_prefix("<g class=\"panel\" data-name=\"") {
            out.push((rest.split('"').next().unwrap().to_string(), Vec::new()));
        } else if line.starts_with("<polyline class=\"signal\"") {
            let pts = line
                .split("points=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let pts = pts
                .split(' ')
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect();
            out.last_mut().expect("polyline inside a panel").1.push(pts);
        }
    }
    out
}

/// Text of every `<text class="{class}">`.
fn texts(svg: &str, class: &str) -> Vec<String> {
    let open = format!("<text class=\"{class}\"");
    svg.lines()
        .filter(|l| l.starts_with(&open))
        .map(|l| {
            let inner = l.split('>').nth(1).unwrap();
            inner
                .trim_end_matches("</text")
                .replace("&lt;", "<")
                .replace("&amp;", "&")
        })
        .collect()
}

fn sig(name: &str, units: &str, spf: u32, digital: Vec<i32>) -> WriteSignal {
    WriteSignal {
        name: name.to_string(),
        units: units.to_string(),
        format: SignalFormat::from_code(16).unwrap(),
        adc_gain: 1000.0,
        baseline: 0,
        adc_res: 16,
        samps_per_frame: spf,
        file_name: "r.dat".to_string(),
        digital,
    }
}

/// An 8 s record, 100 frames/s: `FAST` at 4 samples per frame (400 Hz) and `SLOW` at 1
/// (100 Hz), each with one narrow peak at exactly 3.0 s; `SLOW` has invalid samples
/// from 5.0 to 5.5 s.
fn two_rates(dir: &Path) -> std::path::PathBuf {
    let frames = 800u64;
    let peak = |t: f64| (1000.0 * (-((t - 3.0) / 0.01).powi(2)).exp()).round() as i32;
    let fast = (0..frames * 4).map(|k| peak(k as f64 / 400.0)).collect();
    let slow = (0..frames)
        .map(|k| {
            let t = k as f64 / 100.0;
            if (5.0..5.5).contains(&t) {
                -32768
            } else {
                peak(t)
            }
        })
        .collect();
    write_record(
        dir,
        "tworates",
        100.0,
        frames,
        &[sig("FAST", "mV", 4, fast), sig("SLOW", "NU", 1, slow)],
    )
    .unwrap();
    dir.join("tworates")
}

#[test]
fn signals_of_two_rates_line_up_and_invalid_samples_are_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let rec = two_rates(dir.path());
    let out = dir.path().join("p.svg");
    let report = success_json(
        physio()
            .args(["plot", s(&rec), "-o", s(&out), "--width", "1000", "--json"])
            .arg("--to")
            .arg("8s"),
    );
    let svg = std::fs::read_to_string(&out).unwrap();
    let p = panels(&svg);
    assert_eq!(
        p.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["FAST", "SLOW"]
    );
    assert_eq!(p[0].1.len(), 1, "FAST has no gap");
    assert_eq!(p[1].1.len(), 2, "SLOW's invalid stretch is a gap");
    // The peak (smallest y) of each signal is at the same x, within a pixel.
    let peak_x = |runs: &Runs| {
        runs.iter()
            .flatten()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap()
            .0
    };
    let (xf, xs) = (peak_x(&p[0].1), peak_x(&p[1].1));
    assert!((xf - xs).abs() <= 1.0, "peaks at x={xf} and x={xs}");
    // 3.0 s of 8 s across the plot area: the gap starts at 5.0 s.
    let left = 72.0;
    let width = 1000.0 - 72.0 - 16.0;
    assert!((xf - (left + width * 3.0 / 8.0)).abs() <= 1.0, "{xf}");
    let gap_start = p[1].1[0].last().unwrap().0;
    let gap_end = p[1].1[1][0].0;
    assert!(
        (gap_start - (left + width * 4.99 / 8.0)).abs() <= 1.0,
        "{gap_start}"
    );
    assert!(
        (gap_end - (left + width * 5.5 / 8.0)).abs() <= 1.0,
        "{gap_end}"
    );
    // Names, units and rates are labelled.
    let labels = texts(&svg, "signal-label");
    assert_eq!(labels, ["FAST (mV)  400 Hz", "SLOW (NU)  100 Hz"]);
    // 3,200 FAST samples on 912 columns are decimated, 800 SLOW ones are not: the
    // peaks line up either way.
    assert_eq!(report["signals"][0]["decimated"], true);
    assert_eq!(report["signals"][1]["decimated"], false);
}

#[test]
fn long_records_are_decimated_to_two_points_per_column() {
    let dir = tempfile::tempdir().unwrap();
    let frames = 360_000u64; // 20 minutes at 300 Hz
    let wave: Vec<i32> = (0..frames).map(|i| ((i % 300) as i32 - 150) * 5).collect();
    write_record(
        dir.path(),
        "long",
        300.0,
        frames,
        &[sig("A", "mV", 1, wave.clone()), sig("B", "mV", 1, wave)],
    )
    .unwrap();
    let out = dir.path().join("long.svg");
    let report = success_json(physio().args([
        "plot",
        s(&dir.path().join("long")),
        "-o",
        s(&out),
        "--width",
        "688",
        "--json",
    ]));
    let svg = std::fs::read_to_string(&out).unwrap();
    let columns = 688 - 72 - 16;
    for (j, (_, runs)) in panels(&svg).iter().enumerate() {
        let points: usize = runs.iter().map(Vec::len).sum();
        assert_eq!(
            points,
            2 * columns,
            "each column holds a whole period: min and max"
        );
        assert_eq!(report["signals"][j]["points"], points);
        assert_eq!(report["signals"][j]["decimated"], true);
        // Every column spans the wave's full range.
        let ys: Vec<f32> = runs[0].iter().map(|p| p.1).collect();
        let (lo, hi) = ys
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &y| (a.min(y), b.max(y)));
        assert!(ys.chunks(2).all(|c| c.contains(&lo) && c.contains(&hi)));
    }
}

#[test]
fn annotations_are_drawn_with_symbols_and_aux_text() {
    let dir = tempfile::tempdir().unwrap();
    let rec = conformance_dir().join("records/100");
    let out = dir.path().join("100.svg");
    let report = success_json(physio().args([
        "plot",
        s(&rec),
        "-o",
        s(&out),
        "--to",
        "10s",
        "--annotations",
        "atr",
        "--json",
    ]));
    let anns = physio::wfdb::read_annotations(&rec, "atr").unwrap();
    let in_window: Vec<_> = anns.iter().filter(|a| a.sample < 3600).collect();
    assert_eq!(report["annotations"], in_window.len());
    let svg = std::fs::read_to_string(&out).unwrap();
    let symbols = texts(&svg, "annotation-symbol");
    // Beats are ~0.8 s apart: every symbol gets its label.
    let want: Vec<&str> = in_window.iter().map(|a| a.symbol.as_str()).collect();
    assert_eq!(symbols, want);
    assert_eq!(texts(&svg, "annotation-aux"), ["(N"]);
    assert_eq!(report["annotation_labels"], want.len());
}

#[test]
fn a_parquet_row_draws_the_same_picture_as_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let rec = conformance_dir().join("records/100");
    let pq = dir.path().join("100.parquet");
    physio()
        .args(["convert", s(&rec), "--out", s(&pq), "--annotations", "atr"])
        .assert()
        .success();
    let (a, b) = (dir.path().join("a.svg"), dir.path().join("b.svg"));
    let common = ["--from", "2", "--to", "7.5", "--annotations", "atr"];
    physio()
        .args(["plot", s(&rec), "-o", s(&a)])
        .args(common)
        .assert()
        .success();
    physio()
        .args(["plot", s(&pq), "--record", "100", "-o", s(&b)])
        .args(common)
        .assert()
        .success();
    let (a, b) = (
        std::fs::read_to_string(a).unwrap(),
        std::fs::read_to_string(b).unwrap(),
    );
    assert_eq!(panels(&a).len(), 2);
    assert!(a == b, "the Parquet row and the record give different SVGs");

    // Digital output (`--dtype i16`, `i32`) is scaled with the row's gain and baseline.
    for dtype in ["i16", "i32"] {
        let pq = dir.path().join(format!("100-{dtype}.parquet"));
        physio()
            .args(["convert", s(&rec), "--out", s(&pq), "--annotations", "atr"])
            .args(["--dtype", dtype])
            .assert()
            .success();
        let c = dir.path().join(format!("{dtype}.svg"));
        physio()
            .args(["plot", s(&pq), "--record", "100", "-o", s(&c)])
            .args(common)
            .assert()
            .success();
        let c = std::fs::read_to_string(c).unwrap();
        assert!(
            a == c,
            "--dtype {dtype}: the Parquet row draws another picture"
        );
    }

    physio()
        .args([
            "plot",
            s(&pq),
            "--record",
            "nope",
            "-o",
            s(&dir.path().join("c.svg")),
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no record named \"nope\""));
}

#[test]
fn ecg_grid_png_and_clock_time() {
    let dir = tempfile::tempdir().unwrap();
    let rec = two_rates(dir.path());
    // A base time makes the axis clock time.
    let hea = dir.path().join("tworates.hea");
    let text = std::fs::read_to_string(&hea).unwrap();
    let (first, rest) = text.split_once('\n').unwrap();
    std::fs::write(&hea, format!("{first} 23:59:58\n{rest}")).unwrap();
    let out = dir.path().join("g.svg");
    physio()
        .args([
            "plot",
            s(&rec),
            "-o",
            s(&out),
            "--grid",
            "ecg",
            "--signals",
            "SLOW,FAST",
        ])
        .assert()
        .success();
    let svg = std::fs::read_to_string(&out).unwrap();
    let names: Vec<String> = panels(&svg).into_iter().map(|p| p.0).collect();
    assert_eq!(names, ["SLOW", "FAST"], "--signals picks and orders panels");
    // ECG paper only on the mV signal.
    assert_eq!(svg.matches("class=\"grid-major\"").count(), 1);
    assert_eq!(svg.matches("class=\"grid-minor\"").count(), 1);
    let times = texts(&svg, "time-label");
    assert!(times.contains(&"23:59:59".to_string()), "{times:?}");
    assert!(
        times.contains(&"00:00:02".to_string()),
        "past midnight: {times:?}"
    );

    let png = dir.path().join("g.png");
    let report = success_json(physio().args(["plot", s(&rec), "-o", s(&png), "--json"]));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!(
        (w, h),
        (
            report["width"].as_u64().unwrap() as u32,
            report["height"].as_u64().unwrap() as u32
        )
    );
}

#[test]
fn bad_plot_requests_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let rec = two_rates(dir.path());
    let out = dir.path().join("x.svg");
    for (args, msg) in [
        (
            vec!["--signals", "NOPE"],
            "has no signal \"NOPE\" (it has: FAST, SLOW)",
        ),
        (vec!["--from", "9s"], "is empty"),
        (vec!["--annotations", "atr"], "no annotation file"),
    ] {
        physio()
            .args(["plot", s(&rec), "-o", s(&out)])
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(msg));
    }
    physio()
        .args(["plot", s(&rec), "-o", s(&dir.path().join("x.pdf"))])
        .assert()
        .code(2);
    assert!(!out.exists(), "nothing written on failure");
}

/// `physio plot x.edf` reads the EDF file with the converter's opener: the corpus's
/// EDF+ file draws the same panels, point for point (within a tenth of a pixel), as
/// its WFDB twin (the same samples written as a WFDB record by wfdb-python, which also
/// keeps the "EDF Annotations" channel as a twelfth signal).
#[test]
fn edf_files_plot_like_their_wfdb_twin() {
    let dir = tempfile::tempdir().unwrap();
    let records = conformance_dir().join("records");
    let mut drawn = Vec::new();
    for name in ["test_generator_2.edf", "test_generator_2"] {
        let out = dir.path().join(format!("{name}.svg"));
        success_json(
            physio()
                .args(["plot", s(&records.join(name)), "-o", s(&out)])
                .args(["--json", "--to", "2s"]),
        );
        drawn.push(panels(&std::fs::read_to_string(&out).unwrap()));
    }
    let (edf, wfdb) = (&drawn[0], &drawn[1]);
    assert_eq!(edf.len(), 11);
    assert_eq!(wfdb.len(), 12);
    for ((name, a), (twin, b)) in edf.iter().zip(wfdb) {
        assert_eq!(name, twin);
        assert!(!a.is_empty(), "{name} drew nothing");
        // Panels sit at the same height; the twin's has one more panel below.
        let points = |r: &Runs| r.iter().flatten().copied().collect::<Vec<_>>();
        let (pa, pb) = (points(a), points(b));
        assert_eq!(pa.len(), pb.len(), "{name}");
        for (p, q) in pa.iter().zip(&pb) {
            assert!(
                (p.0 - q.0).abs() < 0.1 && (p.1 - q.1).abs() < 0.1,
                "{name}: {p:?} vs {q:?}"
            );
        }
    }
}
