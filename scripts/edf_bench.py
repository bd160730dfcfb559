#!/usr/bin/env python3
"""Times pyedflib and MNE reading the benchmark EDF file (scripts/bench-decode) whole:
wall time and this thread's CPU time, best of 3.

    edf_bench.py FILE.edf    one JSON line per reader and mode
"""

import json
import os
import sys
import time
import warnings

warnings.simplefilter("ignore")


def pyedflib_read(path, digital):
    import pyedflib
    f = pyedflib.EdfReader(path)
    try:
        return [f.readSignal(j, digital=digital) for j in range(f.signals_in_file)]
    finally:
        f.close()


def mne_read(path, digital):
    import mne
    return mne.io.read_raw_edf(path, preload=True, verbose="ERROR").get_data()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    size = os.path.getsize(path)
    for reader, fn, modes in (("pyedflib", pyedflib_read, ("digital", "physical")),
                              ("mne", mne_read, ("physical",))):
        for mode in modes:
            best = best_cpu = float("inf")
            for _ in range(3):
                t, c = time.perf_counter(), time.thread_time()
                data = fn(path, mode == "digital")
                best = min(best, time.perf_counter() - t)
                best_cpu = min(best_cpu, time.thread_time() - c)
                del data
            print(json.dumps({"reader": reader, "mode": mode, "bytes": size,
                              "seconds": round(best, 6), "cpu_seconds": round(best_cpu, 6),
                              "mb_per_s": round(size / 1e6 / best, 1),
                              "mb_per_cpu_s": round(size / 1e6 / best_cpu, 1)}))


if __name__ == "__main__":
    main()
