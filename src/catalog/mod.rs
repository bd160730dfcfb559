//! A dataset version's records, planned from their headers alone (issue 15): which
//! records there are (RECORDS files, as `convert`'s discovery reads them), and for each
//! its sampling rate, signals, length, start time and files, without downloading any
//! signal data.
//!
//! Headers (and the RECORDS files) are fetched with the ordinary engine into the mirror
//! layout (`DIR/<slug>/<version>/...`), verified against SHA256SUMS.txt like any other
//! file, so a later `fetch` or `convert` of the same mirror finds them verified and does
//! not download them again. Multi-segment records bring their segment and layout headers.
//! [`filter`] is the `--where` language over [`RecordInfo`].
//!
//! EDF records (a `.edf` file listed in RECORDS, or without RECORDS every `.edf` of the
//! manifest; named with their extension, as `convert` names them) are planned from
//! their header bytes alone: `bytes=0-255`, then the rest of the header, fetched with
//! Range requests and kept in memory, never written to the mirror (they are not the
//! verified file). Their `files` are the `.edf` file alone.

mod edf;
pub mod filter;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::convert::discover::{self, RecordFilter};
use crate::error::{Error, Result};
use crate::fetch::{Downloader, FetchOptions, FetchPlan, FetchReport, Reporter};
use crate::fetch::{Entry, Manifest};
use crate::shard::Shard;
use crate::wfdb::header::{Header, read_header};

pub use filter::{Filter, WhereError};

/// One record as its header(s) describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordInfo {
    /// Record name relative to the version directory, `/`-separated, no extension.
    pub name: String,
    /// Frame frequency in Hz.
    pub fs: f64,
    /// Frames, when the header gives them.
    pub sig_len: Option<u64>,
    /// Signal names (multi-segment: from the layout header or first segment).
    pub sig_name: Vec<String>,
    /// Physical units, one per signal.
    pub units: Vec<String>,
    /// Header comment lines.
    pub comments: Vec<String>,
    /// Date of frame 0 (ISO 8601), if given.
    pub base_date: Option<String>,
    /// Time of day of frame 0 (ISO 8601), if given.
    pub base_time: Option<String>,
    /// Segment names of a multi-segment record (`~` gaps left out); empty otherwise.
    pub segments: Vec<String>,
    /// Signal files (manifest paths) with their sizes when known.
    pub files: Vec<(String, Option<u64>)>,
    /// Header files (the record's, then its segments'), with sizes when known.
    pub headers: Vec<(String, Option<u64>)>,
    /// Why the record could not be planned (missing or bad header), if it could not.
    pub error: Option<String>,
}

impl RecordInfo {
    fn failed(name: &str, error: String) -> RecordInfo {
        RecordInfo {
            name: name.to_string(),
            fs: f64::NAN,
            sig_len: None,
            sig_name: Vec::new(),
            units: Vec::new(),
            comments: Vec::new(),
            base_date: None,
            base_time: None,
            segments: Vec::new(),
            files: Vec::new(),
            headers: Vec::new(),
            error: Some(error),
        }
    }

    /// Length in seconds (`sig_len / fs`), when the header gives a length.
    pub fn duration(&self) -> Option<f64> {
        self.sig_len
            .filter(|_| self.fs > 0.0)
            .map(|n| n as f64 / self.fs)
    }

    /// Bytes of the record's header and signal files, when every size is known.
    pub fn size(&self) -> Option<f64> {
        self.files
            .iter()
            .chain(&self.headers)
            .map(|(_, s)| s.map(|s| s as f64))
            .sum()
    }

    /// Every file of the record (headers first, then signal files).
    pub fn all_files(&self) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .chain(&self.files)
            .map(|(p, _)| p.as_str())
    }
}

/// A dataset version on a server, as resolved by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Remote<'a> {
    /// The downloader (client, retries, concurrency).
    pub downloader: &'a Downloader,
    /// URL of the version's root, ending in `/`.
    pub base: &'a url::Url,
    /// The version's manifest.
    pub manifest: &'a Manifest,
    /// The local version directory (`DIR/<slug>/<version>`).
    pub dir: &'a Path,
}

impl Remote<'_> {
    /// Fetches (or finds verified) the manifest files at `paths` into [`Remote::dir`],
    /// under the lock `opts` names ([`FetchOptions::shared`] for files every shard
    /// reads, [`FetchOptions::for_shard`] for a shard's own). Paths not in the
    /// manifest are ignored; failures are in the report.
    pub async fn fetch_paths(
        &self,
        paths: &[String],
        opts: &FetchOptions,
        reporter: &dyn Reporter,
    ) -> Result<FetchReport> {
        let by_path: HashMap<&str, &Entry> = self
            .manifest
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e))
            .collect();
        let entries: Vec<Entry> = paths
            .iter()
            .filter_map(|p| by_path.get(p.as_str()).map(|e| (*e).clone()))
            .collect();
        let plan = FetchPlan {
            dir: self.dir.to_path_buf(),
            base: self.base.clone(),
            entries,
            upstream: self
                .manifest
                .entries
                .iter()
                .map(|e| e.path.clone())
                .collect(),
            sums_text: self.manifest.sums_text.clone(),
        };
        crate::fetch::fetch(&plan, self.downloader, opts, reporter).await
    }

    fn size_of(&self, path: &str) -> Option<u64> {
        self.manifest
            .entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .and_then(|i| self.manifest.entries[i].size)
    }

    fn has(&self, path: &str) -> bool {
        self.manifest
            .entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .is_ok()
    }
}

/// Which records to plan.
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    /// Record-name globs (`convert --records`); empty = all.
    pub records: Vec<String>,
    /// Only this shard of the records.
    pub shard: Shard,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        CatalogOptions {
            records: Vec::new(),
            shard: Shard::ALL,
        }
    }
}

/// The planned records of a version, plus what planning transferred.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Records in name order; those that could not be planned carry an `error`.
    pub records: Vec<RecordInfo>,
    /// Header and RECORDS files that could not be fetched, with why.
    pub failed: Vec<(String, Error)>,
    /// Bytes downloaded while planning.
    pub bytes: u64,
    /// Files downloaded while planning (the rest were already verified in the mirror).
    pub fetched: usize,
}

impl Catalog {
    /// The records `filter` selects (all, without one), in name order; records that
    /// could not be planned are left out ([`Catalog::failures`] names them).
    pub fn selected<'a>(
        &'a self,
        filter: Option<&'a Filter>,
    ) -> impl Iterator<Item = &'a RecordInfo> + 'a {
        self.records
            .iter()
            .filter(move |r| r.error.is_none() && filter.is_none_or(|f| f.matches(r)))
    }

    /// Header (or RECORDS) files that could not be fetched, then records that could not
    /// be planned: `(path, why)` and `(record <name>, why)`.
    pub fn failures(&self) -> Vec<(String, String)> {
        self.failed
            .iter()
            .map(|(p, e)| (p.clone(), e.to_string()))
            .chain(self.records.iter().filter_map(|r| {
                r.error
                    .as_ref()
                    .map(|e| (format!("record {}", r.name), e.clone()))
            }))
            .collect()
    }
}

/// Plans the records of `remote`: fetches the RECORDS files (or, when the version has no
/// top-level RECORDS, every `*.hea`), lists the records as `convert` would (plus, without
/// RECORDS, every `*.edf` of the manifest), fetches the headers of those `opts` selects
/// (and their segment headers), and parses them. EDF records are described from their
/// header bytes, fetched with Range requests into memory (see the module docs).
pub async fn plan(
    remote: &Remote<'_>,
    opts: &CatalogOptions,
    reporter: &dyn Reporter,
) -> Result<Catalog> {
    let mut catalog = Catalog::default();
    let take = |report: FetchReport, catalog: &mut Catalog| {
        catalog.bytes += report.bytes;
        catalog.fetched += report.done.len();
        catalog.failed.extend(report.failed);
    };
    let manifest = remote.manifest;
    let index_files: Vec<String> = if remote.has("RECORDS") {
        manifest
            .entries
            .iter()
            .filter(|e| e.path == "RECORDS" || e.path.ends_with("/RECORDS"))
            .map(|e| e.path.clone())
            .collect()
    } else {
        manifest
            .entries
            .iter()
            .filter(|e| e.path.ends_with(".hea"))
            .map(|e| e.path.clone())
            .collect()
    };
    let report = remote
        .fetch_paths(&index_files, &FetchOptions::shared(), reporter)
        .await?;
    take(report, &mut catalog);
    let mut all_names: BTreeSet<String> = BTreeSet::new();
    if remote.dir.is_dir() {
        let found = discover::discover(remote.dir).map_err(Error::Convert)?;
        all_names.extend(found.records.into_iter().map(|r| r.name));
    }
    if !remote.has("RECORDS") {
        // EDF files are records of their own; their headers are not separate files.
        all_names.extend(
            manifest
                .entries
                .iter()
                .filter(|e| crate::edf::is_edf_path(Path::new(&e.path)))
                .map(|e| e.path.clone()),
        );
    }
    let filter = RecordFilter::new(&opts.records, opts.shard).map_err(Error::Convert)?;
    let (edf_names, names): (Vec<String>, Vec<String>) = all_names
        .into_iter()
        .filter(|n| filter.matches(n))
        .partition(|n| crate::edf::is_edf_path(Path::new(n)));
    let mut edf_records = plan_edf(remote, &edf_names, &mut catalog).await;

    let headers: Vec<String> = names
        .iter()
        .map(|n| format!("{n}.hea"))
        .filter(|p| remote.has(p))
        .collect();
    let report = remote
        .fetch_paths(&headers, &FetchOptions::shared(), reporter)
        .await?;
    take(report, &mut catalog);
    let failed_paths: HashMap<String, String> = catalog
        .failed
        .iter()
        .map(|(p, e)| (p.clone(), e.to_string()))
        .collect();

    // Top-level headers; multi-segment records name further headers to fetch.
    let mut tops: Vec<(String, std::result::Result<Header, String>)> = Vec::new();
    let mut segment_headers = Vec::new();
    for name in &names {
        let rel = format!("{name}.hea");
        let parsed = if !remote.has(&rel) {
            Err(format!("{rel} is not in the version's file list"))
        } else if let Some(e) = failed_paths.get(&rel) {
            Err(e.clone())
        } else {
            read_header(&remote.dir.join(&rel)).map_err(|e| e.to_string())
        };
        if let Ok(h) = &parsed
            && let Some(segs) = &h.segments
        {
            for s in segs.iter().filter(|s| !s.is_gap()) {
                segment_headers.push(format!("{}{}.hea", dir_of(name), s.name));
            }
        }
        tops.push((name.clone(), parsed));
    }
    if !segment_headers.is_empty() {
        let report = remote
            .fetch_paths(&segment_headers, &FetchOptions::shared(), reporter)
            .await?;
        take(report, &mut catalog);
    }
    for (name, parsed) in tops {
        let info = match parsed {
            Ok(h) => describe(remote, &name, &h),
            Err(e) => RecordInfo::failed(&name, e),
        };
        catalog.records.push(info);
    }
    if !edf_records.is_empty() {
        catalog.records.append(&mut edf_records);
        catalog.records.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(catalog)
}

/// Plans the EDF records `names` from their header bytes ([`edf::describe`]), a few at
/// a time; records missing from the manifest fail.
async fn plan_edf(remote: &Remote<'_>, names: &[String], catalog: &mut Catalog) -> Vec<RecordInfo> {
    use futures_util::StreamExt;
    let results: Vec<(RecordInfo, u64)> = futures_util::stream::iter(names)
        .map(|name| async move {
            if remote.has(name) {
                edf::describe(remote, name).await
            } else {
                let why = format!("{name} is not in the version's file list");
                (RecordInfo::failed(name, why), 0)
            }
        })
        .buffered(remote.downloader.jobs().max(1))
        .collect()
        .await;
    results
        .into_iter()
        .map(|(info, bytes)| {
            catalog.bytes += bytes;
            info
        })
        .collect()
}

/// `dir/` of a record name (`records100/00000/`), or `""`.
fn dir_of(name: &str) -> &str {
    match name.rfind('/') {
        Some(i) => &name[..=i],
        None => "",
    }
}

/// The [`RecordInfo`] of a record whose top-level header is `h` (segment headers, if
/// any, are read from the mirror).
fn describe(remote: &Remote<'_>, name: &str, h: &Header) -> RecordInfo {
    let dir = dir_of(name);
    let top_rel = format!("{name}.hea");
    let mut info = RecordInfo {
        name: name.to_string(),
        fs: h.fs,
        sig_len: h.sig_len,
        sig_name: Vec::new(),
        units: Vec::new(),
        comments: h.comments.clone(),
        base_date: h.base_date.map(|d| d.to_string()),
        base_time: h.base_time.map(|t| t.to_string()),
        segments: Vec::new(),
        files: Vec::new(),
        headers: vec![(top_rel.clone(), remote.size_of(&top_rel))],
        error: None,
    };
    let mut singles: Vec<Header> = Vec::new();
    match &h.segments {
        None => singles.push(h.clone()),
        Some(segs) => {
            for s in segs.iter().filter(|s| !s.is_gap()) {
                let rel = format!("{dir}{}.hea", s.name);
                info.segments.push(s.name.clone());
                info.headers.push((rel.clone(), remote.size_of(&rel)));
                match read_header(&remote.dir.join(&rel)) {
                    Ok(sh) => singles.push(sh),
                    Err(e) => {
                        info.error = Some(format!("segment {}: {e}", s.name));
                        return info;
                    }
                }
            }
        }
    }
    // Signals: a single-segment record's own, else the layout header's (first segment
    // of zero length) or the first data segment's.
    if let Some(first) = singles.first() {
        info.sig_name = first
            .signals
            .iter()
            .map(|s| s.description.clone())
            .collect();
        info.units = first.signals.iter().map(|s| s.units.clone()).collect();
    }
    let mut files: Vec<String> = singles
        .iter()
        .flat_map(|sh| &sh.signals)
        .filter(|s| s.file_name != "~")
        .map(|s| format!("{dir}{}", s.file_name))
        .collect();
    files.sort();
    files.dedup();
    info.files = files
        .into_iter()
        .map(|f| {
            let size = remote.size_of(&f);
            (f, size)
        })
        .collect();
    info
}

/// Where a version lives in a mirror directory: `mirror/<slug>/<version>`.
pub fn version_dir(mirror: &Path, slug: &str, version: &str) -> PathBuf {
    mirror.join(slug).join(version)
}
