#!/usr/bin/env python3
"""EDF/EDF+ oracle for physio (issue 14): physio's Parquet and `info --json` against
pyedflib (edflib), MNE and wfdb-python's EDF reader.

    edf_oracle.py gen DIR            write the generated EDF/EDF+ files into DIR
    edf_oracle.py check PHYSIO DIR   convert every *.edf in DIR with PHYSIO, compare;
                                     prints a JSON summary, exits 1 on any mismatch
    edf_oracle.py annotations FILE   pyedflib's annotations of FILE as JSON

Generated files: several channels at different rates with annotations (EDF+C, written
by pyedflib), a plain EDF file (pyedflib), a file with a blank channel (digital and
physical min = max, as CHB-MIT's `-` channels; written here byte by byte because
edflib refuses to write it) and an EDF+D file with a gap (written here: edflib writes
only EDF+C). Physical values must equal the reference's to float32 precision.
"""

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import warnings

import numpy as np

warnings.simplefilter("ignore")


# ---------------------------------------------------------------- writing by hand

def _field(s, n):
    b = s.encode("latin-1")
    assert len(b) <= n, s
    return b + b" " * (n - len(b))


def write_edf(path, sigs, n_records, duration, reserved="", tals=None):
    """sigs: dicts label, dim, pmin, pmax, dmin, dmax, n (per record), data (int16,
    n_records*n). tals: per record, the bytes of one `EDF Annotations` signal of
    `tal_n` samples (appended as the last signal)."""
    sigs = list(sigs)
    if tals is not None:
        tal_n = max(len(t) for t in tals) // 2 + 1
        sigs.append(dict(label="EDF Annotations", dim="", pmin=-1, pmax=1,
                         dmin=-32768, dmax=32767, n=tal_n, data=None))
    ns = len(sigs)
    h = b"".join([
        _field("0", 8), _field("X F X Blank_Test", 80),
        _field("Startdate 02-MAR-2021 X X physio", 80),
        _field("02.03.21", 8), _field("10.20.30", 8), _field(str(256 * (ns + 1)), 8),
        _field(reserved, 44), _field(str(n_records), 8), _field(str(duration), 8),
        _field(str(ns), 4),
    ])
    for key, width in [("label", 16), (None, 80), ("dim", 8), ("pmin", 8), ("pmax", 8),
                       ("dmin", 8), ("dmax", 8), (None, 80), ("n", 8), (None, 32)]:
        for s in sigs:
            h += _field("" if key is None else str(s[key]), width)
    body = bytearray()
    for r in range(n_records):
        for s in sigs:
            if s["data"] is None:
                b = tals[r]
                body += b + b"\0" * (2 * s["n"] - len(b))
            else:
                body += np.asarray(s["data"][r * s["n"]:(r + 1) * s["n"]], "<i2").tobytes()
    with open(path, "wb") as f:
        f.write(h + bytes(body))


def gen(d):
    import pyedflib
    import pyedflib.highlevel as hl

    rng = np.random.default_rng(14)
    os.makedirs(d, exist_ok=True)
    secs = 10
    # Several channels at different rates, EDF+C with annotations (pyedflib writes it).
    rates = [256, 128, 1]
    sigs = [rng.uniform(-180, 180, secs * r) for r in rates]
    heads = [hl.make_signal_header(f"EEG {i}", sample_frequency=r, physical_min=-200,
                                   physical_max=200) for i, r in enumerate(rates)]
    heads[2]["dimension"] = "degC"
    header = hl.make_header(patientname="Test Patient", gender="Female",
                            birthdate="01.02.1980", patientcode="P14")
    header["annotations"] = [[0.5, 1.25, "Apnea"], [2.0, -1, "Lights off"],
                             [7.75, 0.5, "Arousal \u00e9"]]
    hl.write_edf(os.path.join(d, "multirate.edf"), sigs, heads, header,
                 file_type=pyedflib.FILETYPE_EDFPLUS)
    # Plain EDF, two rates.
    sigs = [rng.uniform(-90, 90, secs * r) for r in (100, 50)]
    heads = [hl.make_signal_header(f"ECG {i}", dimension="mV", sample_frequency=r,
                                   physical_min=-100, physical_max=100,
                                   digital_min=-2048, digital_max=2047)
             for i, r in enumerate((100, 50))]
    hl.write_edf(os.path.join(d, "plain.edf"), sigs, heads, file_type=pyedflib.FILETYPE_EDF)
    # A blank channel (CHB-MIT style): digital and physical min = max.
    n = 64
    real = dict(label="FP1-F7", dim="uV", pmin=-800, pmax=800, dmin=-32768, dmax=32767, n=n,
                data=rng.integers(-32768, 32767, 4 * n))
    blank = dict(label="-", dim="", pmin=0, pmax=0, dmin=0, dmax=0, n=n,
                 data=np.zeros(4 * n, dtype=np.int16))
    odd = dict(label="T8-P8", dim="uV", pmin=-500.5, pmax=499.25, dmin=-2000, dmax=2100,
               n=n // 2, data=rng.integers(-2000, 2100, 4 * n // 2))
    write_edf(os.path.join(d, "blank.edf"), [real, blank, odd], 4, 1)
    # EDF+D: records at 0, 1 and 4.5 s (a 2.5 s gap), plus an annotation.
    n = 8
    sig = dict(label="Resp", dim="mV", pmin=-10, pmax=10, dmin=-1000, dmax=1000, n=n,
               data=rng.integers(-1000, 1000, 3 * n))
    tals = [b"+0\x14\x14\x00+0.25\x150.5\x14Snore\x14\x00", b"+1\x14\x14\x00",
            b"+4.5\x14\x14\x00+4.75\x14End\x14\x00"]
    write_edf(os.path.join(d, "discontinuous.edf"), [sig], 3, 1, "EDF+D", tals)


# ---------------------------------------------------------------- reading references

# What gen() wrote, where no reader reports it: the EDF+D gap of 2.5 s at 8 Hz and
# its annotations (onsets 0.25 and 4.75 s after the first record).
WRITTEN_ANNOTATIONS = {"discontinuous.edf": [(2, "Snore"), (38, "End")]}
EXPECTED = {
    "discontinuous.edf": {"gap samples": 20, "annotations": 2},
    "multirate.edf": {"annotations": 3},
    "blank.edf": {"annotations": 0},
}


def pyedflib_read(path):
    import pyedflib
    try:
        f = pyedflib.EdfReader(path)
    except OSError:
        return None  # edflib refuses the file (non-ASCII header bytes, blank channel)
    try:
        sigs = [dict(label=f.getLabel(j), fs=f.getSampleFrequency(j),
                     dim=f.getPhysicalDimension(j), values=f.readSignal(j))
                for j in range(f.signals_in_file)]
        onsets, durations, texts = f.readAnnotations()
        return dict(signals=sigs, start=f.getStartdatetime(),
                    subsecond=getattr(f, "starttime_subsecond", 0) / 1e7
                    if hasattr(f, "starttime_subsecond") else 0.0,
                    patient_code=f.getPatientCode(), sex=f.getSex(),
                    annotations=[(float(o), None if d < 0 else float(d), str(t))
                                 for o, d, t in zip(onsets, durations, texts)])
    finally:
        f.close()


def mne_read(path):
    import mne
    mne.set_log_level("ERROR")
    raw = mne.io.read_raw_edf(path, preload=True, verbose="ERROR")
    factor = {"uV": 1e-6, "µV": 1e-6, "mV": 1e-3}
    out = {}
    for name in raw.ch_names:
        unit = raw._orig_units.get(name, "")
        out[name] = raw.get_data(picks=[name])[0] / factor.get(unit, 1.0)
    ann = [(float(a["onset"]), str(a["description"])) for a in raw.annotations]
    return raw.info["sfreq"], out, ann


def same_f32(ours, ref, what, errors):
    ours = np.asarray(ours, dtype=np.float32)
    ref = np.asarray(ref, dtype=np.float64).astype(np.float32)
    if ours.shape != ref.shape:
        errors.append(f"{what}: {ours.shape[0]} values, reference {ref.shape[0]}")
        return
    # Float32 precision: the references compute in f64 in a different order, so the
    # f32 rounding may differ by one unit in the last place.
    tol = np.spacing(np.maximum(np.abs(ours), np.abs(ref)))
    bad = np.abs(ours.astype(np.float64) - ref.astype(np.float64)) > tol
    if bad.any():
        i = int(np.argmax(bad))
        errors.append(f"{what}: {int(bad.sum())} values differ, first at {i}: "
                      f"{ours[i]!r} vs {ref[i]!r}")


def check(physio, d):
    import pyarrow.parquet as pq
    import wfdb.io.convert.edf as wedf

    files = sorted(f for f in os.listdir(d) if f.endswith(".edf"))
    out = os.path.join(d, "out.parquet")
    subprocess.run([physio, "convert", d, "--to", "parquet", "--out", out,
                    "--annotations", "edf"], check=True, capture_output=True)
    rows = {r["record"]: r for r in pq.read_table(out).to_pylist()}
    errors, compared = [], {}
    for name in files:
        path = os.path.join(d, name)
        row = rows.get(name)
        if row is None:
            errors.append(f"{name}: no row in the Parquet output")
            continue
        info = json.loads(subprocess.run([physio, "info", "--json", path], check=True,
                                         capture_output=True, text=True).stdout)
        ref = pyedflib_read(path)
        n_values = 0
        if ref is not None:
            used = "pyedflib"
            sigs = ref["signals"]
            if row["sig_name"] != [s["label"] for s in sigs]:
                errors.append(f"{name}: sig_name {row['sig_name']} vs {[s['label'] for s in sigs]}")
            for j, s in enumerate(sigs):
                if j >= len(row["signal"]):
                    break
                spf = info["samps_per_frame"][j]
                if not math.isclose(info["fs"] * spf, s["fs"], rel_tol=1e-9):
                    errors.append(f"{name} {s['label']}: fs {info['fs']}*{spf} vs {s['fs']}")
                if row["units"][j] != s["dim"]:
                    errors.append(f"{name} {s['label']}: units {row['units'][j]!r} vs {s['dim']!r}")
                ours = np.asarray(row["signal"][j], dtype=np.float32)
                if info["edf"]["variant"] == "EDF+D":
                    # edflib reads EDF+D records back to back, without the gaps.
                    gaps = np.isnan(ours)
                    compared[f"{name} gap samples"] = int(gaps.sum())
                    ours = ours[~gaps]
                same_f32(ours, s["values"], f"{name} {s['label']}", errors)
                n_values += len(ours)
            start = ref["start"]
            if info["base_date"] != start.date().isoformat():
                errors.append(f"{name}: base_date {info['base_date']} vs {start.date()}")
            if info["base_time"][:8] != start.time().isoformat()[:8]:
                errors.append(f"{name}: base_time {info['base_time']} vs {start.time()}")
            if row["base_time"] != info["base_time"]:
                errors.append(f"{name}: Parquet base_time {row['base_time']} vs info {info['base_time']}")
            want = [(math.floor(o * info["fs"] + 0.5), t) for o, _, t in ref["annotations"]]
            ann = row["annotations"] or []
            got = [(a["sample"], a["aux"]) for a in ann]
            if sorted(got) != sorted(want):
                errors.append(f"{name}: annotations {got} vs pyedflib {want}")
            compared[f"{name} annotations"] = len(got)
        else:
            used = "MNE"
            sfreq, chans, mne_ann = mne_read(path)
            for j, label in enumerate(row["sig_name"]):
                spf = info["samps_per_frame"][j]
                ours = np.asarray(row["signal"][j])
                if info["edf"]["variant"] == "EDF+D":
                    # MNE reads EDF+D records back to back, without the gaps.
                    gaps = np.isnan(ours)
                    compared[f"{name} gap samples"] = int(gaps.sum())
                    ours = ours[~gaps]
                if label not in chans:
                    errors.append(f"{name}: MNE has no channel {label}")
                    continue
                if not math.isclose(info["fs"] * spf, sfreq, rel_tol=1e-9):
                    continue  # MNE resamples slower channels to the fastest rate
                same_f32(ours, chans[label], f"{name} {label}", errors)
                n_values += len(ours)
            want = [(math.floor(o * info["fs"] + 0.5), t) for o, t in mne_ann]
            got = [(a["sample"], a["aux"]) for a in (row["annotations"] or [])]
            if info["edf"]["variant"] == "EDF+D":
                # MNE drops annotations beyond its gap-less data; use what gen() wrote.
                want = WRITTEN_ANNOTATIONS[name]
            if sorted(got) != sorted(want):
                errors.append(f"{name}: annotations {got} vs MNE {want}")
            compared[f"{name} annotations"] = len(got)
        for key, want in EXPECTED.get(name, {}).items():
            if compared.get(f"{name} {key}") != want:
                errors.append(f"{name}: {key} {compared.get(f'{name} {key}')}, written {want}")
        # Header fields as written, against the header bytes parsed here.
        with open(path, "rb") as f:
            raw = f.read(256)
        ns = int(raw[252:256])
        with open(path, "rb") as f:
            hdr = f.read(256 * (ns + 1))
        e = info["edf"]
        if e["patient_id"] != hdr[8:88].decode("latin-1").strip():
            errors.append(f"{name}: patient_id {e['patient_id']!r}")
        if e["recording_id"] != hdr[88:168].decode("latin-1").strip():
            errors.append(f"{name}: recording_id {e['recording_id']!r}")
        labels = [hdr[256 + 16 * i:256 + 16 * (i + 1)].decode("latin-1").strip() for i in range(ns)]
        if [s["label"] for s in e["signals"]] != labels:
            errors.append(f"{name}: edf.signals labels {e['signals']} vs {labels}")
        # wfdb-python's EDF reader (header only; it refuses EDF+D).
        w = None
        if e["variant"] != "EDF+D":
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # it prints hints
                    w = wedf.read_edf(path, header_only=True)
            except (ValueError, ZeroDivisionError) as x:  # e.g. log2(0) on a blank channel
                compared[f"{name} wfdb-python"] = f"refuses: {x}"
        if w is not None:
            wnames = [s for s in w["sig_name"] if s != "EDF Annotations"]
            if info["sig_name"] != wnames:
                errors.append(f"{name}: sig_name vs wfdb-python {wnames}")
            if (info["base_date"], info["base_time"][:8]) != (str(w["base_date"]), str(w["base_time"])):
                errors.append(f"{name}: start vs wfdb-python {w['base_date']} {w['base_time']}")
            if not math.isclose(info["sig_len"] / info["fs"], w["sig_len"] / w["fs"]):
                errors.append(f"{name}: duration vs wfdb-python")
        compared[name] = f"{n_values} values vs {used}"
    print(json.dumps({"files": len(files), "compared": compared, "errors": errors}, indent=1))
    return 1 if errors else 0


def annotations(path):
    ref = pyedflib_read(path)
    print(json.dumps({"subsecond": ref["subsecond"] if ref else None,
                      "annotations": ref["annotations"] if ref else None}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "gen":
        gen(sys.argv[2])
    elif cmd == "check":
        sys.exit(check(sys.argv[2], sys.argv[3]))
    elif cmd == "annotations":
        annotations(sys.argv[2])
    else:
        sys.exit(f"unknown command {cmd}")
