"""``HDF5Dataset``: batches of ``HDF5Matrix`` data streamed from disk, as a Keras 3 PyDataset.

Keras 3 converts every array-like passed to ``fit`` into one numpy array, so an
``HDF5Matrix`` would be read into memory whole. An ``HDF5Dataset`` reads one batch per
``__getitem__`` instead, with bounded memory, and works with Keras's thread and process
workers (its matrices reopen their files lazily in each worker).

This module imports Keras at top level: nothing imports it during ``import kutils``.
It does not import ``kutils.hdf5_matrix`` (which imports this module when a streamed
``HDF5Matrix`` is made): it knows an ``HDF5Matrix`` by its row-reading protocol, the
``stream`` flag and ``_read_runs(runs)``. It registers the HDF5 family's route at the
data-adapter router (``kutils/_sequence_hooks.py``) and its row source for the
data-parallel core (``kutils/_row_sources.py``).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import keras
import numpy as np

from kutils import _keras_compat, _keras_patches, _row_sources, _sequence_hooks

__all__ = ["HDF5Dataset"]

# shuffle=True reads contiguous blocks of about this many bytes per row-run (per
# matrix), which keeps a shuffled epoch close to contiguous read speed.
_BLOCK_BYTES = 512 << 10


class HDF5Dataset(keras.utils.PyDataset):
    """Batches of ``HDF5Matrix`` (or numpy) inputs and targets, read from disk per batch.

    A ``keras.utils.PyDataset`` (``keras.utils.Sequence``) for ``model.fit``, ``evaluate``
    and ``predict`` that never holds more than a few batches in memory. ``x``, ``y`` and
    ``sample_weight`` may be an ``HDF5Matrix``, a numpy array, or a list, tuple or dict of
    them (several model inputs or outputs); all must have the same length.

    ``model.fit(x_h5, y_h5, batch_size=..., shuffle=...)`` builds one of these by itself
    when given ``HDF5Matrix`` objects; build it explicitly for workers, a seed or a block
    size: ``model.fit(HDF5Dataset(x_h5, y_h5, batch_size=64, shuffle='batch'))``.

    Args:
        x: the inputs.
        y: the targets, or ``None`` (for ``predict``).
        sample_weight: per-sample weights, or ``None``. Needs ``y``.
        batch_size: rows per batch; the last batch may be smaller.
        shuffle: how each epoch orders the rows (a new order every epoch):

            - ``False``: in file order, batch ``i`` is rows ``i*batch_size`` onwards. Use it
              for ``evaluate`` and ``predict``.
            - ``'batch'``: Keras 2's meaning: each batch is one contiguous run of rows; the
              order of the full batches is shuffled and the smaller last batch comes last.
            - ``True``: a block shuffle. The rows are cut into blocks of ``block_size``
              consecutive rows (the last may be shorter); the blocks are put in a uniformly
              random order; and that sequence of rows is cut into batches. Every row is
              seen once per epoch, the batch order is random, and a batch draws its rows
              from about ``batch_size / block_size`` random places in the file (read with
              one HDF5 call per matrix, in file order: the order of the rows inside a batch
              does not change its gradient). It is not a uniform shuffle of single rows:
              rows less than ``block_size`` apart usually share a batch. ``block_size=1``
              gives a uniform shuffle of the rows over the batches, at a higher read cost.
        block_size: rows per block for ``shuffle=True``. ``None`` picks about 512 KiB of
            the widest matrix per block, at most ``batch_size`` rows.
        seed: seed of the shuffles. ``None`` draws each epoch's seed from numpy's global
            random generator, so ``keras.utils.set_random_seed`` (or ``np.random.seed``)
            makes runs repeatable, as it did in Keras 2.
        workers, use_multiprocessing, max_queue_size: as for ``keras.utils.PyDataset``.
            Process workers receive pickled copies whose matrices reopen the files.

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: the arrays differ in length, ``batch_size`` or ``block_size`` is not
            positive, ``shuffle`` is not ``True``, ``False`` or ``'batch'``, or
            ``sample_weight`` is given without ``y``.

    Keras's ``fit(shuffle=True)`` (its default) additionally permutes the order of the
    batches of any PyDataset; each batch keeps its rows and its contiguous reads.

    Differences:
        Keras 2 had no such class: ``fit`` sliced ``HDF5Matrix`` objects batch by batch
        and raised ``TypeError`` for ``shuffle=True``. Keras 3's ``fit`` reads array-likes
        into memory whole and gives ``shuffle='batch'`` another meaning (it permutes rows
        within fixed batches).

    Example:
        >>> x = HDF5Matrix("data.h5", "x")  # doctest: +SKIP
        >>> y = HDF5Matrix("data.h5", "y")  # doctest: +SKIP
        >>> model.fit(HDF5Dataset(x, y, batch_size=128, shuffle=True), epochs=3)  # doctest: +SKIP
    """

    def __init__(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        *,
        batch_size: int = 32,
        shuffle: bool | str = False,
        block_size: int | None = None,
        seed: int | None = None,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ) -> None:
        super().__init__(
            workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        _check_positive_int("batch_size", batch_size)
        if block_size is not None:
            _check_positive_int("block_size", block_size)
        if not isinstance(shuffle, (bool, np.bool_)) and not (
            isinstance(shuffle, str) and shuffle == "batch"
        ):
            msg = f"shuffle must be True, False or 'batch'. Received: shuffle={shuffle!r}"
            raise ValueError(msg)
        if seed is not None and not isinstance(seed, numbers.Integral):
            msg = f"seed must be an int or None. Received: seed={seed!r}"
            raise TypeError(msg)
        if sample_weight is not None and y is None:
            msg = (
                "sample_weight needs targets: pass y as well. Received: y=None and a sample_weight"
            )
            raise ValueError(msg)

        self.x, self.y, self.sample_weight = (_as_sources(part) for part in (x, y, sample_weight))
        self._num_rows = _common_length(x=self.x, y=self.y, sample_weight=self.sample_weight)
        self.batch_size = int(batch_size)
        self.shuffle: bool | str = shuffle if isinstance(shuffle, str) else bool(shuffle)
        self.block_size = int(block_size) if block_size else self._default_block_size()
        self.seed: int | None = None if seed is None else int(seed)
        self._epoch = 0
        self._plan_epoch()

    # -- PyDataset protocol --------------------------------------------------------------

    def __len__(self) -> int:
        return math.ceil(self._num_rows / self.batch_size)

    @property
    def num_batches(self) -> int:
        return len(self)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        n_batches = len(self)
        if not isinstance(index, numbers.Integral) or not -n_batches <= index < n_batches:
            msg = (
                f"batch index {index!r} is out of range for an HDF5Dataset of {n_batches} batches."
            )
            raise IndexError(msg)
        return self.read_runs(self._batch_rows(int(index) % n_batches))

    def read_runs(self, runs: list[tuple[int, int]]) -> tuple[Any, ...]:
        """The batch made of the rows ``[a, b)`` of each run, in order: ``(x, y, ...)``."""
        parts = [self.x] if self.y is None else [self.x, self.y]
        if self.sample_weight is not None:
            parts.append(self.sample_weight)
        return tuple(
            keras.tree.map_structure(lambda source: _read(source, runs), part) for part in parts
        )

    def on_epoch_end(self) -> None:
        """Draw the next epoch's order (Keras calls this between epochs)."""
        self._epoch += 1
        self._plan_epoch()

    # -- the order of the rows -------------------------------------------------------------

    def _plan_epoch(self) -> None:
        """Fix this epoch's order; process workers get it with their pickled copy."""
        n, batch = self._num_rows, self.batch_size
        self._order: np.ndarray | None = None
        if self.shuffle is False or n == 0:
            return
        if self.seed is None:
            self._epoch_seed = int(np.random.randint(0, 2**63 - 1, dtype=np.int64))
        else:
            self._epoch_seed = int(
                np.random.default_rng([self.seed, self._epoch]).integers(2**63 - 1)
            )
        rng = np.random.default_rng(self._epoch_seed)
        if self.shuffle == "batch":
            self._order = rng.permutation(n // batch)
        else:
            n_blocks = math.ceil(n / self.block_size)
            self._order = rng.permutation(n_blocks)
            lengths = np.full(n_blocks, self.block_size, dtype=np.int64)
            lengths[-1] = n - (n_blocks - 1) * self.block_size
            self._offsets = np.concatenate(([0], np.cumsum(lengths[self._order])))

    def _batch_rows(self, index: int) -> list[tuple[int, int]]:
        """The rows of batch ``index``: runs ``[a, b)`` of window rows, increasing."""
        n, batch = self._num_rows, self.batch_size
        whole = _row_sources.whole_batch_rows(index, batch, n, self._order, self.shuffle)
        if whole is not None:
            return whole
        assert self._order is not None  # no order: whole batches, returned above
        low, high = index * batch, min((index + 1) * batch, n)
        offsets, size = self._offsets, self.block_size
        first = int(offsets.searchsorted(low, side="right")) - 1
        last = int(offsets.searchsorted(high, side="left"))
        # Block ``order[p]`` holds the rows ``offsets[p]:offsets[p + 1]`` of the epoch's
        # sequence; the batch takes the part of it between ``low`` and ``high``.
        edges = offsets[first : last + 1].tolist()
        runs = [
            (block * size + max(low, begin) - begin, block * size + min(high, end) - begin)
            for block, begin, end in zip(
                self._order[first:last].tolist(), edges[:-1], edges[1:], strict=True
            )
        ]
        # Read in file order: one HDF5 call per matrix. The order of the rows inside a
        # batch does not change the batch's gradient, so it is not shuffled.
        return _merge_runs(sorted(runs))

    def _default_block_size(self) -> int:
        widest = 1
        for source in _leaves(self.x, self.y, self.sample_weight):
            row_items = int(np.prod(source.shape[1:], dtype=np.int64))
            widest = max(widest, row_items * np.dtype(source.dtype).itemsize)
        return max(1, min(self.batch_size, math.ceil(_BLOCK_BYTES / widest)))


def _leaves(*parts: Any) -> list[Any]:
    """The arrays in ``parts`` (nested lists, tuples and dicts), without ``None``."""
    return [leaf for leaf in keras.tree.flatten(parts) if leaf is not None]


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        msg = f"{name} must be a positive int. Received: {name}={value!r}"
        raise ValueError(msg)


def _as_sources(part: Any) -> Any:
    """Keep ``HDF5Matrix`` leaves; turn every other leaf into a numpy array."""
    if part is None:
        return None

    def convert(leaf: Any) -> Any:
        if _is_matrix(leaf):
            return leaf
        array = np.asarray(leaf)
        if array.ndim == 0:
            msg = (
                "Each input, target and sample weight must be an HDF5Matrix or an array "
                f"with a first (sample) axis. Received: a scalar {leaf!r}"
            )
            raise TypeError(msg)
        return array

    return keras.tree.map_structure(convert, part)


def _common_length(**parts: Any) -> int:
    lengths = {
        f"{name}{'' if len(leaves) == 1 else f'[{i}]'}": len(leaf)
        for name, part in parts.items()
        if part is not None
        for leaves in [keras.tree.flatten(part)]
        for i, leaf in enumerate(leaves)
    }
    if not lengths:
        msg = "x must contain at least one array. Received: x with no arrays"
        raise ValueError(msg)
    if len(set(lengths.values())) != 1:
        listing = ", ".join(f"{name}: {length}" for name, length in lengths.items())
        msg = (
            f"All inputs, targets and sample weights must have the same length. Received: {listing}"
        )
        raise ValueError(msg)
    return next(iter(lengths.values()))


def _merge_runs(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, stop in runs:
        if merged and merged[-1][1] == first:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((first, stop))
    return merged


def _read(source: Any, runs: list[tuple[int, int]]) -> np.ndarray:
    if _is_matrix(source):
        return source._read_runs(runs)
    if len(runs) == 1:
        return source[runs[0][0] : runs[0][1]]
    return np.concatenate([source[first:stop] for first, stop in runs])


def legacy_fit_dataset(
    x: Any, y: Any, sample_weight: Any, batch_size: int | None, shuffle: Any
) -> HDF5Dataset | None:
    """The dataset ``fit``/``evaluate``/``predict`` stream when given ``HDF5Matrix`` data.

    ``None`` (Keras handles the call as usual) unless some leaf of ``x``, ``y`` or
    ``sample_weight`` is an ``HDF5Matrix`` with ``stream=True`` and every other leaf is an
    ``HDF5Matrix`` or a numpy array.
    """
    leaves = _leaves(x, y, sample_weight)
    matrices = [leaf for leaf in leaves if _is_matrix(leaf)]
    if not matrices or not all(matrix.stream for matrix in matrices):
        return None
    if not all(_is_matrix(leaf) or isinstance(leaf, np.ndarray) for leaf in leaves):
        return None
    mode = "batch" if shuffle == "batch" else bool(shuffle)
    return HDF5Dataset(x, y, sample_weight, batch_size=batch_size or 32, shuffle=mode)


def _is_matrix(leaf: Any) -> bool:
    """Whether ``leaf`` is an ``HDF5Matrix`` (known by its protocol: no import circle)."""
    return hasattr(leaf, "stream") and callable(getattr(leaf, "_read_runs", None))


@_keras_patches.once_per_process
def install_hdf5_streaming() -> None:
    """The Keras side of ``fit(x_h5, y_h5, ...)`` streaming: version check, then fit hooks.

    Called when a streamed ``HDF5Matrix`` is made. Raises KerasInternalsChanged (touching
    nothing) when Keras is older than the floor or its data-adapter internals changed;
    the HDF5 family then reads into memory instead.
    """
    _keras_compat.check_keras_version("streamed HDF5Matrix training")
    _keras_patches.install_fit_hooks()


def _fit_route(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    batch_size: Any = None,
    shuffle: Any = False,
    class_weight: Any = None,
    **_: Any,
) -> Any:
    """The HDF5 family's data-adapter route: stream ``HDF5Matrix`` leaves from disk.

    Only once ``install_hdf5_streaming`` succeeded (HDF5Matrix falls back to reading
    into memory, with a warning, where it did not).
    """
    if not install_hdf5_streaming.installed:  # type: ignore[attr-defined]
        return None
    dataset = legacy_fit_dataset(x, y, sample_weight, batch_size, shuffle)
    if dataset is None:
        return None
    # The dataset orders its own batches, so Keras must not shuffle them again.
    adapter_class = _keras_compat.py_dataset_adapter_class()
    return adapter_class(dataset, class_weight=class_weight, shuffle=False)


def _row_source(
    x: Any, y: Any, sample_weight: Any, batch_size: int | None, shuffle: Any
) -> HDF5Dataset | None:
    """The HDF5 family's row source for reading in shards across workers."""
    if isinstance(x, HDF5Dataset):
        return x if y is None and sample_weight is None else None
    return legacy_fit_dataset(x, y, sample_weight, batch_size, shuffle)


_sequence_hooks.register_data_adapter("hdf5", _fit_route)
_row_sources.register_row_source("hdf5", _row_source)
