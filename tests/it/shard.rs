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
