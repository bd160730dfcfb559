//! The ML-side loaders of issue 16, run against the real libraries and compared with
//! wfdb-python: PyTorch datasets (`scripts/physio_torch.py`), Hugging Face `datasets`,
//! polars and DuckDB (`scripts/check_loaders.py`); and the dataset card that makes a
//! convert directory loadable by name (`src/convert/card.rs`).

use std::path::{Path, PathBuf};

use physio::wfdb::{SignalFormat, WriteSignal, write_record};

use crate::common::{conformance_dir, have_python_modules, physio, python, repo_root};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `n` records of 3 signals x 2,000 frames at 250 Hz (format 16), a few invalid
/// samples in each, and a RECORDS file.
fn corpus(root: &Path, n: usize) {
    std::fs::create_dir_all(root).unwrap();
    let mut records = String::new();
    for r in 0..n {
        let name = format!("rec{r:02}");
        let mut rng = fastrand::Rng::with_seed(r as u64);
        let signals: Vec<WriteSignal> = ["I", "II", "V1"]
            .iter()
            .enumerate()
            .map(|(j, sig)| {
                let mut digital: Vec<i32> = (0..2000)
                    .map(|i| ((i as f64 / 25.0 + j as f64).sin() * 400.0) as i32 + rng.i32(-9..=9))
                    .collect();
                digital[100 + 37 * r] = -32768; // invalid: NaN
                WriteSignal {
                    name: sig.to_string(),
                    units: "mV".to_string(),
                    format: SignalFormat::from_code(16).unwrap(),
                    adc_gain: 200.0 + j as f64,
                    baseline: j as i64 * 3,
                    adc_res: 16,
                    samps_per_frame: 1,
                    file_name: format!("{name}.dat"),
                    digital,
                }
            })
            .collect();
        write_record(root, &name, 250.0, 2000, &signals).unwrap();
        records.push_str(&name);
        records.push('\n');
    }
    std::fs::write(root.join("RECORDS"), records).unwrap();
}

fn convert(input: &Path, out: &Path, extra: &[&str]) {
    physio()
        .args(["convert", s(input), "--out", s(out)])
        .args(extra)
        .assert()
        .success();
}

/// Runs `python SCRIPT args...`, asserts success and returns its last stdout line as JSON.
fn run_script(script: &str, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(python())
        .arg(repo_root().join("scripts").join(script))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn torch_datasets_yield_batches_equal_to_wfdb_python() {
    if !have_python_modules(&["torch", "wfdb", "pyarrow"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("wfdb");
    corpus(&root, 7);
    let (rec, win) = (dir.path().join("rec"), dir.path().join("win"));
    // Small row groups so there are several to shuffle and split between workers.
    convert(&root, &rec, &["--row-group-rows", "2"]);
    convert(
        &root,
        &win,
        &[
            "--layout",
            "windows",
            "--window",
            "2",
            "--stride",
            "1.5",
            "--row-group-rows",
            "5",
        ],
    );
    let r = run_script(
        "physio_torch.py",
        &[
            s(&rec),
            "--check",
            s(&root),
            "--workers",
            "2",
            "--batch",
            "3",
        ],
    );
    assert_eq!(r["map"]["rows"], 7, "{r}");
    assert_eq!(r["iterable"]["rows"], 7, "{r}");
    assert_eq!(r["map"]["shapes"], serde_json::json!([[3, 2000]]));
    assert_eq!(r["epochs_differ"], true);
    let w = run_script(
        "physio_torch.py",
        &[
            s(&win),
            "--check",
            s(&root),
            "--workers",
            "2",
            "--batch",
            "4",
        ],
    );
    // 8 s records, 2 s windows every 1.5 s: starts 0, 1.5, ..., 6 -> 5 per record.
    assert_eq!(w["iterable"]["rows"], 35, "{w}");
    assert_eq!(w["map"]["shapes"], serde_json::json!([[3, 500]]));
}

#[test]
fn datasets_polars_and_duckdb_read_the_converted_directory() {
    if !have_python_modules(&["datasets", "polars", "duckdb", "torch", "wfdb"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("wfdb");
    corpus(&root, 4);
    let out = dir.path().join("out");
    convert(&root, &out, &["--card"]);
    let r = run_script("check_loaders.py", &[s(&out), s(&root)]);
    assert_eq!(r["datasets"]["rows"], 4, "{r}");

    // MIT-BIH record 100 with its beat annotations (every rdann field), and a card
    // whose features `datasets` must find equal to the files' schema.
    let records = conformance_dir().join("records");
    let out = dir.path().join("mitdb");
    convert(
        &records,
        &out,
        &["--records", "100", "--annotations", "atr", "--card"],
    );
    let r = run_script(
        "check_loaders.py",
        &[s(&out), s(&records), "--annotations", "atr"],
    );
    assert_eq!(r["annotations"], 2274, "{r}");
}

fn card(out: &Path) -> String {
    std::fs::read_to_string(out.join("README.md")).expect("a dataset card")
}

fn front_matter(card: &str) -> &str {
    card.split("---\n").nth(1).expect("YAML front matter")
}

#[test]
fn dataset_card_describes_every_shard_and_follows_incremental_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("wfdb");
    corpus(&root, 6);
    let out = dir.path().join("out");
    // Three shards at once into one directory: whichever writes the card last has seen
    // every part file, so the card counts all records.
    let children: Vec<std::process::Child> = (0..3)
        .map(|i| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("physio"))
                .args([
                    "convert",
                    s(&root),
                    "--out",
                    s(&out),
                    "--card",
                    "--quiet",
                    "--shard",
                ])
                .arg(format!("{i}/3"))
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let text = card(&out);
    let yaml = front_matter(&text);
    assert!(yaml.contains("    num_examples: 6\n"), "{yaml}");
    assert!(yaml.contains("    path: \"part-*.parquet\"\n"), "{yaml}");
    assert!(text.contains("| records | 6 |"), "{text}");
    assert!(text.contains("| signals | 3 (I, II, V1) |"), "{text}");
    assert!(text.contains("| sampling rate | 250 Hz"), "{text}");
    // A local directory is no PhysioNet project: no licence is claimed.
    assert!(!yaml.contains("license:"));
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n == "README.md" || n.ends_with(".parquet")),
        "no temporary or lock files left: {names:?}"
    );

    // An incremental run after a record is added rewrites the card.
    let all = dir.path().join("all");
    convert(&root, &all, &["--card"]);
    assert!(card(&all).contains("| records | 6 |"));
    corpus(&root, 7);
    convert(&root, &all, &["--card", "--incremental"]);
    assert!(card(&all).contains("| records | 7 |"));

    // Without --card there is none (pyarrow's read_table(DIR) would trip over it), and a
    // single .parquet file cannot have one.
    let plain = dir.path().join("plain");
    convert(&root, &plain, &[]);
    assert!(!plain.join("README.md").exists());
    physio()
        .args([
            "convert",
            s(&root),
            "--out",
            s(&dir.path().join("one.parquet")),
            "--card",
        ])
        .assert()
        .code(2);
    // Nor can object-store output (each run stages only its own files): refused before
    // anything is converted or contacted.
    physio()
        .args([
            "convert",
            s(&root),
            "--out",
            "s3://bucket/prefix/",
            "--card",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not to object storage"));
}

#[test]
fn dataset_card_names_a_known_physionet_projects_licence() {
    // `physio fetch` layout: DIR/<slug>/<version>/.
    let dir = tempfile::tempdir().unwrap();
    let root: PathBuf = dir.path().join("physionet/mitdb/1.0.0");
    std::fs::create_dir_all(&root).unwrap();
    for ext in ["hea", "dat", "atr"] {
        std::fs::copy(
            conformance_dir().join(format!("records/100.{ext}")),
            root.join(format!("100.{ext}")),
        )
        .unwrap();
    }
    let out = dir.path().join("out");
    convert(&root, &out, &["--annotations", "atr", "--card"]);
    let text = card(&out);
    let yaml = front_matter(&text);
    assert!(yaml.starts_with("license: odc-by\n"), "{yaml}");
    assert!(
        yaml.contains("- name: \"annotations\"\n    list:\n"),
        "{yaml}"
    );
    assert!(text.contains("# mitdb 1.0.0"));
    assert!(text.contains("Moody GB, Mark RG"));
    assert!(text.contains("Goldberger"));
}
