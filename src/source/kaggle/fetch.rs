//! Fetching a Kaggle dataset version, as a plan plus an extraction step: [`plan`]
//! resolves the version and yields a [`KagglePlan`] (the whole archive, or with
//! `--include`/`--exclude` single files; where each lands; what is already there);
//! `ops::fetch` downloads its transfers through the shared engine
//! ([`KagglePlan::download`]); [`KagglePlan::extract`] extracts the archive safely into
//! a staging directory and renames it into place with a `SHA256SUMS.txt`, or unpacks
//! and records single files. Plus listing.
//!
//! The API request that carries credentials is made by [`super::KaggleApi`] without
//! following redirects; the signed storage URL it redirects to goes to the engine
//! ([`crate::fetch::Downloader`]) whose client has no credentials at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::StreamExt as _;
use reqwest::StatusCode;
use reqwest::header;
use url::Url;

use super::{KaggleApi, KaggleError, KaggleRef, RemoteFile, SPEC_PREFIX, StorageHashes, redacted};
use crate::auth::kaggle::KaggleCredentials;
use crate::extract::ExtractLimits;
use crate::fetch::{Downloader, DownloaderOptions, Expected};

/// The name of the checksum file physio writes in every Kaggle version directory, in
/// PhysioNet's format (`<sha256-hex>  <path>` per line), so `physio verify` and re-runs
/// treat Kaggle and PhysioNet copies alike.
pub const SUMS_FILE: &str = "SHA256SUMS.txt";

/// physio's marker (a `.physio*` state entry) that a version directory holds the whole
/// archive, not just files fetched with `--include`: only then may a whole-version fetch
/// call an intact copy up to date.
pub const COMPLETE_MARK: &str = ".physio-complete";

/// What to fetch from Kaggle and where to put it.
#[derive(Debug, Clone)]
pub struct KaggleFetchOptions {
    /// The dataset (and optional pinned version).
    pub dataset: KaggleRef,
    /// The output directory (`DIR`); files land in `DIR/kaggle/<owner>/<dataset>/<v>/`.
    pub out: PathBuf,
    /// The API base (`PHYSIO_KAGGLE_URL` or [`super::DEFAULT_API_BASE`]).
    pub api_base: String,
    /// Credentials, if any were found.
    pub credentials: Option<KaggleCredentials>,
    /// Only files whose dataset path matches one of these globs (then files are fetched
    /// one by one instead of as the whole archive).
    pub include: Vec<String>,
    /// Skip files whose dataset path matches one of these globs.
    pub exclude: Vec<String>,
    /// Bounds on archive expansion.
    pub limits: ExtractLimits,
    /// Resolve and list only; download nothing.
    pub dry_run: bool,
    /// The download engine's settings (concurrency, retries, stall timeout).
    pub downloader: DownloaderOptions,
}

/// How a version was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchMode {
    /// The local copy already matched its `SHA256SUMS.txt`; nothing was downloaded.
    UpToDate,
    /// The whole version was downloaded as one archive and extracted.
    Archive,
    /// Selected files were downloaded one by one (`--include`/`--exclude`).
    Files,
    /// `--dry-run`: nothing was downloaded.
    DryRun,
}

/// The outcome of a Kaggle fetch ([`KagglePlan::extract`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KaggleReport {
    /// `kaggle:<owner>/<dataset>`.
    pub dataset: String,
    /// The version fetched.
    pub version: u32,
    /// The version directory.
    pub dir: PathBuf,
    /// How it was obtained.
    pub mode: FetchMode,
    /// Files in the version directory's `SHA256SUMS.txt` (or, for a dry run, that would be).
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Bytes transferred over the network in this run.
    pub downloaded: u64,
    /// Files written in this run (every file of an extracted archive).
    pub fetched: usize,
    /// Files already present and verified, so not downloaded.
    pub skipped: usize,
    /// Files that failed (`--include` mode), with why; the rest were kept.
    pub failed: Vec<(String, String)>,
    /// The worst exit code among `failed` (0 when none failed).
    #[serde(skip)]
    pub exit_code: u8,
}

/// A resolved Kaggle fetch: what to download and where each download goes, before any
/// byte of the dataset is downloaded. [`plan`] makes it; the caller (`ops::fetch`)
/// downloads each of [`KagglePlan::transfers`] with [`KagglePlan::download`] through
/// the shared [`Downloader`], then hands the results to [`KagglePlan::extract`], which
/// extracts the archive (or unpacks and hashes single files), writes `SHA256SUMS.txt`
/// and renames into place. The plan holds the dataset's directory lock until then.
#[derive(Debug)]
pub struct KagglePlan {
    /// The dataset.
    pub dataset: KaggleRef,
    /// The version resolved.
    pub version: u32,
    /// The version directory, `DIR/kaggle/<owner>/<dataset>/<version>`.
    pub dir: PathBuf,
    /// What the run does.
    pub step: KaggleStep,
    /// `DIR/kaggle/<owner>/<dataset>`, where staging happens.
    dataset_dir: PathBuf,
    limits: ExtractLimits,
    /// The version directory's `SHA256SUMS.txt` before the run (files mode).
    sums: BTreeMap<String, String>,
    /// Listed files refused at planning (a name that would escape the version
    /// directory): reported as failed, the rest fetched.
    refused: Vec<(String, crate::Error)>,
    /// One run at a time per dataset (held from planning to extraction).
    _lock: Option<crate::fetch::DirLock>,
}

/// What a [`KagglePlan`] does.
#[derive(Debug)]
pub enum KaggleStep {
    /// Nothing to download: the complete local copy matches its `SHA256SUMS.txt`.
    UpToDate {
        /// Files verified.
        files: usize,
        /// Their total size in bytes.
        bytes: u64,
    },
    /// `--dry-run`: what would be fetched; nothing is downloaded.
    DryRun {
        /// Files listed.
        files: usize,
        /// Their total listed size in bytes.
        bytes: u64,
    },
    /// The whole version as Kaggle's zip, extracted safely into place by
    /// [`KagglePlan::extract`].
    Archive(KaggleTransfer),
    /// Selected files (`--include`/`--exclude`), each to its place in the version
    /// directory.
    Files(Vec<KaggleTransfer>),
}

/// One download of a [`KagglePlan`].
#[derive(Debug, Clone)]
pub struct KaggleTransfer {
    /// The dataset path of the file (or `<dataset>-<version>.zip` for the archive).
    pub name: String,
    /// The API URL; the API answers it with a redirect to a signed storage URL.
    pub api_url: Url,
    /// Where the verified bytes land: the archive's staging file in the dataset
    /// directory, or the file's final path in the version directory.
    pub dest: PathBuf,
    /// The size Kaggle lists, if any.
    pub size: Option<u64>,
    /// The SHA-256 the local `SHA256SUMS.txt` records: a file already at `dest` with it
    /// is not downloaded again.
    pub known_sha256: Option<String>,
    /// The request, for messages (`kaggle:o/d@3: file.csv`).
    what: String,
}

/// A transfer's verified bytes, waiting for [`KagglePlan::extract`].
#[derive(Debug)]
pub struct Landed {
    /// Where they are: the transfer's `dest`, or a `.physio-zip-*` file beside it when
    /// Kaggle served a single file as `<file>.zip`.
    path: PathBuf,
    /// Body bytes transferred over the network.
    pub transferred: u64,
    /// True when `path` is a one-entry zip still to be unpacked to `dest`.
    zipped: bool,
}

/// A transfer's result: `Ok(None)` when the file was already intact.
pub type TransferResult = Result<Option<Landed>, crate::Error>;

/// Resolves a Kaggle fetch into a [`KagglePlan`]: checks the credentials, resolves
/// the version, and either lists the files that pass `include`/`exclude` or plans the
/// whole archive; a complete local copy that matches its `SHA256SUMS.txt` plans
/// nothing. Takes the dataset's directory lock unless `opts.dry_run`. `api` carries
/// the credentials; it is the only client that talks to the API host.
pub async fn plan(opts: &KaggleFetchOptions, api: &KaggleApi) -> Result<KagglePlan, crate::Error> {
    let r = &opts.dataset;
    if api.credentials().is_some() {
        api.check_credentials(r).await?;
    }
    let version = api.resolve_version(r).await?;
    let vdir = r.version_dir(&opts.out, version);
    let ddir = r.dataset_dir(&opts.out);
    let filter = Filter::new(&opts.include, &opts.exclude)?;
    tracing::info!(dataset = %r, version, dir = %vdir.display(), "resolved Kaggle dataset");
    let plan = |step, sums, lock| KagglePlan {
        dataset: r.clone(),
        version,
        dir: vdir.clone(),
        step,
        dataset_dir: ddir.clone(),
        limits: opts.limits,
        sums,
        refused: Vec::new(),
        _lock: lock,
    };

    let Some(filter) = filter else {
        if opts.dry_run {
            let files = api.list_files(r, version).await?;
            let bytes = files.iter().filter_map(|f| f.total_bytes).sum();
            let step = KaggleStep::DryRun {
                files: files.len(),
                bytes,
            };
            return Ok(plan(step, BTreeMap::new(), None));
        }
        // One run at a time per dataset: a whole-archive run replaces the version dir.
        std::fs::create_dir_all(&ddir).map_err(|e| crate::Error::io(&ddir, e))?;
        let lock = crate::fetch::DirLock::acquire(&ddir, None)?;
        // Re-check the local copy first: a complete, intact version is not fetched again.
        let complete = vdir.join(SUMS_FILE).is_file() && vdir.join(COMPLETE_MARK).is_file();
        if complete {
            let check = vdir.clone();
            let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
            let v = blocking(move || crate::fetch::verify::verify_dir(&check, jobs)).await?;
            match v {
                Ok(v) if v.exit_code() == 0 => {
                    let step = KaggleStep::UpToDate {
                        files: v.ok.len(),
                        bytes: v.bytes,
                    };
                    return Ok(plan(step, BTreeMap::new(), Some(lock)));
                }
                Ok(v) => tracing::warn!(
                    missing = v.missing.len(),
                    mismatched = v.mismatched.len(),
                    "local copy differs from its SHA256SUMS.txt; fetching the version again"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot re-check the local copy; fetching again")
                }
            }
        }
        let archive = KaggleTransfer {
            name: format!("{}-{version}.zip", r.dataset),
            api_url: api.download_url(r, version, None),
            dest: ddir.join(format!(".physio-archive-{version}.zip")),
            size: None,
            known_sha256: None,
            what: format!("{r}@{version}"),
        };
        return Ok(plan(
            KaggleStep::Archive(archive),
            BTreeMap::new(),
            Some(lock),
        ));
    };

    // Selected files, one request each (`datasets/download/{o}/{d}/{file}`).
    let listing = api.list_files(r, version).await?;
    let selected: Vec<RemoteFile> = listing
        .into_iter()
        .filter(|f| filter.matches(&f.name))
        .collect();
    if opts.dry_run {
        let bytes = selected.iter().filter_map(|f| f.total_bytes).sum();
        let step = KaggleStep::DryRun {
            files: selected.len(),
            bytes,
        };
        return Ok(plan(step, BTreeMap::new(), None));
    }
    // The same lock as whole-archive runs, which replace the version directory.
    let lock = crate::fetch::DirLock::acquire(&ddir, None)?;
    std::fs::create_dir_all(&vdir).map_err(|e| crate::Error::io(&vdir, e))?;
    let sums = read_sums(&vdir)?;
    let mut transfers = Vec::with_capacity(selected.len());
    let mut refused = Vec::new();
    for f in selected {
        // A hostile listing cannot name a path outside the version directory.
        let rel = match crate::fsutil::enclosed_path(&f.name) {
            Ok(rel) => rel,
            Err(e) => {
                refused.push((f.name, e));
                continue;
            }
        };
        transfers.push(KaggleTransfer {
            api_url: api.download_url(r, version, Some(&f.name)),
            dest: vdir.join(rel),
            size: f.total_bytes,
            known_sha256: sums.get(&f.name).cloned(),
            what: format!("{r}@{version}: {}", f.name),
            name: f.name,
        });
    }
    let mut p = plan(KaggleStep::Files(transfers), sums, Some(lock));
    p.refused = refused;
    Ok(p)
}

impl KagglePlan {
    /// The downloads this plan needs (none when up to date or a dry run).
    pub fn transfers(&self) -> &[KaggleTransfer] {
        match &self.step {
            KaggleStep::Archive(t) => std::slice::from_ref(t),
            KaggleStep::Files(t) => t,
            KaggleStep::UpToDate { .. } | KaggleStep::DryRun { .. } => &[],
        }
    }

    /// The total bytes of the downloads as listed, when Kaggle lists them (files mode).
    pub fn planned_bytes(&self) -> Option<u64> {
        match &self.step {
            KaggleStep::Files(t) => Some(t.iter().filter_map(|t| t.size).sum()),
            _ => None,
        }
    }

    /// Downloads one transfer of this plan through `dl`, the engine whose client
    /// carries no credentials: the API request (with `api`'s credentials, redirects
    /// not followed) yields the signed storage URL, which goes to the engine
    /// (resumable, retried, checked against the storage host's size and MD5/CRC32C,
    /// renamed into place only once verified). `Ok(None)` when the file is already
    /// at `dest` with its recorded SHA-256.
    pub async fn download(
        &self,
        api: &KaggleApi,
        dl: &Downloader,
        t: &KaggleTransfer,
        progress: &(dyn Fn(u64) + Sync),
    ) -> TransferResult {
        if let Some(expected) = &t.known_sha256
            && t.dest.is_file()
        {
            let p = t.dest.clone();
            if blocking(move || crate::fetch::hash::sha256_hex(&p))
                .await?
                .ok()
                .as_deref()
                == Some(expected.as_str())
            {
                return Ok(None);
            }
        }
        let storage = storage_url(api, &t.api_url, &t.what, &self.dataset).await?;
        // Kaggle may answer a single-file request with `<file>.zip` (large files are
        // stored compressed); kagglehub then unpacks the one entry. Same here, in the
        // extraction step, through the safe extractor and its limits.
        let base = t.name.rsplit('/').next().unwrap_or(&t.name);
        let zipped = matches!(self.step, KaggleStep::Files(_))
            && !base.ends_with(".zip")
            && storage.path_segments().and_then(|mut s| s.next_back())
                == Some(format!("{base}.zip").as_str());
        let path = if zipped {
            t.dest.with_file_name(format!(".physio-zip-{base}"))
        } else {
            t.dest.clone()
        };
        let transferred = download_storage(api, dl, &storage, &path, progress).await?;
        Ok(Some(Landed {
            path,
            transferred,
            zipped,
        }))
    }

    /// The extraction step: finishes the run from the downloads' `results` (one per
    /// transfer, in any order). The archive is extracted safely (`crate::extract`:
    /// no path escapes, no links, bounded expansion) into a `.physio-tmp-*` staging
    /// directory, given a `SHA256SUMS.txt` and renamed into place, then deleted; single
    /// files are unpacked when Kaggle served them zipped, hashed and added to the
    /// version directory's `SHA256SUMS.txt`, a failed one reported and the rest kept.
    pub async fn extract(
        self,
        results: Vec<(KaggleTransfer, TransferResult)>,
    ) -> Result<KaggleReport, crate::Error> {
        let mut rep = KaggleReport {
            dataset: format!(
                "{SPEC_PREFIX}{}/{}",
                self.dataset.owner, self.dataset.dataset
            ),
            version: self.version,
            dir: self.dir.clone(),
            mode: FetchMode::DryRun,
            files: 0,
            bytes: 0,
            downloaded: 0,
            fetched: 0,
            skipped: 0,
            failed: Vec::new(),
            exit_code: 0,
        };
        match self.step {
            KaggleStep::UpToDate { files, bytes } => {
                rep.mode = FetchMode::UpToDate;
                (rep.files, rep.bytes, rep.skipped) = (files, bytes, files);
                Ok(rep)
            }
            KaggleStep::DryRun { files, bytes } => {
                (rep.files, rep.bytes) = (files, bytes);
                Ok(rep)
            }
            KaggleStep::Archive(t) => {
                let landed = match results.into_iter().next() {
                    Some((_, r)) => r?,
                    None => None,
                };
                let Some(landed) = landed else {
                    return Err(crate::Error::Internal(format!(
                        "{}: the archive was not downloaded",
                        t.what
                    )));
                };
                let installed =
                    install_archive(&landed.path, &self.dataset_dir, &self.dir, self.limits).await;
                // Verified or refused, the archive has served its purpose: a hostile one
                // would only be refused again.
                let _ = std::fs::remove_file(&landed.path);
                let (files, bytes) = installed?;
                rep.mode = FetchMode::Archive;
                (rep.files, rep.bytes, rep.downloaded, rep.fetched) =
                    (files, bytes, landed.transferred, files);
                Ok(rep)
            }
            KaggleStep::Files(_) => {
                rep.mode = FetchMode::Files;
                let limits = self.limits;
                let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
                let finished: Vec<(String, Result<FetchedOne, crate::Error>)> =
                    futures_util::stream::iter(results.into_iter().map(|(t, r)| async move {
                        let done = match r {
                            Ok(Some(landed)) => finish_file(&t, landed, limits).await.map(Some),
                            Ok(None) => Ok(None),
                            Err(e) => Err(e),
                        };
                        (t.name, done)
                    }))
                    .buffer_unordered(jobs)
                    .collect()
                    .await;
                let mut sums = self.sums;
                let refused = self.refused.into_iter().map(|(n, e)| (n, Err(e)));
                for (name, res) in finished.into_iter().chain(refused) {
                    match res {
                        Ok(Some((n, sha))) => {
                            rep.downloaded += n;
                            rep.fetched += 1;
                            sums.insert(name, sha);
                        }
                        Ok(None) => rep.skipped += 1,
                        Err(e) => {
                            rep.exit_code = rep.exit_code.max(e.exit_code());
                            rep.failed.push((name, e.to_string()));
                        }
                    }
                }
                if !sums.is_empty() || self.dir.join(SUMS_FILE).exists() {
                    write_sums(&self.dir, &sums)?;
                }
                rep.files = sums.len();
                rep.bytes = sums
                    .keys()
                    .filter_map(|p| std::fs::metadata(self.dir.join(p)).ok())
                    .map(|m| m.len())
                    .sum();
                Ok(rep)
            }
        }
    }
}

/// What the extraction step did with one file: `(bytes transferred, hex SHA-256)`, or
/// `None` when the file was already intact.
type FetchedOne = Option<(u64, String)>;

/// Finishes one downloaded file: unpacks it when Kaggle served it zipped, then hashes
/// it for `SHA256SUMS.txt`.
async fn finish_file(
    t: &KaggleTransfer,
    landed: Landed,
    limits: ExtractLimits,
) -> Result<(u64, String), crate::Error> {
    if landed.zipped {
        let base = t.name.rsplit('/').next().unwrap_or(&t.name);
        let unpacked = unzip_single(&landed.path, &t.dest, base, limits).await;
        let _ = std::fs::remove_file(&landed.path);
        unpacked?;
    }
    let p = t.dest.clone();
    let sha = blocking(move || crate::fetch::hash::sha256_hex(&p))
        .await?
        .map_err(|e| crate::Error::io(&t.dest, e))?;
    Ok((landed.transferred, sha))
}

/// Lists the files of a dataset version that pass `include`/`exclude`, without
/// downloading (`physio ls kaggle:...`). Returns the resolved version and the files.
pub async fn list(
    api_base: &str,
    credentials: Option<KaggleCredentials>,
    dataset: &KaggleRef,
    include: &[String],
    exclude: &[String],
) -> Result<(u32, Vec<RemoteFile>), crate::Error> {
    let api = KaggleApi::new(api_base, credentials)?;
    let filter = Filter::new(include, exclude)?;
    let version = api.resolve_version(dataset).await?;
    let files = api
        .list_files(dataset, version)
        .await?
        .into_iter()
        .filter(|f| filter.as_ref().is_none_or(|flt| flt.matches(&f.name)))
        .collect();
    Ok((version, files))
}

/// Unpacks the entry named `base` from the downloaded single-file zip `zip` to `dest`
/// (through a staging directory beside it, then a rename).
async fn unzip_single(
    zip: &Path,
    dest: &Path,
    base: &str,
    limits: ExtractLimits,
) -> Result<(), crate::Error> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let stage = tempfile::Builder::new()
        .prefix(".physio-tmp-")
        .tempdir_in(dir)
        .map_err(|e| crate::Error::io(dir, e))?;
    let (z, st) = (zip.to_path_buf(), stage.path().to_path_buf());
    let report = blocking(move || crate::extract::extract_zip(&z, &st, &limits)).await??;
    if !report.files.iter().any(|f| f.path == base) {
        return Err(KaggleError::Api {
            url: dest.display().to_string(),
            message: format!("the compressed download holds no entry named {base:?}"),
        }
        .into());
    }
    crate::fsutil::persist_path(&stage.path().join(base), dest)
}

/// Downloads the signed storage URL `storage` to `dest` through the engine.
///
/// A one-byte ranged probe of the storage URL reads its `x-goog-hash`/`Content-MD5`
/// and size (storage reports the whole object's hashes on ranged reads), so the engine
/// verifies size and MD5 while streaming, before its rename; a CRC32C-only object is
/// checked after.
async fn download_storage(
    api: &KaggleApi,
    dl: &Downloader,
    storage: &Url,
    dest: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, crate::Error> {
    let (hashes, size) = probe(api, storage).await?;
    let expected = Expected {
        size,
        sha256: None,
        md5: hashes.md5,
    };
    // The engine can check only MD5; a CRC32C-only object is checked here, so it lands
    // under a `.physio-crc-*` name first and reaches `dest` only once verified.
    let crc_only = hashes.md5.is_none() && hashes.crc32c.is_some();
    let landing = if crc_only {
        let base = dest.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        dest.with_file_name(format!(".physio-crc-{base}"))
    } else {
        dest.to_path_buf()
    };
    let got = dl
        .download(storage, &landing, &expected, progress)
        .await
        .map_err(|e| match e {
            // The storage host takes no credentials: a refusal there is an expired or
            // bad signed URL, not a credentials problem.
            crate::fetch::FetchError::Auth { url, status, .. } => KaggleError::Api {
                url,
                message: format!(
                    "storage refused the signed download URL (HTTP {status}); run again"
                ),
            }
            .into(),
            other => crate::Error::from(other),
        })?;
    if crc_only {
        let (h, p) = (hashes.clone(), landing.clone());
        if let Err(e) = blocking(move || h.verify_file(&p)).await? {
            let _ = std::fs::remove_file(&landing);
            return Err(e.into());
        }
        crate::fsutil::persist_path(&landing, dest)?;
    }
    Ok(got.transferred)
}

/// Asks the API for the download and returns the storage URL it redirects to (or the
/// API URL itself when a mirror serves the bytes directly).
async fn storage_url(
    api: &KaggleApi,
    url: &Url,
    what: &str,
    r: &KaggleRef,
) -> Result<Url, crate::Error> {
    let resp = api.send(url).await?;
    let status = resp.status();
    let resp = api.check_status(resp, what, r).await?;
    if !resp.status().is_redirection() {
        return Ok(url.clone());
    }
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| url.join(l).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| KaggleError::Api {
            url: redacted(url),
            message: format!("HTTP {status} without a usable Location"),
        })?;
    tracing::debug!(storage = %redacted(&location), "download redirects to storage");
    Ok(location)
}

/// `GET` with `Range: bytes=0-0` and no credentials: the storage object's reported hashes
/// and total size, without downloading it. Retried like every request of the run.
async fn probe(api: &KaggleApi, url: &Url) -> Result<(StorageHashes, Option<u64>), crate::Error> {
    let resp = api
        .retried(&redacted(url), || async {
            api.http()
                .get(url.clone())
                .header(header::RANGE, "bytes=0-0")
                .send()
                .await
                .map_err(|e| KaggleError::Api {
                    url: redacted(url),
                    message: crate::error::chain_message(&e),
                })
        })
        .await?;
    let status = resp.status();
    let hashes = StorageHashes::from_headers(resp.headers());
    let size = match status {
        StatusCode::PARTIAL_CONTENT => resp
            .headers()
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::fetch::download::content_range_total),
        StatusCode::OK => resp.content_length(),
        // An empty object cannot satisfy `bytes=0-0`.
        StatusCode::RANGE_NOT_SATISFIABLE => Some(0),
        s => {
            return Err(KaggleError::Api {
                url: redacted(url),
                message: format!("storage answered HTTP {s}"),
            }
            .into());
        }
    };
    Ok((hashes, size))
}

/// `--include`/`--exclude` over dataset paths: `*` stays within one path component,
/// `**` crosses them (as for `convert --records`).
struct Filter {
    include: Option<globset::GlobSet>,
    exclude: Option<globset::GlobSet>,
}

impl Filter {
    fn new(include: &[String], exclude: &[String]) -> Result<Option<Self>, crate::Error> {
        fn set(globs: &[String]) -> Result<Option<globset::GlobSet>, crate::Error> {
            if globs.is_empty() {
                return Ok(None);
            }
            let mut b = globset::GlobSetBuilder::new();
            for g in globs {
                let glob = globset::GlobBuilder::new(g)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| crate::Error::Usage(format!("invalid glob {g:?}: {e}")))?;
                b.add(glob);
            }
            b.build()
                .map(Some)
                .map_err(|e| crate::Error::Usage(e.to_string()))
        }
        let f = Filter {
            include: set(include)?,
            exclude: set(exclude)?,
        };
        Ok((f.include.is_some() || f.exclude.is_some()).then_some(f))
    }

    fn matches(&self, path: &str) -> bool {
        self.include.as_ref().is_none_or(|s| s.is_match(path))
            && !self.exclude.as_ref().is_some_and(|s| s.is_match(path))
    }
}

/// Runs blocking work (hashing, extraction) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, crate::Error> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        crate::Error::io(
            PathBuf::from("<worker>"),
            std::io::Error::other(e.to_string()),
        )
    })
}

/// Extracts `archive` into a fresh `.physio-tmp-*` directory inside `ddir`, writes its
/// `SHA256SUMS.txt`, and renames it to `vdir` (moving any previous copy aside first and
/// deleting it after). Returns (files, bytes).
async fn install_archive(
    archive: &Path,
    ddir: &Path,
    vdir: &Path,
    limits: ExtractLimits,
) -> Result<(usize, u64), crate::Error> {
    let stage = tempfile::Builder::new()
        .prefix(".physio-tmp-")
        .tempdir_in(ddir)
        .map_err(|e| crate::Error::io(ddir, e))?;
    let (a, s) = (archive.to_path_buf(), stage.path().to_path_buf());
    // On any error `stage` is dropped and removed: nothing half-extracted survives.
    let extracted = blocking(move || crate::extract::extract_zip(&a, &s, &limits)).await??;
    let mut sums = BTreeMap::new();
    for f in &extracted.files {
        sums.insert(f.path.clone(), f.sha256.clone());
    }
    if sums.contains_key(SUMS_FILE) {
        // An archive that ships its own SHA256SUMS.txt would have it overwritten by
        // physio's (or vouch for itself). Refuse clearly instead of guessing.
        return Err(crate::Error::Usage(format!(
            "the archive contains its own {SUMS_FILE}, which physio writes itself; \
             fetch with --exclude {SUMS_FILE}"
        )));
    }
    write_sums(stage.path(), &sums)?;
    crate::fsutil::write_atomic(
        &stage.path().join(COMPLETE_MARK),
        b"every file of the version's archive is here\n",
    )?;
    let staged = stage.keep();
    let old = if vdir.exists() {
        let aside = ddir.join(format!(
            ".physio-old-{}",
            vdir.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("version")
        ));
        let _ = std::fs::remove_dir_all(&aside);
        std::fs::rename(vdir, &aside).map_err(|e| crate::Error::io(vdir, e))?;
        Some(aside)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(&staged, vdir) {
        let _ = std::fs::remove_dir_all(&staged);
        if let Some(old) = &old {
            let _ = std::fs::rename(old, vdir);
        }
        return Err(crate::Error::io(vdir, e));
    }
    crate::fsutil::sync_dir(ddir);
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok((extracted.files.len(), extracted.total_bytes))
}

/// Writes `dir/SHA256SUMS.txt` from path → hex SHA-256, sorted by path, atomically, in
/// the format `sha256sum` and PhysioNet use (`<hex>  <path>`).
pub fn write_sums(dir: &Path, sums: &BTreeMap<String, String>) -> Result<(), crate::Error> {
    let mut text = String::new();
    for (path, sha) in sums {
        text.push_str(sha);
        text.push_str("  ");
        text.push_str(path);
        text.push('\n');
    }
    crate::fsutil::write_atomic(&dir.join(SUMS_FILE), text.as_bytes())
}

/// The entries of `dir/SHA256SUMS.txt` as path → hex SHA-256 (empty when there is none).
fn read_sums(dir: &Path) -> Result<BTreeMap<String, String>, crate::Error> {
    let path = dir.join(SUMS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(crate::Error::io(&path, e)),
    };
    Ok(crate::fetch::manifest::parse_sha256sums(&text)?
        .into_iter()
        .filter_map(|e| Some((e.path, hex::encode(e.sha256?))))
        .collect())
}
