#!/usr/bin/env python3
"""Times wfdb-python's rdrecord on the benchmark records (scripts/bench-decode).

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
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                rec = wfdb.rdrecord(path, physical=physical)
                best = min(best, time.perf_counter() - t)
                del rec
            print(json.dumps({"record": name, "mode": mode, "bytes": size,
                              "seconds": round(best, 6),
                              "mb_per_s": round(size / 1e6 / best, 1)}))


if __name__ == "__main__":
    main()
