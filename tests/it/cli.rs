//! Command-line surface: help, version, usage errors and their exit codes.

use crate::common::physio;

#[test]
fn help_lists_every_subcommand() {
    let out = physio()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    for sub in ["fetch", "verify", "ls", "info", "convert", "sync", "plot"] {
        assert!(text.contains(sub), "--help lacks {sub}:\n{text}");
    }
}

#[test]
fn version_prints_crate_version() {
    physio()
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("physio {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn unknown_flag_is_usage_error() {
    physio().args(["info", "--no-such-flag"]).assert().code(2);
}

#[test]
fn missing_argument_is_usage_error() {
    physio().arg("convert").assert().code(2);
}
