//! `physio info <RECORD>`: a readable summary of one WFDB record's header (in the
//! spirit of WFDB's `wfdbdesc`), or with `--json` one JSON object keyed by
//! wfdb-python's attribute names with its read defaults applied (the contract).
//!
//! Only the header is needed; when the signal files are present and the header has no
//! signal length, the length is derived from the file size as wfdb-python does.
//!
//! An `.edf` path shows the EDF/EDF+ header instead (`docs/edf.md`): the same keys where
//! they apply, plus an `edf` object with every header field as written.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::Context;

use crate::cli::args::{GlobalArgs, InfoArgs};
use crate::edf::{self, EdfReader};
use crate::error::EXIT_OK;
use crate::wfdb::{self, Header, RecordReader};

/// Runs `physio info`.
pub fn run(args: &InfoArgs, _global: &GlobalArgs) -> anyhow::Result<u8> {
    if edf::is_edf_path(&args.record) {
        return run_edf(args);
    }
    let header = wfdb::read_header(&args.record)?;
    // Signal files are optional for `info`; a reader is only used to derive the length.
    let reader = RecordReader::open(&args.record).ok();
    let derived = reader.as_ref().map(RecordReader::n_frames);
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = header.wfdb_python_fields(derived);
        serde_json::to_writer_pretty(&mut out, &value).context("writing JSON")?;
        writeln!(out)?;
    } else {
        out.write_all(summary(&header, derived).as_bytes())?;
    }
    Ok(EXIT_OK)
}

/// `physio info x.edf`: the EDF header (the error already names the file).
fn run_edf(args: &InfoArgs) -> anyhow::Result<u8> {
    let reader = EdfReader::open(&args.record)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &reader.wfdb_python_fields())
            .context("writing JSON")?;
        writeln!(out)?;
    } else {
        out.write_all(edf_summary(&reader).as_bytes())?;
    }
    Ok(EXIT_OK)
}

fn edf_summary(r: &EdfReader) -> String {
    let h = r.header();
    let mut s = String::new();
    let name = r
        .path()
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let variant = match h.variant {
        edf::EdfVariant::Edf => "EDF",
        edf::EdfVariant::EdfPlusC => "EDF+C",
        edf::EdfVariant::EdfPlusD => "EDF+D",
    };
    let _ = writeln!(s, "Record {name} ({variant})");
    let _ = writeln!(s, "Patient: {}", h.patient_id);
    let _ = writeln!(s, "Recording: {}", h.recording_id);
    let start = match (h.base_date, h.base_time) {
        (Some(d), Some(t)) => format!("{d} {t}"),
        _ => format!("{} {} (as written)", h.start_date, h.start_time),
    };
    let _ = writeln!(s, "Starting time: {start}");
    let _ = writeln!(
        s,
        "Length: {} ({} frames; {} data records of {} s)",
        duration(r.n_frames(), r.fs()),
        r.n_frames(),
        h.n_records,
        h.record_duration
    );
    let _ = writeln!(s, "Sampling frequency: {} Hz", r.fs());
    let _ = writeln!(
        s,
        "{} signal{}",
        r.channels().len(),
        if r.channels().len() == 1 { "" } else { "s" }
    );
    for (k, &i) in r.channels().iter().enumerate() {
        let sig = &h.signals[i];
        let _ = writeln!(s, "Signal {k}: {}", sig.label);
        let _ = writeln!(
            s,
            "  {} samples per frame ({} Hz), {} {} .. {} {} (digital {} .. {})",
            r.samps_per_frame()[k],
            r.fs() * f64::from(r.samps_per_frame()[k]),
            sig.physical_min,
            sig.physical_dimension,
            sig.physical_max,
            sig.physical_dimension,
            sig.digital_min,
            sig.digital_max
        );
        if !sig.transducer.is_empty() {
            let _ = writeln!(s, "  Transducer: {}", sig.transducer);
        }
        if !sig.prefiltering.is_empty() {
            let _ = writeln!(s, "  Prefiltering: {}", sig.prefiltering);
        }
    }
    if r.has_annotations() {
        let _ = writeln!(s, "EDF+ annotations: yes (convert with --annotations edf)");
    }
    s
}

/// `H:MM:SS.mmm` for a number of frames at `fs` (wfdbdesc's "Length").
fn duration(frames: u64, fs: f64) -> String {
    if fs <= 0.0 {
        return format!("{frames} frames");
    }
    let secs = frames as f64 / fs;
    let whole = secs.trunc() as u64;
    let ms = ((secs - secs.trunc()) * 1000.0).round() as u64;
    format!(
        "{}:{:02}:{:02}.{:03}",
        whole / 3600,
        whole / 60 % 60,
        whole % 60,
        ms.min(999)
    )
}

fn summary(h: &Header, derived: Option<u64>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Record {}", h.record_name);
    let start = match (h.base_time, h.base_date) {
        (Some(t), Some(d)) => format!("{d} {t}"),
        (Some(t), None) => t.to_string(),
        _ => "not specified".to_string(),
    };
    let _ = writeln!(s, "Starting time: {start}");
    match h.sig_len.or(derived) {
        Some(n) => {
            let _ = writeln!(s, "Length: {} ({n} frames)", duration(n, h.fs));
        }
        None => {
            let _ = writeln!(s, "Length: not specified");
        }
    }
    let _ = write!(s, "Sampling frequency: {} Hz", h.fs);
    if let Some(cf) = h.counter_freq {
        let _ = write!(s, " (counter frequency {cf} Hz");
        if let Some(bc) = h.base_counter {
            let _ = write!(s, ", base counter {bc}");
        }
        s.push(')');
    }
    s.push('\n');
    let _ = writeln!(
        s,
        "{} signal{}",
        h.n_sig,
        if h.n_sig == 1 { "" } else { "s" }
    );
    if let Some(segs) = &h.segments {
        let layout = if segs.first().is_some_and(|g| g.len == 0) {
            "variable"
        } else {
            "fixed"
        };
        let _ = writeln!(s, "{} segments ({layout} layout):", segs.len());
        for g in segs {
            let name = if g.is_gap() { "~ (gap)" } else { &g.name };
            let _ = writeln!(s, "  {name:<24} {:>10} frames", g.len);
        }
    }
    for (i, sig) in h.signals.iter().enumerate() {
        let _ = writeln!(s, "Signal {i}:");
        let desc = if sig.description.is_empty() {
            "(none)"
        } else {
            &sig.description
        };
        let _ = writeln!(s, "  Description: {desc}");
        let _ = writeln!(s, "  File: {}", sig.file_name);
        let _ = write!(s, "  Storage format: {}", sig.format);
        if sig.samps_per_frame > 1 {
            let _ = write!(s, " ({} samples per frame)", sig.samps_per_frame);
        }
        if sig.skew > 0 {
            let _ = write!(s, ", skew {}", sig.skew);
        }
        if sig.byte_offset > 0 {
            let _ = write!(s, ", byte offset {}", sig.byte_offset);
        }
        s.push('\n');
        let _ = writeln!(s, "  Gain: {} adu/{}", sig.adc_gain, sig.units);
        let _ = writeln!(s, "  Baseline: {}", sig.baseline);
        if let Some(r) = sig.adc_res {
            let _ = writeln!(s, "  ADC resolution: {r} bits");
        }
        if let Some(z) = sig.adc_zero {
            let _ = writeln!(s, "  ADC zero: {z}");
        }
        if let Some(v) = sig.init_value {
            let _ = writeln!(s, "  Initial value: {v}");
        }
        if let Some(c) = sig.checksum {
            let _ = writeln!(s, "  Checksum: {c}");
        }
    }
    for c in &h.comments {
        let _ = writeln!(s, "# {c}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_formats_like_wfdbdesc() {
        assert_eq!(duration(650000, 360.0), "0:30:05.556");
        assert_eq!(duration(10, 0.0), "10 frames");
    }
}
