//! The convert operation: [`crate::convert::convert`] plus the choice of destination.
//! A local `out` is written in place; an object-store `out` (`s3://…`, `gs://…`,
//! `az://…`) is converted into a private staging directory and uploaded
//! ([`crate::objstore`]). With `incremental`, the previous output is read back from the
//! store first, so only records whose input files changed are decoded again (issue 12).

use crate::convert::{ConvertOptions, ConvertReport, Reporter};
use crate::error::{Error, Result};
use crate::objstore::{self, ObjectUrl, UploadOptions, UploadReport};

/// What to convert: the library's options; `out` may be an object-store URL.
pub type ConvertRequest = ConvertOptions;

/// The result of [`convert()`].
#[derive(Debug)]
pub struct ConvertOutcome {
    /// What the conversion wrote and skipped (file paths are the staging copies when
    /// the output went to a store).
    pub report: ConvertReport,
    /// For an object-store output: what was uploaded and which stale parts were deleted.
    pub uploaded: Option<UploadReport>,
}

impl ConvertOutcome {
    /// The output files as users address them: local paths, or `s3://…` URLs.
    pub fn files(&self) -> Vec<String> {
        match &self.uploaded {
            Some(u) => u.uploaded.clone(),
            None => self
                .report
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect(),
        }
    }
}

/// Converts `opts.input` to Parquet at `opts.out` (a path or an object-store URL).
///
/// ```no_run
/// use physio::convert::{ConvertOptions, NoReporter};
/// let mut opts = ConvertOptions::new("physionet/mitdb/1.0.0", "s3://bucket/mitdb/");
/// opts.incremental = true;
/// let outcome = physio::ops::convert(&opts, &NoReporter)?;
/// println!("{} decoded, {} reused", outcome.report.converted.len(), outcome.report.records_reused);
/// # Ok::<(), physio::Error>(())
/// ```
pub fn convert(opts: &ConvertRequest, reporter: &dyn Reporter) -> Result<ConvertOutcome> {
    let Some(target) = ObjectUrl::parse(&opts.out.to_string_lossy())? else {
        let report = crate::convert::convert(opts, reporter)?;
        return Ok(ConvertOutcome {
            report,
            uploaded: None,
        });
    };
    // The staging directory holds this run's files only: it cannot describe the whole
    // prefix, so object-store output gets no dataset card (`convert::card`).
    if opts.card {
        return Err(Error::Usage(
            "--card applies to a local output directory, not to object storage".to_string(),
        ));
    }
    objstore::preflight(&target)?;
    let staging = tempfile::Builder::new()
        .prefix("physio-convert-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let mut local = opts.clone();
    local.out = match target.is_single_file() {
        true => staging.path().join("out.parquet"),
        false => staging.path().to_path_buf(),
    };
    let shard_prefix = crate::convert::writer::shard_prefix(opts);
    if opts.incremental {
        // The previous output's provenance (every record's input digests) lives in its
        // Parquet footers: bring this shard's previous parts into staging, where the
        // incremental conversion reads them exactly as it would a local output.
        objstore::download_previous(&target, &local.out, shard_prefix)?;
    }
    let report = crate::convert::convert(&local, reporter)?;
    let upload = UploadOptions {
        shard_prefix,
        pause_before_complete: objstore::pause_from_env(),
    };
    let uploaded = objstore::upload_dir(staging.path(), &target, &upload)?;
    Ok(ConvertOutcome {
        report,
        uploaded: Some(uploaded),
    })
}
