//! `physio sync CONFIG.toml`: for each `[[dataset]]`, fetch (idempotent: only what changed
//! upstream is transferred), then convert when the fetch changed the local copy or the
//! Parquet output is missing; write one JSON run report and exit as fetch does.
//!
//! The convert step runs with `--incremental` (issue 7): only records whose input files
//! changed are decoded, the others are copied from the previous Parquet output, and the
//! report's `records_converted` / `converted_records` / `records_reused` say which.
//!
//! Each step is the very command a user would type: the config's keys become `fetch` and
//! `convert` flags, parsed by the same clap definitions, so sync cannot drift from the
//! commands it automates.
//!
//! Versions: a dataset without a pin follows the newest version, but once a version is
//! on disk a nightly run keeps to it and reports a newer upstream version
//! (`upgrade_available`); `--upgrade` moves to it. Silently switching a training set to
//! new data overnight is the one thing a reproducible pipeline must not do.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use serde_json::{Value, json};

use crate::cli::args::{Cli, Command, ConvertArgs, FetchArgs, GlobalArgs, SyncArgs};
use crate::error::{EXIT_OK, EXIT_USAGE};
use crate::fsutil::write_atomic;
use crate::shard::Shard;
use crate::source::DatasetSpec;
use crate::sync::{ConvertEntry, DatasetEntry, SyncConfig};

/// Runs `physio sync`.
pub fn run(args: &SyncArgs, global: &GlobalArgs) -> anyhow::Result<u8> {
    let config = SyncConfig::load(&args.config).map_err(|e| {
        // A broken config is a usage error: nothing was attempted.
        anyhow::Error::new(crate::Error::Usage(e.to_string()))
    })?;
    if let Some(s) = &args.shard {
        s.parse::<Shard>()
            .map_err(|e| crate::Error::Usage(format!("--shard: {e}")))?;
    }
    let quiet = GlobalArgs {
        quiet: true,
        ..global.clone()
    };
    let started = std::time::Instant::now();
    let mut datasets = Vec::new();
    let mut code = EXIT_OK;
    for entry in &config.datasets {
        let (result, entry_code) = sync_dataset(entry, args, &quiet);
        if !global.quiet {
            let _ = writeln!(std::io::stderr(), "{}", one_line(entry, &result));
        }
        code = worst(code, entry_code);
        datasets.push(result);
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

/// The exit code of a run from those of its datasets: the most serious wins
/// (integrity 4 > auth 3 > usage 2 > partial 1 > ok 0).
fn worst(a: u8, b: u8) -> u8 {
    a.max(b)
}

/// Syncs one dataset; returns its report entry and exit code. Never returns early with
/// an error: a failing dataset is reported and the next one still runs.
fn sync_dataset(entry: &DatasetEntry, args: &SyncArgs, global: &GlobalArgs) -> (Value, u8) {
    let mut result = json!({ "name": entry.name });
    let out = entry
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("physionet"));

    // Which version: the pin, else what is on disk (unless --upgrade), else the newest.
    let spec = match version_to_fetch(entry, &out, args, global, &mut result) {
        Ok(spec) => spec,
        Err(e) => return failed(result, "fetch", &e),
    };
    let mut argv = vec!["fetch".to_string(), spec, "--out".into(), path_arg(&out)];
    for g in &entry.include {
        argv.extend(["--include".into(), g.clone()]);
    }
    for g in &entry.exclude {
        argv.extend(["--exclude".into(), g.clone()]);
    }
    if let Some(s) = &args.shard {
        argv.extend(["--shard".into(), s.clone()]);
    }
    let mut summary = Value::Null;
    let fetch_code =
        parse_fetch(&argv).and_then(|fa| super::fetch::execute(&fa, global, Some(&mut summary)));
    let fetch_code = match fetch_code {
        Ok(c) => c,
        Err(e) => return failed(result, "fetch", &e),
    };
    result["version"] = summary["version"].clone();
    result["fetch"] = summary.clone();
    let mut code = fetch_code;

    if let Some(conv) = &entry.convert {
        let dir = summary["dir"].as_str().map(PathBuf::from);
        let changed = summary["fetched"].as_u64().unwrap_or(0) > 0
            || summary["deleted"].as_array().is_some_and(|d| !d.is_empty());
        match dir {
            None => {
                result["convert"] = json!({"status": "skipped", "reason": "fetch failed"});
            }
            Some(_) if fetch_code != EXIT_OK => {
                result["convert"] = json!({"status": "skipped", "reason": "fetch had failures"});
            }
            Some(_) if !changed && conv.out.exists() => {
                result["convert"] = json!({
                    "status": "up_to_date", "out": conv.out.display().to_string(),
                });
            }
            Some(dir) => {
                let (conv_result, conv_code) = run_convert(conv, &dir, args, global);
                result["convert"] = conv_result;
                code = worst(code, conv_code);
            }
        }
    }
    result["exit_code"] = json!(code);
    (result, code)
}

/// The dataset spec to fetch, recording `upgrade_available` in `result` when a newer
/// upstream version exists than the one kept on disk.
fn version_to_fetch(
    entry: &DatasetEntry,
    out: &Path,
    args: &SyncArgs,
    global: &GlobalArgs,
    result: &mut Value,
) -> anyhow::Result<String> {
    let spec = DatasetSpec::parse(&entry.name).map_err(crate::Error::from)?;
    let (slug, pinned) = match &spec {
        DatasetSpec::PhysioNet { slug, version } => (slug.clone(), version.clone()),
        // Kaggle versions are numbered by Kaggle; the fetch keeps its own layout.
        DatasetSpec::Kaggle { .. } => return Ok(entry.name.clone()),
    };
    if let Some(v) = entry.version.clone().or(pinned) {
        return Ok(format!("{slug}@{v}"));
    }
    let local = local_versions(&out.join(&slug));
    let Some(current) = local.last() else {
        return Ok(slug);
    };
    // What is the newest upstream version? A dry run resolves it without downloading.
    let mut dry = Value::Null;
    let argv = vec![
        "fetch".to_string(),
        slug.clone(),
        "--out".into(),
        path_arg(out),
        "--dry-run".into(),
    ];
    super::fetch::execute(&parse_fetch(&argv)?, global, Some(&mut dry))?;
    let latest = dry["version"].as_str().unwrap_or(current).to_string();
    if latest != *current {
        result["upgrade_available"] = json!(latest);
        if args.upgrade {
            result["upgraded_from"] = json!(current);
            return Ok(format!("{slug}@{latest}"));
        }
    }
    Ok(format!("{slug}@{current}"))
}

/// Version directories already under `DIR/<slug>/`, oldest first (numeric-aware order,
/// so `1.10.0` sorts after `1.9.0`).
fn local_versions(slug_dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(slug_dir) else {
        return Vec::new();
    };
    let mut versions: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    versions.sort_by_key(|v| version_key(v));
    versions
}

fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split(['.', '-'])
        .map(|p| (p.parse::<u64>().unwrap_or(0), p.to_string()))
        .collect()
}

/// Runs the `[dataset.convert]` step on the fetched version directory `dir`.
fn run_convert(
    conv: &ConvertEntry,
    dir: &Path,
    args: &SyncArgs,
    global: &GlobalArgs,
) -> (Value, u8) {
    let mut argv = vec![
        "convert".to_string(),
        path_arg(dir),
        "--to".into(),
        conv.to.clone(),
        "--out".into(),
        path_arg(&conv.out),
        // Only records whose input files changed are decoded again (issue 7); the
        // output is the same bytes as a full conversion.
        "--incremental".into(),
    ];
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            argv.extend([format!("--{name}"), v]);
        }
    };
    flag("layout", conv.layout.clone());
    flag("dtype", conv.dtype.clone());
    flag("preset", conv.preset.clone());
    flag("window", conv.window.map(|w| w.to_string()));
    flag("stride", conv.stride.map(|s| s.to_string()));
    flag("metadata", conv.metadata.as_deref().map(path_arg));
    flag("key", conv.key.clone());
    flag("annotations", conv.annotations.clone());
    flag("shard", args.shard.clone());
    if !conv.signals.is_empty() {
        argv.extend(["--signals".into(), conv.signals.join(",")]);
    }
    for g in &conv.records {
        argv.extend(["--records".into(), g.clone()]);
    }
    let mut summary = Value::Null;
    let outcome = parse_convert(&argv)
        .and_then(|ca| super::convert::execute(&ca, global, Some(&mut summary)));
    match outcome {
        Ok(code) => {
            summary["status"] = json!(if code == EXIT_OK {
                "converted"
            } else {
                "partial"
            });
            summary["out"] = json!(conv.out.display().to_string());
            (summary, code)
        }
        Err(e) => {
            let code = super::super::exit_code_of(&e);
            (
                json!({"status": "failed", "error": super::super::error_message(&e), "exit_code": code}),
                code,
            )
        }
    }
}

/// Parses `argv` (without the program name) with the real command-line definitions.
fn parse(argv: &[String]) -> anyhow::Result<Command> {
    let cli =
        Cli::try_parse_from(std::iter::once("physio".to_string()).chain(argv.iter().cloned()))
            .map_err(|e| crate::Error::Usage(format!("invalid sync entry: {}", e.render())))?;
    Ok(cli.command)
}

fn parse_fetch(argv: &[String]) -> anyhow::Result<FetchArgs> {
    match parse(argv)? {
        Command::Fetch(a) => Ok(a),
        _ => Err(crate::Error::Usage("sync: expected a fetch command line".into()).into()),
    }
}

fn parse_convert(argv: &[String]) -> anyhow::Result<ConvertArgs> {
    match parse(argv)? {
        Command::Convert(a) => Ok(a),
        _ => Err(crate::Error::Usage("sync: expected a convert command line".into()).into()),
    }
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

/// Records a failed step in `result` and returns it with its exit code.
fn failed(mut result: Value, step: &str, e: &anyhow::Error) -> (Value, u8) {
    let code = super::super::exit_code_of(e);
    let code = if code == EXIT_OK { EXIT_USAGE } else { code };
    result[step] = json!({"status": "failed", "error": super::super::error_message(e)});
    result["exit_code"] = json!(code);
    (result, code)
}

/// A human summary line for stderr.
fn one_line(entry: &DatasetEntry, r: &Value) -> String {
    let fetch = &r["fetch"];
    let mut line = format!(
        "{}@{}: fetched {}, already verified {}, failed {}",
        entry.name,
        r["version"].as_str().unwrap_or("?"),
        fetch["fetched"].as_u64().unwrap_or(0),
        fetch["skipped"].as_u64().unwrap_or(0),
        fetch["failed"].as_u64().unwrap_or(0),
    );
    if let Some(status) = r["fetch"]["status"].as_str() {
        line = format!(
            "{}: fetch {status}: {}",
            entry.name,
            fetch["error"].as_str().unwrap_or("")
        );
    }
    if let Some(status) = r["convert"]["status"].as_str() {
        line.push_str(&format!("; convert {status}"));
        if let (Some(decoded), Some(reused)) = (
            r["convert"]["records_converted"].as_u64(),
            r["convert"]["records_reused"].as_u64(),
        ) {
            line.push_str(&format!(" ({decoded} records decoded, {reused} reused)"));
        }
    }
    if let Some(v) = r["upgrade_available"].as_str() {
        line.push_str(&format!("; newer version {v} available (--upgrade)"));
    }
    line
}
