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

    /// Folds in a sample of value `v` at index `at`.
    fn add(&mut self, v: f32, at: u64) {
        if v < self.min {
            self.min = v;
            self.min_at = at;
        }
        if v > self.max {
            self.max = v;
            self.max_at = at;
        }
        self.n += 1;
    }
}

#[derive(Debug)]
enum Mode {
    /// Every sample: (x in pixels, value).
    Raw(Vec<(f32, f32)>),
    /// Min/max per pixel column; `starts[c]` is the first sample index of column `c`
    /// (`columns + 1` entries, the last one past the window).
    MinMax { cols: Vec<Column>, starts: Vec<u64> },
}

/// Decimates one signal for a plot `columns` pixels wide covering `t0..t1` seconds.
#[derive(Debug)]
pub struct Decimator {
    /// Samples per second of this signal (`fs * spf`).
    rate: f64,
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
        let px_per_sec = columns as f64 / span;
        let mode = if n_samples > 2 * columns as u64 {
            // Sample k belongs to column floor((k / rate - t0) * px_per_sec), so column c
            // starts at the first k with k >= (t0 + c / px_per_sec) * rate.
            let starts = (0..=columns)
                .map(|c| {
                    if c == 0 {
                        0
                    } else if c == columns {
                        u64::MAX
                    } else {
                        ((t0 + c as f64 / px_per_sec) * rate).ceil().max(0.0) as u64
                    }
                })
                .collect();
            Mode::MinMax {
                cols: vec![Column::EMPTY; columns],
                starts,
            }
        } else {
            Mode::Raw(Vec::with_capacity(n_samples as usize))
        };
        Decimator {
            rate,
            t0,
            px_per_sec,
            columns,
            mode,
            lo: f32::INFINITY,
            hi: f32::NEG_INFINITY,
        }
    }

    /// True when samples are summarised per pixel column.
    pub fn is_decimating(&self) -> bool {
        matches!(self.mode, Mode::MinMax { .. })
    }

    /// Feeds `values`, the signal's samples starting at sample index `first` (counted
    /// from the record's start in this signal's own samples).
    pub fn push(&mut self, first: u64, values: &[f32]) {
        self.push_with(first, values, |v| !v.is_nan(), |v| v);
    }

    /// Feeds samples of any ordered type (digital ADC values, say) with `valid` telling
    /// invalid samples apart and `physical` converting one sample to the value drawn;
    /// `physical` must be monotonic (a linear scale of either sign), as it is applied to
    /// each column's extremes only.
    pub fn push_with<T: Copy + PartialOrd>(
        &mut self,
        first: u64,
        values: &[T],
        valid: impl Fn(T) -> bool,
        physical: impl Fn(T) -> f32,
    ) {
        let (t0, pps, rate) = (self.t0, self.px_per_sec, self.rate);
        match &mut self.mode {
            Mode::Raw(points) => {
                for (i, &v) in values.iter().enumerate() {
                    let t = (first + i as u64) as f64 / rate;
                    let v = if valid(v) { physical(v) } else { f32::NAN };
                    points.push((((t - t0) * pps) as f32, v));
                    if v.is_finite() {
                        self.lo = self.lo.min(v);
                        self.hi = self.hi.max(v);
                    }
                }
            }
            Mode::MinMax { cols, starts } => {
                let end = first + values.len() as u64;
                // The first column the chunk touches.
                let mut c = starts.partition_point(|&s| s <= first).saturating_sub(1);
                while c < cols.len() && starts[c] < end {
                    let a = starts[c].max(first);
                    let b = starts[c + 1].min(end);
                    if a < b {
                        let slice = &values[(a - first) as usize..(b - first) as usize];
                        // Extremes of the slice in the sample type, then converted.
                        let mut lo: Option<(T, u64)> = None;
                        let mut hi: Option<(T, u64)> = None;
                        let mut nan = false;
                        for (i, &v) in slice.iter().enumerate() {
                            if !valid(v) {
                                nan = true;
                                continue;
                            }
                            match lo {
                                Some((m, _)) if v >= m => {}
                                _ => lo = Some((v, i as u64)),
                            }
                            match hi {
                                Some((m, _)) if v <= m => {}
                                _ => hi = Some((v, i as u64)),
                            }
                        }
                        let col = &mut cols[c];
                        col.nan |= nan;
                        if let (Some((l, li)), Some((h, hi_at))) = (lo, hi) {
                            col.add(physical(l), a + li);
                            col.add(physical(h), a + hi_at);
                            self.lo = self.lo.min(col.min);
                            self.hi = self.hi.max(col.max);
                        }
                    }
                    c += 1;
                }
            }
        }
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
            Mode::MinMax { cols, .. } => {
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
