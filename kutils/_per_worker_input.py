"""Per-worker input for ``fit`` and ``evaluate`` across the workers of a cluster.

Under ``tf.distribute.MultiWorkerMirroredStrategy``, Keras hands every input to
``strategy.experimental_distribute_dataset``, which makes every worker produce every
batch and keep its share (a kutils ``Sequence`` is read whole on every worker, and an
``HDF5Matrix`` streamed through a generator likewise). For those two inputs kutils builds
the per-worker dataset itself with ``strategy.distribute_datasets_from_function``, so each
worker reads only its own shard:

* a kutils ``Sequence`` (or any finite ``keras.utils.PyDataset``): batch ``i`` of an
  epoch's order goes to worker ``i % N`` (N workers). One step trains on N consecutive
  batches of that order, one per worker, so the global batch is N times the Sequence's
  batch; a worker splits its batch between its local replicas. When the length is not a
  multiple of N, the batches left over make one last, smaller step: every worker reads
  them and keeps its share of the rows.
* numpy arrays, ``HDF5Matrix`` arrays and ``HDF5Dataset``: the global batch is the one of a single
  process (``batch_size``). Each of the R replicas in the cluster reads its own
  contiguous part of every global batch straight from the file (``R = N x local
  replicas``), so a worker reads only 1/N of the data. Numpy arrays are in every
  worker's memory already; only shuffled ones come here, for the shuffle, which Keras
  would draw differently on every worker.

The shuffled orders must be the same on every worker, so the workers agree on a seed
through one all-reduce when ``fit`` starts.

This module holds what every kind shares: the seed, :class:`ShardedInput` (one stream of
epochs for one call, as a distributed dataset) and the adapter Keras gets for it. The
kinds are in ``kutils/_sequence_shards.py`` (``Sequence``) and ``kutils/_row_shards.py``
(numpy and HDF5 rows); ``kutils/_iterator_drain.py`` ends the stream's iterator.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kutils import _keras_compat, _keras_patches, _row_sources, _sequence_hooks
from kutils._iterator_drain import drain_distributed_iterator


def agreed_seed(strategy: tf.distribute.Strategy) -> int:
    """A random seed drawn by the chief's first replica and known to every worker.

    One all-reduce over the cluster; the proposal comes from numpy's global generator,
    so ``keras.utils.set_random_seed`` on the workers makes it repeatable.
    """
    proposal = float(np.random.randint(0, 2**31 - 1))

    def chief_only() -> tf.Tensor:
        context = tf.distribute.get_replica_context()
        first = tf.equal(context.replica_id_in_sync_group, 0)
        mine = tf.where(first, tf.constant(proposal, tf.float64), tf.constant(0.0, tf.float64))
        return context.all_reduce(tf.distribute.ReduceOp.SUM, mine)

    agreed = strategy.experimental_local_results(strategy.run(chief_only))[0]
    return int(agreed.numpy())


class ShardedInput:
    """One worker's part of an input, as one stream of epochs for one ``fit`` call.

    Build it with :func:`sharded_input`, then ``build()``, and pass the object itself to
    Keras's ``fit`` or ``evaluate`` in place of the input: Keras gets an adapter for it
    (``_adapter_route``, at the router of ``_sequence_hooks``) that reads ``dataset``, asks
    ``num_batches()`` every epoch and calls ``begin_epoch()``/``end_epoch()``. Run the
    call inside ``running()``, which re-raises the input's own exception where
    TensorFlow would show a generic one.

    Making a distributed iterator under MultiWorkerMirroredStrategy is slow (about 70 ms
    here, and Keras makes two per epoch). So ``dataset`` hands out one iterator for the
    whole call: the generator behind it produces one epoch each time ``begin_epoch()``
    allows it (after the previous epoch's ``end_epoch()``), and waits in between, until
    ``running()`` ends and closes the stream.
    """

    def __init__(self, strategy: tf.distribute.Strategy) -> None:
        _keras_compat.check_keras_version("data_parallel input shards across workers")
        _keras_patches.install_fit_hooks()
        self._strategy = strategy
        self._error: BaseException | None = None
        self._spec: Any = None
        self.seed: int | None = None
        self.dataset: Any = None
        self._workers = 1
        self._turns = threading.Condition()
        self._epochs_allowed = 0  # begin_epoch() calls
        self._epochs_started = 0  # epochs the generator has started to produce
        self._closed = False

    # -- subclasses ----------------------------------------------------------------------

    def start(self, seed: int) -> None:
        """Prepare the first epoch from the cluster-wide ``seed`` (also in ``self.seed``)."""

    def num_batches(self) -> int:
        """The number of steps of the coming (or current) epoch."""
        raise NotImplementedError

    def _prepare_epoch(self) -> None:
        """Fix the order of the epoch about to begin."""

    def _finish_epoch(self) -> None:
        """After an epoch: the input's own end-of-epoch hook."""

    def first_batch(self) -> Any:
        """Any batch of the input, for its structure, dtypes and trailing shapes."""
        raise NotImplementedError

    def replica_batches(self, worker: int, workers: int, local: int) -> Iterator[Any]:
        """This worker's elements for one epoch: ``local`` per-replica batches per step."""
        raise NotImplementedError

    # -- epochs ----------------------------------------------------------------------------

    def begin_epoch(self) -> None:
        """Let the generator produce the next epoch (Keras's adapter calls this)."""
        self._prepare_epoch()
        with self._turns:
            self._epochs_allowed += 1
            self._turns.notify_all()

    def end_epoch(self) -> None:
        """The trainer took every batch of the epoch (Keras's adapter calls this)."""
        self._finish_epoch()

    @property
    def started(self) -> bool:
        """Whether Keras has begun the first epoch on this input."""
        return self._epochs_allowed > 0

    def close(self) -> None:
        """End the stream: a generator waiting for an epoch returns."""
        with self._turns:
            self._closed = True
            self._turns.notify_all()

    def _wait_for_epoch(self) -> bool:
        with self._turns:
            while self._epochs_started >= self._epochs_allowed and not self._closed:
                self._turns.wait(timeout=1.0)
            if self._closed:
                return False
            self._epochs_started += 1
            return True

    # -- the distributed dataset ---------------------------------------------------------

    def build(self, seed: int | None = None) -> ShardedInput:
        """Make ``dataset``, its orders drawn from ``seed`` (agreed by the workers).

        ``seed`` must be the same on every worker; None agrees on one now (one
        all-reduce over the cluster).
        """
        self.seed = agreed_seed(self._strategy) if seed is None else seed
        self.start(self.seed)
        batch = _row_sources.lists_to_tuples(self.first_batch())
        self._spec = keras.tree.map_structure(
            lambda leaf: tf.TensorSpec((None, *np.shape(leaf)[1:]), tf.as_dtype(leaf.dtype)),
            keras.tree.map_structure(np.asarray, batch),
        )
        options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
        self.dataset = _OneIterator(
            self._strategy.distribute_datasets_from_function(self._dataset_fn, options=options)
        )
        return self

    def _dataset_fn(self, context: tf.distribute.InputContext) -> tf.data.Dataset:
        worker, workers = context.input_pipeline_id, context.num_input_pipelines
        local = max(1, context.num_replicas_in_sync // workers)
        self._workers = workers

        def generate() -> Iterator[Any]:
            try:
                while self._wait_for_epoch():
                    for element in self.replica_batches(worker, workers, local):
                        if self._closed:
                            return  # the call ended mid-epoch: read no more
                        yield _row_sources.lists_to_tuples(element)
            except Exception as error:
                self._error = error
                raise

        dataset = tf.data.Dataset.from_generator(generate, output_signature=self._spec)
        options = tf.data.Options()
        # The per-worker dataset is this worker's shard already.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return dataset.with_options(options).prefetch(local)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Around fit/evaluate: re-raise the input's own exception; end the stream.

        Ending it means more than waking the generator. TensorFlow reads the generator
        from a background thread, which needs the GIL to run it; the iterator's
        destructor, run by Python's garbage collector with the GIL held, waits for that
        thread. Were the iterator collected (at the latest when the interpreter exits)
        while the thread is still inside the generator, each would wait for the other
        for ever. So the stream is closed, and the iterator read to its end, before the
        call returns: then no thread of it is left in Python.
        """
        try:
            yield
        except BaseException:
            original, self._error = self._error, None
            if original is None:
                raise
            # The error TensorFlow made of it adds nothing: show the original only.
            original.__suppress_context__ = True
            raise original  # noqa: B904
        finally:
            self.close()
            if self.dataset is not None:
                self.dataset.drain()


class _OneIterator(tf.distribute.DistributedDataset):
    """A distributed dataset whose every ``iter()`` returns the same iterator."""

    def __init__(self, dataset: Any) -> None:
        self._dataset = dataset
        self._iterator: Any = None

    def __iter__(self) -> Any:
        if self._iterator is None:
            self._iterator = iter(self._dataset)
        return self._iterator

    def drain(self) -> None:
        """Read the iterator, once its generator has ended, to its end."""
        if self._iterator is not None and not drain_distributed_iterator(self._iterator):
            warnings.warn(
                "kutils could not read this call's input iterator to its end; if the "
                "process hangs at exit, please report it with your TensorFlow version.",
                RuntimeWarning,
                stacklevel=2,
            )

    @property
    def element_spec(self) -> Any:
        return self._dataset.element_spec

    @property
    def cardinality(self) -> int:
        return int(tf.data.UNKNOWN_CARDINALITY)


# -- the adapter Keras gets for a ShardedInput --------------------------------------------
# Passed to fit as a distributed dataset, Keras would take its cardinality (elements per
# worker, that is steps x local replicas) for the number of steps and would have no epoch
# hooks. So fit gets the ShardedInput object itself, and the routing point gives it an
# adapter that reports the steps of each epoch and moves the epochs on.


@functools.cache
def _sharded_input_adapter_class() -> Any:
    base = _keras_compat.tf_dataset_adapter_class()

    class ShardedInputAdapter(base):  # type: ignore[misc, valid-type]
        """The adapter of a kutils ShardedInput: its steps per epoch and epoch hooks."""

        _kutils_rereads_length = True

        def __init__(self, shards: ShardedInput) -> None:
            super().__init__(shards.dataset)
            self._shards = shards
            self._within_epoch = False

        @property
        def num_batches(self) -> int:
            return int(self._shards.num_batches())

        def on_epoch_begin(self) -> None:
            self._within_epoch = True
            self._shards.begin_epoch()

        def on_epoch_end(self) -> None:
            # Keras also calls this before the first epoch (EpochIterator.reset).
            if self._within_epoch:
                self._shards.end_epoch()
            self._within_epoch = False

    return ShardedInputAdapter


def _adapter_route(x: Any, **_: Any) -> Any:
    """The data-parallel family's data-adapter route: a ShardedInput's own adapter."""
    if isinstance(x, ShardedInput):
        return _sharded_input_adapter_class()(x)
    return None


_sequence_hooks.register_data_adapter("shards", _adapter_route)
