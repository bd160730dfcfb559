//! Kaggle datasets: `kaggle:<owner>/<dataset>[@<version number>]`.
//!
//! The endpoints are the documented v1 REST API (`KaggleSwagger.yaml` in Kaggle/kaggle-api)
//! as the `kaggle` CLI and kagglehub call them, relative to `https://www.kaggle.com/api/v1`
//! (or `PHYSIO_KAGGLE_URL`):
//!
//! * `GET hello` — credential check (kagglehub's `_validate_credentials_helper`);
//! * `GET datasets/view/{owner}/{dataset}` — metadata; `currentVersionNumber` is the
//!   newest version (kagglehub's `_get_current_version`), `versions[].versionNumber` lists
//!   all of them;
//! * `GET datasets/list/{owner}/{dataset}?datasetVersionNumber=N[&pageToken=T]` — the
//!   files of a version (`datasetFiles[].name`, `totalBytes`; `nextPageToken` pages);
//! * `GET datasets/download/{owner}/{dataset}?datasetVersionNumber=N` — the whole version
//!   as one zip, answered with a redirect to a signed storage URL;
//! * `GET datasets/download/{owner}/{dataset}/{file}?datasetVersionNumber=N` — one file.
//!
//! Authentication is `Authorization: Bearer` for API tokens, HTTP Basic `user:key` for
//! legacy keys (see [`crate::auth::kaggle`]); the header goes only to the API host, and
//! only over HTTPS or to loopback. The storage URL a download redirects to is signed and
//! on another host: it is requested with no credentials at all.
//!
//! Storage responses carry `x-goog-hash: crc32c=<b64>,md5=<b64>` (Google Cloud Storage,
//! <https://cloud.google.com/storage/docs/xml-api/reference-headers#xgooghash>) and/or
//! `Content-MD5` (RFC 1864); [`StorageHashes`] parses them and checks a downloaded file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use md5::Md5;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::Deserialize;
use sha2::Digest as _;
use url::Url;

use crate::auth::kaggle::{CredentialsError, KaggleCredentials};
use crate::error::{EXIT_AUTH, EXIT_INTEGRITY, EXIT_PARTIAL, EXIT_USAGE};
use crate::extract::ExtractLimits;
use crate::fetch::{Downloader, DownloaderOptions, Expected, HttpClient, Outcome, Reporter};
use futures_util::StreamExt as _;

/// Kaggle's public API base (replaced by `PHYSIO_KAGGLE_URL`).
pub const DEFAULT_API_BASE: &str = "https://www.kaggle.com/api/v1";

/// The prefix that marks a Kaggle dataset spec.
pub const SPEC_PREFIX: &str = "kaggle:";

/// A Kaggle dataset reference: owner slug, dataset slug and optional version number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KaggleRef {
    /// The owner (user or organisation) slug.
    pub owner: String,
    /// The dataset slug.
    pub dataset: String,
    /// A pinned version number; `None` means the current version.
    pub version: Option<u32>,
}

impl KaggleRef {
    /// Parses `kaggle:<owner>/<dataset>[@<version>]` (the `kaggle:` prefix is optional).
    ///
    /// ```
    /// use physio::source::kaggle::KaggleRef;
    /// let r = KaggleRef::parse("kaggle:shayanfazeli/heartbeat@1").unwrap();
    /// assert_eq!((r.owner.as_str(), r.dataset.as_str(), r.version), ("shayanfazeli", "heartbeat", Some(1)));
    /// assert!(KaggleRef::parse("kaggle:../x").is_err());
    /// ```
    pub fn parse(spec: &str) -> Result<Self, KaggleError> {
        let bad = |reason: &str| KaggleError::BadSpec {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let body = spec.strip_prefix(SPEC_PREFIX).unwrap_or(spec);
        let (path, version) = match body.split_once('@') {
            Some((path, v)) => {
                let n: u32 = v
                    .parse()
                    .map_err(|_| bad("the version must be a positive whole number"))?;
                if n == 0 {
                    return Err(bad("Kaggle version numbers start at 1"));
                }
                (path, Some(n))
            }
            None => (body, None),
        };
        let Some((owner, dataset)) = path.split_once('/') else {
            return Err(bad("expected kaggle:<owner>/<dataset>"));
        };
        for slug in [owner, dataset] {
            // Slugs become directory names and URL path segments: keep them plain.
            let ok = !slug.is_empty()
                && slug != "."
                && slug != ".."
                && slug
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                return Err(bad(
                    "owner and dataset must be slugs (letters, digits, '-', '_', '.')",
                ));
            }
        }
        Ok(KaggleRef {
            owner: owner.to_string(),
            dataset: dataset.to_string(),
            version,
        })
    }

    /// The dataset's page on kaggle.com (where its rules are accepted).
    pub fn page_url(&self) -> String {
        format!(
            "https://www.kaggle.com/datasets/{}/{}",
            self.owner, self.dataset
        )
    }

    /// Where version `version` lands under the output directory `out`:
    /// `out/kaggle/<owner>/<dataset>/<version>`.
    pub fn version_dir(&self, out: &Path, version: u32) -> PathBuf {
        self.dataset_dir(out).join(version.to_string())
    }

    /// `out/kaggle/<owner>/<dataset>`: the parent of every version directory, and where
    /// physio keeps its `.physio-*` staging for this dataset.
    pub fn dataset_dir(&self, out: &Path) -> PathBuf {
        out.join("kaggle").join(&self.owner).join(&self.dataset)
    }
}

impl fmt::Display for KaggleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SPEC_PREFIX}{}/{}", self.owner, self.dataset)?;
        if let Some(v) = self.version {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

/// Errors talking to Kaggle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KaggleError {
    /// The dataset spec is malformed.
    #[error("invalid dataset {spec:?}: {reason}")]
    BadSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// The API base URL is not usable.
    #[error("invalid Kaggle API URL {url:?}: {reason}")]
    BadBase {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading local credentials failed.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// Credentials would travel in clear text to a host that is not loopback.
    #[error("refusing to send Kaggle credentials over plain HTTP to {host}; use https")]
    InsecureCredentials {
        /// The API host.
        host: String,
    },
    /// Kaggle refused the request for lack of (valid) credentials (HTTP 401).
    #[error("{what}: Kaggle refused the credentials (HTTP 401): {hint}")]
    Unauthorized {
        /// The dataset or endpoint.
        what: String,
        /// What the user can do.
        hint: String,
    },
    /// Kaggle refused access (HTTP 403): usually the dataset's rules are not accepted.
    #[error(
        "{what}: access refused (HTTP 403){}. If the dataset has rules or terms, accept them \
         at {page} while signed in to the account whose credentials physio uses ({creds})",
        message.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
    )]
    Forbidden {
        /// The dataset.
        what: String,
        /// Kaggle's own message, if any (with any secret removed).
        message: Option<String>,
        /// The dataset page.
        page: String,
        /// Which credentials were used (no secrets).
        creds: String,
    },
    /// The dataset or version does not exist (HTTP 404, or a version not listed).
    #[error("{what}: not found on Kaggle")]
    NotFound {
        /// The dataset, version or file.
        what: String,
    },
    /// Kaggle answered something unexpected.
    #[error("{url}: {message}")]
    Api {
        /// The URL (never carries credentials).
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A downloaded file does not match the hash its server reported.
    #[error("{}: {algorithm} mismatch: server reported {expected}, downloaded bytes have {actual}", path.display())]
    HashMismatch {
        /// The downloaded file.
        path: PathBuf,
        /// `md5` or `crc32c`.
        algorithm: &'static str,
        /// As reported (base64).
        expected: String,
        /// As computed (base64).
        actual: String,
    },
    /// A local file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl KaggleError {
    /// Exit code (contract): 2 usage, 3 auth refusals, 4 integrity, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            KaggleError::BadSpec { .. } | KaggleError::BadBase { .. } => EXIT_USAGE,
            KaggleError::Credentials(_)
            | KaggleError::InsecureCredentials { .. }
            | KaggleError::Unauthorized { .. }
            | KaggleError::Forbidden { .. } => EXIT_AUTH,
            KaggleError::HashMismatch { .. } => EXIT_INTEGRITY,
            KaggleError::NotFound { .. } | KaggleError::Api { .. } | KaggleError::Io { .. } => {
                EXIT_PARTIAL
            }
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        KaggleError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Hashes a storage service reported for a body: `x-goog-hash` and `Content-MD5`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageHashes {
    /// MD5 digest (16 bytes).
    pub md5: Option<[u8; 16]>,
    /// CRC32C (Castagnoli) checksum.
    pub crc32c: Option<u32>,
}

impl StorageHashes {
    /// Reads `x-goog-hash` (`crc32c=<b64>,md5=<b64>`, possibly as several header lines)
    /// and `Content-MD5` (RFC 1864, base64 MD5). Malformed values are ignored with a
    /// warning: they cannot vouch for the bytes, and the zip's own CRCs still do.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut out = StorageHashes::default();
        let b64 = base64::engine::general_purpose::STANDARD;
        let values = headers
            .get_all("x-goog-hash")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string())
            .chain(
                headers
                    .get_all("content-md5")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .map(|v| format!("md5={}", v.trim())),
            );
        for item in values {
            let Some((name, value)) = item.split_once('=') else {
                continue;
            };
            let decoded = b64.decode(value.trim());
            match (name.trim().to_ascii_lowercase().as_str(), decoded) {
                ("md5", Ok(bytes)) if bytes.len() == 16 => {
                    let mut d = [0u8; 16];
                    d.copy_from_slice(&bytes);
                    out.md5 = Some(d);
                }
                ("crc32c", Ok(bytes)) if bytes.len() == 4 => {
                    // Big-endian, as GCS encodes it.
                    out.crc32c = Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
                }
                (name @ ("md5" | "crc32c"), _) => {
                    tracing::warn!(hash = name, "ignoring malformed storage hash header");
                }
                _ => {}
            }
        }
        out
    }

    /// True when the server reported nothing to check against.
    pub fn is_empty(&self) -> bool {
        self.md5.is_none() && self.crc32c.is_none()
    }

    /// Re-reads `path` and checks it against every reported hash. Blocking I/O.
    pub fn verify_file(&self, path: &Path) -> Result<(), KaggleError> {
        if self.is_empty() {
            return Ok(());
        }
        let mut file = std::fs::File::open(path).map_err(|e| KaggleError::io(path, e))?;
        let mut md5 = Md5::new();
        let mut crc = 0u32;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n =
                std::io::Read::read(&mut file, &mut buf).map_err(|e| KaggleError::io(path, e))?;
            if n == 0 {
                break;
            }
            if self.md5.is_some() {
                md5.update(&buf[..n]);
            }
            if self.crc32c.is_some() {
                crc = crc32c::crc32c_append(crc, &buf[..n]);
            }
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        if let Some(expected) = self.md5 {
            let actual: [u8; 16] = md5.finalize().into();
            if actual != expected {
                return Err(KaggleError::HashMismatch {
                    path: path.to_path_buf(),
                    algorithm: "md5",
                    expected: b64.encode(expected),
                    actual: b64.encode(actual),
                });
            }
        }
        if let Some(expected) = self.crc32c
            && crc != expected
        {
            return Err(KaggleError::HashMismatch {
                path: path.to_path_buf(),
                algorithm: "crc32c",
                expected: b64.encode(expected.to_be_bytes()),
                actual: b64.encode(crc.to_be_bytes()),
            });
        }
        Ok(())
    }
}

/// What `datasets/view` says about a dataset (the fields physio uses).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetInfo {
    /// The newest version number.
    pub current_version_number: Option<u32>,
    /// Every version, newest first as Kaggle lists them.
    #[serde(default)]
    pub versions: Vec<VersionInfo>,
    /// The dataset title.
    #[serde(default)]
    pub title: Option<String>,
    /// Total size in bytes of the current version's files.
    #[serde(default)]
    pub total_bytes: Option<u64>,
}

/// One entry of `DatasetInfo::versions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// The version number.
    pub version_number: u32,
}

/// One file of a dataset version, from `datasets/list`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteFile {
    /// Path inside the dataset, `/`-separated.
    pub name: String,
    /// Size in bytes.
    #[serde(default)]
    pub total_bytes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileList {
    #[serde(default)]
    dataset_files: Vec<RemoteFile>,
    #[serde(default)]
    next_page_token: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
}

/// A client for Kaggle's dataset API: one base URL, optional credentials.
#[derive(Debug, Clone)]
pub struct KaggleApi {
    base: Url,
    http: reqwest::Client,
    credentials: Option<KaggleCredentials>,
}

/// The User-Agent physio sends to Kaggle.
pub fn user_agent() -> String {
    format!("physio/{}", crate::VERSION)
}

impl KaggleApi {
    /// A client for the API at `base` (`https://www.kaggle.com/api/v1` unless overridden).
    /// Refuses credentials over plain HTTP to anything but loopback.
    pub fn new(base: &str, credentials: Option<KaggleCredentials>) -> Result<Self, KaggleError> {
        let bad = |reason: &str| KaggleError::BadBase {
            url: base.to_string(),
            reason: reason.to_string(),
        };
        let mut url = Url::parse(base).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad("expected an http(s) URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("credentials do not belong in the URL"));
        }
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        if credentials.is_some() && url.scheme() == "http" && !is_loopback(&url) {
            return Err(KaggleError::InsecureCredentials {
                host: url.host_str().unwrap_or_default().to_string(),
            });
        }
        let http = reqwest::Client::builder()
            .user_agent(user_agent())
            // Redirects are followed by hand so the credentials never leave the API host.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(20))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(KaggleApi {
            base: url,
            http,
            credentials,
        })
    }

    /// The credentials in use, if any.
    pub fn credentials(&self) -> Option<&KaggleCredentials> {
        self.credentials.as_ref()
    }

    /// The shared HTTP client (no automatic redirects, no decompression).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The API URL for `path` (relative to the base) with `query` pairs.
    pub fn url(&self, path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        {
            // Push segment by segment so slugs and file names are percent-encoded.
            if let Ok(mut segs) = url.path_segments_mut() {
                segs.pop_if_empty();
                for s in path.split('/').filter(|s| !s.is_empty()) {
                    segs.push(s);
                }
            }
        }
        if !query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// The API's `Authorization` header, marked sensitive so it is never logged.
    pub fn auth_header(&self) -> Option<HeaderValue> {
        let creds = self.credentials.as_ref()?;
        let mut v = HeaderValue::from_str(&creds.authorization()).ok()?;
        v.set_sensitive(true);
        Some(v)
    }

    /// The download URL of a whole version (a zip) or of one file in it.
    pub fn download_url(&self, r: &KaggleRef, version: u32, file: Option<&str>) -> Url {
        let mut path = format!("datasets/download/{}/{}", r.owner, r.dataset);
        if let Some(f) = file {
            path.push('/');
            path.push_str(f);
        }
        self.url(&path, &[("datasetVersionNumber", version.to_string())])
    }

    /// Sends a GET to the API host with the credentials; no redirects are followed.
    pub async fn get(&self, url: &Url) -> Result<reqwest::Response, KaggleError> {
        let mut req = self.http.get(url.clone());
        if let Some(h) = self.auth_header() {
            req = req.header(header::AUTHORIZATION, h);
        }
        req.send().await.map_err(|e| KaggleError::Api {
            url: redacted(url),
            message: error_chain(&e),
        })
    }

    /// GETs `url` and decodes its JSON body, mapping refusals to typed errors.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
        what: &str,
        r: &KaggleRef,
    ) -> Result<T, KaggleError> {
        let resp = self.get(url).await?;
        let resp = self.check_status(resp, what, r).await?;
        let bytes = resp.bytes().await.map_err(|e| KaggleError::Api {
            url: redacted(url),
            message: error_chain(&e),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| KaggleError::Api {
            url: redacted(url),
            message: format!("unexpected response: {e}"),
        })
    }

    /// Maps 401/403/404 and other non-success statuses to [`KaggleError`]s; passes the
    /// response through otherwise.
    pub async fn check_status(
        &self,
        resp: reqwest::Response,
        what: &str,
        r: &KaggleRef,
    ) -> Result<reqwest::Response, KaggleError> {
        let status = resp.status();
        if status.is_success() || status.is_redirection() {
            return Ok(resp);
        }
        let url = redacted(resp.url());
        let message = self.server_message(resp).await;
        Err(match status {
            StatusCode::UNAUTHORIZED => KaggleError::Unauthorized {
                what: what.to_string(),
                hint: match &self.credentials {
                    None => "no Kaggle credentials found; set KAGGLE_API_TOKEN (or \
                             KAGGLE_USERNAME and KAGGLE_KEY), or put kaggle.json in ~/.kaggle"
                        .to_string(),
                    Some(c) => format!("check the {c}"),
                },
            },
            StatusCode::FORBIDDEN => KaggleError::Forbidden {
                what: what.to_string(),
                message,
                page: r.page_url(),
                creds: self
                    .credentials
                    .as_ref()
                    .map_or_else(|| "none found".to_string(), |c| c.to_string()),
            },
            StatusCode::NOT_FOUND => KaggleError::NotFound {
                what: what.to_string(),
            },
            s => KaggleError::Api {
                url,
                message: match message {
                    Some(m) => format!("HTTP {s}: {m}"),
                    None => format!("HTTP {s}"),
                },
            },
        })
    }

    /// Kaggle's error text (`{"message": ...}` or a short plain body), with any secret
    /// removed so that an echoing server cannot make physio print a credential.
    async fn server_message(&self, resp: reqwest::Response) -> Option<String> {
        let bytes = resp.bytes().await.ok()?;
        let text = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) => v
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)?,
            Err(_) => String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                .trim()
                .to_string(),
        };
        if text.is_empty() {
            return None;
        }
        match &self.credentials {
            Some(c) if c.appears_in(&text) => {
                Some("(server message withheld: it echoed the credentials)".into())
            }
            _ => Some(text),
        }
    }

    /// Checks the credentials against `GET hello` (as `kagglehub.login` does). Only
    /// called when credentials are present; a refusal is [`KaggleError::Unauthorized`].
    pub async fn check_credentials(&self, r: &KaggleRef) -> Result<(), KaggleError> {
        let url = self.url("hello", &[]);
        let resp = self.get(&url).await?;
        let resp = self
            .check_status(resp, "Kaggle credential check", r)
            .await?;
        // kagglehub treats a JSON body with `"code": 401` as a refusal too.
        let bytes = resp.bytes().await.unwrap_or_default();
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && v.get("code").and_then(|c| c.as_u64()) == Some(401)
        {
            return Err(KaggleError::Unauthorized {
                what: "Kaggle credential check".into(),
                hint: self
                    .credentials
                    .as_ref()
                    .map_or_else(String::new, |c| format!("check the {c}")),
            });
        }
        Ok(())
    }

    /// `datasets/view/{owner}/{dataset}`.
    pub async fn view(&self, r: &KaggleRef) -> Result<DatasetInfo, KaggleError> {
        let url = self.url(&format!("datasets/view/{}/{}", r.owner, r.dataset), &[]);
        let what = format!("{SPEC_PREFIX}{}/{}", r.owner, r.dataset);
        self.get_json(&url, &what, r).await
    }

    /// The version to fetch: the pinned one (checked against the listed versions when
    /// Kaggle lists any), else `currentVersionNumber`.
    pub async fn resolve_version(&self, r: &KaggleRef) -> Result<u32, KaggleError> {
        let info = self.view(r).await?;
        pick_version(r, &info)
    }

    /// Every file of `version`, following `nextPageToken`.
    pub async fn list_files(
        &self,
        r: &KaggleRef,
        version: u32,
    ) -> Result<Vec<RemoteFile>, KaggleError> {
        let mut files = Vec::new();
        let mut token: Option<String> = None;
        let what = format!("{SPEC_PREFIX}{}/{}@{version}", r.owner, r.dataset);
        // A hard page cap guards against a server that keeps returning the same token.
        for _ in 0..10_000 {
            let mut query = vec![("datasetVersionNumber", version.to_string())];
            if let Some(t) = &token {
                query.push(("pageToken", t.clone()));
            }
            let url = self.url(&format!("datasets/list/{}/{}", r.owner, r.dataset), &query);
            let page: FileList = self.get_json(&url, &what, r).await?;
            if let Some(msg) = page.error_message.filter(|m| !m.is_empty()) {
                return Err(KaggleError::Api {
                    url: redacted(&url),
                    message: msg,
                });
            }
            files.extend(page.dataset_files);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) if token.as_deref() != Some(t.as_str()) => token = Some(t),
                _ => return Ok(files),
            }
        }
        Ok(files)
    }
}

/// Applies the version rule of [`KaggleApi::resolve_version`] to a `datasets/view` answer.
pub fn pick_version(r: &KaggleRef, info: &DatasetInfo) -> Result<u32, KaggleError> {
    match r.version {
        Some(v) => {
            if !info.versions.is_empty() && !info.versions.iter().any(|x| x.version_number == v) {
                return Err(KaggleError::NotFound {
                    what: format!(
                        "{r} (versions: {})",
                        info.versions
                            .iter()
                            .map(|x| x.version_number.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            Ok(v)
        }
        None => info
            .current_version_number
            .or_else(|| info.versions.iter().map(|x| x.version_number).max())
            .ok_or_else(|| KaggleError::Api {
                url: format!("datasets/view/{}/{}", r.owner, r.dataset),
                message: "response has no currentVersionNumber".into(),
            }),
    }
}

/// True for `localhost` and loopback IP hosts (tests may use plain HTTP there).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `url` without user info or query (signed storage URLs carry their signature in the
/// query string; it is a bearer credential of its own and is not printed).
pub fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if u.query().is_some() {
        u.set_query(None);
        format!("{u}?…")
    } else {
        u.to_string()
    }
}

/// An error with its sources, one line (reqwest's top-level message alone is vague).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Hex SHA-256 of a file (for re-checking a local copy). Blocking I/O.
pub fn sha256_file(path: &Path) -> Result<String, std::io::Error> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

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
    /// The API base (`PHYSIO_KAGGLE_URL` or [`DEFAULT_API_BASE`]).
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
    let api = KaggleApi::new(&opts.api_base, opts.credentials.clone())?;
    if api.credentials().is_some() {
        api.check_credentials(r).await?;
    }
    let version = api.resolve_version(r).await?;
    let vdir = r.version_dir(&opts.out, version);
    let ddir = r.dataset_dir(&opts.out);
    let filter = Filter::new(&opts.include, &opts.exclude)?;
    tracing::info!(dataset = %r, version, dir = %vdir.display(), "resolved Kaggle dataset");
    // The engine's client carries no credentials at all: it only ever talks to the
    // storage host, so Kaggle's cannot leak there by construction.
    let dl = Downloader::new(
        HttpClient::new(None, Duration::from_secs(30))?,
        opts.downloader.clone(),
    );

    let report = |mode, files: usize, bytes: u64, downloaded: u64| KaggleReport {
        dataset: format!("{SPEC_PREFIX}{}/{}", r.owner, r.dataset),
        version,
        dir: vdir.clone(),
        mode,
        files,
        bytes,
        downloaded,
        failed: Vec::new(),
        exit_code: 0,
    };

    let Some(filter) = filter else {
        // Re-check the local copy first: a complete, intact version is not fetched again.
        let complete = vdir.join(SUMS_FILE).is_file() && vdir.join(COMPLETE_MARK).is_file();
        if complete && !opts.dry_run {
            let check = vdir.clone();
            let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
            let v = blocking(move || crate::fetch::verify::verify_dir(&check, jobs)).await?;
            match v {
                Ok(v) if v.exit_code() == 0 => {
                    return Ok(report(FetchMode::UpToDate, v.ok.len(), v.bytes, 0));
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
        if opts.dry_run {
            let files = api.list_files(r, version).await?;
            let bytes = files.iter().filter_map(|f| f.total_bytes).sum();
            return Ok(report(FetchMode::DryRun, files.len(), bytes, 0));
        }
        std::fs::create_dir_all(&ddir).map_err(|e| crate::Error::io(&ddir, e))?;
        let _lock = crate::fetch::DirLock::acquire(&ddir, None)?;
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
        return Ok(report(FetchMode::Archive, files, bytes, downloaded));
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
    std::fs::create_dir_all(&vdir).map_err(|e| crate::Error::io(&vdir, e))?;
    let _lock = crate::fetch::DirLock::acquire(&vdir, None)?;
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
                sums.insert(name, sha);
            }
            Ok(None) => {}
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
        if blocking(move || sha256_file(&p)).await?.ok().as_deref() == Some(expected.as_str()) {
            return Ok(None);
        }
    }
    let url = api.download_url(r, version, Some(name));
    let what = format!("{r}@{version}: {name}");
    let storage = with_retries(dl, &what, || storage_url(api, &url, &what, r)).await?;
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
        let n = download_storage(api, dl, &storage, &tmp, &what, &progress).await?;
        let unpacked = unzip_single(&tmp, &dest, base, limits).await;
        let _ = std::fs::remove_file(&tmp);
        unpacked?;
        n
    } else {
        download_storage(api, dl, &storage, &dest, &what, &progress).await?
    };
    let p = dest.clone();
    let sha = blocking(move || sha256_file(&p))
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
    let storage = with_retries(dl, what, || storage_url(api, api_url, what, r)).await?;
    download_storage(api, dl, &storage, dest, what, progress).await
}

/// The second half of [`download`]: the engine fetches the storage URL `storage`.
async fn download_storage(
    api: &KaggleApi,
    dl: &Downloader,
    storage: &Url,
    dest: &Path,
    what: &str,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, crate::Error> {
    let storage = storage.clone();
    let (hashes, size) = with_retries(dl, what, || probe(api, &storage)).await?;
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
        .download(&storage, &landing, &expected, progress)
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

/// A retryable failure: how long the server asked us to wait, and why.
struct Transient {
    retry_after: Option<Duration>,
    reason: String,
}

/// Runs `step` until it succeeds, fails for good, or the engine's retry policy (and
/// run-wide budget) is spent.
async fn with_retries<T, F, Fut>(
    dl: &Downloader,
    what: &str,
    mut step: F,
) -> Result<T, crate::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Result<T, Transient>, crate::Error>>,
{
    let (policy, budget) = dl.retry();
    let mut attempt = 0u32;
    loop {
        match step().await? {
            Ok(v) => return Ok(v),
            Err(t) => {
                attempt += 1;
                if attempt >= policy.max_attempts || !budget.take() {
                    return Err(KaggleError::Api {
                        url: what.to_string(),
                        message: format!("gave up after {attempt} attempts: {}", t.reason),
                    }
                    .into());
                }
                let delay = policy.delay(attempt - 1, t.retry_after);
                tracing::warn!(%what, attempt, ?delay, reason = %t.reason, "retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn transient_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

fn retry_after_of(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::fetch::client::parse_retry_after)
}

/// Asks the API for the download and returns the storage URL it redirects to (or the
/// API URL itself when a mirror serves the bytes directly).
async fn storage_url(
    api: &KaggleApi,
    url: &Url,
    what: &str,
    r: &KaggleRef,
) -> Result<Result<Url, Transient>, crate::Error> {
    let resp = match api.get(url).await {
        Ok(resp) => resp,
        Err(e) => {
            return Ok(Err(Transient {
                retry_after: None,
                reason: e.to_string(),
            }));
        }
    };
    let status = resp.status();
    if transient_status(status) {
        return Ok(Err(Transient {
            retry_after: retry_after_of(&resp),
            reason: format!("HTTP {status} from the Kaggle API"),
        }));
    }
    let resp = api.check_status(resp, what, r).await?;
    if !resp.status().is_redirection() {
        return Ok(Ok(url.clone()));
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
    Ok(Ok(location))
}

/// `GET` with `Range: bytes=0-0` and no credentials: the storage object's reported hashes
/// and total size, without downloading it.
async fn probe(
    api: &KaggleApi,
    url: &Url,
) -> Result<Result<(StorageHashes, Option<u64>), Transient>, crate::Error> {
    let sent = api
        .http()
        .get(url.clone())
        .header(header::RANGE, "bytes=0-0")
        .send()
        .await;
    let resp = match sent {
        Ok(resp) => resp,
        Err(e) => {
            return Ok(Err(Transient {
                retry_after: None,
                reason: error_chain(&e),
            }));
        }
    };
    let status = resp.status();
    if transient_status(status) {
        return Ok(Err(Transient {
            retry_after: retry_after_of(&resp),
            reason: format!("HTTP {status} from storage"),
        }));
    }
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
    Ok(Ok((hashes, size)))
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
    Ok(crate::source::manifest::parse_sha256sums(&text)?
        .into_iter()
        .filter_map(|e| Some((e.path, hex::encode(e.sha256?))))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! spec_ok {
        ($($name:ident: $spec:expr => ($o:expr, $d:expr, $v:expr),)*) => {$(
            #[test]
            fn $name() {
                let r = KaggleRef::parse($spec).unwrap();
                assert_eq!((r.owner.as_str(), r.dataset.as_str(), r.version), ($o, $d, $v));
            }
        )*};
    }
    spec_ok! {
        spec_plain: "kaggle:shayanfazeli/heartbeat" => ("shayanfazeli", "heartbeat", None),
        spec_version: "kaggle:khyeh0719/ptb-xl-dataset@3" => ("khyeh0719", "ptb-xl-dataset", Some(3)),
        spec_no_prefix: "o/d.v2" => ("o", "d.v2", None),
    }

    macro_rules! spec_err {
        ($($name:ident: $spec:expr,)*) => {$(
            #[test]
            fn $name() {
                let e = KaggleRef::parse($spec).unwrap_err();
                assert_eq!(e.exit_code(), EXIT_USAGE, "{e}");
            }
        )*};
    }
    spec_err! {
        spec_no_slash: "kaggle:heartbeat",
        spec_dotdot: "kaggle:../etc",
        spec_extra_slash: "kaggle:a/b/c",
        spec_bad_version: "kaggle:a/b@latest",
        spec_zero_version: "kaggle:a/b@0",
        spec_empty_owner: "kaggle:/b",
        spec_space: "kaggle:a b/c",
    }

    #[test]
    fn landing_dirs() {
        let r = KaggleRef::parse("kaggle:o/d").unwrap();
        assert_eq!(
            r.version_dir(Path::new("out"), 7),
            PathBuf::from("out/kaggle/o/d/7")
        );
        assert_eq!(r.to_string(), "kaggle:o/d");
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn parses_goog_hash() {
        // GCS sends both checksums in one header, base64 of the raw digests.
        let md5 = Md5::digest(b"abc");
        let crc = crc32c::crc32c(b"abc");
        let b64 = base64::engine::general_purpose::STANDARD;
        let value = format!(
            "crc32c={},md5={}",
            b64.encode(crc.to_be_bytes()),
            b64.encode(md5)
        );
        let h = StorageHashes::from_headers(&headers(&[("x-goog-hash", &value)]));
        assert_eq!(h.md5, Some(<[u8; 16]>::from(md5)));
        assert_eq!(h.crc32c, Some(crc));
    }

    #[test]
    fn parses_split_headers_and_content_md5() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let md5 = b64.encode(Md5::digest(b"x"));
        let crc = b64.encode(crc32c::crc32c(b"x").to_be_bytes());
        let h = StorageHashes::from_headers(&headers(&[
            ("x-goog-hash", &format!("crc32c={crc}")),
            ("content-md5", &md5),
        ]));
        assert!(h.md5.is_some() && h.crc32c.is_some());
    }

    #[test]
    fn ignores_malformed_hashes() {
        let h = StorageHashes::from_headers(&headers(&[
            ("x-goog-hash", "md5=notbase64!!,crc32c=AAAA,junk"),
            ("content-md5", "c2hvcnQ="),
        ]));
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn crc32c_known_answer() {
        // RFC 3720 B.4: CRC32C of 32 bytes of zeros is 0x8A9136AA.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8A91_36AA);
    }

    #[test]
    fn verify_file_checks_both() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"payload").unwrap();
        let good = StorageHashes {
            md5: Some(Md5::digest(b"payload").into()),
            crc32c: Some(crc32c::crc32c(b"payload")),
        };
        good.verify_file(&p).unwrap();
        let bad_md5 = StorageHashes {
            md5: Some(Md5::digest(b"other").into()),
            ..good.clone()
        };
        let e = bad_md5.verify_file(&p).unwrap_err();
        assert_eq!(e.exit_code(), EXIT_INTEGRITY);
        let bad_crc = StorageHashes {
            crc32c: Some(1),
            ..good
        };
        assert!(matches!(
            bad_crc.verify_file(&p),
            Err(KaggleError::HashMismatch {
                algorithm: "crc32c",
                ..
            })
        ));
    }

    #[test]
    fn urls_are_built_and_encoded() {
        let api = KaggleApi::new("http://127.0.0.1:9/api/v1", None).unwrap();
        let r = KaggleRef::parse("kaggle:o/d").unwrap();
        assert_eq!(
            api.download_url(&r, 2, None).as_str(),
            "http://127.0.0.1:9/api/v1/datasets/download/o/d?datasetVersionNumber=2"
        );
        assert_eq!(
            api.download_url(&r, 2, Some("a b/c.csv")).as_str(),
            "http://127.0.0.1:9/api/v1/datasets/download/o/d/a%20b/c.csv?datasetVersionNumber=2"
        );
    }

    #[test]
    fn refuses_credentials_over_plain_http() {
        let c = KaggleCredentials::bearer("t", "test");
        let e = KaggleApi::new("http://mirror.example/api/v1", Some(c.clone())).unwrap_err();
        assert_eq!(e.exit_code(), EXIT_AUTH);
        assert!(e.to_string().contains("use https"), "{e}");
        KaggleApi::new("http://localhost:1/api/v1", Some(c.clone())).unwrap();
        KaggleApi::new("https://mirror.example/api/v1", Some(c)).unwrap();
    }

    #[test]
    fn version_rules() {
        let r = KaggleRef::parse("kaggle:o/d").unwrap();
        let info: DatasetInfo = serde_json::from_str(
            r#"{"currentVersionNumber":3,"versions":[{"versionNumber":3},{"versionNumber":1}]}"#,
        )
        .unwrap();
        assert_eq!(pick_version(&r, &info).unwrap(), 3);
        let pinned = KaggleRef::parse("kaggle:o/d@1").unwrap();
        assert_eq!(pick_version(&pinned, &info).unwrap(), 1);
        let missing = KaggleRef::parse("kaggle:o/d@2").unwrap();
        assert!(matches!(
            pick_version(&missing, &info),
            Err(KaggleError::NotFound { .. })
        ));
    }

    #[test]
    fn redacts_signed_queries() {
        let u = Url::parse("https://u:p@storage.example/b/o.zip?X-Goog-Signature=abc").unwrap();
        let s = redacted(&u);
        assert!(!s.contains("abc") && !s.contains("u:p"), "{s}");
    }
}
