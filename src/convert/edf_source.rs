//! EDF and EDF+ files as converter records, next to WFDB records: [`DatasetOpener`]
//! reads a record named `…/x.edf` (the name PhysioNet's `RECORDS` files give EDF
//! records, extension included) with [`crate::edf::EdfReader`] and any other name with
//! [`WfdbOpener`], so one directory may hold both.
//!
//! EDF+ annotations are the file's own (`EDF Annotations` signals), asked for with
//! `--annotations edf` ([`EDF_ANNOTATIONS`]): each becomes an [`AnnotationRow`] with
//! `time` and `duration` from its TAL, its text in `aux`, `sample` = round(time × fs)
//! in the record's frames, `symbol` [`EDF_ANNOTATION_SYMBOL`] (WFDB's NOTE, `"`, as
//! wfdb-python's `rdedfann` writes EDF+ annotations) and `subtype`, `chan`, `num` 0.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::ConvertError;
use super::source::{
    AnnotationRow, ChannelMeta, RecordMeta, RecordSource, SourceOpener, WfdbOpener,
};
use crate::edf::{self, EdfError, EdfReader};

/// The `--annotations` extension that selects an EDF+ file's own annotations.
pub const EDF_ANNOTATIONS: &str = "edf";

/// The `symbol` of every EDF+ annotation: WFDB's NOTE mnemonic (`"`), the code WFDB
/// gives free-text annotations (the text is in `aux`), as wfdb-python's `rdedfann`
/// does; so EDF+ and WFDB notes group together in the flat annotations table.
pub const EDF_ANNOTATION_SYMBOL: &str = "\"";

/// Opens WFDB records and EDF files under one root.
#[derive(Debug, Clone)]
pub struct DatasetOpener {
    root: PathBuf,
    wfdb: WfdbOpener,
}

impl DatasetOpener {
    /// An opener for records relative to `root`.
    pub fn new(root: &Path) -> Self {
        DatasetOpener {
            root: root.to_path_buf(),
            wfdb: WfdbOpener::new(root),
        }
    }

    /// The dataset root records are relative to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn edf(&self, name: &str) -> Result<EdfReader, ConvertError> {
        EdfReader::open(&self.root.join(name)).map_err(|source| edf_err(name, source))
    }
}

fn edf_err(name: &str, source: EdfError) -> ConvertError {
    ConvertError::Edf {
        name: name.to_string(),
        source,
    }
}

/// True for a record name that is an EDF file.
pub fn is_edf_name(name: &str) -> bool {
    edf::is_edf_path(Path::new(name))
}

/// The converter's view of an open EDF file: channels (annotation signals excluded)
/// with their units, samples per frame and, where it is exact, the WFDB-style gain and
/// integer baseline `--dtype i16` needs; the EDF+ patient and recording fields as
/// comments.
pub fn edf_meta(name: &str, r: &EdfReader) -> Result<RecordMeta, ConvertError> {
    let h = r.header();
    if r.channels().is_empty() {
        return Err(ConvertError::unsuitable(
            name,
            "EDF file has no signals, only annotations (read it with --annotations edf \
             next to the record it annotates)",
        ));
    }
    let channels = r
        .channels()
        .iter()
        .zip(r.samps_per_frame())
        .zip(r.scales())
        .map(|((&i, &spf), &(gain, offset))| {
            let adc_gain = 1.0 / gain;
            let baseline = -offset / gain;
            let int_baseline = baseline.round();
            ChannelMeta {
                name: h.signals[i].label.clone(),
                units: h.signals[i].physical_dimension.clone(),
                samps_per_frame: spf,
                gain: Some(adc_gain),
                baseline: ((baseline - int_baseline).abs() < 1e-9).then_some(int_baseline as i64),
            }
        })
        .collect();
    let mut base_time = h.base_time;
    if let Some(t) = base_time.as_mut()
        && (0.0..1.0).contains(&r.start_offset())
    {
        t.microsecond = (r.start_offset() * 1e6).round().min(999_999.0) as u32;
    }
    Ok(RecordMeta {
        name: name.to_string(),
        fs: r.fs(),
        n_frames: r.n_frames(),
        channels,
        base_date: h.base_date.map(|d| d.to_string()),
        base_time: base_time.map(|t| t.to_string()),
        comments: vec![
            format!("patient_id: {}", h.patient_id),
            format!("recording_id: {}", h.recording_id),
        ],
    })
}

/// EDF+ annotations as annotation rows (see the module docs).
pub fn edf_annotation_rows(name: &str, r: &EdfReader) -> Result<Vec<AnnotationRow>, ConvertError> {
    Ok(r.annotations()
        .map_err(|e| edf_err(name, e))?
        .into_iter()
        .map(|a| AnnotationRow {
            sample: a.sample,
            symbol: EDF_ANNOTATION_SYMBOL.to_string(),
            subtype: 0,
            chan: 0,
            num: 0,
            aux: a.text,
            time: a.time,
            duration: a.duration,
        })
        .collect())
}

impl SourceOpener for DatasetOpener {
    /// EDF: the header (sizes already checked against the file by `EdfReader::open`).
    fn probe(&self, name: &str, check_data: bool) -> Result<RecordMeta, ConvertError> {
        if !is_edf_name(name) {
            return self.wfdb.probe(name, check_data);
        }
        edf_meta(name, &self.edf(name)?)
    }

    fn open(&self, name: &str) -> Result<Box<dyn RecordSource>, ConvertError> {
        if !is_edf_name(name) {
            return self.wfdb.open(name);
        }
        Ok(Box::new(EdfSource {
            reader: self.edf(name)?,
            name: name.to_string(),
        }))
    }

    /// EDF files answer only [`EDF_ANNOTATIONS`] (their own annotations; `None` when
    /// the file has no `EDF Annotations` signal); WFDB records never answer it (an
    /// `x.edf` beside `x.hea` is a signal file, not an annotation file).
    fn annotations(
        &self,
        name: &str,
        ext: &str,
    ) -> Result<Option<Vec<AnnotationRow>>, ConvertError> {
        match (is_edf_name(name), ext == EDF_ANNOTATIONS) {
            (true, true) => {
                let r = self.edf(name)?;
                if !r.has_annotations() {
                    return Ok(None);
                }
                Ok(Some(edf_annotation_rows(name, &r)?))
            }
            (false, false) => self.wfdb.annotations(name, ext),
            _ => Ok(None),
        }
    }

    fn input_digests(&self, name: &str) -> Result<Vec<(String, String)>, ConvertError> {
        if !is_edf_name(name) {
            return self.wfdb.input_digests(name);
        }
        let path = self.root.join(name);
        let digest =
            crate::fetch::hash::sha256_hex(&path).map_err(|e| ConvertError::io(&path, e))?;
        Ok(vec![(name.to_string(), digest)])
    }
}

/// An open EDF file.
struct EdfSource {
    reader: EdfReader,
    name: String,
}

impl RecordSource for EdfSource {
    fn read_physical_f32(&mut self, frames: Range<u64>) -> Result<Vec<Vec<f32>>, ConvertError> {
        self.reader
            .read_physical_f32(frames)
            .map_err(|e| edf_err(&self.name, e))
    }

    /// WFDB C's frame means of the digital samples, as for WFDB multi-frequency
    /// records ([`EdfReader::read_frame_means_f32`]).
    fn read_frame_means_f32(
        &mut self,
        frames: Range<u64>,
    ) -> Result<Option<Vec<Vec<f32>>>, ConvertError> {
        self.reader
            .read_frame_means_f32(frames)
            .map(Some)
            .map_err(|e| edf_err(&self.name, e))
    }

    /// Digital samples; frames in EDF+D gaps are [`edf::GAP`] (outside 16 bits, so
    /// `--dtype i16` refuses such a record rather than invent a value).
    fn read_digital(&mut self, frames: Range<u64>) -> Result<Vec<Vec<i32>>, ConvertError> {
        self.reader
            .read_digital(frames)
            .map_err(|e| edf_err(&self.name, e))
    }
}
