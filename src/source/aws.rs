//! The AWS Open Data mirror of PhysioNet's open-access projects (the `physionet-open`
//! bucket, `https://physionet-open.s3.amazonaws.com/<slug>/<version>/<path>`: no
//! credentials, not throttled), as the byte source of `--source auto` (issue 13).
//!
//! The manifest and every checksum still come from physionet.org's SHA256SUMS.txt; the
//! mirror only serves bytes, each file verified against that checksum. A version the
//! bucket does not hold (credentialed projects are never there) is fetched from
//! physionet.org; a file the mirror lacks or serves wrong falls back to physionet.org
//! on its own (`fetch::download::Mirror`). Requests to the mirror carry no PhysioNet
//! credentials: those are bound to physionet.org's realm (`auth::Credentials`).

use url::Url;

use super::bucket::Bucket;
use super::physionet::{AWS_BASE, Layout, PhysioNet};
use crate::auth::SafeUrl;
use crate::fetch::Downloader;
use crate::fetch::download::Mirror;

/// The environment variable that points the mirror elsewhere (tests, a private copy).
pub const AWS_URL_ENV: &str = "PHYSIO_AWS_URL";

/// The mirror's bucket URL for a run: `PHYSIO_AWS_URL` when set; else the public
/// bucket, but only when the primary source is physionet.org itself (a `--base-url`
/// mirror or local copy is used as given).
pub fn bucket_url(primary_is_default: bool) -> Option<String> {
    match std::env::var(AWS_URL_ENV) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => primary_is_default.then(|| AWS_BASE.to_string()),
    }
}

/// The mirror for `slug@version` when the bucket at `bucket` holds that version:
/// `primary_root` (the version's root on physionet.org) mapped onto the bucket's. Any
/// failure to tell (the bucket unreachable, an unexpected answer) means no mirror: the
/// run then fetches from physionet.org as it always did.
pub async fn probe(
    dl: &Downloader,
    bucket: &str,
    slug: &str,
    version: &str,
    primary_root: &Url,
) -> Option<Mirror> {
    let src = match PhysioNet::new(bucket, Layout::Aws) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "unusable mirror URL; fetching from physionet.org only");
            return None;
        }
    };
    let versions = match Bucket::new(src.base()) {
        Ok(b) => b.subdirs(dl, slug).await,
        Err(e) => Err(e.into()),
    };
    let versions = match versions {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(error = %e, "cannot list the mirror; fetching from physionet.org");
            return None;
        }
    };
    if !versions.iter().any(|v| v == version) {
        tracing::info!(slug, version, mirror = %SafeUrl::from(src.base()), "the mirror does not hold this version");
        return None;
    }
    tracing::info!(slug, version, mirror = %SafeUrl::from(src.base()), "fetching bytes from the mirror, checksums from physionet.org");
    Some(Mirror::new(
        primary_root.clone(),
        src.version_url(slug, version),
    ))
}
