"""The code that runs inside a loader worker process (the child side of the boundary).

A worker receives the sequence once when it starts (pickled, or inherited when forked).
Its control pipe then brings, in order, newer states of the sequence (what the
parent's ``on_epoch_end`` changed) and the plan of each pass: the positions and
indices this worker serves (every ``workers``-th step of the pass). The worker runs
through its plan without a request per batch, as far ahead as the parent's credit
allows: a position is loaded once it is below the bound the parent keeps in shared
memory (``max_queue_size`` batches ahead of the consumer), and the parent rings the
worker's doorbell (a semaphore) when it raises the bound. Each batch, or the exception
that ``__getitem__`` raised, goes back through the worker's own results pipe
(``kutils._loader_wire``); quick small results that the consumer will not read within
the next half window are held and written together, before the worker sleeps.

A pass ends when the parent changes the pass number in shared memory: the worker drops
the rest of its plan and reads its control pipe for the next message. It exits on the
stop message, when the parent closes the results pipe, or when it finds its parent
gone. Nothing here runs in the training process.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import time
from typing import Any

from kutils._loader_wire import (
    ABORT,
    TIMED_OUT,
    ControlReader,
    FrameWriter,
    Inherited,
    portable_error,
    send,
)

# How often an idle worker checks that its parent is still alive.
PARENT_CHECK_SECONDS = 1.0
# The slots of the shared array the parent writes and the workers read.
PASS, BOUND, WORKERS, WINDOW = 0, 1, 2, 3
# A result that took longer than this to load and pickle is sent at once, never held.
HOLD_SECONDS = 0.001


def worker_main(payload: Any, control: Any, doorbell: Any, shared: Any, sender: Any) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    writer = FrameWriter(sender.fileno())
    try:
        sequence = payload.sequence if isinstance(payload, Inherited) else pickle.loads(payload)
    except BaseException as error:
        send(writer, -1, False, portable_error(error))
        writer.flush()
        return
    worker = _Worker(sequence, ControlReader(control), doorbell, shared, writer)
    try:
        worker.serve()
    except BrokenPipeError:  # the parent closed the results pipe: nobody wants more
        return


class _Worker:
    """A worker's copy of the sequence and the plan of the pass it serves."""

    def __init__(self, sequence: Any, control: Any, doorbell: Any, shared: Any, writer: Any):
        self.sequence = sequence
        self.error: tuple[bytes | None, str, str] | None = None
        self._control = control
        self._doorbell = doorbell
        self._shared = shared
        self._writer = writer
        self._parent = multiprocessing.parent_process()

    def serve(self) -> None:
        while True:
            message = self._next_message()
            if message is None:
                return
            if message[0] == "state":
                try:
                    self.sequence, self.error = pickle.loads(message[1]), None
                except Exception as error:
                    self.error = portable_error(error)
                continue
            _, number, first, indices = message
            # A plan whose pass already ended (the parent moved on) is skipped.
            if number == self._shared[PASS] and not self._run_plan(number, first, indices):
                return

    def _next_message(self) -> Any:
        """The next control message; None for the stop message (or the pipe closed by the
        parent) and for an orphaned worker."""
        while True:
            message = self._control.get(PARENT_CHECK_SECONDS)
            if message is not TIMED_OUT:
                return message
            # A parent killed without stopping its workers never sends the stop message.
            if self._parent is not None and not self._parent.is_alive():
                return None

    def _run_plan(self, number: int, first: int, indices: range | list[int]) -> bool:
        """Serve pass ``number`` from ``first`` on; False if orphaned.

        ``indices`` are this worker's: the sequence index of position ``first``, of
        ``first + workers``, ``first + 2 * workers``, ...
        """
        shared, writer = self._shared, self._writer
        stride, window = shared[WORKERS], shared[WINDOW]
        hop = max(1, window // 2)
        try:
            for step, index in enumerate(indices):
                position = first + step * stride
                credit = self._wait_for_credit(number, position)
                if credit is None:
                    return False
                if not credit:
                    return True  # the pass ended: back to the control pipe
                began = time.monotonic()
                self._load(position, index)
                # A quick result far enough ahead of the consumer (not among the next
                # half window it reads) is held and sent with the next ones: tiny
                # batches then cost one write and one wake-up of the parent per few.
                # Whatever is held goes before this worker waits or loads a batch the
                # consumer may be waiting for.
                needed_soon = position < shared[BOUND] - window + hop
                if needed_soon or time.monotonic() - began > HOLD_SECONDS:
                    writer.flush()
        finally:
            writer.flush()
        return True

    def _wait_for_credit(self, number: int, position: int) -> bool | None:
        """Wait until ``position`` may be loaded: True; False if the pass ended; None if
        orphaned."""
        shared, doorbell = self._shared, self._doorbell
        while True:
            # The parent writes the pass number before the bound: a bound read here that
            # belongs to a newer pass comes with that pass's number in the next read.
            allowed = position < shared[BOUND]
            if shared[PASS] != number:
                return False
            if allowed:
                return True
            self._writer.flush()  # nothing held while this worker sleeps
            # Rings counted while running ahead are stale: drop them, read the bound
            # again, then sleep until the next ring (a ring after the read is counted).
            while doorbell.acquire(False):
                pass
            if position < shared[BOUND] or shared[PASS] != number:
                continue
            if not doorbell.acquire(timeout=PARENT_CHECK_SECONDS) and (
                self._parent is not None and not self._parent.is_alive()
            ):
                return None

    def _load(self, position: int, index: int) -> None:
        writer = self._writer
        if self.error is not None:
            send(writer, position, False, self.error)
            return
        try:
            batch = self.sequence[index]
        except Exception as error:
            send(writer, position, False, portable_error(error))
            return
        try:
            send(writer, position, True, batch)
        except BrokenPipeError:
            raise
        except Exception as error:  # the batch cannot be pickled: part of it may be sent
            writer.frame(ABORT)
            send(writer, position, False, portable_error(error))
