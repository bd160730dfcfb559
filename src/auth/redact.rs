//! Redaction types: [`Secret`] holds a password or token and never shows it through
//! `Display` or `Debug`; [`SafeUrl`] prints a URL without its user-info or signed-query values, so URLs can go
//! into logs and error messages without leaking credentials (as uv's `DisplaySafeUrl`).

use std::fmt;

use url::Url;

/// A secret string (password, token). Formatting it prints `****`; the only way to read
/// it is [`Secret::expose`], which keeps every use greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself; use only to build an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// A URL that displays without user name, password or query-string secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct SafeUrl(Url);

impl SafeUrl {
    /// Wraps `url`.
    pub fn new(url: Url) -> Self {
        SafeUrl(url)
    }

    /// The wrapped URL (with any user-info it carries).
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The redacted form as a string.
    pub fn redacted(&self) -> String {
        let mut u = self.0.clone();
        if !u.username().is_empty() {
            let _ = u.set_username("****");
        }
        if u.password().is_some() {
            let _ = u.set_password(None);
        }
        if u.query().is_some() {
            // Signed storage URLs (Kaggle's redirect to GCS, S3 presigned URLs) carry
            // their credential in the query: keep the names, hide the sensitive values.
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if is_sensitive_param(&k) {
                        "****".to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
        u.to_string()
    }
}

/// True for query parameters that carry credentials: signatures (`X-Goog-Signature`,
/// `X-Amz-Signature`, `Signature`, `sig`), tokens, keys, credentials and passwords.
fn is_sensitive_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "signature",
        "sig",
        "token",
        "key",
        "credential",
        "password",
        "secret",
        "auth",
    ]
    .iter()
    .any(|w| n.contains(w))
}

impl From<Url> for SafeUrl {
    fn from(u: Url) -> Self {
        SafeUrl(u)
    }
}

impl From<&Url> for SafeUrl {
    fn from(u: &Url) -> Self {
        SafeUrl(u.clone())
    }
}

impl fmt::Display for SafeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for SafeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafeUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "**** Secret(****)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn safe_url_drops_userinfo() {
        let u = Url::parse("https://alice:hunter2@physionet.org/files/x/").unwrap();
        let shown = format!("{} {:?}", SafeUrl::new(u.clone()), SafeUrl::new(u));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("alice"), "{shown}");
        assert!(shown.contains("physionet.org/files/x/"));
    }

    #[test]
    fn safe_url_hides_signed_query_values() {
        let u = Url::parse(
            "https://storage.googleapis.com/b/o.zip?X-Goog-Algorithm=GOOG4-RSA-SHA256\
             &X-Goog-Credential=svc%40x&X-Goog-Signature=deadbeef&generation=7&access_token=t0k",
        )
        .unwrap();
        let shown = SafeUrl::new(u).to_string();
        for secret in ["deadbeef", "svc", "t0k"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("X-Goog-Signature=****"), "{shown}");
        assert!(shown.contains("generation=7"), "{shown}");
        assert!(
            shown.contains("X-Goog-Algorithm=GOOG4-RSA-SHA256"),
            "{shown}"
        );
    }
}
