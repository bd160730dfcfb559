//! A local emulation of the Kaggle endpoints physio uses, for integration tests.
//!
//! Two HTTP servers on two loopback ports, as on kaggle.com where the API host redirects
//! downloads to a storage host:
//!
//! * the API (`api_base()` = `http://127.0.0.1:<p>/api/v1`): `GET hello`,
//!   `datasets/view/{o}/{d}`, `datasets/list/{o}/{d}?datasetVersionNumber=N[&pageToken]`,
//!   `datasets/download/{o}/{d}[/{file}]?datasetVersionNumber=N` (302 to storage). It checks
//!   the `Authorization` header against the expected bearer token or Basic user:key, answers
//!   403 with Kaggle's rules message when the dataset's rules are "not accepted", and can
//!   answer 429 with `Retry-After` a set number of times;
//! * the storage host (another port): serves archive and file bytes with `x-goog-hash`
//!   (crc32c + md5) or `Content-MD5`, honours `Range`, and **rejects any request that
//!   carries an `Authorization` header** (recording it, so tests can assert credentials
//!   never reached it), as signed storage URLs do.
//!
//! Every request is logged with its headers for assertions.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use md5::Digest as _;

/// How the storage host reports hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashMode {
    /// `x-goog-hash: crc32c=..,md5=..` with the true values.
    Goog,
    /// `Content-MD5` only.
    ContentMd5,
    /// An `x-goog-hash` md5 that does not match the bytes.
    WrongMd5,
    /// Only `x-goog-hash: crc32c=..` (a composite object), true value.
    Crc32cOnly,
    /// Only a crc32c, and one that does not match the bytes.
    WrongCrc32c,
    /// No hash headers.
    None,
}

/// One logged request.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `"api"` or `"storage"`.
    pub host: &'static str,
    /// Path and query.
    pub target: String,
    /// Every header, lower-case name → value.
    pub headers: Vec<(String, String)>,
}

impl Logged {
    /// The value of header `name`, if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The emulator's mutable state (tests change it between runs).
#[derive(Debug)]
pub struct State {
    /// `(owner, dataset)` → version → zip bytes.
    pub datasets: BTreeMap<(String, String), BTreeMap<u32, Vec<u8>>>,
    /// The exact `Authorization` value the API accepts; `None` accepts anonymous requests.
    pub expected_auth: Option<String>,
    /// When false, downloads answer 403 "accept the rules".
    pub rules_accepted: bool,
    /// This many download requests answer 429 (`Retry-After: 1`) before succeeding.
    pub throttle: usize,
    /// This many storage content requests (not the client's `bytes=0-0` probes) answer
    /// 429 (`Retry-After: 1`) first.
    pub storage_throttle: usize,
    /// Hash headers on storage responses.
    pub hash_mode: HashMode,
    /// Files per `datasets/list` page.
    pub page_size: usize,
    /// The next storage response of the whole archive stops after this many bytes (then
    /// the limit clears), to exercise resume.
    pub cut_archive_after: Option<usize>,
    /// Serve single-file downloads as `<file>.zip` holding the file, as Kaggle does for
    /// large files.
    pub zip_single_files: bool,
    /// Every request, in order.
    pub log: Vec<Logged>,
    /// API endpoint (`hello`, `view`, `list`, `download`) → this many of its requests
    /// answer 429 (`Retry-After: 1`) first.
    pub api_throttle: BTreeMap<String, usize>,
    /// When set, `GET hello` answers this status.
    pub hello_status: Option<u16>,
}

/// A running emulator; the servers stop when the test process exits.
pub struct KaggleServer {
    api: SocketAddr,
    storage: SocketAddr,
    /// Shared state.
    pub state: Arc<Mutex<State>>,
}

impl KaggleServer {
    /// Starts both servers with no datasets, anonymous access, rules accepted.
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State {
            datasets: BTreeMap::new(),
            expected_auth: None,
            rules_accepted: true,
            throttle: 0,
            storage_throttle: 0,
            hash_mode: HashMode::Goog,
            page_size: 1000,
            cut_archive_after: None,
            zip_single_files: false,
            log: Vec::new(),
            api_throttle: BTreeMap::new(),
            hello_status: None,
        }));
        let std_api = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let std_storage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let api = std_api.local_addr().unwrap();
        let storage = std_storage.local_addr().unwrap();
        std_api.set_nonblocking(true).unwrap();
        std_storage.set_nonblocking(true).unwrap();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let api_l = tokio::net::TcpListener::from_std(std_api).unwrap();
                let storage_l = tokio::net::TcpListener::from_std(std_storage).unwrap();
                let a = serve(api_l, st.clone(), Host::Api { storage });
                let s = serve(storage_l, st, Host::Storage);
                tokio::join!(a, s);
            });
        });
        KaggleServer {
            api,
            storage,
            state,
        }
    }

    /// The API base to put in `PHYSIO_KAGGLE_URL`.
    pub fn api_base(&self) -> String {
        format!("http://{}/api/v1", self.api)
    }

    /// The storage host's `host:port`.
    pub fn storage_addr(&self) -> SocketAddr {
        self.storage
    }

    /// Adds version `version` of `owner/dataset` with the given zip bytes.
    pub fn add(&self, owner: &str, dataset: &str, version: u32, zip: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .datasets
            .entry((owner.into(), dataset.into()))
            .or_default()
            .insert(version, zip);
    }

    /// Requires bearer `token` on the API.
    pub fn require_bearer(&self, token: &str) {
        self.state.lock().unwrap().expected_auth = Some(format!("Bearer {token}"));
    }

    /// Requires Basic `user:key` on the API.
    pub fn require_basic(&self, user: &str, key: &str) {
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"));
        self.state.lock().unwrap().expected_auth = Some(format!("Basic {v}"));
    }

    /// Changes state under the lock.
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// A copy of the request log.
    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// Requests that reached the storage host.
    pub fn storage_requests(&self) -> Vec<Logged> {
        self.log()
            .into_iter()
            .filter(|l| l.host == "storage")
            .collect()
    }
}

#[derive(Clone, Copy)]
enum Host {
    Api { storage: SocketAddr },
    Storage,
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<Mutex<State>>, host: Host) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(req, &state, host)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Response bodies: whole buffers, or a stream that breaks off (see `cut_archive_after`).
type Body = BoxBody<Bytes, std::io::Error>;

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}

fn json(status: StatusCode, v: serde_json::Value) -> Response<Body> {
    let mut r = reply(status, v.to_string());
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The non-empty path segments, percent-decoded.
fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The entries of a zip: name → bytes (regular files only).
pub fn zip_entries(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(mut a) = zip::ZipArchive::new(std::io::Cursor::new(zip)) else {
        return out;
    };
    for i in 0..a.len() {
        let Ok(mut f) = a.by_index(i) else { continue };
        if f.is_dir() {
            continue;
        }
        let name = f.name().map(|n| n.into_owned()).unwrap_or_default();
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_ok() {
            out.push((name, buf));
        }
    }
    out
}

fn handle(req: Request<Incoming>, state: &Mutex<State>, host: Host) -> Response<Body> {
    let mut st = state.lock().unwrap();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    st.log.push(Logged {
        host: match host {
            Host::Api { .. } => "api",
            Host::Storage => "storage",
        },
        target: target.clone(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    });
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match host {
        Host::Api { storage } => api(&mut st, &path, &query, auth, storage),
        Host::Storage => {
            if auth.is_some() {
                // Signed URLs carry their own authority; GCS answers 400 to a request
                // that also carries Authorization.
                return reply(
                    StatusCode::BAD_REQUEST,
                    "credentials must not be sent to the storage host",
                );
            }
            let range = req
                .headers()
                .get("range")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if st.storage_throttle > 0 && range.as_deref() != Some("bytes=0-0") {
                st.storage_throttle -= 1;
                let mut r = reply(StatusCode::TOO_MANY_REQUESTS, "slow down");
                r.headers_mut().insert("retry-after", "1".parse().unwrap());
                return r;
            }
            storage_get(&mut st, &path, range)
        }
    }
}

fn api(
    st: &mut State,
    path: &str,
    query: &str,
    auth: Option<String>,
    storage: SocketAddr,
) -> Response<Body> {
    if let Some(expected) = &st.expected_auth
        && auth.as_deref() != Some(expected.as_str())
    {
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"code": 401, "message": "Unauthenticated"}),
        );
    }
    let segs = segments(path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let find =
        |st: &State, o: &str, d: &str| st.datasets.get(&(o.to_string(), d.to_string())).cloned();
    let endpoint = match segs.as_slice() {
        ["api", "v1", "hello"] => "hello",
        ["api", "v1", "datasets", e, ..] => e,
        _ => "",
    };
    if let Some(n) = st.api_throttle.get_mut(endpoint)
        && *n > 0
    {
        *n -= 1;
        let mut r = json(
            StatusCode::TOO_MANY_REQUESTS,
            serde_json::json!({"code": 429, "message": "Too many requests"}),
        );
        r.headers_mut().insert("retry-after", "1".parse().unwrap());
        return r;
    }
    if endpoint == "hello"
        && let Some(code) = st.hello_status
    {
        return json(
            StatusCode::from_u16(code).unwrap(),
            serde_json::json!({"code": code, "message": "emulated"}),
        );
    }
    match segs.as_slice() {
        ["api", "v1", "hello"] => json(
            StatusCode::OK,
            serde_json::json!({"code": 200, "message": "Hello!"}),
        ),
        ["api", "v1", "datasets", "view", o, d] => match find(st, o, d) {
            None => json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"code": 404, "message": "Not found"}),
            ),
            Some(versions) => {
                let current = versions.keys().max().copied().unwrap_or(1);
                json(
                    StatusCode::OK,
                    serde_json::json!({
                        "ref": format!("{o}/{d}"),
                        "title": format!("Emulated {d}"),
                        "currentVersionNumber": current,
                        "versions": versions.keys().rev().map(|v| serde_json::json!({"versionNumber": v})).collect::<Vec<_>>(),
                        "totalBytes": versions.get(&current).map(|z| z.len()).unwrap_or(0),
                    }),
                )
            }
        },
        ["api", "v1", "datasets", "list", o, d] => {
            let Some(versions) = find(st, o, d) else {
                return json(StatusCode::NOT_FOUND, serde_json::json!({"code": 404}));
            };
            let v: u32 = query_param(query, "datasetVersionNumber")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| versions.keys().max().copied().unwrap_or(1));
            let Some(zip) = versions.get(&v) else {
                return json(StatusCode::NOT_FOUND, serde_json::json!({"code": 404}));
            };
            let start: usize = query_param(query, "pageToken")
                .and_then(|t| t.strip_prefix("page-").and_then(|n| n.parse().ok()))
                .unwrap_or(0);
            let entries = zip_entries(zip);
            let end = (start + st.page_size).min(entries.len());
            let files: Vec<_> = entries[start.min(end)..end]
                .iter()
                .map(|(n, b)| serde_json::json!({"name": n, "totalBytes": b.len()}))
                .collect();
            let next = if end < entries.len() {
                format!("page-{end}")
            } else {
                String::new()
            };
            json(
                StatusCode::OK,
                serde_json::json!({"datasetFiles": files, "nextPageToken": next}),
            )
        }
        ["api", "v1", "datasets", "download", o, d, rest @ ..] => {
            let Some(versions) = find(st, o, d) else {
                return json(StatusCode::NOT_FOUND, serde_json::json!({"code": 404}));
            };
            if !st.rules_accepted {
                return json(
                    StatusCode::FORBIDDEN,
                    serde_json::json!({"code": 403, "message": "You must accept this dataset's rules before downloading."}),
                );
            }
            if st.throttle > 0 {
                st.throttle -= 1;
                let mut r = json(
                    StatusCode::TOO_MANY_REQUESTS,
                    serde_json::json!({"code": 429, "message": "Too many requests"}),
                );
                r.headers_mut().insert("retry-after", "1".parse().unwrap());
                return r;
            }
            let v: u32 = query_param(query, "datasetVersionNumber")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| versions.keys().max().copied().unwrap_or(1));
            if !versions.contains_key(&v) {
                return json(StatusCode::NOT_FOUND, serde_json::json!({"code": 404}));
            }
            let location = if rest.is_empty() {
                format!("http://{storage}/blob/{o}/{d}/{v}/archive.zip?X-Goog-Signature=sig{v}")
            } else {
                let file: Vec<String> = rest
                    .iter()
                    .map(|s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect())
                    .collect();
                let suffix = if st.zip_single_files { ".zip" } else { "" };
                format!(
                    "http://{storage}/blob/{o}/{d}/{v}/files/{}{suffix}?X-Goog-Signature=sig{v}",
                    file.join("/")
                )
            };
            let mut r = reply(StatusCode::FOUND, "");
            r.headers_mut()
                .insert("location", location.parse().unwrap());
            r
        }
        _ => json(StatusCode::NOT_FOUND, serde_json::json!({"code": 404})),
    }
}

fn storage_get(st: &mut State, path: &str, range: Option<String>) -> Response<Body> {
    let segs = segments(path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (body, is_archive) = match segs.as_slice() {
        ["blob", o, d, v, "archive.zip"] => {
            let zip = v.parse::<u32>().ok().and_then(|v| {
                st.datasets
                    .get(&(o.to_string(), d.to_string()))
                    .and_then(|m| m.get(&v))
                    .cloned()
            });
            match zip {
                Some(z) => (z, true),
                None => return reply(StatusCode::NOT_FOUND, "no such object"),
            }
        }
        ["blob", o, d, v, "files", file @ ..] => {
            let requested = file.join("/");
            let (name, zipped) = match requested.strip_suffix(".zip") {
                Some(n) if st.zip_single_files => (n.to_string(), true),
                _ => (requested, false),
            };
            let bytes = v.parse::<u32>().ok().and_then(|v| {
                st.datasets
                    .get(&(o.to_string(), d.to_string()))
                    .and_then(|m| m.get(&v))
                    .and_then(|z| {
                        zip_entries(z)
                            .into_iter()
                            .find(|(n, _)| *n == name)
                            .map(|(_, b)| b)
                    })
            });
            match bytes {
                Some(b) if zipped => {
                    let base = name.rsplit('/').next().unwrap_or(&name).to_string();
                    (make_zip(&[(base.as_str(), b.as_slice())]), false)
                }
                Some(b) => (b, false),
                None => return reply(StatusCode::NOT_FOUND, "no such object"),
            }
        }
        _ => return reply(StatusCode::NOT_FOUND, "no such object"),
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let md5 = b64.encode(md5::Md5::digest(&body));
    let crc = b64.encode(crc32c::crc32c(&body).to_be_bytes());
    let total = body.len();
    // `Range: bytes=S-` or `bytes=S-E` (RFC 9110 §14.1.2); anything else is ignored.
    let range = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(s, e)| {
            let s: usize = s.parse().ok()?;
            let e: usize = if e.is_empty() {
                total.checked_sub(1)?
            } else {
                e.parse::<usize>().ok()?.min(total.checked_sub(1)?)
            };
            (s <= e).then_some((s, e))
        });
    let start = range.map(|(s, _)| s);
    let slice = match range {
        Some((s, e)) => body[s..=e].to_vec(),
        None => body.clone(),
    };
    let full_len = slice.len();
    // Only a response longer than the cut is cut (not the client's one-byte probe).
    let cut = match st.cut_archive_after {
        Some(n) if is_archive && slice.len() > n => st.cut_archive_after.take(),
        _ => None,
    };
    let status = if start.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut r = match cut {
        None => reply(status, slice),
        Some(n) => {
            // Send `n` bytes of a declared `full_len`, then fail the body: hyper drops the
            // connection and the client sees a transfer cut short.
            let first = Bytes::from(slice[..n.min(slice.len())].to_vec());
            let head =
                futures_util::stream::once(
                    async move { Ok::<_, std::io::Error>(Frame::data(first)) },
                );
            // Give the first bytes time to reach the client before the connection drops.
            let fail = futures_util::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                Err(std::io::Error::other("connection dropped by the emulator"))
            });
            let mut r = Response::new(BodyExt::boxed(StreamBody::new(
                futures_util::StreamExt::chain(head, fail),
            )));
            *r.status_mut() = status;
            r.headers_mut()
                .insert("content-length", full_len.to_string().parse().unwrap());
            r
        }
    };
    let h = r.headers_mut();
    h.insert("accept-ranges", "bytes".parse().unwrap());
    h.insert("content-type", "application/zip".parse().unwrap());
    if let Some((s, e)) = range {
        h.insert(
            "content-range",
            format!("bytes {s}-{e}/{total}").parse().unwrap(),
        );
    }
    match st.hash_mode {
        HashMode::Goog => {
            h.insert(
                "x-goog-hash",
                format!("crc32c={crc},md5={md5}").parse().unwrap(),
            );
        }
        HashMode::ContentMd5 => {
            h.insert("content-md5", md5.parse().unwrap());
        }
        HashMode::WrongMd5 => {
            let wrong = b64.encode(md5::Md5::digest(b"not the body"));
            h.insert("x-goog-hash", format!("md5={wrong}").parse().unwrap());
        }
        HashMode::Crc32cOnly => {
            h.insert("x-goog-hash", format!("crc32c={crc}").parse().unwrap());
        }
        HashMode::WrongCrc32c => {
            let wrong = b64.encode(crc32c::crc32c(b"not the body").to_be_bytes());
            h.insert("x-goog-hash", format!("crc32c={wrong}").parse().unwrap());
        }
        HashMode::None => {}
    }
    r
}

/// Builds a zip from `(name, bytes)` pairs (deflated).
pub fn make_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}
