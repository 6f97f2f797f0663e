"""A kutils ``Sequence`` (any finite ``keras.utils.PyDataset``) read in shards across workers.

Batch ``i`` of an epoch's order goes to worker ``i % N`` (N workers): one step trains on
N consecutive batches of that order, one per worker, and a worker splits its batch
between its local replicas. When the length is not a multiple of N, the batches left
over make one last, smaller step: every worker reads them and keeps its share of the
rows. The shuffled order of an epoch is drawn from the seed the workers agreed on and
the epoch number. ``kutils/_per_worker_input.py`` has the stream of epochs this kind
plugs into.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kutils import _row_sources
from kutils._per_worker_input import ShardedInput


class _SequenceShards(ShardedInput):
    """Whole PyDataset batches, batch ``i`` of the epoch's order to worker ``i % N``."""

    def __init__(
        self,
        strategy: tf.distribute.Strategy,
        sequence: keras.utils.PyDataset,
        shuffle: bool,
        training: bool,
    ) -> None:
        super().__init__(strategy)
        self._sequence = sequence
        self._shuffle = bool(shuffle) and training
        self._epochs_begun = 0
        self._order: np.ndarray = np.arange(0)

    def _count(self) -> int:
        # Read again every epoch, as Keras 2 did.
        count = self._sequence.num_batches
        if count is None:
            msg = (
                "A dataset read in shards across workers needs a length, for the order of "
                "the batches; this one is infinite (num_batches is None): give fit a "
                f"steps_per_epoch. Received: {type(self._sequence).__name__}"
            )
            raise ValueError(msg)
        return int(count)

    def _plan(self) -> None:
        count = self._count()
        if self._shuffle:
            rng = np.random.default_rng([self.seed or 0, self._epochs_begun])
            self._order = rng.permutation(count)
        else:
            self._order = np.arange(count)

    def num_batches(self) -> int:
        # Full steps of one batch per worker, and one step for the batches left over.
        return -(-self._count() // self._workers)

    def _prepare_epoch(self) -> None:
        self._plan()
        self._epochs_begun += 1
        self._sequence.on_epoch_begin()

    def _finish_epoch(self) -> None:
        self._sequence.on_epoch_end()

    def first_batch(self) -> Any:
        if self._count() == 0:
            msg = "The Sequence has length 0. Received: len(sequence)=0"
            raise ValueError(msg)
        return self._sequence[0]

    def replica_batches(self, worker: int, workers: int, local: int) -> Iterator[Any]:
        from kutils._loader import OrderedLoader

        order = [int(i) for i in self._order]
        full = len(order) - len(order) % workers
        # Whole batches for the full steps; the batches left over (fewer than one per
        # worker) make one last step that every worker reads and takes its rows of.
        indices = order[worker:full:workers] + order[full:]
        sequence = self._sequence
        loader = None
        if sequence.workers > 1 or (sequence.workers > 0 and sequence.use_multiprocessing):
            loader = OrderedLoader(
                sequence,
                indices,
                workers=int(sequence.workers),
                use_multiprocessing=bool(sequence.use_multiprocessing),
                max_queue_size=int(sequence.max_queue_size),
            )
        batches = iter(loader) if loader is not None else (sequence[i] for i in indices)
        try:
            for _ in range(full // workers):
                yield from _split_rows(next(batches), local)
            leftover = [_row_sources.lists_to_tuples(batch) for batch in batches]
            if leftover:
                rows = keras.tree.map_structure(lambda *parts: np.concatenate(parts), *leftover)
                mine = list(_split_rows(rows, workers))[worker]
                yield from _split_rows(mine, local)
        finally:
            if loader is not None:
                loader.close()


def _split_rows(batch: Any, parts: int) -> Iterator[Any]:
    """``parts`` consecutive row ranges of ``batch`` (sizes differ by at most one)."""
    if parts == 1:
        yield batch
        return
    batch = _row_sources.lists_to_tuples(batch)
    leaves = [leaf for leaf in keras.tree.flatten(batch) if leaf is not None]
    rows = len(leaves[0])
    for part in range(parts):
        begin, end = rows * part // parts, rows * (part + 1) // parts
        yield keras.tree.map_structure(
            lambda leaf, b=begin, e=end: None if leaf is None else leaf[b:e], batch
        )
