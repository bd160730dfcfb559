#!/usr/bin/env python3
"""Load physio Parquet into [batch, channels, samples] arrays (docs/training.md).

    python scripts/load_example.py OUT            # OUT: a .parquet file or a directory
    python scripts/load_example.py OUT --check ROOT   # also compare with wfdb-python

Works for every dtype physio writes: float32 and float16 are returned as stored;
int16 (`--dtype i16`) is scaled with the per-row `gain` / `baseline` columns, as a loader
would do on the GPU. Arrow buffers are viewed, not copied, wherever Arrow allows it:
`numpy_view` wraps the Arrow buffer itself (it raises on nulls instead of silently
copying), and the returned array's `.base` chain ends in Arrow memory. PyTorch, when installed, wraps the same
memory with `torch.from_numpy`.
"""

import glob
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def parquet_files(path):
    """A .parquet file, or the part-*.parquet files of an output directory, in order."""
    if os.path.isdir(path):
        return sorted(glob.glob(os.path.join(path, "*.parquet")))
    return [path]


_NUMPY_TYPES = {
    pa.float32(): np.float32,
    pa.float16(): np.float16,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
}


def numpy_view(arr):
    """Zero-copy numpy view of a primitive Arrow array without nulls.

    What `arr.to_numpy(zero_copy_only=True)` returns, without its first call importing
    pandas (pyarrow's pandas shim does when pandas is installed, as it is with wfdb):
    ~0.16 s, about as long as decoding every sample of the benchmark corpus."""
    if arr.null_count:
        raise ValueError("the array has nulls: no zero-copy view")
    dtype = np.dtype(_NUMPY_TYPES[arr.type])
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def list_values(arr):
    """`arr.flatten()` for a list array without null lists, as a zero-copy slice of its
    child array; `flatten()` first imports `pyarrow.compute` (~0.03 s)."""
    if arr.null_count:
        raise ValueError("the list array has null lists")
    offsets = numpy_view(arr.offsets)
    return arr.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def record_batch_to_array(batch):
    """`--layout record` or `windows` batch -> [rows, channels, samples] (zero-copy view)."""
    col = batch.column("signal")
    if isinstance(col.type, pa.FixedShapeTensorType):
        # windows: Arrow's fixed-shape tensor; numpy view of the storage buffer.
        return col.to_numpy_ndarray()
    # record: list<list<value>>; flattening twice is offset arithmetic, no copy.
    rows = len(col)
    channels = list_values(col)
    values = numpy_view(list_values(channels))
    if rows == 0:
        return values.reshape(0, 0, 0)
    n_ch = len(channels) // rows
    per_channel = len(values) // len(channels)
    lengths = np.diff(numpy_view(channels.offsets))
    if not (lengths == per_channel).all() or len(channels) != rows * n_ch:
        raise ValueError("records differ in shape; use --layout windows for a uniform tensor")
    return values.reshape(rows, n_ch, per_channel)


def scale_int16(batch, arr):
    """`--dtype i16`: (digital - baseline) / gain per row and channel, in float32."""
    gain = np.stack(batch.column("gain").to_pylist()).astype(np.float32)
    base = np.stack(batch.column("baseline").to_pylist()).astype(np.float32)
    out = (arr.astype(np.float32) - base[:, :, None]) / gain[:, :, None]
    out[arr == np.iinfo(np.int16).min] = np.nan  # the invalid/padding value
    return out


def iter_batches(path, batch_size=256):
    """Yields (record names, [batch, channels, samples] array) per Arrow batch; memory
    stays at one batch, so this is the shape of a PyTorch IterableDataset."""
    for f in parquet_files(path):
        pf = pq.ParquetFile(f)
        for batch in pf.iter_batches(batch_size=batch_size):
            arr = record_batch_to_array(batch)
            if arr.dtype == np.int16:
                arr = scale_int16(batch, arr)
            yield batch.column("record").to_pylist(), arr


def load(path, threads=None):
    """The whole output as one [rows, channels, samples] array, and the record names.

    Row groups are decoded in parallel threads (pyarrow releases the GIL while it
    decodes) straight into one preallocated array: Parquet decoding of the nested
    `signal` lists is the cost, and `read_table` decodes one column on one thread and
    then needs a second copy to concatenate chunks. Measured in docs/parquet.md.
    """
    pieces = []  # (file, row group, first row, rows)
    row = 0
    for f in parquet_files(path):
        md = pq.ParquetFile(f).metadata
        for g in range(md.num_row_groups):
            n = md.row_group(g).num_rows
            if n:
                pieces.append((f, g, row, n))
                row += n
    names = []
    for f in parquet_files(path):
        # ParquetFile.read, not pq.read_table: read_table goes through pyarrow.dataset,
        # whose first import costs ~0.2 s, as much as decoding all the samples.
        names += pq.ParquetFile(f).read(columns=["record"]).column("record").to_pylist()
    if not pieces:
        return names, np.empty((0, 0, 0), np.float32)

    def read(piece):
        f, g, _, _ = piece
        pf = pq.ParquetFile(f)
        columns = [c for c in ("signal", "gain", "baseline") if c in pf.schema_arrow.names]
        table = pf.read_row_group(g, columns=columns, use_threads=False)
        batch = table.combine_chunks().to_batches()[0]
        arr = record_batch_to_array(batch)
        return scale_int16(batch, arr) if arr.dtype == np.int16 else arr

    first = read(pieces[0])
    out = np.empty((row,) + first.shape[1:], first.dtype)
    out[: len(first)] = first

    def fill(piece):
        arr = read(piece)
        if arr.shape[1:] != out.shape[1:]:
            raise ValueError("row groups differ in shape; use --layout windows")
        out[piece[2] : piece[2] + piece[3]] = arr

    with ThreadPoolExecutor(threads or os.cpu_count()) as pool:
        list(pool.map(fill, pieces[1:]))
    return names, out


def check_against_wfdb(path, root):
    """Every row equals wfdb-python's physical signal (record layout)."""
    import wfdb

    names, arr = load(path)
    for k, name in enumerate(names):
        signal, _ = wfdb.rdsamp(os.path.join(root, name))
        want = signal.T.astype(np.float32)
        got = arr[k].astype(np.float32)
        if arr.dtype == np.float16:
            assert np.allclose(got, want, rtol=1e-3, atol=1e-3, equal_nan=True), name
        else:
            assert np.allclose(got, want, rtol=1e-6, atol=1e-6, equal_nan=True), name
    return len(names)


def main():
    path = sys.argv[1]
    names, arr = load(path)
    summary = {"rows": len(names), "shape": list(arr.shape), "dtype": str(arr.dtype)}
    # Zero-copy evidence: a float32/float16 batch is a view whose base is Arrow memory.
    _, first = next(iter_batches(path))
    summary["zero_copy"] = first.base is not None and first.dtype != np.int16
    try:
        import torch

        t = torch.from_numpy(first)
        summary["torch_shape"] = list(t.shape)
    except ImportError:
        pass
    if "--check" in sys.argv:
        summary["checked"] = check_against_wfdb(path, sys.argv[sys.argv.index("--check") + 1])
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
