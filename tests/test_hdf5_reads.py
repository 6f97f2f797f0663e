"""kutils/_hdf5_reads.py on real HDF5 files: union reads, their reused HDF5 objects, the
sieve buffer of the files HDF5Matrix opens, and the rows of a block-shuffled epoch."""

from __future__ import annotations

import gc
import math
import os
import threading

import h5py
import numpy as np
import pytest

from kutils import HDF5Dataset, HDF5Matrix, _hdf5_reads
from kutils._hdf5_reads import open_read_only, read_union

LAYOUTS = {
    "contiguous": {},
    "chunked": {"chunks": True},
    "gzip": {"chunks": True, "compression": "gzip"},
}


def _write(path, shape, dtype, layout="contiguous"):
    values = (np.arange(math.prod(shape)) % 199).astype(dtype).reshape(shape)
    with h5py.File(path, "a") as file:
        file.create_dataset("data", data=values, **LAYOUTS[layout])
    return values


def _expected(values, runs):
    return np.concatenate([values[a:b] for a, b in runs] or [values[:0]])


RUNS = [
    [(0, 3)],
    [(0, 2), (5, 9), (20, 21)],
    [(3, 3), (4, 6), (6, 6), (30, 40)],  # empty runs are skipped
    [(7, 7)],
    [],
    [(0, 40)],
]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((40,), "int64"), ((40, 3), "float32"), ((40, 1), "float32"), ((40, 4, 2), "uint8")],
)
def test_union_reads_the_runs_rows_in_order(tmp_path, layout, shape, dtype):
    values = _write(tmp_path / "d.h5", shape, dtype, layout)
    with open_read_only(str(tmp_path / "d.h5")) as file:
        data = file["data"]
        for _ in range(2):  # again, with the dataspaces kept from the first reads
            for runs in RUNS:
                result = read_union(data, runs)
                assert result.dtype == values.dtype
                np.testing.assert_array_equal(result, _expected(values, runs))


def test_union_reads_from_several_threads_at_once(tmp_path):
    values = _write(tmp_path / "d.h5", (5000, 7), "float64")
    failures = []

    def read(seed):
        rng = np.random.default_rng(seed)
        for _ in range(200):
            starts = np.sort(rng.choice(np.arange(0, 5000, 50), size=4, replace=False))
            runs = [(int(a), int(a) + int(rng.integers(1, 50))) for a in starts]
            if not np.array_equal(read_union(data, runs), _expected(values, runs)):
                failures.append(runs)

    with open_read_only(str(tmp_path / "d.h5")) as file:
        data = file["data"]
        threads = [threading.Thread(target=read, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not failures


def test_two_open_files_on_one_path_keep_their_own_hdf5_objects(tmp_path):
    # h5py datasets compare equal (and hash alike) when they name the same HDF5 object
    # through two open files: the reused objects must follow the Python object, or a
    # read through the second file would use the first one's after it is closed.
    path = str(tmp_path / "d.h5")
    values = _write(path, (30, 2), "int64")
    first, second = open_read_only(path), h5py.File(path, "r")
    try:
        assert first["data"] == second["data"]
        kept = first["data"]
        read_union(kept, [(0, 2), (4, 5)])
        first.close()
        runs = [(1, 3), (10, 12)]
        np.testing.assert_array_equal(read_union(second["data"], runs), _expected(values, runs))
    finally:
        first.close()
        second.close()


def test_reused_objects_are_dropped_with_their_dataset(tmp_path):
    path = str(tmp_path / "d.h5")
    _write(path, (30, 2), "int64")
    gc.collect()
    before = len(_hdf5_reads._readers)
    for _ in range(20):
        with open_read_only(path) as file:
            read_union(file["data"], [(0, 2), (4, 5)])
    gc.collect()
    assert len(_hdf5_reads._readers) <= before + 1


def test_files_open_read_only_with_a_one_page_sieve_buffer(tmp_path):
    path = str(tmp_path / "dé 数据.h5")  # a name h5py would encode
    values = _write(path, (10, 2), "int64")
    file = open_read_only(path)
    try:
        assert file.mode == "r"
        assert file.id.get_access_plist().get_sieve_buf_size() == 4096
        np.testing.assert_array_equal(file["data"][:], values)
        with pytest.raises((OSError, ValueError)):
            file.create_dataset("other", data=[1])
    finally:
        file.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="reads bytes from /proc")
def test_shuffled_labels_read_about_a_page_per_block(tmp_path):
    # HDF5's default 64 KiB sieve buffer read 64 KiB from the file for every 512-byte
    # block of float32 labels; a one-page sieve reads at most a page per block.
    path = tmp_path / "labels.h5"
    rows, block = 64 * 1024, 128
    with h5py.File(path, "w") as file:
        file["y"] = np.arange(rows, dtype="float32")
    labels = HDF5Matrix(path, "y")
    dataset = HDF5Dataset(labels, batch_size=1024, shuffle=True, block_size=block, seed=0)
    dataset[0]  # open the file first
    before = _bytes_read()
    seen = np.concatenate([dataset[i][0] for i in range(len(dataset))])
    read = _bytes_read() - before
    labels.close()
    np.testing.assert_array_equal(np.sort(seen), np.arange(rows, dtype="float32"))
    assert read <= (rows // block) * 4096 + (1 << 20)


def _bytes_read():
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


def _documented_block_shuffle(rows, batch_size, block_size, seed, epoch):
    """The rows of each batch as the HDF5Dataset docstring defines the block shuffle."""
    epoch_seed = int(np.random.default_rng([seed, epoch]).integers(2**63 - 1))
    blocks = np.random.default_rng(epoch_seed).permutation(math.ceil(rows / block_size))
    sequence = np.concatenate(
        [np.arange(b * block_size, min((b + 1) * block_size, rows)) for b in blocks]
    )
    return [np.sort(sequence[i : i + batch_size]) for i in range(0, rows, batch_size)]


@pytest.mark.parametrize(
    ("rows", "batch_size", "block_size", "seed"),
    [(1000, 64, 8, 0), (1003, 100, 7, 1), (97, 10, 33, 2), (5, 2, 3, 3), (50, 7, 200, 4)],
)
def test_a_seed_gives_the_documented_block_shuffle(tmp_path, rows, batch_size, block_size, seed):
    # Users may rely on a seed giving the same batches from one kutils release to the next.
    path = tmp_path / "rows.h5"
    with h5py.File(path, "w") as file:
        file["x"] = np.arange(rows, dtype="int64")
        file["y"] = np.arange(rows, dtype="int64")[:, None]
    dataset = HDF5Dataset(
        HDF5Matrix(path, "x"),
        HDF5Matrix(path, "y"),
        batch_size=batch_size,
        shuffle=True,
        block_size=block_size,
        seed=seed,
    )
    for epoch in range(3):
        expected = _documented_block_shuffle(rows, batch_size, block_size, seed, epoch)
        assert len(dataset) == len(expected)
        for i, rows_expected in enumerate(expected):
            x, y = dataset[i]
            np.testing.assert_array_equal(x, rows_expected)
            np.testing.assert_array_equal(y[:, 0], rows_expected)
        dataset.on_epoch_end()
