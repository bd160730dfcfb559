//! The Arrow schema of each `--layout` (the contract's column names and types), and the
//! Parquet leaf paths of the signal value columns that the writer tunes.
//!
//! `windows` marks its `signal` column as Arrow's canonical fixed-shape tensor extension
//! by hand (`ARROW:extension:name` = `arrow.fixed_shape_tensor`, `ARROW:extension:metadata`
//! = `{"shape":[C,S]}`) on a `FixedSizeList` with nullable items: that is what pyarrow
//! writes and accepts (arrow-rs's typed extension writes metadata pyarrow rejects).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema};

use super::metadata::ExtraColumns;
use super::plan::Shape;
use super::{ConvertOptions, Dtype, Layout};

/// Arrow type of one signal value for `dtype`.
pub fn value_type(dtype: Dtype) -> DataType {
    match dtype {
        Dtype::F32 => DataType::Float32,
        Dtype::F16 => DataType::Float16,
        Dtype::I16 => DataType::Int16,
        Dtype::I32 => DataType::Int32,
    }
}

/// `list<item>` with a nullable item field named `item` (pyarrow's convention).
pub fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

/// `--layout record`'s `signal`: `list<list<value>>` whose lists and values are never
/// null (an invalid sample is NaN, not null), so Parquet needs fewer definition levels.
pub fn signal_type(value: DataType) -> DataType {
    let inner = DataType::List(Arc::new(Field::new("item", value, false)));
    DataType::List(Arc::new(Field::new("item", inner, false)))
}

/// The type of the `annotations` column: one list of annotation structs per row.
pub fn annotation_type() -> DataType {
    list_of(DataType::Struct(annotation_fields()))
}

/// The fields of one annotation, in this order (every field `rdann` shows, plus the
/// EDF+ duration; `docs/parquet.md`). The flat `--annotations-table` has the same
/// columns after `record`.
pub fn annotation_fields() -> Fields {
    Fields::from(vec![
        Field::new("sample", DataType::Int64, false),
        Field::new("symbol", DataType::Utf8, false),
        Field::new("subtype", DataType::Int16, false),
        Field::new("chan", DataType::Int16, false),
        Field::new("num", DataType::Int16, false),
        Field::new("aux", DataType::Utf8, false),
        Field::new("time", DataType::Float64, false),
        Field::new("duration", DataType::Float64, true),
    ])
}

/// The `signal` field of `--layout windows`: a `[channels, samples]` fixed-shape tensor.
pub fn tensor_field(dtype: Dtype, channels: usize, samples: usize) -> Field {
    let size = (channels * samples) as i32;
    let storage =
        DataType::FixedSizeList(Arc::new(Field::new("item", value_type(dtype), true)), size);
    let mut meta = HashMap::new();
    meta.insert(
        "ARROW:extension:name".to_string(),
        "arrow.fixed_shape_tensor".to_string(),
    );
    meta.insert(
        "ARROW:extension:metadata".to_string(),
        format!("{{\"shape\":[{channels},{samples}]}}"),
    );
    Field::new("signal", storage, false).with_metadata(meta)
}

/// Builds the output schema for `opts`, the decided `shape` and the joined columns.
pub fn build(opts: &ConvertOptions, shape: &Shape, extra: &ExtraColumns) -> Schema {
    let mut fields: Vec<Field> = vec![Field::new("record", DataType::Utf8, false)];
    let value = value_type(opts.dtype);
    match opts.layout {
        Layout::Record => {
            fields.push(Field::new("fs", DataType::Float64, false));
            fields.push(Field::new("n_samples", DataType::Int64, false));
            fields.push(Field::new("sig_name", list_of(DataType::Utf8), false));
            fields.push(Field::new("units", list_of(DataType::Utf8), false));
            fields.push(Field::new("signal", signal_type(value), false));
        }
        Layout::Samples => {
            fields.push(Field::new("sample", DataType::Int64, false));
            fields.push(Field::new("time", DataType::Float64, false));
            for name in &shape.column_names {
                fields.push(Field::new(name, value.clone(), true));
            }
        }
        Layout::Windows => {
            fields.push(Field::new("start", DataType::Int64, false));
            fields.push(tensor_field(
                opts.dtype,
                shape.channel_names.len(),
                shape.window_samples(),
            ));
        }
    }
    if opts.dtype.is_digital() {
        fields.push(Field::new("gain", list_of(DataType::Float64), false));
        fields.push(Field::new("baseline", list_of(DataType::Int64), false));
    }
    if opts.layout == Layout::Record {
        fields.push(Field::new("base_date", DataType::Utf8, true));
        fields.push(Field::new("base_time", DataType::Utf8, true));
        fields.push(Field::new("comments", list_of(DataType::Utf8), false));
    }
    if opts.annotations.is_some() {
        fields.push(Field::new("annotations", annotation_type(), true));
    }
    fields.extend(extra.fields().iter().cloned());
    Schema::new(fields)
}

/// Parquet leaf paths (one part per nesting level, as `ColumnPath::new` takes them) of
/// the columns holding signal values, which get the signal encoding; everything else
/// keeps the defaults. Parts are kept apart because signal names may contain `.`.
pub fn signal_leaf_paths(opts: &ConvertOptions, shape: &Shape) -> Vec<Vec<String>> {
    let parts = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match opts.layout {
        Layout::Record => vec![parts(&["signal", "list", "item", "list", "item"])],
        Layout::Windows => vec![parts(&["signal", "list", "item"])],
        Layout::Samples => shape.column_names.iter().map(|c| vec![c.clone()]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_field_has_pyarrow_extension_metadata() {
        let f = tensor_field(Dtype::F32, 12, 500);
        assert_eq!(
            f.metadata().get("ARROW:extension:name").map(String::as_str),
            Some("arrow.fixed_shape_tensor")
        );
        assert_eq!(
            f.metadata()
                .get("ARROW:extension:metadata")
                .map(String::as_str),
            Some("{\"shape\":[12,500]}")
        );
        match f.data_type() {
            DataType::FixedSizeList(item, n) => {
                assert_eq!(*n, 6000);
                assert!(item.is_nullable());
                assert_eq!(item.data_type(), &DataType::Float32);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn value_types_per_dtype() {
        assert_eq!(value_type(Dtype::F32), DataType::Float32);
        assert_eq!(value_type(Dtype::F16), DataType::Float16);
        assert_eq!(value_type(Dtype::I16), DataType::Int16);
        assert_eq!(value_type(Dtype::I32), DataType::Int32);
    }
}
