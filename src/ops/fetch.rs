//! The fetch operation: resolve a dataset spec and version, read its manifest, select
//! files, and bring a local directory (or an object-store prefix) in line with it —
//! for PhysioNet-shaped sources and for Kaggle. Also the dry run ([`fetch_plan`]), the
//! listing ([`ls`]) and [`latest_version`], which `physio sync` uses to notice a newer
//! upstream version without downloading anything.
//!
//! ## Sharding (`--shard I/N`)
//!
//! Fetch and convert share one shard key so that `sync --shard I/N` never converts a
//! record whose files another task owns: a record's files (its header, signal files,
//! annotations, and for a multi-segment record every segment's header and signal files)
//! are assigned by the hash of the *record name*, exactly as `convert --shard` assigns
//! records. To know which files belong to which record a shard needs the headers, so a
//! sharded fetch runs in two phases:
//!
//! 1. the *index files* — every `RECORDS` file, every header (`.hea`) and every CSV
//!    table (metadata such as `ptbxl_database.csv`) — are fetched by every shard, one
//!    shard at a time (a blocking lock, `.physio-lock-shared`): the first fetches them,
//!    the others find them verified. Every task then has what convert needs to discover
//!    records and join metadata.
//! 2. every other selected file goes to exactly one shard: a record's file by the hash of
//!    its record's name (records as `convert` discovers them, files as their headers
//!    name them; an annotation `rec.ext` goes with record `rec`; an EDF file is a record
//!    of its own, named with its extension), any other file by the hash of its own path.
//!
//! The union of N shards' files is the unsharded selection. Into an object store, where
//! headers are not on local disk, phase 2 uses the file's own stem (`dir/rec` of
//! `dir/rec.dat`; an EDF file's whole path) as the key.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::auth::Credentials;
use crate::auth::kaggle::find_credentials;
use crate::catalog::{CatalogOptions, Filter, Remote};
use crate::env::EnvVars;
use crate::error::{EXIT_OK, EXIT_PARTIAL, Error, Result};
use crate::extract::{DEFAULT_MAX_RATIO, ExtractLimits};
use crate::fetch::plan::Selection;
use crate::fetch::retry::RetryPolicy;
use crate::fetch::{Destination, LocalDir};
use crate::fetch::{
    Downloader, DownloaderOptions, FetchOptions, FetchPlan, FetchReport, HttpClient, Outcome,
    Reporter,
};
use crate::fetch::{Entry, Manifest};
use crate::objstore::{self, ObjectUrl, StoreDestination, UploadOptions};
use crate::shard::Shard;
use crate::source::kaggle::{self, KaggleFetchOptions, KaggleRef, KaggleReport, KaggleTransfer};
use crate::source::physionet::{AWS_BASE, DEFAULT_BASE};
use crate::source::{DatasetSpec, Layout, PhysioNet, SourceError};

/// Concurrent downloads of a Kaggle fetch without [`FetchRequest::jobs`]: about eight
/// is both fast and polite. PhysioNet-shaped fetches without it search for the
/// server's connection budget instead, up to [`crate::fetch::concurrency::SEARCH_CAP`]
/// (issue 13).
pub const DEFAULT_JOBS: usize = 8;

/// Where a PhysioNet dataset's bytes come from (`--source`, issue 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FetchSource {
    /// Manifest and checksums from physionet.org (or `base_url`); each file's bytes
    /// from the AWS open-data mirror when it holds the version (`PHYSIO_AWS_URL` points
    /// the mirror elsewhere), verified against those checksums, falling back to the
    /// origin per file.
    #[default]
    Auto,
    /// physionet.org (or a mirror with its layout) only.
    PhysioNet,
    /// The AWS open-data bucket (`<slug>/<version>/<path>`) only.
    Aws,
}

impl FetchSource {
    /// The server layout of the primary source.
    pub fn layout(self) -> Layout {
        match self {
            FetchSource::Auto | FetchSource::PhysioNet => Layout::PhysioNet,
            FetchSource::Aws => Layout::Aws,
        }
    }
}

/// What to fetch, and how. [`FetchRequest::new`] gives the command line's defaults.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// Dataset spec: `ptb-xl`, `mitdb@1.0.0` or `kaggle:<owner>/<dataset>[@<n>]`.
    pub dataset: String,
    /// Output directory (`DIR/<slug>/<version>/…`), or an `s3://`, `gs://` or `az://`
    /// URL (PhysioNet datasets only).
    pub out: PathBuf,
    /// Only server paths matching one of these globs (empty: everything).
    pub include: Vec<String>,
    /// Skip server paths matching one of these globs.
    pub exclude: Vec<String>,
    /// Only these records' files (record names, as in a `RECORDS` file).
    pub records: Option<Vec<String>>,
    /// Fetch only this shard (see the module docs).
    pub shard: Option<Shard>,
    /// Concurrent connections at most, 1..=256. `None`: a PhysioNet-shaped fetch
    /// searches for the server's budget (from a few up to
    /// [`crate::fetch::concurrency::SEARCH_CAP`], backing off on refusals); Kaggle
    /// uses [`DEFAULT_JOBS`].
    pub jobs: Option<usize>,
    /// Replaces `https://physionet.org` (or the AWS bucket for [`FetchSource::Aws`]).
    pub base_url: Option<String>,
    /// Where the bytes come from (and so the server layout).
    pub source: FetchSource,
    /// Attempts per file before it counts as failed (at least 1).
    pub retries: u32,
    /// Drop and retry a connection that delivers no bytes for this long.
    pub stall_timeout: Duration,
    /// Files at least this large are fetched as parallel byte ranges (0: never).
    pub split_min: u64,
    /// Limit on the run's total download rate, bytes per second.
    pub max_rate: Option<u64>,
    /// Kaggle: refuse archives that expand past this many bytes.
    pub max_extract: Option<u64>,
    /// Delete local files that were removed upstream.
    pub delete: bool,
    /// `--where`: only the files of records whose headers match (PhysioNet datasets
    /// into a local directory only). The headers are fetched first, into the same
    /// version directory, so the fetch proper finds them verified; a dry run
    /// ([`fetch_plan`]) fetches them too, since the selection needs them. The headers
    /// are fetched under the shared lock ([`FetchOptions::shared`]), so concurrent
    /// `--where --shard` runs on one mirror take turns for them.
    pub filter: Option<Filter>,
}

impl FetchRequest {
    /// A request for `dataset` into `out` with the command line's defaults.
    pub fn new(dataset: impl Into<String>, out: impl Into<PathBuf>) -> FetchRequest {
        FetchRequest {
            dataset: dataset.into(),
            out: out.into(),
            include: Vec::new(),
            exclude: Vec::new(),
            records: None,
            shard: None,
            jobs: None,
            base_url: None,
            source: FetchSource::Auto,
            retries: 8,
            stall_timeout: Duration::from_secs(30),
            split_min: crate::fetch::download::DEFAULT_SPLIT_MIN,
            max_rate: None,
            max_extract: None,
            delete: false,
            filter: None,
        }
    }

    fn is_kaggle(&self) -> bool {
        is_kaggle(&self.dataset)
    }

    /// The download engine's settings, after checking them (a bad value is
    /// [`Error::Usage`]).
    pub fn downloader_options(&self) -> Result<DownloaderOptions> {
        if self.max_rate == Some(0) {
            return Err(Error::Usage(
                "--max-rate must be at least 1 byte per second".into(),
            ));
        }
        if self.jobs.is_some_and(|j| j == 0 || j > 256) {
            return Err(Error::Usage("--jobs must be between 1 and 256".into()));
        }
        if self.stall_timeout.is_zero() || self.retries == 0 {
            return Err(Error::Usage(
                "--stall-timeout must be > 0 and --retries >= 1".into(),
            ));
        }
        Ok(DownloaderOptions {
            jobs: self.jobs.unwrap_or(crate::fetch::concurrency::SEARCH_CAP),
            search_connections: self.jobs.is_none(),
            retry: RetryPolicy {
                max_attempts: self.retries,
                ..RetryPolicy::default()
            },
            retry_budget: 1000,
            stall_timeout: self.stall_timeout,
            split_min: self.split_min,
            max_rate: self.max_rate,
        })
    }

    /// The object-store prefix `--out` names, if it is a URL.
    fn target(&self) -> Result<Option<ObjectUrl>> {
        let text = self.out.to_string_lossy();
        match ObjectUrl::parse(&text)? {
            Some(t) => Ok(Some(t.into_prefix())),
            None if text.contains("://") => Err(Error::Usage(format!(
                "fetch --out {text}: give a local directory or an s3://, gs:// or az:// URL"
            ))),
            None => Ok(None),
        }
    }

    /// The selection without the shard (sharding needs the record structure).
    fn selection(&self) -> Result<Selection> {
        let records = self.records.as_ref().map(|r| r.join("\n"));
        Selection::new(&self.include, &self.exclude, records.as_deref(), None)
    }
}

/// True when `dataset` names a Kaggle dataset (`kaggle:<owner>/<dataset>`).
pub fn is_kaggle(dataset: &str) -> bool {
    dataset.starts_with(kaggle::SPEC_PREFIX)
}

/// The result of a PhysioNet-shaped fetch.
#[derive(Debug)]
pub struct Fetched {
    /// Project slug.
    pub dataset: String,
    /// The version fetched.
    pub version: String,
    /// Where it went, as shown to users: the version directory, or the store URL.
    pub dest: String,
    /// The local version directory (`None` for an object-store destination).
    pub version_dir: Option<PathBuf>,
    /// True when the version publishes `SHA256SUMS.txt` (else sizes are the only check).
    pub checksums: bool,
    /// Files selected for this run.
    pub total_files: usize,
    /// Per-file outcome.
    pub report: FetchReport,
    /// With [`FetchRequest::filter`]: what the record selection found.
    pub selection: Option<WhereReport>,
}

/// What a `--where` record selection found while planning from the headers.
#[derive(Debug, Clone, Default)]
pub struct WhereReport {
    /// Records the headers describe.
    pub planned: usize,
    /// Records the filter selected (those that could not be planned are left out).
    pub selected: usize,
    /// Header files that could not be fetched and records that could not be planned
    /// (path or record name, and why); they are not fetched.
    pub failed: Vec<(String, String)>,
}

/// The result of [`fetch()`].
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one value per run; boxing buys nothing
pub enum FetchOutcome {
    /// A PhysioNet-shaped source (physionet.org, a mirror, `file://`, AWS).
    PhysioNet(Fetched),
    /// A Kaggle dataset.
    Kaggle(KaggleReport),
}

impl FetchOutcome {
    /// The version fetched (a Kaggle version number as text).
    pub fn version(&self) -> String {
        match self {
            FetchOutcome::PhysioNet(f) => f.version.clone(),
            FetchOutcome::Kaggle(k) => k.version.to_string(),
        }
    }

    /// The local version directory, when the destination is a directory.
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            FetchOutcome::PhysioNet(f) => f.version_dir.as_deref(),
            FetchOutcome::Kaggle(k) => Some(&k.dir),
        }
    }

    /// True when this run changed the local copy (a file was written or deleted).
    pub fn changed(&self) -> bool {
        match self {
            FetchOutcome::PhysioNet(f) => !f.report.done.is_empty() || !f.report.deleted.is_empty(),
            FetchOutcome::Kaggle(k) => k.fetched > 0,
        }
    }

    /// Files that failed.
    pub fn failed(&self) -> usize {
        match self {
            FetchOutcome::PhysioNet(f) => f.report.failed.len(),
            FetchOutcome::Kaggle(k) => k.failed.len(),
        }
    }

    /// The exit code of the run (0, or the most serious failure class).
    pub fn exit_code(&self) -> u8 {
        match self {
            FetchOutcome::PhysioNet(f) => f.report.exit_code(),
            FetchOutcome::Kaggle(k) => FetchOutcome::kaggle_exit_code(k),
        }
    }

    /// The exit code of a Kaggle run: 0, or its most serious failure class (at least 1).
    pub fn kaggle_exit_code(k: &KaggleReport) -> u8 {
        if k.failed.is_empty() {
            EXIT_OK
        } else {
            k.exit_code.max(EXIT_PARTIAL)
        }
    }
}

/// What a PhysioNet-shaped fetch would transfer (`--dry-run`).
#[derive(Debug, Clone)]
pub struct DryRun {
    /// Project slug.
    pub dataset: String,
    /// The version.
    pub version: String,
    /// Where it would go (version directory or store URL).
    pub dest: String,
    /// True when the version publishes `SHA256SUMS.txt`.
    pub checksums: bool,
    /// The files that would be transferred (those not already verified).
    pub files: Vec<Entry>,
    /// Their total size (of those whose size is known).
    pub total_bytes: u64,
    /// How many have no known size.
    pub unknown_sizes: usize,
    /// Selected files already verified at the destination.
    pub already_verified: usize,
}

/// The result of [`fetch_plan`].
#[derive(Debug)]
pub enum PlanOutcome {
    /// A PhysioNet-shaped source.
    PhysioNet(DryRun),
    /// A Kaggle dataset (its report has mode `dry_run`).
    Kaggle(KaggleReport),
}

/// The remote files of a version ([`ls()`]).
#[derive(Debug, Clone)]
pub struct Listing {
    /// Project slug.
    pub dataset: String,
    /// The version.
    pub version: String,
    /// True when the version publishes `SHA256SUMS.txt`.
    pub checksums: bool,
    /// The selected files with sizes (from listings) and digests.
    pub files: Vec<Entry>,
}

/// A resolved dataset version: where it is, what it holds, and the downloader to use.
pub struct Resolved {
    /// The source (base URL and layout).
    pub source: PhysioNet,
    /// The dataset's slug.
    pub slug: String,
    /// The version (as asked, or the newest).
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

    /// The version as [`crate::catalog`] plans it: files go to `dir` (the local
    /// version directory); `base` is [`Resolved::base`].
    pub fn remote<'a>(&'a self, base: &'a Url, dir: &'a Path) -> Remote<'a> {
        Remote {
            downloader: &self.downloader,
            base,
            manifest: &self.manifest,
            dir,
        }
    }
}

/// The PhysioNet source and downloader for `req`, and the spec's slug and version.
fn source_of(
    req: &FetchRequest,
    opts: DownloaderOptions,
) -> Result<(PhysioNet, Downloader, String, Option<String>)> {
    let (slug, version) = match DatasetSpec::parse(&req.dataset)? {
        DatasetSpec::PhysioNet { slug, version } => (slug, version),
        DatasetSpec::Kaggle { .. } => return Err(SourceError::Unsupported("Kaggle").into()),
    };
    let layout = req.source.layout();
    let default = if layout == Layout::Aws {
        AWS_BASE
    } else {
        DEFAULT_BASE
    };
    let src = PhysioNet::new(req.base_url.as_deref().unwrap_or(default), layout)?;
    let creds = Url::parse(src.base().as_str())
        .ok()
        .filter(|u| u.scheme() != "file")
        .and_then(|u| Credentials::lookup(&u));
    let client = HttpClient::new(creds, Duration::from_secs(30))?;
    Ok((src, Downloader::new(client, opts), slug, version))
}

/// Resolves a PhysioNet-shaped `req.dataset`: builds the client (with credentials for
/// the source's realm), finds the version (the spec's, else the newest) and reads its
/// manifest. Kaggle specs are [`SourceError::Unsupported`]. The one resolution behind
/// `fetch`, `ls`, `ls --records` and `convert <dataset>`.
pub async fn resolve(req: &FetchRequest, opts: DownloaderOptions) -> Result<Resolved> {
    let (source, downloader, slug, version) = source_of(req, opts)?;
    let version = match version {
        Some(v) => v,
        None => source.resolve_version(&downloader, &slug).await?,
    };
    let manifest = source.manifest(&downloader, &slug, &version).await?;
    Ok(Resolved {
        source,
        slug,
        version,
        manifest,
        downloader,
    })
}

/// `--source auto`: takes the bytes from the AWS open-data mirror when it holds this
/// version, each file checked against the origin's checksums (so only when the
/// version publishes them); otherwise the downloader is left as it was.
pub(crate) async fn with_mirror(req: &FetchRequest, r: Resolved) -> Resolved {
    if req.source != FetchSource::Auto || !r.manifest.has_checksums {
        return r;
    }
    let Some(bucket) = crate::source::aws::bucket_url(req.base_url.is_none()) else {
        return r;
    };
    match crate::source::aws::probe(
        &r.downloader,
        &bucket,
        &r.slug,
        &r.version,
        &r.source.version_url(&r.slug, &r.version),
    )
    .await
    {
        Some(m) => Resolved {
            downloader: r.downloader.with_mirror(m),
            ..r
        },
        None => r,
    }
}

/// The newest published version of the PhysioNet dataset `req.dataset` names (its
/// `@version`, if any, is ignored). Reads no manifest and downloads no file.
pub async fn latest_version(req: &FetchRequest) -> Result<String> {
    let (source, downloader, slug, _) = source_of(req, DownloaderOptions::default())?;
    source.resolve_version(&downloader, &slug).await
}

/// Lists the remote files of a PhysioNet-shaped dataset version (`physio ls`).
pub async fn ls(req: &FetchRequest) -> Result<Listing> {
    let selection = req.selection()?;
    let mut r = resolve(req, DownloaderOptions::default()).await?;
    r.source
        .fill_sizes(&r.downloader, &r.slug, &r.version, &mut r.manifest)
        .await?;
    Ok(Listing {
        files: selection.apply(&r.manifest.entries),
        dataset: r.slug,
        version: r.version,
        checksums: r.manifest.has_checksums,
    })
}

/// What [`fetch()`] would transfer, without downloading (`physio fetch --dry-run`).
pub async fn fetch_plan(req: &FetchRequest) -> Result<PlanOutcome> {
    let target = req.target()?;
    if req.is_kaggle() {
        refuse_for_kaggle(req, target.is_some())?;
        return Ok(PlanOutcome::Kaggle(
            fetch_kaggle(req, true, &crate::fetch::NoReporter).await?,
        ));
    }
    let (opts, selection, store) = prepare(req, target.as_ref())?;
    let mut r = resolve(req, opts).await?;
    let (selection, _) = where_selection(
        req,
        &r,
        &req.out.join(&r.slug).join(&r.version),
        selection,
        &crate::fetch::NoReporter,
    )
    .await?;
    r.source
        .fill_sizes(&r.downloader, &r.slug, &r.version, &mut r.manifest)
        .await?;
    let version_dir = req.out.join(&r.slug).join(&r.version);
    let mut entries = selection.apply(&r.manifest.entries);
    if let Some(shard) = req.shard {
        // What this shard would fetch, as far as the local headers tell (else by stem).
        let keys = file_keys(&version_dir, &entries);
        entries.retain(|e| is_index_file(&e.path) || shard.contains(key_of(&keys, &e.path)));
    }
    // Files the state cache (or, in a store, the objects' recorded digests) already
    // vouch for would not be transferred.
    let dest = destination(&store, &r, &version_dir, &FetchOptions::default());
    let jobs = req.jobs.unwrap_or(DEFAULT_JOBS);
    let present = dest.already_present(&entries, jobs).await?;
    let dest = dest.describe();
    entries.retain(|e| !present.contains(&e.path));
    Ok(PlanOutcome::PhysioNet(DryRun {
        total_bytes: entries.iter().filter_map(|e| e.size).sum(),
        unknown_sizes: entries.iter().filter(|e| e.size.is_none()).count(),
        files: entries,
        dataset: r.slug,
        version: r.version,
        dest,
        checksums: r.manifest.has_checksums,
        already_verified: present.len(),
    }))
}

/// Fetches `req.dataset` (`physio fetch`): every selected file is downloaded unless a
/// verified copy is already at the destination. Per-file failures are in the report;
/// an `Err` means nothing could be attempted (bad request, unknown dataset, lock held).
///
/// ```no_run
/// use physio::ops::{FetchOutcome, FetchRequest, fetch};
/// let mut req = FetchRequest::new("mitdb@1.0.0", "physionet");
/// req.include = vec!["100.*".into()];
/// let rt = tokio::runtime::Runtime::new()?;
/// let outcome = rt.block_on(fetch(&req, &physio::fetch::NoReporter))?;
/// if let FetchOutcome::PhysioNet(f) = &outcome {
///     println!("{} files into {}", f.report.done.len(), f.dest);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn fetch(req: &FetchRequest, reporter: &dyn Reporter) -> Result<FetchOutcome> {
    // A bad `--out` URL is a usage error before anything else happens.
    let target = req.target()?;
    if req.is_kaggle() {
        refuse_for_kaggle(req, target.is_some())?;
        return Ok(FetchOutcome::Kaggle(
            fetch_kaggle(req, false, reporter).await?,
        ));
    }
    let (opts, selection, store) = prepare(req, target.as_ref())?;
    let r = with_mirror(req, resolve(req, opts).await?).await;
    let during = |e: Error| Error::during(format!("fetching {}@{}", r.slug, r.version), e);
    let version_dir = req.out.join(&r.slug).join(&r.version);
    let (selection, where_report) =
        where_selection(req, &r, &version_dir, selection, reporter).await?;
    let entries = selection.apply(&r.manifest.entries);
    let plan_of = |dir: PathBuf, entries: Vec<Entry>| FetchPlan {
        dir,
        base: r.source.version_url(&r.slug, &r.version),
        entries,
        upstream: r.manifest.entries.iter().map(|e| e.path.clone()).collect(),
        sums_text: r.manifest.sums_text.clone(),
    };
    let fopts = FetchOptions {
        delete: req.delete,
        ..FetchOptions::for_shard(req.shard)
    };
    // Into a store, files are staged (and verified) one by one in a private temporary
    // directory before upload; it is removed when the run ends.
    let staging = match &store {
        Some(_) => Some(
            tempfile::Builder::new()
                .prefix("physio-fetch-")
                .tempdir()
                .map_err(|e| Error::io(std::env::temp_dir(), e))?,
        ),
        None => None,
    };
    let dest = destination(&store, &r, &version_dir, &fopts);
    let (entries, first) = match (store.is_some(), req.shard) {
        (true, Some(shard)) => {
            let mut entries = entries;
            entries.retain(|e| is_index_file(&e.path) || shard.contains(record_stem(&e.path)));
            (entries, None)
        }
        (false, Some(shard)) if shard.count > 1 => {
            // Phase 1: the index files, one shard at a time.
            let (index, rest): (Vec<Entry>, Vec<Entry>) =
                entries.into_iter().partition(|e| is_index_file(&e.path));
            let shared = FetchOptions::shared();
            let plan = plan_of(version_dir.clone(), index);
            let report = crate::fetch::run(
                &plan,
                destination(&store, &r, &version_dir, &shared).as_ref(),
                &r.downloader,
                &shared,
                reporter,
            )
            .await
            .map_err(during)?;
            // Phase 2: this shard's records' files, by record name.
            let keys = file_keys(&version_dir, &rest);
            let mine: Vec<Entry> = rest
                .into_iter()
                .filter(|e| shard.contains(key_of(&keys, &e.path)))
                .collect();
            (mine, Some((plan.entries.len(), report)))
        }
        _ => (entries, None),
    };
    let total_files = entries.len() + first.as_ref().map_or(0, |(n, _)| *n);
    let plan = plan_of(
        staging
            .as_ref()
            .map_or(version_dir.clone(), |s| s.path().to_path_buf()),
        entries,
    );
    let shown = dest.describe();
    let own = crate::fetch::run(&plan, dest.as_ref(), &r.downloader, &fopts, reporter)
        .await
        .map_err(|e| match store.is_some() {
            true => Error::during(format!("fetching {}@{} into {shown}", r.slug, r.version), e),
            false => during(e),
        })?;
    let report = match first {
        Some((_, mut report)) => {
            report.merge(own);
            report
        }
        None => own,
    };
    let local = store.is_none().then_some(version_dir);
    let dest = shown;
    Ok(FetchOutcome::PhysioNet(Fetched {
        dataset: r.slug,
        version: r.version,
        dest,
        version_dir: local,
        checksums: r.manifest.has_checksums,
        total_files,
        report,
        selection: where_report,
    }))
}

/// A store for `target`, with the target.
type StoreTarget<'a> = (Box<dyn object_store::ObjectStore>, &'a ObjectUrl);

/// Where a fetch of `r` puts its files: the version prefix `<target>/<slug>/<version>`
/// in `store`, else the local version directory `version_dir` (locked and recorded as
/// `fopts` says). The one fetch loop, `fetch::run`, drives either.
fn destination<'a>(
    store: &'a Option<StoreTarget<'_>>,
    r: &Resolved,
    version_dir: &Path,
    fopts: &FetchOptions,
) -> Box<dyn Destination + 'a> {
    match store {
        Some((store, t)) => {
            let upload = UploadOptions {
                pause_before_complete: objstore::pause_from_env(),
                ..UploadOptions::default()
            };
            let prefix = t.join(&format!("{}/{}", r.slug, r.version));
            Box::new(StoreDestination::new(store.as_ref(), prefix, upload))
        }
        None => Box::new(LocalDir::new(version_dir, fopts)),
    }
}

/// The checked downloader options, the selection, and the destination store of a
/// PhysioNet request: every usage error before any network traffic.
fn prepare<'a>(
    req: &FetchRequest,
    target: Option<&'a ObjectUrl>,
) -> Result<(DownloaderOptions, Selection, Option<StoreTarget<'a>>)> {
    let (opts, selection) = (req.downloader_options()?, req.selection()?);
    if req.filter.is_some() && target.is_some() {
        return Err(Error::Usage("--where needs a local --out directory".into()));
    }
    let store = target
        .map(|t| Ok::<_, Error>((objstore::build_store(t)?, t)))
        .transpose()?;
    Ok((opts, selection, store))
}

/// With [`FetchRequest::filter`]: plans the records from their headers (fetched into
/// `version_dir`, verified like any file) and narrows `selection` to the files of the
/// records the filter selects (intersected with [`FetchRequest::records`]). An empty
/// selection selects no file, not every file. Without a filter: `selection` unchanged.
async fn where_selection(
    req: &FetchRequest,
    r: &Resolved,
    version_dir: &Path,
    selection: Selection,
    reporter: &dyn Reporter,
) -> Result<(Selection, Option<WhereReport>)> {
    let Some(filter) = &req.filter else {
        return Ok((selection, None));
    };
    let base = r.base();
    let catalog = crate::catalog::plan(
        &r.remote(&base, version_dir),
        &CatalogOptions::default(),
        reporter,
    )
    .await?;
    let listed: Option<HashSet<&str>> = req.records.as_ref().map(|names| {
        names
            .iter()
            .map(|l| l.trim().trim_end_matches(".hea"))
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    });
    let names: Vec<&str> = catalog
        .selected(Some(filter))
        .map(|r| r.name.as_str())
        .filter(|n| listed.as_ref().is_none_or(|l| l.contains(n)))
        .collect();
    let report = WhereReport {
        planned: catalog.records.len(),
        selected: names.len(),
        failed: catalog.failures(),
    };
    // `Selection` treats a given records list as the whole allow-list.
    let selection = Selection::new(&req.include, &req.exclude, Some(&names.join("\n")), None)?;
    Ok((selection, Some(report)))
}

/// A Kaggle fetch as plan → download → extract. The plan (`source::kaggle::plan`) is
/// made with the API client, the only one holding Kaggle's credentials (it follows no
/// redirects); its transfers are downloaded through the shared [`Downloader`], whose
/// client has no credentials at all, so they can never reach the storage host; the
/// extraction step installs the result (safe extraction into staging, then rename).
async fn fetch_kaggle(
    req: &FetchRequest,
    dry_run: bool,
    reporter: &dyn Reporter,
) -> Result<KaggleReport> {
    let opts = kaggle_options(req, dry_run)?;
    let dl = Downloader::new(
        HttpClient::new(None, Duration::from_secs(30))?,
        opts.downloader.clone(),
    );
    // API calls retry like the downloads, from the same run-wide budget.
    let api = kaggle::KaggleApi::new(&opts.api_base, opts.credentials.clone())?
        .with_retry(opts.downloader.retry.clone(), dl.retry_budget());
    let plan = kaggle::plan(&opts, &api).await?;
    let transfers = plan.transfers();
    if transfers.is_empty() {
        return plan.extract(Vec::new()).await;
    }
    reporter.on_plan(transfers.len(), plan.planned_bytes());
    let progress = |n| reporter.on_bytes(n);
    use futures_util::StreamExt as _;
    let results: Vec<(KaggleTransfer, kaggle::TransferResult)> =
        futures_util::stream::iter(transfers.iter().map(|t| {
            let (plan, api, dl, progress) = (&plan, &api, &dl, &progress);
            async move {
                reporter.on_file_start(&t.name);
                let res = plan.download(api, dl, t, progress).await;
                let outcome = match &res {
                    Ok(Some(_)) => Outcome::Fetched,
                    Ok(None) => Outcome::Skipped,
                    Err(_) => Outcome::Failed,
                };
                reporter.on_file_done(&t.name, outcome);
                (t.clone(), res)
            }
        }))
        .buffer_unordered(dl.jobs())
        .collect()
        .await;
    reporter.on_finish();
    plan.extract(results).await
}

/// PhysioNet-only options given for a Kaggle dataset: refused rather than ignored.
fn refuse_for_kaggle(req: &FetchRequest, to_store: bool) -> Result<()> {
    if to_store {
        return Err(Error::Usage(
            "object-store output (--out s3://…) is supported for PhysioNet datasets only; fetch Kaggle datasets to a local directory".to_string(),
        ));
    }
    for (given, flag) in [
        (req.records.is_some(), "--records"),
        (req.shard.is_some(), "--shard"),
        (req.delete, "--delete"),
        (req.filter.is_some(), "--where"),
        (req.source == FetchSource::Aws, "--source"),
    ] {
        if given {
            return Err(Error::Usage(format!(
                "{flag} is not supported for Kaggle datasets"
            )));
        }
    }
    Ok(())
}

/// The Kaggle fetch options for `req` (credentials from the environment or
/// `~/.kaggle/kaggle.json`, API base from `PHYSIO_KAGGLE_URL`).
fn kaggle_options(req: &FetchRequest, dry_run: bool) -> Result<KaggleFetchOptions> {
    let dataset = KaggleRef::parse(&req.dataset)?;
    let credentials = find_credentials(&|k| std::env::var(k).ok())
        .map_err(|e| Error::from(kaggle::KaggleError::from(e)))?;
    Ok(KaggleFetchOptions {
        dataset,
        out: req.out.clone(),
        api_base: kaggle_api_base(),
        credentials,
        include: req.include.clone(),
        exclude: req.exclude.clone(),
        limits: ExtractLimits {
            max_ratio: DEFAULT_MAX_RATIO,
            max_bytes: req.max_extract,
        },
        dry_run,
        downloader: DownloaderOptions {
            jobs: req.jobs.unwrap_or(DEFAULT_JOBS).clamp(1, 256),
            search_connections: false,
            retry: RetryPolicy {
                max_attempts: req.retries.max(1),
                ..RetryPolicy::default()
            },
            retry_budget: 1000,
            stall_timeout: req.stall_timeout.max(Duration::from_millis(100)),
            split_min: req.split_min,
            max_rate: req.max_rate,
        },
    })
}

/// `PHYSIO_KAGGLE_URL`, else Kaggle's public API base.
pub fn kaggle_api_base() -> String {
    std::env::var(EnvVars::PHYSIO_KAGGLE_URL)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| kaggle::DEFAULT_API_BASE.to_string())
}

/// True for the files every shard fetches (phase 1 in the module docs): `RECORDS`
/// files, WFDB headers and CSV tables.
fn is_index_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "RECORDS" || name.ends_with(".hea") || name.to_ascii_lowercase().ends_with(".csv")
}

/// `dir/rec` for `dir/rec.ext` (and `dir/rec.ext.gz`): the record a file is named for.
fn stem(path: &str) -> &str {
    let start = path.rfind('/').map_or(0, |i| i + 1);
    match path[start..].find('.') {
        Some(dot) if dot > 0 => &path[..start + dot],
        _ => path,
    }
}

/// The record `path` is named for, without reading any header: an EDF file is a
/// record of its own, named with its extension (as `convert` discovers it, so
/// `x.edf` beside WFDB's `x.hea` is record `x.edf`, not part of `x`); any other file
/// belongs to its [`stem`].
fn record_stem(path: &str) -> &str {
    if crate::edf::is_edf_path(Path::new(path)) {
        path
    } else {
        stem(path)
    }
}

/// The shard key of `path`: its record's name when known, else the path itself.
fn key_of<'a>(keys: &'a HashMap<String, String>, path: &'a str) -> &'a str {
    keys.get(path).map_or(path, String::as_str)
}

/// Which record each of `entries` belongs to, from the records and headers under
/// `root` (as `convert` discovers them). Files named by no header and sharing no
/// record's stem are left out (they are keyed by their own path).
fn file_keys(root: &Path, entries: &[Entry]) -> HashMap<String, String> {
    let mut keys = HashMap::new();
    let records: Vec<String> = match crate::convert::discover(root) {
        Ok(d) if root.is_dir() => d.records.into_iter().map(|r| r.name).collect(),
        _ => Vec::new(),
    };
    let names: HashSet<&str> = records.iter().map(String::as_str).collect();
    let wanted: HashSet<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    for rec in &records {
        for file in record_files(root, rec) {
            if wanted.contains(file.as_str()) {
                keys.entry(file).or_insert_with(|| rec.clone());
            }
        }
    }
    for e in entries {
        let s = record_stem(&e.path);
        if !keys.contains_key(&e.path) && names.contains(s) {
            keys.insert(e.path.clone(), s.to_string());
        }
    }
    keys
}

/// The files record `name` under `root` reads, as its headers name them: its header,
/// the headers of its segments (multi-segment records) and every signal file. Headers
/// that cannot be read contribute nothing (the conversion reports them).
fn record_files(root: &Path, name: &str) -> BTreeSet<String> {
    let dir = match name.rsplit_once('/') {
        Some((d, _)) => format!("{d}/"),
        None => String::new(),
    };
    let mut files = BTreeSet::new();
    let mut headers = vec![format!("{name}.hea")];
    let mut seen = 0;
    while seen < headers.len() {
        let rel = headers[seen].clone();
        seen += 1;
        let Ok(h) = crate::wfdb::header::read_header(&root.join(&rel)) else {
            continue;
        };
        files.insert(rel);
        if seen == 1
            && let Some(segments) = &h.segments
        {
            headers.extend(
                segments
                    .iter()
                    .filter(|s| !s.is_gap())
                    .map(|s| format!("{dir}{}.hea", s.name)),
            );
        }
        files.extend(
            h.signals
                .iter()
                .filter(|s| s.file_name != "~")
                .map(|s| format!("{dir}{}", s.file_name)),
        );
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_and_index_files() {
        assert_eq!(stem("p00/100.dat"), "p00/100");
        assert_eq!(stem("a103l.mat"), "a103l");
        assert_eq!(stem("RECORDS"), "RECORDS");
        assert_eq!(stem("dir.v2/x"), "dir.v2/x");
        // EDF files are records named with their extension (`convert::discover`).
        assert_eq!(record_stem("chb01/chb01_01.edf"), "chb01/chb01_01.edf");
        assert_eq!(record_stem("chb01/chb01_01.EDF"), "chb01/chb01_01.EDF");
        assert_eq!(record_stem("p00/100.dat"), "p00/100");
        for p in ["RECORDS", "p00/RECORDS", "100.hea", "ptbxl_database.csv"] {
            assert!(is_index_file(p), "{p}");
        }
        for p in ["100.dat", "100.atr", "RECORDS.txt", "a.mat"] {
            assert!(!is_index_file(p), "{p}");
        }
    }

    #[test]
    fn multi_segment_files_follow_their_record() {
        // The fixture mirror's 041s is a multi-segment record whose segments (041s01,
        // 041s02) share no `_NNNN` naming with it: only the headers tell.
        let root =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mirror/files/physio-demo/1.0.0");
        let entries: Vec<Entry> = [
            "041s01.dat",
            "041s02.dat",
            "041s01.hea",
            "100.atr",
            "100.dat",
            "a103l.mat",
            "README.md",
        ]
        .iter()
        .map(|p| Entry {
            path: p.to_string(),
            size: None,
            sha256: None,
        })
        .collect();
        let keys = file_keys(&root, &entries);
        assert_eq!(key_of(&keys, "041s01.dat"), "041s");
        assert_eq!(key_of(&keys, "041s02.dat"), "041s");
        assert_eq!(key_of(&keys, "041s01.hea"), "041s");
        assert_eq!(key_of(&keys, "100.atr"), "100");
        assert_eq!(key_of(&keys, "100.dat"), "100");
        assert_eq!(key_of(&keys, "a103l.mat"), "a103l");
        assert_eq!(key_of(&keys, "README.md"), "README.md");
    }

    #[test]
    fn an_edf_file_beside_a_wfdb_record_is_its_own_record() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("x.hea"),
            "x 1 250 10\nx.dat 16 200 16 0 0 0 0 I\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("x.edf"), b"").unwrap();
        let entries: Vec<Entry> = ["x.dat", "x.edf", "y.edf"]
            .iter()
            .map(|p| Entry {
                path: p.to_string(),
                size: None,
                sha256: None,
            })
            .collect();
        let keys = file_keys(dir.path(), &entries);
        assert_eq!(key_of(&keys, "x.dat"), "x");
        assert_eq!(key_of(&keys, "x.edf"), "x.edf");
        assert_eq!(key_of(&keys, "y.edf"), "y.edf");
    }
}
