"""A generator behind the ``source[position]`` calls of the loader (GeneratorEnqueuer).

``kutils._loader.OrderedLoader`` loads ``source[position]`` for increasing positions
on its worker threads. ``GeneratorSource`` makes a Python iterator answer those calls:
a plain generator one ``next()`` at a time in position order, any other iterator from
all the threads at once, as Keras 2 did.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

# How long a worker thread waits for its turn before it checks for cancellation.
POLL_SECONDS = 0.1

EXHAUSTED = object()  # what a position returns once the generator raised StopIteration


class Cancelled(Exception):
    """The enqueuer was stopped while a worker thread waited for its turn."""


class GeneratorSource:
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
                    raise Cancelled
                self._turns.wait(POLL_SECONDS)
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
            return EXHAUSTED
        try:
            return next(self._iterator)
        except StopIteration:
            self._exhausted = True
            return EXHAUSTED
