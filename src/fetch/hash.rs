//! Hashing: the streaming state a download carries (SHA-256, optional MD5, byte count),
//! so bytes are hashed as they arrive and a resumed `.part` file is hashed once; and
//! whole-file hashing for `verify` and for files found on disk.

use std::io::Read;
use std::path::Path;

use md5::Md5;
use sha2::{Digest, Sha256};

/// Running digests of a byte stream.
#[derive(Clone)]
pub struct StreamHash {
    sha256: Sha256,
    md5: Option<Md5>,
    len: u64,
}

impl StreamHash {
    /// A fresh state; MD5 is computed only when `with_md5` (Kaggle publishes MD5s).
    pub fn new(with_md5: bool) -> Self {
        StreamHash {
            sha256: Sha256::new(),
            md5: with_md5.then(Md5::new),
            len: 0,
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        if let Some(m) = &mut self.md5 {
            m.update(bytes);
        }
        self.len += bytes.len() as u64;
    }

    /// A fresh state computing the same digests as this one.
    pub fn reset(&self) -> Self {
        StreamHash::new(self.md5.is_some())
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The final digests.
    pub fn finish(self) -> Digests {
        Digests {
            size: self.len,
            sha256: self.sha256.finalize().into(),
            md5: self.md5.map(|m| m.finalize().into()),
        }
    }
}

/// Final digests of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digests {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256.
    pub sha256: [u8; 32],
    /// MD5, when requested.
    pub md5: Option<[u8; 16]>,
}

/// Hashes `reader` to its end into `state`. Reads go through one 1 MiB buffer per
/// thread: memory stays flat, and hashing thousands of small files (a convert's input
/// provenance) costs no allocation per file and one or two `read` calls each.
pub fn hash_reader(mut reader: impl Read, state: &mut StreamHash) -> std::io::Result<()> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.resize(1 << 20, 0);
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            state.update(&buf[..n]);
        }
    })
}

/// Hex SHA-256 of the file at `path` — the crate's one "SHA-256 of a file" (fetch
/// verification, convert provenance, Kaggle re-checks). Blocking.
pub fn sha256_hex(path: &Path) -> std::io::Result<String> {
    Ok(hex::encode(hash_file(path, false)?.sha256))
}

/// Hashes the whole file at `path` (blocking; call from `spawn_blocking` or rayon).
pub fn hash_file(path: &Path, with_md5: bool) -> std::io::Result<Digests> {
    let f = std::fs::File::open(path)?;
    let mut st = StreamHash::new(with_md5);
    hash_reader(f, &mut st)?;
    Ok(st.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_equals_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let d = hash_file(&p, true).unwrap();
        assert_eq!(
            hex::encode(d.sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex::encode(d.md5.unwrap()),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        let mut s = StreamHash::new(false);
        s.update(b"a");
        s.update(b"bc");
        assert_eq!(s.finish().sha256, d.sha256);
    }
}
