//! Decoding the pieces of one planned row group and building its Arrow `RecordBatch`.
//!
//! Signal values go straight into one flat buffer per column (no per-value builder
//! calls), channel-major within a row as the contract requires; list offsets are built
//! alongside. A record that fails to read is left out of the batch and returned as a
//! failure, so one bad record never loses the rest of its row group.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float16Array, Float32Array, Float64Array, Int16Array,
    Int32Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
};
use arrow_buffer::{OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, SchemaRef};
use half::f16;

use super::metadata::ExtraColumns;
use super::plan::{Piece, RowGroupPlan, Shape};
use super::schema;
use super::signal_chunk::DigitalSignal;
use super::source::{AnnotationRow, RecordMeta, RecordSource, SourceOpener};
use super::{ConvertError, ConvertOptions, Dtype, Layout};
use crate::wfdb::PhysicalScale;
use crate::wfdb::frame::{FrameMean, smooth_frames};

/// What every row-group build needs (shared, read-only, across workers).
pub struct BatchContext<'a> {
    /// The conversion options.
    pub opts: &'a ConvertOptions,
    /// Channels and window geometry.
    pub shape: &'a Shape,
    /// Planned records (piece `rec` indexes this).
    pub metas: &'a [RecordMeta],
    /// Where samples come from.
    pub opener: &'a dyn SourceOpener,
    /// Joined metadata columns.
    pub extra: &'a ExtraColumns,
    /// The output schema.
    pub schema: SchemaRef,
    /// Hold the record layout's f32 `signal` column back as digital samples: the
    /// encoder writes that column itself
    /// ([`super::writer::RowGroupEncoder::encodes_signal_itself`]).
    pub digital_signal: bool,
}

/// One row group, decoded and assembled, ready to encode.
#[derive(Debug)]
pub struct BuiltRowGroup {
    /// The rows (`None` when every record of the group failed). Lacks the `signal`
    /// column when `signal` holds it.
    pub batch: Option<RecordBatch>,
    /// The record layout's f32 `signal` column, held back as digital samples for the
    /// signal encoder (see [`BuiltRowGroup::materialize`]).
    pub signal: Option<DigitalColumn>,
    /// Indices of records with rows in this group.
    pub records: Vec<usize>,
    /// Records that failed, by index.
    pub failures: Vec<(usize, ConvertError)>,
    /// `(path, sha256)` of the input files of records that start in this group.
    pub digests: Vec<(String, String)>,
}

impl BuiltRowGroup {
    /// Puts the held-back `signal` column (if any) into `batch` as the f32 column it
    /// stands for, so the batch has every column of `schema`.
    pub fn materialize(&mut self, schema: &SchemaRef) -> Result<(), ConvertError> {
        let Some(signal) = self.signal.take() else {
            return Ok(());
        };
        let Some(batch) = self.batch.take() else {
            return Ok(());
        };
        let mut cols = batch.columns().to_vec();
        cols.insert(schema.index_of("signal")?, signal.to_array()?);
        self.batch = Some(RecordBatch::try_new(Arc::clone(schema), cols)?);
        Ok(())
    }
}

/// The record layout's `signal` column (`--dtype f32`) as digital samples with their
/// scales and the column's list offsets, for [`super::signal_chunk::encode_digital`].
#[derive(Debug)]
pub struct DigitalColumn {
    /// The samples and scales.
    pub signal: DigitalSignal,
    /// Offsets of the inner lists (channels) into the samples.
    pub inner_offsets: Vec<i32>,
    /// Offsets of the rows into the inner lists.
    pub outer_offsets: Vec<i32>,
}

impl DigitalColumn {
    /// The `list<list<float32>>` column these samples stand for.
    pub fn to_array(&self) -> Result<ArrayRef, ConvertError> {
        let values: ArrayRef = Arc::new(Float32Array::new(
            ScalarBuffer::from(self.signal.to_f32()),
            None,
        ));
        signal_lists(
            DataType::Float32,
            values,
            self.inner_offsets.clone(),
            self.outer_offsets.clone(),
        )
    }
}

/// The record layout's `signal` column (`list<list<value>>`, non-null) from its values
/// and offsets.
fn signal_lists(
    value_type: DataType,
    values: ArrayRef,
    inner_offsets: Vec<i32>,
    outer_offsets: Vec<i32>,
) -> Result<ArrayRef, ConvertError> {
    let inner = ListArray::try_new(
        Arc::new(Field::new("item", value_type.clone(), false)),
        OffsetBuffer::new(ScalarBuffer::from(inner_offsets)),
        values,
        None,
    )?;
    let outer = ListArray::try_new(
        Arc::new(Field::new(
            "item",
            DataType::List(Arc::new(Field::new("item", value_type, false))),
            false,
        )),
        OffsetBuffer::new(ScalarBuffer::from(outer_offsets)),
        Arc::new(inner),
        None,
    )?;
    Ok(Arc::new(outer))
}

/// Decoded samples of the selected channels over a frame range.
enum Chans {
    F32(Vec<Vec<f32>>),
    /// Digital samples for `--dtype i16` (checked to fit) or `i32`.
    Int(Vec<Vec<i32>>),
    /// Digital samples with each channel's scale to its f32 physical values.
    Digital(Vec<Vec<i32>>, Vec<PhysicalScale>),
}

impl Chans {
    fn len(&self, j: usize) -> usize {
        match self {
            Chans::F32(c) => c[j].len(),
            Chans::Int(c) => c[j].len(),
            Chans::Digital(c, _) => c[j].len(),
        }
    }

    fn count(&self) -> usize {
        match self {
            Chans::F32(c) => c.len(),
            Chans::Int(c) => c.len(),
            Chans::Digital(c, _) => c.len(),
        }
    }
}

/// A column of signal values in the output dtype.
enum Values {
    F32(Vec<f32>),
    F16(Vec<f16>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    /// f32 values held as digital samples until the signal encoder writes them (record
    /// layout); turned into `F32` if a record of the group has no digital form.
    Digital(DigitalSignal),
}

impl Values {
    fn reserve(&mut self, n: usize) {
        match self {
            Values::F32(v) => v.reserve_exact(n),
            Values::F16(v) => v.reserve_exact(n),
            Values::I16(v) => v.reserve_exact(n),
            Values::I32(v) => v.reserve_exact(n),
            Values::Digital(_) => {}
        }
    }

    fn new(dtype: Dtype) -> Self {
        match dtype {
            Dtype::F32 => Values::F32(Vec::new()),
            Dtype::F16 => Values::F16(Vec::new()),
            Dtype::I16 => Values::I16(Vec::new()),
            Dtype::I32 => Values::I32(Vec::new()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F16(v) => v.len(),
            Values::I16(v) => v.len(),
            Values::I32(v) => v.len(),
            Values::Digital(d) => d.len(),
        }
    }

    /// Turns held-back digital samples into f32 values (for a row group that also has
    /// rows without a digital form).
    fn make_plain(&mut self) {
        if let Values::Digital(d) = self {
            *self = Values::F32(d.to_f32());
        }
    }

    fn extend(&mut self, chans: &Chans, j: usize, range: Range<usize>) {
        self.make_plain();
        match (self, chans) {
            (Values::F32(v), Chans::F32(c)) => v.extend_from_slice(&c[j][range]),
            (Values::F32(v), Chans::Digital(c, scales)) => {
                let scale = scales[j];
                v.extend(c[j][range].iter().map(|&d| scale.to_f32(d)))
            }
            (Values::F16(v), Chans::F32(c)) => {
                v.extend(c[j][range].iter().map(|&x| f16::from_f32(x)))
            }
            // `read_channels` checked that every value fits in int16.
            (Values::I16(v), Chans::Int(c)) => v.extend(c[j][range].iter().map(|&x| x as i16)),
            (Values::I32(v), Chans::Int(c)) => v.extend_from_slice(&c[j][range]),
            // read_channels returns Int exactly when the dtype is digital, and Digital
            // only for f32.
            _ => {}
        }
    }

    /// Appends whole channels, recording where each ends in `offsets`. Digital samples
    /// are moved, not copied, when the values are held as digital samples too.
    fn push_channels(&mut self, chans: Chans, offsets: &mut Vec<i32>) {
        match (self, chans) {
            (Values::Digital(d), Chans::Digital(c, scales)) => {
                for (samples, scale) in c.into_iter().zip(scales) {
                    d.push_channel(samples, scale);
                    offsets.push(d.len() as i32);
                }
            }
            (values, chans) => {
                for k in 0..chans.count() {
                    values.extend(&chans, k, 0..chans.len(k));
                    offsets.push(values.len() as i32);
                }
            }
        }
    }

    /// Appends `n` padding values: NaN, or for int16/int32 the invalid value of format
    /// 16/32 (`i16::MIN`, `i32::MIN`).
    fn pad(&mut self, n: usize) {
        self.make_plain();
        match self {
            Values::F32(v) => v.resize(v.len() + n, f32::NAN),
            Values::F16(v) => v.resize(v.len() + n, f16::NAN),
            Values::I16(v) => v.resize(v.len() + n, i16::MIN),
            Values::I32(v) => v.resize(v.len() + n, i32::MIN),
            Values::Digital(_) => {}
        }
    }

    fn into_array(self) -> ArrayRef {
        match self {
            Values::F32(v) => Arc::new(Float32Array::new(ScalarBuffer::from(v), None)),
            Values::F16(v) => Arc::new(Float16Array::new(ScalarBuffer::from(v), None)),
            Values::I16(v) => Arc::new(Int16Array::new(ScalarBuffer::from(v), None)),
            Values::I32(v) => Arc::new(Int32Array::new(ScalarBuffer::from(v), None)),
            Values::Digital(d) => Arc::new(Float32Array::new(ScalarBuffer::from(d.to_f32()), None)),
        }
    }
}

/// Column accumulators for one row group.
struct Acc {
    /// Record names as runs `(name, rows)`: a 24-hour record in `samples` layout has
    /// millions of rows of one name, which should not mean millions of `String`s.
    record: Vec<(String, usize)>,
    rows: usize,
    fs: Vec<f64>,
    n_samples: Vec<i64>,
    sig_name: FlatList<String>,
    units: FlatList<String>,
    values: Values,
    inner_offsets: Vec<i32>,
    outer_offsets: Vec<i32>,
    sample: Vec<i64>,
    time: Vec<f64>,
    columns: Vec<Values>,
    start: Vec<i64>,
    gain: FlatList<f64>,
    baseline: FlatList<i64>,
    base_date: Vec<Option<String>>,
    base_time: Vec<Option<String>>,
    comments: FlatList<String>,
    ann_offsets: Vec<i32>,
    ann_valid: Vec<bool>,
    anns: AnnotationColumns,
    meta_rows: Vec<Option<u32>>,
}

impl Acc {
    fn new(ctx: &BatchContext<'_>) -> Self {
        Acc {
            record: Vec::new(),
            rows: 0,
            fs: Vec::new(),
            n_samples: Vec::new(),
            sig_name: FlatList::default(),
            units: FlatList::default(),
            values: if ctx.digital_signal {
                Values::Digital(DigitalSignal::default())
            } else {
                Values::new(ctx.opts.dtype)
            },
            inner_offsets: vec![0],
            outer_offsets: vec![0],
            sample: Vec::new(),
            time: Vec::new(),
            columns: ctx
                .shape
                .column_names
                .iter()
                .map(|_| Values::new(ctx.opts.dtype))
                .collect(),
            start: Vec::new(),
            gain: FlatList::default(),
            baseline: FlatList::default(),
            base_date: Vec::new(),
            base_time: Vec::new(),
            comments: FlatList::default(),
            ann_offsets: vec![0],
            ann_valid: Vec::new(),
            anns: AnnotationColumns::default(),
            meta_rows: Vec::new(),
        }
    }

    /// Per-row columns every layout shares: record name, gain/baseline (i16),
    /// annotations, joined metadata row.
    fn push_common(
        &mut self,
        ctx: &BatchContext<'_>,
        meta: &RecordMeta,
        sel: &[usize],
        anns: Option<&[AnnotationRow]>,
        frames: Range<i64>,
        meta_row: Option<u32>,
    ) {
        match self.record.last_mut() {
            Some((name, n)) if *name == meta.name => *n += 1,
            _ => self.record.push((meta.name.clone(), 1)),
        }
        self.rows += 1;
        if ctx.opts.dtype.is_digital() {
            let chans = sel.iter().map(|&j| &meta.channels[j]);
            self.gain
                .push_row(chans.clone().map(|c| c.gain.unwrap_or(f64::NAN)));
            self.baseline
                .push_row(chans.map(|c| c.baseline.unwrap_or(0)));
        }
        if ctx.opts.annotations.is_some() {
            match anns {
                Some(anns) => {
                    let lo = anns.partition_point(|a| a.sample < frames.start);
                    let hi = anns.partition_point(|a| a.sample < frames.end);
                    for a in &anns[lo..hi] {
                        self.anns.push(a);
                    }
                    self.ann_valid.push(true);
                }
                None => self.ann_valid.push(false),
            }
            self.ann_offsets.push(self.anns.len() as i32);
        }
        self.meta_rows.push(meta_row);
    }

    /// The row group's batch, and the signal column held back as digital samples (then
    /// missing from the batch), if it was.
    fn finish(
        self,
        ctx: &BatchContext<'_>,
    ) -> Result<Option<(RecordBatch, Option<DigitalColumn>)>, ConvertError> {
        let rows = self.rows;
        if rows == 0 {
            return Ok(None);
        }
        let mut held_back = None;
        let item = |dt: DataType| Arc::new(Field::new("item", dt, true));
        let value_type = schema::value_type(ctx.opts.dtype);
        let mut names =
            StringBuilder::with_capacity(rows, self.record.iter().map(|(n, k)| n.len() * k).sum());
        for (name, n) in &self.record {
            for _ in 0..*n {
                names.append_value(name);
            }
        }
        let mut cols: Vec<ArrayRef> = vec![Arc::new(names.finish())];
        match ctx.opts.layout {
            Layout::Record => {
                cols.push(Arc::new(Float64Array::from(self.fs)));
                cols.push(Arc::new(Int64Array::from(self.n_samples)));
                cols.push(self.sig_name.into_strings()?);
                cols.push(self.units.into_strings()?);
                match self.values {
                    Values::Digital(signal) => {
                        held_back = Some(DigitalColumn {
                            signal,
                            inner_offsets: self.inner_offsets,
                            outer_offsets: self.outer_offsets,
                        })
                    }
                    values => cols.push(signal_lists(
                        value_type,
                        values.into_array(),
                        self.inner_offsets,
                        self.outer_offsets,
                    )?),
                }
            }
            Layout::Samples => {
                cols.push(Arc::new(Int64Array::from(self.sample)));
                cols.push(Arc::new(Float64Array::from(self.time)));
                for c in self.columns {
                    cols.push(c.into_array());
                }
            }
            Layout::Windows => {
                cols.push(Arc::new(Int64Array::from(self.start)));
                let size = (ctx.shape.channel_names.len() * ctx.shape.window_samples()) as i32;
                let tensor = FixedSizeListArray::try_new(
                    item(value_type),
                    size,
                    self.values.into_array(),
                    None,
                )?;
                cols.push(Arc::new(tensor));
            }
        }
        if ctx.opts.dtype.is_digital() {
            let FlatList { values, offsets } = self.gain;
            cols.push(list_array(Arc::new(Float64Array::from(values)), offsets)?);
            let FlatList { values, offsets } = self.baseline;
            cols.push(list_array(Arc::new(Int64Array::from(values)), offsets)?);
        }
        if ctx.opts.layout == Layout::Record {
            cols.push(Arc::new(StringArray::from(self.base_date)));
            cols.push(Arc::new(StringArray::from(self.base_time)));
            cols.push(self.comments.into_strings()?);
        }
        if ctx.opts.annotations.is_some() {
            let structs = self.anns.finish()?;
            let list = ListArray::try_new(
                item(DataType::Struct(schema::annotation_fields())),
                OffsetBuffer::new(ScalarBuffer::from(self.ann_offsets)),
                Arc::new(structs),
                Some(self.ann_valid.into()),
            )?;
            cols.push(Arc::new(list));
        }
        if !ctx.extra.is_empty() {
            cols.extend(ctx.extra.take(&self.meta_rows)?);
        }
        let schema = match &held_back {
            None => Arc::clone(&ctx.schema),
            Some(_) => {
                let mut fields: Vec<_> = ctx.schema.fields().iter().cloned().collect();
                fields.retain(|f| f.name() != "signal");
                Arc::new(arrow_schema::Schema::new_with_metadata(
                    fields,
                    ctx.schema.metadata().clone(),
                ))
            }
        };
        Ok(Some((RecordBatch::try_new(schema, cols)?, held_back)))
    }
}

/// The annotation fields as column builders, one value per annotation, in
/// [`schema::annotation_fields`] order (the nested list column and the flat
/// `--annotations-table` share them).
#[derive(Default)]
pub struct AnnotationColumns {
    sample: Vec<i64>,
    symbol: StringBuilder,
    subtype: Vec<i16>,
    chan: Vec<i16>,
    num: Vec<i16>,
    aux: StringBuilder,
    time: Vec<f64>,
    duration: Vec<Option<f64>>,
}

impl AnnotationColumns {
    /// Appends one annotation.
    pub fn push(&mut self, a: &AnnotationRow) {
        self.sample.push(a.sample);
        self.symbol.append_value(&a.symbol);
        self.subtype.push(a.subtype);
        self.chan.push(a.chan);
        self.num.push(a.num);
        self.aux.append_value(&a.aux);
        self.time.push(a.time);
        self.duration.push(a.duration);
    }

    /// Annotations appended so far.
    pub fn len(&self) -> usize {
        self.sample.len()
    }

    /// Whether none were appended.
    pub fn is_empty(&self) -> bool {
        self.sample.is_empty()
    }

    /// The columns, in [`schema::annotation_fields`] order.
    pub fn finish_columns(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(Int64Array::from(self.sample)),
            Arc::new(self.symbol.finish()),
            Arc::new(Int16Array::from(self.subtype)),
            Arc::new(Int16Array::from(self.chan)),
            Arc::new(Int16Array::from(self.num)),
            Arc::new(self.aux.finish()),
            Arc::new(Float64Array::from(self.time)),
            Arc::new(Float64Array::from(self.duration)),
        ]
    }

    /// The annotations as one struct array.
    pub fn finish(self) -> Result<StructArray, ConvertError> {
        Ok(StructArray::try_new(
            schema::annotation_fields(),
            self.finish_columns(),
            None,
        )?)
    }
}

/// Decodes the pieces of `group` and assembles its batch.
pub fn build_row_group(
    ctx: &BatchContext<'_>,
    group: &RowGroupPlan,
) -> Result<BuiltRowGroup, ConvertError> {
    let mut acc = Acc::new(ctx);
    reserve(ctx, &mut acc, group);
    let mut out = BuiltRowGroup {
        batch: None,
        signal: None,
        records: Vec::new(),
        failures: Vec::new(),
        digests: Vec::new(),
    };
    for piece in &group.pieces {
        let meta = &ctx.metas[piece.rec];
        // `add_piece` does every fallible read before it appends anything, so a record
        // that fails leaves no rows behind.
        match add_piece(ctx, &mut acc, meta, piece) {
            Ok(()) => {
                out.records.push(piece.rec);
                if piece.rows.start == 0 {
                    match ctx.opener.input_digests(&meta.name) {
                        Ok(d) => out.digests.extend(d),
                        Err(e) => {
                            tracing::warn!(record = %meta.name, error = %e, "cannot hash inputs")
                        }
                    }
                }
            }
            Err(e) => out.failures.push((piece.rec, e)),
        }
    }
    if let Some((batch, signal)) = acc.finish(ctx)? {
        out.batch = Some(batch);
        out.signal = signal;
    }
    Ok(out)
}

/// Sizes the value buffers for the whole group up front (from the headers), so they
/// are allocated once instead of grown by doubling and copying.
fn reserve(ctx: &BatchContext<'_>, acc: &mut Acc, group: &RowGroupPlan) {
    let mut total = 0usize;
    let mut rows = 0usize;
    for p in &group.pieces {
        let meta = &ctx.metas[p.rec];
        let n = (p.rows.end - p.rows.start) as usize;
        rows += n;
        if let (Layout::Record, Some(sel)) = (ctx.opts.layout, ctx.shape.selections.get(&meta.name))
        {
            let spf: usize = sel
                .iter()
                .map(|&j| meta.channels[j].samps_per_frame.max(1) as usize)
                .sum();
            total += meta.n_frames as usize * spf;
        }
    }
    match ctx.opts.layout {
        Layout::Record => acc.values.reserve(total),
        Layout::Windows => acc
            .values
            .reserve(rows * ctx.shape.channel_names.len() * ctx.shape.window_samples()),
        Layout::Samples => acc.columns.iter_mut().for_each(|c| c.reserve(rows)),
    }
}

/// Reads and appends the rows of one piece.
fn add_piece(
    ctx: &BatchContext<'_>,
    acc: &mut Acc,
    meta: &RecordMeta,
    piece: &Piece,
) -> Result<(), ConvertError> {
    let sel = ctx
        .shape
        .selections
        .get(&meta.name)
        .ok_or_else(|| ConvertError::unsuitable(&meta.name, "no signal selection"))?;
    let anns = match &ctx.opts.annotations {
        Some(ext) => ctx.opener.annotations(&meta.name, ext)?,
        None => None,
    };
    let anns = anns.map(|mut a| {
        a.sort_by_key(|x| x.sample);
        a
    });
    let meta_row = ctx.extra.row_of(&meta.name);
    let mut src = ctx.opener.open(&meta.name)?;
    match ctx.opts.layout {
        Layout::Record => {
            let digital = matches!(acc.values, Values::Digital(_));
            let chans = read_channels(
                src.as_mut(),
                meta,
                sel,
                0..meta.n_frames,
                ctx.opts.dtype,
                false,
                digital,
            )?;
            let new_values: usize = (0..sel.len()).map(|k| chans.len(k)).sum();
            offset(acc.values.len() + new_values, &meta.name)?;
            acc.fs.push(meta.fs);
            acc.n_samples.push(meta.n_frames as i64);
            acc.sig_name
                .push_row(sel.iter().map(|&j| meta.channels[j].name.clone()));
            acc.units
                .push_row(sel.iter().map(|&j| meta.channels[j].units.clone()));
            acc.values.push_channels(chans, &mut acc.inner_offsets);
            acc.outer_offsets.push((acc.inner_offsets.len() - 1) as i32);
            acc.base_date.push(meta.base_date.clone());
            acc.base_time.push(meta.base_time.clone());
            acc.comments.push_row(meta.comments.iter().cloned());
            acc.push_common(ctx, meta, sel, anns.as_deref(), 0..i64::MAX, meta_row);
        }
        Layout::Samples => {
            let frames = piece.rows.clone();
            let chans = read_channels(
                src.as_mut(),
                meta,
                sel,
                frames.clone(),
                ctx.opts.dtype,
                true,
                false,
            )?;
            let n = (frames.end - frames.start) as usize;
            for (k, col) in acc.columns.iter_mut().enumerate() {
                col.extend(&chans, k, 0..n);
            }
            for f in frames {
                acc.sample.push(f as i64);
                acc.time.push(f as f64 / meta.fs);
                acc.push_common(
                    ctx,
                    meta,
                    sel,
                    anns.as_deref(),
                    f as i64..f as i64 + 1,
                    meta_row,
                );
            }
        }
        Layout::Windows => {
            let (len, stride) = (ctx.shape.window_len, ctx.shape.window_stride);
            let first = piece.rows.start * stride;
            let last_end = ((piece.rows.end - 1) * stride + len).min(meta.n_frames);
            let chans = read_channels(
                src.as_mut(),
                meta,
                sel,
                first..last_end,
                ctx.opts.dtype,
                true,
                false,
            )?;
            for w in piece.rows.clone() {
                let s = w * stride;
                let avail = (s + len).min(meta.n_frames) - s;
                let lo = (s - first) as usize;
                for k in 0..sel.len() {
                    acc.values.extend(&chans, k, lo..lo + avail as usize);
                    acc.values.pad((len - avail) as usize);
                }
                acc.start.push(s as i64);
                acc.push_common(
                    ctx,
                    meta,
                    sel,
                    anns.as_deref(),
                    s as i64..(s + len) as i64,
                    meta_row,
                );
            }
        }
    }
    Ok(())
}

/// Reads frames `frames` of the selected channels in the output's sample type. With
/// `smooth`, signals with several samples per frame are reduced to one value per frame
/// by WFDB C's rule ([`crate::wfdb::frame`]: the mean rounded half up, invalid when any
/// sample is), computed on the digital samples for every dtype, so f32/f16 hold the
/// physical value of the digital frame value. With `digital` (f32 output, no
/// smoothing), returns digital samples and scales where the source has them.
fn read_channels(
    src: &mut dyn RecordSource,
    meta: &RecordMeta,
    sel: &[usize],
    frames: Range<u64>,
    dtype: Dtype,
    smooth: bool,
    digital: bool,
) -> Result<Chans, ConvertError> {
    if frames.is_empty() {
        return Ok(match dtype {
            Dtype::I16 | Dtype::I32 => Chans::Int(vec![Vec::new(); sel.len()]),
            _ => Chans::F32(vec![Vec::new(); sel.len()]),
        });
    }
    // The reader promises `frames * samps_per_frame` values per signal; a short answer
    // would make the slicing below panic, so it is an error for this record instead.
    let n = (frames.end - frames.start) as usize;
    let check = |lens: Vec<usize>| -> Result<(), ConvertError> {
        let ok = lens.len() == meta.channels.len()
            && lens
                .iter()
                .zip(&meta.channels)
                .all(|(&l, c)| l == n * c.samps_per_frame.max(1) as usize);
        if ok {
            Ok(())
        } else {
            Err(ConvertError::unsuitable(
                &meta.name,
                "the reader returned fewer samples than the header promises",
            ))
        }
    };
    let spf = |j: usize| meta.channels[j].samps_per_frame.max(1) as usize;
    let smoothing = smooth && sel.iter().any(|&j| spf(j) > 1);
    // A signal selected twice (`--signals II,II`) needs its data twice.
    let take = |all: &mut Vec<Vec<i32>>, j: usize| {
        if sel.iter().filter(|&&x| x == j).count() > 1 {
            all[j].clone()
        } else {
            std::mem::take(&mut all[j])
        }
    };
    if smoothing
        && matches!(dtype, Dtype::F32 | Dtype::F16)
        && let Some(mut all) = src.read_frame_means_f32(frames.clone())?
    {
        if all.len() != meta.channels.len() || all.iter().any(|v| v.len() != n) {
            return Err(ConvertError::unsuitable(
                &meta.name,
                "the reader returned fewer frames than the header promises",
            ));
        }
        let mut out = Vec::with_capacity(sel.len());
        for &j in sel {
            out.push(if sel.iter().filter(|&&x| x == j).count() > 1 {
                all[j].clone()
            } else {
                std::mem::take(&mut all[j])
            });
        }
        return Ok(Chans::F32(out));
    }
    if ((digital && dtype == Dtype::F32 && !smooth) || smoothing)
        && let Some((mut all, scales)) = src.read_digital_scaled(frames.clone())?
    {
        check(all.iter().map(Vec::len).collect())?;
        if scales.len() != all.len() {
            return Err(ConvertError::unsuitable(
                &meta.name,
                "the reader returned a scale per signal it did not",
            ));
        }
        let mut out = Vec::with_capacity(sel.len());
        let mut out_scales = Vec::with_capacity(sel.len());
        for &j in sel {
            let v = take(&mut all, j);
            let scale = scales[j];
            out.push(if smooth && spf(j) > 1 {
                smooth_frames(&v, spf(j), FrameMean::default(), |i| {
                    Some(v[i]) == scale.invalid
                })
            } else {
                v
            });
            out_scales.push(scale);
        }
        return Ok(match dtype {
            Dtype::F32 if !smooth => Chans::Digital(out, out_scales),
            Dtype::F32 | Dtype::F16 => Chans::F32(
                out.iter()
                    .zip(&out_scales)
                    .map(|(v, s)| v.iter().map(|&d| s.to_f32(d)).collect())
                    .collect(),
            ),
            Dtype::I16 | Dtype::I32 => Chans::Int(narrow(meta, sel, out, dtype)?),
        });
    }
    // Sources without digital frame means (in-memory test records): for f32/f16 the
    // frame mean of oversampled signals is the mean of the physical values (NaN when
    // any is NaN). Multi-segment digital output: the invalid samples are found as the
    // NaNs of the physical values.
    match dtype {
        Dtype::F32 | Dtype::F16 => {
            let mut all = src.read_physical_f32(frames)?;
            check(all.iter().map(Vec::len).collect())?;
            let mut out = Vec::with_capacity(sel.len());
            for &j in sel {
                let v = if sel.iter().filter(|&&x| x == j).count() > 1 {
                    all[j].clone()
                } else {
                    std::mem::take(&mut all[j])
                };
                out.push(if smooth && spf(j) > 1 {
                    v.chunks(spf(j))
                        .map(|c| c.iter().sum::<f32>() / c.len() as f32)
                        .collect()
                } else {
                    v
                });
            }
            Ok(Chans::F32(out))
        }
        Dtype::I16 | Dtype::I32 => {
            let mut all = src.read_digital(frames.clone())?;
            check(all.iter().map(Vec::len).collect())?;
            // Invalid samples (gaps, missing signals, the invalid value) are NaN in the
            // physical values: those mark the frames that stay invalid.
            let physical = if smoothing {
                let p = src.read_physical_f32(frames)?;
                check(p.iter().map(Vec::len).collect())?;
                p
            } else {
                Vec::new()
            };
            let mut out = Vec::with_capacity(sel.len());
            for &j in sel {
                let v = take(&mut all, j);
                out.push(if smooth && spf(j) > 1 {
                    smooth_frames(&v, spf(j), FrameMean::default(), |i| {
                        physical[j][i].is_nan()
                    })
                } else {
                    v
                });
            }
            Ok(Chans::Int(narrow(meta, sel, out, dtype)?))
        }
    }
}

/// Checks that digital values fit the output type (int16 cannot hold formats 24, 32
/// and 524, nor their invalid values).
fn narrow(
    meta: &RecordMeta,
    sel: &[usize],
    chans: Vec<Vec<i32>>,
    dtype: Dtype,
) -> Result<Vec<Vec<i32>>, ConvertError> {
    if dtype == Dtype::I16 {
        for (v, &j) in chans.iter().zip(sel) {
            if v.iter().any(|&x| i16::try_from(x).is_err()) {
                return Err(ConvertError::unsuitable(
                    &meta.name,
                    format!(
                        "signal {:?} has digital values outside int16; use --dtype i32",
                        meta.channels[j].name
                    ),
                ));
            }
        }
    }
    Ok(chans)
}

fn offset(n: usize, name: &str) -> Result<i32, ConvertError> {
    i32::try_from(n).map_err(|_| {
        ConvertError::unsuitable(
            name,
            "more than 2^31 values in one row group; use --layout windows or samples",
        )
    })
}

/// A list column kept as flat values plus offsets, so pieces append with two memcpys.
struct FlatList<T> {
    values: Vec<T>,
    offsets: Vec<i32>,
}

impl<T> Default for FlatList<T> {
    fn default() -> Self {
        FlatList {
            values: Vec::new(),
            offsets: vec![0],
        }
    }
}

impl<T> FlatList<T> {
    fn push_row(&mut self, row: impl IntoIterator<Item = T>) {
        self.values.extend(row);
        self.offsets.push(self.values.len() as i32);
    }
}

impl FlatList<String> {
    fn into_strings(self) -> Result<ArrayRef, ConvertError> {
        let values = Arc::new(StringArray::from_iter_values(&self.values));
        list_array(values, self.offsets)
    }
}

/// A non-null `list<item>` array from values and offsets.
fn list_array(values: ArrayRef, offsets: Vec<i32>) -> Result<ArrayRef, ConvertError> {
    let field = Arc::new(Field::new("item", values.data_type().clone(), true));
    Ok(Arc::new(ListArray::try_new(
        field,
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        values,
        None,
    )?))
}
