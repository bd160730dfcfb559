//! Writing WFDB records (a header and its signal files) in the common uncompressed
//! formats 16, 212, 80, 24 and 32 (and the other uncompressed formats, which share the
//! encoder). Used to generate test fixtures of any shape and by the benchmarks.
//!
//! Signals with the same `file_name` are interleaved frame by frame in one file, in the
//! order given (signal(5)); all signals of one file must share a format. The header
//! carries each signal's initial value and checksum, so other readers can verify it.
//! Files are written atomically (temporary file, then rename).

use std::fmt::Write as _;
use std::path::Path;

use super::WfdbError;
use super::format::{self, SignalFormat};

/// One signal to write.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteSignal {
    /// Signal name (header description field).
    pub name: String,
    /// Physical units.
    pub units: String,
    /// Storage format.
    pub format: SignalFormat,
    /// ADC gain (must be non-zero and finite).
    pub adc_gain: f64,
    /// Baseline.
    pub baseline: i64,
    /// ADC resolution in bits.
    pub adc_res: u32,
    /// Samples per frame (at least 1).
    pub samps_per_frame: u32,
    /// Signal file name (relative to the record directory).
    pub file_name: String,
    /// The digital samples: `n_frames * samps_per_frame` values in time order.
    pub digital: Vec<i32>,
}

/// Writes `<dir>/<record_name>.hea` and the signal files of `signals`.
pub fn write_record(
    dir: &Path,
    record_name: &str,
    fs: f64,
    n_frames: u64,
    signals: &[WriteSignal],
) -> Result<(), WfdbError> {
    let hea = dir.join(format!("{record_name}.hea"));
    let bad = |reason: String| WfdbError::Write {
        path: hea.clone(),
        reason,
    };
    if record_name.is_empty()
        || !record_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(bad(format!("invalid record name {record_name:?}")));
    }
    if !(fs.is_finite() && fs > 0.0) {
        return Err(bad(format!("invalid sampling frequency {fs}")));
    }
    // Group signals by file, preserving first appearance.
    let mut files: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, s) in signals.iter().enumerate() {
        if s.file_name.is_empty()
            || s.file_name.contains(['/', '\\', ' ', '\t'])
            || s.file_name == "~"
        {
            return Err(bad(format!("invalid signal file name {:?}", s.file_name)));
        }
        if s.format.is_flac() || s.format == SignalFormat::F0 {
            return Err(bad(format!("format {} cannot be written", s.format)));
        }
        if s.samps_per_frame == 0 {
            return Err(bad(format!("signal {i}: samples per frame must be >= 1")));
        }
        if !(s.adc_gain.is_finite() && s.adc_gain != 0.0) {
            return Err(bad(format!("signal {i}: invalid gain {}", s.adc_gain)));
        }
        if s.units.contains([' ', '\t', '/', '(', ')']) || s.name.contains(['\t', '\n', '\r']) {
            return Err(bad(format!("signal {i}: units or name contain separators")));
        }
        let expected = n_frames.saturating_mul(u64::from(s.samps_per_frame));
        if s.digital.len() as u64 != expected {
            return Err(bad(format!(
                "signal {i}: {} samples, expected {expected}",
                s.digital.len()
            )));
        }
        let (lo, hi) = format::value_range(s.format);
        if let Some(v) = s
            .digital
            .iter()
            .find(|&&v| i64::from(v) < lo || i64::from(v) > hi)
        {
            return Err(bad(format!(
                "signal {i}: value {v} does not fit format {}",
                s.format
            )));
        }
        match files.iter_mut().find(|(f, _)| *f == s.file_name) {
            Some((_, members)) => {
                if signals[members[0]].format != s.format {
                    return Err(bad(format!(
                        "signals in file {} have different formats",
                        s.file_name
                    )));
                }
                members.push(i);
            }
            None => files.push((&s.file_name, vec![i])),
        }
    }

    let mut text = format!(
        "{record_name} {} {} {n_frames}\n",
        signals.len(),
        fmt_f64(fs)
    );
    for s in signals {
        let spf = if s.samps_per_frame > 1 {
            format!("x{}", s.samps_per_frame)
        } else {
            String::new()
        };
        let init = s.digital.first().copied().unwrap_or(0);
        let checksum = s
            .digital
            .iter()
            .fold(0u16, |a, &v| a.wrapping_add(v as u16)) as i16;
        let _ = write!(
            text,
            "{} {}{spf} {}({})/{} {} 0 {init} {checksum} 0",
            s.file_name,
            s.format.code(),
            fmt_f64(s.adc_gain),
            s.baseline,
            if s.units.is_empty() { "mV" } else { &s.units },
            s.adc_res,
        );
        if !s.name.is_empty() {
            let _ = write!(text, " {}", s.name);
        }
        text.push('\n');
    }

    for (file, members) in &files {
        let format = signals[members[0]].format;
        let tspf: usize = members
            .iter()
            .map(|&m| signals[m].samps_per_frame as usize)
            .sum();
        let mut flat = Vec::with_capacity(n_frames as usize * tspf);
        for f in 0..n_frames as usize {
            for &m in members {
                let s = &signals[m];
                let spf = s.samps_per_frame as usize;
                flat.extend_from_slice(&s.digital[f * spf..(f + 1) * spf]);
            }
        }
        if format == SignalFormat::F8 {
            // Format 8 stores first differences from the initial value; each must fit
            // in a signed byte.
            let mut prev: Vec<i32> = members
                .iter()
                .map(|&m| signals[m].digital.first().copied().unwrap_or(0))
                .collect();
            for f in 0..n_frames as usize {
                let mut at = f * tspf;
                for (c, &m) in members.iter().enumerate() {
                    for _ in 0..signals[m].samps_per_frame {
                        let d = flat[at].wrapping_sub(prev[c]);
                        if !(-128..=127).contains(&d) {
                            return Err(bad(format!(
                                "signal {m}: a step of {d} does not fit format 8"
                            )));
                        }
                        prev[c] = flat[at];
                        flat[at] = d;
                        at += 1;
                    }
                }
            }
        }
        let mut bytes = Vec::new();
        format::encode(format, &flat, &mut bytes);
        let path = dir.join(file);
        crate::fsutil::write_atomic(&path, &bytes).map_err(|e| WfdbError::Write {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    crate::fsutil::write_atomic(&hea, text.as_bytes()).map_err(|e| WfdbError::Write {
        path: hea.clone(),
        reason: e.to_string(),
    })?;
    Ok(())
}

/// Shortest decimal that reads back as the same f64 (Rust's `Display` for f64), which
/// header(5) accepts as a gain or frequency.
fn fmt_f64(v: f64) -> String {
    let s = v.to_string();
    if s.contains(['e', 'E']) {
        format!("{v:e}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wfdb::RecordReader;

    #[test]
    fn refuses_out_of_range_values_and_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        let sig = WriteSignal {
            name: "a".into(),
            units: "mV".into(),
            format: SignalFormat::F212,
            adc_gain: 200.0,
            baseline: 0,
            adc_res: 12,
            samps_per_frame: 1,
            file_name: "r.dat".into(),
            digital: vec![0, 5000],
        };
        assert!(write_record(dir.path(), "r", 250.0, 2, std::slice::from_ref(&sig)).is_err());
        assert!(write_record(dir.path(), "../r", 250.0, 2, &[]).is_err());
    }

    #[test]
    fn format_8_differences_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let sig = WriteSignal {
            name: "a".into(),
            units: "mV".into(),
            format: SignalFormat::F8,
            adc_gain: 100.0,
            baseline: 3,
            adc_res: 8,
            samps_per_frame: 2,
            file_name: "r.dat".into(),
            digital: vec![1000, 1100, 1000, 900, 1027, 1027],
        };
        write_record(dir.path(), "r", 250.0, 3, std::slice::from_ref(&sig)).unwrap();
        let rec = RecordReader::open(&dir.path().join("r")).unwrap();
        assert_eq!(rec.read_digital(0..3).unwrap()[0], sig.digital);
        assert_eq!(rec.read_digital(1..2).unwrap()[0], vec![1000, 900]);
    }
}
