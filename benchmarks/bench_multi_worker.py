"""data_parallel on MultiWorkerMirroredStrategy: two local workers against one process.

Prints the time per training step (same model, same global batches) of:

* one process, the plain Keras model, no strategy;
* two worker processes on 127.0.0.1 through ``kutils.data_parallel`` with
  ``multi_worker_strategy()`` (Keras ``fit``);
* the same two workers running hand-written MultiWorkerMirroredStrategy code (a
  ``strategy.run`` step in a ``tf.function`` over a distributed dataset), since Keras
  3.15's own ``fit`` fails under that strategy.

Target: kutils at most 1.05x the hand-written code. Each worker alternates the kutils and
hand-written sides on the same strategy, after one untimed run of each, and keeps the
best of REPEATS; worker 0's figures are printed. Two processes on the 2-core test machine
share its CPUs, so the two-worker figures measure overhead, not speed-up.

Run: python benchmarks/bench_multi_worker.py (from the repository root).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 3
SAMPLES, FEATURES, CLASSES, BATCH = 16384, 64, 10, 256
TARGET = 1.05
ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    if len(sys.argv) > 1:
        return _role(sys.argv[1], Path(sys.argv[2]))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        single = _run([[sys.executable, __file__, "single", str(out / "single.json")]], [None])
        ports = _free_ports(2)
        workers = [f"127.0.0.1:{p}" for p in ports]
        configs = [
            json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
            for i in range(2)
        ]
        commands = [[sys.executable, __file__, "worker", str(out / f"w{i}.json")] for i in range(2)]
        _run(commands, configs)
        one = json.loads((out / "single.json").read_text())["plain"]
        two = json.loads((out / "w0.json").read_text())
        del single
    steps = SAMPLES // BATCH
    print(f"MLP {FEATURES}-256-256-{CLASSES}, global batch {BATCH}, {steps} steps per epoch")
    print(f"one process, plain Keras fit:      {one * 1e3:8.2f} ms/step")
    print(f"two workers, kutils data_parallel: {two['kutils'] * 1e3:8.2f} ms/step")
    print(f"two workers, hand-written MWMS:    {two['hand'] * 1e3:8.2f} ms/step")
    print(f"kutils / hand-written:      {two['kutils'] / two['hand']:.3f}x (target <= {TARGET}x)")
    print(f"two workers / one process:  {two['kutils'] / one:.3f}x")
    return 0


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run(commands: list[list[str]], tf_configs: list[str | None]) -> None:
    procs = []
    try:
        for command, tf_config in zip(commands, tf_configs, strict=True):
            env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
            env.pop("TF_CONFIG", None)
            if tf_config:
                env["TF_CONFIG"] = tf_config
            procs.append(subprocess.Popen(command, env=env))
        for proc in procs:
            if proc.wait(timeout=900) != 0:
                raise SystemExit(f"{proc.args} failed with exit code {proc.returncode}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _role(role: str, out: Path) -> int:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES, FEATURES)).astype("float32")
    y = rng.integers(0, CLASSES, size=SAMPLES)
    if role == "single":
        out.write_text(json.dumps({"plain": _single(x, y)}))
    else:
        out.write_text(json.dumps(_worker(x, y)))
    return 0


def _mlp():  # type: ignore[no-untyped-def]
    import keras

    return keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(CLASSES),
        ]
    )


def _loss():  # type: ignore[no-untyped-def]
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _single(x, y) -> float:  # type: ignore[no-untyped-def]
    import keras

    model = _mlp()
    model.compile(keras.optimizers.SGD(0.01), _loss())
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    return min(
        _timed(lambda: model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0))
        for _ in range(REPEATS)
    )


def _worker(x, y) -> dict[str, float]:  # type: ignore[no-untyped-def]
    import keras
    import tensorflow as tf

    from kutils.parallel import data_parallel, multi_worker_strategy

    strategy = multi_worker_strategy()
    parallel = data_parallel(_mlp(), strategy)
    parallel.compile(keras.optimizers.SGD(0.01), _loss())

    def kutils_epoch() -> None:
        parallel.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

    with strategy.scope():
        model = _mlp()
        optimizer = keras.optimizers.SGD(0.01)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    )

    def replica_step(xb, yb):  # type: ignore[no-untyped-def]
        with tf.GradientTape() as tape:
            per_example = loss_fn(yb, model(xb, training=True))
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=BATCH)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tf.function
    def step(xb, yb):  # type: ignore[no-untyped-def]
        losses = strategy.run(replica_step, args=(xb, yb))
        return strategy.reduce("SUM", losses, axis=None)

    def hand_epoch() -> None:
        for xb, yb in dataset:
            step(xb, yb)

    kutils_epoch()
    hand_epoch()
    kutils_times, hand_times = [], []
    for _ in range(REPEATS):
        kutils_times.append(_timed(kutils_epoch))
        hand_times.append(_timed(hand_epoch))
    return {"kutils": min(kutils_times), "hand": min(hand_times)}


def _timed(run) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / (SAMPLES // BATCH)


if __name__ == "__main__":
    sys.exit(main())
