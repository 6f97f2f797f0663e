"""Ordered parallel loading of Sequence batches with worker threads or spawned processes.

This module knows nothing about Keras: it calls ``sequence[index]`` for a list of indices
on workers and yields the batches in the order of the list, at most ``max_queue_size``
ahead of the consumer. ``kutils.sequence`` drives it from Keras 3's ``fit``.

Processes are always started with ``spawn``: TensorFlow runs threads, and forking a
process that runs threads can deadlock the child. A spawned worker receives the
sequence pickled once when it starts (the sequence must be picklable and its class
importable by name) and sends back each batch pickled, or the exception that
``__getitem__`` raised with the text of its traceback.
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import pickle
import queue
import signal
import threading
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["OrderedLoader"]

# How long the consumer waits for a result before it checks whether it was closed or a
# worker process died. Short enough for a prompt reaction, long enough not to spin.
_POLL_SECONDS = 0.1
# How long close() gives worker processes to exit after the stop message before it
# terminates them (a worker may be inside a slow __getitem__).
_JOIN_SECONDS = 2.0


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process, kept as its cause."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


class WorkerDied(RuntimeError):
    """A worker process ended while the batches of an epoch were being loaded."""


class OrderedLoader:
    """Load ``sequence[i]`` for each ``i`` in ``indices`` on workers, yielding in order.

    Iterate the loader once; call ``close()`` when done, early, or on error (it is
    idempotent and thread-safe). After ``close()`` an iteration in progress stops
    without error at its next wait.
    """

    def __init__(
        self,
        sequence: Any,
        indices: Sequence[int],
        *,
        workers: int,
        use_multiprocessing: bool,
        max_queue_size: int,
    ) -> None:
        self._sequence = sequence
        self._indices = list(indices)
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max(1, max_queue_size)
        self._lock = threading.Lock()
        self._closed = False
        self._threads: concurrent.futures.ThreadPoolExecutor | None = None
        self._processes: list[Any] = []
        self._tasks: Any = None
        self._results: Any = None

    def __iter__(self) -> Iterator[Any]:
        if self._use_multiprocessing:
            return self._iterate_processes()
        return self._iterate_threads()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the workers and wait for them; terminate processes that do not stop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads, self._threads = self._threads, None
            processes, self._processes = self._processes, []
            tasks, results = self._tasks, self._results
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)
        if processes:
            _stop_processes(processes, tasks)
        for q in (tasks, results):
            if q is not None:
                q.cancel_join_thread()
                q.close()

    # -- threads ----------------------------------------------------------------------

    def _iterate_threads(self) -> Iterator[Any]:
        with self._lock:
            if self._closed:
                return
            executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._workers, thread_name_prefix="kutils_sequence"
            )
            self._threads = executor
        pending: collections.deque[concurrent.futures.Future[Any]] = collections.deque()
        submitted = 0
        try:
            for _ in range(len(self._indices)):
                while submitted < len(self._indices) and len(pending) < self._max_queue_size:
                    with self._lock:
                        if self._closed:
                            return
                        pending.append(
                            executor.submit(self._sequence.__getitem__, self._indices[submitted])
                        )
                    submitted += 1
                future = pending.popleft()
                while True:
                    try:
                        batch = future.result(timeout=_POLL_SECONDS)
                        break
                    except concurrent.futures.TimeoutError:
                        if self._closed:
                            return
                    except concurrent.futures.CancelledError:
                        return
                yield batch
        finally:
            for future in pending:
                future.cancel()

    # -- processes --------------------------------------------------------------------

    def _iterate_processes(self) -> Iterator[Any]:
        payload = _pickle_sequence(self._sequence)
        context = multiprocessing.get_context("spawn")
        with self._lock:
            if self._closed:
                return
            self._tasks = context.Queue()
            self._results = context.Queue()
            for _ in range(self._workers):
                process = context.Process(
                    target=_worker_main,
                    args=(payload, self._tasks, self._results),
                    name="kutils_sequence_worker",
                    daemon=True,
                )
                process.start()
                self._processes.append(process)
            tasks, results, processes = self._tasks, self._results, list(self._processes)

        total = len(self._indices)
        submitted = 0
        ready: dict[int, tuple[bool, Any]] = {}
        for position in range(total):
            while submitted < total and submitted - position < self._max_queue_size:
                tasks.put((submitted, self._indices[submitted]))
                submitted += 1
            while position not in ready:
                try:
                    where, ok, value = results.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    if self._closed:
                        return
                    _check_alive(processes)
                    continue
                except (OSError, ValueError, EOFError):
                    if self._closed:  # the queue was closed under us
                        return
                    raise
                if where < 0:  # the worker could not start
                    raise _rebuild_error(value)
                ready[where] = (ok, value)
            ok, value = ready.pop(position)
            if not ok:
                raise _rebuild_error(value)
            yield pickle.loads(value)


def _pickle_sequence(sequence: Any) -> bytes:
    try:
        return pickle.dumps(sequence, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        msg = (
            "use_multiprocessing=True sends the Sequence to spawned worker processes, so "
            f"it must be picklable, but pickling failed with {type(error).__name__}: "
            f"{error}. Keep file paths instead of open files or handles in the Sequence "
            "and open them inside __getitem__, or use threads "
            f"(use_multiprocessing=False). Received: sequence={sequence!r}"
        )
        raise TypeError(msg) from error


def _check_alive(processes: list[Any]) -> None:
    for process in processes:
        if process.exitcode is not None:
            msg = (
                f"A Sequence worker process (pid {process.pid}) exited with code "
                f"{process.exitcode} while loading batches. It may have run out of memory "
                "or crashed in native code; try fewer workers or use_multiprocessing=False."
            )
            raise WorkerDied(msg)


def _stop_processes(processes: list[Any], tasks: Any) -> None:
    for _ in processes:
        try:
            tasks.put(None)
        except (OSError, ValueError):
            break
    for process in processes:
        process.join(_JOIN_SECONDS)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(_JOIN_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()


def _portable_error(error: BaseException) -> tuple[bytes | None, str, str]:
    """The exception pickled (when possible), its 'Type: message' line and traceback."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    summary = f"{type(error).__module__}.{type(error).__qualname__}: {error}"
    data: bytes | None
    try:
        data = pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)  # some exceptions pickle but cannot be rebuilt
    except Exception:
        data = None
    return data, summary, text


def _rebuild_error(value: tuple[bytes | None, str, str]) -> BaseException:
    data, summary, text = value
    error: BaseException
    if data is not None:
        error = pickle.loads(data)
    else:
        error = RuntimeError(f"{summary} (the exception could not be pickled back)")
    error.__cause__ = RemoteTraceback(text)
    # Keras's traceback filter re-raises with ``from None``, which drops the cause: keep
    # the worker's traceback as a note too (printed with the error, Python 3.11+).
    if hasattr(error, "add_note"):
        error.add_note(f"Raised in a Sequence worker process:\n{text.rstrip()}")
    return error


def _worker_main(payload: bytes, tasks: Any, results: Any) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Results not yet flushed when the worker is told to stop are no longer wanted.
    results.cancel_join_thread()
    try:
        sequence = pickle.loads(payload)
    except BaseException as error:
        results.put((-1, False, _portable_error(error)))
        return
    while True:
        task = tasks.get()
        if task is None:
            return
        position, index = task
        try:
            data = pickle.dumps(sequence[index], protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            results.put((position, False, _portable_error(error)))
        else:
            results.put((position, True, data))
