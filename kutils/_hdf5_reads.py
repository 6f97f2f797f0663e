"""How ``HDF5Matrix`` reads: files opened with a small sieve buffer, and several runs of
rows read with one HDF5 call (a union of hyperslabs).

A block-shuffled batch of ``HDF5Dataset`` (and a sparse index list) is read as a union:
one h5py ``read_direct`` per run costs about as much again in per-call overhead. The
HDF5 objects that stay the same from one batch to the next are made once per dataset
instead of once per read: the memory datatype, and, per thread (a selection is rebuilt
for each read), the file dataspace and the memory dataspace of the last shape read.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import h5py

__all__ = ["open_read_only", "read_union"]

# HDF5 reads a run of a contiguous dataset that is smaller than the file's sieve buffer
# (64 KiB by default) by filling the whole buffer from the file and copying the run out
# of it. A shuffled batch of a narrow matrix (float32 labels in blocks of 128 rows: one
# 512-byte run per block) then copies 128 times its size. One page is the least the
# kernel copies anyway; runs of a page or more are read straight into the batch.
_SIEVE_BYTES = 4096


def open_read_only(path: str) -> h5py.File:
    """``h5py.File(path, "r")``, with a sieve buffer of one page (``_SIEVE_BYTES``)."""
    import h5py
    from h5py import h5f, h5p

    access = h5p.create(h5p.FILE_ACCESS)
    access.set_sieve_buf_size(_SIEVE_BYTES)
    # The name as h5py encodes it: UTF-8 on Windows, the file system's encoding elsewhere.
    name = path.encode("utf-8") if sys.platform == "win32" else os.fsencode(path)
    return h5py.File(h5f.open(name, h5f.ACC_RDONLY, fapl=access))


def read_union(data: h5py.Dataset, runs: Sequence[tuple[int, int]]) -> np.ndarray:
    """Dataset rows of the increasing, disjoint runs ``[a, b)``, concatenated, in one read.

    HDF5 fills the buffer in file order, which is the runs' order.
    """
    runs = [(a, b) for a, b in runs if b > a]
    total = sum(b - a for a, b in runs)
    out = np.empty((total, *data.shape[1:]), dtype=data.dtype)
    if total:
        _reader(data).read(runs, out)
    return out


class _UnionReader:
    """The reusable HDF5 objects for union reads of one ``h5py.Dataset``."""

    def __init__(self, data: h5py.Dataset) -> None:
        from h5py import h5t

        self._dataset_id = data.id
        # What h5py makes for every read into an array of the dataset's dtype.
        self._memory_type = h5t.py_create(data.dtype)
        self._local = threading.local()

    def read(self, runs: list[tuple[int, int]], out: np.ndarray) -> None:
        from h5py import h5s

        local = self._local
        file_space = getattr(local, "file_space", None)
        if file_space is None:
            # A copy of the dataset's dataspace: the file is read-only, its extent fixed.
            file_space = local.file_space = self._dataset_id.get_space()
        tail = out.shape[1:]
        origin = (0,) * len(tail)
        operation = h5s.SELECT_SET  # replaces the previous read's selection
        for first, stop in runs:
            file_space.select_hyperslab((first, *origin), (stop - first, *tail), op=operation)
            operation = h5s.SELECT_OR
        memory = getattr(local, "memory_space", None)
        if memory is None or memory[0] != out.shape:
            memory = local.memory_space = (out.shape, h5s.create_simple(out.shape))
        self._dataset_id.read(memory[1], file_space, out, self._memory_type)


# Readers by the identity of their h5py.Dataset object (h5py objects compare equal when
# they name the same HDF5 object, even in a file closed since), dropped with it.
_readers: dict[int, tuple[weakref.ref[Any], _UnionReader]] = {}
_readers_lock = threading.RLock()  # reentrant: a weakref callback may run while held


def _reader(data: h5py.Dataset) -> _UnionReader:
    key = id(data)
    with _readers_lock:
        entry = _readers.get(key)
        if entry is not None and entry[0]() is data:
            return entry[1]
        reader = _UnionReader(data)

        def forget(ref: weakref.ref[Any]) -> None:
            with _readers_lock:
                if _readers.get(key, (None,))[0] is ref:
                    del _readers[key]

        _readers[key] = (weakref.ref(data, forget), reader)
        return reader
