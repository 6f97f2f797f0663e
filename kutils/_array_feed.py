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
(``strategy.experimental_distribute_values_from_function``). Part ``p`` of ``R`` is
the contiguous rows ``[L*p//R, L*(p+1)//R)`` of an ``L``-row global batch, in the
order of :func:`batch_part` (the order Keras's own input uses), and the shuffled orders are drawn from the seed the workers agreed on. Keras's step function is
traced once per model and reused by every call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kutils import _row_sources
from kutils._per_worker_input import ShardedInput
from kutils._row_shards import _NumpyRows, _part_of_runs, _RowShards


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
            replicas = context.num_replicas_in_sync
            part, local = batch_part(context.replica_id_in_sync_group, replicas, len(devices))
            rows = _part_of_runs(runs, part, replicas)
            batch = _row_sources.lists_to_tuples(source.read_runs(rows))
            with tf.device(devices[local]):
                return keras.tree.map_structure(tf.convert_to_tensor, batch)

        return strategy.experimental_distribute_values_from_function(replica_part)


def batch_part(replica: int, replicas: int, local: int) -> tuple[int, int]:
    """Which part of a global batch a replica takes, and its index on its worker.

    ``replica`` is the id in the cluster (``worker * local + index``). Local replica
    ``index`` of worker ``w`` takes part ``index * workers + w``: the order in which
    tf.distribute's rebatching hands the parts out, and in which Keras puts the results
    of ``predict`` back together (``_multi_worker_concat``).
    """
    worker, index = divmod(replica, local)
    return index * (replicas // local) + worker, index


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
