"""A fit_generator run that must exit promptly (tests/test_exit_after_fit_generator.py).

Usage: python fit_generator_exit.py threads|processes|zero. After the work, a watchdog
(faulthandler) dumps every thread's stack and exits with status 1 if the interpreter has
not exited within 30 seconds: a hang at exit shows where it waits.
"""

import faulthandler
import sys

import keras
import numpy as np

import kutils


class Batches(kutils.Sequence):
    def __len__(self):
        return 6

    def __getitem__(self, index):
        rng = np.random.default_rng(index)
        return rng.normal(size=(8, 4)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")


def batches():
    rng = np.random.default_rng(0)
    while True:
        yield rng.normal(size=(8, 4)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")


if __name__ == "__main__":
    mode = sys.argv[1]
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    if mode == "threads":
        kutils.fit_generator(model, batches(), steps_per_epoch=6, epochs=2, workers=2,
                             verbose=0, validation_data=Batches(), validation_steps=3)  # fmt: skip
    elif mode == "processes":
        kutils.fit_generator(model, Batches(), epochs=2, workers=2, use_multiprocessing=True,
                             verbose=0)  # fmt: skip
    else:
        kutils.fit_generator(model, Batches(), epochs=2, workers=0, verbose=0)
        kutils.evaluate_generator(model, Batches(), workers=2)
    print("work done", flush=True)
    faulthandler.dump_traceback_later(30, exit=True)
