//! The one HTTP client physio uses (reqwest over rustls). Redirects are followed by hand
//! so that credentials are attached only to their own realm over HTTPS or loopback and
//! never forwarded to another host (contract, "Credentials"; uv's
//! `CrossOriginCredentialsPolicy::Secure`). Automatic decompression is off: files are
//! hashed exactly as served, as SHA256SUMS.txt describes them.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, LOCATION, RANGE, RETRY_AFTER, USER_AGENT};
use tracing::debug;
use url::Url;

use super::{AuthProblem, FetchError};
use crate::auth::{Credentials, SafeUrl};

/// Most redirects followed for one request (curl's and wget's default is 20 and 20;
/// PhysioNet uses one or two).
const MAX_REDIRECTS: usize = 10;

/// The User-Agent PhysioNet serves credentialed files to (contract: it must start with
/// `libwfdb/` or `Wget/`).
pub fn user_agent() -> String {
    format!("libwfdb/10.7 (compatible; physio/{})", crate::VERSION)
}

/// Makes ring the process's TLS crypto provider unless one is installed already.
/// reqwest is built without a bundled provider (ring builds in seconds, aws-lc-sys in
/// minutes), so every HTTP client physio builds (fetch, Kaggle, object stores) calls
/// this first; a provider the embedding program installed itself is kept.
pub(crate) fn install_tls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err only when another thread installed one first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A shared HTTP client with the credentials of one realm.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    creds: Option<Credentials>,
}

impl HttpClient {
    /// Builds the client: keep-alive pool, rustls, no redirects, no decompression.
    /// `connect_timeout` bounds TCP+TLS set-up; body stalls are handled by the caller.
    pub fn new(creds: Option<Credentials>, connect_timeout: Duration) -> Result<Self, FetchError> {
        install_tls_provider();
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| FetchError::Transfer {
                url: String::new(),
                message: format!("cannot build the HTTP client: {}", e.without_url()),
            })?;
        Ok(HttpClient { inner, creds })
    }

    /// The credentials this client may send, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.creds.as_ref()
    }

    /// Sends `GET url` (with `Range: bytes=<from>-[<to>]` when `range` is set), following
    /// up to ten redirects by hand when `follow` is true. Returns the final URL and the
    /// response, whatever its status; see [`HttpClient::check`].
    pub async fn get(
        &self,
        url: &Url,
        range: Option<(u64, Option<u64>)>,
        follow: bool,
    ) -> Result<(Url, reqwest::Response), FetchError> {
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self
                .inner
                .get(current.clone())
                .header(USER_AGENT, user_agent());
            match range {
                Some((from, Some(to))) => req = req.header(RANGE, format!("bytes={from}-{to}")),
                Some((from, None)) => req = req.header(RANGE, format!("bytes={from}-")),
                None => {}
            }
            if let Some(c) = &self.creds
                && c.may_send_to(&current)
            {
                req = req.header(AUTHORIZATION, c.basic_header());
            }
            let resp = req.send().await.map_err(|e| transfer(&current, &e))?;
            let status = resp.status();
            if !(follow && status.is_redirection()) {
                return Ok((current, resp));
            }
            let Some(loc) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) else {
                return Ok((current, resp));
            };
            let next = current.join(loc).map_err(|_| FetchError::Redirect {
                url: SafeUrl::from(&current).to_string(),
                reason: "unparsable Location header".into(),
            })?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(FetchError::Redirect {
                    url: SafeUrl::from(&current).to_string(),
                    reason: format!("redirect to a {} URL refused", next.scheme()),
                });
            }
            debug!(from = %SafeUrl::from(&current), to = %SafeUrl::from(&next), "redirect");
            current = next;
        }
        Err(FetchError::Redirect {
            url: SafeUrl::from(url).to_string(),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// Turns a non-success response into the matching error: 401/403 into
    /// [`FetchError::Auth`] (saying whether credentials were sent), anything else into
    /// [`FetchError::Status`] with its `Retry-After` (RFC 9110 §10.2.3).
    pub fn check(
        &self,
        url: &Url,
        resp: reqwest::Response,
    ) -> Result<reqwest::Response, FetchError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let safe = SafeUrl::from(url).to_string();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let sent = self.creds.as_ref().is_some_and(|c| c.may_send_to(url));
            let problem = match (&self.creds, sent, status) {
                (None, _, _) => AuthProblem::NoCredentials,
                (Some(_), false, _) => AuthProblem::NotSent,
                (Some(_), true, StatusCode::UNAUTHORIZED) => AuthProblem::Rejected,
                (Some(_), true, _) => AuthProblem::Forbidden,
            };
            return Err(FetchError::Auth {
                url: safe,
                status: status.as_u16(),
                problem,
            });
        }
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        Err(FetchError::Status {
            url: safe,
            status: status.as_u16(),
            retry_after,
        })
    }
}

/// A reqwest error as a [`FetchError::Transfer`], with the URL redacted (reqwest's own
/// message would include the URL as given).
pub(crate) fn transfer(url: &Url, e: &reqwest::Error) -> FetchError {
    let message = crate::error::chain_message(e);
    FetchError::Transfer {
        url: SafeUrl::from(url).to_string(),
        message: redact_message(&message, url),
    }
}

/// Removes any user-info of `url` that a lower layer may have echoed into `message`.
fn redact_message(message: &str, url: &Url) -> String {
    let mut m = message.to_string();
    if let Some(p) = url.password()
        && !p.is_empty()
    {
        m = m.replace(p, "****");
    }
    m
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An HTTPS request goes through a real TLS handshake with the installed provider:
    /// a server that answers plain HTTP makes it fail with an error, not a panic.
    #[tokio::test]
    async fn https_uses_the_installed_crypto_provider() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            if let Ok((mut sock, _)) = listener.accept().await {
                let mut hello = [0u8; 5];
                let _ = sock.read_exact(&mut hello).await;
                // A TLS record header: handshake (22), version 3.x.
                assert_eq!((hello[0], hello[1]), (22, 3), "a TLS ClientHello was sent");
                let _ = sock.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let client = HttpClient::new(None, Duration::from_secs(5)).unwrap();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        let url = Url::parse(&format!("https://127.0.0.1:{port}/x")).unwrap();
        let err = client.inner.get(url).send().await.unwrap_err();
        assert!(err.is_connect() || err.is_request(), "{err:?}");
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn user_agent_is_accepted_by_physionet() {
        assert!(user_agent().starts_with("libwfdb/10.7 (compatible; physio/"));
    }
}
