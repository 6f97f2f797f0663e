"""``HDF5Matrix``: the Keras 2 array-like view of an HDF5 dataset, for Keras 3.

An ``HDF5Matrix`` stands where a numpy array would: ``len``, ``shape``, ``dtype``,
indexing and ``np.asarray`` work as on the rows ``start:end`` of the dataset. Files are
opened read-only, once per file per process, and reopened lazily in a new process, so a
matrix can be pickled to spawn and forkserver workers.

Passed to ``model.fit``, ``evaluate`` or ``predict``, a matrix is streamed batch by batch
from disk (see :class:`kutils.HDF5Dataset`); ``np.asarray(matrix)`` reads the whole
window into memory instead.
"""

from __future__ import annotations

import errno
import os
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from kutils._hdf5_handles import Handle, Identity, acquire, release
from kutils._hdf5_index import as_index_array, is_int, out_of_range, runs_of
from kutils._hdf5_reads import read_union

if TYPE_CHECKING:
    import h5py

__all__ = ["HDF5Matrix"]

Normalizer = Callable[[np.ndarray], Any]

# Rows read per h5py call when a matrix is iterated row by row.
_ITER_BLOCK_ROWS = 1024
# A sorted index list whose rows span at most this many bytes (or that is dense enough)
# is read as one covering slice; otherwise as one slice per run of consecutive rows.
_COVERING_READ_BYTES = 8 << 20


class HDF5Matrix:
    """Representation of an HDF5 dataset to be used instead of a numpy array.

    The same as ``keras.utils.HDF5Matrix`` of Keras 2.3.1: an array-like view of the rows
    ``start:end`` of the dataset ``dataset`` in the HDF5 file ``datapath``. Indexing is
    relative to that window and returns numpy arrays, passed through ``normalizer``.

    Args:
        datapath: path of the HDF5 file (``str`` or ``os.PathLike``). It is opened
            read-only and never modified.
        dataset: name of the dataset in the file, for example ``'data'`` or
            ``'group/features'``.
        start: first row of the window, from 0 to the dataset's length.
        end: row after the last one of the window, from ``start`` to the dataset's
            length; ``None`` means the dataset's length.
        normalizer: a function applied to every array read from the file. It receives a
            batch of rows (first axis kept, even for ``m[i]``) and must return as many rows;
            ``shape`` and ``dtype`` follow its output. It must be picklable (a module-level
            function, not a lambda) for spawn or forkserver workers.
        stream: keyword-only, kutils only. ``True`` (the default): ``model.fit``,
            ``evaluate`` and ``predict`` read this matrix from disk batch by batch, as
            Keras 2 did. ``False``: they read the whole window into memory first, through
            ``np.asarray``, as Keras 3 does with any array-like.

    Raises:
        FileNotFoundError: ``datapath`` does not exist.
        OSError: ``datapath`` exists but is not an HDF5 file.
        KeyError: ``dataset`` is not in the file; the message lists the datasets that are.
        TypeError: ``dataset`` names a group, or an argument has the wrong type.
        ValueError: ``start`` or ``end`` is outside ``0..len(dataset)`` or ``start > end``,
            or the dataset is a scalar.

    Indexing (``m[key]``), always relative to the window of ``len(m)`` rows:

    - an int: one row; negative ints count from the end of the window.
    - a slice, with any start, stop and step (negative steps too).
    - a list, tuple, range or integer array of row numbers, in any order, with repeats
      and negative numbers: rows come back in the order asked (they are sorted, read once
      and put back in order, since h5py needs increasing indices).
    - a boolean mask of ``len(m)`` values.
    - a tuple whose first item is not an int: the first item selects rows as above and the
      rest indexes the other axes of the result (``m[:, 0]``).

    An index outside the window raises ``IndexError`` naming the index and ``len(m)``.

    ``np.asarray(m)`` reads the whole window into memory. ``model.fit(m, ...)``,
    ``evaluate`` and ``predict`` stream it from disk batch by batch (pass
    ``np.asarray(m)`` to train from memory instead).

    Differences:
        Keras 2 leaked outside the window for negative ints and negative slice bounds,
        ignored slice steps, raised h5py's ``TypeError`` for unsorted or repeated indices,
        a bare ``IndexError()`` without a message, and never validated ``start``/``end``
        or closed its files; see docs/compat.md. Keras 3 has no ``HDF5Matrix``.

    Example:
        >>> x = HDF5Matrix("input/file.hdf5", "data", start=0, end=200)  # doctest: +SKIP
        >>> model.predict(x)  # doctest: +SKIP
    """

    def __init__(
        self,
        datapath: str | os.PathLike[str],
        dataset: str,
        start: int = 0,
        end: int | None = None,
        normalizer: Normalizer | None = None,
        *,
        stream: bool = True,
    ) -> None:
        if not isinstance(datapath, (str, os.PathLike)):
            msg = f"datapath must be a str or os.PathLike path. Received: datapath={datapath!r}"
            raise TypeError(msg)
        if not isinstance(dataset, str):
            msg = f"dataset must be the dataset's name as a str. Received: dataset={dataset!r}"
            raise TypeError(msg)
        _check_optional_int("start", start)
        _check_optional_int("end", end)
        if normalizer is not None and not callable(normalizer):
            msg = f"normalizer must be callable or None. Received: normalizer={normalizer!r}"
            raise TypeError(msg)

        self.datapath = os.fspath(datapath)
        self._abspath = os.path.realpath(self.datapath)
        self.dataset = dataset
        self.normalizer = normalizer
        self.stream = bool(stream)
        self._closed = False
        self._handle: Handle | None = None
        self._identity: Identity | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

        data = self.data  # opens the file (or shares the open handle) and checks dataset
        try:
            if data.ndim == 0:
                msg = (
                    f"Dataset {dataset!r} in {self.datapath!r} is a scalar; HDF5Matrix needs "
                    "a dataset with at least one axis (the samples). Received: shape=()"
                )
                raise ValueError(msg)
            total = data.shape[0]
            end = total if end is None else int(end)
            start = int(start)
            if not 0 <= start <= end <= total:
                msg = (
                    f"start and end must satisfy 0 <= start <= end <= {total} (the length of "
                    f"dataset {dataset!r}). Received: start={start}, end={end}"
                )
                raise ValueError(msg)
            self.start = start
            self.end = end
            self._base_shape, self._base_dtype = self._probe(data)
        except BaseException:
            self.close()
            raise
        if self.stream:
            _install_streaming()

    # -- array-like properties ---------------------------------------------------------

    def __len__(self) -> int:
        return self.end - self.start

    @property
    def shape(self) -> tuple[int, ...]:
        """``(end - start,)`` followed by the row shape of the normalizer's output."""
        return (self.end - self.start, *self._base_shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of the normalizer's output (the dataset's dtype without one)."""
        return self._base_dtype

    @property
    def ndim(self) -> int:
        """``len(shape)``."""
        return 1 + len(self._base_shape)

    @property
    def size(self) -> int:
        """The number of elements, ``prod(shape)``."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def data(self) -> h5py.Dataset:
        """The underlying ``h5py.Dataset`` (the whole dataset, not only the window)."""
        if self._closed:
            msg = (
                f"This HDF5Matrix on {self.datapath!r} was closed. Create a new HDF5Matrix "
                "to read the file again."
            )
            raise ValueError(msg)
        pid = os.getpid()
        handle = self._handle
        if handle is None or handle.pid != pid:
            # First use, or first use in a forked or spawned process: acquire this
            # process's shared handle.
            handle = acquire(self._abspath, self.datapath, pid)
            try:
                self._check_same_file(handle)
                handle.dataset(self.dataset)
            except BaseException:
                release(handle)
                raise
            self._identity = handle.identity
            self._handle = handle
            # A matrix that is dropped without close() still lets go of the file.
            self._finalizer = weakref.finalize(self, release, handle)
        return handle.dataset(self.dataset)

    def _check_same_file(self, handle: Handle) -> None:
        # A copy of this matrix in another process (pickled or forked) reopens the file
        # by path: it must be the file this matrix's shape and window came from.
        known = getattr(self, "_identity", None)
        if known is not None and handle.identity != known:
            msg = (
                f"The file {self.datapath!r} was replaced after this HDF5Matrix opened it, "
                "and this copy of the matrix (in a worker process) can only open the new "
                "file, whose rows may differ. Create the HDF5Matrix again after the file "
                f"is replaced. Received: datapath={self.datapath!r}"
            )
            raise OSError(errno.ESTALE, msg, self.datapath)

    def __repr__(self) -> str:
        return (
            f"HDF5Matrix(datapath={self.datapath!r}, dataset={self.dataset!r}, "
            f"start={self.start}, end={self.end}, shape={self.shape}, dtype={self.dtype})"
        )

    # -- reading -------------------------------------------------------------------------

    def __getitem__(self, key: Any) -> np.ndarray:
        n = len(self)
        if isinstance(key, tuple) and key and not all(is_int(k) for k in key):
            rows, rest = key[0], key[1:]
            result = self[rows]
            return result[rest] if is_int(rows) else result[(slice(None), *rest)]
        if is_int(key):
            index = int(key)
            if not -n <= index < n:
                raise IndexError(out_of_range(key, n))
            index %= n
            return self._read_runs([(index, index + 1)])[0]
        if isinstance(key, slice):
            first, stop, step = key.indices(n)
            count = len(range(first, stop, step))
            if count == 0:
                return self._read_runs([(0, 0)])
            if step == 1 or count == 1:
                return self._read_runs([(first, first + count)])
            if step > 0:
                return self._read_strided(first, stop, step)
            forward = range(first, stop, step)[::-1]
            return self._read_strided(forward.start, forward.stop, forward.step)[::-1]
        return self._read_indices(as_index_array(key, n))

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        """Read the whole window into memory (``np.asarray(m)``)."""
        if copy is False:
            msg = (
                "An HDF5Matrix is read from disk into a new array, so np.asarray cannot "
                "avoid a copy. Received: copy=False"
            )
            raise ValueError(msg)
        result = self[:]
        return result if dtype is None else result.astype(dtype, copy=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        for first in range(0, len(self), _ITER_BLOCK_ROWS):
            yield from self._read_runs([(first, min(first + _ITER_BLOCK_ROWS, len(self)))])

    def _read_runs(self, runs: Sequence[tuple[int, int]]) -> np.ndarray:
        """Rows of the window runs ``[a, b)`` (increasing, disjoint), one array, normalized."""
        data = self.data
        start = self.start
        if len(runs) == 1:
            first, stop = runs[0]
            return self._normalize(data[start + first : start + stop])
        rows = read_union(data, [(start + a, start + b) for a, b in runs])
        return self._normalize(rows)

    def _read_strided(self, first: int, stop: int, step: int) -> np.ndarray:
        data = self.data
        return self._normalize(data[self.start + first : self.start + stop : step])

    def _read_indices(self, indices: np.ndarray) -> np.ndarray:
        """Rows at window ``indices`` (any order, repeats, any shape), in the order asked."""
        flat = indices.reshape(-1)
        if flat.size == 0:
            empty = self._read_runs([(0, 0)])
            return empty.reshape(indices.shape + empty.shape[1:])
        unique, inverse = np.unique(flat, return_inverse=True)
        span = int(unique[-1]) - int(unique[0]) + 1
        row_bytes = max(1, self.data.dtype.itemsize * int(np.prod(self.data.shape[1:])))
        if span <= 4 * unique.size or span * row_bytes <= _COVERING_READ_BYTES:
            low = int(unique[0])
            rows = self._read_runs([(low, low + span)])
            rows = rows[unique - low]
        else:
            rows = self._read_runs(runs_of(unique))
        if not (unique.size == flat.size and np.array_equal(unique, flat)):
            rows = rows[inverse.reshape(-1)]
        return rows.reshape(indices.shape + rows.shape[1:])

    def _normalize(self, rows: np.ndarray) -> np.ndarray:
        if self.normalizer is None:
            return rows
        return np.asarray(self.normalizer(rows))

    def _probe(self, data: h5py.Dataset) -> tuple[tuple[int, ...], np.dtype[Any]]:
        """Row shape and dtype of the normalizer's output, from one row of the window."""
        if self.normalizer is None:
            return tuple(data.shape[1:]), np.dtype(data.dtype)
        total = data.shape[0]
        first = self.start if self.start < self.end else min(self.start, max(total - 1, 0))
        raw = data[first : min(first + 1, total)]
        probe = np.asarray(self.normalizer(raw))
        if probe.ndim == 0 or probe.shape[0] != raw.shape[0]:
            msg = (
                "normalizer must return an array with as many rows as it is given. It "
                f"returned shape {probe.shape} for input of shape {raw.shape}. Received: "
                f"normalizer={self.normalizer!r}"
            )
            raise ValueError(msg)
        return tuple(probe.shape[1:]), probe.dtype

    # -- life cycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Release this matrix's hold on the file; the file closes when no matrix uses it.

        Later reads raise ``ValueError``. Closing twice does nothing.
        """
        handle, self._handle = self._handle, None
        self._closed = True
        finalizer = self._finalizer
        if handle is not None and finalizer is not None and handle.pid == os.getpid():
            finalizer()  # releases the handle once, however often close() is called

    def __enter__(self) -> HDF5Matrix:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # h5py objects cannot be pickled: the copy reopens the file on first use.
        state["_handle"] = state["_finalizer"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def _install_streaming() -> None:
    """Make Keras's fit/evaluate/predict stream HDF5Matrix data (once per process)."""
    from kutils import _keras_compat, _requirements

    try:
        # Importing hdf5_dataset imports Keras and registers the HDF5 family's route.
        from kutils import hdf5_dataset

        hdf5_dataset.install_hdf5_streaming()
    except ModuleNotFoundError as error:
        if error.name is None or error.name.partition(".")[0] != "tensorflow":
            raise
        if _requirements.installed_tensorflow() is not None:
            raise
        # Keras's backend is TensorFlow, which is not installed: Keras cannot load in this
        # process, so there is no fit to stream into, and indexing needs no Keras.
    except _keras_compat.KerasInternalsChanged as error:
        msg = (
            f"{error} model.fit will read HDF5Matrix data into memory; pass "
            "kutils.HDF5Dataset(x, y, ...) to fit to stream it from disk."
        )
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


def _check_optional_int(name: str, value: object) -> None:
    if value is None and name == "end":
        return
    if not is_int(value):
        expected = "an int or None" if name == "end" else "an int"
        msg = f"{name} must be {expected}. Received: {name}={value!r}"
        raise TypeError(msg)
