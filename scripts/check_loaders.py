#!/usr/bin/env python3
"""Runs the loading recipes of docs/training.md against a physio output directory and
compares every value with wfdb-python (the test suite runs it: tests/it/loaders.rs).

    python scripts/check_loaders.py OUT ROOT [--annotations EXT]

OUT is `physio convert ROOT --out OUT` (record layout, with its README.md dataset card);
ROOT holds the WFDB records. Checks:

* Hugging Face `datasets`: `load_dataset("parquet", data_dir=OUT)` and
  `load_dataset(OUT)` (which reads the card's YAML) give the Parquet schema's features,
  and with `set_format("numpy")` / `set_format("torch")` every row's signal equals
  wfdb-python's `rdsamp`.
* polars and DuckDB: beats per (record, symbol) from the `annotations` list column equal
  wfdb-python's `rdann` counts, and polars reads every rdann field (sample, symbol,
  subtype, chan, num, aux) and `time` = sample / fs equal to rdann's.

Prints one JSON summary line.
"""

import glob
import json
import os
import sys
import tempfile

import numpy as np


def hf_checks(out, root):
    # No hub: everything is local, and the cache goes to a temporary directory.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="physio-hf-"))
    import pyarrow.parquet as pq
    import torch
    import wfdb
    from datasets import Features, load_dataset

    schema = pq.read_schema(sorted(glob.glob(os.path.join(out, "*.parquet")))[0])
    want = Features.from_arrow_schema(schema)
    by_dir = load_dataset("parquet", data_dir=out, split="train")
    by_card = load_dataset(out, split="train")
    assert by_dir.features == want, (by_dir.features, want)
    assert by_card.features == want, (by_card.features, want)

    rows = 0
    by_card.set_format("numpy")
    for row in by_card:
        sig, _ = wfdb.rdsamp(os.path.join(root, row["record"]))
        got = row["signal"]
        # A uniform record is one [channels, samples] array; ragged rows (signals of
        # different rates) are an object array of per-channel arrays.
        channels = [np.asarray(c, dtype=np.float32) for c in got]
        expected = sig.T.astype(np.float32)
        assert len(channels) == expected.shape[0], row["record"]
        for c, e in zip(channels, expected):
            assert np.allclose(c, e, rtol=1e-6, atol=1e-6, equal_nan=True), row["record"]
        rows += 1
    assert rows == len(by_card) and rows > 0

    by_dir.set_format("torch", columns=["signal"])
    first = by_dir[0]["signal"]
    assert isinstance(first, torch.Tensor) and first.dim() == 2, type(first)
    sig, _ = wfdb.rdsamp(os.path.join(root, by_card[0]["record"]))
    assert torch.allclose(first, torch.from_numpy(sig.T.astype(np.float32)), equal_nan=True)
    return {"rows": rows, "features": sorted(want.keys())}


def annotation_counts_wfdb(out, root, ext):
    import pyarrow.parquet as pq
    import wfdb

    counts = {}
    for f in sorted(glob.glob(os.path.join(out, "*.parquet"))):
        for name in pq.ParquetFile(f).read(columns=["record"]).column("record").to_pylist():
            ann = wfdb.rdann(os.path.join(root, name), ext)
            for s in ann.symbol:
                counts[(name, s)] = counts.get((name, s), 0) + 1
    return counts


def polars_counts(out):
    import polars as pl

    df = (
        pl.scan_parquet(os.path.join(out, "*.parquet"))
        .select("record", "annotations")
        .explode("annotations")
        .unnest("annotations")
        .group_by("record", "symbol")
        .agg(pl.len().alias("n"))
        .collect()
    )
    return {(r, s): n for r, s, n in df.iter_rows()}


def polars_fields_match_rdann(out, root, ext):
    import polars as pl
    import wfdb

    df = (
        pl.scan_parquet(os.path.join(out, "*.parquet"))
        .select("record", "fs", "annotations")
        .explode("annotations")
        .unnest("annotations")
        .collect()
    )
    checked = 0
    for (name,), part in df.group_by("record", maintain_order=True):
        ann = wfdb.rdann(os.path.join(root, name), ext)
        assert part["sample"].to_list() == [int(x) for x in ann.sample], name
        assert part["symbol"].to_list() == list(ann.symbol), name
        assert part["subtype"].to_list() == [int(x) for x in ann.subtype], name
        assert part["chan"].to_list() == [int(x) for x in ann.chan], name
        assert part["num"].to_list() == [int(x) for x in ann.num], name
        assert part["aux"].to_list() == [x.rstrip("\x00") for x in ann.aux_note], name
        want_time = np.asarray(ann.sample, dtype=np.float64) / float(ann.fs)
        assert np.allclose(part["time"].to_numpy(), want_time, rtol=0, atol=1e-9), name
        assert part["duration"].null_count() == len(part), name
        checked += len(part)
    return checked


def duckdb_counts(out):
    import duckdb

    rows = duckdb.sql(
        f"""
        SELECT record, a.symbol AS symbol, count(*) AS n
        FROM (SELECT record, unnest(annotations) AS a
              FROM read_parquet('{os.path.join(out, "*.parquet")}'))
        GROUP BY ALL
        """
    ).fetchall()
    return {(r, s): n for r, s, n in rows}


def main():
    out, root = sys.argv[1], sys.argv[2]
    summary = {"datasets": hf_checks(out, root)}
    if "--annotations" in sys.argv:
        ext = sys.argv[sys.argv.index("--annotations") + 1]
        want = annotation_counts_wfdb(out, root, ext)
        assert want, "no annotations to compare"
        assert polars_counts(out) == want, "polars annotation counts differ from rdann"
        assert duckdb_counts(out) == want, "DuckDB annotation counts differ from rdann"
        assert polars_fields_match_rdann(out, root, ext) == sum(want.values())
        summary["annotation_groups"] = len(want)
        summary["annotations"] = sum(want.values())
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
