//! Where the converter's samples come from: a small trait over "a record by name", so the
//! pipeline can be tested with in-memory records and runs on [`crate::wfdb::RecordReader`]
//! in production ([`WfdbOpener`], the adapter between the two).

use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ConvertError;
use crate::wfdb::annotation::{annotation_path, read_annotation_file};
use crate::wfdb::{PhysicalScale, RecordReader, WfdbError};

/// One signal (channel) of a record, as the converter needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelMeta {
    /// Signal name (the header's description field).
    pub name: String,
    /// Physical units (`mV` where the header gives none).
    pub units: String,
    /// Samples per frame.
    pub samps_per_frame: u32,
    /// ADC gain (digital units per physical unit); `None` where segments differ.
    pub gain: Option<f64>,
    /// Baseline (digital value of physical zero); `None` where segments differ.
    pub baseline: Option<i64>,
}

/// What the converter needs to know of a record before decoding it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordMeta {
    /// Record name relative to the input, `/`-separated, no extension.
    pub name: String,
    /// Frame frequency in Hz.
    pub fs: f64,
    /// Number of frames.
    pub n_frames: u64,
    /// Signals in header order.
    pub channels: Vec<ChannelMeta>,
    /// Base date as ISO 8601 (`YYYY-MM-DD`), if the header has one.
    pub base_date: Option<String>,
    /// Base time as ISO 8601 (`HH:MM:SS[.ffffff]`), if the header has one.
    pub base_time: Option<String>,
    /// Header comment lines.
    pub comments: Vec<String>,
}

/// One annotation as it goes into the `annotations` list column and the flat
/// `--annotations-table` (every field `rdann` shows; `docs/parquet.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct AnnotationRow {
    /// Frame number in the record (EDF+: onset × the record's frame rate, rounded).
    pub sample: i64,
    /// WFDB mnemonic, including custom symbols defined in the file; EDF+: `""` (the
    /// text goes in `aux`).
    pub symbol: String,
    /// WFDB `subtyp`; EDF+: 0.
    pub subtype: i16,
    /// WFDB `chan` (0..=255); EDF+: 0.
    pub chan: i16,
    /// WFDB `num`; EDF+: 0.
    pub num: i16,
    /// WFDB aux text (rhythm labels such as `(N`), trailing NULs removed; EDF+: the
    /// annotation text.
    pub aux: String,
    /// Seconds from the record start (`sample / fs` for WFDB; the EDF+ onset).
    pub time: f64,
    /// EDF+ duration in seconds; `None` for WFDB.
    pub duration: Option<f64>,
}

/// An open record that can be read in frame ranges (so long records stream).
pub trait RecordSource: Send {
    /// Physical values of frames `frames`, channel-major; NaN marks invalid samples.
    fn read_physical_f32(&mut self, frames: Range<u64>) -> Result<Vec<Vec<f32>>, ConvertError>;
    /// Digital values of frames `frames`, channel-major.
    fn read_digital(&mut self, frames: Range<u64>) -> Result<Vec<Vec<i32>>, ConvertError>;
    /// Digital values of frames `frames` with, per channel, the scale that turns them
    /// into exactly [`RecordSource::read_physical_f32`]'s values; `None` when the
    /// physical values are not one scale of the digital ones (multi-segment records).
    fn read_digital_scaled(
        &mut self,
        frames: Range<u64>,
    ) -> Result<Option<ScaledDigital>, ConvertError> {
        let _ = frames;
        Ok(None)
    }
    /// One physical value per frame and channel, oversampled signals reduced by WFDB
    /// C's frame mean on the digital samples ([`crate::wfdb::frame`]); `None` when the
    /// source cannot (the caller then averages physical values).
    fn read_frame_means_f32(
        &mut self,
        frames: Range<u64>,
    ) -> Result<Option<Vec<Vec<f32>>>, ConvertError> {
        let _ = frames;
        Ok(None)
    }
}

/// Digital samples, channel-major, with each channel's scale to physical values.
pub type ScaledDigital = (Vec<Vec<i32>>, Vec<PhysicalScale>);

/// Opens records by name.
pub trait SourceOpener: Sync {
    /// Reads the record's header; with `check_data`, also reads its last frame so a
    /// missing or short signal file is found before any row of the record is written.
    fn probe(&self, name: &str, check_data: bool) -> Result<RecordMeta, ConvertError>;
    /// Opens the record for reading samples.
    fn open(&self, name: &str) -> Result<Box<dyn RecordSource>, ConvertError>;
    /// The record's annotations from the annotator `ext`; `None` when it has no such file.
    fn annotations(
        &self,
        name: &str,
        ext: &str,
    ) -> Result<Option<Vec<AnnotationRow>>, ConvertError>;
    /// SHA-256 (hex) of each input file of the record, keyed by path relative to the
    /// input root, for the output's provenance metadata.
    fn input_digests(&self, name: &str) -> Result<Vec<(String, String)>, ConvertError>;
}

/// Reads records from a dataset directory with physio's WFDB reader.
#[derive(Debug, Clone)]
pub struct WfdbOpener {
    root: PathBuf,
}

impl WfdbOpener {
    /// An opener for records relative to `root`.
    pub fn new(root: &Path) -> Self {
        WfdbOpener {
            root: root.to_path_buf(),
        }
    }

    /// The dataset root records are relative to.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl WfdbOpener {
    fn reader(&self, name: &str) -> Result<RecordReader, ConvertError> {
        RecordReader::open(&self.root.join(name)).map_err(|source| ConvertError::Record {
            name: name.to_string(),
            source,
        })
    }
}

impl SourceOpener for WfdbOpener {
    /// `RecordReader::open` already checks that every signal file exists and is long
    /// enough, so `check_data` needs no extra read.
    fn probe(&self, name: &str, _check_data: bool) -> Result<RecordMeta, ConvertError> {
        let r = self.reader(name)?;
        let h = r.header();
        Ok(RecordMeta {
            name: name.to_string(),
            fs: r.fs(),
            n_frames: r.n_frames(),
            channels: r
                .signals()
                .iter()
                .map(|s| ChannelMeta {
                    name: s.name.clone(),
                    units: s.units.clone(),
                    samps_per_frame: s.samps_per_frame,
                    gain: s.adc_gain,
                    baseline: s.baseline,
                })
                .collect(),
            base_date: h.base_date.map(|d| d.to_string()),
            base_time: h.base_time.map(|t| t.to_string()),
            comments: h.comments.clone(),
        })
    }

    fn open(&self, name: &str) -> Result<Box<dyn RecordSource>, ConvertError> {
        Ok(Box::new(WfdbSource {
            reader: self.reader(name)?,
            name: name.to_string(),
        }))
    }

    fn annotations(
        &self,
        name: &str,
        ext: &str,
    ) -> Result<Option<Vec<AnnotationRow>>, ConvertError> {
        let record = self.root.join(name);
        if !annotation_path(&record, ext).is_file() {
            return Ok(None);
        }
        let file = read_annotation_file(&annotation_path(&record, ext)).map_err(|source| {
            ConvertError::Record {
                name: name.to_string(),
                source,
            }
        })?;
        // A file may count in its own time resolution (`## time resolution: FS`).
        // `time` divides by it; `sample` is rescaled to the record's frames as WFDB C's
        // `getann` does (`tmul`, halves rounded up), so rows and windows hold the right
        // annotations (wfdb-python keeps the stored number; they agree when the two
        // frequencies do, as in every annotation file of the corpus).
        let record_fs = crate::wfdb::read_header(&record)
            .map_err(|source| ConvertError::Record {
                name: name.to_string(),
                source,
            })?
            .fs;
        let file_fs = match file.fs {
            Some(fs) if fs > 0.0 => fs,
            _ => record_fs,
        };
        let rescale = file_fs != record_fs && record_fs > 0.0;
        Ok(Some(
            file.annotations
                .into_iter()
                .map(|a| AnnotationRow {
                    sample: if rescale {
                        (a.sample as f64 * record_fs / file_fs + 0.5).floor() as i64
                    } else {
                        a.sample
                    },
                    symbol: a.symbol,
                    subtype: i16::from(a.subtype),
                    chan: i16::from(a.chan),
                    num: i16::from(a.num),
                    // Aux strings are stored NUL-padded to an even length (`(N\0`).
                    aux: String::from_utf8_lossy(&a.aux)
                        .trim_end_matches('\0')
                        .to_string(),
                    time: a.sample as f64 / file_fs,
                    duration: None,
                })
                .collect(),
        ))
    }

    /// Each header is read once, hashed and parsed from the same bytes (opening the
    /// record for its file list cost as much as the hashing: `docs/parquet.md`).
    fn input_digests(&self, name: &str) -> Result<Vec<(String, String)>, ConvertError> {
        let dir = match name.rsplit_once('/') {
            Some((d, _)) => format!("{d}/"),
            None => String::new(),
        };
        let io = |path: &Path, e| ConvertError::io(path, e);
        let bad = |source| ConvertError::Record {
            name: name.to_string(),
            source,
        };
        let mut digests: Vec<(String, String)> = Vec::new();
        let mut header_of = |rel: String| -> Result<crate::wfdb::header::Header, ConvertError> {
            let path = self.root.join(&rel);
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            let header = crate::wfdb::header::parse_header(&bytes, &path).map_err(bad)?;
            digests.push((rel, hex::encode(Sha256::digest(&bytes))));
            Ok(header)
        };
        let top = header_of(format!("{name}.hea"))?;
        let mut headers = Vec::new();
        if let Some(segments) = &top.segments {
            for seg in segments.iter().filter(|s| !s.is_gap()) {
                headers.push(header_of(format!("{dir}{}.hea", seg.name))?);
            }
        }
        headers.push(top);
        let mut files: Vec<String> = headers
            .iter()
            .flat_map(|h| &h.signals)
            .filter(|s| s.file_name != "~")
            .map(|s| format!("{dir}{}", s.file_name))
            .collect();
        files.sort();
        files.dedup();
        for rel in files {
            let path = self.root.join(&rel);
            let digest = crate::fetch::hash::sha256_hex(&path).map_err(|e| io(&path, e))?;
            digests.push((rel, digest));
        }
        digests.sort();
        digests.dedup();
        Ok(digests)
    }
}

thread_local! {
    /// Reused digital sample buffer of each worker thread (see `read_physical_f32`).
    static DIGITAL: std::cell::RefCell<Vec<Vec<i32>>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Channel buffers handed back by [`recycle_channel_buffers`], with their total
    /// capacity in samples.
    static SPARE: std::cell::RefCell<(Vec<Vec<i32>>, usize)> = const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// Samples of spare buffers a thread keeps (64 MiB of i32).
const SPARE_SAMPLES: usize = 16 << 20;

/// Up to `n` spare channel buffers of this thread (any lengths; the reader resizes them
/// and adds any missing), so a worker decoding record after record reuses memory it
/// has already touched instead of faulting in fresh pages for every channel.
fn spare_channel_buffers(n: usize) -> Vec<Vec<i32>> {
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        let keep = s.0.len().saturating_sub(n);
        let taken = s.0.split_off(keep);
        s.1 -= taken.iter().map(Vec::capacity).sum::<usize>();
        taken
    })
}

/// Gives channel buffers that are no longer needed back to this thread's spares
/// (keeping at most [`SPARE_SAMPLES`] samples' worth).
pub(crate) fn recycle_channel_buffers(buffers: impl IntoIterator<Item = Vec<i32>>) {
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        for b in buffers {
            if s.1 + b.capacity() <= SPARE_SAMPLES {
                s.1 += b.capacity();
                s.0.push(b);
            }
        }
    });
}

/// An open WFDB record.
struct WfdbSource {
    reader: RecordReader,
    name: String,
}

impl WfdbSource {
    fn err(&self, source: WfdbError) -> ConvertError {
        ConvertError::Record {
            name: self.name.clone(),
            source,
        }
    }
}

impl RecordSource for WfdbSource {
    fn read_physical_f32(&mut self, frames: Range<u64>) -> Result<Vec<Vec<f32>>, ConvertError> {
        // Single-segment records (one gain, baseline and format per signal): convert
        // the digital samples straight to f32, skipping the reader's f64 vectors. The
        // value is the same: `(d - baseline) / gain` in f64, then rounded to f32.
        let Some(scales) = self.reader.physical_scales() else {
            return self
                .reader
                .read_physical_f32(frames)
                .map_err(|e| self.err(e));
        };
        // The digital samples are decoded into a per-thread buffer that lives across
        // records, so a worker does not fault in fresh pages for every record.
        DIGITAL.with(|buf| {
            let mut digital = buf.borrow_mut();
            self.reader
                .read_digital_into(frames, &mut digital)
                .map_err(|e| self.err(e))?;
            Ok(digital
                .iter()
                .zip(scales)
                .map(|(d, scale)| d.iter().map(|&x| scale.to_f32(x)).collect())
                .collect())
        })
    }

    fn read_digital(&mut self, frames: Range<u64>) -> Result<Vec<Vec<i32>>, ConvertError> {
        self.reader.read_digital(frames).map_err(|e| self.err(e))
    }

    fn read_frame_means_f32(
        &mut self,
        frames: Range<u64>,
    ) -> Result<Option<Vec<Vec<f32>>>, ConvertError> {
        self.reader
            .read_frame_means_f32(frames, crate::wfdb::frame::FrameMean::default())
            .map(Some)
            .map_err(|e| self.err(e))
    }

    fn read_digital_scaled(
        &mut self,
        frames: Range<u64>,
    ) -> Result<Option<ScaledDigital>, ConvertError> {
        let Some(scales) = self.reader.physical_scales() else {
            return Ok(None);
        };
        let mut digital = spare_channel_buffers(self.reader.signals().len());
        self.reader
            .read_digital_into(frames, &mut digital)
            .map_err(|e| self.err(e))?;
        Ok(Some((digital, scales)))
    }
}

/// In-memory records for the pipeline's unit tests.
#[cfg(test)]
pub(crate) mod mem {
    use std::collections::BTreeMap;

    use super::*;

    /// One record: header facts plus its digital samples (channel-major).
    #[derive(Debug, Clone)]
    pub struct MemRecord {
        pub meta: RecordMeta,
        pub digital: Vec<Vec<i32>>,
        pub broken: bool,
        pub annotations: Option<Vec<AnnotationRow>>,
        /// Whether the record offers digital samples with scales (as single-segment
        /// WFDB records do) or only physical values (as multi-segment ones).
        pub scaled: bool,
    }

    /// Records by name; `broken` ones fail when their samples are read.
    #[derive(Debug, Default)]
    pub struct MemOpener {
        pub records: BTreeMap<String, MemRecord>,
    }

    /// -32768 plays the format-16 invalid value.
    pub const INVALID: i32 = -32768;

    impl MemOpener {
        pub fn add(&mut self, rec: MemRecord) {
            self.records.insert(rec.meta.name.clone(), rec);
        }

        pub fn discovered(&self) -> crate::convert::discover::Discovered {
            crate::convert::discover::Discovered {
                root: PathBuf::from("mem"),
                records: self
                    .records
                    .keys()
                    .map(|n| crate::convert::RecordRef { name: n.clone() })
                    .collect(),
            }
        }
    }

    struct MemSource(MemRecord);

    impl MemSource {
        fn slice(&self, j: usize, frames: &Range<u64>) -> Result<&[i32], ConvertError> {
            if self.0.broken {
                return Err(ConvertError::unsuitable(
                    &self.0.meta.name,
                    "broken on purpose",
                ));
            }
            let spf = self.0.meta.channels[j].samps_per_frame as usize;
            let (a, b) = (frames.start as usize * spf, frames.end as usize * spf);
            self.0.digital[j]
                .get(a..b)
                .ok_or_else(|| ConvertError::unsuitable(&self.0.meta.name, "short"))
        }
    }

    impl RecordSource for MemSource {
        fn read_physical_f32(&mut self, frames: Range<u64>) -> Result<Vec<Vec<f32>>, ConvertError> {
            (0..self.0.meta.channels.len())
                .map(|j| {
                    let c = &self.0.meta.channels[j];
                    let (g, b) = (c.gain.unwrap_or(200.0), c.baseline.unwrap_or(0));
                    Ok(self
                        .slice(j, &frames)?
                        .iter()
                        .map(|&d| {
                            if d == INVALID {
                                f32::NAN
                            } else {
                                ((f64::from(d) - b as f64) / g) as f32
                            }
                        })
                        .collect())
                })
                .collect()
        }

        fn read_digital(&mut self, frames: Range<u64>) -> Result<Vec<Vec<i32>>, ConvertError> {
            (0..self.0.meta.channels.len())
                .map(|j| Ok(self.slice(j, &frames)?.to_vec()))
                .collect()
        }

        fn read_digital_scaled(
            &mut self,
            frames: Range<u64>,
        ) -> Result<Option<ScaledDigital>, ConvertError> {
            if !self.0.scaled {
                return Ok(None);
            }
            let scales = self
                .0
                .meta
                .channels
                .iter()
                .map(|c| PhysicalScale {
                    baseline: c.baseline.unwrap_or(0) as f64,
                    gain: c.gain.unwrap_or(200.0),
                    invalid: Some(INVALID),
                })
                .collect();
            Ok(Some((self.read_digital(frames)?, scales)))
        }
    }

    impl SourceOpener for MemOpener {
        fn probe(&self, name: &str, _check_data: bool) -> Result<RecordMeta, ConvertError> {
            self.records
                .get(name)
                .map(|r| r.meta.clone())
                .ok_or_else(|| ConvertError::unsuitable(name, "no such record"))
        }

        fn open(&self, name: &str) -> Result<Box<dyn RecordSource>, ConvertError> {
            let r = self
                .records
                .get(name)
                .ok_or_else(|| ConvertError::unsuitable(name, "no such record"))?;
            Ok(Box::new(MemSource(r.clone())))
        }

        fn annotations(
            &self,
            name: &str,
            _ext: &str,
        ) -> Result<Option<Vec<AnnotationRow>>, ConvertError> {
            Ok(self.records.get(name).and_then(|r| r.annotations.clone()))
        }

        fn input_digests(&self, name: &str) -> Result<Vec<(String, String)>, ConvertError> {
            Ok(vec![(format!("{name}.hea"), format!("sha-of-{name}"))])
        }
    }
}
