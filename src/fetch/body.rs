//! Bodies read whole into memory — directory listings, `SHA256SUMS.txt` manifests,
//! Kaggle's JSON answers and error texts — are read through [`read_limited`], which
//! refuses a body larger than its limit (by `Content-Length` before reading, and while
//! streaming when the server sends none), so a hostile or broken server cannot exhaust
//! memory (issue 12). Files themselves are streamed to disk, never read whole.

use futures_util::StreamExt;

/// Limit for listings and manifests: `SHA256SUMS.txt` of the largest PhysioNet
/// datasets (MIMIC-IV-ECG: ~1.6 million files) is ~150 MB.
pub const TEXT_LIMIT: u64 = 512 << 20;

/// Limit for JSON API answers (Kaggle's file lists, dataset metadata).
pub const JSON_LIMIT: u64 = 64 << 20;

/// Limit for error texts shown to users.
pub const MESSAGE_LIMIT: u64 = 64 << 10;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is larger than the limit.
    #[error("response body larger than the {} limit", human(*limit))]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The transfer failed.
    #[error(transparent)]
    Transfer(#[from] reqwest::Error),
}

/// `512 MiB`, `64 KiB`.
fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n => format!("{} KiB", n >> 10),
    }
}

/// Reads `resp`'s whole body, refusing more than `limit` bytes.
pub async fn read_limited(resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads a local file (a `file://` listing or manifest) whole, refusing one larger than
/// `limit`.
pub fn read_file_limited(path: &std::path::Path, limit: u64) -> std::io::Result<String> {
    let len = std::fs::metadata(path)?.len();
    if len > limit {
        return Err(std::io::Error::other(format!(
            "file larger than the {} limit",
            human(limit)
        )));
    }
    std::fs::read_to_string(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot HTTP server on 127.0.0.1 answering every connection with `response`.
    async fn serve(response: Vec<u8>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(&response).await;
                let _ = s.shutdown().await;
            }
        });
        format!("http://{addr}/SHA256SUMS.txt")
    }

    #[tokio::test]
    async fn refuses_bodies_over_the_limit() {
        crate::fetch::client::install_tls_provider();
        let client = reqwest::Client::new();
        // Declared too large: refused before reading.
        let url =
            serve(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\nabc".to_vec()).await;
        let resp = client.get(&url).send().await.unwrap();
        let err = read_limited(resp, 1024).await.unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { limit: 1024 }), "{err}");
        // Undeclared (chunked): refused once the limit is passed.
        let chunked = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n300\r\n{}\r\n0\r\n\r\n",
            "a".repeat(0x300)
        )
        .into_bytes();
        let url = serve(chunked.clone()).await;
        let resp = client.get(&url).send().await.unwrap();
        let err = read_limited(resp, 512).await.unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { limit: 512 }), "{err}");
        // Within the limit: the whole body.
        let url = serve(chunked).await;
        let resp = client.get(&url).send().await.unwrap();
        assert_eq!(read_limited(resp, 4096).await.unwrap().len(), 0x300);
    }

    #[test]
    fn limits_read_well() {
        assert_eq!(human(TEXT_LIMIT), "512 MiB");
        assert_eq!(human(MESSAGE_LIMIT), "64 KiB");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("SHA256SUMS.txt");
        std::fs::write(&p, vec![b'a'; 2048]).unwrap();
        assert_eq!(read_file_limited(&p, 4096).unwrap().len(), 2048);
        let err = read_file_limited(&p, 1024).unwrap_err().to_string();
        assert!(err.contains("larger than the 1 KiB limit"), "{err}");
    }
}
