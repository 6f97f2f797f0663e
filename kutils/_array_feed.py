"""numpy input for ``data_parallel`` across workers, handed to each step without tf.data.

Under ``MultiWorkerMirroredStrategy`` every ``fit``, ``evaluate`` or ``predict`` call on
numpy arrays used to build a ``tf.data`` pipeline, distribute it (auto-sharding and
rebatching graph rewrites), make two multi-device iterators (one for the epoch, one
Keras makes ahead for the next) and destroy them all when the call returned. Measured
on the 2-core machine, that was most of a fixed cost of 0.5 s (idle) to 3 s (loaded) per
call, paid again by every short call (docs/performance.md).

The arrays are in every worker's memory already, so no pipeline is needed: for each
step, :class:`ArrayShards` slices this worker's replicas' rows of the global batch out of
the arrays and gives them to Keras's own step function as a per-replica value
(``strategy.experimental_distribute_values_from_function``). Replica ``r`` of ``R`` in
the cluster gets the contiguous rows ``[L*r//R, L*(r+1)//R)`` of an ``L``-row global
batch, as the per-worker pipeline of ``_per_worker_input.py`` gives them, and the
shuffled orders are drawn from the seed the workers agreed on. Keras's step function is
traced once per model and reused by every call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kutils import _row_sources
from kutils._per_worker_input import ShardedInput, _NumpyRows, _part_of_runs, _RowShards


class ArrayShards(_RowShards):
    """numpy arrays read into each local replica's part of every global batch, per step."""

    def __init__(self, strategy: tf.distribute.Strategy, source: _NumpyRows) -> None:
        super().__init__(strategy, source)

    def build(self, seed: int | None = None) -> ShardedInput:
        """Plan the first epoch from ``seed`` (agreed by the workers) and make ``dataset``."""
        if seed is None and self._source.shuffle is not False:
            from kutils._per_worker_input import agreed_seed

            seed = agreed_seed(self._strategy)
        self.seed = seed
        if seed is not None:
            self.start(seed)
        self.dataset = _StepFeed(self)
        return self

    def element_spec(self) -> Any:
        """One replica's batch structure: a TensorSpec per leaf, any number of rows."""
        batch = _row_sources.lists_to_tuples(self.first_batch())
        return keras.tree.map_structure(
            lambda leaf: tf.TensorSpec((None, *np.shape(leaf)[1:]), tf.as_dtype(leaf.dtype)),
            keras.tree.map_structure(np.asarray, batch),
        )

    def step_batch(self, index: int) -> Any:
        """Global batch ``index`` of the current epoch, as this worker's per-replica values."""
        source = self._source
        runs = source._batch_rows(index)
        strategy = self._strategy
        devices = strategy.extended.worker_devices

        def replica_part(context: tf.distribute.experimental.ValueContext) -> Any:
            replica = context.replica_id_in_sync_group
            rows = _part_of_runs(runs, replica, context.num_replicas_in_sync)
            part = _row_sources.lists_to_tuples(source.read_runs(rows))
            with tf.device(devices[replica % len(devices)]):
                return keras.tree.map_structure(tf.convert_to_tensor, part)

        return strategy.experimental_distribute_values_from_function(replica_part)


class _StepFeed(tf.distribute.DistributedDataset):
    """The ``dataset`` Keras gets: each ``iter()`` walks one epoch of global batches.

    Its iterator is a plain Python iterator, so Keras's step function takes each batch
    as an argument (``TensorFlowTrainer._make_function``'s path for non-TensorFlow
    iterators); the order of an epoch is read when its first batch is taken, after
    the previous epoch's ``on_epoch_end`` drew it.
    """

    def __init__(self, shards: ArrayShards) -> None:
        self._shards = shards
        self._spec = shards.element_spec()

    def __iter__(self) -> Iterator[Any]:
        return _StepIterator(self._shards)

    def drain(self) -> None:
        """Nothing to read to the end: no TensorFlow iterator or thread is involved."""

    @property
    def element_spec(self) -> Any:
        return self._spec

    @property
    def cardinality(self) -> int:
        return int(tf.data.UNKNOWN_CARDINALITY)


class _StepIterator:
    """The global batches of one epoch, in the order planned when it begins."""

    def __init__(self, shards: ArrayShards) -> None:
        self._shards = shards
        self._index = 0

    def __iter__(self) -> _StepIterator:
        return self

    def __next__(self) -> Any:
        if self._index >= self._shards.num_batches():
            raise StopIteration
        self._index += 1
        return self._shards.step_batch(self._index - 1)


def array_shards(
    strategy: tf.distribute.Strategy,
    x: Any,
    y: Any,
    sample_weight: Any,
    batch_size: int | None,
    shuffle: Any,
) -> ArrayShards:
    """The per-step input for numpy ``x`` (and ``y``, ``sample_weight``)."""
    mode = "batch" if shuffle == "batch" else bool(shuffle)
    return ArrayShards(strategy, _NumpyRows(x, y, sample_weight, batch_size or 32, mode))
