"""multi_gpu_model against tf.distribute.MirroredStrategy, measured side by side in one run.

Target: on 2 logical CPU devices, one fit epoch and one predict pass through
``kutils.multi_gpu_model`` take at most 1.05x the time of the same model written by hand
with ``tf.distribute.MirroredStrategy`` on the same devices. The ratio to the plain
template on one device is printed too: logical CPU devices share one thread pool, so on
CPU these figures measure overhead, never speed-up. With GPUs present, the script also
prints the scaling of multi_gpu_model from 1 to N GPUs.

Each figure is the best of several alternating runs, after one untimed run of each side
that traces its functions, so all sides see the same machine load.
"""

from __future__ import annotations

import gc
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf

# Must run before anything creates a tensor: split the host CPU into 2 logical devices.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kutils import multi_gpu_model  # noqa: E402

REPEATS = 3
SAMPLES, FEATURES, CLASSES, BATCH = 8192, 256, 10, 512
TARGET = 1.05


def build_mlp(batch_norm: bool = False) -> keras.Model:
    keras.utils.set_random_seed(0)
    norm = [keras.layers.BatchNormalization()] if batch_norm else []
    return keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(1024, activation="relu"),
            *norm,
            keras.layers.Dense(1024, activation="relu"),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )


def compile_(model: keras.Model) -> None:
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def make_sides(
    strategy: tf.distribute.Strategy, batch_norm: bool = False
) -> dict[str, keras.Model]:
    template = build_mlp(batch_norm)
    compile_(template)

    kutils_template = build_mlp(batch_norm)
    kutils_model = multi_gpu_model(kutils_template, gpus=2, device_type="CPU")
    compile_(kutils_model)

    with strategy.scope():  # what a user writes by hand: build and compile in the scope
        mirrored = build_mlp(batch_norm)
        compile_(mirrored)
    return {"kutils": kutils_model, "mirrored": mirrored, "template": template}


def timed(function) -> float:
    gc.collect()
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def measure(sides: dict[str, keras.Model], task) -> dict[str, float]:
    for model in sides.values():
        task(model)  # trace once, untimed
    best = {name: float("inf") for name in sides}
    for _ in range(REPEATS):  # alternate, so load on the machine hits every side alike
        for name, model in sides.items():
            best[name] = min(best[name], timed(lambda m=model: task(m)))
    return best


def report(label: str, best: dict[str, float]) -> None:
    ratio = best["kutils"] / best["mirrored"]
    verdict = "ok" if ratio <= TARGET else "MISSED"
    print(
        f"{label}: kutils {best['kutils']:.3f} s, MirroredStrategy {best['mirrored']:.3f} s, "
        f"ratio {ratio:.2f} (target <= {TARGET}) {verdict}; template on one device "
        f"{best['template']:.3f} s, kutils/template {best['kutils'] / best['template']:.2f}"
    )


def gpu_scaling(x: np.ndarray, y: np.ndarray) -> None:
    gpus = tf.config.list_logical_devices("GPU")
    if not gpus:
        print("GPU scaling: no GPU on this machine, skipped")
        return
    times = {}
    for n in range(1, len(gpus) + 1):
        template = build_mlp()
        model = template if n == 1 else multi_gpu_model(template, gpus=n)
        compile_(model)
        model.fit(x, y, batch_size=BATCH * n, epochs=1, verbose=0)
        times[n] = min(
            timed(lambda m=model, k=n: m.fit(x, y, batch_size=BATCH * k, epochs=1, verbose=0))
            for _ in range(REPEATS)
        )
        print(
            f"GPU scaling: {n} GPU(s), fit epoch {times[n]:.3f} s, speed-up {times[1] / times[n]:.2f}x"
        )


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((SAMPLES, FEATURES), dtype=np.float32)
    y = rng.integers(0, CLASSES, SAMPLES)
    # One strategy for the process: two MirroredStrategy objects reuse collective
    # instance keys, and their all-reduces then collide.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    sides = make_sides(strategy)
    print(f"MLP {FEATURES}-1024-1024-{CLASSES}, {SAMPLES} samples, batch {BATCH}, 2 logical CPUs")
    report(
        "fit, one epoch",
        measure(sides, lambda m: m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)),
    )
    report("predict, one pass", measure(sides, lambda m: m.predict(x, batch_size=BATCH, verbose=0)))
    # With BatchNormalization, kutils guards empty sub-batches with a tf.cond per device.
    report(
        "fit, one epoch, with BatchNormalization",
        measure(
            make_sides(strategy, batch_norm=True),
            lambda m: m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0),
        ),
    )
    gpu_scaling(x, y)


if __name__ == "__main__":
    main()
