//! The records listing (`physio ls <dataset> --records`, issue 15): a version's records
//! planned from their headers alone ([`crate::catalog::plan`]), optionally narrowed by a
//! `--where` filter. WFDB headers are fetched into the mirror (`FetchRequest::out`,
//! `<out>/<slug>/<version>`), verified like any fetched file, so a later `fetch` or
//! `convert <dataset>` of the same mirror does not download them again; EDF records are
//! described from their header bytes, fetched as ranges and kept in memory.

use std::path::PathBuf;

use crate::catalog::{Catalog, CatalogOptions, Filter, RecordInfo};
use crate::error::Result;
use crate::fetch::{DownloaderOptions, Reporter};

use super::fetch::{FetchRequest, resolve};

/// The result of [`ls_records`].
#[derive(Debug)]
pub struct RecordListing {
    /// Project slug.
    pub dataset: String,
    /// The version.
    pub version: String,
    /// The version directory in the mirror the headers were cached in.
    pub dir: PathBuf,
    /// Every record the headers describe (with planning failures) and what planning
    /// transferred.
    pub catalog: Catalog,
    /// The request's `--where` filter.
    pub filter: Option<Filter>,
}

impl RecordListing {
    /// The records the filter selects (every plannable record without one).
    pub fn selected(&self) -> Vec<&RecordInfo> {
        self.catalog.selected(self.filter.as_ref()).collect()
    }
}

/// Lists the records of `req.dataset` from their headers (`physio ls --records`):
/// resolves the version as [`super::fetch()`] does, fetches the RECORDS files and the
/// headers into `req.out` and parses them. Records and header files that could not be
/// planned are in [`Catalog::failures`], not an `Err`.
pub async fn ls_records(req: &FetchRequest, reporter: &dyn Reporter) -> Result<RecordListing> {
    let mut r = resolve(req, DownloaderOptions::default()).await?;
    r.source
        .fill_sizes(&r.downloader, &r.slug, &r.version, &mut r.manifest)
        .await?;
    let dir = req.out.join(&r.slug).join(&r.version);
    let base = r.base();
    let catalog =
        crate::catalog::plan(&r.remote(&base, &dir), &CatalogOptions::default(), reporter).await?;
    Ok(RecordListing {
        dataset: r.slug,
        version: r.version,
        dir,
        catalog,
        filter: req.filter.clone(),
    })
}
