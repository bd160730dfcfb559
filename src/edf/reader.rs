//! [`EdfReader`]: an open EDF/EDF+ file that decodes any frame range into
//! channel-major digital or physical samples, and reads its EDF+ annotations.
//!
//! Only the data records holding the requested frames are read, a bounded chunk at a
//! time, so memory stays proportional to the request, not to the file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::header::{EdfHeader, FIXED_BYTES, SIGNAL_BYTES, parse_header};
use super::tal::parse_tals;
use super::{EdfError, EdfVariant};

/// Digital value of the frames between two data records of an EDF+D file (outside
/// the 16-bit range of EDF samples, so never a real sample); physical value NaN.
pub const GAP: i32 = i32::MIN;

/// Bytes of data records read per call: large enough that per-call overhead vanishes,
/// small enough to stay in the CPU's L2 cache while it is distributed to channels.
const CHUNK_BYTES: u64 = 1 << 18;

/// Frames of gap an EDF+D file may put on its time line beyond its stored frames
/// (2^31: a day at 24 kHz); more is taken for a corrupt onset, not a recording.
const MAX_GAP_FRAMES: u64 = 1 << 31;

/// One EDF+ annotation, on the record's time line.
#[derive(Debug, Clone, PartialEq)]
pub struct EdfAnnotation {
    /// Seconds after the record's first sample (the TAL onset minus the first data
    /// record's onset, i.e. EDF+'s sub-second start).
    pub time: f64,
    /// Duration in seconds, if the TAL gives one.
    pub duration: Option<f64>,
    /// The annotation text.
    pub text: String,
    /// The frame at `time`: `round(time * fs)`.
    pub sample: i64,
}

/// An open EDF or EDF+ file (header parsed, sizes checked against the file).
///
/// ```no_run
/// use physio::edf::EdfReader;
/// let edf = EdfReader::open(std::path::Path::new("chb01_01.edf"))?;
/// let first_second = edf.read_physical_f32(0..edf.fs() as u64)?;
/// println!("{} channels at {} Hz", first_second.len(), edf.fs());
/// # Ok::<(), physio::edf::EdfError>(())
/// ```
#[derive(Debug, Clone)]
pub struct EdfReader {
    path: PathBuf,
    header: EdfHeader,
    /// Header indices of the ordinary (non-annotation) signals: the record's channels.
    data: Vec<usize>,
    /// Header indices of the `EDF Annotations` signals.
    annot: Vec<usize>,
    /// Byte offset of each header signal within a data record.
    offsets: Vec<u64>,
    record_bytes: u64,
    /// Frames per data record.
    frames_per_record: u64,
    /// Samples per frame of each channel.
    spf: Vec<u32>,
    fs: f64,
    n_frames: u64,
    /// EDF+D with gaps: the first frame of each data record.
    starts: Option<Vec<u64>>,
    /// Onset of the first data record after the header's start time (EDF+'s
    /// sub-second start; 0 for EDF).
    start_offset: f64,
    /// Per channel: `(gain, offset)` with `physical = digital * gain + offset`.
    scales: Vec<(f64, f64)>,
}

impl EdfReader {
    /// Opens `path`: reads and checks the header and, for EDF+, the time-keeping
    /// annotation of the first data record (of every data record for EDF+D). No
    /// samples are read.
    pub fn open(path: &Path) -> Result<Self, EdfError> {
        let io = |source| EdfError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut head = Vec::new();
        (&mut file)
            .take(FIXED_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(io)?;
        // The signal count decides how much more header there is; read it only when
        // the file is that long (otherwise the parser reports the lie).
        if head.len() == FIXED_BYTES
            && let Ok(ns) = String::from_utf8_lossy(&head[252..256])
                .trim()
                .parse::<u64>()
        {
            let want = (ns as u128) * SIGNAL_BYTES as u128;
            if want + FIXED_BYTES as u128 <= u128::from(file_len) {
                (&mut file)
                    .take(want as u64)
                    .read_to_end(&mut head)
                    .map_err(io)?;
            }
        }
        let header = parse_header(&head, file_len, path)?;
        Self::from_header(path, header, &mut file)
    }

    fn from_header(path: &Path, header: EdfHeader, file: &mut File) -> Result<Self, EdfError> {
        let mut offsets = Vec::with_capacity(header.signals.len());
        let mut at = 0u64;
        for s in &header.signals {
            offsets.push(at);
            at += s.samples_per_record * 2;
        }
        let record_bytes = at;
        let (annot, data): (Vec<usize>, Vec<usize>) =
            (0..header.signals.len()).partition(|&i| header.signals[i].is_annotation());
        let bad = |field, signal, reason: String| EdfError::Header {
            path: path.to_path_buf(),
            field,
            signal,
            reason,
        };
        if let Some(&i) = data
            .iter()
            .find(|&&i| header.signals[i].samples_per_record == 0)
        {
            return Err(bad(
                "samples per data record",
                Some(i),
                "0 samples per data record".to_string(),
            ));
        }
        let frames_per_record = header.frames_per_record();
        if !data.is_empty() && header.record_duration <= 0.0 {
            return Err(bad(
                "data record duration",
                None,
                format!(
                    "{} s, but the file has signals (only annotation-only files may have 0)",
                    header.record_duration
                ),
            ));
        }
        let fs = if data.is_empty() {
            0.0
        } else {
            frames_per_record as f64 / header.record_duration
        };
        let spf = data
            .iter()
            .map(|&i| {
                u32::try_from(header.signals[i].samples_per_record / frames_per_record.max(1))
                    .map_err(|_| {
                        bad(
                            "samples per data record",
                            Some(i),
                            "too many samples per frame".to_string(),
                        )
                    })
            })
            .collect::<Result<Vec<u32>, EdfError>>()?;
        let scales = data.iter().map(|&i| header.signals[i].scale()).collect();
        let mut reader = EdfReader {
            path: path.to_path_buf(),
            n_frames: header.n_records * frames_per_record,
            header,
            data,
            annot,
            offsets,
            record_bytes,
            frames_per_record,
            spf,
            fs,
            starts: None,
            start_offset: 0.0,
            scales,
        };
        if reader.header.variant.is_plus() && !reader.annot.is_empty() {
            reader.place_records(file)?;
        } else if reader.header.variant == EdfVariant::EdfPlusD {
            return Err(EdfError::Discontinuous {
                path: path.to_path_buf(),
                reason: "no EDF Annotations signal to give the data records' start times"
                    .to_string(),
            });
        }
        Ok(reader)
    }

    /// Onset of data record `r`'s time-keeping TAL (its first TAL).
    fn record_onset(&self, file: &mut File, r: u64) -> Result<Option<f64>, EdfError> {
        let bytes = self.annotation_bytes(file, r, self.annot[0])?;
        let tals = parse_tals(&bytes).map_err(|source| EdfError::Tal {
            path: self.path.clone(),
            record: r,
            source,
        })?;
        Ok(tals.first().map(|t| t.onset))
    }

    /// Reads the sub-second start and, for EDF+D, every data record's start frame.
    fn place_records(&mut self, file: &mut File) -> Result<(), EdfError> {
        if self.header.n_records == 0 {
            return Ok(());
        }
        let first = self.record_onset(file, 0)?.unwrap_or(0.0);
        self.start_offset = first;
        if self.header.variant != EdfVariant::EdfPlusD || self.data.is_empty() {
            return Ok(());
        }
        let disc = |reason: String| EdfError::Discontinuous {
            path: self.path.clone(),
            reason,
        };
        let g = self.frames_per_record;
        let stored = self.n_frames;
        let mut starts = Vec::with_capacity(self.header.n_records.min(1 << 20) as usize);
        let mut gaps = false;
        for r in 0..self.header.n_records {
            let onset = self
                .record_onset(file, r)?
                .ok_or_else(|| disc(format!("data record {r} has no time-keeping annotation")))?;
            let frame = ((onset - first) * self.fs).round();
            let min = starts.last().map_or(0, |&s: &u64| s + g);
            if frame.is_nan() || frame < min as f64 {
                return Err(disc(format!(
                    "data record {r} starts at {onset} s, before the end of the previous one"
                )));
            }
            if frame > (stored + MAX_GAP_FRAMES) as f64 {
                return Err(disc(format!(
                    "data record {r} starts at {onset} s, more than {MAX_GAP_FRAMES} frames of \
                     gaps"
                )));
            }
            let frame = frame as u64;
            gaps |= frame != r * g;
            starts.push(frame);
        }
        if gaps {
            self.n_frames = starts.last().map_or(0, |&s| s + g);
            self.starts = Some(starts);
        }
        Ok(())
    }

    /// The raw bytes of header signal `sig` in data record `r`.
    fn annotation_bytes(&self, file: &mut File, r: u64, sig: usize) -> Result<Vec<u8>, EdfError> {
        let io = |source| EdfError::Io {
            path: self.path.clone(),
            source,
        };
        let len = self.header.signals[sig].samples_per_record * 2;
        let pos = self.header.header_bytes + r * self.record_bytes + self.offsets[sig];
        file.seek(SeekFrom::Start(pos)).map_err(io)?;
        let mut buf = vec![0u8; len as usize];
        file.read_exact(&mut buf).map_err(io)?;
        Ok(buf)
    }

    /// The parsed header.
    pub fn header(&self) -> &EdfHeader {
        &self.header
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frame frequency in Hz (0 for an annotation-only file).
    pub fn fs(&self) -> f64 {
        self.fs
    }

    /// Frames in the record (for EDF+D, up to the end of the last data record,
    /// gaps included).
    pub fn n_frames(&self) -> u64 {
        self.n_frames
    }

    /// Frames per data record.
    pub fn frames_per_record(&self) -> u64 {
        self.frames_per_record
    }

    /// Header indices of the record's channels (every signal but `EDF Annotations`).
    pub fn channels(&self) -> &[usize] {
        &self.data
    }

    /// Samples per frame of each channel.
    pub fn samps_per_frame(&self) -> &[u32] {
        &self.spf
    }

    /// Per channel `(gain, offset)`: `physical = digital * gain + offset`.
    pub fn scales(&self) -> &[(f64, f64)] {
        &self.scales
    }

    /// True when the file has EDF+ annotation signals.
    pub fn has_annotations(&self) -> bool {
        !self.annot.is_empty()
    }

    /// True for an EDF+D file whose data records leave gaps (read as [`GAP`]).
    pub fn has_gaps(&self) -> bool {
        self.starts.is_some()
    }

    /// Seconds between the header's start time and the first sample (EDF+'s
    /// sub-second start: the first data record's time-keeping onset).
    pub fn start_offset(&self) -> f64 {
        self.start_offset
    }

    fn check_range(&self, frames: &Range<u64>) -> Result<(), EdfError> {
        if frames.start > frames.end || frames.end > self.n_frames {
            return Err(EdfError::Range {
                path: self.path.clone(),
                start: frames.start,
                end: frames.end,
                n_frames: self.n_frames,
            });
        }
        Ok(())
    }

    /// First frame of data record `r`.
    fn start_of(&self, r: u64) -> u64 {
        match &self.starts {
            Some(s) => s[r as usize],
            None => r * self.frames_per_record,
        }
    }

    /// Calls `sink(channel, part)` for every piece of frames `frames`, in order: the
    /// stored bytes of one data record's frames, or a gap of some samples.
    fn visit(
        &self,
        frames: Range<u64>,
        mut sink: impl FnMut(usize, Piece<'_>),
    ) -> Result<(), EdfError> {
        self.check_range(&frames)?;
        if frames.is_empty() || self.data.is_empty() {
            return Ok(());
        }
        let io = |source| EdfError::Io {
            path: self.path.clone(),
            source,
        };
        let g = self.frames_per_record;
        let n_rec = self.header.n_records;
        // First data record ending after frames.start.
        let first = match &self.starts {
            Some(s) => s.partition_point(|&st| st + g <= frames.start) as u64,
            None => frames.start / g,
        };
        let mut file = File::open(&self.path).map_err(io)?;
        let per_chunk = (CHUNK_BYTES / self.record_bytes.max(1)).max(1);
        let mut buf: Vec<u8> = Vec::new();
        let mut f = frames.start;
        let mut r = first;
        while r < n_rec && self.start_of(r) < frames.end {
            let n = per_chunk.min(n_rec - r);
            // Only as many records as still overlap the request.
            let mut take = 1;
            while take < n && self.start_of(r + take) < frames.end {
                take += 1;
            }
            file.seek(SeekFrom::Start(
                self.header.header_bytes + r * self.record_bytes,
            ))
            .map_err(io)?;
            buf.resize((take * self.record_bytes) as usize, 0);
            file.read_exact(&mut buf).map_err(io)?;
            for k in 0..take {
                let start = self.start_of(r + k);
                if start > f {
                    for (c, &spf) in self.spf.iter().enumerate() {
                        sink(c, Piece::Gap(((start - f) * u64::from(spf)) as usize));
                    }
                    f = start;
                }
                let a = f - start;
                let b = frames.end.min(start + g) - start;
                let rec = &buf[(k * self.record_bytes) as usize..][..self.record_bytes as usize];
                for (c, &i) in self.data.iter().enumerate() {
                    let spf = u64::from(self.spf[c]);
                    let base = self.offsets[i];
                    let bytes = &rec[(base + 2 * a * spf) as usize..(base + 2 * b * spf) as usize];
                    sink(c, Piece::Data(bytes));
                }
                f = start + b;
            }
            r += take;
        }
        if f < frames.end {
            for (c, &spf) in self.spf.iter().enumerate() {
                sink(c, Piece::Gap(((frames.end - f) * u64::from(spf)) as usize));
            }
        }
        Ok(())
    }

    fn sized<T>(&self, frames: &Range<u64>) -> Vec<Vec<T>> {
        self.spf
            .iter()
            .map(|&s| {
                let n = (frames.end.saturating_sub(frames.start)).saturating_mul(u64::from(s));
                Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(1 << 28))
            })
            .collect()
    }

    /// Digital samples of frames `frames`, channel-major (channel `c` has
    /// `len * samps_per_frame[c]` values); [`GAP`] between EDF+D data records.
    pub fn read_digital(&self, frames: Range<u64>) -> Result<Vec<Vec<i32>>, EdfError> {
        let mut out = self.sized(&frames);
        self.visit(frames, |c, piece| match piece {
            Piece::Data(b) => out[c].extend(
                b.chunks_exact(2)
                    .map(|x| i32::from(i16::from_le_bytes([x[0], x[1]]))),
            ),
            Piece::Gap(n) => {
                let v = &mut out[c];
                v.resize(v.len() + n, GAP);
            }
        })?;
        Ok(out)
    }

    /// Physical values of frames `frames` as f64, channel-major: `digital * gain +
    /// offset` ([`super::EdfSignal::scale`]); NaN between EDF+D data records.
    pub fn read_physical(&self, frames: Range<u64>) -> Result<Vec<Vec<f64>>, EdfError> {
        let mut out = self.sized(&frames);
        self.visit(frames, |c, piece| {
            let (gain, offset) = self.scales[c];
            match piece {
                Piece::Data(b) => out[c].extend(
                    b.chunks_exact(2)
                        .map(|x| f64::from(i16::from_le_bytes([x[0], x[1]])) * gain + offset),
                ),
                Piece::Gap(n) => {
                    let v = &mut out[c];
                    v.resize(v.len() + n, f64::NAN);
                }
            }
        })?;
        Ok(out)
    }

    /// [`EdfReader::read_physical`] rounded to f32, without the f64 vectors.
    pub fn read_physical_f32(&self, frames: Range<u64>) -> Result<Vec<Vec<f32>>, EdfError> {
        let mut out = self.sized(&frames);
        self.visit(frames, |c, piece| {
            let (gain, offset) = self.scales[c];
            match piece {
                Piece::Data(b) => {
                    out[c].extend(b.chunks_exact(2).map(|x| {
                        (f64::from(i16::from_le_bytes([x[0], x[1]])) * gain + offset) as f32
                    }))
                }
                Piece::Gap(n) => {
                    let v = &mut out[c];
                    v.resize(v.len() + n, f32::NAN);
                }
            }
        })?;
        Ok(out)
    }

    /// One physical value per frame and channel, as f32, with WFDB multi-frequency
    /// semantics (`docs/parquet.md`, "Frames of oversampled signals"): a channel with
    /// several samples per frame is reduced to WFDB C 10.7.0's frame mean of its
    /// digital samples ([`crate::wfdb::frame::smooth_frames`], halves up), then scaled
    /// (`mean * gain + offset`); a frame holding a [`GAP`] sample stays NaN. Channels
    /// with one sample per frame read as [`EdfReader::read_physical_f32`] does.
    pub fn read_frame_means_f32(&self, frames: Range<u64>) -> Result<Vec<Vec<f32>>, EdfError> {
        use crate::wfdb::frame::{FrameMean, smooth_frames};
        let digital = self.read_digital(frames)?;
        Ok(digital
            .into_iter()
            .zip(&self.spf)
            .zip(&self.scales)
            .map(|((d, &spf), &(gain, offset))| {
                let means = if spf > 1 {
                    smooth_frames(&d, spf as usize, FrameMean::default(), |i| d[i] == GAP)
                } else {
                    d
                };
                means
                    .into_iter()
                    .map(|x| {
                        if x == GAP {
                            f32::NAN
                        } else {
                            (f64::from(x) * gain + offset) as f32
                        }
                    })
                    .collect()
            })
            .collect())
    }

    /// Every annotation of the file's `EDF Annotations` signals, in file order, without
    /// the time-keeping TALs (those with no text).
    pub fn annotations(&self) -> Result<Vec<EdfAnnotation>, EdfError> {
        let mut out = Vec::new();
        if self.annot.is_empty() {
            return Ok(out);
        }
        let mut file = File::open(&self.path).map_err(|source| EdfError::Io {
            path: self.path.clone(),
            source,
        })?;
        for r in 0..self.header.n_records {
            for &sig in &self.annot {
                let bytes = self.annotation_bytes(&mut file, r, sig)?;
                let tals = parse_tals(&bytes).map_err(|source| EdfError::Tal {
                    path: self.path.clone(),
                    record: r,
                    source,
                })?;
                for t in tals.into_iter().filter(|t| !t.text.is_empty()) {
                    let time = t.onset - self.start_offset;
                    out.push(EdfAnnotation {
                        time,
                        duration: t.duration,
                        text: t.text,
                        sample: (time * self.fs).round() as i64,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// A piece of one channel's samples handed to `visit`'s sink.
enum Piece<'a> {
    /// Stored little-endian 16-bit samples.
    Data(&'a [u8]),
    /// This many samples of gap.
    Gap(usize),
}

#[cfg(test)]
mod tests {
    use super::super::header::tests::{build, sig};
    use super::*;

    /// Writes an EDF file: `records` data records of the given per-signal samples.
    fn write(dir: &Path, name: &str, header: Vec<u8>, records: &[Vec<Vec<i16>>]) -> PathBuf {
        let mut f = header;
        for rec in records {
            for s in rec {
                for v in s {
                    f.extend(v.to_le_bytes());
                }
            }
        }
        let p = dir.join(name);
        std::fs::write(&p, f).unwrap();
        p
    }

    fn tal_block(text: &str, n: usize) -> Vec<i16> {
        let mut b = text.as_bytes().to_vec();
        b.resize(n * 2, 0);
        b.chunks(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn multi_rate_record_reads_by_frames() {
        let dir = tempfile::tempdir().unwrap();
        // 2 records of 1 s: signal A 4 samples, signal B 2 samples -> fs 2, spf 2 and 1.
        let h = build("", "2", "1", &[sig("A", "4"), sig("B", "2")]);
        let p = write(
            dir.path(),
            "x.edf",
            h,
            &[
                vec![vec![1, 2, 3, 4], vec![10, 20]],
                vec![vec![5, 6, 7, 8], vec![30, 40]],
            ],
        );
        let r = EdfReader::open(&p).unwrap();
        assert_eq!((r.fs(), r.n_frames()), (2.0, 4));
        assert_eq!(r.samps_per_frame(), &[2, 1]);
        let d = r.read_digital(1..4).unwrap();
        assert_eq!(d[0], vec![3, 4, 5, 6, 7, 8]);
        assert_eq!(d[1], vec![20, 30, 40]);
        let p = r.read_physical(0..1).unwrap();
        assert!((p[0][0] - 0.1).abs() < 1e-9 && (p[1][0] - 1.0).abs() < 1e-9);
        assert!(r.read_digital(3..5).is_err());
        assert_eq!(r.read_digital(2..2).unwrap()[0], Vec::<i32>::new());
    }

    #[test]
    fn edf_plus_d_gaps_are_invalid_and_annotations_timed() {
        let dir = tempfile::tempdir().unwrap();
        let h = build(
            "EDF+D",
            "2",
            "1",
            &[
                sig("A", "2"),
                sig(super::super::header::ANNOTATION_LABEL, "16"),
            ],
        );
        let p = write(
            dir.path(),
            "d.edf",
            h,
            &[
                vec![
                    vec![1, 2],
                    tal_block("+0.5\x14\x14\x00+1\x150.5\x14Hi\x14\x00", 16),
                ],
                vec![vec![3, 4], tal_block("+3.5\x14\x14\x00", 16)],
            ],
        );
        let r = EdfReader::open(&p).unwrap();
        assert!(r.has_gaps());
        assert_eq!(r.start_offset(), 0.5);
        assert_eq!(r.n_frames(), 8);
        let d = r.read_digital(0..8).unwrap();
        assert_eq!(d[0], vec![1, 2, GAP, GAP, GAP, GAP, 3, 4]);
        let f = r.read_physical_f32(1..7).unwrap();
        assert!(f[0][1].is_nan() && !f[0][5].is_nan());
        let a = r.annotations().unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].time, a[0].duration, a[0].sample), (0.5, Some(0.5), 1));
        assert_eq!(a[0].text, "Hi");
    }

    #[test]
    fn frame_means_follow_wfdb_and_gaps_stay_invalid() {
        let dir = tempfile::tempdir().unwrap();
        // Multi-rate: A has 2 samples per frame, B one.
        let h = build("", "2", "1", &[sig("A", "4"), sig("B", "2")]);
        let p = write(
            dir.path(),
            "m.edf",
            h,
            &[
                vec![vec![1, 2, -1, -2], vec![10, 20]],
                vec![vec![7, 7, 0, 1], vec![30, 40]],
            ],
        );
        let r = EdfReader::open(&p).unwrap();
        let (gain, offset) = r.scales()[0];
        let phys = |d: f64| (d * gain + offset) as f32;
        let m = r.read_frame_means_f32(0..4).unwrap();
        // WFDB C 10.7.0: floor(mean + 1/2) on the digital samples, then scaled.
        assert_eq!(m[0], vec![phys(2.0), phys(-1.0), phys(7.0), phys(1.0)]);
        assert_eq!(m[1], r.read_physical_f32(0..4).unwrap()[1]);
        assert_eq!(r.read_frame_means_f32(1..3).unwrap()[0], m[0][1..3]);
        // EDF+D: frames in the gap are NaN.
        let h = build(
            "EDF+D",
            "2",
            "1",
            &[
                sig("A", "4"),
                sig("B", "2"),
                sig(super::super::header::ANNOTATION_LABEL, "8"),
            ],
        );
        let p = write(
            dir.path(),
            "d.edf",
            h,
            &[
                vec![vec![1, 2, 3, 4], vec![1, 2], tal_block("+0\x14\x14\x00", 8)],
                vec![vec![5, 6, 7, 8], vec![3, 4], tal_block("+2\x14\x14\x00", 8)],
            ],
        );
        let r = EdfReader::open(&p).unwrap();
        assert_eq!((r.samps_per_frame(), r.n_frames()), (&[2, 1][..], 6));
        let m = r.read_frame_means_f32(0..6).unwrap();
        let nan: Vec<bool> = m[0].iter().map(|x| x.is_nan()).collect();
        assert_eq!(nan, [false, false, true, true, false, false]);
        assert_eq!(m[0][4], phys(6.0)); // (5 + 6) / 2 = 5.5 -> 6
    }

    #[test]
    fn overlapping_edf_plus_d_records_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let h = build(
            "EDF+D",
            "2",
            "1",
            &[
                sig("A", "2"),
                sig(super::super::header::ANNOTATION_LABEL, "8"),
            ],
        );
        let p = write(
            dir.path(),
            "o.edf",
            h,
            &[
                vec![vec![1, 2], tal_block("+0\x14\x14\x00", 8)],
                vec![vec![3, 4], tal_block("+0.5\x14\x14\x00", 8)],
            ],
        );
        let e = EdfReader::open(&p).unwrap_err();
        assert!(matches!(e, EdfError::Discontinuous { .. }), "{e}");
        assert!(e.to_string().contains("o.edf"));
    }

    #[test]
    fn blank_channel_reads() {
        let dir = tempfile::tempdir().unwrap();
        let mut blank = sig("-", "2");
        (blank.dmin, blank.dmax, blank.pmin, blank.pmax) = ("0", "0", "0", "0");
        let h = build("", "1", "1", &[sig("A", "2"), blank]);
        let p = write(dir.path(), "b.edf", h, &[vec![vec![1, 2], vec![0, 0]]]);
        let r = EdfReader::open(&p).unwrap();
        assert_eq!(r.read_physical(0..2).unwrap()[1], vec![0.0, 0.0]);
    }

    /// A small valid EDF+D file with two channels at different rates, annotations and
    /// a gap, the seed the property tests below mutate.
    fn seed() -> Vec<u8> {
        let mut f = build(
            "EDF+D",
            "3",
            "0.5",
            &[
                sig("A", "4"),
                sig("B", "2"),
                sig(super::super::header::ANNOTATION_LABEL, "12"),
            ],
        );
        let tals = [
            "+0\x14\x14\x00+0.25\x150.5\x14x\x14\x00",
            "+0.5\x14\x14\x00",
            "+2\x14\x14\x00",
        ];
        for (r, t) in tals.iter().enumerate() {
            for v in 0..6i16 {
                f.extend((v * (r as i16 + 1)).to_le_bytes());
            }
            for v in tal_block(t, 12) {
                f.extend(v.to_le_bytes());
            }
        }
        f
    }

    /// Opens `bytes` as a file and, if it opens, reads everything; must never panic,
    /// and whatever opens holds no more data than the file has.
    fn exercise(bytes: &[u8]) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.edf");
        std::fs::write(&p, bytes).unwrap();
        let Ok(r) = EdfReader::open(&p) else {
            return;
        };
        let h = r.header();
        let data_bytes = bytes.len() as u64 - h.header_bytes;
        assert!(h.n_records * h.record_bytes() <= data_bytes);
        let stored = h.n_records * r.frames_per_record();
        assert!(r.n_frames() <= stored + MAX_GAP_FRAMES);
        let tspf: u64 = r.samps_per_frame().iter().map(|&s| u64::from(s)).sum();
        if r.n_frames() * tspf <= 1 << 20 {
            let d = r.read_digital(0..r.n_frames()).unwrap();
            for (c, v) in d.iter().enumerate() {
                assert_eq!(
                    v.len() as u64,
                    r.n_frames() * u64::from(r.samps_per_frame()[c])
                );
            }
            let _ = r.read_physical_f32(r.n_frames() / 2..r.n_frames()).unwrap();
        }
        let _ = r.annotations();
        let _ = r.wfdb_python_fields();
    }

    #[test]
    fn seed_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.edf");
        std::fs::write(&p, seed()).unwrap();
        let r = EdfReader::open(&p).unwrap();
        assert_eq!((r.fs(), r.n_frames()), (4.0, 10));
        assert!(r.has_gaps());
        exercise(&seed());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Random byte changes anywhere in a valid file (header digits included).
        #[test]
        fn mutated_files_never_panic(
            edits in proptest::collection::vec((0usize..2000, 0u8..=255), 1..8),
            digits in proptest::collection::vec((0usize..1024, 0u8..10), 0..4),
            cut in 0usize..2000,
        ) {
            let mut f = seed();
            for (at, b) in edits {
                let n = f.len();
                f[at % n] = b;
            }
            // Digits keep numeric fields numeric, so the checks past parsing are reached.
            for (at, d) in digits {
                let n = f.len().min(1024);
                f[at % n] = b'0' + d;
            }
            let keep = f.len() - cut % (f.len() / 4);
            f.truncate(keep);
            exercise(&f);
        }

        /// Arbitrary bytes after a valid fixed header prefix.
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..1200)) {
            let mut f = seed()[..256].to_vec();
            f.extend(body);
            exercise(&f);
        }
    }
}
