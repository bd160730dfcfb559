//! Writes the synthetic WFDB corpora `scripts/bench-convert` measures, with physio's own
//! WFDB writer:
//!
//! * `ptbxl DIR N` — N PTB-XL-shaped records (`records500/0000K/0000N_hr`, 12 leads,
//!   500 Hz, 5,000 frames, format 16, gain 1000/mV like PTB-XL) plus a `RECORDS` file.
//! * `holter DIR` — one 24-hour, 8-signal, 250 Hz multi-segment record (`holter`,
//!   24 one-hour segments of format 16).
//!
//! The signals are ECG-like (a beat every ~0.8 s on a wandering baseline, a few LSB of
//! noise), so that compression and encoding measurements see realistic value
//! distributions rather than constants or white noise.

use std::path::Path;

use physio::wfdb::{SignalFormat, WriteSignal, write_record};

const LEADS: [&str; 12] = [
    "I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6",
];

fn ecg_like(seed: u64, channel: usize, fs: f64, start: u64, n: u64) -> Vec<i32> {
    let mut rng = fastrand::Rng::with_seed(seed * 131 + channel as u64);
    let rr = 0.75 + (seed % 7) as f64 * 0.03;
    let amp = 800.0 + 60.0 * channel as f64;
    (start..start + n)
        .map(|i| {
            let t = i as f64 / fs;
            let phase = (t / rr).fract() * rr;
            let qrs = amp * (-((phase - 0.2) / 0.012).powi(2)).exp();
            let twave = 0.25 * amp * (-((phase - 0.45) / 0.05).powi(2)).exp();
            let wander = 120.0 * (t * 0.3 + channel as f64).sin();
            let noise = f64::from(rng.i32(-4..=4));
            (qrs + twave + wander + noise).round() as i32
        })
        .collect()
}

fn signals(names: &[&str], file: &str, digital: Vec<Vec<i32>>) -> Vec<WriteSignal> {
    names
        .iter()
        .zip(digital)
        .map(|(name, digital)| WriteSignal {
            name: name.to_string(),
            units: "mV".to_string(),
            format: SignalFormat::from_code(16).expect("format 16"),
            adc_gain: 1000.0,
            baseline: 0,
            adc_res: 16,
            samps_per_frame: 1,
            file_name: file.to_string(),
            digital,
        })
        .collect()
}

fn ptbxl(dir: &Path, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut records = String::new();
    for i in 1..=n {
        let sub = format!("records500/{:05}", (i / 1000) * 1000);
        let name = format!("{i:05}_hr");
        let d = dir.join(&sub);
        std::fs::create_dir_all(&d)?;
        let digital = (0..12)
            .map(|c| ecg_like(i as u64, c, 500.0, 0, 5000))
            .collect();
        write_record(
            &d,
            &name,
            500.0,
            5000,
            &signals(&LEADS, &format!("{name}.dat"), digital),
        )?;
        records.push_str(&format!("{sub}/{name}\n"));
    }
    std::fs::write(dir.join("RECORDS"), records)?;
    Ok(())
}

fn holter(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    const FS: f64 = 250.0;
    const HOUR: u64 = 250 * 3600;
    let names = ["ECG1", "ECG2", "ECG3", "ABP", "PAP", "CVP", "RESP", "SpO2"];
    std::fs::create_dir_all(dir)?;
    let mut header = format!("holter/24 {} {FS} {}\n", names.len(), 24 * HOUR);
    for h in 0..24u64 {
        let seg = format!("holter_{:04}", h + 1);
        let digital = (0..names.len())
            .map(|c| ecg_like(1, c, FS, h * HOUR, HOUR))
            .collect();
        write_record(
            dir,
            &seg,
            FS,
            HOUR,
            &signals(&names, &format!("{seg}.dat"), digital),
        )?;
        header.push_str(&format!("{seg} {HOUR}\n"));
    }
    std::fs::write(dir.join("holter.hea"), header)?;
    std::fs::write(dir.join("RECORDS"), "holter\n")?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["ptbxl", dir, n] => ptbxl(Path::new(dir), n.parse()?),
        ["holter", dir] => holter(Path::new(dir)),
        _ => Err("usage: bench_corpus ptbxl DIR N | holter DIR".into()),
    }
}
