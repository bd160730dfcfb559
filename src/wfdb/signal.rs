//! Reading samples: [`RecordReader`] opens a single- or multi-segment record (headers
//! only) and decodes any frame range into channel-major digital or physical samples.
//!
//! The results match wfdb-python 4.3.1's `rdrecord(..., smooth_frames=False)`
//! (`wfdb/io/_signal.py` `_rd_segment`, `_rd_dat_signals`, `_skew_sig`; `record.py`
//! `MultiRecord.multi_to_single`):
//!
//! * signals sharing a file name share one signal file; its format and byte offset are
//!   those of its first signal (signal(5): "all signals in a file have the same format");
//! * a signal with skew `s` is shifted so that its sample for frame `f` is the one stored
//!   in frame `f + s`; samples beyond the end of the data are the invalid value;
//! * format 8 stores first differences, integrated from the initial value;
//! * physical value = `(digital as f64 - baseline as f64) / gain`, NaN for the format's
//!   invalid value;
//! * a multi-segment record reads as one record: gaps and signals missing from a segment
//!   are the invalid value (digital) or NaN (physical); each segment is converted with
//!   its own gain and baseline.
//!
//! Range reads seek: only the blocks holding the requested frames are read, except for
//! format 8 (which needs the running sum from the start) and FLAC (no seek table).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::WfdbError;
use super::flac;
use super::format::{self, SignalFormat};
use super::header::{Header, read_header};

/// The value used for samples a format-8 signal cannot provide (beyond the end of a
/// skewed signal): WFDB's `WFDB_INVALID_SAMPLE`.
const WFDB_INVALID_SAMPLE: i32 = -32768;

/// Samples decoded per read call: bounded memory for any record size, large enough
/// that per-call overhead vanishes, small enough that the decoded chunk stays in the
/// CPU's L2 cache while it is distributed to the channels.
const CHUNK_SAMPLES: u64 = 1 << 16;

/// Frames per read call for a file with `tspf` samples per frame: a multiple of 6 so
/// that every chunk starts on a block boundary of every packed format when the first
/// one does.
fn chunk_frames(tspf: usize) -> u64 {
    (CHUNK_SAMPLES / tspf.max(1) as u64 / 6).max(1) * 6
}

/// One signal of the record as read (for multi-segment records, merged over segments).
#[derive(Debug, Clone, PartialEq)]
pub struct SignalInfo {
    /// Signal name (the header's description field).
    pub name: String,
    /// Physical units.
    pub units: String,
    /// Samples per frame.
    pub samps_per_frame: u32,
    /// Storage format; `None` where it differs between segments (or no segment has it).
    pub format: Option<SignalFormat>,
    /// ADC gain; `None` where it differs between segments.
    pub adc_gain: Option<f64>,
    /// Baseline; `None` where it differs between segments.
    pub baseline: Option<i64>,
}

/// A checksum check of one signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumResult {
    /// Index of the signal in [`RecordReader::signals`] (of its segment, for multi).
    pub signal: usize,
    /// Segment record name (the record name for single-segment records).
    pub record: String,
    /// Checksum in the header, if any.
    pub expected: Option<i64>,
    /// Sum of all stored samples modulo 2^16, as a signed 16-bit value.
    pub computed: i16,
    /// True when there is no header checksum or it matches (compared modulo 2^16).
    pub ok: bool,
}

/// Signals stored in one signal file.
#[derive(Debug, Clone)]
struct FileGroup {
    path: PathBuf,
    format: SignalFormat,
    byte_offset: u64,
    /// Signal indices in the record, in file order.
    channels: Vec<usize>,
    /// Offset of each channel's first sample within a frame.
    offsets: Vec<usize>,
    spf: Vec<usize>,
    skew: Vec<u64>,
    init: Vec<i32>,
    /// Samples per frame in the file.
    tspf: usize,
    /// Every signal has one sample per frame and no skew, and the channels are in
    /// increasing order (the fast path of `scatter`).
    simple: bool,
}

/// A single-segment record.
#[derive(Debug, Clone)]
struct Single {
    header: Header,
    n_frames: u64,
    files: Vec<FileGroup>,
}

#[derive(Debug, Clone)]
enum SegmentData {
    Gap,
    Data {
        reader: Box<Single>,
        /// For each merged signal, its index in this segment.
        map: Vec<Option<usize>>,
    },
}

#[derive(Debug, Clone)]
struct Segment {
    start: u64,
    len: u64,
    data: SegmentData,
}

#[derive(Debug, Clone)]
enum Kind {
    Single(Box<Single>),
    Multi {
        segments: Vec<Segment>,
        /// Why a digital read is refused (as wfdb-python refuses), if it is.
        digital_refusal: Option<String>,
    },
}

/// An open WFDB record (headers parsed, signal files checked) that decodes frame
/// ranges on demand.
///
/// ```no_run
/// use physio::wfdb::RecordReader;
/// let rec = RecordReader::open(std::path::Path::new("mitdb/100"))?;
/// let first_second = rec.read_physical(0..rec.fs() as u64)?;
/// println!("{} signals, {} samples of signal 0", rec.signals().len(), first_second[0].len());
/// # Ok::<(), physio::wfdb::WfdbError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RecordReader {
    header: Header,
    signals: Vec<SignalInfo>,
    n_frames: u64,
    kind: Kind,
}

impl RecordReader {
    /// Opens a record (path with or without `.hea`): parses its header and, for
    /// multi-segment records, every segment header; checks that signal files exist
    /// and are long enough. No samples are read.
    pub fn open(path: &Path) -> Result<Self, WfdbError> {
        let header = read_header(path)?;
        match &header.segments {
            None => {
                let single = Single::new(header.clone())?;
                let signals = single
                    .header
                    .signals
                    .iter()
                    .map(|s| SignalInfo {
                        name: s.description.clone(),
                        units: s.units.clone(),
                        samps_per_frame: s.samps_per_frame,
                        format: Some(s.format),
                        adc_gain: Some(s.adc_gain),
                        baseline: Some(s.baseline),
                    })
                    .collect();
                Ok(RecordReader {
                    header,
                    signals,
                    n_frames: single.n_frames,
                    kind: Kind::Single(Box::new(single)),
                })
            }
            Some(specs) => open_multi(header.clone(), specs),
        }
    }

    /// The top-level header as parsed.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The record name (from the record line).
    pub fn name(&self) -> &str {
        &self.header.record_name
    }

    /// Frame frequency in Hz.
    pub fn fs(&self) -> f64 {
        self.header.fs
    }

    /// Number of frames: the header's signal length, or (single-segment records without
    /// one) derived from the size of the first signal file as wfdb-python does.
    pub fn n_frames(&self) -> u64 {
        self.n_frames
    }

    /// The signals as read (multi-segment: merged, in layout/first-segment order).
    pub fn signals(&self) -> &[SignalInfo] {
        &self.signals
    }

    /// True for multi-segment records.
    pub fn is_multi_segment(&self) -> bool {
        matches!(self.kind, Kind::Multi { .. })
    }

    fn check_range(&self, frames: &Range<u64>) -> Result<(), WfdbError> {
        if frames.start > frames.end || frames.end > self.n_frames {
            return Err(WfdbError::Range {
                path: self.header.origin.clone(),
                start: frames.start,
                end: frames.end,
                n_frames: self.n_frames,
            });
        }
        Ok(())
    }

    /// Digital samples of frames `[range)`, channel-major: `out[j].len() == frames *
    /// spf[j]`. Multi-segment records: refused where wfdb-python refuses (variable
    /// layout with a signal whose format, gain, baseline or units differ between
    /// segments, or that no segment holds).
    pub fn read_digital(&self, frames: Range<u64>) -> Result<Vec<Vec<i32>>, WfdbError> {
        self.check_range(&frames)?;
        match &self.kind {
            Kind::Single(s) => s.read_digital(frames),
            Kind::Multi {
                segments,
                digital_refusal,
            } => {
                if let Some(reason) = digital_refusal {
                    return Err(WfdbError::Segments {
                        path: self.header.origin.clone(),
                        reason: reason.clone(),
                    });
                }
                let mut out: Vec<Vec<i32>> = self
                    .signals
                    .iter()
                    .map(|s| {
                        let fill = s
                            .format
                            .and_then(SignalFormat::invalid_value)
                            .unwrap_or(WFDB_INVALID_SAMPLE);
                        filled(&self.header.origin, &frames, s.samps_per_frame, fill)
                    })
                    .collect::<Result<_, _>>()?;
                self.scatter_segments(segments, &frames, &mut out, |r, local| {
                    r.read_digital(local)
                })?;
                Ok(out)
            }
        }
    }

    /// Copies each data segment's part of `frames` (read with `read`) into the merged,
    /// channel-major `out`, matching segment signals to record signals by name (`map`).
    /// Gaps and signals a segment lacks keep whatever `out` was filled with.
    fn scatter_segments<T: Copy>(
        &self,
        segments: &[Segment],
        frames: &Range<u64>,
        out: &mut [Vec<T>],
        read: impl Fn(&Single, Range<u64>) -> Result<Vec<Vec<T>>, WfdbError>,
    ) -> Result<(), WfdbError> {
        for seg in segments {
            let SegmentData::Data { reader, map } = &seg.data else {
                continue;
            };
            let Some(local) = overlap(seg, frames) else {
                continue;
            };
            let part = read(reader, local.clone())?;
            for (j, m) in map.iter().enumerate() {
                if let Some(k) = m {
                    let spf = self.signals[j].samps_per_frame as usize;
                    let at = ((seg.start + local.start - frames.start) as usize) * spf;
                    out[j][at..at + part[*k].len()].copy_from_slice(&part[*k]);
                }
            }
        }
        Ok(())
    }

    /// [`RecordReader::read_digital`] into caller-owned vectors (resized as needed), so
    /// a loop over many ranges or records reuses its memory instead of faulting in
    /// fresh pages for every read.
    pub fn read_digital_into(
        &self,
        frames: Range<u64>,
        out: &mut Vec<Vec<i32>>,
    ) -> Result<(), WfdbError> {
        self.check_range(&frames)?;
        match &self.kind {
            Kind::Single(s) => s.read_digital_into(frames, out),
            Kind::Multi { .. } => {
                *out = self.read_digital(frames)?;
                Ok(())
            }
        }
    }

    /// Physical values `(d - baseline) / gain` in f64 exactly as wfdb-python computes
    /// them; NaN for the format's invalid value, gap segments and signals absent from a
    /// segment.
    pub fn read_physical(&self, frames: Range<u64>) -> Result<Vec<Vec<f64>>, WfdbError> {
        self.check_range(&frames)?;
        match &self.kind {
            Kind::Single(s) => s.read_physical(frames),
            Kind::Multi { segments, .. } => {
                let mut out: Vec<Vec<f64>> = self
                    .signals
                    .iter()
                    .map(|s| {
                        vec![
                            f64::NAN;
                            ((frames.end - frames.start) * u64::from(s.samps_per_frame)) as usize
                        ]
                    })
                    .collect();
                self.scatter_segments(segments, &frames, &mut out, |r, local| {
                    r.read_physical(local)
                })?;
                Ok(out)
            }
        }
    }

    /// Each signal's [`PhysicalScale`], which turns [`RecordReader::read_digital`]'s
    /// samples into exactly [`RecordReader::read_physical_f32`]'s values; `None` for
    /// multi-segment records, whose physical values are not one scale of one digital
    /// array.
    pub fn physical_scales(&self) -> Option<Vec<PhysicalScale>> {
        match &self.kind {
            Kind::Single(single) => Some(
                single
                    .header
                    .signals
                    .iter()
                    .map(PhysicalScale::of)
                    .collect(),
            ),
            Kind::Multi { .. } => None,
        }
    }

    /// One physical value per frame and signal, as f32: each oversampled signal's frame
    /// mean by WFDB C's rule `rule` ([`super::frame`]) on the digital samples, invalid
    /// (NaN) when any sample of the frame is, then scaled like
    /// [`RecordReader::read_physical_f32`]. Multi-segment records: each segment with
    /// its own scale; gaps and missing signals NaN. `out[j].len() == frames`.
    pub fn read_frame_means_f32(
        &self,
        frames: Range<u64>,
        rule: super::frame::FrameMean,
    ) -> Result<Vec<Vec<f32>>, WfdbError> {
        self.check_range(&frames)?;
        match &self.kind {
            Kind::Single(single) => single.read_frame_means_f32(frames, rule),
            Kind::Multi { segments, .. } => {
                let mut out: Vec<Vec<f32>> = self
                    .signals
                    .iter()
                    .map(|_| filled(&self.header.origin, &frames, 1, f32::NAN))
                    .collect::<Result<_, _>>()?;
                for seg in segments {
                    let SegmentData::Data { reader, map } = &seg.data else {
                        continue;
                    };
                    let Some(local) = overlap(seg, &frames) else {
                        continue;
                    };
                    let part = reader.read_frame_means_f32(local.clone(), rule)?;
                    let at = (seg.start + local.start - frames.start) as usize;
                    for (j, m) in map.iter().enumerate() {
                        if let Some(k) = m {
                            out[j][at..at + part[*k].len()].copy_from_slice(&part[*k]);
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    /// [`RecordReader::read_physical`] rounded to f32 (what the Parquet writer stores).
    pub fn read_physical_f32(&self, frames: Range<u64>) -> Result<Vec<Vec<f32>>, WfdbError> {
        if let Kind::Single(single) = &self.kind {
            // Same values without the intermediate f64 vectors, converted chunk by
            // chunk from one reused digital buffer (cache-resident, no page faults).
            // Format 8 and FLAC decode from the start of the file on every read, so
            // they are read in one piece.
            self.check_range(&frames)?;
            let convert = |d: &[i32], s: &super::header::SignalSpec, out: &mut Vec<f32>| {
                let scale = PhysicalScale::of(s);
                out.extend(d.iter().map(|&v| scale.to_f32(v)));
            };
            let signals = &single.header.signals;
            let whole = signals
                .iter()
                .any(|s| s.format == SignalFormat::F8 || s.format.is_flac());
            let tspf: u64 = signals.iter().map(|s| u64::from(s.samps_per_frame)).sum();
            let step = if whole {
                (frames.end - frames.start).max(1)
            } else {
                (CHUNK_SAMPLES / tspf.max(1)).max(1)
            };
            let mut out: Vec<Vec<f32>> = signals
                .iter()
                .map(|s| {
                    let n =
                        (frames.end - frames.start).saturating_mul(u64::from(s.samps_per_frame));
                    Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(1 << 28))
                })
                .collect();
            let mut buf = Vec::new();
            let mut a = frames.start;
            while a < frames.end {
                let b = (a + step).min(frames.end);
                single.read_digital_into(a..b, &mut buf)?;
                for ((d, s), o) in buf.iter().zip(signals).zip(&mut out) {
                    convert(d, s, o);
                }
                a = b;
            }
            return Ok(out);
        }
        Ok(self
            .read_physical(frames)?
            .into_iter()
            .map(|v| v.into_iter().map(|x| x as f32).collect())
            .collect())
    }
}

/// `len(frames) * spf` copies of `fill`; an error instead of an abort when a header
/// claims more samples than can be allocated.
fn filled<T: Clone>(
    path: &Path,
    frames: &Range<u64>,
    spf: u32,
    fill: T,
) -> Result<Vec<T>, WfdbError> {
    let n = (frames.end - frames.start)
        .checked_mul(u64::from(spf))
        .and_then(|n| usize::try_from(n).ok());
    let mut v = Vec::new();
    match n {
        Some(n) if v.try_reserve_exact(n).is_ok() => {
            v.resize(n, fill);
            Ok(v)
        }
        _ => Err(WfdbError::Unsupported {
            path: path.to_path_buf(),
            reason: format!(
                "{} frames of {spf} samples do not fit in memory",
                frames.end - frames.start
            ),
        }),
    }
}

/// The part of `frames` (record frames) inside `seg`, in segment-local frames.
fn overlap(seg: &Segment, frames: &Range<u64>) -> Option<Range<u64>> {
    let lo = frames.start.max(seg.start);
    let hi = frames.end.min(seg.start + seg.len);
    (lo < hi).then(|| lo - seg.start..hi - seg.start)
}

fn open_multi(
    header: Header,
    specs: &[super::header::SegmentSpec],
) -> Result<RecordReader, WfdbError> {
    let dir = header.dir().to_path_buf();
    let variable = specs.first().is_some_and(|s| s.len == 0);
    let seg_err = |reason: String| WfdbError::Segments {
        path: header.origin.clone(),
        reason,
    };
    // Signal names and samples per frame of the merged record: the layout header
    // (variable layout) or the first segment (fixed layout).
    let mut singles: Vec<Option<Single>> = Vec::with_capacity(specs.len());
    let mut layout: Option<Header> = None;
    for (i, spec) in specs.iter().enumerate() {
        if spec.is_gap() {
            singles.push(None);
        } else if variable && i == 0 {
            layout = Some(read_header(&dir.join(&spec.name))?);
            singles.push(None);
        } else {
            singles.push(Some(Single::new(read_header(&dir.join(&spec.name))?)?));
        }
    }
    let reference: Header = match layout {
        Some(h) => h,
        None => singles
            .iter()
            .flatten()
            .map(|s| s.header.clone())
            .next()
            .ok_or_else(|| seg_err("no segment holds signals".into()))?,
    };
    let names: Vec<String> = reference
        .signals
        .iter()
        .map(|s| s.description.clone())
        .collect();
    let mut signals: Vec<SignalInfo> = reference
        .signals
        .iter()
        .map(|s| SignalInfo {
            name: s.description.clone(),
            units: s.units.clone(),
            samps_per_frame: s.samps_per_frame,
            format: None,
            adc_gain: None,
            baseline: None,
        })
        .collect();
    // wfdb-python's multi_to_single: fixed layout takes fmt/gain/baseline/units from the
    // first segment; variable layout collects them from the data segments, by name.
    let mut seen = vec![false; signals.len()];
    let mut units_differ = vec![false; signals.len()];
    let mut refusal = None;
    let mut segments = Vec::with_capacity(specs.len());
    let mut start = 0u64;
    for (spec, single) in specs.iter().zip(singles) {
        let data = match single {
            None => SegmentData::Gap,
            Some(single) => {
                let map: Vec<Option<usize>> = if variable {
                    names
                        .iter()
                        .map(|n| {
                            single
                                .header
                                .signals
                                .iter()
                                .position(|s| &s.description == n)
                        })
                        .collect()
                } else {
                    (0..signals.len())
                        .map(|j| (j < single.header.signals.len()).then_some(j))
                        .collect()
                };
                if variable {
                    for s in &single.header.signals {
                        if !names.contains(&s.description) {
                            return Err(seg_err(format!(
                                "segment {} has signal {:?}, which the layout header lacks",
                                single.header.record_name, s.description
                            )));
                        }
                    }
                }
                for (j, m) in map.iter().enumerate() {
                    let Some(k) = *m else { continue };
                    let s = &single.header.signals[k];
                    if s.samps_per_frame != signals[j].samps_per_frame {
                        return Err(seg_err(format!(
                            "incorrect samples per frame ({} != {}) for signal {} in segment {}",
                            s.samps_per_frame,
                            signals[j].samps_per_frame,
                            signals[j].name,
                            single.header.record_name
                        )));
                    }
                    let info = &mut signals[j];
                    if !seen[j] {
                        seen[j] = true;
                        info.format = Some(s.format);
                        info.adc_gain = Some(s.adc_gain);
                        info.baseline = Some(s.baseline);
                        info.units = s.units.clone();
                    } else if variable {
                        let mut differ = false;
                        if info.format != Some(s.format) {
                            info.format = None;
                            differ = true;
                        }
                        if info.adc_gain != Some(s.adc_gain) {
                            info.adc_gain = None;
                            differ = true;
                        }
                        if info.baseline != Some(s.baseline) {
                            info.baseline = None;
                            differ = true;
                        }
                        if info.units != s.units {
                            units_differ[j] = true;
                            differ = true;
                        }
                        if differ && refusal.is_none() {
                            refusal = Some(format!(
                                "signal {} has a different format, gain, baseline or units in segment {}; \
                                 this variable-layout record cannot be read as one digital record",
                                info.name, single.header.record_name
                            ));
                        }
                    }
                }
                SegmentData::Data {
                    reader: Box::new(single),
                    map,
                }
            }
        };
        segments.push(Segment {
            start,
            len: spec.len,
            data,
        });
        start += spec.len;
    }
    if variable {
        if let Some(j) = seen.iter().position(|s| !s) {
            refusal.get_or_insert_with(|| {
                format!(
                    "signal {} of the layout header has no data in any segment; \
                     this record cannot be read as one digital record",
                    signals[j].name
                )
            });
        }
        // Where units differ, report the layout header's.
        for (j, differ) in units_differ.into_iter().enumerate() {
            if differ || !seen[j] {
                signals[j].units = reference.signals[j].units.clone();
            }
        }
    }
    let n_frames = header.sig_len.unwrap_or(start);
    Ok(RecordReader {
        header,
        signals,
        n_frames,
        kind: Kind::Multi {
            segments,
            digital_refusal: refusal,
        },
    })
}

fn io_err(path: &Path, source: std::io::Error) -> WfdbError {
    WfdbError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Single {
    fn new(header: Header) -> Result<Self, WfdbError> {
        let dir = header.dir().to_path_buf();
        let mut files: Vec<FileGroup> = Vec::new();
        for (i, s) in header.signals.iter().enumerate() {
            if s.format == SignalFormat::F0 || s.file_name == "~" {
                return Err(WfdbError::Unsupported {
                    path: header.origin.clone(),
                    reason: format!(
                        "signal {i} ({:?}) is a null signal (format 0 / file ~) with no samples",
                        s.description
                    ),
                });
            }
            let group = match files
                .iter_mut()
                .find(|g| header.signals[g.channels[0]].file_name == s.file_name)
            {
                Some(g) => g,
                None => {
                    files.push(FileGroup {
                        path: dir.join(&s.file_name),
                        format: s.format,
                        byte_offset: s.byte_offset,
                        channels: Vec::new(),
                        offsets: Vec::new(),
                        spf: Vec::new(),
                        skew: Vec::new(),
                        init: Vec::new(),
                        tspf: 0,
                        simple: false,
                    });
                    let last = files.len() - 1;
                    &mut files[last]
                }
            };
            group.channels.push(i);
            group.offsets.push(group.tspf);
            group.spf.push(s.samps_per_frame as usize);
            group.skew.push(u64::from(s.skew));
            group.init.push(s.init_value.unwrap_or(0) as i32);
            group.tspf += s.samps_per_frame as usize;
        }
        for g in &mut files {
            g.simple = g.spf.iter().all(|&s| s == 1)
                && g.skew.iter().all(|&s| s == 0)
                && g.channels.windows(2).all(|w| w[0] < w[1]);
        }
        for g in &files {
            if g.format.is_flac() && g.spf.iter().any(|&s| s != g.spf[0]) {
                return Err(WfdbError::Unsupported {
                    path: g.path.clone(),
                    reason:
                        "all signals in a FLAC signal file must have the same samples per frame"
                            .into(),
                });
            }
        }
        let n_frames = match header.sig_len {
            Some(n) => n,
            None => match files.first() {
                None => 0,
                Some(g) => g.inferred_frames()?,
            },
        };
        let single = Single {
            header,
            n_frames,
            files,
        };
        for g in &single.files {
            g.check_length(n_frames)?;
        }
        Ok(single)
    }

    fn read_digital(&self, frames: Range<u64>) -> Result<Vec<Vec<i32>>, WfdbError> {
        let mut out: Vec<Vec<i32>> = vec![Vec::new(); self.header.signals.len()];
        self.read_digital_into(frames, &mut out)?;
        Ok(out)
    }

    fn read_digital_into(
        &self,
        frames: Range<u64>,
        out: &mut Vec<Vec<i32>>,
    ) -> Result<(), WfdbError> {
        out.resize_with(self.header.signals.len(), Vec::new);
        out.truncate(self.header.signals.len());
        for g in &self.files {
            g.read(&frames, self.n_frames, out)?;
        }
        Ok(())
    }

    fn read_frame_means_f32(
        &self,
        frames: Range<u64>,
        rule: super::frame::FrameMean,
    ) -> Result<Vec<Vec<f32>>, WfdbError> {
        let digital = self.read_digital(frames)?;
        Ok(digital
            .iter()
            .zip(&self.header.signals)
            .map(|(d, s)| {
                let scale = PhysicalScale::of(s);
                let spf = s.samps_per_frame.max(1) as usize;
                let means = if spf > 1 {
                    super::frame::smooth_frames(d, spf, rule, |i| Some(d[i]) == scale.invalid)
                } else {
                    d.clone()
                };
                means.iter().map(|&x| scale.to_f32(x)).collect()
            })
            .collect())
    }

    fn read_physical(&self, frames: Range<u64>) -> Result<Vec<Vec<f64>>, WfdbError> {
        let digital = self.read_digital(frames)?;
        Ok(digital
            .iter()
            .zip(&self.header.signals)
            .map(|(d, s)| to_physical(d, s.format, s.baseline, s.adc_gain))
            .collect())
    }
}

/// How one signal's digital samples become the physical values stored as f32:
/// `(d - baseline) / gain` in f64 (as wfdb-python computes it), rounded to f32; NaN for
/// the format's invalid value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhysicalScale {
    /// The signal's baseline.
    pub baseline: f64,
    /// The signal's ADC gain (units per physical unit).
    pub gain: f64,
    /// The format's invalid-sample value, if it has one.
    pub invalid: Option<i32>,
}

impl PhysicalScale {
    /// The scale of a header's signal.
    pub fn of(spec: &super::header::SignalSpec) -> Self {
        PhysicalScale {
            baseline: spec.baseline as f64,
            gain: spec.adc_gain,
            invalid: spec.format.invalid_value(),
        }
    }

    /// The physical value of digital sample `d`, as f32.
    #[inline]
    pub fn to_f32(&self, d: i32) -> f32 {
        let x = ((f64::from(d) - self.baseline) / self.gain) as f32;
        if Some(d) == self.invalid { f32::NAN } else { x }
    }

    /// The scale's identity (bit patterns), for finding equal scales.
    pub fn key(&self) -> (u64, u64, Option<i32>) {
        (self.baseline.to_bits(), self.gain.to_bits(), self.invalid)
    }
}

/// `(d - baseline) / gain` in f64, NaN for the format's invalid value (wfdb-python
/// `SignalMixin.dac`: `astype(float64)`, subtract, divide).
pub fn to_physical(digital: &[i32], format: SignalFormat, baseline: i64, gain: f64) -> Vec<f64> {
    let base = baseline as f64;
    match format.invalid_value() {
        // Computed for every sample, then selected: branch-free, so it vectorises.
        Some(bad) => digital
            .iter()
            .map(|&d| {
                let v = (f64::from(d) - base) / gain;
                if d == bad { f64::NAN } else { v }
            })
            .collect(),
        None => digital
            .iter()
            .map(|&d| (f64::from(d) - base) / gain)
            .collect(),
    }
}

impl FileGroup {
    /// Frames in the file judged from its size (wfdb-python `_infer_sig_len`).
    fn inferred_frames(&self) -> Result<u64, WfdbError> {
        if self.format.is_flac() {
            let total = flac::total_samples(&self.path, self.format, self.channels.len())?
                .ok_or_else(|| WfdbError::Unsupported {
                    path: self.path.clone(),
                    reason:
                        "the header has no signal length and the FLAC stream does not declare one"
                            .into(),
                })?;
            return Ok(total.saturating_sub(self.byte_offset) / self.spf[0].max(1) as u64);
        }
        let size = std::fs::metadata(&self.path)
            .map_err(|e| io_err(&self.path, e))?
            .len();
        let samples = self
            .format
            .samples_in(size.saturating_sub(self.byte_offset))
            .unwrap_or(0);
        Ok(samples / self.tspf.max(1) as u64)
    }

    /// Errors when the file cannot hold `n_frames` frames.
    fn check_length(&self, n_frames: u64) -> Result<(), WfdbError> {
        let meta = std::fs::metadata(&self.path).map_err(|e| io_err(&self.path, e))?;
        let short = |reason: String| WfdbError::ShortSignalFile {
            path: self.path.clone(),
            reason,
        };
        let samples = n_frames
            .checked_mul(self.tspf as u64)
            .ok_or_else(|| short(format!("{n_frames} frames cannot be stored")))?;
        if self.format.is_flac() {
            // FLAC: compare with the stream's declared length where it has one; the
            // decoder checks again while reading.
            let per_channel = n_frames.saturating_mul(self.spf[0] as u64);
            let total = flac::total_samples(&self.path, self.format, self.channels.len())?;
            if let Some(total) = total
                && total < per_channel.saturating_add(self.byte_offset)
            {
                return Err(short(format!(
                    "FLAC stream has {total} samples per channel, {n_frames} frames need {}",
                    per_channel.saturating_add(self.byte_offset)
                )));
            }
            return Ok(());
        }
        let needed = self
            .format
            .bytes_for(samples)
            .and_then(|b| b.checked_add(self.byte_offset))
            .ok_or_else(|| short(format!("{n_frames} frames cannot be stored")))?;
        if meta.len() < needed {
            return Err(short(format!(
                "{} bytes, but {n_frames} frames of format {} need {needed}",
                meta.len(),
                self.format
            )));
        }
        Ok(())
    }

    fn fill_value(&self) -> i32 {
        self.format.invalid_value().unwrap_or(WFDB_INVALID_SAMPLE)
    }

    /// Decodes frames `frames` of this file's signals into `out[channel]`.
    fn read(
        &self,
        frames: &Range<u64>,
        n_frames: u64,
        out: &mut [Vec<i32>],
    ) -> Result<(), WfdbError> {
        let max_skew = self.skew.iter().copied().max().unwrap_or(0);
        let stored_end = frames.end.saturating_add(max_skew).min(n_frames);
        if self.format.is_flac() {
            // Decoded before the outputs are allocated: a FLAC stream's declared length
            // is not bounded by the file size, the samples it really holds are.
            self.read_flac(frames, stored_end, out)?;
        } else {
            for (c, &ch) in self.channels.iter().enumerate() {
                // Bounded by the file size (checked at open). Zeroed memory comes from
                // the allocator untouched, so decoding writes it only once.
                // Every element is overwritten (decoded, or filled past the stored
                // data), so a reused vector of the right length needs no clearing;
                // a fresh one is zeroed memory the allocator hands out untouched.
                let len = ((frames.end - frames.start) * self.spf[c] as u64) as usize;
                let v = &mut out[ch];
                if v.len() != len {
                    if v.capacity() >= len {
                        v.truncate(len);
                        v.resize(len, 0);
                    } else {
                        *v = vec![0; len];
                    }
                }
            }
            self.decode_into(frames, stored_end, n_frames, out)?;
        }
        // Samples past the stored data (a skewed signal's last frames) are invalid.
        let fill = self.fill_value();
        for (c, &ch) in self.channels.iter().enumerate() {
            let covered = stored_end
                .saturating_sub(self.skew[c])
                .clamp(frames.start, frames.end);
            let from = ((covered - frames.start) as usize) * self.spf[c];
            out[ch][from..].fill(fill);
        }
        Ok(())
    }

    /// Decodes the stored frames `[frames.start, stored_end)` (from 0 for format 8)
    /// into the zeroed `out` vectors of this file's channels.
    fn decode_into(
        &self,
        frames: &Range<u64>,
        stored_end: u64,
        n_frames: u64,
        out: &mut [Vec<i32>],
    ) -> Result<(), WfdbError> {
        if frames.start == frames.end {
            return Ok(());
        }
        // Format 8 needs every difference from frame 0.
        let first = if self.format == SignalFormat::F8 {
            0
        } else {
            frames.start
        };
        if first >= stored_end {
            return Ok(());
        }
        let mut file = File::open(&self.path).map_err(|e| io_err(&self.path, e))?;
        let mut acc: Vec<i32> = self.init.clone();
        let mut bytes = Vec::new();
        let mut flat = Vec::new();
        let tspf = self.tspf as u64;
        let mut c0 = first;
        while c0 < stored_end {
            let c1 = (c0 + chunk_frames(self.tspf)).min(stored_end);
            let (s0, s1) = (c0 * tspf, c1 * tspf);
            let (spb, bpb) = self.format.block().unwrap_or((1, 1));
            let aligned = s0 - s0 % spb;
            let skip = (s0 - aligned) as usize;
            let byte0 = self.byte_offset + aligned / spb * bpb;
            let nbytes = self.format.bytes_for(s1 - aligned).unwrap_or(0);
            bytes.resize(nbytes as usize, 0);
            file.seek(SeekFrom::Start(byte0))
                .map_err(|e| io_err(&self.path, e))?;
            #[cfg(test)]
            tests::BYTES_READ.with(|c| c.set(c.get() + nbytes));
            file.read_exact(&mut bytes).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    WfdbError::ShortSignalFile {
                        path: self.path.clone(),
                        reason: format!(
                            "ends before byte {} (frame {c1} of {n_frames})",
                            byte0 + nbytes
                        ),
                    }
                } else {
                    io_err(&self.path, e)
                }
            })?;
            if self.simple && self.format == SignalFormat::F16 {
                // The most common layout: convert straight from the bytes into the
                // channels, no intermediate buffer.
                self.scatter_f16(&bytes, c0, c1, frames, out);
                c0 = c1;
                continue;
            }
            if self.simple && self.format == SignalFormat::F212 && self.tspf.is_multiple_of(2) {
                // An even number of signals: every frame is whole 3-byte blocks.
                self.scatter_f212(&bytes, c0, c1, frames, out);
                c0 = c1;
                continue;
            }
            flat.clear();
            format::decode(self.format, &bytes, (s1 - aligned) as usize, &mut flat);
            let flat = &flat[skip..];
            self.scatter(flat, c0, c1, frames, &mut acc, out);
            c0 = c1;
        }
        Ok(())
    }

    /// This file's output channels, each cut to `count` samples from `at` (the
    /// channel list is sorted, so one pass over `out` finds them in order).
    fn channel_slices<'a>(
        &self,
        out: &'a mut [Vec<i32>],
        at: usize,
        count: usize,
    ) -> Vec<&'a mut [i32]> {
        let mut dsts: Vec<&mut [i32]> = Vec::with_capacity(self.channels.len());
        let mut next = 0;
        for (i, v) in out.iter_mut().enumerate() {
            if self.channels.get(next) == Some(&i) {
                dsts.push(&mut v[at..at + count]);
                next += 1;
            }
        }
        dsts
    }

    /// Fused decode and scatter of format 212 frames `[c0, c1)` of a file with an even
    /// number of signals (one sample per frame, no skew): each 3-byte block holds the
    /// samples of two consecutive signals of one frame.
    fn scatter_f212(
        &self,
        bytes: &[u8],
        c0: u64,
        c1: u64,
        frames: &Range<u64>,
        out: &mut [Vec<i32>],
    ) {
        let count = (c1 - c0) as usize;
        let mut dsts = self.channel_slices(out, (c0 - frames.start) as usize, count);
        let frame_bytes = 3 * self.tspf / 2;
        for (i, frame) in bytes.chunks_exact(frame_bytes).take(count).enumerate() {
            for (pair, b) in dsts.chunks_exact_mut(2).zip(frame.chunks_exact(3)) {
                let (b0, b1, b2) = (i32::from(b[0]), i32::from(b[1]), i32::from(b[2]));
                // signal(5): 12-bit two's complement, low byte then shared nibbles.
                pair[0][i] = ((b0 | ((b1 & 0x0f) << 8)) << 20) >> 20;
                pair[1][i] = ((b2 | ((b1 & 0xf0) << 4)) << 20) >> 20;
            }
        }
    }

    /// Fused decode and scatter of format 16 frames `[c0, c1)` (one sample per frame,
    /// no skew: the chunk maps one-to-one onto output frames).
    fn scatter_f16(
        &self,
        bytes: &[u8],
        c0: u64,
        c1: u64,
        frames: &Range<u64>,
        out: &mut [Vec<i32>],
    ) {
        let count = (c1 - c0) as usize;
        let mut dsts = self.channel_slices(out, (c0 - frames.start) as usize, count);
        let frame_bytes = 2 * self.tspf;
        if let [only] = dsts.as_mut_slice() {
            for (d, b) in only.iter_mut().zip(bytes.chunks_exact(2)) {
                *d = i32::from(i16::from_le_bytes([b[0], b[1]]));
            }
            return;
        }
        for (i, frame) in bytes.chunks_exact(frame_bytes).take(count).enumerate() {
            for (d, b) in dsts.iter_mut().zip(frame.chunks_exact(2)) {
                d[i] = i32::from(i16::from_le_bytes([b[0], b[1]]));
            }
        }
    }

    /// Distributes decoded frames `[c0, c1)` (flat, in file order) to the output
    /// channels, applying skew and format-8 integration.
    fn scatter(
        &self,
        flat: &[i32],
        c0: u64,
        c1: u64,
        frames: &Range<u64>,
        acc: &mut [i32],
        out: &mut [Vec<i32>],
    ) {
        let diff = self.format == SignalFormat::F8;
        if !diff && self.simple {
            // One sample per frame and no skew (the common case): walk frames in file
            // order and write every channel's next sample — one sequential pass.
            let lo = c0.max(frames.start);
            let hi = c1.min(frames.end);
            if lo >= hi {
                return;
            }
            let at = (lo - frames.start) as usize;
            let count = (hi - lo) as usize;
            let mut dsts: Vec<&mut [i32]> = Vec::with_capacity(self.channels.len());
            let mut next = 0;
            for (i, v) in out.iter_mut().enumerate() {
                if self.channels.get(next) == Some(&i) {
                    dsts.push(&mut v[at..at + count]);
                    next += 1;
                }
            }
            let src = &flat[(lo - c0) as usize * self.tspf..][..count * self.tspf];
            if let [only] = dsts.as_mut_slice() {
                only.copy_from_slice(src);
                return;
            }
            for (i, frame) in src.chunks_exact(self.tspf).enumerate() {
                for (d, &v) in dsts.iter_mut().zip(frame) {
                    d[i] = v;
                }
            }
            return;
        }
        for (c, &ch) in self.channels.iter().enumerate() {
            let (off, spf, skew) = (self.offsets[c], self.spf[c], self.skew[c]);
            let dst = &mut out[ch];
            // Stored frame f lands at output frame f - skew.
            let lo = c0.max(frames.start + skew);
            let hi = c1.min(frames.end + skew);
            if diff {
                // Integrate every stored difference, keep those in range.
                for f in c0..c1 {
                    let base = (f - c0) as usize * self.tspf + off;
                    for k in 0..spf {
                        acc[c] = acc[c].wrapping_add(flat[base + k]);
                        if f >= lo && f < hi {
                            dst[(f - skew - frames.start) as usize * spf + k] = acc[c];
                        }
                    }
                }
                continue;
            }
            if lo >= hi {
                continue;
            }
            let src_start = (lo - c0) as usize * self.tspf + off;
            let dst_start = (lo - skew - frames.start) as usize * spf;
            let count = (hi - lo) as usize;
            if spf == 1 {
                let src = flat[src_start..].iter().step_by(self.tspf);
                for (d, s) in dst[dst_start..dst_start + count].iter_mut().zip(src) {
                    *d = *s;
                }
            } else {
                for i in 0..count {
                    let s = src_start + i * self.tspf;
                    let d = dst_start + i * spf;
                    dst[d..d + spf].copy_from_slice(&flat[s..s + spf]);
                }
            }
        }
    }

    fn read_flac(
        &self,
        frames: &Range<u64>,
        stored_end: u64,
        out: &mut [Vec<i32>],
    ) -> Result<(), WfdbError> {
        let spf = self.spf[0] as u64;
        let n = (frames.end - frames.start) * spf;
        let data = if frames.start < stored_end {
            self.decode_flac(frames, stored_end)?
        } else {
            vec![Vec::new(); self.channels.len()]
        };
        for (c, &ch) in self.channels.iter().enumerate() {
            out[ch] = vec![0; n as usize];
            let skew = self.skew[c];
            let lo = frames.start + skew;
            let hi = stored_end.min(frames.end + skew);
            if lo >= hi {
                continue;
            }
            let src = ((lo - frames.start) * spf) as usize;
            let count = ((hi - lo) * spf) as usize;
            out[ch][..count].copy_from_slice(&data[c][src..src + count]);
        }
        Ok(())
    }

    /// Decodes FLAC samples of stored frames `[frames.start, stored_end)`, per channel.
    fn decode_flac(
        &self,
        frames: &Range<u64>,
        stored_end: u64,
    ) -> Result<Vec<Vec<i32>>, WfdbError> {
        let spf = self.spf[0] as u64;
        // wfdb-python: the byte offset of a FLAC signal is a sample offset.
        let start = frames
            .start
            .saturating_mul(spf)
            .saturating_add(self.byte_offset);
        let end = stored_end
            .saturating_mul(spf)
            .saturating_add(self.byte_offset);
        flac::read_range(&self.path, self.format, self.channels.len(), start, end)
    }
}

/// Validates the stored checksum of every signal (every segment of a multi-segment
/// record) against its decoded samples. The checksum covers the samples as stored,
/// so skew is not applied.
pub fn verify_checksums(reader: &RecordReader) -> Result<Vec<ChecksumResult>, WfdbError> {
    let singles: Vec<&Single> = match &reader.kind {
        Kind::Single(s) => vec![s.as_ref()],
        Kind::Multi { segments, .. } => segments
            .iter()
            .filter_map(|s| match &s.data {
                SegmentData::Data { reader, .. } => Some(reader.as_ref()),
                SegmentData::Gap => None,
            })
            .collect(),
    };
    let mut results = Vec::new();
    for single in singles {
        let mut unskewed = single.clone();
        for g in &mut unskewed.files {
            g.skew.iter_mut().for_each(|s| *s = 0);
        }
        let digital = unskewed.read_digital(0..single.n_frames)?;
        for (j, (d, spec)) in digital.iter().zip(&single.header.signals).enumerate() {
            let sum = d.iter().fold(0u16, |a, &v| a.wrapping_add(v as u16));
            let computed = sum as i16;
            let ok = spec
                .checksum
                .is_none_or(|c| (c.rem_euclid(65536)) as u16 == sum);
            results.push(ChecksumResult {
                signal: j,
                record: single.header.record_name.clone(),
                expected: spec.checksum,
                computed,
                ok,
            });
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Bytes of signal data read by this thread (test instrumentation).
        pub(super) static BYTES_READ: Cell<u64> = const { Cell::new(0) };
    }

    fn bytes_read<T>(f: impl FnOnce() -> T) -> (T, u64) {
        BYTES_READ.with(|c| c.set(0));
        let out = f();
        (out, BYTES_READ.with(Cell::get))
    }

    #[test]
    fn range_reads_of_a_1_gb_file_seek() {
        let dir = tempfile::tempdir().unwrap();
        // A sparse 1 GB format-212 file: 3 signals, 2/3 GB frames of 4.5 bytes.
        let dat = dir.path().join("big.dat");
        let size: u64 = 1 << 30;
        std::fs::File::create(&dat).unwrap().set_len(size).unwrap();
        let frames = size * 2 / 9;
        std::fs::write(
            dir.path().join("big.hea"),
            format!("big 3 250 {frames}\nbig.dat 212 200\nbig.dat 212 200\nbig.dat 212 200\n"),
        )
        .unwrap();
        let rec = RecordReader::open(&dir.path().join("big")).unwrap();
        assert_eq!(rec.n_frames(), frames);
        let (d, n) = bytes_read(|| rec.read_digital(10_000..10_100).unwrap());
        assert_eq!(d[2].len(), 100);
        // 100 frames * 4.5 bytes, plus at most one block of alignment.
        assert!(n <= 452, "read {n} bytes for 100 frames");
        let (_, n) = bytes_read(|| rec.read_digital(frames - 7..frames).unwrap());
        assert!(n <= 36, "read {n} bytes for the last 7 frames");
    }

    #[test]
    fn reader_can_be_shared_across_threads() {
        // Converters decode records on rayon worker threads.
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RecordReader>();
    }

    #[test]
    fn format_8_ranges_integrate_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.dat"), [1u8, 2, 3, 0xff, 0xfe]).unwrap();
        std::fs::write(dir.path().join("d.hea"), "d 1 250 5\nd.dat 8 200 8 0 100\n").unwrap();
        let rec = RecordReader::open(&dir.path().join("d")).unwrap();
        assert_eq!(
            rec.read_digital(0..5).unwrap()[0],
            vec![101, 103, 106, 105, 103]
        );
        assert_eq!(rec.read_digital(3..5).unwrap()[0], vec![105, 103]);
    }

    #[test]
    fn skew_shifts_and_pads_with_the_invalid_value() {
        let dir = tempfile::tempdir().unwrap();
        let samples: Vec<u8> = (0i16..8).flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.path().join("s.dat"), samples).unwrap();
        // Two signals, 4 frames; signal 1 has skew 1.
        std::fs::write(
            dir.path().join("s.hea"),
            "s 2 250 4\ns.dat 16 200\ns.dat 16:1 200\n",
        )
        .unwrap();
        let rec = RecordReader::open(&dir.path().join("s")).unwrap();
        let d = rec.read_digital(0..4).unwrap();
        assert_eq!(d[0], vec![0, 2, 4, 6]);
        assert_eq!(d[1], vec![3, 5, 7, -32768]);
        assert_eq!(rec.read_digital(1..3).unwrap()[1], vec![5, 7]);
        let p = rec.read_physical(3..4).unwrap();
        assert!(p[1][0].is_nan());
    }
}
