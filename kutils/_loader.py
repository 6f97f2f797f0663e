"""Ordered parallel loading of Sequence batches with worker threads or spawned processes.

This module knows nothing about Keras: it calls ``sequence[index]`` for a list of indices
on workers and yields the batches in the order of the list, at most ``max_queue_size``
ahead of the consumer. ``kutils.sequence`` drives it from Keras 3's ``fit``.

Processes are always started with ``spawn``: TensorFlow runs threads, and forking a
process that runs threads can deadlock the child. A spawned worker receives the
sequence pickled once when it starts (the sequence must be picklable and its class
importable by name) and sends back each batch pickled, or the exception that
``__getitem__`` raised with the text of its traceback.

Each worker gets, per pass, its part of the order (every ``workers``-th step) through
a control pipe of its own, and loads ahead on its own as far as a bound in shared
memory allows (``max_queue_size`` batches past the consumer, raised half a window at a
time), so tiny batches cost no request and no wake-up each. It has a results pipe of
its own whose only write end it holds; it pickles a batch straight into the pipe as a
message of frames (a small one in one write). The main process reads the pipes
without blocking, keeping half-received messages, while it watches the workers' exits,
so a worker that dies at any moment, also half-way through a batch, is reported as
``WorkerDied`` within a poll interval instead of leaving a read waiting for ever.

This module is the parent side; ``kutils._loader_results`` waits for one pass's
results. The frames, control pipes and the error transport are in
``kutils._loader_wire``; the code that runs inside a worker process is in
``kutils._loader_worker``, and nothing of it runs here.
"""

from __future__ import annotations

import ast
import collections
import concurrent.futures
import multiprocessing
import pickle
import sys
import threading
import time
import warnings
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from kutils._loader_results import POLL_SECONDS, PassResults, WorkerDied
from kutils._loader_wire import ControlSender, Inherited, ResultReader, loads, rebuild_error
from kutils._loader_worker import BOUND, PASS, WINDOW, WORKERS, worker_main
from kutils._worker_threads import DaemonThreadPool

__all__ = ["OrderedLoader", "WorkerDied"]

_POLL_SECONDS = POLL_SECONDS
# How long close() gives worker processes to exit after the stop message before it
# terminates them (a worker may be inside a slow __getitem__).
_JOIN_SECONDS = 2.0


class OrderedLoader:
    """Load ``sequence[i]`` for each ``i`` in ``indices`` on workers, yielding in order.

    Iterate the loader once; call ``close()`` when done, early, or on error (it is
    idempotent and thread-safe). After ``close()`` an iteration in progress stops
    without error at its next wait.

    The same workers can serve further passes: ``run(indices)`` starts one more pass
    over ``indices`` (worker processes get the sequence's current state, pickled again,
    when it changed since the last pass) and ``end_pass()`` stops the pass in progress
    without stopping the workers, so one pool lives for a whole ``fit`` call.
    """

    def __init__(
        self,
        sequence: Any,
        indices: Sequence[int],
        *,
        workers: int,
        use_multiprocessing: bool,
        max_queue_size: int,
        start_method: str | None = None,
    ) -> None:
        self._sequence = sequence
        self._indices = list(indices)
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max(1, max_queue_size)
        self._start_method = start_method or "spawn"
        if self._start_method not in multiprocessing.get_all_start_methods():
            msg = (
                f"start_method must be one of {multiprocessing.get_all_start_methods()} on "
                f"this platform. Received: start_method={start_method!r}"
            )
            raise ValueError(msg)
        self._lock = threading.Lock()
        self._closed = False
        self._threads: DaemonThreadPool | None = None
        self._processes: list[Any] = []
        self._controls: list[ControlSender] = []
        self._doorbells: list[Any] = []  # one semaphore per worker process
        self._shared: Any = None  # the pass number, credit bound and worker count
        self._results: Any = None
        self._reading = False  # the iterating thread is between two yields, reading
        self._pass = 0  # the number of the pass in progress; end_pass() bumps it
        self._next_position = 0  # positions count on across passes
        self._payload: bytes | None = None
        self._started = False
        self._pending: list[concurrent.futures.Future[Any]] = []

    def __iter__(self) -> Iterator[Any]:
        return self.run(self._indices)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def start_method(self) -> str:
        return self._start_method

    @property
    def max_queue_size(self) -> int:
        """How many batches the workers may load ahead; may change between passes."""
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value: int) -> None:
        self._max_queue_size = max(1, value)

    def run(self, indices: Sequence[int]) -> Generator[Any, None, None]:
        """One pass over ``indices`` on this loader's workers (started on first use)."""
        with self._lock:
            self._pass += 1
            number = self._pass
        if self._use_multiprocessing:
            return self._iterate_processes(list(indices), number)
        return self._iterate_threads(list(indices), number)

    def end_pass(self) -> None:
        """Stop the pass in progress (at its next wait); the workers keep running.

        The pass still yields the batches already loaded, in order, then stops.

        With threads, batches of the pass not yet begun are cancelled and those being
        loaded are waited for, so no ``__getitem__`` of the pass overlaps what the
        caller does next (such as ``on_epoch_end``). Worker processes drop the rest of
        their part of the pass before their next batch.
        """
        with self._lock:
            self._pass += 1
            if self._shared is not None:
                self._shared[PASS] = self._pass
            pending, self._pending = self._pending, []
        for future in pending:
            future.cancel()
        concurrent.futures.wait(pending)

    def _stopped(self, number: int) -> bool:
        return self._closed or self._pass != number

    def close(self, timeout: float | None = None) -> None:
        """Stop the workers and wait for them; terminate processes that do not stop.

        Workers get ``timeout`` seconds (``None``: ``_JOIN_SECONDS``) to finish the
        batch they are loading. A worker process still busy then is terminated; a worker
        thread still inside ``__getitem__`` is left to return on its own (a daemon
        thread: it cannot keep the process alive).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads, self._threads = self._threads, None
            processes, self._processes = self._processes, []
            results, shared = self._results, self._shared
            controls, self._controls = self._controls, []
            doorbells = self._doorbells
            # A reader in use by the iterating thread is closed by that thread when it
            # sees the loader closed: closing its descriptor under it could let a file
            # opened meanwhile take the number and be read as results.
            readers_in_use = self._reading
        grace = _JOIN_SECONDS if timeout is None else max(0.0, timeout)
        if threads is not None:
            threads.shutdown(grace)
        if processes:
            _stop_processes(processes, controls, doorbells, shared, grace)
        if not readers_in_use:
            _close_readers(results or [])

    # -- threads ----------------------------------------------------------------------

    def _iterate_threads(self, indices: list[int], number: int) -> Generator[Any, None, None]:
        with self._lock:
            if self._stopped(number):
                return
            if self._threads is None:
                self._threads = DaemonThreadPool(self._workers, "kutils_sequence")
            executor = self._threads
        pending: collections.deque[concurrent.futures.Future[Any]] = collections.deque()
        submitted = 0
        try:
            for _ in range(len(indices)):
                while submitted < len(indices) and len(pending) < self._max_queue_size:
                    with self._lock:
                        if self._stopped(number):
                            return
                        future = executor.submit(self._sequence.__getitem__, indices[submitted])
                        pending.append(future)
                        self._pending.append(future)
                    submitted += 1
                future = pending.popleft()
                while True:
                    try:
                        batch = future.result(timeout=_POLL_SECONDS)
                        break
                    except concurrent.futures.TimeoutError:
                        if self._stopped(number):
                            return
                    except concurrent.futures.CancelledError:
                        return
                with self._lock:
                    self._pending = [f for f in self._pending if not f.done()]
                yield batch
        finally:
            for future in pending:
                future.cancel()

    # -- processes --------------------------------------------------------------------

    def _start_processes(self) -> None:
        """Start the worker processes, each with the sequence.

        Spawned workers get it pickled. Forked workers inherit it: a sequence that
        cannot be pickled (an open file in it) still works there, as in Keras 2.
        """
        payload: Any
        forked = self._start_method == "fork"
        if forked:
            try:
                payload = pickle.dumps(self._sequence, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:
                payload = Inherited(self._sequence)
        else:
            check_main_guard()
            payload = _pickle_sequence(self._sequence)
        context = multiprocessing.get_context(self._start_method)
        readers: list[ResultReader] = []
        with self._lock:
            if self._closed:
                return
            self._payload = payload if isinstance(payload, bytes) else None
            self._started = True
            self._results = readers  # filled below; close() closes what is there
            self._shared = context.RawArray("q", 4)
            self._shared[PASS] = -1
            self._shared[WORKERS] = self._workers
            for _ in range(self._workers):
                # One results pipe per worker: the parent reads each one without blocking
                # and knows which worker a half-received batch came from.
                receiver, sender = context.Pipe(duplex=False)
                # One control pipe per worker: each must see every new sequence state,
                # and each gets its own plan of the pass. Written by this thread, not
                # by a queue's feeder thread: a pass then starts without a thread switch.
                control_end, control = context.Pipe(duplex=False)
                doorbell = context.Semaphore(0)
                process = context.Process(  # type: ignore[attr-defined]
                    target=worker_main,
                    args=(payload, control_end, doorbell, self._shared, sender),
                    name="kutils_sequence_worker",
                    daemon=True,
                )
                readers.append(ResultReader(receiver, process))
                self._controls.append(ControlSender(control))
                self._doorbells.append(doorbell)
                try:
                    with warnings.catch_warnings():
                        # Python 3.12+ warns that forking a multi-threaded process may
                        # deadlock the child: the trade-off Keras 2 made, documented.
                        warnings.filterwarnings(
                            "ignore", message=".*use of fork\\(\\) may lead to deadlocks"
                        )
                        process.start()
                finally:
                    # The worker holds the only write end left, so its death is an end
                    # of file here and never a read that waits for bytes that cannot come.
                    sender.close()
                    control_end.close()
                self._processes.append(process)

    def _restart_processes(self) -> None:
        """Fork the workers again (a sequence that cannot be pickled: Keras 2's way)."""
        with self._lock:
            processes, self._processes = self._processes, []
            controls, self._controls = self._controls, []
            doorbells, self._doorbells = self._doorbells, []
            readers, self._results = self._results or [], None
            self._started = False
        _stop_processes(processes, controls, doorbells, self._shared, _JOIN_SECONDS)
        _close_readers(readers)
        self._start_processes()

    def _refresh_sequence(self) -> None:
        """Send the sequence's state to the live workers if it changed since last sent.

        Keras 2 re-created its process pool each epoch so that workers saw what
        ``on_epoch_end`` changed; re-pickling the sequence costs far less than starting
        processes that import TensorFlow again.
        """
        if self._start_method == "fork":
            try:
                payload = pickle.dumps(self._sequence, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:
                self._restart_processes()  # the new children inherit the new state
                return
        else:
            payload = _pickle_sequence(self._sequence)
        with self._lock:
            if self._closed or payload == self._payload:
                return
            self._payload = payload
            for control in self._controls:
                control.send(("state", payload))

    def _iterate_processes(self, indices: list[int], number: int) -> Generator[Any, None, None]:
        if not self._started:
            self._start_processes()
        else:
            self._refresh_sequence()
        with self._lock:
            if self._stopped(number):
                return
            processes, readers = list(self._processes), list(self._results)
            first = self._next_position
            self._next_position += len(indices)
            self._announce_pass(number, first, indices)
            self._reading = True
        try:
            yield from self._deliver(readers, processes, len(indices), number, first)
        finally:
            with self._lock:
                self._reading = False
                closed = self._closed
            if closed:
                _close_readers(readers)

    def _announce_pass(self, number: int, first: int, indices: list[int]) -> None:
        """Send each worker its part of the pass and wake it (the lock is held).

        Worker ``k`` serves steps ``k``, ``k + workers``, ... and loads a batch once its
        position is below the shared bound, ``max_queue_size`` past the consumer's.
        """
        shared, workers = self._shared, len(self._controls)
        shared[WINDOW] = self._max_queue_size
        shared[PASS] = number  # before the bound, as _loader_worker reads them
        shared[BOUND] = first + self._max_queue_size
        for offset, control in enumerate(self._controls):
            control.send(("plan", number, first + offset, indices[offset::workers]))
        for doorbell in self._doorbells:
            doorbell.release()

    def _deliver(
        self, readers: list[ResultReader], processes: list[Any], total: int, number: int, first: int
    ) -> Iterator[Any]:
        ready: dict[int, tuple[bool, Any, list[bytearray]]] = {}
        results = PassResults(readers, processes, list(self._controls), ready, first)
        window = self._max_queue_size
        # The bound is raised a hop at a time, not a batch at a time: a worker that has
        # caught up then loads several batches per wake-up instead of one (tiny batches
        # would otherwise cost a wake-up of a worker process each).
        hop = max(1, window // 2)
        for step in range(total):
            position = first + step
            while position not in ready:
                if self._stopped(number):
                    return
                if not results.receive(position, self):
                    return
            ok, data, buffers = ready.pop(position)
            if not ok:
                raise rebuild_error(loads(data, buffers))
            batch = loads(data, buffers)
            with self._lock:
                self._reading = False
                # Under the lock and only while the pass runs, so that a pass ended
                # early never lowers the bound of the next one.
                if (step + 1) % hop == 0 and not self._stopped(number):
                    self._raise_bound(first, step + 1, window, hop, total)
            yield batch
            with self._lock:
                self._reading = not self._stopped(number)

    def _raise_bound(self, first: int, consumed: int, window: int, hop: int, total: int) -> None:
        """Let the workers load up to ``window`` steps past ``consumed``; wake them."""
        self._shared[BOUND] = first + consumed + window
        opened = range(consumed + window - hop, min(consumed + window, total))
        for worker in {step % len(self._doorbells) for step in opened}:
            self._doorbells[worker].release()


def default_start_method() -> str:
    """``fork`` where the platform has it (as Keras 2 on Linux), else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods:
        return "fork"
    return "spawn"


def check_main_guard() -> None:
    """Raise when spawned workers would re-run a script that has no ``__main__`` guard.

    A spawned worker imports the main script again; without
    ``if __name__ == "__main__":`` it runs the script's training code too and fails.
    Keras 2 forked on Linux, where such scripts worked.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path or getattr(main, "__spec__", None) is not None:
        return  # interactive, or run with -m (spawn imports the module by name)
    try:
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read())
    except (OSError, SyntaxError, ValueError):
        return
    for node in tree.body:
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test):
            return
    msg = (
        f"use_multiprocessing=True starts worker processes with 'spawn', which runs the "
        f"main script {path!r} again in every worker, and it has no "
        "`if __name__ == '__main__':` guard, so each worker would run the training "
        "too. Put the script's top-level code (the model, fit, ...) under "
        "`if __name__ == '__main__':`, or use start_method='fork' where the platform has "
        "it (Linux), or use threads (use_multiprocessing=False)."
    )
    raise RuntimeError(msg)


def _close_readers(readers: list[ResultReader]) -> None:
    for reader in readers:
        reader.close()


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


def _stop_processes(
    processes: list[Any],
    controls: list[ControlSender],
    doorbells: list[Any],
    shared: Any,
    grace: float,
) -> None:
    """Ask the workers to stop; terminate those still busy after ``grace`` seconds."""
    if shared is not None:
        shared[PASS] = -1  # no pass: a worker waiting for credit drops its plan
    for control in controls:
        control.send(None)
        control.close()  # a stop message that did not fit: the end of file says it too
    for doorbell in doorbells:
        doorbell.release()
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(_JOIN_SECONDS)
        if process.is_alive():
            process.kill()
            process.join(_JOIN_SECONDS)
