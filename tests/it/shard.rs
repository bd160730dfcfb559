//! `--shard I/N` scale-out: four convert processes running at once over one corpus into
//! one output directory produce exactly the single-process output (issue 7), no record
//! missing or duplicated, each shard writing only its own `part-<I>-<n>.parquet` files.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use arrow_array::{Array, Float32Array, ListArray, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use physio::wfdb::{SignalFormat, WriteSignal, write_record};

/// Record name -> flattened signal values (as bit patterns, so NaN compares equal).
type Rows = BTreeMap<String, Vec<u32>>;

fn corpus(root: &Path, n: usize) {
    for i in 0..n {
        let dir = root.join(format!("p{:02}", i % 5));
        std::fs::create_dir_all(&dir).unwrap();
        let frames = 200 + 17 * i as u64;
        let signals: Vec<WriteSignal> = (0..2)
            .map(|c| WriteSignal {
                name: format!("ch{c}"),
                units: "mV".into(),
                format: SignalFormat::F16,
                adc_gain: 200.0,
                baseline: 0,
                adc_res: 16,
                samps_per_frame: 1,
                file_name: format!("r{i:03}.dat"),
                digital: (0..frames as i32)
                    .map(|t| (t * 31 + c * 7 + i as i32) % 900 - 450)
                    .collect(),
            })
            .collect();
        write_record(&dir, &format!("r{i:03}"), 250.0, frames, &signals).unwrap();
    }
}

fn read_rows(dir: &Path) -> (Rows, usize) {
    let mut rows = Rows::new();
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let file = std::fs::File::open(&path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let names = batch.column_by_name("record").unwrap();
            let names = names.as_any().downcast_ref::<StringArray>().unwrap();
            let signal = batch.column_by_name("signal").unwrap();
            let signal = signal.as_any().downcast_ref::<ListArray>().unwrap();
            for r in 0..batch.num_rows() {
                let channels = signal.value(r);
                let channels = channels.as_any().downcast_ref::<ListArray>().unwrap();
                let mut bits = Vec::new();
                for k in 0..channels.len() {
                    let channel = channels.value(k);
                    let channel = channel.as_any().downcast_ref::<Float32Array>().unwrap();
                    bits.extend(channel.values().iter().map(|v| v.to_bits()));
                }
                count += 1;
                assert!(
                    rows.insert(names.value(r).to_string(), bits).is_none(),
                    "record {} written twice",
                    names.value(r)
                );
            }
        }
    }
    (rows, count)
}

#[test]
fn four_concurrent_shards_equal_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("corpus");
    corpus(&input, 40);
    let bin = assert_cmd::cargo::cargo_bin("physio");

    let single = tmp.path().join("single");
    let status = Command::new(&bin)
        .args([
            "convert",
            input.to_str().unwrap(),
            "--to",
            "parquet",
            "--quiet",
            "--out",
        ])
        .arg(&single)
        .status()
        .unwrap();
    assert!(status.success());

    let sharded = tmp.path().join("sharded");
    let children: Vec<_> = (0..4)
        .map(|i| {
            Command::new(&bin)
                .args([
                    "convert",
                    input.to_str().unwrap(),
                    "--to",
                    "parquet",
                    "--quiet",
                ])
                .args(["--shard", &format!("{i}/4"), "--jobs", "1", "--out"])
                .arg(&sharded)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }

    let (want, n_single) = read_rows(&single);
    let (got, n_sharded) = read_rows(&sharded);
    assert_eq!(n_single, 40);
    assert_eq!(
        n_sharded, 40,
        "a record was duplicated or lost across shards"
    );
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (name, values) in &want {
        assert!(got[name] == *values, "{name}: sharded values differ");
    }

    // Every file belongs to one shard, and every shard wrote something for 40 records.
    let mut shards_seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&sharded).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let rest = name.strip_prefix("part-").expect(&name);
        let (shard, _) = rest.split_once('-').expect(&name);
        assert!(name.ends_with(".parquet"), "{name}");
        shards_seen.insert(shard.parse::<u32>().unwrap());
    }
    assert_eq!(
        shards_seen.into_iter().collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
}

/// Every regular file under `root` except physio's own `.physio*` state (lock and
/// verified-state files, which are per shard by design), by relative path.
fn mirror_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            if name.starts_with(".physio") {
                continue;
            }
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Every row of every Parquet file in `dir`, keyed by record name, each row as the
/// Debug text of every column's value (all columns, not only the signal), plus the
/// Arrow schema the files share.
fn parquet_rows(dir: &Path) -> (BTreeMap<String, Vec<String>>, String) {
    let mut rows = BTreeMap::new();
    let mut schema = None::<String>;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let fields = format!("{:?}", batch.schema().fields());
            assert_eq!(
                schema.get_or_insert_with(|| fields.clone()),
                &fields,
                "{}",
                path.display()
            );
            let names = batch.column_by_name("record").unwrap();
            let names = names.as_any().downcast_ref::<StringArray>().unwrap();
            for r in 0..batch.num_rows() {
                let row: Vec<String> = batch
                    .columns()
                    .iter()
                    .map(|c| format!("{:?}", c.slice(r, 1)))
                    .collect();
                assert!(
                    rows.insert(names.value(r).to_string(), row).is_none(),
                    "record {} written twice",
                    names.value(r)
                );
            }
        }
    }
    (rows, schema.unwrap_or_default())
}

/// Issue 12: `physio sync --shard I/4`, four processes at once on one shared mirror
/// and one shared Parquet directory, fetching from the test HTTP server, equals one
/// unsharded sync:
///
/// * the mirror: the same set of files with the same bytes, every file compared
///   (physio's per-shard `.physio*` lock/state files excepted);
/// * the Parquet: the same records, each row equal in every column (read back with
///   arrow-rs), and the same schema. The files themselves differ by design: the
///   unsharded run writes `part-NNNNN.parquet`, each shard `part-<I>-NNNNN.parquet`.
///
/// The corpus holds a multi-segment record whose segments share no name prefix with
/// it (`041s` = `041s01` + `041s02`), a record with annotations (`100.atr`), a record
/// whose signal file has another extension (`a103l.mat`), and 24 generated records in
/// subdirectories, so a shard key by file path would split records across shards; every
/// shard converts with no record missing (exit 0), which needs every file of its
/// records fetched by the same task.
#[test]
fn four_concurrent_sharded_syncs_equal_one_sync_r12() {
    let tmp = tempfile::tempdir().unwrap();
    let server = crate::common::server::TestServer::start();
    let demo = crate::common::repo_root().join("fixtures/mirror/files/physio-demo/1.0.0");
    let mut files: Vec<(String, Vec<u8>)> = mirror_files(&demo)
        .into_iter()
        .filter(|(p, _)| p != "SHA256SUMS.txt" && p != "RECORDS")
        .collect();
    let mut records = std::fs::read_to_string(demo.join("RECORDS")).unwrap();
    let gen_dir = tmp.path().join("gen");
    corpus(&gen_dir, 24);
    for (p, bytes) in mirror_files(&gen_dir) {
        if let Some(stem) = p.strip_suffix(".hea") {
            records.push_str(&format!("extra/{stem}\n"));
        }
        files.push((format!("extra/{p}"), bytes));
    }
    files.push(("RECORDS".into(), records.into_bytes()));
    files.push(("notes/protocol.pdf".into(), b"%PDF- not a record".to_vec()));
    server.add_project("shard-demo", "1.0.0", &files, true);
    server.set_latest("shard-demo", "1.0.0");

    let config = "[[dataset]]\nname = \"shard-demo\"\nout = \"mirror\"\n\n\
                  [dataset.convert]\nout = \"parquet\"\nannotations = \"atr\"\n";
    let bin = assert_cmd::cargo::cargo_bin("physio");
    let run_dir = |name: &str| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sync.toml"), config).unwrap();
        dir
    };
    let sync = |dir: &Path, shard: Option<u32>| {
        let mut cmd = Command::new(&bin);
        cmd.arg("sync")
            .arg(dir.join("sync.toml"))
            .arg("--quiet")
            .env("PHYSIO_BASE_URL", server.url())
            .stdout(std::process::Stdio::piped());
        if let Some(i) = shard {
            cmd.args(["--shard", &format!("{i}/4")]);
        }
        cmd.spawn().unwrap()
    };
    let report = |child: std::process::Child| {
        let out = child.wait_with_output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{report:#}");
        report
    };

    let single = run_dir("single");
    let one = report(sync(&single, None));
    assert_eq!(
        one["datasets"][0]["convert"]["status"], "converted",
        "{one:#}"
    );

    let sharded = run_dir("sharded");
    let children: Vec<_> = (0..4).map(|i| sync(&sharded, Some(i))).collect();
    let reports: Vec<_> = children.into_iter().map(report).collect();
    let written: u64 = reports
        .iter()
        .map(|r| {
            r["datasets"][0]["convert"]["records_written"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(written, 34, "every record converted by exactly one shard");
    assert!(
        reports
            .iter()
            .all(|r| r["datasets"][0]["convert"]["records_written"].as_u64() > Some(0)),
        "every shard converted something"
    );

    let version = "mirror/shard-demo/1.0.0";
    let want = mirror_files(&single.join(version));
    let got = mirror_files(&sharded.join(version));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the sharded mirror holds other files"
    );
    for (path, bytes) in &want {
        assert!(got[path] == *bytes, "{path} differs");
    }
    assert_eq!(
        want.len(),
        files.len() + 1,
        "every upstream file plus SHA256SUMS.txt"
    );

    let (want_rows, want_schema) = parquet_rows(&single.join("parquet"));
    let (got_rows, got_schema) = parquet_rows(&sharded.join("parquet"));
    assert_eq!(want_rows.len(), 34);
    assert_eq!(got_schema, want_schema);
    assert_eq!(
        got_rows.keys().collect::<Vec<_>>(),
        want_rows.keys().collect::<Vec<_>>()
    );
    for (record, row) in &want_rows {
        assert!(got_rows[record] == *row, "{record}: a sharded row differs");
    }

    // Timing-independent: each shard alone, in a directory of its own, has every file
    // its records need (with a shard key by file path, 041s or 100 would fail here).
    let mut alone = 0;
    for i in 0..4 {
        let dir = run_dir(&format!("alone-{i}"));
        let r = report(sync(&dir, Some(i)));
        let convert = &r["datasets"][0]["convert"];
        assert!(convert["failed"].as_array().unwrap().is_empty(), "{r:#}");
        alone += convert["records_written"].as_u64().unwrap();
    }
    assert_eq!(alone, 34);
}
