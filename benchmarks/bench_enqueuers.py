"""OrderedEnqueuer with thread and process workers, in one run.

Two workloads, 3 epochs each, 2 workers: tiny numpy batches (the cost of the workers
themselves: process workers are spawned once per start(), and Keras 2 made a new pool
every epoch) and CPU-bound batches decoded by a pure-Python loop (where processes escape
the GIL). No target: the figures say when to choose which. This module imports no
TensorFlow, so neither do the spawned workers.

    PYTHONPATH=. python benchmarks/bench_enqueuers.py
"""

from __future__ import annotations

import time

import numpy as np

from kutils import OrderedEnqueuer

EPOCHS = 3


class TinyBatches:
    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return np.full((4, 4), index, dtype="float32"), np.zeros((4, 1), dtype="float32")


class DecodedBatches(TinyBatches):
    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        total = 0
        for value in range(1_500_000):  # a pure-Python decode loop: holds the GIL
            total += value * value % 7
        return np.full((4, 4), total, dtype="float32"), np.zeros((4, 1), dtype="float32")


def run(sequence: TinyBatches, use_multiprocessing: bool) -> float:
    enqueuer = OrderedEnqueuer(sequence, use_multiprocessing=use_multiprocessing)
    start = time.perf_counter()
    enqueuer.start(workers=2, max_queue_size=10)
    batches = enqueuer.get()
    for _ in range(EPOCHS * len(sequence)):
        next(batches)
    took = time.perf_counter() - start
    enqueuer.stop()
    return took


def main() -> None:
    for label, sequence in (("tiny batches", TinyBatches()), ("CPU-bound", DecodedBatches())):
        threads = run(sequence, use_multiprocessing=False)
        processes = run(sequence, use_multiprocessing=True)
        print(
            f"{label}, {EPOCHS} epochs x {len(sequence)} batches, 2 workers: "
            f"threads {threads:.2f} s, processes {processes:.2f} s, "
            f"processes/threads {processes / threads:.2f}x"
        )


if __name__ == "__main__":
    main()
