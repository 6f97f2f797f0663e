"""data_parallel on MultiWorkerMirroredStrategy: two local workers against one process.

Prints the time per training step (same model, same global batches) of:

* one process, the plain Keras model, no strategy;
* two worker processes on 127.0.0.1 through ``kutils.data_parallel`` with
  ``multi_worker_strategy()`` (Keras ``fit``);
* the same two workers running hand-written MultiWorkerMirroredStrategy code (a
  ``tf.function`` that takes the next batch of a distributed dataset's iterator and runs
  ``strategy.run`` on it, as TensorFlow's guide recommends), since Keras 3.15's own
  ``fit`` fails under that strategy.

Target: kutils at most 1.05x the hand-written code. Each worker alternates the kutils and
hand-written sides on the same strategy, after one untimed run of each. Before every timed
call the workers meet at an untimed all-reduce; a call's time is the cluster's, from the
later of the two starts to the later of the two ends, and the median of REPEATS calls is
printed with the spread. (Timed by each worker alone, back to back, a call's work that
follows its last all-reduce on one worker, such as freeing the hand-written side's
iterator, was counted in the other worker's next call, which waited for it at its first
all-reduce.) Both are timed with long fit calls
(256 steps) and short ones (16 steps), where a per-call cost would weigh more (kutils
copies the weights to and from the template; the hand-written side makes a new
iterator per call, as a loop of one ``fit`` per epoch would). Two processes on the 2-core test machine
share its CPUs, so the two-worker figures measure overhead, not speed-up.

Run: python benchmarks/bench_multi_worker.py (from the repository root).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 5
SHORT_STEPS = 16  # a short fit call, where the per-call cost shows
SAMPLES, FEATURES, CLASSES, BATCH = 65536, 64, 10, 256
TARGET = 1.05
ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    if len(sys.argv) > 1:
        return _role(sys.argv[1], Path(sys.argv[2]))
    load_before = os.getloadavg()
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
        calls = _cluster_calls([json.loads((out / f"w{i}.json").read_text()) for i in range(2)])
        del single
    steps = SAMPLES // BATCH
    load_after = os.getloadavg()
    print(
        f"load average (1, 5, 15 min) at start: {_load(load_before)}, at end: {_load(load_after)}"
    )
    print(f"MLP {FEATURES}-256-256-{CLASSES}, global batch {BATCH}; median of {REPEATS} runs")
    print(f"one process, plain Keras fit:       {one * 1e3:8.2f} ms/step")
    for label, key in ((f"{steps} steps per fit", ""), (f"{SHORT_STEPS} steps per fit", "short_")):
        per_step = SHORT_STEPS if key else steps
        kutils = statistics.median(calls[key + "kutils"]) / per_step
        hand = statistics.median(calls[key + "hand"]) / per_step
        print(f"{label}:")
        print(f"  two workers, kutils data_parallel: {kutils * 1e3:8.2f} ms/step", end="")
        print(f"  (calls: {_spread(calls[key + 'kutils'], per_step)})")
        print(f"  two workers, hand-written MWMS:    {hand * 1e3:8.2f} ms/step", end="")
        print(f"  (calls: {_spread(calls[key + 'hand'], per_step)})")
        print(f"  kutils / hand-written:       {kutils / hand:.3f}x (target <= {TARGET}x)")
        print(f"  kutils / one process:        {kutils / one:.3f}x")
        print(f"  hand-written / one process:  {hand / one:.3f}x")
    return 0


def _cluster_calls(workers: list[dict[str, list[list[float]]]]) -> dict[str, list[float]]:
    """Each call's time for the cluster: from the later start to the later end (seconds).

    ``workers`` holds, per worker, the ``[start, end]`` wall-clock times of every timed
    call of each side; the workers run on one machine, so their clocks agree.
    """
    calls: dict[str, list[float]] = {}
    for name in workers[0]:
        spans = zip(*(worker[name] for worker in workers), strict=True)
        calls[name] = [max(end for _, end in call) - max(s for s, _ in call) for call in spans]
    return calls


def _spread(seconds: list[float], steps: int) -> str:
    low, mid, high = min(seconds), statistics.median(seconds), max(seconds)
    return f"min {low / steps * 1e3:.1f} / median {mid / steps * 1e3:.1f} / max {high / steps * 1e3:.1f}"


def _load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:.2f}" for value in load)


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
    times = [
        _timed(lambda: model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0))
        for _ in range(REPEATS)
    ]
    return statistics.median(times) / (SAMPLES // BATCH)


def _worker(x, y) -> dict[str, list[list[float]]]:  # type: ignore[no-untyped-def]
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
    def step(iterator):  # type: ignore[no-untyped-def]
        # TensorFlow's recommended form: the batch is taken inside the function.
        xb, yb = next(iterator)
        losses = strategy.run(replica_step, args=(xb, yb))
        return strategy.reduce("SUM", losses, axis=None)

    def hand_epoch(batches=dataset, steps=SAMPLES // BATCH) -> None:  # type: ignore[no-untyped-def]
        iterator = iter(batches)
        for _ in range(steps):
            step(iterator)

    short = SHORT_STEPS * BATCH
    short_dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((x[:short], y[:short])).batch(BATCH)
    )
    sides = {
        "kutils": kutils_epoch,
        "hand": hand_epoch,
        "short_kutils": lambda: parallel.fit(
            x[:short], y[:short], batch_size=BATCH, shuffle=False, verbose=0
        ),
        "short_hand": lambda: hand_epoch(short_dataset, SHORT_STEPS),
    }

    @tf.function(autograph=False)
    def meet():  # type: ignore[no-untyped-def]
        # An all-reduce returns on each worker once every worker has reached it.
        one = strategy.run(lambda: tf.distribute.get_replica_context().all_reduce("SUM", 1.0))
        return strategy.reduce("SUM", one, axis=None)

    spans: dict[str, list[list[float]]] = {name: [] for name in sides}
    for run in sides.values():
        run()  # untimed: traces the functions
    for _ in range(REPEATS):
        for name, run in sides.items():
            meet().numpy()
            spans[name].append(_span(run))
    return spans


def _timed(run) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _span(run) -> list[float]:  # type: ignore[no-untyped-def]
    start = time.time()  # wall clock: compared across the worker processes
    run()
    return [start, time.time()]


if __name__ == "__main__":
    sys.exit(main())
