//! Writes the README's `physio plot` pictures (`docs/img/plot-*.png`) and times the
//! 24-hour render (`docs/plot.md`):
//!
//!     cargo run --release --example plot_gallery -- docs/img [WORKDIR]
//!
//! The records are written with physio's own WFDB writer into WORKDIR (default: a
//! temporary directory), except the annotated one, which is MIT-BIH record 100 from
//! `fixtures/conformance/records`:
//!
//! * `ptbxl12` — a 12-lead, 500 Hz, 10 s record shaped like PTB-XL's (format 16, gain
//!   1000/mV), drawn on ECG paper.
//! * `multifreq` — ECG at 500 Hz (4 samples per 125 Hz frame) and a pleth at 125 Hz whose
//!   sharp peaks sit at the R-peak times, so a correct time axis lines them up; the
//!   pleth has a 0.6 s dropout (invalid samples) that must show as a gap; a base time
//!   gives a clock-time axis.
//! * `holter24` — 24 hours of 2-signal, 360 Hz format 212 (31 million frames), with a
//!   heart rate that varies over the day and a few minutes of lead-off.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool: it reports timings

use std::path::{Path, PathBuf};
use std::time::Instant;

use physio::plot::{Grid, PlotInput, PlotOptions, plot};
use physio::wfdb::{SignalFormat, WriteSignal, write_record};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const LEADS: [&str; 12] = [
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
];
/// Per lead: P, Q, R, S, T amplitudes in mV (a rough normal 12-lead shape).
const SHAPE: [[f64; 5]; 12] = [
    [0.08, -0.05, 0.6, -0.10, 0.20],
    [0.12, -0.08, 1.1, -0.20, 0.30],
    [0.05, -0.05, 0.5, -0.15, 0.10],
    [-0.10, 0.05, -0.8, 0.10, -0.25],
    [0.03, -0.03, 0.2, -0.10, 0.05],
    [0.09, -0.06, 0.8, -0.15, 0.20],
    [0.05, 0.00, 0.3, -1.00, -0.10],
    [0.06, 0.00, 0.6, -1.30, 0.40],
    [0.06, -0.05, 1.0, -0.80, 0.50],
    [0.07, -0.08, 1.5, -0.40, 0.50],
    [0.07, -0.08, 1.3, -0.20, 0.40],
    [0.07, -0.06, 1.0, -0.10, 0.30],
];

fn gauss(t: f64, at: f64, width: f64) -> f64 {
    (-((t - at) / width).powi(2)).exp()
}

/// One beat's value in mV at `t` seconds from its R peak.
fn beat(shape: &[f64; 5], t: f64) -> f64 {
    let [p, q, r, s, tw] = *shape;
    p * gauss(t, -0.16, 0.025)
        + q * gauss(t, -0.028, 0.008)
        + r * gauss(t, 0.0, 0.010)
        + s * gauss(t, 0.03, 0.010)
        + tw * gauss(t, 0.28, 0.05)
}

/// Value at `t` of a beat train with R peaks at `peaks` (sorted).
fn train(shape: &[f64; 5], peaks: &[f64], t: f64) -> f64 {
    let i = peaks.partition_point(|&p| p < t);
    let near = [i.wrapping_sub(1), i, i + 1];
    near.iter()
        .filter_map(|&k| peaks.get(k))
        .map(|&p| beat(shape, t - p))
        .sum()
}

fn signal(
    name: &str,
    units: &str,
    code: u16,
    gain: f64,
    spf: u32,
    file: &str,
    d: Vec<i32>,
) -> WriteSignal {
    WriteSignal {
        name: name.to_string(),
        units: units.to_string(),
        format: SignalFormat::from_code(code).expect("known format"),
        adc_gain: gain,
        baseline: 0,
        adc_res: if code == 212 { 12 } else { 16 },
        samps_per_frame: spf,
        file_name: file.to_string(),
        digital: d,
    }
}

/// Adds a base time and date to the record line of `<dir>/<name>.hea` (the writer
/// leaves them out).
fn set_base_time(dir: &Path, name: &str, time: &str, date: &str) -> Res<()> {
    let path = dir.join(format!("{name}.hea"));
    let text = std::fs::read_to_string(&path)?;
    let (first, rest) = text.split_once('\n').ok_or("empty header")?;
    std::fs::write(&path, format!("{first} {time} {date}\n{rest}"))?;
    Ok(())
}

fn ptbxl12(dir: &Path) -> Res<PathBuf> {
    let fs = 500.0;
    let n = 5000u64;
    let peaks: Vec<f64> = (0..13).map(|i| 0.35 + i as f64 * 0.82).collect();
    let mut rng = fastrand::Rng::with_seed(12);
    let sigs = LEADS
        .iter()
        .zip(SHAPE.iter())
        .enumerate()
        .map(|(j, (name, shape))| {
            let d = (0..n)
                .map(|i| {
                    let t = i as f64 / fs;
                    let wander = 0.05 * (t * 0.4 + j as f64).sin();
                    let mv = train(shape, &peaks, t) + wander + rng.f64() * 0.01;
                    (mv * 1000.0).round() as i32
                })
                .collect();
            signal(name, "mV", 16, 1000.0, 1, "ptbxl12.dat", d)
        })
        .collect::<Vec<_>>();
    write_record(dir, "ptbxl12", fs, n, &sigs)?;
    Ok(dir.join("ptbxl12"))
}

fn multifreq(dir: &Path) -> Res<PathBuf> {
    let fs = 125.0;
    let frames = 1000u64; // 8 s
    let peaks: Vec<f64> = (0..11).map(|i| 0.4 + i as f64 * 0.77).collect();
    let ecg = (0..frames * 4)
        .map(|k| {
            let t = k as f64 / (fs * 4.0);
            (train(&SHAPE[1], &peaks, t) * 1000.0).round() as i32
        })
        .collect();
    let pleth = (0..frames)
        .map(|k| {
            let t = k as f64 / fs;
            if (4.5..5.1).contains(&t) {
                return -32768; // format 16's invalid sample: a dropout
            }
            let i = peaks.partition_point(|&p| p <= t);
            let since = if i == 0 { 1.0 } else { t - peaks[i - 1] };
            let until = peaks.get(i).map_or(1.0, |p| p - t);
            // A sharp peak exactly at each R peak, then a slow decay.
            let v = if until < 0.05 {
                1.0 - until / 0.05
            } else {
                (-since / 0.25).exp()
            };
            (v * 1000.0).round() as i32
        })
        .collect();
    let sigs = [
        signal("ECG", "mV", 16, 1000.0, 4, "multifreq.dat", ecg),
        signal("PLETH", "NU", 16, 1000.0, 1, "multifreq.dat", pleth),
    ];
    write_record(dir, "multifreq", fs, frames, &sigs)?;
    set_base_time(dir, "multifreq", "08:15:30", "02/01/2024")?;
    Ok(dir.join("multifreq"))
}

fn holter24(dir: &Path) -> Res<PathBuf> {
    let fs = 360.0;
    let n = (24 * 3600) as u64 * 360;
    // Beat times: 55 bpm at night to 90 bpm in the afternoon.
    let mut peaks = Vec::new();
    let mut t = 0.3;
    while t < n as f64 / fs + 2.0 {
        peaks.push(t);
        let hour = (8.0 + t / 3600.0) % 24.0;
        let bpm = 72.0 + 17.0 * ((hour - 9.0) / 24.0 * std::f64::consts::TAU).sin();
        t += 60.0 / bpm;
    }
    let lead_off = |t: f64| (5.0 * 3600.0..5.0 * 3600.0 + 600.0).contains(&t);
    let mut ch = [
        Vec::with_capacity(n as usize),
        Vec::with_capacity(n as usize),
    ];
    let mut p = 0usize;
    for i in 0..n {
        let t = i as f64 / fs;
        while p + 1 < peaks.len() && peaks[p + 1] <= t {
            p += 1;
        }
        for (j, out) in ch.iter_mut().enumerate() {
            if lead_off(t) && j == 0 {
                out.push(-2048); // format 212's invalid sample
                continue;
            }
            let shape = &SHAPE[if j == 0 { 1 } else { 10 }];
            let mut mv = beat(shape, t - peaks[p]);
            if let Some(&next) = peaks.get(p + 1) {
                mv += beat(shape, t - next);
            }
            mv += 0.15 * (t / 40.0 + j as f64).sin();
            out.push((mv * 200.0).round().clamp(-2047.0, 2047.0) as i32);
        }
    }
    let [a, b] = ch;
    let sigs = [
        signal("MLII", "mV", 212, 200.0, 1, "holter24.dat", a),
        signal("V5", "mV", 212, 200.0, 1, "holter24.dat", b),
    ];
    write_record(dir, "holter24", fs, n, &sigs)?;
    set_base_time(dir, "holter24", "08:00:00", "02/01/2024")?;
    Ok(dir.join("holter24"))
}

/// CPU time (user + system) of this process so far, from /proc (Linux; 0 elsewhere).
/// On a shared machine wall time mostly measures the other processes.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = PathBuf::from(args.first().ok_or("usage: plot_gallery OUTDIR [WORKDIR]")?);
    let tmp;
    let work = match args.get(1) {
        Some(w) => PathBuf::from(w),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&out)?;
    std::fs::create_dir_all(&work)?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));

    let mut o = PlotOptions::new(
        PlotInput::Record(ptbxl12(&work)?),
        out.join("plot-ptbxl-12lead.png"),
    );
    o.grid = Grid::Ecg;
    plot(&o)?;

    let o = PlotOptions::new(
        PlotInput::Record(multifreq(&work)?),
        out.join("plot-multifreq.png"),
    );
    plot(&o)?;

    let mut o = PlotOptions::new(
        PlotInput::Record(root.join("fixtures/conformance/records/100")),
        out.join("plot-mitdb-100-atr.png"),
    );
    o.to = Some(12.0);
    o.annotations = Some("atr".to_string());
    plot(&o)?;

    let holter = if work.join("holter24.hea").is_file() {
        work.join("holter24")
    } else {
        let t = Instant::now();
        let p = holter24(&work)?;
        eprintln!("wrote holter24 in {:.1} s", t.elapsed().as_secs_f64());
        p
    };
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..5 {
        let o = PlotOptions::new(
            PlotInput::Record(holter.clone()),
            out.join("plot-holter-24h.png"),
        );
        let (t, c) = (Instant::now(), cpu_seconds());
        let r = plot(&o)?;
        times.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c);
        assert!(r.signals.iter().all(|s| s.decimated));
    }
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    println!(
        "24-hour record (2 x 31,104,000 samples, format 212) to PNG: wall min {:.3} s, \
         median {:.3} s, max {:.3} s; CPU (user+sys) min {:.2} s, median {:.2} s",
        times[0], times[2], times[4], cpu[0], cpu[2]
    );
    Ok(())
}
