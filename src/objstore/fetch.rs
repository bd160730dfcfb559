//! Fetching a dataset version into a store: the store as a destination of the one fetch
//! loop (`fetch::run`), which downloads each file with the ordinary engine into a
//! private staging directory; [`StoreDestination`] adds what is store-specific (one
//! LIST, the digest read back with a HEAD, a verified multipart upload per file).

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::*;
use crate::fetch::Destination;
use crate::fetch::Downloaded;
use crate::fetch::destination::Finished;

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
    // Collected first: a stream mapped by a closure over `&Entry` is not provably `Send`
    // (rust-lang/rust#64552), and a destination's futures must be.
    let checks: Vec<_> = entries
        .iter()
        .map(|e| verified_in_listing(store, target, &listing, e))
        .collect();
    let checks = futures_util::stream::iter(checks).buffer_unordered(jobs.max(1));
    let found: Vec<Option<String>> = checks.try_collect().await?;
    Ok(found.into_iter().flatten().collect())
}

/// `entry`'s path when its object is in `listing` and verifies.
async fn verified_in_listing(
    store: &dyn ObjectStore,
    target: &ObjectUrl,
    listing: &HashMap<ObjectPath, u64>,
    entry: &Entry,
) -> Result<Option<String>, ObjectStoreError> {
    let key = key_below(&target.key, &entry.path);
    let Some(&size) = listing.get(&key) else {
        return Ok(None);
    };
    let ok = object_verifies(store, target, &key, size, entry).await?;
    Ok(ok.then(|| entry.path.clone()))
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
/// use physio::fetch::Entry;
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
    let dest = StoreDestination::new(store, target.clone(), upload.clone());
    crate::fetch::run(plan, &dest, downloader, opts, reporter).await
}

/// A version prefix in an object store as a fetch [`Destination`]: the downloader writes
/// each file into the plan's private staging directory (`FetchPlan::dir`), where it is
/// verified; [`Destination::commit`] uploads it (SHA-256 in its metadata) and removes the
/// staged copy.
pub(crate) struct StoreDestination<'a> {
    /// The store.
    store: &'a dyn ObjectStore,
    /// The version prefix.
    target: ObjectUrl,
    /// How each file is uploaded (the test-only pause before completion).
    upload: UploadOptions,
    /// The objects below `target` with their sizes, listed once in
    /// [`Destination::prepare`].
    listing: std::sync::OnceLock<HashMap<ObjectPath, u64>>,
    /// Bounds concurrent uploads (and so their memory) to [`FETCH_UPLOADS`].
    uploads: tokio::sync::Semaphore,
}

impl<'a> StoreDestination<'a> {
    /// The prefix `target` of `store`, uploading with `upload`.
    pub(crate) fn new(
        store: &'a dyn ObjectStore,
        target: ObjectUrl,
        upload: UploadOptions,
    ) -> StoreDestination<'a> {
        StoreDestination {
            store,
            target,
            upload,
            listing: std::sync::OnceLock::new(),
            uploads: tokio::sync::Semaphore::new(FETCH_UPLOADS),
        }
    }

    /// Lists the prefix (one LIST; a store that cannot be listed fails the run) and
    /// writes `SHA256SUMS.txt` when it differs.
    async fn open(&self, plan: &FetchPlan) -> crate::Result<()> {
        let listing = list_sizes(self.store, &self.target).await?;
        if let Some(text) = &plan.sums_text {
            put_if_changed(
                self.store,
                &self.target,
                SUMS_NAME,
                text.as_bytes(),
                &listing,
            )
            .await?;
        }
        // Set once per run; a second `prepare` keeps the first listing.
        let _ = self.listing.set(listing);
        Ok(())
    }

    /// True when the object of `entry`, if listed, verifies (size, then a HEAD for its
    /// recorded SHA-256).
    async fn check(&self, entry: &Entry) -> crate::Result<bool> {
        enclosed_path(&entry.path)?;
        let Some(listing) = self.listing.get() else {
            return Ok(false);
        };
        let found = verified_in_listing(self.store, &self.target, listing, entry).await?;
        Ok(found.is_some())
    }

    /// Uploads the verified file at `staged` as `entry`'s object, with `sha256` in its
    /// metadata, as a multipart upload completed only once every byte is sent; then
    /// removes the staged copy (uploaded or not).
    async fn upload_staged(
        &self,
        entry: &Entry,
        staged: &Path,
        sha256: &[u8; 32],
    ) -> crate::Result<()> {
        let key = key_below(&self.target.key, &entry.path);
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::Metadata(SHA256_METADATA.into()),
            hex::encode(sha256).into(),
        );
        let sent = match self.uploads.acquire().await {
            Ok(_permit) => {
                upload_file(
                    self.store,
                    staged,
                    &key,
                    &self.target,
                    &self.upload,
                    attributes,
                )
                .await
            }
            Err(e) => Err(ObjectStoreError::Io {
                path: staged.to_path_buf(),
                source: std::io::Error::other(e),
            }),
        };
        if let Err(e) = tokio::fs::remove_file(staged).await {
            tracing::warn!(file = %staged.display(), error = %e, "cannot remove staged file");
        }
        sent?;
        Ok(())
    }

    /// Reports (and with `delete` removes) the objects upstream no longer lists.
    async fn close(&self, plan: &FetchPlan, delete: bool) -> Finished {
        let empty = HashMap::new();
        let listing = self.listing.get().unwrap_or(&empty);
        let (removed_upstream, deleted) =
            removed_upstream(self.store, &self.target, plan, listing, delete).await;
        Finished {
            removed_upstream,
            deleted,
            state_error: None,
        }
    }
}

impl Destination for StoreDestination<'_> {
    fn describe(&self) -> String {
        self.target.display_url()
    }

    fn prepare<'b>(&'b self, plan: &'b FetchPlan) -> BoxFuture<'b, crate::Result<()>> {
        self.open(plan).boxed()
    }

    fn verified<'b>(&'b self, entry: &'b Entry) -> BoxFuture<'b, crate::Result<bool>> {
        self.check(entry).boxed()
    }

    fn staging_path(&self, plan: &FetchPlan, entry: &Entry) -> crate::Result<PathBuf> {
        Ok(plan.dir.join(enclosed_path(&entry.path)?))
    }

    fn commit<'b>(
        &'b self,
        entry: &'b Entry,
        staged: &'b Path,
        got: &'b Downloaded,
    ) -> BoxFuture<'b, crate::Result<()>> {
        self.upload_staged(entry, staged, &got.digests.sha256)
            .boxed()
    }

    fn finish<'b>(&'b self, plan: &'b FetchPlan, delete: bool) -> BoxFuture<'b, Finished> {
        self.close(plan, delete).boxed()
    }

    fn already_present<'b>(
        &'b self,
        entries: &'b [Entry],
        jobs: usize,
    ) -> BoxFuture<'b, crate::Result<HashSet<String>>> {
        async move { Ok(already_in_store(self.store, &self.target, entries, jobs).await?) }.boxed()
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
