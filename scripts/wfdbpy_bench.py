#!/usr/bin/env python3
"""Times wfdb-python's rdrecord on the benchmark records (scripts/bench-decode):
wall time and this thread's CPU time, best of 3.

    wfdbpy_bench.py DIR RECORD...   one JSON line per record and mode (best of 3)
"""

import json
import os
import sys
import time

import wfdb


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    d = sys.argv[1]
    for name in sys.argv[2:]:
        path = os.path.join(d, name)
        size = os.path.getsize(path + ".dat")
        for mode, physical in (("digital", False), ("physical", True)):
            best = best_cpu = float("inf")
            for _ in range(3):
                t, c = time.perf_counter(), time.thread_time()
                rec = wfdb.rdrecord(path, physical=physical)
                best = min(best, time.perf_counter() - t)
                best_cpu = min(best_cpu, time.thread_time() - c)
                del rec
            print(json.dumps({"record": name, "mode": mode, "bytes": size,
                              "seconds": round(best, 6),
                              "cpu_seconds": round(best_cpu, 6),
                              "mb_per_s": round(size / 1e6 / best, 1),
                              "mb_per_cpu_s": round(size / 1e6 / best_cpu, 1)}))


if __name__ == "__main__":
    main()
