"""The code that runs inside a loader worker process (the child side of the boundary).

A worker receives the sequence once when it starts (pickled, or inherited when forked),
then serves ``(generation, position, index)`` tasks from the shared task queue: it
calls ``sequence[index]`` and sends the batch, or the exception, back through its own
results pipe (``kutils._loader_wire``). A newer state of the sequence (what the
parent's ``on_epoch_end`` changed) arrives on the worker's control queue. The worker
exits on the stop message, when the parent closes the results pipe, or when it finds
its parent gone. Nothing here runs in the training process.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import signal
from typing import Any

from kutils._loader_wire import (
    ABORT,
    FrameWriter,
    Inherited,
    portable_error,
    send,
)

# How often an idle worker checks that its parent is still alive.
PARENT_CHECK_SECONDS = 1.0


def worker_main(payload: Any, tasks: Any, control: Any, sender: Any) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    writer = FrameWriter(sender.fileno())
    try:
        sequence = payload.sequence if isinstance(payload, Inherited) else pickle.loads(payload)
    except BaseException as error:
        send(writer, -1, False, portable_error(error))
        return
    try:
        _serve(_WorkerState(sequence, control), tasks, writer)
    except BrokenPipeError:  # the parent closed the results pipe: nobody wants more
        return


class _WorkerState:
    """A worker's copy of the sequence, replaced when the parent sends a newer state."""

    def __init__(self, sequence: Any, control: Any) -> None:
        self.sequence = sequence
        self.error: tuple[bytes | None, str, str] | None = None
        self.generation = 0
        self._control = control

    def update(self, wanted: int | None) -> bool:
        """Take the states sent so far (waiting for ``wanted``); False if orphaned."""
        parent = multiprocessing.parent_process()
        while True:
            try:
                if wanted is not None and self.generation < wanted:
                    generation, payload = self._control.get(timeout=PARENT_CHECK_SECONDS)
                else:
                    generation, payload = self._control.get_nowait()
            except queue.Empty:
                if wanted is None or self.generation >= wanted:
                    return True
                if parent is not None and not parent.is_alive():
                    return False
                continue
            self.generation = generation
            try:
                self.sequence, self.error = pickle.loads(payload), None
            except Exception as error:
                self.error = portable_error(error)


def _serve(state: _WorkerState, tasks: Any, writer: FrameWriter) -> None:
    parent = multiprocessing.parent_process()
    while True:
        try:
            task = tasks.get(timeout=PARENT_CHECK_SECONDS)
        except queue.Empty:
            # A parent killed without stopping its workers never sends the stop message.
            if parent is not None and not parent.is_alive():
                return
            continue
        if task is None:
            return
        generation, position, index = task
        # A newer state may have been sent since this task was queued: the task then
        # belongs to a pass that ended early, and nobody reads its result.
        if not state.update(generation):
            return
        if generation < state.generation:
            continue
        if state.error is not None:
            send(writer, position, False, state.error)
            continue
        try:
            batch = state.sequence[index]
        except Exception as error:
            send(writer, position, False, portable_error(error))
            continue
        try:
            send(writer, position, True, batch)
        except BrokenPipeError:
            raise
        except Exception as error:  # the batch cannot be pickled: part of it may be sent
            writer.frame(ABORT)
            send(writer, position, False, portable_error(error))
