//! Incremental conversion (`physio convert --incremental`, issue 7): copying the rows of
//! records whose inputs did not change from the previous output instead of decoding
//! them again.
//!
//! Trust is decided per old file, then per record:
//!
//! - an old file is *trusted* when its footer reads, its Arrow schema equals the new
//!   one, and every `physio.*` provenance key this run would write (physio version,
//!   dataset, options JSON, shared channels/fs, metadata CSV hashes) has the same value;
//! - a record is *reusable* when its rows sit, complete and contiguous, in trusted files,
//!   and every current input file (what [`SourceOpener::input_digests`] covers) has the
//!   SHA-256 recorded in `physio.inputs_sha256` of the file holding its first row.
//!
//! The plan (row groups, parts) is cut exactly as for a full conversion. A planned row
//! group that is exactly one old row group (same records, same order, all reusable) is
//! not decoded at all: its old column chunks are spliced into the new file byte for
//! byte, with their statistics and page indexes ([`Reuse::copy_row_group`]). A row
//! group mixing reused and decoded records is assembled by interleaving the decoded
//! batch with the old rows and encoded, so the bytes equal those of a full conversion
//! either way. Anything
//! that cannot be read or trusted makes the record decode as usual, never an error.
//!
//! The old files are opened here, before any new part is renamed over them: on Linux
//! the open handle keeps the old inode readable after the rename.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::{ArrowSchemaConverter, ProjectionMask};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{ColumnChunkMetaData, KeyValue, PageIndexPolicy};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnDescPtr;
use rayon::prelude::*;

use super::batch::{self, BatchContext, BuiltRowGroup};
use super::plan::{Piece, RowGroupPlan};
use super::source::{RecordMeta, SourceOpener};
use super::writer::{CopiedChunk, EncodedChunk, EncodedRowGroup};
use super::{ConvertError, ConvertOptions};

/// Provenance key holding the per-file map `{input path: SHA-256}` (written by
/// `PartWriter` when it closes a file).
pub const INPUTS_KEY: &str = "physio.inputs_sha256";

/// Provenance key holding the SHA-256 of `--metadata` / `--preset` CSV files.
pub const METADATA_KEY: &str = "physio.metadata_sha256";

/// SHA-256 of the CSV files `--metadata` and `--preset` join, keyed by path (the
/// `--metadata` path as given, preset files relative to the dataset root). A file that
/// cannot be read is left out; the conversion itself then reports it.
pub fn metadata_digests(opts: &ConvertOptions, root: &Path) -> BTreeMap<String, String> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    if let Some(super::metadata::Preset::PtbXl) = opts.preset {
        for name in ["ptbxl_database.csv", "scp_statements.csv"] {
            files.push((name.to_string(), root.join(name)));
        }
    }
    if let Some(spec) = &opts.metadata {
        files.push((spec.path.display().to_string(), spec.path.clone()));
    }
    files
        .into_iter()
        .filter_map(|(key, path)| Some((key, crate::fetch::hash::sha256_hex(&path).ok()?)))
        .collect()
}

/// `(input path, SHA-256)` of a record's input files.
type Digests = Vec<(String, String)>;

/// Rows of one record stored contiguously in one old row group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    /// Index into [`Reuse::files`].
    file: usize,
    /// Row group in that file.
    row_group: usize,
    /// First row of the run within the row group.
    offset: usize,
    /// Rows of the record the run holds (row numbers within the record).
    rows: Range<u64>,
}

/// An open file read with positional reads (`pread`), so row groups can be read from
/// several workers at once: clones of a `File` share one seek offset, which would race.
#[derive(Clone)]
struct SharedFile(Arc<File>);

impl SharedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_at(self.0.as_ref(), buf, offset)
        }
        #[cfg(windows)]
        {
            std::os::windows::fs::FileExt::seek_read(self.0.as_ref(), buf, offset)
        }
    }
}

impl parquet::file::reader::Length for SharedFile {
    fn len(&self) -> u64 {
        self.0.metadata().map(|m| m.len()).unwrap_or(0)
    }
}

/// A reader over a [`SharedFile`] from some offset on.
struct SharedReader {
    file: SharedFile,
    pos: u64,
}

impl std::io::Read for SharedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl parquet::file::reader::ChunkReader for SharedFile {
    type T = SharedReader;

    fn get_read(&self, start: u64) -> parquet::errors::Result<SharedReader> {
        Ok(SharedReader {
            file: self.clone(),
            pos: start,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        let mut buf = vec![0u8; length];
        let mut done = 0;
        while done < length {
            let n = self.read_at(&mut buf[done..], start + done as u64)?;
            if n == 0 {
                return Err(parquet::errors::ParquetError::EOF(format!(
                    "{length} bytes at {start}: file ends"
                )));
            }
            done += n;
        }
        Ok(buf.into())
    }
}

/// An old output file kept open for reading.
struct OldFile {
    path: PathBuf,
    file: SharedFile,
    meta: ArrowReaderMetadata,
    digests: BTreeMap<String, String>,
    /// Whether its Parquet columns are exactly those this run writes, so its column
    /// chunks can be spliced into the new file unchanged.
    copyable: bool,
}

/// What may be copied from the previous output, per planned record.
pub struct Reuse {
    files: Vec<OldFile>,
    /// Per planned record (index into the plan's metas): its old rows, when reusable.
    runs: Vec<Option<Vec<Run>>>,
    /// Per planned record: its input digests (filled for reusable records).
    digests: Vec<Vec<(String, String)>>,
    /// Per planned record: set once any of its rows was decoded rather than copied.
    decoded: Vec<AtomicBool>,
    /// Row groups whose column chunks were copied byte for byte.
    copied: AtomicUsize,
}

impl Reuse {
    /// Nothing to reuse: every record of `records` planned records is decoded.
    pub fn none(records: usize) -> Reuse {
        Reuse {
            files: Vec::new(),
            runs: vec![None; records],
            digests: vec![Vec::new(); records],
            decoded: (0..records).map(|_| AtomicBool::new(false)).collect(),
            copied: AtomicUsize::new(0),
        }
    }

    /// Opens the previous output at `opts.out` (the `.parquet` file, or this shard's
    /// part files in the directory) and decides which of `metas` can be copied from
    /// it. `expected` is the provenance this run writes (without the per-file input
    /// hashes) and `schema` its Arrow schema. Never fails: what cannot be trusted is
    /// decoded.
    pub fn open(
        opts: &ConvertOptions,
        expected: &[KeyValue],
        schema: &SchemaRef,
        metas: &[RecordMeta],
        rows_of: impl Fn(&RecordMeta) -> u64 + Sync,
        opener: &dyn SourceOpener,
    ) -> Reuse {
        let mut reuse = Reuse::none(metas.len());
        // Annotation files are not among the hashed inputs, so their rows cannot be
        // shown to be current (documented in docs/parquet.md).
        if opts.annotations.is_some() {
            return reuse;
        }
        // The Parquet columns this run writes: an old file's chunks are spliced in only
        // when its columns equal these (the writer checks each descriptor again).
        let columns = ArrowSchemaConverter::new()
            .convert(schema)
            .map(|d| d.columns().to_vec())
            .unwrap_or_default();
        for path in old_files(opts) {
            match OldFile::open(&path, expected, schema, &columns) {
                Ok(f) => reuse.files.push(f),
                Err(why) => {
                    tracing::info!(file = %path.display(), reason = %why, "not reusing old output")
                }
            }
        }
        let index = reuse.index();
        let decisions: Vec<Option<(Vec<Run>, Digests)>> = metas
            .par_iter()
            .map(|m| {
                let runs = index.get(&m.name)?;
                let first = runs.first()?;
                let recorded = &reuse.files[first.file].digests;
                let current = opener.input_digests(&m.name);
                reusable(rows_of(m), runs, recorded, &current)
                    .then(|| (runs.clone(), current.unwrap_or_default()))
            })
            .collect();
        for (i, d) in decisions.into_iter().enumerate() {
            if let Some((runs, digests)) = d {
                reuse.runs[i] = Some(runs);
                reuse.digests[i] = digests;
            }
        }
        reuse
    }

    /// Record name -> its runs in the trusted old files, in file order. A file whose
    /// record names cannot be read contributes nothing (its records are decoded).
    fn index(&self) -> HashMap<String, Vec<Run>> {
        let mut index: HashMap<String, Vec<Run>> = HashMap::new();
        for fi in 0..self.files.len() {
            let stretches = match self.name_stretches(fi) {
                Ok(n) => n,
                Err(why) => {
                    tracing::warn!(file = %self.files[fi].path.display(), reason = %why,
                        "cannot read old record names; decoding its records");
                    continue;
                }
            };
            for (name, row_group, offset, len) in stretches {
                let runs = index.entry(name).or_default();
                let start = runs.last().map_or(0, |r| r.rows.end);
                runs.push(Run {
                    file: fi,
                    row_group,
                    offset,
                    rows: start..start + len,
                });
            }
        }
        index
    }

    /// The `record` column of old file `fi` as stretches of equal names
    /// `(name, row group, first row, rows)`: memory per record, not per row, so a
    /// `samples` output of millions of rows indexes cheaply.
    fn name_stretches(&self, fi: usize) -> Result<Vec<(String, usize, usize, u64)>, String> {
        let f = &self.files[fi];
        let schema_descr = f.meta.metadata().file_metadata().schema_descr_ptr();
        let mut out: Vec<(String, usize, usize, u64)> = Vec::new();
        for rg in 0..f.meta.metadata().num_row_groups() {
            let reader =
                ParquetRecordBatchReaderBuilder::new_with_metadata(f.file.clone(), f.meta.clone())
                    .with_projection(ProjectionMask::roots(&schema_descr, [0]))
                    .with_row_groups(vec![rg])
                    .with_batch_size(64 * 1024)
                    .build()
                    .map_err(|e| e.to_string())?;
            let mut row = 0usize;
            for b in reader {
                let b = b.map_err(|e| e.to_string())?;
                let col = b
                    .column(0)
                    .as_string_opt::<i32>()
                    .ok_or("the first column is not the record name")?;
                for name in col.iter() {
                    let name = name.ok_or("a row without a record name")?;
                    match out.last_mut() {
                        Some((n, r, _, len)) if *r == rg && n == name => *len += 1,
                        _ => out.push((name.to_string(), rg, row, 1)),
                    }
                    row += 1;
                }
            }
        }
        Ok(out)
    }

    /// Builds one planned row group: copies the rows of reusable records from the old
    /// output and decodes the rest ([`batch::build_row_group`]), in plan order.
    pub fn build_row_group(
        &self,
        ctx: &BatchContext<'_>,
        group: &RowGroupPlan,
    ) -> Result<BuiltRowGroup, ConvertError> {
        // Old row groups the reusable pieces need, read once each; a piece whose old
        // rows cannot be read is decoded instead.
        let mut loaded: BTreeMap<(usize, usize), Option<RecordBatch>> = BTreeMap::new();
        for p in &group.pieces {
            for r in self.runs_for(p) {
                loaded
                    .entry((r.file, r.row_group))
                    .or_insert_with(|| self.read_row_group(r.file, r.row_group));
            }
        }
        let copied = |p: &Piece| {
            self.runs[p.rec].is_some()
                && self
                    .runs_for(p)
                    .iter()
                    .all(|r| matches!(loaded.get(&(r.file, r.row_group)), Some(Some(_))))
        };
        let fresh: Vec<Piece> = group
            .pieces
            .iter()
            .filter(|p| !copied(p))
            .cloned()
            .collect();
        for p in &fresh {
            self.decoded[p.rec].store(true, Ordering::Relaxed);
        }
        if fresh.len() == group.pieces.len() {
            return batch::build_row_group(ctx, group);
        }
        let mut built = if fresh.is_empty() {
            BuiltRowGroup {
                batch: None,
                signal: None,
                records: Vec::new(),
                failures: Vec::new(),
                digests: Vec::new(),
            }
        } else {
            let mut built = batch::build_row_group(ctx, &RowGroupPlan { pieces: fresh })?;
            // Rows are interleaved with old ones as Arrow arrays.
            built.materialize(&ctx.schema)?;
            built
        };

        // Sources for `interleave`: 0 = the decoded batch (if any), then old row groups.
        let mut sources: Vec<&RecordBatch> = Vec::new();
        if let Some(b) = &built.batch {
            sources.push(b);
        }
        let mut source_of: HashMap<(usize, usize), usize> = HashMap::new();
        for (key, b) in &loaded {
            if let Some(b) = b {
                source_of.insert(*key, sources.len());
                sources.push(b);
            }
        }
        let failed: Vec<usize> = built.failures.iter().map(|(i, _)| *i).collect();
        let mut indices: Vec<(usize, usize)> = Vec::new();
        let mut fresh_row = 0usize;
        for p in &group.pieces {
            if copied(p) {
                for r in self.runs_for(p) {
                    let src = source_of[&(r.file, r.row_group)];
                    let lo = p.rows.start.max(r.rows.start);
                    let hi = p.rows.end.min(r.rows.end);
                    let first = r.offset + (lo - r.rows.start) as usize;
                    indices.extend((first..first + (hi - lo) as usize).map(|row| (src, row)));
                }
                built.records.push(p.rec);
                if p.rows.start == 0 {
                    built.digests.extend(self.digests[p.rec].iter().cloned());
                }
            } else if !failed.contains(&p.rec) {
                let n = (p.rows.end - p.rows.start) as usize;
                indices.extend((fresh_row..fresh_row + n).map(|row| (0, row)));
                fresh_row += n;
            }
        }
        let columns = (0..ctx.schema.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn Array> =
                    sources.iter().map(|b| b.column(c).as_ref()).collect();
                arrow_select::interleave::interleave(&arrays, &indices)
            })
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        built.batch = Some(RecordBatch::try_new(Arc::clone(&ctx.schema), columns)?);
        Ok(built)
    }

    /// The old runs overlapping piece `p` (empty when its record is not reusable).
    fn runs_for(&self, p: &Piece) -> Vec<&Run> {
        self.runs[p.rec]
            .iter()
            .flatten()
            .filter(|r| r.rows.start < p.rows.end && p.rows.start < r.rows.end)
            .collect()
    }

    /// All rows of one old row group, or `None` (logged) when it cannot be read.
    fn read_row_group(&self, file: usize, row_group: usize) -> Option<RecordBatch> {
        let f = &self.files[file];
        let read = || -> Result<RecordBatch, String> {
            let rows = f.meta.metadata().row_group(row_group).num_rows().max(1) as usize;
            let reader =
                ParquetRecordBatchReaderBuilder::new_with_metadata(f.file.clone(), f.meta.clone())
                    .with_row_groups(vec![row_group])
                    .with_batch_size(rows)
                    .build()
                    .map_err(|e| e.to_string())?;
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            arrow_select::concat::concat_batches(f.meta.schema(), &batches)
                .map_err(|e| e.to_string())
        };
        match read() {
            Ok(b) => Some(b),
            Err(why) => {
                tracing::warn!(file = %f.path.display(), row_group, reason = %why,
                    "cannot read old rows; decoding those records");
                None
            }
        }
    }

    /// Row groups copied so far by [`Reuse::copy_row_group`].
    pub fn row_groups_copied(&self) -> usize {
        self.copied.load(Ordering::Relaxed)
    }

    /// Copies planned row group `group` without decoding it: when its pieces are, in
    /// order, exactly the rows of one old row group of a copyable file and all of them
    /// are reusable, the old column chunks (bytes, statistics, page indexes) are read
    /// and returned for splicing, so the new file holds the bytes a full conversion
    /// would write. `None` when the group does not line up or anything cannot be read;
    /// the caller then builds and encodes it ([`Reuse::build_row_group`]).
    pub fn copy_row_group(&self, group: &RowGroupPlan) -> Option<EncodedRowGroup> {
        let (file, row_group) = self.lined_up(group)?;
        let f = &self.files[file];
        let rg = f.meta.metadata().row_group(row_group);
        let index = f.meta.metadata().page_index_for_row_group(row_group);
        let rows = rg.num_rows() as u64;
        let mut chunks = Vec::with_capacity(rg.num_columns());
        for (c, cc) in rg.columns().iter().enumerate() {
            let column_index = index.column_index(c).cloned();
            let offset_index = index.offset_index(c).cloned();
            // What the old file has but cannot be carried over exactly (a bloom
            // filter, an index that did not load) makes the group re-encode.
            if cc.bloom_filter_offset().is_some()
                || cc.column_index_range().is_some() != column_index.is_some()
                || cc.offset_index_range().is_some() != offset_index.is_some()
            {
                return None;
            }
            let start = cc
                .dictionary_page_offset()
                .unwrap_or_else(|| cc.data_page_offset());
            let (Ok(start), Ok(len)) =
                (u64::try_from(start), usize::try_from(cc.compressed_size()))
            else {
                return None;
            };
            let bytes = match parquet::file::reader::ChunkReader::get_bytes(&f.file, start, len) {
                Ok(b) => b,
                Err(why) => {
                    tracing::warn!(file = %f.path.display(), row_group, reason = %why,
                        "cannot read old column chunk; re-encoding the row group");
                    return None;
                }
            };
            let metadata = as_written(cc)?;
            chunks.push(EncodedChunk::Copied(CopiedChunk {
                bytes,
                start,
                close: ColumnCloseResult {
                    bytes_written: len as u64,
                    rows_written: rows,
                    metadata,
                    bloom_filter: None,
                    column_index,
                    offset_index,
                },
            }));
        }
        let mut digests = Vec::new();
        for p in group.pieces.iter().filter(|p| p.rows.start == 0) {
            digests.extend(self.digests[p.rec].iter().cloned());
        }
        self.copied.fetch_add(1, Ordering::Relaxed);
        Some(EncodedRowGroup {
            chunks,
            rows,
            records: group.pieces.iter().map(|p| p.rec).collect(),
            failures: Vec::new(),
            digests,
        })
    }

    /// The old `(file, row group)` whose rows are exactly `group`'s, in order: every
    /// piece reusable and matching one run, the runs back to back from the group's
    /// first row to its last.
    fn lined_up(&self, group: &RowGroupPlan) -> Option<(usize, usize)> {
        let mut at: Option<(usize, usize)> = None;
        let mut next_row = 0usize;
        for p in &group.pieces {
            self.runs[p.rec].as_ref()?;
            let [r] = self.runs_for(p)[..] else {
                return None;
            };
            if r.rows != p.rows
                || r.offset != next_row
                || at.is_some_and(|a| a != (r.file, r.row_group))
            {
                return None;
            }
            at = Some((r.file, r.row_group));
            next_row += (r.rows.end - r.rows.start) as usize;
        }
        let (file, row_group) = at?;
        let f = &self.files[file];
        (f.copyable && f.meta.metadata().row_group(row_group).num_rows() as usize == next_row)
            .then_some((file, row_group))
    }

    /// Whether planned record `rec` had any rows decoded (not copied) in this run.
    pub fn was_decoded(&self, rec: usize) -> bool {
        self.decoded
            .get(rec)
            .is_some_and(|d| d.load(Ordering::Relaxed))
    }
}

impl OldFile {
    /// Opens and vets one old file; `Err` says why it is not trusted.
    /// `columns` are the Parquet leaves this run writes.
    fn open(
        path: &Path,
        expected: &[KeyValue],
        schema: &SchemaRef,
        columns: &[ColumnDescPtr],
    ) -> Result<OldFile, String> {
        let file = SharedFile(Arc::new(File::open(path).map_err(|e| e.to_string())?));
        // Page encoding statistics in full and the page indexes: a copied chunk keeps
        // both, as a full conversion writes them.
        let options = ArrowReaderOptions::new()
            .with_encoding_stats_as_mask(false)
            .with_page_index_policy(PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load(&file, options).map_err(|e| e.to_string())?;
        if meta.schema().fields() != schema.fields() {
            return Err("other columns".to_string());
        }
        let kv = meta
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .cloned()
            .unwrap_or_default();
        provenance_matches(&kv, expected)?;
        let digests = kv
            .iter()
            .find(|e| e.key == INPUTS_KEY)
            .and_then(|e| e.value.as_deref())
            .ok_or("no input hashes")
            .and_then(|v| {
                serde_json::from_str::<BTreeMap<String, String>>(v)
                    .map_err(|_| "unreadable input hashes")
            })?;
        let old_columns = meta.metadata().file_metadata().schema_descr().columns();
        let copyable = !columns.is_empty()
            && old_columns.len() == columns.len()
            && old_columns.iter().zip(columns).all(|(a, b)| a == b);
        Ok(OldFile {
            path: path.to_path_buf(),
            file,
            meta,
            digests,
            copyable,
        })
    }
}

/// Column chunk metadata `cc`, read from a file, as the writer had it before writing
/// it: arrow-rs writes the deprecated `min`/`max` statistics fields next to
/// `min_value`/`max_value` for columns with a signed sort order, but reading does not
/// keep that flag, so without it a copied chunk's footer would lose those fields and
/// differ from a full conversion's. `None` if the metadata cannot be rebuilt.
fn as_written(cc: &ColumnChunkMetaData) -> Option<ColumnChunkMetaData> {
    let Some(stats) = cc.statistics() else {
        return Some(cc.clone());
    };
    if !cc.column_descr().sort_order().is_signed() || stats.is_min_max_backwards_compatible() {
        return Some(cc.clone());
    }
    let legacy = match stats.clone() {
        Statistics::Boolean(s) => Statistics::Boolean(s.with_backwards_compatible_min_max(true)),
        Statistics::Int32(s) => Statistics::Int32(s.with_backwards_compatible_min_max(true)),
        Statistics::Int64(s) => Statistics::Int64(s.with_backwards_compatible_min_max(true)),
        Statistics::Int96(s) => Statistics::Int96(s.with_backwards_compatible_min_max(true)),
        Statistics::Float(s) => Statistics::Float(s.with_backwards_compatible_min_max(true)),
        Statistics::Double(s) => Statistics::Double(s.with_backwards_compatible_min_max(true)),
        Statistics::ByteArray(s) => {
            Statistics::ByteArray(s.with_backwards_compatible_min_max(true))
        }
        Statistics::FixedLenByteArray(s) => {
            Statistics::FixedLenByteArray(s.with_backwards_compatible_min_max(true))
        }
    };
    cc.clone()
        .into_builder()
        .set_statistics(legacy)
        .build()
        .ok()
}

/// Whether an old file's provenance `old` was written with what this run writes
/// (`expected`): every `physio.*` key but the input hashes has the same value, and
/// neither side has one the other lacks.
fn provenance_matches(old: &[KeyValue], expected: &[KeyValue]) -> Result<(), String> {
    let physio = |kv: &[KeyValue]| -> BTreeMap<String, Option<String>> {
        kv.iter()
            .filter(|e| e.key.starts_with("physio.") && e.key != INPUTS_KEY)
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect()
    };
    let (old, new) = (physio(old), physio(expected));
    match new.iter().find(|(k, v)| old.get(*k) != Some(*v)) {
        Some((k, _)) => Err(format!("{k} differs")),
        None if old.len() != new.len() => Err("other provenance keys".to_string()),
        None => Ok(()),
    }
}

/// Whether a record with `rows` rows in this run, stored as `runs` in the old output,
/// can be copied: its runs cover rows `0..rows` in order, and every current input file
/// has the hash `recorded` in the provenance of the file holding its first row.
fn reusable(
    rows: u64,
    runs: &[Run],
    recorded: &BTreeMap<String, String>,
    current: &Result<Vec<(String, String)>, ConvertError>,
) -> bool {
    let mut next = 0;
    for r in runs {
        if r.rows.start != next {
            return false;
        }
        next = r.rows.end;
    }
    let Ok(current) = current else {
        return false;
    };
    next == rows
        && !current.is_empty()
        && current
            .iter()
            .all(|(path, sha)| recorded.get(path) == Some(sha))
}

/// The previous output files of this run's naming scheme: the `.parquet` file itself,
/// or `part-NNNNN.parquet` (`part-<I>-NNNNN.parquet` for `--shard I/N`) in the directory.
fn old_files(opts: &ConvertOptions) -> Vec<PathBuf> {
    if super::writer::is_single_file(&opts.out) {
        return if opts.out.is_file() {
            vec![opts.out.clone()]
        } else {
            Vec::new()
        };
    }
    let shard_prefix = super::writer::shard_prefix(opts);
    let Ok(entries) = std::fs::read_dir(&opts.out) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| super::writer::is_part_file(&e.file_name().to_string_lossy(), shard_prefix))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::source::mem::{MemOpener, MemRecord};
    use crate::convert::source::{AnnotationRow, ChannelMeta, RecordSource};
    use crate::convert::{ConvertReport, Dtype, Layout, NoReporter, WindowSpec, convert_with};

    fn run(from: usize, to: usize) -> Run {
        Run {
            file: 0,
            row_group: 0,
            offset: 0,
            rows: from as u64..to as u64,
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn current(pairs: &[(&str, &str)]) -> Result<Vec<(String, String)>, ConvertError> {
        Ok(pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    macro_rules! decide {
        ($($name:ident: ($rows:expr, $runs:expr, $recorded:expr, $current:expr) => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(reusable($rows, &$runs, &map(&$recorded), &$current), $want);
            }
        )*};
    }

    decide! {
        same_hashes_reuse: (1, [run(0, 1)], [("a.hea", "1"), ("a.dat", "2"), ("b.hea", "3")],
            current(&[("a.hea", "1"), ("a.dat", "2")])) => true;
        changed_hash_converts: (1, [run(0, 1)], [("a.hea", "1"), ("a.dat", "2")],
            current(&[("a.hea", "1"), ("a.dat", "X")])) => false;
        missing_hash_converts: (1, [run(0, 1)], [("a.hea", "1")],
            current(&[("a.hea", "1"), ("a.dat", "2")])) => false;
        unhashable_inputs_convert: (1, [run(0, 1)], [("a.hea", "1")],
            Err(ConvertError::Usage("gone".into()))) => false;
        no_inputs_convert: (1, [run(0, 1)], [("a.hea", "1")], current(&[])) => false;
        fewer_old_rows_convert: (10, [run(0, 4), run(4, 8)], [("a.hea", "1")],
            current(&[("a.hea", "1")])) => false;
        runs_across_groups_reuse: (8, [run(0, 4), run(4, 8)], [("a.hea", "1")],
            current(&[("a.hea", "1")])) => true;
        more_old_rows_convert: (1, [run(0, 1), run(1, 2)], [("a.hea", "1")],
            current(&[("a.hea", "1")])) => false;
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
        pairs
            .iter()
            .map(|(k, v)| KeyValue::new(k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn statistics_regain_the_deprecated_min_max_of_signed_columns() {
        use parquet::basic::Type as PhysicalType;
        use parquet::schema::types::{ColumnDescriptor, ColumnPath, Type};
        let column = |physical| {
            let t = Type::primitive_type_builder("c", physical).build().unwrap();
            Arc::new(ColumnDescriptor::new(
                Arc::new(t),
                0,
                0,
                ColumnPath::from("c"),
            ))
        };
        let chunk = |descr, stats| {
            ColumnChunkMetaData::builder(descr)
                .set_statistics(stats)
                .build()
                .unwrap()
        };
        // As read back from a file: the flag is lost.
        let read = Statistics::int64(Some(1), Some(9), None, Some(0), false);
        assert!(!read.is_min_max_backwards_compatible());
        let signed = as_written(&chunk(column(PhysicalType::INT64), read)).unwrap();
        assert!(
            signed
                .statistics()
                .unwrap()
                .is_min_max_backwards_compatible()
        );
        assert_eq!(
            signed.statistics().unwrap().min_bytes_opt(),
            Some(&1i64.to_le_bytes()[..])
        );
        // Byte arrays sort unsigned: arrow-rs writes no deprecated fields for them.
        let names = Statistics::ByteArray(parquet::file::statistics::ValueStatistics::new(
            Some("a".into()),
            Some("b".into()),
            None,
            Some(0),
            false,
        ));
        let unsigned = as_written(&chunk(column(PhysicalType::BYTE_ARRAY), names)).unwrap();
        assert!(
            !unsigned
                .statistics()
                .unwrap()
                .is_min_max_backwards_compatible()
        );
    }

    #[test]
    fn provenance_must_match_but_for_input_hashes() {
        let new = kv(&[
            ("physio.version", "1"),
            ("physio.options", "{\"dtype\":\"f32\"}"),
        ]);
        let same = kv(&[
            ("physio.version", "1"),
            ("physio.options", "{\"dtype\":\"f32\"}"),
            (INPUTS_KEY, "{}"),
            ("ARROW:schema", "..."),
        ]);
        assert!(provenance_matches(&same, &new).is_ok());
        let other_options = kv(&[
            ("physio.version", "1"),
            ("physio.options", "{\"dtype\":\"f16\"}"),
        ]);
        assert!(
            provenance_matches(&other_options, &new)
                .unwrap_err()
                .contains("options")
        );
        let other_version = kv(&[
            ("physio.version", "0"),
            ("physio.options", "{\"dtype\":\"f32\"}"),
        ]);
        assert!(
            provenance_matches(&other_version, &new)
                .unwrap_err()
                .contains("version")
        );
        let extra = kv(&[
            ("physio.version", "1"),
            ("physio.options", "{\"dtype\":\"f32\"}"),
            ("physio.fs", "100"),
        ]);
        assert!(provenance_matches(&extra, &new).is_err());
    }

    /// A [`MemOpener`] whose input hashes can be changed per record, as an edited file
    /// would change them.
    #[derive(Default)]
    struct Salted {
        inner: MemOpener,
        salt: HashMap<String, String>,
    }

    impl SourceOpener for Salted {
        fn probe(&self, name: &str, check: bool) -> Result<RecordMeta, ConvertError> {
            self.inner.probe(name, check)
        }
        fn open(&self, name: &str) -> Result<Box<dyn RecordSource>, ConvertError> {
            self.inner.open(name)
        }
        fn annotations(
            &self,
            name: &str,
            ext: &str,
        ) -> Result<Option<Vec<AnnotationRow>>, ConvertError> {
            self.inner.annotations(name, ext)
        }
        fn input_digests(&self, name: &str) -> Result<Vec<(String, String)>, ConvertError> {
            let salt = self.salt.get(name).cloned().unwrap_or_default();
            Ok(vec![
                (format!("{name}.hea"), format!("hea-{name}")),
                (format!("{name}.dat"), format!("dat-{name}{salt}")),
            ])
        }
    }

    fn record(name: &str, n: u64, seed: i32) -> MemRecord {
        MemRecord {
            meta: RecordMeta {
                name: name.to_string(),
                fs: 100.0,
                n_frames: n,
                channels: ["I", "II"]
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
                comments: vec![format!("seed {seed}")],
            },
            digital: (0..2)
                .map(|j| {
                    (0..n as i32)
                        .map(|i| (seed * 7 + j * 13 + i) % 400)
                        .collect()
                })
                .collect(),
            broken: false,
            annotations: None,
            scaled: true,
        }
    }

    fn corpus() -> Salted {
        let mut o = Salted::default();
        for i in 0..9 {
            o.inner.add(record(&format!("r{i}"), 40 + 3 * i as u64, i));
        }
        o
    }

    fn convert(o: &Salted, opts: &ConvertOptions) -> ConvertReport {
        convert_with(opts, &o.inner.discovered(), o, &NoReporter).unwrap()
    }

    fn bytes(files: &[PathBuf]) -> Vec<Vec<u8>> {
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    fn row_groups(files: &[PathBuf]) -> usize {
        files
            .iter()
            .map(|f| {
                let file = File::open(f).unwrap();
                parquet::file::metadata::ParquetMetaDataReader::new()
                    .parse_and_finish(&file)
                    .unwrap()
                    .num_row_groups()
            })
            .sum()
    }

    fn layouts() -> Vec<ConvertOptions> {
        let mut out = Vec::new();
        for (layout, rows) in [
            (Layout::Record, 2),
            (Layout::Samples, 50),
            (Layout::Windows, 3),
        ] {
            let mut o = ConvertOptions::new("mem", "unset");
            o.layout = layout;
            o.tuning.row_group_rows = Some(rows);
            o.tuning.max_file_bytes = 1500;
            if layout == Layout::Windows {
                o.window = Some(WindowSpec {
                    window_secs: 0.2,
                    stride_secs: 0.15,
                    pad: true,
                });
            }
            out.push(o);
        }
        for dtype in [Dtype::F16, Dtype::I16] {
            let mut o = out[0].clone();
            o.dtype = dtype;
            out.push(o);
        }
        out
    }

    #[test]
    fn incremental_output_equals_a_full_conversion_in_every_layout() {
        for base in layouts() {
            let dir = tempfile::tempdir().unwrap();
            let (inc, full) = (dir.path().join("inc"), dir.path().join("full"));
            let mut o = corpus();
            let mut opts = base.clone();
            opts.out = inc.clone();
            opts.incremental = true;
            let day1 = convert(&o, &opts);
            assert_eq!(day1.records_reused, 0);
            assert_eq!(day1.converted.len(), 9);
            assert!(day1.files.len() > 1, "{:?}: small parts", base.layout);

            // One record's samples change (and so its hash), one record is added.
            o.inner.records.get_mut("r3").unwrap().digital[0][5] += 1;
            o.salt.insert("r3".into(), "-v2".into());
            o.inner.add(record("r45", 33, 45));
            let day2 = convert(&o, &opts);
            let what = format!("{:?} {:?}", base.layout, base.dtype);
            assert_eq!(day2.converted, ["r3", "r45"], "{what}");
            assert_eq!(day2.records_reused, 8);

            let mut fresh = base.clone();
            fresh.out = full.clone();
            let reference = convert(&o, &fresh);
            assert_eq!(reference.converted.len(), 10);
            assert_eq!(day2.files.len(), reference.files.len());
            assert!(
                bytes(&day2.files) == bytes(&reference.files),
                "{what}: incremental differs from full"
            );

            // Only the row groups before the first changed record line up with old ones.
            assert!(day2.row_groups_copied > 0, "{what}");
            assert!(
                day2.row_groups_copied < row_groups(&reference.files),
                "{what}"
            );

            // Unchanged inputs: every row group's encoded chunks are copied, and the
            // bytes stay the same.
            let day3 = convert(&o, &opts);
            assert!(day3.converted.is_empty());
            assert_eq!(day3.records_reused, 10);
            assert_eq!(
                day3.row_groups_copied,
                row_groups(&reference.files),
                "{what}"
            );
            assert!(bytes(&day3.files) == bytes(&reference.files), "{what}");
        }
    }

    #[test]
    fn unchanged_hash_means_copied_rows() {
        // Proof that rows are copied, not decoded: samples changed behind an unchanged
        // hash stay as they were.
        let dir = tempfile::tempdir().unwrap();
        let mut o = corpus();
        let mut opts = ConvertOptions::new("mem", dir.path().join("o.parquet"));
        opts.incremental = true;
        let day1 = bytes(&convert(&o, &opts).files);
        o.inner.records.get_mut("r2").unwrap().digital[1][0] += 50;
        let day2 = convert(&o, &opts);
        assert_eq!(day2.records_reused, 9);
        assert_eq!(day2.row_groups_copied, row_groups(&day2.files));
        assert!(bytes(&day2.files) == day1);
    }

    #[test]
    fn other_options_or_a_corrupt_old_file_convert_everything() {
        let dir = tempfile::tempdir().unwrap();
        let o = corpus();
        let out = dir.path().join("ds");
        let mut opts = ConvertOptions::new("mem", &out);
        opts.incremental = true;
        opts.tuning.row_group_rows = Some(2);
        opts.tuning.max_file_bytes = 1500;
        let day1 = convert(&o, &opts);
        assert!(day1.files.len() > 2);

        opts.dtype = Dtype::F16;
        let other = convert(&o, &opts);
        assert_eq!((other.converted.len(), other.records_reused), (9, 0));
        opts.dtype = Dtype::F32;
        let back = convert(&o, &opts);
        assert_eq!((back.converted.len(), back.records_reused), (9, 0));
        assert!(bytes(&back.files) == bytes(&day1.files));

        // A truncated part (unreadable footer) and a part with a damaged data page:
        // their records are decoded again, the rest is copied, nothing fails.
        let truncated = std::fs::read(&day1.files[0]).unwrap();
        std::fs::write(&day1.files[0], &truncated[..truncated.len() / 2]).unwrap();
        let mut damaged = std::fs::read(&day1.files[1]).unwrap();
        for b in &mut damaged[8..64] {
            *b ^= 0x5a;
        }
        std::fs::write(&day1.files[1], &damaged).unwrap();
        let repaired = convert(&o, &opts);
        assert!(repaired.failed.is_empty());
        assert!(repaired.records_reused > 0 && repaired.records_reused < 9);
        assert_eq!(repaired.converted.len() + repaired.records_reused, 9);
        assert!(bytes(&repaired.files) == bytes(&day1.files));
    }

    #[test]
    fn annotations_are_never_copied() {
        let dir = tempfile::tempdir().unwrap();
        let o = corpus();
        let mut opts = ConvertOptions::new("mem", dir.path().join("o.parquet"));
        opts.incremental = true;
        opts.annotations = Some("atr".to_string());
        convert(&o, &opts);
        let again = convert(&o, &opts);
        assert_eq!((again.converted.len(), again.records_reused), (9, 0));
    }
}
