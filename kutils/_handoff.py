"""The hand-off of one batch from an enqueuer's background thread to ``get()``.

Keras 2.3.1's enqueuers put each batch (a future of it) in a ``queue.Queue`` that
``get()`` took from, and the background thread called ``on_epoch_end`` once ``get()``
had taken the last one (``queue.join()``). ``HandOff`` keeps that contract for one
batch at a time, without the Python-level condition variables of ``queue.Queue``: an
item goes through a ``queue.SimpleQueue`` and its slot is a lock held from ``put``
until ``get`` takes the item, both waited on in C. With tiny batches the hand-off runs
thousands of times a second, and this halves its cost in the training process.
"""

from __future__ import annotations

import queue
import threading
from typing import Any


class HandOff:
    """A queue of capacity one between one producer thread and its consumers."""

    def __init__(self) -> None:
        self._items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Held while an item was put and not yet taken: the slot is full.
        self._slot = threading.Lock()

    def put(self, item: Any, timeout: float) -> bool:
        """Put ``item`` once the slot is free; False if it stayed full ``timeout`` s."""
        if not self._slot.acquire(timeout=timeout):
            return False
        self._items.put(item)
        return True

    def get(self, timeout: float) -> Any:
        """The item put; raises ``queue.Empty`` if none came within ``timeout`` s."""
        item = self._items.get(timeout=timeout)
        self._slot.release()
        return item

    def wait_taken(self, timeout: float) -> bool:
        """Wait until the item put was taken (at once if none is waiting); False if it
        was not taken within ``timeout`` s."""
        if not self._slot.acquire(timeout=timeout):
            return False
        self._slot.release()
        return True

    def drain(self) -> None:
        """Drop the item waiting, if any (the enqueuer was stopped)."""
        while True:
            try:
                self.get(0)
            except queue.Empty:
                return

    def qsize(self) -> int:
        """How many items wait (0 or 1), as ``queue.Queue.qsize``."""
        return self._items.qsize()

    def empty(self) -> bool:
        return self._items.empty()
