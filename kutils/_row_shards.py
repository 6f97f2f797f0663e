"""Rows of numpy arrays, ``HDF5Matrix`` arrays or an ``HDF5Dataset`` read in shards across workers.

The global batch is the one of a single process (``batch_size``). Each of the R replicas
in the cluster reads its own contiguous part of every global batch straight from its
source (``R = N x local replicas``, N workers), so a worker reads only 1/N of the data.
The source is a row source (``kutils/_row_sources.py``): an input family's own reader,
or :class:`_NumpyRows` here for shuffled numpy arrays, which are in every worker's
memory already but whose shuffle Keras would draw differently on every worker.
``kutils/_per_worker_input.py`` has the stream of epochs these kinds plug into;
``kutils/_array_feed.py`` hands numpy rows to each step without it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kutils import _row_sources
from kutils._per_worker_input import ShardedInput


class _RowShards(ShardedInput):
    """Each replica's contiguous part of every global batch of a row source.

    A row source (``kutils/_row_sources.py`` says what it offers) is an input family's own
    reader, such as ``kutils.HDF5Dataset``, or a ``_NumpyRows`` for shuffled arrays.
    """

    def __init__(self, strategy: tf.distribute.Strategy, source: Any) -> None:
        super().__init__(strategy)
        # A copy plans the epochs, so the user's dataset keeps its own seed and epoch.
        self._source = copy.copy(source)

    def start(self, seed: int) -> None:
        if self._source.seed is None:
            # Every worker must draw the same order; the user's seed, if any, already is.
            self._source.seed = seed
            self._source._plan_epoch()

    def num_batches(self) -> int:
        return len(self._source)

    def _finish_epoch(self) -> None:
        self._source.on_epoch_end()

    def first_batch(self) -> Any:
        if len(self._source) == 0:
            msg = "The HDF5 data has no rows. Received: 0 rows"
            raise ValueError(msg)
        return self._source.read_runs([(0, 1)])

    def replica_batches(self, worker: int, workers: int, local: int) -> Iterator[Any]:
        source = self._source
        replicas = workers * local
        for index in range(len(source)):
            runs = source._batch_rows(index)
            for replica in range(worker * local, (worker + 1) * local):
                yield source.read_runs(_part_of_runs(runs, replica, replicas))


class _NumpyRows:
    """A row source over numpy arrays, shuffled per epoch: one row per block.

    ``shuffle=True`` is a uniform shuffle of the rows (as Keras's own), ``'batch'``
    shuffles the order of the full batches. The epoch orders are drawn as
    ``HDF5Dataset(..., block_size=1)`` draws them, from ``seed`` and the epoch number.
    """

    def __init__(
        self, x: Any, y: Any, sample_weight: Any, batch_size: int, shuffle: bool | str
    ) -> None:
        self.parts = [part for part in (x, y, sample_weight) if part is not None]
        lengths = {len(leaf) for leaf in keras.tree.flatten(self.parts)}
        if len(lengths) != 1:
            msg = (
                "All inputs, targets and sample weights must have the same length. "
                f"Received: lengths {sorted(lengths)}"
            )
            raise ValueError(msg)
        self._num_rows = lengths.pop()
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed: int | None = None
        self._epoch = 0
        self._order: np.ndarray | None = None
        self._plan_epoch()

    def __len__(self) -> int:
        return math.ceil(self._num_rows / self.batch_size)

    def _plan_epoch(self) -> None:
        n = self._num_rows
        self._order = None
        if self.shuffle is False or n == 0:
            return
        if self.seed is None:
            epoch_seed = int(np.random.randint(0, 2**63 - 1, dtype=np.int64))
        else:
            epoch_seed = int(np.random.default_rng([self.seed, self._epoch]).integers(2**63 - 1))
        rng = np.random.default_rng(epoch_seed)
        self._order = rng.permutation(n // self.batch_size if self.shuffle == "batch" else n)

    def on_epoch_end(self) -> None:
        self._epoch += 1
        self._plan_epoch()

    def _batch_rows(self, index: int) -> list[tuple[int, int]]:
        n, batch = self._num_rows, self.batch_size
        whole = _row_sources.whole_batch_rows(index, batch, n, self._order, self.shuffle)
        if whole is not None:
            return whole
        assert self._order is not None  # no order: whole batches, returned above
        rows = sorted(int(row) for row in self._order[index * batch : (index + 1) * batch])
        runs: list[tuple[int, int]] = []
        for row in rows:
            if runs and runs[-1][1] == row:
                runs[-1] = (runs[-1][0], row + 1)
            else:
                runs.append((row, row + 1))
        return runs

    def read_runs(self, runs: list[tuple[int, int]]) -> tuple[Any, ...]:
        def read(leaf: np.ndarray) -> np.ndarray:
            if len(runs) == 1:
                return leaf[runs[0][0] : runs[0][1]]
            return np.concatenate([leaf[first:stop] for first, stop in runs])

        return tuple(keras.tree.map_structure(read, part) for part in self.parts)


def _part_of_runs(runs: list[tuple[int, int]], part: int, parts: int) -> list[tuple[int, int]]:
    """Rows ``[L*part//parts, L*(part+1)//parts)`` of the rows that ``runs`` list, as runs."""
    total = sum(stop - first for first, stop in runs)
    low, high = total * part // parts, total * (part + 1) // parts
    picked: list[tuple[int, int]] = []
    seen = 0
    for first, stop in runs:
        length = stop - first
        begin, end = max(low - seen, 0), min(high - seen, length)
        if begin < end:
            picked.append((first + begin, first + end))
        seen += length
    # An empty part still needs a run, so that every leaf reads zero rows.
    return picked or [(runs[0][0], runs[0][0])]
