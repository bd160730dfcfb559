//! Fetching a Kaggle dataset version: the whole archive (downloaded through the shared
//! engine, extracted safely into a staging directory, renamed into place with a
//! `SHA256SUMS.txt`) or, with `--include`/`--exclude`, single files; plus listing.
//!
//! The API request that carries credentials is made by [`super::KaggleApi`] without
//! following redirects; the signed storage URL it redirects to goes to the engine
//! ([`crate::fetch::Downloader`]) whose client has no credentials at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::StatusCode;
use reqwest::header;
use url::Url;

use super::{KaggleApi, KaggleError, KaggleRef, RemoteFile, SPEC_PREFIX, StorageHashes, redacted};
use crate::auth::kaggle::KaggleCredentials;
use crate::extract::ExtractLimits;
use crate::fetch::{Downloader, DownloaderOptions, Expected, HttpClient, Outcome, Reporter};

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

/// The outcome of [`fetch`].
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

/// Fetches a Kaggle dataset version into `DIR/kaggle/<owner>/<dataset>/<version>/`.
///
/// Without filters the whole version is downloaded as Kaggle's zip through the shared
/// download engine (resumable, retried, checked against the storage host's MD5/CRC32C),
/// extracted safely into a `.physio-tmp-*` staging directory next to the version
/// directory, given a `SHA256SUMS.txt`, and renamed into place; the archive is then
/// deleted. With `include`/`exclude`, matching files are downloaded one by one into the
/// version directory and added to its `SHA256SUMS.txt`. A version directory whose files
/// all match its `SHA256SUMS.txt` is not downloaded again.
pub async fn fetch(
    opts: &KaggleFetchOptions,
    reporter: &dyn Reporter,
) -> Result<KaggleReport, crate::Error> {
    let r = &opts.dataset;
    // The engine's client carries no credentials at all: it only ever talks to the
    // storage host, so Kaggle's cannot leak there by construction.
    let dl = Downloader::new(
        HttpClient::new(None, Duration::from_secs(30))?,
        opts.downloader.clone(),
    );
    // API calls retry like the downloads, from the same run-wide budget.
    let api = KaggleApi::new(&opts.api_base, opts.credentials.clone())?
        .with_retry(opts.downloader.retry.clone(), dl.retry_budget());
    if api.credentials().is_some() {
        api.check_credentials(r).await?;
    }
    let version = api.resolve_version(r).await?;
    let vdir = r.version_dir(&opts.out, version);
    let ddir = r.dataset_dir(&opts.out);
    let filter = Filter::new(&opts.include, &opts.exclude)?;
    tracing::info!(dataset = %r, version, dir = %vdir.display(), "resolved Kaggle dataset");

    let report = |mode, files: usize, bytes: u64, downloaded: u64| KaggleReport {
        dataset: format!("{SPEC_PREFIX}{}/{}", r.owner, r.dataset),
        version,
        dir: vdir.clone(),
        mode,
        files,
        bytes,
        downloaded,
        fetched: 0,
        skipped: 0,
        failed: Vec::new(),
        exit_code: 0,
    };

    let Some(filter) = filter else {
        if opts.dry_run {
            let files = api.list_files(r, version).await?;
            let bytes = files.iter().filter_map(|f| f.total_bytes).sum();
            return Ok(report(FetchMode::DryRun, files.len(), bytes, 0));
        }
        // One run at a time per dataset: a whole-archive run replaces the version dir.
        std::fs::create_dir_all(&ddir).map_err(|e| crate::Error::io(&ddir, e))?;
        let _lock = crate::fetch::DirLock::acquire(&ddir, None)?;
        // Re-check the local copy first: a complete, intact version is not fetched again.
        let complete = vdir.join(SUMS_FILE).is_file() && vdir.join(COMPLETE_MARK).is_file();
        if complete {
            let check = vdir.clone();
            let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
            let v = blocking(move || crate::fetch::verify::verify_dir(&check, jobs)).await?;
            match v {
                Ok(v) if v.exit_code() == 0 => {
                    let mut rep = report(FetchMode::UpToDate, v.ok.len(), v.bytes, 0);
                    rep.skipped = v.ok.len();
                    return Ok(rep);
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
        let archive = ddir.join(format!(".physio-archive-{version}.zip"));
        let url = api.download_url(r, version, None);
        let what = format!("{r}@{version}");
        let name = format!("{}-{version}.zip", r.dataset);
        reporter.on_plan(1, None);
        reporter.on_file_start(&name);
        let progress = |n| reporter.on_bytes(n);
        let fetched = download(&api, &dl, &url, &archive, &what, r, &progress).await;
        let outcome = if fetched.is_ok() {
            Outcome::Fetched
        } else {
            Outcome::Failed
        };
        reporter.on_file_done(&name, outcome);
        reporter.on_finish();
        let downloaded = fetched?;
        let installed = install_archive(&archive, &ddir, &vdir, opts.limits).await;
        // Verified or refused, the archive has served its purpose: a hostile one would
        // only be refused again.
        let _ = std::fs::remove_file(&archive);
        let (files, bytes) = installed?;
        let mut rep = report(FetchMode::Archive, files, bytes, downloaded);
        rep.fetched = files;
        return Ok(rep);
    };

    // Selected files, one request each (`datasets/download/{o}/{d}/{file}`).
    let listing = api.list_files(r, version).await?;
    let selected: Vec<RemoteFile> = listing
        .into_iter()
        .filter(|f| filter.matches(&f.name))
        .collect();
    if opts.dry_run {
        let bytes = selected.iter().filter_map(|f| f.total_bytes).sum();
        return Ok(report(FetchMode::DryRun, selected.len(), bytes, 0));
    }
    // The same lock as whole-archive runs, which replace the version directory.
    let _lock = crate::fetch::DirLock::acquire(&ddir, None)?;
    std::fs::create_dir_all(&vdir).map_err(|e| crate::Error::io(&vdir, e))?;
    let mut sums = read_sums(&vdir)?;
    let jobs = dl.jobs();
    reporter.on_plan(
        selected.len(),
        Some(selected.iter().filter_map(|f| f.total_bytes).sum()),
    );
    let cx = FileCtx {
        reporter,
        api: &api,
        dl: &dl,
        r,
        version,
        vdir: &vdir,
        limits: opts.limits,
    };
    let results: Vec<(String, Result<FetchedOne, crate::Error>)> =
        futures_util::stream::iter(selected.iter().map(|f| {
            let (cx, known) = (&cx, sums.get(&f.name).cloned());
            async move {
                cx.reporter.on_file_start(&f.name);
                let res = fetch_one(cx, &f.name, known).await;
                let outcome = match &res {
                    Ok(Some(_)) => Outcome::Fetched,
                    Ok(None) => Outcome::Skipped,
                    Err(_) => Outcome::Failed,
                };
                cx.reporter.on_file_done(&f.name, outcome);
                (f.name.clone(), res)
            }
        }))
        .buffer_unordered(jobs)
        .collect()
        .await;
    reporter.on_finish();
    let mut rep = report(FetchMode::Files, 0, 0, 0);
    for (name, res) in results {
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
    if !sums.is_empty() || vdir.join(SUMS_FILE).exists() {
        write_sums(&vdir, &sums)?;
    }
    rep.files = sums.len();
    rep.bytes = sums
        .keys()
        .filter_map(|p| std::fs::metadata(vdir.join(p)).ok())
        .map(|m| m.len())
        .sum();
    Ok(rep)
}

/// What every [`fetch_one`] of one run shares.
#[derive(Clone, Copy)]
struct FileCtx<'a> {
    reporter: &'a dyn Reporter,
    api: &'a KaggleApi,
    dl: &'a Downloader,
    r: &'a KaggleRef,
    version: u32,
    vdir: &'a Path,
    limits: ExtractLimits,
}

/// What [`fetch_one`] did: `Some((bytes transferred, hex SHA-256))`, or `None` when
/// the file was already intact.
type FetchedOne = Option<(u64, String)>;

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

/// Fetches one file of a version into `vdir` unless it is already there with the
/// SHA-256 `known` from the local `SHA256SUMS.txt`. Returns the bytes transferred and
/// the file's SHA-256, or `None` when it was already intact.
async fn fetch_one(
    cx: &FileCtx<'_>,
    name: &str,
    known: Option<String>,
) -> Result<FetchedOne, crate::Error> {
    let FileCtx {
        reporter,
        api,
        dl,
        r,
        version,
        vdir,
        limits,
    } = *cx;
    let dest = vdir.join(crate::fsutil::enclosed_path(name)?);
    if let Some(expected) = known
        && dest.is_file()
    {
        let p = dest.clone();
        if blocking(move || crate::fetch::hash::sha256_hex(&p))
            .await?
            .ok()
            .as_deref()
            == Some(expected.as_str())
        {
            return Ok(None);
        }
    }
    let url = api.download_url(r, version, Some(name));
    let what = format!("{r}@{version}: {name}");
    let storage = storage_url(api, &url, &what, r).await?;
    let progress = |n| reporter.on_bytes(n);
    let base = name.rsplit('/').next().unwrap_or(name);
    let zipped_name = format!("{base}.zip");
    // Kaggle may answer a single-file request with `<file>.zip` (large files are stored
    // compressed); kagglehub then unpacks the one entry. Same here, through the safe
    // extractor and its limits.
    let auto_zipped = !base.ends_with(".zip")
        && storage.path_segments().and_then(|mut s| s.next_back()) == Some(zipped_name.as_str());
    let n = if auto_zipped {
        let tmp = dest.with_file_name(format!(".physio-zip-{base}"));
        let n = download_storage(api, dl, &storage, &tmp, &progress).await?;
        let unpacked = unzip_single(&tmp, &dest, base, limits).await;
        let _ = std::fs::remove_file(&tmp);
        unpacked?;
        n
    } else {
        download_storage(api, dl, &storage, &dest, &progress).await?
    };
    let p = dest.clone();
    let sha = blocking(move || crate::fetch::hash::sha256_hex(&p))
        .await?
        .map_err(|e| crate::Error::io(&dest, e))?;
    Ok(Some((n, sha)))
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

/// Downloads what the API URL `api_url` points at to `dest` through the engine.
///
/// Kaggle answers a download request with a redirect to a signed storage URL. The API
/// request (with credentials) is made here, by hand, so the `Location` can be handed to
/// the engine, whose client has no credentials; a 429 or 5xx from the API is retried
/// with the engine's policy, honouring `Retry-After`. A one-byte ranged probe of the
/// storage URL reads its `x-goog-hash`/`Content-MD5` and size (storage reports the
/// whole object's hashes on ranged reads), so the engine verifies size and MD5 while
/// streaming, before its rename; a CRC32C-only object is checked after.
async fn download(
    api: &KaggleApi,
    dl: &Downloader,
    api_url: &Url,
    dest: &Path,
    what: &str,
    r: &KaggleRef,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, crate::Error> {
    let storage = storage_url(api, api_url, what, r).await?;
    download_storage(api, dl, &storage, dest, progress).await
}

/// The second half of [`download`]: the engine fetches the storage URL `storage`.
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
            .and_then(|v| v.rsplit('/').next())
            .and_then(|t| t.parse::<u64>().ok()),
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
