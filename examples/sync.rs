//! Runs a `physio sync` from Rust: fetch a dataset and convert it to Parquet with the
//! library's operations, then read the typed report.
//!
//! Offline by default: the dataset comes from the fixture mirror in this repository
//! (`fixtures/mirror`, served as a `file://` URL), into a temporary directory.
//!
//! ```text
//! cargo run --example sync [-- OUT_DIR]
//! ```

#![allow(clippy::print_stdout)] // an example prints its results

use std::path::PathBuf;

use physio::ops::FetchOutcome;
use physio::sync::{ConvertStep, SyncConfig, SyncOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mirror = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/mirror");
    let tmp = tempfile::tempdir()?;
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());

    // The same TOML a nightly job would use; `SyncConfig` can also be built in code.
    let config = SyncConfig::parse(
        &format!(
            "[[dataset]]\nname = \"physio-demo\"\nout = {:?}\n\n\
             [dataset.convert]\nout = {:?}\n",
            out.join("physionet"),
            out.join("parquet/demo.parquet"),
        ),
        std::path::Path::new("sync.toml"),
    )?;
    let opts = SyncOptions {
        base_url: Some(
            url::Url::from_directory_path(&mirror)
                .map_err(|_| "bad path")?
                .to_string(),
        ),
        ..SyncOptions::default()
    };

    let rt = tokio::runtime::Runtime::new()?;
    let report = rt.block_on(physio::sync::run(&config, &opts));
    for d in &report.datasets {
        match &d.fetch {
            Ok(FetchOutcome::PhysioNet(f)) => println!(
                "{}@{}: {} fetched, {} already verified, {} failed -> {}",
                f.dataset,
                f.version,
                f.report.done.len(),
                f.report.skipped.len(),
                f.report.failed.len(),
                f.dest
            ),
            Ok(FetchOutcome::Kaggle(k)) => println!("{}@{}: {:?}", k.dataset, k.version, k.mode),
            Err(e) => println!("{}: fetch failed: {e}", d.name),
        }
        match &d.convert {
            Some(ConvertStep::Converted { out, outcome }) => println!(
                "  converted {} records ({} decoded, {} reused) into {}",
                outcome.report.records_written,
                outcome.report.converted.len(),
                outcome.report.records_reused,
                out.display()
            ),
            Some(other) => println!("  convert: {other:?}"),
            None => {}
        }
    }
    let code = report.exit_code();
    println!("exit code {code}");
    drop(tmp);
    std::process::exit(i32::from(code));
}
