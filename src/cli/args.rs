//! Every clap type of the command line, kept apart from the code that runs commands
//! (as in uv's `uv-cli`): the structs here are the parsed, unvalidated arguments;
//! each command turns them into the library's options type.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// physio: fetch PhysioNet/Kaggle datasets fast and intact; convert WFDB to Parquet.
#[derive(Debug, Parser)]
#[command(name = "physio", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted by every command (before or after the command name).
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Print nothing but errors (no progress display).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run; boxing buys nothing
pub enum Command {
    /// Download a dataset (or part of one), verifying every file.
    Fetch(FetchArgs),
    /// Re-hash a local copy against its SHA256SUMS.txt.
    Verify(VerifyArgs),
    /// List a dataset's remote files and sizes without downloading.
    Ls(LsArgs),
    /// Summarise one WFDB record's or EDF file's header (like wfdbdesc).
    Info(InfoArgs),
    /// Convert WFDB and EDF records to Parquet.
    Convert(ConvertArgs),
    /// Fetch and convert the datasets a TOML file lists (for cron and CI).
    Sync(SyncArgs),
    /// Draw a record (or a row of physio's Parquet) to a PNG or SVG image.
    Plot(PlotArgs),
}

/// `physio fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Dataset: a PhysioNet slug (`ptb-xl`, `mitdb@1.0.0`) or `kaggle:<owner>/<dataset>`.
    pub dataset: String,
    /// Output directory; files land in DIR/<slug>/<version>/<path>.
    #[arg(long, short, default_value = "physionet", value_name = "DIR")]
    pub out: PathBuf,
    /// Only fetch server paths matching this glob (repeatable; `records100/**`, `*.hea`).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Skip server paths matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Only fetch these records' files: a file with one record name per line.
    #[arg(long, value_name = "FILE")]
    pub records: Option<PathBuf>,
    /// Concurrent connections at most (default: search for the server's limit, from 4
    /// up to 32, backing off on refusals; Kaggle: 8).
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Replace https://physionet.org (a mirror, a local HTTP server or a file:// directory).
    #[arg(long, env = "PHYSIO_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,
    /// Print what would be fetched and its total size; download nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON summary object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Delete local files that were removed upstream.
    #[arg(long)]
    pub delete: bool,
    /// Fetch only shard I of N (0-based), split by a stable hash of the file path.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Limit the total download rate of the run, in bytes per second (suffixes K, M, G).
    #[arg(long, value_name = "RATE", value_parser = parse_size)]
    pub max_rate: Option<u64>,
    /// Where the bytes come from: `auto` (files from the AWS open-data mirror when it
    /// holds the version, each verified against physionet.org's SHA256SUMS.txt, falling
    /// back to physionet.org per file), `physionet` (`/files/<slug>/<version>/` only) or
    /// `aws` (the public S3 mirror only, `<slug>/<version>/`).
    #[arg(long, value_enum, default_value = "auto")]
    pub source: SourceArg,
    /// Only fetch the files of records matching this filter on their headers (see
    /// `docs/plan.md`), e.g. `fs == 500 and "V1" in sig_name and duration >= 10`.
    #[arg(long = "where", value_name = "EXPR")]
    pub where_: Option<String>,
    /// Attempts per file before it counts as failed.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub retries: u32,
    /// Drop and retry a connection that delivers no bytes for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub stall_timeout: f64,
    /// Fetch files at least this many bytes large as parallel byte ranges (0: never).
    #[arg(long, value_name = "BYTES", default_value_t = crate::fetch::download::DEFAULT_SPLIT_MIN)]
    pub split_min: u64,
    /// Refuse archives (Kaggle) that expand past this many bytes (suffixes K, M, G, T);
    /// archives are always limited to 200x their size.
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub max_extract: Option<u64>,
}

/// Where a PhysioNet dataset is served from (`--source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SourceArg {
    /// Manifest from physionet.org, bytes from the AWS mirror where it has them
    /// (`PHYSIO_AWS_URL` points the mirror elsewhere), else from physionet.org.
    Auto,
    /// physionet.org or a mirror with its layout.
    #[default]
    Physionet,
    /// The AWS open-data bucket layout (`<slug>/<version>/<path>`).
    Aws,
}

impl From<SourceArg> for crate::ops::FetchSource {
    fn from(s: SourceArg) -> Self {
        match s {
            SourceArg::Auto => crate::ops::FetchSource::Auto,
            SourceArg::Physionet => crate::ops::FetchSource::PhysioNet,
            SourceArg::Aws => crate::ops::FetchSource::Aws,
        }
    }
}

/// `physio verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A dataset version directory holding SHA256SUMS.txt (DIR/<slug>/<version>).
    pub dir: PathBuf,
    /// Concurrent hashing jobs (default: all cores).
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print one JSON summary object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `physio ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Dataset, as for `fetch`.
    pub dataset: String,
    /// Only list server paths matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Skip server paths matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Replace https://physionet.org.
    #[arg(long, env = "PHYSIO_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Server layout (as for `fetch`).
    #[arg(long, value_enum, default_value = "physionet")]
    pub source: SourceArg,
    /// List records (one line each, from their headers only) instead of files.
    #[arg(long)]
    pub records: bool,
    /// With --records: print CSV instead of a table.
    #[arg(long, requires = "records", conflicts_with = "json")]
    pub csv: bool,
    /// With --records: only records matching this filter (see `docs/plan.md`), e.g.
    /// `fs == 500 and "V1" in sig_name and duration >= 10`.
    #[arg(long = "where", value_name = "EXPR", requires = "records")]
    pub where_: Option<String>,
    /// With --records: the mirror directory headers are cached in (DIR/<slug>/<version>).
    #[arg(long, value_name = "DIR", default_value = "physionet")]
    pub mirror: PathBuf,
}

/// `physio info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A record path, with or without `.hea`, or an EDF/EDF+ file (`.edf`).
    pub record: PathBuf,
    /// Print one JSON object with wfdb-python's attribute names.
    #[arg(long)]
    pub json: bool,
}

/// Output format of `convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Apache Parquet.
    Parquet,
}

/// Row layout of the Parquet output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LayoutArg {
    /// One row per record (default).
    #[default]
    Record,
    /// One row per frame.
    Samples,
    /// One row per fixed-length window.
    Windows,
}

/// Sample type of the signal columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DtypeArg {
    /// float32 physical units (default).
    #[default]
    F32,
    /// float16 physical units.
    F16,
    /// int16 digital values, with per-channel gain and baseline columns.
    I16,
    /// int32 digital values (lossless for every format, incl. 24, 32 and 524), with
    /// per-channel gain and baseline columns.
    I32,
}

/// `physio convert`.
#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// A dataset directory, one record path (with or without `.hea`), or a dataset spec
    /// as for `fetch` (`ptb-xl`, `mitdb@1.0.0`): then the files the conversion needs
    /// are fetched into --mirror and converted as they arrive.
    pub input: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "parquet")]
    pub to: OutputFormat,
    /// Output: a `.parquet` file, or a directory of part-NNNNN.parquet files.
    #[arg(long, short, value_name = "PATH")]
    pub out: PathBuf,
    /// Row layout.
    #[arg(long, value_enum, default_value = "record")]
    pub layout: LayoutArg,
    /// Only records whose name matches (repeatable; `*` within a component, `**` across).
    #[arg(long, value_name = "GLOB")]
    pub records: Vec<String>,
    /// Only these signals, by name (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub signals: Vec<String>,
    /// Sample type of the signal column(s).
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: DtypeArg,
    /// Window length in seconds (`--layout windows`).
    #[arg(long, value_name = "SECS")]
    pub window: Option<f64>,
    /// Step between window starts in seconds (default: the window length).
    #[arg(long, value_name = "SECS")]
    pub stride: Option<f64>,
    /// Pad the last partial window with NaN instead of dropping it.
    #[arg(long)]
    pub pad: bool,
    /// A CSV file to join on the record name.
    #[arg(long, value_name = "CSV")]
    pub metadata: Option<PathBuf>,
    /// The CSV column holding record names (with `--metadata`).
    #[arg(long, value_name = "COLUMN")]
    pub key: Option<String>,
    /// Dataset-specific metadata and labels (`ptb-xl`).
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// Annotation file extension to add as a list column (`atr`); `edf` reads EDF+
    /// files' own annotations.
    #[arg(long, value_name = "EXT")]
    pub annotations: Option<String>,
    /// Also write the `--annotations` as a flat Parquet table (one row per annotation,
    /// keyed by `record`) to this file.
    #[arg(long, value_name = "PATH", requires = "annotations")]
    pub annotations_table: Option<PathBuf>,
    /// `--layout samples|windows`: every sample of oversampled signals at the record's
    /// highest rate (as `rdsamp -H`), instead of one WFDB frame mean per frame.
    #[arg(long)]
    pub high_resolution: bool,
    /// Parallel workers (default: all cores).
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Stop at the first record that fails instead of skipping it.
    #[arg(long)]
    pub fail_fast: bool,
    /// Convert only shard I of N (0-based), split by a stable hash of the record name.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Copy the rows of records whose input files are unchanged (by SHA-256) from the
    /// existing output at --out instead of decoding them; the result is the same bytes.
    #[arg(long)]
    pub incremental: bool,
    /// Also write a Hugging Face dataset card (README.md) into the output directory.
    /// (pyarrow's `read_table(DIR)` then needs the part files: `DIR/part-*.parquet`.)
    #[arg(long)]
    pub card: bool,
    /// Print one JSON summary object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Dataset input: the mirror directory raw files are fetched into and kept in
    /// (DIR/<slug>/<version>, as `fetch --out DIR`).
    #[arg(long, value_name = "DIR", default_value = "physionet")]
    pub mirror: PathBuf,
    /// Dataset input: delete each record's signal and annotation files once its rows
    /// are written (disk use stays bounded; see `docs/plan.md`).
    #[arg(long)]
    pub no_keep_raw: bool,
    /// Only records matching this filter on their headers (see `docs/plan.md`).
    #[arg(long = "where", value_name = "EXPR")]
    pub where_: Option<String>,
    /// Dataset input: replace https://physionet.org.
    #[arg(long, env = "PHYSIO_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,
    /// Dataset input: server layout (as for `fetch`).
    #[arg(long, value_enum, default_value = "physionet")]
    pub source: SourceArg,
    /// Dataset input: concurrent downloads (default 8).
    #[arg(long, value_name = "N")]
    pub fetch_jobs: Option<usize>,
    /// Dataset input with --no-keep-raw: at most 2 x N records (plus those the
    /// converter is decoding) have raw files on disk.
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub ahead: usize,
    /// Rows per Parquet row group (default: ~16 MiB of decoded samples per group).
    #[arg(long, value_name = "N", hide = true)]
    pub row_group_rows: Option<usize>,
    /// Signal compression: auto, zstd[:LEVEL], lz4, snappy, none (measurement knob).
    #[arg(long, value_name = "CODEC", hide = true)]
    pub compression: Option<String>,
    /// Encoding of signal value columns: bss, dict, plain (measurement knob).
    #[arg(long, value_name = "ENC", hide = true)]
    pub signal_encoding: Option<String>,
    /// Start a new part file once one reaches this many bytes (default 500000000).
    #[arg(long, value_name = "BYTES", hide = true)]
    pub max_file_bytes: Option<u64>,
}

/// `physio sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The TOML file listing `[[dataset]]` tables.
    pub config: PathBuf,
    /// Write the JSON run report here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Move datasets that follow the latest version to a newer upstream version.
    #[arg(long)]
    pub upgrade: bool,
    /// Run only shard I of N (0-based) of every dataset.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

/// Background grid of `physio plot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GridArg {
    /// ECG paper: 0.2 s / 0.5 mV major and 0.04 s / 0.1 mV minor lines.
    Ecg,
}

/// `physio plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A record path (with or without `.hea`), or a Parquet file/directory written by
    /// `physio convert` (then name the row with --record).
    pub input: PathBuf,
    /// The image to write: `.png` or `.svg`.
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// The record to draw from Parquet input (its `record` column value).
    #[arg(long, value_name = "NAME")]
    pub record: Option<String>,
    /// Start of the window (`10`, `10s`, `1.5m`, `500ms`, `1:30`; from the record's start).
    #[arg(long, value_name = "T", value_parser = parse_time_arg)]
    pub from: Option<f64>,
    /// End of the window (as for --from; default: the record's end).
    #[arg(long, value_name = "T", value_parser = parse_time_arg)]
    pub to: Option<f64>,
    /// Only these signals, by name, in this order (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub signals: Vec<String>,
    /// Draw the annotations of this annotator (file extension, e.g. `atr`).
    #[arg(long, value_name = "EXT")]
    pub annotations: Option<String>,
    /// Background grid.
    #[arg(long, value_enum)]
    pub grid: Option<GridArg>,
    /// Image width in pixels.
    #[arg(long, value_name = "PX", default_value_t = 1200)]
    pub width: u32,
    /// Height of one signal panel in pixels (ECG-grid panels size themselves).
    #[arg(long, value_name = "PX", default_value_t = 120)]
    pub panel_height: u32,
    /// Print one JSON object describing what was drawn.
    #[arg(long)]
    pub json: bool,
}

fn parse_time_arg(s: &str) -> Result<f64, String> {
    crate::plot::parse_time(s).map_err(|e| e.to_string())
}

/// Parses a byte size with an optional K/M/G/T suffix (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("invalid size {s:?}: unknown suffix")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("invalid size {s:?}: expected e.g. 500M or 20G"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("2K"), Ok(2048));
        assert_eq!(parse_size("3g"), Ok(3 << 30));
        assert!(parse_size("x").is_err());
        assert!(parse_size("1Q").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
