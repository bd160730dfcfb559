//! `physio verify` of a version stored in an object store.

use super::*;

/// How one object fared in [`verify_store`].
pub(super) enum Checked {
    Ok(u64),
    Missing,
    Mismatch(String),
    Unreadable(String),
}

/// `physio verify` for a version prefix in a store (`s3://bucket/prefix/<slug>/<version>`):
/// reads its `SHA256SUMS.txt`, streams every listed object (at most `jobs` at once)
/// through SHA-256, and reports missing, mismatched and unreadable objects as a local
/// verify does. Reads every byte; the digests in object metadata are not trusted here.
pub async fn verify_store(
    store: &dyn ObjectStore,
    target: &ObjectUrl,
    jobs: usize,
) -> crate::Result<VerifyReport> {
    let sums_key = key_below(&target.key, SUMS_NAME);
    let sums_url = target.object_url(&sums_key);
    let text = read_object(store, &sums_key, &sums_url).await?;
    let text = String::from_utf8_lossy(&text);
    let manifest = crate::source::Manifest::from_sha256sums(&text)?;
    let results: Vec<(String, Checked)> = futures_util::stream::iter(manifest.entries.iter())
        .map(|e| async move { (e.path.clone(), check_object(store, target, e).await) })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    let mut report = VerifyReport::default();
    for (path, r) in results {
        match r {
            Checked::Ok(n) => {
                report.bytes += n;
                report.ok.push(path);
            }
            Checked::Missing => report.missing.push(path),
            Checked::Mismatch(m) => report.mismatched.push((path, m)),
            Checked::Unreadable(m) => report.unreadable.push((path, m)),
        }
    }
    report.ok.sort();
    report.missing.sort();
    report.mismatched.sort();
    report.unreadable.sort();
    Ok(report)
}

/// Streams the object of `entry` through SHA-256 and compares size and digest.
pub(super) async fn check_object(
    store: &dyn ObjectStore,
    target: &ObjectUrl,
    entry: &Entry,
) -> Checked {
    use sha2::Digest;
    if enclosed_path(&entry.path).is_err() {
        return Checked::Unreadable("unsafe path".into());
    }
    let key = key_below(&target.key, &entry.path);
    let mut stream = match store.get(&key).await {
        Ok(got) => got.into_stream(),
        Err(object_store::Error::NotFound { .. }) => return Checked::Missing,
        Err(e) => return Checked::Unreadable(e.to_string()),
    };
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                size += bytes.len() as u64;
                hasher.update(&bytes);
            }
            Err(e) => return Checked::Unreadable(e.to_string()),
        }
    }
    let got: [u8; 32] = hasher.finalize().into();
    if entry.size.is_some_and(|s| s != size) {
        return Checked::Mismatch(format!(
            "size {size} does not match {}",
            entry.size.unwrap_or_default()
        ));
    }
    match entry.sha256 {
        Some(want) if want != got => Checked::Mismatch(format!(
            "SHA-256 {} does not match {}",
            hex::encode(got),
            hex::encode(want)
        )),
        _ => Checked::Ok(size),
    }
}
