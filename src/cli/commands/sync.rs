//! `physio sync CONFIG.toml`: loads the configuration, runs [`crate::sync`] (which calls
//! the library's fetch and convert operations), prints one line per dataset on stderr
//! and writes the JSON run report (stdout or `--report FILE`); exits as fetch does.

use std::io::Write;

use anyhow::Context;
use serde_json::{Value, json};

use crate::cli::args::{GlobalArgs, SyncArgs};
use crate::env::EnvVars;
use crate::error::EXIT_OK;
use crate::fsutil::write_atomic;
use crate::shard::Shard;
use crate::sync::{ConvertStep, DatasetReport, SyncConfig, SyncOptions};

/// Runs `physio sync`.
pub fn run(args: &SyncArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    let config = SyncConfig::load(&args.config).map_err(|e| {
        // A broken config is a usage error: nothing was attempted.
        anyhow::Error::new(crate::Error::Usage(e.to_string()))
    })?;
    let shard = args
        .shard
        .as_deref()
        .map(str::parse::<Shard>)
        .transpose()
        .map_err(|e| crate::Error::Usage(format!("--shard: {e}")))?;
    let opts = SyncOptions {
        upgrade: args.upgrade,
        shard,
        base_url: std::env::var(EnvVars::PHYSIO_BASE_URL)
            .ok()
            .filter(|s| !s.is_empty()),
    };
    let rt = crate::cli::runtime()?;
    let started = std::time::Instant::now();
    let mut datasets = Vec::new();
    let mut code = EXIT_OK;
    for entry in &config.datasets {
        let d = rt.block_on(crate::sync::sync_dataset(entry, &opts));
        if !global.quiet {
            let _ = writeln!(std::io::stderr(), "{}", one_line(&d));
        }
        code = code.max(d.exit_code());
        datasets.push(dataset_json(&d));
    }
    let report = json!({
        "config": args.config.display().to_string(),
        "datasets": datasets,
        "seconds": started.elapsed().as_secs_f64(),
        "exit_code": code,
    });
    let text = serde_json::to_string_pretty(&report)? + "\n";
    match &args.report {
        Some(path) => write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing the report to {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(code)
}

/// An error and its causes on one line, each text once (as the CLI prints errors).
fn chain(e: &crate::Error) -> String {
    crate::cli::error_chain_message(e)
}

/// One dataset's entry in the run report (keys are part of the user contract).
fn dataset_json(d: &DatasetReport) -> Value {
    let mut result = json!({ "name": d.name });
    if let Some(v) = &d.upgrade_available {
        result["upgrade_available"] = json!(v);
    }
    if let Some(v) = &d.upgraded_from {
        result["upgraded_from"] = json!(v);
    }
    match &d.fetch {
        Err(e) => {
            result["fetch"] = json!({"status": "failed", "error": chain(e)});
        }
        Ok(f) => {
            let summary = super::fetch::fetch_json(f, d.fetch_seconds);
            result["version"] = summary["version"].clone();
            result["fetch"] = summary;
        }
    }
    if let Some(step) = &d.convert {
        result["convert"] = match step {
            ConvertStep::Skipped(why) => json!({"status": "skipped", "reason": why.as_str()}),
            ConvertStep::UpToDate { out } => {
                json!({"status": "up_to_date", "out": out.display().to_string()})
            }
            ConvertStep::Converted { out, outcome } => {
                let mut summary = super::convert::convert_json(outcome);
                summary["status"] = json!(match super::convert::exit_code(outcome) {
                    EXIT_OK => "converted",
                    _ => "partial",
                });
                summary["out"] = json!(out.display().to_string());
                summary
            }
            ConvertStep::Failed { error, .. } => json!({
                "status": "failed", "error": chain(error), "exit_code": step.exit_code(),
            }),
        };
    }
    result["exit_code"] = json!(d.exit_code());
    result
}

/// A human summary line for stderr.
fn one_line(d: &DatasetReport) -> String {
    let version = d.version.as_deref().unwrap_or("?");
    let mut line = match &d.fetch {
        Err(e) => format!("{}: fetch failed: {}", d.name, chain(e)),
        Ok(f) => {
            let (fetched, skipped) = match f {
                crate::ops::FetchOutcome::PhysioNet(p) => {
                    (p.report.done.len(), p.report.skipped.len())
                }
                crate::ops::FetchOutcome::Kaggle(k) => (k.fetched, k.skipped),
            };
            format!(
                "{}@{version}: fetched {fetched}, already verified {skipped}, failed {}",
                d.name,
                f.failed()
            )
        }
    };
    match &d.convert {
        Some(ConvertStep::Skipped(_)) => line.push_str("; convert skipped"),
        Some(ConvertStep::UpToDate { .. }) => line.push_str("; convert up_to_date"),
        Some(ConvertStep::Failed { .. }) => line.push_str("; convert failed"),
        Some(ConvertStep::Converted { outcome, .. }) => {
            let status = match super::convert::exit_code(outcome) {
                EXIT_OK => "converted",
                _ => "partial",
            };
            line.push_str(&format!(
                "; convert {status} ({} records decoded, {} reused)",
                outcome.report.converted.len(),
                outcome.report.records_reused
            ));
        }
        None => {}
    }
    if let Some(v) = &d.upgrade_available {
        line.push_str(&format!("; newer version {v} available (--upgrade)"));
    }
    line
}
