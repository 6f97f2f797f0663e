"""OrderedEnqueuer with thread and process workers: steady state, epoch ends, start-up.

Four figures, each process workers against thread workers, 2 workers, best of
``ROUNDS`` runs that alternate the two sides (so both see the same machine load); the
load average is printed with each figure.

1. **Steady state, tiny batches** (the figure issue 25's target, processes at most
   1.5x threads, is judged on): the time per batch of the epochs after the first, once
   the worker pool is up, over ``STEADY_EPOCHS`` epochs of ``STEADY_BATCHES`` tiny
   numpy batches (thousands of batches, so the timing is far above timer noise). This is
   the per-batch cost of the workers themselves, the cost a training loop pays on every
   step for as long as it runs.
2. **Epoch boundaries**: the same per epoch with epochs of ``SHORT_BATCHES`` tiny
   batches (the workload of issue 25's first measurement, without the start-up). Each
   epoch boundary is a round trip that no worker can run ahead of: the next epoch's
   order and the state ``on_epoch_end`` left reach the live workers only after the last
   batch was handed out, as in Keras 2.3.1, so short epochs weigh that latency more.
3. **Start-up**: from ``start()`` to the first batch. Thread workers start in well under
   a millisecond; process workers are spawned (a fresh interpreter each, importing numpy
   and the sequence's module), about 0.2 s on this machine, once per ``start()``. No
   pool of spawned processes can start in the time threads need, so this is reported
   beside the steady state and not hidden, but it is not what the target measures: it
   is paid once, not per batch, and Keras 2.3.1 paid it every epoch.
4. **CPU-bound**: batches decoded by a pure-Python loop that holds the GIL, start-up
   included, where processes escape the GIL (lower is better for processes).

This module imports no TensorFlow, so neither do the spawned workers.

    PYTHONPATH=. python benchmarks/bench_enqueuers.py
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from kutils import OrderedEnqueuer

WORKERS = 2
QUEUE = 10
ROUNDS = 5
TARGET = 1.5
STEADY_BATCHES = 500
STEADY_EPOCHS = 4
SHORT_BATCHES = 8
SHORT_EPOCHS = 250
CPU_BATCHES = 8
CPU_EPOCHS = 3


class TinyBatches:
    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return np.full((4, 4), index, dtype="float32"), np.zeros((4, 1), dtype="float32")


class DecodedBatches(TinyBatches):
    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        total = 0
        for value in range(1_500_000):  # a pure-Python decode loop: holds the GIL
            total += value * value % 7
        return np.full((4, 4), total, dtype="float32"), np.zeros((4, 1), dtype="float32")


def steady_and_startup(use_multiprocessing: bool) -> tuple[float, float]:
    """(seconds per batch after the first epoch, seconds from start() to first batch)."""
    sequence = TinyBatches(STEADY_BATCHES)
    enqueuer = OrderedEnqueuer(sequence, use_multiprocessing=use_multiprocessing)
    begin = time.perf_counter()
    enqueuer.start(workers=WORKERS, max_queue_size=QUEUE)
    batches = enqueuer.get()
    next(batches)
    startup = time.perf_counter() - begin
    for _ in range(STEADY_BATCHES - 1):  # the rest of the first epoch
        next(batches)
    begin = time.perf_counter()
    for _ in range(STEADY_EPOCHS * STEADY_BATCHES):
        next(batches)
    per_batch = (time.perf_counter() - begin) / (STEADY_EPOCHS * STEADY_BATCHES)
    enqueuer.stop()
    return per_batch, startup


def short_epochs(use_multiprocessing: bool) -> float:
    """Seconds per epoch of SHORT_BATCHES tiny batches, after the first epoch."""
    sequence = TinyBatches(SHORT_BATCHES)
    enqueuer = OrderedEnqueuer(sequence, use_multiprocessing=use_multiprocessing)
    enqueuer.start(workers=WORKERS, max_queue_size=QUEUE)
    batches = enqueuer.get()
    for _ in range(SHORT_BATCHES):
        next(batches)
    begin = time.perf_counter()
    for _ in range(SHORT_EPOCHS * SHORT_BATCHES):
        next(batches)
    per_epoch = (time.perf_counter() - begin) / SHORT_EPOCHS
    enqueuer.stop()
    return per_epoch


def cpu_bound(use_multiprocessing: bool) -> float:
    """Seconds for CPU_EPOCHS epochs of CPU-bound batches, start() included."""
    sequence = DecodedBatches(CPU_BATCHES)
    enqueuer = OrderedEnqueuer(sequence, use_multiprocessing=use_multiprocessing)
    begin = time.perf_counter()
    enqueuer.start(workers=WORKERS, max_queue_size=QUEUE)
    batches = enqueuer.get()
    for _ in range(CPU_EPOCHS * CPU_BATCHES):
        next(batches)
    took = time.perf_counter() - begin
    enqueuer.stop()
    return took


def best_alternating(measure: Callable[[bool], Any], rounds: int) -> tuple[list[Any], list[Any]]:
    """Run ``measure(False)`` and ``measure(True)`` alternately; all results of each."""
    threads: list[Any] = []
    processes: list[Any] = []
    for number in range(rounds):
        order = (False, True) if number % 2 == 0 else (True, False)
        for use_multiprocessing in order:
            (processes if use_multiprocessing else threads).append(measure(use_multiprocessing))
    return threads, processes


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def main() -> None:
    print(f"{os.cpu_count()} CPUs; {WORKERS} workers, max_queue_size={QUEUE}, best of {ROUNDS}")
    print(f"before: {load()}")
    threads, processes = best_alternating(steady_and_startup, ROUNDS)
    thread_batch = min(result[0] for result in threads)
    process_batch = min(result[0] for result in processes)
    ratio = process_batch / thread_batch
    print(
        f"steady state, tiny batches, {STEADY_EPOCHS} epochs x {STEADY_BATCHES} after the "
        f"first: threads {thread_batch * 1e6:.1f} us/batch, processes "
        f"{process_batch * 1e6:.1f} us/batch, processes/threads {ratio:.2f}x "
        f"(target <= {TARGET}x: {'met' if ratio <= TARGET else 'NOT met'}); {load()}"
    )
    thread_start = min(result[1] for result in threads)
    process_start = min(result[1] for result in processes)
    print(
        f"start-up, start() to the first batch: threads {thread_start * 1e3:.1f} ms, "
        f"processes {process_start * 1e3:.1f} ms (paid once per start()); {load()}"
    )
    threads, processes = best_alternating(short_epochs, ROUNDS)
    print(
        f"epoch boundaries, {SHORT_EPOCHS} epochs x {SHORT_BATCHES} tiny batches after the "
        f"first: threads {min(threads) * 1e6:.0f} us/epoch, processes "
        f"{min(processes) * 1e6:.0f} us/epoch, processes/threads "
        f"{min(processes) / min(threads):.2f}x; {load()}"
    )
    threads, processes = best_alternating(cpu_bound, max(1, ROUNDS // 2))
    print(
        f"CPU-bound, {CPU_EPOCHS} epochs x {CPU_BATCHES} batches, start() included: "
        f"threads {min(threads):.2f} s, processes {min(processes):.2f} s, "
        f"processes/threads {min(processes) / min(threads):.2f}x; {load()}"
    )


if __name__ == "__main__":
    main()
