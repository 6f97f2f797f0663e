"""One worker of a MultiWorkerMirroredStrategy cluster, started by tests/test_parallel_multi_worker.py.

Usage: python multiworker_worker.py DATA.npz OUT.npz LOGICAL_CPUS MODE [TIMEOUT|none]

TF_CONFIG (in the environment) says which worker this is. DATA.npz holds x, y and the
initial weights w0, w1, ...; the worker trains a copy of the model through
``kutils.data_parallel(model, multi_worker_strategy())`` and writes the template's final
weights to OUT.npz. MODE ``fit:KIND`` trains EPOCHS epochs on ``KIND`` input (see
make_inputs; DATA.h5 beside DATA.npz holds the HDF5 copy) and writes evaluate/predict
results to OUT.npz.eval.npz; MODE ``long`` trains until stopped and touches
OUT.npz.started after its first step (for the killed-worker test); MODE ``broken``
fits a kutils Sequence whose batch 3 raises KeyError; MODE ``caught:sequence`` does the
same and ``caught:callback`` has worker 1's callback raise at batch 2, and worker 1
catches the error, writes it to OUT.npz.caught.txt and stays alive; MODE ``threads``
records the thread count after each of several fit calls; MODE ``devices`` writes the
device counts of this worker to OUT.npz.devices.txt.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Any

EPOCHS = 3  # the third runs on the iterator Keras makes ahead, at the end of the second
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def main() -> int:
    data_path, out_path, cpus, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    # "none": no collective timeout (the default), a lost worker is found by heartbeats.
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5] != "none" else None
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpus)
    import keras

    from kutils.parallel import data_parallel, multi_worker_strategy

    data = np.load(data_path)
    strategy = multi_worker_strategy(timeout_seconds=timeout)
    # Different on every worker: whatever must agree (shuffles) has to agree by itself.
    np.random.seed(int(os.environ.get("KUTILS_TEST_WORKER", "0")))
    model = build_model()
    model.set_weights([data[f"w{i}"] for i in range(len(model.weights))])
    parallel = data_parallel(model, strategy)
    # "@N" modes (uneven global batches) also check that the reported metrics are right.
    parallel.compile(keras.optimizers.SGD(0.1), "mse", metrics=["mae"] if "@" in mode else None)
    if mode.startswith("fit:"):
        fit_and_record(parallel, mode.removeprefix("fit:"), data, data_path, out_path)
    elif mode == "threads":
        count_threads(parallel, data, out_path)
    elif mode == "devices":
        record_devices(strategy, out_path)
    elif mode == "calls":
        record_collectives_set_up(parallel, data["x"], data["y"], out_path)
    elif mode == "broken":
        fit_broken(parallel, data, data_path, out_path)
    elif mode.startswith("caught:"):
        if not fit_and_catch(parallel, mode, data, data_path, out_path):
            return 1
    else:
        started = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: open(out_path + ".started", "w").close()
        )
        parallel.fit(
            data["x"], data["y"], batch_size=8, epochs=10_000, verbose=0, callbacks=[started]
        )
    np.savez(out_path, *model.get_weights())
    open(out_path + ".done", "w").close()  # every result is written
    return 0


def fit_and_record(parallel: Any, kind: str, data: Any, data_path: str, out_path: str) -> None:
    """MODE fit:KIND: fit on KIND input, then write evaluate/predict results and seeds."""
    import keras
    import numpy as np

    args, kwargs, seen = make_inputs(kind, data, data_path, out_path)
    # The seed the workers agreed on for their shuffles, as each saw it.
    record = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(
            getattr(parallel._sharded_input, "seed", -1)  # tf.data is not sharded by kutils
        )
    )
    kwargs["callbacks"] = [*kwargs.get("callbacks", []), record]
    history = parallel.fit(*args, epochs=EPOCHS, verbose=0, **kwargs).history
    loss = parallel.evaluate(data["x"], data["y"], batch_size=8, verbose=0)
    predictions = parallel.predict(data["x"], batch_size=8, verbose=0)
    # The same kind of input again, unshuffled, through evaluate.
    args, _, _ = make_inputs(kind.removesuffix("-shuffle"), data, data_path, out_path)
    input_loss = parallel.evaluate(*args, verbose=0)
    np.savez(
        out_path + ".eval.npz",
        loss=loss,
        predictions=predictions,
        input_loss=input_loss,
        seeds=np.array(seen, dtype=np.int64),
        **{f"history_{name}": np.array(values) for name, values in history.items()},
    )


def count_threads(parallel: Any, data: Any, out_path: str) -> None:
    """MODE threads: the threads of this process after each of several fit calls."""
    import numpy as np

    counts = []
    x, y = data["x"], data["y"]  # the same arrays every call (data[...] makes new ones)
    for _ in range(6):
        parallel.fit(x, y, batch_size=8, epochs=2, verbose=0)
        with open("/proc/self/status") as f:
            counts += [int(line.split()[1]) for line in f if line.startswith("Threads:")]
    np.savez(out_path + ".threads.npz", counts=np.array(counts))


def record_devices(strategy: Any, out_path: str) -> None:
    """MODE devices: the logical CPU devices listed in this process (every worker's, once
    the cluster is up), those of this worker, and the accelerators reported to the
    strategy."""
    import tensorflow as tf

    from kutils._cluster_setup import task_devices

    resolver = strategy.cluster_resolver
    own = task_devices("CPU", resolver.task_type, resolver.task_id)
    listed = len(tf.config.list_logical_devices("CPU"))
    with open(out_path + ".devices.txt", "w") as f:
        f.write(f"{listed};{own};{resolver.num_accelerators()}")


def fit_broken(parallel: Any, data: Any, data_path: str, out_path: str) -> None:
    """MODE broken: a class_weight is refused before anything runs; then batch 3 raises
    on the worker that reads it (worker 1, with batches 1 and 3 of 4)."""
    args, _, _ = make_inputs("sequence", data, data_path, out_path)
    try:
        parallel.fit(*args, class_weight={0: 1.0}, verbose=0)
    except ValueError as error:
        with open(out_path + ".class_weight.txt", "w") as f:
            f.write(str(error))
    parallel.fit(break_batch_3(args[0]), shuffle=False, verbose=0)


def fit_and_catch(parallel: Any, mode: str, data: Any, data_path: str, out_path: str) -> bool:
    """MODE caught:*: worker 1 fails mid-training, catches the error and goes on living
    (as a script with a try/except might): worker 0 must stop anyway, not wait for it for
    ever. Returns False when the fit failed (its error is in OUT.npz.caught.txt)."""
    import keras

    worker = os.environ.get("KUTILS_TEST_WORKER", "0")
    try:
        if mode == "caught:sequence":
            args, _, _ = make_inputs("sequence", data, data_path, out_path)
            parallel.fit(break_batch_3(args[0]), shuffle=False, epochs=2, verbose=0)
        else:

            def fail(batch, logs):  # type: ignore[no-untyped-def]
                if worker == "1" and batch == 2:
                    raise RuntimeError("callback failed at batch 2")

            callback = keras.callbacks.LambdaCallback(on_train_batch_end=fail)
            parallel.fit(
                data["x"], data["y"], batch_size=8, epochs=2, verbose=0, callbacks=[callback]
            )
    except Exception as error:
        with open(out_path + ".caught.tmp", "w") as f:
            f.write(f"{type(error).__name__}: {error}")
        os.replace(out_path + ".caught.tmp", out_path + ".caught.txt")  # whole or absent
        if worker == "1":
            time.sleep(120)  # alive, with heartbeats, until the test stops it
        return False
    return True


def record_collectives_set_up(parallel: Any, x: Any, y: Any, out_path: str) -> None:
    """MODE calls: collectives traced or run eagerly in each of several rounds of calls.

    tf.distribute takes a collective's instance key (``_next_instance_key`` of
    TensorFlow's ``CollectiveReplicaLauncher``) when it traces the collective into a
    function, again at every call of that function (a deferred capture,
    ``wrapped_closure``), and at every run of an eager collective. The first and the
    last wait for the other workers outside any training step; the calls of a traced
    step are the steps' own all-reduces, not counted here.
    """
    import sys

    import numpy as np
    import tensorflow as tf
    from tensorflow.python.distribute import cross_device_utils

    launcher = cross_device_utils.CollectiveReplicaLauncher
    next_key = launcher._next_instance_key
    counts = {"traced": 0, "eager": 0}

    def counted(self):  # type: ignore[no-untyped-def]
        if not tf.executing_eagerly():
            counts["traced"] += 1
        elif sys._getframe(1).f_code.co_name != "wrapped_closure":
            counts["eager"] += 1
        return next_key(self)

    launcher._next_instance_key = counted
    rounds = []
    for _ in range(3):
        parallel.fit(x, y, batch_size=8, shuffle=False, verbose=0)
        parallel.fit(x, y, batch_size=8, shuffle=True, verbose=0)
        parallel.evaluate(x, y, batch_size=8, verbose=0)
        parallel.predict(x, batch_size=8, verbose=0)
        rounds.append([counts["traced"], counts["eager"]])
        counts.update(traced=0, eager=0)
    launcher._next_instance_key = next_key
    np.savez(out_path + ".calls.npz", rounds=np.array(rounds))


def make_inputs(kind: str, data, data_path: str, out_path: str):  # type: ignore[no-untyped-def]
    """fit's positional and keyword arguments for one input type, and a list of seeds seen.

    numpy, tfdata and hdf5 use global batches of 8 rows in order; sequence (a kutils
    Sequence) and pydataset (a keras.utils.PyDataset) batches of 8 (so 16 per step on
    two workers); sequence-uneven batches of 7 (5 batches: the last
    step splits the 4-row batch between the workers); sequence-shuffle batches of 4 in a
    shuffled order, logging every batch read to OUT.npz.reads; hdf5-shuffle an
    HDF5Dataset with shuffle=True; numpy-shuffle numpy arrays with shuffle=True. The seed of the shuffles is recorded in the list, once per epoch.
    A suffix ``@N`` (numpy@15) makes the batches of numpy, tfdata, sequence or hdf5 N rows.
    """
    import keras

    x, y = data["x"], data["y"]
    seen: list[int] = []
    kind, _, rows = kind.partition("@")
    batch = int(rows) if rows else 8
    if kind.startswith("numpy"):
        return (x, y), {"batch_size": batch, "shuffle": kind == "numpy-shuffle"}, seen
    if kind == "tfdata":
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
        return (dataset,), {"shuffle": False}, seen
    if kind.startswith("sequence"):
        from kutils import Sequence

        size = {"sequence": batch, "sequence-uneven": 7, "sequence-shuffle": 4}[kind]
        log = out_path + ".reads" if kind == "sequence-shuffle" else None

        class Batches(Sequence):
            def __len__(self) -> int:
                return -(-len(x) // size)

            def __getitem__(self, index: int):  # type: ignore[no-untyped-def]
                if log:
                    with open(log, "a") as f:
                        f.write(f"{index}\n")
                return x[index * size : (index + 1) * size], y[index * size : (index + 1) * size]

            def on_epoch_end(self) -> None:
                if log:
                    with open(log, "a") as f:
                        f.write("end\n")

        return (Batches(),), {"shuffle": kind == "sequence-shuffle"}, seen
    if kind == "pydataset":

        class KerasBatches(keras.utils.PyDataset):
            def __len__(self) -> int:
                return len(x) // 8

            def __getitem__(self, index: int):  # type: ignore[no-untyped-def]
                return x[index * 8 : (index + 1) * 8], y[index * 8 : (index + 1) * 8]

        return (KerasBatches(),), {"shuffle": False}, seen
    from kutils import HDF5Dataset, HDF5Matrix

    h5 = data_path.removesuffix(".npz") + ".h5"
    if kind == "hdf5":
        return (
            (HDF5Matrix(h5, "x"), HDF5Matrix(h5, "y")),
            {"batch_size": batch, "shuffle": False},
            seen,
        )
    if kind == "hdf5-shuffle":
        dataset = HDF5Dataset(HDF5Matrix(h5, "x"), HDF5Matrix(h5, "y"), batch_size=8, shuffle=True)
        return (dataset,), {}, seen
    raise ValueError(f"unknown input kind. Received: kind={kind!r}")


def break_batch_3(sequence):  # type: ignore[no-untyped-def]
    """The Sequence, with a __getitem__ that raises KeyError for batch 3."""
    original = type(sequence).__getitem__

    def broken(self, index):  # type: ignore[no-untyped-def]
        if index == 3:
            raise KeyError(f"batch {index} is broken")
        return original(self, index)

    type(sequence).__getitem__ = broken
    return sequence


def build_model():  # type: ignore[no-untyped-def]
    import keras

    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )


if __name__ == "__main__":
    try:
        status = main()
    except Exception:
        traceback.print_exc()
        sys.stderr.flush()
        open(sys.argv[2] + ".failed", "w").close()  # the error is in the log
        status = 1
    sys.exit(status)
