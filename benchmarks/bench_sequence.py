"""kutils.Sequence parallel loading: batches per second in Keras 3 fit, 4 threads vs 1.

Each ``__getitem__`` waits 20 ms, as a read from a slow disk or a network share would,
and returns a small batch, so loading dominates the training step. Target: workers=4
threads deliver at least 3x the batches per second of workers=1 (one loader thread, the
way Keras 3 and kutils load by default). Figures are the best epoch of alternating runs,
after a first epoch that builds the training function, so both sides see the same load.

Second part (issue 15): process workers against thread workers. Tiny batches: an epoch
of ``workers=2, use_multiprocessing=True`` costs at most 1.5x the same with threads (the
pool is started once per fit call and kept across its epochs; the whole call, start-up
included, is printed too). CPU-bound batches (a pure-Python decode loop, which holds the
GIL): 2 worker processes deliver at least 1.6x the batches per second of 2 threads on 2
cores. Run ``bench_sequence.py processes`` for this part only.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from kutils import Sequence

BATCHES = 50
WAIT_SECONDS = 0.020
EPOCHS = 4
ROUNDS = 3
TARGET = 3.0


class SlowReadSequence(Sequence):
    def __init__(self, workers: int) -> None:
        super().__init__(workers=workers)
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(32, 8)).astype("float32")
        self.y = rng.normal(size=(32, 1)).astype("float32")

    def __len__(self) -> int:
        return BATCHES

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        time.sleep(WAIT_SECONDS)  # waiting on I/O releases the GIL, as real reads do
        return self.x, self.y


class EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self.start)


def batches_per_second(model: keras.Model, workers: int) -> float:
    timer = EpochTimer()
    model.fit(SlowReadSequence(workers), epochs=EPOCHS, verbose=0, callbacks=[timer])
    return BATCHES / min(timer.seconds[1:])


def main() -> None:
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    one, four = [], []
    for _ in range(ROUNDS):  # alternate, so load on the machine hits both alike
        one.append(batches_per_second(model, workers=1))
        four.append(batches_per_second(model, workers=4))
    rate_one, rate_four = max(one), max(four)
    ratio = rate_four / rate_one
    verdict = "ok" if ratio >= TARGET else "MISSED"
    print(
        f"Sequence, __getitem__ waiting {WAIT_SECONDS * 1000:.0f} ms, {BATCHES} batches per epoch: "
        f"workers=4 threads {rate_four:.1f} batches/s, workers=1 {rate_one:.1f} batches/s, "
        f"ratio {ratio:.2f} (target >= {TARGET}) {verdict}"
    )


P_EPOCHS = 5
P_ROUNDS = 2
TINY_BATCHES = 16
CPU_BATCHES = 16
DECODE_ITERATIONS = 300_000
TINY_TARGET = 1.5
CPU_TARGET = 1.6


class TinySequence(Sequence):
    def __init__(self, processes: bool) -> None:
        super().__init__(workers=2, use_multiprocessing=processes)

    def __len__(self) -> int:
        return TINY_BATCHES

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return np.full((4, 8), index, "float32"), np.zeros((4, 1), "float32")


class DecodeSequence(Sequence):
    """Each batch 'decodes' bytes in a pure-Python loop (holds the GIL throughout)."""

    def __init__(self, processes: bool) -> None:
        super().__init__(workers=2, use_multiprocessing=processes)

    def __len__(self) -> int:
        return CPU_BATCHES

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        state = index + 1
        total = 0
        for _ in range(DECODE_ITERATIONS):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            total += state >> 24
        x = np.full((4, 8), total % 7, "float32")
        return x, np.zeros((4, 1), "float32")


def run(model: keras.Model, sequence: Sequence) -> tuple[float, float]:
    """(best epoch after the first, whole fit call) in seconds."""
    timer = EpochTimer()
    started = time.perf_counter()
    model.fit(sequence, epochs=P_EPOCHS, verbose=0, callbacks=[timer])
    return min(timer.seconds[1:]), time.perf_counter() - started


def compare(model: keras.Model, cls: type) -> tuple[float, float, float, float]:
    threads, processes = [], []
    for _ in range(P_ROUNDS):
        threads.append(run(model, cls(processes=False)))
        processes.append(run(model, cls(processes=True)))
    return (
        min(t[0] for t in threads),
        min(p[0] for p in processes),
        min(t[1] for t in threads),
        min(p[1] for p in processes),
    )


def main_processes() -> None:
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    load = os.getloadavg()[0]
    print(f"cores: {os.cpu_count()}, load average (1 min) at start: {load:.2f}")

    thread_epoch, process_epoch, thread_call, process_call = compare(model, TinySequence)
    ratio = process_epoch / thread_epoch
    verdict = "ok" if ratio <= TINY_TARGET else "MISSED"
    print(
        f"tiny batches, {TINY_BATCHES} per epoch: epoch with 2 processes {process_epoch:.3f} s, "
        f"2 threads {thread_epoch:.3f} s, ratio {ratio:.2f} (target <= {TINY_TARGET}) {verdict}; "
        f"whole fit of {P_EPOCHS} epochs: processes {process_call:.2f} s, threads {thread_call:.2f} s"
    )

    thread_epoch, process_epoch, _, _ = compare(model, DecodeSequence)
    ratio = thread_epoch / process_epoch
    verdict = "ok" if ratio >= CPU_TARGET else "MISSED"
    print(
        f"CPU-bound batches (pure-Python decode), {CPU_BATCHES} per epoch: "
        f"2 processes {CPU_BATCHES / process_epoch:.1f} batches/s, "
        f"2 threads {CPU_BATCHES / thread_epoch:.1f} batches/s, ratio {ratio:.2f} "
        f"(target >= {CPU_TARGET}) {verdict}"
    )
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    if sys.argv[1:] != ["processes"]:
        main()
    main_processes()
