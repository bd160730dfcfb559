//! Listing the AWS open-data bucket (`physionet-open`, which has no HTML listings)
//! through `object_store`'s S3 client, anonymously: the versions of a project
//! (`CommonPrefixes` under `<slug>/`) and the sizes of a version's files.
//!
//! One retry policy (issue 12): object_store's own retries are switched off
//! (`RetryConfig::max_retries = 0`) and each listing runs inside
//! [`crate::fetch::retry::retry`] with the run's [`RetryPolicy`] and budget, exactly as
//! downloads do. object_store does not expose a failed request's status or
//! `Retry-After`, so the HTTP client handed to it ([`Observed`]) records the last
//! answer of each listing; that record is what the retry loop classifies.
//!
//! The bucket URL decides the addressing style: a URL whose path is `/`
//! (`https://physionet-open.s3.amazonaws.com/`, a stand-in server's root) *is* the
//! bucket endpoint (virtual-hosted style); a URL with a path
//! (`https://s3.amazonaws.com/physionet-open/`, `http://127.0.0.1:9000/bucket/sub/`)
//! names the bucket in its first segment (path style), the rest being a key prefix.
//! Requests carry no credentials at all (`with_skip_signature`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{
    ClientOptions, HttpClient as StoreHttpClient, HttpConnector, HttpError, HttpErrorKind,
    HttpRequest, HttpResponse, HttpService,
};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, RetryConfig};
use url::Url;

use super::SourceError;
use crate::auth::SafeUrl;
use crate::error::{Error, Result};
use crate::fetch::retry::{RetryBudget, RetryPolicy, classify, retry};
use crate::fetch::{Downloader, FetchError};

/// Longest a listing request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest TCP + TLS set-up for a listing request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// An anonymous S3 bucket to list.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    /// The bucket URL as configured (for messages; never carries credentials).
    url: Url,
    /// The S3 endpoint handed to object_store.
    endpoint: String,
    /// The bucket name.
    name: String,
    /// True when `endpoint` is the bucket's own endpoint (virtual-hosted style).
    virtual_hosted: bool,
    /// Key prefix inside the bucket (path style `/<bucket>/<prefix…>/`), `/`-terminated
    /// or empty.
    key_prefix: String,
}

impl Bucket {
    /// The bucket at `url` (`http` or `https`, no credentials, query or fragment).
    pub(crate) fn new(url: &Url) -> Result<Bucket, SourceError> {
        let bad = |reason: &str| SourceError::BadBaseUrl {
            url: SafeUrl::from(url).to_string(),
            reason: reason.to_string(),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("an S3 bucket URL must be http or https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "the bucket is read anonymously; the URL takes no credentials",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a bucket URL takes no query or fragment"));
        }
        let host = url.host_str().ok_or_else(|| bad("no host"))?;
        let origin = match url.port() {
            Some(p) => format!("{}://{host}:{p}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        };
        let segments: Vec<String> = url
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|s| super::listing::percent_decode(s).unwrap_or_else(|| s.to_string()))
            .collect();
        Ok(match segments.split_first() {
            // The URL is the bucket's own endpoint; the name only labels it.
            None => Bucket {
                url: url.clone(),
                endpoint: origin,
                name: host.split('.').next().unwrap_or(host).to_string(),
                virtual_hosted: true,
                key_prefix: String::new(),
            },
            Some((name, rest)) => Bucket {
                url: url.clone(),
                endpoint: origin,
                name: name.clone(),
                virtual_hosted: false,
                key_prefix: rest.iter().map(|s| format!("{s}/")).collect(),
            },
        })
    }

    /// The names of the "sub-directories" directly under `dir` (a `/`-separated key
    /// prefix relative to the bucket URL, e.g. `mitdb`): S3 `CommonPrefixes`, listed
    /// with `delimiter=/`. Empty when the bucket holds nothing there (or answers 404).
    pub(crate) async fn subdirs(&self, dl: &Downloader, dir: &str) -> Result<Vec<String>> {
        let (policy, budget) = dl.retry();
        self.subdirs_with(policy, budget, dir).await
    }

    /// Every object under `dir` (relative to the bucket URL) as (path below `dir`,
    /// size), in key order. Empty when nothing is there (or the bucket answers 404).
    pub(crate) async fn objects(&self, dl: &Downloader, dir: &str) -> Result<Vec<(String, u64)>> {
        let (policy, budget) = dl.retry();
        self.objects_with(policy, budget, dir).await
    }

    async fn subdirs_with(
        &self,
        policy: &RetryPolicy,
        budget: &RetryBudget,
        dir: &str,
    ) -> Result<Vec<String>> {
        let prefix = self.prefix(dir)?;
        let listed = self
            .attempt(policy, budget, |store| {
                let prefix = prefix.clone();
                async move {
                    store
                        .list_with_delimiter(Some(&prefix))
                        .await
                        .map(|r| r.common_prefixes)
                }
            })
            .await?;
        let mut out: Vec<String> = listed
            .iter()
            .filter_map(|p| Some(p.prefix_match(&prefix)?.next()?.as_ref().to_string()))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn objects_with(
        &self,
        policy: &RetryPolicy,
        budget: &RetryBudget,
        dir: &str,
    ) -> Result<Vec<(String, u64)>> {
        let prefix = self.prefix(dir)?;
        let listed = self
            .attempt(policy, budget, |store| {
                let prefix = prefix.clone();
                async move { store.list(Some(&prefix)).try_collect::<Vec<_>>().await }
            })
            .await?;
        let out: Vec<(String, u64)> = listed
            .into_iter()
            .filter_map(|m| {
                let rel: Vec<String> = m
                    .location
                    .prefix_match(&prefix)?
                    .map(|p| p.as_ref().to_string())
                    .collect();
                (!rel.is_empty()).then(|| (rel.join("/"), m.size))
            })
            .collect();
        // A "directory marker" object (`sub/`, which object_store reports as `sub`)
        // is not a file when keys lie below it.
        let dirs: std::collections::HashSet<&str> = out
            .iter()
            .flat_map(|(p, _)| p.match_indices('/').map(move |(i, _)| &p[..i]))
            .collect();
        let mut out: Vec<(String, u64)> = out
            .iter()
            .filter(|(p, _)| !dirs.contains(p.as_str()))
            .cloned()
            .collect();
        out.sort();
        Ok(out)
    }

    /// The object_store path of `dir` below the bucket URL.
    fn prefix(&self, dir: &str) -> Result<ObjectPath> {
        let full = format!("{}{}", self.key_prefix, dir.trim_matches('/'));
        ObjectPath::parse(&full).map_err(|e| {
            SourceError::Listing {
                url: SafeUrl::from(&self.url).to_string(),
                message: format!("unusable key prefix {full:?}: {e}"),
            }
            .into()
        })
    }

    /// Runs one listing `op` under the run's retry policy, a fresh store per attempt
    /// (so each attempt's record of its last HTTP answer is its own). A 404 (no such
    /// bucket) lists nothing.
    async fn attempt<T, F, Fut>(
        &self,
        policy: &RetryPolicy,
        budget: &RetryBudget,
        op: F,
    ) -> Result<T>
    where
        T: Default,
        F: Fn(AmazonS3) -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let what = format!("listing {}", SafeUrl::from(&self.url));
        let classify_err = |e: &Error| match e {
            Error::Fetch(f) => classify(f),
            _ => None,
        };
        retry(policy, budget, &what, classify_err, || async {
            let observed = Arc::new(Observed::default());
            let store = self.store(observed.clone())?;
            match op(store).await {
                Ok(v) => Ok(v),
                Err(e) => match observed.take() {
                    Some(Failure::Status { status: 404, .. }) => Ok(T::default()),
                    Some(Failure::Status {
                        url,
                        status,
                        retry_after,
                    }) => Err(FetchError::Status {
                        url,
                        status,
                        retry_after,
                    }
                    .into()),
                    Some(Failure::Transfer { url, message }) => {
                        Err(FetchError::Transfer { url, message }.into())
                    }
                    // The answer arrived but could not be used (bad XML, a key
                    // object_store refuses): not worth retrying.
                    None => Err(SourceError::Listing {
                        url: SafeUrl::from(&self.url).to_string(),
                        message: e.to_string(),
                    }
                    .into()),
                },
            }
        })
        .await
    }

    /// An anonymous object_store client for this bucket whose HTTP answers are
    /// recorded in `observed`.
    fn store(&self, observed: Arc<Observed>) -> Result<AmazonS3> {
        crate::fetch::client::install_tls_provider();
        let options = ClientOptions::new()
            .with_allow_http(true)
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(CONNECT_TIMEOUT);
        let retry = RetryConfig {
            max_retries: 0,
            retry_timeout: REQUEST_TIMEOUT,
            ..RetryConfig::default()
        };
        AmazonS3Builder::new()
            .with_bucket_name(&self.name)
            .with_region("us-east-1")
            .with_endpoint(&self.endpoint)
            .with_virtual_hosted_style_request(self.virtual_hosted)
            .with_skip_signature(true)
            .with_allow_http(self.url.scheme() == "http")
            .with_client_options(options)
            .with_retry(retry)
            .with_http_connector(ObservingConnector { observed })
            .build()
            .map_err(|e| {
                SourceError::BadBaseUrl {
                    url: SafeUrl::from(&self.url).to_string(),
                    reason: e.to_string(),
                }
                .into()
            })
    }
}

/// What went wrong with the last HTTP exchange of one listing attempt.
#[derive(Debug)]
enum Failure {
    /// An answer with a status of 400 or more.
    Status {
        url: String,
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No answer (connect, TLS, reset, timeout).
    Transfer { url: String, message: String },
}

/// The last failed HTTP exchange of a listing attempt (cleared by a success).
#[derive(Debug, Default)]
struct Observed(Mutex<Option<Failure>>);

impl Observed {
    fn set(&self, f: Option<Failure>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = f;
        }
    }

    fn take(&self) -> Option<Failure> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

/// Hands object_store a reqwest client built like physio's own (ring TLS, no
/// redirects, our User-Agent) that records each answer in [`Observed`].
#[derive(Debug)]
struct ObservingConnector {
    observed: Arc<Observed>,
}

impl HttpConnector for ObservingConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<StoreHttpClient> {
        crate::fetch::client::install_tls_provider();
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(crate::fetch::client::user_agent())
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e.without_url()),
            })?;
        Ok(StoreHttpClient::new(ObservingService {
            inner,
            observed: self.observed.clone(),
        }))
    }
}

/// The HTTP service of [`ObservingConnector`].
#[derive(Debug)]
struct ObservingService {
    inner: reqwest::Client,
    observed: Arc<Observed>,
}

impl ObservingService {
    async fn observe(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let url = Url::parse(&req.uri().to_string())
            .map(|u| SafeUrl::from(&u).to_string())
            .unwrap_or_else(|_| "<S3 listing>".to_string());
        match self.inner.call(req).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                self.observed.set((status >= 400).then(|| {
                    Failure::Status {
                        url,
                        status,
                        retry_after: resp
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(crate::fetch::client::parse_retry_after),
                    }
                }));
                Ok(resp)
            }
            Err(e) => {
                let mut message = crate::error::chain_message(&e);
                if e.kind() == HttpErrorKind::Timeout && !message.contains("timed out") {
                    message.push_str(" (timed out)");
                }
                self.observed.set(Some(Failure::Transfer { url, message }));
                Err(e)
            }
        }
    }
}

// `HttpService` is an `async_trait`; this is that macro's expansion, written out.
impl HttpService for ObservingService {
    fn call<'a, 'b>(
        &'a self,
        req: HttpRequest,
    ) -> Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(self.observe(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addressing_style_follows_the_url() {
        let b =
            Bucket::new(&Url::parse("https://physionet-open.s3.amazonaws.com/").unwrap()).unwrap();
        assert!(b.virtual_hosted);
        assert_eq!(b.endpoint, "https://physionet-open.s3.amazonaws.com");
        assert_eq!(b.name, "physionet-open");
        assert_eq!(b.key_prefix, "");

        let b = Bucket::new(&Url::parse("http://127.0.0.1:9000/bucket/sub/").unwrap()).unwrap();
        assert!(!b.virtual_hosted);
        assert_eq!(b.endpoint, "http://127.0.0.1:9000");
        assert_eq!(b.name, "bucket");
        assert_eq!(b.key_prefix, "sub/");
        assert_eq!(
            b.prefix("mitdb/1.0.0/").unwrap().as_ref(),
            "sub/mitdb/1.0.0"
        );

        for bad in [
            "file:///tmp/x/",
            "https://u:p@bucket.s3.amazonaws.com/",
            "https://bucket.s3.amazonaws.com/?x=1",
        ] {
            assert!(Bucket::new(&Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }
}
