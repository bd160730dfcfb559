//! Where the converter's samples come from: a small trait over "a record by name", so the
//! pipeline can be tested with in-memory records and runs on [`crate::wfdb::RecordReader`]
//! in production ([`WfdbOpener`], the adapter between the two).

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::ConvertError;

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

/// One annotation as it goes into the `annotations` list column.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnotationRow {
    /// Sample (frame) number in the record.
    pub sample: i64,
    /// Annotation mnemonic (`N`, `V`, `+`, ...).
    pub symbol: String,
    /// Auxiliary text (rhythm labels such as `(N`), trailing NULs removed.
    pub aux: String,
}

/// An open record that can be read in frame ranges (so long records stream).
pub trait RecordSource: Send {
    /// Physical values of frames `frames`, channel-major; NaN marks invalid samples.
    fn read_physical_f32(&mut self, frames: Range<u64>) -> Result<Vec<Vec<f32>>, ConvertError>;
    /// Digital values of frames `frames`, channel-major.
    fn read_digital(&mut self, frames: Range<u64>) -> Result<Vec<Vec<i32>>, ConvertError>;
}

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

impl SourceOpener for WfdbOpener {
    fn probe(&self, name: &str, _check_data: bool) -> Result<RecordMeta, ConvertError> {
        Err(ConvertError::unsuitable(name, "WFDB reader not merged yet"))
    }
    fn open(&self, name: &str) -> Result<Box<dyn RecordSource>, ConvertError> {
        Err(ConvertError::unsuitable(name, "WFDB reader not merged yet"))
    }
    fn annotations(
        &self,
        _name: &str,
        _ext: &str,
    ) -> Result<Option<Vec<AnnotationRow>>, ConvertError> {
        Ok(None)
    }
    fn input_digests(&self, _name: &str) -> Result<Vec<(String, String)>, ConvertError> {
        Ok(Vec::new())
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
