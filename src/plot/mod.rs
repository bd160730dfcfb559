//! `physio plot` (issue 16): draws a record, or one row of physio's Parquet, to PNG or
//! SVG, in pure Rust (no Python, no system fonts: DejaVu Sans is embedded).
//!
//! * One panel per signal on one shared time axis: sample `k` of a signal with `spf`
//!   samples per frame is drawn at `k / (spf * fs)` seconds, so signals of different
//!   rates line up (what WFDB's frame model means; a common complaint about plotting
//!   multi-frequency records is getting this wrong).
//! * The axis shows seconds from the record's start, or clock time when the header has
//!   a base time.
//! * Annotations are drawn at their time with their symbol and aux text.
//! * Invalid samples (NaN) are gaps.
//! * `--grid ecg` draws ECG paper: 0.2 s / 0.5 mV major and 0.04 s / 0.1 mV minor lines,
//!   with square boxes (25 mm/s against 10 mm/mV) on `mV` signals.
//! * Long windows are decimated to the min and max of each pixel column while the
//!   samples stream in ([`decimate`]), so a 24-hour record draws in a fraction of a
//!   second (`docs/plot.md` has the timings).
//!
//! The command line only parses; [`plot`] with [`PlotOptions`] is the operation.

pub mod canvas;
pub mod data;
pub mod decimate;
pub mod render;

use std::path::{Path, PathBuf};

use crate::convert::{ConvertError, DatasetOpener};
use crate::error::{EXIT_PARTIAL, EXIT_USAGE};

pub use data::{Mark, PlotSource};

/// Errors of `physio plot`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// Reading the record failed.
    #[error(transparent)]
    Read(#[from] ConvertError),
    /// The Parquet input could not be read as physio's `--layout record` output.
    #[error("{}: {reason}", path.display())]
    Parquet {
        /// The Parquet file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The Parquet input has no row for the record asked for.
    #[error("{}: no record named {record:?}", path.display())]
    NoSuchRecord {
        /// The Parquet file or directory.
        path: PathBuf,
        /// The record asked for.
        record: String,
    },
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the image failed.
    #[error("writing the plot: {0}")]
    Write(#[source] Box<crate::Error>),
    /// Drawing failed (image too large, font unreadable).
    #[error("drawing: {0}")]
    Render(String),
    /// Invalid options (unknown signal, empty time window, unknown output type).
    #[error("{0}")]
    Usage(String),
}

impl PlotError {
    /// Exit code: 2 for invalid options, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            PlotError::Usage(_) | PlotError::NoSuchRecord { .. } => EXIT_USAGE,
            PlotError::Read(e) => e.exit_code(),
            _ => EXIT_PARTIAL,
        }
    }
}

/// What to draw.
#[derive(Debug, Clone, PartialEq)]
pub enum PlotInput {
    /// A record path, with or without its header extension.
    Record(PathBuf),
    /// Record `record` of physio's `--layout record` Parquet (a file or a directory).
    Parquet {
        /// The `.parquet` file or output directory.
        path: PathBuf,
        /// The `record` column value of the row to draw.
        record: String,
    },
}

impl PlotInput {
    /// The input `physio plot PATH [--record NAME]` names: physio's Parquet (a
    /// `.parquet` file, or a directory given with a record name) needs `record`; any
    /// other path is a WFDB record, and then `record` is a usage error.
    pub fn from_path(path: &Path, record: Option<&str>) -> Result<Self, PlotError> {
        let is_parquet =
            path.extension().is_some_and(|e| e == "parquet") || (path.is_dir() && record.is_some());
        match (record, is_parquet) {
            (Some(record), true) => Ok(PlotInput::Parquet {
                path: path.to_path_buf(),
                record: record.to_string(),
            }),
            (None, true) => Err(PlotError::Usage(format!(
                "{}: Parquet input needs --record NAME",
                path.display()
            ))),
            (Some(_), false) => Err(PlotError::Usage(
                "--record applies to Parquet input only".to_string(),
            )),
            (None, false) => Ok(PlotInput::Record(path.to_path_buf())),
        }
    }
}

/// Background grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grid {
    /// Light lines at the axis ticks.
    #[default]
    Plain,
    /// ECG paper: 0.2 s / 0.5 mV major, 0.04 s / 0.1 mV minor lines, square boxes.
    Ecg,
}

/// Output image type, from the output file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// PNG raster.
    Png,
    /// SVG vector.
    Svg,
}

impl ImageFormat {
    /// The format `path`'s extension names.
    pub fn from_path(path: &Path) -> Result<Self, PlotError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => Ok(ImageFormat::Png),
            Some("svg") => Ok(ImageFormat::Svg),
            _ => Err(PlotError::Usage(format!(
                "{}: the output must end in .png or .svg",
                path.display()
            ))),
        }
    }
}

/// Options of [`plot`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlotOptions {
    /// The record to draw.
    pub input: PlotInput,
    /// The image to write (`.png` or `.svg`).
    pub out: PathBuf,
    /// Start of the window, seconds from the record's start (default 0).
    pub from: Option<f64>,
    /// End of the window, seconds from the record's start (default: the record's end).
    pub to: Option<f64>,
    /// Signals to draw, by name, in this order (default: all).
    pub signals: Vec<String>,
    /// Annotator (file extension) whose annotations to draw, e.g. `atr`.
    pub annotations: Option<String>,
    /// Background grid.
    pub grid: Grid,
    /// Image width in pixels.
    pub width: u32,
    /// Height of one signal panel in pixels (ECG-grid panels size themselves so the
    /// boxes are square).
    pub panel_height: u32,
}

impl PlotOptions {
    /// Options drawing all of `input` to `out` with the defaults.
    pub fn new(input: PlotInput, out: impl Into<PathBuf>) -> Self {
        PlotOptions {
            input,
            out: out.into(),
            from: None,
            to: None,
            signals: Vec::new(),
            annotations: None,
            grid: Grid::Plain,
            width: 1200,
            panel_height: 120,
        }
    }
}

/// What one panel shows.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalReport {
    /// Signal name.
    pub name: String,
    /// Points drawn (at most two per pixel column when decimated).
    pub points: usize,
    /// Separate line pieces (more than one where invalid samples leave gaps).
    pub runs: usize,
    /// Whether the samples were reduced to per-column min/max.
    pub decimated: bool,
}

/// What [`plot`] drew.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotReport {
    /// The image written.
    pub out: PathBuf,
    /// Image size in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Frames drawn (`start..end` of the record).
    pub frames: std::ops::Range<u64>,
    /// One entry per panel, top to bottom.
    pub signals: Vec<SignalReport>,
    /// Annotations in the window.
    pub annotations: usize,
    /// Annotations whose labels fit without overlapping (the rest get a tick only).
    pub annotation_labels: usize,
}

/// Opens the record at `path` for plotting: a WFDB record or an EDF/EDF+ file, read
/// by the converter's own [`DatasetOpener`].
pub fn open_record(path: &Path) -> Result<PlotSource, PlotError> {
    let found = crate::convert::discover(path)?;
    let name = match found.records.as_slice() {
        [one] => one.name.clone(),
        _ => {
            return Err(PlotError::Usage(format!(
                "{}: plot draws one record; give a record path (found {} records)",
                path.display(),
                found.records.len()
            )));
        }
    };
    PlotSource::from_opener(Box::new(DatasetOpener::new(&found.root)), &name)
}

/// Draws `opts.input` into `opts.out` (written atomically) and reports what was drawn.
///
/// ```no_run
/// use physio::plot::{plot, Grid, PlotInput, PlotOptions};
/// let mut opts = PlotOptions::new(PlotInput::Record("mitdb/100".into()), "100.png");
/// opts.to = Some(10.0);
/// opts.annotations = Some("atr".into());
/// opts.grid = Grid::Ecg;
/// let report = plot(&opts)?;
/// assert_eq!(report.signals.len(), 2);
/// # Ok::<(), physio::plot::PlotError>(())
/// ```
pub fn plot(opts: &PlotOptions) -> Result<PlotReport, PlotError> {
    let format = ImageFormat::from_path(&opts.out)?;
    let mut source = match &opts.input {
        PlotInput::Record(path) => open_record(path)?,
        PlotInput::Parquet { path, record } => PlotSource::from_parquet(path, record)?,
    };
    let (bytes, mut report) = render::draw(&mut source, opts, format)?;
    crate::fsutil::write_atomic(&opts.out, &bytes).map_err(|e| PlotError::Write(Box::new(e)))?;
    report.out = opts.out.clone();
    Ok(report)
}

/// Parses a time offset: seconds (`10`, `2.5s`), with a unit (`500ms`, `1.5m`, `2h`), or
/// a clock-style duration (`1:30`, `01:02:03.5`).
pub fn parse_time(s: &str) -> Result<f64, PlotError> {
    let t = s.trim();
    let bad = || {
        PlotError::Usage(format!(
            "invalid time {s:?}: expected e.g. 10s, 1.5m, 500ms, 1:30"
        ))
    };
    let secs = if t.contains(':') {
        let mut total = 0.0;
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() > 3 {
            return Err(bad());
        }
        for p in parts {
            let v: f64 = p.parse().map_err(|_| bad())?;
            total = total * 60.0 + v;
        }
        total
    } else {
        let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
            (n, 0.001)
        } else if let Some(n) = t.strip_suffix('s') {
            (n, 1.0)
        } else if let Some(n) = t.strip_suffix("min") {
            (n, 60.0)
        } else if let Some(n) = t.strip_suffix('m') {
            (n, 60.0)
        } else if let Some(n) = t.strip_suffix('h') {
            (n, 3600.0)
        } else {
            (t, 1.0)
        };
        num.trim().parse::<f64>().map_err(|_| bad())? * mult
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(bad());
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        for (s, want) in [
            ("10", 10.0),
            ("10s", 10.0),
            ("2.5s", 2.5),
            ("500ms", 0.5),
            ("1.5m", 90.0),
            ("2min", 120.0),
            ("2h", 7200.0),
            ("1:30", 90.0),
            ("01:02:03.5", 3723.5),
        ] {
            assert_eq!(parse_time(s).unwrap(), want, "{s}");
        }
        for s in ["", "x", "-1", "1:2:3:4", "5d", "inf"] {
            assert!(parse_time(s).is_err(), "{s}");
        }
    }

    #[test]
    fn output_type_from_extension() {
        assert_eq!(
            ImageFormat::from_path(Path::new("a.PNG")).unwrap(),
            ImageFormat::Png
        );
        assert_eq!(
            ImageFormat::from_path(Path::new("a.svg")).unwrap(),
            ImageFormat::Svg
        );
        assert!(ImageFormat::from_path(Path::new("a.pdf")).is_err());
    }
}
