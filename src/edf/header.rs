//! The EDF/EDF+ header: a 256-byte fixed part and 256 bytes per signal, every field
//! printable ASCII padded with spaces (EDF spec, Kemp et al. 1992, "Header record";
//! EDF+ spec, Kemp & Olivan 2003, section 2.1).
//!
//! The parser takes the file's length so that every size the header declares is checked
//! against the bytes that exist before anything is allocated: a lying header (a million
//! signals, a data record larger than the file) is an error, never a huge allocation.

use std::path::Path;

use super::EdfError;
use crate::wfdb::{BaseDate, BaseTime};

/// Bytes of the fixed part of the header.
pub const FIXED_BYTES: usize = 256;
/// Bytes of header per signal.
pub const SIGNAL_BYTES: usize = 256;
/// The label EDF+ reserves for annotation signals.
pub const ANNOTATION_LABEL: &str = "EDF Annotations";

/// Which flavour of EDF a file is (from its reserved field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum EdfVariant {
    /// Plain EDF (1992): contiguous data records, no annotation signals required.
    #[serde(rename = "EDF")]
    Edf,
    /// EDF+ with contiguous data records (`EDF+C`).
    #[serde(rename = "EDF+C")]
    EdfPlusC,
    /// EDF+ whose data records may be interrupted (`EDF+D`): each record's start time is
    /// the onset of its first time-keeping annotation.
    #[serde(rename = "EDF+D")]
    EdfPlusD,
}

impl EdfVariant {
    /// True for EDF+ (either variant).
    pub fn is_plus(self) -> bool {
        !matches!(self, EdfVariant::Edf)
    }
}

/// One signal's 256 bytes of header, fields trimmed of their padding.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EdfSignal {
    /// Label (`EEG Fpz-Cz`, or `EDF Annotations` for an annotation signal).
    pub label: String,
    /// Transducer type.
    pub transducer: String,
    /// Physical dimension (units).
    pub physical_dimension: String,
    /// Physical minimum.
    pub physical_min: f64,
    /// Physical maximum.
    pub physical_max: f64,
    /// Digital minimum.
    pub digital_min: i64,
    /// Digital maximum.
    pub digital_max: i64,
    /// Prefiltering.
    pub prefiltering: String,
    /// Samples in each data record.
    pub samples_per_record: u64,
    /// The 32 reserved bytes, trimmed.
    pub reserved: String,
}

impl EdfSignal {
    /// True for an EDF+ annotation signal (`EDF Annotations`).
    pub fn is_annotation(&self) -> bool {
        self.label == ANNOTATION_LABEL
    }

    /// Physical units per digital unit and the physical value of digital 0, so that
    /// `physical = digital * gain + offset` maps digital min to physical min and digital
    /// max to physical max (EDF spec; MNE's `_read_edf_header`, pyedflib/edflib).
    ///
    /// A blank or dummy channel (digital min = max, as CHB-MIT's `-` channels, or
    /// physical min = max) has no defined scale; as MNE does, a zero range is taken as 1,
    /// so such a channel reads `physical_min + (digital - digital_min) * range` where
    /// `range` is the non-zero one of the two (or 1): a constant channel reads as its
    /// physical minimum.
    pub fn scale(&self) -> (f64, f64) {
        let mut phys = self.physical_max - self.physical_min;
        let mut dig = (self.digital_max - self.digital_min) as f64;
        if dig == 0.0 || !dig.is_finite() {
            dig = 1.0;
        }
        if phys == 0.0 || !phys.is_finite() {
            phys = 1.0;
        }
        let gain = phys / dig;
        (gain, self.physical_min - self.digital_min as f64 * gain)
    }
}

/// A parsed EDF or EDF+ header.
#[derive(Debug, Clone, PartialEq)]
pub struct EdfHeader {
    /// Version field (`0` for EDF; BDF's `\xffBIOSEMI` is refused).
    pub version: String,
    /// Local patient identification (EDF+: `code sex birthdate name ...`).
    pub patient_id: String,
    /// Local recording identification (EDF+: `Startdate dd-MMM-yyyy admincode
    /// technician equipment ...`).
    pub recording_id: String,
    /// Start date field as written (`dd.mm.yy`).
    pub start_date: String,
    /// Start time field as written (`hh.mm.ss`).
    pub start_time: String,
    /// Number of bytes in the header as declared.
    pub header_bytes: u64,
    /// The 44 reserved bytes, trimmed (`EDF+C`, `EDF+D` or anything for EDF).
    pub reserved: String,
    /// Number of data records as declared (-1: unknown, counted from the file size).
    pub n_records_declared: i64,
    /// Number of data records in the file.
    pub n_records: u64,
    /// Duration of a data record in seconds.
    pub record_duration: f64,
    /// Every signal, annotation signals included, in header order.
    pub signals: Vec<EdfSignal>,
    /// EDF, EDF+C or EDF+D.
    pub variant: EdfVariant,
    /// Start date (years 85–99 are 1985–1999, 00–84 are 2000–2084; EDF+ files with a
    /// four-digit `Startdate` in the recording field use that year).
    pub base_date: Option<BaseDate>,
    /// Start time (whole seconds; the EDF+ sub-second start is in the first data
    /// record's time-keeping annotation, see `EdfReader`).
    pub base_time: Option<BaseTime>,
}

impl EdfHeader {
    /// Bytes of one data record (2 bytes per sample of every signal).
    pub fn record_bytes(&self) -> u64 {
        self.signals.iter().map(|s| s.samples_per_record * 2).sum()
    }

    /// Frames per data record: the greatest common divisor of the ordinary
    /// (non-annotation) signals' samples per data record (0 without such signals).
    pub fn frames_per_record(&self) -> u64 {
        self.signals
            .iter()
            .filter(|s| !s.is_annotation())
            .fold(0, |g, s| gcd(g, s.samples_per_record))
    }

    /// Frame rate in Hz, `frames_per_record / record_duration`, as [`super::EdfReader::fs`]
    /// reports it (0 for an annotation-only file or a zero duration).
    pub fn frame_rate(&self) -> f64 {
        let g = self.frames_per_record();
        if g == 0 || self.record_duration <= 0.0 {
            0.0
        } else {
            g as f64 / self.record_duration
        }
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The header size the fixed part `fixed` (its first [`FIXED_BYTES`] bytes) declares by
/// its signal count: `256 × (ns + 1)`; `None` when the count is not a non-negative
/// integer (the 4-character field bounds it at 9999 signals, a 2.5 MB header).
pub fn declared_header_len(fixed: &[u8]) -> Option<u64> {
    let ns = String::from_utf8_lossy(fixed.get(252..FIXED_BYTES)?)
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(FIXED_BYTES as u64 + ns * SIGNAL_BYTES as u64)
}

/// An ASCII field trimmed of its padding (bytes outside ASCII kept as Latin-1, which is
/// what EDF files written by non-conforming tools put there).
fn text(b: &[u8]) -> String {
    let s: String = b.iter().map(|&c| c as char).collect();
    s.trim_matches(|c: char| c == ' ' || c == '\0').to_string()
}

/// Reads the header of `data` (at least the fixed part, then the signal part) from a
/// file of `file_len` bytes.
pub fn parse_header(data: &[u8], file_len: u64, path: &Path) -> Result<EdfHeader, EdfError> {
    let bad = |field: &'static str, reason: String| EdfError::Header {
        path: path.to_path_buf(),
        field,
        signal: None,
        reason,
    };
    if data.len() < FIXED_BYTES {
        return Err(bad(
            "header",
            format!(
                "file has {} bytes, an EDF header has at least {FIXED_BYTES}",
                data.len()
            ),
        ));
    }
    if data[0] == 0xff {
        return Err(EdfError::Unsupported {
            path: path.to_path_buf(),
            reason: "BDF (24-bit) files are not supported, only EDF and EDF+".to_string(),
        });
    }
    let field = |a: usize, n: usize| text(&data[a..a + n]);
    let int = |a: usize, n: usize, name: &'static str| -> Result<i64, EdfError> {
        let s = field(a, n);
        s.parse::<i64>()
            .map_err(|_| bad(name, format!("{s:?} is not an integer")))
    };
    let version = field(0, 8);
    let patient_id = field(8, 80);
    let recording_id = field(88, 80);
    let start_date = field(168, 8);
    let start_time = field(176, 8);
    let header_bytes = int(184, 8, "header bytes")?;
    let reserved = field(192, 44);
    let n_records_declared = int(236, 8, "number of data records")?;
    let duration_s = field(244, 8);
    let record_duration: f64 = duration_s
        .parse()
        .ok()
        .filter(|d: &f64| d.is_finite() && *d >= 0.0)
        .ok_or_else(|| {
            bad(
                "data record duration",
                format!("{duration_s:?} is not a non-negative number"),
            )
        })?;
    let ns = int(252, 4, "number of signals")?;
    if ns < 0 {
        return Err(bad("number of signals", format!("{ns} is negative")));
    }
    let ns = ns as usize;
    let expected = (FIXED_BYTES + SIGNAL_BYTES * ns) as u64;
    if expected > file_len || data.len() < expected as usize {
        return Err(bad(
            "number of signals",
            format!("{ns} signals need a {expected}-byte header, the file has {file_len} bytes"),
        ));
    }
    if header_bytes != expected as i64 {
        return Err(bad(
            "header bytes",
            format!("{header_bytes}, but {ns} signals make the header {expected} bytes"),
        ));
    }
    // The signal part stores each field for all signals before the next field.
    let mut at = FIXED_BYTES;
    let mut column = |width: usize| -> Vec<String> {
        let v = (0..ns)
            .map(|i| text(&data[at + i * width..at + (i + 1) * width]))
            .collect();
        at += width * ns;
        v
    };
    let labels = column(16);
    let transducers = column(80);
    let dims = column(8);
    let pmins = column(8);
    let pmaxs = column(8);
    let dmins = column(8);
    let dmaxs = column(8);
    let prefilters = column(80);
    let nsamps = column(8);
    let reserveds = column(32);
    let sig_bad = |i: usize, field: &'static str, reason: String| EdfError::Header {
        path: path.to_path_buf(),
        field,
        signal: Some(i),
        reason,
    };
    let mut signals = Vec::with_capacity(ns);
    for i in 0..ns {
        let float = |s: &str, name: &'static str| -> Result<f64, EdfError> {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| sig_bad(i, name, format!("{s:?} is not a number")))
        };
        let digital = |s: &str, name: &'static str| -> Result<i64, EdfError> {
            let v = s
                .parse::<i64>()
                .map_err(|_| sig_bad(i, name, format!("{s:?} is not an integer")))?;
            if !(-32768..=32767).contains(&v) {
                return Err(sig_bad(i, name, format!("{v} is outside 16 bits")));
            }
            Ok(v)
        };
        let n: u64 = nsamps[i].parse().map_err(|_| {
            sig_bad(
                i,
                "samples per data record",
                format!("{:?} is not a non-negative integer", nsamps[i]),
            )
        })?;
        signals.push(EdfSignal {
            label: labels[i].clone(),
            transducer: transducers[i].clone(),
            physical_dimension: dims[i].clone(),
            physical_min: float(&pmins[i], "physical minimum")?,
            physical_max: float(&pmaxs[i], "physical maximum")?,
            digital_min: digital(&dmins[i], "digital minimum")?,
            digital_max: digital(&dmaxs[i], "digital maximum")?,
            prefiltering: prefilters[i].clone(),
            samples_per_record: n,
            reserved: reserveds[i].clone(),
        });
    }
    let variant = if reserved.starts_with("EDF+C") {
        EdfVariant::EdfPlusC
    } else if reserved.starts_with("EDF+D") {
        EdfVariant::EdfPlusD
    } else {
        EdfVariant::Edf
    };
    // Data record size, checked against the file before anything is read.
    let data_len = file_len - expected;
    let record_bytes = signals
        .iter()
        .try_fold(0u64, |acc, s| {
            s.samples_per_record
                .checked_mul(2)
                .and_then(|b| acc.checked_add(b))
        })
        .filter(|&b| b <= data_len.max(1) || n_records_declared == 0)
        .ok_or_else(|| {
            bad(
                "samples per data record",
                format!("one data record would be larger than the file's {data_len} data bytes"),
            )
        })?;
    let n_records = if record_bytes == 0 {
        u64::try_from(n_records_declared).unwrap_or(0)
    } else if n_records_declared == -1 {
        data_len / record_bytes
    } else if n_records_declared < 0 {
        return Err(bad(
            "number of data records",
            format!("{n_records_declared} is negative"),
        ));
    } else {
        let n = n_records_declared as u64;
        let need = n.saturating_mul(record_bytes);
        if need > data_len {
            return Err(EdfError::Truncated {
                path: path.to_path_buf(),
                reason: format!(
                    "{n} data records of {record_bytes} bytes need {need} bytes, the file has \
                     {data_len} after the header"
                ),
            });
        }
        n
    };
    let base_date = parse_date(&start_date, &recording_id, variant.is_plus());
    let base_time = parse_time(&start_time);
    Ok(EdfHeader {
        version,
        patient_id,
        recording_id,
        start_date,
        start_time,
        header_bytes: header_bytes as u64,
        reserved,
        n_records_declared,
        n_records,
        record_duration,
        signals,
        variant,
        base_date,
        base_time,
    })
}

/// Three numbers separated by `.` (`dd.mm.yy`, `hh.mm.ss`).
fn triple(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split('.').map(|p| p.trim().parse::<u32>().ok());
    let t = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(t)
}

fn parse_date(field: &str, recording_id: &str, plus: bool) -> Option<BaseDate> {
    let (day, month, yy) = triple(field)?;
    let mut year = if yy >= 85 { 1900 + yy } else { 2000 + yy };
    // EDF+ 2.1.3.2: the recording field's `Startdate dd-MMM-yyyy` has the full year.
    if plus
        && let Some(rest) = recording_id.strip_prefix("Startdate ")
        && let Some(date) = rest.split(' ').next()
        && let Some(y) = date.rsplit('-').next().and_then(|y| y.parse::<u32>().ok())
        && date.len() == 11
    {
        year = y;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year > 9999 {
        return None;
    }
    Some(BaseDate {
        year: year as u16,
        month: month as u8,
        day: day as u8,
    })
}

fn parse_time(field: &str) -> Option<BaseTime> {
    let (hour, minute, second) = triple(field)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(BaseTime {
        hour: hour as u8,
        minute: minute as u8,
        second: second as u8,
        microsecond: 0,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One signal of a header built by [`build`].
    pub(crate) struct Sig<'a> {
        pub label: &'a str,
        pub dim: &'a str,
        pub pmin: &'a str,
        pub pmax: &'a str,
        pub dmin: &'a str,
        pub dmax: &'a str,
        pub n: &'a str,
    }

    fn pad(s: &str, n: usize) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        v.resize(n, b' ');
        v
    }

    /// A header with `sigs`, as an EDF writer would produce it.
    pub(crate) fn build(reserved: &str, n_records: &str, duration: &str, sigs: &[Sig]) -> Vec<u8> {
        let ns = sigs.len();
        let mut h = Vec::new();
        h.extend(pad("0", 8));
        h.extend(pad("X M 01-JAN-1970 Anon", 80));
        h.extend(pad("Startdate 10-DEC-2009 X X test", 80));
        h.extend(pad("10.12.09", 8));
        h.extend(pad("12.44.02", 8));
        h.extend(pad(&(256 * (ns + 1)).to_string(), 8));
        h.extend(pad(reserved, 44));
        h.extend(pad(n_records, 8));
        h.extend(pad(duration, 8));
        h.extend(pad(&ns.to_string(), 4));
        let col = |h: &mut Vec<u8>, f: &dyn Fn(&Sig) -> String, w: usize| {
            for s in sigs {
                h.extend(pad(&f(s), w));
            }
        };
        col(&mut h, &|s| s.label.into(), 16);
        col(&mut h, &|_| "AgAgCl".into(), 80);
        col(&mut h, &|s| s.dim.into(), 8);
        col(&mut h, &|s| s.pmin.into(), 8);
        col(&mut h, &|s| s.pmax.into(), 8);
        col(&mut h, &|s| s.dmin.into(), 8);
        col(&mut h, &|s| s.dmax.into(), 8);
        col(&mut h, &|_| "HP:0.1Hz".into(), 80);
        col(&mut h, &|s| s.n.into(), 8);
        col(&mut h, &|_| String::new(), 32);
        h
    }

    pub(crate) fn sig<'a>(label: &'a str, n: &'a str) -> Sig<'a> {
        Sig {
            label,
            dim: "uV",
            pmin: "-3276.8",
            pmax: "3276.7",
            dmin: "-32768",
            dmax: "32767",
            n,
        }
    }

    #[test]
    fn parses_fields_and_dates() {
        let mut f = build(
            "EDF+C",
            "2",
            "1",
            &[sig("EEG", "4"), sig(ANNOTATION_LABEL, "8")],
        );
        f.resize(f.len() + 2 * 24, 0);
        let h = parse_header(&f, f.len() as u64, Path::new("x.edf")).unwrap();
        assert_eq!(h.variant, EdfVariant::EdfPlusC);
        assert_eq!(h.n_records, 2);
        assert_eq!(h.signals.len(), 2);
        assert_eq!(h.signals[0].physical_dimension, "uV");
        assert_eq!(h.signals[0].digital_min, -32768);
        assert!(h.signals[1].is_annotation());
        assert_eq!(h.base_date.unwrap().to_string(), "2009-12-10");
        assert_eq!(h.base_time.unwrap().to_string(), "12:44:02");
        assert_eq!(h.patient_id, "X M 01-JAN-1970 Anon");
        let (gain, offset) = h.signals[0].scale();
        assert!((gain - 0.1).abs() < 1e-12 && offset.abs() < 0.1);
    }

    #[test]
    fn frame_rate_and_declared_length_come_from_the_header_alone() {
        let f = build(
            "EDF+C",
            "0",
            "2",
            &[
                sig("EEG", "256"),
                sig("ECG", "64"),
                sig(ANNOTATION_LABEL, "30"),
            ],
        );
        assert_eq!(declared_header_len(&f[..FIXED_BYTES]), Some(256 * 4));
        let h = parse_header(&f, f.len() as u64, Path::new("x.edf")).unwrap();
        // gcd(256, 64) frames per 2 s data record; the annotation signal is no channel.
        assert_eq!(h.frames_per_record(), 64);
        assert_eq!(h.frame_rate(), 32.0);
        let mut bad = f.clone();
        bad[252..256].copy_from_slice(b"-1  ");
        assert_eq!(declared_header_len(&bad), None);
        assert_eq!(declared_header_len(&f[..100]), None);
    }

    #[test]
    fn unknown_record_count_comes_from_the_file_size() {
        let mut f = build("", "-1", "1", &[sig("EEG", "4")]);
        f.resize(f.len() + 8 * 3 + 5, 0);
        let h = parse_header(&f, f.len() as u64, Path::new("x.edf")).unwrap();
        assert_eq!(h.n_records, 3);
        assert_eq!(h.variant, EdfVariant::Edf);
    }

    #[test]
    fn lying_sizes_are_errors_not_allocations() {
        let p = Path::new("x.edf");
        // More signals than bytes.
        let mut f = build("", "1", "1", &[sig("EEG", "4")]);
        f[252..256].copy_from_slice(b"9999");
        assert!(matches!(
            parse_header(&f, f.len() as u64, p),
            Err(EdfError::Header {
                field: "number of signals",
                ..
            })
        ));
        // A data record larger than the file.
        let f = build("", "1", "1", &[sig("EEG", "99999999")]);
        assert!(parse_header(&f, f.len() as u64 + 10, p).is_err());
        // More records than the file holds.
        let mut f = build("", "1000000", "1", &[sig("EEG", "4")]);
        f.resize(f.len() + 8, 0);
        assert!(matches!(
            parse_header(&f, f.len() as u64, p),
            Err(EdfError::Truncated { .. })
        ));
        // Not a number.
        let f = build("", "x", "1", &[sig("EEG", "4")]);
        assert!(parse_header(&f, f.len() as u64, p).is_err());
        // Too short for a header at all.
        assert!(parse_header(b"0", 1, p).is_err());
    }

    #[test]
    fn blank_channel_scale_is_defined() {
        let s = EdfSignal {
            label: "-".into(),
            transducer: String::new(),
            physical_dimension: String::new(),
            physical_min: 0.0,
            physical_max: 0.0,
            digital_min: 0,
            digital_max: 0,
            prefiltering: String::new(),
            samples_per_record: 1,
            reserved: String::new(),
        };
        assert_eq!(s.scale(), (1.0, 0.0));
    }

    #[test]
    fn two_digit_years_follow_the_edf_clipping_date() {
        assert_eq!(parse_date("01.02.85", "", false).unwrap().year, 1985);
        assert_eq!(parse_date("01.02.84", "", false).unwrap().year, 2084);
        assert_eq!(
            parse_date("01.02.84", "Startdate 01-FEB-2184 X X X", true)
                .unwrap()
                .year,
            2184
        );
        assert!(parse_date("xx", "", false).is_none());
        assert!(parse_time("25.00.00").is_none());
    }
}
