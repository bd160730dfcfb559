//! A small reader for `~/.netrc` (the format wget and curl read): `machine`, `default`,
//! `login`, `password` and `account` tokens separated by white space; `macdef` bodies run
//! to the next blank line and are skipped. Only what credential lookup needs.

use std::path::Path;

use super::Secret;

/// One `machine` (or `default`) entry.
#[derive(Debug, Clone)]
pub struct NetrcEntry {
    /// The host name, or `None` for the `default` entry.
    pub machine: Option<String>,
    /// The `login` token.
    pub login: Option<String>,
    /// The `password` token.
    pub password: Option<Secret>,
}

/// Parses netrc text into its entries (unknown tokens are ignored, as curl does).
pub fn parse(text: &str) -> Vec<NetrcEntry> {
    let mut entries: Vec<NetrcEntry> = Vec::new();
    let mut lines = text.lines();
    let mut tokens: Vec<String> = Vec::new();
    // Tokenise line by line so that `macdef` bodies (up to a blank line) can be skipped.
    while let Some(line) = lines.next() {
        for w in line.split_whitespace() {
            if w.starts_with('#') && tokens.last().map(String::as_str) != Some("password") {
                break;
            }
            if w == "macdef" {
                for body in lines.by_ref() {
                    if body.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            tokens.push(w.to_string());
        }
    }
    let mut it = tokens.into_iter();
    while let Some(tok) = it.next() {
        match tok.as_str() {
            "machine" => entries.push(NetrcEntry {
                machine: it.next(),
                login: None,
                password: None,
            }),
            "default" => entries.push(NetrcEntry {
                machine: None,
                login: None,
                password: None,
            }),
            "login" => {
                let v = it.next();
                if let Some(e) = entries.last_mut() {
                    e.login = v;
                }
            }
            "password" => {
                let v = it.next().map(Secret::new);
                if let Some(e) = entries.last_mut() {
                    e.password = v;
                }
            }
            "account" => {
                it.next();
            }
            _ => {}
        }
    }
    entries
}

/// Login and password for `host` from the netrc file at `path`: the first `machine`
/// entry naming the host, else the `default` entry. Unreadable files give `None`.
pub fn lookup(path: &Path, host: &str) -> Option<(String, Secret)> {
    let text = std::fs::read_to_string(path).ok()?;
    let entries = parse(&text);
    let found = entries
        .iter()
        .find(|e| {
            e.machine
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(host))
        })
        .or_else(|| entries.iter().find(|e| e.machine.is_none()))?;
    Some((found.login.clone()?, found.password.clone()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_machine_then_default() {
        let text = "machine a.example login x password p1\n\
                    macdef init\ncd /\n\n\
                    machine physionet.org\n  login alice\n  password s3cret\n\
                    default login anon password guest\n";
        let e = parse(text);
        assert_eq!(e.len(), 3);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("netrc");
        std::fs::write(&p, text).unwrap();
        let (u, pw) = lookup(&p, "PhysioNet.org").unwrap();
        assert_eq!((u.as_str(), pw.expose()), ("alice", "s3cret"));
        let (u, pw) = lookup(&p, "other.example").unwrap();
        assert_eq!((u.as_str(), pw.expose()), ("anon", "guest"));
    }

    #[test]
    fn missing_file_is_none() {
        assert!(lookup(Path::new("/nonexistent/netrc"), "x").is_none());
    }
}
