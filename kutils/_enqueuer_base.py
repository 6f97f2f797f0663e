"""What both enqueuers share: ``SequenceEnqueuer`` (start, stop, the hand-off to get()).

``kutils.enqueuers`` builds ``OrderedEnqueuer`` and ``GeneratorEnqueuer`` on this base
and exports it; user code imports it from there (or from ``kutils``). A background
thread of the enqueuer walks the source and hands each batch to ``get()`` through a
``kutils._handoff.HandOff`` of one batch.
"""

from __future__ import annotations

import itertools
import numbers
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from kutils._handoff import HandOff
from kutils._loader import OrderedLoader

# How long the background thread and get() wait before they check whether the enqueuer
# was stopped: short enough for a prompt stop(), long enough not to spin.
_POLL_SECONDS = 0.1

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
        self.queue: HandOff | None = None
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
        self.queue = HandOff()
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
            self.queue.drain()
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
            if self.queue.put(item, _POLL_SECONDS):
                return True
        return False

    def _wait_until_consumed(self) -> bool:
        """Wait until get() took every batch handed over; False if stopped meanwhile."""
        assert self.queue is not None
        while not self.queue.wait_taken(_POLL_SECONDS):
            if not self.is_running():
                return False
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
                kind, value = handoff.get(_POLL_SECONDS)
            except queue.Empty:
                continue
            if kind == "batch":
                if value is not None:  # a generator may yield None: skipped, as Keras 2
                    yield value
            elif kind == "end":
                return
            else:
                self.stop()
                raise value


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        msg = f"{name} must be an integer. Received: {name}={value!r}"
        raise TypeError(msg)
    if value < minimum:
        msg = f"{name} must be at least {minimum}. Received: {name}={value!r}"
        raise ValueError(msg)
