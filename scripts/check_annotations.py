#!/usr/bin/env python3
"""Compares physio's annotation output with wfdb-python's `rdann`, field by field.

Usage: check_annotations.py NESTED.parquet TABLE.parquet RECORD_DIR EXT RECORD...

NESTED.parquet is a `--layout record` conversion with `--annotations EXT`; TABLE.parquet
its `--annotations-table`. Both are read back with pyarrow, the table also with DuckDB,
and every annotation's sample, symbol, subtype, chan, num, aux and time is compared
with `wfdb.rdann(RECORD_DIR/RECORD, EXT)` (aux without its trailing NUL padding; time
= sample / fs, with rdann's fs). Prints one JSON object: {"checked": fields compared,
"annotations": annotations compared, "mismatches": [...]}; exits 0 either way.
"""

import json
import os
import sys

import duckdb
import pyarrow.parquet as pq
import wfdb

FIELDS = ["sample", "symbol", "subtype", "chan", "num", "aux", "time", "duration"]


def expected(record_dir, record, ext):
    ann = wfdb.rdann(os.path.join(record_dir, record), ext)
    rows = []
    for i in range(len(ann.sample)):
        aux = ann.aux_note[i] if ann.aux_note is not None else ""
        rows.append(
            {
                "sample": int(ann.sample[i]),
                "symbol": ann.symbol[i],
                "subtype": int(ann.subtype[i]),
                "chan": int(ann.chan[i]),
                "num": int(ann.num[i]),
                "aux": (aux or "").rstrip("\x00"),
                "time": int(ann.sample[i]) / float(ann.fs),
                "duration": None,
            }
        )
    return rows


def compare(source, record, got, want, out):
    if len(got) != len(want):
        out["mismatches"].append(f"{source} {record}: {len(got)} annotations, rdann {len(want)}")
        return
    for i, (g, w) in enumerate(zip(got, want)):
        for f in FIELDS:
            gv, wv = g.get(f), w[f]
            same = gv == wv  # exact: time is the same IEEE division in both
            out["checked"] += 1
            if not same:
                out["mismatches"].append(f"{source} {record} #{i} {f}: got {gv!r}, rdann {wv!r}")
        out["annotations"] += 1


def main():
    nested, table, record_dir, ext, *records = sys.argv[1:]
    out = {"checked": 0, "annotations": 0, "mismatches": []}
    flat = pq.read_table(table).to_pylist()
    con = duckdb.connect()
    cols = ", ".join(FIELDS)
    duck = con.execute(f"SELECT record, {cols} FROM read_parquet(?)", [table]).fetchall()
    duck = [dict(zip(["record"] + FIELDS, r)) for r in duck]
    rows = {r["record"]: r["annotations"] for r in pq.read_table(nested, columns=["record", "annotations"]).to_pylist()}
    for record in records:
        want = expected(record_dir, record, ext)
        compare("pyarrow table", record, [r for r in flat if r["record"] == record], want, out)
        compare("duckdb table", record, [r for r in duck if r["record"] == record], want, out)
        compare("pyarrow nested", record, rows.get(record) or [], want, out)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
