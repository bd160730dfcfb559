//! Deciding the output's shape (which channels, window length) and cutting the rows of
//! all records into row groups *before* decoding any sample.
//!
//! Everything here depends only on the headers and the options, never on `--jobs` or
//! timing, which is what makes the output byte-identical whatever the parallelism: a
//! row group is a fixed list of `(record, row range)` pieces, decoded by whichever worker
//! gets it and appended in plan order.

use std::collections::HashMap;
use std::ops::Range;

use super::source::RecordMeta;
use super::{ConvertError, ConvertOptions, Dtype, Layout};

/// Raw (decoded, uncompressed) bytes aimed for per row group. Measured in
/// `docs/parquet.md`: larger groups barely shrink the files, but each in-flight group
/// costs memory (a wave holds two per worker).
pub const ROW_GROUP_TARGET_BYTES: usize = 16 * 1024 * 1024;

/// The channels and window geometry every row of the output shares.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// Output channel names (samples/windows: shared by all records; record layout:
    /// the `--signals` list, or empty for "all of each record's signals").
    pub channel_names: Vec<String>,
    /// Column names for `--layout samples` (`name`, `name_2`, ... on duplicates).
    pub column_names: Vec<String>,
    /// Per record: indices into its header's signals, in output order.
    pub selections: HashMap<String, Vec<usize>>,
    /// Frame frequency shared by all records (windows only).
    pub fs: Option<f64>,
    /// Window length in frames (windows only).
    pub window_len: u64,
    /// Step between windows in frames (windows only).
    pub window_stride: u64,
    /// Keep a last, padded partial window.
    pub pad: bool,
}

impl Shape {
    /// Samples per channel in one window row.
    pub fn window_samples(&self) -> usize {
        self.window_len as usize
    }

    /// Decides the shape from the options and the headers; records that do not fit it
    /// (a missing signal, another fs in windows layout) are returned to be reported.
    pub fn decide(
        opts: &ConvertOptions,
        metas: &[RecordMeta],
    ) -> (Shape, Vec<(String, ConvertError)>) {
        let mut shape = Shape::default();
        let mut rejected = Vec::new();
        let reference: Vec<String> = if !opts.signals.is_empty() {
            opts.signals.clone()
        } else if opts.layout == Layout::Record {
            Vec::new()
        } else {
            metas
                .first()
                .map(|m| m.channels.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default()
        };
        shape.channel_names = reference.clone();
        shape.column_names = dedup_names(&reference);

        if let (Layout::Windows, Some(w)) = (opts.layout, opts.window) {
            shape.fs = metas.first().map(|m| m.fs);
            let fs = shape.fs.unwrap_or(1.0);
            shape.window_len = ((w.window_secs * fs).round() as u64).max(1);
            shape.window_stride = ((w.stride_secs * fs).round() as u64).max(1);
            shape.pad = w.pad;
        }

        for m in metas {
            let sel = if reference.is_empty() {
                Ok((0..m.channels.len()).collect())
            } else {
                select(m, &reference)
            };
            let sel = sel.and_then(|sel| check_record(opts, &shape, m, &sel).map(|()| sel));
            match sel {
                Ok(sel) => {
                    shape.selections.insert(m.name.clone(), sel);
                }
                Err(e) => rejected.push((m.name.clone(), e)),
            }
        }
        (shape, rejected)
    }

    /// Rows `meta` contributes.
    pub fn rows_of(&self, layout: Layout, meta: &RecordMeta) -> u64 {
        match layout {
            Layout::Record => 1,
            Layout::Samples => meta.n_frames,
            Layout::Windows => {
                window_count(meta.n_frames, self.window_len, self.window_stride, self.pad)
            }
        }
    }
}

/// Checks what the layout and dtype demand of one record.
fn check_record(
    opts: &ConvertOptions,
    shape: &Shape,
    m: &RecordMeta,
    sel: &[usize],
) -> Result<(), ConvertError> {
    if let Some(fs) = shape.fs
        && (m.fs - fs).abs() > 1e-9 * fs.abs().max(1.0)
    {
        return Err(ConvertError::unsuitable(
            &m.name,
            format!(
                "fs {} Hz differs from the dataset's {fs} Hz (windows need one fs)",
                m.fs
            ),
        ));
    }
    if opts.dtype.is_digital() {
        for &j in sel {
            let c = &m.channels[j];
            if c.gain.is_none() || c.baseline.is_none() {
                return Err(ConvertError::unsuitable(
                    &m.name,
                    format!(
                        "signal {:?} has no single gain/baseline (they differ between \
                         segments); --dtype i16 needs one, use --dtype f32",
                        c.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Number of windows of `len` frames every `stride` frames in `n` frames: the full ones,
/// plus (with `pad`) one more starting after the last full one when it leaves a tail.
pub fn window_count(n: u64, len: u64, stride: u64, pad: bool) -> u64 {
    let full = if n >= len { (n - len) / stride + 1 } else { 0 };
    let covered = if full == 0 {
        0
    } else {
        (full - 1) * stride + len
    };
    if pad && covered < n { full + 1 } else { full }
}

/// Indices of `wanted` names in the record's signals; the k-th occurrence of a repeated
/// name in `wanted` takes the k-th signal of that name.
fn select(m: &RecordMeta, wanted: &[String]) -> Result<Vec<usize>, ConvertError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::with_capacity(wanted.len());
    let mut missing = Vec::new();
    for w in wanted {
        let k = seen.entry(w.as_str()).or_insert(0);
        match m
            .channels
            .iter()
            .enumerate()
            .filter(|(_, c)| &c.name == w)
            .nth(*k)
        {
            Some((j, _)) => out.push(j),
            None => missing.push(w.as_str()),
        }
        *k += 1;
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(ConvertError::unsuitable(
            &m.name,
            format!("lacks signal(s) {}", missing.join(", ")),
        ))
    }
}

/// `II, V1, II` -> `II, V1, II_2` (the contract's rule for duplicate column names).
pub fn dedup_names(names: &[String]) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    names
        .iter()
        .map(|n| {
            let c = count.entry(n.as_str()).or_insert(0);
            *c += 1;
            if *c == 1 {
                n.clone()
            } else {
                format!("{n}_{c}")
            }
        })
        .collect()
}

/// Rows `rows` of record number `rec` (an index into the planned records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Index of the record in the plan's record list.
    pub rec: usize,
    /// Row range within the record (frames for samples, window numbers for windows).
    pub rows: Range<u64>,
}

/// The rows of one row group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowGroupPlan {
    /// Pieces in output order.
    pub pieces: Vec<Piece>,
}

/// All row groups of the output, in order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Row groups in output order.
    pub row_groups: Vec<RowGroupPlan>,
    /// Rows in all row groups.
    pub total_rows: u64,
    /// Rows per row group (the last may hold fewer).
    pub rows_per_group: u64,
}

impl Plan {
    /// Cuts the rows of `metas` (in order) into row groups.
    pub fn new(opts: &ConvertOptions, shape: &Shape, metas: &[RecordMeta]) -> Plan {
        let per_group = opts
            .tuning
            .row_group_rows
            .unwrap_or_else(|| default_rows_per_group(opts, shape, metas))
            .max(1) as u64;
        let mut row_groups = Vec::new();
        let mut current = Vec::new();
        let mut in_current = 0u64;
        let mut total = 0u64;
        for (rec, m) in metas.iter().enumerate() {
            let rows = shape.rows_of(opts.layout, m);
            total += rows;
            let mut start = 0;
            while start < rows {
                let take = (per_group - in_current).min(rows - start);
                current.push(Piece {
                    rec,
                    rows: start..start + take,
                });
                in_current += take;
                start += take;
                if in_current == per_group {
                    row_groups.push(RowGroupPlan {
                        pieces: std::mem::take(&mut current),
                    });
                    in_current = 0;
                }
            }
        }
        if !current.is_empty() {
            row_groups.push(RowGroupPlan { pieces: current });
        }
        Plan {
            row_groups,
            total_rows: total,
            rows_per_group: per_group,
        }
    }
}

/// Rows per group so one group holds about [`ROW_GROUP_TARGET_BYTES`] of decoded values,
/// sized from the first record (every record of a dataset usually has one shape).
fn default_rows_per_group(opts: &ConvertOptions, shape: &Shape, metas: &[RecordMeta]) -> usize {
    let value_bytes = match opts.dtype {
        Dtype::F32 | Dtype::I32 => 4,
        Dtype::F16 | Dtype::I16 => 2,
    };
    let Some(first) = metas.first() else {
        return 1;
    };
    let channels = shape
        .selections
        .get(&first.name)
        .map_or(first.channels.len(), Vec::len)
        .max(1);
    let row_bytes = match opts.layout {
        Layout::Record => {
            let spf: u64 = shape
                .selections
                .get(&first.name)
                .map(|sel| {
                    sel.iter()
                        .map(|&j| u64::from(first.channels[j].samps_per_frame))
                        .sum()
                })
                .unwrap_or(channels as u64);
            (first.n_frames.max(1) * spf) as usize * value_bytes
        }
        Layout::Samples => channels * value_bytes + 16,
        Layout::Windows => channels * shape.window_samples() * value_bytes + 8,
    };
    (ROW_GROUP_TARGET_BYTES / row_bytes.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::source::ChannelMeta;

    fn meta(name: &str, fs: f64, n: u64, sigs: &[&str]) -> RecordMeta {
        RecordMeta {
            name: name.to_string(),
            fs,
            n_frames: n,
            channels: sigs
                .iter()
                .map(|s| ChannelMeta {
                    name: s.to_string(),
                    units: "mV".to_string(),
                    samps_per_frame: 1,
                    gain: Some(200.0),
                    baseline: Some(0),
                })
                .collect(),
            base_date: None,
            base_time: None,
            comments: Vec::new(),
        }
    }

    macro_rules! windows {
        ($($name:ident: ($n:expr, $len:expr, $stride:expr, $pad:expr) => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(window_count($n, $len, $stride, $pad), $want);
            }
        )*};
    }

    windows! {
        windows_exact_fit: (10, 5, 5, false) => 2;
        windows_drop_tail: (12, 5, 5, false) => 2;
        windows_pad_tail: (12, 5, 5, true) => 3;
        windows_pad_exact_fit_adds_nothing: (10, 5, 5, true) => 2;
        windows_overlapping: (10, 4, 2, false) => 4;
        windows_overlapping_pad: (11, 4, 2, true) => 5;
        windows_short_record_dropped: (3, 5, 5, false) => 0;
        windows_short_record_padded: (3, 5, 5, true) => 1;
        windows_empty_record: (0, 5, 5, true) => 0;
    }

    #[test]
    fn duplicate_names_get_suffixes() {
        let names: Vec<String> = ["II", "V1", "II", "II"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(dedup_names(&names), ["II", "V1", "II_2", "II_3"]);
    }

    #[test]
    fn signals_selected_by_name_and_missing_reported() {
        let mut opts = ConvertOptions::new("in", "out.parquet");
        opts.signals = vec!["V1".to_string(), "II".to_string()];
        let metas = vec![
            meta("a", 500.0, 10, &["I", "II", "V1"]),
            meta("b", 500.0, 10, &["I", "II"]),
        ];
        let (shape, rejected) = Shape::decide(&opts, &metas);
        assert_eq!(shape.selections["a"], vec![2, 1]);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].0, "b");
        assert!(rejected[0].1.to_string().contains("lacks signal(s) V1"));
    }

    #[test]
    fn windows_reject_other_fs() {
        let mut opts = ConvertOptions::new("in", "out");
        opts.layout = Layout::Windows;
        opts.window = Some(crate::convert::WindowSpec {
            window_secs: 2.0,
            stride_secs: 1.0,
            pad: false,
        });
        let metas = vec![
            meta("a", 100.0, 1000, &["I"]),
            meta("b", 250.0, 1000, &["I"]),
        ];
        let (shape, rejected) = Shape::decide(&opts, &metas);
        assert_eq!((shape.window_len, shape.window_stride), (200, 100));
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].0, "b");
    }

    #[test]
    fn row_groups_cut_across_records_in_order() {
        let mut opts = ConvertOptions::new("in", "out");
        opts.layout = Layout::Samples;
        opts.tuning.row_group_rows = Some(4);
        let metas = vec![meta("a", 1.0, 6, &["I"]), meta("b", 1.0, 3, &["I"])];
        let (shape, _) = Shape::decide(&opts, &metas);
        let plan = Plan::new(&opts, &shape, &metas);
        assert_eq!(plan.total_rows, 9);
        let groups: Vec<Vec<(usize, Range<u64>)>> = plan
            .row_groups
            .iter()
            .map(|g| g.pieces.iter().map(|p| (p.rec, p.rows.clone())).collect())
            .collect();
        assert_eq!(
            groups,
            vec![vec![(0, 0..4)], vec![(0, 4..6), (1, 0..2)], vec![(1, 2..3)],]
        );
    }
}
