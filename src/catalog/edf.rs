//! EDF records planned from their headers alone: the first 256 bytes of the file, then
//! the rest of the header (`256 × ns` more), fetched with HTTP Range requests and kept
//! in memory. Nothing is written to the mirror, so a later verified fetch never takes
//! header bytes for the file. A server that ignores ranges answers 200 with the whole
//! file: the header is read from the start of that body and the transfer is dropped
//! there.

use std::path::Path;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::CONTENT_RANGE;
use url::Url;

use super::{RecordInfo, Remote};
use crate::auth::SafeUrl;
use crate::edf::header::{FIXED_BYTES, SIGNAL_BYTES, declared_header_len};
use crate::edf::{EdfError, EdfVariant, parse_header};
use crate::fetch::FetchError;
use crate::fetch::download::content_range;
use crate::fetch::retry::{classify, retry};

/// The largest header an EDF file can declare: the signal count is a 4-character field
/// (at most 9999 signals).
const MAX_HEADER_BYTES: u64 = (FIXED_BYTES + 9999 * SIGNAL_BYTES) as u64;

/// Why an EDF record could not be planned from its header.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EdfPlanError {
    /// The header bytes could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The header is malformed or inconsistent with the file's size.
    #[error(transparent)]
    Edf(#[from] EdfError),
    /// The file's size is not known (neither the manifest nor the server gives it).
    #[error("{0}: the file's size is unknown, so its header cannot be checked")]
    UnknownSize(String),
    /// The fixed part of the header names no usable signal count.
    #[error("{name}: header: number of signals: {reason}")]
    SignalCount {
        /// The record.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Bytes of a file fetched by [`read_range`], with what the server said of its size.
struct Fetched {
    bytes: Vec<u8>,
    /// The file's total size, from `Content-Range` (206) or `Content-Length` (200).
    total: Option<u64>,
    /// Body bytes received (the whole transfer, including any skipped prefix).
    received: u64,
}

/// Reads `len` bytes at `from` of the file at `url`: a `Range` request, or with a
/// server that ignores it, the start of the whole body (read up to the bytes wanted,
/// then dropped). Retried under the run's one policy.
async fn read_range(
    remote: &Remote<'_>,
    url: &Url,
    from: u64,
    len: u64,
) -> Result<Fetched, FetchError> {
    if url.scheme() == "file" {
        return read_local(url, from, len);
    }
    let dl = remote.downloader;
    let (policy, budget) = dl.retry();
    let what = SafeUrl::from(url).to_string();
    let transfer_err = |e: reqwest::Error| crate::fetch::client::transfer(url, &e);
    retry(policy, budget, &what, classify, || async {
        let last = from + len.max(1) - 1;
        let (final_url, resp) = dl.client().get(url, Some((from, Some(last))), true).await?;
        let resp = dl.client().check(&final_url, resp)?;
        let (skip, total) = if resp.status() == StatusCode::PARTIAL_CONTENT {
            let range = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok());
            match range.and_then(content_range) {
                Some((start, total)) if start == from => (0, total),
                _ => {
                    return Err(FetchError::Transfer {
                        url: what.clone(),
                        message: format!("206 answer does not start at byte {from}"),
                    });
                }
            }
        } else {
            (from, resp.content_length())
        };
        let mut bytes = Vec::new();
        let mut received = 0u64;
        let mut stream = resp.bytes_stream();
        while (bytes.len() as u64) < len {
            let Some(chunk) = stream.next().await else {
                break;
            };
            let chunk = chunk.map_err(transfer_err)?;
            let at = received;
            received += chunk.len() as u64;
            // Keep only the bytes in [skip, skip + len) of the body.
            let lo = skip.saturating_sub(at).min(chunk.len() as u64) as usize;
            let room = (len - bytes.len() as u64) as usize;
            let hi = chunk.len().min(lo + room);
            bytes.extend_from_slice(&chunk[lo..hi]);
        }
        Ok(Fetched {
            bytes,
            total,
            received,
        })
    })
    .await
}

/// [`read_range`] of a `file://` version.
fn read_local(url: &Url, from: u64, len: u64) -> Result<Fetched, FetchError> {
    use std::io::{Read, Seek, SeekFrom};
    let what = SafeUrl::from(url).to_string();
    let io = |e: std::io::Error| FetchError::Transfer {
        url: what.clone(),
        message: e.to_string(),
    };
    let path = url.to_file_path().map_err(|()| FetchError::Transfer {
        url: what.clone(),
        message: "not a local path".to_string(),
    })?;
    let mut f = std::fs::File::open(&path).map_err(io)?;
    let total = f.metadata().map_err(io)?.len();
    f.seek(SeekFrom::Start(from)).map_err(io)?;
    let mut bytes = Vec::new();
    f.take(len).read_to_end(&mut bytes).map_err(io)?;
    Ok(Fetched {
        received: bytes.len() as u64,
        bytes,
        total: Some(total),
    })
}

/// Plans EDF record `name` (a manifest path ending in `.edf`) from its header bytes.
/// Returns the record (with `error` set when it could not be planned) and the bytes
/// transferred.
pub(crate) async fn describe(remote: &Remote<'_>, name: &str) -> (RecordInfo, u64) {
    let mut bytes = 0u64;
    let info = match plan_one(remote, name, &mut bytes).await {
        Ok(info) => info,
        Err(e) => RecordInfo::failed(name, e.to_string()),
    };
    (info, bytes)
}

async fn plan_one(
    remote: &Remote<'_>,
    name: &str,
    bytes: &mut u64,
) -> Result<RecordInfo, EdfPlanError> {
    let url = crate::fetch::join_path(remote.base, name);
    let first = read_range(remote, &url, 0, FIXED_BYTES as u64).await?;
    *bytes += first.received;
    let file_len = remote
        .size_of(name)
        .or(first.total)
        .ok_or_else(|| EdfPlanError::UnknownSize(name.to_string()))?;
    let mut head = first.bytes;
    let path = Path::new(name);
    // A short file or an unreadable count: the parser names the problem.
    if head.len() == FIXED_BYTES {
        let header_len = declared_header_len(&head).ok_or_else(|| EdfPlanError::SignalCount {
            name: name.to_string(),
            reason: format!(
                "{:?} is not a non-negative integer",
                String::from_utf8_lossy(&head[252..FIXED_BYTES]).trim()
            ),
        })?;
        if header_len > MAX_HEADER_BYTES || header_len > file_len {
            return Err(EdfPlanError::SignalCount {
                name: name.to_string(),
                reason: format!(
                    "the signal count makes a {header_len}-byte header, the file has \
                     {file_len} bytes"
                ),
            });
        }
        let rest = header_len - FIXED_BYTES as u64;
        if rest > 0 {
            let more = read_range(remote, &url, FIXED_BYTES as u64, rest).await?;
            *bytes += more.received;
            head.extend_from_slice(&more.bytes);
        }
    }
    let h = parse_header(&head, file_len, path)?;
    // What `EdfReader::open` refuses from the header alone, refused alike here.
    let bad = |field, signal, reason: String| EdfError::Header {
        path: path.to_path_buf(),
        field,
        signal,
        reason,
    };
    let chans: Vec<usize> = (0..h.signals.len())
        .filter(|&i| !h.signals[i].is_annotation())
        .collect();
    if let Some(&i) = chans
        .iter()
        .find(|&&i| h.signals[i].samples_per_record == 0)
    {
        return Err(bad(
            "samples per data record",
            Some(i),
            "0 samples per data record".to_string(),
        )
        .into());
    }
    if !chans.is_empty() && h.record_duration <= 0.0 {
        return Err(bad(
            "data record duration",
            None,
            format!(
                "{} s, but the file has signals (only annotation-only files may have 0)",
                h.record_duration
            ),
        )
        .into());
    }
    let has_annotations = chans.len() < h.signals.len();
    if h.variant == EdfVariant::EdfPlusD && !has_annotations {
        return Err(EdfError::Discontinuous {
            path: path.to_path_buf(),
            reason: "no EDF Annotations signal to give the data records' start times".to_string(),
        }
        .into());
    }
    // EDF+D: gaps between data records (and so the length) are only known from the
    // data records' time-keeping annotations, which are not fetched.
    let sig_len = (h.variant != EdfVariant::EdfPlusD)
        .then(|| h.n_records.saturating_mul(h.frames_per_record()));
    Ok(RecordInfo {
        name: name.to_string(),
        fs: h.frame_rate(),
        sig_len,
        sig_name: chans.iter().map(|&i| h.signals[i].label.clone()).collect(),
        units: chans
            .iter()
            .map(|&i| h.signals[i].physical_dimension.clone())
            .collect(),
        comments: Vec::new(),
        base_date: h.base_date.map(|d| d.to_string()),
        base_time: h.base_time.map(|t| t.to_string()),
        segments: Vec::new(),
        files: vec![(name.to_string(), Some(file_len))],
        headers: Vec::new(),
        error: None,
    })
}
