"""Keras 2's enqueuers: ``OrderedEnqueuer`` and ``GeneratorEnqueuer`` for custom loops.

Keras 2 scripts with their own training loop fed it through an enqueuer::

    enqueuer = OrderedEnqueuer(sequence, use_multiprocessing=True, shuffle=True)
    enqueuer.start(workers=4, max_queue_size=10)
    batches = enqueuer.get()
    for epoch in range(epochs):
        for step in range(len(sequence)):
            x, y = next(batches)
            ...
    enqueuer.stop()

Keras 3 has no enqueuers. These are built on kutils' own worker machinery
(``kutils._loader.OrderedLoader``, the loader behind ``kutils.Sequence`` in ``fit``):
threads, or worker processes started with ``spawn``. A background thread of the enqueuer
walks the epochs and hands the batches to ``get()`` in order.

This module imports no TensorFlow or Keras.
"""

from __future__ import annotations

import inspect
import itertools
import random
import warnings
from collections.abc import Iterator
from typing import Any

from kutils._enqueuer_base import SequenceEnqueuer
from kutils._generator_source import EXHAUSTED, GeneratorSource
from kutils._loader import OrderedLoader

__all__ = [
    "GeneratorEnqueuer",
    "OrderedEnqueuer",
    "SequenceEnqueuer",
    "iter_sequence_infinite",
]

# A generator has no length: its positions are loaded in chunks of this many, one
# OrderedLoader (one set of worker threads) per chunk.
_GENERATOR_CHUNK = 1024


class OrderedEnqueuer(SequenceEnqueuer):
    """Load the batches of a ``Sequence`` on workers, in order, epoch after epoch.

    ``get()`` yields ``sequence[0]``, ``sequence[1]``, ... ``sequence[len - 1]`` (or
    the indices in a new random order each epoch with ``shuffle=True``), then calls
    ``sequence.on_epoch_end()`` and starts the next epoch, until ``stop()``. As in Keras
    2.3.1, ``on_epoch_end`` runs on the enqueuer's background thread as soon as
    ``get()`` has handed out the last batch of the epoch, and ``len(sequence)`` is read
    again at the start of every epoch. Worker processes live from ``start()`` to
    ``stop()``; before each epoch they get the sequence again (pickled) when
    ``on_epoch_end`` changed it, so they see what it changed (Keras 2.3.1 started a
    new pool every epoch for that), and each gets its share of the epoch's order,
    which it loads ahead without a request per batch.

    An exception raised by ``__getitem__``, ``__len__`` or ``on_epoch_end`` stops the
    enqueuer and is raised by ``get()`` with its own type (from a worker process, with
    the worker's traceback as its cause).

    Args:
        sequence: a ``kutils.Sequence`` (or any object with ``__len__`` and
            ``__getitem__``). For process workers it must be picklable and its class
            importable by name.
        use_multiprocessing: load in worker processes (started with ``spawn``) instead
            of threads.
        shuffle: shuffle the order of the batches at the start of every epoch (Python's
            ``random``, as Keras 2).

    Differences from Keras 2: ``get()`` before ``start()`` raises ``RuntimeError``
    (Keras 2 returned an empty generator); a sequence of length 0, or a batch that is
    ``None``, raises ``ValueError`` from ``get()`` (Keras 2 looped for ever without a
    batch, and skipped ``None`` batches, shifting the later ones across epochs);
    ``max_queue_size=0`` loads a whole epoch ahead, as Keras 2's unbounded queue did.

    Example:
        >>> enqueuer = OrderedEnqueuer(seq, use_multiprocessing=False, shuffle=True)  # doctest: +SKIP
        >>> enqueuer.start(workers=2, max_queue_size=10)  # doctest: +SKIP
        >>> batches = enqueuer.get()  # doctest: +SKIP
        >>> x, y = next(batches)  # doctest: +SKIP
        >>> enqueuer.stop()  # doctest: +SKIP
    """

    _min_queue_size = 0

    def __init__(
        self,
        sequence: Any,
        use_multiprocessing: bool = False,
        shuffle: bool = False,
        *,
        start_method: str | None = None,
    ) -> None:
        if not (hasattr(sequence, "__len__") and hasattr(sequence, "__getitem__")):
            msg = (
                "OrderedEnqueuer loads from a Sequence (an object with __len__ and "
                "__getitem__); for a generator use GeneratorEnqueuer. "
                f"Received: sequence={sequence!r}"
            )
            raise TypeError(msg)
        super().__init__(sequence, use_multiprocessing)
        self.shuffle = shuffle
        # kutils only: how worker processes start (None: 'spawn'). fit_generator passes
        # the start method kutils uses for a Sequence in fit ('fork' on Linux, as Keras 2).
        self._start_method = start_method

    def get(self) -> Iterator[Any]:
        """Yield the batches in order, looping over the epochs, until ``stop()``.

        Raises:
            RuntimeError: called before ``start()``.
            Exception: whatever the sequence raised, with its own type.
        """
        return self._batches()

    def _run(self) -> None:
        # One loader, so one set of workers, from start() to stop(): a worker process
        # gets the sequence's new state (pickled) before the epoch after on_epoch_end
        # changed it, instead of being started again.
        loader = self._open_loader(self.sequence, [], max(1, self.max_queue_size))
        if loader is None:
            return
        try:
            while self.is_running():
                indices = self._epoch_indices()
                loader.max_queue_size = self.max_queue_size or len(indices)
                if not self._hand_over_epoch(loader, indices):
                    return
                if not self._wait_until_consumed():
                    return
                on_epoch_end = getattr(self.sequence, "on_epoch_end", None)
                if on_epoch_end is not None:  # a plain object with __len__/__getitem__
                    on_epoch_end()
        finally:
            self._close_loader(loader)

    def _epoch_indices(self) -> list[int]:
        length = len(self.sequence)
        if length <= 0:
            msg = (
                "OrderedEnqueuer needs a sequence with at least one batch, but "
                f"len(sequence) is {length}. Received: sequence={self.sequence!r}"
            )
            raise ValueError(msg)
        indices = list(range(length))
        if self.shuffle:
            random.shuffle(indices)
        return indices

    def _hand_over_epoch(self, loader: OrderedLoader, indices: list[int]) -> bool:
        """Put one epoch's batches in the hand-off queue; False if stopped meanwhile."""
        batches = loader.run(indices)
        try:
            for index, batch in zip(indices, batches, strict=False):
                if batch is None:
                    msg = (
                        f"sequence[{index}] returned None instead of a batch. Keras 2 "
                        "skipped such batches silently, which shifted every later "
                        "batch into the wrong epoch step; return the batch, or "
                        "leave the index out of len(sequence)."
                    )
                    raise ValueError(msg)
                if not self._put(("batch", batch)):
                    return False
        finally:
            batches.close()
        # A loader closed by stop() ends the pass early without an error.
        return self.is_running()


class GeneratorEnqueuer(SequenceEnqueuer):
    """Run a Python generator on worker threads and queue its batches for ``get()``.

    ``get()`` yields what the generator yields, skipping ``None`` as Keras 2 did; when a
    finite generator is exhausted, ``get()`` ends after the batches already loaded. An
    exception raised by the generator stops the enqueuer and is raised by ``get()``.

    A plain generator (``def gen(): yield ...``) cannot run in two threads at once:
    its ``next()`` calls are made one at a time, in order, so the output has the
    generator's order whatever ``workers`` is (Keras 2 raised "Your generator is NOT
    thread-safe" with ``workers > 1``). Any other iterator (an object with
    ``__next__``, such as Keras 2's image iterators) is called from ``workers`` threads
    at once, as Keras 2 did, and must be thread-safe.

    Args:
        sequence: the generator (Keras 2.3.1 called this argument ``sequence``).
        use_multiprocessing: accepted for Keras 2 scripts. A generator cannot be sent to
            spawned worker processes, and Keras 2's forked processes each replayed the
            whole generator, duplicating the data (Keras 2 warned about it). kutils runs
            the generator in threads of this process and says so with a ``UserWarning``
            at ``start()``.
        wait_time: unused since Keras 2.2.3; a value warns ``DeprecationWarning`` as
            Keras 2.3.1 did.
        random_seed: Keras 2 seeded numpy in each worker *process* with it, so that the
            copies of the generator differed. kutils runs one copy in this process and
            leaves the global numpy seed alone; the value is kept as ``random_seed``.

    Example:
        >>> enqueuer = GeneratorEnqueuer(batch_generator())  # doctest: +SKIP
        >>> enqueuer.start(workers=1, max_queue_size=10)  # doctest: +SKIP
        >>> x, y = next(enqueuer.get())  # doctest: +SKIP
        >>> enqueuer.stop()  # doctest: +SKIP
    """

    _may_use_processes = False

    def __init__(
        self,
        sequence: Any,
        use_multiprocessing: bool = False,
        wait_time: float | None = None,
        random_seed: int | None = None,
    ) -> None:
        if not hasattr(sequence, "__next__"):
            msg = (
                "GeneratorEnqueuer runs a generator or iterator (an object with "
                "__next__); for a Sequence use OrderedEnqueuer, for another iterable "
                f"pass iter(it). Received: sequence={sequence!r}"
            )
            raise TypeError(msg)
        super().__init__(sequence, use_multiprocessing)
        if wait_time is not None:
            warnings.warn("`wait_time` is not used anymore.", DeprecationWarning, stacklevel=2)
        self.wait_time = wait_time
        self.random_seed = random_seed
        self._source: GeneratorSource | None = None

    def start(self, workers: int = 1, max_queue_size: int = 10) -> None:
        """Start the worker threads (see ``SequenceEnqueuer.start``)."""
        if self.use_multiprocessing:
            warnings.warn(
                "GeneratorEnqueuer(use_multiprocessing=True): kutils runs the generator "
                "in threads of this process. A generator cannot be sent to worker "
                "processes, and Keras 2's forked workers each replayed the whole "
                "generator, duplicating the data. For process workers, write the data "
                "as a kutils.Sequence and use OrderedEnqueuer.",
                UserWarning,
                stacklevel=2,
            )
        self._source = GeneratorSource(self.sequence, ordered=inspect.isgenerator(self.sequence))
        super().start(workers, max_queue_size)

    def get(self) -> Iterator[Any]:
        """Yield the generator's batches until it ends or ``stop()`` is called.

        Raises:
            RuntimeError: called before ``start()``, or a non-thread-safe iterator was
                run by several threads.
            Exception: whatever the generator raised, with its own type.
        """
        return self._batches()

    def _cancel(self) -> None:
        if self._source is not None:
            self._source.cancel()

    def _run(self) -> None:
        assert self._source is not None
        # After the first position that found the generator exhausted, positions already
        # started may still hold batches (iterator objects run concurrently): the loader
        # runs at most max_queue_size positions ahead, so read that many more.
        left_after_end: int | None = None
        for first in itertools.count(0, _GENERATOR_CHUNK):
            loader = self._open_loader(
                self._source, range(first, first + _GENERATOR_CHUNK), self.max_queue_size
            )
            if loader is None:
                return
            try:
                for batch in loader:
                    if left_after_end is not None:
                        left_after_end -= 1
                    if batch is EXHAUSTED:
                        if left_after_end is None:
                            left_after_end = self.max_queue_size
                    elif not self._put(("batch", batch)):
                        return
                    if left_after_end == 0:
                        self._put(("end", None))
                        return
            except ValueError as error:
                if "generator already executing" not in str(error):
                    raise
                msg = (
                    "Your generator is NOT thread-safe: it was called by two worker "
                    "threads at once. Use workers=1, or make its __next__ thread-safe "
                    "(a lock around the code that advances it)."
                )
                raise RuntimeError(msg) from error
            finally:
                self._close_loader(loader)


def iter_sequence_infinite(seq: Any) -> Iterator[Any]:
    """Iterate over a Sequence for ever, epoch after epoch, in order (Keras 2.3.1).

    Args:
        seq: a ``Sequence``; ``len(seq)`` is read at the start of every pass.

    Returns:
        A generator of ``seq[0]``, ``seq[1]``, ... repeated without end. Like Keras 2's,
        it does not call ``on_epoch_end``.
    """
    while True:
        for index in range(len(seq)):
            yield seq[index]
