#!/usr/bin/env python3
"""Cross-check physio's WFDB reader and writer against wfdb-python (the reference).

    wfdbpy_roundtrip.py write OUTDIR   write random records with wfdb.wrsamp in every
                                       format wfdb-python writes, then print (JSON) what
                                       wfdb.rdrecord reads back from each
    wfdbpy_roundtrip.py read RECORD    print (JSON) what wfdb.rdrecord reads from RECORD

The JSON is {record name: {"sig_len", "signals": [{"name", "n_samples",
"sha256_i32le", "sha256_f64le"}]}}: digests of the digital samples (int32 LE) and of
the physical values (float64 LE, NaN written as 00..f87f), so the Rust test
(tests/it/wfdb_python.rs) can compare bit for bit without shipping arrays.
Run by the test suite; needs wfdb and numpy (soundfile for the FLAC formats).
"""

import hashlib
import json
import os
import sys

import numpy as np
import wfdb

CANON_NAN = np.frombuffer(bytes([0, 0, 0, 0, 0, 0, 0xF8, 0x7F]), dtype="<f8")[0]


def digests(record_path):
    """What wfdb.rdrecord returns for a record, as digests per signal."""
    hdr = wfdb.rdheader(record_path)
    # wfdb 4.3.1 cannot read format 61 with smooth_frames=False (big-endian dtype
    # name); with one sample per frame both modes return the same samples.
    smooth = "61" in (hdr.fmt or []) and all(s == 1 for s in hdr.samps_per_frame)
    dig = wfdb.rdrecord(record_path, physical=False, smooth_frames=smooth)
    phy = wfdb.rdrecord(record_path, physical=True, smooth_frames=smooth)
    if smooth:
        d_sigs = [dig.d_signal[:, j] for j in range(dig.n_sig)]
        p_sigs = [phy.p_signal[:, j] for j in range(phy.n_sig)]
    else:
        d_sigs, p_sigs = dig.e_d_signal, phy.e_p_signal
    out = {"sig_len": int(dig.sig_len), "signals": []}
    for name, d, p in zip(dig.sig_name, d_sigs, p_sigs):
        p = np.where(np.isnan(p), CANON_NAN, p).astype("<f8")
        out["signals"].append(
            {
                "name": name,
                "n_samples": int(len(d)),
                "sha256_i32le": hashlib.sha256(
                    np.asarray(d).astype("<i4").tobytes()
                ).hexdigest(),
                "sha256_f64le": hashlib.sha256(p.tobytes()).hexdigest(),
            }
        )
    return out


def random_physical(rng, n, n_sig, nan_fraction):
    sig = rng.normal(0.0, 1.0, size=(n, n_sig)).cumsum(axis=0) * 0.05
    if nan_fraction:
        sig[rng.random(size=sig.shape) < nan_fraction] = np.nan
    return sig


def write_all(outdir):
    rng = np.random.default_rng(20261125)
    os.makedirs(outdir, exist_ok=True)
    written = []

    def wr(name, fmt, n, nan_fraction=0.02, **kw):
        n_sig = len(fmt)
        p = random_physical(rng, n, n_sig, nan_fraction)
        # Gains chosen so every format's range is exercised but not exceeded.
        bits = {"8": 8, "80": 8, "508": 8, "310": 10, "311": 10, "212": 12}
        gain = [float(2 ** (bits.get(f, 16) - 4)) for f in fmt]
        wfdb.wrsamp(
            name,
            fs=250 + len(written),
            units=["mV"] * n_sig,
            sig_name=[f"{name}_s{j}_fmt{f}" for j, f in enumerate(fmt)],
            p_signal=p,
            fmt=fmt,
            adc_gain=gain,
            baseline=[int(rng.integers(-20, 20)) for _ in fmt],
            write_dir=outdir,
            **kw,
        )
        written.append(name)

    # Several signals per file: consecutive equal formats share one file.
    wr("mixed", ["16", "16", "212", "212", "212", "80", "24", "32"], 1001)
    # wfdb.wrsamp writes formats 80, 212, 16, 24 and 32 (and FLAC, below).
    for fmt, n in [
        ("16", 7),
        ("212", 999),
        ("212", 1),
        ("80", 1000),
        ("24", 513),
        ("32", 301),
    ]:
        wr(f"f{fmt}_{n}", [fmt, fmt, fmt], n)
    # Several samples per frame (expanded signals).
    spf = [1, 2, 3]
    n = 301
    e_p = [random_physical(rng, n * k, 1, 0.02)[:, 0] for k in spf]
    wfdb.wrsamp(
        "spf",
        fs=125,
        units=["mV", "mV", "mmHg"],
        sig_name=["a", "b", "c"],
        e_p_signal=e_p,
        samps_per_frame=spf,
        fmt=["16", "16", "212"],
        adc_gain=[1000.0, 500.0, 200.0],
        baseline=[0, 7, -3],
        write_dir=outdir,
    )
    written.append("spf")
    try:
        import soundfile  # noqa: F401

        for fmt, n in [("508", 333), ("516", 1000), ("524", 1001)]:
            wr(f"f{fmt}_{n}", [fmt, fmt], n)
    except ImportError:
        pass
    return {name: digests(os.path.join(outdir, name)) for name in written}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "read"):
        sys.exit(__doc__)
    if sys.argv[1] == "write":
        result = write_all(sys.argv[2])
    else:
        path = sys.argv[2]
        result = {os.path.basename(path): digests(path)}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
