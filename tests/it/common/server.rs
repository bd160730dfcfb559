//! A PhysioNet-shaped HTTP server on 127.0.0.1 for integration tests, with injectable
//! faults: latency, 5xx, 429 + Retry-After, connections reset mid-body, wrong bytes,
//! slow (throttled) bodies, redirects, Basic-auth protection. It serves files from
//! memory, generates nginx-style listings for paths ending in `/`, answers
//! `/content/<slug>/` with a redirect to the latest version, supports `Range: bytes=N-`
//! and `bytes=A-B` (206 + Content-Range; [`TestServer::disable_ranges`] turns ranges
//! off), and logs every request (path, Range, Authorization) so tests can assert on
//! traffic.
//!
//! It can also behave as physionet.org is reported to (issue 13), the way nginx's
//! `limit_rate` and `limit_conn` do: every response body paced to a fixed number of bytes
//! per second per connection, and requests beyond a limit of concurrent requests
//! answered with 503 (counted, so tests can assert how often a client overstepped).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::Digest;

type Body = BoxBody<Bytes, std::io::Error>;

/// A fault applied to one request of a path (faults queue up and are used in order).
#[derive(Debug, Clone)]
pub enum Fault {
    /// No fault: serve this request normally (lets later faults hit later requests).
    Pass,
    /// Answer with this status and an empty body.
    Status(u16),
    /// 429 with `Retry-After: <secs>`.
    TooMany(u64),
    /// Send the headers and this many body bytes, then reset the connection.
    ResetAfter(usize),
    /// Send the headers and this many body bytes, then nothing for a minute.
    StallAfter(usize),
}

/// One logged request.
#[derive(Debug, Clone)]
pub struct Logged {
    /// The URL path.
    pub path: String,
    /// The Range header, if any.
    pub range: Option<String>,
    /// The Authorization header, if any.
    pub auth: Option<String>,
    /// The status answered.
    pub status: u16,
}

#[derive(Default)]
struct State {
    files: BTreeMap<String, Bytes>,
    /// Bytes to serve instead of the real ones (the manifest keeps the real digest).
    corrupt: HashMap<String, Bytes>,
    faults: HashMap<String, VecDeque<Fault>>,
    redirects: HashMap<String, String>,
    latency: Duration,
    /// (chunk size, delay per chunk) for throttled bodies.
    throttle: HashMap<String, (usize, Duration)>,
    content_latest: HashMap<String, String>,
    basic_auth: Option<String>,
    log: Vec<Logged>,
    /// Bytes per second per response body (`limit_rate`), 0 for unpaced.
    conn_rate: u64,
    /// Most requests served at once (`limit_conn`); more are answered 503.
    max_active: Option<usize>,
    /// Requests being served now (body still streaming).
    active: usize,
    /// Most requests ever served at once.
    peak_active: usize,
    /// Requests refused with 503 because of `max_active`.
    refusals: usize,
    /// Answer every GET with the whole file (200), as a server without range support.
    no_ranges: bool,
}

/// A running test server (stopped when dropped with the test process).
#[derive(Clone)]
pub struct TestServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl TestServer {
    /// Starts a server on an ephemeral port in a background thread.
    pub fn start() -> TestServer {
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = std::sync::mpsc::channel();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let st = st.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            let st = st.clone();
                            async move { Ok::<_, Infallible>(handle(st, req).await) }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        let addr = rx.recv().expect("server address");
        TestServer { addr, state }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a file at URL path `path` (leading `/`).
    pub fn add(&self, path: &str, bytes: impl Into<Bytes>) {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(path.to_string(), bytes.into());
    }

    /// Adds a PhysioNet project version: every file under `/files/<slug>/<version>/`,
    /// plus a SHA256SUMS.txt listing them when `with_sums`.
    pub fn add_project(
        &self,
        slug: &str,
        version: &str,
        files: &[(String, Vec<u8>)],
        with_sums: bool,
    ) {
        let mut sums = String::new();
        for (p, b) in files {
            self.add(&format!("/files/{slug}/{version}/{p}"), b.clone());
            sums.push_str(&format!("{}  {p}\n", hex::encode(sha2::Sha256::digest(b))));
        }
        if with_sums {
            self.add(&format!("/files/{slug}/{version}/SHA256SUMS.txt"), sums);
        }
    }

    /// Makes `/content/<slug>/` redirect to `/content/<slug>/<version>/`.
    pub fn set_latest(&self, slug: &str, version: &str) {
        self.state
            .lock()
            .unwrap()
            .content_latest
            .insert(slug.into(), version.into());
    }

    /// Queues faults for the next requests of `path`.
    pub fn fault(&self, path: &str, faults: &[Fault]) {
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(path.into())
            .or_default()
            .extend(faults.iter().cloned());
    }

    /// Serves `bytes` for `path` instead of its real content.
    pub fn corrupt(&self, path: &str, bytes: impl Into<Bytes>) {
        self.state
            .lock()
            .unwrap()
            .corrupt
            .insert(path.into(), bytes.into());
    }

    /// Ignores `Range` headers from now on: every file is answered whole with 200 and
    /// no `Accept-Ranges`, as a server without range support does.
    pub fn disable_ranges(&self) {
        self.state.lock().unwrap().no_ranges = true;
    }

    /// Adds `latency` before every response.
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    /// Serves `path` in `chunk`-byte pieces with `delay` between them.
    pub fn throttle(&self, path: &str, chunk: usize, delay: Duration) {
        self.state
            .lock()
            .unwrap()
            .throttle
            .insert(path.into(), (chunk, delay));
    }

    /// Answers `path` with a 302 to `location`.
    pub fn redirect(&self, path: &str, location: &str) {
        self.state
            .lock()
            .unwrap()
            .redirects
            .insert(path.into(), location.into());
    }

    /// Requires HTTP Basic credentials `user:pass` for everything under `/files/`.
    pub fn require_basic(&self, user: &str, pass: &str) {
        use base64::Engine;
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        self.state.lock().unwrap().basic_auth = Some(format!("Basic {v}"));
    }

    /// Paces every response body to `bytes_per_sec` (each connection on its own, as
    /// nginx's `limit_rate`); 0 turns pacing off.
    pub fn pace(&self, bytes_per_sec: u64) {
        self.state.lock().unwrap().conn_rate = bytes_per_sec;
    }

    /// Answers 503 to any request that would make more than `n` requests in progress at
    /// once (nginx's `limit_conn`, which counts connections with a request in progress).
    pub fn limit_connections(&self, n: usize) {
        self.state.lock().unwrap().max_active = Some(n);
    }

    /// Requests refused so far because of [`TestServer::limit_connections`].
    pub fn refusals(&self) -> usize {
        self.state.lock().unwrap().refusals
    }

    /// The most requests that were ever in progress at once (refused ones excluded).
    pub fn peak_active(&self) -> usize {
        self.state.lock().unwrap().peak_active
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()).map_err(|e| match e {}).boxed());
    *r.status_mut() = status;
    r
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|e| match e {}).boxed()
}

async fn handle(st: Arc<Mutex<State>>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(String::from);
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let (range, auth) = (header("range"), header("authorization"));
    let admitted = {
        let mut s = st.lock().unwrap();
        if s.max_active.is_some_and(|m| s.active >= m) {
            s.refusals += 1;
            false
        } else {
            s.active += 1;
            s.peak_active = s.peak_active.max(s.active);
            true
        }
    };
    if !admitted {
        let resp = empty(StatusCode::SERVICE_UNAVAILABLE);
        st.lock().unwrap().log.push(Logged {
            path,
            range,
            auth,
            status: 503,
        });
        return resp;
    }
    // The request counts as in progress until its body is sent or dropped.
    let guard = ActiveGuard(st.clone());
    let latency = st.lock().unwrap().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let resp = respond(
        &st,
        &path,
        query.as_deref(),
        range.as_deref(),
        auth.as_deref(),
    )
    .await;
    st.lock().unwrap().log.push(Logged {
        path,
        range,
        auth,
        status: resp.status().as_u16(),
    });
    resp.map(move |b| {
        b.map_frame(move |f| {
            let _ = &guard;
            f
        })
        .boxed()
    })
}

/// Ends a request's "in progress" span when dropped (with its response body).
struct ActiveGuard(Arc<Mutex<State>>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.lock() {
            s.active = s.active.saturating_sub(1);
        }
    }
}

/// `body` sent at `rate` bytes per second: pieces of a twentieth of a second each, each
/// sent when the bytes before it are due (as nginx's `limit_rate`).
fn paced(body: Bytes, rate: u64) -> Body {
    let piece = ((rate / 20).max(1024)) as usize;
    let started = tokio::time::Instant::now();
    let stream = futures_util::stream::unfold(0usize, move |sent| {
        let body = body.clone();
        async move {
            if sent >= body.len() {
                return None;
            }
            let end = (sent + piece).min(body.len());
            let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
            tokio::time::sleep_until(due).await;
            Some((
                Ok::<_, std::io::Error>(Frame::data(body.slice(sent..end))),
                end,
            ))
        }
    });
    StreamBody::new(stream).boxed()
}

async fn respond(
    st: &Arc<Mutex<State>>,
    path: &str,
    query: Option<&str>,
    range: Option<&str>,
    auth: Option<&str>,
) -> Response<Body> {
    let mut s = st.lock().unwrap();
    // `ListObjectsV2` on the bucket: virtual-hosted (`/?list-type=2…`, the server is
    // the bucket) or path style (`/<bucket>?list-type=2…`, keys under `/<bucket>/`).
    if !path[1..].contains('/')
        && let Some(q) = query
        && q.contains("list-type=2")
    {
        // A listing takes the status faults queued on the bucket root (`/`).
        match s.faults.get_mut(path).and_then(|q| q.pop_front()) {
            Some(Fault::Status(code)) => return empty(StatusCode::from_u16(code).unwrap()),
            Some(Fault::TooMany(secs)) => {
                let mut r = empty(StatusCode::TOO_MANY_REQUESTS);
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
                return r;
            }
            _ => {}
        }
        return s3_list(&s, q, &format!("{}/", path.trim_end_matches('/')));
    }
    if let Some(loc) = s.redirects.get(path) {
        let mut r = empty(StatusCode::FOUND);
        r.headers_mut().insert("location", loc.parse().unwrap());
        return r;
    }
    if let Some(rest) = path.strip_prefix("/content/") {
        let slug = rest.trim_end_matches('/');
        if let Some(v) = s.content_latest.get(slug) {
            let mut r = empty(StatusCode::FOUND);
            r.headers_mut()
                .insert("location", format!("/content/{slug}/{v}/").parse().unwrap());
            return r;
        }
        return empty(StatusCode::NOT_FOUND);
    }
    if path.starts_with("/files/")
        && let Some(want) = &s.basic_auth
    {
        match auth {
            None => {
                let mut r = empty(StatusCode::UNAUTHORIZED);
                r.headers_mut().insert(
                    "www-authenticate",
                    "Basic realm=\"PhysioNet\"".parse().unwrap(),
                );
                return r;
            }
            Some(a) if a != want => return empty(StatusCode::UNAUTHORIZED),
            Some(_) => {}
        }
    }
    if let Some(f) = s.faults.get_mut(path).and_then(|q| q.pop_front()) {
        match f {
            Fault::Pass => {}
            Fault::Status(code) => return empty(StatusCode::from_u16(code).unwrap()),
            Fault::TooMany(secs) => {
                let mut r = empty(StatusCode::TOO_MANY_REQUESTS);
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
                return r;
            }
            Fault::StallAfter(n) => {
                let Some(real) = s.files.get(path).cloned() else {
                    return empty(StatusCode::NOT_FOUND);
                };
                let head = real.slice(..n.min(real.len()));
                let stream = futures_util::stream::unfold(Some(head), |head| async move {
                    match head {
                        Some(h) => Some((Ok::<_, std::io::Error>(Frame::data(h)), None)),
                        None => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            None
                        }
                    }
                });
                let mut r = Response::new(StreamBody::new(stream).boxed());
                r.headers_mut()
                    .insert("content-length", real.len().to_string().parse().unwrap());
                return r;
            }
            Fault::ResetAfter(n) => {
                let Some(real) = s.files.get(path).cloned() else {
                    return empty(StatusCode::NOT_FOUND);
                };
                let head = real.slice(..n.min(real.len()));
                // Let the head reach the socket before the connection is torn down.
                let stream = futures_util::stream::unfold(Some(head), |head| async move {
                    match head {
                        Some(h) => Some((Ok(Frame::data(h)), None)),
                        None => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let e = std::io::Error::new(
                                std::io::ErrorKind::ConnectionReset,
                                "injected reset",
                            );
                            Some((Err(e), None))
                        }
                    }
                });
                let mut r = Response::new(StreamBody::new(stream).boxed());
                r.headers_mut()
                    .insert("content-length", real.len().to_string().parse().unwrap());
                return r;
            }
        }
    }
    if path.ends_with('/') {
        return listing(&s, path);
    }
    let Some(real) = s.files.get(path).cloned() else {
        return empty(StatusCode::NOT_FOUND);
    };
    let body = s.corrupt.get(path).cloned().unwrap_or(real);
    let throttle = s.throttle.get(path).copied();
    let conn_rate = s.conn_rate;
    let range = if s.no_ranges { None } else { range };
    let no_ranges = s.no_ranges;
    drop(s);
    let len = body.len();
    // `bytes=<a>-` or `bytes=<a>-<b>` (inclusive), RFC 9110 §14.1.2.
    let spec = range.and_then(|r| r.strip_prefix("bytes=")).and_then(|r| {
        let (a, b) = r.split_once('-')?;
        let a = a.parse::<usize>().ok()?;
        let b = if b.is_empty() {
            None
        } else {
            Some(b.parse::<usize>().ok()?)
        };
        Some((a, b))
    });
    let start = spec.map(|(a, _)| a);
    let (status, part, last) = match spec {
        Some((a, b)) if a < len => {
            let last = b.unwrap_or(len - 1).min(len - 1);
            (StatusCode::PARTIAL_CONTENT, body.slice(a..=last), last)
        }
        Some(_) => return empty(StatusCode::RANGE_NOT_SATISFIABLE),
        None => (StatusCode::OK, body, len.saturating_sub(1)),
    };
    let part_len = part.len();
    let b: Body = match throttle {
        None if conn_rate > 0 => paced(part, conn_rate),
        None => full(part),
        Some((chunk, delay)) => {
            let chunks: Vec<Bytes> = (0..part_len)
                .step_by(chunk)
                .map(|i| part.slice(i..(i + chunk).min(part_len)))
                .collect();
            let stream =
                futures_util::stream::unfold(chunks.into_iter(), move |mut it| async move {
                    let c = it.next()?;
                    tokio::time::sleep(delay).await;
                    Some((Ok::<_, std::io::Error>(Frame::data(c)), it))
                });
            StreamBody::new(stream).boxed()
        }
    };
    let mut r = Response::new(b);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert("content-length", part_len.to_string().parse().unwrap());
    if !no_ranges {
        h.insert("accept-ranges", "bytes".parse().unwrap());
    }
    if let Some(n) = start {
        h.insert(
            "content-range",
            format!("bytes {n}-{last}/{len}").parse().unwrap(),
        );
    }
    r
}

/// A `ListObjectsV2` page of the keys under `root` (`/` for a virtual-hosted bucket,
/// `/<bucket>/` in path style); two keys or prefixes per page, to exercise
/// pagination; the continuation token is the last key returned.
fn s3_list(s: &State, query: &str, root: &str) -> Response<Body> {
    // Decoded as S3 decodes a query string (any parameter order, `%XX` and `+`).
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find_map(|(k, v)| (k == name).then(|| v.into_owned()))
    };
    let prefix = param("prefix").unwrap_or_default();
    let delimiter = param("delimiter").is_some();
    let after = param("continuation-token");
    let mut items: Vec<(String, Option<usize>)> = Vec::new();
    for (p, b) in &s.files {
        let Some(key) = p.strip_prefix(root) else {
            continue;
        };
        let Some(rest) = key.strip_prefix(&prefix) else {
            continue;
        };
        let item = match rest.split_once('/') {
            Some((d, _)) if delimiter => (format!("{prefix}{d}/"), None),
            _ => (key.to_string(), Some(b.len())),
        };
        if items.last() != Some(&item) {
            items.push(item);
        }
    }
    let start = after
        .map(|a| items.iter().position(|i| i.0 == a).map_or(0, |x| x + 1))
        .unwrap_or(0);
    let page: Vec<_> = items.iter().skip(start).take(2).collect();
    let truncated = start + page.len() < items.len();
    // As S3 answers: namespace, the request echoed, `Contents` with `LastModified`,
    // `ETag` and `StorageClass`, XML-escaped keys.
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    xml.push_str(&format!(
        "<Name>physionet-open</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>2</MaxKeys>",
        esc(&prefix),
        page.len()
    ));
    if delimiter {
        xml.push_str("<Delimiter>/</Delimiter>");
    }
    xml.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
    if truncated && let Some(last) = page.last() {
        xml.push_str(&format!(
            "<NextContinuationToken>{}</NextContinuationToken>",
            esc(&last.0)
        ));
    }
    for (name, size) in &page {
        match size {
            Some(n) => xml.push_str(&format!(
                "<Contents><Key>{}</Key><LastModified>2019-01-01T00:00:00.000Z</LastModified><ETag>&quot;0&quot;</ETag><Size>{n}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                esc(name)
            )),
            None => xml.push_str(&format!(
                "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                esc(name)
            )),
        }
    }
    xml.push_str("</ListBucketResult>");
    Response::new(full(Bytes::from(xml)))
}

/// An nginx-style autoindex page of the direct children of `dir`.
fn listing(s: &State, dir: &str) -> Response<Body> {
    let mut names: BTreeMap<String, Option<usize>> = BTreeMap::new();
    for (p, b) in &s.files {
        if let Some(rest) = p.strip_prefix(dir) {
            match rest.split_once('/') {
                Some((d, _)) => names.insert(format!("{d}/"), None),
                None => names.insert(rest.to_string(), Some(b.len())),
            };
        }
    }
    if names.is_empty() {
        return empty(StatusCode::NOT_FOUND);
    }
    let mut html = format!(
        "<html>\n<head><title>Index of {dir}</title></head>\n<body>\n<h1>Index of {dir}</h1><hr><pre><a href=\"../\">../</a>\n"
    );
    for (n, size) in names {
        let size = size.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
        html.push_str(&format!(
            "<a href=\"{n}\">{n}</a>                    01-Jan-2024 00:00     {size:>10}\n"
        ));
    }
    html.push_str("</pre><hr></body>\n</html>\n");
    let mut r = Response::new(full(Bytes::from(html)));
    r.headers_mut()
        .insert("content-type", "text/html".parse().unwrap());
    r
}
