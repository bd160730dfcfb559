//! Kaggle credentials, found the way Kaggle's own tools (the `kaggle` CLI and kagglehub)
//! find them, and turned into the `Authorization` header they send.
//!
//! Order, first match wins:
//! 1. `KAGGLE_API_TOKEN` — a new-style API token, sent as `Authorization: Bearer <token>`;
//! 2. `$KAGGLE_CONFIG_DIR/access_token` (default `~/.kaggle/access_token`) — the same token
//!    as written by `kaggle auth login`;
//! 3. `KAGGLE_USERNAME` + `KAGGLE_KEY` — a legacy key, sent as HTTP Basic `username:key`
//!    (RFC 7617), as kagglehub's `HTTPBasicAuth(username, key)` does;
//! 4. `$KAGGLE_CONFIG_DIR/kaggle.json` (default `~/.kaggle/kaggle.json`) with
//!    `{"username": ..., "key": ...}`, also sent as Basic.
//!
//! The secret parts are [`Secret`]s and never reach `Debug`/`Display`:
//! [`KaggleCredentials`] prints only the kind and where it came from, so an error or a log
//! line cannot leak them. (They are not [`super::Credentials`]: those are Basic-only and
//! realm-bound for PhysioNet; Kaggle's go only to the API host, attached by
//! `source::kaggle::KaggleApi`, which never follows redirects with them.)

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::Secret;
use crate::env::EnvVars;

/// Kaggle credentials and where they were found.
#[derive(Clone)]
pub struct KaggleCredentials {
    kind: Kind,
    origin: String,
}

#[derive(Clone)]
enum Kind {
    Bearer(Secret),
    Basic { username: String, key: Secret },
}

impl fmt::Debug for KaggleCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KaggleCredentials({self})")
    }
}

impl fmt::Display for KaggleCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Bearer(_) => write!(f, "API token from {}", self.origin),
            Kind::Basic { username, .. } => {
                write!(f, "key of user {username:?} from {}", self.origin)
            }
        }
    }
}

impl KaggleCredentials {
    /// A bearer API token (as in `KAGGLE_API_TOKEN`).
    pub fn bearer(token: impl Into<String>, origin: impl Into<String>) -> Self {
        KaggleCredentials {
            kind: Kind::Bearer(Secret::new(token)),
            origin: origin.into(),
        }
    }

    /// A legacy user name and key (as in `KAGGLE_USERNAME`/`KAGGLE_KEY`).
    pub fn basic(
        username: impl Into<String>,
        key: impl Into<String>,
        origin: impl Into<String>,
    ) -> Self {
        KaggleCredentials {
            kind: Kind::Basic {
                username: username.into(),
                key: Secret::new(key),
            },
            origin: origin.into(),
        }
    }

    /// Where these credentials were read from (an environment variable or a file).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The `Authorization` header value: `Bearer <token>` or `Basic base64(user:key)`.
    /// Callers must mark the header sensitive and send it only to Kaggle's API host.
    pub fn authorization(&self) -> String {
        match &self.kind {
            Kind::Bearer(token) => format!("Bearer {}", token.expose()),
            Kind::Basic { username, key } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", key.expose()))
            ),
        }
    }

    /// True when `text` contains any secret part of these credentials (used to make sure
    /// nothing echoed back by a server is shown to the user with a secret in it).
    pub fn appears_in(&self, text: &str) -> bool {
        match &self.kind {
            Kind::Bearer(t) => !t.expose().is_empty() && text.contains(t.expose()),
            Kind::Basic { key, .. } => !key.expose().is_empty() && text.contains(key.expose()),
        }
    }
}

/// Errors reading Kaggle credentials (exit 3: the user must fix their credentials).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// A credentials file exists but cannot be read or parsed.
    #[error("{}: invalid Kaggle credentials file: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong (never includes the file's contents).
        reason: String,
    },
    /// Only one of `KAGGLE_USERNAME` and `KAGGLE_KEY` is set and no file supplies the other.
    #[error("{set} is set but {missing} is not; set both, or use KAGGLE_API_TOKEN")]
    Incomplete {
        /// The variable that is set.
        set: &'static str,
        /// The variable that is missing.
        missing: &'static str,
    },
}

/// The directory holding `kaggle.json`: `$KAGGLE_CONFIG_DIR`, else `~/.kaggle`.
pub fn config_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(dir) = env(EnvVars::KAGGLE_CONFIG_DIR).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    env("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(".kaggle"))
}

/// Finds Kaggle credentials in the environment `env` (a lookup function, so tests need not
/// touch the process environment) and the Kaggle config directory. `Ok(None)` when there
/// are none: public datasets may still be fetched anonymously where Kaggle allows it.
pub fn find_credentials(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<KaggleCredentials>, CredentialsError> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(token) = var(EnvVars::KAGGLE_API_TOKEN) {
        return Ok(Some(KaggleCredentials::bearer(
            token.trim(),
            EnvVars::KAGGLE_API_TOKEN,
        )));
    }
    let dir = config_dir(env);
    if let Some(dir) = &dir {
        let path = dir.join("access_token");
        if let Some(text) = read_if_exists(&path)? {
            let token = text.trim();
            if !token.is_empty() {
                return Ok(Some(KaggleCredentials::bearer(
                    token,
                    path.display().to_string(),
                )));
            }
        }
    }
    let user = var(EnvVars::KAGGLE_USERNAME);
    let key = var(EnvVars::KAGGLE_KEY);
    if let (Some(user), Some(key)) = (&user, &key) {
        return Ok(Some(KaggleCredentials::basic(
            user.trim(),
            key.trim(),
            "KAGGLE_USERNAME/KAGGLE_KEY",
        )));
    }
    let from_file = match &dir {
        Some(dir) => read_kaggle_json(&dir.join("kaggle.json"))?,
        None => None,
    };
    match (user, key, from_file) {
        // One variable set: the file supplies the other, as the kaggle CLI merges them.
        (Some(user), None, Some((_, key, path))) => Ok(Some(KaggleCredentials::basic(
            user.trim(),
            key,
            format!("KAGGLE_USERNAME and {}", path.display()),
        ))),
        (None, Some(key), Some((user, _, path))) => Ok(Some(KaggleCredentials::basic(
            user,
            key.trim(),
            format!("KAGGLE_KEY and {}", path.display()),
        ))),
        (None, None, Some((user, key, path))) => Ok(Some(KaggleCredentials::basic(
            user,
            key,
            path.display().to_string(),
        ))),
        (Some(_), None, None) => Err(CredentialsError::Incomplete {
            set: EnvVars::KAGGLE_USERNAME,
            missing: EnvVars::KAGGLE_KEY,
        }),
        (None, Some(_), None) => Err(CredentialsError::Incomplete {
            set: EnvVars::KAGGLE_KEY,
            missing: EnvVars::KAGGLE_USERNAME,
        }),
        _ => Ok(None),
    }
}

fn read_if_exists(path: &Path) -> Result<Option<String>, CredentialsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CredentialsError::BadFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// Reads `kaggle.json` → `(username, key, path)`.
fn read_kaggle_json(path: &Path) -> Result<Option<(String, String, PathBuf)>, CredentialsError> {
    #[derive(serde::Deserialize)]
    struct File {
        username: Option<String>,
        key: Option<String>,
    }
    let Some(text) = read_if_exists(path)? else {
        return Ok(None);
    };
    let bad = |reason: &str| CredentialsError::BadFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    // serde_json's messages can quote input; report only the position.
    let parsed: File = serde_json::from_str(&text).map_err(|e| {
        bad(&format!(
            "not a JSON object with \"username\" and \"key\" (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    match (parsed.username, parsed.key) {
        (Some(u), Some(k)) if !u.trim().is_empty() && !k.trim().is_empty() => Ok(Some((
            u.trim().to_string(),
            k.trim().to_string(),
            path.to_path_buf(),
        ))),
        _ => Err(bad(
            "\"username\" and \"key\" must both be non-empty strings",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn basic(user: &str, key: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"))
        )
    }

    #[test]
    fn token_wins_and_is_bearer() {
        let env = env_of(&[
            ("KAGGLE_API_TOKEN", "KGAT_abc"),
            ("KAGGLE_USERNAME", "u"),
            ("KAGGLE_KEY", "k"),
        ]);
        let c = find_credentials(&env).unwrap().unwrap();
        assert_eq!(c.authorization(), "Bearer KGAT_abc");
        assert_eq!(c.origin(), "KAGGLE_API_TOKEN");
    }

    #[test]
    fn env_user_key_is_basic() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let env = env_of(&[
            ("KAGGLE_USERNAME", "alice"),
            ("KAGGLE_KEY", "s3cret"),
            ("KAGGLE_CONFIG_DIR", d),
        ]);
        let c = find_credentials(&env).unwrap().unwrap();
        assert_eq!(c.authorization(), basic("alice", "s3cret"));
    }

    #[test]
    fn kaggle_json_in_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kaggle.json"),
            r#"{"username":"bob","key":"k3y"}"#,
        )
        .unwrap();
        let env = env_of(&[("KAGGLE_CONFIG_DIR", dir.path().to_str().unwrap())]);
        let c = find_credentials(&env).unwrap().unwrap();
        assert_eq!(c.authorization(), basic("bob", "k3y"));
        assert!(c.origin().ends_with("kaggle.json"));
    }

    #[test]
    fn kaggle_json_under_home() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".kaggle")).unwrap();
        std::fs::write(
            home.path().join(".kaggle/kaggle.json"),
            r#"{"username":"carol","key":"kk"}"#,
        )
        .unwrap();
        let env = env_of(&[("HOME", home.path().to_str().unwrap())]);
        let c = find_credentials(&env).unwrap().unwrap();
        assert_eq!(c.authorization(), basic("carol", "kk"));
    }

    #[test]
    fn access_token_file_is_bearer() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("access_token"), "KGAT_file\n").unwrap();
        std::fs::write(
            dir.path().join("kaggle.json"),
            r#"{"username":"x","key":"y"}"#,
        )
        .unwrap();
        let env = env_of(&[("KAGGLE_CONFIG_DIR", dir.path().to_str().unwrap())]);
        let c = find_credentials(&env).unwrap().unwrap();
        assert_eq!(c.authorization(), "Bearer KGAT_file");
    }

    #[test]
    fn one_env_var_merges_with_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kaggle.json"),
            r#"{"username":"file-user","key":"file-key"}"#,
        )
        .unwrap();
        let d = dir.path().to_str().unwrap();
        let env = env_of(&[("KAGGLE_CONFIG_DIR", d), ("KAGGLE_KEY", "env-key")]);
        let c = find_credentials(&env).unwrap().unwrap();
        assert_eq!(c.authorization(), basic("file-user", "env-key"));
    }

    #[test]
    fn one_env_var_alone_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let env = env_of(&[("KAGGLE_CONFIG_DIR", d), ("KAGGLE_USERNAME", "u")]);
        let err = find_credentials(&env).unwrap_err();
        assert!(err.to_string().contains("KAGGLE_KEY"), "{err}");
    }

    #[test]
    fn none_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_of(&[("KAGGLE_CONFIG_DIR", dir.path().to_str().unwrap())]);
        assert!(find_credentials(&env).unwrap().is_none());
    }

    #[test]
    fn bad_json_does_not_echo_contents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kaggle.json"),
            r#"{"username":"u","key":"TOPSECRET""#,
        )
        .unwrap();
        let env = env_of(&[("KAGGLE_CONFIG_DIR", dir.path().to_str().unwrap())]);
        let err = find_credentials(&env).unwrap_err().to_string();
        assert!(err.contains("kaggle.json"), "{err}");
        assert!(!err.contains("TOPSECRET"), "{err}");
    }

    #[test]
    fn debug_and_display_hide_secrets() {
        let b = KaggleCredentials::basic("alice", "s3cret-key", "test");
        let t = KaggleCredentials::bearer("KGAT_tok", "test");
        for text in [
            format!("{b:?}"),
            format!("{b}"),
            format!("{t:?}"),
            format!("{t}"),
        ] {
            assert!(
                !text.contains("s3cret-key") && !text.contains("KGAT_tok"),
                "{text}"
            );
        }
        assert!(b.appears_in("echo s3cret-key"));
        assert!(!b.appears_in("nothing here"));
    }
}
