//! The dataset card (`README.md`) that `physio convert --out DIR --card` writes next to its
//! part files (issue 16), in the Hugging Face format: YAML front matter (`configs` /
//! `data_files`, `dataset_info.features` matching the Parquet schema, `license` when the
//! PhysioNet project is one whose licence physio knows, `size_categories`) and a
//! summary a person reads (source, version, records, signals, rates, layout, dtype,
//! how to load), so the directory can be pushed to a hub as it is.
//!
//! The card is built from the directory's Parquet footers alone (schema, row counts and
//! physio's provenance key-value metadata), never from the run's memory, so the runs
//! of a sharded conversion (`--shard I/N` into one `--out`) each describe the whole
//! directory: every run takes an exclusive lock on the directory (`flock` on the
//! directory itself, no lock file is left), lists the part files, and replaces the card
//! atomically (temporary file, rename). The run that takes the lock last has seen
//! every part file that was complete by then, so the card left at the end describes all
//! of them. Object-store output (`--out s3://...`) gets no card: the staging directory
//! holds one shard's files only (`docs/training.md`).
//!
//! The card is opt-in: pyarrow's `pq.read_table(DIR)` opens every file of a directory
//! whose name does not start with `.` or `_` and fails on `README.md`, and the contract
//! promises that a plain output directory reads as one dataset. With a card, pyarrow
//! reads `DIR/part-*.parquet` (or `pyarrow.dataset` with `exclude_invalid_files=True`);
//! `datasets`, polars and DuckDB are unaffected.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::ConvertError;

/// The card's file name inside the output directory.
pub const CARD_NAME: &str = "README.md";

/// Licence (Hugging Face licence id) and citation of PhysioNet projects whose terms
/// physio knows; any other dataset's card says the licence is on the project's page.
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "mitdb",
        "odc-by",
        "Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. IEEE Eng in Med and Biol 20(3):45-50 (May-June 2001).",
    ),
    (
        "ptb-xl",
        "cc-by-4.0",
        "Wagner P, Strodthoff N, Bousseljot RD, Kreiseler D, Lunze FI, Samek W, Schaeffter T. PTB-XL, a large publicly available electrocardiography dataset. Scientific Data 7, 154 (2020).",
    ),
    ("afdb", "odc-by", ""),
    ("nsrdb", "odc-by", ""),
    ("svdb", "odc-by", ""),
    ("ltafdb", "odc-by", ""),
    ("incartdb", "odc-by", ""),
    ("qtdb", "odc-by", ""),
    ("ptbdb", "odc-by", ""),
];

/// PhysioNet asks every user of its data to cite this.
const PHYSIONET_CITATION: &str = "Goldberger AL, Amaral LAN, Glass L, Hausdorff JM, Ivanov PCh, Mark RG, Mietus JE, Moody GB, Peng C-K, Stanley HE. PhysioBank, PhysioToolkit, and PhysioNet: Components of a new research resource for complex physiologic signals. Circulation 101(23):e215-e220 (2000).";

/// What the card says, gathered from the part files' footers.
#[derive(Debug, Clone, PartialEq)]
pub struct CardFacts {
    /// Dataset name (the PhysioNet slug when the input was a `physio fetch` copy).
    pub dataset: String,
    /// Dataset version, when known.
    pub version: Option<String>,
    /// physio's version that wrote the files.
    pub physio_version: String,
    /// `record`, `samples` or `windows`.
    pub layout: String,
    /// `f32`, `f16`, `i16` or `i32`.
    pub dtype: String,
    /// The annotator (file extension) of the `annotations` column, if any.
    pub annotations: Option<String>,
    /// `--high-resolution`: frames are the record's high-resolution samples.
    pub high_resolution: bool,
    /// Part file names, sorted.
    pub files: Vec<String>,
    /// Rows over all part files.
    pub rows: u64,
    /// Bytes over all part files.
    pub bytes: u64,
    /// Uncompressed bytes of the column data (the footers' row-group sizes).
    pub data_bytes: u64,
    /// Distinct records, where counting them is cheap (record and windows layouts).
    pub records: Option<u64>,
    /// Signal names (as the output's shape fixes them), if fixed.
    pub sig_name: Option<Vec<String>>,
    /// Frame frequency, if one for the whole output.
    pub fs: Option<f64>,
    /// The Arrow schema of the files.
    pub schema: Schema,
}

fn io(path: &Path, e: std::io::Error) -> ConvertError {
    ConvertError::io(path, e)
}

fn pq(path: &Path, e: parquet::errors::ParquetError) -> ConvertError {
    ConvertError::Parquet {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Part files (`part-*.parquet`) of output directory `dir`, sorted.
fn part_files(dir: &Path) -> Result<Vec<PathBuf>, ConvertError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("part-") && name.ends_with(".parquet") {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Reads the facts of output directory `dir`; `None` when it holds no part file.
pub fn gather(dir: &Path) -> Result<Option<CardFacts>, ConvertError> {
    let files = part_files(dir)?;
    let Some(first) = files.first() else {
        return Ok(None);
    };
    let kv_of = |b: &ParquetRecordBatchReaderBuilder<File>, key: &str| {
        b.metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|e| e.key == key))
            .and_then(|e| e.value.clone())
    };
    let open = |p: &Path| -> Result<ParquetRecordBatchReaderBuilder<File>, ConvertError> {
        let f = File::open(p).map_err(|e| io(p, e))?;
        ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| pq(p, e))
    };
    let head = open(first)?;
    let options: serde_json::Value = kv_of(&head, "physio.options")
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let text = |k: &str, default: &str| {
        options
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or(default)
            .to_string()
    };
    let layout = text("layout", "record");
    let mut facts = CardFacts {
        dataset: kv_of(&head, "physio.dataset").unwrap_or_default(),
        version: kv_of(&head, "physio.dataset_version"),
        physio_version: kv_of(&head, "physio.version").unwrap_or_default(),
        dtype: text("dtype", "f32"),
        annotations: options
            .get("annotations")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        high_resolution: options
            .get("high_resolution")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        files: Vec::new(),
        rows: 0,
        bytes: 0,
        data_bytes: 0,
        records: None,
        sig_name: kv_of(&head, "physio.sig_name").and_then(|s| serde_json::from_str(&s).ok()),
        fs: kv_of(&head, "physio.fs").and_then(|s| s.parse().ok()),
        schema: head.schema().as_ref().clone(),
        layout,
    };
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut rates: BTreeSet<u64> = BTreeSet::new();
    let mut signal_sets: BTreeSet<Vec<String>> = BTreeSet::new();
    for path in &files {
        let b = open(path)?;
        facts.rows += b.metadata().file_metadata().num_rows().max(0) as u64;
        facts.data_bytes += b
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.total_byte_size().max(0) as u64)
            .sum::<u64>();
        facts.bytes += std::fs::metadata(path).map_err(|e| io(path, e))?.len();
        facts.files.push(
            path.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
        );
        if facts.layout == "record" {
            // One row per record: the names and rates are two small columns.
            let (Ok(fs_idx), Ok(sig_idx)) =
                (b.schema().index_of("fs"), b.schema().index_of("sig_name"))
            else {
                continue;
            };
            let mask = ProjectionMask::roots(b.parquet_schema(), [fs_idx, sig_idx]);
            for batch in b.with_projection(mask).build().map_err(|e| pq(path, e))? {
                let batch = batch.map_err(ConvertError::Arrow)?;
                let (Some(fs), Some(sig)) = (
                    batch
                        .column_by_name("fs")
                        .and_then(|c| c.as_primitive_opt::<arrow_array::types::Float64Type>()),
                    batch
                        .column_by_name("sig_name")
                        .and_then(|c| c.as_list_opt::<i32>()),
                ) else {
                    continue;
                };
                for i in 0..batch.num_rows() {
                    rates.insert(fs.value(i).to_bits());
                    let names = sig.value(i);
                    if let Some(names) = names.as_string_opt::<i32>() {
                        signal_sets.insert(
                            names
                                .iter()
                                .map(|n| n.unwrap_or_default().to_string())
                                .collect(),
                        );
                    }
                }
            }
        } else if facts.layout == "windows" {
            // Windows are few per record: reading the names is cheap.
            let idx = b.schema().index_of("record").map_err(ConvertError::Arrow)?;
            let mask = ProjectionMask::roots(b.parquet_schema(), [idx]);
            for batch in b.with_projection(mask).build().map_err(|e| pq(path, e))? {
                let batch = batch.map_err(ConvertError::Arrow)?;
                if let Some(col) = batch.column(0).as_string_opt::<i32>() {
                    names.extend(col.iter().flatten().map(str::to_string));
                }
            }
        }
    }
    if facts.sig_name.is_none() && signal_sets.len() == 1 {
        facts.sig_name = signal_sets.into_iter().next();
    }
    if facts.fs.is_none() && rates.len() == 1 {
        facts.fs = rates.into_iter().next().map(f64::from_bits);
    }
    facts.records = match facts.layout.as_str() {
        "record" => Some(facts.rows),
        "windows" => Some(names.len() as u64),
        _ => None,
    };
    Ok(Some(facts))
}

/// Writes (or replaces) `dir/README.md` from the part files now in `dir`, under an
/// exclusive lock on `dir` so concurrent shard runs replace it one at a time.
pub fn write_card(dir: &Path) -> Result<(), ConvertError> {
    let lock = File::open(dir).map_err(|e| io(dir, e))?;
    lock.lock().map_err(|e| io(dir, e))?;
    let result = (|| {
        let Some(facts) = gather(dir)? else {
            return Ok(());
        };
        let dest = dir.join(CARD_NAME);
        crate::fsutil::write_atomic(&dest, render(&facts).as_bytes()).map_err(|e| match e {
            crate::Error::Io { path, source } => ConvertError::Io { path, source },
            other => ConvertError::io(&dest, std::io::Error::other(other.to_string())),
        })
    })();
    // Closing the descriptor releases the lock as well; unlock explicitly for clarity.
    let _ = lock.unlock();
    result
}

/// Hugging Face's `size_categories` bucket for `n` examples.
pub fn size_category(n: u64) -> &'static str {
    match n {
        0..1_000 => "n<1K",
        1_000..10_000 => "1K<n<10K",
        10_000..100_000 => "10K<n<100K",
        100_000..1_000_000 => "100K<n<1M",
        1_000_000..10_000_000 => "1M<n<10M",
        10_000_000..100_000_000 => "10M<n<100M",
        100_000_000..1_000_000_000 => "100M<n<1B",
        _ => "n>1B",
    }
}

/// The Hugging Face `dtype` of an Arrow primitive type.
fn hf_dtype(t: &DataType) -> Option<&'static str> {
    Some(match t {
        DataType::Boolean => "bool",
        DataType::Int8 => "int8",
        DataType::Int16 => "int16",
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::UInt8 => "uint8",
        DataType::UInt16 => "uint16",
        DataType::UInt32 => "uint32",
        DataType::UInt64 => "uint64",
        DataType::Float16 => "float16",
        DataType::Float32 => "float32",
        DataType::Float64 => "float64",
        DataType::Utf8 => "string",
        DataType::LargeUtf8 => "large_string",
        DataType::Binary => "binary",
        _ => return None,
    })
}

/// A YAML string scalar (double-quoted, escaped).
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// Appends the YAML of one feature (`name` + its type keys) at `indent`; `None` when the
/// type has no Hugging Face feature (then the card leaves features to inference).
fn feature_yaml(out: &mut String, field: &Field, indent: usize) -> Option<()> {
    let pad = " ".repeat(indent);
    let _ = writeln!(out, "{pad}- name: {}", yaml_str(field.name()));
    type_yaml(out, field.data_type(), indent + 2)
}

fn type_yaml(out: &mut String, t: &DataType, indent: usize) -> Option<()> {
    let pad = " ".repeat(indent);
    if let Some(d) = hf_dtype(t) {
        let _ = writeln!(out, "{pad}dtype: {d}");
        return Some(());
    }
    match t {
        DataType::List(item) | DataType::LargeList(item) => {
            let key = if matches!(t, DataType::List(_)) {
                "list"
            } else {
                "large_list"
            };
            if let Some(d) = hf_dtype(item.data_type()) {
                let _ = writeln!(out, "{pad}{key}: {d}");
                return Some(());
            }
            match item.data_type() {
                DataType::Struct(fields) => {
                    let _ = writeln!(out, "{pad}{key}:");
                    for f in fields {
                        feature_yaml(out, f, indent + 2)?;
                    }
                    Some(())
                }
                inner => {
                    let _ = writeln!(out, "{pad}{key}:");
                    type_yaml(out, inner, indent + 2)
                }
            }
        }
        DataType::Struct(fields) => {
            let _ = writeln!(out, "{pad}struct:");
            for f in fields {
                feature_yaml(out, f, indent + 2)?;
            }
            Some(())
        }
        _ => None,
    }
}

/// The `dataset_info.features` block, or `None` when a column has no Hugging Face
/// feature type (the fixed-shape tensor of `--layout windows`): `datasets` then infers
/// the features from the Parquet schema itself.
fn features_yaml(schema: &Schema) -> Option<String> {
    let mut out = String::new();
    for f in schema.fields() {
        if f.metadata().contains_key("ARROW:extension:name") {
            return None;
        }
        feature_yaml(&mut out, f, 2)?;
    }
    Some(out)
}

/// What the signal values are, per `--dtype`.
fn dtype_note(dtype: &str) -> &'static str {
    match dtype {
        "i16" => {
            "The values are the stored digital (ADC) samples as int16, with the format's \
             invalid value where a sample is invalid; physical units are \
             `(value - baseline) / gain` with the per-channel `gain` and `baseline` columns."
        }
        "i32" => {
            "The values are the stored digital (ADC) samples as int32, lossless for every \
             WFDB format (including 24, 32 and 524), with the format's invalid value where \
             a sample is invalid; physical units are `(value - baseline) / gain` with the \
             per-channel `gain` and `baseline` columns."
        }
        "f16" => {
            "The values are physical units as float16, `(digital - baseline) / gain`, \
             with NaN where a sample holds the format's invalid value."
        }
        _ => {
            "The values are physical units as float32, `(digital - baseline) / gain`, \
             with NaN where a sample holds the format's invalid value."
        }
    }
}

/// A short type name for the card (`list<utf8>`, `fixed-shape tensor [3, 500] of
/// float32`), rather than Arrow's debug form.
fn type_name(field: &Field) -> String {
    if let Some(shape) = field.metadata().get("ARROW:extension:metadata")
        && let DataType::FixedSizeList(item, _) = field.data_type()
    {
        let shape = serde_json::from_str::<serde_json::Value>(shape)
            .ok()
            .and_then(|v| v.get("shape").map(|s| s.to_string()))
            .unwrap_or_default();
        return format!(
            "fixed-shape tensor {shape} of {}",
            data_type_name(item.data_type())
        );
    }
    let mut name = data_type_name(field.data_type());
    if field.is_nullable() {
        name.push_str(", nullable");
    }
    name
}

fn data_type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 => "utf8".to_string(),
        DataType::List(item) | DataType::LargeList(item) => {
            format!("list<{}>", data_type_name(item.data_type()))
        }
        DataType::FixedSizeList(item, n) => {
            format!("fixed_size_list<{}, {n}>", data_type_name(item.data_type()))
        }
        DataType::Struct(_) => "struct".to_string(),
        other => hf_dtype(other)
            .map(str::to_string)
            .unwrap_or_else(|| other.to_string().to_lowercase()),
    }
}

/// What a column of physio's output holds (`docs/parquet.md`); `None` for the
/// `--preset` / `--metadata` columns, which come from the dataset's own tables.
fn column_note(name: &str, f: &CardFacts) -> Option<String> {
    let frame = if f.high_resolution {
        "high-resolution sample (every sample of the fastest signal, `--high-resolution`)"
    } else {
        "frame"
    };
    Some(match name {
        "record" => "record name".to_string(),
        "fs" => "frame frequency in Hz".to_string(),
        "n_samples" => "frames in the record".to_string(),
        "sig_name" => "signal names".to_string(),
        "units" => "physical units of each signal".to_string(),
        "signal" if f.layout == "windows" => {
            format!(
                "`[channels, samples]` {} values, one sample per {frame}",
                f.dtype
            )
        }
        "signal" => format!("one list of {} values per signal", f.dtype),
        "sample" => format!("0-based {frame} number"),
        "time" => "seconds from the record start".to_string(),
        "start" => format!("first {frame} of the window"),
        "gain" => "per channel: ADC units per physical unit".to_string(),
        "baseline" => "per channel: the ADC value of physical zero".to_string(),
        "base_date" => "the header's start date (ISO 8601), null when it has none".to_string(),
        "base_time" => "the header's start time (ISO 8601), null when it has none".to_string(),
        "comments" => "the header's comment lines".to_string(),
        "annotations" => {
            let ext = f.annotations.as_deref().unwrap_or("annotation");
            match f.layout.as_str() {
                "record" => format!(
                    "every `{ext}` annotation of the record, sorted by `sample` (null when \
                     the record has no `.{ext}` file); the fields WFDB's `rdann` shows:"
                ),
                _ => format!(
                    "the `{ext}` annotations whose `sample` falls in this row's {}, sorted \
                     by `sample` (null when the record has no `.{ext}` file); fields:",
                    if f.layout == "windows" {
                        "window"
                    } else {
                        "frame"
                    }
                ),
            }
        }
        signal
            if f.sig_name
                .as_ref()
                .is_some_and(|n| n.iter().any(|n| n == signal)) =>
        {
            format!("{} values of signal `{signal}`, one per {frame}", f.dtype)
        }
        _ => return None,
    })
}

/// The fields of the `annotations` struct, one sub-item each (`docs/parquet.md`).
fn annotation_fields_md(s: &mut String, t: &DataType, f: &CardFacts) {
    let (DataType::List(item) | DataType::LargeList(item)) = t else {
        return;
    };
    let DataType::Struct(fields) = item.data_type() else {
        return;
    };
    for field in fields {
        let note = match field.name().as_str() {
            "sample" if f.high_resolution => {
                "sample number in high-resolution samples (x the record's maximum samples \
                 per frame)"
            }
            "sample" => "sample (frame) number in the record",
            "symbol" => "annotation mnemonic (`N`, `V`, `+`, `\"`, ...)",
            "subtype" => "`subtyp` (-128..127)",
            "chan" => "`chan` (0..255)",
            "num" => "`num` (-128..127)",
            "aux" => "aux text (rhythm labels such as `(N`, notes); empty when absent",
            "time" => "seconds from the record start",
            "duration" => "EDF+ annotation duration in seconds; null for WFDB annotations",
            _ => "",
        };
        let _ = write!(s, "  - `{}` {}", field.name(), type_name(field));
        if note.is_empty() {
            s.push('\n');
        } else {
            let _ = writeln!(s, ": {note}");
        }
    }
}

/// The card's text.
pub fn render(f: &CardFacts) -> String {
    let known = KNOWN.iter().find(|(slug, _, _)| *slug == f.dataset);
    let mut s = String::from("---\n");
    if let Some((_, license, _)) = known {
        let _ = writeln!(s, "license: {license}");
    }
    let pretty = match &f.version {
        Some(v) => format!("{} {v} (physio Parquet, {} layout)", f.dataset, f.layout),
        None => format!("{} (physio Parquet, {} layout)", f.dataset, f.layout),
    };
    let _ = writeln!(s, "pretty_name: {}", yaml_str(&pretty));
    let _ = writeln!(s, "size_categories:\n- {}", size_category(f.rows));
    s.push_str("tags:\n- physio\n- physionet\n- wfdb\n- biosignals\n- time-series\n");
    let glob = if f.files.iter().all(|n| n.starts_with("part-")) {
        "part-*.parquet"
    } else {
        "*.parquet"
    };
    let _ = writeln!(
        s,
        "configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: {}",
        yaml_str(glob)
    );
    s.push_str("dataset_info:\n");
    if let Some(features) = features_yaml(&f.schema) {
        s.push_str("  features:\n");
        s.push_str(&features);
    }
    let _ = writeln!(
        s,
        "  splits:\n  - name: train\n    num_bytes: {}\n    num_examples: {}\n  download_size: {}\n  dataset_size: {}",
        f.data_bytes, f.rows, f.bytes, f.data_bytes
    );
    s.push_str("---\n\n");

    // The summary.
    let title = match &f.version {
        Some(v) => format!("{} {v}", f.dataset),
        None => f.dataset.clone(),
    };
    let _ = writeln!(s, "# {title}\n");
    let _ = writeln!(
        s,
        "Records (WFDB or EDF) of `{}` converted to Parquet by physio {} \
         (`physio convert`). {}\n",
        f.dataset,
        f.physio_version,
        dtype_note(&f.dtype)
    );
    s.push_str("| | |\n|---|---|\n");
    let is_physionet = f.version.is_some();
    let source = if is_physionet {
        format!(
            "PhysioNet project `{}`, version {}",
            f.dataset,
            f.version.as_deref().unwrap_or("")
        )
    } else {
        format!("local WFDB directory `{}`", f.dataset)
    };
    let _ = writeln!(s, "| source | {source} |");
    match known {
        Some((_, license, _)) => {
            let _ = writeln!(
                s,
                "| licence | `{license}` (the PhysioNet project's licence) |"
            );
        }
        None => {
            let _ = writeln!(
                s,
                "| licence | not known to physio: see the dataset's project page; the \
                 converted data carries the original's terms |"
            );
        }
    }
    if let Some(n) = f.records {
        let _ = writeln!(s, "| records | {n} |");
    }
    let _ = writeln!(s, "| rows | {} ({} layout) |", f.rows, f.layout);
    if let Some(names) = &f.sig_name {
        let _ = writeln!(s, "| signals | {} ({}) |", names.len(), names.join(", "));
    }
    match f.fs {
        Some(fs) => {
            let _ = writeln!(s, "| sampling rate | {fs} Hz (frame rate) |");
        }
        None => {
            let _ = writeln!(s, "| sampling rate | per record: the `fs` column |");
        }
    }
    let _ = writeln!(s, "| dtype | {} |", f.dtype);
    let _ = writeln!(
        s,
        "| files | {} Parquet file(s), {} bytes |\n",
        f.files.len(),
        f.bytes
    );

    s.push_str("## Columns\n\n");
    for field in f.schema.fields() {
        let _ = write!(s, "- `{}` {}", field.name(), type_name(field));
        match column_note(field.name(), f) {
            Some(note) => {
                let _ = writeln!(s, ": {note}");
            }
            None => s.push('\n'),
        }
        if field.name() == "annotations" {
            annotation_fields_md(&mut s, field.data_type(), f);
        }
    }
    s.push('\n');
    let layout_note = match f.layout.as_str() {
        "record" => {
            "One row per record. `signal[j]` is signal j, channel-major, \
             `n_samples * samples_per_frame[j]` values."
        }
        "windows" => {
            "One row per fixed window (`record`, `start` frame): `signal` is a \
             `[channels, samples]` fixed-shape tensor, the same shape in every row."
        }
        _ => "One row per frame: `record`, `sample`, `time`, then one column per signal.",
    };
    let _ = writeln!(s, "{layout_note}\n");

    s.push_str("## Loading\n\n```python\nfrom datasets import load_dataset\n\n");
    s.push_str("ds = load_dataset(\"parquet\", data_dir=\"PATH/TO/THIS/DIR\", split=\"train\")\n");
    s.push_str("# or, this directory as a dataset (its README is this card):\n");
    s.push_str("ds = load_dataset(\"PATH/TO/THIS/DIR\", split=\"train\")\n");
    s.push_str("ds = ds.with_format(\"torch\")   # or \"numpy\"\n```\n\n");
    if f.layout == "windows" {
        s.push_str(
            "Hugging Face `datasets` (5.2) has no feature type for Arrow's fixed-shape tensor \
             (`signal` here), so it cannot load this layout: read it with pyarrow \
             (`to_numpy_ndarray()`) or physio's `scripts/physio_torch.py`, or convert with \
             `--layout record` for `datasets`.\n\n",
        );
    }
    s.push_str(
        "polars and DuckDB read `part-*.parquet` as one table; pyarrow too, given the part \
         files (`pq.read_table(sorted(glob.glob(\"DIR/part-*.parquet\")))`: `read_table(DIR)` \
         would also try to open this README); \
         PyTorch datasets over these files are in physio's `scripts/physio_torch.py`.\n\n",
    );

    s.push_str("## Citation\n\n");
    if let Some((_, _, cite)) = known
        && !cite.is_empty()
    {
        let _ = writeln!(s, "{cite}\n");
    }
    if is_physionet {
        let _ = writeln!(s, "{PHYSIONET_CITATION}");
    } else {
        s.push_str("Cite the original dataset as its publisher asks.\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn facts(dataset: &str, version: Option<&str>) -> CardFacts {
        let item = |t| Arc::new(Field::new("item", t, true));
        CardFacts {
            dataset: dataset.to_string(),
            version: version.map(str::to_string),
            physio_version: "0.1.0".to_string(),
            layout: "record".to_string(),
            dtype: "f32".to_string(),
            annotations: Some("atr".to_string()),
            high_resolution: false,
            files: vec!["part-00000.parquet".to_string()],
            rows: 1234,
            bytes: 999,
            data_bytes: 2000,
            records: Some(1234),
            sig_name: Some(vec!["I".to_string(), "II".to_string()]),
            fs: Some(500.0),
            schema: Schema::new(vec![
                Field::new("record", DataType::Utf8, false),
                Field::new("fs", DataType::Float64, false),
                Field::new("sig_name", DataType::List(item(DataType::Utf8)), false),
                Field::new(
                    "signal",
                    DataType::List(item(DataType::List(item(DataType::Float32)))),
                    false,
                ),
                Field::new(
                    "annotations",
                    DataType::List(item(DataType::Struct(
                        super::super::schema::annotation_fields(),
                    ))),
                    true,
                ),
            ]),
        }
    }

    #[test]
    fn front_matter_has_features_configs_and_known_licence() {
        let card = render(&facts("ptb-xl", Some("1.0.3")));
        let front = card.split("---\n").nth(1).unwrap();
        assert!(front.starts_with("license: cc-by-4.0\n"), "{front}");
        assert!(front.contains("size_categories:\n- 1K<n<10K\n"));
        assert!(front.contains("  data_files:\n  - split: train\n    path: \"part-*.parquet\"\n"));
        assert!(
            front.contains("  - name: \"signal\"\n    list:\n      list: float32\n"),
            "{front}"
        );
        assert!(
            front.contains(
                "  - name: \"annotations\"\n    list:\n      - name: \"sample\"\n        dtype: int64\n"
            ),
            "{front}"
        );
        assert!(card.contains("Wagner P"));
        assert!(card.contains("Goldberger"));
        assert!(card.contains("| signals | 2 (I, II) |"));
    }

    #[test]
    fn columns_describe_every_annotation_field_and_the_dtype() {
        let mut f = facts("mitdb", Some("1.0.0"));
        let card = render(&f);
        assert!(card.contains("physical units as float32"), "{card}");
        assert!(
            card.contains("- `annotations` list<struct>, nullable: every `atr` annotation"),
            "{card}"
        );
        for line in [
            "  - `sample` int64: sample (frame) number in the record\n",
            "  - `symbol` utf8: annotation mnemonic",
            "  - `subtype` int16: `subtyp` (-128..127)\n",
            "  - `chan` int16: `chan` (0..255)\n",
            "  - `num` int16: `num` (-128..127)\n",
            "  - `aux` utf8: aux text",
            "  - `time` float64: seconds from the record start\n",
            "  - `duration` float64, nullable: EDF+ annotation duration in seconds; null for WFDB",
        ] {
            assert!(card.contains(line), "{line:?} missing:\n{card}");
        }
        let front = card.split("---\n").nth(1).unwrap();
        for name in ["subtype", "chan", "num"] {
            assert!(
                front.contains(&format!("      - name: \"{name}\"\n        dtype: int16\n")),
                "{name}: {front}"
            );
        }
        assert!(front.contains("      - name: \"duration\"\n        dtype: float64\n"));

        f.dtype = "i32".to_string();
        f.high_resolution = true;
        let card = render(&f);
        assert!(
            card.contains("digital (ADC) samples as int32, lossless"),
            "{card}"
        );
        assert!(card.contains("| dtype | i32 |"));
        assert!(card.contains("`sample` int64: sample number in high-resolution samples"));
        assert!(card.contains(": one list of i32 values per signal\n"));
    }

    #[test]
    fn unknown_dataset_has_no_licence_claim() {
        let card = render(&facts("mydata", None));
        assert!(!card.contains("license:"));
        assert!(card.contains("not known to physio"));
    }

    #[test]
    fn size_buckets() {
        assert_eq!(size_category(0), "n<1K");
        assert_eq!(size_category(21_799), "10K<n<100K");
        assert_eq!(size_category(5_000_000_000), "n>1B");
    }
}
