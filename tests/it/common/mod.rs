//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod kaggle_server;
pub mod server;

use std::path::PathBuf;

/// The repository root (where `Cargo.toml` is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled WFDB conformance corpus (`fixtures/conformance`).
pub fn conformance_dir() -> PathBuf {
    repo_root().join("fixtures/conformance")
}

/// Runs `cmd`, asserts that it succeeded (showing its stderr if not) and parses its
/// stdout as JSON (the `--json` summaries).
pub fn success_json(cmd: &mut assert_cmd::Command) -> serde_json::Value {
    let out = cmd.output().expect("run physio");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON summary on stdout")
}

/// A `physio` command ready to run, with no inherited physio/credential environment.
pub fn physio() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("physio").expect("physio binary");
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// The same as [`physio`], as a `std::process::Command`, for tests that run several
/// processes at once (`spawn`).
pub fn physio_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("physio"));
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Environment variables a developer's shell may set that would change what a test's
/// `physio` does: cleared for every test run.
const CLEARED_ENV: [&str; 12] = [
    "PHYSIO_BASE_URL",
    "PHYSIO_KAGGLE_URL",
    "PHYSIO_AWS_URL",
    "PHYSIO_LOG",
    "RUST_LOG",
    "PHYSIONET_USERNAME",
    "PHYSIONET_PASSWORD",
    "KAGGLE_API_TOKEN",
    "KAGGLE_USERNAME",
    "KAGGLE_KEY",
    "KAGGLE_CONFIG_DIR",
    "NETRC",
];

/// Python interpreter used for reader checks (`PHYSIO_PYTHON` or `python3`).
pub fn python() -> String {
    std::env::var("PHYSIO_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// True when `python3` can import every module in `modules`. When it cannot and
/// `PHYSIO_REQUIRE_PY=1`, panics so CI cannot silently skip reader checks.
pub fn have_python_modules(modules: &[&str]) -> bool {
    let code = modules
        .iter()
        .map(|m| format!("import {m}"))
        .collect::<Vec<_>>()
        .join("; ");
    let ok = std::process::Command::new(python())
        .args(["-c", &code])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("PHYSIO_REQUIRE_PY").as_deref() == Ok("1") {
            panic!("python modules {modules:?} are required (PHYSIO_REQUIRE_PY=1) but missing");
        }
        eprintln!("skipping: python modules {modules:?} not installed");
    }
    ok
}
