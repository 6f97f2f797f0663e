"""multi_gpu_model against tf.distribute.MirroredStrategy, measured side by side in one run.

Target: on 2 logical CPU devices, one fit epoch and one predict pass through
``kutils.multi_gpu_model`` take at most 1.05x the time of the same model written by hand
with ``tf.distribute.MirroredStrategy`` on the same devices. The ratio to the plain
template on one device is printed too: logical CPU devices share one thread pool, so on
CPU these figures measure overhead, never speed-up.

Scaling section: with GPUs present, the script then prints the scaling of
multi_gpu_model from 1 to N GPUs: the devices, how each global batch is split into
sub-batches (read from the model's own slice layers), the fit-epoch time, the speed-up
over one device and the efficiency (speed-up / devices). ``--scaling-devices cpu:N``
runs the same section on N logical CPU devices (the host CPU split as the tests split
it), so the code a GPU machine runs is exercised here; those figures are overhead, not
speed-up. ``--scaling-devices gpu:N`` limits it to N GPUs.

Each figure is the best of several alternating runs, after one untimed run of each side
that traces its functions, so all sides see the same machine load.

Run: python benchmarks/bench_multi_gpu.py [--scaling-devices cpu:N|gpu|gpu:N]
[--scaling-only] [--quick] (from the repository root). ``--quick`` uses a tiny model and
one timed run: a check that the script works, not a measurement.
"""

from __future__ import annotations

import argparse
import gc
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scaling-devices",
        metavar="KIND[:N]",
        help="run the scaling section on 'cpu:N' logical CPU devices, 'gpu' or 'gpu:N' "
        "(default: every GPU, skipped when there is none)",
    )
    parser.add_argument("--scaling-only", action="store_true", help="skip the comparison")
    parser.add_argument("--quick", action="store_true", help="tiny model, one timed run")
    args = parser.parse_args()
    args.scaling = _device_request(parser, args.scaling_devices)
    return args


def _device_request(parser: argparse.ArgumentParser, text: str | None) -> tuple[str, int] | None:
    """``'cpu:4'`` -> ``('CPU', 4)``; ``'gpu'`` -> ``('GPU', 0)`` (0: every GPU); None stays."""
    if text is None:
        return None
    kind, _, count = text.lower().partition(":")
    if kind not in ("cpu", "gpu") or not (count.isdigit() or (kind == "gpu" and not count)):
        parser.error(f"--scaling-devices takes cpu:N, gpu or gpu:N. Received: {text!r}")
    if count and int(count) < 1:
        parser.error(f"--scaling-devices needs at least 1 device. Received: {text!r}")
    return kind.upper(), int(count or 0)


ARGS = _parse_args()

import tensorflow as tf  # noqa: E402

# Must run before anything creates a tensor: split the host CPU into logical devices, 2
# for the comparison, or as many as the scaling section asks for.
LOGICAL_CPUS = max(2, ARGS.scaling[1] if ARGS.scaling and ARGS.scaling[0] == "CPU" else 2)
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * LOGICAL_CPUS,
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kutils import multi_gpu_model  # noqa: E402
from kutils.parallel import BatchSlice, local_devices  # noqa: E402

TARGET = 1.05
if ARGS.quick:
    REPEATS, SAMPLES, FEATURES, HIDDEN, CLASSES, BATCH = 1, 512, 16, 32, 10, 64
else:
    REPEATS, SAMPLES, FEATURES, HIDDEN, CLASSES, BATCH = 3, 8192, 256, 1024, 10, 512


def build_mlp(batch_norm: bool = False) -> keras.Model:
    keras.utils.set_random_seed(0)
    norm = [keras.layers.BatchNormalization()] if batch_norm else []
    return keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(HIDDEN, activation="relu"),
            *norm,
            keras.layers.Dense(HIDDEN, activation="relu"),
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


def scaling_devices(request: tuple[str, int] | None) -> tuple[str, list[str]] | None:
    """The kind and the devices of the scaling section; None when there is no GPU to use."""
    kind, count = request or ("GPU", 0)
    found = local_devices(kind)
    if request is None and not found:
        return None
    if not found or count > len(found):
        raise SystemExit(
            f"--scaling-devices asks for {count or 'every'} {kind} device(s); this process "
            f"has {len(found)}: {found}. Received: --scaling-devices {ARGS.scaling_devices}"
        )
    return kind, found[: count or len(found)]


def scaling(kind: str, devices: list[str], x: np.ndarray, y: np.ndarray) -> None:
    """multi_gpu_model's fit epoch on 1 to N of ``devices``, BATCH rows per device.

    The same code runs on GPUs and on logical CPU devices; only the header differs.
    """
    if kind == "GPU":
        print(f"GPU scaling: {len(devices)} GPU(s): {', '.join(devices)}")
    else:
        print(
            f"GPU scaling, run on {len(devices)} logical CPU devices (they share the "
            f"host's cores: overhead, not speed-up): {', '.join(devices)}"
        )
    times: dict[int, float] = {}
    for n in range(1, len(devices) + 1):
        # One device: the template alone, placed there (on a GPU machine, a CPU
        # run would otherwise land on /gpu:0); more: multi_gpu_model places each slice.
        place = devices[0] if n == 1 else None
        with tf.device(place):
            template = build_mlp()
        ids = [int(device.rsplit(":", 1)[1]) for device in devices[:n]]
        model = template if n == 1 else multi_gpu_model(template, gpus=ids, device_type=kind)
        compile_(model)
        batch = BATCH * n
        print(f"  {n} device(s): {split_of(model, devices[0], batch)}")

        def fit(m: keras.Model = model, b: int = batch, d: str | None = place) -> None:
            with tf.device(d):
                m.fit(x, y, batch_size=b, epochs=1, verbose=0)

        fit()  # untimed: traces the functions
        times[n] = min(timed(fit) for _ in range(REPEATS))
        speed_up = times[1] / times[n]
        print(
            f"  {n} device(s): fit epoch {times[n]:.3f} s, speed-up {speed_up:.2f}x over "
            f"1 device, efficiency {speed_up / n:.2f}"
        )


def split_of(model: keras.Model, single_device: str, batch: int) -> str:
    """Where each sub-batch of a ``batch``-row batch runs, read from the model's slices."""
    slices = [layer for layer in model.layers if isinstance(layer, BatchSlice)]
    if not slices:
        return f"devices {single_device} (the template alone), batch {batch}, no split"
    rows = np.zeros((batch, FEATURES), "float32")
    sizes = [int(layer(rows).shape[0]) for layer in slices]
    devices = ", ".join(layer.device for layer in slices)
    return (
        f"devices {devices}, batch {batch} split into sub-batches of "
        f"{' + '.join(map(str, sizes))} rows"
    )


def main() -> None:
    print(
        f"load average (1, 5, 15 min) at start: {' '.join(f'{load:.2f}' for load in os.getloadavg())}"
    )
    rng = np.random.default_rng(0)
    x = rng.random((SAMPLES, FEATURES), dtype=np.float32)
    y = rng.integers(0, CLASSES, SAMPLES)
    if not ARGS.scaling_only:
        with tf.device("/cpu:0"):  # on a GPU machine too: the comparison is on the CPU
            compare(x, y)
    found = scaling_devices(ARGS.scaling)
    if found is None:
        print(
            "GPU scaling: no GPU on this machine, skipped "
            "(--scaling-devices cpu:N runs it on N logical CPU devices)"
        )
    else:
        scaling(*found, x, y)
    print(
        f"load average (1, 5, 15 min) at end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}"
    )


def compare(x: np.ndarray, y: np.ndarray) -> None:
    """kutils, MirroredStrategy and the template side by side on /cpu:0 and /cpu:1."""
    # One strategy for the process: two MirroredStrategy objects reuse collective
    # instance keys, and their all-reduces then collide.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    sides = make_sides(strategy)
    print(
        f"MLP {FEATURES}-{HIDDEN}-{HIDDEN}-{CLASSES}, {SAMPLES} samples, batch {BATCH}, "
        "2 logical CPUs"
    )
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


if __name__ == "__main__":
    main()
