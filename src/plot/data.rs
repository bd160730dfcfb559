//! What `physio plot` draws, read from where it lives: a record behind a
//! [`SourceOpener`] (WFDB today; any format that implements the trait, such as EDF,
//! works the same), or one row of physio's own `--layout record` Parquet.
//!
//! Samples from an opener are streamed a chunk of frames at a time into the
//! per-signal [`Decimator`]s, so a 24-hour record never sits in memory whole.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, ListArray, RecordBatch, StringArray};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};

use super::PlotError;
use super::decimate::Decimator;
use crate::convert::source::{ChannelMeta, RecordMeta};
use crate::convert::{RecordSource, SourceOpener};

/// Frames decoded per read when streaming from an opener (about 4 MB per signal of f32).
const CHUNK_FRAMES: u64 = 1 << 20;

/// One annotation as drawn: where, its mnemonic and its aux text. (Only these fields
/// of [`crate::convert::source::AnnotationRow`] are read, so the plot does not depend
/// on the others.)
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Frame number in the record.
    pub sample: i64,
    /// Annotation mnemonic (`N`, `V`, `+`, ...).
    pub symbol: String,
    /// Auxiliary text (rhythm labels such as `(AFIB`), empty when absent.
    pub aux: String,
}

/// A record ready to be drawn: its header facts and where its samples come from.
pub struct PlotSource {
    /// Header facts (all signals).
    pub meta: RecordMeta,
    samples: Samples,
    annotations: Annotations,
}

enum Samples {
    Stream(Box<dyn RecordSource>),
    /// Channel-major physical values of the whole record.
    InMemory(Vec<Vec<f32>>),
}

enum Annotations {
    FromOpener {
        opener: Box<dyn SourceOpener>,
        name: String,
    },
    /// The Parquet row's `annotations` column, if it has one.
    Stored(Option<Vec<Mark>>),
}

impl std::fmt::Debug for PlotSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlotSource")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl PlotSource {
    /// Record `name` of `opener`.
    pub fn from_opener(opener: Box<dyn SourceOpener>, name: &str) -> Result<Self, PlotError> {
        let meta = opener.probe(name, false)?;
        let samples = Samples::Stream(opener.open(name)?);
        Ok(PlotSource {
            meta,
            samples,
            annotations: Annotations::FromOpener {
                opener,
                name: name.to_string(),
            },
        })
    }

    /// The row of record `record` in physio's `--layout record` Parquet at `path` (one
    /// file, or a directory of part files).
    pub fn from_parquet(path: &Path, record: &str) -> Result<Self, PlotError> {
        let (file, batch) = find_row(path, record)?;
        row_to_source(&file, &batch)
    }

    /// Annotations of annotator `ext` (ignored for Parquet, which holds at most one
    /// annotator's) whose sample lies in `frames`; `None` when there are none to read.
    pub fn annotations(
        &self,
        ext: &str,
        frames: Range<u64>,
    ) -> Result<Option<Vec<Mark>>, PlotError> {
        let all = match &self.annotations {
            Annotations::FromOpener { opener, name } => {
                opener.annotations(name, ext)?.map(|rows| {
                    rows.into_iter()
                        .map(|a| Mark {
                            sample: a.sample,
                            symbol: a.symbol,
                            aux: a.aux,
                        })
                        .collect()
                })
            }
            Annotations::Stored(a) => a.clone(),
        };
        Ok(all.map(|rows| {
            rows.into_iter()
                .filter(|a| a.sample >= 0 && frames.contains(&(a.sample as u64)))
                .collect()
        }))
    }

    /// Feeds frames `frames` of the signals `selected` (indices into
    /// `meta.channels`) into `traces` (one per selected signal).
    pub fn feed(
        &mut self,
        frames: Range<u64>,
        selected: &[usize],
        traces: &mut [Decimator],
    ) -> Result<(), PlotError> {
        let spf: Vec<u64> = self
            .meta
            .channels
            .iter()
            .map(|c| u64::from(c.samps_per_frame.max(1)))
            .collect();
        match &mut self.samples {
            Samples::InMemory(values) => {
                for (t, &j) in traces.iter_mut().zip(selected) {
                    let (a, b) = (frames.start * spf[j], frames.end * spf[j]);
                    let v = values[j]
                        .get(a as usize..b as usize)
                        .ok_or_else(|| PlotError::Usage(format!("signal {j} is short")))?;
                    t.push(a, v);
                }
            }
            Samples::Stream(src) => {
                let mut start = frames.start;
                while start < frames.end {
                    let end = (start + CHUNK_FRAMES).min(frames.end);
                    // Digital samples with their scales where the record has them: the
                    // column extremes are found on the integers and only they are
                    // scaled (the scale is linear), about half the work of scaling
                    // every sample first.
                    if let Some((digital, scales)) = src.read_digital_scaled(start..end)? {
                        for (t, &j) in traces.iter_mut().zip(selected) {
                            let (d, scale) =
                                digital.get(j).zip(scales.get(j)).ok_or_else(|| {
                                    PlotError::Usage(format!("the reader returned no signal {j}"))
                                })?;
                            let invalid = scale.invalid;
                            t.push_with(
                                start * spf[j],
                                d,
                                |x| Some(x) != invalid,
                                |x| scale.to_f32(x),
                            );
                        }
                        crate::convert::source::recycle_channel_buffers(digital);
                        start = end;
                        continue;
                    }
                    let chunk = src.read_physical_f32(start..end)?;
                    for (t, &j) in traces.iter_mut().zip(selected) {
                        let v = chunk.get(j).ok_or_else(|| {
                            PlotError::Usage(format!("the reader returned no signal {j}"))
                        })?;
                        t.push(start * spf[j], v);
                    }
                    start = end;
                }
            }
        }
        Ok(())
    }
}

fn parquet_err(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError::Parquet {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// `path` itself, or the `*.parquet` files of directory `path`, sorted.
fn parquet_files(path: &Path) -> Result<Vec<PathBuf>, PlotError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let io = |e| PlotError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.extension().is_some_and(|e| e == "parquet") {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// The file holding record `record` and its row, as a one-row batch.
fn find_row(path: &Path, record: &str) -> Result<(PathBuf, RecordBatch), PlotError> {
    for file in parquet_files(path)? {
        let open = || {
            File::open(&file).map_err(|e| PlotError::Io {
                path: file.clone(),
                source: e,
            })
        };
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(open()?).map_err(|e| parquet_err(&file, e))?;
        let Some(idx) = builder.schema().index_of("record").ok() else {
            return Err(parquet_err(
                &file,
                "no `record` column: not physio's output",
            ));
        };
        if builder.schema().index_of("signal").is_err() || builder.schema().index_of("fs").is_err()
        {
            return Err(parquet_err(
                &file,
                "no `fs`/`signal` columns: plot reads `--layout record` output",
            ));
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), [idx]);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| parquet_err(&file, e))?;
        let mut row = None;
        let mut seen = 0usize;
        for batch in reader {
            let batch = batch.map_err(|e| parquet_err(&file, e))?;
            let names = batch
                .column(0)
                .as_string_opt::<i32>()
                .ok_or_else(|| parquet_err(&file, "`record` is not utf8"))?;
            if let Some(i) = names.iter().position(|n| n == Some(record)) {
                row = Some(seen + i);
                break;
            }
            seen += batch.num_rows();
        }
        let Some(row) = row else { continue };
        let selection = RowSelection::from(vec![RowSelector::skip(row), RowSelector::select(1)]);
        let mut reader = ParquetRecordBatchReaderBuilder::try_new(open()?)
            .map_err(|e| parquet_err(&file, e))?
            .with_row_selection(selection)
            .build()
            .map_err(|e| parquet_err(&file, e))?;
        let batch = reader
            .next()
            .ok_or_else(|| parquet_err(&file, "row vanished while reading"))?
            .map_err(|e| parquet_err(&file, e))?;
        return Ok((file, batch));
    }
    Err(PlotError::NoSuchRecord {
        path: path.to_path_buf(),
        record: record.to_string(),
    })
}

fn column<'a>(file: &Path, batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, PlotError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| parquet_err(file, format!("no `{name}` column")))
}

fn strings(file: &Path, batch: &RecordBatch, name: &str) -> Result<Vec<String>, PlotError> {
    let list = column(file, batch, name)?
        .as_list_opt::<i32>()
        .ok_or_else(|| parquet_err(file, format!("`{name}` is not a list")))?;
    let values = list.value(0);
    let s: &StringArray = values
        .as_string_opt::<i32>()
        .ok_or_else(|| parquet_err(file, format!("`{name}` is not a list of utf8")))?;
    Ok(s.iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

fn optional_string(batch: &RecordBatch, name: &str) -> Option<String> {
    let col = batch.column_by_name(name)?.as_string_opt::<i32>()?;
    (!col.is_null(0)).then(|| col.value(0).to_string())
}

/// Physical values of one channel: f32 and f16 as stored; i16 and i32 (`--dtype i16`,
/// `i32`) scaled with the row's `gain`/`baseline`, with the type's minimum (format 16's
/// invalid value for i16, format 32's for i32) as NaN. Digital output keeps each
/// format's own invalid value and the Parquet does not name the format, so other
/// formats' invalid values are drawn as values (`docs/plot.md`).
fn channel_values(
    file: &Path,
    values: &ArrayRef,
    scale: Option<(f64, i64)>,
) -> Result<Vec<f32>, PlotError> {
    match values.data_type() {
        DataType::Float32 => Ok(values.as_primitive::<Float32Type>().values().to_vec()),
        DataType::Float16 => Ok(values
            .as_primitive::<Float16Type>()
            .values()
            .iter()
            .map(|v| v.to_f32())
            .collect()),
        DataType::Int16 | DataType::Int32 => {
            let (gain, baseline) = scale.ok_or_else(|| {
                parquet_err(
                    file,
                    format!("{} signal without gain/baseline", values.data_type()),
                )
            })?;
            let physical = |d: i64, invalid: bool| {
                if invalid {
                    f32::NAN
                } else {
                    ((d as f64 - baseline as f64) / gain) as f32
                }
            };
            Ok(match values.as_primitive_opt::<Int16Type>() {
                Some(v) => v
                    .values()
                    .iter()
                    .map(|&d| physical(i64::from(d), d == i16::MIN))
                    .collect(),
                None => values
                    .as_primitive::<Int32Type>()
                    .values()
                    .iter()
                    .map(|&d| physical(i64::from(d), d == i32::MIN))
                    .collect(),
            })
        }
        other => Err(parquet_err(
            file,
            format!("unsupported signal type {other}"),
        )),
    }
}

fn row_to_source(file: &Path, batch: &RecordBatch) -> Result<PlotSource, PlotError> {
    let name = optional_string(batch, "record").unwrap_or_default();
    let fs = column(file, batch, "fs")?
        .as_primitive_opt::<Float64Type>()
        .ok_or_else(|| parquet_err(file, "`fs` is not float64"))?
        .value(0);
    let n_frames = column(file, batch, "n_samples")?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| parquet_err(file, "`n_samples` is not int64"))?
        .value(0);
    let n_frames = u64::try_from(n_frames).map_err(|_| parquet_err(file, "negative n_samples"))?;
    let sig_names = strings(file, batch, "sig_name")?;
    let units = strings(file, batch, "units")?;
    let signal: &ListArray = column(file, batch, "signal")?
        .as_list_opt::<i32>()
        .ok_or_else(|| parquet_err(file, "`signal` is not list<list<..>>: use --layout record"))?;
    let channels_arr = signal.value(0);
    let channels = channels_arr
        .as_list_opt::<i32>()
        .ok_or_else(|| parquet_err(file, "`signal` is not list<list<..>>"))?;
    let gains: Option<Vec<f64>> = batch
        .column_by_name("gain")
        .and_then(|c| c.as_list_opt::<i32>())
        .and_then(|l| {
            l.value(0)
                .as_primitive_opt::<Float64Type>()
                .map(|a| a.values().to_vec())
        });
    let baselines: Option<Vec<i64>> = batch
        .column_by_name("baseline")
        .and_then(|c| c.as_list_opt::<i32>())
        .and_then(|l| {
            l.value(0)
                .as_primitive_opt::<Int64Type>()
                .map(|a| a.values().to_vec())
        });
    if channels.len() != sig_names.len() {
        return Err(parquet_err(
            file,
            format!("{} signals but {} names", channels.len(), sig_names.len()),
        ));
    }
    let mut values = Vec::with_capacity(channels.len());
    let mut metas = Vec::with_capacity(channels.len());
    for (j, name) in sig_names.iter().enumerate() {
        let scale = gains
            .as_ref()
            .zip(baselines.as_ref())
            .and_then(|(g, b)| Some((*g.get(j)?, *b.get(j)?)));
        let v = channel_values(file, &channels.value(j), scale)?;
        // The row stores n_samples * samps_per_frame values per signal.
        let spf = (v.len() as u64).checked_div(n_frames).unwrap_or(1).max(1);
        metas.push(ChannelMeta {
            name: name.clone(),
            units: units.get(j).cloned().unwrap_or_else(|| "mV".to_string()),
            samps_per_frame: u32::try_from(spf).unwrap_or(u32::MAX),
            gain: scale.map(|s| s.0),
            baseline: scale.map(|s| s.1),
        });
        values.push(v);
    }
    let annotations = match batch.column_by_name("annotations") {
        Some(col) => read_annotations(file, col)?,
        None => None,
    };
    Ok(PlotSource {
        meta: RecordMeta {
            name,
            fs,
            n_frames,
            channels: metas,
            base_date: optional_string(batch, "base_date"),
            base_time: optional_string(batch, "base_time"),
            comments: Vec::new(),
        },
        samples: Samples::InMemory(values),
        annotations: Annotations::Stored(annotations),
    })
}

/// The `annotations` list of the row: `sample`, `symbol` and `aux` of each struct.
fn read_annotations(file: &Path, col: &ArrayRef) -> Result<Option<Vec<Mark>>, PlotError> {
    let list = col
        .as_list_opt::<i32>()
        .ok_or_else(|| parquet_err(file, "`annotations` is not a list"))?;
    if list.is_null(0) {
        return Ok(None);
    }
    let items = list.value(0);
    let items = items
        .as_struct_opt()
        .ok_or_else(|| parquet_err(file, "`annotations` items are not structs"))?;
    let field = |n: &str| {
        items
            .column_by_name(n)
            .ok_or_else(|| parquet_err(file, format!("annotations lack `{n}`")))
    };
    let sample = field("sample")?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| parquet_err(file, "annotation `sample` is not int64"))?;
    let symbol = field("symbol")?
        .as_string_opt::<i32>()
        .ok_or_else(|| parquet_err(file, "annotation `symbol` is not utf8"))?;
    let aux = field("aux")?
        .as_string_opt::<i32>()
        .ok_or_else(|| parquet_err(file, "annotation `aux` is not utf8"))?;
    Ok(Some(
        (0..items.len())
            .map(|i| Mark {
                sample: sample.value(i),
                symbol: symbol.value(i).to_string(),
                aux: aux.value(i).to_string(),
            })
            .collect(),
    ))
}
