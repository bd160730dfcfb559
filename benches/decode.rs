//! Decode benchmark for WFDB formats 16 and 212 and EDF (run by `scripts/bench-decode`).
//!
//! `decode DIR [MB]` writes (once) two records of about MB megabytes of signal data
//! each with physio's writer — `b16` (format 16) and `b212` (format 212), 12 signals in
//! one file, like a 12-lead ECG — then decodes each whole record on one thread several
//! times and prints one JSON line per record and mode with the best time and the
//! throughput in MB of signal file per second. Modes: `digital` (i32 samples into
//! fresh vectors), `digital_reuse` (into vectors reused between reads, no page
//! faults) and `physical_f32` (what the Parquet converter stores).
//!
//! `bedf.edf` holds the same 12 signals as `b16` as an EDF file (1-s data records, 500
//! samples per signal each, the layout of PhysioNet's EEG datasets) and is decoded in
//! the `digital` and `physical_f32` modes, so EDF's throughput compares with format
//! 16's on the same samples (issue 14).

#![allow(clippy::print_stdout)] // a benchmark's output is its result

use std::path::Path;
use std::time::Instant;

use physio::edf::EdfReader;
use physio::wfdb::{RecordReader, SignalFormat, WriteSignal, write_record};

const N_SIG: usize = 12;

fn generate(dir: &Path, name: &str, format: SignalFormat, mb: u64) {
    if dir.join(format!("{name}.hea")).exists() {
        return;
    }
    let bytes_per_frame = match format {
        SignalFormat::F212 => N_SIG as u64 * 3 / 2,
        _ => N_SIG as u64 * 2,
    };
    let n_frames = mb * 1_000_000 / bytes_per_frame;
    let bits = format.bits();
    let mut rng = fastrand::Rng::with_seed(42);
    let signals: Vec<WriteSignal> = (0..N_SIG)
        .map(|j| {
            // A slow random walk plus noise: realistic entropy, full range exercised.
            let hi = (1i32 << (bits - 1)) - 1;
            let mut v = 0i32;
            let digital = (0..n_frames)
                .map(|_| {
                    v = (v + rng.i32(-40..=40)).clamp(-hi, hi);
                    v
                })
                .collect();
            WriteSignal {
                name: format!("lead{j}"),
                units: "mV".into(),
                format,
                adc_gain: 200.0,
                baseline: 0,
                adc_res: bits,
                samps_per_frame: 1,
                file_name: format!("{name}.dat"),
                digital,
            }
        })
        .collect();
    if let Err(e) = write_record(dir, name, 500.0, n_frames, &signals) {
        panic!("writing benchmark record {name}: {e}");
    }
}

/// Writes `bedf.edf`: the digital samples of `b16` (read back with physio's WFDB
/// reader) as EDF data records of one second.
fn generate_edf(dir: &Path) {
    let path = dir.join("bedf.edf");
    if path.exists() {
        return;
    }
    let rec = RecordReader::open(&dir.join("b16")).expect("open b16");
    let fs = rec.fs() as usize;
    let n_rec = rec.n_frames() as usize / fs;
    let d = rec
        .read_digital(0..(n_rec * fs) as u64)
        .expect("decode b16");
    let field = |s: &str, n: usize| {
        let mut v = s.as_bytes().to_vec();
        v.resize(n, b' ');
        v
    };
    let mut f = Vec::with_capacity(256 * (N_SIG + 1) + n_rec * fs * N_SIG * 2);
    for (s, n) in [
        ("0", 8),
        ("X X X X", 80),
        ("Startdate X X X X", 80),
        ("01.01.20", 8),
        ("00.00.00", 8),
        (&(256 * (N_SIG + 1)).to_string(), 8),
        ("", 44), // plain EDF: EDF+ would need an annotation signal
        (&n_rec.to_string(), 8),
        ("1", 8),
        (&N_SIG.to_string(), 4),
    ] {
        f.extend(field(s, n));
    }
    for (width, value) in [
        (16, "lead"),
        (80, ""),
        (8, "mV"),
        (8, "-163.84"),
        (8, "163.835"),
        (8, "-32768"),
        (8, "32767"),
        (80, ""),
        (8, "fs"),
        (32, ""),
    ] {
        for j in 0..N_SIG {
            let v = match value {
                "lead" => format!("lead{j}"),
                "fs" => fs.to_string(),
                v => v.to_string(),
            };
            f.extend(field(&v, width));
        }
    }
    for r in 0..n_rec {
        for sig in &d {
            for &x in &sig[r * fs..(r + 1) * fs] {
                f.extend((x as i16).to_le_bytes());
            }
        }
    }
    std::fs::write(&path, f).expect("write bedf.edf");
}

/// CPU time of this thread in seconds (Linux `/proc/thread-self/schedstat`, ns), so the
/// throughput per core is meaningful on a busy machine; `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (dir, mb) = match args.as_slice() {
        [cmd, dir, rest @ ..] if cmd == "decode" => (
            Path::new(dir).to_path_buf(),
            rest.first().and_then(|m| m.parse().ok()).unwrap_or(64u64),
        ),
        _ => {
            println!("usage: decode DIR [MB]   (see scripts/bench-decode)");
            return;
        }
    };
    std::fs::create_dir_all(&dir).expect("benchmark directory");
    for (name, format) in [("b16", SignalFormat::F16), ("b212", SignalFormat::F212)] {
        generate(&dir, name, format, mb);
        let path = dir.join(name);
        let size = std::fs::metadata(dir.join(format!("{name}.dat")))
            .expect("signal file")
            .len();
        let rec = RecordReader::open(&path).expect("open benchmark record");
        let n = rec.n_frames();
        let mut reuse: Vec<Vec<i32>> = Vec::new();
        for mode in ["digital", "digital_reuse", "physical_f32"] {
            let mut best = f64::INFINITY;
            let mut best_cpu = f64::INFINITY;
            let mut checksum = 0i64;
            for _ in 0..5 {
                let t = Instant::now();
                let c = cpu_seconds();
                checksum = match mode {
                    "digital" => {
                        let d = rec.read_digital(0..n).expect("decode");
                        d.iter().map(|s| i64::from(s[s.len() / 2])).sum()
                    }
                    "digital_reuse" => {
                        rec.read_digital_into(0..n, &mut reuse).expect("decode");
                        reuse.iter().map(|s| i64::from(s[s.len() / 2])).sum()
                    }
                    _ => {
                        let p = rec.read_physical_f32(0..n).expect("decode");
                        p.iter().map(|s| s[s.len() / 2] as i64).sum()
                    }
                };
                best = best.min(t.elapsed().as_secs_f64());
                if let (Some(a), Some(b)) = (c, cpu_seconds()) {
                    best_cpu = best_cpu.min(b - a);
                }
            }
            println!(
                "{{\"record\":\"{name}\",\"format\":{},\"mode\":\"{mode}\",\"bytes\":{size},\"frames\":{n},\"seconds\":{best:.6},\"cpu_seconds\":{best_cpu:.6},\"mb_per_s\":{:.1},\"mb_per_cpu_s\":{:.1},\"check\":{checksum}}}",
                format.code(),
                size as f64 / 1e6 / best,
                size as f64 / 1e6 / best_cpu
            );
        }
    }
    generate_edf(&dir);
    let path = dir.join("bedf.edf");
    let size = std::fs::metadata(&path).expect("EDF file").len();
    let edf = EdfReader::open(&path).expect("open bedf.edf");
    let n = edf.n_frames();
    for mode in ["digital", "physical_f32"] {
        let mut best = f64::INFINITY;
        let mut best_cpu = f64::INFINITY;
        let mut checksum = 0i64;
        for _ in 0..5 {
            let t = Instant::now();
            let c = cpu_seconds();
            checksum = if mode == "digital" {
                let d = edf.read_digital(0..n).expect("decode");
                d.iter().map(|s| i64::from(s[s.len() / 2])).sum()
            } else {
                let p = edf.read_physical_f32(0..n).expect("decode");
                p.iter().map(|s| s[s.len() / 2] as i64).sum()
            };
            best = best.min(t.elapsed().as_secs_f64());
            if let (Some(a), Some(b)) = (c, cpu_seconds()) {
                best_cpu = best_cpu.min(b - a);
            }
        }
        println!(
            "{{\"record\":\"bedf\",\"format\":\"edf\",\"mode\":\"{mode}\",\"bytes\":{size},\"frames\":{n},\"seconds\":{best:.6},\"cpu_seconds\":{best_cpu:.6},\"mb_per_s\":{:.1},\"mb_per_cpu_s\":{:.1},\"check\":{checksum}}}",
            size as f64 / 1e6 / best,
            size as f64 / 1e6 / best_cpu
        );
    }
}
