"""Worker processes: megabytes per second of big batches, kutils's loader vs a plain Queue.

kutils's loader pickles each batch straight into a pipe of the worker's own, read
without blocking (so a worker killed mid-send is an error, not a hang). The yardstick
is what the loader did before and what most hand-written loaders do: the worker pickles
the batch to bytes and puts them on a ``multiprocessing.Queue`` that the main process
reads. Both use 2 spawned workers and the same batches; figures are the best of 3 runs.
Target: at least 0.8x the Queue's throughput (the safety must not cost much).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import time

import numpy as np

from kutils._loader import OrderedLoader

BATCH_MB = 16
BATCHES = 40
WORKERS = 2
ROUNDS = 3
TARGET = 0.8


class BigBatches:
    def __len__(self) -> int:
        return BATCHES

    def __getitem__(self, index: int) -> np.ndarray:
        return np.full(BATCH_MB * 2**20 // 8, index, "float64")


def _queue_worker(tasks: multiprocessing.Queue, results: multiprocessing.Queue) -> None:
    sequence = BigBatches()
    while (index := tasks.get()) is not None:
        results.put((index, pickle.dumps(sequence[index], protocol=pickle.HIGHEST_PROTOCOL)))


def queue_run() -> float:
    context = multiprocessing.get_context("spawn")
    tasks, results = context.Queue(), context.Queue()
    workers = [context.Process(target=_queue_worker, args=(tasks, results)) for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    for index in range(WORKERS):  # warm up: the workers are started and importing
        tasks.put(index)
    for _ in range(WORKERS):
        results.get()
    started = time.perf_counter()
    for index in range(BATCHES):
        tasks.put(index)
    ready = {}
    for position in range(BATCHES):
        while position not in ready:
            index, data = results.get()
            ready[index] = data
        assert pickle.loads(ready.pop(position))[0] == position
    elapsed = time.perf_counter() - started
    for _ in workers:
        tasks.put(None)
    for worker in workers:
        worker.join()
    return elapsed


def loader_run() -> float:
    indices = list(range(WORKERS)) + list(range(BATCHES))
    loader = OrderedLoader(
        BigBatches(), indices, workers=WORKERS, use_multiprocessing=True, max_queue_size=BATCHES
    )
    batches = iter(loader)
    try:
        for _ in range(WORKERS):  # warm up, as above
            next(batches)
        started = time.perf_counter()
        for position, batch in enumerate(batches):
            assert batch[0] == position
        return time.perf_counter() - started
    finally:
        loader.close()


def main() -> None:
    load_before = " ".join(f"{load:.2f}" for load in os.getloadavg())
    queue_best = loader_best = float("inf")
    for _ in range(ROUNDS):
        queue_best = min(queue_best, queue_run())
        loader_best = min(loader_best, loader_run())
    megabytes = BATCH_MB * BATCHES
    queue_rate, loader_rate = megabytes / queue_best, megabytes / loader_best
    ratio = loader_rate / queue_rate
    print(
        f"load average (1, 5, 15 min) at start: {load_before}, at end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}"
    )
    print(f"{BATCHES} batches of {BATCH_MB} MB, {WORKERS} spawned workers, best of {ROUNDS}")
    print(f"multiprocessing.Queue of pickled bytes: {queue_rate:8.0f} MB/s")
    print(f"kutils OrderedLoader:                   {loader_rate:8.0f} MB/s")
    print(f"ratio: {ratio:.2f}x (target >= {TARGET}x): {'met' if ratio >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
