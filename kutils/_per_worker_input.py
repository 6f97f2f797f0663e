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
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kutils import (
    _keras_compat,
    _keras_compat_training,
    _keras_patches,
    _row_sources,
    _sequence_hooks,
)


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


# -- ending a distributed input pipeline --------------------------------------------------
# tf.distribute reads a per-worker dataset through an OwnedMultiDeviceIterator, whose
# background thread fills one buffer per device; its destructor waits for that thread.
# With a Dataset.from_generator inside, the thread runs Python and needs the GIL, which
# the destructor holds (it runs from the garbage collector): reading the iterator to its
# end first leaves the thread finished. The iterator's parts are TensorFlow internals,
# read by _keras_compat_training.distributed_iterator_device_parts.

_DRAIN_ERRORS_IN_A_ROW = 10


def drain_distributed_iterator(iterator: Any, timeout: float = 60.0) -> bool:
    """Read the local part of a tf.distribute iterator until its end.

    Call it only once the dataset is known to end (its generator has returned or
    will). Elements that fail (the input's own error, already raised) are skipped.
    Each device's buffer is read in its own thread: the background thread fills the
    devices' buffers in turn, so reading one device to its end while another's buffer is
    full would wait for ever.

    Returns:
        False when the iterator does not have the expected structure (nothing read) or
        was not read to its end within ``timeout`` seconds.
    """
    parts = _keras_compat_training.distributed_iterator_device_parts(iterator)
    if parts is None:
        return False
    readers = [
        threading.Thread(target=_read_to_end, args=part, name="kutils-drain", daemon=True)
        for part in parts
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout
    for reader in readers:
        reader.join(max(deadline - time.monotonic(), 0.0))
    return not any(reader.is_alive() for reader in readers)


def _read_to_end(iterator: Any, device: str | None) -> None:
    errors = 0
    with tf.device(device) if device else contextlib.nullcontext():
        while errors < _DRAIN_ERRORS_IN_A_ROW:
            try:
                iterator.get_next()
                errors = 0
            except tf.errors.OutOfRangeError:
                return
            except tf.errors.OpError:
                errors += 1
