//! Labels and metadata that training needs, joined into the same rows as the signals:
//! `--metadata CSV --key COLUMN` (any CSV, joined on the record name) and
//! `--preset ptb-xl` (PTB-XL's `ptbxl_database.csv` joined on `filename_lr`/`filename_hr`,
//! with `scp_codes` parsed into a map and diagnostic classes from `scp_statements.csv`).
//!
//! The CSV is loaded once into whole-table Arrow arrays; each row group then `take`s the
//! rows of its records, so joining costs one index lookup per output row.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, ListBuilder, MapBuilder, StringBuilder};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, StringArray, UInt32Array};
use arrow_schema::{DataType, Field};

use super::{ConvertError, ConvertOptions};

/// `--metadata CSV --key COLUMN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataSpec {
    /// The CSV file.
    pub path: PathBuf,
    /// The column holding record names.
    pub key: String,
}

/// Dataset presets (`--preset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// PTB-XL (PhysioNet `ptb-xl`): `ptbxl_database.csv` + `scp_statements.csv`.
    PtbXl,
}

impl Preset {
    /// The preset's name on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Preset::PtbXl => "ptb-xl",
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = ConvertError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ptb-xl" | "ptbxl" => Ok(Preset::PtbXl),
            _ => Err(ConvertError::Usage(format!(
                "unknown preset {s:?} (known: ptb-xl)"
            ))),
        }
    }
}

/// Columns joined from CSV files: whole-table arrays plus a record-name index.
#[derive(Debug, Default)]
pub struct ExtraColumns {
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
    /// Record name -> row in `columns`.
    index: HashMap<String, u32>,
}

impl ExtraColumns {
    /// Loads `--metadata` and/or `--preset` tables for the dataset at `root`. Column names
    /// that clash with `reserved` (the layout's own columns) get a `meta_` prefix.
    pub fn load(
        opts: &ConvertOptions,
        root: &Path,
        reserved: &[String],
    ) -> Result<ExtraColumns, ConvertError> {
        let mut out = ExtraColumns::default();
        if let Some(Preset::PtbXl) = opts.preset {
            out.merge(ptbxl(root)?, reserved);
        }
        if let Some(spec) = &opts.metadata {
            let table = read_csv(&spec.path)?;
            let key = table
                .headers
                .iter()
                .position(|h| h == &spec.key)
                .ok_or_else(|| ConvertError::Metadata {
                    path: spec.path.clone(),
                    reason: format!(
                        "no column {:?} (columns: {})",
                        spec.key,
                        table.headers.join(", ")
                    ),
                })?;
            let keys: Vec<Vec<String>> = table.rows.iter().map(|r| vec![r[key].clone()]).collect();
            let (fields, columns) = typed_columns(&table, &[]);
            out.merge(
                Joined {
                    fields,
                    columns,
                    keys,
                    by_basename: true,
                },
                reserved,
            );
        }
        Ok(out)
    }

    fn merge(&mut self, joined: Joined, reserved: &[String]) {
        // Several sources (preset + --metadata) each keep their own row numbering; with
        // one source (the common case) this is just the table itself.
        if self.fields.is_empty() {
            let mut index = HashMap::new();
            for (row, keys) in joined.keys.iter().enumerate() {
                for k in keys {
                    if k.is_empty() {
                        continue;
                    }
                    index.entry(k.clone()).or_insert(row as u32);
                    if joined.by_basename
                        && let Some((_, base)) = k.rsplit_once('/')
                    {
                        index.entry(base.to_string()).or_insert(row as u32);
                    }
                }
            }
            self.index = index;
            self.fields = rename(joined.fields, reserved, &[]);
            self.columns = joined.columns;
            return;
        }
        // Re-index the second table onto the first's rows (by record key).
        let mut second: HashMap<String, u32> = HashMap::new();
        for (row, keys) in joined.keys.iter().enumerate() {
            for k in keys {
                second.entry(k.clone()).or_insert(row as u32);
            }
        }
        let n_rows = self.columns.first().map_or(0, |c| c.len());
        let mut take_idx: Vec<Option<u32>> = vec![None; n_rows];
        for (name, &row) in &self.index {
            if let Some(&r2) = second.get(name) {
                take_idx[row as usize] = Some(r2);
            }
        }
        let idx = UInt32Array::from(take_idx);
        let taken: Vec<ArrayRef> = joined
            .columns
            .iter()
            .filter_map(|c| arrow_select::take::take(c.as_ref(), &idx, None).ok())
            .collect();
        let existing: Vec<String> = self.fields.iter().map(|f| f.name().clone()).collect();
        self.fields
            .extend(rename(joined.fields, reserved, &existing));
        self.columns.extend(taken);
    }

    /// The joined columns' fields (all nullable: a record may have no CSV row).
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// True when there is nothing to join.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The CSV row of a record: by its full name, else by its last path component.
    pub fn row_of(&self, record: &str) -> Option<u32> {
        self.index.get(record).copied().or_else(|| {
            record
                .rsplit_once('/')
                .and_then(|(_, base)| self.index.get(base).copied())
        })
    }

    /// The joined columns for output rows whose CSV rows are `rows`.
    pub fn take(&self, rows: &[Option<u32>]) -> Result<Vec<ArrayRef>, ConvertError> {
        let idx = UInt32Array::from(rows.to_vec());
        self.columns
            .iter()
            .map(|c| arrow_select::take::take(c.as_ref(), &idx, None).map_err(ConvertError::from))
            .collect()
    }
}

fn rename(fields: Vec<Field>, reserved: &[String], existing: &[String]) -> Vec<Field> {
    fields
        .into_iter()
        .map(|f| {
            if reserved.iter().chain(existing).any(|r| r == f.name()) {
                let name = format!("meta_{}", f.name());
                f.with_name(name)
            } else {
                f
            }
        })
        .collect()
}

/// A table to join: typed columns and, per row, the record names it matches.
struct Joined {
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
    keys: Vec<Vec<String>>,
    by_basename: bool,
}

/// A CSV file as strings.
struct CsvTable {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn read_csv(path: &Path) -> Result<CsvTable, ConvertError> {
    let bad = |reason: String| ConvertError::Metadata {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .map_err(|e| bad(e.to_string()))?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| bad(e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| bad(e.to_string()))?;
        rows.push(rec.iter().map(str::to_string).collect());
    }
    Ok(CsvTable { headers, rows })
}

/// Columns typed by what every non-empty value parses as: int64, else float64, else
/// utf8; empty cells are null. Columns named in `skip` are left out.
fn typed_columns(table: &CsvTable, skip: &[&str]) -> (Vec<Field>, Vec<ArrayRef>) {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (j, name) in table.headers.iter().enumerate() {
        if skip.contains(&name.as_str()) {
            continue;
        }
        let cells: Vec<Option<&str>> = table
            .rows
            .iter()
            .map(|r| r.get(j).map(String::as_str).filter(|s| !s.is_empty()))
            .collect();
        let present = || cells.iter().flatten();
        let (dtype, array): (DataType, ArrayRef) = if present().all(|s| s.parse::<i64>().is_ok()) {
            let a: Int64Array = cells
                .iter()
                .map(|c| c.and_then(|s| s.parse().ok()))
                .collect();
            (DataType::Int64, Arc::new(a))
        } else if present().all(|s| s.parse::<f64>().is_ok()) {
            let a: Float64Array = cells
                .iter()
                .map(|c| c.and_then(|s| s.parse().ok()))
                .collect();
            (DataType::Float64, Arc::new(a))
        } else {
            let a: StringArray = cells.iter().copied().collect();
            (DataType::Utf8, Arc::new(a))
        };
        fields.push(Field::new(name, dtype, true));
        columns.push(array);
    }
    (fields, columns)
}

/// PTB-XL: `ptbxl_database.csv` joined on `filename_lr` and `filename_hr` (record names
/// such as `records100/00000/00001_lr`), `scp_codes` (a Python dict literal,
/// `{'NORM': 100.0, 'SR': 0.0}`) as `map<utf8, float64>`, and from `scp_statements.csv`
/// the `diagnostic_superclass` / `diagnostic_subclass` lists of the codes whose
/// `diagnostic` flag is 1, as in PTB-XL's own example code.
fn ptbxl(root: &Path) -> Result<Joined, ConvertError> {
    let db_path = root.join("ptbxl_database.csv");
    let db = read_csv(&db_path)?;
    let col = |name: &str| {
        db.headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| ConvertError::Metadata {
                path: db_path.clone(),
                reason: format!("no column {name:?}; is this PTB-XL's ptbxl_database.csv?"),
            })
    };
    let (lr, hr, scp) = (col("filename_lr")?, col("filename_hr")?, col("scp_codes")?);
    let keys: Vec<Vec<String>> = db
        .rows
        .iter()
        .map(|r| vec![r[lr].clone(), r[hr].clone()])
        .collect();
    let (mut fields, mut columns) = typed_columns(&db, &["scp_codes"]);

    let statements_path = root.join("scp_statements.csv");
    let classes = if statements_path.is_file() {
        diagnostic_classes(&statements_path)?
    } else {
        HashMap::new()
    };

    let mut codes = MapBuilder::new(None, StringBuilder::new(), Float64Builder::new());
    let mut superclass = ListBuilder::new(StringBuilder::new());
    let mut subclass = ListBuilder::new(StringBuilder::new());
    for (i, r) in db.rows.iter().enumerate() {
        let parsed = parse_scp_codes(&r[scp]).ok_or_else(|| ConvertError::Metadata {
            path: db_path.clone(),
            reason: format!("row {}: cannot parse scp_codes {:?}", i + 2, r[scp]),
        })?;
        let mut sup = BTreeSet::new();
        let mut sub = BTreeSet::new();
        for (code, likelihood) in &parsed {
            codes.keys().append_value(code);
            codes.values().append_value(*likelihood);
            if let Some((c_sup, c_sub)) = classes.get(code) {
                sup.insert(c_sup.clone());
                sub.insert(c_sub.clone());
            }
        }
        codes.append(true).map_err(ConvertError::from)?;
        for s in sup {
            superclass.values().append_value(s);
        }
        superclass.append(true);
        for s in sub {
            subclass.values().append_value(s);
        }
        subclass.append(true);
    }
    let codes = codes.finish();
    fields.push(Field::new("scp_codes", codes.data_type().clone(), true));
    columns.push(Arc::new(codes));
    if !classes.is_empty() {
        let (sup, sub) = (superclass.finish(), subclass.finish());
        fields.push(Field::new(
            "diagnostic_superclass",
            sup.data_type().clone(),
            true,
        ));
        columns.push(Arc::new(sup));
        fields.push(Field::new(
            "diagnostic_subclass",
            sub.data_type().clone(),
            true,
        ));
        columns.push(Arc::new(sub));
    }
    Ok(Joined {
        fields,
        columns,
        keys,
        by_basename: false,
    })
}

/// `scp_statements.csv`: code (first, unnamed column) -> (diagnostic_class,
/// diagnostic_subclass) for rows with `diagnostic` = 1.
fn diagnostic_classes(path: &Path) -> Result<HashMap<String, (String, String)>, ConvertError> {
    let t = read_csv(path)?;
    let find = |name: &str| t.headers.iter().position(|h| h == name);
    let (Some(diag), Some(class), Some(sub)) = (
        find("diagnostic"),
        find("diagnostic_class"),
        find("diagnostic_subclass"),
    ) else {
        return Err(ConvertError::Metadata {
            path: path.to_path_buf(),
            reason: "expected columns diagnostic, diagnostic_class, diagnostic_subclass"
                .to_string(),
        });
    };
    Ok(t.rows
        .iter()
        .filter(|r| r[diag].parse::<f64>().is_ok_and(|v| v == 1.0))
        .map(|r| (r[0].clone(), (r[class].clone(), r[sub].clone())))
        .collect())
}

/// Parses PTB-XL's `scp_codes` cell, a Python dict literal of string keys and float
/// values: `{'NORM': 100.0, 'LVOLT': 0.0}`. Returns `None` when it is not of that form.
pub fn parse_scp_codes(cell: &str) -> Option<Vec<(String, f64)>> {
    let inner = cell.trim().strip_prefix('{')?.strip_suffix('}')?.trim();
    if inner.is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(',')
        .map(|pair| {
            let (k, v) = pair.split_once(':')?;
            let k = k.trim();
            let k = k
                .strip_prefix('\'')
                .and_then(|k| k.strip_suffix('\''))
                .or_else(|| k.strip_prefix('"').and_then(|k| k.strip_suffix('"')))?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;

    #[test]
    fn scp_codes_parse() {
        assert_eq!(
            parse_scp_codes("{'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}").unwrap(),
            vec![
                ("NORM".to_string(), 100.0),
                ("LVOLT".to_string(), 0.0),
                ("SR".to_string(), 0.0)
            ]
        );
        assert_eq!(parse_scp_codes("{}").unwrap(), vec![]);
        assert!(parse_scp_codes("NORM").is_none());
        assert!(parse_scp_codes("{'NORM': x}").is_none());
    }

    #[test]
    fn csv_join_types_columns_and_matches_names() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("m.csv");
        std::fs::write(&csv, "rec,age,weight,sex\n100,63,71.5,M\nsub/200,,80,F\n").unwrap();
        let mut opts = ConvertOptions::new(dir.path(), "o.parquet");
        opts.metadata = Some(MetadataSpec {
            path: csv,
            key: "rec".to_string(),
        });
        let extra = ExtraColumns::load(&opts, dir.path(), &["sex".to_string()]).unwrap();
        let names: Vec<&str> = extra.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["rec", "age", "weight", "meta_sex"]);
        assert_eq!(extra.fields()[1].data_type(), &DataType::Int64);
        assert_eq!(extra.fields()[2].data_type(), &DataType::Float64);
        assert_eq!(extra.row_of("100"), Some(0));
        assert_eq!(extra.row_of("x/100"), Some(0));
        assert_eq!(extra.row_of("sub/200"), Some(1));
        assert_eq!(extra.row_of("300"), None);
        let cols = extra.take(&[Some(1), None]).unwrap();
        let age = cols[1].as_primitive::<arrow_array::types::Int64Type>();
        assert!(age.is_null(0) && age.is_null(1));
        assert_eq!(cols[3].as_string::<i32>().value(0), "F");
    }

    #[test]
    fn missing_key_column_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("m.csv");
        std::fs::write(&csv, "a,b\n1,2\n").unwrap();
        let mut opts = ConvertOptions::new(dir.path(), "o.parquet");
        opts.metadata = Some(MetadataSpec {
            path: csv,
            key: "rec".to_string(),
        });
        let e = ExtraColumns::load(&opts, dir.path(), &[]).unwrap_err();
        assert!(e.to_string().contains("no column \"rec\""), "{e}");
    }

    #[test]
    fn ptbxl_preset_joins_both_filenames_and_parses_labels() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ptbxl_database.csv"),
            "ecg_id,patient_id,scp_codes,strat_fold,filename_lr,filename_hr\n\
             1,15709.0,\"{'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}\",3,records100/00000/00001_lr,records500/00000/00001_hr\n\
             2,13243.0,\"{'IMI': 35.0, 'SR': 0.0}\",2,records100/00000/00002_lr,records500/00000/00002_hr\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("scp_statements.csv"),
            ",description,diagnostic,form,rhythm,diagnostic_class,diagnostic_subclass\n\
             NORM,normal ECG,1.0,,,NORM,NORM\n\
             IMI,inferior MI,1.0,,,MI,IMI\n\
             LVOLT,low QRS voltages,,1.0,,,\n\
             SR,sinus rhythm,,,1.0,,\n",
        )
        .unwrap();
        let mut opts = ConvertOptions::new(dir.path(), "o.parquet");
        opts.preset = Some(Preset::PtbXl);
        let extra = ExtraColumns::load(&opts, dir.path(), &[]).unwrap();
        assert_eq!(extra.row_of("records500/00000/00002_hr"), Some(1));
        assert_eq!(extra.row_of("records100/00000/00001_lr"), Some(0));
        let names: Vec<&str> = extra.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "ecg_id",
                "patient_id",
                "strat_fold",
                "filename_lr",
                "filename_hr",
                "scp_codes",
                "diagnostic_superclass",
                "diagnostic_subclass"
            ]
        );
        let cols = extra.take(&[Some(1)]).unwrap();
        let map = cols[5].as_map();
        let keys = map.keys().as_string::<i32>();
        assert_eq!(keys.value(0), "IMI");
        let sup = cols[6].as_list::<i32>().value(0);
        assert_eq!(sup.as_string::<i32>().value(0), "MI");
    }
}
