//! Parquet output: the one place writer properties are chosen ([`writer_properties`]),
//! parallel encoding of whole row groups ([`RowGroupEncoder`]), and files
//! ([`PartWriter`]): `part-NNNNN.parquet` (or `part-<I>-NNNNN.parquet` for `--shard I/N`)
//! rolled over at ~500 MB, each written as `*.parquet.tmp` and renamed when complete, with
//! provenance in the footer's key-value metadata.
//!
//! Row groups are encoded on worker threads with arrow-rs's `ArrowColumnWriter` (each
//! column chunk compressed in memory) and appended to the file in plan order by the
//! caller's thread, so the bytes do not depend on which worker finished first. Under
//! `--incremental` a row group may instead arrive as column chunks copied from the
//! previous output ([`EncodedChunk::Copied`], see `reuse`), appended the same way.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_schema::{Field, SchemaRef};
use bytes::{Buf, Bytes};
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnDescPtr, ColumnPath};
use rayon::prelude::*;

use super::batch::{BuiltRowGroup, DigitalColumn};
use super::discover::Discovered;
use super::plan::Shape;
use super::signal_chunk::{self, RawChunk};
use super::{ConvertError, ConvertOptions, Dtype, Layout, SignalEncoding};

/// Parses a `--compression` value: `auto`, `zstd[:LEVEL]`, `lz4`, `snappy`, `none`, into
/// the codec arrow-rs uses (`auto`: LZ4 for a PLAIN fallback; see [`Tuning`]).
///
/// [`Tuning`]: super::Tuning
pub fn parse_compression(s: &str) -> Result<Compression, ConvertError> {
    let bad = |why: String| ConvertError::Usage(format!("compression {s:?}: {why}"));
    let (name, level) = match s.split_once(':') {
        Some((n, l)) => (n, Some(l)),
        None => (s, None),
    };
    match (name.to_ascii_lowercase().as_str(), level) {
        ("zstd", l) => {
            let level: i32 = l
                .map_or(Ok(1), str::parse::<i32>)
                .map_err(|e| bad(e.to_string()))?;
            Ok(Compression::ZSTD(
                ZstdLevel::try_new(level).map_err(|e| bad(e.to_string()))?,
            ))
        }
        ("lz4" | "auto", None) => Ok(Compression::LZ4_RAW),
        ("snappy", None) => Ok(Compression::SNAPPY),
        ("none" | "uncompressed", None) => Ok(Compression::UNCOMPRESSED),
        _ => Err(bad(
            "expected auto, zstd[:LEVEL], lz4, snappy or none".to_string()
        )),
    }
}

/// The writer properties of every file of a conversion: compression, the signal columns'
/// encoding, statistics, row-group size and the provenance metadata. Choices are
/// measured in `docs/parquet.md`.
pub fn writer_properties(
    opts: &ConvertOptions,
    shape: &Shape,
    found: &Discovered,
    rows_per_group: u64,
) -> Result<WriterProperties, ConvertError> {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(rows_per_group as usize))
        // Statistics per column chunk for every column (record names, sample ranges and
        // signal min/max let DuckDB/pyarrow skip row groups); page-level indexes would
        // add footer bytes for the large signal columns with little pruning value.
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_key_value_metadata(Some(provenance(opts, shape, found)));
    let signal_compression = parse_compression(&opts.tuning.compression)?;
    for path in super::schema::signal_leaf_paths(opts, shape) {
        let col = ColumnPath::new(path);
        // Min/max of sample values prune nothing useful and cost a pass over every
        // value (arrow-rs also writes no min/max for these nested leaves).
        b = b
            .set_column_statistics_enabled(col.clone(), EnabledStatistics::None)
            .set_column_compression(col.clone(), signal_compression);
        match (opts.tuning.signal_encoding, opts.dtype) {
            (SignalEncoding::Dict, _) => {
                b = b.set_column_dictionary_enabled(col, true);
            }
            (SignalEncoding::Plain, _) => {
                b = b
                    .set_column_dictionary_enabled(col.clone(), false)
                    .set_column_encoding(col, Encoding::PLAIN);
            }
            // int16 is stored as INT32; DELTA_BINARY_PACKED fits small-range integers
            // (BYTE_STREAM_SPLIT on INT32 would split mostly-zero high bytes as well,
            // but older readers reject it for integer columns).
            (SignalEncoding::Bss, Dtype::I16 | Dtype::I32) => {
                b = b
                    .set_column_dictionary_enabled(col.clone(), false)
                    .set_column_encoding(col, Encoding::DELTA_BINARY_PACKED);
            }
            (SignalEncoding::Bss, Dtype::F32 | Dtype::F16) => {
                b = b
                    .set_column_dictionary_enabled(col.clone(), false)
                    .set_column_encoding(col, Encoding::BYTE_STREAM_SPLIT);
            }
        }
    }
    Ok(b.build())
}

/// File-level key-value metadata: what produced the file from what (issue 4 point 4).
/// Each file adds `physio.inputs_sha256` when it is closed; `--incremental` reuses a
/// file's rows only when all of these keys match (issue 7).
fn provenance(opts: &ConvertOptions, shape: &Shape, found: &Discovered) -> Vec<KeyValue> {
    let (dataset, version) = dataset_and_version(&found.root);
    let mut kv = vec![
        KeyValue::new("physio.version".to_string(), crate::VERSION.to_string()),
        KeyValue::new("physio.dataset".to_string(), dataset),
        KeyValue::new("physio.options".to_string(), opts.provenance_json()),
    ];
    if let Some(v) = version {
        kv.push(KeyValue::new("physio.dataset_version".to_string(), v));
    }
    if !shape.channel_names.is_empty() {
        kv.push(KeyValue::new(
            "physio.sig_name".to_string(),
            serde_json::to_string(&shape.channel_names).unwrap_or_default(),
        ));
    }
    if let Some(fs) = shape.fs {
        kv.push(KeyValue::new("physio.fs".to_string(), fs.to_string()));
    }
    let csv = super::reuse::metadata_digests(opts, &found.root);
    if !csv.is_empty() {
        kv.push(KeyValue::new(
            super::reuse::METADATA_KEY.to_string(),
            serde_json::to_string(&csv).unwrap_or_default(),
        ));
    }
    kv
}

/// `physionet/ptb-xl/1.0.3` -> (`ptb-xl`, `1.0.3`), the layout `physio fetch` writes;
/// otherwise the directory's own name and no version.
fn dataset_and_version(root: &Path) -> (String, Option<String>) {
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    };
    let last = name(&canonical);
    let looks_like_version = !last.is_empty()
        && last
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    match canonical.parent() {
        Some(parent) if looks_like_version => (name(parent), Some(last)),
        _ => (last, None),
    }
}

/// One encoded column chunk: from arrow-rs's generic writer, or from
/// `signal_chunk`'s encoder for the record layout's `signal` column.
pub enum EncodedChunk {
    /// Encoded by arrow-rs's `ArrowColumnWriter`.
    Arrow(ArrowColumnChunk),
    /// Encoded by `signal_chunk::encode`.
    Raw(RawChunk),
    /// Copied byte for byte from a previous output (`--incremental`).
    Copied(CopiedChunk),
}

/// A column chunk read back from an old file: its bytes as they sit in that file,
/// starting at file offset `start`, and the old chunk's metadata and page indexes
/// (offsets still relative to the old file; the row group writer moves them).
pub struct CopiedChunk {
    /// The chunk's bytes, from its first page to its end.
    pub bytes: Bytes,
    /// Offset of `bytes` in the old file (its dictionary or first data page).
    pub start: u64,
    /// The old chunk's metadata, statistics and page indexes.
    pub close: ColumnCloseResult,
}

/// [`CopiedChunk`] bytes readable at the old file's offsets, as
/// `SerializedRowGroupWriter::append_column` reads them.
struct OldFileBytes {
    bytes: Bytes,
    start: u64,
}

impl OldFileBytes {
    fn slice(&self, start: u64, len: Option<usize>) -> parquet::errors::Result<Bytes> {
        let from = start
            .checked_sub(self.start)
            .map(|d| d as usize)
            .filter(|d| *d <= self.bytes.len())
            .ok_or_else(|| {
                parquet::errors::ParquetError::General(format!(
                    "copied chunk holds {} bytes at {}, not offset {start}",
                    self.bytes.len(),
                    self.start
                ))
            })?;
        let to = len.map_or(self.bytes.len(), |l| from + l);
        if to > self.bytes.len() {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "copied chunk ends before {to}"
            )));
        }
        Ok(self.bytes.slice(from..to))
    }
}

impl parquet::file::reader::Length for OldFileBytes {
    fn len(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl parquet::file::reader::ChunkReader for OldFileBytes {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(self.slice(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.slice(start, Some(length))
    }
}

/// One row group, encoded and compressed, ready to append.
pub struct EncodedRowGroup {
    /// Column chunks in schema order (empty when the group has no rows).
    pub chunks: Vec<EncodedChunk>,
    /// Rows in the group.
    pub rows: u64,
    /// Records with rows in the group.
    pub records: Vec<usize>,
    /// Records that failed while building the group.
    pub failures: Vec<(usize, ConvertError)>,
    /// `(path, sha256)` of input files of records starting in this group.
    pub digests: Vec<(String, String)>,
}

/// Whether the record layout's `signal` column is written by [`signal_chunk`]: record
/// layout, f32/i16, dictionary encoding, compression `auto` or `none` (the encoder writes
/// uncompressed pages).
fn raw_signal_applies(opts: &ConvertOptions) -> bool {
    let uncompressed = opts.tuning.compression == "auto"
        || parse_compression(&opts.tuning.compression)
            .is_ok_and(|c| c == Compression::UNCOMPRESSED);
    opts.layout == Layout::Record
        && matches!(opts.dtype, Dtype::F32 | Dtype::I16)
        && opts.tuning.signal_encoding == SignalEncoding::Dict
        && uncompressed
}

/// Encodes built row groups into column chunks (callable from any worker).
pub struct RowGroupEncoder {
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    out: PathBuf,
    /// The top-level field and Parquet leaf that [`signal_chunk`] encodes, when the
    /// options allow it (record layout, f32/i16, dictionary encoding, compression `auto`
    /// or `none`: the encoder writes uncompressed pages).
    raw_signal: Option<(usize, ColumnDescPtr)>,
}

impl RowGroupEncoder {
    /// An encoder for `schema` with the conversion's writer properties.
    pub fn new(
        opts: &ConvertOptions,
        schema: SchemaRef,
        props: WriterProperties,
    ) -> Result<Self, ConvertError> {
        let perr = |source| ConvertError::Parquet {
            path: opts.out.clone(),
            source,
        };
        let raw_signal = if raw_signal_applies(opts) {
            let descr = ArrowSchemaConverter::new()
                .with_coerce_types(props.coerce_types())
                .convert(&schema)
                .map_err(perr)?;
            let field = schema.index_of("signal").ok();
            let leaf = (0..descr.num_columns()).find(|&i| {
                descr.column(i).path().parts().first().map(String::as_str) == Some("signal")
            });
            field.zip(leaf).map(|(f, l)| (f, descr.column(l)))
        } else {
            None
        };
        // The factory only needs the schema and properties; a writer to nowhere gives it.
        let writer = ArrowWriter::try_new(std::io::sink(), Arc::clone(&schema), Some(props))
            .map_err(perr)?;
        let (_, factory) = writer.into_serialized_writer().map_err(perr)?;
        Ok(RowGroupEncoder {
            factory,
            schema,
            out: opts.out.clone(),
            raw_signal,
        })
    }

    /// Whether this encoder writes the record layout's `signal` column itself (with
    /// `signal_chunk`), so that an f32 column may arrive as digital samples
    /// (`BuiltRowGroup::signal`).
    pub fn encodes_signal_itself(&self) -> bool {
        self.raw_signal.is_some()
    }

    /// Encodes `built`, its columns in parallel.
    pub fn encode(&self, built: BuiltRowGroup) -> Result<EncodedRowGroup, ConvertError> {
        let perr = |source| ConvertError::Parquet {
            path: self.out.clone(),
            source,
        };
        let mut built = built;
        if self.raw_signal.is_none() {
            built.materialize(&self.schema)?;
        }
        let BuiltRowGroup {
            batch,
            signal,
            records,
            failures,
            digests,
        } = built;
        let Some(batch) = batch else {
            return Ok(EncodedRowGroup {
                chunks: Vec::new(),
                rows: 0,
                records,
                failures,
                digests,
            });
        };
        // One job per Parquet leaf: the signal leaf goes to the hand-written encoder
        // (which may decline, then arrow-rs encodes it), every other to arrow-rs.
        enum Job<'a> {
            Arrow(ArrowLeafColumn),
            Signal(&'a ArrayRef, &'a Field, ColumnDescPtr),
            Digital(&'a DigitalColumn, &'a Field, ColumnDescPtr),
        }
        let mut jobs = Vec::new();
        // The batch lacks the signal column when `signal` holds it.
        let mut columns = batch.columns().iter();
        for (i, field) in self.schema.fields().iter().enumerate() {
            let raw = self.raw_signal.as_ref().filter(|(f, _)| *f == i);
            if let (Some((_, descr)), Some(digital)) = (raw, &signal) {
                jobs.push(Job::Digital(digital, field, Arc::clone(descr)));
                continue;
            }
            let array = columns.next().ok_or_else(|| {
                perr(parquet::errors::ParquetError::General(
                    "internal: the batch lacks a column".into(),
                ))
            })?;
            match raw {
                Some((_, descr)) => jobs.push(Job::Signal(array, field, Arc::clone(descr))),
                None => jobs.extend(
                    compute_leaves(field, array)
                        .map_err(perr)?
                        .into_iter()
                        .map(Job::Arrow),
                ),
            }
        }
        let writers = self.factory.create_column_writers(0).map_err(perr)?;
        let chunks = writers
            .into_par_iter()
            .zip(jobs)
            .map(|(mut w, job)| {
                let only_leaf = |field, array: &ArrayRef| {
                    compute_leaves(field, array)?.pop().ok_or_else(|| {
                        parquet::errors::ParquetError::General("signal has no leaf".into())
                    })
                };
                let leaf = match job {
                    Job::Arrow(leaf) => leaf,
                    Job::Signal(array, field, descr) => {
                        if let Some(raw) = signal_chunk::encode(array, descr)? {
                            return Ok(EncodedChunk::Raw(raw));
                        }
                        only_leaf(field, array)?
                    }
                    Job::Digital(digital, field, descr) => {
                        if let Some(raw) = signal_chunk::encode_digital(
                            &digital.signal,
                            &digital.outer_offsets,
                            &digital.inner_offsets,
                            descr,
                        )? {
                            return Ok(EncodedChunk::Raw(raw));
                        }
                        // Past the dictionary limit: arrow-rs writes the f32 column.
                        let array = digital
                            .to_array()
                            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
                        only_leaf(field, &array)?
                    }
                };
                w.write(&leaf)?;
                w.close().map(EncodedChunk::Arrow)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(perr)?;
        Ok(EncodedRowGroup {
            chunks,
            rows: batch.num_rows() as u64,
            records,
            failures,
            digests,
        })
    }
}

/// Whether `--out` names one `.parquet` file (else it is a directory of part files).
pub fn is_single_file(out: &Path) -> bool {
    out.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// The `I` of part names `part-I-NNNNN.parquet` when `--shard I/N` (N > 1) splits the
/// output; `None` for plain `part-NNNNN.parquet`.
pub fn shard_prefix(opts: &ConvertOptions) -> Option<u32> {
    (opts.shard.count > 1).then_some(opts.shard.index)
}

/// Whether `name` is a part file of a directory output's naming scheme:
/// `part-NNNNN.parquet`, or `part-I-NNNNN.parquet` for `shard_prefix` `Some(I)`.
pub fn is_part_file(name: &str, shard_prefix: Option<u32>) -> bool {
    let prefix = match shard_prefix {
        Some(i) => format!("part-{i}-"),
        None => "part-".to_string(),
    };
    name.strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(".parquet"))
        .is_some_and(|d| d.len() == 5 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// A part file being written.
struct OpenPart {
    writer: SerializedFileWriter<BufWriter<File>>,
    /// Starts write-back every [`FLUSH_EVERY`] bytes while the file grows.
    flush: crate::fsutil::BackgroundFlush,
    /// `writer.bytes_written()` at the last flush request.
    flushed_at: usize,
    tmp: PathBuf,
    dest: PathBuf,
    digests: BTreeMap<String, String>,
}

/// Bytes appended to a part file between background write-back requests.
const FLUSH_EVERY: usize = 16 << 20;

/// Writes row groups into one `.parquet` file or a directory of part files.
pub struct PartWriter {
    schema: SchemaRef,
    props: WriterProperties,
    /// `Some(dir)` for directory output; `None` writes exactly `single`.
    dir: Option<PathBuf>,
    single: PathBuf,
    shard_prefix: Option<u32>,
    max_bytes: u64,
    /// Drop the cached pages of a file a part replaces (not under `--incremental`,
    /// which reads the old files' row groups while it writes).
    uncache_replaced: bool,
    current: Option<OpenPart>,
    files: Vec<PathBuf>,
    rows: u64,
}

impl PartWriter {
    /// A writer for `opts.out` (`*.parquet` = one file, else a directory of parts).
    pub fn new(
        opts: &ConvertOptions,
        schema: SchemaRef,
        props: WriterProperties,
    ) -> Result<Self, ConvertError> {
        let dir = if is_single_file(&opts.out) {
            None
        } else {
            std::fs::create_dir_all(&opts.out).map_err(|e| ConvertError::io(&opts.out, e))?;
            Some(opts.out.clone())
        };
        Ok(PartWriter {
            schema,
            props,
            dir,
            single: opts.out.clone(),
            shard_prefix: shard_prefix(opts),
            max_bytes: opts.tuning.max_file_bytes,
            uncache_replaced: !opts.incremental,
            current: None,
            files: Vec::new(),
            rows: 0,
        })
    }

    fn part_name(&self, n: usize) -> String {
        match self.shard_prefix {
            Some(i) => format!("part-{i}-{n:05}.parquet"),
            None => format!("part-{n:05}.parquet"),
        }
    }

    fn open_part(&mut self) -> Result<&mut OpenPart, ConvertError> {
        if self.current.is_none() {
            let dest = match &self.dir {
                Some(dir) => dir.join(self.part_name(self.files.len())),
                None => self.single.clone(),
            };
            if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| ConvertError::io(parent, e))?;
            }
            let mut tmp_name = dest.clone().into_os_string();
            tmp_name.push(".tmp");
            let tmp = PathBuf::from(tmp_name);
            if self.uncache_replaced && dest.is_file() {
                crate::fsutil::uncache_in_background(&dest);
            }
            let file = File::create(&tmp).map_err(|e| ConvertError::io(&tmp, e))?;
            let flush = crate::fsutil::BackgroundFlush::new(&file);
            let perr = |source| ConvertError::Parquet {
                path: tmp.clone(),
                source,
            };
            let arrow = ArrowWriter::try_new(
                BufWriter::with_capacity(1 << 20, file),
                Arc::clone(&self.schema),
                Some(self.props.clone()),
            )
            .map_err(perr)?;
            let (writer, _) = arrow.into_serialized_writer().map_err(perr)?;
            self.current = Some(OpenPart {
                writer,
                flush,
                flushed_at: 0,
                tmp,
                dest,
                digests: BTreeMap::new(),
            });
        }
        self.current
            .as_mut()
            .ok_or_else(|| ConvertError::Internal("no open part file".to_string()))
    }

    /// Appends one encoded row group (empty groups only contribute their digests).
    pub fn append(&mut self, group: EncodedRowGroup) -> Result<(), ConvertError> {
        let part = self.open_part()?;
        part.digests.extend(group.digests);
        if group.rows > 0 {
            let perr = |source| ConvertError::Parquet {
                path: part.tmp.clone(),
                source,
            };
            let mut rg = part.writer.next_row_group().map_err(perr)?;
            for chunk in group.chunks {
                match chunk {
                    EncodedChunk::Arrow(c) => c.append_to_row_group(&mut rg),
                    EncodedChunk::Raw(c) => rg.append_column(&c.bytes, c.close),
                    EncodedChunk::Copied(c) => rg.append_column(
                        &OldFileBytes {
                            bytes: c.bytes,
                            start: c.start,
                        },
                        c.close,
                    ),
                }
                .map_err(perr)?;
            }
            rg.close().map_err(perr)?;
            let written = part.writer.bytes_written();
            if written - part.flushed_at >= FLUSH_EVERY {
                part.flush.request();
                part.flushed_at = written;
            }
        }
        let full = part.writer.bytes_written() as u64 >= self.max_bytes;
        self.rows += group.rows;
        if self.dir.is_some() && full {
            self.close_part()?;
        }
        Ok(())
    }

    fn close_part(&mut self) -> Result<(), ConvertError> {
        let Some(mut part) = self.current.take() else {
            return Ok(());
        };
        let perr = |source| ConvertError::Parquet {
            path: part.tmp.clone(),
            source,
        };
        // Provenance of this file's inputs: {relative path: SHA-256}, sorted by path.
        part.writer.append_key_value_metadata(KeyValue::new(
            "physio.inputs_sha256".to_string(),
            serde_json::to_string(&part.digests).unwrap_or_default(),
        ));
        // `into_inner` writes the footer and hands back the buffered file, which is
        // flushed here so a write error is reported rather than lost in a drop.
        let buffered = part.writer.into_inner().map_err(perr)?;
        buffered
            .into_inner()
            .map_err(|e| ConvertError::io(&part.tmp, e.into_error()))?;
        part.flush
            .finish()
            .map_err(|e| ConvertError::io(&part.tmp, e))?;
        crate::fsutil::persist_path(&part.tmp, &part.dest).map_err(|e| match e {
            crate::Error::Io { path, source } => ConvertError::Io { path, source },
            other => ConvertError::io(&part.dest, std::io::Error::other(other.to_string())),
        })?;
        self.files.push(part.dest);
        Ok(())
    }

    /// Closes the last file (writing an empty one if there were no rows, so readers
    /// still see the schema), removes part files of an earlier run that this run did not
    /// rewrite, and returns the files written and the row count.
    pub fn finish(mut self) -> Result<(Vec<PathBuf>, u64), ConvertError> {
        if self.current.is_none() && self.files.is_empty() {
            self.open_part()?;
        }
        self.close_part()?;
        if let Some(dir) = &self.dir {
            self.remove_stale(dir)?;
        }
        Ok((std::mem::take(&mut self.files), self.rows))
    }

    /// Deletes `part-…` files (and leftover `.tmp`s) of this writer's own naming scheme
    /// that are not among the files just written: a shorter re-run must not leave old
    /// parts that readers would take as part of the dataset. Other shards' files are
    /// never touched.
    fn remove_stale(&self, dir: &Path) -> Result<(), ConvertError> {
        let entries = std::fs::read_dir(dir).map_err(|e| ConvertError::io(dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            // A part file, or one left as `.parquet.tmp` by an interrupted run.
            let ours = is_part_file(
                name.strip_suffix(".tmp").unwrap_or(&name),
                self.shard_prefix,
            );
            let path = entry.path();
            if ours && !self.files.contains(&path) {
                std::fs::remove_file(&path).map_err(|e| ConvertError::io(&path, e))?;
            }
        }
        Ok(())
    }

    /// Abandons the file being written (removing its temporary file).
    pub fn abort(&mut self) {
        if let Some(part) = self.current.take() {
            drop(part.writer);
            let _ = std::fs::remove_file(&part.tmp);
        }
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        // An error or panic mid-conversion leaves no `.tmp` behind.
        self.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_names() {
        assert_eq!(
            parse_compression("none").unwrap(),
            Compression::UNCOMPRESSED
        );
        assert!(matches!(
            parse_compression("zstd:3").unwrap(),
            Compression::ZSTD(_)
        ));
        assert!(matches!(
            parse_compression("zstd").unwrap(),
            Compression::ZSTD(_)
        ));
        assert!(parse_compression("zstd:99").is_err());
        assert!(parse_compression("gzip").is_err());
    }

    #[test]
    fn copied_chunk_bytes_read_at_old_file_offsets() {
        use parquet::file::reader::{ChunkReader, Length};
        use std::io::Read;
        let old = OldFileBytes {
            bytes: Bytes::from_static(b"abcdef"),
            start: 100,
        };
        assert_eq!(old.len(), 106);
        assert_eq!(old.get_bytes(102, 3).unwrap().as_ref(), b"cde");
        let mut rest = Vec::new();
        old.get_read(104).unwrap().read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"ef");
        // Offsets outside the copied chunk are errors, not panics.
        assert!(old.get_bytes(99, 1).is_err());
        assert!(old.get_bytes(104, 3).is_err());
        assert!(old.get_read(107).is_err());
    }

    #[test]
    fn dataset_and_version_from_fetch_layout() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("ptb-xl/1.0.3");
        std::fs::create_dir_all(&v).unwrap();
        assert_eq!(
            dataset_and_version(&v),
            ("ptb-xl".to_string(), Some("1.0.3".to_string()))
        );
        let plain = dir.path().join("mydata");
        std::fs::create_dir_all(&plain).unwrap();
        assert_eq!(dataset_and_version(&plain), ("mydata".to_string(), None));
    }
}
