//! A dataset version's manifest: the files it holds, with size and SHA-256 where the
//! source publishes them. PhysioNet's `SHA256SUMS.txt` (`<hex>  <path>` lines, as
//! written by `sha256sum`) is both the file list and the checksum list; every path in
//! it is validated with [`crate::fsutil::enclosed_path`] before anything is written.

use crate::error::Result;
use crate::fsutil::enclosed_path;

use super::FetchError;

/// One file of a dataset version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the version directory, `/`-separated, as on the server.
    pub path: String,
    /// Size in bytes, when known (from a listing or the source's API).
    pub size: Option<u64>,
    /// SHA-256 digest, when the source publishes one.
    pub sha256: Option<[u8; 32]>,
}

/// The files of one dataset version.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    /// Every file, sorted by path.
    pub entries: Vec<Entry>,
    /// True when the entries carry SHA-256 digests (from SHA256SUMS.txt); false when the
    /// list came from directory listings and files can be verified only by size.
    pub has_checksums: bool,
    /// The raw SHA256SUMS.txt, kept so a fetch can store it next to the files for
    /// `physio verify`.
    pub sums_text: Option<String>,
}

impl Manifest {
    /// Builds a manifest from the text of a SHA256SUMS.txt file.
    pub fn from_sha256sums(text: &str) -> Result<Manifest> {
        let mut entries = parse_sha256sums(text)?;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        if let Some(w) = entries.windows(2).find(|w| w[0].path == w[1].path) {
            return Err(FetchError::BadManifest {
                line: 0,
                reason: format!("{:?} is listed twice", w[0].path),
            }
            .into());
        }
        Ok(Manifest {
            entries,
            has_checksums: true,
            sums_text: Some(text.to_string()),
        })
    }

    /// Total size of the entries whose size is known, and whether every size was known.
    pub fn total_size(&self) -> (u64, bool) {
        let known = self.entries.iter().filter_map(|e| e.size).sum();
        (known, self.entries.iter().all(|e| e.size.is_some()))
    }
}

/// Parses SHA256SUMS.txt: one `<64 hex digits><space><space or *><path>` per line
/// (GNU coreutils' format; `*` marks binary mode). Blank lines and `#` comments are
/// skipped. Every path must pass [`enclosed_path`].
pub fn parse_sha256sums(text: &str) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| FetchError::BadManifest {
            line: line_no,
            reason,
        };
        let (hex_part, rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected `<sha256> <path>`".into()))?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut digest)
            .map_err(|_| bad(format!("{hex_part:?} is not a SHA-256 hex digest")))?;
        // One separator was consumed by split_once; sha256sum writes two (or ` *`).
        let path = rest.strip_prefix([' ', '*']).unwrap_or(rest);
        if path.is_empty() {
            return Err(bad("missing path".into()).into());
        }
        enclosed_path(path)?;
        let path = path.trim_start_matches("./").to_string();
        out.push(Entry {
            path,
            size: None,
            sha256: Some(digest),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    const H: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_coreutils_forms() {
        let text =
            format!("{H}  RECORDS\n{H} *records100/00000/00001_lr.dat\r\n\n# note\n{H} ./x.hea\n");
        let e = parse_sha256sums(&text).unwrap();
        let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["RECORDS", "records100/00000/00001_lr.dat", "x.hea"]);
        assert_eq!(hex::encode(e[0].sha256.unwrap()), H);
    }

    macro_rules! refused {
        ($($name:ident: $line:expr, $unsafe_path:expr;)*) => {$(
            #[test]
            fn $name() {
                let err = parse_sha256sums(&format!("{}\n", $line)).unwrap_err();
                assert_eq!(matches!(err, Error::UnsafePath { .. }), $unsafe_path, "{err}");
            }
        )*};
    }

    refused! {
        refuses_parent: format!("{H}  ../../etc/passwd"), true;
        refuses_absolute: format!("{H}  /etc/passwd"), true;
        refuses_backslash: format!("{H}  a\\b"), true;
        refuses_drive: format!("{H}  C:/x"), true;
        refuses_short_hash: "abcd  x", false;
        refuses_no_path: format!("{H}  "), false;
        refuses_no_separator: H, false;
    }

    proptest::proptest! {
        /// Any clean relative path survives a write → parse round trip with its digest.
        #[test]
        fn round_trips(
            parts in proptest::collection::vec("[A-Za-z0-9_][A-Za-z0-9_. -]{0,12}", 1..5),
            digest in proptest::array::uniform32(proptest::num::u8::ANY),
        ) {
            let path = parts.join("/");
            proptest::prop_assume!(!path.ends_with(' ') && parts.iter().all(|p| p != "." && !p.ends_with(' ')));
            let text = format!("{}  {path}\n", hex::encode(digest));
            let e = parse_sha256sums(&text).unwrap();
            proptest::prop_assert_eq!(&e[0].path, &path);
            proptest::prop_assert_eq!(e[0].sha256, Some(digest));
        }

        /// Arbitrary text never panics the parser and never yields an unsafe path.
        #[test]
        fn never_yields_unsafe_paths(text in "\\PC{0,200}") {
            if let Ok(entries) = parse_sha256sums(&text) {
                for e in entries {
                    proptest::prop_assert!(enclosed_path(&e.path).is_ok());
                }
            }
        }
    }

    #[test]
    fn refuses_duplicates() {
        let text = format!("{H}  a\n{H}  ./a\n");
        assert!(Manifest::from_sha256sums(&text).is_err());
    }
}
