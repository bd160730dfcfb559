//! Uploading converted Parquet into a store, and reading a previous output back.

use super::*;

/// How [`upload_dir`] treats the target and the stale keys under it.
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    /// `Some(i)` for `--shard i/N` with N > 1: only `part-i-NNNNN.parquet` keys count as
    /// this run's own, so concurrent shards never delete each other's objects.
    pub shard_prefix: Option<u32>,
    /// Fault injection for tests ([`PAUSE_BEFORE_COMPLETE_ENV`]).
    pub pause_before_complete: Option<Duration>,
}

/// What [`upload_dir`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// `s3://bucket/key` of every object written, in upload order.
    pub uploaded: Vec<String>,
    /// `s3://bucket/key` of stale part objects deleted.
    pub deleted: Vec<String>,
    /// Bytes uploaded.
    pub bytes: u64,
}

/// Uploads every `*.parquet` file in `staging` to `target` (blocking; runs its own
/// Tokio runtime). A single-file target takes the one staged file; a prefix target gets
/// each file under its own name, then loses the stale `part-…` keys this run did not
/// write.
pub fn upload_dir(
    staging: &Path,
    target: &ObjectUrl,
    opts: &UploadOptions,
) -> Result<UploadReport, ObjectStoreError> {
    let runtime = runtime()?;
    let store = build_store(target)?;
    runtime.block_on(upload_dir_to(store.as_ref(), staging, target, opts))
}

/// Copies the previous output at `target` into `dest` (blocking), so an incremental
/// conversion can read its provenance and reuse its rows: for a single-file target the
/// object itself (to the file `dest`), for a prefix the `part-…` objects of this shard
/// (`shard_prefix`) into the directory `dest`. A target with no previous output copies
/// nothing. Each object is streamed to a temporary file and renamed into place.
pub fn download_previous(
    target: &ObjectUrl,
    dest: &Path,
    shard_prefix: Option<u32>,
) -> Result<usize, ObjectStoreError> {
    let runtime = runtime()?;
    let store = build_store(target)?;
    runtime.block_on(download_previous_from(
        store.as_ref(),
        target,
        dest,
        shard_prefix,
    ))
}

/// True when `target` already holds an output (blocking): the single file, or for a
/// prefix at least one `part-…` object of this shard (`shard_prefix`). What `physio
/// sync` checks instead of a local path's existence when `convert.out` is a URL.
pub fn has_output(target: &ObjectUrl, shard_prefix: Option<u32>) -> Result<bool, ObjectStoreError> {
    let runtime = runtime()?;
    let store = build_store(target)?;
    runtime.block_on(async {
        Ok(!previous_objects(store.as_ref(), target, shard_prefix)
            .await?
            .is_empty())
    })
}

/// The objects of the previous output at `target`: the single file, or this shard's
/// `part-…` objects directly below the prefix, with their file names.
pub(super) async fn previous_objects(
    store: &dyn ObjectStore,
    target: &ObjectUrl,
    shard_prefix: Option<u32>,
) -> Result<Vec<(ObjectPath, String)>, ObjectStoreError> {
    let prefix = match target.single_file {
        true => parent(&target.key),
        false => target.key.clone(),
    };
    let prefix = (!prefix.as_ref().is_empty()).then_some(&prefix);
    let listing = store
        .list_with_delimiter(prefix)
        .await
        .map_err(|e| ObjectStoreError::store(&target.redacted(), e))?;
    Ok(listing
        .objects
        .into_iter()
        .filter_map(|meta| {
            let name = meta.location.filename().unwrap_or_default().to_string();
            let keep = match target.single_file {
                true => meta.location == target.key,
                false => is_part_file(&name, shard_prefix),
            };
            keep.then_some((meta.location, name))
        })
        .collect())
}

/// [`download_previous`] against any store.
pub async fn download_previous_from(
    store: &dyn ObjectStore,
    target: &ObjectUrl,
    dest: &Path,
    shard_prefix: Option<u32>,
) -> Result<usize, ObjectStoreError> {
    let mut copied = 0;
    for (location, name) in previous_objects(store, target, shard_prefix).await? {
        let local = match target.single_file {
            true => dest.to_path_buf(),
            false => dest.join(&name),
        };
        let url = target.object_url(&location);
        let io = |source| ObjectStoreError::Io {
            path: local.clone(),
            source,
        };
        let mut tmp = crate::fsutil::temp_in(&local).map_err(|e| ObjectStoreError::Io {
            path: local.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut body = store
            .get(&location)
            .await
            .map_err(|e| ObjectStoreError::store(&url, e))?
            .into_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ObjectStoreError::store(&url, e))?;
            std::io::Write::write_all(tmp.as_file_mut(), &chunk).map_err(io)?;
        }
        tmp.as_file().sync_data().map_err(io)?;
        tmp.persist(&local).map_err(|e| io(e.error))?;
        copied += 1;
    }
    Ok(copied)
}

/// Checks, before any conversion work, that the bucket exists and the credentials are
/// accepted, by listing the target's prefix (the stale-part cleanup needs that right
/// anyway): a typo in the bucket or a wrong secret then costs a second, not a whole
/// conversion.
pub fn preflight(target: &ObjectUrl) -> Result<(), ObjectStoreError> {
    let runtime = runtime()?;
    let store = build_store(target)?;
    let prefix = match target.single_file {
        true => parent(&target.key),
        false => target.key.clone(),
    };
    let prefix = (!prefix.as_ref().is_empty()).then_some(&prefix);
    runtime
        .block_on(store.list_with_delimiter(prefix))
        .map(drop)
        .map_err(|e| ObjectStoreError::store(&target.redacted(), e))
}

/// [`upload_dir`] against any store (unit tests use the in-memory one).
pub async fn upload_dir_to(
    store: &dyn ObjectStore,
    staging: &Path,
    target: &ObjectUrl,
    opts: &UploadOptions,
) -> Result<UploadReport, ObjectStoreError> {
    let files = staged_files(staging)?;
    if target.single_file && files.len() != 1 {
        return Err(ObjectStoreError::Io {
            path: staging.to_path_buf(),
            source: std::io::Error::other(format!(
                "expected one staged file for {}, found {}",
                target.redacted(),
                files.len()
            )),
        });
    }
    let mut report = UploadReport::default();
    let mut written = Vec::with_capacity(files.len());
    for (name, path) in &files {
        let key = target.key_for(name);
        report.bytes += upload_file(store, path, &key, target, opts, Attributes::new()).await?;
        report.uploaded.push(target.object_url(&key));
        written.push(key);
    }
    if !target.single_file {
        report.deleted = remove_stale(store, target, &written, opts.shard_prefix).await?;
    }
    Ok(report)
}

/// The `*.parquet` files directly in `staging`, sorted by name (the writer's order).
pub(super) fn staged_files(staging: &Path) -> Result<Vec<(String, PathBuf)>, ObjectStoreError> {
    let io = |source| ObjectStoreError::Io {
        path: staging.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(staging).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".parquet") && entry.file_type().map_err(io)?.is_file() {
            files.push((name, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// Uploads one file as a multipart upload at `key`. The object appears only when the
/// upload is completed; on any error the upload is aborted, so neither an object nor
/// (where the store honours the abort) orphaned parts remain.
pub(super) async fn upload_file(
    store: &dyn ObjectStore,
    path: &Path,
    key: &ObjectPath,
    target: &ObjectUrl,
    opts: &UploadOptions,
    attributes: Attributes,
) -> Result<u64, ObjectStoreError> {
    let url = target.object_url(key);
    tracing::debug!(file = %path.display(), %url, "uploading");
    let popts = PutMultipartOptions {
        attributes,
        ..PutMultipartOptions::default()
    };
    let mut upload = store
        .put_multipart_opts(key, popts)
        .await
        .map_err(|e| ObjectStoreError::store(&url, e))?;
    let sent = match send_parts(upload.as_mut(), path, &url).await {
        Ok(bytes) => bytes,
        Err(e) => {
            abort(upload.as_mut(), &url).await;
            return Err(e);
        }
    };
    if let Some(pause) = opts.pause_before_complete {
        tracing::debug!(%url, ?pause, "pausing before completing the upload (test hook)");
        tokio::time::sleep(pause).await;
    }
    if let Err(e) = upload.complete().await {
        abort(upload.as_mut(), &url).await;
        return Err(ObjectStoreError::store(&url, e));
    }
    Ok(sent)
}

/// Aborts an upload after a failure; a failed abort is only logged, since the original
/// error is the one to report (the store expires incomplete uploads by its lifecycle).
pub(super) async fn abort(upload: &mut dyn MultipartUpload, url: &str) {
    if let Err(e) = upload.abort().await {
        tracing::warn!(%url, error = %e, "could not abort multipart upload");
    }
}

/// Reads `path` in [`PART_SIZE`] chunks and uploads each as a part, at most
/// [`PART_CONCURRENCY`] in flight (and in memory) at once; returns once every part is
/// stored.
pub(super) async fn send_parts(
    upload: &mut dyn MultipartUpload,
    path: &Path,
    url: &str,
) -> Result<u64, ObjectStoreError> {
    let io = |source| ObjectStoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(io)?;
    let mut in_flight: FuturesUnordered<object_store::UploadPart> = FuturesUnordered::new();
    let mut total = 0u64;
    loop {
        let mut chunk = Vec::with_capacity(PART_SIZE);
        (&mut file)
            .take(PART_SIZE as u64)
            .read_to_end(&mut chunk)
            .await
            .map_err(io)?;
        // An empty file still needs one (empty) part: S3 cannot complete an upload
        // without parts.
        if chunk.is_empty() && total > 0 {
            break;
        }
        let last = chunk.len() < PART_SIZE;
        total += chunk.len() as u64;
        while in_flight.len() >= PART_CONCURRENCY {
            if let Some(done) = in_flight.next().await {
                done.map_err(|e| ObjectStoreError::store(url, e))?;
            }
        }
        in_flight.push(upload.put_part(PutPayload::from(chunk)));
        if last {
            break;
        }
    }
    while let Some(done) = in_flight.next().await {
        done.map_err(|e| ObjectStoreError::store(url, e))?;
    }
    Ok(total)
}

/// Deletes `part-…` objects directly under the target prefix that follow this run's
/// naming scheme but were not written by it (mirrors `PartWriter::remove_stale`).
pub(super) async fn remove_stale(
    store: &dyn ObjectStore,
    target: &ObjectUrl,
    written: &[ObjectPath],
    shard_prefix: Option<u32>,
) -> Result<Vec<String>, ObjectStoreError> {
    let prefix = (!target.key().is_empty()).then_some(&target.key);
    let listing = store
        .list_with_delimiter(prefix)
        .await
        .map_err(|e| ObjectStoreError::store(&target.redacted(), e))?;
    let mut deleted = Vec::new();
    for meta in listing.objects {
        let name = meta.location.filename().unwrap_or_default();
        if is_part_file(name, shard_prefix) && !written.contains(&meta.location) {
            let url = target.object_url(&meta.location);
            store
                .delete(&meta.location)
                .await
                .map_err(|e| ObjectStoreError::store(&url, e))?;
            deleted.push(url);
        }
    }
    Ok(deleted)
}
