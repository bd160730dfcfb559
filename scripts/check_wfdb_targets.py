#!/usr/bin/env python3
"""Compares physio with the WFDB C library's own `rdsamp`/`rdann` outputs.

Usage: check_wfdb_targets.py PHYSIO_BINARY [--wfdb-python DIR] [--wfdb-c DIR] [NAME...]

`--wfdb-python DIR` is a checkout of wfdb-python (github.com/MIT-LCP/wfdb-python): its
`sample-data/` holds the records and `tests/target-output/` what WFDB C (10.5.24) printed
for them, with the commands listed in TARGETS (copied from the docstrings of its
`tests/test_record.py` / `tests/test_annotation.py`). `--wfdb-c DIR` is a checkout of the
WFDB C library (github.com/bemoody/wfdb): `checkpkg/expected/` holds what its own test
suite (`checkpkg/appcheck`) expects `rdsamp`/`rdann` to print for `data/100s`
(CHECKPKG). Those files are not in this
repository (see docs/wfdb.md, "A second oracle"); `tests/it/wfdb_reference.rs` runs this
script when `PHYSIO_WFDB_TARGETS` names such a directory.

For each target physio converts the record to Parquet (`--layout samples`, int32 for
digital output, float32 for `-P`, `--high-resolution` for `-H`) and every printed value
is compared: digital values exactly (WFDB prints WFDB_INVALID_SAMPLE, -32768, where
physio keeps the format's invalid value: compared as "invalid"), physical values to the
printed precision (`-` = invalid = NaN), annotations field by field. Frames of
oversampled signals without `-H`: the targets use 10.5.24's truncating mean, so they are
compared with that rule applied to physio's high-resolution samples, and the frames
where physio's default (10.7.0's rounding) differs are counted.

Prints one JSON object per target and a summary line; exits 1 on any mismatch (a
target whose files the checkout lacks is listed as "unavailable", not failed).
"""

import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import pyarrow.parquet as pq

# (target file, record under sample-data/, rdsamp options)
TARGETS = [
    ("record-1a", "test01_00s", {}),
    ("record-1b", "a103l", {"f": "50", "t": "160", "s": [2, 0], "P": True}),
    ("record-1c", "a103l", {"f": "80", "s": [0, 1]}),
    ("record-1d", "3000003_0003", {"f": "1", "t": "8", "s": [1], "P": True}),
    ("record-1e.gz", "n8_evoked_raw_95_F1_R9", {}),
    ("record-1f.gz", "binformats", {}),
    ("record-flac.gz", "flacformats", {}),
    ("record-2a", "100", {"P": True}),
    ("record-2b", "100", {"f": "0.002", "t": "30", "s": [1]}),
    ("record-2c", "100_3chan", {"P": True}),
    ("record-2d", "310derive", {"f": "0.007"}),
    ("record-2e", "311derive", {"f": "0.005", "t": "3.91", "P": True}),
    ("record-3a", "s0010_re", {}),
    ("record-3b", "s0010_re", {"f": "5", "t": "38", "P": True, "s": [13, 0, 4, 8, 3]}),
    ("record-4a", "test01_00s_skewframe", {}),
    ("record-4b", "03700181", {}),
    ("record-4c", "03700181", {"f": "8", "t": "128", "s": [0, 2], "P": True}),
    ("record-4d", "test01_00s_skewframe", {"P": True, "H": True}),
    ("record-multi-fixed-a", "multi-segment/fixed1/v102s", {"P": True}),
    ("record-multi-fixed-b", "multi-segment/fixed1/v102s", {"t": "s75000", "P": True}),
    ("record-multi-fixed-c", "multi-segment/fixed1/v102s", {"f": "s70000", "t": "s80000", "s": [1, 0, 3], "P": True}),
    ("record-multi-fixed-d.gz", "multi-segment/041s/041s", {"s": [3, 2, 1], "H": True}),
    ("record-multi-variable-a", "multi-segment/s00001/s00001-2896-10-10-00-31", {"f": "s14428365", "t": "s14428375", "P": True}),
    ("record-multi-variable-b", "multi-segment/s00001/s00001-2896-10-10-00-31", {"f": "s14428364", "t": "s14428375", "P": True}),
    # rdsamp ... | perl -p -e 's/-32768/  -128/g;': invalid printed as -128.
    ("record-multi-variable-d", "multi-segment/p000878/p000878-2137-10-26-16-57", {"f": "s3550", "t": "s7500", "s": [0, 1], "invalid": -128}),
]
# (target file, record, annotator): `rdann -r RECORD -a ANN`
ANNOTATIONS = [("ann-1", "100", "atr"), ("ann-2", "12726", "anI"), ("ann-3", "1003", "atr")]
# WFDB C's checkpkg/appcheck: `rdsamp -r 100s -f 10 -t 11 -p -v` (two header lines,
# elapsed seconds first) and `rdann -r 100s -a atr`.
CHECKPKG = [("rdsamp.out", "100s", {"f": "10", "t": "11", "P": True, "header_lines": 2, "time_column": True})]
CHECKPKG_ANNOTATIONS = [("rdann.out", "100s", "atr")]


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {p.stderr.strip()}")
    return p.stdout


def read_target(path, header_lines=0, time_column=False):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        rows = [line.split() for line in f if line.strip()][header_lines:]
    return [r[1:] for r in rows] if time_column else rows


def header(physio, record):
    return json.loads(run([physio, "info", "--json", record]))


def convert(physio, record, out, dtype, high):
    cmd = [physio, "convert", record, "--to", "parquet", "--out", out, "--layout", "samples", "--dtype", dtype]
    if high:
        cmd.append("--high-resolution")
    run(cmd)
    t = pq.read_table(out)
    names = [c for c in t.column_names if c not in ("record", "sample", "time", "gain", "baseline")]
    return [t.column(c).to_pylist() for c in names]


def to_frame(spec, fs):
    if spec is None:
        return None
    if spec.startswith("s"):
        return int(spec[1:])
    return int(math.floor(float(spec) * fs + 0.5))


def check_record(physio, data, expected, name, record, opts, tmp):
    path = os.path.join(data, record)
    target = read_target(os.path.join(expected, name), opts.get("header_lines", 0), opts.get("time_column", False))
    h = header(physio, path)
    spf = h["samps_per_frame"] or [1] * h["n_sig"]
    high = opts.get("H", False)
    k = max(spf) if high else 1
    fs = h["fs"] * k
    # Digital (int32) and physical (float32) values; without -H, oversampled frames
    # are compared through the high-resolution samples and the 10.5.24 rule.
    oversampled = not high and max(spf) > 1
    digital = convert(physio, path, os.path.join(tmp, "d.parquet"), "i32", high or oversampled)
    physical = convert(physio, path, os.path.join(tmp, "p.parquet"), "f32", high or oversampled)
    default = convert(physio, path, os.path.join(tmp, "m.parquet"), "i32", False) if oversampled else None
    if oversampled:
        kk = max(spf)
        frames = len(digital[0]) // kk

        dig, phy = [], []
        for j in range(len(digital)):
            dcol, pcol = digital[j], physical[j]
            dj, pj = [], []
            for f in range(frames):
                d = dcol[f * kk:(f + 1) * kk]
                p = pcol[f * kk:(f + 1) * kk]
                if any(x is None or (isinstance(x, float) and math.isnan(x)) for x in p):
                    dj.append(None)
                    pj.append(float("nan"))
                    continue
                # High resolution repeats a signal's samples; its own samples are
                # every (kk / spf)-th value.
                step = kk // spf[j]
                own = d[::step]
                s = sum(own)
                m = int(s / len(own))  # C division: truncation toward zero (10.5.24)
                dj.append(m)
                gain = h["adc_gain"][j]
                base = h["baseline"][j]
                pj.append((m - base) / gain)
            dig.append(dj)
            phy.append(pj)
        # How often 10.7.0's rule (physio's default) differs from 10.5.24's here.
        changed = sum(
            1
            for j in range(len(dig))
            for f in range(frames)
            if dig[j][f] is not None and default[j][f] != dig[j][f]
        )
        digital, physical = dig, phy
    else:
        changed = 0
    start = to_frame(opts.get("f"), fs) or 0
    sel = opts.get("s", list(range(len(digital))))
    invalid_printed = opts.get("invalid", -32768)
    mismatches, checked = [], 0
    for r, row in enumerate(target):
        f = start + r
        if len(row) != len(sel):
            mismatches.append(f"row {r}: {len(row)} columns, want {len(sel)}")
            continue
        for c, j in enumerate(sel):
            tok = row[c]
            if f >= len(digital[j]):
                mismatches.append(f"row {r} sig {j}: beyond physio's {len(digital[j])} frames")
                continue
            p = physical[j][f]
            invalid = p is None or (isinstance(p, float) and math.isnan(p))
            checked += 1
            if opts.get("P"):
                if tok == "-":
                    ok = invalid
                else:
                    decimals = len(tok.split(".")[1]) if "." in tok else 0
                    want = float(tok)
                    ok = not invalid and abs(p - want) <= 0.5 * 10 ** -decimals + 1e-6 * abs(want)
            else:
                want = int(tok)
                # WFDB C 10.5.24 prints a stored invalid value of formats other than 16
                # as is (-2048 for 212), 10.7 as -32768; physio keeps the stored value.
                ok = digital[j][f] == want or (invalid and want == invalid_printed)
            if not ok and len(mismatches) < 20:
                mismatches.append(f"row {r} (frame {f}) sig {j}: physio {digital[j][f]} / {p}, WFDB C {tok}")
    end = to_frame(opts.get("t"), fs)
    if end is not None and end - start != len(target):
        mismatches.append(f"-f/-t give {end - start} rows, WFDB C printed {len(target)}")
    return {"target": name, "values": checked, "mismatches": mismatches, "frames_10_7_differs": changed}


def parse_time(tok):
    tok = tok.strip("[]")
    parts = [float(x) for x in tok.split(":")]
    secs = 0.0
    for p in parts:
        secs = secs * 60 + p
    return secs


def check_annotations(physio, src, expected, name, record, ext, tmp):
    work = os.path.join(tmp, "ann")
    os.makedirs(work, exist_ok=True)
    for fn in os.listdir(src):
        if fn.startswith(record + "."):
            shutil.copy(os.path.join(src, fn), work)
    h = header(physio, os.path.join(work, record))
    dat = os.path.join(work, h["file_name"][0])
    if not os.path.exists(dat):
        # Header-only record: zeros of format 16 stand in for the signal file.
        assert set(h["fmt"]) == {"16"}, h["fmt"]
        with open(dat, "wb") as f:
            f.write(b"\0" * (h["sig_len"] * h["n_sig"] * 2))
    table = os.path.join(tmp, "ann.parquet")
    run([physio, "convert", os.path.join(work, record), "--to", "parquet", "--out", os.path.join(tmp, "n.parquet"),
         "--annotations", ext, "--annotations-table", table, "--signals", h["sig_name"][0]])
    got = pq.read_table(table).to_pylist()
    base = parse_time(h["base_time"]) if h["base_time"] else 0.0
    mismatches, checked = [], 0
    with open(os.path.join(expected, name)) as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    if len(lines) != len(got):
        mismatches.append(f"{len(got)} annotations, WFDB C printed {len(lines)}")
    for i, (line, g) in enumerate(zip(lines, got)):
        fields, _, aux = line.partition("\t")
        t, sample, symbol, subtype, chan, num = fields.split()
        want_time = parse_time(t) - (base if t.startswith("[") else 0.0)
        # rdann prints whole milliseconds; the absolute clock wraps at midnight.
        dt = (g["time"] - want_time) % 86400.0
        checks = [
            ("sample", g["sample"], int(sample)),
            ("symbol", g["symbol"], symbol),
            ("subtype", g["subtype"], int(subtype)),
            ("chan", g["chan"], int(chan)),
            ("num", g["num"], int(num)),
            ("aux", g["aux"], aux),
            ("time", min(dt, 86400.0 - dt) < 0.001, True),
        ]
        for field, a, b in checks:
            checked += 1
            if a != b and len(mismatches) < 20:
                mismatches.append(f"#{i} {field}: physio {a!r}, WFDB C {b!r}")
    return {"target": name, "values": checked, "mismatches": mismatches}


def main():
    args = sys.argv[1:]
    physio = args.pop(0)
    sets, only = [], []
    while args:
        a = args.pop(0)
        if a == "--wfdb-python":
            d = args.pop(0)
            sets.append((os.path.join(d, "sample-data"), os.path.join(d, "tests", "target-output"), TARGETS, ANNOTATIONS))
        elif a == "--wfdb-c":
            d = args.pop(0)
            sets.append((os.path.join(d, "data"), os.path.join(d, "checkpkg", "expected"), CHECKPKG, CHECKPKG_ANNOTATIONS))
        else:
            only.append(a)
    results = []

    def attempt(f, name):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                results.append(f(tmp))
            except Exception as e:  # report and go on: one target's failure is data
                if os.environ.get("DEBUG"):
                    raise
                # A target or record file the checkout lacks (large files may be left
                # out of a snapshot): not reproducible here, reported apart.
                missing = isinstance(e, FileNotFoundError) or "No such file or directory" in str(e)
                key = "unavailable" if missing else "mismatches"
                results.append({"target": name, "values": 0, "mismatches": [], key: [str(e)[:300]]})
        print(json.dumps(results[-1]), flush=True)

    for data, expected, targets, annotations in sets:
        for name, record, opts in targets:
            if not only or name in only:
                attempt(lambda tmp: check_record(physio, data, expected, name, record, opts, tmp), name)
        for name, record, ext in annotations:
            if not only or name in only:
                attempt(lambda tmp: check_annotations(physio, data, expected, name, record, ext, tmp), name)
    bad = [r["target"] for r in results if r["mismatches"]]
    unavailable = [r["target"] for r in results if r.get("unavailable")]
    matched = len(results) - len(bad) - len(unavailable)
    print(json.dumps({"targets": len(results), "matched": matched, "values": sum(r["values"] for r in results),
                      "failed": bad, "unavailable": unavailable}))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
