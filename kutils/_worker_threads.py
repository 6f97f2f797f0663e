"""A pool of daemon worker threads whose shutdown waits a bounded time.

``concurrent.futures.ThreadPoolExecutor`` cannot be left behind: ``shutdown`` waits for
a task that never returns, and the interpreter joins its threads at exit, so a
``__getitem__`` or generator stuck on a dead network share keeps the whole process
alive. These threads are daemon threads: ``shutdown(timeout)`` waits at most
``timeout`` seconds for the tasks in progress, then leaves a thread still inside one to
end on its own, and the process can exit.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["DaemonThreadPool"]


class DaemonThreadPool:
    """``workers`` daemon threads running submitted calls; futures as the executor's."""

    def __init__(self, workers: int, name: str) -> None:
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{number}", daemon=True)
            for number in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(
        self, function: Callable[[Any], Any], argument: Any
    ) -> concurrent.futures.Future[Any]:
        """Run ``function(argument)`` on a worker thread."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                msg = "cannot submit a task to a thread pool that was shut down"
                raise RuntimeError(msg)
            self._tasks.put((future, function, argument))
        return future

    def shutdown(self, timeout: float | None) -> None:
        """Cancel the tasks not begun; wait up to ``timeout`` seconds for the rest.

        ``None`` waits until every thread ended. A thread still running a task after
        ``timeout`` is left to finish it: it is a daemon thread and holds no lock here.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while True:
                try:
                    future, _, _ = self._tasks.get_nowait()
                except queue.Empty:
                    break
                future.cancel()
            for _ in self._threads:
                self._tasks.put(None)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            future, function, argument = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = function(argument)
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(result)
            del task, future, function, argument
