//! The flat annotation table (`--annotations-table PATH`, issue 14 item 1): one row per
//! annotation, keyed by `record`, with the same fields as the nested `annotations`
//! column ([`super::schema::annotation_fields`]), for SQL and dataframes
//! (`SELECT symbol, count(*) FROM 'ann.parquet' GROUP BY symbol`).
//!
//! Written after the signal output, for the records that output holds, in its order;
//! a record without the annotation file has no rows. The file is written under a
//! temporary name and renamed when complete, like every physio output.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::ConvertError;
use super::batch::AnnotationColumns;
use super::schema::annotation_fields;
use super::source::SourceOpener;

/// Annotations buffered per Arrow batch (a few MB of columns).
const BATCH_ROWS: usize = 64 * 1024;

/// The table's schema: `record` (utf8), then the annotation fields.
pub fn table_schema() -> SchemaRef {
    let mut fields = vec![Field::new("record", DataType::Utf8, false)];
    fields.extend(annotation_fields().iter().map(|f| f.as_ref().clone()));
    Arc::new(Schema::new(fields))
}

/// Writes the annotations of `records` (annotator `ext`) to the Parquet file `path`,
/// returning the number of rows. A record whose annotation file cannot be read fails
/// the whole table (its records were converted, so the file was readable moments ago).
pub fn write_annotation_table(
    path: &Path,
    ext: &str,
    records: &[String],
    opener: &dyn SourceOpener,
) -> Result<u64, ConvertError> {
    let schema = table_schema();
    let tmp = crate::fsutil::temp_in(path).map_err(|e| fs_error(path, e))?;
    let parquet_err = |source| ConvertError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let file = tmp
        .as_file()
        .try_clone()
        .map_err(|e| ConvertError::io(tmp.path(), e))?;
    let mut writer =
        ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).map_err(parquet_err)?;
    let mut names = StringBuilder::new();
    let mut cols = AnnotationColumns::default();
    let mut rows = 0u64;
    let flush = |names: &mut StringBuilder,
                 cols: &mut AnnotationColumns,
                 writer: &mut ArrowWriter<std::fs::File>|
     -> Result<(), ConvertError> {
        if cols.is_empty() {
            return Ok(());
        }
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(names.finish())];
        arrays.extend(std::mem::take(cols).finish_columns());
        let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
        writer.write(&batch).map_err(parquet_err)
    };
    for name in records {
        let Some(mut anns) = opener.annotations(name, ext)? else {
            continue;
        };
        anns.sort_by_key(|a| a.sample);
        for a in &anns {
            names.append_value(name);
            cols.push(a);
            rows += 1;
            if cols.len() >= BATCH_ROWS {
                flush(&mut names, &mut cols, &mut writer)?;
            }
        }
    }
    flush(&mut names, &mut cols, &mut writer)?;
    writer.close().map_err(parquet_err)?;
    crate::fsutil::persist(tmp, path).map_err(|e| fs_error(path, e))?;
    Ok(rows)
}

/// An `fsutil` error as a [`ConvertError`] naming the file.
fn fs_error(path: &Path, e: crate::Error) -> ConvertError {
    match e {
        crate::Error::Io { path, source } => ConvertError::Io { path, source },
        other => ConvertError::io(path, std::io::Error::other(other.to_string())),
    }
}
