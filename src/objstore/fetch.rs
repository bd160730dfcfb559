//! Fetching a dataset version into a store: the ordinary download engine into a
//! private staging directory, then a verified multipart upload per file.

use super::*;

/// Every object below `prefix` (recursively) with its size.
pub(super) async fn list_sizes(
    store: &dyn ObjectStore,
    target: &ObjectUrl,
) -> Result<HashMap<ObjectPath, u64>, ObjectStoreError> {
    let prefix = (!target.key().is_empty()).then_some(&target.key);
    let mut stream = store.list(prefix);
    let mut out = HashMap::new();
    while let Some(meta) = stream.next().await {
        let meta = meta.map_err(|e| ObjectStoreError::store(&target.display_url(), e))?;
        out.insert(meta.location, meta.size);
    }
    Ok(out)
}

/// The SHA-256 recorded in the metadata of the object at `key`, if any (one HEAD).
pub(super) async fn stored_sha256(
    store: &dyn ObjectStore,
    key: &ObjectPath,
    url: &str,
) -> Result<Option<[u8; 32]>, ObjectStoreError> {
    let opts = GetOptions {
        head: true,
        ..GetOptions::default()
    };
    let got = store
        .get_opts(key, opts)
        .await
        .map_err(|e| ObjectStoreError::store(url, e))?;
    let value = got
        .attributes
        .get(&Attribute::Metadata(SHA256_METADATA.into()))
        .map(|v| v.as_ref().to_string());
    Ok(value.and_then(|v| {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(v.trim(), &mut digest).ok()?;
        Some(digest)
    }))
}

/// True when the object of `size` bytes at `key` matches `entry`: by size and the
/// SHA-256 in its metadata when the manifest has a digest (a size match alone is not
/// enough then), by size alone when it has none — as a local fetch checks a file.
pub(super) async fn object_verifies(
    store: &dyn ObjectStore,
    target: &ObjectUrl,
    key: &ObjectPath,
    size: u64,
    entry: &Entry,
) -> Result<bool, ObjectStoreError> {
    if entry.size.is_some_and(|s| s != size) {
        return Ok(false);
    }
    let Some(want) = entry.sha256 else {
        return Ok(entry.size == Some(size));
    };
    let stored = stored_sha256(store, key, &target.object_url(key)).await?;
    Ok(stored == Some(want))
}

/// The entries the store already holds verified copies of below `target` (the version
/// prefix): one LIST, then a HEAD per object whose size matches. What a fetch skips and
/// what `--dry-run` reports as already verified.
pub async fn already_in_store(
    store: &dyn ObjectStore,
    target: &ObjectUrl,
    entries: &[Entry],
    jobs: usize,
) -> Result<HashSet<String>, ObjectStoreError> {
    let listing = list_sizes(store, target).await?;
    let checks = futures_util::stream::iter(entries.iter())
        .map(|e| {
            let key = key_below(&target.key, &e.path);
            let size = listing.get(&key).copied();
            async move {
                match size {
                    Some(size) => object_verifies(store, target, &key, size, e)
                        .await
                        .map(|ok| ok.then(|| e.path.clone())),
                    None => Ok(None),
                }
            }
        })
        .buffer_unordered(jobs.max(1));
    let found: Vec<Option<String>> = checks.try_collect().await?;
    Ok(found.into_iter().flatten().collect())
}

/// Fetches `plan` into an object store: `target` is the version prefix
/// (`…/<slug>/<version>`) and `plan.dir` a private local staging directory. Each
/// selected file whose object is missing or does not verify is downloaded by
/// `downloader` into staging (verified there: size and SHA-256, as a local fetch does),
/// uploaded as a multipart upload completed only after that verification (with its
/// SHA-256 in the object's metadata), and removed from staging. Per-file failures are in
/// the report, as for a local fetch; a store that cannot be listed fails the run.
/// `SHA256SUMS.txt` is written under the prefix when it differs, and objects of files
/// no longer upstream are reported (and deleted with `opts.delete`).
///
/// ```
/// use std::time::Duration;
/// use object_store::{ObjectStoreExt, memory::InMemory, path::Path};
/// use physio::fetch::{Downloader, DownloaderOptions, FetchOptions, FetchPlan, HttpClient, NoReporter};
/// use physio::objstore::{ObjectUrl, UploadOptions, fetch_to_store};
/// use physio::source::Entry;
/// use sha2::Digest;
///
/// // An upstream "server" (a file:// directory) with one file.
/// let upstream = tempfile::tempdir()?;
/// std::fs::write(upstream.path().join("100.hea"), b"100 2 360 650000\n")?;
/// let staging = tempfile::tempdir()?;
/// let plan = FetchPlan {
///     dir: staging.path().to_path_buf(),
///     base: url::Url::from_directory_path(upstream.path()).unwrap(),
///     entries: vec![Entry {
///         path: "100.hea".into(),
///         size: Some(17),
///         sha256: Some(sha2::Sha256::digest(b"100 2 360 650000\n").into()),
///     }],
///     upstream: ["100.hea".to_string()].into(),
///     sums_text: None,
/// };
/// let store = InMemory::new();
/// let target = ObjectUrl::parse("s3://bucket/physionet")?.unwrap().join("mitdb/1.0.0");
/// let client = HttpClient::new(None, Duration::from_secs(30))?;
/// let downloader = Downloader::new(client, DownloaderOptions::default());
/// let rt = tokio::runtime::Runtime::new()?;
/// let report = rt.block_on(fetch_to_store(
///     &store, &target, &plan, &downloader, &FetchOptions::default(),
///     &UploadOptions::default(), &NoReporter,
/// ))?;
/// assert_eq!(report.done, ["100.hea"]);
/// let object = rt.block_on(async {
///     store.get(&Path::from("physionet/mitdb/1.0.0/100.hea")).await?.bytes().await
/// })?;
/// assert_eq!(&object[..], b"100 2 360 650000\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn fetch_to_store(
    store: &dyn ObjectStore,
    target: &ObjectUrl,
    plan: &FetchPlan,
    downloader: &Downloader,
    opts: &FetchOptions,
    upload: &UploadOptions,
    reporter: &dyn Reporter,
) -> crate::Result<FetchReport> {
    let started = Instant::now();
    let listing = list_sizes(store, target).await?;
    if let Some(text) = &plan.sums_text {
        put_if_changed(store, target, SUMS_NAME, text.as_bytes(), &listing).await?;
    }
    let total_size = plan.entries.iter().map(|e| e.size).sum::<Option<u64>>();
    reporter.on_plan(plan.entries.len(), total_size);
    let jobs = downloader.jobs().max(1);
    let mirror_before = downloader.from_mirror();
    downloader.add_retries(plan.entries.len() as u64 / 10);
    let run = StoreRun {
        store,
        target,
        plan,
        downloader,
        upload,
        reporter,
        uploads: tokio::sync::Semaphore::new(FETCH_UPLOADS),
    };
    let run = &run;
    let mut results = futures_util::stream::iter(plan.entries.iter())
        .map(|entry| {
            let present = listing.get(&key_below(&target.key, &entry.path)).copied();
            async move {
                let r = run.fetch_one(entry, present).await;
                crate::fetch::file_done(reporter, downloader, &entry.path, &r);
                (entry.path.clone(), r)
            }
        })
        .buffer_unordered(jobs * 2);
    let mut report = FetchReport::default();
    while let Some((path, r)) = results.next().await {
        report.record(path, r);
    }
    drop(results);
    report.sort_by_path();
    let (removed, deleted) = removed_upstream(store, target, plan, &listing, opts.delete).await;
    report.removed_upstream = removed;
    report.deleted = deleted;
    reporter.on_finish();
    report.seconds = started.elapsed().as_secs_f64();
    report.record_sources(downloader, mirror_before);
    tracing::info!(
        target = %target.display_url(),
        fetched = report.done.len(),
        skipped = report.skipped.len(),
        failed = report.failed.len(),
        bytes = report.bytes,
        "fetch into object store finished"
    );
    Ok(report)
}

/// What every file of one [`fetch_to_store`] run shares.
pub(super) struct StoreRun<'a> {
    store: &'a dyn ObjectStore,
    target: &'a ObjectUrl,
    plan: &'a FetchPlan,
    downloader: &'a Downloader,
    upload: &'a UploadOptions,
    reporter: &'a dyn Reporter,
    /// Bounds concurrent uploads (and so their memory) to [`FETCH_UPLOADS`].
    uploads: tokio::sync::Semaphore,
}

impl StoreRun<'_> {
    /// One file: skip it if its object (of `present` bytes, if listed) verifies, else
    /// download, verify, upload.
    #[tracing::instrument(skip_all, fields(path = %entry.path))]
    async fn fetch_one(
        &self,
        entry: &Entry,
        present: Option<u64>,
    ) -> crate::Result<(Outcome, u64)> {
        let (store, target) = (self.store, self.target);
        let rel = enclosed_path(&entry.path)?;
        let key = key_below(&target.key, &entry.path);
        if let Some(size) = present
            && object_verifies(store, target, &key, size, entry).await?
        {
            return Ok((Outcome::Skipped, 0));
        }
        self.reporter.on_file_start(&entry.path);
        let expected = Expected {
            size: entry.size,
            sha256: entry.sha256,
            md5: None,
        };
        let staged = self.plan.dir.join(rel);
        let got = self
            .downloader
            .download(&self.plan.url_of(&entry.path), &staged, &expected, &|n| {
                self.reporter.on_bytes(n)
            })
            .await?;
        // Only verified bytes reach this point: `download` renames `.part` to `staged`
        // after the size and digest checks, and leaves nothing at `staged` otherwise.
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::Metadata(SHA256_METADATA.into()),
            hex::encode(got.digests.sha256).into(),
        );
        let sent = match self.uploads.acquire().await {
            Ok(_permit) => upload_file(store, &staged, &key, target, self.upload, attributes).await,
            Err(e) => Err(ObjectStoreError::Io {
                path: staged.clone(),
                source: std::io::Error::other(e),
            }),
        };
        if let Err(e) = tokio::fs::remove_file(&staged).await {
            tracing::warn!(file = %staged.display(), error = %e, "cannot remove staged file");
        }
        sent?;
        Ok((Outcome::Fetched, got.transferred))
    }
}

/// The whole object at `key` (`url` names it in errors), refused when larger than
/// [`crate::fetch::body::TEXT_LIMIT`]: only manifests are read into memory.
pub(super) async fn read_object(
    store: &dyn ObjectStore,
    key: &ObjectPath,
    url: &str,
) -> Result<bytes::Bytes, ObjectStoreError> {
    let got = store
        .get(key)
        .await
        .map_err(|e| ObjectStoreError::store(url, e))?;
    let limit = crate::fetch::body::TEXT_LIMIT;
    if got.meta.size > limit {
        return Err(ObjectStoreError::Io {
            path: PathBuf::from(url),
            source: std::io::Error::other(format!(
                "object larger than the {} MiB limit for manifests",
                limit >> 20
            )),
        });
    }
    got.bytes()
        .await
        .map_err(|e| ObjectStoreError::store(url, e))
}

/// Writes the small object `name` below `target` with one PUT (atomic on every store)
/// unless it already holds exactly `bytes`.
pub(super) async fn put_if_changed(
    store: &dyn ObjectStore,
    target: &ObjectUrl,
    name: &str,
    bytes: &[u8],
    listing: &HashMap<ObjectPath, u64>,
) -> Result<(), ObjectStoreError> {
    let key = key_below(&target.key, name);
    let url = target.object_url(&key);
    if listing.get(&key) == Some(&(bytes.len() as u64)) {
        let current = read_object(store, &key, &url).await?;
        if current.as_ref() == bytes {
            return Ok(());
        }
    }
    store
        .put(&key, PutPayload::from(bytes.to_vec()))
        .await
        .map_err(|e| ObjectStoreError::store(&url, e))?;
    Ok(())
}

/// Objects below `target` (as listed at the start) that the upstream manifest no longer
/// lists, `SHA256SUMS.txt` and physio's `.physio*` names aside, as relative paths; the
/// second list holds those deleted (only with `delete`). A failed delete is logged, as
/// on disk.
pub(super) async fn removed_upstream(
    store: &dyn ObjectStore,
    target: &ObjectUrl,
    plan: &FetchPlan,
    listing: &HashMap<ObjectPath, u64>,
    delete: bool,
) -> (Vec<String>, Vec<String>) {
    let upstream: HashSet<ObjectPath> = plan
        .upstream
        .iter()
        .map(|p| key_below(&target.key, p))
        .collect();
    let mut found: Vec<(String, &ObjectPath)> = listing
        .keys()
        .filter(|k| !upstream.contains(*k))
        .map(|k| (rel_of(&target.key, k), k))
        .filter(|(rel, _)| {
            let name = rel.rsplit('/').next().unwrap_or(rel);
            rel != SUMS_NAME && !name.starts_with(crate::fetch::state::STATE_PREFIX)
        })
        .collect();
    found.sort();
    let mut deleted = Vec::new();
    for (rel, key) in &found {
        if !delete {
            tracing::info!(path = %rel, "removed upstream (kept; --delete removes it)");
            continue;
        }
        match store.delete(key).await {
            Ok(()) => deleted.push(rel.clone()),
            Err(e) => tracing::warn!(path = %rel, error = %e, "cannot delete"),
        }
    }
    (found.into_iter().map(|(rel, _)| rel).collect(), deleted)
}
