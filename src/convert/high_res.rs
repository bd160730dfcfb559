//! `--high-resolution` (issue 14 item 2): the `samples` and `windows` layouts with every
//! sample of oversampled signals, as WFDB C's `rdsamp -H` (`setgvmode(WFDB_HIGHRES)`)
//! gives them, instead of one frame mean per frame.
//!
//! A record with at most `k` samples per frame is presented to the pipeline as a record
//! of `k × n_frames` frames at `k × fs`, every signal at one sample per frame; a signal
//! with fewer than `k` samples per frame repeats its samples by WFDB's rule
//! ([`crate::wfdb::frame::high_resolution`]). Annotation sample numbers are scaled by
//! `k` (WFDB C reports them in high-resolution units in this mode); their `time` is
//! unchanged. The `record` layout needs none of this: it keeps every sample already.

use std::ops::Range;

use super::ConvertError;
use super::source::{AnnotationRow, RecordMeta, RecordSource, ScaledDigital, SourceOpener};
use crate::wfdb::frame::high_resolution;

/// A [`SourceOpener`] whose records read at their highest sampling rate.
pub struct HighResOpener<'a> {
    inner: &'a dyn SourceOpener,
}

impl<'a> HighResOpener<'a> {
    /// Wraps `inner`.
    pub fn new(inner: &'a dyn SourceOpener) -> Self {
        HighResOpener { inner }
    }
}

/// Samples per frame of each channel and their maximum (at least 1).
fn rates(meta: &RecordMeta) -> (Vec<usize>, usize) {
    let spf: Vec<usize> = meta
        .channels
        .iter()
        .map(|c| c.samps_per_frame.max(1) as usize)
        .collect();
    let max = spf.iter().copied().max().unwrap_or(1);
    (spf, max)
}

impl SourceOpener for HighResOpener<'_> {
    fn probe(&self, name: &str, check_data: bool) -> Result<RecordMeta, ConvertError> {
        let mut meta = self.inner.probe(name, check_data)?;
        let (_, k) = rates(&meta);
        meta.fs *= k as f64;
        meta.n_frames = meta.n_frames.checked_mul(k as u64).ok_or_else(|| {
            ConvertError::unsuitable(name, "too many samples at the highest resolution")
        })?;
        for c in &mut meta.channels {
            c.samps_per_frame = 1;
        }
        Ok(meta)
    }

    fn open(&self, name: &str) -> Result<Box<dyn RecordSource>, ConvertError> {
        let (spf, k) = rates(&self.inner.probe(name, false)?);
        Ok(Box::new(HighResSource {
            inner: self.inner.open(name)?,
            spf,
            k: k as u64,
        }))
    }

    fn annotations(
        &self,
        name: &str,
        ext: &str,
    ) -> Result<Option<Vec<AnnotationRow>>, ConvertError> {
        let Some(mut anns) = self.inner.annotations(name, ext)? else {
            return Ok(None);
        };
        let (_, k) = rates(&self.inner.probe(name, false)?);
        for a in &mut anns {
            a.sample = a.sample.saturating_mul(k as i64);
        }
        Ok(Some(anns))
    }

    fn input_digests(&self, name: &str) -> Result<Vec<(String, String)>, ConvertError> {
        self.inner.input_digests(name)
    }
}

/// An open record read at `k` samples per frame.
struct HighResSource {
    inner: Box<dyn RecordSource>,
    spf: Vec<usize>,
    k: u64,
}

impl HighResSource {
    /// The enclosing frame range of high-resolution samples `hi`, and where `hi` starts
    /// within its expansion.
    fn frames(&self, hi: &Range<u64>) -> (Range<u64>, usize) {
        let lo = hi.start / self.k..hi.end.div_ceil(self.k);
        (lo.clone(), (hi.start - lo.start * self.k) as usize)
    }

    /// Each channel expanded to `k` samples per frame and cut to `hi`.
    fn expand<T: Copy>(&self, chans: Vec<Vec<T>>, skip: usize, len: usize) -> Vec<Vec<T>> {
        chans
            .iter()
            .zip(&self.spf)
            .map(|(v, &spf)| {
                let all = high_resolution(v, spf, self.k as usize);
                all.get(skip..skip + len)
                    .map_or_else(Vec::new, <[T]>::to_vec)
            })
            .collect()
    }
}

impl RecordSource for HighResSource {
    fn read_physical_f32(&mut self, hi: Range<u64>) -> Result<Vec<Vec<f32>>, ConvertError> {
        let (lo, skip) = self.frames(&hi);
        let chans = self.inner.read_physical_f32(lo)?;
        Ok(self.expand(chans, skip, (hi.end - hi.start) as usize))
    }

    fn read_digital(&mut self, hi: Range<u64>) -> Result<Vec<Vec<i32>>, ConvertError> {
        let (lo, skip) = self.frames(&hi);
        let chans = self.inner.read_digital(lo)?;
        Ok(self.expand(chans, skip, (hi.end - hi.start) as usize))
    }

    fn read_digital_scaled(
        &mut self,
        hi: Range<u64>,
    ) -> Result<Option<ScaledDigital>, ConvertError> {
        let (lo, skip) = self.frames(&hi);
        let Some((chans, scales)) = self.inner.read_digital_scaled(lo)? else {
            return Ok(None);
        };
        Ok(Some((
            self.expand(chans, skip, (hi.end - hi.start) as usize),
            scales,
        )))
    }
}
