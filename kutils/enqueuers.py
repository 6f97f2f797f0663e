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
import numbers
import queue
import random
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

from kutils._loader import OrderedLoader

__all__ = [
    "GeneratorEnqueuer",
    "OrderedEnqueuer",
    "SequenceEnqueuer",
    "iter_sequence_infinite",
]

# How long the background thread and get() wait before they check whether the enqueuer
# was stopped: short enough for a prompt stop(), long enough not to spin.
_POLL_SECONDS = 0.1
# A generator has no length: its positions are loaded in chunks of this many, one
# OrderedLoader (one set of worker threads) per chunk.
_GENERATOR_CHUNK = 1024

_uids = itertools.count()
_uid_lock = threading.Lock()


class SequenceEnqueuer:
    """Base class of the enqueuers: load batches ahead of a training loop on workers.

    The Keras 2.3.1 interface: ``start(workers, max_queue_size)`` starts the workers,
    ``get()`` returns a generator of batches, ``is_running()`` tells whether the
    enqueuer was started and not stopped, ``stop(timeout)`` stops the workers and waits
    for them. Subclasses implement ``get()`` and the private ``_run()`` (the body of the
    background thread). ``start`` and ``stop`` are shared.

    Args:
        sequence: what to load from (a ``Sequence`` or a generator, per subclass).
        use_multiprocessing: load in worker processes instead of threads.

    Example:
        >>> enqueuer = OrderedEnqueuer(sequence)  # doctest: +SKIP
        >>> enqueuer.start(workers=2, max_queue_size=10)  # doctest: +SKIP
        >>> x, y = next(enqueuer.get())  # doctest: +SKIP
        >>> enqueuer.stop()  # doctest: +SKIP
    """

    def __init__(self, sequence: Any, use_multiprocessing: bool = False) -> None:
        if not isinstance(use_multiprocessing, (bool, numbers.Integral)):
            msg = (
                "use_multiprocessing must be True or False. "
                f"Received: use_multiprocessing={use_multiprocessing!r}"
            )
            raise TypeError(msg)
        self.sequence = sequence
        self.use_multiprocessing = bool(use_multiprocessing)
        with _uid_lock:
            self.uid = next(_uids)
        self.workers = 0
        self.max_queue_size = 0
        self.queue: queue.Queue[tuple[str, Any]] | None = None
        self.run_thread: threading.Thread | None = None
        self.stop_signal: threading.Event | None = None
        self._lock = threading.Lock()
        self._loader: OrderedLoader | None = None

    def is_running(self) -> bool:
        """Whether ``start()`` was called and ``stop()`` was not called since."""
        return self.stop_signal is not None and not self.stop_signal.is_set()

    def start(self, workers: int = 1, max_queue_size: int = 10) -> None:
        """Start the background thread and the workers.

        Args:
            workers: number of worker threads or processes (at least 1).
            max_queue_size: how many batches the workers may load ahead of ``get()``
                (``OrderedEnqueuer`` also takes 0: a whole epoch ahead, as Keras 2's
                unbounded queue).

        Raises:
            ValueError: ``workers`` or ``max_queue_size`` is out of range.
            TypeError: they are not integers.
            RuntimeError: the enqueuer is already running.
        """
        _check_int("workers", workers, minimum=1)
        _check_int("max_queue_size", max_queue_size, minimum=self._min_queue_size)
        if self.is_running():
            msg = (
                f"This {type(self).__name__} is already running: call stop() before "
                "starting it again."
            )
            raise RuntimeError(msg)
        if self.run_thread is not None and self.run_thread.is_alive():
            # stop(timeout) returned before the last run ended: let it end before a new
            # run replaces the queue and stop signal it reads.
            self.run_thread.join()
        self.workers = workers
        self.max_queue_size = max_queue_size
        # The loader holds up to max_queue_size batches; this hand-off holds one more.
        self.queue = queue.Queue(maxsize=1)
        self.stop_signal = threading.Event()
        self.run_thread = threading.Thread(
            target=self._run_and_report, name=f"kutils_enqueuer_{self.uid}", daemon=True
        )
        self.run_thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the workers and the background thread and wait for them.

        Worker threads and processes get ``timeout`` seconds (``None``: a grace period
        of 2 seconds) to finish the batch they are loading. Then a worker process is
        terminated, and a worker thread still inside ``__getitem__`` or the generator
        is left to return on its own: it is a daemon thread and does not keep the
        process alive. A ``get()`` generator in use ends at its next batch. Calling
        ``stop()`` twice, or before ``start()``, does nothing.

        Args:
            timeout: at most how many seconds to wait (``None``: until the background
                thread ends), as ``threading.Thread.join``. A source that never returns
                cannot make ``stop`` wait longer than this (plus up to a few seconds
                to terminate stuck worker processes).
        """
        if self.stop_signal is None:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        self.stop_signal.set()
        self._cancel()
        with self._lock:
            loader = self._loader
        if loader is not None:
            loader.close(timeout)
        if self.queue is not None:
            _drain(self.queue)
        if self.run_thread is not None and self.run_thread is not threading.current_thread():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self.run_thread.join(left)

    def get(self) -> Iterator[Any]:
        """A generator of the batches; implemented by subclasses."""
        raise NotImplementedError

    # -- shared machinery -------------------------------------------------------------

    _min_queue_size = 1

    def _run(self) -> None:
        raise NotImplementedError

    def _cancel(self) -> None:
        """Wake workers that wait inside this enqueuer's own code (subclass hook)."""

    def _run_and_report(self) -> None:
        try:
            self._run()
        except BaseException as error:
            self._put(("error", error))

    def _open_loader(self, source: Any, indices: Any, max_queue_size: int) -> OrderedLoader | None:
        """A loader for ``indices``, registered so that stop() can close it; None if stopped."""
        loader = OrderedLoader(
            source,
            indices,
            workers=self.workers,
            use_multiprocessing=self.use_multiprocessing and self._may_use_processes,
            max_queue_size=max_queue_size,
            start_method=getattr(self, "_start_method", None),
        )
        with self._lock:
            if not self.is_running():
                return None
            self._loader = loader
        return loader

    def _close_loader(self, loader: OrderedLoader) -> None:
        loader.close()
        with self._lock:
            if self._loader is loader:
                self._loader = None

    _may_use_processes = True

    def _put(self, item: tuple[str, Any]) -> bool:
        """Hand ``item`` to get(); False if the enqueuer was stopped meanwhile."""
        assert self.queue is not None
        while self.is_running():
            try:
                self.queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _wait_until_consumed(self) -> bool:
        """Wait until get() took every batch handed over; False if stopped meanwhile."""
        assert self.queue is not None
        with self.queue.all_tasks_done:
            while self.queue.unfinished_tasks:
                if not self.is_running():
                    return False
                self.queue.all_tasks_done.wait(_POLL_SECONDS)
        # stop() drains the queue: an empty queue then means stopped, not consumed.
        return self.is_running()

    def _batches(self) -> Iterator[Any]:
        """What get() yields: the hand-off queue's batches until stop, end or error."""
        if self.stop_signal is None or self.queue is None:
            msg = (
                f"{type(self).__name__}.get() was called before start(): call "
                "enqueuer.start(workers=1, max_queue_size=10) first."
            )
            raise RuntimeError(msg)
        handoff = self.queue
        while self.is_running():
            try:
                kind, value = handoff.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            handoff.task_done()
            if kind == "batch":
                if value is not None:  # a generator may yield None: skipped, as Keras 2
                    yield value
            elif kind == "end":
                return
            else:
                self.stop()
                raise value


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
        self._source: _GeneratorSource | None = None

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
        self._source = _GeneratorSource(self.sequence, ordered=inspect.isgenerator(self.sequence))
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
                    if batch is _EXHAUSTED:
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


_EXHAUSTED = object()  # what a position returns once the generator raised StopIteration


class _Cancelled(Exception):
    """The enqueuer was stopped while a worker thread waited for its turn."""


class _GeneratorSource:
    """Adapt an iterator to the ``source[position]`` calls of OrderedLoader.

    ``ordered``: call ``next()`` for position p only after position p - 1, one call at
    a time (a plain generator is not thread-safe). OrderedLoader's thread pool starts
    the positions in increasing order, so the lowest waiting position always runs.
    Otherwise ``next()`` is called concurrently, as Keras 2 did.
    """

    def __init__(self, iterator: Iterator[Any], *, ordered: bool) -> None:
        self._iterator = iterator
        self._ordered = ordered
        self._turn = 0
        self._exhausted = False
        self._cancelled = False
        self._turns = threading.Condition()

    def cancel(self) -> None:
        with self._turns:
            self._cancelled = True
            self._turns.notify_all()

    def __getitem__(self, position: int) -> Any:
        if not self._ordered:
            return self._next()
        with self._turns:
            while self._turn != position:
                if self._cancelled:
                    raise _Cancelled
                self._turns.wait(_POLL_SECONDS)
        # Only this position's thread runs now. next() is called without the lock, so
        # a generator stuck inside it cannot block cancel() and with it stop().
        try:
            return self._next()
        finally:
            with self._turns:
                self._turn += 1
                self._turns.notify_all()

    def _next(self) -> Any:
        # StopIteration cannot cross the loader's generator frames: return a marker.
        if self._exhausted:
            return _EXHAUSTED
        try:
            return next(self._iterator)
        except StopIteration:
            self._exhausted = True
            return _EXHAUSTED


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


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        msg = f"{name} must be an integer. Received: {name}={value!r}"
        raise TypeError(msg)
    if value < minimum:
        msg = f"{name} must be at least {minimum}. Received: {name}={value!r}"
        raise ValueError(msg)


def _drain(handoff: queue.Queue[Any]) -> None:
    while True:
        try:
            handoff.get_nowait()
        except queue.Empty:
            return
        handoff.task_done()
