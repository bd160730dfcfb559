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

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
use crate::fetch::retry::{RetryBudget, RetryPolicy, retry};

mod fetch;

pub use fetch::{
    COMPLETE_MARK, FetchMode, KaggleFetchOptions, KagglePlan, KaggleReport, KaggleStep,
    KaggleTransfer, Landed, SUMS_FILE, TransferResult, list, plan, write_sums,
};

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
    /// Every API call retries with the engine's policy (issue 13).
    retry: RetryPolicy,
    budget: Arc<RetryBudget>,
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
        crate::fetch::client::install_tls_provider();
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
            retry: RetryPolicy::default(),
            budget: Arc::new(RetryBudget::new(1000)),
        })
    }

    /// Retries API calls with `policy`, taking retries from `budget` (the run's, shared
    /// with its downloads).
    pub fn with_retry(mut self, policy: RetryPolicy, budget: Arc<RetryBudget>) -> Self {
        self.retry = policy;
        self.budget = budget;
        self
    }

    /// [`KaggleApi::get`], retried like every HTTP call of a run through
    /// [`crate::fetch::retry::retry`]: failures to send, 408, 429 and 5xx back off
    /// (honouring `Retry-After`) until the policy's attempts or the run's budget run
    /// out; then the last answer (or error) is returned.
    pub async fn send(&self, url: &Url) -> Result<reqwest::Response, KaggleError> {
        self.retried(&redacted(url), || self.get(url)).await
    }

    /// Runs `request` under the run's one retry policy ([`crate::fetch::retry::retry`]):
    /// failures to send, 408, 429 and 5xx back off (honouring `Retry-After`) until the
    /// policy's attempts or the run's budget run out; then the last answer (or error)
    /// is returned for the caller to judge. `what` names the request in logs.
    pub(crate) async fn retried<F, Fut>(
        &self,
        what: &str,
        request: F,
    ) -> Result<reqwest::Response, KaggleError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<reqwest::Response, KaggleError>>,
    {
        let answer = retry(
            &self.retry,
            &self.budget,
            what,
            Attempt::classify,
            || async {
                match request().await {
                    Ok(resp) if transient_status(resp.status()) => Err(Attempt::Retryable(resp)),
                    Ok(resp) => Ok(resp),
                    Err(e) => Err(Attempt::Failed(e)),
                }
            },
        )
        .await;
        match answer {
            Ok(resp) | Err(Attempt::Retryable(resp)) => Ok(resp),
            Err(Attempt::Failed(e)) => Err(e),
        }
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
            message: crate::error::chain_message(&e),
        })
    }

    /// GETs `url` and decodes its JSON body, mapping refusals to typed errors.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
        what: &str,
        r: &KaggleRef,
    ) -> Result<T, KaggleError> {
        let resp = self.send(url).await?;
        let resp = self.check_status(resp, what, r).await?;
        let bytes = crate::fetch::body::read_limited(resp, crate::fetch::body::JSON_LIMIT)
            .await
            .map_err(|e| KaggleError::Api {
                url: redacted(url),
                message: match e {
                    crate::fetch::body::BodyError::Transfer(e) => crate::error::chain_message(&e),
                    too_large => too_large.to_string(),
                },
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
        let bytes = crate::fetch::body::read_limited(resp, crate::fetch::body::MESSAGE_LIMIT)
            .await
            .ok()?;
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

    /// Checks the credentials against `GET hello` (as `kagglehub.login` does), retried
    /// like every call. Only called when credentials are present. The check is advisory
    /// (issue 13): a refusal (401/403, or kagglehub's `"code": 401` body) is a
    /// credential error, but a check that fails otherwise (404, an error after the
    /// retries) is only logged: the requests that follow tell for themselves.
    pub async fn check_credentials(&self, r: &KaggleRef) -> Result<(), KaggleError> {
        let what = "Kaggle credential check";
        let url = self.url("hello", &[]);
        let checked = match self.send(&url).await {
            Ok(resp) => self.check_status(resp, what, r).await,
            Err(e) => Err(e),
        };
        let resp = match checked {
            Ok(resp) => resp,
            Err(e @ (KaggleError::Unauthorized { .. } | KaggleError::Forbidden { .. })) => {
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(error = %e, "the Kaggle credential check failed; carrying on");
                return Ok(());
            }
        };
        // kagglehub treats a JSON body with `"code": 401` as a refusal too.
        let bytes = crate::fetch::body::read_limited(resp, crate::fetch::body::MESSAGE_LIMIT)
            .await
            .unwrap_or_default();
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && v.get("code").and_then(|c| c.as_u64()) == Some(401)
        {
            return Err(KaggleError::Unauthorized {
                what: what.into(),
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

/// A failed attempt of a Kaggle request, as [`KaggleApi::retried`] retries it.
enum Attempt {
    /// An answer worth another attempt (408, 429, 5xx).
    Retryable(reqwest::Response),
    /// The request could not be sent or its answer not read.
    Failed(KaggleError),
}

impl Attempt {
    /// Both kinds are transient; an answer may carry `Retry-After`.
    fn classify(&self) -> Option<Option<Duration>> {
        Some(match self {
            Attempt::Retryable(resp) => retry_after_of(resp),
            Attempt::Failed(_) => None,
        })
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attempt::Retryable(resp) => write!(f, "HTTP {}", resp.status()),
            Attempt::Failed(e) => e.fmt(f),
        }
    }
}

/// Statuses worth another attempt: 408, 429 and 5xx.
pub(crate) fn transient_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// The `Retry-After` of a response (seconds or an HTTP date).
pub(crate) fn retry_after_of(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::fetch::client::parse_retry_after)
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

/// True for `localhost` and loopback IP hosts (tests may use plain HTTP there): the
/// crate's one loopback check, [`crate::auth::Realm::is_loopback`].
pub fn is_loopback(url: &Url) -> bool {
    crate::auth::Realm::of(url).is_some_and(|r| r.is_loopback())
}

/// `url` for messages: the crate's one redactor, [`crate::auth::SafeUrl`] (no user
/// info; the values of signature, credential and token query parameters hidden —
/// signed storage URLs carry a bearer credential in their query).
pub fn redacted(url: &Url) -> String {
    crate::auth::SafeUrl::new(url.clone()).redacted()
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
