//! Object-storage output (`--out s3://bucket/prefix/`, `gs://…`, `az://…`): parses
//! object URLs, uploads the Parquet files a conversion wrote into a local staging
//! directory, and fetches a dataset version into a store ([`fetch_to_store`]).
//!
//! Why staging + upload rather than streaming Parquet into the store: the converter
//! already guarantees byte-identical, atomically renamed files on disk; uploading each
//! *finished* file with an S3 multipart upload keeps both properties remotely. An object
//! becomes visible at its key only when `CompleteMultipartUpload` succeeds (S3 API
//! reference, "CompleteMultipartUpload": "Until you complete the upload, the object is not
//! visible"), so a killed run leaves at most an incomplete upload, never a partial object;
//! on error the upload is aborted. Re-running with the same input rewrites the same bytes,
//! and `part-…` keys of this run's naming scheme that it did not write are deleted, as the
//! local writer removes stale part files (`convert::writer::PartWriter::finish`).
//!
//! Credentials and endpoint come from each backend's standard variables through the
//! builders' `from_env`: `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, … for
//! `s3://`; `GOOGLE_SERVICE_ACCOUNT`, `GOOGLE_APPLICATION_CREDENTIALS`, … for `gs://`;
//! `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_USE_EMULATOR`,
//! … for `az://container/prefix`.
//!
//! Fetching into a store downloads each file with the ordinary [`Downloader`] into a
//! private staging directory (so it is verified — size and SHA-256 — exactly as a local
//! fetch verifies it, with the same retries, resume and range splitting), then uploads
//! it as a multipart upload that is completed only after that verification, recording
//! the SHA-256 as the object's user metadata `sha256`; the staged copy is removed at
//! once, so local disk holds at most a few files per concurrent job. A re-run lists the
//! prefix and HEADs the objects whose size matches to read that digest back, and
//! transfers only what is missing or different. [`verify_store`] re-reads every object
//! against the `SHA256SUMS.txt` stored beside them.
//!
//! Split by job (issue 12): this file holds object URLs, errors and the store builder;
//! `upload` the Parquet upload and the read-back of a previous output, `fetch` the
//! store as a destination of the one fetch loop (`fetch::run`: listing, HEAD of the
//! digest metadata, upload of each verified staged file), `verify` the re-hash of a
//! stored version.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, GetOptions, MultipartUpload, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutPayload,
};
use tokio::io::AsyncReadExt;
use url::Url;

use crate::auth::SafeUrl;
use crate::convert::writer::is_part_file;
use crate::error::{EXIT_AUTH, EXIT_PARTIAL, EXIT_USAGE};
use crate::fetch::Entry;
use crate::fetch::verify::VerifyReport;
use crate::fetch::{Downloader, FetchOptions, FetchPlan, FetchReport, Reporter};
use crate::fsutil::enclosed_path;

mod fetch;
mod upload;
mod verify;

pub(crate) use fetch::StoreDestination;
pub use fetch::{already_in_store, fetch_to_store};
pub use upload::{
    UploadOptions, UploadReport, download_previous, download_previous_from, has_output, preflight,
    upload_dir, upload_dir_to,
};
pub use verify::verify_store;
#[allow(unused_imports)] // the submodules' crate-internal helpers, for the tests below
use {fetch::*, upload::*, verify::*};

/// Test-only fault injection: milliseconds to wait after a file's bytes are sent and
/// before its multipart upload is completed, so a test can kill the process while an
/// upload is open and check that no object appeared. Read by the CLI, never set by users.
pub const PAUSE_BEFORE_COMPLETE_ENV: &str = "PHYSIO_TEST_UPLOAD_PAUSE_MS";

/// Size of each uploaded part. S3 requires at least 5 MiB for every part but the last
/// (S3 API reference, "UploadPart"); larger parts mean fewer requests for big files.
const PART_SIZE: usize = 8 * 1024 * 1024;

/// Parts uploaded concurrently per file.
const PART_CONCURRENCY: usize = 4;

/// Files a fetch uploads at once. Each holds up to `PART_SIZE × PART_CONCURRENCY`
/// (32 MiB) in memory, so this caps a fetch's upload buffers at 128 MiB whatever
/// `--jobs` is; uploads to a store are usually much faster than PhysioNet downloads,
/// so four keep up with many more downloads.
const FETCH_UPLOADS: usize = 4;

/// Errors of object-store output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectStoreError {
    /// The `--out` URL is not a usable object URL (no bucket, bad syntax).
    #[error("invalid object-store URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The scheme is an object-store URL form physio does not take.
    #[error(
        "{scheme}:// URLs are not supported; use s3://bucket/prefix, gs://bucket/prefix or az://container/prefix"
    )]
    Unsupported {
        /// The URL scheme, e.g. `gs`.
        scheme: String,
    },
    // The store's error is shown in the message but deliberately not exposed as
    // `source()`: object_store's `Display` already embeds its whole cause chain, so the
    // CLI's `{:#}` chain printing would repeat it once per level.
    /// The store refused our credentials (HTTP 401/403).
    #[error(
        "object store {url}: access denied, check the store's credentials (AWS_*, GOOGLE_* or AZURE_* variables): {error}"
    )]
    Denied {
        /// The target URL, redacted.
        url: String,
        /// The store's error.
        error: object_store::Error,
    },
    /// Any other store operation failed (network, missing bucket, server error).
    #[error("object store {url}: {error}")]
    Store {
        /// The target URL or object key, redacted.
        url: String,
        /// The store's error.
        error: object_store::Error,
    },
    /// Reading a staged file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The staged file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ObjectStoreError {
    /// The process exit code: 2 for a bad URL, 3 for refused credentials, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            ObjectStoreError::InvalidUrl { .. } | ObjectStoreError::Unsupported { .. } => {
                EXIT_USAGE
            }
            ObjectStoreError::Denied { .. } => EXIT_AUTH,
            ObjectStoreError::Store { .. } | ObjectStoreError::Io { .. } => EXIT_PARTIAL,
        }
    }

    /// Wraps a store error, separating credential refusals (exit 3) from the rest.
    fn store(url: &str, error: object_store::Error) -> Self {
        let url = url.to_string();
        let denied = match &error {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => true,
            // Listing failures arrive as `Generic`, with the HTTP status only in the text
            // (object_store's `RetryError` that carries it is crate-private).
            other => {
                let text = other.to_string();
                text.contains("403 Forbidden") || text.contains("401 Unauthorized")
            }
        };
        match denied {
            true => ObjectStoreError::Denied { url, error },
            false => ObjectStoreError::Store { url, error },
        }
    }
}

/// Which object store a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Amazon S3 or an S3-compatible server (`s3://`, `s3a://`).
    S3,
    /// Google Cloud Storage (`gs://`).
    Gcs,
    /// Azure Blob Storage (`az://container/…`, `azure://container/…`).
    Azure,
}

/// Where object-store output goes: a bucket and a key (one `.parquet` object) or a key
/// prefix (a "directory" of part files).
#[derive(Debug, Clone)]
pub struct ObjectUrl {
    url: SafeUrl,
    kind: StoreKind,
    bucket: String,
    key: ObjectPath,
    single_file: bool,
}

impl ObjectUrl {
    /// Parses `out` as an object URL. Returns `Ok(None)` when it is not a URL at all (a
    /// local path), so callers can fall back to writing on disk.
    pub fn parse(out: &str) -> Result<Option<ObjectUrl>, ObjectStoreError> {
        let Some((scheme, _)) = out.split_once("://") else {
            return Ok(None);
        };
        let scheme = scheme.to_ascii_lowercase();
        let kind = match scheme.as_str() {
            "s3" | "s3a" => StoreKind::S3,
            "gs" => StoreKind::Gcs,
            "az" | "azure" => StoreKind::Azure,
            // These carry the account in the host and the container in the user-info;
            // `az://container/prefix` with AZURE_STORAGE_ACCOUNT_NAME says the same.
            "abfs" | "abfss" | "adl" => {
                return Err(ObjectStoreError::Unsupported { scheme });
            }
            "file" => return Ok(None),
            _ => {
                return Err(ObjectStoreError::InvalidUrl {
                    url: redact_str(out),
                    reason: format!(
                        "unknown scheme {scheme:?} (use s3://, gs:// or az://bucket/prefix/)"
                    ),
                });
            }
        };
        let url = Url::parse(out).map_err(|e| ObjectStoreError::InvalidUrl {
            url: redact_str(out),
            reason: e.to_string(),
        })?;
        let invalid = |reason: &str| ObjectStoreError::InvalidUrl {
            url: SafeUrl::new(url.clone()).redacted(),
            reason: reason.to_string(),
        };
        let bucket = url
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| invalid("no bucket"))?
            .to_string();
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("query strings and fragments are not allowed"));
        }
        let raw_key = url.path().trim_start_matches('/');
        let single_file = raw_key.to_ascii_lowercase().ends_with(".parquet");
        let key = ObjectPath::parse(raw_key.trim_end_matches('/'))
            .map_err(|e| invalid(&e.to_string()))?;
        if single_file && key.filename().is_none() {
            return Err(invalid("no object name"));
        }
        Ok(Some(ObjectUrl {
            url: SafeUrl::new(url),
            kind,
            bucket,
            key,
            single_file,
        }))
    }

    /// The store the URL names.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The same URL read as a key prefix (a "directory"), even when its last component
    /// ends in `.parquet`: fetch output is always a prefix.
    pub fn into_prefix(mut self) -> ObjectUrl {
        self.single_file = false;
        self
    }

    /// The prefix `rel` (a `/`-separated relative path) below this prefix, e.g. the
    /// `<slug>/<version>` directory of a fetch.
    pub fn join(&self, rel: &str) -> ObjectUrl {
        let mut out = self.clone().into_prefix();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            out.key = out.key.clone().join(part);
        }
        out
    }

    /// The `scheme://bucket/key` URL of this prefix or object, for messages and reports.
    pub fn display_url(&self) -> String {
        self.object_url(&self.key)
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key (one file) or key prefix (directory), without a trailing `/`.
    pub fn key(&self) -> &str {
        self.key.as_ref()
    }

    /// True when the URL names one `.parquet` object rather than a prefix.
    pub fn is_single_file(&self) -> bool {
        self.single_file
    }

    /// The URL with any user-info or query secrets hidden, for messages.
    pub fn redacted(&self) -> String {
        self.url.redacted()
    }

    /// The `s3://bucket/key` URL of `key`.
    fn object_url(&self, key: &ObjectPath) -> String {
        let key = key.as_ref();
        match key.is_empty() {
            true => format!("{}://{}", self.url.url().scheme(), self.bucket),
            false => format!("{}://{}/{}", self.url.url().scheme(), self.bucket, key),
        }
    }

    /// The key for a staged file called `name`.
    fn key_for(&self, name: &str) -> ObjectPath {
        if self.single_file {
            self.key.clone()
        } else {
            self.key.clone().join(name)
        }
    }
}
/// `a/b/c.parquet` → `a/b`.
pub(super) fn parent(key: &ObjectPath) -> ObjectPath {
    let parts: Vec<_> = key.parts().collect();
    ObjectPath::from_iter(parts[..parts.len().saturating_sub(1)].iter().cloned())
}

/// A single-threaded Tokio runtime for the blocking entry points.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime, ObjectStoreError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ObjectStoreError::Io {
            path: PathBuf::from("<tokio runtime>"),
            source,
        })
}

/// Builds the client for `target`'s store from that backend's standard environment
/// variables (see the module docs); nothing else — in particular no PhysioNet
/// credential — is ever given to it.
pub fn build_store(target: &ObjectUrl) -> Result<Box<dyn ObjectStore>, ObjectStoreError> {
    let err = |e| ObjectStoreError::store(&target.redacted(), e);
    crate::fetch::client::install_tls_provider();
    Ok(match target.kind {
        StoreKind::S3 => Box::new(
            AmazonS3Builder::from_env()
                .with_bucket_name(&target.bucket)
                .build()
                .map_err(err)?,
        ),
        StoreKind::Gcs => Box::new(
            GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(&target.bucket)
                .build()
                .map_err(err)?,
        ),
        StoreKind::Azure => Box::new(
            MicrosoftAzureBuilder::from_env()
                .with_container_name(&target.bucket)
                .build()
                .map_err(err)?,
        ),
    })
}

/// The test-only pause from [`PAUSE_BEFORE_COMPLETE_ENV`], if set to a number.
pub fn pause_from_env() -> Option<Duration> {
    std::env::var(PAUSE_BEFORE_COMPLETE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// Redacts a string that may be a URL with credentials; unparsable input is hidden.
pub(super) fn redact_str(s: &str) -> String {
    Url::parse(s)
        .map(|u| SafeUrl::new(u).redacted())
        .unwrap_or_else(|_| "<unparsable URL>".to_string())
}

/// The user-metadata key under which a fetched file's SHA-256 (lower-case hex) is stored
/// on its object: `x-amz-meta-sha256` on S3, `x-goog-meta-sha256` on GCS,
/// `x-ms-meta-sha256` on Azure. A re-run reads it back with a HEAD request.
pub const SHA256_METADATA: &str = "sha256";

/// The file every fetched version directory carries (as on disk) for `physio verify`.
pub(super) const SUMS_NAME: &str = "SHA256SUMS.txt";

/// The key of the `/`-separated relative `path` below `prefix`.
pub(super) fn key_below(prefix: &ObjectPath, path: &str) -> ObjectPath {
    path.split('/')
        .filter(|p| !p.is_empty())
        .fold(prefix.clone(), |k, part| k.join(part))
}

/// `key` relative to `prefix`, `/`-separated (as the object's path in the dataset).
pub(super) fn rel_of(prefix: &ObjectPath, key: &ObjectPath) -> String {
    match key.prefix_match(prefix) {
        Some(parts) => parts
            .map(|p| p.as_ref().to_string())
            .collect::<Vec<_>>()
            .join("/"),
        None => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    /// Every key under `prefix`, sorted.
    async fn list_keys(
        store: &dyn ObjectStore,
        prefix: Option<&ObjectPath>,
    ) -> Result<Vec<String>, object_store::Error> {
        let mut stream = store.list(prefix);
        let mut keys = Vec::new();
        while let Some(meta) = stream.next().await {
            keys.push(meta?.location.to_string());
        }
        keys.sort();
        Ok(keys)
    }

    fn url(s: &str) -> ObjectUrl {
        ObjectUrl::parse(s).expect("valid").expect("an object URL")
    }

    #[test]
    fn parses_prefix_and_single_file_urls() {
        let dir = url("s3://bkt/data/ptbxl/");
        assert_eq!(dir.bucket(), "bkt");
        assert_eq!(dir.key(), "data/ptbxl");
        assert!(!dir.is_single_file());
        let file = url("s3://bkt/a/out.parquet");
        assert_eq!(file.key(), "a/out.parquet");
        assert!(file.is_single_file());
        let root = url("s3://bkt");
        assert_eq!(root.key(), "");
    }

    #[test]
    fn local_paths_are_not_urls() {
        assert!(ObjectUrl::parse("out/dir").expect("ok").is_none());
        assert!(ObjectUrl::parse("/tmp/x.parquet").expect("ok").is_none());
    }

    #[test]
    fn other_schemes_are_refused_clearly() {
        let e = ObjectUrl::parse("abfss://c@acct.dfs.core.windows.net/p").expect_err("abfss");
        assert!(matches!(e, ObjectStoreError::Unsupported { .. }));
        assert_eq!(e.exit_code(), EXIT_USAGE);
        let e = ObjectUrl::parse("ftp://b/p").expect_err("unknown scheme");
        assert!(e.to_string().contains("unknown scheme"), "{e}");
        assert!(ObjectUrl::parse("s3:///p").is_err(), "no bucket");
    }

    #[test]
    fn credentials_in_url_are_not_echoed() {
        let e = ObjectUrl::parse("ftp://user:hunter2@b/p").expect_err("unknown scheme");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn parent_prefix() {
        assert_eq!(parent(&ObjectPath::from("a/b/c.parquet")).as_ref(), "a/b");
        assert_eq!(parent(&ObjectPath::from("c.parquet")).as_ref(), "");
    }

    #[test]
    fn own_part_names() {
        assert!(is_part_file("part-00003.parquet", None));
        assert!(!is_part_file("part-0003.parquet", None));
        assert!(!is_part_file("notes.parquet", None));
        assert!(is_part_file("part-2-00000.parquet", Some(2)));
        assert!(!is_part_file("part-1-00000.parquet", Some(2)));
        assert!(!is_part_file("part-2-00000.parquet", None));
    }

    fn stage(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).expect("write");
        }
        dir
    }

    async fn get(store: &InMemory, key: &str) -> Vec<u8> {
        store
            .get(&ObjectPath::from(key))
            .await
            .expect("object")
            .bytes()
            .await
            .expect("bytes")
            .to_vec()
    }

    #[tokio::test]
    async fn uploads_parts_and_removes_only_stale_own_parts() {
        let store = InMemory::new();
        for key in [
            "p/part-00000.parquet",
            "p/part-00007.parquet",
            "p/notes.txt",
            "p/sub/part-00009.parquet",
            "other/part-00008.parquet",
        ] {
            store
                .put(&ObjectPath::from(key), PutPayload::from_static(b"old"))
                .await
                .expect("put");
        }
        let big = vec![7u8; PART_SIZE + 123];
        let staging = stage(&[
            ("part-00000.parquet", b"new0"),
            ("part-00001.parquet", &big),
        ]);
        let target = url("s3://bkt/p/");
        let report = upload_dir_to(&store, staging.path(), &target, &UploadOptions::default())
            .await
            .expect("upload");
        assert_eq!(
            report.uploaded,
            [
                "s3://bkt/p/part-00000.parquet",
                "s3://bkt/p/part-00001.parquet"
            ]
        );
        assert_eq!(report.deleted, ["s3://bkt/p/part-00007.parquet"]);
        assert_eq!(report.bytes, 4 + big.len() as u64);
        assert_eq!(get(&store, "p/part-00000.parquet").await, b"new0");
        assert_eq!(get(&store, "p/part-00001.parquet").await, big);
        let keys = list_keys(&store, None).await.expect("list");
        assert_eq!(
            keys,
            [
                "other/part-00008.parquet",
                "p/notes.txt",
                "p/part-00000.parquet",
                "p/part-00001.parquet",
                "p/sub/part-00009.parquet",
            ]
        );
    }

    #[tokio::test]
    async fn single_file_target_takes_the_one_staged_file() {
        let store = InMemory::new();
        let staging = stage(&[("out.parquet", b"abc")]);
        let target = url("s3://bkt/x/y.parquet");
        let report = upload_dir_to(&store, staging.path(), &target, &UploadOptions::default())
            .await
            .expect("upload");
        assert_eq!(report.uploaded, ["s3://bkt/x/y.parquet"]);
        assert_eq!(get(&store, "x/y.parquet").await, b"abc");

        let two = stage(&[("a.parquet", b"a"), ("b.parquet", b"b")]);
        let err = upload_dir_to(&store, two.path(), &target, &UploadOptions::default())
            .await
            .expect_err("two files for one key");
        assert!(
            err.to_string().contains("expected one staged file"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn shard_runs_leave_other_shards_alone() {
        let store = InMemory::new();
        for key in ["p/part-0-00000.parquet", "p/part-1-00001.parquet"] {
            store
                .put(&ObjectPath::from(key), PutPayload::from_static(b"old"))
                .await
                .expect("put");
        }
        let staging = stage(&[("part-1-00000.parquet", b"s1")]);
        let opts = UploadOptions {
            shard_prefix: Some(1),
            ..UploadOptions::default()
        };
        let report = upload_dir_to(&store, staging.path(), &url("s3://bkt/p"), &opts)
            .await
            .expect("upload");
        assert_eq!(report.deleted, ["s3://bkt/p/part-1-00001.parquet"]);
        let keys = list_keys(&store, None).await.expect("list");
        assert_eq!(keys, ["p/part-0-00000.parquet", "p/part-1-00000.parquet"]);
    }

    #[test]
    fn keys_below_a_prefix_round_trip() {
        let prefix = ObjectPath::from("out/ds/1.0");
        let key = key_below(&prefix, "a/b.dat");
        assert_eq!(key.as_ref(), "out/ds/1.0/a/b.dat");
        assert_eq!(rel_of(&prefix, &key), "a/b.dat");
        assert_eq!(key_below(&ObjectPath::from(""), "x").as_ref(), "x");
        let root = url("s3://bkt").join("ds/1.0");
        assert_eq!(root.key(), "ds/1.0");
        assert_eq!(root.display_url(), "s3://bkt/ds/1.0");
        assert_eq!(url("s3://bkt").display_url(), "s3://bkt");
        assert!(!url("s3://bkt/x.parquet").into_prefix().is_single_file());
    }

    #[test]
    fn gs_and_az_urls_name_their_store() {
        assert_eq!(url("gs://b/p").kind(), StoreKind::Gcs);
        assert_eq!(url("az://ctr/p").kind(), StoreKind::Azure);
        assert_eq!(url("azure://ctr/p").bucket(), "ctr");
        assert_eq!(url("s3a://b/p").kind(), StoreKind::S3);
    }

    /// A `file://` "server" holding `files`, and the fetch plan for all of them (with
    /// SHA-256s as PhysioNet publishes them), staging into its own temporary directory.
    struct Upstream {
        root: tempfile::TempDir,
        staging: tempfile::TempDir,
    }

    impl Upstream {
        fn new(files: &[(&str, &[u8])]) -> Upstream {
            let up = Upstream {
                root: tempfile::tempdir().expect("tempdir"),
                staging: tempfile::tempdir().expect("tempdir"),
            };
            up.set(files);
            up
        }

        fn set(&self, files: &[(&str, &[u8])]) {
            for (p, b) in files {
                let path = self.root.path().join(p);
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(path, b).expect("write");
            }
        }

        fn plan(&self, files: &[(&str, &[u8])]) -> FetchPlan {
            use sha2::Digest;
            let entries: Vec<Entry> = files
                .iter()
                .map(|(p, b)| Entry {
                    path: p.to_string(),
                    size: Some(b.len() as u64),
                    sha256: Some(sha2::Sha256::digest(b).into()),
                })
                .collect();
            let sums: String = entries
                .iter()
                .map(|e| {
                    format!(
                        "{}  {}\n",
                        hex::encode(e.sha256.unwrap_or_default()),
                        e.path
                    )
                })
                .collect();
            let mut base = Url::from_directory_path(self.root.path()).expect("file URL");
            base.set_path(&format!("{}/", base.path().trim_end_matches('/')));
            FetchPlan {
                dir: self.staging.path().to_path_buf(),
                base,
                upstream: entries.iter().map(|e| e.path.clone()).collect(),
                entries,
                sums_text: Some(sums),
            }
        }
    }

    fn downloader() -> Downloader {
        let client = crate::fetch::HttpClient::new(None, Duration::from_secs(5)).expect("client");
        Downloader::new(client, crate::fetch::DownloaderOptions::default())
    }

    async fn fetch_into(store: &InMemory, plan: &FetchPlan, delete: bool) -> FetchReport {
        let opts = FetchOptions {
            delete,
            ..FetchOptions::default()
        };
        fetch_to_store(
            store,
            &url("s3://bkt/out/ds/1.0"),
            plan,
            &downloader(),
            &opts,
            &UploadOptions::default(),
            &crate::fetch::NoReporter,
        )
        .await
        .expect("fetch")
    }

    #[tokio::test]
    async fn fetch_to_store_uploads_verified_files_with_their_digest_and_skips_them_after() {
        let store = InMemory::new();
        let files: [(&str, &[u8]); 2] = [("a.hea", b"header"), ("sub/a.dat", b"\x01\x02\x03")];
        let up = Upstream::new(&files);
        let plan = up.plan(&files);
        let report = fetch_into(&store, &plan, false).await;
        assert_eq!(report.done, ["a.hea", "sub/a.dat"]);
        assert!(report.failed.is_empty());
        assert_eq!(get(&store, "out/ds/1.0/sub/a.dat").await, b"\x01\x02\x03");
        assert_eq!(
            get(&store, "out/ds/1.0/SHA256SUMS.txt").await,
            plan.sums_text.clone().unwrap_or_default().as_bytes()
        );
        let stored = stored_sha256(&store, &ObjectPath::from("out/ds/1.0/a.hea"), "x")
            .await
            .expect("head");
        assert_eq!(stored, plan.entries[0].sha256);
        // Nothing is left in staging.
        assert_eq!(
            std::fs::read_dir(up.staging.path())
                .expect("dir")
                .flatten()
                .filter(|e| e.path().is_file())
                .count(),
            0
        );

        let again = fetch_into(&store, &plan, false).await;
        assert!(again.done.is_empty(), "{again:?}");
        assert_eq!(again.skipped, ["a.hea", "sub/a.dat"]);
        let present = already_in_store(&store, &url("s3://bkt/out/ds/1.0"), &plan.entries, 2)
            .await
            .expect("check");
        assert_eq!(present.len(), 2);
    }

    #[tokio::test]
    async fn fetch_to_store_replaces_changed_and_refuses_bad_bytes() {
        let store = InMemory::new();
        let v1: [(&str, &[u8]); 2] = [("a.dat", b"1111"), ("gone.dat", b"old")];
        let up = Upstream::new(&v1);
        fetch_into(&store, &up.plan(&v1), false).await;
        // Same size, new bytes upstream; gone.dat no longer listed; b.dat's published
        // digest is of bytes the server does not serve.
        let v2: [(&str, &[u8]); 2] = [("a.dat", b"2222"), ("b.dat", b"good")];
        up.set(&[("a.dat", b"2222"), ("b.dat", b"evil")]);
        let report = fetch_into(&store, &up.plan(&v2), true).await;
        assert_eq!(report.done, ["a.dat"]);
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert_eq!(report.failed[0].0, "b.dat");
        assert_eq!(report.exit_code(), crate::error::EXIT_INTEGRITY);
        assert_eq!(report.deleted, ["gone.dat"]);
        assert_eq!(get(&store, "out/ds/1.0/a.dat").await, b"2222");
        let keys = list_keys(&store, None).await.expect("list");
        assert_eq!(keys, ["out/ds/1.0/SHA256SUMS.txt", "out/ds/1.0/a.dat"]);
    }

    #[tokio::test]
    async fn verify_store_names_missing_and_mismatched_objects() {
        let store = InMemory::new();
        let files: [(&str, &[u8]); 3] = [("a", b"aaa"), ("b", b"bbb"), ("c", b"ccc")];
        let up = Upstream::new(&files);
        fetch_into(&store, &up.plan(&files), false).await;
        let target = url("s3://bkt/out/ds/1.0");
        let ok = verify_store(&store, &target, 2).await.expect("verify");
        assert_eq!(ok.ok, ["a", "b", "c"]);
        assert_eq!(ok.exit_code(), 0);
        store
            .put(
                &ObjectPath::from("out/ds/1.0/b"),
                PutPayload::from_static(b"bbx"),
            )
            .await
            .expect("put");
        store
            .delete(&ObjectPath::from("out/ds/1.0/c"))
            .await
            .expect("delete");
        let bad = verify_store(&store, &target, 2).await.expect("verify");
        assert_eq!(bad.ok, ["a"]);
        assert_eq!(bad.missing, ["c"]);
        assert_eq!(bad.mismatched.len(), 1);
        assert_eq!(bad.mismatched[0].0, "b");
        assert_eq!(bad.exit_code(), crate::error::EXIT_INTEGRITY);
    }
}
