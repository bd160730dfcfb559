//! Min/max decimation per pixel column, fed in chunks so a 24-hour record streams
//! through in bounded memory.
//!
//! A signal with more samples in the window than two per pixel column keeps, per
//! column, only its smallest and largest valid sample, in the order they occurred: the
//! polyline through them covers exactly the pixels the full-resolution line would
//! (what LightWAVE and most scope displays do), with at most two points per column.
//! Fewer samples are kept as they are. Invalid samples (NaN) end the current run, so
//! they show as gaps rather than as a line through zero.

/// One pixel column's summary.
#[derive(Debug, Clone, Copy)]
struct Column {
    min: f32,
    max: f32,
    min_at: u64,
    max_at: u64,
    /// Valid samples seen.
    n: u32,
    /// An invalid sample was seen.
    nan: bool,
}

impl Column {
    const EMPTY: Column = Column {
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
        min_at: 0,
        max_at: 0,
        n: 0,
        nan: false,
    };
}

#[derive(Debug)]
enum Mode {
    /// Every sample: (x in pixels, value).
    Raw(Vec<(f32, f32)>),
    /// Min/max per pixel column.
    MinMax(Vec<Column>),
}

/// Decimates one signal for a plot `columns` pixels wide covering `t0..t1` seconds.
#[derive(Debug)]
pub struct Decimator {
    /// Seconds of record time per sample of this signal (`1 / (fs * spf)`).
    sample_secs: f64,
    t0: f64,
    px_per_sec: f64,
    columns: usize,
    mode: Mode,
    lo: f32,
    hi: f32,
}

impl Decimator {
    /// A decimator for a signal sampled at `rate` Hz (frame rate times samples per
    /// frame) that will receive about `n_samples` samples in the window `t0..t1`
    /// (seconds from the record's start) drawn `columns` pixels wide.
    pub fn new(rate: f64, t0: f64, t1: f64, columns: usize, n_samples: u64) -> Self {
        let columns = columns.max(1);
        let span = (t1 - t0).max(f64::MIN_POSITIVE);
        let mode = if n_samples > 2 * columns as u64 {
            Mode::MinMax(vec![Column::EMPTY; columns])
        } else {
            Mode::Raw(Vec::with_capacity(n_samples as usize))
        };
        Decimator {
            sample_secs: 1.0 / rate,
            t0,
            px_per_sec: columns as f64 / span,
            columns,
            mode,
            lo: f32::INFINITY,
            hi: f32::NEG_INFINITY,
        }
    }

    /// True when samples are summarised per pixel column.
    pub fn is_decimating(&self) -> bool {
        matches!(self.mode, Mode::MinMax(_))
    }

    /// Feeds `values`, the signal's samples starting at sample index `first` (counted
    /// from the record's start in this signal's own samples).
    pub fn push(&mut self, first: u64, values: &[f32]) {
        let (t0, pps, step) = (self.t0, self.px_per_sec, self.sample_secs);
        let (mut lo, mut hi) = (self.lo, self.hi);
        match &mut self.mode {
            Mode::Raw(points) => {
                for (i, &v) in values.iter().enumerate() {
                    let t = (first + i as u64) as f64 * step;
                    points.push((((t - t0) * pps) as f32, v));
                    if v.is_finite() {
                        lo = lo.min(v);
                        hi = hi.max(v);
                    }
                }
            }
            Mode::MinMax(cols) => {
                let last = cols.len() - 1;
                for (i, &v) in values.iter().enumerate() {
                    let k = first + i as u64;
                    let x = (k as f64 * step - t0) * pps;
                    let c = &mut cols[(x.max(0.0) as usize).min(last)];
                    if v.is_nan() {
                        c.nan = true;
                        continue;
                    }
                    if v < c.min {
                        c.min = v;
                        c.min_at = k;
                    }
                    if v > c.max {
                        c.max = v;
                        c.max_at = k;
                    }
                    c.n += 1;
                }
                for c in cols.iter().filter(|c| c.n > 0) {
                    lo = lo.min(c.min);
                    hi = hi.max(c.max);
                }
            }
        }
        self.lo = lo;
        self.hi = hi;
    }

    /// Smallest and largest valid sample seen, if any.
    pub fn range(&self) -> Option<(f32, f32)> {
        (self.lo <= self.hi).then_some((self.lo, self.hi))
    }

    /// The line to draw: runs of (x in pixels from the plot's left edge, value), split
    /// wherever samples are invalid.
    pub fn runs(&self) -> Vec<Vec<(f32, f32)>> {
        let mut runs = Vec::new();
        let mut run: Vec<(f32, f32)> = Vec::new();
        match &self.mode {
            Mode::Raw(points) => {
                for &(x, v) in points {
                    if v.is_finite() {
                        run.push((x, v));
                    } else if !run.is_empty() {
                        runs.push(std::mem::take(&mut run));
                    }
                }
            }
            Mode::MinMax(cols) => {
                for (i, c) in cols.iter().enumerate() {
                    let x = i as f32 + 0.5;
                    if c.n > 0 {
                        if c.min_at == c.max_at {
                            run.push((x, c.min));
                        } else if c.min_at < c.max_at {
                            run.push((x, c.min));
                            run.push((x, c.max));
                        } else {
                            run.push((x, c.max));
                            run.push((x, c.min));
                        }
                    }
                    if c.nan && !run.is_empty() {
                        runs.push(std::mem::take(&mut run));
                    }
                }
            }
        }
        if !run.is_empty() {
            runs.push(run);
        }
        runs
    }

    /// Pixel columns of the plot.
    pub fn columns(&self) -> usize {
        self.columns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_signal_keeps_two_points_per_column() {
        // 100,000 samples of a sawtooth onto 100 columns.
        let n = 100_000u64;
        let values: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
        let mut d = Decimator::new(1000.0, 0.0, 100.0, 100, n);
        // Fed in uneven chunks: the result must not depend on chunking.
        d.push(0, &values[..12_345]);
        d.push(12_345, &values[12_345..]);
        assert!(d.is_decimating());
        let runs = d.runs();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].len(), 200);
        // Each column spans one sawtooth period: min 0 first, then max 999.
        assert_eq!(runs[0][0], (0.5, 0.0));
        assert_eq!(runs[0][1], (0.5, 999.0));
        assert_eq!(d.range(), Some((0.0, 999.0)));
    }

    #[test]
    fn invalid_samples_split_the_line() {
        let mut v: Vec<f32> = (0..10).map(|i| i as f32).collect();
        v[4] = f32::NAN;
        v[5] = f32::NAN;
        let mut d = Decimator::new(10.0, 0.0, 1.0, 100, 10);
        d.push(0, &v);
        assert!(!d.is_decimating());
        let runs = d.runs();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].len(), 4);
        assert_eq!(runs[1].len(), 4);
        // Sample 6 at 0.6 s of a 1 s window 100 px wide.
        assert!((runs[1][0].0 - 60.0).abs() < 1e-3);

        // The same in decimating mode: an all-invalid stretch of columns is a gap.
        let n = 10_000u64;
        let mut v: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
        for x in &mut v[4000..6000] {
            *x = f32::NAN;
        }
        let mut d = Decimator::new(1000.0, 0.0, 10.0, 100, n);
        d.push(0, &v);
        let runs = d.runs();
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert!(runs[0].last().unwrap().0 < 41.0);
        assert!(runs[1][0].0 > 59.0);
    }

    #[test]
    fn samples_per_frame_place_samples_in_time() {
        // A 4x-rate signal: sample 8 is at frame 2, i.e. 0.2 s at 10 frames/s.
        let mut d = Decimator::new(40.0, 0.0, 1.0, 1000, 40);
        d.push(0, &[0.0; 40]);
        let runs = d.runs();
        assert!((runs[0][8].0 - 200.0).abs() < 1e-3);
    }
}
