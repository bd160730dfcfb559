//! PhysioNet projects on physionet.org, on a mirror with the same layout
//! (`<base>/files/<slug>/<version>/<path>`), in a local `file://` copy of that layout, or
//! in the AWS open-data bucket layout (`<base>/<slug>/<version>/<path>`).
//!
//! The newest version comes from the `/content/<slug>/` redirect to
//! `/content/<slug>/<version>/`, else from the highest version directory in the
//! `/files/<slug>/` listing. The manifest is `SHA256SUMS.txt` in the version directory;
//! projects without one are walked through their directory listings and can then be
//! verified only by size.

use std::collections::VecDeque;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use tracing::{debug, warn};
use url::Url;

use super::SourceError;
use super::bucket::Bucket;
use super::listing::{ListingEntry, cmp_versions, is_version, parse_listing};
use crate::auth::SafeUrl;
use crate::error::{Error, Result};
use crate::fetch::retry::{classify, retry};
use crate::fetch::{Downloader, FetchError, join_path};
use crate::fetch::{Entry, Manifest};

/// physionet.org, the default base URL.
pub const DEFAULT_BASE: &str = "https://physionet.org";
/// The AWS open-data bucket holding PhysioNet's open-access projects.
pub const AWS_BASE: &str = "https://physionet-open.s3.amazonaws.com";

/// Most directories walked for one project without SHA256SUMS.txt (a guard against a
/// listing loop on a misbehaving server).
const MAX_DIRS: usize = 100_000;

/// How files are laid out under the base URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// `<base>/files/<slug>/<version>/<path>`, versions via `/content/<slug>/`.
    #[default]
    PhysioNet,
    /// `<base>/<slug>/<version>/<path>` (the public S3 mirror).
    Aws,
}

/// A PhysioNet-shaped source.
#[derive(Debug, Clone)]
pub struct PhysioNet {
    base: Url,
    layout: Layout,
}

impl PhysioNet {
    /// A source at `base` (`https://…`, `http://…`, `file:///…` or a plain directory
    /// path, which is taken as `file://`).
    pub fn new(base: &str, layout: Layout) -> Result<PhysioNet> {
        let bad = |reason: &str| SourceError::BadBaseUrl {
            url: base.to_string(),
            reason: reason.to_string(),
        };
        let mut url = match Url::parse(base) {
            Ok(u) => u,
            Err(_) => {
                let p = std::path::absolute(base).map_err(|_| bad("not a URL or a path"))?;
                Url::from_directory_path(&p).map_err(|_| bad("not a URL or a path"))?
            }
        };
        if !matches!(url.scheme(), "http" | "https" | "file") {
            return Err(bad("only http, https and file URLs are supported").into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a base URL takes no query or fragment").into());
        }
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(PhysioNet { base: url, layout })
    }

    /// The base URL (ending in `/`).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// True for a `file://` source.
    pub fn is_local(&self) -> bool {
        self.base.scheme() == "file"
    }

    /// The URL of the project's directory of versions, ending in `/`.
    pub fn project_url(&self, slug: &str) -> Url {
        let u = match self.layout {
            Layout::PhysioNet => join_path(&self.base, &format!("files/{slug}")),
            Layout::Aws => join_path(&self.base, slug),
        };
        dir_url(u)
    }

    /// The URL of one version's root directory, ending in `/`.
    pub fn version_url(&self, slug: &str, version: &str) -> Url {
        dir_url(join_path(&self.project_url(slug), version))
    }

    /// The newest version of `slug`.
    pub async fn resolve_version(&self, dl: &Downloader, slug: &str) -> Result<String> {
        if self.layout == Layout::PhysioNet && !self.is_local() {
            let content = dir_url(join_path(&self.base, &format!("content/{slug}")));
            // Retried like every request; a redirect or any final answer ends it.
            let (policy, budget) = dl.retry();
            let what = SafeUrl::from(&content).to_string();
            let answer =
                retry(policy, budget, &what, classify, || async {
                    let (u, resp) = dl.client().get(&content, None, false).await?;
                    let status = resp.status().as_u16();
                    if status == 408 || status == 429 || status >= 500 {
                        return Err(dl.client().check(&u, resp).err().unwrap_or(
                            FetchError::Status {
                                url: SafeUrl::from(&u).to_string(),
                                status,
                                retry_after: None,
                            },
                        ));
                    }
                    Ok((u, resp))
                })
                .await;
            match answer {
                Ok((_, resp)) if resp.status().is_redirection() => {
                    let loc = resp
                        .headers()
                        .get(LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|l| content.join(l).ok());
                    if let Some(v) = loc.as_ref().and_then(|l| version_in(l, slug)) {
                        debug!(slug, version = %v, "latest version from /content/ redirect");
                        return Ok(v);
                    }
                }
                Ok((u, resp))
                    if matches!(
                        resp.status(),
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                    ) =>
                {
                    dl.client().check(&u, resp)?;
                }
                Ok(_) => {}
                Err(e) => debug!(error = %e, "no /content/ redirect"),
            }
        }
        if self.layout == Layout::Aws && !self.is_local() {
            let versions = Bucket::new(&self.base)?.subdirs(dl, slug).await?;
            return versions
                .into_iter()
                .filter(|v| is_version(v))
                .max_by(|a, b| cmp_versions(a, b))
                .ok_or_else(|| {
                    SourceError::NoVersion {
                        slug: slug.to_string(),
                        url: SafeUrl::from(&self.base).to_string(),
                    }
                    .into()
                });
        }
        let url = self.project_url(slug);
        let entries = self
            .listing(dl, &url)
            .await?
            .ok_or_else(|| SourceError::NotFound {
                slug: slug.to_string(),
                version: None,
                url: SafeUrl::from(&url).to_string(),
            })?;
        entries
            .into_iter()
            .filter(|e| e.is_dir && is_version(&e.name))
            .map(|e| e.name)
            .max_by(|a, b| cmp_versions(a, b))
            .ok_or_else(|| {
                SourceError::NoVersion {
                    slug: slug.to_string(),
                    url: SafeUrl::from(&url).to_string(),
                }
                .into()
            })
    }

    /// The manifest of `slug@version`: SHA256SUMS.txt, else a walk of the listings.
    pub async fn manifest(&self, dl: &Downloader, slug: &str, version: &str) -> Result<Manifest> {
        let root = self.version_url(slug, version);
        let sums = join_path(&root, "SHA256SUMS.txt");
        if let Some(text) = self.get_text(dl, &sums).await? {
            return Manifest::from_sha256sums(&text);
        }
        tracing::info!(
            slug,
            version,
            "no SHA256SUMS.txt: walking directory listings; files can be verified by size only"
        );
        let entries = self
            .walk(dl, &root)
            .await?
            .ok_or_else(|| SourceError::NotFound {
                slug: slug.to_string(),
                version: Some(version.to_string()),
                url: SafeUrl::from(&root).to_string(),
            })?;
        Ok(Manifest {
            entries,
            has_checksums: false,
            sums_text: None,
        })
    }

    /// Fills in the entries' sizes from the directory listings (for `ls` and
    /// `--dry-run`; SHA256SUMS.txt carries no sizes).
    pub async fn fill_sizes(
        &self,
        dl: &Downloader,
        slug: &str,
        version: &str,
        m: &mut Manifest,
    ) -> Result<()> {
        if m.entries.iter().all(|e| e.size.is_some()) {
            return Ok(());
        }
        let root = self.version_url(slug, version);
        let Some(listed) = self.walk(dl, &root).await? else {
            return Ok(());
        };
        let sizes: std::collections::HashMap<_, _> =
            listed.into_iter().map(|e| (e.path, e.size)).collect();
        for e in &mut m.entries {
            if e.size.is_none() {
                e.size = sizes.get(&e.path).copied().flatten();
            }
        }
        Ok(())
    }

    /// Every file under `root`, walking listings breadth-first, eight at a time.
    /// `None` when `root` itself does not exist.
    async fn walk(&self, dl: &Downloader, root: &Url) -> Result<Option<Vec<Entry>>> {
        if self.layout == Layout::Aws && !self.is_local() {
            // The bucket has no HTML listings; one flat ListObjectsV2 listing instead.
            let prefix = root
                .path()
                .strip_prefix(self.base.path())
                .unwrap_or(root.path());
            let prefix = super::listing::percent_decode(prefix).unwrap_or_default();
            let objects = Bucket::new(&self.base)?.objects(dl, &prefix).await?;
            if objects.is_empty() {
                return Ok(None);
            }
            let mut out = Vec::new();
            for (path, size) in objects {
                if crate::fsutil::enclosed_path(&path).is_err() {
                    warn!(path, "listing entry with an unsafe name skipped");
                    continue;
                }
                out.push(Entry {
                    path,
                    size: Some(size),
                    sha256: None,
                });
            }
            out.sort_by(|a, b| a.path.cmp(&b.path));
            return Ok(Some(out));
        }
        let Some(top) = self.listing(dl, root).await? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        let mut queue: VecDeque<String> = VecDeque::new();
        let mut seen = 0usize;
        let push = |prefix: &str,
                    entries: Vec<ListingEntry>,
                    queue: &mut VecDeque<String>,
                    out: &mut Vec<Entry>| {
            for e in entries {
                let path = if prefix.is_empty() {
                    e.name.clone()
                } else {
                    format!("{prefix}/{}", e.name)
                };
                if crate::fsutil::enclosed_path(&path).is_err() {
                    warn!(path = %path, "listing entry with an unsafe name skipped");
                    continue;
                }
                if e.is_dir {
                    queue.push_back(path);
                } else {
                    out.push(Entry {
                        path,
                        size: e.size,
                        sha256: None,
                    });
                }
            }
        };
        push("", top, &mut queue, &mut out);
        while !queue.is_empty() {
            let batch: Vec<String> = queue.drain(..).collect();
            seen += batch.len();
            if seen > MAX_DIRS {
                return Err(Error::Usage(format!(
                    "more than {MAX_DIRS} directories under {}",
                    SafeUrl::from(root)
                )));
            }
            let pages: Vec<(String, Result<Option<Vec<ListingEntry>>>)> =
                futures_util::stream::iter(batch)
                    .map(|p| async move {
                        let u = dir_url(join_path(root, &p));
                        let r = self.listing(dl, &u).await;
                        (p, r)
                    })
                    .buffer_unordered(8)
                    .collect()
                    .await;
            for (p, r) in pages {
                if let Some(entries) = r? {
                    push(&p, entries, &mut queue, &mut out);
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Some(out))
    }

    /// The entries of a directory: `read_dir` for `file://`, the parsed HTML listing
    /// otherwise. `None` when the directory does not exist.
    async fn listing(&self, dl: &Downloader, url: &Url) -> Result<Option<Vec<ListingEntry>>> {
        if url.scheme() == "file" {
            let Ok(dir) = url.to_file_path() else {
                return Ok(None);
            };
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io(&dir, e)),
            };
            let mut out = Vec::new();
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                // Follow no symlinks out of the mirror: only plain files and directories.
                let Ok(t) = e.file_type() else { continue };
                let size = if t.is_file() {
                    e.metadata().ok().map(|m| m.len())
                } else {
                    None
                };
                if t.is_dir() || t.is_file() {
                    out.push(ListingEntry {
                        name,
                        is_dir: t.is_dir(),
                        size,
                    });
                }
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            return Ok(Some(out));
        }
        Ok(self
            .get_text(dl, url)
            .await?
            .map(|html| parse_listing(&html)))
    }

    /// The body of `url` as text, retried like file transfers; `None` on 404.
    pub async fn get_text(&self, dl: &Downloader, url: &Url) -> Result<Option<String>> {
        if url.scheme() == "file" {
            let Ok(path) = url.to_file_path() else {
                return Ok(None);
            };
            return match crate::fetch::body::read_file_limited(
                &path,
                crate::fetch::body::TEXT_LIMIT,
            ) {
                Ok(t) => Ok(Some(t)),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
                    ) =>
                {
                    Ok(None)
                }
                Err(e) => Err(Error::io(&path, e)),
            };
        }
        let (policy, budget) = dl.retry();
        let what = SafeUrl::from(url).to_string();
        let text = retry(policy, budget, &what, classify, || async {
            let (final_url, resp) = dl.client().get(url, None, true).await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let resp = dl.client().check(&final_url, resp)?;
            let body = crate::fetch::body::read_limited(resp, crate::fetch::body::TEXT_LIMIT)
                .await
                .map_err(|e| match e {
                    crate::fetch::body::BodyError::Transfer(e) => {
                        crate::fetch::client::transfer(url, &e)
                    }
                    too_large => FetchError::Transfer {
                        url: SafeUrl::from(url).to_string(),
                        message: too_large.to_string(),
                    },
                })?;
            Ok(Some(String::from_utf8_lossy(&body).into_owned()))
        })
        .await?;
        Ok(text)
    }
}

/// `u` with a trailing `/` on its path.
fn dir_url(mut u: Url) -> Url {
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

/// The version in a `/content/<slug>/<version>/` URL.
fn version_in(url: &Url, slug: &str) -> Option<String> {
    let segs: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    let i = segs.iter().position(|s| *s == slug)?;
    let v = segs.get(i + 1)?;
    is_version(v).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_for_both_layouts() {
        let p = PhysioNet::new("https://physionet.org", Layout::PhysioNet).unwrap();
        assert_eq!(
            p.version_url("ptb-xl", "1.0.3").as_str(),
            "https://physionet.org/files/ptb-xl/1.0.3/"
        );
        let a = PhysioNet::new("https://physionet-open.s3.amazonaws.com/", Layout::Aws).unwrap();
        assert_eq!(
            a.version_url("mitdb", "1.0.0").as_str(),
            "https://physionet-open.s3.amazonaws.com/mitdb/1.0.0/"
        );
        let m = PhysioNet::new("http://127.0.0.1:8000/mirror", Layout::PhysioNet).unwrap();
        assert_eq!(
            m.project_url("x").as_str(),
            "http://127.0.0.1:8000/mirror/files/x/"
        );
        assert!(PhysioNet::new("ftp://x/", Layout::PhysioNet).is_err());
        assert!(
            PhysioNet::new("/tmp/mirror", Layout::PhysioNet)
                .unwrap()
                .is_local()
        );
    }

    #[test]
    fn version_from_redirect() {
        let u = Url::parse("https://physionet.org/content/ptb-xl/1.0.3/").unwrap();
        assert_eq!(version_in(&u, "ptb-xl").as_deref(), Some("1.0.3"));
        let u = Url::parse("https://physionet.org/content/ptb-xl/").unwrap();
        assert_eq!(version_in(&u, "ptb-xl"), None);
    }
}
