//! Credentials, the realm (scheme, host, port) each belongs to, and redaction so that
//! secrets never reach logs or error messages.
//!
//! The rules (contract, "Credentials"): credentials are sent only over HTTPS, or to a
//! loopback address so tests can run a local server; only to the realm they were looked
//! up for; never to the target of a redirect on another host. [`Credentials::may_send_to`]
//! is the one check every request goes through (see `fetch::client`).

pub mod kaggle;
pub mod netrc;
pub mod redact;

use std::net::IpAddr;
use std::path::PathBuf;

pub use redact::{SafeUrl, Secret};
use url::Url;

use crate::env::EnvVars;

/// The protection space credentials belong to: scheme, host and port (RFC 7235 §2.2,
/// as uv's `Realm`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Realm {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name or address, lower-case.
    pub host: String,
    /// Port, explicit or the scheme's default.
    pub port: Option<u16>,
}

impl Realm {
    /// The realm of `url` (`None` for URLs without a host, like `file://`).
    pub fn of(url: &Url) -> Option<Realm> {
        Some(Realm {
            scheme: url.scheme().to_string(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default(),
        })
    }

    /// True when the host is a loopback name or address (`localhost`, 127.0.0.0/8, `::1`).
    pub fn is_loopback(&self) -> bool {
        if self.host == "localhost" {
            return true;
        }
        let h = self.host.trim_start_matches('[').trim_end_matches(']');
        h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// Where credentials came from (for messages; never the values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// `PHYSIONET_USERNAME` / `PHYSIONET_PASSWORD`.
    Env,
    /// A netrc file.
    Netrc,
}

/// A user name and password for one realm.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The realm the credentials were looked up for.
    pub realm: Realm,
    /// User name.
    pub username: String,
    /// Password (never printed).
    pub password: Secret,
    /// Where they came from.
    pub source: CredentialSource,
}

impl Credentials {
    /// Looks up credentials for the host of `base`: the `PHYSIONET_USERNAME` /
    /// `PHYSIONET_PASSWORD` environment variables, else the netrc file (`NETRC` or
    /// `~/.netrc`). `None` when neither has any, or when `base` has no host.
    pub fn lookup(base: &Url) -> Option<Credentials> {
        let realm = Realm::of(base)?;
        if let (Ok(user), Ok(pass)) = (
            std::env::var(EnvVars::PHYSIONET_USERNAME),
            std::env::var(EnvVars::PHYSIONET_PASSWORD),
        ) && !user.is_empty()
        {
            return Some(Credentials {
                realm,
                username: user,
                password: Secret::new(pass),
                source: CredentialSource::Env,
            });
        }
        let path = std::env::var_os(EnvVars::NETRC)
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netrc")))?;
        let (username, password) = netrc::lookup(&path, &realm.host)?;
        Some(Credentials {
            realm,
            username,
            password,
            source: CredentialSource::Netrc,
        })
    }

    /// True when these credentials may be attached to a request for `url`: same realm,
    /// and the connection is HTTPS or goes to loopback.
    pub fn may_send_to(&self, url: &Url) -> bool {
        match Realm::of(url) {
            Some(r) => r == self.realm && (r.scheme == "https" || r.is_loopback()),
            None => false,
        }
    }

    /// The value of an HTTP Basic `Authorization` header (RFC 7617).
    pub fn basic_header(&self) -> String {
        use base64::Engine;
        let raw = format!("{}:{}", self.username, self.password.expose());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(base: &str) -> Credentials {
        Credentials {
            realm: Realm::of(&Url::parse(base).unwrap()).unwrap(),
            username: "u".into(),
            password: Secret::new("p"),
            source: CredentialSource::Env,
        }
    }

    #[test]
    fn only_same_realm_over_https_or_loopback() {
        let c = creds("https://physionet.org/");
        assert!(c.may_send_to(&Url::parse("https://physionet.org/files/x").unwrap()));
        assert!(c.may_send_to(&Url::parse("https://PHYSIONET.org:443/a").unwrap()));
        assert!(!c.may_send_to(&Url::parse("http://physionet.org/a").unwrap()));
        assert!(!c.may_send_to(&Url::parse("https://evil.example/a").unwrap()));
        assert!(!c.may_send_to(&Url::parse("https://physionet.org:8443/a").unwrap()));
        let l = creds("http://127.0.0.1:8080/");
        assert!(l.may_send_to(&Url::parse("http://127.0.0.1:8080/x").unwrap()));
        assert!(!l.may_send_to(&Url::parse("http://127.0.0.1:8081/x").unwrap()));
        let plain = creds("http://mirror.example/");
        assert!(!plain.may_send_to(&Url::parse("http://mirror.example/x").unwrap()));
    }

    #[test]
    fn basic_header_is_rfc7617() {
        let mut c = creds("https://physionet.org/");
        c.username = "Aladdin".into();
        c.password = Secret::new("open sesame");
        assert_eq!(c.basic_header(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(!format!("{c:?}").contains("open sesame"));
    }
}
