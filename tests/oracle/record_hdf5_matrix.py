"""Oracle cases for ``HDF5Matrix``: every window against every index kind, plus the
attributes, normalizers and errors.

The data is a (10, 3) float32 dataset ``x`` holding ``arange(30)`` and a (10,) int64
dataset ``y``, written with h5py into a temporary file on each side.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import numpy as np

import _oracle
import _shim

AREA = "hdf5_matrix"
ROWS = 10
X = np.arange(ROWS * 3, dtype="float32").reshape(ROWS, 3)
Y = np.arange(ROWS, dtype="int64") * 7

WINDOWS = {
    "all": (0, None),
    "from-2": (2, None),
    "0:7": (0, 7),
    "3:8": (3, 8),
    "9:10": (9, 10),
    "0:10": (0, 10),
    "4:4": (4, 4),
}

# Index kinds: name -> key (callables receive the window's length).
KEYS = {
    "int-0": 0,
    "int-1": 1,
    "int-last": lambda n: n - 1,
    "int-len": lambda n: n,
    "int-minus-1": -1,
    "int-minus-len": lambda n: -n,
    "int-minus-len-1": lambda n: -n - 1,
    "int-big": 1000,
    "np-int64": np.int64(1),
    "np-int32": np.int32(0),
    "bool-true": True,
    "bool-false": False,
    "slice-all": slice(None),
    "slice-1-3": slice(1, 3),
    "slice-0-1": slice(0, 1),
    "slice-to-len": lambda n: slice(0, n),
    "slice-past-end": slice(0, 100),
    "slice-start-past-end": slice(50, None),
    "slice-minus-2": slice(-2, None),
    "slice-to-minus-1": slice(None, -1),
    "slice-step-2": slice(None, None, 2),
    "slice-step-minus-1": slice(None, None, -1),
    "slice-empty": slice(2, 2),
    "slice-reversed-bounds": slice(3, 1),
    "slice-step-3-from-1": slice(1, None, 3),
    "list-sorted": [0, 1],
    "list-gap": [0, 2],
    "list-unsorted": [1, 0],
    "list-repeat": [0, 0],
    "list-negative": [-1],
    "list-empty": [],
    "list-out-of-range": [0, 1000],
    "list-one": [1],
    "tuple-ints": (0, 1),
    "range": range(0, 2),
    "array-sorted": np.array([0, 1]),
    "array-unsorted": np.array([1, 0]),
    "array-negative": np.array([-1, 0]),
    "array-empty": np.array([], dtype=int),
    "array-uint8": np.array([0, 1], dtype="uint8"),
    "mask-all": lambda n: np.ones(n, dtype=bool),
    "mask-first": lambda n: np.arange(n) == 0,
    "mask-short": np.array([True, False]),
    "none": None,
    "float": 1.0,
    "string": "a",
    "ellipsis": Ellipsis,
    "tuple-row-col": (0, slice(None)),
}

_FILES = {}


def data_path():
    """The HDF5 file of this process (written on first use, removed at exit)."""
    if "path" not in _FILES:
        import h5py

        folder = tempfile.mkdtemp(prefix="kutils-oracle-")
        atexit.register(shutil.rmtree, folder, True)
        path = os.path.join(folder, "data.h5")
        with h5py.File(path, "w") as file:
            file.create_dataset("x", data=X)
            file.create_dataset("y", data=Y)
            file.create_dataset("group/z", data=X[:, :1])
        _FILES["path"] = path
    return _FILES["path"]


def key_for(name, n):
    key = KEYS[name]
    return key(n) if callable(key) else key


def matrix(window, dataset="x", **kwargs):
    start, end = WINDOWS[window]
    return _shim.utils.HDF5Matrix(data_path(), dataset, start=start, end=end, **kwargs)


def _index(window, key_name, dataset):
    m = matrix(window, dataset)
    value = m[key_for(key_name, len(m))]
    return np.asarray(value)


def _attributes(window, dataset):
    m = matrix(window, dataset)
    return {
        "len": len(m),
        "shape": list(m.shape),
        "dtype": str(m.dtype),
        "ndim": int(m.ndim),
        "size": int(m.size),
        "start": m.start,
        "end": m.end,
    }


def double(rows):
    return rows * 2


def first_column(rows):
    return rows[..., :1]


def _special():
    path = data_path
    H = _shim.utils.HDF5Matrix
    yield "hdf5/special/missing-dataset", lambda: H(path(), "nope")
    yield "hdf5/special/group-dataset", lambda: np.asarray(H(path(), "group/z")[0:2])
    yield "hdf5/special/start-after-end", lambda: len(H(path(), "x", start=8, end=3))
    yield "hdf5/special/end-past-data", lambda: len(H(path(), "x", start=0, end=100))
    yield "hdf5/special/normalizer", lambda: np.asarray(matrix("3:8", normalizer=double)[0:2])
    yield "hdf5/special/normalizer-int", lambda: np.asarray(matrix("3:8", normalizer=double)[1])
    yield (
        "hdf5/special/normalizer-shape",
        lambda: list(matrix("all", normalizer=first_column).shape),
    )
    yield "hdf5/special/normalizer-dtype", lambda: str(matrix("all", "y", normalizer=double).dtype)
    yield "hdf5/special/attribute-data-len", lambda: len(matrix("3:8").data)
    yield "hdf5/special/array", lambda: np.asarray(matrix("3:8"))
    yield "hdf5/special/iterate-rows", lambda: [np.asarray(r).tolist() for r in matrix("9:10")]
    yield (
        "hdf5/special/same-file-twice",
        lambda: np.asarray(matrix("all")[0]) + np.asarray(matrix("3:8")[0]),
    )
    yield "hdf5/special/io_utils-same-object", lambda: _shim.legacy("io_utils").HDF5Matrix is H
    yield "hdf5/special/refs", lambda: type(H.refs).__name__


def cases():
    for window in WINDOWS:
        for dataset in ("x", "y"):
            yield (
                f"hdf5/{dataset}/{window}/attributes",
                lambda w=window, d=dataset: _attributes(w, d),
            )
            for key_name in KEYS:
                yield (
                    f"hdf5/{dataset}/{window}/{key_name}",
                    lambda w=window, k=key_name, d=dataset: _index(w, k, d),
                )
    yield from _special()


_oracle.main(__name__, AREA, cases)
