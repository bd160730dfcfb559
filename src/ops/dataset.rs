//! `physio convert <dataset>` as a library operation (issue 15): resolve the dataset
//! as [`super::fetch()`] does, then run [`crate::pipeline`] (fetch and convert
//! overlapped) on the mirror. A Kaggle dataset is one archive, so there is nothing to
//! overlap: it is fetched by [`super::fetch()`] and the extracted directory converted
//! by [`super::convert()`].

use std::path::PathBuf;

use crate::convert::{ConvertOptions, Reporter as ConvertReporter};
use crate::error::{Error, Result};
use crate::fetch::Reporter as FetchReporter;
use crate::objstore::ObjectUrl;
use crate::pipeline::{PipelineOptions, PipelineReport};
use crate::source::kaggle::KaggleReport;

use super::convert::{ConvertOutcome, convert};
use super::fetch::{FetchOutcome, FetchRequest, fetch, is_kaggle, resolve};

/// What to convert from which dataset.
#[derive(Debug, Clone)]
pub struct DatasetRequest {
    /// The dataset and where its raw files go: `dataset`, `out` (the mirror directory,
    /// `<out>/<slug>/<version>`), `base_url`, `source`, `jobs` and the download
    /// settings, and `filter` (`--where`). Its `shard`, `records`, `include` and
    /// `exclude` are not used: the conversion's `records` and `shard` pick the records
    /// (the record-name shard key `fetch --shard` uses too).
    pub fetch: FetchRequest,
    /// The conversion (`input` is replaced by the version directory in the mirror);
    /// `out` must be a local path.
    pub convert: ConvertOptions,
    /// Keep the verified raw files in the mirror (`false` is `--no-keep-raw`).
    pub keep_raw: bool,
    /// With `keep_raw == false`: the disk bound, see [`PipelineOptions::ahead`].
    pub ahead: usize,
}

/// The result of [`convert_dataset`].
#[derive(Debug)]
pub enum DatasetOutcome {
    /// A PhysioNet-shaped dataset, fetched and converted overlapped.
    PhysioNet {
        /// Project slug.
        dataset: String,
        /// The version.
        version: String,
        /// The version directory in the mirror.
        mirror: PathBuf,
        /// What was fetched, converted, skipped and deleted.
        report: PipelineReport,
    },
    /// A Kaggle dataset: the fetch, and the conversion when the fetch succeeded.
    Kaggle {
        /// The fetch of the archive.
        fetched: KaggleReport,
        /// The conversion of the extracted directory (`None` when the fetch failed).
        converted: Option<ConvertOutcome>,
    },
}

/// Converts the dataset `req.fetch.dataset` names (`physio convert <dataset>`): see the
/// module docs. `handle` runs the downloads; this function blocks (call it outside the
/// runtime). Per-record and per-file failures are in the outcome.
pub fn convert_dataset(
    req: &DatasetRequest,
    handle: &tokio::runtime::Handle,
    fetch_reporter: &dyn FetchReporter,
    convert_reporter: &dyn ConvertReporter,
) -> Result<DatasetOutcome> {
    if ObjectUrl::parse(&req.convert.out.to_string_lossy())?.is_some() {
        return Err(Error::Usage(
            "convert <dataset>: --out must be a local path (convert the mirror to s3:// afterwards)"
                .into(),
        ));
    }
    if is_kaggle(&req.fetch.dataset) {
        return kaggle(req, handle, fetch_reporter, convert_reporter);
    }
    // `--source auto` takes the bytes from the AWS mirror as `physio fetch` does.
    let r = handle.block_on(async {
        let r = resolve(&req.fetch, req.fetch.downloader_options()?).await?;
        Ok::<_, Error>(super::fetch::with_mirror(&req.fetch, r).await)
    })?;
    let dir = req.fetch.out.join(&r.slug).join(&r.version);
    let base = r.base();
    let opts = PipelineOptions {
        convert: req.convert.clone(),
        filter: req.fetch.filter.clone(),
        keep_raw: req.keep_raw,
        ahead: req.ahead,
    };
    let report = crate::pipeline::run(
        handle,
        &r.remote(&base, &dir),
        &opts,
        fetch_reporter,
        convert_reporter,
    )?;
    Ok(DatasetOutcome::PhysioNet {
        dataset: r.slug,
        version: r.version,
        mirror: dir,
        report,
    })
}

/// A Kaggle dataset: fetched (verified, extracted) into the mirror, then converted.
fn kaggle(
    req: &DatasetRequest,
    handle: &tokio::runtime::Handle,
    fetch_reporter: &dyn FetchReporter,
    convert_reporter: &dyn ConvertReporter,
) -> Result<DatasetOutcome> {
    if req.fetch.filter.is_some() || !req.keep_raw {
        return Err(Error::Usage(
            "convert kaggle:<owner>/<dataset>: --where and --no-keep-raw apply to PhysioNet datasets only"
                .into(),
        ));
    }
    let fetched = match handle.block_on(fetch(&req.fetch, fetch_reporter))? {
        FetchOutcome::Kaggle(k) => k,
        FetchOutcome::PhysioNet(_) => {
            return Err(Error::Usage(format!(
                "{}: not a Kaggle dataset",
                req.fetch.dataset
            )));
        }
    };
    if !fetched.failed.is_empty() {
        return Ok(DatasetOutcome::Kaggle {
            fetched,
            converted: None,
        });
    }
    let mut opts = req.convert.clone();
    opts.input = fetched.dir.clone();
    let converted = convert(&opts, convert_reporter)?;
    Ok(DatasetOutcome::Kaggle {
        fetched,
        converted: Some(converted),
    })
}
