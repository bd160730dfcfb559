//! A hand-written encoder for the one column that is almost all of the work: `--layout
//! record`'s `signal` (`list<list<float32>>` or `list<list<int16>>`, lists and values
//! non-null), as a dictionary-encoded, uncompressed Parquet column chunk.
//!
//! arrow-rs encodes this column generically: it derives repetition/definition levels
//! value by value, hashes every value into its dictionary (ahash + hashbrown) and
//! re-checks page sizes in mini-batches. That was about half of physio's CPU time on the
//! benchmark corpus (`docs/parquet.md`). Here the levels come straight from the list
//! offsets as run lengths (a channel of S samples is three RLE runs, not S levels), the
//! dictionary is a small open-addressing table over the values' bit patterns, and the
//! indices are bit-packed eight at a time. The pages themselves are framed by the parquet crate's
//! `SerializedPageWriter` (page headers) and the chunk is spliced into the row group with
//! `append_column`, so the file structure stays the crate's.
//!
//! The output is standard Parquet (data page v1, `RLE_DICTIONARY` values, `RLE` levels,
//! a `PLAIN` dictionary page), read back by pyarrow, DuckDB and arrow-rs in the tests.
//! Whatever this encoder does not handle (other types, nulls, more than
//! [`MAX_DICTIONARY`] distinct values, a row larger than [`MAX_PAGE_VALUES`]) returns
//! `None` and the caller falls back to arrow-rs's writer, which also handles the
//! fallback to PLAIN pages.
//!
//! Reference: Parquet format, "Data Pages" (levels, v1 layout) and "Encodings"
//! (RLE/bit-packing hybrid, dictionary encoding).

use std::collections::HashMap;
use std::ops::Range;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int16Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::basic::{Compression, Encoding, EncodingMask, PageType};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, PageEncodingStats};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use crate::wfdb::PhysicalScale;

/// The most distinct values a chunk's dictionary may hold: 1 MiB of 4-byte values,
/// arrow-rs's default dictionary page limit. Beyond it the caller's fallback writes
/// PLAIN pages.
pub const MAX_DICTIONARY: usize = 1 << 18;

/// Values (levels) per data page before a page is cut at the next row boundary.
const PAGE_VALUES: usize = 1 << 19;

/// A row with more values than this is left to the fallback (it would make one page).
pub const MAX_PAGE_VALUES: usize = 1 << 24;

/// An encoded column chunk: its bytes (offset 0 = the dictionary page) and the metadata
/// `SerializedRowGroupWriter::append_column` needs to splice it in.
pub struct RawChunk {
    /// The chunk's bytes, pages in file order.
    pub bytes: Bytes,
    /// Sizes, offsets and encodings of the chunk, relative to `bytes`.
    pub close: ColumnCloseResult,
}

/// Encodes `array` (the `signal` column of a row group) as one column chunk described by
/// `descr`, or returns `Ok(None)` when the array is not of the handled shape (see the
/// module comment) so the caller can use the generic writer.
pub fn encode(array: &ArrayRef, descr: ColumnDescPtr) -> Result<Option<RawChunk>, ParquetError> {
    if descr.max_def_level() != 2 || descr.max_rep_level() != 2 {
        return Ok(None);
    }
    let Some(outer) = array.as_list_opt::<i32>() else {
        return Ok(None);
    };
    let Some(inner) = outer.values().as_list_opt::<i32>() else {
        return Ok(None);
    };
    if outer.null_count() > 0 || inner.null_count() > 0 || inner.values().null_count() > 0 {
        return Ok(None);
    }
    let values = inner.values();
    let (oo, io) = (outer.value_offsets(), inner.value_offsets());
    let rows = row_spans(oo, io);
    if rows.iter().any(|r| r.values > MAX_PAGE_VALUES) {
        return Ok(None);
    }
    match values.data_type() {
        DataType::Float32 => {
            let v = values.as_primitive::<Float32Type>().values();
            write_chunk(descr, oo, io, &rows, |dict, _, range, indices| {
                dict.encode_into(v[range].iter().map(|x| x.to_bits()), indices)
            })
        }
        // Parquet stores int16 as INT32 (with an INT(16) annotation).
        DataType::Int16 => {
            let v = values.as_primitive::<Int16Type>().values();
            // Every int16 has a slot in a 64 Ki-entry table: one hash per distinct value.
            let mut table = vec![NO_INDEX; 1 << 16];
            write_chunk(descr, oo, io, &rows, |dict, _, range, indices| {
                for (slot, &x) in indices.iter_mut().zip(&v[range]) {
                    let t = &mut table[usize::from(x as u16)];
                    if *t == NO_INDEX {
                        *t = dict.index_of(i32::from(x) as u32)?;
                    }
                    *slot = *t;
                }
                Some(())
            })
        }
        _ => Ok(None),
    }
}

/// The record layout's f32 `signal` column kept as the digital samples it is computed
/// from: each channel (inner list) as its samples and its [`PhysicalScale`], plus the
/// list offsets. [`encode_digital`] then converts and hashes each distinct (scale,
/// sample) once per chunk instead of every value; [`DigitalSignal::to_f32`] gives the
/// values themselves where a caller needs the Arrow column.
#[derive(Debug, Default)]
pub struct DigitalSignal {
    /// Samples of each channel, rows in order, channels in row order.
    channels: Vec<Vec<i32>>,
    /// Index into `scales` of each channel.
    scale_of: Vec<u32>,
    /// The distinct scales, in order of first appearance.
    scales: Vec<PhysicalScale>,
    /// Index into `scales` by [`PhysicalScale::key`] (datasets whose records each have
    /// their own gains give a row group thousands of scales).
    scale_index: HashMap<(u64, u64, Option<i32>), u32>,
    /// Total samples.
    len: usize,
}

impl DigitalSignal {
    /// Appends a channel (the next inner list).
    pub fn push_channel(&mut self, samples: Vec<i32>, scale: PhysicalScale) {
        let next = self.scales.len() as u32;
        let s = *self.scale_index.entry(scale.key()).or_insert(next);
        if s == next {
            self.scales.push(scale);
        }
        self.len += samples.len();
        self.channels.push(samples);
        self.scale_of.push(s);
    }

    /// Samples in all channels.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The physical values, channels concatenated in order.
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.len);
        for (samples, &s) in self.channels.iter().zip(&self.scale_of) {
            let scale = self.scales[s as usize];
            out.extend(samples.iter().map(|&d| scale.to_f32(d)));
        }
        out
    }
}

impl Drop for DigitalSignal {
    fn drop(&mut self) {
        super::source::recycle_channel_buffers(self.channels.drain(..));
    }
}

/// Scales that get a lookup table from sample to dictionary index; samples of other
/// scales (rare: datasets whose every record has its own gain) are hashed one by one.
const MAX_LOOKUP_TABLES: usize = 16;

/// Marks a sample whose dictionary index is not known yet.
const NO_INDEX: u32 = u32::MAX;

/// Encodes a [`DigitalSignal`] (with its `list<list<float32>>` offsets) exactly as
/// [`encode`] encodes the f32 array it stands for (same dictionary order, same bytes),
/// or `Ok(None)` in the same cases. Each scale's 16-bit samples are mapped to
/// dictionary indices through a 64 Ki-entry table filled on first sight, so a value is
/// converted to f32 and hashed once per chunk, not once per sample.
pub fn encode_digital(
    signal: &DigitalSignal,
    outer_offsets: &[i32],
    inner_offsets: &[i32],
    descr: ColumnDescPtr,
) -> Result<Option<RawChunk>, ParquetError> {
    if descr.max_def_level() != 2 || descr.max_rep_level() != 2 {
        return Ok(None);
    }
    let (oo, io) = (outer_offsets, inner_offsets);
    let channels = io.len().saturating_sub(1);
    let consistent = oo.first() == Some(&0)
        && oo.last().map(|&n| n as usize) == Some(channels)
        && channels == signal.channels.len()
        && io.first() == Some(&0)
        && signal
            .channels
            .iter()
            .enumerate()
            .all(|(c, v)| (io[c + 1] - io[c]) as usize == v.len());
    if !consistent {
        return Err(ParquetError::General(
            "internal: signal offsets do not match the samples".into(),
        ));
    }
    let rows = row_spans(oo, io);
    if rows.iter().any(|r| r.values > MAX_PAGE_VALUES) {
        return Ok(None);
    }
    let mut tables: Vec<Option<Vec<u32>>> = vec![None; signal.scales.len()];
    write_chunk(descr, oo, io, &rows, |dict, chans, _, indices| {
        let mut at = 0;
        for c in chans {
            let samples = &signal.channels[c];
            let s = signal.scale_of[c] as usize;
            let scale = signal.scales[s];
            let out = &mut indices[at..at + samples.len()];
            at += samples.len();
            if s >= MAX_LOOKUP_TABLES {
                dict.encode_into(samples.iter().map(|&d| scale.to_f32(d).to_bits()), out)?;
                continue;
            }
            let table = tables[s].get_or_insert_with(|| vec![NO_INDEX; 1 << 16]);
            for (slot, &d) in out.iter_mut().zip(samples) {
                // d in [-32768, 32767] <=> d + 32768 in [0, 65536).
                let t = d.wrapping_add(32768) as u32 as usize;
                if let Some(&known) = table.get(t)
                    && known != NO_INDEX
                {
                    *slot = known;
                    continue;
                }
                let index = dict.index_of(scale.to_f32(d).to_bits())?;
                if let Some(entry) = table.get_mut(t) {
                    *entry = index;
                }
                *slot = index;
            }
        }
        Some(())
    })
}

/// A dictionary of distinct keys (value bit patterns) in order of first appearance,
/// built as the pages are encoded.
struct Dictionary {
    table: KeyTable,
    keys: Vec<u32>,
}

impl Dictionary {
    fn new() -> Self {
        Dictionary {
            table: KeyTable::with_capacity(4096),
            keys: Vec::new(),
        }
    }

    /// Writes the dictionary index of every key into `indices` (as many as there are
    /// keys), adding new keys; `None` once there are more than [`MAX_DICTIONARY`]
    /// distinct keys.
    fn encode_into(&mut self, keys: impl Iterator<Item = u32>, indices: &mut [u32]) -> Option<()> {
        for (slot, key) in indices.iter_mut().zip(keys) {
            *slot = self.index_of(key)?;
        }
        Some(())
    }

    /// The dictionary index of `key`, adding it if new; `None` once there would be more
    /// than [`MAX_DICTIONARY`] distinct keys.
    #[inline]
    fn index_of(&mut self, key: u32) -> Option<u32> {
        let next = self.keys.len() as u32;
        match self.table.find_or_insert(key, next) {
            Some(i) => Some(i),
            None => {
                if self.keys.len() == MAX_DICTIONARY {
                    return None;
                }
                self.keys.push(key);
                if self.keys.len() * 2 > self.table.capacity() {
                    self.table = KeyTable::with_capacity(self.table.capacity() * 2);
                    for (i, &k) in self.keys.iter().enumerate() {
                        self.table.find_or_insert(k, i as u32);
                    }
                }
                Some(next)
            }
        }
    }
}

/// Open addressing from a key to its dictionary index, kept at most half full and
/// small (it grows with the dictionary, so a typical ECG row group's few thousand
/// distinct values stay in the CPU cache). A slot holds `(key << 32) | (index + 1)`,
/// 0 = empty; Fibonacci hashing spreads nearby keys.
struct KeyTable {
    slots: Vec<u64>,
    shift: u32,
}

impl KeyTable {
    fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.next_power_of_two();
        KeyTable {
            slots: vec![0; capacity],
            shift: 64 - capacity.trailing_zeros(),
        }
    }

    fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The index stored for `key`, or `None` after storing `index` for it.
    #[inline]
    fn find_or_insert(&mut self, key: u32, index: u32) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut slot = (u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize;
        loop {
            let entry = self.slots[slot];
            if entry == 0 {
                self.slots[slot] = (u64::from(key) << 32) | u64::from(index + 1);
                return None;
            }
            if (entry >> 32) as u32 == key {
                return Some((entry as u32) - 1);
            }
            slot = (slot + 1) & mask;
        }
    }
}

/// Where one row's values are: its value range and its level count.
struct RowSpan {
    /// Index of the row's first value in the flat values.
    first_value: usize,
    /// Values in the row.
    values: usize,
    /// Level entries of the row (values, plus one per empty list).
    levels: usize,
}

fn row_spans(oo: &[i32], io: &[i32]) -> Vec<RowSpan> {
    (0..oo.len().saturating_sub(1))
        .map(|r| {
            let (c0, c1) = (oo[r] as usize, oo[r + 1] as usize);
            let first_value = io[c0] as usize;
            let values = io[c1] as usize - first_value;
            let empty_channels = (c0..c1).filter(|&c| io[c] == io[c + 1]).count();
            let levels = if c0 == c1 { 1 } else { values + empty_channels };
            RowSpan {
                first_value,
                values,
                levels,
            }
        })
        .collect()
}

/// Encodes the data pages (cut at row boundaries every [`PAGE_VALUES`] levels), each
/// with the bit width its indices need so far, then puts the dictionary page in front
/// and builds the chunk metadata; `None` when the dictionary overflows.
///
/// `fill(dictionary, channels, values, indices)` writes the dictionary index of each
/// value of a page (`values`, flat indices; `channels`, its inner lists) into `indices`,
/// or returns `None` when the dictionary overflows.
fn write_chunk(
    descr: ColumnDescPtr,
    oo: &[i32],
    io: &[i32],
    rows: &[RowSpan],
    mut fill: impl FnMut(&mut Dictionary, Range<usize>, Range<usize>, &mut [u32]) -> Option<()>,
) -> Result<Option<RawChunk>, ParquetError> {
    let mut data = TrackedWrite::new(Vec::new());
    let mut pages = SerializedPageWriter::new(&mut data);
    let mut dictionary = Dictionary::new();
    let mut indices = Vec::new();
    let mut num_values = 0u64;
    let mut data_pages = 0i32;
    let mut start = 0;
    while start < rows.len() {
        let mut end = start;
        let mut levels = 0;
        while end < rows.len() && (end == start || levels + rows[end].levels <= PAGE_VALUES) {
            levels += rows[end].levels;
            end += 1;
        }
        let mut rep = RleWriter::new();
        let mut def = RleWriter::new();
        for r in start..end {
            let (c0, c1) = (oo[r] as usize, oo[r + 1] as usize);
            if c0 == c1 {
                rep.run(0, 1);
                def.run(0, 1);
                continue;
            }
            for c in c0..c1 {
                let n = (io[c + 1] - io[c]) as usize;
                rep.run(if c == c0 { 0 } else { 1 }, 1);
                if n == 0 {
                    def.run(1, 1);
                } else {
                    rep.run(2, n - 1);
                    def.run(2, n);
                }
            }
        }
        let first = rows[start].first_value;
        let last = rows[end - 1].first_value + rows[end - 1].values;
        indices.clear();
        indices.resize(last - first, 0);
        let channels = oo[start] as usize..oo[end] as usize;
        if fill(&mut dictionary, channels, first..last, &mut indices).is_none() {
            return Ok(None);
        }
        let bit_width = bits_for(dictionary.keys.len().saturating_sub(1) as u32).max(1);
        let mut buf = Vec::with_capacity(16 + indices.len() * bit_width as usize / 8 + 64);
        for levels in [rep.finish(), def.finish()] {
            buf.extend_from_slice(&(levels.len() as u32).to_le_bytes());
            buf.extend_from_slice(&levels);
        }
        buf.push(bit_width as u8);
        bit_pack_run(&indices, bit_width, &mut buf);
        let len = buf.len();
        pages.write_page(CompressedPage::new(
            Page::DataPage {
                buf: Bytes::from(buf),
                num_values: levels as u32,
                encoding: Encoding::RLE_DICTIONARY,
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            },
            len,
        ))?;
        num_values += levels as u64;
        data_pages += 1;
        start = end;
    }

    // The dictionary page comes first in the chunk.
    let mut chunk = TrackedWrite::new(Vec::new());
    let mut dict_bytes = Vec::with_capacity(dictionary.keys.len() * 4);
    for k in &dictionary.keys {
        dict_bytes.extend_from_slice(&k.to_le_bytes());
    }
    let dict_len = dict_bytes.len();
    SerializedPageWriter::new(&mut chunk).write_page(CompressedPage::new(
        Page::DictionaryPage {
            buf: Bytes::from(dict_bytes),
            num_values: dictionary.keys.len() as u32,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        },
        dict_len,
    ))?;
    let data_page_offset = chunk.bytes_written() as u64;
    let mut bytes = chunk.into_inner()?;
    bytes.extend_from_slice(&data.into_inner()?);
    let total_bytes = bytes.len() as u64;

    let metadata = ColumnChunkMetaData::builder(descr)
        .set_compression(Compression::UNCOMPRESSED)
        .set_encodings_mask(EncodingMask::new_from_encodings(
            [Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY].iter(),
        ))
        .set_page_encoding_stats(vec![
            PageEncodingStats {
                page_type: PageType::DICTIONARY_PAGE,
                encoding: Encoding::PLAIN,
                count: 1,
            },
            PageEncodingStats {
                page_type: PageType::DATA_PAGE,
                encoding: Encoding::RLE_DICTIONARY,
                count: data_pages,
            },
        ])
        .set_total_compressed_size(total_bytes as i64)
        .set_total_uncompressed_size(total_bytes as i64)
        .set_num_values(num_values as i64)
        .set_data_page_offset(data_page_offset as i64)
        .set_dictionary_page_offset(Some(0))
        .build()?;
    Ok(Some(RawChunk {
        bytes: Bytes::from(bytes),
        close: ColumnCloseResult {
            bytes_written: total_bytes,
            rows_written: rows.len() as u64,
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: None,
        },
    }))
}

/// Bits needed to store `max` (0 for 0).
fn bits_for(max: u32) -> u32 {
    32 - max.leading_zeros()
}

/// Appends `values` as one bit-packed run of the RLE/bit-packing hybrid: a ULEB128
/// header `(groups << 1) | 1`, then groups of eight values packed LSB first, the last
/// group padded with zeros (readers take only as many values as the page has levels).
fn bit_pack_run(values: &[u32], bit_width: u32, out: &mut Vec<u8>) {
    let groups = values.len().div_ceil(8);
    if groups == 0 {
        return;
    }
    uleb128(((groups as u64) << 1) | 1, out);
    let width = bit_width as usize;
    // Groups are written as whole 16-byte (u128) stores into a buffer with 16 bytes of
    // slack, advancing by `width` bytes: no variable-length copy per group.
    let start = out.len();
    out.resize(start + groups * width + 16, 0);
    let full = values.len() / 8;
    let dst = &mut out[start..];
    // One instantiation per width up to 16 bits, so that every shift is a constant.
    macro_rules! widths {
        ($($w:literal)*) => {
            match width {
                $($w => pack_groups::<$w>(&values[..full * 8], dst),)*
                _ => pack_groups_wide(&values[..full * 8], width, dst),
            }
        };
    }
    widths!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    let rest = &values[full * 8..];
    if !rest.is_empty() {
        // The last group is padded with zeros; readers take only as many values as the
        // page has levels.
        let mut group = [0u32; 8];
        group[..rest.len()].copy_from_slice(rest);
        pack_groups_wide(&group, width, &mut dst[full * width..]);
    }
    out.truncate(start + groups * width);
}

/// Packs whole groups of eight `W`-bit values (`W` ≤ 16) into `out`, `W` bytes per
/// group: two halves of four in u64s, joined once into a u128 and stored whole (`out`
/// has 16 bytes of slack past the last group).
fn pack_groups<const W: usize>(values: &[u32], out: &mut [u8]) {
    let half = |q: &[u32]| {
        u64::from(q[0])
            | u64::from(q[1]) << W
            | u64::from(q[2]) << (2 * W)
            | u64::from(q[3]) << (3 * W)
    };
    for (g, group) in values.chunks_exact(8).enumerate() {
        let acc = u128::from(half(&group[..4])) | u128::from(half(&group[4..])) << (4 * W);
        out[g * W..g * W + 16].copy_from_slice(&acc.to_le_bytes());
    }
}

/// Packs whole groups of eight values of any width (up to 32 bits) into `out`, byte by
/// byte.
fn pack_groups_wide(values: &[u32], width: usize, out: &mut [u8]) {
    for (g, group) in values.chunks_exact(8).enumerate() {
        let mut acc: u64 = 0;
        let mut bits = 0;
        let mut at = g * width;
        for &v in group {
            acc |= u64::from(v) << bits;
            bits += width;
            while bits >= 8 {
                out[at] = acc as u8;
                at += 1;
                acc >>= 8;
                bits -= 8;
            }
        }
    }
}

fn uleb128(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Level runs in the RLE/bit-packing hybrid's RLE form (`count << 1` header, then the
/// value in one byte), merging adjacent runs of the same level.
struct RleWriter {
    out: Vec<u8>,
    current: Option<(u8, usize)>,
}

impl RleWriter {
    fn new() -> Self {
        RleWriter {
            out: Vec::new(),
            current: None,
        }
    }

    fn run(&mut self, level: u8, count: usize) {
        if count == 0 {
            return;
        }
        match &mut self.current {
            Some((l, n)) if *l == level => *n += count,
            _ => {
                self.flush();
                self.current = Some((level, count));
            }
        }
    }

    fn flush(&mut self) {
        if let Some((level, count)) = self.current.take() {
            uleb128((count as u64) << 1, &mut self.out);
            self.out.push(level);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float32Array, Int16Array, ListArray, RecordBatch};
    use arrow_buffer::OffsetBuffer;
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::sync::Arc;

    /// `list<list<value>>` rows from per-row channel lengths.
    fn signal(rows: &[Vec<usize>], values: ArrayRef) -> ArrayRef {
        let value_field = Arc::new(Field::new("item", values.data_type().clone(), false));
        let mut inner_offsets = vec![0i32];
        let mut outer_offsets = vec![0i32];
        for row in rows {
            for &n in row {
                inner_offsets.push(inner_offsets.last().unwrap() + n as i32);
            }
            outer_offsets.push(outer_offsets.last().unwrap() + row.len() as i32);
        }
        let inner = ListArray::new(
            Arc::clone(&value_field),
            OffsetBuffer::new(inner_offsets.into()),
            values,
            None,
        );
        let inner_field = Arc::new(Field::new("item", inner.data_type().clone(), false));
        Arc::new(ListArray::new(
            inner_field,
            OffsetBuffer::new(outer_offsets.into()),
            Arc::new(inner),
            None,
        ))
    }

    /// Writes `array` as the only column through [`encode`] and reads it back with
    /// arrow-rs; `None` when the encoder declined.
    fn round_trip(array: ArrayRef) -> Option<ArrayRef> {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "signal",
            array.data_type().clone(),
            false,
        )]));
        let descr = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&schema)
            .unwrap();
        let raw = encode(&array, descr.column(0)).unwrap()?;
        let mut buf = Vec::new();
        let writer = ArrowWriter::try_new(&mut buf, Arc::clone(&schema), None).unwrap();
        let (mut file, _) = writer.into_serialized_writer().unwrap();
        let mut rg = file.next_row_group().unwrap();
        rg.append_column(&raw.bytes, raw.close).unwrap();
        rg.close().unwrap();
        file.close().unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(buf))
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(0).as_ref()).collect();
        Some(arrow_select::concat::concat(&parts).unwrap())
    }

    #[test]
    fn float_rows_round_trip_including_empty_lists_and_many_pages() {
        // Rows of 12 x 5,000 (several pages), an empty record, a record with an empty
        // channel, NaN and -0.0 (distinct bit patterns, distinct dictionary entries).
        let mut rows: Vec<Vec<usize>> = vec![vec![5000; 12]; 20];
        rows.insert(3, vec![]);
        rows.insert(7, vec![4, 0, 2]);
        let n: usize = rows.iter().flatten().sum();
        let mut values: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 3001) as f32 / 1000.0)
            .collect();
        values[10] = f32::NAN;
        values[11] = -0.0;
        values[12] = 0.0;
        let array = signal(&rows, Arc::new(Float32Array::from(values)));
        let back = round_trip(Arc::clone(&array)).expect("encoded");
        assert_eq!(back.len(), array.len());
        // Compare bit patterns (NaN != NaN under float equality).
        let bits = |a: &ArrayRef| -> Vec<u32> {
            let inner = a
                .as_list::<i32>()
                .values()
                .as_list::<i32>()
                .values()
                .clone();
            inner
                .as_primitive::<Float32Type>()
                .values()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
        assert_eq!(bits(&back), bits(&array));
        assert_eq!(
            back.as_list::<i32>().value_offsets(),
            array.as_list::<i32>().value_offsets()
        );
        assert_eq!(
            back.as_list::<i32>()
                .values()
                .as_list::<i32>()
                .value_offsets(),
            array
                .as_list::<i32>()
                .values()
                .as_list::<i32>()
                .value_offsets()
        );
    }

    #[test]
    fn digital_samples_encode_to_the_bytes_of_their_f32_values() {
        // Rows of 12 channels; 20 scales (past the lookup tables), samples beyond
        // int16 (hashed one by one), the invalid value (NaN), an empty channel and an
        // empty row, enough values for several pages.
        let scale = |k: usize| PhysicalScale {
            baseline: (k % 3) as f64,
            gain: 100.0 + (k % 20) as f64,
            invalid: Some(-32768),
        };
        let mut digital = DigitalSignal::default();
        let mut values = Vec::new();
        let mut inner = vec![0i32];
        let mut outer = vec![0i32];
        for row in 0..30usize {
            let channels = if row == 4 { 0 } else { 12 };
            for c in 0..channels {
                let n = if row == 7 && c == 3 { 0 } else { 5000 };
                let k = row * 12 + c;
                let samples: Vec<i32> = (0..n)
                    .map(|i| match (i + k as i32) % 997 {
                        0 => -32768,
                        1 => 40_000 + i,
                        r => r * 7 - 3000,
                    })
                    .collect();
                values.extend(samples.iter().map(|&d| scale(k).to_f32(d)));
                digital.push_channel(samples, scale(k));
                inner.push(values.len() as i32);
            }
            outer.push(inner.len() as i32 - 1);
        }
        let array = {
            let rows: Vec<Vec<usize>> = outer
                .windows(2)
                .map(|w| {
                    (w[0] as usize..w[1] as usize)
                        .map(|c| (inner[c + 1] - inner[c]) as usize)
                        .collect()
                })
                .collect();
            signal(&rows, Arc::new(Float32Array::from(values)))
        };
        let schema = Schema::new(vec![Field::new("signal", array.data_type().clone(), false)]);
        let descr = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&schema)
            .unwrap();
        let want = encode(&array, descr.column(0)).unwrap().expect("encoded");
        let got = encode_digital(&digital, &outer, &inner, descr.column(0))
            .unwrap()
            .expect("encoded");
        assert_eq!(got.bytes, want.bytes);
        assert_eq!(
            got.close.metadata.num_values(),
            want.close.metadata.num_values()
        );
        // Offsets that do not match the samples are an error, not a panic.
        assert!(encode_digital(&digital, &outer[..3], &inner, descr.column(0)).is_err());
        assert!(encode_digital(&DigitalSignal::default(), &[0], &[], descr.column(0)).is_err());
    }

    proptest::proptest! {
        /// Any shape of rows and channels, any mix of scales (past the lookup tables
        /// too) and samples (int16, beyond it, the invalid value): the
        /// digital encoder writes the float encoder's bytes.
        #[test]
        fn digital_and_float_encoders_agree(
            rows in proptest::collection::vec(
                proptest::collection::vec((0usize..700, 0usize..20), 0..5),
                0..10,
            ),
            seed in proptest::num::u32::ANY,
        ) {
            let scale = |k: usize| PhysicalScale {
                baseline: (k % 4) as f64 - 1.0,
                gain: [200.0, 1000.0, 0.5, 3.0][k % 4] + (k / 4) as f64,
                invalid: (!k.is_multiple_of(5)).then_some(-32768),
            };
            let mut digital = DigitalSignal::default();
            let mut values = Vec::new();
            let mut inner = vec![0i32];
            let mut outer = vec![0i32];
            let mut x = seed;
            for row in &rows {
                for &(n, k) in row {
                    let samples: Vec<i32> = (0..n)
                        .map(|_| {
                            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                            match x >> 28 {
                                0 => -32768,
                                1 => (x >> 8) as i32 - (1 << 23),
                                _ => ((x >> 16) % 512) as i32 - 256,
                            }
                        })
                        .collect();
                    values.extend(samples.iter().map(|&d| scale(k).to_f32(d)));
                    digital.push_channel(samples, scale(k));
                    inner.push(values.len() as i32);
                }
                outer.push(inner.len() as i32 - 1);
            }
            let shape: Vec<Vec<usize>> = rows.iter().map(|r| r.iter().map(|c| c.0).collect()).collect();
            let array = signal(&shape, Arc::new(Float32Array::from(values)));
            let schema = Schema::new(vec![Field::new("signal", array.data_type().clone(), false)]);
            let descr = parquet::arrow::ArrowSchemaConverter::new().convert(&schema).unwrap();
            let want = encode(&array, descr.column(0)).unwrap().map(|c| c.bytes);
            let got = encode_digital(&digital, &outer, &inner, descr.column(0))
                .unwrap()
                .map(|c| c.bytes);
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn int16_rows_round_trip() {
        let rows = vec![vec![3, 3], vec![2, 2]];
        let values = Int16Array::from(vec![-32768, 0, 32767, 5, 5, -1, 7, 7, 7, -32768]);
        let array = signal(&rows, Arc::new(values));
        let back = round_trip(Arc::clone(&array)).expect("encoded");
        assert_eq!(back.as_ref(), array.as_ref());
    }

    #[test]
    fn declines_what_it_does_not_handle() {
        // More distinct values than a dictionary may hold: the generic writer's job.
        let n = MAX_DICTIONARY + 1;
        let values = Float32Array::from((0..n).map(|i| i as f32).collect::<Vec<_>>());
        assert!(round_trip(signal(&[vec![n]], Arc::new(values))).is_none());
        // Not list<list<_>>.
        let flat: ArrayRef = Arc::new(Float32Array::from(vec![1.0f32]));
        let schema = Schema::new(vec![Field::new("signal", DataType::Float32, false)]);
        let descr = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&schema)
            .unwrap();
        assert!(encode(&flat, descr.column(0)).unwrap().is_none());
    }

    #[test]
    fn dictionary_in_first_appearance_order_across_pages() {
        let mut d = Dictionary::new();
        let mut idx = vec![0; 6];
        d.encode_into([7, 7, 3, 7].into_iter(), &mut idx[..4])
            .unwrap();
        d.encode_into([9, 3].into_iter(), &mut idx[4..]).unwrap();
        assert_eq!(d.keys, vec![7, 3, 9]);
        assert_eq!(idx, vec![0, 0, 1, 0, 2, 1]);
        // Growing the table past its first capacity keeps every index.
        let keys: Vec<u32> = (0..10_000).map(|k| k * 31).collect();
        let mut d = Dictionary::new();
        let mut idx = vec![0; 20_000];
        d.encode_into(keys.iter().copied(), &mut idx[..10_000])
            .unwrap();
        d.encode_into(keys.iter().rev().copied(), &mut idx[10_000..])
            .unwrap();
        let want: Vec<u32> = (0..10_000).chain((0..10_000).rev()).collect();
        assert_eq!(idx, want);
    }

    #[test]
    fn dictionary_gives_up_past_the_limit() {
        let keys: Vec<u32> = (0..=MAX_DICTIONARY as u32).collect();
        let mut idx = vec![0; keys.len()];
        assert!(
            Dictionary::new()
                .encode_into(keys.iter().copied(), &mut idx)
                .is_none()
        );
        assert!(
            Dictionary::new()
                .encode_into(keys[1..].iter().copied(), &mut idx)
                .is_some()
        );
    }

    #[test]
    fn bit_packing_matches_the_spec_example() {
        // Parquet spec, "Bit-packed (Deprecated)" / hybrid: values 0..7 at width 3 pack
        // to 10001000 11000110 11111010.
        let mut out = Vec::new();
        bit_pack_run(&[0, 1, 2, 3, 4, 5, 6, 7], 3, &mut out);
        assert_eq!(out, vec![0b11, 0b1000_1000, 0b1100_0110, 0b1111_1010]);
        // A partial group is padded to eight values.
        let mut out = Vec::new();
        bit_pack_run(&[1], 1, &mut out);
        assert_eq!(out, vec![0b11, 0b0000_0001]);
        // Both packing paths (<= 16 bits and wider) agree with a bit-by-bit reference.
        for width in [1u32, 3, 11, 16, 17, 18] {
            let values: Vec<u32> = (0..21u32)
                .map(|i| i.wrapping_mul(2_654_435_761) & ((1 << width) - 1))
                .collect();
            let mut out = Vec::new();
            bit_pack_run(&values, width, &mut out);
            let mut want = vec![0u8; 3 * width as usize];
            for (i, v) in values.iter().enumerate() {
                for b in 0..width as usize {
                    if v >> b & 1 == 1 {
                        let bit = i * width as usize + b;
                        want[bit / 8] |= 1 << (bit % 8);
                    }
                }
            }
            assert_eq!(out[0], (3 << 1) | 1, "width {width}");
            assert_eq!(&out[1..], &want[..], "width {width}");
        }
    }

    #[test]
    fn level_runs_merge() {
        let mut w = RleWriter::new();
        w.run(0, 1);
        w.run(2, 4999);
        w.run(2, 1);
        w.run(1, 0);
        let out = w.finish();
        // 1 x level 0, then 5000 x level 2 (ULEB128 of 10000 = 0x90 0x4e).
        assert_eq!(out, vec![2, 0, 0x90, 0x4e, 2]);
    }
}
