#!/usr/bin/env python3
"""PyTorch datasets over physio's Parquet (`--layout record` and `--layout windows`).

    import sys; sys.path.insert(0, "scripts")
    from physio_torch import PhysioDataset, PhysioIterableDataset
    from torch.utils.data import DataLoader

    ds = PhysioIterableDataset("mitdb-10s", shuffle=True, seed=0)
    for epoch in range(10):
        ds.set_epoch(epoch)
        for batch in DataLoader(ds, batch_size=64, num_workers=4):
            x = batch["signal"]        # [batch, channels, samples] float32

* `PhysioDataset` is map-style (random access by row; works with any sampler). Rows
  are read a row group at a time and the last row group is kept, so a sequential or
  row-group-local sampler decodes each group once.
* `PhysioIterableDataset` streams row groups: with `shuffle=True` the order of row
  groups and of the rows inside each group is a permutation drawn from `seed + epoch`
  (the usual shuffle for columnar data: a full shuffle would decode a row group per
  row). Row groups are split between DataLoader workers (`worker_id::num_workers`) and,
  with `rank`/`world_size`, between distributed processes, so every row is yielded
  exactly once per epoch.

Items are dicts: `signal` (a `[channels, samples]` float32 tensor, a view of Arrow
memory where possible), `record` (str) and, for windows, `start` (the first frame).
`--dtype f16` rows come out as float16 unless `dtype=torch.float32` is given; `--dtype
i16` rows are scaled with the row's `gain`/`baseline` to float32, invalid samples NaN.
Records of different shapes (layout record of a mixed dataset) cannot be stacked by the
default collate: use `--layout windows` or `batch_size=1`.

Run as a script it checks itself against wfdb-python (the test suite does):

    python scripts/physio_torch.py OUT --check ROOT [--workers N] [--batch B]
"""

import json
import os
import sys

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load_example  # noqa: E402  (the zero-copy Arrow -> numpy helpers)

_COLUMNS = ("record", "start", "signal", "gain", "baseline")


def _row_groups(path):
    """[(file, row group, rows)] of a physio output, in file and group order."""
    groups = []
    for f in load_example.parquet_files(path):
        md = pq.ParquetFile(f).metadata
        for g in range(md.num_row_groups):
            n = md.row_group(g).num_rows
            if n:
                groups.append((f, g, n))
    return groups


def _read_group(file, group):
    """(record names, start frames or None, [rows, channels, samples] array)."""
    pf = pq.ParquetFile(file)
    columns = [c for c in _COLUMNS if c in pf.schema_arrow.names]
    batch = pf.read_row_group(group, columns=columns, use_threads=False).combine_chunks().to_batches()[0]
    arr = load_example.record_batch_to_array(batch)
    if arr.dtype == np.int16:
        arr = load_example.scale_int16(batch, arr)
    names = batch.column("record").to_pylist()
    starts = batch.column("start").to_pylist() if "start" in columns else None
    return names, starts, arr


def _item(names, starts, arr, i, dtype):
    # torch.from_numpy needs a writable array; Arrow memory is read-only, so copy the
    # one row (a [C, S] copy per item; the decode itself was zero-copy).
    x = torch.from_numpy(np.array(arr[i], copy=True))
    if dtype is not None:
        x = x.to(dtype)
    item = {"signal": x, "record": names[i]}
    if starts is not None:
        item["start"] = starts[i]
    return item


class PhysioDataset(Dataset):
    """Map-style dataset: row `i` of the output (files and row groups in order)."""

    def __init__(self, path, dtype=None):
        self.groups = _row_groups(path)
        self.dtype = dtype
        self.offsets = np.cumsum([0] + [n for _, _, n in self.groups])
        self._cached = (None, None)

    def __len__(self):
        return int(self.offsets[-1])

    def __getitem__(self, i):
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = int(np.searchsorted(self.offsets, i, side="right") - 1)
        key, data = self._cached
        if key != k:
            f, g, _ = self.groups[k]
            data = _read_group(f, g)
            self._cached = (k, data)
        return _item(*data, i - int(self.offsets[k]), self.dtype)


class PhysioIterableDataset(IterableDataset):
    """Streams rows a row group at a time, shuffled by row group, split by worker."""

    def __init__(self, path, shuffle=False, seed=0, rank=0, world_size=1, dtype=None):
        self.groups = _row_groups(path)
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.rank = rank
        self.world_size = world_size
        self.dtype = dtype

    def set_epoch(self, epoch):
        """A new shuffle order for each epoch (call before iterating, in every process)."""
        self.epoch = epoch

    def __len__(self):
        return sum(n for _, _, n in self.groups)

    def _my_groups(self):
        order = np.arange(len(self.groups))
        rng = np.random.default_rng(self.seed + self.epoch)
        if self.shuffle:
            rng.shuffle(order)
        order = order[self.rank :: self.world_size]
        info = get_worker_info()
        if info is not None:
            order = order[info.id :: info.num_workers]
        return order, rng

    def __iter__(self):
        order, rng = self._my_groups()
        for k in order:
            f, g, _ = self.groups[k]
            names, starts, arr = _read_group(f, g)
            rows = np.arange(len(names))
            if self.shuffle:
                # Seeded by the group as well, so workers draw independent orders.
                np.random.default_rng([self.seed, self.epoch, int(k)]).shuffle(rows)
            for i in rows:
                yield _item(names, starts, arr, int(i), self.dtype)


def _check(path, root, workers, batch):
    """Every batch equals wfdb-python's samples; every row comes exactly once."""
    import wfdb
    from torch.utils.data import DataLoader

    cache = {}

    def expected(name, start, samples):
        if name not in cache:
            sig, _ = wfdb.rdsamp(os.path.join(root, name))
            cache[name] = sig.T.astype(np.float32)
        want = cache[name]
        return want if start is None else want[:, start : start + samples]

    summary = {}
    for kind, ds in (
        ("map", PhysioDataset(path, dtype=torch.float32)),
        ("iterable", PhysioIterableDataset(path, shuffle=True, seed=7, dtype=torch.float32)),
    ):
        seen = []
        shapes = set()
        loader = DataLoader(ds, batch_size=batch, num_workers=workers, shuffle=kind == "map")
        for b in loader:
            x = b["signal"]
            assert x.dim() == 3 and x.dtype == torch.float32, (x.shape, x.dtype)
            shapes.add(tuple(x.shape[1:]))
            for j, name in enumerate(b["record"]):
                start = int(b["start"][j]) if "start" in b else None
                want = expected(name, start, x.shape[2])
                got = x[j].numpy()
                if start is not None and want.shape[1] < got.shape[1]:
                    # A padded last window: NaN past the record's end.
                    assert np.isnan(got[:, want.shape[1] :]).all()
                    got = got[:, : want.shape[1]]
                assert got.shape == want.shape, (name, got.shape, want.shape)
                assert np.allclose(got, want, rtol=1e-6, atol=1e-6, equal_nan=True), name
                seen.append((name, start))
        assert len(seen) == len(set(seen)) == len(ds), (len(seen), len(set(seen)), len(ds))
        summary[kind] = {"rows": len(seen), "shapes": sorted(list(s) for s in shapes)}
    # Two epochs of the iterable dataset visit the rows in different orders.
    it = PhysioIterableDataset(path, shuffle=True, seed=7)
    first = [(r["record"], r.get("start")) for r in it]
    it.set_epoch(1)
    second = [(r["record"], r.get("start")) for r in it]
    summary["epochs_differ"] = first != second and sorted(first, key=str) == sorted(second, key=str)
    return summary


def main():
    path = sys.argv[1]
    root = sys.argv[sys.argv.index("--check") + 1]
    workers = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 2
    batch = int(sys.argv[sys.argv.index("--batch") + 1]) if "--batch" in sys.argv else 4
    print(json.dumps(_check(path, root, workers, batch)))


if __name__ == "__main__":
    main()
