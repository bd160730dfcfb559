//! Resolving a PhysioNet dataset spec to a version, its manifest and a downloader: what
//! `ls --records`, `fetch --where` and `convert <dataset>` need before planning.

use std::time::Duration;

use url::Url;

use crate::auth::Credentials;
use crate::error::Result;
use crate::fetch::{Downloader, DownloaderOptions, HttpClient};
use crate::source::physionet::{AWS_BASE, DEFAULT_BASE};
use crate::source::{DatasetSpec, Layout, Manifest, PhysioNet, SourceError};

/// A resolved dataset version: where it is, what it holds, and the downloader to use.
pub struct Resolved {
    /// The source (base URL and layout).
    pub source: PhysioNet,
    /// The dataset's slug.
    pub slug: String,
    /// The version (as asked, or the latest).
    pub version: String,
    /// The version's files (SHA256SUMS.txt, or the listings).
    pub manifest: Manifest,
    /// The downloader (client with the realm's credentials, retries, concurrency).
    pub downloader: Downloader,
}

impl Resolved {
    /// URL of the version's root, ending in `/`.
    pub fn base(&self) -> Url {
        self.source.version_url(&self.slug, &self.version)
    }
}

/// Parses `dataset` (`slug[@version]`), builds the client (with credentials for the
/// source's realm), finds the version (latest when not given) and reads its manifest.
/// Kaggle specs are refused: they are fetched as archives, not planned per record.
pub async fn resolve(
    dataset: &str,
    base_url: Option<&str>,
    layout: Layout,
    opts: DownloaderOptions,
) -> Result<Resolved> {
    let (slug, version) = match DatasetSpec::parse(dataset)? {
        DatasetSpec::PhysioNet { slug, version } => (slug, version),
        DatasetSpec::Kaggle { .. } => return Err(SourceError::Unsupported("Kaggle").into()),
    };
    let default = if layout == Layout::Aws {
        AWS_BASE
    } else {
        DEFAULT_BASE
    };
    let src = PhysioNet::new(base_url.unwrap_or(default), layout)?;
    let creds = Url::parse(src.base().as_str())
        .ok()
        .filter(|u| u.scheme() != "file")
        .and_then(|u| Credentials::lookup(&u));
    let client = HttpClient::new(creds, Duration::from_secs(30))?;
    let downloader = Downloader::new(client, opts);
    let version = match version {
        Some(v) => v,
        None => src.resolve_version(&downloader, &slug).await?,
    };
    let manifest = src.manifest(&downloader, &slug, &version).await?;
    Ok(Resolved {
        source: src,
        slug,
        version,
        manifest,
        downloader,
    })
}
