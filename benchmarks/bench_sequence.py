"""kutils.Sequence parallel loading: batches per second in Keras 3 fit, 4 threads vs 1.

Each ``__getitem__`` waits 20 ms, as a read from a slow disk or a network share would,
and returns a small batch, so loading dominates the training step. Target: workers=4
threads deliver at least 3x the batches per second of workers=1 (one loader thread, the
way Keras 3 and kutils load by default). Figures are the best epoch of alternating runs,
after a first epoch that builds the training function, so both sides see the same load.
"""

from __future__ import annotations

import os
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


if __name__ == "__main__":
    main()
