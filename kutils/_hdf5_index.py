"""What an ``HDF5Matrix`` index means: keys turned into row numbers of the window.

``HDF5Matrix.__getitem__`` reads ints and slices itself; every other key (a list, tuple,
range, integer array or boolean mask) becomes an array of window row numbers here,
checked against the window's length, negative numbers counted from its end. A sorted
list of rows far apart is cut into its runs of consecutive rows, read as one union.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["as_index_array", "is_int", "out_of_range", "runs_of"]


def is_int(value: object) -> bool:
    # bool counts as an int, as in Keras 2 (m[True] is row 1).
    return isinstance(value, numbers.Integral)


def out_of_range(index: object, n: int) -> str:
    return (
        f"index {index} is out of range for an HDF5Matrix of length {n}: indices go from "
        f"{-n} to {n - 1}, relative to the window start:end."
    )


def as_index_array(key: Any, n: int) -> np.ndarray:
    """Window row numbers from a list, tuple, range, integer array or boolean mask."""
    if isinstance(key, (str, bytes)) or key is None or isinstance(key, float):
        msg = (
            "HDF5Matrix indices must be ints, slices, sequences or arrays of ints, or a "
            f"boolean mask. Received: key={key!r}"
        )
        raise TypeError(msg)
    try:
        indices = np.asarray(key)
    except (TypeError, ValueError) as error:
        msg = f"Cannot use {type(key).__name__} as an HDF5Matrix index. Received: key={key!r}"
        raise TypeError(msg) from error
    if indices.dtype == bool:
        if indices.shape != (n,):
            msg = (
                f"A boolean index must have one value per row: shape ({n},), the "
                f"HDF5Matrix's length. Received: a boolean index of shape {indices.shape}"
            )
            raise IndexError(msg)
        return np.flatnonzero(indices)
    if indices.size == 0:
        return indices.astype(np.int64)
    if not np.issubdtype(indices.dtype, np.integer):
        msg = (
            "HDF5Matrix indices must be integers or booleans. Received: an index of dtype "
            f"{indices.dtype}: {key!r}"
        )
        raise TypeError(msg)
    indices = indices.astype(np.int64)
    bad = (indices < -n) | (indices >= n)
    if bad.any():
        raise IndexError(out_of_range(int(indices[bad].flat[0]), n))
    return np.where(indices < 0, indices + n, indices)


def runs_of(sorted_unique: np.ndarray) -> list[tuple[int, int]]:
    """Runs ``[a, b)`` of consecutive values in an increasing integer array."""
    breaks = np.flatnonzero(np.diff(sorted_unique) != 1) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [sorted_unique.size]))
    return [
        (int(sorted_unique[a]), int(sorted_unique[b - 1]) + 1)
        for a, b in zip(starts, stops, strict=True)
    ]
