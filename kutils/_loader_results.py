"""The parent's side of one pass of process workers: wait for results and store them.

``kutils._loader.OrderedLoader`` creates one ``PassResults`` per pass. It waits on one poll
object for the workers' results pipes, their exits, and (while a big control message is
still going out) their control pipes, reads every pipe without blocking, and keeps the
results of the pass by position until the loader yields them in order.
"""

from __future__ import annotations

import select
from typing import Any

from kutils._loader_wire import ControlSender, ResultReader, loads, rebuild_error

# How long the consumer waits for a result before it checks whether it was closed or a
# worker process died. Short enough for a prompt reaction, long enough not to spin.
POLL_SECONDS = 0.1


class WorkerDied(RuntimeError):
    """A worker process ended while the batches of an epoch were being loaded."""


class PassResults:
    """Waits for and stores the results of one pass (the iterating thread's side)."""

    def __init__(
        self,
        readers: list[ResultReader],
        processes: list[Any],
        controls: list[ControlSender],
        ready: dict[int, tuple[bool, Any, list[bytearray]]],
        first: int,
    ) -> None:
        self._controls = controls
        self._readers = {reader.connection.fileno(): reader for reader in readers}
        self._processes = processes
        self._ready = ready
        self._first = first
        # One poll object for the pass, not one per wait: results arrive thousands of
        # times a second with tiny batches.
        self._poll = select.poll()
        for fd, reader in self._readers.items():
            if not reader.at_end:
                self._poll.register(fd, select.POLLIN)
        self._sentinels = {process.sentinel for process in processes}
        for sentinel in self._sentinels:
            self._poll.register(sentinel, select.POLLIN)

    def receive(self, position: int, loader: Any) -> bool:
        """Wait up to POLL_SECONDS for results; False if the loader was closed meanwhile.

        Raises WorkerDied when a worker ended and ``position`` has not arrived.
        """
        # Control messages the pipes could not take at once (a big new state) go out
        # as the workers read them, while this thread waits for results.
        waiting = [control for control in self._controls if control.pending]
        for control in waiting:
            self._poll.register(control.fd, select.POLLOUT)
        events = self._poll.poll(POLL_SECONDS * 1000)
        for control in waiting:
            self._poll.unregister(control.fd)
            control.flush()
        readers = self._readers
        woken = [readers[fd] for fd, _ in events if fd in readers]
        if not self._read(woken, loader):
            return False
        if position in self._ready:
            return True
        # A worker's exit shows as its sentinel in the events (or the wait timed out):
        # only then are the exit codes asked for, a system call per worker.
        if events and not any(fd in self._sentinels for fd, _ in events):
            return True
        # Exit codes first, reading second: all that a dead worker wrote is then in
        # its pipe, so its last complete result (or start-up error) is used.
        dead = [process for process in self._processes if process.exitcode is not None]
        if dead:
            if not self._read(list(self._readers.values()), loader):
                return False
            if position not in self._ready:
                raise _worker_died(dead[0])
        return True

    def _read(self, readers: list[ResultReader], loader: Any) -> bool:
        """Store the results that have arrived; False if the loader was closed meanwhile.

        Results of positions before ``first`` belong to an earlier pass that was ended
        early and are dropped.
        """
        for reader in readers:
            if reader.at_end:
                continue
            # Reading never blocks: a reader takes what its pipe holds now and keeps a
            # half-received message for later, so a worker killed mid-send cannot stall
            # this loop (its exit code is seen by the caller).
            try:
                messages = reader.read_available()
            except (OSError, ValueError):
                if loader.closed:
                    return False
                raise
            if reader.at_end:
                self._poll.unregister(reader.connection.fileno())
            for where, ok, data, buffers in messages:
                if where < 0:  # the worker could not start
                    raise rebuild_error(loads(data, buffers))
                if where >= self._first:
                    self._ready[where] = (ok, data, buffers)
        return True


def _worker_died(process: Any) -> WorkerDied:
    msg = (
        f"A Sequence worker process (pid {process.pid}) exited with code "
        f"{process.exitcode} while loading batches. It may have run out of memory "
        "or crashed in native code; try fewer workers or use_multiprocessing=False."
    )
    return WorkerDied(msg)
