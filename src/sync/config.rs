//! The `physio sync` configuration file: a TOML list of `[[dataset]]` tables, each
//! optionally with a `[dataset.convert]` table, as fixed by the contract:
//!
//! ```toml
//! [[dataset]]
//! name = "ptb-xl"            # as for `physio fetch` (slug, slug@version, kaggle:owner/name)
//! version = "1.0.3"          # optional pin; absent = follow the latest version
//! include = ["records100/**", "*.csv"]
//! exclude = []
//! out = "/data/physionet"    # optional, default ./physionet
//!
//! [dataset.convert]
//! to = "parquet"
//! out = "/data/parquet/ptb-xl"
//! layout = "record"
//! dtype = "f32"
//! preset = "ptb-xl"
//! card = true                # optional: a dataset card (README.md) in `out`
//! ```
//!
//! Unknown keys are errors (`deny_unknown_fields`): a typo in a nightly job's config must
//! fail loudly, not silently fetch everything.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A parsed sync configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// The datasets to keep in sync, in file order.
    #[serde(rename = "dataset", default)]
    pub datasets: Vec<DatasetEntry>,
}

/// One `[[dataset]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetEntry {
    /// Dataset spec as for `physio fetch` (`ptb-xl`, `mitdb@1.0.0`, `kaggle:o/d`).
    pub name: String,
    /// Version pin; `None` follows the newest version.
    pub version: Option<String>,
    /// Globs of server paths to fetch (empty = everything).
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs of server paths to skip.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Download directory (default `physionet`, relative to the config file).
    pub out: Option<PathBuf>,
    /// Optional conversion step after the fetch.
    pub convert: Option<ConvertEntry>,
}

/// A `[dataset.convert]` table: the `physio convert` flags as keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertEntry {
    /// Output format; only `parquet`.
    #[serde(default = "default_to")]
    pub to: String,
    /// Output path (`.parquet` file or directory of parts).
    pub out: PathBuf,
    /// `record`, `samples` or `windows`.
    pub layout: Option<String>,
    /// `f32`, `f16`, `i16` or `i32`.
    pub dtype: Option<String>,
    /// Dataset preset (`ptb-xl`).
    pub preset: Option<String>,
    /// Record-name globs.
    #[serde(default)]
    pub records: Vec<String>,
    /// Signal names to keep.
    #[serde(default)]
    pub signals: Vec<String>,
    /// Window length in seconds (`windows` layout).
    pub window: Option<f64>,
    /// Window stride in seconds.
    pub stride: Option<f64>,
    /// Metadata CSV to join.
    pub metadata: Option<PathBuf>,
    /// Key column of the metadata CSV.
    pub key: Option<String>,
    /// Annotation extension to include.
    pub annotations: Option<String>,
    /// Also write the annotations as a flat table at this path (`--annotations-table`).
    pub annotations_table: Option<PathBuf>,
    /// Every sample at the highest rate, as `rdsamp -H` (`--high-resolution`).
    #[serde(default)]
    pub high_resolution: bool,
    /// Write a Hugging Face dataset card (`README.md`) into the output directory
    /// (`--card`; see [`crate::convert::card`]).
    #[serde(default)]
    pub card: bool,
}

fn default_to() -> String {
    "parquet".to_string()
}

/// Errors reading a sync configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown/mistyped keys.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// What is wrong, with the TOML position.
        message: String,
    },
}

impl SyncConfig {
    /// Parses `text`; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: origin.to_path_buf(),
            message,
        };
        let config: SyncConfig = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if config.datasets.is_empty() {
            return Err(invalid("no [[dataset]] tables".to_string()));
        }
        for (i, d) in config.datasets.iter().enumerate() {
            if d.name.trim().is_empty() {
                return Err(invalid(format!("dataset #{}: empty name", i + 1)));
            }
            if let Some(c) = &d.convert
                && c.to != "parquet"
            {
                return Err(invalid(format!(
                    "dataset {:?}: convert.to = {:?}; only \"parquet\" is supported",
                    d.name, c.to
                )));
            }
            // convert reads WFDB from a local directory; a dataset fetched into an
            // object store has none (fetch it to disk, convert --out s3:// instead).
            if d.convert.is_some() && d.out.as_deref().is_some_and(is_url) {
                return Err(invalid(format!(
                    "dataset {:?}: a [dataset.convert] step needs a local `out` to read \
                     from; fetch to a directory and give the object-store URL as \
                     convert.out",
                    d.name
                )));
            }
        }
        Ok(config)
    }

    /// Reads and parses the file at `path`. Relative `out` paths are resolved against the
    /// file's directory, so a config works the same from any working directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(&text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for d in &mut config.datasets {
            // An object-store URL (`s3://bucket/prefix`) is not relative to anything.
            if let Some(out) = &mut d.out
                && !is_url(out)
            {
                *out = base.join(&*out);
            }
            if let Some(c) = &mut d.convert {
                if !is_url(&c.out) {
                    c.out = base.join(&c.out);
                }
                if let Some(m) = &mut c.metadata {
                    *m = base.join(&*m);
                }
                if let Some(t) = &mut c.annotations_table
                    && !is_url(t)
                {
                    *t = base.join(&*t);
                }
            }
        }
        Ok(config)
    }
}

/// An object-store URL (`s3://`, `gs://`, `az://`, ...) rather than a path.
fn is_url(p: &Path) -> bool {
    p.to_string_lossy().contains("://")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[[dataset]]
name = "ptb-xl"
version = "1.0.3"
include = ["records100/**", "*.csv"]
out = "data"

[dataset.convert]
to = "parquet"
out = "parquet/ptb-xl"
layout = "windows"
window = 2.5
preset = "ptb-xl"
card = true
dtype = "i32"
high_resolution = true
annotations_table = "parquet/ptb-xl-annotations.parquet"

[[dataset]]
name = "kaggle:owner/ecg"
"#;

    #[test]
    fn parses_datasets_and_convert_tables() {
        let c = SyncConfig::parse(FULL, Path::new("sync.toml")).unwrap();
        assert_eq!(c.datasets.len(), 2);
        let d = &c.datasets[0];
        assert_eq!(d.name, "ptb-xl");
        assert_eq!(d.version.as_deref(), Some("1.0.3"));
        assert_eq!(d.include, ["records100/**", "*.csv"]);
        let conv = d.convert.as_ref().unwrap();
        assert_eq!(conv.layout.as_deref(), Some("windows"));
        assert_eq!(conv.window, Some(2.5));
        // `card = true` reaches the conversion's options (the dataset card, issue 16).
        assert!(conv.card);
        let opts = crate::sync::convert_options(conv, Path::new("in"), None).unwrap();
        assert!(opts.card);
        // So do main's issue-14 flags.
        assert_eq!(opts.dtype, crate::convert::Dtype::I32);
        assert!(opts.high_resolution);
        assert_eq!(
            opts.annotations_table.as_deref(),
            Some(Path::new("parquet/ptb-xl-annotations.parquet"))
        );
        assert_eq!(c.datasets[1].convert, None);
        assert!(c.datasets[1].include.is_empty());
    }

    #[test]
    fn load_resolves_paths_against_the_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.toml");
        std::fs::write(&path, FULL).unwrap();
        let c = SyncConfig::load(&path).unwrap();
        assert_eq!(
            c.datasets[0].out.as_deref(),
            Some(dir.path().join("data").as_path())
        );
        assert_eq!(
            c.datasets[0].convert.as_ref().unwrap().out,
            dir.path().join("parquet/ptb-xl")
        );
        let text = FULL.replace("\"parquet/ptb-xl\"", "\"s3://bucket/ptb-xl/\"");
        std::fs::write(&path, text).unwrap();
        let c = SyncConfig::load(&path).unwrap();
        assert_eq!(
            c.datasets[0].convert.as_ref().unwrap().out,
            PathBuf::from("s3://bucket/ptb-xl/")
        );
        // A fetch into an object store keeps its URL ...
        std::fs::write(&path, "[[dataset]]\nname = \"x\"\nout = \"s3://b/raw\"\n").unwrap();
        let c = SyncConfig::load(&path).unwrap();
        assert_eq!(c.datasets[0].out.as_deref(), Some(Path::new("s3://b/raw")));
        // ... but cannot feed a convert step, which reads local files.
        let text = "[[dataset]]\nname = \"x\"\nout = \"s3://b/raw\"\n\
                    [dataset.convert]\nout = \"pq\"\n";
        std::fs::write(&path, text).unwrap();
        let err = SyncConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("needs a local `out`"), "{err}");
    }

    #[test]
    fn refuses_typos_empty_files_and_other_formats() {
        for bad in [
            "",
            "[[dataset]]\nnme = \"x\"\n",
            "[[dataset]]\nname = \"x\"\nincldue = []\n",
            "[[dataset]]\nname = \"x\"\n[dataset.convert]\nto = \"csv\"\nout = \"o\"\n",
            "[[dataset]]\nname = \"  \"\n",
        ] {
            let err = SyncConfig::parse(bad, Path::new("c.toml")).unwrap_err();
            assert!(err.to_string().starts_with("c.toml: "), "{err}");
        }
    }
}
