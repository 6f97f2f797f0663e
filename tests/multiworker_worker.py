"""One worker of a MultiWorkerMirroredStrategy cluster, started by tests/test_parallel_multi_worker.py.

Usage: python multiworker_worker.py DATA.npz OUT.npz LOGICAL_CPUS MODE [TIMEOUT]

TF_CONFIG (in the environment) says which worker this is. DATA.npz holds x, y and the
initial weights w0, w1, ...; the worker trains a copy of the model through
``kutils.data_parallel(model, multi_worker_strategy())`` and writes the template's final
weights to OUT.npz. MODE ``fit:KIND`` trains 2 epochs on
``KIND`` input (numpy, tfdata, sequence or hdf5: DATA.h5 beside DATA.npz); MODE ``long`` trains until stopped and
touches OUT.npz + '.started' after its first step (for the killed-worker test).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def main() -> int:
    data_path, out_path, cpus, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpus)
    import keras

    from kutils.parallel import data_parallel, multi_worker_strategy

    data = np.load(data_path)
    strategy = multi_worker_strategy(timeout_seconds=timeout)
    model = build_model()
    model.set_weights([data[f"w{i}"] for i in range(len(model.weights))])
    parallel = data_parallel(model, strategy)
    parallel.compile(keras.optimizers.SGD(0.1), "mse")
    if mode.startswith("fit:"):
        inputs = make_inputs(mode.removeprefix("fit:"), data, data_path)
        parallel.fit(*inputs, epochs=2, shuffle=False, verbose=0)
        loss = parallel.evaluate(data["x"], data["y"], batch_size=8, verbose=0)
        predictions = parallel.predict(data["x"], batch_size=8, verbose=0)
        np.savez(out_path + ".eval.npz", loss=loss, predictions=predictions)
    else:
        started = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: open(out_path + ".started", "w").close()
        )
        parallel.fit(
            data["x"], data["y"], batch_size=8, epochs=10_000, verbose=0, callbacks=[started]
        )
    np.savez(out_path, *model.get_weights())
    return 0


def make_inputs(kind: str, data, data_path: str):  # type: ignore[no-untyped-def]
    """fit's positional arguments and batch size for one input type, global batch 8."""
    x, y = data["x"], data["y"]
    if kind == "numpy":
        return x, y, 8
    if kind == "tfdata":
        import tensorflow as tf

        return (tf.data.Dataset.from_tensor_slices((x, y)).batch(8),)
    if kind == "sequence":
        from kutils import Sequence

        class Batches(Sequence):
            def __len__(self) -> int:
                return len(x) // 8

            def __getitem__(self, index: int):  # type: ignore[no-untyped-def]
                return x[index * 8 : (index + 1) * 8], y[index * 8 : (index + 1) * 8]

        return (Batches(),)
    if kind == "hdf5":
        from kutils import HDF5Matrix

        h5 = data_path.removesuffix(".npz") + ".h5"
        return HDF5Matrix(h5, "x"), HDF5Matrix(h5, "y"), 8
    raise ValueError(f"unknown input kind. Received: kind={kind!r}")


def build_model():  # type: ignore[no-untyped-def]
    import keras

    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )


if __name__ == "__main__":
    sys.exit(main())
